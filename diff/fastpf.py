"""The fastpf family: the mmu family's VM, run for the fastpf:* variants.

3.10's fast_page_fault() (spec/mmu.py) runs on direct MMUs: TDP vCPUs, and
vCPUs of a shadow-paging VM with paging off (spec.mmu.NONPAGING, which mixed
mode's vcpu_create draws: their direct sptes share the rmaps of the gfns the
other vCPUs shadow).  It gives a read-only spte W back, without mmu_lock,
when SPTE_HOST_WRITEABLE and SPTE_MMU_WRITEABLE are both set, and marks
kvm_mmu_page_get_gfn(sp, index) dirty.  The oracles that see it go wrong are
the host's: "dirty log" (a write completes through a writable spte, or a
TLB entry, to a gfn not marked dirty while dirty logging is on; and
GET_DIRTY_LOG misses a gfn the guest wrote), "write protection" (a store
reaches a guest page table KVM write-protects without trapping), and the
auditor's write-protect rule.  This family reuses the mmu family's machine
and world; it exists so that `mmuspec diff --family fastpf` names the
question and `--variant fastpf:*` resolves here.  Its machine differs in one
draw: a shadow VM starts with a paging-off vCPU beside vCPU 0 in half the
examples (the mmu machine's mixed mode adds one only now and then), so the
search spends its time where the two software bits matter.
"""

from hypothesis import strategies as st
from hypothesis.stateful import initialize

from impl.mmu import ShadowMmu as ImplShadowMmu
from spec.mmu import NONPAGING

from .families import Family
from .mmu import MmuMachine, make_world


class FastpfMachine(MmuMachine):
    """The mmu machine; in a shadow VM of mixed mode, a paging-off vCPU from the start
    (drawn: half the examples)."""

    @initialize(data=st.data())
    def setup(self, data):
        super().setup(data)
        if self.world.mode == "mixed" and self.vmode != "tdp" and \
                data.draw(st.booleans(), label="a paging-off vCPU from the start"):
            self.vcpus.append(len(self.vcpus))
            self.nonpaging.add(self.vcpus[-1])
            self.emit(["vcpu_create", {"vcpu": self.vcpus[-1], "mode": NONPAGING, "cr3": 0,
                                       "cr0_wp": True, "cr4_pse": True, "efer_nx": True}])

FAMILY = Family(
    name="fastpf",
    summary="the mmu family's VM with 3.10's fast_page_fault on its direct MMUs (TDP, and "
            "paging-off vCPUs of a shadow VM): the two software bits and the dirty gfn",
    machine=FastpfMachine,
    make_world=make_world,
    impl_base=ImplShadowMmu,
    modes=("mixed", "tdp"),
    variant_families=("fastpf",),
)
