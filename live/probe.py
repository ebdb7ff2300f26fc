"""What the host's KVM can do, measured by running guests: probe() -> HostProbe.

probe() (cached per process) starts a VM process (live/vm.py) whose main
thread runs measure(), so every guest it runs is under the SIGALRM
watchdog.  It reports:

  kvm_modules, tdp_mmu      which module runs KVM (kvm_intel, kvm_amd,
                            kvm_pvm, from /sys/module) and its TDP MMU switch
  caps                      KVM_CHECK_EXTENSION: SYNC_MMU, READONLY_MEM,
                            IMMEDIATE_EXIT, SET_GUEST_DEBUG, NR_MEMSLOTS
  maxphyaddr, gbpages, nx   from KVM_GET_SUPPORTED_CPUID
  paging_modes              a tiny guest (`mov eax, 0x42; hlt`) in real mode,
                            protected mode without paging, 32-bit paging, PAE
                            paging and long mode with 4-level paging: "runs" or
                            what happened instead
  agent                     the agent under a small page table: CPL 3,
                            single step (TF), `int n`, a store to a read-only
                            memslot, a load from a gpa with no memslot, and its
                            command rates in the VM process (commands/s)

Every answer is tested (one run on this host), not proved.
"""

import dataclasses
import os
import platform
import signal
import struct
import time
from functools import lru_cache

from iced_x86 import Code

from spec.consts import (
    PAGE_SHIFT, PT64_NX_MASK, PT_ACCESSED_MASK, PT_DIRTY_MASK, PT_PRESENT_MASK, PT_USER_MASK,
    PT_WRITABLE_MASK, X86_CR4_PAE, EFER_LMA,
)

from .asm import Asm, eax
from .kvm import (
    EFER_LME, EXIT_NAMES, KVM_CAP_IMMEDIATE_EXIT, KVM_CAP_NR_MEMSLOTS, KVM_CAP_READONLY_MEM,
    KVM_CAP_SET_GUEST_DEBUG, KVM_CAP_SYNC_MMU, KVM_EXIT_HLT, KVM_EXIT_INTERNAL_ERROR,
    KVM_EXIT_INTR, KVM_EXIT_SHUTDOWN, X86_CR0_ET, X86_CR0_NE, X86_CR0_PE, X86_CR0_PG, Kvm,
    KvmError, Mapping, kvm_regs, kvm_segment, usable,
)

MODULES = ("kvm_intel", "kvm_amd", "kvm_pvm")
PAGING_MODES = ("real", "protected", "paging32", "pae", "long64")


@dataclasses.dataclass
class HostProbe:
    usable: bool
    reason: str
    kernel: str = ""
    api_version: int = None
    kvm_modules: list = dataclasses.field(default_factory=list)
    tdp_mmu: str = None
    caps: dict = dataclasses.field(default_factory=dict)
    maxphyaddr: int = None
    linear_address_bits: int = None
    gbpages: bool = None
    nx: bool = None
    paging_modes: dict = dataclasses.field(default_factory=dict)
    agent: dict = dataclasses.field(default_factory=dict)

    def to_dict(self):
        return dataclasses.asdict(self)


@lru_cache(maxsize=1)
def probe():
    """The host's KVM, measured once per process (see the module docstring)."""
    ok, why = usable()
    if not ok:
        return HostProbe(False, why, kernel=platform.release())
    from .vm import LiveVmError, VmProcess
    try:
        p = VmProcess(timeout=60.0)
        try:
            return HostProbe(**p.call("probe"))
        finally:
            p.close()
    except (LiveVmError, OSError) as e:
        return HostProbe(False, f"the probe failed: {e}", kernel=platform.release())


def _read(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def measure():
    """Run in a VM process's main thread: the HostProbe fields as a dict."""
    ok, why = usable()
    out = HostProbe(ok, why, kernel=platform.release())
    if not ok:
        return out.to_dict()
    out.kvm_modules = [m for m in MODULES if os.path.isdir(f"/sys/module/{m}")]
    out.tdp_mmu = _read("/sys/module/kvm/parameters/tdp_mmu")
    with Kvm() as kvm:
        out.api_version = kvm.api_version
        out.caps = {name: kvm.check_extension(cap) for name, cap in (
            ("sync_mmu", KVM_CAP_SYNC_MMU), ("readonly_mem", KVM_CAP_READONLY_MEM),
            ("immediate_exit", KVM_CAP_IMMEDIATE_EXIT), ("set_guest_debug", KVM_CAP_SET_GUEST_DEBUG),
            ("nr_memslots", KVM_CAP_NR_MEMSLOTS))}
        cpuid = {(e.function, e.index): e for e in kvm.supported_cpuid()}
    ext = cpuid.get((0x80000001, 0))
    addr = cpuid.get((0x80000008, 0))
    if addr is not None:
        out.maxphyaddr, out.linear_address_bits = addr.eax & 0xFF, (addr.eax >> 8) & 0xFF
    if ext is not None:
        out.gbpages, out.nx = bool(ext.edx >> 26 & 1), bool(ext.edx >> 20 & 1)
    out.paging_modes = {mode: run_tiny_guest(mode) for mode in PAGING_MODES}
    out.agent = probe_agent()
    return out.to_dict()


# -- tiny guests ------------------------------------------------------------------------
CODE_GPA = 0x8000


def _tiny_code(bitness):
    a = Asm()
    a(Code.MOV_R32_IMM32, eax, 0x42)
    a(Code.HLT)
    return a.assemble(CODE_GPA, bitness)[0]


def _flat(selector, code, bits):
    s = kvm_segment(selector=selector, base=0, limit=0xFFFFFFFF, present=1, s=1, g=1)
    s.type = 0xB if code else 0x3
    s.l = 1 if code and bits == 64 else 0
    s.db = 0 if code and bits == 64 else 1
    return s


def run_tiny_guest(mode):
    """`mov eax, 0x42; hlt` at gva = gpa 0x8000 in `mode`: "runs" if it
    halts with eax 0x42, else what happened."""
    P = PT_PRESENT_MASK | PT_WRITABLE_MASK
    bits = {"real": 16, "protected": 32, "paging32": 32, "pae": 32, "long64": 64}[mode]
    try:
        with Kvm() as kvm, kvm.create_vm() as vm, Mapping(1 << 21) as mem:
            vm.set_user_memory_region(0, 0, 1 << 21, mem.addr)
            mem.write(CODE_GPA, _tiny_code(bits))
            v = vm.create_vcpu(0)
            v.set_cpuid2(kvm.supported_cpuid())
            s = v.get_sregs()
            if mode == "real":
                s.cs.selector, s.cs.base = 0, 0
            else:
                s.cs = _flat(0x08, True, bits)
                s.ds = s.es = s.fs = s.gs = s.ss = _flat(0x10, False, bits)
                s.cr0 = X86_CR0_PE | X86_CR0_ET | X86_CR0_NE
            if mode == "paging32":      # PD 0x2000 -> PT 0x3000, 4-byte entries
                mem.write(0x2000, struct.pack("<I", 0x3000 | P))
                mem.write(0x3000 + 4 * (CODE_GPA >> PAGE_SHIFT), struct.pack("<I", CODE_GPA | P))
                s.cr3, s.cr0, s.cr4, s.efer = 0x2000, s.cr0 | X86_CR0_PG, 0, 0
            elif mode == "pae":         # PDPT 0x2000 -> PD 0x3000 -> PT 0x4000
                mem.write(0x2000, struct.pack("<Q", 0x3000 | PT_PRESENT_MASK))
                mem.write(0x3000, struct.pack("<Q", 0x4000 | P))
                mem.write(0x4000 + 8 * (CODE_GPA >> PAGE_SHIFT), struct.pack("<Q", CODE_GPA | P))
                s.cr3, s.cr0, s.cr4, s.efer = 0x2000, s.cr0 | X86_CR0_PG, X86_CR4_PAE, 0
            elif mode == "long64":      # PML4 0x2000 -> PDPT 0x3000 -> PD 0x4000 -> PT 0x5000
                for table, nxt in ((0x2000, 0x3000), (0x3000, 0x4000), (0x4000, 0x5000)):
                    mem.write(table, struct.pack("<Q", nxt | P))
                mem.write(0x5000 + 8 * (CODE_GPA >> PAGE_SHIFT), struct.pack("<Q", CODE_GPA | P))
                s.cr3, s.cr0, s.cr4 = 0x2000, s.cr0 | X86_CR0_PG, X86_CR4_PAE
                s.efer = EFER_LME | EFER_LMA
            try:
                v.set_sregs(s)
            except KvmError as e:
                return f"refused: {e}"
            v.set_regs(kvm_regs(rip=CODE_GPA, rflags=2))
            reason = _run_bounded(v)
            regs = v.get_regs()
            if reason == KVM_EXIT_HLT and regs.rax & 0xFF == 0x42:
                return "runs"
            if reason == KVM_EXIT_SHUTDOWN:
                return "shutdown" + (" at its first instruction" if regs.rip == CODE_GPA else "")
            if reason == KVM_EXIT_INTR:
                return "watchdog (did not halt within 1 s)"
            if reason == KVM_EXIT_INTERNAL_ERROR:
                return f"internal error (suberror {v.run_struct.exit.internal.suberror})"
            return f"exit {EXIT_NAMES.get(reason, reason)} at rip {regs.rip:#x}"
    except OSError as e:
        return f"error: {e}"


def _run_bounded(v, seconds=1.0):
    from .machine import watchdog_ready
    ok, why = watchdog_ready()
    if not ok:
        raise RuntimeError(why)
    signal.setitimer(signal.ITIMER_REAL, seconds, 0.005)
    start = time.monotonic()
    try:
        while True:
            reason = v.run()
            if reason != KVM_EXIT_INTR or time.monotonic() - start >= seconds:
                return reason
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


# -- the agent ---------------------------------------------------------------------------
def probe_agent():
    """The agent's abilities on this host (a Machine in this process)."""
    from .machine import Machine
    from .pagetable import SmallPageTable
    U = PT_PRESENT_MASK | PT_WRITABLE_MASK | PT_USER_MASK
    res = {}
    with Machine() as m:
        m.memslot_create(0, 0, 0x400)
        m.memslot_create(1, 0x600, 1, readonly=True)
        t = SmallPageTable()
        t.map(0x20000, 0x20, U).map(0x21000, 0x21, U).map(0x22000, 0x22, U)
        t.map(0x23000, 0x500, U)                    # no memslot
        t.map(0x24000, 0x600, U)                    # the read-only memslot
        t.map(0x25000, 0x25, U | PT64_NX_MASK)
        t.write_to(m)
        code = Asm()
        code(Code.NOPD)
        code(Code.INT_IMM8, 0x81)
        m.write_memory(0x21000, code.assemble(0x21000)[0])
        m.create_vcpu(0, t.cr3, cr0_wp=True, efer_nx=True)
        out = m.access(0, 0x20000, "read", 8)
        res["runs"] = out.kind == "ok"
        if not res["runs"]:
            res["error"] = str(out.to_dict())
            return res
        w3 = m.access(0, 0x20000, "write", 8, 0x1234, cpl=3)
        r3 = m.access(0, 0x20000, "read", 8, cpl=3)
        res["cpl3"] = ("works: iretq to a DPL-3 code segment, back through #UD (ud2)"
                       if w3.kind == "ok" and r3.kind == "ok" and r3.value == 0x1234
                       else f"no: {w3.to_dict()} {r3.to_dict()}")
        step = m.fetch(0, 0x21000)
        res["single_step"] = ("works: one instruction, then #DB" if step.kind == "ok"
                              and "#DB" in step.detail else f"no: {step.to_dict()}")
        for cpl in (0, 3):   # int 0x81 through a DPL-0 gate: architecturally #GP at CPL 3
            o = m.fetch(0, 0x21001, cpl=cpl, unchecked=True)
            res[f"int_n_cpl{cpl}"] = o.kind + (f" ({o.detail})" if o.detail else "")
        o = m.access(0, 0x24000, "write", 4, 7)
        res["readonly_memslot_store"] = f"{o.kind}" + (
            f" (gpa {o.gpa:#x}, write {o.is_write})" if o.kind == "mmio" else f" ({o.detail})")
        o = m.access(0, 0x23000, "read", 4)
        res["no_memslot_load"] = f"{o.kind}" + (f" (gpa {o.gpa:#x})" if o.kind == "mmio" else "")
        o = m.fetch(0, 0x25000)
        res["nx_fetch"] = f"{o.kind} error code {o.error_code:#x}" if o.kind == "#PF" else o.kind
        pte = struct.unpack("<Q", m.read_memory(t.pte_gpa(0x20000), 8))[0]
        res["store_sets_a_d"] = bool(pte & PT_ACCESSED_MASK and pte & PT_DIRTY_MASK)
        res["commands_per_second_in_vm_process"] = {
            "read cpl0": _rate(lambda: m.access(0, 0x20000, "read", 8)),
            "read cpl3": _rate(lambda: m.access(0, 0x20000, "read", 8, cpl=3)),
            "fetch cpl0": _rate(lambda: m.fetch(0, 0x21000)),
        }
    return res


def _rate(fn, seconds=0.15):
    fn()
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        n += 1
    return round(n / (time.perf_counter() - start))
