"""live/kvm.py: struct layouts and ioctl numbers against the uapi headers,
the binding on the host's /dev/kvm, the probe, and that nothing leaks.

Expected numbers are written out from the header text (include/uapi/linux/
kvm.h of Linux 3.11, arch/x86/include/uapi/asm/kvm.h and
asm-generic/ioctl.h of 3.10.99), not computed.  Tests that need /dev/kvm
skip with usable()'s reason when it is missing or cannot be opened.
"""

import ctypes
import errno
import json
import os
import subprocess
import sys
import textwrap
import time

import pytest

from live import kvm
from live.kvm import (
    KvmError, Kvm, Mapping, kvm_cpuid2, kvm_cpuid_entry2, kvm_dirty_log, kvm_dtable,
    kvm_guest_debug, kvm_msr_entry, kvm_msrs, kvm_regs, kvm_run, kvm_segment, kvm_sregs,
    kvm_userspace_memory_region, usable,
)

USABLE, WHY = usable()
needs_kvm = pytest.mark.skipif(not USABLE, reason=WHY)
pytestmark = pytest.mark.timeout(120)


def off(struct, field):
    return getattr(struct, field).offset


# -- layouts ---------------------------------------------------------------------------
def test_struct_sizes():
    assert ctypes.sizeof(kvm_userspace_memory_region) == 32
    assert ctypes.sizeof(kvm_regs) == 144
    assert ctypes.sizeof(kvm_segment) == 24
    assert ctypes.sizeof(kvm_dtable) == 16
    assert ctypes.sizeof(kvm_sregs) == 312
    assert ctypes.sizeof(kvm_dirty_log) == 16
    assert ctypes.sizeof(kvm_cpuid2) == 8
    assert ctypes.sizeof(kvm_cpuid_entry2) == 40
    assert ctypes.sizeof(kvm_msrs) == 8
    assert ctypes.sizeof(kvm_msr_entry) == 16
    assert ctypes.sizeof(kvm_guest_debug) == 72
    assert ctypes.sizeof(kvm_run) == 32 + 256   # the head and the exit union


def test_key_offsets():
    m = kvm_userspace_memory_region
    assert (off(m, "slot"), off(m, "flags"), off(m, "guest_phys_addr"), off(m, "memory_size"),
            off(m, "userspace_addr")) == (0, 4, 8, 16, 24)
    assert (off(kvm_regs, "rax"), off(kvm_regs, "rsp"), off(kvm_regs, "r15"),
            off(kvm_regs, "rip"), off(kvm_regs, "rflags")) == (0, 48, 120, 128, 136)
    s = kvm_segment
    assert (off(s, "base"), off(s, "limit"), off(s, "selector"), off(s, "type"), off(s, "present"),
            off(s, "l"), off(s, "g"), off(s, "unusable")) == (0, 8, 12, 14, 15, 19, 20, 22)
    assert (off(kvm_dtable, "base"), off(kvm_dtable, "limit")) == (0, 8)
    r = kvm_sregs
    assert (off(r, "cs"), off(r, "ss"), off(r, "tr"), off(r, "ldt"), off(r, "gdt"), off(r, "idt"),
            off(r, "cr0"), off(r, "cr2"), off(r, "cr3"), off(r, "cr4"), off(r, "cr8"),
            off(r, "efer"), off(r, "apic_base"), off(r, "interrupt_bitmap")) == \
        (0, 120, 144, 168, 192, 208, 224, 232, 240, 248, 256, 264, 272, 280)
    assert (off(kvm_dirty_log, "slot"), off(kvm_dirty_log, "dirty_bitmap")) == (0, 8)
    e = kvm_cpuid_entry2
    assert (off(e, "function"), off(e, "index"), off(e, "flags"), off(e, "eax"), off(e, "edx")) == \
        (0, 4, 8, 12, 24)
    assert (off(kvm_msr_entry, "index"), off(kvm_msr_entry, "data")) == (0, 8)


def test_kvm_run_offsets():
    assert off(kvm_run, "request_interrupt_window") == 0
    assert off(kvm_run, "immediate_exit") == 1
    assert off(kvm_run, "exit_reason") == 8
    assert off(kvm_run, "cr8") == 16 and off(kvm_run, "apic_base") == 24
    base = off(kvm_run, "exit")
    assert base == 32
    u = type(kvm_run().exit)
    io, mmio, internal = (type(getattr(kvm_run().exit, f)) for f in ("io", "mmio", "internal"))
    assert ctypes.sizeof(u) == 256
    # struct { __u8 direction; __u8 size; __u16 port; __u32 count; __u64 data_offset; } io
    assert [base + off(io, f) for f in ("direction", "size", "port", "count", "data_offset")] == \
        [32, 33, 34, 36, 40]
    # struct { __u64 phys_addr; __u8 data[8]; __u32 len; __u8 is_write; } mmio
    assert [base + off(mmio, f) for f in ("phys_addr", "data", "len", "is_write")] == [32, 40, 48, 52]
    assert [base + off(internal, f) for f in ("suberror", "ndata", "data")] == [32, 36, 40]
    assert base + off(u, "hardware_entry_failure_reason") == 32


def test_ioctl_numbers():
    assert kvm.KVM_GET_API_VERSION == 0xAE00
    assert kvm.KVM_CREATE_VM == 0xAE01
    assert kvm.KVM_CHECK_EXTENSION == 0xAE03
    assert kvm.KVM_GET_VCPU_MMAP_SIZE == 0xAE04
    assert kvm.KVM_GET_SUPPORTED_CPUID == 0xC008AE05
    assert kvm.KVM_CREATE_VCPU == 0xAE41
    assert kvm.KVM_GET_DIRTY_LOG == 0x4010AE42
    assert kvm.KVM_SET_USER_MEMORY_REGION == 0x4020AE46
    assert kvm.KVM_RUN == 0xAE80
    assert kvm.KVM_GET_REGS == 0x8090AE81
    assert kvm.KVM_SET_REGS == 0x4090AE82
    assert kvm.KVM_GET_SREGS == 0x8138AE83
    assert kvm.KVM_SET_SREGS == 0x4138AE84
    assert kvm.KVM_GET_MSRS == 0xC008AE88
    assert kvm.KVM_SET_MSRS == 0x4008AE89
    assert kvm.KVM_SET_CPUID2 == 0x4008AE90
    assert kvm.KVM_SET_GUEST_DEBUG == 0x4048AE9B


def test_no_pasted_ioctl_numbers():
    """Every ioctl number comes from the _IO* macros: no 0xAE.. literal."""
    src = open(kvm.__file__).read()
    import re
    assert not re.search(r"0x[0-9a-fA-F]{0,4}AE[0-9a-fA-F]{2}\b", src)
    for name in kvm.IOCTL_NAMES.values():
        assert re.search(rf"^{name} = _IO[RW]*\(KVMIO, ", src, re.M), name


def test_usable_answers_with_a_reason(tmp_path):
    ok, why = usable(str(tmp_path / "no-such-kvm"))
    assert ok is False and "does not exist" in why
    ok, why = usable()
    assert isinstance(ok, bool) and why


# -- the binding on /dev/kvm ---------------------------------------------------------------
def kvm_fds():
    """This process's fds on /dev/kvm, a VM or a vCPU."""
    out = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target == "/dev/kvm" or "kvm-vm" in target or "kvm-vcpu" in target:
            out.append((fd, target))
    return out


@needs_kvm
def test_kvm_vm_vcpu_open_and_close():
    before = kvm_fds()
    with Kvm() as k:
        assert k.api_version == 12
        assert k.check_extension(kvm.KVM_CAP_SYNC_MMU) == 1
        with k.create_vm() as vm, Mapping(0x4000) as mem:
            vm.set_user_memory_region(0, 0x100000, 0x4000, mem.addr)                  # create
            vm.set_user_memory_region(0, 0x200000, 0x4000, mem.addr)                  # move
            vm.set_user_memory_region(0, 0x200000, 0x4000, mem.addr,
                                      kvm.KVM_MEM_LOG_DIRTY_PAGES)                   # log dirty
            assert vm.get_dirty_log(0, 4) == []
            v = vm.create_vcpu(0)
            assert v.get_regs().rip == 0xFFF0          # the reset vector
            assert v.get_sregs().cs.selector == 0xF000
            vm.set_user_memory_region(0, 0, 0, 0)                                     # delete
            v.close()
            v.close()   # idempotent
        assert len(kvm_fds()) == len(before) + 1      # only /dev/kvm is left
    assert kvm_fds() == before


@needs_kvm
def test_ioctl_errors_name_the_ioctl_and_errno():
    with Kvm() as k, k.create_vm() as vm:
        vm.create_vcpu(0)
        with pytest.raises(KvmError) as e:
            vm.create_vcpu(0)
        assert e.value.ioctl == "KVM_CREATE_VCPU" and e.value.errno == errno.EEXIST
        assert "KVM_CREATE_VCPU failed" in str(e.value) and "EEXIST" in str(e.value)
        with pytest.raises(KvmError, match="KVM_GET_DIRTY_LOG"):
            vm.get_dirty_log(7, 1)   # no such slot


@needs_kvm
def test_a_vm_holds_at_most_64mb():
    with Kvm() as k, k.create_vm() as vm, Mapping(1 << 20) as mem:
        vm.set_user_memory_region(0, 0, 1 << 20, mem.addr)
        with pytest.raises(ValueError, match="at most 64 MB"):
            vm.set_user_memory_region(1, 1 << 30, 64 << 20, mem.addr)
        with pytest.raises(ValueError, match="at most 64 MB"):
            vm.set_user_memory_region(0, 0, 65 << 20, mem.addr)   # resizing counts too


@needs_kvm
def test_supported_cpuid_has_the_address_width():
    with Kvm() as k:
        entries = {(e.function, e.index): e for e in k.supported_cpuid()}
    assert 32 <= entries[(0x80000008, 0)].eax & 0xFF <= 52


@needs_kvm
def test_probe():
    from live.probe import probe
    p = probe()
    d = p.to_dict()
    json.dumps(d)   # plain data
    assert p.usable and p.api_version == 12
    assert p.paging_modes["long64"] == "runs"
    assert set(p.paging_modes) == {"real", "protected", "paging32", "pae", "long64"}
    assert p.agent["runs"] and p.agent["store_sets_a_d"]
    assert p.caps["sync_mmu"] == 1
    if p.agent["readonly_memslot_store"].startswith("mmio"):
        assert p.caps["readonly_mem"] == 1
    assert probe() is p   # cached


# -- nothing stays behind ------------------------------------------------------------------
def alive(pid):
    """Running (a zombie waiting for a reaper counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def children():
    pids = set()
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/children") as f:
                pids |= {int(x) for x in f.read().split()}
        except OSError:
            pass
    return pids


@needs_kvm
def test_three_vms_leave_no_fd_and_no_child():
    from live.vm import LiveVm
    before_fds, before_children = kvm_fds(), children()
    pids = []
    for _ in range(3):
        vm = LiveVm()
        pids.append(vm.pid)
        vm.memslot_create(0, 0, 16)
        vm.close()
        vm.close()   # idempotent
    with LiveVm() as vm:     # and by leaving a `with` block
        pids.append(vm.pid)
    assert kvm_fds() == before_fds
    assert children() == before_children
    for pid in pids:
        assert not alive(pid), pid


@needs_kvm
def test_the_vm_process_dies_with_its_parent():
    script = textwrap.dedent("""
        import sys, time, threading
        sys.path.insert(0, sys.argv[1])
        from live.vm import LiveVm
        out = []
        t = threading.Thread(target=lambda: out.append(LiveVm()))   # made in a thread that ends
        t.start(); t.join()
        print(out[0].pid, flush=True)
        time.sleep(60)
    """)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parent = subprocess.Popen([sys.executable, "-c", script, root], stdout=subprocess.PIPE,
                              text=True)
    try:
        vm_pid = int(parent.stdout.readline())
        time.sleep(0.2)
        assert alive(vm_pid)   # alive after the thread that made it ended
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and alive(vm_pid):
        time.sleep(0.05)
    assert not alive(vm_pid)


@needs_kvm
def test_the_parent_timeout_kills_a_silent_vm_process():
    """The backstop behind the watchdog: a reply later than the LiveVm's
    timeout (here 0.3 s, shorter than the 1 s watchdog) kills the process."""
    from live.pagetable import SmallPageTable
    from live.vm import LiveVm, LiveVmError
    before = kvm_fds()
    vm = LiveVm(timeout=0.3)
    pid = vm.pid
    vm.memslot_create(0, 0, 0x40)
    t = SmallPageTable().write_to(vm)
    vm.create_vcpu(0, t.cr3)
    start = time.monotonic()
    with pytest.raises(LiveVmError, match="did not answer within 0.3 s"):
        vm.spin(0)
    assert time.monotonic() - start < 1.0
    assert vm.closed and not alive(pid)
    assert kvm_fds() == before
    vm.close()


@needs_kvm
def test_a_machine_runs_vcpus_only_in_its_main_thread():
    from live.machine import Machine
    from live.pagetable import SmallPageTable
    errors = []

    def work():
        with Machine() as m:
            m.memslot_create(0, 0, 0x40)
            t = SmallPageTable().write_to(m)
            m.create_vcpu(0, t.cr3)
            try:
                m.spin(0)
            except RuntimeError as e:
                errors.append(str(e))
    import threading
    th = threading.Thread(target=work)
    th.start()
    th.join(10)
    assert errors and "main thread" in errors[0]
