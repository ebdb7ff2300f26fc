"""A ctypes binding to the host's /dev/kvm, in one module.

What it holds:

  structs    each uapi struct we use, declared once with ctypes, as
             include/uapi/linux/kvm.h and arch/x86/include/uapi/asm/kvm.h
             declare them (the Linux 3.10/3.11 headers; kvm_run.immediate_exit
             is the later use of padding1[0], Linux 4.11)
  ioctls     every number computed with _IO/_IOR/_IOW/_IOWR written as the
             asm-generic/ioctl.h macros are (dir/size/type/nr shifts), KVMIO 0xAE
  Kvm, Vm, Vcpu
             thin wrappers of the /dev/kvm, VM and vCPU file descriptors;
             every fd and mapping is released by close() (idempotent) or by
             leaving a `with` block; an ioctl that fails raises KvmError
             naming the ioctl and the errno
  Mapping    anonymous private memory (mmap MAP_PRIVATE|MAP_ANONYMOUS) to
             back a memslot, with madvise(MADV_DONTNEED)
  usable()   (bool, reason): can this process open /dev/kvm at all

A VM holds at most MAX_VM_MEMORY bytes of guest memory over all its memslots
(Vm.set_user_memory_region refuses more).  Nothing here runs a guest by
itself; live/machine.py and live/server.py do, under a watchdog.
"""

import ctypes
import errno
import os
from ctypes import (
    Structure, Union, c_int, c_long, c_size_t, c_uint8, c_uint16, c_uint32, c_uint64,
    c_ulong, c_void_p, sizeof,
)

KVM_DEV = "/dev/kvm"
KVM_API_VERSION = 12
MAX_VM_MEMORY = 64 << 20  # bytes of guest memory one VM may have, all memslots together

# -- asm-generic/ioctl.h -------------------------------------------------------
_IOC_NRBITS = 8
_IOC_TYPEBITS = 8
_IOC_SIZEBITS = 14
_IOC_DIRBITS = 2
_IOC_NRSHIFT = 0
_IOC_TYPESHIFT = _IOC_NRSHIFT + _IOC_NRBITS
_IOC_SIZESHIFT = _IOC_TYPESHIFT + _IOC_TYPEBITS
_IOC_DIRSHIFT = _IOC_SIZESHIFT + _IOC_SIZEBITS
_IOC_NONE = 0
_IOC_WRITE = 1
_IOC_READ = 2


def _IOC(dir, type, nr, size):
    assert size < (1 << _IOC_SIZEBITS)
    return (dir << _IOC_DIRSHIFT) | (type << _IOC_TYPESHIFT) | (nr << _IOC_NRSHIFT) | \
        (size << _IOC_SIZESHIFT)


def _IO(type, nr):
    return _IOC(_IOC_NONE, type, nr, 0)


def _IOR(type, nr, struct):
    return _IOC(_IOC_READ, type, nr, sizeof(struct))


def _IOW(type, nr, struct):
    return _IOC(_IOC_WRITE, type, nr, sizeof(struct))


def _IOWR(type, nr, struct):
    return _IOC(_IOC_READ | _IOC_WRITE, type, nr, sizeof(struct))


# -- uapi structs --------------------------------------------------------------
class kvm_userspace_memory_region(Structure):
    _fields_ = [("slot", c_uint32), ("flags", c_uint32), ("guest_phys_addr", c_uint64),
                ("memory_size", c_uint64), ("userspace_addr", c_uint64)]


KVM_MEM_LOG_DIRTY_PAGES = 1 << 0
KVM_MEM_READONLY = 1 << 1

_GPRS = ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rsp", "rbp",
         "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15")


class kvm_regs(Structure):
    _fields_ = [(r, c_uint64) for r in _GPRS] + [("rip", c_uint64), ("rflags", c_uint64)]


class kvm_segment(Structure):
    _fields_ = [("base", c_uint64), ("limit", c_uint32), ("selector", c_uint16), ("type", c_uint8),
                ("present", c_uint8), ("dpl", c_uint8), ("db", c_uint8), ("s", c_uint8),
                ("l", c_uint8), ("g", c_uint8), ("avl", c_uint8), ("unusable", c_uint8),
                ("padding", c_uint8)]


class kvm_dtable(Structure):
    _fields_ = [("base", c_uint64), ("limit", c_uint16), ("padding", c_uint16 * 3)]


KVM_NR_INTERRUPTS = 256


class kvm_sregs(Structure):
    _fields_ = [(s, kvm_segment) for s in ("cs", "ds", "es", "fs", "gs", "ss", "tr", "ldt")] + \
        [("gdt", kvm_dtable), ("idt", kvm_dtable)] + \
        [(r, c_uint64) for r in ("cr0", "cr2", "cr3", "cr4", "cr8", "efer", "apic_base")] + \
        [("interrupt_bitmap", c_uint64 * ((KVM_NR_INTERRUPTS + 63) // 64))]


class kvm_msr_entry(Structure):
    _fields_ = [("index", c_uint32), ("reserved", c_uint32), ("data", c_uint64)]


class kvm_msrs(Structure):
    """The header; entries[] follows it (see msrs_struct)."""
    _fields_ = [("nmsrs", c_uint32), ("pad", c_uint32)]


class kvm_cpuid_entry2(Structure):
    _fields_ = [("function", c_uint32), ("index", c_uint32), ("flags", c_uint32),
                ("eax", c_uint32), ("ebx", c_uint32), ("ecx", c_uint32), ("edx", c_uint32),
                ("padding", c_uint32 * 3)]


class kvm_cpuid2(Structure):
    """The header; entries[] follows it (see cpuid2_struct)."""
    _fields_ = [("nent", c_uint32), ("padding", c_uint32)]


class kvm_dirty_log(Structure):
    # union { void __user *dirty_bitmap; __u64 padding2; }: one u64 on x86_64
    _fields_ = [("slot", c_uint32), ("padding1", c_uint32), ("dirty_bitmap", c_uint64)]


class kvm_debug_exit_arch(Structure):
    _fields_ = [("exception", c_uint32), ("pad", c_uint32), ("pc", c_uint64), ("dr6", c_uint64),
                ("dr7", c_uint64)]


class kvm_guest_debug_arch(Structure):
    _fields_ = [("debugreg", c_uint64 * 8)]


class kvm_guest_debug(Structure):
    _fields_ = [("control", c_uint32), ("pad", c_uint32), ("arch", kvm_guest_debug_arch)]


KVM_GUESTDBG_ENABLE = 0x1
KVM_GUESTDBG_SINGLESTEP = 0x2


class _kvm_run_io(Structure):
    _fields_ = [("direction", c_uint8), ("size", c_uint8), ("port", c_uint16), ("count", c_uint32),
                ("data_offset", c_uint64)]  # data_offset: from the start of kvm_run


class _kvm_run_mmio(Structure):
    _fields_ = [("phys_addr", c_uint64), ("data", c_uint8 * 8), ("len", c_uint32),
                ("is_write", c_uint8)]


class _kvm_run_internal(Structure):
    _fields_ = [("suberror", c_uint32), ("ndata", c_uint32), ("data", c_uint64 * 16)]


class _kvm_run_ex(Structure):
    _fields_ = [("exception", c_uint32), ("error_code", c_uint32)]


class _kvm_run_exit(Union):
    _fields_ = [("hardware_exit_reason", c_uint64),            # hw
                ("hardware_entry_failure_reason", c_uint64),   # fail_entry
                ("ex", _kvm_run_ex), ("io", _kvm_run_io), ("debug", kvm_debug_exit_arch),
                ("mmio", _kvm_run_mmio), ("internal", _kvm_run_internal),
                ("padding", c_uint8 * 256)]


class kvm_run(Structure):
    """The head of struct kvm_run up to and including its exit union (the
    shared register area after it is not used here)."""
    _fields_ = [("request_interrupt_window", c_uint8), ("immediate_exit", c_uint8),
                ("padding1", c_uint8 * 6), ("exit_reason", c_uint32),
                ("ready_for_interrupt_injection", c_uint8), ("if_flag", c_uint8),
                ("flags", c_uint16), ("cr8", c_uint64), ("apic_base", c_uint64),
                ("exit", _kvm_run_exit)]


KVM_EXIT_UNKNOWN = 0
KVM_EXIT_EXCEPTION = 1
KVM_EXIT_IO = 2
KVM_EXIT_HYPERCALL = 3
KVM_EXIT_DEBUG = 4
KVM_EXIT_HLT = 5
KVM_EXIT_MMIO = 6
KVM_EXIT_IRQ_WINDOW_OPEN = 7
KVM_EXIT_SHUTDOWN = 8
KVM_EXIT_FAIL_ENTRY = 9
KVM_EXIT_INTR = 10
KVM_EXIT_INTERNAL_ERROR = 17
EXIT_NAMES = {v: k[len("KVM_EXIT_"):].lower() for k, v in dict(globals()).items()
              if k.startswith("KVM_EXIT_") and k not in ("KVM_EXIT_IO_IN", "KVM_EXIT_IO_OUT")}
KVM_EXIT_IO_IN = 0
KVM_EXIT_IO_OUT = 1

# KVM_CHECK_EXTENSION capabilities used here
KVM_CAP_USER_MEMORY = 3
KVM_CAP_NR_MEMSLOTS = 10
KVM_CAP_SYNC_MMU = 16
KVM_CAP_SET_GUEST_DEBUG = 23
KVM_CAP_READONLY_MEM = 81
KVM_CAP_IMMEDIATE_EXIT = 136  # Linux 4.11

# -- ioctl numbers -----------------------------------------------------------
KVMIO = 0xAE
# /dev/kvm
KVM_GET_API_VERSION = _IO(KVMIO, 0x00)
KVM_CREATE_VM = _IO(KVMIO, 0x01)
KVM_CHECK_EXTENSION = _IO(KVMIO, 0x03)
KVM_GET_VCPU_MMAP_SIZE = _IO(KVMIO, 0x04)
KVM_GET_SUPPORTED_CPUID = _IOWR(KVMIO, 0x05, kvm_cpuid2)
# VM
KVM_CREATE_VCPU = _IO(KVMIO, 0x41)
KVM_GET_DIRTY_LOG = _IOW(KVMIO, 0x42, kvm_dirty_log)
KVM_SET_USER_MEMORY_REGION = _IOW(KVMIO, 0x46, kvm_userspace_memory_region)
# vCPU
KVM_RUN = _IO(KVMIO, 0x80)
KVM_GET_REGS = _IOR(KVMIO, 0x81, kvm_regs)
KVM_SET_REGS = _IOW(KVMIO, 0x82, kvm_regs)
KVM_GET_SREGS = _IOR(KVMIO, 0x83, kvm_sregs)
KVM_SET_SREGS = _IOW(KVMIO, 0x84, kvm_sregs)
KVM_GET_MSRS = _IOWR(KVMIO, 0x88, kvm_msrs)
KVM_SET_MSRS = _IOW(KVMIO, 0x89, kvm_msrs)
KVM_SET_CPUID2 = _IOW(KVMIO, 0x90, kvm_cpuid2)
KVM_SET_GUEST_DEBUG = _IOW(KVMIO, 0x9b, kvm_guest_debug)

IOCTL_NAMES = {globals()[n]: n for n in (
    "KVM_GET_API_VERSION", "KVM_CREATE_VM", "KVM_CHECK_EXTENSION", "KVM_GET_VCPU_MMAP_SIZE",
    "KVM_GET_SUPPORTED_CPUID", "KVM_CREATE_VCPU", "KVM_GET_DIRTY_LOG", "KVM_SET_USER_MEMORY_REGION",
    "KVM_RUN", "KVM_GET_REGS", "KVM_SET_REGS", "KVM_GET_SREGS", "KVM_SET_SREGS", "KVM_GET_MSRS",
    "KVM_SET_MSRS", "KVM_SET_CPUID2", "KVM_SET_GUEST_DEBUG")}

# -- libc ----------------------------------------------------------------------
_libc = ctypes.CDLL(None, use_errno=True)
_ioctl = _libc.ioctl
_ioctl.argtypes = (c_int, c_ulong, c_void_p)
_ioctl.restype = c_int
_mmap = _libc.mmap
_mmap.argtypes = (c_void_p, c_size_t, c_int, c_int, c_int, c_long)
_mmap.restype = c_void_p
_munmap = _libc.munmap
_munmap.argtypes = (c_void_p, c_size_t)
_munmap.restype = c_int
_madvise = _libc.madvise
_madvise.argtypes = (c_void_p, c_size_t, c_int)
_madvise.restype = c_int

PROT_READ, PROT_WRITE = 1, 2
MAP_SHARED, MAP_PRIVATE, MAP_ANONYMOUS = 0x01, 0x02, 0x20
MADV_DONTNEED = 4
MAP_FAILED = ctypes.c_void_p(-1).value
PAGE = 4096


class KvmError(OSError):
    """An ioctl (or mmap) on /dev/kvm, a VM or a vCPU failed."""

    def __init__(self, what, err):
        super().__init__(err, f"{what} failed: {os.strerror(err)} (errno {err}, "
                              f"{errno.errorcode.get(err, '?')})")
        self.ioctl = what


def ioctl(fd, request, arg=None):
    """ioctl(2); a ctypes object is passed by reference, an int by value."""
    if isinstance(arg, (Structure, Union, ctypes.Array)):
        arg = ctypes.addressof(arg)
    ret = _ioctl(fd, request, arg)
    if ret < 0:
        raise KvmError(IOCTL_NAMES.get(request, f"ioctl {request:#x}"), ctypes.get_errno())
    return ret


def _mmap_checked(length, prot, flags, fd, what):
    addr = _mmap(None, length, prot, flags, fd, 0)
    if addr in (None, MAP_FAILED):
        raise KvmError(what, ctypes.get_errno())
    return addr


def cpuid2_struct(n):
    """struct kvm_cpuid2 with room for n entries."""
    class kvm_cpuid2_n(Structure):
        _fields_ = [("nent", c_uint32), ("padding", c_uint32), ("entries", kvm_cpuid_entry2 * n)]
    return kvm_cpuid2_n()


def msrs_struct(n):
    """struct kvm_msrs with room for n entries."""
    class kvm_msrs_n(Structure):
        _fields_ = [("nmsrs", c_uint32), ("pad", c_uint32), ("entries", kvm_msr_entry * n)]
    out = kvm_msrs_n()
    out.nmsrs = n
    return out


# x86 bits the VMM sets up come from spec/consts.py, the one module of constants.
from spec.consts import (  # noqa: E402  (re-exported for live/)
    EFER_LME, EFER_SCE, MSR_EFER, X86_CR0_ET, X86_CR0_NE, X86_CR0_PE, X86_CR0_PG,
    X86_EFLAGS_FIXED, X86_EFLAGS_TF,
)


class _Closer:
    """Idempotent close and `with` support.  `closed` stays True (the class
    default) until a constructor has everything it must release, so a
    half-built object is never closed twice."""

    closed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


class Mapping(_Closer):
    """Anonymous private memory: the backing of one memslot (MAP_PRIVATE, so
    MADV_DONTNEED really drops the pages and the MMU notifier runs)."""

    def __init__(self, size):
        if size <= 0 or size % PAGE:
            raise ValueError(f"mapping size {size:#x} must be a positive multiple of {PAGE:#x}")
        self.size = size
        self.addr = _mmap_checked(size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
                                  "mmap(MAP_PRIVATE|MAP_ANONYMOUS)")
        self.closed = False

    def _check(self, off, n):
        if self.closed:
            raise ValueError("mapping is closed")
        if off < 0 or n < 0 or off + n > self.size:
            raise ValueError(f"[{off:#x}, {off + n:#x}) outside the mapping of {self.size:#x} bytes")

    def read(self, off, n):
        self._check(off, n)
        return ctypes.string_at(self.addr + off, n)

    def write(self, off, data):
        self._check(off, len(data))
        ctypes.memmove(self.addr + off, bytes(data), len(data))

    def madvise_dontneed(self, off, n):
        self._check(off, n)
        if _madvise(self.addr + off, n, MADV_DONTNEED) != 0:
            raise KvmError("madvise(MADV_DONTNEED)", ctypes.get_errno())

    def close(self):
        if not self.closed:
            self.closed = True
            _munmap(self.addr, self.size)


class Kvm(_Closer):
    """An open /dev/kvm."""

    def __init__(self, path=KVM_DEV):
        self.fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        try:
            self.api_version = ioctl(self.fd, KVM_GET_API_VERSION)
            if self.api_version != KVM_API_VERSION:
                raise KvmError(f"KVM_GET_API_VERSION (got {self.api_version}, need "
                               f"{KVM_API_VERSION})", errno.EINVAL)
            self.vcpu_mmap_size = ioctl(self.fd, KVM_GET_VCPU_MMAP_SIZE)
        except BaseException:
            os.close(self.fd)
            raise
        self.closed = False

    def check_extension(self, cap):
        return ioctl(self.fd, KVM_CHECK_EXTENSION, cap)

    def supported_cpuid(self):
        """KVM_GET_SUPPORTED_CPUID: the list of kvm_cpuid_entry2 (copies)."""
        n = 64
        while True:
            c = cpuid2_struct(n)
            c.nent = n
            try:
                ioctl(self.fd, KVM_GET_SUPPORTED_CPUID, c)
            except KvmError as e:
                if e.errno == errno.E2BIG and n < 4096:
                    n *= 2
                    continue
                raise
            return [kvm_cpuid_entry2.from_buffer_copy(c.entries[i]) for i in range(c.nent)]

    def create_vm(self):
        return Vm(self)

    def close(self):
        if not self.closed:
            self.closed = True
            os.close(self.fd)


class Vm(_Closer):
    """A VM fd; closes its vCPUs when closed.  Memslot backing memory belongs
    to the caller (a Mapping), which must outlive the slot."""

    def __init__(self, kvm):
        self.kvm = kvm
        self.vcpus = []
        self.slot_sizes = {}
        self.fd = ioctl(kvm.fd, KVM_CREATE_VM, 0)
        self.closed = False

    def check_extension(self, cap):
        return ioctl(self.fd, KVM_CHECK_EXTENSION, cap)

    def set_user_memory_region(self, slot, gpa, size, hva, flags=0):
        """KVM_SET_USER_MEMORY_REGION: create, move or change flags; size 0 deletes."""
        total = sum(s for k, s in self.slot_sizes.items() if k != slot) + size
        if total > MAX_VM_MEMORY:
            raise ValueError(f"memslot {slot}: the VM would have {total >> 20} MB of guest memory; "
                             f"at most {MAX_VM_MEMORY >> 20} MB")
        r = kvm_userspace_memory_region(slot=slot, flags=flags, guest_phys_addr=gpa,
                                        memory_size=size, userspace_addr=hva if size else 0)
        ioctl(self.fd, KVM_SET_USER_MEMORY_REGION, r)
        if size:
            self.slot_sizes[slot] = size
        else:
            self.slot_sizes.pop(slot, None)

    def get_dirty_log(self, slot, npages):
        """KVM_GET_DIRTY_LOG: the page indexes (from the slot's base) whose bit is set."""
        words = (npages + 63) // 64
        bitmap = (c_uint64 * max(words, 1))()
        d = kvm_dirty_log(slot=slot, dirty_bitmap=ctypes.addressof(bitmap))
        ioctl(self.fd, KVM_GET_DIRTY_LOG, d)
        return [w * 64 + b for w in range(words) for b in range(64)
                if bitmap[w] >> b & 1 and w * 64 + b < npages]

    def create_vcpu(self, vcpu_id):
        v = Vcpu(self, vcpu_id)
        self.vcpus.append(v)
        return v

    def close(self):
        if not self.closed:
            self.closed = True
            for v in self.vcpus:
                v.close()
            os.close(self.fd)


class Vcpu(_Closer):
    """A vCPU fd and its mmap'ed struct kvm_run."""

    def __init__(self, vm, vcpu_id):
        self.vm = vm
        self.id = vcpu_id
        self.fd = ioctl(vm.fd, KVM_CREATE_VCPU, vcpu_id)
        self.run_size = vm.kvm.vcpu_mmap_size
        try:
            self.run_addr = _mmap_checked(self.run_size, PROT_READ | PROT_WRITE, MAP_SHARED,
                                          self.fd, "mmap(vcpu fd)")
        except BaseException:
            os.close(self.fd)
            raise
        self.run_struct = kvm_run.from_address(self.run_addr)
        self.closed = False

    def get_regs(self):
        r = kvm_regs()
        ioctl(self.fd, KVM_GET_REGS, r)
        return r

    def set_regs(self, r):
        ioctl(self.fd, KVM_SET_REGS, r)

    def get_sregs(self):
        s = kvm_sregs()
        ioctl(self.fd, KVM_GET_SREGS, s)
        return s

    def set_sregs(self, s):
        ioctl(self.fd, KVM_SET_SREGS, s)

    def set_cpuid2(self, entries):
        c = cpuid2_struct(len(entries))
        c.nent = len(entries)
        for i, e in enumerate(entries):
            c.entries[i] = e
        ioctl(self.fd, KVM_SET_CPUID2, c)

    def get_msr(self, index):
        m = msrs_struct(1)
        m.entries[0].index = index
        if ioctl(self.fd, KVM_GET_MSRS, m) != 1:
            raise KvmError(f"KVM_GET_MSRS({index:#x})", errno.EINVAL)
        return m.entries[0].data

    def set_msr(self, index, value):
        m = msrs_struct(1)
        m.entries[0].index = index
        m.entries[0].data = value
        if ioctl(self.fd, KVM_SET_MSRS, m) != 1:
            raise KvmError(f"KVM_SET_MSRS({index:#x})", errno.EINVAL)

    def set_guest_debug(self, control):
        ioctl(self.fd, KVM_SET_GUEST_DEBUG, kvm_guest_debug(control=control))

    def run(self):
        """KVM_RUN: the exit reason; KVM_EXIT_INTR when a signal ended it (EINTR)."""
        if self.closed:
            raise ValueError("vcpu is closed")
        ret = _ioctl(self.fd, KVM_RUN, None)
        if ret < 0:
            err = ctypes.get_errno()
            if err == errno.EINTR:
                return KVM_EXIT_INTR
            raise KvmError("KVM_RUN", err)
        return self.run_struct.exit_reason

    def close(self):
        if not self.closed:
            self.closed = True
            self.run_struct = None
            _munmap(self.run_addr, self.run_size)
            os.close(self.fd)


def usable(path=KVM_DEV):
    """(True, description) if this process can open `path` and its API is 12,
    else (False, why): for tests and commands to skip with the reason."""
    if not os.path.exists(path):
        return False, f"{path} does not exist (no KVM on this host)"
    try:
        with Kvm(path) as k:
            return True, f"{path} API version {k.api_version}"
    except PermissionError as e:
        return False, f"{path}: cannot open it: {e.strerror} (run as root or join the kvm group)"
    except OSError as e:
        return False, f"{path}: {e}"
