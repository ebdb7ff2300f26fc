"""The zap family: zapping all shadow pages, walk (spec) against generation (impl).

Runs the mmu family's three machines (diff/mmu.py: spec, impl, the
architectural oracle, the auditor after every step) with a machine that
splits memslot delete and move into their kernel phases, so other work runs
inside a zap's lock breaks:

  memslot_change_begin   the slot becomes KVM_MEMSLOT_INVALID and
                         kvm_arch_flush_shadow_memslot() starts: the spec
                         walks and zaps every page (kvm_mmu_zap_all, one
                         mmu_lock hold); the impl bumps mmu_valid_gen, asks
                         every vCPU to reload and zaps obsolete pages from
                         the tail up to its first lock break
  ... accesses (faults), MMU notifiers, CR3 loads, new vCPUs run here ...
  zap_resume             the impl takes mmu_lock again for one more batch
  memslot_change_commit  the zap runs to its end, then the slot is removed
                         or moved

Each example draws the batch size between lock breaks (1, 2, 3 or the
kernel's BATCH_ZAP_PAGES = 10): the correctness argument must not depend on
it, and small batches give lock breaks with few pages.  TDP VMs get more
than one vCPU (the mmu machine's vcpu_create), so a root can stay held by a
vCPU that does not run.

Oracles, on top of the mmu family's: auditor: roots (a vCPU with no reload
pending runs only on valid pages created since the last zap-all), auditor:
generation (a page whose generation matches looks current only if it was
created since the last bump), and, when a zap ends, zap complete (nothing
older than the zap is left but invalid roots still held) and deleted slot
(no spte maps the old range of the deleted or moved slot).  The metrics
count pages visited under mmu_lock per zap (`mmuspec bench zap` measures the
same at 10^2..10^5 pages).  What a clean campaign means is tested (sampled).
"""

from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule

from spec.consts import BATCH_ZAP_PAGES

from .families import Family
from .mmu import MODES, MmuMachine, make_world, swarm
from impl.mmu import ShadowMmu as ImplShadowMmu


class ZapMachine(MmuMachine):
    zap_batches = (1, 2, 3, BATCH_ZAP_PAGES)
    SWARM_GROUPS = MmuMachine.SWARM_GROUPS + ("zap",)

    @swarm("zap")
    @precondition(lambda self: not self.change_pending())
    @rule(pick=st.integers(0, 1 << 16), what=st.sampled_from(["delete", "move"]),
          base=st.sampled_from([0x700, 0x800]))
    def memslot_change_begin(self, pick, what, base):
        slots = self.other_slots()
        if not slots:
            return
        sid = slots[pick % len(slots)]
        if what == "delete":
            self.emit(["memslot_change_begin", {"slot": sid, "what": "delete"}])
            return
        n = self.world.oracle.slots[sid][1]
        if any(not (base + n <= b or b + k <= base) for s, (b, k, _, _) in
               self.world.oracle.slots.items() if s != sid):
            return
        self.emit(["memslot_change_begin", {"slot": sid, "what": "move", "base_gfn": base}])

    @precondition(lambda self: self.change_pending())
    @rule()
    def zap_resume(self):
        self.emit(["zap_resume", {}])

    @precondition(lambda self: self.change_pending())
    @rule()
    def memslot_change_commit(self):
        self.emit(["memslot_change_commit", {}])


FAMILY = Family(
    name="zap",
    summary="zapping all pages on memslot delete/move: kvm_mmu_zap_all's walk (spec) vs "
            "mmu_valid_gen and batched reclaim with lock breaks (impl, Xiao 2013), on the mmu machine",
    machine=ZapMachine,
    make_world=make_world,
    impl_base=ImplShadowMmu,
    modes=("tdp", "shadow64", "mixed", "shadow32", "shadowpae"),
    variant_families=("zap",),
)
