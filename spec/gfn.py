"""gfn arithmetic of the shadow MMU (mmu.c and paging_tmpl.h, 2.6.36-3.11).

Written with `&`, `|`, `+` and shifts of masked values only, so proofs/gfn.py
evaluates these very functions on z3 bit-vectors (see spec/bits.py).  The MMU
classes expose them as static methods so a variant (impl/variants/gfn.py)
can replace one formula, e.g. the 2.6.35 fault paths.
"""

from .consts import (
    KVM_HPAGE_GFN_SHIFT, PAGE_SHIFT, PT32_LEVEL_BITS, PT64_LEVEL_BITS, PT64_LVL_ADDR_MASK,
)


def gfn_to_index(gfn, base_gfn, level):
    """Index of `gfn`'s rmap head in a memslot's level-`level` rmap array."""
    shift = KVM_HPAGE_GFN_SHIFT(level)
    return (gfn >> shift) - (base_gfn >> shift)


def direct_map_child_gfn(addr, level):
    """__direct_map(): sp->gfn of the direct page created under an entry at `level`.

    `(addr & PT64_LVL_ADDR_MASK(level)) >> PAGE_SHIFT`: the first gfn of the
    range the entry maps (mainline since 2.6.36).
    """
    return (addr & PT64_LVL_ADDR_MASK(level)) >> PAGE_SHIFT


def fetch_direct_gfn(walker_gfn, large_base_gfn, level):
    """FNAME(fetch): sp->gfn of the direct page under a shadow entry at `level`.

    `gw->gfn & ~(KVM_PAGES_PER_HPAGE(level) - 1)` (3af1817a0d65, 2.6.36);
    `large_base_gfn` (the guest large page's own base) is what 2.6.35 used.
    """
    return walker_gfn & ~((1 << KVM_HPAGE_GFN_SHIFT(level)) - 1)


def role_quadrant(gaddr, level):
    """kvm_mmu_get_page(): role.quadrant of a page at `level` for a 32-bit guest."""
    quadrant = gaddr >> (PAGE_SHIFT + PT64_LEVEL_BITS * level)
    return quadrant & ((1 << ((PT32_LEVEL_BITS - PT64_LEVEL_BITS) * level)) - 1)


def direct_sp_gfn(sp_gfn, index, level):
    """The gfn entry `index` of a direct page at `level` maps: sp->gfn + (index << 9(level-1))."""
    return sp_gfn + (index << KVM_HPAGE_GFN_SHIFT(level))
