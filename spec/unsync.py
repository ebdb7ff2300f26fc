"""Unsync shadow pages, as Linux 3.10 has them (mmu.c, paging_tmpl.h).

A level-1 indirect shadow page whose gfn the guest writes may go *unsync*:
when every valid indirect shadow page of the gfn is level 1,
mmu_need_write_protect() marks them unsync (kvm_unsync_pages) and the
write gets a writable spte, so the guest edits that page table without
trapping.  The shadow page then caches translations the guest may have
changed; KVM resynchronizes it lazily, where the architecture lets the
guest expect a change to show:

- INVLPG: FNAME(invlpg) zaps the leaf of the address in an unsync page and
  re-reads the guest pte (FNAME(update_pte));
- a CR3 load, a root (re)load, or KVM_REQ_MMU_SYNC: mmu_sync_roots() ->
  mmu_sync_children(), which finds the unsync pages below a root through
  the unsync_child_bitmap of their parents (kvm_mmu_mark_parents_unsync
  sets the bits, up to the roots), write-protects their gfns and syncs each;
- kvm_mmu_get_page() meeting an unsync page of the gfn: a transient sync of
  a page it reuses (kvm_sync_page_transient), and kvm_sync_pages() of all of
  them when it creates a page above level 1 for the gfn.

FNAME(sync_page) compares each guest pte with the gfn the page recorded for
that entry (sp->gfns[i], which indirect pages keep in spec and impl alike):
a changed gfn drops the spte, else the rights are refreshed (set_spte with
can_unsync false).  Dropped sptes oblige a remote flush: 3.10 only counted
them in kvm->tlbs_dirty, which left rmap_write_protect() blind to them
(f81602958c11, 5.15); the model flushes, and the 3.10 form is the variant
unsync:tlbs-dirty.

The mixin needs of its class: the MMU of spec/mmu.py (pages, rmaps, spte
memory, flushes, guest pte reads).  `unsync_enabled` False is the
always-write-protect form the model had before (a variant that must pass).
"""

from .consts import (
    ACC_WRITE_MASK, PAGE_SHIFT, PT64_BASE_ADDR_MASK, PT64_LEVEL_BITS, PT64_ENT_PER_PAGE,
    PT_DIRTY_MASK, PT_PAGE_TABLE_LEVEL, SPTE_HOST_WRITEABLE, spte_to_pfn,
)
from .rmap import is_large_pte, is_shadow_present_pte
from .termination import LoopBound


class Unsync:
    """The unsync machinery of a shadow MMU (mixed into spec.mmu.ShadowMmu)."""

    unsync_enabled = True   # False: every indirect page keeps its gfn write-protected

    # -- going unsync -----------------------------------------------------------------
    def mmu_need_write_protect(self, gfn, can_unsync=True):
        """mmu_need_write_protect(): must a writable spte of `gfn` be refused?  Yes
        if a valid indirect page shadows it and unsync is not allowed here, or
        one of them is above level 1; otherwise the level-1 pages go unsync and
        the write is granted."""
        need_unsync = False
        for sp in self.for_each_gfn_indirect_valid_sp(gfn):
            if not can_unsync or not self.unsync_enabled:
                return True
            if sp.role.level != PT_PAGE_TABLE_LEVEL:
                return True
            if not sp.unsync:
                need_unsync = True
        if need_unsync:
            self.kvm_unsync_pages(gfn)
        return False

    def kvm_unsync_pages(self, gfn):
        """kvm_unsync_pages(): every valid indirect page of `gfn` goes unsync."""
        for sp in self.for_each_gfn_indirect_valid_sp(gfn):
            if sp.unsync:
                continue
            self.kvm_unsync_page(sp)

    def kvm_unsync_page(self, sp):
        """__kvm_unsync_page(): mark the page and, up to the roots, its parents."""
        sp.unsync = True
        self.kvm_mmu_mark_parents_unsync(sp)

    def kvm_mmu_mark_parents_unsync(self, sp):
        """kvm_mmu_mark_parents_unsync(): mark_unsync() of every parent pte."""
        for parent_pte in self.rmap.pte_list_decode(sp.parent_ptes.val)[0]:
            self.mark_unsync(parent_pte)

    def mark_unsync(self, sptep):
        """mark_unsync(): set the entry's bit in its page's unsync_child_bitmap; a
        page whose count goes from 0 to 1 marks its own parents."""
        p = self.page_header(sptep)
        index = (sptep - p.spt) // 8
        if index in p.unsync_child_bitmap:
            return
        p.unsync_child_bitmap.add(index)
        p.unsync_children += 1
        if p.unsync_children == 1:
            self.kvm_mmu_mark_parents_unsync(p)

    def kvm_unlink_unsync_page(self, sp):
        """kvm_unlink_unsync_page(): the page is sync again."""
        sp.unsync = False

    # -- finding the unsync pages below a page ------------------------------------------
    def clear_unsync_child_bit(self, p, index):
        if index in p.unsync_child_bitmap:
            p.unsync_child_bitmap.discard(index)
            p.unsync_children -= 1

    def mmu_unsync_walk(self, sp):
        """mmu_unsync_walk(): the unsync pages below `sp`, each with its path
        [(page, index)] from `sp` down to its parent entry; bits that lead to
        nothing unsync any more are cleared on the way (lazily, as 3.10 does)."""
        out, seen = [], set()
        bound = LoopBound("mmu_unsync_walk: entries visited",
                          (len(self.pages) + 1) * PT64_ENT_PER_PAGE)

        def walk(p, path):
            found = 0
            for i in sorted(p.unsync_child_bitmap):
                bound.step()
                spte = self.mem.spte_read(p.sptep(i))
                if not is_shadow_present_pte(spte) or is_large_pte(spte):
                    self.clear_unsync_child_bit(p, i)
                    continue
                child = self.page_header(spte & PT64_BASE_ADDR_MASK)
                if child.unsync_children:
                    n = walk(child, path + [(p, i)])
                    if not n:
                        self.clear_unsync_child_bit(p, i)
                    found += n
                elif child.unsync:
                    found += 1
                    if child.spt not in seen:
                        seen.add(child.spt)
                        out.append((child, path + [(p, i)]))
                else:
                    self.clear_unsync_child_bit(p, i)
            return found

        if sp.unsync_children:
            walk(sp, [])
        return out

    def mmu_pages_clear_parents(self, path):
        """mmu_pages_clear_parents(): clear the leaf's bit in its parent, and go up
        while that page has no unsync child left."""
        for p, i in reversed(path):
            self.clear_unsync_child_bit(p, i)
            if p.unsync_children:
                return

    # -- syncing ----------------------------------------------------------------------
    def mmu_sync_children(self, vcpu, parent):
        """mmu_sync_children(): until no unsync page is left below `parent`:
        write-protect their gfns (a remote flush if anything was), sync each,
        commit the zaps.  (3.10 may drop mmu_lock between rounds; the model,
        with nothing running in between, does the rounds at once.)"""
        rounds = LoopBound("mmu_sync_children: rounds", len(self.pages) + 1)
        while True:
            rounds.step()
            leaves = self.mmu_unsync_walk(parent)
            if not leaves:
                return
            protected = False
            for leaf, _ in leaves:
                protected |= self.rmap_write_protect(leaf.gfn)
            if protected:
                self.kvm_flush_remote_tlbs("mmu_sync_children: rmap_write_protect")
            invalid = []
            for leaf, path in leaves:
                self.kvm_sync_page(vcpu, leaf, invalid)
                self.mmu_pages_clear_parents(path)
            self.kvm_mmu_commit_zap_page(invalid)

    def kvm_mmu_sync_roots(self, vcpu):
        """kvm_mmu_sync_roots() -> mmu_sync_roots(): sync what is unsync below the
        vCPU's roots (nothing for a TDP vCPU)."""
        if vcpu.kind != "shadow":
            return
        roots = [vcpu.root] if vcpu.root is not None else [sp for sp in (vcpu.pae_root or []) if sp]
        for sp in roots:
            if not sp.role.invalid:
                self.mmu_sync_children(vcpu, sp)

    def kvm_sync_page(self, vcpu, sp, invalid_list):
        return self.kvm_sync_page_common(vcpu, sp, invalid_list, True)

    def kvm_sync_page_transient(self, vcpu, sp):
        """kvm_sync_page_transient(): resync a page kvm_mmu_get_page() is about to
        reuse, leaving it unsync; True when it had to be zapped instead."""
        invalid = []
        ret = self.kvm_sync_page_common(vcpu, sp, invalid, False)
        self.kvm_mmu_commit_zap_page(invalid)
        return ret

    def kvm_sync_page_common(self, vcpu, sp, invalid_list, clear_unsync):
        """__kvm_sync_page(): the page is zapped if its pte width is not the
        vCPU's or FNAME(sync_page) leaves nothing present; else the vCPU's TLB
        is flushed.  True when zapped."""
        if sp.role.cr4_pae != int(self.guest_is_pae(vcpu)):
            self.kvm_mmu_prepare_zap_page(sp, invalid_list)
            return True
        if clear_unsync:
            self.kvm_unlink_unsync_page(sp)
        self.sync_flush_owed = False
        if self.sync_page(vcpu, sp):
            self.kvm_mmu_prepare_zap_page(sp, invalid_list)
            return True
        if self.sync_flush_owed:
            self.kvm_flush_remote_tlbs("kvm_sync_page: sptes dropped")
        self.kvm_mmu_flush_tlb(vcpu)
        return False

    def kvm_sync_pages(self, vcpu, gfn):
        """kvm_sync_pages(): a page above level 1 is being created for `gfn`, so
        none of its pages may stay unsync: sync them (with this vCPU's view;
        only the pte width is checked), zap those that cannot be."""
        invalid, flush = [], False
        for sp in self.for_each_gfn_indirect_valid_sp(gfn):
            if not sp.unsync:
                continue
            self.kvm_unlink_unsync_page(sp)
            self.sync_flush_owed = False
            if sp.role.cr4_pae != int(self.guest_is_pae(vcpu)) or self.sync_page(vcpu, sp):
                self.kvm_mmu_prepare_zap_page(sp, invalid)
                continue
            if self.sync_flush_owed:
                self.kvm_flush_remote_tlbs("kvm_sync_pages: sptes dropped")
            flush = True
        self.kvm_mmu_commit_zap_page(invalid)
        if flush:
            self.kvm_mmu_flush_tlb(vcpu)

    def level1_sp_gpa(self, sp):
        """FNAME(get_level1_sp_gpa): where the guest table's entries for `sp` start
        (a 32-bit guest's table is 1024 entries: quadrant q holds 512q..)."""
        base = sp.gfn << PAGE_SHIFT
        if not sp.role.cr4_pae:
            base += (sp.role.quadrant << PT64_LEVEL_BITS) * 4
        return base

    def sync_page(self, vcpu, sp):
        """FNAME(sync_page): for every non-zero entry, read the guest pte; an
        invalid one (not present, reserved bits, A clear) or one that now names
        another gfn than sp->gfns[i] drops the spte; the others get the guest's
        current rights (set_spte, speculative, can_unsync false, the old pfn
        and host-writable bit).  True (zap the page) when nothing present is left."""
        width = 8 if sp.role.cr4_pae else 4
        first = self.level1_sp_gpa(sp)
        present = 0
        for i in range(PT64_ENT_PER_PAGE):
            sptep = sp.sptep(i)
            spte = self.mem.spte_read(sptep)
            if not spte:
                continue
            gpte = vcpu.guest.mem.read(first + i * width, width)
            if self.prefetch_invalid_gpte(vcpu, sp, sptep, gpte):
                self.sync_spte_dropped(sptep)
                continue
            gfn = (gpte & self.gpte_addr_mask(vcpu)) >> PAGE_SHIFT
            pte_access = self.sync_pte_access(vcpu, sp, gpte)
            if self.sync_gfn_changed(sp, i, gfn):
                self.drop_spte(sptep)
                self.sync_spte_dropped(sptep)
                continue
            present += 1
            self.sync_set_spte(sptep, pte_access, gfn, spte_to_pfn(spte), bool(spte & SPTE_HOST_WRITEABLE))
        return present == 0

    def sync_set_spte(self, sptep, pte_access, gfn, pfn, host_writable):
        """sync_page's set_spte(): level 1, speculative, the old pfn and host-writable
        bit, and can_unsync false (36a2e6774bfb: a sync must not unsync)."""
        self.set_spte(sptep, pte_access, PT_PAGE_TABLE_LEVEL, gfn, pfn, True, host_writable,
                      can_unsync=False)

    def sync_pte_access(self, vcpu, sp, gpte):
        """The rights sync_page gives an entry: the page's access AND the guest
        pte's, W only if the guest pte is dirty (protect_clean_gpte)."""
        access = sp.role.access & self.gpte_access(vcpu, gpte)
        return access if gpte & PT_DIRTY_MASK else access & ~ACC_WRITE_MASK

    def sync_gfn_changed(self, sp, index, gfn):
        """`if (gfn != sp->gfns[i])`: the guest pte names another gfn than the one
        recorded when the spte was made (kvm_mmu_page_get_gfn of an indirect page)."""
        return gfn != self.kvm_mmu_page_get_gfn(sp, index)

    def sync_spte_dropped(self, sptep):
        """sync_page dropped an spte: a remote flush is owed (f81602958c11; 3.10
        only counted it in kvm->tlbs_dirty)."""
        self.sync_flush_owed = True

    # -- INVLPG ---------------------------------------------------------------------
    def fname_invlpg(self, vcpu, gva):
        """FNAME(invlpg): down the shadow path of `gva`, only through pages with
        unsync children; at the leaf, if its page is unsync, zap it (a flush if
        it was present) and install the guest pte as it is now (update_pte)."""
        for sp, sptep, level in self.shadow_walk(vcpu, gva):
            spte = self.mem.spte_read(sptep)
            if level == PT_PAGE_TABLE_LEVEL or (is_shadow_present_pte(spte) and is_large_pte(spte)):
                if not sp.unsync:
                    return
                width = 8 if sp.role.cr4_pae else 4
                pte_gpa = self.level1_sp_gpa(sp) + ((sptep - sp.spt) // 8) * width
                if self.mmu_page_zap_pte(sp, sptep):
                    self.kvm_flush_remote_tlbs_sptep(sptep, "FNAME(invlpg)")
                self.update_pte(vcpu, sp, sptep, vcpu.guest.mem.read(pte_gpa, width))
                return
            if not is_shadow_present_pte(spte) or not sp.unsync_children:
                return

    # -- zapping --------------------------------------------------------------------
    def mmu_zap_unsync_children(self, sp, invalid_list):
        """mmu_zap_unsync_children(): a page above level 1 being zapped takes the
        unsync pages below it with it.  Returns how many it queued."""
        zapped = 0
        if sp.role.level == PT_PAGE_TABLE_LEVEL:
            return zapped
        rounds = LoopBound("mmu_zap_unsync_children: rounds", len(self.pages) + 1)
        while True:
            rounds.step()
            leaves = self.mmu_unsync_walk(sp)
            if not leaves:
                return zapped
            for leaf, path in leaves:
                zapped += self.kvm_mmu_prepare_zap_page(leaf, invalid_list)
                self.mmu_pages_clear_parents(path)
