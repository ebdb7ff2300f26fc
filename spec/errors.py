"""The kernel's failure modes, as Python exceptions.

A BUG_ON in mmu.c becomes a `KvmBug`; touching a freed pte_list_desc becomes a
`UseAfterFree` (what KASAN would report).  Both spec and impl raise them, and
the differential machines treat "one side raised, the other did not" as a
discrepancy like any other.
"""


class KvmBug(Exception):
    """A BUG()/BUG_ON() of the kernel fired (e.g. removing an absent spte)."""


class UseAfterFree(KvmBug):
    """A freed object (a pte_list_desc) was read or written."""


class WrongHostPage(Exception):
    """The CPU used a host page that is not the memslot's current page for the
    gfn (a stale or misdirected spte): a safety violation, not a kernel BUG."""


class Livelock(Exception):
    """A loop the kernel bounds only by the state it walks ran past the bound
    that state gives it (pages, entries, restarts): the model would never
    finish.  The differential machines report it as the oracle `livelock`,
    never as a hang (spec/termination.py)."""


class HostDemand(Exception):
    """An access broke what the host demands whatever the guest allowed: it
    reached a page the host unmapped or a freed shadow page, wrote a page
    under dirty logging without marking it, or wrote a write-protected guest
    page table without trapping (spec/mmu.py tlb_hit_audit).  `rule` names
    the oracle."""

    def __init__(self, rule, message):
        super().__init__(message)
        self.rule = rule
