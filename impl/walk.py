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
  walk (retry_walk).  Each write is reported by mark_page_dirty(table_gfn)
  (the shadow MMU, impl/mmu.py, consumes these records).

The D-bit rule is a property of the walker form, `PagingTmpl.DIRTY_BIT_RULE`
(facts section 8):
- DIRTY_BIT_RULE_3 ("3.x", the plain walker): setting D is reported only by
  mark_page_dirty(table_gfn).  Nothing else is due: protect_clean_gpte()
  keeps every spte of a gpte whose D was clear read-only, so no spte made
  from the clean gpte can be stale once D is set.
- DIRTY_BIT_RULE_2_6 ("2.6", the variant walk:pte-write-on-dirty-2.6): the
  walker of a 2.6.2x paging_tmpl.h went on, after its cmpxchg set D, to call
  kvm_mmu_pte_write(vcpu, pte_gpa, &pte, sizeof(pte)) on the new pte, since
  the store went around the write protection of the guest table; here a
  KvmMmuPteWrite record.  (2.6.33's walker no longer has the call.  This
  form models only the notification: 2.6.2x also set each level's A as it
  walked, so a walk that faulted lower down left A set above; not here.)
diff/walk.py asks for one kvm_mmu_pte_write per dirtied leaf of a form that
declares the 2.6 rule and for none of a 3.x form.

retry_walk is unbounded in the kernel.  Here it is a spec.termination
LoopBound: a walk retries only when its own earlier cmpxchg of this pass set a
bit of an entry it read (no other writer runs during a walk), the entries of
the path do not change with A/D, and a walk sets at most one A per level and
one D, so PT_MAX_FULL_LEVELS + 1 retries are all the state allows; one more
raises spec.errors.Livelock (the oracle `livelock`).

The kernel's `accessed_dirty` fast path (skip update_accessed_dirty_bits when
every A, and D for a write, is already set) is not modelled: the update pass
writes nothing in that case, so the effect is the same.

The context the walker reads (struct kvm_mmu: root_level, nx, the reserved
bit masks, the permission bitmap, the PDPTE registers) is built by
`KvmVcpu.kvm_mmu_reset_context()`, after mmu.c's paging32/paging32E/paging64
init_context, reset_rsvds_bits_mask() and update_permission_bitmask().  The
reserved masks are a second property of the walker form,
`PagingTmpl.RSVD_RULE`: RSVD_INTEL (the plain walker) follows the
architecture, including a guest without 1GB pages (`KvmVcpu(gbpages=False)`);
RSVD_KVM_3_10 (the variant walk:rsvd-3.10) is 3.10.99's mmu.c
reset_rsvds_bits_mask(), which ignores GBPAGES (see both functions).

The address helpers (PT_INDEX, gpte_to_gfn_lvl, pse36_gfn_delta, leaf_gfn,
pdptr_index) use only `&`, `|`, `+` and shifts of masked values, so
proofs/walk.py evaluates these very methods on z3 bit-vectors.  Every
decision a variant replaces is one method or one rule attribute
(impl/variants/walk.py).
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
    PT_DIRTY_MASK, PT_DIRTY_SHIFT, PT_GLOBAL_SHIFT, PT_PAGE_SIZE_MASK, PT_PAGE_SIZE_SHIFT,
    PT_PAGE_TABLE_LEVEL, PT_PDPE_LEVEL, PT_PRESENT_MASK, PT_USER_MASK, PT_USER_SHIFT,
    PT_WRITABLE_MASK, PT_WRITABLE_SHIFT, rsvd_bits,
)
from spec.errors import KvmBug
from spec.guest_memory import WALKER
from spec.termination import LoopBound

PT_MAX_FULL_LEVELS = 4  # PTTYPE 64 on CONFIG_X86_64
PERMISSION_BYTES = 16   # mmu->permissions[pfec >> 1]: pfec bits W, U, RSVD, FETCH

# Walker forms (module docstring).
DIRTY_BIT_RULE_3 = "3.x"    # D reported by mark_page_dirty() only
DIRTY_BIT_RULE_2_6 = "2.6"  # and by kvm_mmu_pte_write() of the dirtied leaf
DIRTY_BIT_RULES = (DIRTY_BIT_RULE_3, DIRTY_BIT_RULE_2_6)
RSVD_INTEL = "intel"        # the architecture's reserved bits
RSVD_KVM_3_10 = "3.10"      # 3.10.99's reset_rsvds_bits_mask()
RSVD_RULES = (RSVD_INTEL, RSVD_KVM_3_10)


class MarkPageDirty(NamedTuple):
    """mark_page_dirty(kvm, gfn): the walker wrote guest page `gfn` (an A/D update)."""

    gfn: int


class KvmMmuPteWrite(NamedTuple):
    """kvm_mmu_pte_write(vcpu, gpa, new, bytes): a guest pte changed behind the
    write protection of its table (a 2.6-rule walker set D on a leaf)."""

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
                 "pt_access_at", "pte_access", "gfn", "fault", "events", "retries")

    def __init__(self):
        self.level = 0
        self.max_level = 0
        self.table_gfn = [None] * PT_MAX_FULL_LEVELS
        self.ptes = [None] * PT_MAX_FULL_LEVELS
        self.pte_gpa = [None] * PT_MAX_FULL_LEVELS
        self.pt_access = None
        # pt_access_at[level - 1]: the rights inherited through the entries from
        # the root down to (and including) this level's (b1bd5cba3306's
        # walker->pt_access[], what FNAME(fetch) gives the page below it)
        self.pt_access_at = [None] * PT_MAX_FULL_LEVELS
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


def reset_rsvds_bits_mask(context, maxphyaddr, nx, pse, gbpages=True):
    """reset_rsvds_bits_mask(), the architecture's form (RSVD_INTEL):
    rsvd_bits_mask[bit 7][level - 1] for the root level.

    Where the kernels we read differ from the architecture, this follows the
    architecture, as the spec does:
    - rsvd_bits_mask[1][0] is the 4K pte mask (2.6.3x has the self-assignment
      `[1][0] = [1][0]`, leaving a pte with the PAT bit unchecked);
    - a 32-bit PDE with PS=1 under CR4.PSE=0 has no reserved bits (it is a
      table pointer then; 2.6.3x checks bits 21:17 regardless of PSE);
    - bit 8 of a non-leaf PML4E/PDPTE is not reserved (Intel; 2.6.3x and
      3.10 reserve it; a0c0feb57992 (2014) made it AMD's rule);
    - the PAE PDPTE mask (rsvd_bits_mask[0][2], which load_pdptrs checks)
      reserves bits 8:5 (3.10 only 8:7: 20c466b56168d dropped 6:5,
      cd9ae5fe47df put them back);
    - without GBPAGES (`gbpages=False`) PS is reserved in a 4-level PDPTE,
      as later kernels' gbpages_bit_rsvd has it (3.10 never looks).
    """
    m = context.rsvd_bits_mask
    exb_bit_rsvd = 0 if nx else rsvd_bits(PT64_NX_SHIFT, PT64_NX_SHIFT)
    gbpages_bit_rsvd = 0 if gbpages else PT_PAGE_SIZE_MASK
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
        m[1][2] = exb_bit_rsvd | high | PT64_1GB_RSVD_MASK | gbpages_bit_rsvd
        m[0][1] = exb_bit_rsvd | high
        m[1][1] = exb_bit_rsvd | high | PT64_2MB_RSVD_MASK
        m[0][0] = exb_bit_rsvd | high
        m[1][0] = m[0][0]
    else:
        raise KvmBug(f"reset_rsvds_bits_mask: root level {level}")


def reset_rsvds_bits_mask_3_10(context, maxphyaddr, nx, pse):
    """reset_rsvds_bits_mask() as Linux 3.10.99's mmu.c has it (RSVD_KVM_3_10).

    The same as the architecture's form but for:
    - 4-level: bits 8:7 (rsvd_bits(7, 8)) in rsvd_bits_mask[0][3], [1][3]
      and [0][2]: PS in a PML4E, and bit 8 (G) in every PML4E and in a PDPTE
      with PS=0; Intel ignores bit 8 there, AMD reserves it in a PML4E only
      (5ecad245de2a, 2020, took it out of PDPTEs);
    - PAE: the PDPTE mask [0][2] is rsvd_bits(MAXPHYADDR, 63) | bits 8:7 |
      bits 2:1: bits 6:5 are not reserved (20c466b56168d dropped them "per
      latest SDM"; cd9ae5fe47df restored them);
    - nothing reads the guest's CPUID.GBPAGES: [1][2] is the 1GB page mask and
      update_last_pte_bitmap() ends a 4-level walk at any PS=1 PDPTE, so a
      guest without 1GB pages walks them as 1GB pages (cpuid.c only decides
      whether GBPAGES is offered to the guest).
    32-bit: rsvd_bits(17, 21) for a 4MB PDE under CR4.PSE (is_cpuid_PSE36() is
    1), nothing else; PAE PDE/PTE and 4-level PDE/PTE as the architecture.
    """
    m = context.rsvd_bits_mask
    exb_bit_rsvd = 0 if nx else rsvd_bits(PT64_NX_SHIFT, PT64_NX_SHIFT)
    bits_8_7 = rsvd_bits(PT_PAGE_SIZE_SHIFT, PT_GLOBAL_SHIFT)
    level = context.root_level
    if level == PT32_ROOT_LEVEL:
        m[0][1] = m[0][0] = 0
        m[1][0] = m[0][0]
        m[1][1] = PT32_4MB_RSVD_MASK if pse else 0
    elif level == PT32E_ROOT_LEVEL:
        high = rsvd_bits(maxphyaddr, 62)
        m[0][2] = rsvd_bits(maxphyaddr, 63) | bits_8_7 | rsvd_bits(PT_WRITABLE_SHIFT,
                                                                  PT_USER_SHIFT)
        m[0][1] = exb_bit_rsvd | high
        m[0][0] = exb_bit_rsvd | high
        m[1][1] = exb_bit_rsvd | high | PT64_2MB_RSVD_MASK
        m[1][0] = m[0][0]
    elif level == PT64_ROOT_LEVEL:
        high = rsvd_bits(maxphyaddr, PT64_PHYS_BITS - 1)
        m[0][3] = exb_bit_rsvd | high | bits_8_7
        m[0][2] = exb_bit_rsvd | high | bits_8_7
        m[0][1] = exb_bit_rsvd | high
        m[0][0] = exb_bit_rsvd | high
        m[1][3] = m[0][3]
        m[1][2] = exb_bit_rsvd | high | PT64_1GB_RSVD_MASK
        m[1][1] = exb_bit_rsvd | high | PT64_2MB_RSVD_MASK
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


# The level masks of spec.consts, evaluated once per PTTYPE and level (index 0 unused).
_LEVELS = {64: range(1, PT_MAX_FULL_LEVELS + 1), 32: range(1, PT32_ROOT_LEVEL + 1)}
_LVL_ADDR_MASK = {64: (0,) + tuple(PT64_LVL_ADDR_MASK(lv) for lv in _LEVELS[64]),
                  32: (0,) + tuple(PT32_LVL_ADDR_MASK(lv) for lv in _LEVELS[32])}
_LVL_OFFSET_MASK = {64: (0,) + tuple(PT64_LVL_OFFSET_MASK(lv) for lv in _LEVELS[64]),
                    32: (0,) + tuple(PT32_LVL_OFFSET_MASK(lv) for lv in _LEVELS[32])}


class PagingTmpl:
    """paging_tmpl.h for one PTTYPE: `PagingTmpl(64)` is paging64_*, `(32)` paging32_*.

    Two class attributes say which kernel's rules the form follows (module
    docstring): DIRTY_BIT_RULE (what setting D on a leaf reports) and
    RSVD_RULE (which reset_rsvds_bits_mask() KvmVcpu builds the context with).
    """

    DIRTY_BIT_RULE = DIRTY_BIT_RULE_3
    RSVD_RULE = RSVD_INTEL

    def __init__(self, PTTYPE):
        if PTTYPE not in (32, 64):
            raise ValueError(f"Invalid PTTYPE value {PTTYPE}")
        if self.DIRTY_BIT_RULE not in DIRTY_BIT_RULES:
            raise ValueError(f"DIRTY_BIT_RULE must be one of {DIRTY_BIT_RULES}, "
                             f"not {self.DIRTY_BIT_RULE!r}")
        if self.RSVD_RULE not in RSVD_RULES:
            raise ValueError(f"RSVD_RULE must be one of {RSVD_RULES}, not {self.RSVD_RULE!r}")
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
        """PT64_LVL_ADDR_MASK / PT32_LVL_ADDR_MASK (spec.consts), per level."""
        return _LVL_ADDR_MASK[self.PTTYPE][level]

    def PT_LVL_OFFSET_MASK(self, level):
        """PT64_LVL_OFFSET_MASK / PT32_LVL_OFFSET_MASK (spec.consts), per level."""
        return _LVL_OFFSET_MASK[self.PTTYPE][level]

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

    def dirty_leaf_events(self, pte_gpa, pte):
        """What the walker reports, besides mark_page_dirty(), once its cmpxchg set
        D on the leaf: under the 2.6 rule kvm_mmu_pte_write() of the new pte,
        under the 3.x rule nothing (module docstring)."""
        if self.DIRTY_BIT_RULE == DIRTY_BIT_RULE_2_6:
            return [KvmMmuPteWrite(pte_gpa, pte, self.pt_element_size)]
        return []

    def update_accessed_dirty_bits(self, vcpu, walker, write_fault):
        """FNAME(update_accessed_dirty_bits): A on every level, D on the leaf for
        a write, top-down; 1 asks walk_addr to retry (a pte changed).

        The 3.6-era paging_tmpl.h we read stores the updated pte in
        walker->ptes[level], one slot above its own (3.10.99 still does); here
        it is ptes[level - 1]."""
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
                walker.events.extend(self.dirty_leaf_events(pte_gpa, pte))
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
        mmu, mem = vcpu.mmu, vcpu.mem
        write_fault = access & PFERR_WRITE_MASK
        size = self.pt_element_size
        walker = GuestWalker()
        retry_walk = None  # a LoopBound from the first retry on
        while True:
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
                pte = mem.read(pte_gpa, size)  # __copy_from_user of the guest pte
                if not is_present_gpte(pte):
                    return self.walk_error(mmu, walker, 0, access)
                if self.is_rsvd_bits_set(mmu, pte, walker.level):
                    return self.walk_error(mmu, walker, PFERR_RSVD_MASK | PFERR_PRESENT_MASK,
                                           access)
                pte_access = self.accumulate_access(pt_access, mmu, pte)
                walker.pt_access_at[walker.level - 1] = pte_access
                walker.ptes[walker.level - 1] = pte
                if self.is_last_gpte(mmu, walker.level, pte):
                    break

            if self.permission_fault(mmu, pte_access, access):
                return self.walk_error(mmu, walker, PFERR_PRESENT_MASK, access)

            walker.gfn = self.leaf_gfn(pte, addr, walker.level)
            if not write_fault:
                pte_access = protect_clean_gpte(pte_access, pte)

            if self.update_accessed_dirty_bits(vcpu, walker, write_fault):
                if retry_walk is None:
                    retry_walk = LoopBound(f"FNAME(walk_addr) retry_walk for {addr:#x}",
                                           self.max_walk_retries())
                retry_walk.step()  # past the bound: spec.errors.Livelock
                walker.retries = retry_walk.n
                continue  # retry_walk
            walker.pt_access = pt_access
            walker.pte_access = pte_access
            return walker

    def max_walk_retries(self):
        """How many times retry_walk can be taken (module docstring): each retry
        follows a cmpxchg of this walk that set an A or D bit nothing clears,
        of at most PT_MAX_FULL_LEVELS A bits and one D."""
        return self.PT_MAX_FULL_LEVELS + 1


class KvmVcpu:
    """The vCPU state around the walk: control bits, CR3, the PDPTE registers,
    the kvm_mmu context, and paging32_* / paging64_* built from `tmpl_cls`
    (PagingTmpl or a variant of it).  `maxphyaddr` and `gbpages` are the
    guest's CPUID (cpuid_maxphyaddr(), CPUID.80000001H:EDX.GBPAGES); the
    reserved-bit form is tmpl_cls.RSVD_RULE.

    Control changes return 0, or 1 where the kernel injects #GP (kvm_set_cr3,
    kvm_set_cr4, the PAE switch: a present PDPTE with reserved bits).
    """

    def __init__(self, tmpl_cls, mem, maxphyaddr, mode="64", cr0_wp=True, cr4_pse=True,
                 efer_nx=True, cr3=0, gbpages=True):
        self.mem = mem
        self.maxphyaddr = maxphyaddr
        self.gbpages = bool(gbpages)
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
        self.reset_rsvds_bits_mask(ctx)
        update_permission_bitmask(ctx, self.cr0_wp)
        self.mmu = ctx

    def reset_rsvds_bits_mask(self, ctx):
        """The walker form's reset_rsvds_bits_mask() on context `ctx`."""
        if self.paging64.RSVD_RULE == RSVD_KVM_3_10:
            reset_rsvds_bits_mask_3_10(ctx, self.maxphyaddr, ctx.nx, ctx.pse)
        else:
            reset_rsvds_bits_mask(ctx, self.maxphyaddr, ctx.nx, ctx.pse, self.gbpages)

    def pdpte_rsvd_mask(self):
        """The mask load_pdptrs() checks: the PAE context's rsvd_bits_mask[0][2].

        3.10's load_pdptrs() reads vcpu->arch.mmu.rsvd_bits_mask[0][2] of the
        context current at the call, which at a switch into PAE paging is still
        the old mode's (its [0][2] whatever that mode, or an earlier one, left;
        16cfacc80857 (2019) gave load_pdptrs its own pdptr_rsvd_bits()).  Not
        modelled: the mask here is always the one a PAE context gets."""
        ctx = KvmMmu()
        ctx.root_level, ctx.nx, ctx.pse = PT32E_ROOT_LEVEL, self.efer_nx, self.cr4_pse
        self.reset_rsvds_bits_mask(ctx)
        return ctx.rsvd_bits_mask[0][2]

    def load_pdptrs(self, cr3):
        """load_pdptrs(): read the 4 PDPTEs at CR3[31:5]; 0 (fail) if a present
        one has reserved bits, else cache them and return 1."""
        pdpt_gfn = cr3 >> PAGE_SHIFT
        offset = ((cr3 & ((1 << PAGE_SHIFT) - 1)) >> 5) << 2  # in u64 entries
        rsvd = self.pdpte_rsvd_mask()
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
