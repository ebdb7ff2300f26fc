"""The mmu family: a whole VM in three machines.

  spec     spec.mmu.ShadowMmu: stored gfns[], rmap_next walks, the
           architectural walker for shadow faults
  impl     impl.mmu.ShadowMmu (or a variant): derived gfns, the rmap
           iterator, KVM's FNAME(walk_addr)
  oracle   no shadow at all: the architectural walker straight on guest
           memory, one ArchCpu per vCPU

Every op goes to all three.  After each op:

  guest outcome       every access agrees: (ok, gfn), the same #PF error
                      code, or an MMIO exit (no memslot / read-only slot)
  guest memory        the three guest memories are equal, A/D bits included
  dirty log           GET_DIRTY_LOG reports every gfn the oracle saw written
                      since the last call (extra gfns are counted, allowed)
  kernel BUG          one side hit a BUG (spec.errors.KvmBug)
  host page           the CPU used a host page that is not the memslot's
                      current page for the gfn (spec.errors.WrongHostPage)
  auditor: ...        spec/mmu_audit.py on spec and on impl
  auditor: derived gfn  every direct page's derived gfn (impl) equals the
                      gfn the spec stored for the same page and index
  prefetch completeness  after every impl fault that installs a level-1 leaf,
                      the sptes the fault's prefetch changed are exactly
                      spec/prefetch.py's set, computed from the state right
                      after the leaf's install (the spec has no prefetch, so
                      the oracles above only show prefetch safe)
  host dirty          a host page KVM lets go (no spte, no TLB entry maps it)
  host accessed       that the guest wrote (used) through an spte since it was
                      last let go was reported to the host in between
                      (kvm_set_pfn_dirty / kvm_set_pfn_accessed, or a young
                      answer to aging): diff/hostpages.py, from the CPU's
                      completed accesses and the host's calls, on both sides

What a clean campaign means is tested (sampled), not proved.
"""

import copy
from collections import Counter

from hypothesis import strategies as st
from hypothesis import target
from hypothesis.stateful import initialize, precondition, rule

from impl.mmu import ShadowMmu as ImplShadowMmu
from impl.walk import KvmVcpu, PagingTmpl
from spec.consts import (
    BATCH_ZAP_PAGES, PAGE_SHIFT, PT64_NX_MASK, PT_ACCESSED_MASK, PT_DIRTY_MASK, PT_PAGE_SIZE_MASK,
    PT_PRESENT_MASK, PT_USER_MASK, PT_WRITABLE_MASK, PTE_LIST_EXT_CHOICES, PTE_PREFETCH_NUM,
    RMAP_RECYCLE_THRESHOLD, spte_to_pfn,
)
from spec.gfn import gfn_to_index
from spec.errors import HostDemand, KvmBug, Livelock, WrongHostPage
from spec.guest_memory import GuestMemory
from spec.kvm_host import KvmHost
from spec.mmu import MMIO, NONPAGING, OK, PAGE_FAULT, SHADOW, TDP, ShadowMmu as SpecShadowMmu
from spec.mmu_audit import audit, probe_cpu
from spec.nonpaging import LINEAR_MASK, NonpagingCpu
from spec.prefetch import describe_slots, expected_prefetch
from spec.tlb import TLB_CAPACITY, MemoryAt, PermittedTranslations, StoreLog
from spec.walk import ACCESS_KINDS, GP, PAGING_32, PAGING_64, PAGING_PAE, READ, WRITE, ArchCpu

from .core import BadOp, DiffMachine, Discrepancy, World, check_variant_invariants
from .families import Family
from .hostpages import spte_first_frames, with_host_probe
from .rmap import show_spte

MODES = ("mixed", "tdp", "shadow32", "shadowpae", "shadow64")
GUEST_MODE = {"shadow32": PAGING_32, "shadowpae": PAGING_PAE, "shadow64": PAGING_64}
MAXPHYADDR = 40
IMPL_MODE = {PAGING_32: "32", PAGING_PAE: "pae", PAGING_64: "64"}


def _kind_of(mode):
    return TDP if mode == "tdp" else SHADOW


class Machine:
    """One VM (spec or impl) with its own host, guest memory and vCPUs."""

    def __init__(self, mmu_cls, pte_list_ext, walker_cls):
        self.mem = GuestMemory()
        self.mmu = mmu_cls(KvmHost(), pte_list_ext)
        self.walker_cls = walker_cls  # None: the spec (ArchCpu for every vCPU)

    def make_guest(self, kind, mode, cr3, cr0_wp, cr4_pse, efer_nx):
        if kind == NONPAGING:  # paging off: no guest tables, on every side
            return NonpagingCpu(self.mem, MAXPHYADDR, cr0_wp, cr4_pse, efer_nx)
        if self.walker_cls is None or kind == TDP:
            return ArchCpu(self.mem, MAXPHYADDR, mode, cr0_wp, cr4_pse, efer_nx, cr3)
        return KvmVcpu(self.walker_cls, self.mem, MAXPHYADDR, IMPL_MODE[mode], cr0_wp, cr4_pse,
                       efer_nx, cr3)


def with_prefetch_probe(impl_cls):
    """impl_cls, watched: every page fault that installs a level-1 leaf (a
    non-speculative mmu_set_spte at level 1) is checked, when the fault
    returns, against spec/prefetch.py ("prefetch completeness").  Works on any
    variant, since it wraps only the spec-level fault handlers and mmu_set_spte."""

    class PrefetchProbe(impl_cls):
        _leaves = None
        prefetch_faults = 0    # faults whose leaf was at level 1
        prefetched = 0         # sptes their prefetch installed
        windows_across_edge = 0  # of those, windows whose gfns reach past a memslot's edge
        remapped = 0           # mmu_set_spte over a present leaf of another pfn
        recycled_faults = 0    # faults with an rmap_recycle in them (prefetch not judged)
        nonpaging_faults = 0   # page faults of vCPUs with paging off
        fast_pf_fixes = 0      # sptes fast_page_fault made writable again
        _recycled = False

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.flush_effect = {}  # flush reason -> TLB entries it found, summed

        def mmu_set_spte(self, sptep, pte_access, write_fault, level, gfn, pfn, speculative,
                         host_writable):
            old = self.mem.spte_read(sptep)
            if old & PT_PRESENT_MASK and self.is_last_spte(old, level) and spte_to_pfn(old) != pfn:
                self.remapped += 1
            emulate = super().mmu_set_spte(sptep, pte_access, write_fault, level, gfn, pfn,
                                           speculative, host_writable)
            if self._leaves is not None and not speculative and level == 1:
                self._leaves.append((sptep, dict(self.mem.sptes)))
            return emulate

        def tdp_page_fault(self, vcpu, gpa, write):
            return self._probed(vcpu, super().tdp_page_fault, gpa, write)

        # What each flush had to do: the TLB entries it found (a missing flush
        # matters only where there are some); and writable TLB entries of a
        # gfn KVM starts shadowing (what that shadowing's flush must remove).
        # Measured before the form under test decides anything.
        def kvm_flush_remote_tlbs(self, reason):
            n = sum(len(v.tlb.entries) for v in self.vcpus.values())
            self.flush_effect[reason] = self.flush_effect.get(reason, 0) + n
            return super().kvm_flush_remote_tlbs(reason)

        def rmap_write_protect(self, gfn):
            # before the write protection and its flush (kvm_mmu_get_page, the
            # sync paths): what they must remove
            self.flush_effect["writable TLB entries of a gfn KVM starts shadowing"] = \
                self.flush_effect.get("writable TLB entries of a gfn KVM starts shadowing", 0) + sum(
                    1 for v in self.vcpus.values() for e in v.tlb.entries.values()
                    if e.host_write and e.gfn <= gfn < e.gfn + (1 << (9 * (e.level - 1))))
            return super().rmap_write_protect(gfn)

        def kvm_mmu_pte_write(self, vcpu, gpa, new, nbytes):
            gfn = gpa >> PAGE_SHIFT
            pages = {sp.spt for sp in self.for_each_gfn_indirect_valid_sp(gfn)}
            self.flush_effect["other vCPUs' TLB entries through a page the guest writes"] = \
                self.flush_effect.get("other vCPUs' TLB entries through a page the guest writes", 0) + sum(
                    1 for v in self.vcpus.values() if v is not vcpu
                    for e in v.tlb.entries.values() if pages.intersection(e.pages))
            return super().kvm_mmu_pte_write(vcpu, gpa, new, nbytes)

        def shadow_page_fault(self, vcpu, addr, write, user, fetch):
            return self._probed(vcpu, super().shadow_page_fault, addr, write, user, fetch)

        def nonpaging_page_fault(self, vcpu, gva, write, *rest):
            self.nonpaging_faults += 1
            return self._probed(vcpu, super().nonpaging_page_fault, gva, write, *rest)

        def fast_pf_fix_direct_spte(self, vcpu, sptep, spte):
            self.fast_pf_fixes += 1
            return super().fast_pf_fix_direct_spte(vcpu, sptep, spte)

        def rmap_recycle(self, sptep, gfn):
            self._recycled = True
            return super().rmap_recycle(sptep, gfn)

        def _probed(self, vcpu, fault, *args):
            self._leaves, self._recycled = [], False
            try:
                out = fault(vcpu, *args)
            finally:
                leaves, self._leaves = self._leaves, None
            if self._recycled:
                # rmap_recycle unmapped a whole rmap in the middle of the fault (the
                # leaf's, or a prefetched spte's): spec/prefetch.py does not follow
                # recycling, so this fault's prefetch is not judged (counted)
                self.recycled_faults += 1
                return out
            for sptep, before in leaves:
                self._check_prefetch(vcpu, sptep, before)
            return out

        def _check_prefetch(self, vcpu, sptep, before):
            want = expected_prefetch(self, vcpu, sptep, before,
                                     host_has_accessed_bit=bool(self.shadow_accessed_mask))
            now = self.mem.sptes
            got = {a: v for a, v in now.items() if before.get(a, 0) != v}
            got.update({a: 0 for a in before if a not in now and before[a]})
            self.prefetch_faults += 1
            self.prefetched += len(got)
            sp = self.page_header(sptep)
            if sp.role.direct:
                first = sp.gfn + ((sptep - sp.spt) // 8 & ~(PTE_PREFETCH_NUM - 1))
                ends = {self.host.gfn_to_memslot(g) for g in (first, first + PTE_PREFETCH_NUM - 1)}
                self.windows_across_edge += len(ends) > 1
            if got != want:
                sp = self.page_header(sptep)
                lines = describe_slots(sp, (sptep - sp.spt) // 8, want, got, show_spte)
                raise Discrepancy("prefetch completeness", "; ".join(lines))

    PrefetchProbe.__name__ = PrefetchProbe.__qualname__ = impl_cls.__name__
    return PrefetchProbe


class Oracle:
    """The third machine: guest memory and architectural CPUs, no MMU; and, for
    each vCPU, the translations the architecture lets its TLB still use
    (spec/tlb.py: every translation since the last invalidation covering the
    address).  An access has permitted outcomes: the current walk's first,
    then each stale translation's (its gfn, or a spurious #PF when it lacks
    the rights).  A side whose outcome is a stale one gets an oracle of its
    own from then on (MmuWorld.oracles): the memories may part."""

    def __init__(self):
        self.mem = GuestMemory()
        self.history = StoreLog(self.mem)
        self.cpus = {}
        self.permitted = {}  # vcpu -> PermittedTranslations
        self.slots = {}      # id -> (base_gfn, npages, readonly, dirty_log)
        self.written = {}    # slot id -> gfns written since the last GET_DIRTY_LOG

    def add_cpu(self, vcpu, cpu):
        self.cpus[vcpu] = cpu
        self.permitted[vcpu] = PermittedTranslations(self.history.n)

    def flush(self, vcpu):
        """The guest's full invalidation: MOV CR3, a paging-mode or control change."""
        self.permitted[vcpu].flush(self.history.n)

    def invlpg(self, vcpu, addr):
        self.permitted[vcpu].invlpg(self.history.n, addr)

    def slot_of(self, gfn):
        for sid, (base, n, ro, dl) in self.slots.items():
            if base <= gfn < base + n:
                return sid
        return None

    def outcome(self, res, kind):
        """A walk's outcome for the access: #PF, MMIO (no memslot, or a write to a
        read-only one) or completed at the gfn."""
        if res.fault is not None:
            return PAGE_FAULT, res.fault
        sid = self.slot_of(res.gfn)
        if sid is None or (kind == WRITE and self.slots[sid][2]):
            return MMIO, res.gfn
        return OK, res.gfn

    def candidates(self, vcpu, addr, kind, user):
        """[(outcome, how)]: the current walk ("walk", first), then each distinct
        stale translation ("tlb").  Reads only."""
        cpu = self.cpus[vcpu]

        def walk_at(mem):
            view = copy.copy(cpu)
            view.mem = mem
            return view.walk(addr, kind, user)

        cur = self.outcome(walk_at(MemoryAt(self.history, self.history.n)), kind)
        out = [(cur, "walk")]
        for res in self.permitted[vcpu].stale_walks(self.history, walk_at, addr,
                                                    lambda r: page_bits(cpu, r)):
            o = (self.outcome(res, kind), "tlb")
            if o[0][0] == PAGE_FAULT:
                o = ((PAGE_FAULT, res.fault), "tlb")  # a spurious #PF of a stale entry's rights
            if o not in out:
                out.append(o)
        return out

    def commit(self, vcpu, addr, kind, user, value, size, outcome, how):
        """Apply the chosen outcome: a walk sets A/D; a stale TLB entry writes
        nothing but the store's data."""
        if how == "walk":
            before = len(self.mem.log)
            self.cpus[vcpu].walk(addr, kind, user)
            for w in self.mem.log[before:]:
                self.note_write(w.gfn)
        status, gfn = outcome
        if status == OK and value is not None:
            gpa = (gfn << PAGE_SHIFT) | (addr & 0xFFF)
            self.history.record(gpa, size)
            self.mem.write(gpa, size, value, "guest")
            self.note_write(gfn)

    def note_write(self, gfn):
        sid = self.slot_of(gfn)
        if sid is not None and self.slots[sid][3]:
            self.written.setdefault(sid, set()).add(gfn)


def page_bits(cpu, res):
    """Address bits below the page a walk reached (4K, 2MB, 4MB, 1GB)."""
    level = res.path[-1].level if res.path else 1
    return PAGE_SHIFT + (10 if cpu.mode == PAGING_32 else 9) * (level - 1)


class MmuWorld(World):
    def __init__(self, impl_cls, mode="mixed"):
        self.impl_cls = impl_cls
        self.mode = mode
        self.sides = None
        self.oracles = None   # side name -> its Oracle (one object until a side takes a stale outcome)
        self.extra_dirty = 0  # gfns GET_DIRTY_LOG reported that the guest did not write
        self.dirty_reported = 0
        self.dirty_calls = 0
        self.pending_change = None  # a memslot delete/move whose zap is in its lock breaks
        self.holds = {"spec": [], "impl": []}  # per finished zap-all: pages visited per mmu_lock hold
        self.last_outcome = (None, None)  # the oracle's outcome of the last access
        self.stale_taken = 0  # accesses an oracle settled on a translation older than the walk
        # How deep the run went (the machine's hypothesis.target() measures): maxima
        # over the run of "rmap chain" and "shadow pages of one gfn", and counts.
        self.depth = {"rmap chain": 0, "shadow pages of one gfn": 0,
                      "large sptes under notifier ranges": 0, "prefetch windows across a slot edge": 0,
                      "sptes remapped to another pfn": 0}

    # -- ops ----------------------------------------------------------------------
    def apply(self, op):
        name, a = op
        if name == "vm_setup":
            if a["pte_list_ext"] not in PTE_LIST_EXT_CHOICES:
                raise BadOp(f"PTE_LIST_EXT must be one of {PTE_LIST_EXT_CHOICES}")
            self.sides = {"spec": Machine(with_host_probe(SpecShadowMmu), a["pte_list_ext"], None),
                          "impl": Machine(with_prefetch_probe(with_host_probe(self.impl_cls)),
                                          a["pte_list_ext"],
                                          PagingTmpl)}
            batch = a.get("zap_batch", BATCH_ZAP_PAGES)
            if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
                raise BadOp(f"zap_batch must be a positive integer, not {batch!r}")
            capacity = a.get("tlb_capacity", TLB_CAPACITY)
            if not isinstance(capacity, int) or isinstance(capacity, bool) or capacity < 0:
                raise BadOp(f"tlb_capacity must be a non-negative integer, not {capacity!r}")
            recycle = a.get("rmap_recycle_threshold", RMAP_RECYCLE_THRESHOLD)
            if not isinstance(recycle, int) or isinstance(recycle, bool) or recycle < 0:
                raise BadOp(f"rmap_recycle_threshold must be a non-negative integer, not {recycle!r}")
            for m in self.sides.values():
                if hasattr(m.mmu, "zap_batch_pages"):
                    m.mmu.zap_batch_pages = batch
                m.mmu.tlb_capacity = capacity
                m.mmu.rmap_recycle_threshold = recycle
            oracle = Oracle()
            self.oracles = {name: oracle for name in self.sides}
            return
        if self.sides is None:
            raise BadOp("the first op must be vm_setup")
        handler = getattr(self, "op_" + name, None)
        if handler is None:
            raise BadOp(f"unknown mmu op {name!r}")
        handler(**a)

    def each(self, what, fn):
        """Run fn(machine) on spec and impl; a KvmBug on either is a discrepancy."""
        out = {}
        for name, m in self.sides.items():
            try:
                out[name] = fn(m)
            except KvmBug as e:
                raise Discrepancy("kernel BUG", f"{what}: {name} hit {type(e).__name__}: {e}") from None
            except WrongHostPage as e:
                raise Discrepancy("host page", f"{what}: {name}: {e}") from None
            except Livelock as e:
                raise Discrepancy("livelock", f"{what}: {name}: {e}") from None
            except HostDemand as e:
                raise Discrepancy(e.rule, f"{what}: {name}: {e}") from None
        return out

    @property
    def oracle(self):
        """The spec's oracle (the machine reads memslots and vCPUs from it: they
        are the same in every side's oracle)."""
        return self.oracles["spec"]

    def each_oracle(self, fn):
        """fn(oracle) on every distinct side oracle."""
        for o in {id(o): o for o in self.oracles.values()}.values():
            fn(o)

    def op_host_write(self, gpa, size, value):
        """Userspace fills guest memory before any vCPU runs (no MMU involved)."""
        if any(m.mmu.vcpus for m in self.sides.values()):
            raise BadOp("host_write is for set-up, before the first vCPU")
        for mem in [m.mem for m in self.sides.values()] + [self.oracle.mem]:
            mem.write(gpa, size, value, "guest")  # before any vCPU: no store to log

    def op_memslot_create(self, slot, base_gfn, npages, readonly, dirty_log, host_level):
        self._no_change_pending("memslot_create")
        for sid, (b, n, _, _) in self.oracle.slots.items():
            if sid == slot or not (base_gfn + npages <= b or b + n <= base_gfn):
                raise BadOp(f"memslot {slot} overlaps memslot {sid} or reuses its id")
        if host_level not in (1, 2, 3) or npages < 1:
            raise BadOp(f"memslot_create({slot}): host_level 1..3 and npages >= 1")
        self.each(f"memslot_create({slot})", lambda m: m.mmu.kvm_memslot_create(
            slot, base_gfn, npages, readonly, dirty_log, host_level))
        self.each_oracle(lambda o: o.slots.__setitem__(slot, (base_gfn, npages, readonly, dirty_log)))

    def _slot(self, slot):
        if slot not in self.oracle.slots:
            raise BadOp(f"no memslot {slot}")
        return self.oracle.slots[slot]

    def op_memslot_delete(self, slot):
        self.op_memslot_change_begin(slot, "delete")
        self.op_memslot_change_commit()

    def op_memslot_move(self, slot, base_gfn):
        self.op_memslot_change_begin(slot, "move", base_gfn)
        self.op_memslot_change_commit()

    def _no_change_pending(self, what):
        if self.pending_change is not None:
            raise BadOp(f"{what} while memslot {self.pending_change[0]} is being changed "
                        f"(slots_lock is held)")

    def op_memslot_change_begin(self, slot, what, base_gfn=None):
        """KVM_SET_USER_MEMORY_REGION deleting or moving `slot`, up to the first
        lock break of its zap: the slot becomes KVM_MEMSLOT_INVALID (the oracle
        drops it: its gfns exit as MMIO from now on) and
        kvm_arch_flush_shadow_memslot() starts (spec: the whole walk; impl:
        bump, reload, the first batch)."""
        self._no_change_pending("memslot_change_begin")
        base, n, ro, dl = self._slot(slot)
        if what == "move":
            if not isinstance(base_gfn, int):
                raise BadOp("memslot move needs base_gfn")
            for sid, (b, k, _, _) in self.oracle.slots.items():
                if sid != slot and not (base_gfn + n <= b or b + k <= base_gfn):
                    raise BadOp(f"memslot {slot} moved onto memslot {sid}")
        elif what != "delete":
            raise BadOp(f"memslot change {what!r}: delete or move")

        self.each(f"memslot_{what}({slot}): flush begins",
                  lambda m: m.mmu.kvm_memslot_change_begin(slot))
        def drop(o):
            del o.slots[slot]
            o.written.pop(slot, None)
        self.each_oracle(drop)
        self.pending_change = (slot, what, base_gfn, base, n, ro, dl)

    def op_zap_resume(self):
        """The zap takes mmu_lock again after a lock break (what ran in between
        were the ops before this one), up to its next break."""
        if self.pending_change is None:
            raise BadOp("zap_resume with no memslot change in progress")
        self.each("the zap resumes after a lock break", lambda m: m.mmu.zap_all_resume())

    def op_memslot_change_commit(self):
        """The zap runs to its end; then the slot is removed (delete) or
        installed at its new base (move)."""
        if self.pending_change is None:
            raise BadOp("memslot_change_commit with no memslot change in progress")
        slot, what, base_gfn, base, n, ro, dl = self.pending_change

        def commit(m):
            name = next(k for k, v in self.sides.items() if v is m)
            mmu = m.mmu
            mmu.kvm_memslot_change_commit(slot, base_gfn if what == "move" else None)
            self.holds[name].append(list(mmu.mmu_lock_holds))
            check_zap_complete(mmu, name, f"memslot_{what}({slot})", base, n)
        self.each(f"memslot_{what}({slot}): flush ends", commit)
        self.pending_change = None
        if what == "move":
            self.each_oracle(lambda o: o.slots.__setitem__(slot, (base_gfn, n, ro, dl)))

    def op_memslot_dirty_log(self, slot, on):
        self._no_change_pending("memslot_dirty_log")
        base, n, ro, _ = self._slot(slot)

        self.each(f"memslot_dirty_log({slot}, {on})",
                  lambda m: m.mmu.kvm_memslot_set_dirty_log(slot, on))

        def flag(o):
            o.slots[slot] = (base, n, ro, on)
            o.written.pop(slot, None)
        self.each_oracle(flag)

    def op_get_dirty_log(self, slot):
        self._no_change_pending("GET_DIRTY_LOG")
        _, _, _, dl = self._slot(slot)
        if not dl:
            raise BadOp(f"memslot {slot} is not logging dirty pages")
        got = self.each(f"GET_DIRTY_LOG(slot {slot})", lambda m: m.mmu.kvm_vm_ioctl_get_dirty_log(slot))
        written = {name: self.oracles[name].written.get(slot, set()) for name in self.sides}
        self.each_oracle(lambda o: o.written.pop(slot, None))
        for name, reported in got.items():
            missed = sorted(written[name] - set(reported))
            if missed:
                raise Discrepancy("dirty log", (
                    f"GET_DIRTY_LOG(slot {slot}) on {name} misses gfns "
                    f"{[hex(g) for g in missed]} the guest wrote"))
        self.extra_dirty += len(set(got["impl"]) - written["impl"])
        self.dirty_reported += len(got["impl"])
        self.dirty_calls += 1

    def op_vcpu_create(self, vcpu, mode, cr3, cr0_wp, cr4_pse, efer_nx):
        """KVM_CREATE_VCPU: mode "tdp", a shadow-paging guest mode, or "nonpaging"
        (paging off, in a shadow-paging VM: KVM maps it directly)."""
        if vcpu in self.oracle.cpus:
            raise BadOp(f"vcpu {vcpu} exists")
        kind = TDP if mode == "tdp" else NONPAGING if mode == NONPAGING else SHADOW
        guest_mode = PAGING_64 if kind == TDP else None if kind == NONPAGING else GUEST_MODE[mode]
        if kind == NONPAGING and any(v.kind == TDP for v in self.sides["spec"].mmu.vcpus.values()):
            raise BadOp(f"vcpu_create({vcpu}): a vCPU with paging off under shadow paging, in a TDP VM")

        try:
            for o in {id(o): o for o in self.oracles.values()}.values():
                o.add_cpu(vcpu, NonpagingCpu(o.mem, MAXPHYADDR, cr0_wp, cr4_pse, efer_nx)
                          if kind == NONPAGING else
                          ArchCpu(o.mem, MAXPHYADDR, guest_mode, cr0_wp, cr4_pse, efer_nx, cr3))
        except ValueError as e:
            raise BadOp(f"vcpu_create({vcpu}): {e}") from None

        def create(m):
            guest = m.make_guest(kind, guest_mode, cr3, cr0_wp, cr4_pse, efer_nx)
            m.mmu.kvm_vm_ioctl_create_vcpu(vcpu, kind, guest)
        self.each(f"vcpu_create({vcpu})", create)

    def _vcpu(self, vcpu):
        if vcpu not in self.oracle.cpus:
            raise BadOp(f"no vcpu {vcpu}")

    def _guest_change(self, vcpu, what, kernel_fn, arch_fn):
        """A change of the guest's paging controls: architecturally a full TLB
        invalidation when it succeeds (MOV CR3; a paging-mode, CR0.WP, CR4.PSE
        or EFER.NX change, as KVM resets its MMU context for each)."""
        if isinstance(self.oracle.cpus[vcpu], NonpagingCpu):
            raise BadOp(f"{what}: vcpu {vcpu} runs with paging off (not modelled: turning it on)")
        oks = set()

        def change(o):
            ok = arch_fn(o.cpus[vcpu]) != GP
            if ok:
                o.flush(vcpu)
            oks.add(ok)
        self.each_oracle(change)
        oracle_ok = oks.pop()
        got = self.each(what, lambda m: kernel_fn(m.mmu, m.mmu.vcpus[vcpu]))
        if len({*got.values(), oracle_ok}) != 1:
            raise Discrepancy("guest outcome", f"{what}: spec {got['spec']}, impl {got['impl']}, "
                                               f"oracle {oracle_ok} (False: #GP)")

    def op_set_cr3(self, vcpu, cr3):
        self._vcpu(vcpu)
        self._guest_change(vcpu, f"vcpu {vcpu} mov cr3 {cr3:#x}",
                           lambda mmu, v: mmu.kvm_set_cr3(v, cr3), lambda c: c.mov_to_cr3(cr3))

    def op_set_paging_mode(self, vcpu, mode):
        self._vcpu(vcpu)
        self._guest_change(vcpu, f"vcpu {vcpu} paging mode {mode}",
                           lambda mmu, v: mmu.kvm_set_paging_mode(v, mode),
                           lambda c: c.set_paging_mode(mode))

    def op_set_control(self, vcpu, reg, value):
        self._vcpu(vcpu)
        self._guest_change(vcpu, f"vcpu {vcpu} {reg}={int(value)}",
                           lambda mmu, v: mmu.kvm_set_control(v, reg, value),
                           lambda c: c.set_control(reg, value))

    def op_invlpg(self, vcpu, addr):
        """The guest's INVLPG of `addr`."""
        self._vcpu(vcpu)
        self.each_oracle(lambda o: o.invlpg(vcpu, addr))
        self.each(f"vcpu {vcpu} invlpg {addr:#x}", lambda m: m.mmu.kvm_mmu_invlpg(m.mmu.vcpus[vcpu], addr))

    def op_tlb_evict(self, vcpu, pick):
        """The CPU drops a TLB entry of its choosing (the pick-th, oldest first)."""
        self._vcpu(vcpu)
        self.each(f"vcpu {vcpu} TLB evicts entry {pick}", lambda m: m.mmu.vcpus[vcpu].tlb.evict(pick))

    def op_access(self, vcpu, addr, kind, user, value=None, size=None):
        self._vcpu(vcpu)
        if kind not in ACCESS_KINDS:
            raise BadOp(f"access kind {kind!r}")
        if isinstance(self.oracle.cpus[vcpu], NonpagingCpu) and addr & ~LINEAR_MASK:
            raise BadOp(f"vcpu {vcpu} runs with paging off: address {addr:#x} has more than 32 bits")
        what = f"vcpu {vcpu} {'user' if user else 'supervisor'} {kind} {addr:#x}"
        cands = {id(o): o.candidates(vcpu, addr, kind, user) for o in self.oracles.values()}
        self.last_outcome = cands[id(self.oracle)][0][0]
        got = self.each(what, lambda m: m.mmu.guest_access(m.mmu.vcpus[vcpu], addr, kind, user,
                                                           value, size))
        self.settle_access(what, vcpu, addr, kind, user, value, size, cands, got)

    def settle_access(self, what, vcpu, addr, kind, user, value, size, cands, got):
        """Each side's outcome must be one its oracle permits (the current walk, or a
        translation a TLB may still hold: otherwise "stale translation"); its
        oracle then applies that choice.  Sides sharing an oracle that chose
        differently part: each gets an oracle of its own.  When a stale choice
        and the walk give the same outcome, the one whose memory effect (the
        walk's A/D bits) matches the side's memory is taken."""
        show = lambda o: f"{o[0]} {o[1]:#x}" if o[1] is not None else o[0]
        choice = {}
        for name in self.sides:
            allowed = [c for c in cands[id(self.oracles[name])] if c[0] == got[name]]
            if not allowed:
                outs = cands[id(self.oracles[name])]
                if len(outs) == 1:
                    raise Discrepancy("guest outcome", (
                        f"{what}: oracle {show(outs[0][0])}, spec {show(got['spec'])}, "
                        f"impl {show(got['impl'])}"))
                raise Discrepancy("stale translation", (
                    f"{what}: {name} {show(got[name])}, but the guest allows only "
                    f"{', '.join(show(o) + (' (walk)' if h == 'walk' else ' (a TLB entry since its last invalidation)') for o, h in outs)}"))
            choice[name] = allowed
        for name in self.sides:
            o = self.oracles[name]
            if any(self.oracles[n] is o and choice[n][0] != choice[name][0] for n in self.sides if n != name):
                self.oracles[name] = copy.deepcopy(o)  # the sides' memories part here
        for o in {id(o): o for o in self.oracles.values()}.values():
            names = [n for n in self.sides if self.oracles[n] is o]
            options = choice[names[0]]
            if len(options) == 1:
                o.commit(vcpu, addr, kind, user, value, size, *options[0])
                self.stale_taken += options[0][1] == "tlb"
                continue
            self.stale_taken += options[0][1] == "tlb"
            for outcome, how in options:  # the walk's A/D effect, or none: the side's memory decides
                trial = copy.deepcopy(o)
                trial.commit(vcpu, addr, kind, user, value, size, outcome, how)
                if all(self.sides[n].mem == trial.mem for n in names):
                    break
            for n in names:
                self.oracles[n] = trial

    def op_unmap_hva_range(self, slot, gfn, npages):
        """The host frees the pages behind gfn..gfn+npages-1 of the slot
        (madvise(MADV_DONTNEED)): KvmHost splits the huge pages it cuts and
        invalidates the range; the MMU notifier (kvm_unmap_hva_range) runs."""
        self._slot(slot)
        if npages < 1:
            raise BadOp("unmap_hva_range needs npages >= 1")
        self.count_large_sptes(slot, gfn, gfn + npages)
        self.each(f"madvise(DONTNEED) slot {slot} gfn {gfn:#x}+{npages}",
                  lambda m: m.mmu.host.madvise_dontneed(m.mmu.host.memslots[slot], gfn, npages))

    def op_change_pte(self, slot, gfn):
        """KSM merged the page: the hva now maps a new, read-only pfn (KvmHost:
        a THP is split first; then the change_pte notifier, kvm_set_spte_hva)."""
        base, n, _, _ = self._slot(slot)
        if not base <= gfn < base + n:
            raise BadOp(f"gfn {gfn:#x} not in memslot {slot}")
        self.count_large_sptes(slot, gfn, gfn + 1)
        self.each(f"KSM merges gfn {gfn:#x}",
                  lambda m: m.mmu.host.ksm_merge(m.mmu.host.memslots[slot], gfn))

    def op_age(self, slot, gfn, test_only):
        """kvm_age_hva / kvm_test_age_hva.  The two MMUs may legitimately hold
        different sptes for a gfn (prefetch; a zap that reclaims in batches, or
        that reclaims more), so each side's answer is checked against its own
        sptes of the gfn, read before the call: young exactly when one of them
        has A set, and after a (non-test) age none has."""
        base, n, _, _ = self._slot(slot)
        if not base <= gfn < base + n:
            raise BadOp(f"gfn {gfn:#x} not in memslot {slot}")
        what = f"kvm_{'test_' if test_only else ''}age_hva(gfn {gfn:#x})"
        before = {name: self.accessed_sptes(m.mmu, gfn) for name, m in self.sides.items()}
        frames = {name: spte_first_frames(m.mmu, before[name]) for name, m in self.sides.items()}
        got = self.each(what, lambda m: m.mmu.kvm_age_hva(m.mmu.host.memslots[slot], gfn, test_only))
        for name, m in self.sides.items():
            if got[name] and hasattr(m.mmu, "host_pages"):
                m.mmu.host_pages.young(frames[name])  # the host learned these were used
        for name, m in self.sides.items():
            if bool(got[name]) != bool(before[name]):
                raise Discrepancy("walker return", (
                    f"{what} on {name} returned {got[name]}, but its sptes of the gfn with A set "
                    f"were {[hex(x) for x in before[name]]}"))
            left = self.accessed_sptes(m.mmu, gfn)
            if not test_only and left:
                raise Discrepancy("walker return", f"{what} on {name} left A set in sptes "
                                                   f"{[hex(x) for x in left]}")

    @staticmethod
    def accessed_sptes(mmu, gfn):
        """The sptes in `gfn`'s rmaps (every level) with A set, read without counting."""
        slot = mmu.host.gfn_to_memslot(gfn)
        out = []
        for level in range(1, 4):
            head = slot.rmap[level].get(gfn_to_index(gfn, slot.base_gfn, level))
            for sptep in mmu.rmap.pte_list_decode(head.val)[0] if head is not None else ():
                if mmu.mem.spte_read(sptep) & PT_ACCESSED_MASK:
                    out.append(sptep)
        return out

    def count_large_sptes(self, slot, lo, hi):
        """depth: the impl's large sptes whose frame meets a notifier's range."""
        mmu = self.sides["impl"].mmu
        s = mmu.host.memslots[slot]
        lo, hi = max(lo, s.base_gfn), min(hi, s.base_gfn + s.npages)
        if lo < hi:
            for level in (2, 3):
                heads = s.rmap[level]
                for idx in range(gfn_to_index(lo, s.base_gfn, level), gfn_to_index(hi - 1, s.base_gfn, level) + 1):
                    if idx in heads:
                        self.depth["large sptes under notifier ranges"] += \
                            len(mmu.rmap.pte_list_decode(heads[idx].val)[0])

    def measure_depth(self):
        """depth: the longest rmap chain and the most shadow pages of one gfn (impl),
        and the probe's counts."""
        mmu, d = self.sides["impl"].mmu, self.depth
        longest = max((len(mmu.rmap.pte_list_decode(h.val)[0]) for s in mmu.host.memslots.values()
                       for heads in s.rmap.values() for h in heads.values() if h.val & 1), default=0)
        d["rmap chain"] = max(d["rmap chain"], longest)
        per_gfn = Counter(sp.gfn for sp in mmu.pages.values() if not sp.role.direct)
        d["shadow pages of one gfn"] = max(d["shadow pages of one gfn"], max(per_gfn.values(), default=0))
        d["prefetch windows across a slot edge"] = getattr(mmu, "windows_across_edge", 0)
        d["sptes remapped to another pfn"] = getattr(mmu, "remapped", 0)
        for reason in FLUSH_TARGETS:
            d[f"TLB entries at {reason}"] = getattr(mmu, "flush_effect", {}).get(reason, 0)

    def metrics(self):
        """Summed over runs: zap-all work under mmu_lock (pages visited; the spec
        holds the lock once per zap, the impl once per batch), GET_DIRTY_LOG cost,
        level-1 faults and the sptes their prefetch installed."""
        impl = self.sides["impl"].mmu if self.sides else None
        zaps = {k: [h for z in v for h in z] for k, v in self.holds.items()}
        return {"zap-alls": len(self.holds["impl"]),
                "zap pages visited under mmu_lock (spec)": sum(zaps["spec"]),
                "zap pages visited under mmu_lock (impl)": sum(zaps["impl"]),
                "zap mmu_lock holds (impl)": len(zaps["impl"]),
                "dirty log calls": self.dirty_calls, "dirty gfns reported": self.dirty_reported,
                "dirty gfns reported but not written": self.extra_dirty,
                "level-1 faults": getattr(impl, "prefetch_faults", 0),
                "prefetched sptes": getattr(impl, "prefetched", 0),
                "pages let go after a guest write (impl; host dirty judged)":
                    getattr(getattr(impl, "host_pages", None), "let_go_after_write", 0),
                "faults with an rmap_recycle (prefetch not judged)": getattr(impl, "recycled_faults", 0),
                "paging-off vCPU faults (impl)": getattr(impl, "nonpaging_faults", 0),
                "fast_page_fault fixes (impl)": getattr(impl, "fast_pf_fixes", 0),
                "outcomes from a TLB entry older than the walk (guest-allowed)": self.stale_taken,
                **{f"TLB {k} (impl)": sum(getattr(v.tlb, k) for v in impl.vcpus.values()) if impl else 0
                   for k in ("hits", "fills", "flushes")},
                **{f"depth: {k}": v for k, v in self.depth.items()}}

    # -- oracles ------------------------------------------------------------------
    def check(self):
        if self.sides is None:
            return
        for name, m in self.sides.items():
            om = self.oracles[name].mem
            if m.mem != om:
                a, b = m.mem.snapshot(), om.snapshot()
                gpa = min(g for g in set(a) | set(b) if a.get(g) != b.get(g))
                raise Discrepancy("guest memory", (
                    f"gpa {gpa:#x} (gfn {gpa >> PAGE_SHIFT:#x}): {name} has {a.get(gpa, 0):#010x}, "
                    f"the oracle {b.get(gpa, 0):#010x}"))
        self.check_derived_gfns()
        for name, m in self.sides.items():
            bad = audit(m.mmu, lambda v: probe_cpu(v.guest))
            if bad:
                rule, _, msg = bad[0].partition(": ")[2].partition(": ")
                raise Discrepancy(f"auditor: {rule}", f"{name}: {msg}")
        self.check_host_pages()
        check_variant_invariants(self.sides["impl"].mmu)
        check_variant_invariants(self.sides["impl"].mmu.rmap)
        self.measure_depth()

    def check_host_pages(self):
        """"host dirty" / "host accessed" (diff/hostpages.py): a page KVM let go
        this step that the guest wrote (used) since it was last let go was
        reported to the host with kvm_set_pfn_dirty (accessed) in between."""
        for name, m in self.sides.items():
            ledger = getattr(m.mmu, "host_pages", None)
            bad = ledger.settle(m.mmu) if ledger is not None else []
            if bad:
                raise Discrepancy(bad[0][0], f"{name}: {bad[0][1]}")

    def check_derived_gfns(self):
        """Pair each impl direct page with the spec page created at the same step
        (same serial, role and sp->gfn) and compare gfns entry by entry.  A wrong
        sp->gfn itself is the auditor's cache rule's to see (the TDP identity,
        and the guest walk under shadow paging)."""
        spec, impl = self.sides["spec"].mmu, self.sides["impl"].mmu
        twins = {}
        for sp in impl.pages.values():
            if sp.role.direct:
                twins[sp.serial] = sp
        if not twins:
            return
        for sptep, spte in spec.mem.sptes.items():
            if not spte & PT_PRESENT_MASK:
                continue
            ssp = spec.pages[sptep & ~0xFFF]
            isp = twins.get(ssp.serial)
            if isp is None or (isp.role, isp.gfn) != (ssp.role, ssp.gfn) \
                    or not spec.is_last_spte(spte, ssp.role.level):
                continue  # not the same page (a form that reuses pages creates fewer)
            i = (sptep - ssp.spt) // 8
            d, stored = impl.kvm_mmu_page_get_gfn(isp, i), ssp.gfns[i]
            if d != stored:
                raise Discrepancy("auditor: derived gfn", (
                    f"{isp} index {i}: derived gfn {d:#x}, the spec stored {stored:#x}"))

    @staticmethod
    def describe(op):
        name, a = op
        if name == "access":
            who = "user" if a["user"] else "supervisor"
            if a.get("value") is not None:
                return f"vcpu {a['vcpu']} {who} store {a['value']:#x} ({a['size']} bytes) to {a['addr']:#x}"
            return f"vcpu {a['vcpu']} {who} {a['kind']} {a['addr']:#x}"
        if name == "host_write":
            return f"host writes {a['value']:#x} at gpa {a['gpa']:#x} ({a['size']} bytes)"
        return World.describe(op)


def check_zap_complete(mmu, name, what, base, npages):
    """After a zap-all has run to its end (before the slot goes away):

    zap complete   every page left on active_mmu_pages was created since the
                   zap began, or is an invalid root a vCPU still holds
    deleted slot   no present leaf spte maps a gfn of the slot's old range
    """
    for sp in mmu.active_mmu_pages:
        if sp.epoch != mmu.zap_epoch and not (sp.role.invalid and sp.root_count):
            raise Discrepancy("zap complete", (
                f"{what}: {name} still has {sp} (generation {sp.mmu_valid_gen}, created "
                f"{mmu.zap_epoch - sp.epoch} zap-all(s) ago, root_count {sp.root_count}) on "
                f"active_mmu_pages after the zap ended"))
    for sptep, spte in mmu.mem.sptes.items():
        if not spte & PT_PRESENT_MASK:
            continue
        sp = mmu.page_header(sptep)
        i = (sptep - sp.spt) // 8
        if mmu.is_last_spte(spte, sp.role.level):
            gfn = mmu.kvm_mmu_page_get_gfn(sp, i)
            if base <= gfn < base + npages:
                raise Discrepancy("deleted slot", (
                    f"{what}: {name}'s {sp} entry {i} still maps gfn {gfn:#x} of the slot's "
                    f"old range {base:#x}+{npages:#x}"))



def make_world(impl_cls, mode):
    return MmuWorld(impl_cls, mode)


# -- the state machine ----------------------------------------------------------------
TABLE_GFNS = tuple(range(0x10, 0x20))   # where guest tables live (identity mapped)
DATA_GFNS_LOW = (0, 0x800)               # gfns data entries point at (some beyond the slots)
DATA_GFNS_HIGH = (0x40200, 0x40400)      # the second GB's slot: pages under a non-first 2MB frame
HIGH_SLOT_BASES = (0x40200, 0x40600)
TLB_CAPACITIES = (1, 4, TLB_CAPACITY)
# rmap_recycle thresholds the machine draws.  Small ones make recycling common;
# none is below the prefetch window: a fault's prefetch can add up to
# PTE_PREFETCH_NUM - 1 aliases of its leaf's gfn, and a threshold under that
# would recycle the leaf on every retry (a livelock the kernel's 1000 cannot have).
RECYCLE_THRESHOLDS = (PTE_PREFETCH_NUM, 2 * PTE_PREFETCH_NUM, RMAP_RECYCLE_THRESHOLD)
# The flushes (and flush-deciding moments) whose effect the search steers toward:
# where a missing flush would leave an entry behind.
FLUSH_TARGETS = ("kvm_mmu_commit_zap_page", "kvm_vm_ioctl_get_dirty_log",
                 "kvm_mmu_notifier_invalidate_range_start",
                 "writable TLB entries of a gfn KVM starts shadowing",
                 "other vCPUs' TLB entries through a page the guest writes")    # entries per vCPU TLB (small ones evict often)
EDGE_SLOT_BASE = 0x500                   # the setup's slot with unaligned edges, in 0x501..0x53f
HIGH_GVA = (1 << 30) | (2 << 20)        # a 64-bit guest maps it to gfn 0x40200 with a 2MB page


def swarm(group):
    """Swarm testing (Groce et al., ISSTA 2012): each example enables a random
    subset of the rule groups (drawn at setup), so a run of 100 steps goes
    deep in a few features instead of wide in all.  A rule of `group` runs
    only in the examples that enable it."""
    return precondition(lambda self: group in self.swarm)


def not_changing(self):
    """Ops that take slots_lock wait while a memslot change is in its lock breaks."""
    return self.world.pending_change is None


class MmuMachine(DiffMachine):
    """VMs with vCPUs, guest page-table edits (as guest stores), accesses and host operations."""

    zap_batches = (BATCH_ZAP_PAGES,)  # the zap family draws smaller lock-break batches too
    # The VM types of mixed mode, in draw order (Hypothesis draws the first one more
    # often than the others: about a third of the examples, the others a fifth each).
    MIXED_VMS = MODES[1:]
    # Rule groups swarm testing turns on and off per example (access and edit_pte always run).
    SWARM_GROUPS = ("pte_run", "cr3", "control", "vcpus", "memslots", "dirty_log", "host_mm", "remap",
                    "tlb", "patterns")

    def change_pending(self):
        return self.world.pending_change is not None

    def draw_swarm(self, data):
        return {g for g in self.SWARM_GROUPS if data.draw(st.booleans(), label=f"swarm {g}")}

    def teardown(self):
        """Steer the search (hypothesis.target) toward deep states: long rmap
        chains, many shadow pages of one gfn, large sptes under notifier
        ranges, prefetch windows that cross a slot's edge, sptes remapped to
        another pfn (World.depth: maxima and counts over the run)."""
        for label, value in sorted(self.world.depth.items()):
            target(float(value), label=label)
        super().teardown()

    @initialize(data=st.data())
    def setup(self, data):
        self.swarm = self.draw_swarm(data)
        self.last_table = None  # the table the guest linked or edited last
        self.touched = []  # gfns the guest's accesses completed on (the host ops pick from them)
        self.touched_at = {}  # gfn -> an address whose access completed on it
        self.touched_by = {}  # gfn -> the vCPU whose access completed on it last
        mode = self.world.mode
        # mixed: each example is a TDP VM or a shadow VM (a VM is one or the other),
        # and a shadow VM gains vCPUs of the other guest modes as it runs.
        vmode = data.draw(st.sampled_from(self.MIXED_VMS)) if mode == "mixed" else mode
        self.vmode = vmode
        setup = {"pte_list_ext": data.draw(st.sampled_from(PTE_LIST_EXT_CHOICES)),
                 "tlb_capacity": data.draw(st.sampled_from(TLB_CAPACITIES)),
                 # small thresholds make rmap_recycle common (the kernel's is 1000)
                 "rmap_recycle_threshold": data.draw(st.sampled_from(RECYCLE_THRESHOLDS))}
        if len(self.zap_batches) > 1:
            setup["zap_batch"] = data.draw(st.sampled_from(self.zap_batches))
        # A careful guest invalidates after each of its pte edits (INVLPG of the
        # address, or a CR3 reload on every vCPU for a non-leaf entry), as a
        # correct guest kernel does; a careless one leaves stale translations
        # that the architecture lets the TLBs keep using.
        self.careful = data.draw(st.booleans(), label="careful guest")
        # How a careful guest drops a leaf it changed: INVLPG of the address
        # (Linux's flush_tlb_one), or a CR3 reload (a full flush, as Linux does
        # past a threshold of pages): the second is what kvm_mmu_sync_roots serves.
        self.leaf_by_cr3 = data.draw(st.sampled_from([False, False, False, True]),
                                     label="careful guest flushes leaves by CR3 (1 in 4)")
        self.emit(["vm_setup", setup])
        host_level = data.draw(st.sampled_from([1, 2]))
        self.emit(["memslot_create", {"slot": 0, "base_gfn": 0, "npages": 0x400, "readonly": False,
                                      "dirty_log": False, "host_level": host_level}])
        # A second slot in the second GB, starting at its second 2MB frame: the first
        # fault there creates the GB's level-2 direct page from a non-first frame.
        self.emit(["memslot_create", {"slot": 1, "base_gfn": HIGH_SLOT_BASES[0], "npages": 0x200,
                                      "readonly": False, "dirty_log": False,
                                      "host_level": data.draw(st.sampled_from([1, 2]))}])
        # A third slot whose edges are off the 8-aligned prefetch windows (and off
        # large frames): windows that cross a memslot's edge are routine.
        skew, trim = data.draw(st.integers(1, 7)), data.draw(st.integers(1, 7))
        self.emit(["memslot_create", {"slot": 2, "base_gfn": EDGE_SLOT_BASE + skew,
                                      "npages": 0x40 - skew - trim, "readonly": False,
                                      "dirty_log": False, "host_level": 1}])
        self.gmode = PAGING_64 if vmode == "tdp" else GUEST_MODE[vmode]
        self.size = 4 if self.gmode == PAGING_32 else 8
        # Identity-map gva 0..2MB (4MB for 32-bit) with writable user pages so the guest
        # can store to its own tables; root at TABLE_GFNS[0].
        self.roots = [TABLE_GFNS[0]]
        self.tables = list(TABLE_GFNS)
        for w in self.identity_map(TABLE_GFNS[0]):
            self.emit(["host_write", w])
        self.emit(["vcpu_create", {"vcpu": 0, "mode": vmode, "cr3": TABLE_GFNS[0] << PAGE_SHIFT,
                                   "cr0_wp": data.draw(st.booleans()), "cr4_pse": True,
                                   "efer_nx": data.draw(st.booleans())}])
        self.vcpus = [0]
        self.smp = [0]  # the vCPUs that run the guest's own paging mode on its root
        self.nonpaging = set()  # the vCPUs with paging off (mixed mode's shadow VMs)
        self.addrs = [0x1000 * g for g in TABLE_GFNS]
        root_level = {PAGING_64: 4, PAGING_PAE: 2, PAGING_32: 2}[self.gmode]
        self.table_at = {TABLE_GFNS[0]: (root_level, 0)}  # table gfn -> (level, base address)
        chain = TABLE_GFNS[1:4] if self.gmode == PAGING_64 else TABLE_GFNS[2:3] \
            if self.gmode == PAGING_PAE else TABLE_GFNS[1:2]
        for k, t in enumerate(chain):
            lvl = (3 - k) if self.gmode == PAGING_64 else 1
            self.table_at[t] = (lvl, 0)
        self.identity_pt = chain[-1]  # the level-1 table of the identity map
        if self.gmode == PAGING_PAE:
            self.table_at.pop(TABLE_GFNS[0])  # the PDPT is only read at CR3 load
            self.table_at[TABLE_GFNS[1]] = (2, 0)
        if self.gmode == PAGING_64:
            # The second GB: gva 1GB+2MB maps slot 1's first frame (gfn 0x40200) with a
            # 2MB guest page, as a guest with more than 1GB of memory does; the page
            # directory holding it is TABLE_GFNS[4].
            self.table_at[TABLE_GFNS[4]] = (2, 1 << 30)
            self.addrs += [HIGH_GVA, HIGH_GVA + 0x1000 * (1 + data.draw(st.integers(0, 510)))]

    def entry(self, gfn, flags):
        return (gfn << PAGE_SHIFT) | flags

    def identity_map(self, root):
        """Host writes building root -> ... -> a page table mapping gfns 0..511 at gva 0."""
        P = PT_PRESENT_MASK | PT_WRITABLE_MASK | PT_USER_MASK
        size = self.size
        t = iter(TABLE_GFNS[1:])
        writes = []
        if self.gmode == PAGING_64:
            l3, l2, l1 = next(t), next(t), next(t)
            writes += [(root, 0, l3), (l3, 0, l2), (l2, 0, l1)]
        elif self.gmode == PAGING_PAE:
            l2, l1 = next(t), next(t)
            writes += [(root, 0, l2 | (1 << 60)), (l2, 0, l1)]  # PDPTE: present only
        else:
            l1 = next(t)
            writes += [(root, 0, l1)]
        out = []
        for table, idx, target in writes:
            flags = PT_PRESENT_MASK if target >> 60 else P
            out.append({"gpa": (table << PAGE_SHIFT) + idx * size, "size": size,
                        "value": self.entry(target & 0xFFFFF, flags)})
        for g in range(0, 0x40):
            out.append({"gpa": (l1 << PAGE_SHIFT) + g * size, "size": size,
                        "value": self.entry(g, P)})
        if self.gmode == PAGING_64:  # PDPT[1] -> PD TABLE_GFNS[4]; PD[1] -> 2MB page at gfn 0x40200
            pd = TABLE_GFNS[4]
            out.append({"gpa": (TABLE_GFNS[1] << PAGE_SHIFT) + 8, "size": 8, "value": self.entry(pd, P)})
            out.append({"gpa": (pd << PAGE_SHIFT) + 8, "size": 8,
                        "value": self.entry(HIGH_SLOT_BASES[0], P | PT_PAGE_SIZE_MASK)})
        return out

    def level_shift(self, level):
        bits = 10 if self.size == 4 else 9
        return PAGE_SHIFT + bits * (level - 1)

    @rule(pick=st.integers(0, 1 << 16), index=st.integers(0, 1023), dest=st.integers(0, 1 << 16),
          flags=st.sets(st.sampled_from(["W", "U", "A", "D", "PS", "NX", "notP", "table", "high",
                                         "edge"])),
          user=st.booleans(), then=st.lists(st.tuples(st.sampled_from(ACCESS_KINDS), st.booleans(),
                                                       st.booleans()), max_size=2),
          recent=st.booleans())
    def edit_pte(self, pick, index, dest, flags, user, then, recent):
        """A guest store of a page-table entry into one of its tables (via the identity map).

        The machine knows the level and base address of the tables it linked,
        so the entry it writes comes with the address whose walk uses it.
        `recent`: the table last linked or edited (a guest filling in a new
        page table: its first stores are plain data writes, then it is
        shadowed, then stored to again).
        """
        known = sorted(self.table_at)
        table = self.last_table if recent and self.last_table in self.table_at else known[pick % len(known)]
        level, base = self.table_at[table]
        if not ("table" in flags and level > 1):
            self.last_table = table
        index %= (1024 if self.size == 4 else 512)
        shift = self.level_shift(level)
        gva = base | (index << shift)
        large = "PS" in flags and level in self.large_levels()
        if "table" in flags and level > 1 and not large:
            dest = self.tables[dest % len(self.tables)]
            self.table_at.setdefault(dest, (level - 1, gva))
            self.last_table = dest
        else:
            span = 1 << (shift - PAGE_SHIFT)
            pool = DATA_GFNS_HIGH if "high" in flags else DATA_GFNS_LOW
            dest = pool[0] + (dest * span) % (pool[1] - pool[0])
            dest &= ~(span - 1)
            if "edge" in flags and span == 1:  # a page by a memslot's edge: windows cross it
                dest = self.near_slot_edge(dest)
        v = self.entry(dest, 0 if "notP" in flags else PT_PRESENT_MASK)
        for f, m in (("W", PT_WRITABLE_MASK), ("U", PT_USER_MASK), ("A", PT_ACCESSED_MASK),
                     ("D", PT_DIRTY_MASK)):
            if f in flags:
                v |= m
        if "PS" in flags and (large or level > 1):
            v |= PT_PAGE_SIZE_MASK
        if "NX" in flags and self.size == 8:
            v |= PT64_NX_MASK
        was = self.store(self.vcpus[pick % len(self.vcpus)], table, index, v, user)
        self.addrs.append(gva)
        if large or level > 1:
            self.addrs.append(gva | (1 << (shift - 1)))  # the upper half of a large page
        self.invalidate_after_edit(gva, leaf=level == 1 or large, was=was)
        for kind, upper, as_user in then:  # use the new entry at once
            self.emit_access(self.vcpus[pick % len(self.vcpus)], self.addrs[-1] if upper else gva,
                             kind, as_user)

    @swarm("pte_run")
    @rule(pick=st.integers(0, 1 << 16), index=st.integers(0, 1023), dest=st.integers(0, 1 << 16),
          count=st.integers(2, 8), flags=st.sets(st.sampled_from(["W", "D", "U", "noA", "noslot",
                                                                    "alias", "edge"])),
          kind=st.sampled_from(ACCESS_KINDS))
    def edit_pte_run(self, pick, index, dest, count, flags, kind):
        """Guest stores of `count` neighbouring ptes of a level-1 table (consecutive
        gfns, A set unless noA), then an access through the first: the fault's
        prefetch window holds guest ptes it may map (prefetch issue).

        With "alias", every pte maps the same gfn and each is accessed: that
        gfn's rmap grows to a pte_list of several descriptors (later edits of
        these ptes remove sptes from any descriptor of it)."""
        level1 = sorted(t for t, (lvl, _) in self.table_at.items() if lvl == 1)
        if not level1:
            return
        table = level1[pick % len(level1)]
        base = self.table_at[table][1]
        entries = 1024 if self.size == 4 else 512
        index %= entries
        count = min(count, entries - index)
        slots = sorted(self.world.oracle.slots.values())
        if "noslot" in flags:   # past every memslot: MMIO for the fault, a stop for prefetch
            dest = max(b + n for b, n, _, _ in slots) + dest % 16
        elif "edge" in flags:   # ending by a memslot's edge: its windows cross it
            dest = max(self.near_slot_edge(dest) - count + 1, 0)
        else:                   # inside a memslot (read-only, dirty-logged, ...); the run may
            base_gfn, npages, _, _ = slots[dest % len(slots)]   # pass its end
            dest = base_gfn + (dest >> 4) % npages
        v = PT_PRESENT_MASK | (0 if "noA" in flags else PT_ACCESSED_MASK)
        for f, m in (("W", PT_WRITABLE_MASK), ("U", PT_USER_MASK), ("D", PT_DIRTY_MASK)):
            if f in flags:
                v |= m
        vcpu = self.vcpus[pick % len(self.vcpus)]
        alias = "alias" in flags
        gva = base | (index << PAGE_SHIFT)
        for k in range(count):
            was = self.store(vcpu, table, index + k, self.entry(dest + (0 if alias else k), v))
            self.invalidate_after_edit(gva + (k << PAGE_SHIFT), leaf=True, was=was)
        self.addrs.append(gva)
        for k in range(count if alias else 1):
            self.emit_access(vcpu, gva + (k << PAGE_SHIFT), kind, "U" in flags)

    def store(self, vcpu, table, index, value, user=False):
        """The guest stores entry `index` of page table `table` through the identity
        map (a pte store: the only stores the machine makes).  Returns the old
        entry (what a careful guest looks at to decide on an invalidation)."""
        gpa = (table << PAGE_SHIFT) + index * self.size
        old = self.world.oracle.mem.read(gpa, self.size)
        self.emit(["access", {"vcpu": vcpu, "addr": gpa, "kind": WRITE, "user": user,
                              "value": value, "size": self.size}])
        return old

    def invalidate_after_edit(self, gva, leaf, was):
        """A careful guest's invalidation after changing a present entry (`was`,
        the old value) that maps `gva`: INVLPG on every vCPU for a leaf (or a
        CR3 reload, for a guest that flushes leaves that way: leaf_by_cr3), a
        CR3 reload on every vCPU otherwise.  A new entry (the old one not
        present) needs none (SDM 4.10.4.3), and a guest kernel makes none."""
        if not self.careful or not was & PT_PRESENT_MASK:
            return
        for v in self.vcpus:
            if v in self.nonpaging:
                continue  # paging off: the guest's tables translate nothing for it
            if leaf and not self.leaf_by_cr3:
                self.emit(["invlpg", {"vcpu": v, "addr": gva}])
            else:
                self.emit(["set_cr3", {"vcpu": v, "cr3": self.world.oracle.cpus[v].cr3}])

    # -- patterns: a guest kernel's page-table life cycle, step by step ---------------
    def has_pair(self):
        """The SMP patterns need two vCPUs of the guest's mode on its root."""
        return len(self.smp) > 1

    def smp_pair(self, pick):
        """Two vCPUs (a, b) of the guest's mode on its root, for a pattern where
        one vCPU's TLB outlives another's edit."""
        return self.smp[pick % len(self.smp)], self.smp[(pick + 1) % len(self.smp)]

    def identity_path(self):
        """The tables the identity map walks through (the root and its chain)."""
        return {t for t, (lvl, base) in self.table_at.items() if base == 0}

    def data_pte(self, gfn):
        return self.entry(gfn, PT_PRESENT_MASK | PT_WRITABLE_MASK | PT_USER_MASK | PT_ACCESSED_MASK
                          | PT_DIRTY_MASK)

    @swarm("patterns")
    @rule(pick=st.integers(0, 1 << 16), slot=st.integers(1, 1023), j=st.integers(0, 1023),
          k=st.integers(0, 1023), data=st.integers(0x20, 0x3F), vpick=st.integers(0, 3),
          kind=st.sampled_from(ACCESS_KINDS))
    def fill_new_table(self, pick, slot, j, k, data, vpick, kind):
        """The guest builds a new page table: it links a page it never used as one
        under a level-2 table, stores an entry into it (a plain data write: KVM
        does not shadow the page yet), uses the entry (KVM shadows the page and
        write-protects it), then stores another entry (this store must trap)."""
        free = [t for t in self.tables if t not in self.table_at]
        l2 = sorted(t for t, (lvl, _) in self.table_at.items() if lvl == 2)
        if not free or not l2:
            return
        table, parent = free[pick % len(free)], l2[pick % len(l2)]
        entries = 1024 if self.size == 4 else 512
        slot %= entries
        base = self.table_at[parent][1] | (slot << self.level_shift(2))
        if self.world.oracle.mem.read((parent << PAGE_SHIFT) + slot * self.size, self.size) & PT_PRESENT_MASK:
            return  # in use: a guest links a new table into an empty slot
        v = self.vcpus[vpick % len(self.vcpus)]
        self.table_at[table] = (1, base)
        self.last_table = table
        self.store(v, parent, slot, self.entry(table, PT_PRESENT_MASK | PT_WRITABLE_MASK
                                                | PT_USER_MASK | PT_ACCESSED_MASK))
        j, k = j % entries, k % entries
        self.store(v, table, j, self.data_pte(data))
        self.emit_access(v, base | (j << PAGE_SHIFT), kind, False)
        self.store(v, table, k, self.data_pte(data + 1))
        self.emit_access(v, base | (k << PAGE_SHIFT), kind, False)
        self.addrs += [base | (j << PAGE_SHIFT), base | (k << PAGE_SHIFT)]

    @swarm("patterns")
    @precondition(lambda self: bool(self.nonpaging))
    @rule(pick=st.integers(0, 1 << 16), slot=st.integers(1, 1023), j=st.integers(0, 1023),
          data=st.integers(0x20, 0x3F), dirty=st.booleans())
    def paging_off_store_to_a_new_table(self, pick, slot, j, data, dirty):
        """A vCPU with paging off (KVM maps it directly) stores into a page; a
        paging vCPU links the page as a page table and uses it, so
        kvm_mmu_get_page() write-protects its gfn for shadowing (pt_protect:
        SPTE_MMU_WRITEABLE leaves the direct spte too); the paging-off vCPU
        stores again: fast_page_fault must leave that to the slow path (which
        unsyncs the table or emulates).  `dirty`: GET_DIRTY_LOG in between, if
        the page's slot logs (the spte is read-only, still MMU-writable,
        before the shadowing)."""
        free = [t for t in self.tables if t not in self.table_at]
        l2 = sorted(t for t, (lvl, _) in self.table_at.items() if lvl == 2)
        if not free or not l2:
            return
        table, parent = free[pick % len(free)], l2[pick % len(l2)]
        entries = 1024 if self.size == 4 else 512
        slot %= entries
        if self.world.oracle.mem.read((parent << PAGE_SHIFT) + slot * self.size, self.size) & PT_PRESENT_MASK:
            return
        off = sorted(self.nonpaging)[pick % len(self.nonpaging)]
        v = self.smp[pick % len(self.smp)]
        base = self.table_at[parent][1] | (slot << self.level_shift(2))
        j %= entries
        self.store(off, table, j, self.data_pte(data))             # a data page, written directly
        sid = self.world.oracle.slot_of(table)
        if dirty and sid is not None and self.world.oracle.slots[sid][3] and not self.change_pending():
            self.emit(["get_dirty_log", {"slot": sid}])
        self.table_at[table] = (1, base)
        self.store(v, parent, slot, self.entry(table, PT_PRESENT_MASK | PT_WRITABLE_MASK
                                                | PT_USER_MASK | PT_ACCESSED_MASK))
        self.emit_access(v, base | (j << PAGE_SHIFT), READ, False)   # now a shadowed table
        self.store(off, table, (j + 1) % entries, self.data_pte(data + 1))
        self.addrs.append(base | (j << PAGE_SHIFT))

    @swarm("patterns")
    @rule(pick=st.integers(0, 1 << 16), entries=st.lists(st.integers(0, 1023), min_size=3,
                                                          max_size=3, unique=True),
          vpick=st.integers(0, 3))
    def flood_table(self, pick, entries, vpick):
        """The guest stores into a level-2 table three times while a translation
        through it is in use, and no fault walks through the table in between:
        KVM's write-flooding heuristic zaps its shadow page (3.10)."""
        l2 = sorted(t for t, (lvl, _) in self.table_at.items()
                    if lvl == 2 and t not in self.identity_path())
        if not l2:
            return
        table = l2[pick % len(l2)]
        level, base = self.table_at[table]
        span = 1 << (self.level_shift(level) + (10 if self.size == 4 else 9))
        through = [a for a in self.addrs if base <= a < base + span]
        if not through:
            return
        x = through[pick % len(through)]
        v = self.vcpus[vpick % len(self.vcpus)]
        self.emit_access(v, x, READ, False)
        n = 1024 if self.size == 4 else 512
        for e in entries:
            e %= n
            if self.world.oracle.mem.read((table << PAGE_SHIFT) + e * self.size, self.size) & PT_PRESENT_MASK:
                continue  # only empty entries: the translation in use stays as it is
            self.store(v, table, e, 0)
            self.emit_access(v, x, READ, False)

    @swarm("patterns")
    @precondition(lambda self: self.gmode == PAGING_64)
    @rule(pick=st.integers(0, 1 << 16), first=st.integers(0, 511),
          frame=st.sampled_from([0, 0x200, HIGH_SLOT_BASES[0]]), user=st.booleans())
    def map_huge_pages(self, pick, first, frame, user):
        """A 64-bit guest maps 2MB pages into three empty entries of a page
        directory (a huge-page mmap: set_pmd, no invalidation for a new entry)
        while another vCPU (or the same one) keeps using a translation through
        the directory, from its TLB: no fault walks through the directory
        between the stores, so KVM's write-flooding heuristic zaps its shadow
        page at the third emulated store (3.10) and kvm_mmu_commit_zap_page
        frees it; then the guest uses the new pages."""
        l2 = sorted(t for t, (lvl, _) in self.table_at.items()
                    if lvl == 2 and t not in self.identity_path())
        if not l2:
            return
        table = l2[pick % len(l2)]
        base = self.table_at[table][1]
        through = [a for a in self.addrs if base <= a < base + (1 << (self.level_shift(2) + 9))]
        empty = [e % 512 for e in range(first, first + 512) if not self.world.oracle.mem.read(
            (table << PAGE_SHIFT) + (e % 512) * 8, 8) & PT_PRESENT_MASK][:3]
        if not through or len(empty) < 3:
            return
        x = through[pick % len(through)]
        a, b = self.smp[pick % len(self.smp)], self.smp[(pick + 1) % len(self.smp)]
        huge = PT_PRESENT_MASK | PT_WRITABLE_MASK | PT_USER_MASK | PT_ACCESSED_MASK | PT_PAGE_SIZE_MASK
        self.emit_access(b, x, READ, False)
        for e in empty:
            was = self.store(a, table, e, self.entry(frame, huge))
            self.invalidate_after_edit(base | (e << self.level_shift(2)), leaf=True, was=was)
            self.emit_access(b, x, READ, False)
        gva = base | (empty[0] << self.level_shift(2))
        self.emit_access(a, gva, READ, user)
        self.addrs.append(gva)

    @swarm("patterns")
    @precondition(lambda self: self.has_pair())
    @rule(pick=st.integers(0, 1 << 16), k=st.integers(0x40, 0x1FF), j=st.integers(0, 511),
          data=st.integers(0x20, 0x3F), slot=st.integers(1, 511))
    def reuse_alias_as_table(self, pick, k, j, data, slot):
        """A page in use as data by one vCPU (through an alias) is unmapped by
        another and reused as a page table: the unmapping's flush must reach the
        first vCPU, or its TLB still writes the page after KVM shadows it."""
        free = [t for t in self.tables if t not in self.table_at]
        l1 = self.identity_pt
        l2 = sorted(t for t, (lvl, _) in self.table_at.items() if lvl == 2)
        if not free or not l2:
            return
        table, parent = free[pick % len(free)], l2[pick % len(l2)]
        a, b = self.smp_pair(pick)
        base = self.table_at[parent][1] | (slot << self.level_shift(2))
        if self.world.oracle.mem.read((parent << PAGE_SHIFT) + slot * self.size, self.size) & PT_PRESENT_MASK:
            return
        alias = k << PAGE_SHIFT
        self.store(a, l1, k, self.data_pte(table))                # map the page at `alias`
        self.emit(["access", {"vcpu": a, "addr": alias + j * self.size, "kind": WRITE,
                              "user": False, "value": self.data_pte(data), "size": self.size}])
        self.emit_access(b, alias, WRITE, False)                  # b caches it writable
        was = self.store(a, l1, k, 0)                             # a unmaps it
        self.invalidate_after_edit(alias, leaf=True, was=was)
        self.table_at[table] = (1, base)
        self.store(a, parent, slot, self.entry(table, PT_PRESENT_MASK | PT_WRITABLE_MASK
                                                | PT_USER_MASK | PT_ACCESSED_MASK))
        self.emit_access(a, base | ((j % (1024 if self.size == 4 else 512)) << PAGE_SHIFT), READ, False)
        self.emit_access(b, alias, WRITE, False)                  # b's next store there

    @swarm("patterns")
    @precondition(lambda self: self.has_pair())
    @rule(pick=st.integers(0, 1 << 16), k=st.integers(0x40, 0x1FF), j=st.integers(0, 511),
          data=st.integers(0x20, 0x3F), slot=st.integers(1, 511), clear=st.booleans(),
          invlpg=st.booleans())
    def retarget_unsync_then_reuse(self, pick, k, j, data, slot, clear, invlpg):
        """The life of f81602958c11.  Another vCPU (b) writes a page G through an
        alias in the identity page table T.  One vCPU (a) retargets (or clears)
        the alias: the store faults once and T goes unsync, so the spte of G
        stays.  a links T at a second place and uses it: kvm_mmu_get_page()
        meets T's unsync page and syncs it (kvm_sync_page_transient), which
        drops the spte of G.  a reuses G as a page table and b stores through
        its alias.  Only a remote flush at the sync's drop stops b's TLB from
        writing G after KVM shadows it: 3.10 counted the drop in tlbs_dirty, and
        kvm_mmu_get_page's rmap_write_protect(G) found nothing left to flush.
        (A CR3 load would not do: mmu_sync_children write-protects T first, and
        that flush reaches b.)  With `invlpg`, a syncs T's leaf by an INVLPG of
        the alias instead (FNAME(invlpg) zaps the unsync leaf's spte): only a
        flush that covers G, not T (1b2dc7360463's range from sp->gfn), stops
        b's TLB."""
        l1 = self.identity_pt
        l2 = sorted(t for t, (lvl, _) in self.table_at.items() if lvl == 2)
        free = [t for t in self.tables if t not in self.table_at and t != l1]
        if not free or not l2:
            return
        table, parent = free[pick % len(free)], l2[pick % len(l2)]
        a, b = self.smp_pair(pick)
        n = 1024 if self.size == 4 else 512
        slots = [(slot + d) % n or 1 for d in (0, 1)]
        if slots[0] == slots[1] or any(
                self.world.oracle.mem.read((parent << PAGE_SHIFT) + s * self.size, self.size)
                & PT_PRESENT_MASK for s in slots):
            return
        again, reuse = (self.table_at[parent][1] | (s << self.level_shift(2)) for s in slots)
        link = PT_PRESENT_MASK | PT_WRITABLE_MASK | PT_USER_MASK | PT_ACCESSED_MASK
        alias, j = k << PAGE_SHIFT, j % n
        self.store(a, l1, k, self.data_pte(table))                 # map G at `alias`
        self.emit(["access", {"vcpu": b, "addr": alias + j * self.size, "kind": WRITE,
                              "user": False, "value": self.data_pte(data), "size": self.size}])
        self.store(a, l1, k, 0 if clear else self.data_pte(data))  # T goes unsync
        self.table_at[table] = (1, reuse)
        if invlpg:
            self.emit(["invlpg", {"vcpu": a, "addr": alias}])      # FNAME(invlpg) zaps G's spte
        else:
            self.store(a, parent, slots[0], self.entry(l1, link))  # T linked again ...
            self.emit_access(a, again, READ, False)                # ... and synced there
        self.store(a, parent, slots[1], self.entry(table, link))   # G reused as a table
        self.emit_access(a, reuse | (j << PAGE_SHIFT), READ, False)
        self.emit(["access", {"vcpu": b, "addr": alias + j * self.size, "kind": WRITE,
                              "user": False, "value": self.data_pte(data ^ 1), "size": self.size}])
        self.emit(["invlpg", {"vcpu": a, "addr": reuse | (j << PAGE_SHIFT)}])
        self.emit_access(a, reuse | (j << PAGE_SHIFT), READ, False)
        self.addrs += [alias, reuse | (j << PAGE_SHIFT)]

    @swarm("patterns")
    @precondition(lambda self: self.has_pair())
    @rule(pick=st.integers(0, 1 << 16), k=st.integers(0x40, 0x1FF), j=st.integers(0, 511),
          data=st.integers(0x20, 0x3F), slot=st.integers(1, 511), clear=st.booleans())
    def invlpg_alias_then_reuse(self, pick, k, j, data, slot, clear):
        """retarget_unsync_then_reuse's INVLPG form, a rule of its own: the guest
        changes the pte of the alias and invalidates it with INVLPG on the
        vCPU that changed it (Linux's flush_tlb_one), which reaches
        FNAME(invlpg) of the unsync leaf; then G becomes a page table.  (As a
        flag of that rule, this form was drawn in one half of its firings.)"""
        self.retarget_unsync_then_reuse(pick=pick, k=k, j=j, data=data, slot=slot, clear=clear, invlpg=True)

    def two_level_alias(self, pick, k, slot, gfn):
        """The set-up of the patterns of a page directory that is also a page table
        (it links itself, as a guest's self-map does), so its gfn has shadow
        pages at levels 2 and 1 and every store to it traps, unsync or not
        (mmu_need_write_protect): entry k of the directory, used as a pte,
        maps the page `gfn` (G).
        Returns (a, b, parent, k, reuse, G, alias, base, n) or None when the
        entries are taken; `reuse` is a third free entry of the directory."""
        l2 = sorted(t for t, (lvl, _) in self.table_at.items() if lvl == 2)
        if not l2:
            return None
        parent = l2[pick % len(l2)]
        n = 1024 if self.size == 4 else 512
        self_link, k, reuse = slot % n or 1, k % n or 2, (slot + 1 + k) % n or 3
        if len({self_link, k, reuse}) < 3 or any(
                self.world.oracle.mem.read((parent << PAGE_SHIFT) + s * self.size, self.size)
                & PT_PRESENT_MASK for s in (self_link, k, reuse)):
            return None
        a, b = self.smp_pair(pick)
        base = self.table_at[parent][1]
        alias = base | (self_link << self.level_shift(2)) | (k << PAGE_SHIFT)
        link = PT_PRESENT_MASK | PT_WRITABLE_MASK | PT_USER_MASK | PT_ACCESSED_MASK
        self.store(a, parent, self_link, self.entry(parent, link))
        self.store(a, parent, k, self.data_pte(gfn))
        return a, b, parent, k, reuse, gfn, alias, base, n

    @swarm("patterns")
    @precondition(lambda self: self.has_pair())
    @rule(pick=st.integers(0, 1 << 16), k=st.integers(1, 1023), j=st.integers(0, 511),
          data=st.integers(0x20, 0x3F), slot=st.integers(1, 1023))
    def pte_write_in_a_table_of_two_levels(self, pick, k, j, data, slot):
        """In a directory that is also a page table (two_level_alias), vCPU b
        writes a page G through the directory's entry k, used as a pte; vCPU a
        clears that entry: kvm_mmu_pte_write() zaps the level-1 spte, and
        need_remote_flush() asks for a flush of every vCPU.  a then links G as
        a page table and uses it: kvm_mmu_get_page()'s rmap_write_protect(G)
        finds no spte left to flush.  b stores again through its TLB: only the
        remote flush kept that store from reaching a page table KVM
        write-protects."""
        free = [t for t in self.tables if t not in self.table_at]
        table = free[data % len(free)] if free else None   # G: a page the guest frees, then
        got = self.two_level_alias(pick, k, slot, data if table is None else table)  # takes for a table
        if got is None:
            return
        a, b, parent, k, reuse, gfn, alias, base, n = got
        link = PT_PRESENT_MASK | PT_WRITABLE_MASK | PT_USER_MASK | PT_ACCESSED_MASK
        self.emit(["access", {"vcpu": b, "addr": alias + (j % n) * self.size, "kind": WRITE,
                              "user": False, "value": self.data_pte(data), "size": self.size}])
        self.store(a, parent, k, 0)                                  # need_remote_flush
        self.store(a, parent, reuse, self.entry(gfn, link))          # G becomes a table
        at = base | (reuse << self.level_shift(2))
        if table is not None:
            self.table_at[gfn] = (1, at)
        self.emit_access(a, at | ((j % n) << PAGE_SHIFT), READ, False)
        self.emit(["access", {"vcpu": b, "addr": alias + (j % n) * self.size, "kind": WRITE,
                              "user": False, "value": self.data_pte(data), "size": self.size}])
        self.addrs += [alias, at | ((j % n) << PAGE_SHIFT)]

    @swarm("patterns")
    @precondition(lambda self: self.has_pair())
    @rule(pick=st.integers(0, 1 << 16), k=st.integers(1, 1023), data=st.integers(0x20, 0x3F),
          slot=st.integers(1, 1023), how=st.sampled_from(["unmap", "change_pte"]),
          clear=st.booleans())
    def pte_write_then_host_unmaps(self, pick, k, data, slot, how, clear):
        """The window between a guest's pte edit and its own TLB shootdown, which
        the host does not see.  In a self-mapped directory (two_level_alias),
        vCPU b writes a data page G through entry k; vCPU a clears or retargets
        the entry (kvm_mmu_pte_write() zaps b's spte; need_remote_flush() asks
        for a flush of every vCPU).  Before the guest's shootdown reaches b
        (architecturally b may still use its TLB entry), the host takes G's
        page away (swap-out, migration, or a KSM merge: change_pte): the MMU
        notifier finds no spte of G and so does not flush.  b writes G again:
        only the pte write's remote flush kept that write out of the page the
        host took.  Then the shootdown.  (A GET_DIRTY_LOG in the window would
        not show it: 3.10 flushes whenever a page was dirty.)"""
        got = self.two_level_alias(pick, k, slot, data)
        if got is None:
            return
        a, b, parent, k, reuse, gfn, alias, base, n = got
        sid = self.world.oracle.slot_of(gfn)
        if sid is None:
            return
        self.emit_access(b, alias, WRITE, False)                    # b's TLB: alias -> G, writable
        was = self.store(a, parent, k, 0 if clear else self.data_pte(data ^ 1))
        if how == "unmap":
            self.emit(["unmap_hva_range", {"slot": sid, "gfn": gfn, "npages": 1}])
        else:
            self.emit(["change_pte", {"slot": sid, "gfn": gfn}])
        self.emit_access(b, alias, WRITE, False)                    # before the shootdown
        self.invalidate_after_edit(alias, leaf=True, was=was)      # the shootdown
        self.addrs.append(alias)

    @swarm("patterns")
    @precondition(lambda self: self.gmode == PAGING_64)
    @rule(pick=st.integers(0, 1 << 16), i=st.integers(2, 511), j=st.integers(0, 510),
          k=st.integers(0, 511), data=st.integers(0x20, 0x3F), user=st.booleans())
    def shared_table_different_rights(self, pick, i, j, k, data, user, right=PT_WRITABLE_MASK):
        """One page directory X reached through two PDPTEs, one writable and one
        not; X's PDEs are one read-only and one writable (b1bd5cba3306's
        scenario).  Reads and writes through each pair: the shadow page of X
        must differ per PDPTE (its role.access is what is inherited down to the
        PDPTE), else the last write completes where the guest's tables forbid
        it.  `right`: the right one link of each pair lacks (W here; U for
        shared_table_user_and_supervisor)."""
        pdpt = next((t for t, (lvl, base) in self.table_at.items() if lvl == 3 and base == 0), None)
        free = [t for t in self.tables if t not in self.table_at]
        if len(free) < 3:  # the table pages are used up: take data pages of the identity
            # map (0x20..0x3f, the patterns' data), as a page allocator reuses freed pages
            free += [g for g in range(0x20, 0x40) if g not in self.table_at]
        if pdpt is None or len(free) < 3:
            return
        x, ta, tb = (free[(pick + d) % len(free)] for d in range(3))
        i1, i2, j1, j2 = i, (i + 1) % 512 or 2, j, j + 1
        if len({x, ta, tb}) < 3 or any(
                self.world.oracle.mem.read((pdpt << PAGE_SHIFT) + s * 8, 8) & PT_PRESENT_MASK
                for s in (i1, i2)):
            return
        R = PT_PRESENT_MASK | PT_ACCESSED_MASK | (PT_USER_MASK | PT_WRITABLE_MASK) & ~right
        v = self.smp[pick % len(self.smp)]  # a vCPU of the guest's paging mode on its root
        self.store(v, ta, k, self.data_pte(data))
        self.store(v, tb, k, self.data_pte(data ^ 1))
        self.store(v, x, j1, self.entry(ta, R))
        self.store(v, x, j2, self.entry(tb, R | right))
        self.store(v, pdpt, i1, self.entry(x, R | right))
        self.store(v, pdpt, i2, self.entry(x, R))
        for t, lvl, base in ((x, 2, i1 << 30), (ta, 1, (i1 << 30) | (j1 << 21)),
                             (tb, 1, (i1 << 30) | (j2 << 21))):
            self.table_at[t] = (lvl, base)
        for pud, pmd, kind in ((i1, j1, READ), (i1, j2, WRITE), (i2, j1, READ), (i2, j2, WRITE)):
            addr = (pud << 30) | (pmd << 21) | (k << PAGE_SHIFT)
            self.emit_access(v, addr, kind, user if right == PT_WRITABLE_MASK else pmd == j2)
            self.addrs.append(addr)

    @swarm("patterns")
    @precondition(lambda self: self.gmode == PAGING_64)
    @rule(pick=st.integers(0, 1 << 16), i=st.integers(2, 511), j=st.integers(0, 510),
          k=st.integers(0, 511), data=st.integers(0x20, 0x3F))
    def shared_table_user_and_supervisor(self, pick, i, j, k, data):
        """shared_table_different_rights with U as the right that differs: the
        kernel links a user page directory X a second time, supervisor-only
        (a kernel alias of user memory), and X's PDEs are one supervisor and
        one user.  Supervisor reads and user writes through each pair: the
        last user write must fault (the supervisor-only PDPTE), which only a
        shadow page of X per PDPTE's inherited rights keeps."""
        self.shared_table_different_rights(pick, i, j, k, data, True, right=PT_USER_MASK)

    @swarm("patterns")
    @rule(pick=st.integers(0, 1 << 16), index=st.integers(0, 1023), count=st.integers(9, 17),
          kind=st.sampled_from(ACCESS_KINDS), then=st.sampled_from(["unmap", "change_pte", "none"]))
    def alias_storm(self, pick, index, count, kind, then):
        """One page mapped at many addresses (a guest's zero page), each used:
        its rmap grows past the recycle threshold (rmap_recycle drops them all
        and flushes); then the host takes the page away and the first alias is
        used again (no TLB may still reach the old page)."""
        level1 = sorted(t for t, (lvl, _) in self.table_at.items() if lvl == 1)
        if not level1 or not self.touched:
            return
        table = level1[pick % len(level1)]
        base = self.table_at[table][1]
        n = 1024 if self.size == 4 else 512
        index = index % (n - count)
        gfn = self.touched[pick % len(self.touched)]
        slot = self.world.oracle.slot_of(gfn)
        if slot is None:
            return
        v = self.vcpus[pick % len(self.vcpus)]
        gvas = [base | ((index + k) << PAGE_SHIFT) for k in range(count)]
        for k, gva in enumerate(gvas):
            was = self.store(v, table, index + k, self.data_pte(gfn))
            self.invalidate_after_edit(gva, leaf=True, was=was)
            self.emit_access(v, gva, kind, False)
        self.addrs += gvas[:2]
        if then == "unmap":
            self.emit(["unmap_hva_range", {"slot": slot, "gfn": gfn, "npages": 1}])
        elif then == "change_pte":
            self.emit(["change_pte", {"slot": slot, "gfn": gfn}])
        self.emit_access(v, gvas[0], READ, False)

    @swarm("patterns")
    @rule(pick=st.integers(0, 1 << 16), vpick=st.integers(0, 3))
    def dirty_round(self, pick, vpick):
        """Dirty logging as a migration does it: the guest writes a page, the VMM
        collects the log, the guest writes the page again (it must be logged again)."""
        logging = sorted(s for s, v in self.world.oracle.slots.items() if v[3])
        if not logging or self.change_pending():
            return
        sid = logging[pick % len(logging)]
        base, n, _, _ = self.world.oracle.slots[sid]
        inside = [(g, a) for g, a in sorted(self.touched_at.items()) if base <= g < base + n]
        if not inside:
            return
        (g, x), v = inside[pick % len(inside)], self.vcpus[vpick % len(self.vcpus)]
        if v in self.nonpaging:  # paging off: the page's guest-physical address
            x = (g << PAGE_SHIFT) | (x & 0xFFF)
        self.emit_access(v, x, WRITE, False)
        self.emit(["get_dirty_log", {"slot": sid}])
        self.emit_access(v, x, WRITE, False)

    @swarm("tlb")
    @rule(vpick=st.integers(0, 3), pick=st.integers(0, 63))
    def tlb_evict(self, vpick, pick):
        """The CPU drops a TLB entry of its own choosing."""
        self.emit(["tlb_evict", {"vcpu": self.vcpus[vpick % len(self.vcpus)], "pick": pick}])

    def near_slot_edge(self, pick):
        """A gfn within 8 of a memslot's first or last page (inside or just outside)."""
        edges = sorted({e for b, n, _, _ in self.world.oracle.slots.values() for e in (b, b + n)})
        edges = [e for e in edges if e % PTE_PREFETCH_NUM] or edges  # inside a window, if any
        edge = edges[pick % len(edges)]
        return max(edge + (pick >> 3) % 16 - 8, 0)

    def large_levels(self):
        return (2,) if self.gmode != PAGING_64 else (2, 3)

    @rule(pick=st.integers(0, 1 << 16), off=st.integers(0, 0xFFF), kind=st.sampled_from(ACCESS_KINDS),
          user=st.booleans(), vpick=st.integers(0, 3), recent=st.booleans())
    def access(self, pick, off, kind, user, vpick, recent):
        """An access to an address the guest uses; `recent`: one of the last few
        (locality: what reaches a TLB entry again after the tables changed)."""
        pool = self.addrs[-4:] if recent else self.addrs
        addr = (pool[pick % len(pool)] & ~0xFFF) | (off & ~7)
        self.emit_access(self.vcpus[vpick % len(self.vcpus)], addr, kind, user)

    def emit_access(self, vcpu, addr, kind, user):
        if vcpu in self.nonpaging:
            addr &= LINEAR_MASK  # paging off: a 32-bit guest-physical address
        self.emit(["access", {"vcpu": vcpu, "addr": addr, "kind": kind, "user": user}])
        status, gfn = self.world.last_outcome
        if status == OK:
            self.touched_at[gfn] = addr
            self.touched_by[gfn] = vcpu
            if gfn not in self.touched[-16:]:
                self.touched.append(gfn)

    @swarm("cr3")
    @rule(pick=st.integers(0, 1 << 16), vpick=st.integers(0, 3))
    def invlpg(self, pick, vpick):
        """INVLPG of an address the guest uses."""
        self.emit(["invlpg", {"vcpu": self.vcpus[vpick % len(self.vcpus)],
                              "addr": self.addrs[pick % len(self.addrs)] & ~0xFFF}])

    @swarm("cr3")
    @rule(pick=st.integers(0, 1 << 16), vpick=st.integers(0, 3), anywhere=st.booleans())
    def set_cr3(self, pick, vpick, anywhere):
        """Reload CR3: the root again (a root switch), or any table (a guest bug)."""
        cr3 = self.tables[pick % len(self.tables)] if anywhere else TABLE_GFNS[0]
        if self.vcpus[vpick % len(self.vcpus)] in self.nonpaging:
            return
        self.emit(["set_cr3", {"vcpu": self.vcpus[vpick % len(self.vcpus)],
                               "cr3": cr3 << PAGE_SHIFT}])

    @swarm("control")
    @rule(reg=st.sampled_from(["cr0.wp", "efer.nx", "cr4.pse"]), value=st.booleans(),
          vpick=st.integers(0, 3))
    def set_control(self, reg, value, vpick):
        vcpu = self.vcpus[vpick % len(self.vcpus)]
        cpu = self.world.oracle.cpus[vcpu]
        if vcpu in self.nonpaging:
            return
        if reg == "cr4.pse" and not cpu.cr4_pae:
            # A 32-bit guest toggling CR4.PSE keeps stale 4MB-derived sptes in 3.10
            # (the page role has no PSE bit): findings/cr4-pse-toggle-stale-4mb.json.
            # Left out of the default campaign so it keeps searching for new bugs.
            return
        self.emit(["set_control", {"vcpu": vcpu, "reg": reg, "value": value}])

    @swarm("vcpus")
    @precondition(lambda self: len(self.vcpus) < 3)
    @rule(mode=st.sampled_from(["shadow32", "shadowpae", "shadow64", NONPAGING]),
          pick=st.integers(0, 1 << 16))
    def vcpu_create(self, mode, pick):
        """Another vCPU.  A TDP VM's shares the root (one direct root per role).
        A shadow VM's runs the guest's own mode on the guest's root (an SMP
        guest), or in mixed mode, maybe another paging mode at CR3 0 (gfn 0
        reads as empty PDPTEs, so a PAE vCPU starts legally; set_cr3 moves it),
        or paging off (an AP not yet in paging mode: KVM maps it directly,
        and its direct sptes share the rmaps of the gfns the others shadow)."""
        if self.vmode == "tdp":
            mode = "tdp"
        elif self.world.mode != "mixed":
            mode = self.vmode
        if mode == NONPAGING:
            self.vcpus.append(len(self.vcpus))
            self.nonpaging.add(self.vcpus[-1])
            self.emit(["vcpu_create", {"vcpu": self.vcpus[-1], "mode": NONPAGING, "cr3": 0,
                                       "cr0_wp": True, "cr4_pse": True, "efer_nx": True}])
            return
        same = mode == "tdp" or GUEST_MODE[mode] == self.gmode
        if same and self.gmode == PAGING_PAE and \
                self.world.oracle.cpus[0]._read_pdptes(TABLE_GFNS[0] << PAGE_SHIFT) == GP:
            return  # the guest overwrote its PDPT: loading it would #GP (no such vCPU starts)
        self.vcpus.append(len(self.vcpus))
        if same:
            self.smp.append(self.vcpus[-1])
        self.emit(["vcpu_create", {"vcpu": self.vcpus[-1], "mode": mode,
                                   "cr3": TABLE_GFNS[0] << PAGE_SHIFT if same else 0,
                                   "cr0_wp": True, "cr4_pse": True, "efer_nx": True}])

    @swarm("memslots")
    @precondition(not_changing)
    @rule(base=st.sampled_from([0x400, 0x480, 0x600, *HIGH_SLOT_BASES]), skew=st.integers(0, 15),
          npages=st.sampled_from([0x40, 0x200]), trim=st.integers(0, 15),
          readonly=st.booleans(), dirty_log=st.booleans(), host_level=st.sampled_from([1, 2]))
    def memslot_create(self, base, skew, npages, trim, readonly, dirty_log, host_level):
        """A new memslot; `skew` and `trim` move its edges off the 8-aligned
        prefetch windows (and off large frames)."""
        base, npages = base + skew, npages - trim
        slots = self.world.oracle.slots
        sid = max(slots) + 1
        if any(not (base + npages <= b or b + n <= base) for b, n, _, _ in slots.values()):
            return
        self.emit(["memslot_create", {"slot": sid, "base_gfn": base, "npages": npages,
                                      "readonly": readonly, "dirty_log": dirty_log,
                                      "host_level": host_level}])

    def other_slots(self):
        return sorted(s for s in self.world.oracle.slots if s != 0)

    @swarm("memslots")
    @precondition(not_changing)
    @rule(pick=st.integers(0, 1 << 16), what=st.sampled_from(["delete", "move"]),
          base=st.sampled_from([0x700, 0x800]), skew=st.integers(0, 15))
    def memslot_change(self, pick, what, base, skew):
        base += skew
        slots = self.other_slots()
        if not slots:
            return
        sid = slots[pick % len(slots)]
        if what == "delete":
            self.emit(["memslot_delete", {"slot": sid}])
        else:
            n = self.world.oracle.slots[sid][1]
            if any(not (base + n <= b or b + k <= base) for s, (b, k, _, _) in
                   self.world.oracle.slots.items() if s != sid):
                return
            self.emit(["memslot_move", {"slot": sid, "base_gfn": base}])

    @swarm("dirty_log")
    @precondition(not_changing)
    @rule(sid=st.integers(0, 3), on=st.booleans())
    def dirty_log(self, sid, on):
        slots = sorted(self.world.oracle.slots)
        self.emit(["memslot_dirty_log", {"slot": slots[sid % len(slots)], "on": on}])

    @swarm("dirty_log")
    @precondition(not_changing)
    @rule(sid=st.integers(0, 3))
    def get_dirty_log(self, sid):
        logging = sorted(s for s, v in self.world.oracle.slots.items() if v[3])
        if logging:
            self.emit(["get_dirty_log", {"slot": logging[sid % len(logging)]}])

    @swarm("host_mm")
    @rule(gfn=st.integers(0, 0x7FF), pick=st.integers(0, 1 << 16), npages=st.integers(1, 16),
          what=st.sampled_from(["unmap", "change_pte", "age", "test_age"]))
    def host_mm(self, gfn, pick, npages, what):
        """The host's mm on the pages behind a slot; mostly a gfn the guest has used."""
        if self.touched and pick % 4:
            gfn = self.touched[pick % len(self.touched)]
        slot = self.world.oracle.slot_of(gfn)
        if slot is None:
            return
        if what == "unmap":
            self.emit(["unmap_hva_range", {"slot": slot, "gfn": gfn, "npages": npages}])
        elif what == "change_pte":
            self.emit(["change_pte", {"slot": slot, "gfn": gfn}])
        else:
            self.emit(["age", {"slot": slot, "gfn": gfn, "test_only": what == "test_age"}])

    @swarm("remap")
    @rule(pick=st.integers(0, 1 << 16), how=st.sampled_from(["change_pte", "unmap"]),
          kind=st.sampled_from(ACCESS_KINDS), vpick=st.integers(0, 3), hot=st.booleans())
    def remap(self, pick, how, kind, vpick, hot):
        """A gfn the guest mapped goes to another host page (KSM merge or a host
        unmap), then the guest uses it again: the refault maps the new pfn.
        `hot`: a page the guest used last, used again by the vCPU that used it
        (NUMA balancing or compaction migrating a page in use: what a TLB
        entry the notifier's flush missed would still reach)."""
        if not self.touched:
            return
        pool = self.touched[-2:] if hot else self.touched
        gfn = pool[pick % len(pool)]
        if hot and gfn in self.touched_by:
            vpick = self.vcpus.index(self.touched_by[gfn])
        slot = self.world.oracle.slot_of(gfn)
        if slot is None:
            return
        if how == "change_pte":
            self.emit(["change_pte", {"slot": slot, "gfn": gfn}])
        else:
            self.emit(["unmap_hva_range", {"slot": slot, "gfn": gfn, "npages": 1}])
        # the address the guest used the page at (a TLB entry may still hold it)
        gva = self.touched_at.get(gfn, gfn << PAGE_SHIFT)
        self.emit_access(self.vcpus[vpick % len(self.vcpus)], gva, kind, False)


class MigrationRound:
    """A machine mixin: the VMM's live-migration pass over a page the guest is
    using, as QEMU runs it (kvm_vm_ioctl_get_dirty_log, 3.10): dirty logging
    on for the page's slot (kvm_mmu_slot_remove_write_access), a guest write,
    GET_DIRTY_LOG (rmap_write_protect of the logged gfns, then the flush),
    a write again, the final GET_DIRTY_LOG; then, drawn, the migration is
    cancelled: logging off and one more write.  The write after a
    GET_DIRTY_LOG is what a TLB entry the flush missed would let through
    unlogged.  `migration_vcpus()` are the vCPUs it runs on."""

    def migration_vcpus(self):
        return self.vcpus

    def address_of(self, vcpu, gfn):
        """An address `vcpu` reaches `gfn` at: its guest-physical address with paging
        off, else a gva whose access completed on it (None if none did)."""
        if vcpu in self.nonpaging:
            return gfn << PAGE_SHIFT
        return self.touched_at.get(gfn)

    @swarm("dirty_log")
    @precondition(not_changing)
    @rule(pick=st.integers(0, 1 << 16), cancel=st.booleans())
    def migration_round(self, pick, cancel):
        vcpus = self.migration_vcpus()
        v = vcpus[pick % len(vcpus)]
        oracle = self.world.oracle
        pages = [g for g in self.touched if oracle.slot_of(g) is not None
                 and self.address_of(v, g) is not None]
        if not pages:
            return
        gfn = pages[(pick >> 2) % len(pages)]
        addr, sid = self.address_of(v, gfn), oracle.slot_of(gfn)
        if not oracle.slots[sid][3]:
            self.emit(["memslot_dirty_log", {"slot": sid, "on": True}])
        self.emit_access(v, addr, WRITE, False)
        self.emit(["get_dirty_log", {"slot": sid}])
        self.emit_access(v, addr, WRITE, False)
        self.emit(["get_dirty_log", {"slot": sid}])
        if cancel:
            self.emit(["memslot_dirty_log", {"slot": sid, "on": False}])
            self.emit_access(v, addr, WRITE, False)


class SmpPatternMachine(MigrationRound, MmuMachine):
    """The mmu machine as the mmu, flush and unsync families run it: the patterns of
    a guest's page-table life always on, and in half the examples a second
    vCPU on the guest's root from the start (drawn), so the SMP patterns a
    missing flush or sync needs (one vCPU's TLB outliving another's edit)
    are reachable from the first steps rather than after a vCPU rule ran.
    That vCPU is an AP of the same kernel: set up like vCPU 0 (CR0.WP and
    EFER.NX, as a kernel sets every CPU alike), so under shadow paging both
    share one page role and so one set of shadow pages, as an SMP guest's
    vCPUs do (the vcpus rule still adds vCPUs of other settings)."""

    # Mixed mode's VM types with the shadow ones first, 64-bit first: these
    # families' questions (flushes, unsync, a guest's table sharing) are mostly
    # shadow paging's, and the first type listed is drawn most often.
    MIXED_VMS = ("shadow64", "shadow32", "shadowpae", "tdp")

    # Swarm groups on in every example: the patterns, and the host's remapping of
    # a page in use (remap: what the MMU notifier's flush is for, the host side
    # of the flush family's questions; det.py seeds 0-4: notifier-unmap-no-flush
    # median 0.83 s with it in half the examples, 0.48 s with it in all)
    ALWAYS_ON = ("patterns", "remap")

    def draw_swarm(self, data):
        return super().draw_swarm(data) | set(self.ALWAYS_ON)

    @initialize(data=st.data())
    def setup(self, data):
        super().setup(data)
        if data.draw(st.booleans(), label="a second vCPU on the root from the start"):
            self.start_ap()

    def has_pair(self):
        return len(self.smp) > 1 or len(self.vcpus) < 3

    def smp_pair(self, pick):
        """With one vCPU on the root, the guest brings an AP up first (the SMP
        patterns run in every example that enables them, not only in those
        that started one)."""
        if len(self.smp) == 1:
            self.start_ap()
        return super().smp_pair(pick)

    def start_ap(self):
        """KVM_CREATE_VCPU for an AP: the guest's mode on its root, with vCPU 0's settings."""
        bsp = self.world.oracle.cpus[0]
        if self.gmode == PAGING_PAE and bsp._read_pdptes(TABLE_GFNS[0] << PAGE_SHIFT) == GP:
            return  # the guest overwrote its PDPT: loading it would #GP (no such vCPU starts)
        self.vcpus.append(len(self.vcpus))
        self.smp.append(self.vcpus[-1])
        self.emit(["vcpu_create", {"vcpu": self.vcpus[-1], "mode": self.vmode,
                                   "cr3": TABLE_GFNS[0] << PAGE_SHIFT, "cr0_wp": bsp.cr0_wp,
                                   "cr4_pse": True, "efer_nx": bsp.efer_nx}])


FAMILY = Family(
    name="mmu",
    summary="a whole VM: spec MMU (stored gfns, rmap_next) vs impl (derived gfns, Lai 2010; "
            "rmap iterator) vs the architectural oracle, with the auditor after every step",
    machine=SmpPatternMachine,  # the patterns always on (b1bd5cba3306's shared directories)
    make_world=make_world,
    impl_base=ImplShadowMmu,
    # the 64-bit guest first, the shadow mode with every level (rights inherited
    # through three tables above a leaf exist only there) and the one every mmu:*
    # variant fails in (det seeds 0-4: no variant's median above 0.2 s with it
    # first, pt-access-all-levels-3.10 at 1.1 s behind mixed's first round);
    # then mixed, TDP (gfn:*, whose direct pages TDP builds first, run on
    # diff/gfn.py's family), the 32-bit and PAE guests
    modes=("shadow64", "mixed", "tdp", "shadow32", "shadowpae"),
    variant_families=("mmu",),  # gfn:* run on diff/gfn.py's family: the same machine, TDP first
    also_runs=(("rmap", "rmap_class"),),  # --family mmu --variant rmap:X: X's Rmap in the VM
)
