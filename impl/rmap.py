"""The rmap iterator patch: rmap_get_first() / rmap_get_next().

Models "KVM: MMU: Improve iteration through sptes from rmap" (Takuya
Yoshikawa, 2012, 1e3f42f03c38, Linux 3.5): a `struct rmap_iterator` keeps
{desc, pos} so a walk of n entries costs O(n) slot reads.  A walker that drops
the spte it is looking at has changed the list under the iterator and must
restart with rmap_get_first(); the others step with rmap_get_next().

pte_list_add/remove, drop_spte and the other shared pieces come from
spec.rmap.RmapBase (see the common-mode note there).  The contracts of the
iterator and of each walker (PEP 316, checked by CrossHair with `mmuspec
prove --symbolic`) are in proofs/contracts.py.
"""

from spec.consts import PT_ACCESSED_MASK, PT_PAGE_TABLE_LEVEL
from spec.errors import KvmBug
from spec.pte_list import pte_list_desc_addr, pte_list_is_desc
from spec.rmap import (
    RmapBase, is_large_pte, set_pte_rmapp_spte, spte_write_protect_acts, spte_write_protected,
)


class RmapIterator:
    """struct rmap_iterator: `desc` holds the sptep when not None; `pos` its slot."""

    __slots__ = ("desc", "pos")

    def __init__(self):
        self.desc = None
        self.pos = 0


class Rmap(RmapBase):
    """The walkers written the patch's way."""

    def rmap_get_first(self, rmap, it):
        """First spte of the list whose head word is `rmap` (0 when empty)."""
        mem = self.mem
        mem.reads += 1  # the head word
        if rmap == 0:
            return 0
        if not pte_list_is_desc(rmap):
            it.desc = None
            return rmap
        it.desc = mem.desc(pte_list_desc_addr(rmap))
        it.pos = 0
        return mem.slot(it.desc, it.pos)

    def rmap_get_next(self, it):
        """The spte after the iterator's; 0 at the end."""
        mem = self.mem
        if it.desc is not None:
            if it.pos < self.ext - 1:
                it.pos += 1
                sptep = mem.slot(it.desc, it.pos)
                if sptep:
                    return sptep
            it.desc = mem.desc(it.desc.more) if it.desc.more else None
            if it.desc is not None:
                it.pos = 0
                return mem.slot(it.desc, it.pos)  # slot 0 cannot be NULL
        return 0

    # -- the walkers ------------------------------------------------------
    def after_drop(self, rmapp, it):
        """Where a walk resumes after dropping its current spte: the start.

        The patch's rule ("the iterator is invalid after a drop, restart with
        rmap_get_first"), kept in one method so a variant can break it once.
        """
        return self.rmap_get_first(rmapp.val, it)

    def rmap_write_protect(self, rmapp, level, pt_protect=False):
        """__rmap_write_protect(kvm, rmapp, pt_protect) with spte_write_protect():
        level 1 clears W (and SPTE_MMU_WRITEABLE when `pt_protect`, write
        protection for shadowing); a large spte is dropped."""
        it = RmapIterator()
        write_protected = False
        sptep = self.rmap_get_first(rmapp.val, it)
        walk = self.walk_bound("rmap_write_protect")
        while sptep:
            walk.step()
            val = self.check_present(sptep, "rmap_write_protect")
            if not spte_write_protect_acts(val, pt_protect):
                sptep = self.rmap_get_next(it)
                continue
            if level == PT_PAGE_TABLE_LEVEL:
                write_protected |= self.mmu_spte_update(sptep, spte_write_protected(val, pt_protect))
                sptep = self.rmap_get_next(it)
            else:
                if not is_large_pte(val):
                    raise KvmBug(f"rmap_write_protect: BUG_ON !large spte {sptep:#x}")
                self.drop_spte(sptep)
                sptep = self.after_drop(rmapp, it)
                write_protected = True
        return write_protected

    def kvm_unmap_rmapp(self, rmapp):
        """kvm_unmap_rmapp(): drop every spte; returns need_tlb_flush."""
        it = RmapIterator()
        need_flush = False
        sptep = self.rmap_get_first(rmapp.val, it)
        walk = self.walk_bound("kvm_unmap_rmapp")
        while sptep:
            walk.step()
            self.check_present(sptep, "kvm_unmap_rmapp")
            self.drop_spte(sptep)
            need_flush = True
            sptep = self.after_drop(rmapp, it)
        return need_flush

    def kvm_set_pte_rmapp(self, rmapp, host_writable, new_pfn):
        """kvm_set_pte_rmapp(): writable host pte -> drop all, else repoint."""
        it = RmapIterator()
        need_flush = False
        sptep = self.rmap_get_first(rmapp.val, it)
        walk = self.walk_bound("kvm_set_pte_rmapp")
        while sptep:
            walk.step()
            val = self.check_present(sptep, "kvm_set_pte_rmapp")
            need_flush = True
            if host_writable:
                self.drop_spte(sptep)
                sptep = self.after_drop(rmapp, it)
            else:
                new = set_pte_rmapp_spte(val, new_pfn, self.shadow_accessed_mask)
                self.mmu_spte_clear_track_bits(sptep)
                self.mem.spte_write(sptep, new)
                sptep = self.rmap_get_next(it)
        return need_flush

    def kvm_age_rmapp(self, rmapp):
        """kvm_age_rmapp(): clear A, report young; with no A bit, unmap."""
        if not self.shadow_accessed_mask:
            return self.kvm_unmap_rmapp(rmapp)
        it = RmapIterator()
        young = False
        sptep = self.rmap_get_first(rmapp.val, it)
        walk = self.walk_bound("kvm_age_rmapp")
        while sptep:
            walk.step()
            val = self.check_present(sptep, "kvm_age_rmapp")
            if val & PT_ACCESSED_MASK:
                young = True
                self.mem.spte_write(sptep, val & ~PT_ACCESSED_MASK)
            sptep = self.rmap_get_next(it)
        return young

    def kvm_test_age_rmapp(self, rmapp):
        """kvm_test_age_rmapp(): report young, change nothing."""
        if not self.shadow_accessed_mask:
            return False
        it = RmapIterator()
        sptep = self.rmap_get_first(rmapp.val, it)
        walk = self.walk_bound("kvm_test_age_rmapp")
        while sptep:
            walk.step()
            val = self.check_present(sptep, "kvm_test_age_rmapp")
            if val & PT_ACCESSED_MASK:
                return True
            sptep = self.rmap_get_next(it)
        return False

    def kvm_mmu_unlink_parents(self, parent_ptes):
        """kvm_mmu_unlink_parents(): drop parents until rmap_get_first is empty."""
        it = RmapIterator()
        sptep = self.rmap_get_first(parent_ptes.val, it)
        walk = self.walk_bound("kvm_mmu_unlink_parents")
        while sptep:
            walk.step()
            self.drop_parent_pte(parent_ptes, sptep)
            sptep = self.after_drop(parent_ptes, it)
