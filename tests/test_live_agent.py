"""The guest agent on the host's /dev/kvm (live/agent.py, machine.py, vm.py).

Each test builds its own small page table (live/pagetable.py: PML4 at gfn
0x10 with entry 511 = the agent's) and drives a LiveVm.  All tested (fixed
inputs, one run on this host).  Tests that need /dev/kvm skip with the
reason when it is unusable.
"""

import struct
import threading
import time

import pytest

from iced_x86 import Code

from live import agent as A
from live.asm import Asm
from live.kvm import usable
from live.pagetable import PD, PDPT, PML4, SmallPageTable, read_entry
from spec.consts import (
    PFERR_FETCH_MASK, PFERR_PRESENT_MASK, PFERR_RSVD_MASK, PFERR_USER_MASK, PFERR_WRITE_MASK,
    PT64_NX_MASK, PT_ACCESSED_MASK, PT_DIRTY_MASK, PT_PRESENT_MASK, PT_USER_MASK, PT_WRITABLE_MASK,
)

USABLE, WHY = usable()
needs_kvm = pytest.mark.skipif(not USABLE, reason=WHY)
pytestmark = pytest.mark.timeout(120)

P, W, U = PT_PRESENT_MASK, PT_WRITABLE_MASK, PT_USER_MASK
A_D = PT_ACCESSED_MASK | PT_DIRTY_MASK
DATA, OTHER, RO, NOSLOT, NX, SUPER, TABLES = (0x20000, 0x21000, 0x22000, 0x23000, 0x24000,
                                              0x25000, 0x13000)


def q(v):
    return struct.pack("<Q", v)


@pytest.fixture
def vm():
    from live.vm import LiveVm
    with LiveVm() as v:
        yield v


def standard(vm, **vcpu):
    """Slot 0 = gfns 0..0x3ff; gva 0x20000.. as listed; the PT page itself at
    gva 0x13000 (writable), so the guest can edit its own ptes."""
    vm.memslot_create(0, 0, 0x400)
    t = SmallPageTable()
    t.map(DATA, 0x20, P | W | U).map(OTHER, 0x21, P | W | U).map(RO, 0x22, P | U)
    t.map(NOSLOT, 0x500, P | W | U).map(NX, 0x24, P | W | U | PT64_NX_MASK)
    t.map(SUPER, 0x25, P | W).map(TABLES, 0x13, P | W)
    t.write_to(vm)
    vm.write_memory(0x20000, q(0x1111))
    vm.write_memory(0x21000, q(0x2222))
    vm.create_vcpu(0, t.cr3, **vcpu)
    return t


# -- accessed and dirty bits -------------------------------------------------------------
@needs_kvm
def test_store_sets_a_and_d_load_sets_a_nonleaf_a_only(vm):
    t = standard(vm)
    assert vm.access(0, DATA, "write", 8, 0x99).kind == "ok"
    out = vm.access(0, OTHER, "read", 8)
    assert (out.kind, out.value) == ("ok", 0x2222)
    assert read_entry(vm, t.pte_gpa(DATA)) & A_D == A_D
    assert read_entry(vm, t.pte_gpa(OTHER)) & A_D == PT_ACCESSED_MASK
    assert read_entry(vm, t.pte_gpa(RO)) & A_D == 0    # untouched
    for gpa in (PML4, PDPT, PD):
        assert read_entry(vm, gpa) & A_D == PT_ACCESSED_MASK, hex(gpa)
    assert struct.unpack("<Q", vm.read_memory(0x20000, 8))[0] == 0x99


@needs_kvm
def test_sizes_and_rmw(vm):
    standard(vm)
    vm.access(0, DATA, "write", 8, 0x1122334455667788)
    assert [vm.access(0, DATA, "read", n).value for n in (1, 2, 4, 8)] == \
        [0x88, 0x7788, 0x55667788, 0x1122334455667788]
    vm.access(0, DATA + 2, "write", 2, 0xABCD)
    assert vm.access(0, DATA, "read", 8).value == 0x11223344ABCD7788
    assert vm.access(0, DATA, "rmw", 4).kind == "ok"
    assert vm.access(0, DATA, "read", 8).value == 0x11223344ABCD7788


# -- faults, MMIO ----------------------------------------------------------------------
@needs_kvm
def test_store_to_read_only_page_faults(vm):
    standard(vm)
    out = vm.access(0, RO + 0x10, "write", 4, 1)
    assert out.kind == "#PF" and out.vector == 14
    assert out.error_code == PFERR_PRESENT_MASK | PFERR_WRITE_MASK == 0x3
    assert out.cr2 == RO + 0x10
    assert vm.access(0, RO, "rmw", 1).error_code == 0x3
    assert vm.access(0, RO, "read", 8).kind == "ok"


@needs_kvm
def test_load_through_a_pte_to_no_memslot_is_mmio(vm):
    standard(vm)
    out = vm.access(0, NOSLOT + 8, "read", 4)
    assert (out.kind, out.gpa, out.length, out.is_write, out.value) == \
        ("mmio", 0x500008, 4, False, 0)
    out = vm.access(0, NOSLOT, "write", 2, 0x55)
    assert (out.kind, out.gpa, out.length, out.is_write) == ("mmio", 0x500000, 2, True)
    assert vm.access(0, DATA, "read", 8).value == 0x1111   # the vCPU carries on


@needs_kvm
def test_cpl3_accesses(vm):
    standard(vm)
    assert vm.access(0, DATA, "write", 8, 7, cpl=3).kind == "ok"
    assert vm.access(0, DATA, "read", 8, cpl=3).value == 7
    out = vm.access(0, SUPER, "read", 8, cpl=3)
    assert (out.kind, out.error_code, out.cr2) == ("#PF", PFERR_PRESENT_MASK | PFERR_USER_MASK, SUPER)
    assert vm.access(0, RO, "write", 1, 0, cpl=3).error_code == 0x7
    assert vm.access(0, SUPER, "read", 8, cpl=0).kind == "ok"


# -- dirty log, MMU notifier -----------------------------------------------------------------
@needs_kvm
def test_get_dirty_log_reports_exactly_the_gfns_stored_to(vm):
    vm.memslot_create(0, 0, 0x40)
    vm.memslot_create(1, 0x100, 0x10, dirty_log=True)   # data only: no page tables in it
    t = SmallPageTable()
    for k in range(8):
        t.map(0x30000 + 0x1000 * k, 0x100 + k, P | W | U)
    t.write_to(vm)
    vm.create_vcpu(0, t.cr3)
    vm.access(0, 0x31000, "write", 8, 1)
    vm.access(0, 0x35000, "write", 1, 2)
    vm.access(0, 0x32000, "read", 8)
    vm.access(0, 0x33000, "fetch")
    assert vm.get_dirty_log(1) == {0x101, 0x105}
    assert vm.get_dirty_log(1) == set()
    vm.access(0, 0x35000, "rmw", 1)        # write-protected again after GET_DIRTY_LOG
    assert vm.get_dirty_log(1) == {0x105}
    vm.memslot_dirty_log(1, False)
    with pytest.raises(ValueError, match="not logging"):
        vm.get_dirty_log(1)


@needs_kvm
def test_madvise_dontneed_then_load_reads_zero(vm):
    standard(vm)
    assert vm.access(0, DATA, "read", 8).value == 0x1111
    vm.access(0, OTHER, "write", 8, 0x4444)
    vm.madvise_dontneed(0, 0x20, 2)
    assert vm.read_memory(0x20000, 8) == bytes(8)
    assert vm.access(0, DATA, "read", 8).value == 0
    assert vm.access(0, OTHER, "read", 8).value == 0


@needs_kvm
def test_memslot_move_and_delete(vm):
    standard(vm)
    from live.kvm import KvmError
    vm.memslot_create(1, 0x600, 1)
    t_pte = SmallPageTable.pte_gpa(0x30000)
    vm.access(0, TABLES + (t_pte & 0xFFF), "write", 8, (0x600 << 12) | P | W)  # guest maps it
    vm.access(0, 0x30000, "write", 8, 0xAB)
    vm.memslot_move(1, 0x680)
    out = vm.access(0, 0x30000, "read", 8)
    assert (out.kind, out.gpa) == ("mmio", 0x600000)           # gfn 0x600 has no slot now
    vm.access(0, TABLES + (t_pte & 0xFFF), "write", 8, (0x680 << 12) | P | W)
    assert vm.access(0, 0x30000, "read", 8).value == 0xAB      # same backing, new gfn
    vm.memslot_delete(1)
    assert vm.access(0, 0x30000, "read", 8).kind == "mmio"
    with pytest.raises(KvmError, match="KVM_SET_USER_MEMORY_REGION.*EEXIST"):
        vm.memslot_create(2, 0x100, 1)                         # inside slot 0


# -- INVLPG, MOV CR3, CR0.WP, EFER.NX ----------------------------------------------------
@needs_kvm
def test_pte_edit_invlpg_and_mov_cr3(vm):
    t = standard(vm)
    assert vm.access(0, DATA, "read", 8).value == 0x1111
    # the guest points gva DATA at gfn 0x21, through its own page table
    out = vm.access(0, TABLES + (t.pte_gpa(DATA) & 0xFFF), "write", 8, (0x21 << 12) | P | W | U)
    assert out.kind == "ok"
    assert vm.invlpg(0, DATA).kind == "ok"
    assert vm.access(0, DATA, "read", 8).value == 0x2222
    # a second root: its own PML4 at gfn 0x14 sharing the PDPT, with the agent's PML4E
    vm.access(0, TABLES + 8 * 0x14, "write", 8, (0x14 << 12) | P | W)       # map gva 0x14000
    vm.access(0, 0x14000, "write", 8, PDPT | P | W | U)
    vm.access(0, 0x14000 + 8 * A.AGENT_PML4_INDEX, "write", 8, A.agent_pml4e())
    assert vm.mov_cr3(0, 0x14000).kind == "ok"
    assert vm.state(0)["cr3"] == 0x14000
    assert vm.access(0, DATA, "read", 8).value == 0x2222
    assert read_entry(vm, 0x14000) & PT_ACCESSED_MASK
    assert vm.mov_cr3(0, PML4).kind == "ok"
    with pytest.raises(ValueError, match="agent's PML4E"):
        vm.mov_cr3(0, 0x15000)   # an empty page: the agent would vanish


@needs_kvm
def test_cr0_wp_and_efer_nx(vm):
    standard(vm, cr0_wp=True, efer_nx=True)
    assert vm.access(0, RO, "write", 1, 5).error_code == 0x3
    assert vm.set_cr0_wp(0, False).kind == "ok"
    assert vm.state(0)["cr0"] & (1 << 16) == 0
    assert vm.access(0, RO, "write", 1, 5).kind == "ok"        # supervisor ignores R/W
    assert vm.access(0, RO, "read", 1).value == 5
    assert vm.access(0, RO, "write", 1, 6, cpl=3).error_code == 0x7   # user does not
    vm.set_cr0_wp(0, True)
    assert vm.access(0, RO, "write", 1, 6).error_code == 0x3

    out = vm.access(0, NX, "fetch")
    assert (out.kind, out.error_code, out.cr2, out.rip) == \
        ("#PF", PFERR_PRESENT_MASK | PFERR_FETCH_MASK, NX, NX)
    assert vm.access(0, DATA + 8, "fetch").kind == "ok"        # bytes 00 00: add [rax],al
    assert vm.set_efer_nx(0, False).kind == "ok"
    assert vm.state(0)["efer"] & (1 << 11) == 0
    out = vm.access(0, NX, "fetch")                            # bit 63 is reserved now
    assert (out.kind, out.error_code) == ("#PF", PFERR_PRESENT_MASK | PFERR_RSVD_MASK)
    vm.set_efer_nx(0, True)
    assert vm.access(0, DATA, "read", 8).value == 0x1111       # the agent survives it all


# -- fetch ----------------------------------------------------------------------------
@needs_kvm
def test_fetch_runs_one_instruction_or_refuses(vm):
    t = SmallPageTable().map(0x30000, 0x30, P | W | U).map(0x31000, 0x31, P | W | U)
    vm.memslot_create(0, 0, 0x40)
    t.write_to(vm)
    a = Asm()
    a(Code.NOPD)
    vm.write_memory(0x30000, a.assemble(0x30000)[0])
    vm.write_memory(0x31000, bytes.fromhex("670000"))         # add [eax],al: outside scratch
    vm.create_vcpu(0, t.cr3)
    out = vm.access(0, 0x30000, "fetch")
    assert out.kind == "ok" and "#DB (single step) at 0x30001" in out.detail
    assert read_entry(vm, t.pte_gpa(0x30000)) & A_D == PT_ACCESSED_MASK
    out = vm.access(0, 0x31000, "fetch")
    assert out.kind == "refused" and "outside the scratch page" in out.detail
    assert read_entry(vm, t.pte_gpa(0x31000)) & PT_ACCESSED_MASK == 0   # nothing ran
    assert vm.access(0, 0x30000, "fetch", cpl=3).kind == "ok"


def test_vet_fetch():
    ok = lambda hexbytes, cpl=0: A.vet_fetch(bytes.fromhex(hexbytes), 0x30000, cpl)[0]
    assert ok("0000")                 # add [rax],al: rax is in the scratch page
    assert ok("50") and ok("c3")      # push rax, ret: the stack is the scratch page
    assert ok("0f0b")                 # ud2
    assert not ok("670000")           # add [eax],al: the low 4 GB
    assert not ok("000500000000")     # add [rip+0],al
    assert not ok("00040500100000")   # add [rax*1+0x1000]... an index register
    assert not ok("0f22d8")           # mov cr3,rax at CPL 0
    assert ok("0f22d8", cpl=3)        # ... at CPL 3 it raises #GP
    assert not ok("cd80")             # int 0x80 at CPL 0 (kvm_pvm cannot deliver it)
    assert not ok("ee")               # out dx,al at CPL 0
    assert ok("00")                   # an instruction cut short by an unmapped next page


# -- the watchdog, set-up rules, disassembly -------------------------------------------
@needs_kvm
def test_watchdog_ends_a_spinning_guest_from_a_worker_thread(vm):
    standard(vm)
    got = {}

    def run():
        start = time.monotonic()
        got["out"] = vm.spin(0)
        got["took"] = time.monotonic() - start
    th = threading.Thread(target=run)
    th.start()
    th.join(10)
    assert not th.is_alive()
    assert got["out"].kind == "watchdog"
    assert 0.9 <= got["took"] < 3.0
    assert vm.access(0, DATA, "read", 8).value == 0x1111       # the vCPU is back at the agent
    vm.close()
    assert vm.closed


@needs_kvm
def test_setup_rules(vm):
    from live.vm import LiveVmError
    with pytest.raises(ValueError, match="at most 64 MB"):
        vm.memslot_create(0, 0, (64 << 20) >> 12)
    with pytest.raises(ValueError, match="agent's PML4E"):
        vm.create_vcpu(0, 0x10000)   # no memory there yet
    standard(vm)
    vm.access(0, DATA, "read", 8)
    with pytest.raises(ValueError, match="after the first KVM_RUN"):
        vm.write_memory(0x20000, b"x")
    with pytest.raises(ValueError, match="agent's"):
        vm.memslot_create(A.AGENT_SLOT, 0x1000, 1)
    with pytest.raises(ValueError, match="no vcpu 3"):
        vm.access(3, DATA, "read", 8)
    vm.close()
    with pytest.raises(LiveVmError, match="closed"):
        vm.access(0, DATA, "read", 8)


def test_agent_disassembles():
    img = A.image()
    lines = img.all_instructions()
    text = "\n".join(lines)
    for needle in ("iretq", "out dx,al", "ud2", "mov cr3,rax", "wrmsr", "invlpg [rbx]",
                   "mov rax,cr2", "mov [rbx],rax", "or byte ptr [rbx],0"):
        assert needle in text, needle
    assert not any("(bad)" in line or "??" in line for line in lines)
    assert img.block("kwrite8")[0].endswith("mov [rbx],rax")
    assert A.agent_pml4e() == A.AGENT_GPA | 0x27   # P, W, U, A; no D, no NX
    assert A.AGENT_GVA >> 39 & 511 == A.AGENT_PML4_INDEX == 511


@needs_kvm
def test_last_instructions(vm):
    standard(vm)
    vm.access(0, DATA, "write", 8, 3, cpl=3)
    lines = vm.last_instructions(0)
    assert lines[0].startswith("; write 8 bytes")
    assert any(line.endswith("iretq") for line in lines)
    assert any(line.endswith("mov [rbx],rax") for line in lines)
    assert any(line.endswith("ud2") for line in lines)
    vm.access(0, RO, "write", 1, 0)
    assert any("push 0Eh" in line for line in vm.last_instructions(0))
