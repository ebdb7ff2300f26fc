"""The guest agent: a small 64-bit program that runs one command per KVM_RUN.

Every instruction is encoded by iced-x86 (through live/asm.py) and
disassembled by its Formatter; the descriptor tables and page-table entries
are data, packed with struct.

Where it lives.  The agent owns one memslot, AGENT_SLOT, at guest-physical
AGENT_GPA (2 GB: far from the gfns the mmu family uses), AGENT_PAGES pages:

  page  0 1 2     its PDPT, PD and PT (not mapped in its own address space)
        3         GDT (null, kernel code/data, user code/data, 64-bit TSS) + TSS
        4         IDT: 256 interrupt gates, DPL 0, all on IST stacks
        5         the mailbox: command in, result out
        6..9      code: dispatcher, commands, CPL 0 access stubs, vector stubs
        10        scratch page (user-accessible): a fetch runs with every
                  general register pointing at its middle
        11..12    main stack; 13 IST1 (exceptions); 14 IST2 (#DF, NMI, #MC)
        15        CPL 3 access stubs (user-accessible code)
        16        RSP0 stack (TSS.RSP0)

and it is reached through a single PML4 slot, AGENT_PML4_INDEX = 511: gva
AGENT_GVA + page * 4096.  Every root the vCPU loads must hold agent_pml4e()
at index 511.  Every agent paging entry has A set, every agent leaf has A
and D set, none sets NX (bit 63 is reserved while EFER.NX is 0), so neither
the CPU nor KVM ever writes them, and the agent keeps working under CR0.WP
0/1, EFER.NX 0/1 and any root holding its PML4E.

The protocol.  The VMM writes a command into the mailbox and runs the vCPU;
the agent executes it, leaves its result in the mailbox and does `out` to
AGENT_PORT, which ends the KVM_RUN.  The next KVM_RUN resumes at the
dispatcher, which reads the next command:

  access      (CPL 0) jump to a CPL 0 stub with rbx = gva, rax = value: one
              access (load, store, or `or [rbx], 0`), then a jump back
  enter       (CPL 3) iretq to a CPL 3 stub at the user code segment: one
              access, then `ud2`; the #UD at the stub's own ud2 is the way back
  fetch       iretq to the target gva itself with RFLAGS.TF set and every
              general register at the scratch page: the instruction there
              runs, then #DB (single step) comes back
  invlpg, mov_cr3, set_cr0_wp, set_efer_nx
              the guest does it itself (INVLPG, MOV CR3, MOV CR0, WRMSR EFER)
  state       record CR0, CR2, CR3, CR4 and EFER
  spin        `jmp $` (to show the watchdog)

Every vector has a stub (save rax; CR2 for #PF, DR6 for #DB; push the
vector, and 0 where the CPU pushes no error code) into a common handler on
the IST1 stack that records vector, error code, RIP, CS, RFLAGS and RSP and
abandons the interrupted context: the faulting access is not retried.

Under kvm_pvm (this project's host) a guest runs in hardware ring 3, so a
privileged instruction, an `iretq` or an exception costs a trip to the host;
the CPL 0 path avoids all of them but the access itself and the `out`.
`int n` is not usable there: at CPL 0 KVM's emulator fails on it
(KVM_EXIT_INTERNAL_ERROR), at CPL 3 it raises #UD; `syscall` stays at CPL 3.
Hence the jump back at CPL 0 and ud2 at CPL 3.
"""

import struct
from functools import lru_cache

from iced_x86 import Code, Decoder, FlowControl, InstructionInfoFactory, MemorySizeExt, \
    Mnemonic, Register, RegisterExt

from spec.consts import (
    EFER_LMA, EFER_NX, PAGE_SIZE, PT_ACCESSED_MASK, PT_DIRTY_MASK, PT_PRESENT_MASK, PT_USER_MASK,
    PT_WRITABLE_MASK, X86_CR0_WP, X86_CR4_PAE,
)

from .asm import (
    Asm, al, ax, cr0, cr2, cr3, cr4, disassemble, dr6, dx, eax, ecx, edx, format_instruction, mem,
    r8, r9, r10, r11, r12, r13, r14, r15, rax, rbp, rbx, rcx, rdi, rdx, rel, rsi, rsp,
)
from .kvm import (
    EFER_LME, MSR_EFER, X86_CR0_ET, X86_CR0_NE, X86_CR0_PE, X86_CR0_PG, X86_EFLAGS_FIXED,
    X86_EFLAGS_TF, kvm_segment,
)

# -- layout ----------------------------------------------------------------------------
AGENT_SLOT = 100                  # the agent's memslot id (callers use other ids)
AGENT_GPA = 0x8000_0000
AGENT_PAGES = 32
AGENT_SIZE = AGENT_PAGES * PAGE_SIZE
AGENT_PML4_INDEX = 511
AGENT_GVA = (0xFFFF << 48) | (AGENT_PML4_INDEX << 39)   # 0xFFFF_FF80_0000_0000

PG_PDPT, PG_PD, PG_PT = 0, 1, 2
PG_GDT = 3        # GDT at offset 0, TSS at TSS_OFFSET
PG_IDT = 4
PG_MAILBOX = 5
PG_CODE, CODE_PAGES = 6, 4
PG_SCRATCH = 10
PG_STACK, STACK_PAGES = 11, 2
PG_IST1 = 13
PG_IST2 = 14
PG_USER = 15
PG_RSP0 = 16
MAPPED_PAGES = range(PG_GDT, PG_RSP0 + 1)
USER_PAGES = (PG_SCRATCH, PG_USER)
TSS_OFFSET = 0x800
TSS_LIMIT = 0x67


def gva(page, off=0):
    return AGENT_GVA + page * PAGE_SIZE + off


def gpa(page, off=0):
    return AGENT_GPA + page * PAGE_SIZE + off


STACK_TOP = gva(PG_STACK + STACK_PAGES)
IST1_TOP = gva(PG_IST1 + 1)
IST2_TOP = gva(PG_IST2 + 1)
RSP0_TOP = gva(PG_RSP0 + 1)
SCRATCH = gva(PG_SCRATCH)
SCRATCH_MID = gva(PG_SCRATCH, 0x800)

# Selectors: GDT index << 3 | RPL
KERNEL_CS, KERNEL_DS, USER_CS, USER_DS, TSS_SEL = 0x08, 0x10, 0x1B, 0x23, 0x28
GDT_ENTRIES = 7   # null, kernel code, kernel data, user code, user data, TSS (two slots)

AGENT_PORT = 0x5A5A     # `out dx, al` here ends a command
DB_VECTOR, UD_VECTOR, PF_VECTOR = 1, 6, 14
ERROR_CODE_VECTORS = frozenset((8, 10, 11, 12, 13, 14, 17, 21, 29, 30))
IST2_VECTORS = frozenset((2, 8, 18))
DR6_INIT = 0xFFFF0FF0

# Mailbox, u64 fields.  In: written by the VMM.  Out: written by the agent.
M_OP, M_SEQ, M_GVA, M_VALUE, M_TARGET, M_CS, M_SS, M_RFLAGS, M_RSP = range(0, 0x48, 8)
RESULT_BASE = 0x80
RESULT_FIELDS = ("status", "seq", "value", "vector", "error_code", "rip", "cs", "rflags", "rsp",
                 "cr2", "dr6", "cr0", "cr3", "cr4", "efer")
R = {name: RESULT_BASE + 8 * i for i, name in enumerate(RESULT_FIELDS)}
MAILBOX_SIZE = RESULT_BASE + 8 * len(RESULT_FIELDS)
ST_NONE, ST_OK, ST_EXCEPTION, ST_BAD_OP = 0, 1, 2, 3

OPS = ("access", "enter", "fetch", "invlpg", "mov_cr3", "set_cr0_wp", "set_efer_nx", "state",
       "spin")
OP = {name: i + 1 for i, name in enumerate(OPS)}
ACCESS_KINDS = ("read", "write", "rmw")   # through the stubs; a fetch is its own command
SIZES = (1, 2, 4, 8)

AGENT_TABLE = PT_PRESENT_MASK | PT_WRITABLE_MASK | PT_USER_MASK | PT_ACCESSED_MASK
AGENT_LEAF = PT_PRESENT_MASK | PT_WRITABLE_MASK | PT_ACCESSED_MASK | PT_DIRTY_MASK


def agent_pml4e():
    """The 8-byte PML4E to write at index AGENT_PML4_INDEX of every root the
    vCPU will load: the agent's PDPT; present, writable, user (the agent's
    leaves decide U/S page by page), accessed; no NX."""
    return gpa(PG_PDPT) | AGENT_TABLE


def _page_tables():
    pdpt = struct.pack("<Q", gpa(PG_PD) | AGENT_TABLE).ljust(PAGE_SIZE, b"\0")
    pd = struct.pack("<Q", gpa(PG_PT) | AGENT_TABLE).ljust(PAGE_SIZE, b"\0")
    pt = bytearray(PAGE_SIZE)
    for p in MAPPED_PAGES:
        leaf = gpa(p) | AGENT_LEAF | (PT_USER_MASK if p in USER_PAGES else 0)
        struct.pack_into("<Q", pt, 8 * p, leaf)
    return {PG_PDPT: pdpt, PG_PD: pd, PG_PT: bytes(pt)}


# -- the program ------------------------------------------------------------------------
def _box(field):
    """[rip + x] addressing a mailbox field."""
    return rel(gva(PG_MAILBOX, field))


def _build_code():
    a = Asm()
    C = Code
    a.label("entry")
    a(C.MOV_R64_IMM64, rsp, STACK_TOP)
    a.label("dispatch")
    a(C.MOV_R64_RM64, rax, _box(M_OP))
    for name in OPS:
        a(C.CMP_RM64_IMM8, rax, OP[name])
        a.je("op_" + name)
    a(C.MOV_RM64_IMM32, _box(R["status"]), ST_BAD_OP)
    a.jmp("done")

    a.label("op_access")
    a(C.MOV_R64_RM64, rbx, _box(M_GVA))
    a(C.MOV_R64_RM64, rax, _box(M_VALUE))
    a(C.JMP_RM64, _box(M_TARGET))

    def iret_frame():
        for field in (M_SS, M_RSP, M_RFLAGS, M_CS, M_TARGET):
            a(C.PUSH_RM64, _box(field))

    a.label("op_enter")
    iret_frame()
    a(C.MOV_R64_RM64, rbx, _box(M_GVA))
    a(C.MOV_R64_RM64, rax, _box(M_VALUE))
    a(C.IRETQ)

    a.label("op_fetch")
    iret_frame()
    for r in (rax, rbx, rcx, rdx, rsi, rdi, rbp, r8, r9, r10, r11, r12, r13, r14, r15):
        a(C.MOV_R64_IMM64, r, SCRATCH_MID)
    a(C.IRETQ)

    a.label("op_invlpg")
    a(C.MOV_R64_RM64, rbx, _box(M_GVA))
    a(C.INVLPG_M, mem(rbx))
    a.jmp("ok")

    a.label("op_mov_cr3")
    a(C.MOV_R64_RM64, rax, _box(M_VALUE))
    a(C.MOV_CR_R64, cr3, rax)
    a.jmp("ok")

    wp_bit, nx_bit = X86_CR0_WP.bit_length() - 1, EFER_NX.bit_length() - 1
    a.label("op_set_cr0_wp")
    a(C.MOV_R64_CR, rax, cr0)
    a(C.BTR_RM64_IMM8, rax, wp_bit)
    a(C.CMP_RM64_IMM8, _box(M_VALUE), 0)
    a.je("cr0_write")
    a(C.BTS_RM64_IMM8, rax, wp_bit)
    a.label("cr0_write")
    a(C.MOV_CR_R64, cr0, rax)
    a.jmp("ok")

    a.label("op_set_efer_nx")
    a(C.MOV_R32_IMM32, ecx, MSR_EFER)
    a(C.RDMSR)
    a(C.BTR_RM32_IMM8, eax, nx_bit)
    a(C.CMP_RM64_IMM8, _box(M_VALUE), 0)
    a.je("efer_write")
    a(C.BTS_RM32_IMM8, eax, nx_bit)
    a.label("efer_write")
    a(C.WRMSR)
    a.jmp("ok")

    a.label("op_state")
    for reg, field in ((cr0, "cr0"), (cr2, "cr2"), (cr3, "cr3"), (cr4, "cr4")):
        a(C.MOV_R64_CR, rax, reg)
        a(C.MOV_RM64_R64, _box(R[field]), rax)
    a(C.MOV_R32_IMM32, ecx, MSR_EFER)
    a(C.RDMSR)
    a(C.SHL_RM64_IMM8, rdx, 32)
    a(C.OR_R64_RM64, rax, rdx)
    a(C.MOV_RM64_R64, _box(R["efer"]), rax)
    a.jmp("ok")

    a.label("op_spin")
    a.label("spin")
    a.jmp("spin")

    _access_stubs(a, "k", lambda: a.jmp("access_done"))
    a.label("access_done")
    a(C.MOV_RM64_R64, _box(R["value"]), rax)
    a.label("ok")
    a(C.MOV_RM64_IMM32, _box(R["status"]), ST_OK)
    a.label("done")
    a(C.MOV_R64_IMM64, rsp, STACK_TOP)
    a(C.MOV_R64_RM64, rax, _box(M_SEQ))
    a(C.MOV_RM64_R64, _box(R["seq"]), rax)
    a(C.MOV_R32_IMM32, edx, AGENT_PORT)
    a.label("exit")
    a(C.OUT_DX_AL, dx, al)
    a.jmp("dispatch")

    # [rsp]: vector, error code, then the CPU's frame (RIP, CS, RFLAGS, RSP, SS).
    a.label("exc_common")
    a(C.POP_R64, rax)
    a(C.MOV_RM64_R64, _box(R["vector"]), rax)
    a(C.POP_R64, rax)
    a(C.MOV_RM64_R64, _box(R["error_code"]), rax)
    for k, field in enumerate(("rip", "cs", "rflags", "rsp")):
        a(C.MOV_R64_RM64, rax, mem(rsp, 8 * k))
        a(C.MOV_RM64_R64, _box(R[field]), rax)
    a(C.MOV_RM64_IMM32, _box(R["status"]), ST_EXCEPTION)
    a.jmp("done")

    for v in range(256):
        a.label(f"vector_{v}")
        a(C.MOV_RM64_R64, _box(R["value"]), rax)   # what a CPL 3 stub read
        if v == PF_VECTOR:
            a(C.MOV_R64_CR, rax, cr2)
            a(C.MOV_RM64_R64, _box(R["cr2"]), rax)
        if v == DB_VECTOR:
            a(C.MOV_R64_DR, rax, dr6)
            a(C.MOV_RM64_R64, _box(R["dr6"]), rax)
            a(C.MOV_R32_IMM32, eax, DR6_INIT)
            a(C.MOV_DR_R64, dr6, rax)
        if v not in ERROR_CODE_VECTORS:
            a(C.PUSHQ_IMM8, 0)
        a(C.PUSHQ_IMM32 if v > 0x7F else C.PUSHQ_IMM8, v)
        a.jmp("exc_common")
    return a.assemble(gva(PG_CODE))


def _access_stubs(a, prefix, back):
    """For each kind and size a stub `<prefix><kind><size>`: the access at
    [rbx] (rax: the value to store, or the value read), then `back`."""
    C = Code
    load = {1: (C.MOVZX_R32_RM8, eax), 2: (C.MOVZX_R32_RM16, eax), 4: (C.MOV_R32_RM32, eax),
            8: (C.MOV_R64_RM64, rax)}
    store = {1: (C.MOV_RM8_R8, al), 2: (C.MOV_RM16_R16, ax), 4: (C.MOV_RM32_R32, eax),
             8: (C.MOV_RM64_R64, rax)}
    rmw = {1: C.OR_RM8_IMM8, 2: C.OR_RM16_IMM8, 4: C.OR_RM32_IMM8, 8: C.OR_RM64_IMM8}
    for size in SIZES:
        for kind in ACCESS_KINDS:
            a.label(f"{prefix}{kind}{size}")
            if kind == "read":
                a(load[size][0], load[size][1], mem(rbx))
            elif kind == "write":
                a(store[size][0], mem(rbx), store[size][1])
            else:
                a(rmw[size], mem(rbx), 0)
            a.label(f"{prefix}{kind}{size}_done")
            back()


def _build_user_stubs():
    a = Asm()
    _access_stubs(a, "u", lambda: a(Code.UD2))
    return a.assemble(gva(PG_USER))


def _seg_desc(base, limit, access, flags):
    return (limit & 0xFFFF) | (base & 0xFFFFFF) << 16 | access << 40 | \
        ((limit >> 16) & 0xF) << 48 | flags << 52 | ((base >> 24) & 0xFF) << 56


def _gdt_and_tss():
    page = bytearray(PAGE_SIZE)
    tss = gva(PG_GDT, TSS_OFFSET)
    descs = [0,
             _seg_desc(0, 0xFFFFF, 0x9B, 0xA),   # kernel code: P, DPL 0, exec/read, accessed; G, L
             _seg_desc(0, 0xFFFFF, 0x93, 0xC),   # kernel data: P, DPL 0, read/write, accessed; G, D/B
             _seg_desc(0, 0xFFFFF, 0xFB, 0xA),   # user code, DPL 3
             _seg_desc(0, 0xFFFFF, 0xF3, 0xC),   # user data, DPL 3
             _seg_desc(tss, TSS_LIMIT, 0x8B, 0), tss >> 32]   # busy 64-bit TSS (16 bytes)
    for i, d in enumerate(descs):
        struct.pack_into("<Q", page, 8 * i, d)
    struct.pack_into("<Q", page, TSS_OFFSET + 0x04, RSP0_TOP)
    struct.pack_into("<Q", page, TSS_OFFSET + 0x24, IST1_TOP)
    struct.pack_into("<Q", page, TSS_OFFSET + 0x2C, IST2_TOP)
    struct.pack_into("<H", page, TSS_OFFSET + 0x66, TSS_LIMIT + 1)   # no I/O bitmap
    return bytes(page)


def _idt(labels):
    page = bytearray(PAGE_SIZE)
    for v in range(256):
        target = labels[f"vector_{v}"]
        ist = 2 if v in IST2_VECTORS else 1
        struct.pack_into("<HHBBHII", page, 16 * v, target & 0xFFFF, KERNEL_CS, ist,
                         0x8E,   # present, DPL 0, 64-bit interrupt gate
                         (target >> 16) & 0xFFFF, target >> 32, 0)
    return bytes(page)


class AgentImage:
    """The agent's pages and the addresses of its labels."""

    def __init__(self):
        self.code, self.labels = _build_code()
        self.user_code, user_labels = _build_user_stubs()
        if len(self.code) > CODE_PAGES * PAGE_SIZE or len(self.user_code) > PAGE_SIZE:
            raise AssertionError("the agent outgrew its code pages")
        self.labels.update(user_labels)
        self.pages = _page_tables()
        self.pages[PG_GDT] = _gdt_and_tss()
        self.pages[PG_IDT] = _idt(self.labels)
        for k in range(CODE_PAGES):
            self.pages[PG_CODE + k] = self.code[k * PAGE_SIZE:(k + 1) * PAGE_SIZE]
        self.pages[PG_USER] = self.user_code
        self._starts = sorted(set(self.labels.values()))

    def blob(self):
        """The agent memslot's initial contents."""
        out = bytearray(AGENT_SIZE)
        for page, data in self.pages.items():
            out[page * PAGE_SIZE:page * PAGE_SIZE + len(data)] = data
        return bytes(out)

    def stub(self, kind, size, cpl):
        """(label, address of the access, address right after it) of the
        stub for `kind` and `size` at CPL 0 ("k..." ends with a jump back) or
        CPL 3 ("u..." ends with ud2)."""
        if kind not in ACCESS_KINDS or size not in SIZES:
            raise ValueError(f"access {kind!r} of {size!r} bytes: kind one of {ACCESS_KINDS}, "
                             f"size one of {SIZES}")
        if cpl not in (0, 3):
            raise ValueError(f"cpl must be 0 or 3, not {cpl!r}")
        name = f"{'k' if cpl == 0 else 'u'}{kind}{size}"
        return name, self.labels[name], self.labels[name + "_done"]

    def block(self, name):
        """Disassembly of the code from label `name` up to the next label."""
        start = self.labels[name]
        later = [a for a in self._starts if a > start]
        if gva(PG_USER) <= start < gva(PG_USER + 1):
            data, base = self.user_code, gva(PG_USER)
        else:
            data, base = self.code, gva(PG_CODE)
        end = min(later[0] if later else base + len(data), base + len(data))
        return disassemble(data[start - base:end - base], start)

    def all_instructions(self):
        return disassemble(self.code, gva(PG_CODE)) + disassemble(self.user_code, gva(PG_USER))


@lru_cache(maxsize=1)
def image():
    return AgentImage()


# -- fetch safety ------------------------------------------------------------------------
_INFO = InstructionInfoFactory()
_FAR = frozenset(getattr(Mnemonic, n) for n in ("IRET", "IRETD", "IRETQ", "SYSRET", "SYSRETQ",
                                                 "SYSEXIT", "SYSEXITQ", "RETF", "ENTER")
                 if hasattr(Mnemonic, n))


def vet_fetch(data, ip, cpl):
    """Whether running the one instruction decoded from `data` at `ip` (the
    bytes a fetch at `ip` executes, as the VMM reads them) touches nothing
    but the agent's scratch page, every general register being SCRATCH_MID:
    (ok, text), text the instruction or why it is refused.

    Refused: at CPL 0 an instruction that needs CPL 0, does port I/O or is a
    software interrupt (kvm_pvm cannot deliver those: internal error); at
    any CPL a far transfer, ENTER, or a memory operand that is RIP-relative,
    of unknown size or outside the scratch page (address-size prefixes,
    index registers and implicit stack accesses included, as iced-x86's
    InstructionInfoFactory lists them).  Bytes that stop short of a whole
    instruction (its next page has no translation) are let through: that
    page's fetch faults before anything runs."""
    ins = Decoder(64, data, ip=ip).decode()
    text = format_instruction(ins)
    if ins.is_invalid:
        if len(data) < 15:
            return True, f"{data.hex()}: continues into a page with no translation"
        return True, f"{data.hex()}: not an instruction (#UD)"
    oc = ins.op_code()
    if cpl == 0 and (oc.must_be_cpl0 or oc.may_require_cpl0 or ins.is_privileged
                     or oc.is_input_output or ins.flow_control == FlowControl.INTERRUPT):
        return False, f"{text}: privileged, port I/O or a software interrupt at CPL 0"
    if ins.is_jmp_far or ins.is_call_far or ins.is_jmp_far_indirect or ins.is_call_far_indirect \
            or ins.mnemonic in _FAR:
        return False, f"{text}: a far transfer or ENTER"
    for m in _INFO.info(ins).used_memory():
        size = MemorySizeExt.size(m.memory_size)
        if m.base in (Register.RIP, Register.EIP) or not 0 < size <= 512:
            return False, f"{text}: a memory operand RIP-relative or of unknown size"
        addr = m.displacement + _reg_value(m.base) + _reg_value(m.index) * m.scale
        addr &= (1 << {1: 16, 2: 32}.get(m.address_size, 64)) - 1
        if not (SCRATCH <= addr and addr + size <= SCRATCH + PAGE_SIZE):
            return False, f"{text}: touches {addr:#x}, outside the scratch page"
    return True, text


def _reg_value(reg):
    if reg == Register.NONE:
        return 0
    size = RegisterExt.size(reg)
    if size not in (2, 4, 8) or not RegisterExt.is_gpr(reg):
        return 1 << 64   # not a general register (a segment or vector register): refuse
    return SCRATCH_MID & ((1 << (8 * size)) - 1)


# -- the VMM side: register state for the agent ---------------------------------------
def segment(selector):
    """The kvm_segment of one of the agent's code or data selectors."""
    s = kvm_segment(selector=selector, base=0, limit=0xFFFFFFFF, present=1, s=1, g=1,
                    dpl=selector & 3)
    if selector in (KERNEL_CS, USER_CS):
        s.type, s.l, s.db = 0xB, 1, 0
    else:
        s.type, s.db = 0x3, 1
    return s


def setup_sregs(s, cr3, cr0_wp, efer_nx):
    """Long mode with the agent's GDT, IDT and TSS, on a kvm_sregs from
    KVM_GET_SREGS: CR0.PG|PE (+WP), CR4.PAE, EFER.LME|LMA (+NX)."""
    s.cs = segment(KERNEL_CS)
    s.ds = s.es = s.fs = s.gs = s.ss = segment(KERNEL_DS)
    s.tr = kvm_segment(selector=TSS_SEL, base=gva(PG_GDT, TSS_OFFSET), limit=TSS_LIMIT, type=0xB,
                       present=1, s=0, g=0)
    s.gdt.base, s.gdt.limit = gva(PG_GDT), 8 * GDT_ENTRIES - 1
    s.idt.base, s.idt.limit = gva(PG_IDT), 16 * 256 - 1
    s.cr0 = X86_CR0_PE | X86_CR0_ET | X86_CR0_NE | X86_CR0_PG | (X86_CR0_WP if cr0_wp else 0)
    s.cr4 = X86_CR4_PAE
    s.efer = EFER_LME | EFER_LMA | (EFER_NX if efer_nx else 0)
    s.cr3 = cr3
    return s


def iret_fields(cpl, target, tf=False):
    """Mailbox fields of `enter` / `fetch`: iretq to `target` at `cpl`."""
    if cpl not in (0, 3):
        raise ValueError(f"cpl must be 0 or 3, not {cpl!r}")
    return {M_TARGET: target, M_CS: KERNEL_CS if cpl == 0 else USER_CS,
            M_SS: KERNEL_DS if cpl == 0 else USER_DS,
            M_RFLAGS: X86_EFLAGS_FIXED | (X86_EFLAGS_TF if tf else 0), M_RSP: SCRATCH_MID}
