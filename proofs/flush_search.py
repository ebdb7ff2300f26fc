"""Every spte change that takes a right or the pfn away is flushed in time: an exhaustive bounded search.

Issue 15.5.  The claim, in kernel terms: whenever KVM writes an spte (any
level) so that a translation some vCPU's TLB cached through it loses
something (the spte stops being present, maps another pfn or points to
another shadow page, or clears W, U or sets NX that the cached translation
holds), that TLB entry is gone, by kvm_flush_remote_tlbs(), the local
kvm_mmu_flush_tlb() or INVLPG, before mmu_lock is released, i.e. before any
vCPU can enter the guest again.  A vCPU with KVM_REQ_MMU_RELOAD pending is
judged at its next entry instead (the request kicks it out of guest mode like
the flush IPI does, and kvm_mmu_load()'s set_cr3 flushes it: the held-root
case of kvm_mmu_prepare_zap_page and the obsolete roots of a memslot zap).

What is *not* owed: a guest pte edit that KVM has not acted on (no spte
changed) leaves the spte and any TLB entry as they were; the guest must
invalidate, and until then the architecture lets it keep the old
translation.  The obligation is about the spte writes KVM itself makes.

How it is checked (the harness wraps, read-only, two methods of the VM
under test; nothing in spec/ or impl/ changes):

- every spte write goes through KernelMemory.spte_write (mmu_spte_update,
  mmu_spte_clear_track_bits/drop_spte, drop_parent_pte, the rmap
  write-protect and notifier handlers all end there).  For each write, every
  TLB entry of every vCPU whose cached walk used that spte (its shadow/TDP
  pages are recorded in the entry, so the spte of each level follows from
  the address) and which loses something by the change is put on the owed
  list (old value, new value, the entry);
- at every point where mmu_lock is free and a vCPU may enter the guest (after
  every op, and before and after each vcpu_enter_guest, i.e. after every
  fault's mmu_lock hold), every owed entry still in its vCPU's TLB is a
  violation, unless the current tables give that same translation again (the
  same shadow pages, a present leaf with the same pfn and at least the
  entry's rights): a change undone in the same hold, as kvm_mmu_pte_write's
  mmu_page_zap_pte followed by mmu_pte_write_new_pte of the same pte, leaves
  nothing stale.
- a self-check of the harness: at the end of every op, every TLB entry of a
  vCPU with no reload pending is given again by the current tables, or is on
  the owed list (an uncovered entry no recorded write explains would mean the
  wrapping missed a write path).

It is a *bounded search*, not a proof.  The bound (build_vm() and alphabet()):

  a 64-bit guest (CR0.WP=1, CR4.PSE, EFER.NX): PML4 gfn 0x10, PDPT 0x11,
  PD 0x12; PD[0] -> table A (gfn 0x13), PD[1] -> table B (gfn 0x14); PDPT[1]
  -> PD2 (gfn 0x15), PD2[1] -> B again (gva 0x40200000 -> B[0]).  A[1]
  (gva 0x1000) -> gfn 0x20 W D; A[2] (gva 0x2000) -> gfn 0x14, table B as
  data, W D; A[0x12], A[0x13], A[0x15] map PD, A and PD2 W D (gva 0x12000,
  0x13000, 0x15000: the guest edits its tables there); B[0] (gva 0x200000) -> gfn
  0x21 read-only.  One memslot (gfns 0-63, 4K host pages) with dirty logging
  on.  Two vCPUs on the same CR3, both shadow paging (--tdp: both TDP, on
  the same guest tables), TLB capacity 4 each.

  The op alphabet (each one kernel entry point, as diff/mmu.py's MmuWorld ops
  call them): vCPU v reads 0x1000, 0x2000, 0x200000 or 0x40200000 (guest_access: TLB,
  hardware walk, page fault, retry; fills the TLB); v writes 0x1000 or
  0x2000 (the latter stores B[0]'s own value into table B); v's guest store
  into A[1] through 0x13008 of: not present, gfn 0x20 W D, gfn 0x21
  read-only (a store to a shadowed table: unsync, or emulated and
  kvm_mmu_pte_write); v's store of 0 into PD[1] through 0x12008 (PD is
  shadowed at level 2: always emulated, kvm_mmu_pte_write of a non-leaf);
  v's three stores of 0 into PD2[2] through 0x15010 (one op; the checkpoint
  runs after each store): PD2 is not on that gva's path, so no fault resets
  its count and the third emulated write zaps it (detect_write_flooding,
  kvm_mmu_prepare_zap_page, kvm_mmu_commit_zap_page);
  v's INVLPG 0x1000; v's MOV CR3 of the same CR3 (kvm_set_cr3: sync roots,
  local flush); KVM_GET_DIRTY_LOG of the slot; the MMU notifier's
  invalidate_range_start for gfn 0x20 (madvise(MADV_DONTNEED)); the memslot's
  delete (KVM_MEMSLOT_INVALID, kvm_arch_flush_shadow_memslot, removal).
  Every sequence of up to --depth ops (default 3), with vCPU 0 acting before
  vCPU 1 (the two are symmetric), from the VM above before any access; a
  sequence that fails is counted and not extended (each is replayed from a
  fresh VM).

`python -m proofs.flush_search [--variant F:N] [--spec] [--tdp] [--depth N] [--first]`
prints "searched (exhaustive, bound ...)" with the counts and the time, or
the first failing op sequence in kernel terms (exit 1); bad usage exits 2.
"""

import sys
import time
from dataclasses import dataclass, field

from spec.consts import (
    ACC_EXEC_MASK, ACC_USER_MASK, ACC_WRITE_MASK, KVM_HPAGE_GFN_SHIFT, PAGE_SHIFT, PT64_BASE_ADDR_MASK,
    PT64_INDEX, PT64_NX_MASK, PT64_ROOT_LEVEL, PT_ACCESSED_MASK, PT_DIRTY_MASK, PT_PRESENT_MASK,
    PT_USER_MASK, PT_WRITABLE_MASK, spte_to_pfn,
)
from spec.errors import HostDemand, KvmBug, Livelock, UseAfterFree, WrongHostPage
from spec.mmu import SHADOW, TDP
from spec.rmap import is_shadow_present_pte
from spec.walk import PAGING_64, READ, WRITE

_PWUAD = PT_PRESENT_MASK | PT_WRITABLE_MASK | PT_USER_MASK | PT_ACCESSED_MASK | PT_DIRTY_MASK
_TABLE = PT_PRESENT_MASK | PT_WRITABLE_MASK | PT_USER_MASK | PT_ACCESSED_MASK
_RO = PT_PRESENT_MASK | PT_USER_MASK | PT_ACCESSED_MASK

PML4, PDPT, PD, PT_A, PT_B, PD2 = 0x10, 0x11, 0x12, 0x13, 0x14, 0x15
FLOOD_WRITES = 3   # detect_write_flooding(): the third emulated write zaps the page
DATA_A, DATA_B = 0x20, 0x21
SLOT, SLOT_PAGES = 0, 64
TLB_CAPACITY = 4
B0 = (DATA_B << PAGE_SHIFT) | _RO                      # B[0]: gva 0x200000 -> 0x21 read-only

# the values the guest stores into A[1] (gva 0x1000)
A1_PTES = ((0, "not present"), ((DATA_A << PAGE_SHIFT) | _PWUAD, "gfn 0x20 W D"),
           ((DATA_B << PAGE_SHIFT) | _RO, "gfn 0x21 read-only"))

TRANSITION_ERRORS = (KvmBug, Livelock, WrongHostPage, HostDemand, UseAfterFree)


def alphabet(vcpus=(0, 1)):
    """The ops, as tuples: (name, vcpu or None, args...)."""
    ops = []
    for v in vcpus:
        ops += [("read", v, 0x1000), ("read", v, 0x2000), ("read", v, 0x200000),
                ("read", v, 0x40200000), ("write", v, 0x1000, 0x5A), ("write", v, 0x2000, B0)]
        ops += [("store", v, PT_A, 1, i) for i in range(len(A1_PTES))]
        ops += [("store", v, PD, 1, None), ("flood", v, PD2, 2), ("invlpg", v, 0x1000), ("cr3", v)]
    ops += [("get_dirty_log", None), ("unmap", None, DATA_A), ("delete", None)]
    return ops


def describe(op):
    """One op in kernel terms."""
    name, v = op[0], op[1]
    if name == "read":
        return f"vcpu {v}: guest reads gva {op[2]:#x}"
    if name == "write":
        return f"vcpu {v}: guest writes {op[3]:#x} at gva {op[2]:#x}"
    if name == "store":
        table, index = op[2], op[3]
        if table == PD:
            return f"vcpu {v}: guest stores 0 into PD[{index}] (gfn {PD:#x}) through gva {(PD << PAGE_SHIFT) + 8 * index:#x}"
        value, what = A1_PTES[op[4]]
        return (f"vcpu {v}: guest stores {value:#x} ({what}) into A[{index}] (gfn {PT_A:#x}) through "
                f"gva {(PT_A << PAGE_SHIFT) + 8 * index:#x}")
    if name == "flood":
        return (f"vcpu {v}: guest stores 0 into PD2[{op[3]}] (gfn {PD2:#x}, no spte behind it) through gva "
                f"{(PD2 << PAGE_SHIFT) + 8 * op[3]:#x}, {FLOOD_WRITES} times (detect_write_flooding)")
    if name == "invlpg":
        return f"vcpu {v}: guest INVLPG {op[2]:#x} (kvm_mmu_invlpg)"
    if name == "cr3":
        return f"vcpu {v}: guest MOV CR3 of the same CR3 (kvm_set_cr3: kvm_mmu_sync_roots, local flush)"
    if name == "get_dirty_log":
        return "KVM_GET_DIRTY_LOG(slot 0) (kvm_vm_ioctl_get_dirty_log)"
    if name == "unmap":
        return (f"madvise(MADV_DONTNEED) of gfn {op[2]:#x}: kvm_mmu_notifier_invalidate_range_start "
                f"(kvm_unmap_hva_range)")
    if name == "delete":
        return "KVM_SET_USER_MEMORY_REGION deletes slot 0 (kvm_arch_flush_shadow_memslot)"
    raise ValueError(op)


def bound_text(depth, tdp):
    n = len(alphabet())
    return (f"{'TDP' if tdp else '64-bit shadow'} VM, 2 vCPUs, TLB capacity {TLB_CAPACITY}, guest tables "
            f"PML4/PDPT/PD/PD2/A/B, {n} ops, every sequence of length <= {depth} with vCPU 0 first")


# -- the VM --------------------------------------------------------------------------------
@dataclass
class Vm:
    mmu: object
    mem: object
    watch: object = None
    log: list = field(default_factory=list)


def build_vm(mmu_cls, spec_side=False, tdp=False):
    from diff.mmu import Machine
    from impl.walk import PagingTmpl

    m = Machine(mmu_cls, 3, None if spec_side else PagingTmpl)
    m.mmu.tlb_capacity = TLB_CAPACITY
    m.mmu.kvm_memslot_create(SLOT, 0, SLOT_PAGES, False, True, 1)

    def put(gfn, index, value):
        m.mem.write((gfn << PAGE_SHIFT) + 8 * index, 8, value, "guest")
    put(PML4, 0, (PDPT << PAGE_SHIFT) | _TABLE)
    put(PDPT, 0, (PD << PAGE_SHIFT) | _TABLE)
    put(PD, 0, (PT_A << PAGE_SHIFT) | _TABLE)
    put(PD, 1, (PT_B << PAGE_SHIFT) | _TABLE)
    put(PDPT, 1, (PD2 << PAGE_SHIFT) | _TABLE)
    put(PD2, 1, (PT_B << PAGE_SHIFT) | _TABLE)
    put(PT_A, PD2, (PD2 << PAGE_SHIFT) | _PWUAD)
    put(PT_A, 1, (DATA_A << PAGE_SHIFT) | _PWUAD)
    put(PT_A, 2, (PT_B << PAGE_SHIFT) | _PWUAD)
    put(PT_A, PD, (PD << PAGE_SHIFT) | _PWUAD)
    put(PT_A, PT_A, (PT_A << PAGE_SHIFT) | _PWUAD)
    put(PT_B, 0, B0)
    kind = TDP if tdp else SHADOW
    for v in (0, 1):
        guest = m.make_guest(kind, PAGING_64, PML4 << PAGE_SHIFT, True, True, True)
        m.mmu.kvm_vm_ioctl_create_vcpu(v, kind, guest)
    vm = Vm(m.mmu, m.mem)
    vm.watch = Watch(vm)
    return vm


def apply(vm, op):
    """Run one op through the model's own entry points."""
    mmu = vm.mmu
    name, v = op[0], op[1]
    vcpu = mmu.vcpus.get(v)
    if name == "read":
        out = mmu.guest_access(vcpu, op[2], READ, False)
    elif name == "write":
        out = mmu.guest_access(vcpu, op[2], WRITE, False, op[3], 8)
    elif name == "store":
        value = 0 if op[2] == PD else A1_PTES[op[4]][0]
        out = mmu.guest_access(vcpu, (op[2] << PAGE_SHIFT) + 8 * op[3], WRITE, False, value, 8)
    elif name == "flood":
        out = []
        for i in range(FLOOD_WRITES):
            out.append(mmu.guest_access(vcpu, (op[2] << PAGE_SHIFT) + 8 * op[3], WRITE, False, 0, 8))
            if i + 1 < FLOOD_WRITES and vm.watch is not None:
                vm.watch.checkpoint(f"after store {i + 1} of \"{describe(op)}\" (mmu_lock released)")
    elif name == "invlpg":
        out = mmu.kvm_mmu_invlpg(vcpu, op[2])
    elif name == "cr3":
        out = mmu.kvm_set_cr3(vcpu, vcpu.guest.cr3)
    elif name == "get_dirty_log":
        if SLOT not in mmu.host.memslots:
            out = "no slot"
        else:
            out = [hex(g) for g in mmu.kvm_vm_ioctl_get_dirty_log(SLOT)]
    elif name == "unmap":
        slot = mmu.host.memslots.get(SLOT)
        out = None if slot is None else mmu.host.madvise_dontneed(slot, op[2], 1)
    elif name == "delete":
        if SLOT in mmu.host.memslots:
            mmu.kvm_memslot_change_begin(SLOT)
            mmu.kvm_memslot_change_commit(SLOT)
            out = "deleted"
        else:
            out = "no slot"
    else:
        raise ValueError(op)
    vm.log.append(f"{describe(op)}: {out}")


# -- the obligation ------------------------------------------------------------------------
def entry_addr(vcpu, key, entry):
    """The address the entry's cached walk of the shadow/TDP tables used: the
    gva's page under shadow paging, the gpa under TDP."""
    if vcpu.kind == TDP:
        return entry.gfn << PAGE_SHIFT
    level, page = key
    return page << (PAGE_SHIFT + KVM_HPAGE_GFN_SHIFT(level))


def entry_path(vcpu, key, entry):
    """The sptes the entry's walk read, top-down (64-bit roots: level 4 first)."""
    addr = entry_addr(vcpu, key, entry)
    return [spt + 8 * PT64_INDEX(addr, PT64_ROOT_LEVEL - i) for i, spt in enumerate(entry.pages)]


def holds_write(vcpu, entry):
    return entry.host_write if vcpu.kind == TDP else bool(entry.rights & ACC_WRITE_MASK)


def takes_from(vcpu, entry, old, new):
    """What the spte change old -> new takes away from a translation cached
    through it, or None."""
    if not is_shadow_present_pte(new):
        return "not present"
    if (old ^ new) & PT64_BASE_ADDR_MASK:
        return f"pfn {spte_to_pfn(old):#x} -> {spte_to_pfn(new):#x}"
    if holds_write(vcpu, entry) and old & PT_WRITABLE_MASK and not new & PT_WRITABLE_MASK:
        return "W cleared"
    if vcpu.kind != TDP:
        if entry.rights & ACC_USER_MASK and old & PT_USER_MASK and not new & PT_USER_MASK:
            return "U cleared"
        if entry.rights & ACC_EXEC_MASK and not old & PT64_NX_MASK and new & PT64_NX_MASK:
            return "NX set"
    return None


def covered(mmu, vcpu, key, entry):
    """Do the current tables give the entry's translation again: the same
    shadow/TDP pages, a present leaf with the same frame, at least its rights?"""
    addr = entry_addr(vcpu, key, entry)
    path = mmu.shadow_walk(vcpu, addr)
    if not path or tuple(sp.spt for sp, _, _ in path) != tuple(entry.pages):
        return False
    sptes = [mmu.mem.spte_read(p) for _, p, _ in path]
    leaf = sptes[-1]
    if not is_shadow_present_pte(leaf):
        return False
    level = path[-1][2]
    off = (addr >> PAGE_SHIFT) & ((1 << KVM_HPAGE_GFN_SHIFT(level)) - 1)
    if spte_to_pfn(leaf) + off != entry.frame(addr)[1]:
        return False
    if holds_write(vcpu, entry) and not all(s & PT_WRITABLE_MASK for s in sptes):
        return False
    if vcpu.kind != TDP:
        if entry.rights & ACC_USER_MASK and not all(s & PT_USER_MASK for s in sptes):
            return False
        if entry.rights & ACC_EXEC_MASK and any(s & PT64_NX_MASK for s in sptes):
            return False
    return True


class Violation(Exception):
    pass


class Watch:
    """The read-only instrumentation of one VM: the owed list, the checkpoints."""

    def __init__(self, vm):
        self.vm = vm
        self.owed = {}           # id(entry) -> (vcpu id, key, entry, what)
        self.op = None
        mmu = vm.mmu
        mem = mmu.mem
        write = mem.spte_write
        enter = mmu.vcpu_enter_guest

        def spte_write(sptep, value):
            old = mem.spte_read(sptep)
            if is_shadow_present_pte(old) and old != value:
                self.note(sptep, old, value)
            return write(sptep, value)

        def vcpu_enter_guest(vcpu):
            self.checkpoint("before vcpu %d enters the guest" % vcpu.id)
            out = enter(vcpu)
            self.checkpoint("as vcpu %d enters the guest (its requests done)" % vcpu.id)
            return out

        mem.spte_write = spte_write
        mmu.vcpu_enter_guest = vcpu_enter_guest

    def note(self, sptep, old, new):
        for vcpu in self.vm.mmu.vcpus.values():
            for key, entry in vcpu.tlb.entries.items():
                if id(entry) in self.owed or sptep not in entry_path(vcpu, key, entry):
                    continue
                what = takes_from(vcpu, entry, old, new)
                if what:
                    self.owed[id(entry)] = (vcpu.id, key, entry, (
                        f"spte {sptep:#x} {old:#x} -> {new:#x} ({what}) during \"{self.op}\"; vcpu "
                        f"{vcpu.id}'s TLB entry for {'gpa' if vcpu.kind == TDP else 'gva'} "
                        f"{entry_addr(vcpu, key, entry):#x} (pfn {entry.pfn:#x}, rights "
                        f"{entry.rights:#x}, W {int(holds_write(vcpu, entry))}) was cached through it"))

    def checkpoint(self, where):
        mmu = self.vm.mmu
        for k, (vid, key, entry, what) in list(self.owed.items()):
            vcpu = mmu.vcpus[vid]
            if vcpu.tlb.entries.get(key) is not entry:
                del self.owed[k]        # flushed (or evicted, or replaced by a refill)
                continue
            if vcpu.reload:
                continue                # KVM_REQ_MMU_RELOAD: judged at its next entry
            if covered(mmu, vcpu, key, entry):
                del self.owed[k]        # the change was undone in the same hold
                continue
            raise Violation(f"no flush: {what}; still in the TLB {where}")

    def self_check(self):
        mmu = self.vm.mmu
        for vcpu in mmu.vcpus.values():
            if vcpu.reload:
                continue
            for key, entry in vcpu.tlb.entries.items():
                if id(entry) not in self.owed and not covered(mmu, vcpu, key, entry):
                    raise Violation(
                        f"harness: vcpu {vcpu.id}'s TLB entry for {entry_addr(vcpu, key, entry):#x} is "
                        f"not given by the current tables and no recorded spte write explains it")

    def run(self, op):
        self.op = describe(op)
        try:
            apply(self.vm, op)
        except Violation:
            self.vm.log.append(f"{self.op}: stopped at the violation below")
            raise
        self.checkpoint(f"after \"{self.op}\" (mmu_lock released)")
        self.self_check()


# -- the search ----------------------------------------------------------------------------
def canonical(seq):
    """vCPU 0 acts before vCPU 1 (the two are symmetric in the VM)."""
    for op in seq:
        if op[1] == 1:
            return False
        if op[1] == 0:
            return True
    return True


def run_sequence(mmu_cls, seq, spec_side=False, tdp=False):
    """(failure or None, kind 'flush'/'harness'/'transition', log) of one op sequence."""
    vm = build_vm(mmu_cls, spec_side, tdp)
    try:
        for op in seq:
            vm.watch.run(op)
    except Violation as e:
        msg = str(e)
        return msg, ("harness" if msg.startswith("harness") else "flush"), vm.log
    except TRANSITION_ERRORS as e:
        return f"transition raised {type(e).__name__}: {e}", "transition", vm.log
    return None, None, vm.log


@dataclass
class SearchResult:
    sequences: int
    flush: int
    other: int
    first: tuple
    seconds: float
    bound: str

    @property
    def failures(self):
        return self.flush + self.other

    def summary(self):
        if not self.failures:
            return (f"searched (exhaustive, bound: {self.bound}): {self.sequences} sequences, every "
                    f"spte change that took a right or the pfn was flushed in time; {self.seconds:.1f} s")
        return (f"COUNTEREXAMPLE (exhaustive search, bound: {self.bound}): of {self.sequences} "
                f"sequences, {self.flush} leave a TLB entry through a changed spte unflushed, "
                f"{self.other} more break the harness self-check or a transition; {self.seconds:.1f} s")


def search(mmu_cls=None, depth=3, spec_side=False, tdp=False, stop_at_first=False):
    """Every sequence of the bound, shortest first; a failing sequence is not
    extended (its extensions fail the same way).  Each sequence is replayed on
    a fresh VM (no state is copied)."""
    if mmu_cls is None:
        if spec_side:
            from spec.mmu import ShadowMmu as mmu_cls
        else:
            from impl.mmu import ShadowMmu as mmu_cls
    start = time.monotonic()
    ops = alphabet()
    count = flush = other = 0
    first = None
    frontier = [()]
    for _ in range(depth):
        nxt = []
        for seq in frontier:
            for op in ops:
                s = seq + (op,)
                if not canonical(s):
                    continue
                count += 1
                fail, kind, log = run_sequence(mmu_cls, s, spec_side, tdp)
                if fail is None:
                    nxt.append(s)
                    continue
                if kind == "flush":
                    flush += 1
                    if first is None or first[2] != "flush":
                        first = (s, fail, kind, log)
                    if stop_at_first:
                        return SearchResult(count, flush, other, first, time.monotonic() - start,
                                            bound_text(depth, tdp))
                else:
                    other += 1
                    if first is None:
                        first = (s, fail, kind, log)
        frontier = nxt
    return SearchResult(count, flush, other, first, time.monotonic() - start, bound_text(depth, tdp))


def render(res, who):
    lines = [f"every spte change that takes a right or the pfn is flushed in time, on {who}: "
             f"{res.summary()}"]
    if res.first:
        seq, fail, kind, log = res.first
        lines += ["  first failing sequence:"] + [f"    {i + 1}. {describe(op)}" for i, op in enumerate(seq)]
        lines += ["  transitions:"] + [f"    {x}" for x in log]
        lines += [f"  violated: {fail}"]
    return "\n".join(lines) + "\n"


def main(argv):
    import argparse

    p = argparse.ArgumentParser(prog="python -m proofs.flush_search",
                                description="exhaustive bounded search: every spte change that takes "
                                            "a right or the pfn is flushed before mmu_lock is released")
    p.add_argument("--variant", help="a variant's class (family:name) instead of the plain impl")
    p.add_argument("--spec", action="store_true", help="the spec's ShadowMmu instead of the impl")
    p.add_argument("--tdp", action="store_true", help="both vCPUs on TDP instead of shadow paging")
    p.add_argument("--depth", type=int, default=3, help="the longest op sequence (1-5, default 3)")
    p.add_argument("--first", action="store_true", help="stop at the first unflushed change")
    try:
        args = p.parse_args(argv)
    except SystemExit as e:
        return 0 if e.code == 0 else 2
    if not 1 <= args.depth <= 5:
        sys.stderr.write("error: --depth must be 1..5\n")
        return 2
    cls, who = None, "the spec" if args.spec else "the plain impl"
    if args.variant:
        from diff import families
        from impl import variants

        if args.spec:
            sys.stderr.write("error: --spec and --variant exclude each other\n")
            return 2
        try:
            var = variants.get(args.variant)
            cls = families.for_variant(var).impl_class(var)
        except LookupError as e:
            sys.stderr.write(f"error: {e}\n")
            return 2
        who = f"variant {var.qualname}"
    res = search(cls, args.depth, args.spec, args.tdp, args.first)
    sys.stdout.write(render(res, who))
    return 1 if res.failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
