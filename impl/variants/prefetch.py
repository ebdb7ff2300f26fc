"""Variants of the prefetch family: the forms Xiao's 2010 prefetch went through.

"KVM: MMU: prefetch ptes when intercepted guest #PF" maps the other empty
entries of the aligned window of PTE_PREFETCH_NUM (8) around a level-1 fault
(facts section 6).  The impl (impl/mmu.py) is the merged form with the
trailing-run flush c6cecc4b9324 added in 2021.  Each variant replaces one
method of impl.mmu.ShadowMmu:

- v3-2010: the June 2010 posting's direct loop runs `for (; i < max; i++)`
  with max = index | 7, so it never visits the window's last slot, and it
  has no flush of a run still open when the loop ends;
- no-trailing-flush: the form merged in 2.6.36 and kept until c6cecc4b9324:
  the whole window is visited but a run of empty entries that reaches the
  window's end is never mapped (a fault at a gfn that is a multiple of 8 on
  an empty page prefetches nothing);
- host-writable-false: the reviewer's note on v3: prefetched sptes must be
  host-writable (the pfn was looked up for write), here they are not.

The direct variants touch direct pages only (TDP and shadow paging's direct
pages); indirect pages use FNAME(pte_prefetch)'s own loop, which is the
impl's in every variant but host-writable-false.
"""

from impl.variants import Variant, register
from spec.consts import PTE_PREFETCH_NUM

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
