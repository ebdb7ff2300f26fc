"""A tiny assembler and disassembler over iced-x86.

iced-x86's Python binding has no code assembler, only Instruction.create_*
and BlockEncoder; `Asm` adds labels and operand typing on top:

    a = Asm()
    a.label("loop")
    a(Code.MOV_R64_RM64, rax, rel(0xFFFF_FF80_0000_5000))   # [rip + x] at an absolute gva
    a(Code.CMP_RM64_IMM8, rax, 1)
    a.je("loop")
    code, labels = a.assemble(rip)

Registers are `Reg` objects (rax, ...), memory operands MemoryOperand
(mem(base, disp), rel(address)), and plain ints are immediates.  Every
byte comes out of iced's encoder; `disassemble` formats with its Formatter.
"""

from iced_x86 import (
    BlockEncoder, Code, Decoder, Formatter, FormatterSyntax, Instruction, MemoryOperand, Register,
)


class Reg:
    """A register operand (iced's Register values are plain ints; wrapping
    them keeps them apart from immediates)."""

    def __init__(self, name):
        self.name = name
        self.value = getattr(Register, name.upper())

    def __repr__(self):
        return self.name


rax, rbx, rcx, rdx, rsi, rdi, rsp, rbp = (Reg(n) for n in ("rax", "rbx", "rcx", "rdx", "rsi",
                                                          "rdi", "rsp", "rbp"))
r8, r9, r10, r11, r12, r13, r14, r15 = (Reg(f"r{i}") for i in range(8, 16))
eax, ecx, edx, ax, al, dx = (Reg(n) for n in ("eax", "ecx", "edx", "ax", "al", "dx"))
cr0, cr2, cr3, cr4, dr6 = (Reg(n) for n in ("cr0", "cr2", "cr3", "cr4", "dr6"))


def mem(base, disp=0):
    """[base + disp]."""
    return MemoryOperand(base.value, displ=disp, displ_size=1 if disp else 0)


def rel(address):
    """[rip + x] addressing the absolute address `address` (BlockEncoder
    computes x from where the instruction lands)."""
    return MemoryOperand.ctor_u64(Register.RIP, displ=address, displ_size=8)


_IMM64_CODES = frozenset((Code.MOV_R64_IMM64,))


def create(code, *ops):
    """Instruction.create_<operand kinds>(code, *ops)."""
    kinds, args = [], []
    for o in ops:
        if isinstance(o, Reg):
            kinds.append("reg")
            args.append(o.value)
        elif isinstance(o, MemoryOperand):
            kinds.append("mem")
            args.append(o)
        elif code in _IMM64_CODES:
            kinds.append("u64")
            args.append(o)
        else:
            kinds.append("u32" if 0x80000000 <= o <= 0xFFFFFFFF else "i32")
            args.append(o)
    return getattr(Instruction, "create_" + "_".join(kinds) if kinds else "create")(code, *args)


class Asm:
    """Instructions and labels; assemble(rip) encodes them with BlockEncoder
    and returns (bytes, {label: address})."""

    _PSEUDO_IP = 0x1000_0000_0000   # original IPs BlockEncoder relocates branches from

    def __init__(self):
        self.items = []

    def __call__(self, code, *ops):
        self.items.append(("ins", create(code, *ops)))

    def label(self, name):
        self.items.append(("label", name))

    def branch(self, code, target):
        self.items.append(("branch", code, target))

    def jmp(self, target):
        self.branch(Code.JMP_REL32_64, target)

    def je(self, target):
        self.branch(Code.JE_REL32_64, target)

    def assemble(self, rip, bitness=64):
        labels, n = {}, 0
        for item in self.items:      # a label names the instruction after it
            if item[0] == "label":
                labels[item[1]] = n
            else:
                n += 1
        instrs = []
        for item in self.items:
            if item[0] == "label":
                continue
            if item[0] == "branch":
                ins = Instruction.create_branch(item[1], self._PSEUDO_IP + 16 * labels[item[2]])
            else:
                ins = item[1]
            ins.ip = self._PSEUDO_IP + 16 * len(instrs)
            instrs.append(ins)
        enc = BlockEncoder(bitness)
        enc.add_many(instrs)
        code = enc.encode(rip)
        addrs = [ins.ip for ins in Decoder(bitness, code, ip=rip)]
        if len(addrs) != len(instrs):
            raise AssertionError("BlockEncoder changed the number of instructions")
        addrs.append(rip + len(code))
        return code, {name: addrs[k] for name, k in labels.items()}


_FORMATTER = Formatter(FormatterSyntax.INTEL)


def format_instruction(ins):
    return _FORMATTER.format(ins)


def disassemble(data, ip, bitness=64):
    """['address: bytes  instruction', ...] by iced-x86's decoder and formatter."""
    out = []
    for ins in Decoder(bitness, data, ip=ip):
        raw = data[ins.ip - ip:ins.ip - ip + ins.len].hex()
        out.append(f"{ins.ip:#018x}: {raw:<22} {_FORMATTER.format(ins)}")
    return out
