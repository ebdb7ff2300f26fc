"""The architectural guest page walk: what the guest's page tables mean.

The reference the walk family holds KVM's FNAME(walk_addr) (impl/walk.py) to.
It is written from the architecture manual (Intel SDM vol. 3 chapter 4, facts
section 8), not in the kernel's shape: each paging mode is a list of paging
structures, each entry is classified into an *entry kind* with its own
reserved-bit mask, and a large page's physical address is `page base |
(linear address & (page size - 1))`.  Nothing here is shared with the impl
except the constants of spec/consts.py (a common-mode risk that the
hand-written outcome table in tests/test_walk_matrix.py guards).

Modes: 32-bit (CR4.PAE=0: 2 levels of 1024 4-byte entries; a PDE with PS=1
maps 4MB when CR4.PSE=1, with the PSE-36 bits 16:13 as physical bits 35:32),
PAE (CR4.PAE=1, EFER.LMA=0: the 4 PDPTEs loaded into registers when CR3 is
loaded, then 2 levels of 512 8-byte entries, 2MB pages) and 64-bit
(EFER.LMA=1: 4 levels, 2MB and 1GB pages).  Controls: CR0.WP, CR4.PSE,
CR4.PAE, EFER.NX, EFER.LMA; CPUID parameters: MAXPHYADDR and GBPAGES.

Reserved bits follow a *rule*, a parameter of ArchCpu:
- RSVD_INTEL (the default) is Intel's, from the SDM tables: the reference.
  With GBPAGES=0 (CPUID.80000001H:EDX[26] clear) a PDPTE with PS=1 has a
  reserved bit set (PS itself), so the walk faults with RSVD|P, as the host
  of kvm-host-facts.md does.
- RSVD_KVM_3_10 is what Linux 3.10's reset_rsvds_bits_mask() and
  load_pdptrs() reserved, stated as a rule (read from 3.10.99's mmu.c and
  x86.c): as Intel's except that bit 8 (G) is reserved in every PML4E and
  in every 4-level PDPTE with PS=0 (Intel ignores it there; it is AMD's
  rule for a PML4E), a PAE PDPTE register reserves only bits 2:1 and 8:7
  (and 63:MAXPHYADDR) where Intel also reserves 6:5, and GBPAGES is never
  consulted: a PS=1 PDPTE of a 4-level walk is a 1GB page whatever the
  guest's CPUID says.
The rule and GBPAGES reach the walk only through reserved_mask() and
pdpte_reserved(); nothing else depends on them.

Modelling choices, stated once:
- A and D are set only after the walk succeeded (A on every entry the walk
  read from memory, D on the leaf for a write), as KVM 3.x does; a faulting
  walk writes nothing.  Each update is a read-modify-write of the entry as it
  is in memory at that moment, top level first.
- PAE PDPTEs are registers: reserved bits in a present PDPTE make the CR3 load
  (or the mode change that loads them) fail with #GP and change nothing;
  the walk only checks their P bit and never sets A in them.
- 32-bit paging uses the PSE-36 layout with 4 high bits (physical address
  bits 35:32) whatever MAXPHYADDR is; bits 21:17 of a 4MB PDE are reserved.
  MAXPHYADDR applies to PAE and 64-bit entries.
- 1GB pages are available in 64-bit mode unless the `gbpages` parameter is
  False (default True: CPUID.GBPAGES=1).  Under Intel's rule bit 8 of a
  non-leaf PML4E/PDPTE is ignored (AMD reserves it in a PML4E).
- No SMEP, SMAP, protection keys or CR0.PG=0: paging is on.
"""

import copy
from dataclasses import dataclass, field
from typing import NamedTuple

from .consts import (
    ACC_ALL, ACC_EXEC_MASK, ACC_USER_MASK, ACC_WRITE_MASK, PAGE_SHIFT, PFERR_FETCH_MASK,
    PFERR_PRESENT_MASK, PFERR_RSVD_MASK, PFERR_USER_MASK, PFERR_WRITE_MASK, PT32_4MB_BASE_MASK,
    PT32_4MB_RSVD_MASK, PT32_BASE_ADDR_MASK, PT32_PSE36_BITS, PT32_PSE36_SHIFT, PT32E_CR3_PDPT_MASK,
    PT32E_NR_PDPTES, PT32E_PDPTE_RSVD_MASK, PT32E_PDPTE_SHIFT, PT32_VADDR_BITS, PT64_1GB_RSVD_MASK,
    PT64_2MB_RSVD_MASK, PT64_NX_MASK, PT64_NX_SHIFT, PT64_PML4E_RSVD_MASK, PT64_PHYS_BITS,
    PT64_VADDR_BITS, PT_ACCESSED_MASK, PT_DIRTY_MASK, PT_PAGE_SIZE_MASK, PT_PRESENT_MASK,
    PT_GLOBAL_MASK, PT_USER_MASK, PT_WRITABLE_MASK, rsvd_bits,
)
from .guest_memory import WALKER, ReadOnlyView

PAGING_32, PAGING_PAE, PAGING_64 = "32", "pae", "64"
PAGING_MODES = (PAGING_32, PAGING_PAE, PAGING_64)
READ, WRITE, FETCH = "read", "write", "fetch"
ACCESS_KINDS = (READ, WRITE, FETCH)
GP = "#GP"  # outcome of a control-register load the architecture refuses

KB4, MB2, MB4, GB1 = 1 << 12, 1 << 21, 1 << 22, 1 << 30

# Reserved-bit rules (module docstring).
RSVD_INTEL = "intel"     # the architecture (Intel SDM vol. 3 chapter 4)
RSVD_KVM_3_10 = "3.10"   # Linux 3.10's reset_rsvds_bits_mask() / load_pdptrs()
RSVD_RULES = (RSVD_INTEL, RSVD_KVM_3_10)


class Structure(NamedTuple):
    """One paging structure of a mode: which linear-address bits index it."""

    level: int         # 4 PML4, 3 PDPT, 2 PD, 1 PT
    index_shift: int   # lowest linear-address bit of the index
    index_bits: int    # 10 for 32-bit paging, 9 otherwise
    entry_size: int    # bytes
    large_page: int    # size of the page a PS=1 entry maps here (0: PS not allowed)


# Top-down.  PAE's PDPT is not here: it lives in the PDPTE registers.
STRUCTURES = {
    PAGING_32: (Structure(2, 22, 10, 4, MB4), Structure(1, 12, 10, 4, 0)),
    PAGING_PAE: (Structure(2, 21, 9, 8, MB2), Structure(1, 12, 9, 8, 0)),
    PAGING_64: (Structure(4, 39, 9, 8, 0), Structure(3, 30, 9, 8, GB1),
                Structure(2, 21, 9, 8, MB2), Structure(1, 12, 9, 8, 0)),
}


class PathEntry(NamedTuple):
    """An entry the walk used: its level, where it lives (None: a PDPTE register),
    its value as read and the rights it grants (ACC_* bits)."""

    level: int
    gpa: object
    value: int
    rights: int


@dataclass
class WalkResult:
    """Either `fault` (the #PF error code) or the translation (gfn, level, rights).

    `rights` is the AND over the walk of what each entry allows (ACC_WRITE,
    ACC_USER, ACC_EXEC).  `path` lists the entries read, top-down; `writes`
    the A/D updates made (GuestWrite records, empty for a fault).
    """

    fault: object = None
    gfn: object = None
    level: object = None
    rights: object = None
    path: list = field(default_factory=list)
    writes: list = field(default_factory=list)

    @property
    def ok(self):
        return self.fault is None


def paging_mode(cr4_pae, efer_lma):
    """The paging mode the control bits select (paging is on)."""
    if efer_lma:
        if not cr4_pae:
            raise ValueError("EFER.LMA=1 requires CR4.PAE=1")
        return PAGING_64
    return PAGING_PAE if cr4_pae else PAGING_32


def linear_address(mode, addr):
    """The linear address a walk in `mode` translates: 32 bits, or 48 canonical bits."""
    if mode != PAGING_64:
        return addr & ((1 << PT32_VADDR_BITS) - 1)
    low = addr & ((1 << PT64_VADDR_BITS) - 1)
    if low >> (PT64_VADDR_BITS - 1):
        return low | (((1 << 64) - 1) ^ ((1 << PT64_VADDR_BITS) - 1))
    return low


def pdpte_reserved(maxphyaddr, rule=RSVD_INTEL):
    """Reserved bits of a PAE PDPTE: 2:1, 8:5 and 63:MAXPHYADDR (SDM table 4-8).
    Under the 3.10 rule bits 6:5 (where A and D would be) are not reserved."""
    mask = PT32E_PDPTE_RSVD_MASK | rsvd_bits(maxphyaddr, 63)
    if rule == RSVD_KVM_3_10:
        mask &= ~(PT_ACCESSED_MASK | PT_DIRTY_MASK)
    return mask


# (mode, level) -> size of the page a PS=1 entry there maps (0: PS not allowed)
LARGE_PAGE = {(mode, s.level): s.large_page for mode, ss in STRUCTURES.items() for s in ss}


def entry_kind(mode, level, value, cr4_pse):
    """What an entry at `level` is: ("table"|"page", page size or 0)."""
    if level == 1:
        return "page", KB4
    large = LARGE_PAGE[mode, level]
    if value & PT_PAGE_SIZE_MASK and large and (mode != PAGING_32 or cr4_pse):
        return "page", large
    return "table", 0


def reserved_mask(mode, level, value, cr4_pse, efer_nx, maxphyaddr, rule=RSVD_INTEL,
                  gbpages=True):
    """The bits of this entry that must be 0: Intel's (SDM tables 4-4..4-19), or
    under the 3.10 rule, KVM 3.10's (module docstring)."""
    kind, size = entry_kind(mode, level, value, cr4_pse)
    if mode == PAGING_32:
        return PT32_4MB_RSVD_MASK if size == MB4 else 0
    nx = 0 if efer_nx else PT64_NX_MASK
    top = 62 if mode == PAGING_PAE else PT64_PHYS_BITS - 1
    mask = rsvd_bits(maxphyaddr, top) | nx
    if mode == PAGING_64 and level == 4:
        mask |= PT64_PML4E_RSVD_MASK  # PS is reserved in a PML4E
    if size == MB2:
        mask |= PT64_2MB_RSVD_MASK
    elif size == GB1:
        mask |= PT64_1GB_RSVD_MASK
        if not gbpages and rule == RSVD_INTEL:
            mask |= PT_PAGE_SIZE_MASK  # no 1GB pages: PS is reserved in a PDPTE
    if rule == RSVD_KVM_3_10 and mode == PAGING_64 and level in (4, 3) and kind == "table":
        mask |= PT_GLOBAL_MASK  # 3.10 reserves bit 8 of a non-leaf PML4E/PDPTE
    return mask


def entry_rights(mode, value, efer_nx):
    """ACC_* rights one entry grants: R/W, U/S and (with EFER.NX) not XD."""
    r = ACC_EXEC_MASK
    r |= ACC_WRITE_MASK if value & PT_WRITABLE_MASK else 0
    r |= ACC_USER_MASK if value & PT_USER_MASK else 0
    if mode != PAGING_32 and efer_nx and (value >> PT64_NX_SHIFT) & 1:
        r &= ~ACC_EXEC_MASK
    return r


def frame_address(mode, value, maxphyaddr):
    """Physical address of the 4K-aligned table or page an entry points to."""
    if mode == PAGING_32:
        return value & PT32_BASE_ADDR_MASK
    return value & rsvd_bits(PAGE_SHIFT, maxphyaddr - 1)


def page_base(mode, value, size, maxphyaddr):
    """Physical address of the first byte of the page a leaf entry maps."""
    if size == MB4:
        high = (value >> PT32_PSE36_SHIFT) & ((1 << PT32_PSE36_BITS) - 1)
        return (value & PT32_4MB_BASE_MASK) | (high << 32)
    return frame_address(mode, value, maxphyaddr) & ~(size - 1)


def access_allowed(kind, user, rights, cr0_wp):
    """The architecture's rights check on the ANDed rights (no SMEP/SMAP)."""
    if user and not rights & ACC_USER_MASK:
        return False
    if kind == WRITE and not rights & ACC_WRITE_MASK and (user or cr0_wp):
        return False
    if kind == FETCH and not rights & ACC_EXEC_MASK:
        return False
    return True


def error_code(mode, kind, user, efer_nx, cause):
    """#PF error code: cause bits (0, P, or RSVD|P) plus W/U, plus I/D with PAE and NXE."""
    code = cause
    code |= PFERR_WRITE_MASK if kind == WRITE else 0
    code |= PFERR_USER_MASK if user else 0
    if kind == FETCH and mode != PAGING_32 and efer_nx:
        code |= PFERR_FETCH_MASK
    return code


class ArchCpu:
    """The architectural state a walk depends on, and the walk itself.

    `mem` is a spec.guest_memory.GuestMemory.  Control changes return None or
    GP; a refused change leaves everything as it was.  `gbpages` is
    CPUID.GBPAGES (1GB pages) and `rsvd_rule` the reserved-bit rule (RSVD_INTEL,
    the architecture, or RSVD_KVM_3_10); both default to what the walk always
    was (1GB pages, Intel's rule), also as class attributes for an ArchCpu
    built without __init__ (spec/mmu_audit.py's probe_cpu).
    """

    gbpages = True
    rsvd_rule = RSVD_INTEL

    def __init__(self, mem, maxphyaddr, mode=PAGING_64, cr0_wp=True, cr4_pse=True,
                 efer_nx=True, cr3=0, gbpages=True, rsvd_rule=RSVD_INTEL):
        if not 36 <= maxphyaddr <= PT64_PHYS_BITS:
            raise ValueError(f"MAXPHYADDR {maxphyaddr} outside 36..{PT64_PHYS_BITS}")
        if mode not in PAGING_MODES:
            raise ValueError(f"paging mode must be one of {PAGING_MODES}, not {mode!r}")
        if rsvd_rule not in RSVD_RULES:
            raise ValueError(f"reserved-bit rule must be one of {RSVD_RULES}, not {rsvd_rule!r}")
        self.mem = mem
        self.maxphyaddr = maxphyaddr
        self.gbpages = bool(gbpages)
        self.rsvd_rule = rsvd_rule
        self.cr0_wp, self.cr4_pse, self.efer_nx = bool(cr0_wp), bool(cr4_pse), bool(efer_nx)
        self.cr4_pae = mode != PAGING_32
        self.efer_lma = mode == PAGING_64
        self.cr3 = 0
        self.pdptes = (0,) * PT32E_NR_PDPTES
        if self.mov_to_cr3(cr3) == GP:
            raise ValueError("initial CR3 has reserved bits in a PDPTE")

    @property
    def mode(self):
        return paging_mode(self.cr4_pae, self.efer_lma)

    # -- control registers -------------------------------------------------
    def _read_pdptes(self, cr3):
        """The 4 PDPTEs at CR3[31:5], or GP if a present one has reserved bits."""
        base = cr3 & PT32E_CR3_PDPT_MASK
        vals = tuple(self.mem.read(base + 8 * i, 8) for i in range(PT32E_NR_PDPTES))
        bad = pdpte_reserved(self.maxphyaddr, self.rsvd_rule)
        if any(v & PT_PRESENT_MASK and v & bad for v in vals):
            return GP
        return vals

    def mov_to_cr3(self, cr3):
        """MOV to CR3: in PAE mode this loads the PDPTE registers."""
        if cr3 < 0 or cr3 >> PT32_VADDR_BITS or cr3 & 0x1F:
            raise ValueError(f"CR3 {cr3:#x}: the walk family uses 32-bit, 32-byte aligned CR3s")
        if self.mode == PAGING_PAE:
            pdptes = self._read_pdptes(cr3)
            if pdptes == GP:
                return GP
            self.pdptes = pdptes
        self.cr3 = cr3
        return None

    def set_paging_mode(self, mode):
        """Switch among 32-bit, PAE and 64-bit paging; entering PAE loads the PDPTEs."""
        if mode not in PAGING_MODES:
            raise ValueError(f"paging mode must be one of {PAGING_MODES}, not {mode!r}")
        if mode == PAGING_PAE:
            pdptes = self._read_pdptes(self.cr3)
            if pdptes == GP:
                return GP
            self.pdptes = pdptes
        self.cr4_pae = mode != PAGING_32
        self.efer_lma = mode == PAGING_64
        return None

    def set_control(self, name, value):
        """Set CR0.WP, CR4.PSE or EFER.NX.  Changing CR4.PSE under PAE paging
        reloads the PDPTEs (SDM 4.4.1)."""
        value = bool(value)
        if name == "cr0.wp":
            self.cr0_wp = value
        elif name == "efer.nx":
            self.efer_nx = value
        elif name == "cr4.pse":
            if self.mode == PAGING_PAE and value != self.cr4_pse:
                pdptes = self._read_pdptes(self.cr3)
                if pdptes == GP:
                    return GP
                self.pdptes = pdptes
            self.cr4_pse = value
        else:
            raise ValueError(f"unknown control {name!r}")
        return None

    # -- the walk -----------------------------------------------------------
    def predict(self, addr, kind, user):
        """walk() with no effect: the same translation, its A/D writes dropped."""
        view = copy.copy(self)
        view.mem = ReadOnlyView(self.mem)
        return view.walk(addr, kind, user)

    def walk(self, addr, kind, user):
        """Translate linear address `addr` for a `kind` access (user or supervisor)."""
        if kind not in ACCESS_KINDS:
            raise ValueError(f"access kind must be one of {ACCESS_KINDS}, not {kind!r}")
        mode, mem, m = self.mode, self.mem, self.maxphyaddr
        la = linear_address(mode, addr)
        res = WalkResult()

        def fault(cause):
            res.fault = error_code(mode, kind, user, self.efer_nx, cause)
            return res

        if mode == PAGING_PAE:
            pdpte = self.pdptes[(la >> PT32E_PDPTE_SHIFT) & (PT32E_NR_PDPTES - 1)]
            res.path.append(PathEntry(3, None, pdpte, ACC_ALL))
            if not pdpte & PT_PRESENT_MASK:
                return fault(0)
            table = frame_address(mode, pdpte, m)
        elif mode == PAGING_32:
            table = self.cr3 & PT32_BASE_ADDR_MASK
        else:
            table = self.cr3 & rsvd_bits(PAGE_SHIFT, m - 1)

        for s in STRUCTURES[mode]:
            index = (la >> s.index_shift) & ((1 << s.index_bits) - 1)
            gpa = table + index * s.entry_size
            value = mem.read(gpa, s.entry_size)
            res.path.append(PathEntry(s.level, gpa, value, entry_rights(mode, value, self.efer_nx)))
            if not value & PT_PRESENT_MASK:
                return fault(0)
            if value & reserved_mask(mode, s.level, value, self.cr4_pse, self.efer_nx, m,
                                     self.rsvd_rule, self.gbpages):
                return fault(PFERR_RSVD_MASK | PFERR_PRESENT_MASK)
            what, size = entry_kind(mode, s.level, value, self.cr4_pse)
            if what == "page":
                break
            table = frame_address(mode, value, m)

        rights = ACC_ALL
        for e in res.path:
            rights &= e.rights
        if not access_allowed(kind, user, rights, self.cr0_wp):
            return fault(PFERR_PRESENT_MASK)

        leaf = res.path[-1]
        res.gfn = (page_base(mode, leaf.value, size, m) | (la & (size - 1))) >> PAGE_SHIFT
        res.level, res.rights = leaf.level, rights
        start = len(mem.log)
        width = 4 if mode == PAGING_32 else 8
        for e in res.path:
            if e.gpa is None:
                continue  # a PDPTE register has no A bit
            # Until this loop writes, memory holds what the walk read.
            cur = mem.read(e.gpa, width) if len(mem.log) != start else e.value
            new = cur | PT_ACCESSED_MASK
            if e is leaf and kind == WRITE:
                new |= PT_DIRTY_MASK
            if new != cur:
                mem.write(e.gpa, width, new, WALKER)
        res.writes = mem.log[start:]
        return res
