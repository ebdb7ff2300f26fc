"""The live family: the host's real KVM as the fourth machine of the mmu family.

The mmu family's VM (diff/mmu.py: spec, impl and the architectural oracle,
the auditor after every step) runs beside a live VM on /dev/kvm
(live/vm.py's LiveVm: its own VM process, the guest agent of live/agent.py
in a memslot at 2 GB reached through PML4 slot 511).  Every op goes to the
models first, then to the live VM as what a VMM or a guest can do:

  vm_setup            a VM (KVM_CREATE_VM) in a VM process of its own
  host_write          a host write into the slot's backing (set-up only)
  memslot_create/delete/move/dirty_log
                      KVM_SET_USER_MEMORY_REGION (a delete or move is KVM's
                      zap-all, the mmu family's zap through all its phases)
  get_dirty_log       KVM_GET_DIRTY_LOG
  vcpu_create         KVM_CREATE_VCPU, long mode, running the agent
  access              the guest's own load, store (of what the oracle's
                      memory holds there when the op carries no data), or
                      instruction fetch (one instruction, single-stepped), at
                      CPL 0, or CPL 3 for a user access: page-table edits are
                      real guest stores
  set_cr3, invlpg, set_control (CR0.WP, EFER.NX)
                      the guest's MOV CR3, INVLPG, MOV CR0, WRMSR EFER
  unmap_hva_range     madvise(MADV_DONTNEED) on the slot's private anonymous
                      backing: the MMU notifier path

and, run on the models only (no VMM or guest asks for them; nothing
guest-visible changes): change_pte (KSM), age, tlb_evict, set_control of
CR4.PSE (no effect under long-mode paging), set_paging_mode to 64-bit.
The zap's lock-break phases are not run (a zap-all is reached through a
memslot delete or move).  `live_op_table()` lists every mmu op with what
the live side does with it (`mmuspec list` prints it).

The deterministic default.  The model sides run without TLBs
(vm_setup's tlb_capacity 0), every guest store is followed by a MOV CR3 of
each vCPU's own CR3 on every side (a TLB shootdown: after it the
architecture allows the new translation only), and the live side is held to
the current walk of the guest's tables exactly.  The relaxed mode, which
accepts what a TLB may still hold, is built on spec/tlb.py, not here.  The
models describe this host: MAXPHYADDR and GBPAGES from the host's
KVM_GET_SUPPORTED_CPUID (48 and no 1GB pages on this project's machines),
recorded in vm_setup.  Every root a vCPU may load (ROOTS) holds the agent's
PML4E at index 511 (set-up host writes on every side); CR3 loads of other
tables go to a root.

Compared after every step, besides the mmu family's oracles (the oracle
that fires on the live side is "live kernel"):

  access outcome   the oracle's walk: completed (a load's value is the
                   oracle memory's), #PF with the same error code and CR2,
                   or an MMIO exit at the same gpa, length and direction
  guest memory     the live backing against the oracle's memory, every A/D
                   bit of every guest pte included: after each op, every
                   page the oracle wrote, the pages of an access's walk and
                   data, and what a host op changed; every FULL_COMPARE_EVERY
                   ops, every byte of every memslot of the test (never the
                   agent's slot)
  dirty log        KVM_GET_DIRTY_LOG reports every gfn the oracle saw
                   written; what live adds, and how the spec's report
                   differs from live's, are metrics

The models' guest memory follows the backing the way the live side's does
(LiveWorld.host_zero, host_move): a new memslot's and a deleted one's gfns
read as 0, a moved memslot's data moves with it, and an unmapped range reads
as 0 (private anonymous memory).

What the live machine keeps out of its examples, each said where it is done
(LiveMachine.rewrite) and counted in the metrics: ops the live side cannot
run; stores that would reach the agent's PML4E or link a root (or the
agent's memory) into the guest's tables; addresses in PML4 slot 511, or
whose walk reaches the agent's memory; and, named findings of this host's
kernel (findings/live-*.json, each replayable with `mmuspec replay`):
fetches the oracle completes at a gpa with no memslot
(live-fetch-no-memslot-internal-error), supervisor fetches of instructions
KVM cannot single-step (live-cpl0-fetch-emulation-failure), fetches of an
intercepted instruction near its page's end
(live-intercepted-fetch-walks-next-page), user accesses in PML4 slot 256
(live-user-pml4-slot-256), supervisor stores under CR0.WP=0 to a clean
page with no memslot (live-mmio-write-wp0-no-dirty), host unmaps of pages
the models shadow as guest tables (live-madvise-shadowed-guest-table), and
pte stores left without a flush (live-user-stale-translation-without-flush).  A fetch the agent
refuses (its instruction could touch memory outside the agent's scratch
page), or whose instruction crosses into the next page, is not compared: a
load of the same address stands in for its A bits (counted).

Cost.  Each world (a Hypothesis example, a replay) has a VM process of its
own; a pool starts them ahead and closes them behind, in the background
(_VmPool: a VM process takes ~75 ms to start).  Every op is one round trip
(set-up ops before the first vCPU go in one; a MOV CR3 of the loaded CR3 goes
with the next op's), and the world's thread and its VM process share one CPU
while it runs (pin_together: on this kind of machine a round trip to a VM
process whose CPU went idle costs milliseconds).  bench_live() measures the
live side's steps per second beside spec's and impl's.

What a clean campaign means is tested (sampled on this host's kernel), not
proved.
"""

import atexit
import concurrent.futures
import os
import struct
import threading
import time
import weakref
from collections import Counter

from hypothesis import strategies as st
from hypothesis.stateful import initialize, precondition, rule
from iced_x86 import CpuidFeature, Decoder, DecoderError, FlowControl, Mnemonic

from impl.mmu import ShadowMmu as ImplShadowMmu
from live.agent import AGENT_GPA, AGENT_PAGES, AGENT_PML4_INDEX, agent_pml4e
from spec.consts import (PAGE_SHIFT, PAGE_SIZE, PT64_BASE_ADDR_MASK, PT64_NX_MASK, PT_DIRTY_MASK,
                         PT_PAGE_SIZE_MASK, PT_PRESENT_MASK, PT_WRITABLE_MASK)
from spec.mmu import MMIO, OK, PAGE_FAULT
from spec.walk import FETCH, PAGING_64, READ, WRITE, linear_address

from .core import BadOp, Discrepancy
from .families import Family
from .mmu import TABLE_GFNS, MmuMachine, MmuWorld, swarm
from .walk import show_pfec, show_pte

MODE = "shadow64"
ORACLE = "live kernel"
ROOTS = (TABLE_GFNS[0], TABLE_GFNS[-1])   # the tables a vCPU may load as CR3: each holds the agent's PML4E
AGENT_GFNS = range(AGENT_GPA >> PAGE_SHIFT, (AGENT_GPA >> PAGE_SHIFT) + AGENT_PAGES)
AGENT_ENTRY_GPAS = tuple((r << PAGE_SHIFT) + 8 * AGENT_PML4_INDEX for r in ROOTS)
FULL_COMPARE_EVERY = 256  # ops between comparisons of every byte of every memslot
READ_CHUNK = 256 << 10    # bytes of live memory read per round trip
MAX_LIVE_VCPUS = 3
START_SECONDS = 60.0
POOL_IDLE_SECONDS = 1.0   # spare VM processes nobody takes are closed after this
POOL_SPARES = 2           # VM processes started ahead of the worlds that will take them

# The findings (findings/<name>.json, each replayable with `mmuspec replay`) the
# live machines keep out of their examples, each where it does so.
FINDINGS = ("live-fetch-no-memslot-internal-error", "live-cpl0-fetch-emulation-failure",
            "live-intercepted-fetch-walks-next-page", "live-user-pml4-slot-256",
            "live-mmio-write-wp0-no-dirty", "live-madvise-shadowed-guest-table",
            "live-user-stale-translation-without-flush", "live-efer-nx-shared-large-page")

# The instructions a supervisor (CPL 0) fetch may run here: this host single-steps
# them through KVM's instruction emulator, which ends the KVM_RUN with
# KVM_EXIT_INTERNAL_ERROR on what it does not emulate (x87, MMX, SSE, hint NOPs,
# LAR, LSL, WAIT, most opcodes invalid in 64-bit mode: tested, every one-byte
# and 0F-prefixed opcode on this host; CPL 3 runs them all): finding
# live-cpl0-fetch-emulation-failure.
CPL0_FEATURES = frozenset(getattr(CpuidFeature, n) for n in (
    "INTEL8086", "INTEL186", "INTEL286", "INTEL386", "INTEL486", "X64", "CMOV"))
CPL0_NOT_EMULATED = frozenset((Mnemonic.LAR, Mnemonic.LSL, Mnemonic.WAIT))
UD_MNEMONICS = frozenset((Mnemonic.UD0, Mnemonic.UD1, Mnemonic.UD2))
# An instruction KVM intercepts (#UD, #GP, CPUID: tested, every one-byte and
# 0F-prefixed opcode at a page's last 4 bytes, at CPL 3) makes this host's KVM
# read 15 bytes from RIP: within 15 bytes of its page's end that walks the next
# page, and sets A in its pte, though the instruction ends in its own page: finding
# live-intercepted-fetch-walks-next-page.
# A user access in PML4 slot 256 (0xffff800000000000 + 512 GB) faults on this host
# however the guest maps it (kvm_pvm; tested, every slot 0..510 at CPL 3): finding
# live-user-pml4-slot-256.
PVM_USER_PML4_INDEX = 256

# -- which mmu ops the live side runs ------------------------------------------------
LIVE_RUNS = {
    "vm_setup": "KVM_CREATE_VM in a VM process of its own, with the agent's memslot",
    "host_write": "a host write into the slot's backing, before the first KVM_RUN (set-up)",
    "memslot_create": "KVM_SET_USER_MEMORY_REGION: a new slot on fresh private anonymous memory",
    "memslot_delete": "KVM_SET_USER_MEMORY_REGION of size 0 (KVM zaps every shadow page)",
    "memslot_move": "KVM_SET_USER_MEMORY_REGION at a new gpa, same backing (KVM zaps every shadow page)",
    "memslot_dirty_log": "KVM_SET_USER_MEMORY_REGION changing KVM_MEM_LOG_DIRTY_PAGES",
    "get_dirty_log": "KVM_GET_DIRTY_LOG",
    "vcpu_create": "KVM_CREATE_VCPU in long mode (shadow64 only), running the agent",
    "set_cr3": "the guest's MOV to CR3 (of a root that holds the agent's PML4E)",
    "set_control": "CR0.WP: the guest's MOV to CR0; EFER.NX: the guest's WRMSR (CR4.PSE: models only)",
    "invlpg": "the guest's INVLPG",
    "access": "the guest's load, store (of the bytes already there, for a store with no data) or "
              "single-stepped instruction fetch, at CPL 0, or CPL 3 for a user access",
    "unmap_hva_range": "madvise(MADV_DONTNEED) on the slot's private anonymous backing (the MMU "
                       "notifier); the pages read as 0 after it, on the models too",
}
MODELS_ONLY = {
    "change_pte": "KSM merging a page: no VMM or guest asks for it; the data the guest sees is unchanged",
    "age": "the notifier's aging (kvm_age_hva): only the host's reclaim asks; nothing guest-visible changes",
    "tlb_evict": "the CPU's choice of a TLB entry to drop (and the live family's models run without TLBs)",
    "set_paging_mode": "a switch to 64-bit paging only, which the guest already uses (this host runs "
                       "long mode only; other modes are refused)",
}
_ZAP_PHASES = ("the zap's lock-break phases have no VMM equivalent; a zap-all is reached through "
               "memslot_delete and memslot_move")
NOT_RUN = {"memslot_change_begin": _ZAP_PHASES, "zap_resume": _ZAP_PHASES,
           "memslot_change_commit": _ZAP_PHASES}
GUEST_COMMANDS = ("access", "set_cr3", "set_control", "invlpg")   # ops the guest agent runs
UNKNOWN = ("new in the mmu family: not mapped to a VMM or guest action yet, so the live "
           "machine leaves it out of its examples")


def mmu_ops():
    """Every op the mmu family's world knows (its op_* handlers and vm_setup)."""
    return ["vm_setup"] + sorted(n[3:] for n in dir(MmuWorld) if n.startswith("op_"))


def live_op_table():
    """[(op, "live" | "models only" | "not run", how)] for every mmu op."""
    out = []
    for op in mmu_ops():
        if op in LIVE_RUNS:
            out.append((op, "live", LIVE_RUNS[op]))
        elif op in MODELS_ONLY:
            out.append((op, "models only", MODELS_ONLY[op]))
        else:
            out.append((op, "not run", NOT_RUN.get(op, UNKNOWN)))
    return out


# -- the host --------------------------------------------------------------------------
def host_cpu():
    """(MAXPHYADDR, GBPAGES) of this host's KVM_GET_SUPPORTED_CPUID (live.probe)."""
    from live.probe import probe
    p = probe()
    return (p.maxphyaddr or 48), bool(p.gbpages)


def available():
    """(ok, reason): whether the live family can run here (family field `available`)."""
    from live.kvm import usable
    ok, why = usable()
    if not ok:
        return False, why
    from live.probe import probe
    p = probe()
    if not p.usable:
        return False, p.reason
    long64 = p.paging_modes.get("long64")
    if long64 != "runs":
        return False, f"a long-mode guest does not run here ({long64})"
    if not p.agent.get("runs"):
        return False, f"the guest agent does not run here: {p.agent.get('error', '?')}"
    return True, (f"{'/'.join(p.kvm_modules) or 'kvm'} (tdp_mmu {p.tdp_mmu}), MAXPHYADDR "
                  f"{p.maxphyaddr}, GBPAGES {int(bool(p.gbpages))}")


class _VmPool:
    """Live VMs started ahead and closed behind.  A world takes a VM whose
    process is already up (its Machine built), and one more starts in the
    background for the next world; a world's VM is closed in the background
    too (a VM process takes tens of milliseconds to end).  A spare nobody
    takes within POOL_IDLE_SECONDS is closed; drain_pool() closes the spare
    and waits for every close begun (tests, and at exit)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.executor = None
        self.spares = []       # future LiveVms, oldest first
        self.closing = set()   # futures of closes under way
        self.last = 0.0
        self.reaper = None

    def _submit(self, fn, *args):
        if self.executor is None:
            self.executor = concurrent.futures.ThreadPoolExecutor(POOL_SPARES + 1,
                                                                  thread_name_prefix="live-vm")
        return self.executor.submit(fn, *args)

    def take(self):
        """A future LiveVm for a new world."""
        with self.lock:
            fut = self.spares.pop(0) if self.spares else self._submit(_start_vm)
            while len(self.spares) < POOL_SPARES:
                self.spares.append(self._submit(_start_vm))
            self.last = time.monotonic()
            if self.reaper is None or not self.reaper.is_alive():
                self.reaper = threading.Thread(target=self._reap, name="live-pool-reaper",
                                               daemon=True)
                self.reaper.start()
        return fut

    def close_later(self, fut):
        """Close the VM of future LiveVm `fut` in the background."""
        with self.lock:
            done = self._submit(_close_future, fut)
            self.closing.add(done)
        done.add_done_callback(self._closed)

    def _closed(self, done):
        with self.lock:
            self.closing.discard(done)

    def _reap(self):
        while True:
            time.sleep(POOL_IDLE_SECONDS / 4)
            with self.lock:
                if not self.spares:
                    self.reaper = None
                    return
                if time.monotonic() - self.last < POOL_IDLE_SECONDS:
                    continue
                idle, self.spares = self.spares, []
            for fut in idle:
                self.close_later(fut)

    def drain(self):
        with self.lock:
            idle, self.spares = self.spares, []
        for fut in idle:
            _close_future(fut)
        while True:
            with self.lock:
                pending = list(self.closing)
            if not pending:
                return
            concurrent.futures.wait(pending, timeout=START_SECONDS)


_pool = _VmPool()


def drain_pool():
    """Close the spare live VM and wait for every close under way."""
    _pool.drain()


def _close_in_background(fut):
    """A world's finalizer: its VM is closed by the pool's threads."""
    try:
        _pool.close_later(fut)
    except RuntimeError:   # at interpreter exit the executor takes no more work
        _close_future(fut)


def _after_fork_in_child():
    global _pool
    _pool = _VmPool()   # the parent's threads and spares are not ours (live.vm forgets them)


atexit.register(drain_pool)
os.register_at_fork(after_in_child=_after_fork_in_child)


_busy_cpu = None   # the CPU a world and its VM process last ran on (pin_together)


def _this_cpu():
    """The CPU this thread last ran on (/proc/thread-self/stat, field 39), or None."""
    try:
        with open("/proc/thread-self/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[36])
    except (OSError, ValueError, IndexError):
        return None


def pin_together(pid):
    """Run this thread and VM process `pid` on one CPU, the thread's own; returns
    (thread id, its former CPU set) to undo it with unpin(), or None.

    A round trip to a VM process whose CPU went idle while the models ran costs
    milliseconds on this kind of machine (itself a guest: waking an idle CPU
    goes through the hypervisor); on one CPU the hand-off is a local context
    switch (tested: a recorded campaign's batches, 0.5 ms of work between
    them: 3.4 s unpinned, 1.2 s pinned)."""
    global _busy_cpu
    cpu = _this_cpu()
    if cpu is None:
        return None
    try:
        tid = threading.get_native_id()
        before = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {cpu})
        os.sched_setaffinity(pid, {cpu})
    except OSError:
        return None
    _busy_cpu = cpu
    return tid, before


def unpin(pinned, pid=None):
    """Give the thread pin_together() pinned its CPU set back, and move VM process
    `pid` (about to close) off that CPU."""
    if pinned is not None:
        try:
            os.sched_setaffinity(pinned[0], pinned[1])
        except OSError:
            pass
    if pid is not None:
        _elsewhere(pid)


def _elsewhere(pid):
    """Keep VM process `pid` (starting or closing) off the CPU a world runs on."""
    cpus = os.sched_getaffinity(0) - {_busy_cpu}
    if _busy_cpu is not None and cpus:
        try:
            os.sched_setaffinity(pid, cpus)
        except OSError:
            pass


def open_vm(owner):
    """(future LiveVm, finalizer): a VM from the pool for `owner` (a world); the
    finalizer closes it in the background, when called or when `owner` is
    collected, whichever comes first."""
    fut = _pool.take()
    return fut, weakref.finalize(owner, _close_in_background, fut)


def _start_vm():
    """A LiveVm whose VM process has built its VM (a read of the agent's memory)."""
    from live.vm import LiveVm
    vm = LiveVm()
    _elsewhere(vm.pid)   # its start-up (the imports, the VM) off the busy CPU
    try:
        vm.read_memory(AGENT_GPA, 8)
    except BaseException:
        vm.close()
        raise
    return vm


def _close_future(fut):
    """Close the VM of a future LiveVm (waiting for one still starting)."""
    try:
        vm = fut.result(timeout=START_SECONDS)
    except Exception:
        return
    vm.close()


def crosses_page(data, ip):
    """Whether the instruction starting `data` (the bytes up to its page's end)
    needs bytes of the next page."""
    if len(data) >= 15:
        return False
    d = Decoder(64, data, ip=ip)
    ins = d.decode()
    return ins.is_invalid and d.last_error == DecoderError.NO_MORE_BYTES


def touches(res, gfns):
    """Whether walk result `res` read an entry in, or reached a page of, `gfns`."""
    if res.ok and res.gfn in gfns:
        return True
    return any(e.gpa is not None and e.gpa >> PAGE_SHIFT in gfns for e in res.path)


def cpl0_fetch_runs(data, ip):
    """Whether the instruction decoded from `data` at `ip` is one this host's KVM
    runs when a supervisor fetch single-steps it (CPL0_FEATURES)."""
    ins = Decoder(64, data, ip=ip).decode()
    if ins.is_invalid or ins.mnemonic in CPL0_NOT_EMULATED:
        return False
    return all(f in CPL0_FEATURES for f in ins.cpuid_features())


def runs_unintercepted(data, ip):
    """Whether the instruction decoded from `data` at `ip` completes with no
    exit to KVM at either CPL (no #UD, #GP, I/O, interrupt or CPUID): one
    KVM intercepts makes it read 15 bytes from RIP (finding
    live-intercepted-fetch-walks-next-page)."""
    ins = Decoder(64, data, ip=ip).decode()
    if not cpl0_fetch_runs(data, ip) or ins.mnemonic in UD_MNEMONICS:
        return False
    oc = ins.op_code()
    return not (oc.must_be_cpl0 or oc.may_require_cpl0 or ins.is_privileged or oc.is_input_output
                or ins.flow_control == FlowControl.INTERRUPT)


def model_bytes(mem, gpa, size):
    """`size` bytes of a spec.guest_memory.GuestMemory from `gpa` (4-aligned ranges
    are the fast case; any range works)."""
    lo, hi = gpa >> 2, (gpa + size + 3) >> 2
    buf = bytearray(4 * (hi - lo))
    for w, v in mem.words.items():
        if lo <= w < hi:
            struct.pack_into("<I", buf, 4 * (w - lo), v)
    start = gpa - 4 * lo
    return bytes(buf[start:start + size])


def show(outcome):
    status, info = outcome
    if status == PAGE_FAULT:
        return show_pfec(info)
    if info is None:
        return str(status)
    return f"{status} gfn {info:#x}"


def show_live(out):
    if out is None:
        return "(not run)"
    if isinstance(out, (set, frozenset)):
        return "[" + ", ".join(hex(g) for g in sorted(out)) + "]"
    if not hasattr(out, "kind"):
        return repr(out)
    if out.kind == "ok":
        return "ok" + (f" value {out.value:#x}" if out.value is not None else "")
    if out.kind == "#PF" and out.error_code is not None and out.cr2 is not None:
        return f"{show_pfec(out.error_code)} cr2 {out.cr2:#x}"
    if out.kind == "mmio":
        return f"MMIO exit gpa {out.gpa:#x} {out.length} bytes {'write' if out.is_write else 'read'}"
    return f"{out.kind}: {out.detail}"


# -- the world ------------------------------------------------------------------------
class LiveWorld(MmuWorld):
    """The mmu family's world plus a live VM (module docstring)."""

    minimize_same_message = True   # diff.core.minimize_ops: not into a known finding

    def __init__(self, impl_cls, mode=MODE):
        if mode != MODE:
            raise ValueError(f"the live family runs mode {MODE} only, not {mode!r}")
        super().__init__(impl_cls, mode)
        self.vm_future = None
        self._finalizer = None
        self.host = None           # (MAXPHYADDR, GBPAGES) the models describe
        self.queue = []            # live requests not sent yet (set-up, before the first vCPU)
        self.deferred = {}         # index in queue -> the op whose outcome is judged at the send
        self.started = False       # a vCPU exists: every op is sent and compared at once
        self.pages = []            # [((gpa, size), bytes)]: live memory read after the op
        self.ops = 0
        self.live = Counter()      # the live side's counts (metrics)
        self.ms = Counter()        # milliseconds per side (metrics)
        self.recording = False     # replay: keep a transcript of every side
        self.transcript = []
        self._names = {}
        self._last_each = {}
        self._live_outs = []
        self._slots_before = {}
        self._log_read = 0          # the oracle's memory log up to here is compared
        self._extra_pages = set()   # gfns to compare after this op
        self._extra_ranges = []     # (lo, hi) gfn ranges to compare after this op
        self._written = set()
        self._cr3_before = None

    # -- the VM ---------------------------------------------------------------------
    def _open(self):
        self.vm_future, self._finalizer = open_vm(self)

    def vm(self):
        try:
            vm = self.vm_future.result(timeout=START_SECONDS)
        except concurrent.futures.TimeoutError:
            raise RuntimeError(f"the live VM did not start within {START_SECONDS:g} s") from None
        except (OSError, RuntimeError) as e:
            raise RuntimeError(f"the live VM could not start: {e}") from None
        if getattr(self, "_pinned", False) is False:
            self._pinned = pin_together(vm.pid)
        return vm

    def close(self):
        """Close the live VM (its process, fds and mappings) in the background;
        idempotent.  drain_pool() waits for every close begun."""
        pinned, self._pinned = getattr(self, "_pinned", None), None
        if pinned is not None:   # a VM that started (pinning needs its pid)
            unpin(pinned, self.vm_future.result().pid)
        if self._finalizer is not None:
            self._finalizer()

    # -- ops ------------------------------------------------------------------------
    def classify(self, name, a):
        """"live" or "models", or BadOp for an op the live family does not run."""
        if name in NOT_RUN:
            raise BadOp(f"op {name!r} is not run by the live family: {NOT_RUN[name]}")
        if name == "set_control" and a.get("reg") == "cr4.pse":
            return "models"   # CR4.PSE is ignored under long-mode paging (SDM 4.5)
        if name == "set_paging_mode":
            if a.get("mode") != PAGING_64:
                raise BadOp(f"this host runs long mode only: no switch to {a.get('mode')!r} paging")
            return "models"
        if name == "vcpu_create" and a.get("mode") != MODE:
            raise BadOp(f"the live family runs {MODE} vCPUs only, not {a.get('mode')!r}")
        if name in MODELS_ONLY:
            return "models"
        if name in LIVE_RUNS:
            return "live"
        raise BadOp(f"op {name!r} is not run by the live family ({UNKNOWN})")

    def apply(self, op):
        name, a = op
        self._live_outs, self._last_each = [], {}
        if name == "vm_setup":
            try:
                self._setup_host(a)
                super().apply(op)
                self._names = {id(m): n for n, m in self.sides.items()}
                self._open()
            finally:
                self._note(op, "live")
            return
        where = self.classify(name, a)
        self.ops += 1
        self.pages, self._extra_pages, self._extra_ranges = [], set(), []
        if self.sides is not None:
            self._slots_before = dict(self.oracle.slots)
            if name == "set_cr3" and a.get("vcpu") in self.oracle.cpus:
                self._cr3_before = self.oracle.cpus[a["vcpu"]].cr3
        try:
            super().apply(op)
            if where == "models":
                self.live[f"ops run on the models only: {name}"] += 1
                return
            t = time.perf_counter()
            try:
                getattr(self, "live_" + name)(**a)
            finally:
                self.ms["live"] += (time.perf_counter() - t) * 1000
        finally:
            self._note(op, where)

    def each(self, what, fn):
        """MmuWorld.each, timing each side and keeping its results (the transcript)."""
        def timed(m):
            t = time.perf_counter()
            try:
                return fn(m)
            finally:
                self.ms[self._names.get(id(m), "?")] += (time.perf_counter() - t) * 1000
        out = super().each(what, timed)
        self._last_each = out
        return out

    def _setup_host(self, a):
        maxphy, gb = a.get("maxphyaddr"), a.get("gbpages")
        if maxphy is None or gb is None:
            hm, hg = host_cpu()
            maxphy, gb = (hm if maxphy is None else maxphy), (hg if gb is None else gb)
        if not isinstance(maxphy, int) or isinstance(maxphy, bool) or not 36 <= maxphy <= 52 \
                or not isinstance(gb, bool):
            raise BadOp(f"vm_setup: maxphyaddr {maxphy!r} (36..52) and gbpages {gb!r} (a bool)")
        self.host = (maxphy, gb)

    def _describe_host(self, vcpu):
        """The models' vCPU `vcpu` gets this host's CPUID: MAXPHYADDR and GBPAGES
        (the walkers read them at each walk; KvmVcpu rebuilds its context)."""
        maxphy, gb = self.host
        guests = [m.mmu.vcpus[vcpu].guest for m in self.sides.values()]
        guests += [o.cpus[vcpu] for o in self._oracles()]
        for g in guests:
            g.maxphyaddr, g.gbpages = maxphy, gb
            if hasattr(g, "kvm_mmu_reset_context"):
                g.kvm_mmu_reset_context()

    def _oracles(self):
        os_ = getattr(self, "oracles", None) or {"spec": self.oracle}
        return list({id(o): o for o in os_.values()}.values())

    # -- model memory follows the backing ------------------------------------------
    def _memories(self):
        """(GuestMemory, its store history or None) of every model side and oracle."""
        out = [(m.mem, None) for m in self.sides.values()]
        out += [(o.mem, getattr(o, "history", None)) for o in self._oracles()]
        return out

    def host_zero(self, lo_gfn, hi_gfn):
        """Gfns lo..hi-1 read as 0 on every model (fresh or freed private
        anonymous memory, as on the live side)."""
        lo, hi = lo_gfn << (PAGE_SHIFT - 2), hi_gfn << (PAGE_SHIFT - 2)
        for mem, hist in self._memories():
            for w in [w for w in mem.words if lo <= w < hi]:
                if hist is not None:
                    hist.record(w << 2, 4)
                del mem.words[w]

    def host_move(self, old_gfn, npages, new_gfn):
        """A moved memslot keeps its backing: the data moves with it."""
        shift = PAGE_SHIFT - 2
        olo, ohi = old_gfn << shift, (old_gfn + npages) << shift
        delta = (new_gfn - old_gfn) << shift
        for mem, hist in self._memories():
            moved = {w + delta: v for w, v in mem.words.items() if olo <= w < ohi}
            nlo, nhi = olo + delta, ohi + delta
            for w in [w for w in mem.words if olo <= w < ohi or nlo <= w < nhi] + list(moved):
                if hist is not None:
                    hist.record(w << 2, 4)
                mem.words.pop(w, None)
            mem.words.update(moved)

    # -- sending to the live VM ------------------------------------------------------
    def _send(self, what, reqs):
        """Queue `reqs` (live requests); once a vCPU exists, send everything queued
        and the reads of the pages to compare, in one round trip.  Returns the
        results of `reqs` (None while queued)."""
        self.queue.extend((m, tuple(a), {}) for m, a in reqs)
        if not self.started:
            return None
        chunks = [(g + off, min(READ_CHUNK, n - off)) for g, n in self._reads()
                  for off in range(0, n, READ_CHUNK)]
        first, total = [], 0   # what fits in this round trip's reply
        while chunks and total + chunks[0][1] <= READ_CHUNK:
            total += chunks[0][1]
            first.append(chunks.pop(0))
        queued, self.queue = self.queue, []
        deferred, self.deferred = self.deferred, {}
        batch = queued + [("read_memory", c, {}) for c in first]
        vm = self.vm()
        try:
            results = vm.batch(batch)
            # The rest one chunk per round trip: a reply of megabytes costs far more
            # than its chunks' (the pipe; tested: 4 MB 12.7 ms, 256 KB 0.09 ms).
            rest = [(c, vm.read_memory(*c)) for c in chunks]
        except ValueError as e:   # the VMM side refused: the op makes no sense live
            raise BadOp(f"{what}: the live VM refused it: {e}") from None
        except OSError as e:      # KvmError: an ioctl failed where the models went on
            raise Discrepancy(ORACLE, f"{what}: {e}") from None
        except RuntimeError as e:  # LiveVmError: the VM process failed or timed out
            raise Discrepancy(ORACLE, f"{what}: the VM process failed: {e}") from None
        k = len(queued)
        for i, earlier in deferred.items():   # an earlier op's, sent only now
            if results[i] is not None and results[i].kind != "ok":
                raise Discrepancy(ORACLE, f"{earlier} (sent with {what}): the models completed "
                                          f"it, live {show_live(results[i])}")
        self.pages = list(zip(first, results[k:])) + rest
        self._live_outs.extend(results[k - len(reqs):k])
        return results[k - len(reqs):k]

    def _reads(self):
        """(gpa, size) ranges of live memory to read after this op: every page the
        oracle wrote since the last read, the pages of an access's walk and data,
        the ranges the op changed on the host side; every memslot's every byte
        each FULL_COMPARE_EVERY ops."""
        slots = sorted((b, b + n) for b, n, _, _ in self.oracle.slots.values())
        log = self.oracle.mem.log
        gfns = {w.gfn for w in log[self._log_read:]} | self._extra_pages
        self._log_read = len(log)
        if self.ops % FULL_COMPARE_EVERY == 0:
            self.live["full memory comparisons"] += 1
            return [(b << PAGE_SHIFT, (e - b) << PAGE_SHIFT) for b, e in slots]
        ranges = [(g, g + 1) for g in gfns] + self._extra_ranges
        merged = []
        for lo, hi in sorted(ranges):   # neighbouring pages in one read
            if merged and lo <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], hi)
            else:
                merged.append([lo, hi])
        out = []
        for lo, hi in merged:
            for b, e in slots:   # the parts inside memslots
                if max(lo, b) < min(hi, e):
                    out.append((max(lo, b) << PAGE_SHIFT, (min(hi, e) - max(lo, b)) << PAGE_SHIFT))
        return out

    def _judge_ok(self, what, out):
        if out is not None and out[0].kind != "ok":
            raise Discrepancy(ORACLE, f"{what}: the models completed it, live {show_live(out[0])}")

    # -- the live side of each op -----------------------------------------------------
    def live_host_write(self, gpa, size, value):
        return self._send("host_write", [("write_memory", (gpa, value.to_bytes(size, "little")))])

    def live_memslot_create(self, slot, base_gfn, npages, readonly, dirty_log, host_level):
        self.host_zero(base_gfn, base_gfn + npages)
        return self._send(f"memslot_create({slot})",
                          [("memslot_create", (slot, base_gfn, npages, readonly, dirty_log))])

    def live_memslot_delete(self, slot):
        base, n, _, _ = self._slots_before[slot]
        self.host_zero(base, base + n)
        return self._send(f"memslot_delete({slot})", [("memslot_delete", (slot,))])

    def live_memslot_move(self, slot, base_gfn):
        base, n, _, _ = self._slots_before[slot]
        self.host_move(base, n, base_gfn)
        self._extra_ranges.append((base_gfn, base_gfn + n))
        return self._send(f"memslot_move({slot})", [("memslot_move", (slot, base_gfn))])

    def live_memslot_dirty_log(self, slot, on):
        return self._send(f"memslot_dirty_log({slot})", [("memslot_dirty_log", (slot, on))])

    def op_get_dirty_log(self, slot):
        self._written = set(self.oracle.written.get(slot, ()))
        super().op_get_dirty_log(slot)

    def live_get_dirty_log(self, slot):
        what = f"GET_DIRTY_LOG(slot {slot})"
        out = self._send(what, [("get_dirty_log", (slot,))])
        if out is None:
            return None
        got, written = set(out[0]), self._written
        missed = sorted(written - got)
        if missed:
            raise Discrepancy(ORACLE, f"{what} on live misses gfns {[hex(g) for g in missed]} the "
                                      f"guest wrote")
        spec = set(self._last_each.get("spec", ()))
        self.live["dirty log calls"] += 1
        self.live["dirty gfns live reported beyond the oracle's"] += len(got - written)
        self.live["dirty gfns spec reported, live did not"] += len(spec - got)
        self.live["dirty gfns live reported, spec did not"] += len(got - spec)
        return got

    def live_vcpu_create(self, vcpu, mode, cr3, cr0_wp, cr4_pse, efer_nx):
        self._describe_host(vcpu)
        if self.live["vcpus"] >= MAX_LIVE_VCPUS:
            raise BadOp(f"the live family runs at most {MAX_LIVE_VCPUS} vCPUs")
        self.live["vcpus"] += 1
        self.started = True
        return self._send(f"vcpu_create({vcpu})", [("create_vcpu", (vcpu, cr3, cr0_wp, efer_nx))])

    def live_set_cr3(self, vcpu, cr3):
        what = f"vcpu {vcpu} mov cr3 {cr3:#x}"
        if self.started and self.oracle.cpus[vcpu].cr3 == self._cr3_before:
            # A MOV CR3 of the CR3 already loaded changes no memory and no
            # translation the oracle allows (a flush, as the shootdowns after a
            # store are): it goes with the next op's round trip, and its outcome
            # is judged there (self.deferred).
            self.queue.append(("mov_cr3", (vcpu, cr3), {}))
            self.deferred[len(self.queue) - 1] = what
            self.live["MOV CR3 of the loaded CR3 sent with the next op"] += 1
            return None
        out = self._send(what, [("mov_cr3", (vcpu, cr3))])
        self._judge_ok(what, out)
        return out and out[0]

    def live_set_control(self, vcpu, reg, value):
        what = f"vcpu {vcpu} {reg}={int(value)}"
        method = {"cr0.wp": "set_cr0_wp", "efer.nx": "set_efer_nx"}[reg]
        out = self._send(what, [(method, (vcpu, bool(value)))])
        self._judge_ok(what, out)
        return out and out[0]

    def live_invlpg(self, vcpu, addr):
        what = f"vcpu {vcpu} invlpg {addr:#x}"
        out = self._send(what, [("invlpg", (vcpu, linear_address(PAGING_64, addr)))])
        self._judge_ok(what, out)
        return out and out[0]

    def live_unmap_hva_range(self, slot, gfn, npages):
        base, n, _, _ = self._slots_before[slot]
        lo, hi = max(gfn, base), min(gfn + npages, base + n)
        if lo >= hi:
            return None
        self.host_zero(lo, hi)
        self._extra_ranges.append((lo, hi))
        return self._send(f"madvise(DONTNEED) slot {slot} gfn {lo:#x}+{hi - lo}",
                          [("madvise_dontneed", (slot, lo, hi - lo))])

    def kept_gfn(self, want):
        """The gfn whose memory a store with no data keeps: the page the oracle's
        access reached (`want`, the models' outcome), None if it did not."""
        return want[1] if want[0] == OK else None

    def live_access(self, vcpu, addr, kind, user, value=None, size=None):
        la = linear_address(PAGING_64, addr)
        cpl = 3 if user else 0
        want = self.last_outcome
        what = f"vcpu {vcpu} {'user' if user else 'supervisor'} {kind} {la:#x}"
        n = 8 if la % 8 == 0 else 1
        if kind == READ:
            req = ("access", (vcpu, la, "read", n, None, cpl))
        elif kind == WRITE and value is not None:
            n = size
            req = ("access", (vcpu, la, "write", size, value, cpl))
        elif kind == WRITE:
            # A store with no data: the guest stores what the oracle's memory holds
            # there after the walk (A/D included), a single write access that keeps
            # memory as it is.  (`or [x], 0` would not do: its load is an access of
            # its own, which sets A through a read-only pte before the store faults.)
            keep, gfn = 0, self.kept_gfn(want)
            if gfn is not None:
                keep = int.from_bytes(model_bytes(self.oracle.mem, (gfn << PAGE_SHIFT) |
                                                  (la & 0xFFF), n), "little")
            req = ("access", (vcpu, la, "write", n, keep, cpl))
        elif want[0] == OK and self._crosses_page(want[1], la):
            self.live["fetches not compared: the instruction crosses into the next page "
                      "(a load stood in)"] += 1
            self._note_walk(vcpu, la, kind, user, want)
            return self._stand_in(what, vcpu, la, cpl, want)
        else:
            req = ("access", (vcpu, la, "fetch", 8, None, cpl))
        self._note_walk(vcpu, la, kind, user, want)
        out = self._send(what, [req])
        if out is None:
            return None
        out = out[0]
        if out.kind == "refused":
            if want[0] != OK:
                self.live["fetches not compared: refused by the agent (the models fault)"] += 1
                return out
            self.live["fetches not compared: refused by the agent (a load stood in)"] += 1
            return self._stand_in(what, vcpu, la, cpl, want)
        self._judge_access(what, want, out, la, req[1][2], n)
        self.live["accesses compared"] += 1
        return out

    def _note_walk(self, vcpu, la, kind, user, want):
        """Compare, after this access, the pages of its walk (every table it read)
        and of its data."""
        self._extra_pages |= {e.gpa >> PAGE_SHIFT
                              for e in self.oracle.cpus[vcpu].predict(la, kind, user).path
                              if e.gpa is not None}
        if want[0] == OK:
            self._extra_pages.add(want[1])

    def _stand_in(self, what, vcpu, la, cpl, want):
        """A load of the fetch's address: the same walk and A bits (a completed fetch
        has every right a load needs)."""
        n = 8 if la % 8 == 0 else 1
        self._extra_pages.add(want[1])
        out = self._send(what, [("access", (vcpu, la, "read", n, None, cpl))])
        self._judge_access(what + " (a load standing in for the fetch)", want, out[0], la, "read", n)
        return out[0]

    def _judge_access(self, what, want, out, la, kind, n):
        status, info = want
        expected = None
        if status == OK:
            good = out.kind == "ok"
            if good and kind == "read":
                expected = int.from_bytes(model_bytes(self.oracle.mem, (info << PAGE_SHIFT) |
                                                      (la & 0xFFF), n), "little")
                good = out.value == expected
        elif status == PAGE_FAULT:
            good = out.kind == "#PF" and out.error_code == info and out.cr2 == la
        elif status == MMIO:
            gpa = (info << PAGE_SHIFT) | (la & 0xFFF)
            write = kind == "write"
            if kind == "fetch":   # an exit's length is the fetched bytes': not the op's
                good = out.kind == "mmio" and (out.gpa, out.is_write) == (gpa, False)
                expected = f"gpa {gpa:#x} read"
            else:
                good = out.kind == "mmio" and (out.gpa, out.length, out.is_write) == (gpa, n, write)
                expected = f"gpa {gpa:#x} {n} bytes {'write' if write else 'read'}"
        else:
            good = False
        if good:
            return
        sides = ", ".join(f"{k} {show(v)}" for k, v in self._last_each.items())
        exp = f" (value {expected:#x})" if isinstance(expected, int) else \
            f" ({expected})" if expected else ""
        raise Discrepancy(ORACLE, f"{what}: oracle {show(want)}{exp}, {sides}, live {show_live(out)}")

    def _crosses_page(self, gfn, la):
        """Whether the instruction at `la` (gfn its page) continues into the next page."""
        off = la & 0xFFF
        return crosses_page(model_bytes(self.oracle.mem, (gfn << PAGE_SHIFT) | off,
                                        min(15, PAGE_SIZE - off)), la)

    # -- after every step ------------------------------------------------------------
    def check(self):
        super().check()
        if self.pages:
            t = time.perf_counter()
            try:
                self._compare_pages()
            finally:
                self.ms["live"] += (time.perf_counter() - t) * 1000
            self.pages = []

    def _compare_pages(self):
        mem = self.oracle.mem
        for (gpa, size), data in self.pages:
            model = model_bytes(mem, gpa, size)
            if model == data:
                continue
            off = next(i for i in range(0, size, 8) if model[i:i + 8] != data[i:i + 8])
            lv = int.from_bytes(data[off:off + 8], "little")
            ov = int.from_bytes(model[off:off + 8], "little")
            g = gpa + off
            raise Discrepancy(ORACLE, (
                f"guest memory at gpa {g:#x} (gfn {g >> PAGE_SHIFT:#x} entry {(g & 0xFFF) // 8}): "
                f"live {show_pte(lv)}, the oracle {show_pte(ov)}"))

    def metrics(self):
        out = super().metrics()
        for k, v in self.live.items():
            out[f"live: {k}"] = v
        for side, v in self.ms.items():
            out[f"ms in {side}"] = int(v)
        return out

    # -- the transcript (mmuspec replay) ----------------------------------------------
    def start_transcript(self):
        """Keep, for each op from now on, every side's answer and the live guest's
        instructions (mmuspec replay)."""
        self.recording = True

    def _note(self, op, where):
        if not self.recording:
            return
        name = op[0]
        entry = {"op": self.describe(op), "sides": {}, "live": None, "instructions": []}
        if name == "access" and self.last_outcome[0] is not None:
            entry["sides"]["oracle"] = show(self.last_outcome)
        for k, v in self._last_each.items():
            if v is not None:
                entry["sides"][k] = show(v) if isinstance(v, tuple) and len(v) == 2 else repr(v)
        if where == "models":
            entry["live"] = "(not run: models only)"
        elif self._live_outs:
            entry["live"] = "; then ".join("done" if o is None else show_live(o)
                                           for o in self._live_outs)
        elif self.started and name != "vm_setup":
            entry["live"] = "(not run)"
        if self._live_outs and name in GUEST_COMMANDS:
            try:
                entry["instructions"] = self.vm().last_instructions(op[1]["vcpu"])
            except Exception as e:   # a transcript never hides the replay's result
                entry["instructions"] = [f"; (no listing: {e})"]
        self.transcript.append(entry)

    def transcript_lines(self, failing_step=None):
        """The replay as text: each op, every side's answer, the live guest's instructions."""
        lines = []
        for i, e in enumerate(self.transcript):
            mark = " <-- " if failing_step == i else ""
            lines.append(f"{i + 1:3}. {e['op']}{mark}")
            sides = [f"{k} {v}" for k, v in e["sides"].items()]
            if e["live"] is not None:
                sides.append(f"live {e['live']}")
            if sides:
                lines.append("       " + "; ".join(sides))
            for ins in e["instructions"]:
                lines.append("         " + ins)
        return lines


def _describe(op):
    name, a = op
    if name == "vm_setup":
        return (f"KVM_CREATE_VM (models: PTE_LIST_EXT={a.get('pte_list_ext')}, "
                f"MAXPHYADDR={a.get('maxphyaddr')}, GBPAGES={int(bool(a.get('gbpages')))}, "
                f"TLB entries {a.get('tlb_capacity', 'default')})")
    return MmuWorld.describe(op)


LiveWorld.describe = staticmethod(_describe)


def make_world(impl_cls, mode=MODE):
    return LiveWorld(impl_cls, mode)


# -- the state machine ----------------------------------------------------------------
class LiveRewriting:
    """What a live machine adds to its family's machine: every op goes through
    rewrite() ([op], changed, with ops before it, or [] when left out: drop()
    counts why), and the world's VM is closed when the example ends."""

    def emit(self, op):
        for o in self.rewrite(op):
            super().emit(o)

    def teardown(self):
        try:
            super().teardown()
        finally:
            self.world.close()

    def drop(self, why):
        self.world.live[f"ops left out by the live machine: {why}"] += 1
        return []


class LiveMachine(LiveRewriting, MmuMachine):
    """The mmu family's machine, every op rewritten for the live side (rewrite())."""

    shootdowns = True   # the deterministic default (diff/live_relaxed.py goes without)

    @initialize(data=st.data())
    def setup(self, data):
        super().setup(data)
        self.table_at[ROOTS[1]] = (4, 0)   # the second root: the guest edits it like the first
        self.roots = list(ROOTS)

    def predict(self, vcpu, addr, kind, user):
        """The oracle's walk of `addr`, with no effect (A/D writes dropped)."""
        return self.world.oracle.cpus[vcpu].predict(addr, kind, user)

    def rewrite(self, op):
        """The ops to emit for `op` on the live family: [op] as it is, changed, with
        ops before it, or [] (left out; counted)."""
        name, a = op
        w = self.world
        if name == "vm_setup":
            maxphy, gb = host_cpu()
            # The deterministic default: no TLB in the models (a stale translation
            # is the relaxed mode's to accept, not this family's).
            return [[name, {**a, "tlb_capacity": 0, "maxphyaddr": maxphy, "gbpages": gb}]]
        if name in NOT_RUN:
            return self.drop(name)
        if name not in LIVE_RUNS and name not in MODELS_ONLY:
            return self.drop(f"not run by the live family: {name}")
        if name == "set_paging_mode" and a.get("mode") != PAGING_64:
            return self.drop("a switch out of long mode")
        if name == "vcpu_create":
            if a.get("mode") != MODE or w.live["vcpus"] >= MAX_LIVE_VCPUS:
                return self.drop("a vCPU the live family cannot run")
            if w.oracle.cpus:
                return [op]
            # Before the first vCPU: the agent's PML4E in every root, and the second
            # root's first entry as the first's (set-up host writes, every side).
            first = w.oracle.mem.read(ROOTS[0] << PAGE_SHIFT, 8)
            pre = [["host_write", {"gpa": g, "size": 8, "value": agent_pml4e()}]
                   for g in AGENT_ENTRY_GPAS]
            pre.append(["host_write", {"gpa": ROOTS[1] << PAGE_SHIFT, "size": 8, "value": first}])
            return pre + [op]
        if name == "set_cr3":
            gfn = a["cr3"] >> PAGE_SHIFT
            if gfn not in ROOTS:
                # Only a root holding the agent's PML4E can be CR3 (live.agent).
                w.live["set_cr3 of a non-root redirected to a root"] += 1
                return [[name, {**a, "cr3": ROOTS[gfn % len(ROOTS)] << PAGE_SHIFT}]]
            return [op]
        if name == "access":
            return self.rewrite_access(op)
        if name == "unmap_hva_range":
            return self.rewrite_unmap(op)
        return [op]

    def rewrite_access(self, op):
        _, a = op
        w = self.world
        vcpu, kind, user = a["vcpu"], a["kind"], a["user"]
        la = linear_address(PAGING_64, a["addr"])
        if (la >> 39) & 511 == AGENT_PML4_INDEX:
            # The agent's slot: the models have no memory behind the agent's PML4E.
            return self.drop("an address in PML4 slot 511 (the agent's)")
        if user and (la >> 39) & 511 == PVM_USER_PML4_INDEX:
            # findings/live-user-pml4-slot-256.json: on this host a user access in PML4
            # slot 256 faults whatever the guest's tables say.  Left out so the
            # campaign searches on (supervisor accesses there run).
            return self.drop("a user access in PML4 slot 256 (finding live-user-pml4-slot-256)")
        if vcpu not in w.oracle.cpus:
            return [op]
        res = self.predict(vcpu, la, kind, user)
        if not w.oracle.cpus[vcpu].efer_nx and any(
                e.level > 1 and e.value & PT_PAGE_SIZE_MASK and e.value & PT64_NX_MASK
                for e in res.path):
            # findings/live-efer-nx-shared-large-page.json: this host's KVM shares
            # shadow pages between vCPUs whose EFER.NX differs, and a vCPU with NX=0
            # uses the spte another built from a large leaf with XD set (reserved for
            # it).  Left out so the campaign searches on.
            return self.drop("an EFER.NX=0 access through a large leaf with XD set "
                             "(finding live-efer-nx-shared-large-page)")
        if touches(res, AGENT_GFNS):
            # The models have no memory behind the agent's gfns: a walk or an access
            # there would read (or write) the agent itself on the live side.
            return self.drop("an access whose walk or data reaches the agent's memory")
        value = a.get("value")
        if value is not None:
            res = self.predict(vcpu, la, WRITE, user)
            if res.ok:
                gpa = (res.gfn << PAGE_SHIFT) | (la & 0xFFF)
                if any(g < gpa + a["size"] and gpa < g + 8 for g in AGENT_ENTRY_GPAS):
                    return self.drop("a store to a root's PML4E 511 (the agent's)")
            if value & PT_PRESENT_MASK:
                frame = (value & PT64_BASE_ADDR_MASK) >> PAGE_SHIFT
                if frame in ROOTS:
                    # A root reached below the top level would expose its PML4E 511 (the
                    # agent's) as an entry of the guest's own address space.
                    return self.drop("a present entry pointing at a root")
                if frame in AGENT_GFNS:
                    return self.drop("a present entry pointing into the agent's memory")
        if self.shootdowns and value is not None and res.ok:
            # findings/live-user-stale-translation-without-flush.json: after a guest
            # store to a pte with no INVLPG or MOV CR3, this host's kernel may keep
            # using the old translation, as a TLB may (SDM 4.10.4).  The
            # deterministic default holds live to the current walk, so a guest store
            # that changes a present entry (only a present entry can be cached) is
            # followed by a MOV CR3 of each vCPU's own CR3 (a TLB shootdown), on
            # every side; the relaxed mode (spec/tlb.py) is the one to go without.
            gpa = (res.gfn << PAGE_SHIFT) | (la & 0xFFF)
            old = int.from_bytes(model_bytes(w.oracle.mem, gpa & ~7, 8), "little")
            if old & PT_PRESENT_MASK and old != value:
                why = "finding live-user-stale-translation-without-flush"
                w.live[f"MOV CR3 shootdowns after a guest store ({why})"] += 1
                return [op] + [["set_cr3", {"vcpu": v, "cr3": w.oracle.cpus[v].cr3}]
                               for v in sorted(w.oracle.cpus)]
        cpu = w.oracle.cpus[vcpu]
        if kind == WRITE and not user and not cpu.cr0_wp and res.ok and \
                w.oracle.slot_of(res.gfn) is None and not res.path[-1].value & PT_DIRTY_MASK:
            # findings/live-mmio-write-wp0-no-dirty.json: with CR0.WP=0, a supervisor
            # store to a page no memslot covers, after a user access to it, leaves the
            # leaf's D clear on this host.  Left out so the campaign searches on.
            return self.drop("a supervisor store under CR0.WP=0 to a clean page with no memslot "
                             "(finding live-mmio-write-wp0-no-dirty)")
        if kind == FETCH:
            res = self.predict(vcpu, la, FETCH, user)
            if res.ok and w.oracle.slot_of(res.gfn) is None:
                # findings/live-fetch-no-memslot-internal-error.json: this host's KVM
                # cannot fetch from a gpa no memslot covers (KVM_EXIT_INTERNAL_ERROR)
                # where the models exit as MMIO.  Left out so the campaign searches on.
                return self.drop("a fetch from a gpa with no memslot (finding "
                                 "live-fetch-no-memslot-internal-error)")
            if res.ok:
                off = la & 0xFFF
                data = model_bytes(w.oracle.mem, (res.gfn << PAGE_SHIFT) | off,
                                   min(15, PAGE_SIZE - off))
                if crosses_page(data, la):
                    pass   # the world stands a load in for it (the models fetch one page)
                elif not user and not cpl0_fetch_runs(data, la):
                    # findings/live-cpl0-fetch-emulation-failure.json: a supervisor
                    # fetch of an instruction KVM's emulator does not run ends the
                    # KVM_RUN with an internal error here.  Left out so the campaign
                    # searches on (CPL 3 fetches of it run).
                    return self.drop("a supervisor fetch of an instruction this host cannot "
                                     "single-step (finding live-cpl0-fetch-emulation-failure)")
                elif len(data) < 15 and not runs_unintercepted(data, la):
                    # findings/live-intercepted-fetch-walks-next-page.json: KVM reads 15
                    # bytes from RIP for an instruction it intercepts, so a fetch near
                    # its page's end sets A in the next page's pte.  Left out.
                    return self.drop("a fetch of an instruction KVM intercepts, near its "
                                     "page's end (finding live-intercepted-fetch-walks-"
                                     "next-page)")
        return [op]

    def rewrite_unmap(self, op):
        _, a = op
        w = self.world
        slot = a["slot"]
        if slot not in w.oracle.slots:
            return [op]
        base, n, _, _ = w.oracle.slots[slot]
        lo, hi = max(a["gfn"], base), min(a["gfn"] + a["npages"], base + n)
        # findings/live-madvise-shadowed-guest-table.json: freeing a page the models
        # shadow as a guest page table leaves 3.10's shadow page translating through
        # it, where this host's kernel walks the zeroed table.  Left out (those gfns
        # only) so the campaign searches on.
        tables = set(TABLE_GFNS)
        for m in w.sides.values():
            tables |= {sp.gfn for sp in m.mmu.pages.values() if not sp.role.direct}
        out, start = [], None
        for g in range(lo, hi + 1):
            if g < hi and g not in tables:
                start = g if start is None else start
            elif start is not None:
                out.append(["unmap_hva_range", {"slot": slot, "gfn": start, "npages": g - start}])
                start = None
        if len(out) != 1 or out[0][1]["npages"] != a["npages"]:
            why = "finding live-madvise-shadowed-guest-table"
            w.live[f"unmaps trimmed off guest page tables ({why})"] += 1
        return out

    @swarm("patterns")
    @precondition(lambda self: self.shootdowns and not getattr(self, "self_mapped", False))
    @rule(pick=st.integers(0, 1 << 16), k=st.integers(2, 511))
    def self_map(self, pick, k):
        """A guest's recursive page-table slot, below the root (a root may not be
        linked into the tables here: its PML4E 511 is the agent's): entry k of the
        identity map's PDPT points at the PDPT itself, A clear, and the guest loads
        through it at gva k:k:k, so FNAME(walk_addr) reads that entry at levels 3,
        2 and 1; its cmpxchg of A at level 2 finds the entry changed (A set at
        level 3) and the walk is retried.  Guest stores and a load: what any
        guest may do.  One per example, and in the deterministic default only:
        the relaxed mode's search of the translations a TLB may still hold goes
        over the store history, and a table reached at several levels makes it
        grow with every such entry (tested: a live-relaxed example with a dozen
        of them ran one access past the watchdog's 20 s)."""
        self.self_mapped = True
        pdpt = TABLE_GFNS[1]
        if self.table_at.get(pdpt) != (3, 0):
            return
        if self.world.oracle.mem.read((pdpt << PAGE_SHIFT) + 8 * k, 8) & PT_PRESENT_MASK:
            return
        v = self.smp[pick % len(self.smp)]
        self.store(v, pdpt, k, self.entry(pdpt, PT_PRESENT_MASK | PT_WRITABLE_MASK))
        self.emit_access(v, (k << 30) | (k << 21) | (k << 12), READ, False)

    @swarm("vcpus")
    @precondition(lambda self: len(self.vcpus) < MAX_LIVE_VCPUS)
    @rule(pick=st.integers(0, len(ROOTS) - 1), cr0_wp=st.booleans(), efer_nx=st.booleans())
    def live_vcpu_create(self, pick, cr0_wp, efer_nx):
        """Another long-mode vCPU on one of the roots."""
        self.vcpus.append(len(self.vcpus))
        self.emit(["vcpu_create", {"vcpu": self.vcpus[-1], "mode": MODE,
                                   "cr3": ROOTS[pick] << PAGE_SHIFT, "cr0_wp": cr0_wp,
                                   "cr4_pse": True, "efer_nx": efer_nx}])


# -- the bench -------------------------------------------------------------------------
def bench_live(seconds=10.0, seed=0):
    """Steps per second of each side of the live family, from one campaign of
    `seconds` (tested: one run on this host, not a bound).

    A side's time is what that side costs the campaign: spec and impl, their
    MMU's work in every op and their auditor after every step (the auditor is
    timed by wrapping spec.mmu_audit.audit where diff/mmu.py calls it, for this
    bench only); live, its round trips, its VM processes' start and close that
    the campaign waited for, and the memory comparisons.  The oracle, Hypothesis
    and the machine's own work are in none of them ("campaign steps/s" has
    everything)."""
    from . import mmu as mmu_module
    from .campaign import run_campaign
    audit_ms = Counter()
    plain_audit = mmu_module.audit

    def timed_audit(mmu, probe):
        t = time.perf_counter()
        try:
            return plain_audit(mmu, probe)
        finally:
            side = "impl" if isinstance(mmu, ImplShadowMmu) else "spec"
            audit_ms[side] += (time.perf_counter() - t) * 1000

    mmu_module.audit = timed_audit
    try:
        start = time.monotonic()
        res = run_campaign("live", None, seed=seed, budget=seconds, mode=MODE)
        wall = time.monotonic() - start
    finally:
        mmu_module.audit = plain_audit
        drain_pool()
    m = res.metrics
    out = {"status": res.status, "examples": res.examples, "steps": res.steps,
           "seconds": round(wall, 2), "campaign steps/s": round(res.steps / wall, 1)}
    for side in ("spec", "impl", "live"):
        ms = m.get(f"ms in {side}", 0) + audit_ms[side]
        out[f"{side} seconds"] = round(ms / 1000, 2)
        out[f"{side} steps/s"] = round(res.steps / (ms / 1000), 1) if ms else None
    if res.status != "clean":
        out["oracle"], out["message"] = res.oracle, res.message
    return out


FAMILY = Family(
    name="live",
    summary="the host's real KVM (/dev/kvm, a guest agent) as a fourth machine beside the mmu "
            "family's spec, impl and architectural oracle; shadow64 guests, deterministic "
            "(no TLB latitude)",
    machine=LiveMachine,
    make_world=make_world,
    impl_base=ImplShadowMmu,
    modes=(MODE,),
    variant_families=("live",),
    available=available,
)
