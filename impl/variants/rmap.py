"""Variants of the rmap family (the rmap iterator patch, 1e3f42f03c38)."""

from impl.variants import Variant, register


def _get_next_after_drop(self, rmapp, it):
    # Keeps walking from the dropped entry's position: the entry moved into
    # the hole is skipped, and a freed desc is read after free.
    return self.rmap_get_next(it)


def _rmap_get_next_stops_early(self, it):
    # `pos < PTE_LIST_EXT - 2`: the last slot of every desc is never visited.
    mem = self.mem
    if it.desc is not None:
        if it.pos < self.ext - 2:
            it.pos += 1
            sptep = mem.slot(it.desc, it.pos)
            if sptep:
                return sptep
        it.desc = mem.desc(it.desc.more) if it.desc.more else None
        if it.desc is not None:
            it.pos = 0
            return mem.slot(it.desc, it.pos)
    return 0


def _desc_remove_slot_leaves_hole(slots, i):
    # Clears slot i without moving the last entry into it.
    return tuple(0 if p == i else s for p, s in enumerate(slots))


register(Variant(
    family="rmap", name="next-after-drop", models="plausible",
    summary="walkers continue with rmap_get_next after drop_spte instead of restarting "
            "with rmap_get_first",
    replaces={"after_drop": _get_next_after_drop},
    caught_by=("spte memory", "abstract rmap model", "use-after-free"),
))

register(Variant(
    family="rmap", name="ext-off-by-one", models="plausible",
    summary="rmap_get_next tests pos < PTE_LIST_EXT - 2 and skips the last slot of a desc",
    replaces={"rmap_get_next": _rmap_get_next_stops_early},
    caught_by=("walker return", "spte memory"),
))

register(Variant(
    family="rmap", name="remove-leaves-hole", models="plausible",
    summary="pte_list_desc_remove_entry clears the slot without filling it from the "
            "desc's last entry",
    replaces={"desc_remove_slot": _desc_remove_slot_leaves_hole},
    caught_by=("pte_list structure", "rmap contents", "proof pte_list.remove_entry_packs"),
))


def _age_young_is_last(self, rmapp):
    # `young = _young` instead of `if (_young) young = 1`: reports the last
    # spte's A bit, not whether any was young.
    from impl.rmap import RmapIterator
    from spec.consts import PT_ACCESSED_MASK

    if not self.shadow_accessed_mask:
        return self.kvm_unmap_rmapp(rmapp)
    it = RmapIterator()
    young = False
    sptep = self.rmap_get_first(rmapp.val, it)
    while sptep:
        val = self.check_present(sptep, "kvm_age_rmapp")
        young = bool(val & PT_ACCESSED_MASK)
        if young:
            self.mem.spte_write(sptep, val & ~PT_ACCESSED_MASK)
        sptep = self.rmap_get_next(it)
    return young


def _set_pte_rmapp_without_track(self, rmapp, host_writable, new_pfn):
    # kvm_set_pte_rmapp rewriting a read-only mapping without
    # mmu_spte_clear_track_bits: the old pfn's accessed/dirty state is lost.
    from impl.rmap import RmapIterator
    from spec.rmap import set_pte_rmapp_spte

    it = RmapIterator()
    need_flush = False
    sptep = self.rmap_get_first(rmapp.val, it)
    while sptep:
        val = self.check_present(sptep, "kvm_set_pte_rmapp")
        need_flush = True
        if host_writable:
            self.drop_spte(sptep)
            sptep = self.after_drop(rmapp, it)
        else:
            self.mem.spte_write(sptep, set_pte_rmapp_spte(val, new_pfn, self.shadow_accessed_mask))
            sptep = self.rmap_get_next(it)
    return need_flush


def _free_nothing(self, desc):
    # mmu_free_pte_list_desc forgotten: the unlinked desc leaks.
    return None


register(Variant(
    family="rmap", name="age-young-is-last", models="plausible",
    summary="kvm_age_rmapp assigns young from each spte instead of OR-ing: reports the last one",
    replaces={"kvm_age_rmapp": _age_young_is_last},
    caught_by=("walker return",),
))

register(Variant(
    family="rmap", name="set-pte-no-track", models="plausible",
    summary="kvm_set_pte_rmapp overwrites the spte without mmu_spte_clear_track_bits "
            "(A/D of the old pfn lost)",
    replaces={"kvm_set_pte_rmapp": _set_pte_rmapp_without_track},
    caught_by=("host A/D tracking",),
))

register(Variant(
    family="rmap", name="leak-empty-desc", models="plausible",
    summary="pte_list_desc_remove_entry unlinks an emptied desc without freeing it",
    replaces={"mmu_free_pte_list_desc": _free_nothing},
    caught_by=("pte_list structure",),
))
