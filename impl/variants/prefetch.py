"""Variants of the prefetch family: the forms Xiao's 2010 prefetch went through.

"KVM: MMU: prefetch ptes when intercepted guest #PF" maps the other empty
entries of the aligned window of PTE_PREFETCH_NUM (8) around a level-1 fault
(facts section 6).  The impl (impl/mmu.py) is the 2010 form as merged, with
the trailing-run flush c6cecc4b9324 added in 2021 to its direct loop; its
indirect loop skips an invalid guest pte (the 2010 rule).  The variants,
each with the kernel version it follows:

- v3-2010 (must catch): the June 2010 posting's direct loop runs
  `for (; i < max; i++)` with max = index | 7, so it never visits the
  window's last slot, and it has no flush of a run still open when the loop
  ends;
- no-trailing-flush (must catch): the direct loop merged in 2.6.36 and kept
  until c6cecc4b9324 (5.13; 3.10.99 and 3.11 have it): the whole window is
  visited but a run of empty entries that reaches the window's end is never
  mapped (a fault at a gfn that is a multiple of 8 on an empty page
  prefetches nothing);
- host-writable-false (must catch): the reviewer's note on v3: prefetched
  sptes must be host-writable (the pfn was looked up for write), here they
  are not;
- stop-at-invalid-gpte-3.8 (must pass): the indirect loop's stop rule from
  bd6360cc0a54 ("KVM: MMU: introduce FNAME(prefetch_gpte)", Oct 2012, first
  in 3.8; as 3.10.99's and 3.11's paging_tmpl.h have it): FNAME(pte_prefetch)
  calls FNAME(prefetch_gpte) for each empty slot and breaks when it returns
  false, and it returns false when prefetch_invalid_gpte() finds reserved
  bits, a pte that is not present, or A clear (after drop_spte() of the
  slot, a non-present spte, so nothing changes).  Before it the loop called
  FNAME(prefetch_invalid_gpte) and went on (`continue`).  Being less
  complete is its design, not a bug: it declares PREFETCH_INVALID_GPTE_RULE
  = INVALID_GPTE_STOP, and the completeness oracle (spec/prefetch.py) holds
  it to that rule, so it must pass every oracle.  Its direct loop is the
  impl's (with c6cecc4b9324's flush), so that it differs from the impl in
  the stop rule alone: 3.8 to 5.12 combine it with no-trailing-flush's
  direct loop.

The direct variants touch direct pages only (TDP and shadow paging's direct
pages); indirect pages use FNAME(pte_prefetch)'s own loop, which is the
impl's in v3-2010 and no-trailing-flush.
"""

from impl.mmu import ShadowMmu
from impl.variants import Variant, register
from spec.consts import PTE_PREFETCH_NUM
from spec.prefetch import INVALID_GPTE_STOP

CAUGHT_BY = ("prefetch completeness", "guest outcome", "guest memory", "host page", "kernel BUG",
             "auditor: cache", "auditor: rmap", "auditor: write protect", "auditor: host page")


def v3_prefetch_window(index):
    """The posted v3 loop's bounds: i from index & ~7 while i < (index | 7), end exclusive."""
    return index & ~(PTE_PREFETCH_NUM - 1), index | (PTE_PREFETCH_NUM - 1)


def _loop_v3(self, index):
    # The posted loop: stops one slot early (i < index | 7) and never flushes an open run.
    first, end = v3_prefetch_window(index)
    return first, end, False


def _loop_no_trailing_flush(self, index):
    # 2.6.36 .. c6cecc4b9324: the whole window, but a run reaching its end is dropped.
    first, end = self.pte_prefetch_window(index)
    return first, end, False


def _prefetch_gpte_stops_at_invalid(self, vcpu, sp, spte, gpte):
    # FNAME(prefetch_gpte) from bd6360cc0a54: prefetch_invalid_gpte() (spec/mmu.py,
    # 3.10.99's mmu.c) drops the slot's spte and answers true for reserved bits, not
    # present or A clear; FNAME(prefetch_gpte) then returns false, ending the window.
    if self.prefetch_invalid_gpte(vcpu, sp, spte, gpte):
        return False
    # A valid gpte: the rest (gfn, rights, pte_prefetch_gfn_to_pfn, mmu_set_spte) is
    # the 2010 form's, whose own checks find nothing left to skip.
    return ShadowMmu.prefetch_gpte(self, vcpu, sp, spte, gpte)


def _prefetch_set_spte_not_host_writable(self, sptep, pte_access, gfn, pfn):
    # v3 before review: host_writable (reset_host_protection) false.
    self.mmu_set_spte(sptep, pte_access, False, 1, gfn, pfn, True, False)


register(Variant(
    family="prefetch", name="v3-2010", models="posted form",
    summary="the June 2010 v3 posting: __direct_pte_prefetch loops i < index | 7 (the window's "
            "last slot never visited) and never flushes a run open at the loop's end",
    replaces={"direct_prefetch_loop": _loop_v3},
    caught_by=CAUGHT_BY,
))

register(Variant(
    family="prefetch", name="no-trailing-flush", models="c6cecc4b9324",
    summary="2.6.36 to 5.12 (fixed by c6cecc4b9324): a run of empty entries reaching the end "
            "of the window is never mapped; a fault on a gfn that is a multiple of 8 in an "
            "empty page prefetches nothing",
    replaces={"direct_prefetch_loop": _loop_no_trailing_flush},
    caught_by=CAUGHT_BY,
))

register(Variant(
    family="prefetch", name="host-writable-false", models="posted form",
    summary="prefetched sptes installed without host-writable (the reviewer's note on v3: "
            "reset_host_protection must be true), so never writable",
    replaces={"prefetch_set_spte": _prefetch_set_spte_not_host_writable},
    caught_by=CAUGHT_BY,
))

register(Variant(
    family="prefetch", name="stop-at-invalid-gpte-3.8", models="bd6360cc0a54",
    summary="3.8 on (3.10.99, 3.11): FNAME(pte_prefetch) stops the window at a guest pte "
            "prefetch_invalid_gpte() rejects (reserved bits, not present, A clear) where the "
            "2010 form skips a not-present or A-clear one; sound, and held by the completeness "
            "oracle to its own rule",
    replaces={"prefetch_gpte": _prefetch_gpte_stops_at_invalid,
              "PREFETCH_INVALID_GPTE_RULE": INVALID_GPTE_STOP},
    must_catch=False, passes=True,
))
