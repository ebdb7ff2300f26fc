"""Variants of the gfn family: the forms the Lai 2010 patch went through.

"KVM: MMU: reduce 50% memory usage" (Lai Jiangshan, April 2010) stops storing
sp->gfns[] for direct pages and derives the gfn of entry i instead.  The
derivation is only right if every fault path gives a direct page the first
gfn of the range it maps; in 2.6.35 they did not (facts section 4):

- __direct_map gave every TDP child `(addr & PT64_DIR_BASE_ADDR_MASK) >> 12`,
  2MB-aligned at every level, so a level-2 page under a 1GB entry starts at
  whatever 2MB frame the creating fault touched;
- FNAME(fetch) gave the direct page of a guest large page the leaf gpte's own
  gfn (the large page's base), so a 32-bit guest's upper 2MB half of a 4MB
  page differed from the lower half only by role.quadrant, and every level-1
  page under a 64-bit guest's 1GB page started at the 1GB base.

Mainline (2.6.36) fixed both fault paths (3af1817a0d65 and the per-level TDP
mask), so its derivation needs no quadrant.  Each variant replaces only the
static gfn helpers of impl.mmu.ShadowMmu; they are written with `&`, `+`,
shifts and spec.bits.ite so proofs/gfn.py evaluates them on z3 bit-vectors.
"""

from impl.variants import Variant, register
from spec.bits import ite
from spec.consts import (
    KVM_PAGES_PER_HPAGE, PAGE_SHIFT, PT64_DIR_BASE_ADDR_MASK, PT64_LEVEL_BITS, PT_PAGE_TABLE_LEVEL,
)

CAUGHT_BY = ("kernel BUG", "host page", "auditor: derived gfn", "prefetch completeness",
             "proof gfn.derived_equals_recorded")


# -- derivations of kvm_mmu_page_get_gfn() for a direct page ---------------
def _derived_posted(sp_gfn, index, level, quadrant):
    # Lai's posting: sp->gfn + index * 512^(level-1); role.quadrant ignored.
    return sp_gfn + index * KVM_PAGES_PER_HPAGE(level)


def _derived_with_quadrant(sp_gfn, index, level, quadrant):
    # The reviewer's update: a level-1 direct page of a 32-bit guest adds its
    # half of the 4MB page, quadrant << 9, to the posted derivation.
    half = ite(level == PT_PAGE_TABLE_LEVEL, quadrant << PT64_LEVEL_BITS, 0)
    return sp_gfn + half + index * KVM_PAGES_PER_HPAGE(level)


def _derived_no_level_shift(sp_gfn, index, level, quadrant):
    # Forgets that an entry of a level-L page maps 512^(L-1) gfns.
    return sp_gfn + index


# -- the 2.6.35 fault paths --------------------------------------------------
def _direct_map_child_gfn_2m(addr, level):
    # 2.6.35 __direct_map: the pseudo gfn is masked to 2MB whatever the level.
    return (addr & PT64_DIR_BASE_ADDR_MASK) >> PAGE_SHIFT


def _fetch_direct_gfn_large_base(walker_gfn, large_base_gfn, level):
    # 2.6.35 FNAME(fetch): the leaf gpte's gfn, i.e. the guest large page's base,
    # for every direct page under it.
    return large_base_gfn


_FAULT_PATHS_2635 = {
    "direct_map_child_gfn": _direct_map_child_gfn_2m,
    "fetch_direct_gfn": _fetch_direct_gfn_large_base,
}

register(Variant(
    family="gfn", name="lai-2010", models="posted form",
    summary="Lai's April 2010 posting: direct pages derive sp->gfn + index * 512^(level-1) "
            "with no quadrant term, on the 2.6.35 fault paths (TDP child gfn masked to 2MB at "
            "every level, fetch gives the guest large page's base)",
    replaces={"kvm_mmu_page_derived_gfn": _derived_posted, **_FAULT_PATHS_2635},
    caught_by=CAUGHT_BY,
))

register(Variant(
    family="gfn", name="marcelo-2010", models="posted form",
    summary="the reviewer's update of the posting: quadrant << 9 added at level 1 (the upper "
            "2MB half of a 32-bit guest's 4MB page), same 2.6.35 fault paths; still wrong "
            "for large sptes under TDP",
    replaces={"kvm_mmu_page_derived_gfn": _derived_with_quadrant, **_FAULT_PATHS_2635},
    caught_by=CAUGHT_BY,
))

register(Variant(
    family="gfn", name="pseudo-gfn-2m-mask", models="2.6.35",
    summary="mainline derivation, but __direct_map masks the child's gfn with "
            "PT64_DIR_BASE_ADDR_MASK (2MB) at every level, as 2.6.35 did",
    replaces={"direct_map_child_gfn": _direct_map_child_gfn_2m},
    caught_by=CAUGHT_BY,
))

register(Variant(
    family="gfn", name="no-level-shift", models="plausible",
    summary="kvm_mmu_page_get_gfn of a direct page returns sp->gfn + index at every level "
            "(the << 9(level-1) forgotten); mainline fault paths",
    replaces={"kvm_mmu_page_derived_gfn": _derived_no_level_shift},
    caught_by=CAUGHT_BY,
))
