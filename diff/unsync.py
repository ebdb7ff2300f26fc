"""The unsync family: the mmu family's VM with 3.10's unsync shadow pages, run
for the unsync:* variants.

Under shadow paging a guest page table whose every shadow page is level 1
goes unsync (spec/unsync.py): the guest edits it without trapping, and KVM
syncs it at INVLPG, at a CR3 load and when kvm_mmu_get_page meets it.  An
unsync spte may cache a translation older than the guest's tables, which the
architecture allows until the guest invalidates: the oracles are the mmu
family's, with the permitted-outcome set of spec/tlb.py ("stale
translation": an outcome older than the guest's last invalidation), and the
auditor's 3.10 rules (write protection: only level-1 unsync pages of a gfn
let it be writable; the unsync_child_bitmap bits reach every unsync page;
sync pages cache the guest exactly).  TDP has no unsync pages: the family
runs the shadow modes.
"""

from impl.mmu import ShadowMmu as ImplShadowMmu

from .families import Family
from .mmu import SmpPatternMachine, make_world

FAMILY = Family(
    name="unsync",
    summary="the mmu family's VM under shadow paging with 3.10's unsync pages: stale "
            "translations only until the guest's invalidation, the sync paths, write protection",
    machine=SmpPatternMachine,
    make_world=make_world,
    impl_base=ImplShadowMmu,
    modes=("shadow64", "mixed", "shadow32", "shadowpae"),
    variant_families=("unsync",),
)
