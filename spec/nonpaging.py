"""A vCPU with paging off (CR0.PG=0), as the architecture and KVM see it.

With paging disabled a linear address is the physical address (32 bits):
no guest page tables, no #PF, no A/D writes, every access allowed.  KVM
3.10 runs such a vCPU of a shadow-paging VM on a direct map of
guest-physical memory (nonpaging_init_context: root_level 0,
shadow_root_level PT32E_ROOT_LEVEL, direct_map; spec.mmu.NONPAGING), and
its page faults go to nonpaging_page_fault(), which takes fast_page_fault()
first.  NonpagingCpu is the guest state of such a vCPU on every side (spec,
impl and the oracle): the control bits the MMU reads for its page role
(kvm_init_shadow_mmu: nxe, cr4_pae, cr0_wp) and a walk() that is the
identity, with spec.walk.ArchCpu's interface.

Not modelled: switching such a vCPU into paging (or back): the machines
create a vCPU with paging off and leave it so.
"""

from .consts import ACC_ALL, PAGE_SHIFT
from .walk import ACCESS_KINDS, WalkResult

PAGING_OFF = "off"          # NonpagingCpu.mode
LINEAR_MASK = (1 << 32) - 1  # a linear address with paging off has 32 bits


class NonpagingCpu:
    """The paging state of a vCPU with CR0.PG=0 (ArchCpu's interface)."""

    mode = PAGING_OFF
    cr4_pae = False
    efer_lma = False

    def __init__(self, mem, maxphyaddr, cr0_wp=True, cr4_pse=True, efer_nx=False):
        self.mem = mem
        self.maxphyaddr = maxphyaddr
        self.cr0_wp, self.cr4_pse, self.efer_nx = bool(cr0_wp), bool(cr4_pse), bool(efer_nx)
        self.cr3 = 0
        self.pdptes = (0, 0, 0, 0)

    def walk(self, addr, kind, user):
        """The identity: the access reaches guest-physical `addr` (it must fit
        in 32 bits), at 4K granularity, with every right; nothing is read or
        written."""
        if kind not in ACCESS_KINDS:
            raise ValueError(f"access kind must be one of {ACCESS_KINDS}, not {kind!r}")
        if addr & ~LINEAR_MASK:
            raise ValueError(f"address {addr:#x} is not a 32-bit linear address (paging is off)")
        return WalkResult(gfn=addr >> PAGE_SHIFT, level=1, rights=ACC_ALL)
