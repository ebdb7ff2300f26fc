"""The VMM side of one live VM, in the process that owns its file descriptors.

`Machine` holds a KVM VM, the agent's memslot (live/agent.py), the caller's
memslots (each backed by its own private anonymous mapping) and vCPUs that
each run the agent.  Its guest commands (access, invlpg, mov_cr3,
set_cr0_wp, set_efer_nx) write the agent's mailbox and run the vCPU until the
agent's `out` to AGENT_PORT; every exit on the way is handled:

  KVM_EXIT_MMIO / KVM_EXIT_IO (not the agent's port)
                   recorded (the first one is the command's outcome) and
                   completed by the next KVM_RUN, a read getting 0, before
                   anything touches vCPU state (kvm-host-facts.md)
  EINTR            the watchdog: SIGALRM from an interval timer armed for
                   WATCHDOG_SECONDS per command; the outcome is "watchdog"
                   and the vCPU is put back at the agent's entry
  SHUTDOWN, INTERNAL_ERROR, HLT, FAIL_ENTRY, anything else
                   the outcome names it; the vCPU is reset to the agent

The watchdog needs SIGALRM to reach the thread in KVM_RUN, so a Machine runs
its vCPUs only in the main thread of its process (live/server.py gives it a
process of its own; live/vm.py's LiveVm is the handle for any thread).

Host writes into guest memory are allowed only before the first KVM_RUN of
the VM: after it, a host write into a live guest page table would go around
KVM's write protection of that table.
"""

import ctypes
import dataclasses
import signal
import struct
import threading
import time

from spec.consts import PAGE_SHIFT, PAGE_SIZE, PT64_BASE_ADDR_MASK, PT_PAGE_SIZE_MASK, \
    PT_PRESENT_MASK

from . import agent as A
from .kvm import (
    EXIT_NAMES, KVM_CAP_READONLY_MEM, KVM_EXIT_FAIL_ENTRY, KVM_EXIT_INTERNAL_ERROR, KVM_EXIT_INTR,
    KVM_EXIT_IO, KVM_EXIT_IO_IN, KVM_EXIT_IO_OUT, KVM_EXIT_MMIO, KVM_EXIT_SHUTDOWN,
    KVM_MEM_LOG_DIRTY_PAGES, KVM_MEM_READONLY, X86_EFLAGS_FIXED, Kvm, Mapping, kvm_regs,
)

WATCHDOG_SECONDS = 1.0
WATCHDOG_REPEAT = 0.005   # the timer re-fires until KVM_RUN is seen to end
MAX_EXITS = 16            # exits one command may take before it is abandoned
ACCESS_KINDS = ("read", "write", "rmw", "fetch")


@dataclasses.dataclass
class Outcome:
    """What one guest command did.

    kind: "ok" (value: the value read), "#PF" (error_code, cr2, rip),
    "mmio" (gpa, length, is_write; a read got 0), "unexpected" (vector,
    error_code if the vector has one, rip), "watchdog", "shutdown",
    "internal error", "exit" (another KVM exit: exit_reason), or "refused"
    (a fetch whose instruction could reach beyond the agent's scratch page;
    nothing ran).  detail: a sentence for humans."""

    kind: str
    value: int = None
    vector: int = None
    error_code: int = None
    cr2: int = None
    rip: int = None
    gpa: int = None
    length: int = None
    is_write: bool = None
    exit_reason: str = None
    detail: str = ""

    def to_dict(self):
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None and v != ""}


@dataclasses.dataclass
class Slot:
    base_gfn: int
    npages: int
    flags: int
    mapping: Mapping


class LiveVcpu:
    def __init__(self, vcpu, cr3, cr0_wp, efer_nx):
        self.vcpu = vcpu
        self.cr3, self.cr0_wp, self.efer_nx = cr3, cr0_wp, efer_nx
        self.last = []
        self.pending_io = False


def _alarm(signum, frame):
    """SIGALRM only has to interrupt KVM_RUN (EINTR); the run loop decides."""


def watchdog_ready():
    """(ok, why): can KVM_RUN be interrupted by the watchdog in this thread?"""
    if threading.current_thread() is not threading.main_thread():
        return False, ("a Machine runs vCPUs only in its process's main thread (SIGALRM "
                       "watchdog); use live.vm.LiveVm from other threads")
    if not callable(signal.getsignal(signal.SIGALRM)):
        signal.signal(signal.SIGALRM, _alarm)
    return True, ""


class Machine:
    """One VM with the agent.  See the module docstring."""

    def __init__(self):
        self.kvm = Kvm()
        self.closed = False
        self.vm = self.agent_mem = None
        self.slots = {}
        self.vcpus = {}
        self.started = False
        self.seq = 0
        try:
            self.vm = self.kvm.create_vm()
            self.cpuid = self.kvm.supported_cpuid()
            self.readonly_mem = bool(self.vm.check_extension(KVM_CAP_READONLY_MEM))
            self.image = A.image()
            self.agent_mem = Mapping(A.AGENT_SIZE)
            self.agent_mem.write(0, self.image.blob())
            self.vm.set_user_memory_region(A.AGENT_SLOT, A.AGENT_GPA, A.AGENT_SIZE,
                                           self.agent_mem.addr)
        except BaseException:
            self.close()
            raise

    # -- memory -------------------------------------------------------------------
    def set_user_memory_region(self, slot, gpa, size, flags=0):
        """KVM_SET_USER_MEMORY_REGION as the API has it: size 0 deletes the
        slot; an existing slot keeps its size and backing and may move (new
        gpa) or change KVM_MEM_LOG_DIRTY_PAGES; a new slot gets fresh private
        anonymous memory."""
        if slot == A.AGENT_SLOT:
            raise ValueError(f"memslot {slot} is the agent's")
        if gpa % PAGE_SIZE or size % PAGE_SIZE or size < 0:
            raise ValueError(f"memslot {slot}: gpa {gpa:#x} and size {size:#x} must be page aligned")
        if flags & ~(KVM_MEM_LOG_DIRTY_PAGES | KVM_MEM_READONLY):
            raise ValueError(f"memslot flags {flags:#x}: only LOG_DIRTY_PAGES and READONLY")
        if flags & KVM_MEM_READONLY and not self.readonly_mem:
            raise ValueError("this host's KVM has no KVM_CAP_READONLY_MEM: no read-only memslots")
        if size and not (gpa + size <= A.AGENT_GPA or A.AGENT_GPA + A.AGENT_SIZE <= gpa):
            raise ValueError(f"memslot {slot} overlaps the agent's memory at {A.AGENT_GPA:#x}")
        old = self.slots.get(slot)
        if size == 0:
            if old is None:
                raise ValueError(f"no memslot {slot}")
            self.vm.set_user_memory_region(slot, 0, 0, 0)
            del self.slots[slot]
            old.mapping.close()
            return
        if old is not None:
            if size != old.npages * PAGE_SIZE:
                raise ValueError(f"memslot {slot} has {old.npages} pages: delete it to resize")
            if (flags ^ old.flags) & KVM_MEM_READONLY:
                raise ValueError(f"memslot {slot}: KVM_MEM_READONLY cannot change")
            self.vm.set_user_memory_region(slot, gpa, size, old.mapping.addr, flags)
            old.base_gfn, old.flags = gpa >> PAGE_SHIFT, flags
            return
        mapping = Mapping(size)
        try:
            self.vm.set_user_memory_region(slot, gpa, size, mapping.addr, flags)
        except BaseException:
            mapping.close()
            raise
        self.slots[slot] = Slot(gpa >> PAGE_SHIFT, size >> PAGE_SHIFT, flags, mapping)

    def memslot_create(self, slot, base_gfn, npages, readonly=False, dirty_log=False):
        if slot in self.slots:
            raise ValueError(f"memslot {slot} exists")
        if npages <= 0:
            raise ValueError("a memslot needs at least one page")
        flags = (KVM_MEM_READONLY if readonly else 0) | (KVM_MEM_LOG_DIRTY_PAGES if dirty_log else 0)
        self.set_user_memory_region(slot, base_gfn << PAGE_SHIFT, npages << PAGE_SHIFT, flags)

    def memslot_delete(self, slot):
        self.set_user_memory_region(slot, 0, 0)

    def memslot_move(self, slot, base_gfn):
        s = self._slot(slot)
        self.set_user_memory_region(slot, base_gfn << PAGE_SHIFT, s.npages << PAGE_SHIFT, s.flags)

    def memslot_dirty_log(self, slot, on):
        s = self._slot(slot)
        flags = (s.flags & ~KVM_MEM_LOG_DIRTY_PAGES) | (KVM_MEM_LOG_DIRTY_PAGES if on else 0)
        self.set_user_memory_region(slot, s.base_gfn << PAGE_SHIFT, s.npages << PAGE_SHIFT, flags)

    def _slot(self, slot):
        if slot not in self.slots:
            raise ValueError(f"no memslot {slot}")
        return self.slots[slot]

    def _backing(self, gpa, size):
        """(mapping, offset) of [gpa, gpa+size) inside one memslot, or None."""
        gfn = gpa >> PAGE_SHIFT
        if A.AGENT_GPA <= gpa and gpa + size <= A.AGENT_GPA + A.AGENT_SIZE:
            return self.agent_mem, gpa - A.AGENT_GPA
        for s in self.slots.values():
            if s.base_gfn <= gfn and gpa + size <= (s.base_gfn + s.npages) << PAGE_SHIFT:
                return s.mapping, gpa - (s.base_gfn << PAGE_SHIFT)
        return None

    def read_memory(self, gpa, size):
        """Guest memory as the host sees it (the backing), at any time."""
        where = self._backing(gpa, size)
        if where is None:
            raise ValueError(f"[{gpa:#x}, {gpa + size:#x}) is not inside one memslot")
        return where[0].read(where[1], size)

    def write_memory(self, gpa, data):
        """Set-up only: before the VM's first KVM_RUN."""
        if self.started:
            raise ValueError("host writes into guest memory are refused after the first KVM_RUN "
                             "(a host write into a live page table goes around KVM's write "
                             "protection): let the guest store instead")
        where = self._backing(gpa, len(data))
        if where is None or where[0] is self.agent_mem:
            raise ValueError(f"[{gpa:#x}, {gpa + len(data):#x}) is not inside one of your memslots")
        where[0].write(where[1], data)

    def get_dirty_log(self, slot):
        """KVM_GET_DIRTY_LOG: the set of gfns whose dirty bit was set."""
        s = self._slot(slot)
        if not s.flags & KVM_MEM_LOG_DIRTY_PAGES:
            raise ValueError(f"memslot {slot} is not logging dirty pages")
        return {s.base_gfn + i for i in self.vm.get_dirty_log(slot, s.npages)}

    def madvise_dontneed(self, slot, gfn, npages):
        """MADV_DONTNEED on the slot's private backing: the MMU notifier drops
        the sptes and the pages read as 0 afterwards."""
        s = self._slot(slot)
        if not (s.base_gfn <= gfn and gfn + npages <= s.base_gfn + s.npages and npages > 0):
            raise ValueError(f"gfns {gfn:#x}+{npages} are not inside memslot {slot}")
        s.mapping.madvise_dontneed((gfn - s.base_gfn) << PAGE_SHIFT, npages << PAGE_SHIFT)

    # -- vCPUs --------------------------------------------------------------------
    def create_vcpu(self, vcpu, cr3, cr0_wp=True, efer_nx=True):
        """A vCPU in long mode (CR0.PG|PE, CR4.PAE, EFER.LME|LMA) running the
        agent, with the host's supported CPUID; `cr3` must hold the agent's PML4E."""
        if vcpu in self.vcpus:
            raise ValueError(f"vcpu {vcpu} exists")
        self._check_root(cr3)
        v = self.vm.create_vcpu(vcpu)
        v.set_cpuid2(self.cpuid)
        lv = LiveVcpu(v, cr3, bool(cr0_wp), bool(efer_nx))
        self._reset(lv)
        self.vcpus[vcpu] = lv

    def _check_root(self, cr3):
        pml4e_gpa = (cr3 & PT64_BASE_ADDR_MASK) + 8 * A.AGENT_PML4_INDEX
        try:
            got = struct.unpack("<Q", self.read_memory(pml4e_gpa, 8))[0]
        except ValueError:
            got = None
        if got != A.agent_pml4e():
            raise ValueError(f"the root at {cr3:#x} does not hold the agent's PML4E "
                             f"{A.agent_pml4e():#x} at index {A.AGENT_PML4_INDEX} "
                             f"(found {'no memory' if got is None else hex(got)})")

    def _reset(self, lv):
        """Put the vCPU at the agent's entry (after set-up or an abnormal end)."""
        v = lv.vcpu
        if lv.pending_io:
            v.run_struct.immediate_exit = 1   # complete the pending I/O first
            try:
                v.run()
            finally:
                v.run_struct.immediate_exit = 0
            lv.pending_io = False
        v.set_sregs(A.setup_sregs(v.get_sregs(), lv.cr3, lv.cr0_wp, lv.efer_nx))
        v.set_regs(kvm_regs(rip=self.image.labels["entry"], rsp=A.STACK_TOP,
                            rflags=X86_EFLAGS_FIXED))

    def _vcpu(self, vcpu):
        if self.closed:
            raise ValueError("the VM is closed")
        if vcpu not in self.vcpus:
            raise ValueError(f"no vcpu {vcpu}")
        return self.vcpus[vcpu]

    # -- guest commands -----------------------------------------------------------
    def access(self, vcpu, gva, kind, size=8, value=None, cpl=0):
        """One guest access at CPL `cpl` (0, or 3 for a user access): kind
        "read" (returns the value), "write" (stores `value`), "rmw" (`or
        [gva], 0`: a write access that keeps memory, for a write whose data
        is not tracked) of 1/2/4/8 bytes, or "fetch" (see `fetch`)."""
        lv = self._vcpu(vcpu)
        if kind == "fetch":
            return self.fetch(vcpu, gva, cpl)
        if kind not in ACCESS_KINDS:
            raise ValueError(f"access kind {kind!r}: one of {ACCESS_KINDS}")
        name, target, done = self.image.stub(kind, size, cpl)
        if kind == "write":
            if not isinstance(value, int):
                raise ValueError("a write needs an integer value")
            value &= (1 << (8 * size)) - 1
        fields = {A.M_GVA: gva, A.M_VALUE: value or 0}
        if cpl == 0:
            op = "access"
            fields[A.M_TARGET] = target
        else:
            op = "enter"
            fields.update(A.iret_fields(cpl, target))
        listing = [f"; {kind} {size} bytes at {gva:#x}, CPL {cpl}", ("block", "op_" + op),
                   ("block", name), ("block", name + "_done")]
        out = self._command(lv, A.OP[op], fields, listing)
        if out.kind == "ok" or (out.vector == A.UD_VECTOR and out.rip == done):
            value = out.value & ((1 << (8 * size)) - 1) if kind == "read" else None
            return Outcome("ok", value=value)
        if out.kind == "#PF" and out.rip != target:
            out.kind = "unexpected"
            out.detail = f"#PF in the agent at {out.rip:#x}, not at the access: " + out.detail
        elif out.kind == "mmio":
            out.value = 0 if kind == "read" else None
        else:
            out.value = None
        return out

    def fetch(self, vcpu, gva, cpl=0, unchecked=False):
        """An instruction fetch at gva: iretq there with RFLAGS.TF, so the
        instruction at gva runs and #DB (single step) comes back after it.
        Every general register points at the middle of the agent's scratch
        page.  Before running it the VMM reads the bytes the fetch will
        execute (its own walk of the guest tables, no A/D writes) and refuses
        an instruction that could touch anything but the scratch page
        (agent.vet_fetch): outcome "refused", nothing ran.

        Outcomes: "#PF" when the fault is the fetch's own (vector 14 at rip =
        gva with cr2 in gva's page); "ok" when the instruction was fetched,
        whatever it did next (#DB after it, #UD, #GP, or a fault on its data);
        "internal error" for a fetch from a gpa no memslot covers (KVM's
        emulator cannot fetch from MMIO).  `unchecked` skips the vetting
        (for live/probe.py only)."""
        lv = self._vcpu(vcpu)
        data, gpa = self._preview(lv, gva)
        listing = [f"; fetch at {gva:#x}, CPL {cpl}"] + [("block", "op_fetch")]
        if data:
            ok, text = A.vet_fetch(data, gva, cpl)
            listing.append(f"; the target, as the VMM reads it: {text}")
            if not ok and not unchecked:
                lv.last = listing
                return Outcome("refused", rip=gva, detail=f"not run: {text}")
        elif gpa is not None:
            listing.append(f"; the target's gpa {gpa:#x} is in no memslot")
        else:
            listing.append("; the target has no present translation in the VMM's walk")
        fields = {A.M_GVA: gva, **A.iret_fields(cpl, gva, tf=True)}
        out = self._command(lv, A.OP["fetch"], fields, listing)
        out.value = None
        if out.vector is not None:
            if out.vector == A.PF_VECTOR and out.rip == gva and \
                    out.cr2 >> PAGE_SHIFT == gva >> PAGE_SHIFT:
                return out
            what = "#DB (single step)" if out.vector == A.DB_VECTOR else f"vector {out.vector}"
            return Outcome("ok", rip=out.rip, detail=f"one instruction ran at {gva:#x}, then "
                                                   f"{what} at {out.rip:#x}")
        if out.kind == "internal error" and gpa is not None and not data:
            out.detail += f" (instruction fetch from gpa {gpa:#x}, which no memslot covers)"
        return out

    def invlpg(self, vcpu, gva):
        lv = self._vcpu(vcpu)
        return self._simple(lv, "invlpg", {A.M_GVA: gva}, f"invlpg {gva:#x}")

    def mov_cr3(self, vcpu, cr3):
        lv = self._vcpu(vcpu)
        self._check_root(cr3)
        out = self._simple(lv, "mov_cr3", {A.M_VALUE: cr3}, f"mov cr3, {cr3:#x}")
        if out.kind == "ok":
            lv.cr3 = cr3
        return out

    def set_cr0_wp(self, vcpu, on):
        lv = self._vcpu(vcpu)
        out = self._simple(lv, "set_cr0_wp", {A.M_VALUE: int(bool(on))}, f"CR0.WP = {int(bool(on))}")
        if out.kind == "ok":
            lv.cr0_wp = bool(on)
        return out

    def set_efer_nx(self, vcpu, on):
        lv = self._vcpu(vcpu)
        out = self._simple(lv, "set_efer_nx", {A.M_VALUE: int(bool(on))},
                           f"EFER.NX = {int(bool(on))}")
        if out.kind == "ok":
            lv.efer_nx = bool(on)
        return out

    def state(self, vcpu):
        """CR0, CR2, CR3, CR4 and EFER as the guest reads them."""
        lv = self._vcpu(vcpu)
        out = self._simple(lv, "state", {}, "read control registers")
        if out.kind != "ok":
            raise RuntimeError(f"state command: {out}")
        res = self._results()
        return {k: res[k] for k in ("cr0", "cr2", "cr3", "cr4", "efer")}

    def spin(self, vcpu):
        """`jmp $` in the guest: the watchdog's outcome, for tests."""
        return self._simple(self._vcpu(vcpu), "spin", {}, "spin")

    def last_instructions(self, vcpu):
        """The agent instructions of the vCPU's last command, disassembled."""
        out = []
        for item in self._vcpu(vcpu).last:
            out.extend(self.image.block(item[1]) if isinstance(item, tuple) else [item])
        return out

    def _simple(self, lv, op, fields, what):
        listing = [f"; {what}"] + [("block", "op_" + op)]
        out = self._command(lv, A.OP[op], fields, listing)
        if out.kind == "ok":
            out.value = None
        return out

    # -- the run loop -------------------------------------------------------------
    def _results(self):
        raw = self.agent_mem.read(A.PG_MAILBOX * PAGE_SIZE + A.RESULT_BASE, 8 * len(A.RESULT_FIELDS))
        return dict(zip(A.RESULT_FIELDS, struct.unpack(f"<{len(A.RESULT_FIELDS)}Q", raw)))

    def _command(self, lv, op, fields, listing):
        ready, why = watchdog_ready()
        if not ready:
            raise RuntimeError(why)
        self.seq += 1
        box = bytearray(A.MAILBOX_SIZE)
        struct.pack_into("<QQ", box, A.M_OP, op, self.seq)
        for off, val in fields.items():
            struct.pack_into("<Q", box, off, val & 0xFFFFFFFFFFFFFFFF)
        self.agent_mem.write(A.PG_MAILBOX * PAGE_SIZE, box)
        self.started = True
        v = lv.vcpu
        run = v.run_struct
        exits = []
        outcome = None
        start = time.monotonic()
        signal.setitimer(signal.ITIMER_REAL, WATCHDOG_SECONDS, WATCHDOG_REPEAT)
        try:
            for _ in range(MAX_EXITS):
                reason = v.run()
                lv.pending_io = reason in (KVM_EXIT_IO, KVM_EXIT_MMIO)
                if reason == KVM_EXIT_IO:
                    io = run.exit.io
                    if io.port == A.AGENT_PORT and io.direction == KVM_EXIT_IO_OUT:
                        break
                    exits.append(("io", io.port, io.size, io.direction == KVM_EXIT_IO_OUT))
                    if io.direction == KVM_EXIT_IO_IN:
                        ctypes.memset(v.run_addr + io.data_offset, 0, io.size * io.count)
                    continue
                if reason == KVM_EXIT_MMIO:
                    m = run.exit.mmio
                    exits.append(("mmio", m.phys_addr, m.len, bool(m.is_write)))
                    if not m.is_write:
                        for i in range(8):
                            m.data[i] = 0
                    continue
                if reason == KVM_EXIT_INTR:
                    if time.monotonic() - start >= WATCHDOG_SECONDS:
                        regs = v.get_regs()
                        outcome = Outcome("watchdog", rip=regs.rip, detail=(
                            f"KVM_RUN still running after {WATCHDOG_SECONDS:g} s "
                            f"(guest rip {regs.rip:#x}): ended by the watchdog"))
                        break
                    continue
                outcome = self._abnormal(v, reason)
                break
            else:
                outcome = Outcome("unexpected", detail=f"more than {MAX_EXITS} exits in one command: "
                                                       f"{exits[:4]}")
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        if outcome is not None:
            lv.last = listing + [f"; ended: {outcome.kind} {outcome.detail}"]
            self._reset(lv)
            return outcome
        lv.pending_io = True   # the agent's own `out`: completed by the next KVM_RUN
        return self._finish(lv, listing, exits)

    def _abnormal(self, v, reason):
        name = EXIT_NAMES.get(reason, str(reason))
        regs = v.get_regs() if reason != KVM_EXIT_SHUTDOWN else None
        rip = regs.rip if regs is not None else None
        if reason == KVM_EXIT_SHUTDOWN:
            return Outcome("shutdown", exit_reason=name, detail="KVM_EXIT_SHUTDOWN (triple fault)")
        if reason == KVM_EXIT_INTERNAL_ERROR:
            i = v.run_struct.exit.internal
            data = [hex(i.data[k]) for k in range(min(i.ndata, 16))]
            return Outcome("internal error", exit_reason=name, rip=rip,
                           detail=f"KVM_EXIT_INTERNAL_ERROR suberror {i.suberror} data {data}")
        if reason == KVM_EXIT_FAIL_ENTRY:
            return Outcome("internal error", exit_reason=name, detail=(
                f"KVM_EXIT_FAIL_ENTRY reason "
                f"{v.run_struct.exit.hardware_entry_failure_reason:#x}"))
        return Outcome("exit", exit_reason=name, rip=rip, detail=f"KVM exit {name} at rip {rip:#x}")

    def _finish(self, lv, listing, exits):
        res = self._results()
        if res["seq"] != self.seq:
            out = Outcome("unexpected", detail=f"the agent ended without finishing command "
                                               f"{self.seq} (exits {exits[:4]})")
        elif exits and exits[0][0] == "mmio":
            _, g, n, w = exits[0]
            out = Outcome("mmio", gpa=g, length=n, is_write=w,
                          detail=f"KVM_EXIT_MMIO at gpa {g:#x}, {n} bytes, "
                                 f"{'write' if w else 'read'}" +
                                 (f"; then {exits[1:]}" if len(exits) > 1 else ""))
        elif res["status"] == A.ST_OK:
            out = Outcome("ok", value=res["value"], detail=f"then port I/O {exits}" if exits else "")
        elif res["status"] == A.ST_EXCEPTION:
            vec = res["vector"]
            err = res["error_code"] if vec in A.ERROR_CODE_VECTORS else None
            kind = "#PF" if vec == A.PF_VECTOR else "unexpected"
            out = Outcome(kind, value=res["value"], vector=vec, error_code=err, rip=res["rip"],
                          cr2=res["cr2"] if vec == A.PF_VECTOR else None,
                          detail=f"vector {vec} at rip {res['rip']:#x}, cs {res['cs']:#x}"
                                 + (f", error code {err:#x}" if err is not None else "")
                                 + (f", cr2 {res['cr2']:#x}" if vec == A.PF_VECTOR else "")
                                 + (f", dr6 {res['dr6']:#x}" if vec == A.DB_VECTOR else ""))
            listing = listing + [("block", f"vector_{vec}")] + [("block", "exc_common")]
        else:
            out = Outcome("unexpected", detail=f"agent status {res['status']}")
        lv.last = listing + [("block", "done")]
        return out

    # -- the VMM's own walk (for fetch previews) ------------------------------------
    def _preview(self, lv, gva):
        """(bytes, gpa): the up to 15 bytes a fetch at gva would execute and
        the gpa of the first, by a 4-level walk of the guest tables from the
        vCPU's CR3 that follows present bits only (no permission or
        reserved-bit checks, no A/D writes).  bytes is empty when the first
        byte has no such translation (gpa None) or no memslot."""
        out = b""
        addr = gva
        first = None
        while len(out) < 15:
            gpa = self._translate(lv.cr3, addr)
            if gpa is None:
                break
            first = gpa if first is None else first
            n = min(15 - len(out), PAGE_SIZE - (addr & (PAGE_SIZE - 1)))
            where = self._backing(gpa, n)
            if where is None:
                break
            out += where[0].read(where[1], n)
            addr += n
        return out, first

    def _translate(self, cr3, gva):
        table = cr3 & PT64_BASE_ADDR_MASK
        for level in (4, 3, 2, 1):
            shift = PAGE_SHIFT + 9 * (level - 1)
            where = self._backing(table + 8 * ((gva >> shift) & 511), 8)
            if where is None:
                return None
            e = struct.unpack("<Q", where[0].read(where[1], 8))[0]
            if not e & PT_PRESENT_MASK:
                return None
            if level in (2, 3) and e & PT_PAGE_SIZE_MASK:
                base = e & PT64_BASE_ADDR_MASK & ~((1 << shift) - 1)
                return base | (gva & ((1 << shift) - 1))
            table = e & PT64_BASE_ADDR_MASK
        return table | (gva & (PAGE_SIZE - 1))

    # -- teardown -------------------------------------------------------------------
    def close(self):
        if self.closed:
            return
        self.closed = True
        for lv in self.vcpus.values():
            lv.vcpu.close()
        if self.vm is not None:
            self.vm.close()
        for s in self.slots.values():
            s.mapping.close()
        if self.agent_mem is not None:
            self.agent_mem.close()
        self.kvm.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

