"""Reverse maps and their walkers, the naive way: rmap_next() (Linux 3.4).

`RmapBase` holds what the rmap iterator patch (Yoshikawa 2012, 1e3f42f03c38)
left alone and both sides share: rmap_add, rmap_remove, drop_spte,
mmu_spte_clear_track_bits.  `SpecRmap` adds the pre-patch iteration,
rmap_next(rmapp, spte), which re-decodes the head and re-scans the list from
the start for every step (O(n^2) slot reads for a walk of n), and writes
every walker on it, as mmu.c 3.4 did.

`rmap_of` stands for gfn_to_rmap(kvm, kvm_mmu_page_get_gfn(sp, idx), level):
a callable from an spte pointer to the RmapHead that must hold it.  The rmap
family supplies it from a table; the shadow MMU from its shadow pages.
"""

from .consts import (
    PT64_BASE_ADDR_MASK,
    PT64_NX_MASK,
    PT_USER_MASK,
    PT_ACCESSED_MASK,
    PT_DIRTY_MASK,
    PT_PAGE_SIZE_MASK,
    PT_PAGE_TABLE_LEVEL,
    PT_PRESENT_MASK,
    PT_WRITABLE_MASK,
    PAGE_SHIFT,
    SPTE_HOST_WRITEABLE,
    SPTE_MMU_WRITEABLE,
    spte_to_pfn,
)
from .errors import KvmBug
from .termination import LoopBound
from .pte_list import (
    PteListOps, pte_list_decode, pte_list_desc_addr, pte_list_is_desc, pte_list_violations,
)


def is_shadow_present_pte(spte):
    return spte & PT_PRESENT_MASK != 0


def is_writable_pte(spte):
    return spte & PT_WRITABLE_MASK != 0


def is_large_pte(spte):
    return spte & PT_PAGE_SIZE_MASK != 0


def spte_is_locklessly_modifiable(spte):
    """spte_is_locklessly_modifiable() (3.10): both software bits set.

    SPTE_HOST_WRITEABLE: the host page was writable when the spte was made
    (set_spte's host_writable); SPTE_MMU_WRITEABLE: the MMU would let it be
    writable (set with W by set_spte, kept when dirty logging write-protects
    it, cleared when KVM write-protects the gfn for shadowing).  Such an spte
    may get W back outside mmu_lock (fast_page_fault), and is updated with an
    atomic swap (spte_has_volatile_bits) so such a W is never lost."""
    both = SPTE_HOST_WRITEABLE | SPTE_MMU_WRITEABLE
    return spte & both == both


def spte_write_protect_acts(spte, pt_protect):
    """spte_write_protect()'s first test (3.10): it changes the spte only if it is
    writable, or, when `pt_protect` (write protection for shadowing), if it is
    still locklessly modifiable (read-only but MMU-writable: fast_page_fault
    could make it writable again)."""
    return is_writable_pte(spte) or (pt_protect and spte_is_locklessly_modifiable(spte))


def spte_write_protected(spte, pt_protect):
    """The spte spte_write_protect() writes for a small spte: W cleared, and
    SPTE_MMU_WRITEABLE cleared too when `pt_protect` (SPTE_HOST_WRITEABLE is
    never touched)."""
    if pt_protect:
        spte &= ~SPTE_MMU_WRITEABLE
    return spte & ~PT_WRITABLE_MASK


def set_pte_rmapp_spte(spte, new_pfn, accessed_mask):
    """The new spte kvm_set_pte_rmapp() writes for a read-only host pte.

    New pfn; W, SPTE_HOST_WRITEABLE and the accessed bit cleared (3.5 form).
    """
    new = spte & ~PT64_BASE_ADDR_MASK
    new |= new_pfn << PAGE_SHIFT
    new &= ~PT_WRITABLE_MASK
    new &= ~SPTE_HOST_WRITEABLE
    new &= ~accessed_mask
    return new


def spte_rights_taken(old, new):
    """A TLB that cached present spte `old` may hold more than `new` allows: the
    spte went, maps another pfn, or lost W or U or gained NX."""
    if not is_shadow_present_pte(old):
        return False
    if not is_shadow_present_pte(new) or (old ^ new) & PT64_BASE_ADDR_MASK:
        return True
    lost = old & ~new
    return bool(lost & (PT_WRITABLE_MASK | PT_USER_MASK) or new & ~old & PT64_NX_MASK)


class RmapBase(PteListOps):
    """The rmap operations both sides share (unchanged by the patch).

    `spte_update`, when given, is the MMU's mmu_spte_update(): the walkers'
    write-protection goes through it, so a form of the MMU that changes it
    changes their flush decision too."""

    def __init__(self, mem, rmap_of, shadow_accessed_mask=PT_ACCESSED_MASK, spte_update=None):
        super().__init__(mem)
        self.rmap_of = rmap_of
        if spte_update is not None:
            self.mmu_spte_update = spte_update
        self.shadow_accessed_mask = shadow_accessed_mask
        # EPT has neither A nor D bits; shadow paging and NPT have both.
        self.shadow_dirty_mask = PT_DIRTY_MASK if shadow_accessed_mask else 0
        self.pfn_accessed = set()  # kvm_set_pfn_accessed() calls, by pfn
        self.pfn_dirty = set()     # kvm_set_pfn_dirty() calls, by pfn

    # -- the layout seam: what the checkers ask of a list, per layout ---------
    # diff/rmap.py's oracles and spec/mmu_audit.py decode and judge a list
    # through these, so a variant with another desc layout (e.g. Linux 6.4's
    # tail count, impl/variants/rmap_tail_count.py) replaces them.
    def pte_list_decode(self, head_val):
        """(entries, descs) of the list whose head word is head_val; uncounted."""
        return pte_list_decode(self.mem, head_val)

    def pte_list_violations(self, head_val):
        """Structure rules of this layout broken by the list; [] when well-formed."""
        return pte_list_violations(self.mem, head_val)

    def pte_list_add_count(self, head_val):
        """What pte_list_add must return for the list as it stands (uncounted).

        3.x: ext per full desc walked past, plus the occupied prefix of the
        desc the add stops at, or nothing when that desc is full and a new
        one is appended (the quirk PteListOps.pte_list_add notes).
        """
        entries, descs = self.pte_list_decode(head_val)
        count = 0
        for d in descs:
            if d.sptes[-1] and d.more:
                count += self.ext
                continue
            return count if d.sptes[-1] else count + d.sptes.index(0)
        return len(entries)

    def rmap_add(self, sptep, rmapp):
        """rmap_add(): pte_list_add onto the rmap; returns its count."""
        return self.pte_list_add(sptep, rmapp)

    def rmap_remove(self, sptep):
        """rmap_remove(): take sptep off the rmap its gfn and level select."""
        self.pte_list_remove(sptep, self.rmap_of(sptep))

    def mmu_spte_update(self, sptep, new):
        """mmu_spte_update(): write `new` over the spte (the pfn stays; callers drop
        an spte before they change it).  Returns whether a TLB may still hold a
        right it took away, which obliges the caller to flush every vCPU.  3.10
        asks only whether W went; the model asks spte_rights_taken(), the same
        answer on every path 3.10 has.  An A or D bit it clears is reported to
        the host (kvm_set_pfn_accessed / kvm_set_pfn_dirty).  3.10 swaps a
        locklessly modifiable spte atomically (spte_has_volatile_bits), so
        the old value it judges includes a W that fast_page_fault set
        outside mmu_lock; the model runs one thing at a time, so the value
        read here is that value."""
        old = self.mem.spte_read(sptep)
        self.mem.spte_write(sptep, new)
        if not is_shadow_present_pte(old):
            return False
        if self.shadow_accessed_mask:
            pfn = spte_to_pfn(old)
            if old & self.shadow_accessed_mask and not new & self.shadow_accessed_mask:
                self.pfn_accessed.add(pfn)
            if old & self.shadow_dirty_mask and not new & self.shadow_dirty_mask:
                self.pfn_dirty.add(pfn)
        return spte_rights_taken(old, new)

    def mmu_spte_clear_track_bits(self, sptep):
        """Clear *sptep; report A/D to the host; return whether it was present."""
        old = self.mem.spte_read(sptep)
        self.mem.spte_write(sptep, 0)
        if not is_shadow_present_pte(old):
            return False
        pfn = spte_to_pfn(old)
        if not self.shadow_accessed_mask or old & self.shadow_accessed_mask:
            self.pfn_accessed.add(pfn)
        if not self.shadow_dirty_mask or old & self.shadow_dirty_mask:
            self.pfn_dirty.add(pfn)
        return True

    def drop_spte(self, sptep):
        """drop_spte(): clear the spte and, if it was present, rmap_remove it."""
        if self.mmu_spte_clear_track_bits(sptep):
            self.rmap_remove(sptep)

    def drop_parent_pte(self, parent_ptes, parent_pte):
        """drop_parent_pte(): off sp->parent_ptes, then clear without tracking."""
        self.pte_list_remove(parent_pte, parent_ptes)
        self.mem.spte_write(parent_pte, 0)

    def walk_bound(self, walker):
        """An rmap walker visits each entry, and restarts from the head at most
        once per spte it drops: (n+1)^2 steps for at most n sptes in memory
        (spec/termination.py)."""
        n = len(self.mem.sptes) + 1
        return LoopBound(f"{walker}: rmap walk", n * n + 1)

    def check_present(self, sptep, walker):
        spte = self.mem.spte_read(sptep)
        if not is_shadow_present_pte(spte):
            raise KvmBug(f"{walker}: BUG_ON non-present spte {sptep:#x} = {spte:#x}")
        return spte


class SpecRmap(RmapBase):
    """The reference: every walker written on rmap_next()."""

    def rmap_next(self, rmapp, spte):
        """pte_list_next(): the entry after `spte` (0 = from the start).

        Re-decodes the head and scans from the first desc every time.
        """
        mem, ext = self.mem, self.ext
        head = rmapp.val
        mem.reads += 1  # the head word
        if head == 0:
            return 0
        if not pte_list_is_desc(head):
            return head if spte == 0 else 0
        desc = mem.desc(pte_list_desc_addr(head))
        prev = 0
        chain = self.chain_bound("rmap_next")
        while desc is not None:
            chain.step()
            i = 0
            while i < ext:
                cur = mem.slot(desc, i)
                if not cur:
                    break
                if prev == spte:
                    return cur
                prev = cur
                i += 1
            desc = mem.desc(desc.more) if desc.more else None
        return 0

    def rmap_write_protect(self, rmapp, level, pt_protect=False):
        """__rmap_write_protect(kvm, rmapp, pt_protect) with spte_write_protect():
        level 1 clears W (and SPTE_MMU_WRITEABLE when `pt_protect`); a large
        spte is dropped.  `pt_protect` is true for write protection for
        shadowing (rmap_write_protect(kvm, gfn)), false for dirty logging
        (kvm_mmu_slot_remove_write_access, kvm_mmu_write_protect_pt_masked)."""
        spte = 0
        write_protected = False
        walk = self.walk_bound("rmap_write_protect")
        while True:
            walk.step()
            spte = self.rmap_next(rmapp, spte)
            if not spte:
                return write_protected
            val = self.check_present(spte, "rmap_write_protect")
            if not spte_write_protect_acts(val, pt_protect):
                continue
            if level == PT_PAGE_TABLE_LEVEL:
                write_protected |= self.mmu_spte_update(spte, spte_write_protected(val, pt_protect))
            else:
                if not is_large_pte(val):
                    raise KvmBug(f"rmap_write_protect: BUG_ON !large spte {spte:#x}")
                self.drop_spte(spte)
                spte = 0
                write_protected = True

    def kvm_unmap_rmapp(self, rmapp):
        """kvm_unmap_rmapp(): drop every spte; returns need_tlb_flush."""
        need_flush = False
        walk = self.walk_bound("kvm_unmap_rmapp")
        while True:
            walk.step()
            spte = self.rmap_next(rmapp, 0)
            if not spte:
                return need_flush
            self.check_present(spte, "kvm_unmap_rmapp")
            self.drop_spte(spte)
            need_flush = True

    def kvm_set_pte_rmapp(self, rmapp, host_writable, new_pfn):
        """kvm_set_pte_rmapp(): writable host pte -> drop all, else repoint."""
        need_flush = False
        spte = self.rmap_next(rmapp, 0)
        walk = self.walk_bound("kvm_set_pte_rmapp")
        while spte:
            walk.step()
            val = self.check_present(spte, "kvm_set_pte_rmapp")
            need_flush = True
            if host_writable:
                self.drop_spte(spte)
                spte = self.rmap_next(rmapp, 0)
            else:
                new = set_pte_rmapp_spte(val, new_pfn, self.shadow_accessed_mask)
                self.mmu_spte_clear_track_bits(spte)
                self.mem.spte_write(spte, new)
                spte = self.rmap_next(rmapp, spte)
        return need_flush

    def kvm_age_rmapp(self, rmapp):
        """kvm_age_rmapp(): clear A, report young; with no A bit, unmap."""
        if not self.shadow_accessed_mask:
            return self.kvm_unmap_rmapp(rmapp)
        young = False
        spte = self.rmap_next(rmapp, 0)
        walk = self.walk_bound("kvm_age_rmapp")
        while spte:
            walk.step()
            val = self.check_present(spte, "kvm_age_rmapp")
            if val & PT_ACCESSED_MASK:
                young = True
                self.mem.spte_write(spte, val & ~PT_ACCESSED_MASK)
            spte = self.rmap_next(rmapp, spte)
        return young

    def kvm_test_age_rmapp(self, rmapp):
        """kvm_test_age_rmapp(): report young, change nothing."""
        if not self.shadow_accessed_mask:
            return False
        spte = self.rmap_next(rmapp, 0)
        walk = self.walk_bound("kvm_test_age_rmapp")
        while spte:
            walk.step()
            val = self.check_present(spte, "kvm_test_age_rmapp")
            if val & PT_ACCESSED_MASK:
                return True
            spte = self.rmap_next(rmapp, spte)
        return False

    def kvm_mmu_unlink_parents(self, parent_ptes):
        """kvm_mmu_unlink_parents(): drop every parent pte of a shadow page."""
        walk = self.walk_bound("kvm_mmu_unlink_parents")
        while True:
            walk.step()
            parent = self.rmap_next(parent_ptes, 0)
            if not parent:
                return
            self.drop_parent_pte(parent_ptes, parent)
