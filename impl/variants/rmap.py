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
