"""live: mmuspec's fourth machine, the host's real KVM.

The other machines are models (spec/, impl/, the architectural oracle in
diff/); this package runs the same kind of operations on /dev/kvm, so that
a differential machine can compare the models with the kernel actually
running on this host (kvm_pvm with the shadow MMU on this project's
machines: see ../shared/kvm-host-facts.md).

  kvm.py        the ctypes binding: uapi structs, ioctl numbers from the
                _IO* macros, Kvm / Vm / Vcpu, private anonymous memslot
                backing, usable()
  asm.py        a tiny assembler and disassembler over iced-x86
  agent.py      the guest agent: a 64-bit program in its own memslot at gpa
                2 GB, reached through PML4 slot 511 of any root (agent_pml4e()),
                that runs one command per KVM_RUN from a mailbox page
  machine.py    the VMM side of one VM (memslots, vCPUs, the agent's commands,
                every KVM exit, the 1 s KVM_RUN watchdog); main thread only
  server.py     the VM process: one Machine behind a framed pipe protocol,
                dying with its parent
  vm.py         LiveVm, the handle to use from any thread (dask workers
                included): starts the VM process, bounds every reply, cleans up
  pagetable.py  a small 4-level page table laid out like the mmu family's
  probe.py      probe(): what this host's KVM runs (paging modes, CPL 3,
                single step, read-only memslots, CPUID), as plain data
                (`from live.probe import probe`)

Typical use:

    from live import LiveVm, SmallPageTable, usable
    ok, why = usable()                      # skip with `why` when not ok
    with LiveVm() as vm:
        vm.memslot_create(0, base_gfn=0, npages=0x400)
        t = SmallPageTable().map(0x20000, 0x20, 0x7).write_to(vm)   # P|W|U
        vm.create_vcpu(0, t.cr3, cr0_wp=True, efer_nx=True)
        vm.access(0, 0x20000, "write", 8, 0x1234)     # Outcome(kind="ok")
        vm.access(0, 0x20000, "read", 8).value        # 0x1234

A VM holds at most 64 MB of guest memory.  Host writes into guest memory are
set-up only (before the first KVM_RUN); afterwards the guest edits its own
page tables through the agent.
"""

_EXPORTS = {"usable": "kvm", "SmallPageTable": "pagetable", "LiveVm": "vm", "LiveVmError": "vm"}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    # Lazy, so that `python -m live.server` (the VM process) does not import
    # live.server twice through this package.
    if name in _EXPORTS:
        import importlib
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'live' has no attribute {name!r}")
