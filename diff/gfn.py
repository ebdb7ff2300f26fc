"""The gfn family: the mmu family's VM, run for the gfn:* variants.

Lai's 2010 patch (facts section on kvm_mmu_page_get_gfn) stops storing
`sp->gfns[]` for direct shadow pages and derives an entry's gfn from
`sp->gfn`, the index and the level.  Direct pages are every page under TDP,
and under shadow paging only the pages that shadow a guest large page (or a
paging-off vCPU): so this family hunts in TDP first, where every fault
builds direct pages at levels 4 to 1, then in the mixed VM and the shadow
modes (a 32-bit guest's 4MB page is split across two quadrants of a direct
level-1 page).  Everything else is the mmu family's: machine, world,
oracles ("kernel BUG" for kvm_mmu_page_set_gfn's BUG_ON, "auditor: derived
gfn", the TDP identity of the cache rule).
"""

from impl.mmu import ShadowMmu as ImplShadowMmu

from .families import Family
from .mmu import MmuMachine, make_world

FAMILY = Family(
    name="gfn",
    summary="the mmu family's VM for direct pages' derived gfns (Lai 2010: sp->gfn, index and "
            "level instead of sp->gfns[]), TDP first",
    machine=MmuMachine,
    make_world=make_world,
    impl_base=ImplShadowMmu,
    modes=("tdp", "mixed", "shadow32", "shadowpae", "shadow64"),
    variant_families=("gfn",),
)
