"""The flush family: the mmu family's VM with TLBs, run for the flush:* variants.

Every vCPU has a TLB (spec/tlb.py) in spec and impl, and the model flushes
where Linux 3.10 does (spec/mmu.py: each kvm_flush_remote_tlbs names the
kernel function that flushes).  A missing flush shows as a TLB hit that the
walk would have refused: the oracles that see it are the guest's side
("stale translation": the outcome is not one the architecture permits
since the guest's last invalidation) and the host's side, which holds
whatever the guest did ("host page": a page the host unmapped, "freed
shadow page", "dirty log": a write under dirty logging to a page not marked
dirty, "write protection": a write to a guest page table KVM shadows that
did not trap).  This family reuses the mmu family's machine and world; it
exists so that `mmuspec diff --family flush` names the question and
`--variant flush:*` resolves here.
"""

from impl.mmu import ShadowMmu as ImplShadowMmu

from .families import Family
from .mmu import SmpPatternMachine, make_world

FAMILY = Family(
    name="flush",
    summary="the mmu family's VM with a TLB per vCPU: KVM's flush decisions (3.10) against what "
            "the guest allowed and what the host demands",
    machine=SmpPatternMachine,
    make_world=make_world,
    impl_base=ImplShadowMmu,
    # mixed first, then the shadow modes (most of 3.10's flush decisions are shadow
    # paging's: write protection, unsync, emulated pte writes, zapped shadow pages;
    # 64-bit first, the only one whose non-root tables are zapped by write flooding),
    # TDP last (its flushes, dirty log and notifiers, are met in every mode)
    modes=("mixed", "shadow64", "shadow32", "shadowpae", "tdp"),
    variant_families=("flush",),
)
