"""KVM's guest page walker: FNAME(walk_addr_generic) of paging_tmpl.h.

paging_tmpl.h is compiled twice, once per guest pte size (PTTYPE 64 for
4-level and PAE guests, PTTYPE 32 for 32-bit guests); here that is one class,
`PagingTmpl`, instantiated with PTTYPE 32 or 64.  The walk is the single loop
over levels of Avi Kivity's 2007 walker simplification, in the form Linux
3.6-3.11 have it (facts section 8):

- the loop records `table_gfn[]`, `pte_gpa[]` and `ptes[]` per level and
  accumulates `pt_access` (rights of the levels above the current one) and
  `pte_access` (including it);
- the PAE PDPTE comes from the registers loaded at CR3 load
  (mmu->get_pdptr, index (addr >> 30) & 3); only its P bit is checked here;
- not present -> fault; is_rsvd_bits_set() -> RSVD fault; the loop ends at
  is_last_gpte(); then permission_fault() on the accumulated pte_access;
- the leaf gfn is gpte_to_gfn_lvl() plus the address bits below the page
  size, plus pse36_gfn_delta() for a 32-bit 4MB page;
- only after all that succeeded, FNAME(update_accessed_dirty_bits) sets A on
  every level and D on the leaf for a write, in one top-down pass, each with
  FNAME(cmpxchg_gpte); a cmpxchg that finds the pte changed restarts the
  walk (retry_walk).  Each write is reported by mark_page_dirty(table_gfn);
  setting D on a leaf goes around KVM's write protection of that guest table,
  so the walker also reports it as a kvm_mmu_pte_write() of the new pte
  (the shadow MMU of a later issue consumes both as plain records).

The kernel's `accessed_dirty` fast path (skip update_accessed_dirty_bits when
every A, and D for a write, is already set) is not modelled: the update pass
writes nothing in that case, so the effect is the same.

The context the walker reads (struct kvm_mmu: root_level, nx, the reserved
bit masks, the permission bitmap, the PDPTE registers) is built by
`KvmVcpu.kvm_mmu_reset_context()`, after mmu.c's paging32/paging32E/paging64
init_context, reset_rsvds_bits_mask() and update_permission_bitmask().  The
reserved masks follow the architecture where the 2.6.3x mmu.c we read
differs from it (see `reset_rsvds_bits_mask`).

The address helpers (PT_INDEX, gpte_to_gfn_lvl, pse36_gfn_delta, leaf_gfn,
pdptr_index) use only `&`, `|`, `+` and shifts of masked values, so
proofs/walk.py evaluates these very methods on z3 bit-vectors.  Every
decision a variant replaces is one method (impl/variants/walk.py).
"""

from typing import NamedTuple

from spec.consts import (
    ACC_ALL, ACC_EXEC_MASK, ACC_USER_MASK, ACC_WRITE_MASK, PAGE_SHIFT, PFERR_FETCH_MASK,
    PFERR_PRESENT_MASK, PFERR_RSVD_MASK, PFERR_USER_MASK, PFERR_WRITE_MASK, PT32_4MB_RSVD_MASK,
    PT32_ENT_SIZE, PT32_LEVEL_BITS, PT32_LVL_ADDR_MASK, PT32_LVL_OFFSET_MASK, PT32_PSE36_MASK,
    PT32_PSE36_SHIFT, PT32_ROOT_LEVEL, PT32E_NR_PDPTES, PT32E_PDPTE_RSVD_MASK, PT32E_PDPTE_SHIFT,
    PT32E_ROOT_LEVEL, PT32_INDEX, PT64_1GB_RSVD_MASK, PT64_2MB_RSVD_MASK, PT64_ENT_SIZE,
    PT64_INDEX, PT64_LEVEL_BITS, PT64_LVL_ADDR_MASK, PT64_LVL_OFFSET_MASK, PT64_NX_SHIFT,
    PT64_PHYS_BITS, PT64_PML4E_RSVD_MASK, PT64_ROOT_LEVEL, PT_ACCESSED_MASK, PT_DIRECTORY_LEVEL,
    PT_DIRTY_MASK, PT_DIRTY_SHIFT, PT_PAGE_SIZE_MASK, PT_PAGE_SIZE_SHIFT, PT_PAGE_TABLE_LEVEL,
    PT_PDPE_LEVEL, PT_PRESENT_MASK, PT_USER_MASK, PT_WRITABLE_MASK, PT_WRITABLE_SHIFT, rsvd_bits,
)
from spec.errors import KvmBug
from spec.guest_memory import WALKER

PT_MAX_FULL_LEVELS = 4  # PTTYPE 64 on CONFIG_X86_64
PERMISSION_BYTES = 16   # mmu->permissions[pfec >> 1]: pfec bits W, U, RSVD, FETCH
MAX_WALK_RETRIES = 8    # a sequential guest can force at most a few cmpxchg retries


class MarkPageDirty(NamedTuple):
    """mark_page_dirty(kvm, gfn): the walker wrote guest page `gfn` (an A/D update)."""

    gfn: int


class KvmMmuPteWrite(NamedTuple):
    """kvm_mmu_pte_write(vcpu, gpa, new, bytes): a guest pte changed behind the
    write protection of its table (the walker set D on a leaf)."""

    gpa: int
    new: int
    bytes: int


class GuestWalker:
    """struct guest_walker: what one FNAME(walk_addr) call found.

    `fault` is the #PF error code (None on success, when `gfn`, `level`,
    `pt_access`, `pte_access` are meaningful).  `events` are the
    MarkPageDirty / KvmMmuPteWrite records, in order; `retries` counts
    retry_walk restarts.
    """

    __slots__ = ("level", "max_level", "table_gfn", "ptes", "pte_gpa", "pt_access",
                 "pte_access", "gfn", "fault", "events", "retries")

    def __init__(self):
        self.level = 0
        self.max_level = 0
        self.table_gfn = [None] * PT_MAX_FULL_LEVELS
        self.ptes = [None] * PT_MAX_FULL_LEVELS
        self.pte_gpa = [None] * PT_MAX_FULL_LEVELS
        self.pt_access = None
        self.pte_access = None
        self.gfn = None
        self.fault = None
        self.events = []
        self.retries = 0


class KvmMmu:
    """The part of struct kvm_mmu the guest walk reads."""

    __slots__ = ("root_level", "nx", "rsvd_bits_mask", "permissions", "pse", "pdptrs", "walker")

    def __init__(self):
        self.root_level = 0
        self.nx = False
        self.rsvd_bits_mask = [[0] * PT_MAX_FULL_LEVELS, [0] * PT_MAX_FULL_LEVELS]
        self.permissions = [0] * PERMISSION_BYTES
        self.pse = False
        self.pdptrs = [0] * PT32E_NR_PDPTES
        self.walker = None


def reset_rsvds_bits_mask(context, maxphyaddr, nx, pse):
    """reset_rsvds_bits_mask(): rsvd_bits_mask[bit 7][level - 1] for the root level.

    Where the 2.6.3x mmu.c we read differs from the architecture, this
    follows the architecture, as the spec does:
    - rsvd_bits_mask[1][0] is the 4K pte mask (2.6.3x has the self-assignment
      `[1][0] = [1][0]`, leaving a pte with the PAT bit unchecked);
    - a 32-bit PDE with PS=1 under CR4.PSE=0 has no reserved bits (it is a
      table pointer then; 2.6.3x checks bits 21:17 regardless of PSE);
    - bit 8 of a non-leaf PML4E/PDPTE is not reserved (Intel; 2.6.3x reserves
      it, as AMD does in a PML4E);
    - the PAE PDPTE mask (used by load_pdptrs) reserves bits 8:5, not only 8:7.
    """
    m = context.rsvd_bits_mask
    exb_bit_rsvd = 0 if nx else rsvd_bits(PT64_NX_SHIFT, PT64_NX_SHIFT)
    level = context.root_level
    if level == PT32_ROOT_LEVEL:
        m[0][1] = m[0][0] = 0
        m[1][0] = m[0][0]
        m[1][1] = PT32_4MB_RSVD_MASK if pse else 0
    elif level == PT32E_ROOT_LEVEL:
        high = rsvd_bits(maxphyaddr, 62)
        m[0][2] = rsvd_bits(maxphyaddr, 63) | PT32E_PDPTE_RSVD_MASK
        m[0][1] = exb_bit_rsvd | high
        m[0][0] = exb_bit_rsvd | high
        m[1][1] = exb_bit_rsvd | high | PT64_2MB_RSVD_MASK
        m[1][0] = m[0][0]
    elif level == PT64_ROOT_LEVEL:
        high = rsvd_bits(maxphyaddr, PT64_PHYS_BITS - 1)
        m[0][3] = exb_bit_rsvd | high | PT64_PML4E_RSVD_MASK
        m[1][3] = m[0][3]
        m[0][2] = exb_bit_rsvd | high
        m[1][2] = exb_bit_rsvd | high | PT64_1GB_RSVD_MASK
        m[0][1] = exb_bit_rsvd | high
        m[1][1] = exb_bit_rsvd | high | PT64_2MB_RSVD_MASK
        m[0][0] = exb_bit_rsvd | high
        m[1][0] = m[0][0]
    else:
        raise KvmBug(f"reset_rsvds_bits_mask: root level {level}")


def update_permission_bitmask(context, cr0_wp):
    """update_permission_bitmask() (3.x): permissions[pfec >> 1] bit `pte_access`
    is set when an access with that error code faults on a page with those
    ACC_* rights.  No SMEP in this model."""
    for byte in range(PERMISSION_BYTES):
        pfec = byte << 1
        wf = bool(pfec & PFERR_WRITE_MASK)
        uf = bool(pfec & PFERR_USER_MASK)
        ff = bool(pfec & PFERR_FETCH_MASK)
        bitmap = 0
        for acc in range(8):
            x = bool(acc & ACC_EXEC_MASK) or not context.nx  # without NX everything executes
            w = bool(acc & ACC_WRITE_MASK) or (not cr0_wp and not uf)  # supervisor ignores R/W
            u = bool(acc & ACC_USER_MASK)
            faults = (ff and not x) or (uf and not u) or (wf and not w)
            bitmap |= int(faults) << acc
        context.permissions[byte] = bitmap


def is_present_gpte(pte):
    return pte & PT_PRESENT_MASK != 0


def is_dirty_gpte(pte):
    return pte & PT_DIRTY_MASK != 0


def protect_clean_gpte(access, gpte):
    """protect_clean_gpte(): a clean gpte gets no ACC_WRITE (so the first write
    faults and sets D); returns the new access."""
    keep = ~ACC_WRITE_MASK
    keep |= (gpte >> (PT_DIRTY_SHIFT - PT_WRITABLE_SHIFT)) & ACC_WRITE_MASK
    return access & keep


class PagingTmpl:
    """paging_tmpl.h for one PTTYPE: `PagingTmpl(64)` is paging64_*, `(32)` paging32_*."""

    def __init__(self, PTTYPE):
        if PTTYPE not in (32, 64):
            raise ValueError(f"Invalid PTTYPE value {PTTYPE}")
        self.PTTYPE = PTTYPE
        self.pt_element_size = PT64_ENT_SIZE if PTTYPE == 64 else PT32_ENT_SIZE
        self.PT_LEVEL_BITS = PT64_LEVEL_BITS if PTTYPE == 64 else PT32_LEVEL_BITS
        self.PT_MAX_FULL_LEVELS = PT_MAX_FULL_LEVELS if PTTYPE == 64 else PT32_ROOT_LEVEL

    def __repr__(self):
        return f"{type(self).__name__}(PTTYPE={self.PTTYPE})"

    # -- address arithmetic (ints and z3 bit-vectors alike) ----------------
    def PT_INDEX(self, addr, level):
        """PT64_INDEX / PT32_INDEX."""
        if self.PTTYPE == 64:
            return PT64_INDEX(addr, level)
        return PT32_INDEX(addr, level)

    def PT_LVL_ADDR_MASK(self, level):
        return PT64_LVL_ADDR_MASK(level) if self.PTTYPE == 64 else PT32_LVL_ADDR_MASK(level)

    def PT_LVL_OFFSET_MASK(self, level):
        return PT64_LVL_OFFSET_MASK(level) if self.PTTYPE == 64 else PT32_LVL_OFFSET_MASK(level)

    def gpte_to_gfn_lvl(self, gpte, lvl):
        """The frame an entry at `lvl` points to: (gpte & PT_LVL_ADDR_MASK(lvl)) >> 12."""
        return (gpte & self.PT_LVL_ADDR_MASK(lvl)) >> PAGE_SHIFT

    def gpte_to_gfn(self, gpte):
        return self.gpte_to_gfn_lvl(gpte, PT_PAGE_TABLE_LEVEL)

    def pse36_gfn_delta(self, gpte):
        """pse36_gfn_delta(): PDE bits 16:13 as gfn bits 23:20 (physical bits 35:32)."""
        return ((gpte & PT32_PSE36_MASK) >> PT32_PSE36_SHIFT) << (32 - PAGE_SHIFT)

    def leaf_gfn(self, gpte, addr, level):
        """walker->gfn for a leaf `gpte` at `level`: its base plus the frames of
        `addr` below the page size, plus the PSE-36 bits of a 32-bit 4MB page
        (is_cpuid_PSE36() is always true here)."""
        gfn = self.gpte_to_gfn_lvl(gpte, level)
        gfn = gfn + ((addr & self.PT_LVL_OFFSET_MASK(level)) >> PAGE_SHIFT)
        if self.PTTYPE == 32 and level == PT_DIRECTORY_LEVEL:
            gfn = gfn + self.pse36_gfn_delta(gpte)
        return gfn

    def pdptr_index(self, addr):
        """Which PDPTE register a PAE walk starts from: (addr >> 30) & 3."""
        return (addr >> PT32E_PDPTE_SHIFT) & (PT32E_NR_PDPTES - 1)

    # -- rights ---------------------------------------------------------------
    def gpte_access(self, mmu, gpte):
        """FNAME(gpte_access): ACC_WRITE/ACC_USER from R/W and U/S; ACC_EXEC
        unless a 64-bit gpte has NX (meaningful only when mmu->nx; without it
        bit 63 is reserved and the walk never gets here)."""
        access = (gpte & (PT_WRITABLE_MASK | PT_USER_MASK)) | ACC_EXEC_MASK
        if self.PTTYPE == 64:
            access &= ~((gpte >> PT64_NX_SHIFT) & ACC_EXEC_MASK)
        return access

    def accumulate_access(self, pt_access, mmu, gpte):
        """pte_access = pt_access & gpte_access(gpte): the rights are ANDed."""
        return pt_access & self.gpte_access(mmu, gpte)

    def is_rsvd_bits_set(self, mmu, gpte, level):
        """is_rsvd_bits_set(): the mask is chosen by bit 7 and the level."""
        bit7 = (gpte >> PT_PAGE_SIZE_SHIFT) & 1
        return (gpte & mmu.rsvd_bits_mask[bit7][level - 1]) != 0

    def is_last_gpte(self, mmu, level, gpte):
        """is_last_gpte(): a 4K pte, a PS=1 PDE (32-bit only with CR4.PSE), or a
        PS=1 PDPTE of a 4-level walk."""
        if level == PT_PAGE_TABLE_LEVEL:
            return True
        large = gpte & PT_PAGE_SIZE_MASK
        if level == PT_DIRECTORY_LEVEL and large and (self.PTTYPE == 64 or mmu.pse):
            return True
        if level == PT_PDPE_LEVEL and large and mmu.root_level == PT64_ROOT_LEVEL:
            return True
        return False

    def permission_fault(self, mmu, pte_access, pfec):
        """permission_fault(): one bit of the precomputed bitmap."""
        return (mmu.permissions[pfec >> 1] >> pte_access) & 1 == 1

    def leaf_needs_dirty(self, write_fault, pte):
        """Whether update_accessed_dirty_bits sets D on the leaf: a write to a clean pte."""
        return bool(write_fault) and not is_dirty_gpte(pte)

    # -- guest memory ---------------------------------------------------------
    def cmpxchg_gpte(self, vcpu, pte_gpa, orig_pte, new_pte):
        """FNAME(cmpxchg_gpte): nonzero when the pte was no longer `orig_pte`."""
        cur = vcpu.mem.read(pte_gpa, self.pt_element_size)
        if cur != orig_pte:
            return 1
        vcpu.mem.write(pte_gpa, self.pt_element_size, new_pte, WALKER)
        return 0

    def update_accessed_dirty_bits(self, vcpu, walker, write_fault):
        """FNAME(update_accessed_dirty_bits): A on every level, D on the leaf for
        a write, top-down; 1 asks walk_addr to retry (a pte changed).

        The 3.6-era paging_tmpl.h we read stores the updated pte in
        walker->ptes[level], one slot above its own; here it is ptes[level - 1]."""
        for level in range(walker.max_level, walker.level - 1, -1):
            pte = orig_pte = walker.ptes[level - 1]
            table_gfn = walker.table_gfn[level - 1]
            pte_gpa = walker.pte_gpa[level - 1]
            if not pte & PT_ACCESSED_MASK:
                pte |= PT_ACCESSED_MASK
            if level == walker.level and self.leaf_needs_dirty(write_fault, pte):
                pte |= PT_DIRTY_MASK
            if pte == orig_pte:
                continue
            if self.cmpxchg_gpte(vcpu, pte_gpa, orig_pte, pte):
                return 1
            walker.events.append(MarkPageDirty(table_gfn))
            if level == walker.level and pte & PT_DIRTY_MASK and not orig_pte & PT_DIRTY_MASK:
                walker.events.append(KvmMmuPteWrite(pte_gpa, pte, self.pt_element_size))
            walker.ptes[level - 1] = pte
        return 0

    # -- the walk -------------------------------------------------------------
    def walk_error(self, mmu, walker, errcode, access):
        """The `error:` label: add W/U of the access, and FETCH when mmu->nx."""
        errcode |= access & (PFERR_WRITE_MASK | PFERR_USER_MASK)
        if access & PFERR_FETCH_MASK and mmu.nx:
            errcode |= PFERR_FETCH_MASK
        walker.fault = errcode
        return walker

    def walk_addr(self, vcpu, addr, access):
        """FNAME(walk_addr): walk the guest tables for `addr` with error code `access`."""
        mmu = vcpu.mmu
        write_fault = access & PFERR_WRITE_MASK
        size = self.pt_element_size
        walker = GuestWalker()
        for attempt in range(MAX_WALK_RETRIES):
            walker.retries = attempt
            walker.level = mmu.root_level
            pte = vcpu.get_cr3()
            if self.PTTYPE == 64 and walker.level == PT32E_ROOT_LEVEL:
                pte = mmu.pdptrs[self.pdptr_index(addr)]
                if not is_present_gpte(pte):
                    return self.walk_error(mmu, walker, 0, access)
                walker.level -= 1
            walker.max_level = walker.level

            pt_access = pte_access = ACC_ALL
            walker.level += 1
            while True:
                pt_access &= pte_access
                walker.level -= 1
                if walker.level < PT_PAGE_TABLE_LEVEL:
                    raise KvmBug("walk_addr: BUG_ON(walker->level < 1)")
                index = self.PT_INDEX(addr, walker.level)
                table_gfn = self.gpte_to_gfn(pte)
                pte_gpa = (table_gfn << PAGE_SHIFT) + index * size
                walker.table_gfn[walker.level - 1] = table_gfn
                walker.pte_gpa[walker.level - 1] = pte_gpa
                pte = vcpu.mem.read(pte_gpa, size)
                if not is_present_gpte(pte):
                    return self.walk_error(mmu, walker, 0, access)
                if self.is_rsvd_bits_set(mmu, pte, walker.level):
                    return self.walk_error(mmu, walker, PFERR_RSVD_MASK | PFERR_PRESENT_MASK,
                                           access)
                pte_access = self.accumulate_access(pt_access, mmu, pte)
                walker.ptes[walker.level - 1] = pte
                if self.is_last_gpte(mmu, walker.level, pte):
                    break

            if self.permission_fault(mmu, pte_access, access):
                return self.walk_error(mmu, walker, PFERR_PRESENT_MASK, access)

            walker.gfn = self.leaf_gfn(pte, addr, walker.level)
            if not write_fault:
                pte_access = protect_clean_gpte(pte_access, pte)

            if self.update_accessed_dirty_bits(vcpu, walker, write_fault):
                continue  # retry_walk
            walker.pt_access = pt_access
            walker.pte_access = pte_access
            return walker
        raise KvmBug(f"walk_addr: {MAX_WALK_RETRIES} retries for {addr:#x}")


class KvmVcpu:
    """The vCPU state around the walk: control bits, CR3, the PDPTE registers,
    the kvm_mmu context, and paging32_* / paging64_* built from `tmpl_cls`
    (PagingTmpl or a variant of it).

    Control changes return 0, or 1 where the kernel injects #GP (kvm_set_cr3,
    kvm_set_cr4, the PAE switch: a present PDPTE with reserved bits).
    """

    def __init__(self, tmpl_cls, mem, maxphyaddr, mode="64", cr0_wp=True, cr4_pse=True,
                 efer_nx=True, cr3=0):
        self.mem = mem
        self.maxphyaddr = maxphyaddr
        self.paging32 = tmpl_cls(32)
        self.paging64 = tmpl_cls(64)
        self.cr0_wp, self.cr4_pse, self.efer_nx = bool(cr0_wp), bool(cr4_pse), bool(efer_nx)
        self.cr4_pae = mode != "32"
        self.efer_lma = mode == "64"
        self.cr3 = 0
        self.pdptrs = [0] * PT32E_NR_PDPTES
        self.mmu = None
        self.kvm_mmu_reset_context()
        if self.kvm_set_cr3(cr3):
            raise ValueError("initial CR3 has reserved bits in a PDPTE")

    def get_cr3(self):
        return self.cr3

    def is_pae_paging(self):
        return self.cr4_pae and not self.efer_lma

    # -- context --------------------------------------------------------------
    def kvm_mmu_reset_context(self):
        """init_kvm_softmmu(): paging64 / paging32E / paging32 init_context."""
        ctx = KvmMmu()
        if self.efer_lma:
            ctx.root_level, ctx.nx, ctx.walker = PT64_ROOT_LEVEL, self.efer_nx, self.paging64
        elif self.cr4_pae:
            ctx.root_level, ctx.nx, ctx.walker = PT32E_ROOT_LEVEL, self.efer_nx, self.paging64
        else:
            ctx.root_level, ctx.nx, ctx.walker = PT32_ROOT_LEVEL, False, self.paging32
        ctx.pse = self.cr4_pse
        ctx.pdptrs = self.pdptrs
        reset_rsvds_bits_mask(ctx, self.maxphyaddr, ctx.nx, ctx.pse)
        update_permission_bitmask(ctx, self.cr0_wp)
        self.mmu = ctx

    def load_pdptrs(self, cr3):
        """load_pdptrs(): read the 4 PDPTEs at CR3[31:5]; 0 (fail) if a present
        one has reserved bits, else cache them and return 1."""
        pdpt_gfn = cr3 >> PAGE_SHIFT
        offset = ((cr3 & ((1 << PAGE_SHIFT) - 1)) >> 5) << 2  # in u64 entries
        rsvd = rsvd_bits(self.maxphyaddr, 63) | PT32E_PDPTE_RSVD_MASK
        pdpte = [self.mem.read((pdpt_gfn << PAGE_SHIFT) + 8 * (offset + i), 8)
                 for i in range(PT32E_NR_PDPTES)]
        for v in pdpte:
            if is_present_gpte(v) and v & rsvd:
                return 0
        self.pdptrs[:] = pdpte
        return 1

    def kvm_set_cr3(self, cr3):
        if self.is_pae_paging() and not self.load_pdptrs(cr3):
            return 1
        self.cr3 = cr3
        return 0

    def kvm_set_cr0_wp(self, wp):
        self.cr0_wp = bool(wp)
        self.kvm_mmu_reset_context()
        return 0

    def kvm_set_efer_nx(self, nx):
        self.efer_nx = bool(nx)
        self.kvm_mmu_reset_context()
        return 0

    def kvm_set_cr4_pse(self, pse):
        """kvm_set_cr4(): under PAE paging a change of PSE reloads the PDPTEs."""
        pse = bool(pse)
        if self.is_pae_paging() and pse != self.cr4_pse and not self.load_pdptrs(self.cr3):
            return 1
        self.cr4_pse = pse
        self.kvm_mmu_reset_context()
        return 0

    def set_paging_mode(self, mode):
        """The guest's CR0/CR4/EFER sequence into `mode` ("32", "pae" or "64"),
        as one step; entering PAE paging loads the PDPTEs."""
        if mode == "pae" and not self.load_pdptrs(self.cr3):
            return 1
        self.cr4_pae = mode != "32"
        self.efer_lma = mode == "64"
        self.kvm_mmu_reset_context()
        return 0

    # -- the walk -------------------------------------------------------------
    def walk_addr(self, addr, access):
        """mmu->gva_to_gpa's walk: paging64_walk_addr or paging32_walk_addr."""
        return self.mmu.walker.walk_addr(self, addr, access)
