"""The host's side of A/D: the mmu machine's "host dirty" and "host accessed" oracles.

KVM maps host pages into its shadow (or TDP) tables without holding them,
and the CPU records a guest's use of a page in the spte it went through (A,
and D for a write), not in the host's page tables.  So before KVM lets go of
its last mapping of a page, the host must have been told that the guest
wrote it (kvm_set_pfn_dirty(): SetPageDirty) or used it
(kvm_set_pfn_accessed(): mark_page_accessed, or a young answer to the aging
notifier); otherwise it may write back or drop the page as clean and lose
what the guest wrote (dirty), or reclaim a page in use (accessed: a cost
only).  3.10 reports in mmu_spte_update() (an A or D bit it clears) and in
mmu_spte_clear_track_bits() (a present spte dropped: its A and D, or
every bit where the host has none), which spec.rmap.RmapBase models and
spec and impl share.

This oracle does not re-run that rule.  It keeps, per side and per host
page (4K frame), what the guest did and what the host was told:

  used   each access the CPU completed through the tables: a hardware walk
         that allowed it (which sets the leaf's A, and D for a write) or a TLB
         hit (which sets nothing), with the first frame of the spte it went
         through (KVM reports a large spte by that frame, the whole huge page)
  told   each kvm_set_pfn_dirty() / kvm_set_pfn_accessed() the MMU made (the
         calls RmapBase records in pfn_dirty / pfn_accessed), and, for
         accessed, the sptes the aging notifier answered young for

A page is *let go* at the end of a step where no present leaf spte maps it
and no vCPU's TLB caches it: from then on the host may clean or free it
without asking KVM, and the ledger starts afresh for it.  The rule, checked
when a page is let go: if the guest wrote it since it was last let go, the
host was told it dirty since then (that frame, or the first frame of a
large spte the write went through); "host accessed" the same for any
access.  The host's PG_dirty stays set until it cleans the page, so one
report covers later writes until the page is let go.

Tested (sampled) like every mmu oracle; the modes with A/D masks only (the
mmu machine's host always has them: EPT without A/D bits is not modelled).
"""

from spec.consts import KVM_HPAGE_GFN_SHIFT, PT_PRESENT_MASK, spte_to_pfn

KINDS = (("dirty", "host dirty", "wrote", "kvm_set_pfn_dirty"),
         ("accessed", "host accessed", "used", "kvm_set_pfn_accessed or a young answer"))


class Told(set):
    """The set RmapBase keeps of the pfns it reported (every pfn ever reported:
    what the rmap family compares); each add is also passed to the ledger."""

    def __init__(self, sink, old=()):
        super().__init__(old)
        self.sink = sink

    def add(self, pfn):
        self.sink.add(pfn)
        super().add(pfn)


class HostPageLedger:
    """One side's ledger (module docstring)."""

    def __init__(self):
        self.used = {"dirty": {}, "accessed": {}}    # 4K pfn -> [first frames of the sptes, gfn, how]
        self.told = {"dirty": set(), "accessed": set()}
        self.let_go_after_write = 0   # pages let go that the guest had written (depth)

    def cpu_used(self, pfn, first, gfn, write, how):
        """The CPU completed an access on host frame `pfn` (guest frame `gfn`)
        through an spte whose first frame is `first`."""
        for kind in ("dirty", "accessed") if write else ("accessed",):
            rec = self.used[kind].setdefault(pfn, [set(), gfn, how])
            rec[0].add(first)

    def young(self, frames):
        """The aging notifier answered young for sptes whose first frames are `frames`."""
        self.told["accessed"].update(frames)

    def settle(self, mmu):
        """End of a step: check and forget every page `mmu` has let go.
        Returns [(oracle, message)] of the rule broken."""
        if not any(self.used.values()) and not any(self.told.values()):
            return []
        held = held_frames(mmu)
        bad = []
        for kind, oracle, verb, call in KINDS:
            used, told = self.used[kind], self.told[kind]
            for pfn in sorted(p for p in used if not held(p)):
                firsts, gfn, how = used.pop(pfn)
                if kind == "dirty":
                    self.let_go_after_write += 1
                if pfn in told or firsts & told:
                    continue
                via = ", ".join(f"{f:#x}" for f in sorted(firsts))
                bad.append((oracle, (
                    f"the guest {verb} host page {pfn:#x} (gfn {gfn:#x}) through an spte "
                    f"(first frame {via}; {how}), and KVM no longer maps it (no spte, no TLB "
                    f"entry), but it was never reported ({call}) in between: the host may "
                    f"{'write it back or drop it as clean' if kind == 'dirty' else 'reclaim it as unused'}")))
            refs = set(used).union(*(r[0] for r in used.values()))
            told.difference_update([p for p in told if not held(p) and p not in refs])
        return bad


def held_frames(mmu):
    """is_held(pfn): a present leaf spte of `mmu` maps host frame pfn, or a TLB
    entry of one of its vCPUs caches it."""
    small, ranges = set(), []
    for sptep, spte in mmu.mem.sptes.items():
        if not spte & PT_PRESENT_MASK:
            continue
        sp = mmu.pages.get(sptep & ~0xFFF)
        if sp is None or not mmu.is_last_spte(spte, sp.role.level):
            continue
        if sp.role.level == 1:
            small.add(spte_to_pfn(spte))
        else:
            first = spte_to_pfn(spte)
            ranges.append((first, first + (1 << KVM_HPAGE_GFN_SHIFT(sp.role.level))))
    for v in mmu.vcpus.values():
        for e in v.tlb.entries.values():
            if e.level == 1:
                small.add(e.pfn)
            else:
                ranges.append((e.pfn, e.pfn + (1 << KVM_HPAGE_GFN_SHIFT(e.level))))
    return lambda pfn: pfn in small or any(lo <= pfn < hi for lo, hi in ranges)


def with_host_probe(mmu_cls):
    """mmu_cls, watched for the ledger: the CPU's completed accesses (its hardware
    walk, hw_translate, and its TLB, tlb_access) and the host interface (the
    pfn_dirty / pfn_accessed sets of its rmap).  Nothing of KVM's own logic is
    wrapped, so the ledger holds for any variant."""
    cached = _PROBES.get(mmu_cls)
    if cached is not None:
        return cached

    class HostProbe(mmu_cls):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.host_pages = ledger = HostPageLedger()
            self.rmap.pfn_dirty = Told(ledger.told["dirty"], self.rmap.pfn_dirty)
            self.rmap.pfn_accessed = Told(ledger.told["accessed"], self.rmap.pfn_accessed)

        def hw_translate(self, vcpu, addr, write, user, fetch):
            hit = super().hw_translate(vcpu, addr, write, user, fetch)
            if hit is not None:
                e = hit[2]
                gfn, pfn = e.frame(addr)
                self.host_pages.cpu_used(pfn, e.pfn, gfn, write, "the hardware walk")
            return hit

        def tlb_access(self, vcpu, addr, write, user, fetch):
            e = vcpu.tlb.lookup(addr)
            out = super().tlb_access(vcpu, addr, write, user, fetch)
            if out is not None:
                gfn, pfn = e.frame(addr)
                self.host_pages.cpu_used(pfn, self._tlb_first_frame(e, gfn, pfn), gfn, write,
                                         "a TLB hit")
            return out

        def _tlb_first_frame(self, e, gfn, pfn):
            """The first frame of the spte a TLB entry cached.  A shadow entry is
            cached at the spte's size; a TDP entry (the guest's translation
            combined with the TDP leaf's) is 4K, and the TDP leaf is the last
            page its walk went through (large frames are aligned alike in gfn
            and pfn)."""
            if e.level > 1 or not e.pages:
                return e.pfn
            sp = self.pages.get(e.pages[-1])
            level = sp.role.level if sp is not None else 1
            return pfn - (gfn & ((1 << KVM_HPAGE_GFN_SHIFT(level)) - 1))

    HostProbe.__name__ = HostProbe.__qualname__ = mmu_cls.__name__
    _PROBES[mmu_cls] = HostProbe
    return HostProbe


_PROBES = {}


def spte_first_frames(mmu, sptes):
    """The first host frames of the (present) sptes at addresses `sptes`."""
    return {spte_to_pfn(mmu.mem.spte_read(s)) for s in sptes}
