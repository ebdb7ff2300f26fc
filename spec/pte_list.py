"""pte_list: the tagged list of spte pointers behind every rmap head.

Models pte_list_add(), pte_list_remove() and pte_list_desc_remove_entry() of
arch/x86/kvm/mmu.c (Linux 3.4-3.10, facts section 3).  A head word is 0
(empty), a bare spte pointer (bit 0 clear), or a pte_list_desc pointer with
bit 0 set.  PTE_LIST_EXT is a parameter of the memory (4 up to 3.4, 3 from 3.6).

This code is shared by spec and impl (the rmap iterator patch did not touch
it), so it is a common-mode risk.  Its independent oracles: the abstract
multiset model and the structure checker in diff/rmap.py, and the z3
obligations in proofs/pte_list.py on the pure helpers below.  Contracts of
pte_list_add/pte_list_remove (PEP 316, checked by CrossHair with `mmuspec
prove --symbolic`): proofs/contracts.py; for chains of any length,
proofs/pte_list_inductive.py.

The pure helpers (`pte_list_*` tag helpers, `desc_remove_slot`,
`desc_is_packed`) take ints or z3 terms alike.
"""

from .bits import ite, select
from .errors import KvmBug
from .termination import LoopBound


# -- the tag, on ints and z3 bit-vectors alike ------------------------------
def pte_list_head_of_spte(sptep):
    """The head word for a list holding the single spte `sptep`."""
    return sptep


def pte_list_head_of_desc(desc_addr):
    """`(unsigned long)desc | 1`."""
    return desc_addr | 1


def pte_list_is_desc(head):
    """`*pte_list & 1`: the head points at a pte_list_desc."""
    return (head & 1) == 1


def pte_list_desc_addr(head):
    """`*pte_list & ~1ul`."""
    return head & ~1


# -- the desc slots, on ints and z3 terms alike -----------------------------
def desc_remove_slot(slots, i):
    """The slot move of pte_list_desc_remove_entry().

    j is the last occupied slot above i (or i itself): sptes[i] = sptes[j];
    sptes[j] = NULL.  Returns the new slot tuple; the desc is empty afterwards
    exactly when its slot 0 is NULL.  `slots` may hold z3 terms (0 is NULL).
    """
    ext = len(slots)
    j = i
    for q in range(i + 1, ext):
        j = ite(slots[q] != 0, q, j)
    moved = select(slots, j)
    out = []
    for p in range(ext):
        if p == i:
            out.append(ite(j == i, 0, moved))
        else:
            out.append(ite(j == p, 0, slots[p]))
    return tuple(out)


def desc_is_packed(slots):
    """Occupied slots form a prefix and slot 0 is occupied (facts section 3)."""
    ok = slots[0] != 0
    for p in range(1, len(slots)):
        ok = ite(slots[p] != 0, ite(slots[p - 1] != 0, ok, False), ok)
    return ok


def desc_is_empty(slots):
    """A desc whose slot 0 is NULL holds nothing (given packing)."""
    return slots[0] == 0


class PteListOps:
    """pte_list_add / pte_list_remove on one KernelMemory.

    Methods, not functions, so a variant (impl/variants) can replace any one
    of them and every caller sees the replacement.
    """

    desc_remove_slot = staticmethod(desc_remove_slot)

    def __init__(self, mem):
        self.mem = mem
        self.ext = mem.pte_list_ext

    def chain_bound(self, what):
        """A walk along a desc chain visits each live desc once: more steps than
        there are live descs means the chain loops (spec/termination.py)."""
        return LoopBound(f"{what}: walk along the pte_list_desc chain",
                         self.mem.desc_allocs - self.mem.desc_frees + 1)

    def mmu_alloc_pte_list_desc(self):
        """A zeroed desc from mmu_pte_list_desc_cache."""
        return self.mem.alloc_desc()

    def mmu_free_pte_list_desc(self, desc):
        """Return a desc to its slab (poisoned in the model)."""
        self.mem.free_desc(desc)

    def pte_list_add(self, sptep, pte_list):
        """pte_list_add(): returns the count the kernel returns.

        Note the kernel's count: when the walk ends on a full last desc and a
        new one is appended, that last desc's entries are not counted.
        """
        mem, ext = self.mem, self.ext
        count = 0
        head = pte_list.val
        if head == 0:
            pte_list.val = pte_list_head_of_spte(sptep)
        elif not pte_list_is_desc(head):
            desc = self.mmu_alloc_pte_list_desc()
            desc.sptes[0] = head
            desc.sptes[1] = sptep
            pte_list.val = pte_list_head_of_desc(desc.addr)
            count += 1
        else:
            desc = mem.desc(pte_list_desc_addr(head))
            chain = self.chain_bound("pte_list_add")
            while mem.slot(desc, ext - 1) and desc.more:
                chain.step()
                desc = mem.desc(desc.more)
                count += ext
            if mem.slot(desc, ext - 1):
                new = self.mmu_alloc_pte_list_desc()
                desc.more = new.addr
                desc = new
            i = 0
            while mem.slot(desc, i):
                count += 1
                i += 1
            desc.sptes[i] = sptep
        return count

    def pte_list_desc_remove_entry(self, pte_list, desc, i, prev_desc):
        """Fill the hole at slot i from the desc's last entry; free an empty desc."""
        if desc.freed:
            self.mem.desc(desc.addr)  # raises UseAfterFree
        desc.sptes[:] = self.desc_remove_slot(tuple(desc.sptes), i)
        if not desc_is_empty(desc.sptes):
            return
        if prev_desc is None and not desc.more:
            pte_list.val = 0
        elif prev_desc is not None:
            prev_desc.more = desc.more
        else:
            pte_list.val = pte_list_head_of_desc(desc.more)
        self.mmu_free_pte_list_desc(desc)

    def pte_list_remove(self, sptep, pte_list):
        """pte_list_remove(): removing an absent spte is a kernel BUG."""
        mem, ext = self.mem, self.ext
        head = pte_list.val
        if head == 0:
            raise KvmBug(f"pte_list_remove: {sptep:#x} 0->BUG")
        if not pte_list_is_desc(head):
            if head != sptep:
                raise KvmBug(f"pte_list_remove: {sptep:#x} 1->BUG")
            pte_list.val = 0
            return
        desc = mem.desc(pte_list_desc_addr(head))
        prev = None
        chain = self.chain_bound("pte_list_remove")
        while desc is not None:
            chain.step()
            i = 0
            while i < ext and mem.slot(desc, i):
                if desc.sptes[i] == sptep:
                    self.pte_list_desc_remove_entry(pte_list, desc, i, prev)
                    return
                i += 1
            prev = desc
            desc = mem.desc(desc.more) if desc.more else None
        raise KvmBug(f"pte_list_remove: {sptep:#x} many->BUG")


def pte_list_decode(mem, head, desc_entries=None):
    """The list as the checkers see it: [spte, ...] and the desc chain.

    `desc_entries(desc)` gives the sptes a desc holds (default: its nonzero
    slots; a layout with per-desc counts passes its own rule).

    Uncounted and independent of both iterators; it raises KvmBug on a wild
    or freed desc pointer.  Returns (entries, descs).
    """
    if head == 0:
        return [], []
    if not pte_list_is_desc(head):
        return [head], []
    entries, descs, seen = [], [], set()
    addr = pte_list_desc_addr(head)
    while addr:
        if addr in seen:
            raise KvmBug(f"pte_list_desc chain loops at {addr:#x}")
        seen.add(addr)
        desc = mem.desc(addr)
        descs.append(desc)
        entries.extend(desc_entries(desc) if desc_entries else [s for s in desc.sptes if s])
        addr = desc.more
    return entries, descs


def pte_list_violations(mem, head):
    """Structure invariants of one list; returns a list of messages (empty: ok).

    Checked: tag consistent with what the head points at (a bare pointer is
    a nonzero, 8-byte-aligned spte address and no desc's; a desc pointer is
    a live desc; no slot holds a desc's address), occupied
    slots form a prefix, slot 0 of every desc occupied, no empty desc, no spte
    twice.
    """
    out = pte_list_tag_violations(mem, head)
    try:
        entries, descs = pte_list_decode(mem, head)
    except KvmBug as e:
        return out + [f"head {head:#x}: {e}"]
    out += pte_list_slot_violations(mem, head, entries)
    for d in descs:
        slots = tuple(d.sptes)
        if desc_is_empty(slots) and not any(slots):
            out.append(f"desc {d.addr:#x}: empty desc left in the chain")
        elif not desc_is_packed(slots):
            out.append(f"desc {d.addr:#x}: slots {['%#x' % s for s in slots]} not packed")
    if len(set(entries)) != len(entries):
        out.append(f"head {head:#x}: an spte appears twice")
    return out


def pte_list_tag_violations(mem, head):
    """The tag must match what the head points at: a bare (untagged) word is a
    nonzero, 8-byte-aligned spte address and no desc's (a desc address whose
    tag bit was lost would read as a single spte).  Any desc layout."""
    out = []
    if head and not pte_list_is_desc(head):
        if head & 7:
            out.append(f"head {head:#x}: bare spte pointer not 8-byte aligned")
        if head in mem.descs:
            out.append(f"head {head:#x}: untagged (bit 0 clear) but it points at a "
                       f"pte_list_desc, not an spte")
    return out


def pte_list_slot_violations(mem, head, entries):
    """No desc slot holds a desc's address (an entry is an spte pointer)."""
    if not pte_list_is_desc(head):
        return []
    return [f"head {head:#x}: a desc slot holds {s:#x}, a pte_list_desc address, not an spte"
            for s in entries if s in mem.descs]
