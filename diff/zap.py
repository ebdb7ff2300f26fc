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

Each example draws the batch size between lock breaks (1 in half of them,
else 2, 3 or the kernel's BATCH_ZAP_PAGES = 10): the correctness argument
must not depend on it, and small batches give lock breaks with few pages
(cond_resched_lock() yields whenever mmu_lock is contended).  TDP VMs get
more than one vCPU (the mmu machine's vcpu_create), so a root can stay held
by a vCPU that does not run.

What a VMM does to slots, as op patterns (the zap group's rules, and every
example's boot in setup):

  transaction            several changes in a row with no guest entry
                         between them (QEMU committing a memory transaction
                         while the vCPU that wrote a PAM register or a PCI
                         BAR is out of the guest): the roots the vCPUs hold
                         stay held through every zap
  change while vCPUs     a delete, move or remap (delete and re-add) while
  fault                  the guest runs: in every lock break of the zap the
                         vCPUs touch pages and fault them in again, until
                         the zap ends (the setting of the livelock
                         002c5f73c508 fixed)

The boot (setup) is vCPU 0's first accesses, a transaction of 0-3 remaps
and moves (firmware programming PAM/SMRAM), then one change while the
guest runs; so every example starts from slots changed under a running
guest, and the rules do it again later.  The auditor runs at each lock
break and after each change of a pattern, as it does after every rule.

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
from hypothesis.stateful import initialize, precondition, rule

from spec.consts import BATCH_ZAP_PAGES, PAGE_SHIFT
from spec.walk import ACCESS_KINDS, READ, WRITE

from .families import Family
from .mmu import MmuMachine, make_world, swarm
from impl.mmu import ShadowMmu as ImplShadowMmu

# Lock breaks the "change while vCPUs fault" pattern runs the vCPUs in; past
# them the zap finishes alone (memslot_change_commit).  A zap has at most the
# pages of its start to reclaim, a batch per mmu_lock hold: 48 breaks cover
# the zaps of this machine's VMs, and the livelock bound of a walk that does
# not end (impl/zap.py) is met well before.
MAX_FAULTING_BREAKS = 48
# The guest pages the machine's identity map covers (gva = gpa, gfns 0..0x3f):
# the vCPUs' fresh touches, a working set larger than a small TLB.
IDENTITY_PAGES = 0x40


class ZapMachine(MmuMachine):
    # Batch sizes between lock breaks; cond_resched_lock() yields whenever
    # mmu_lock is contended, so under faulting vCPUs a break may follow any page:
    # 1 is drawn as often as all the others together.
    zap_batches = (1, 1, 1, 2, 3, BATCH_ZAP_PAGES)

    def draw_swarm(self, data):
        """The mmu machine's groups, and the zap group (memslot changes split at
        their lock breaks, and the patterns below) in 3 examples of 4.  Every
        example's boot changes slots under a running guest already (setup);
        off in Hypothesis' first, simplest example, which runs its first
        enabled rule at every step (a pattern there would run 100 times)."""
        return super().draw_swarm(data) | (
            {"zap"} if data.draw(st.sampled_from([False, True, True, True]), label="swarm zap") else set())

    # -- what the VMM does to a slot -------------------------------------------------
    def draw_slot_change(self, data, hows=("remap", "delete", "move")):
        """A remap, delete or move (one of `hows`) of a slot other than slot 0, as
        the VMM does them: (slot, what, base_gfn) or None.  `remap`, the
        commonest, is QEMU's delete of a region and its re-add at the same place
        (a PAM/SMRAM or ROM toggle): a delete now, a memslot_create after it
        (re_add).  A move with no free place becomes a remap."""
        slots = self.other_slots()
        if not slots:
            return None
        sid = data.draw(st.sampled_from(slots), label="slot the VMM changes")
        what = data.draw(st.sampled_from(hows), label="how")
        old, n = self.world.oracle.slots[sid][:2]
        free = [b for b in (0x700, 0x800) if b != old and not any(
            not (b + n <= ob or ob + k <= b)
            for s, (ob, k, _, _) in self.world.oracle.slots.items() if s != sid)]
        if what == "move" and not free:
            what = "remap"
        base = data.draw(st.sampled_from(free), label="new base") if what == "move" else None
        return sid, what, base

    def re_add(self, data, sid, was):
        """The second half of a remap: the region comes back as a new slot at its
        old place (KVM_SET_USER_MEMORY_REGION creating it)."""
        base, n, readonly, dirty_log = was
        if any(not (base + n <= b or b + k <= base) for b, k, _, _ in self.world.oracle.slots.values()):
            return
        self.emit(["memslot_create", {"slot": max(self.world.oracle.slots) + 1, "base_gfn": base,
                                      "npages": n, "readonly": readonly, "dirty_log": dirty_log,
                                      "host_level": data.draw(st.sampled_from([1, 2]),
                                                              label="host_level of the re-added slot")}])

    def vcpus_run(self, data, most):
        """Up to `most` guest accesses by the running vCPUs: pages of the identity
        map they may not have touched yet (a guest's memory use moves on: its
        working set is larger than the TLB, so the vCPUs keep faulting, as in
        002c5f73c508's report), or the guest's last few addresses, or any it uses."""
        for vpick, where, pick, kind, user in data.draw(st.lists(st.tuples(
                st.integers(0, 3), st.sampled_from(["fresh", "recent", "fresh", "any"]),
                st.integers(0, 1 << 16), st.sampled_from([READ, READ, WRITE, *ACCESS_KINDS]),
                st.booleans()), min_size=1, max_size=most), label="accesses of the running vCPUs"):
            if where == "fresh":
                addr = (pick % IDENTITY_PAGES) << PAGE_SHIFT
            else:
                pool = self.addrs[-4:] if where == "recent" else self.addrs
                addr = pool[pick % len(pool)] & ~0xFFF
            self.emit_access(self.vcpus[vpick % len(self.vcpus)], addr, kind, user)

    def zap_running(self):
        """KVM_SET_USER_MEMORY_REGION has not returned: the impl's zap is in its
        lock breaks (the spec's zap is one mmu_lock hold)."""
        return self.world.sides["impl"].mmu.zap_in_progress()

    # -- rules ---------------------------------------------------------------------------
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

    def change_while_vcpus_fault(self, data):
        """The VMM deletes (moves, remaps) a memslot while the guest runs, as in
        the report 002c5f73c508 fixed: the vCPUs use their working set, the
        ioctl starts kvm_arch_flush_shadow_memslot(), and in every lock break
        of the zap (cond_resched_lock() dropping mmu_lock) the vCPUs run and
        fault pages in again, until the ioctl returns (at most
        MAX_FAULTING_BREAKS breaks; then the zap finishes alone).  The auditor
        runs at each break, as it does after every rule."""
        change = self.draw_slot_change(data)
        if change is None:
            return
        sid, what, base = change
        was = self.world.oracle.slots[sid]
        self.vcpus_run(data, 4)
        if what == "move":
            self.emit(["memslot_change_begin", {"slot": sid, "what": "move", "base_gfn": base}])
        else:
            self.emit(["memslot_change_begin", {"slot": sid, "what": "delete"}])
        for _ in range(MAX_FAULTING_BREAKS):
            if not self.zap_running():
                break
            self.vcpus_run(data, 4)
            self._noting_failure(self.world.check)
            self.emit(["zap_resume", {}])
        self.emit(["memslot_change_commit", {}])
        if what == "remap":
            self.re_add(data, sid, was)

    def transaction(self, data, n, hows=("remap", "delete", "move")):
        """`n` memslot changes in a row with no guest entry between them, as
        QEMU commits a memory transaction: a vCPU's write to a PCI BAR (or a
        PAM/SMRAM register) exits to the VMM, which deletes, moves and re-adds
        regions before that vCPU enters the guest again.  Each change zaps every
        page (to its end); the roots the vCPUs hold stay held through all of
        them.  The auditor runs after each change, as it does after every rule."""
        for _ in range(n):
            change = self.draw_slot_change(data, hows)
            if change is None:
                return
            sid, what, base = change
            was = self.world.oracle.slots[sid]
            if what == "move":
                self.emit(["memslot_move", {"slot": sid, "base_gfn": base}])
            else:
                self.emit(["memslot_delete", {"slot": sid}])
                if what == "remap":
                    self.re_add(data, sid, was)
            self._noting_failure(self.world.check)

    @initialize(data=st.data())
    def setup(self, data):
        """The mmu machine's VM, then its boot, as a QEMU guest's: vCPU 0 runs
        the firmware (a few accesses), which programs the chipset's PAM and
        SMRAM registers: QEMU commits each as a memory transaction of slot
        remaps and moves while the vCPU is out of the guest (transaction, 0-3
        changes).  Then the VMM changes a slot while the guest runs (memory
        hot-unplug, virtio-mem, a BAR the OS moves: change_while_vcpus_fault).
        Every example so starts from a VM whose slots changed under a running
        guest; the rules do it again later."""
        super().setup(data)
        self.vcpus_run(data, 4)
        self.transaction(data, data.draw(st.sampled_from([2, 3, 1, 2, 3, 0]),
                                         label="boot: PAM/SMRAM changes"), hows=("remap", "move"))
        self.change_while_vcpus_fault(data)

    @swarm("zap")
    @precondition(lambda self: not self.change_pending())
    @rule(data=st.data())
    def memslot_change_while_vcpus_fault(self, data):
        """A memslot change under a running guest (change_while_vcpus_fault)."""
        self.change_while_vcpus_fault(data)

    @swarm("zap")
    @precondition(lambda self: not self.change_pending())
    @rule(data=st.data(), n=st.integers(2, 3))
    def memslot_transaction(self, data, n):
        """Memslot changes in a row with no guest entry between them (transaction)."""
        self.transaction(data, n)


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
