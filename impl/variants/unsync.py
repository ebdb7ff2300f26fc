"""Variants of the unsync family: 3.10's unsync shadow pages (spec/unsync.py), broken.

Each replaces one method of the unsync machinery the impl inherits:

- need-write-protect-ignores-upper: mmu_need_write_protect() unsyncs the
  level-1 pages of a gfn even when a page above level 1 shadows it too (the
  rule 0f38453cdb2e's missing write tracking broke in a later shape): the
  upper-level table becomes writable and the guest edits it behind KVM;
- sync-keeps-changed-gfn: FNAME(sync_page) keeps an spte whose guest pte now
  names another gfn (it skips the `gfn != sp->gfns[i]` test), so the spte
  maps the old page for the new gfn;
- invlpg-no-sync: FNAME(invlpg) does nothing: after the guest's INVLPG the
  unsync leaf still holds the translation the guest just retired;
- cr3-no-sync: kvm_mmu_sync_roots() does nothing: a CR3 load (or a root
  load) leaves unsync pages stale;
- parents-not-marked: kvm_mmu_mark_parents_unsync() does nothing, so no
  unsync_child_bitmap bit leads mmu_sync_children() to the page;
- tlbs-dirty (f81602958c11): 3.10's FNAME(sync_page) only counts a dropped
  spte in kvm->tlbs_dirty, so another vCPU's TLB keeps it and a later
  rmap_write_protect() of its gfn finds nothing to flush;
- sync-with-can-unsync (36a2e6774bfb): sync_page's set_spte may unsync, so
  while one unsync page is synced the gfn of another, about to be synced,
  is made writable again.

And the form the model had before unsync existed: always-protect (every
indirect page keeps its gfn write-protected), sound, must pass.
"""

from impl.variants import Variant, register
from spec.consts import PT_PAGE_TABLE_LEVEL

CAUGHT_BY = ("stale translation", "guest outcome", "guest memory", "write protection",
             "auditor: cache", "auditor: write protect", "auditor: unsync", "auditor: rmap",
             "auditor: host page", "host page", "kernel BUG", "freed shadow page", "dirty log")


def _ignores_upper(self, gfn, can_unsync=True):
    need_unsync = False
    for sp in self.for_each_gfn_indirect_valid_sp(gfn):
        if not can_unsync:
            return True
        if sp.role.level == PT_PAGE_TABLE_LEVEL and not sp.unsync:
            need_unsync = True
    if need_unsync:
        self.kvm_unsync_pages(gfn)
    return False


def _unsync_level1_only(self, gfn):
    # kvm_unsync_pages() of the variant above: only the level-1 pages can be unsync
    for sp in self.for_each_gfn_indirect_valid_sp(gfn):
        if not sp.unsync and sp.role.level == PT_PAGE_TABLE_LEVEL:
            self.kvm_unsync_page(sp)


def _never_changed(self, sp, index, gfn):
    return False


def _nothing(self, *args):
    return None


def _count_tlbs_dirty(self, sptep):
    self.tlbs_dirty += 1  # 3.10: no flush owed, the notifiers look at the count


def _sync_may_unsync(self, sptep, pte_access, gfn, pfn, host_writable):
    # before 36a2e6774bfb: sync_page's set_spte passed can_unsync = true
    self.set_spte(sptep, pte_access, PT_PAGE_TABLE_LEVEL, gfn, pfn, True, host_writable,
                  can_unsync=True)


register(Variant(
    family="unsync", name="need-write-protect-ignores-upper", models="plausible",
    summary="mmu_need_write_protect unsyncs the level-1 pages of a gfn that a page above "
            "level 1 also shadows: the upper table becomes writable",
    replaces={"mmu_need_write_protect": _ignores_upper, "kvm_unsync_pages": _unsync_level1_only},
    caught_by=CAUGHT_BY,
))

register(Variant(
    family="unsync", name="sync-keeps-changed-gfn", models="plausible",
    summary="FNAME(sync_page) keeps an spte whose guest pte now names another gfn",
    replaces={"sync_gfn_changed": _never_changed},
    caught_by=CAUGHT_BY,
))

register(Variant(
    family="unsync", name="invlpg-no-sync", models="plausible",
    summary="INVLPG does not sync the unsync leaf (FNAME(invlpg) does nothing)",
    replaces={"fname_invlpg": _nothing},
    caught_by=CAUGHT_BY,
))

register(Variant(
    family="unsync", name="cr3-no-sync", models="plausible",
    summary="a CR3 load (and a root load) does not sync: kvm_mmu_sync_roots does nothing",
    replaces={"kvm_mmu_sync_roots": _nothing},
    caught_by=CAUGHT_BY,
))

register(Variant(
    family="unsync", name="parents-not-marked", models="plausible",
    summary="kvm_mmu_mark_parents_unsync does nothing: mmu_sync_children never reaches the page",
    replaces={"kvm_mmu_mark_parents_unsync": _nothing},
    caught_by=CAUGHT_BY,
))

register(Variant(
    family="unsync", name="tlbs-dirty", models="f81602958c11",
    summary="3.10's FNAME(sync_page): a dropped spte is only counted in kvm->tlbs_dirty, so "
            "another vCPU's TLB keeps it and rmap_write_protect later finds nothing to flush",
    replaces={"sync_spte_dropped": _count_tlbs_dirty},
    caught_by=CAUGHT_BY,
))

register(Variant(
    family="unsync", name="sync-with-can-unsync", models="36a2e6774bfb",
    summary="FNAME(sync_page)'s set_spte may unsync: syncing one unsync page makes the gfn "
            "of another, about to be synced, writable again",
    replaces={"sync_set_spte": _sync_may_unsync},
    # Syncing one page may unsync another that mmu_sync_children then finds again:
    # its loop, bounded only by the state, can go round without end ("livelock").
    caught_by=CAUGHT_BY + ("livelock",),
))

register(Variant(
    family="unsync", name="always-protect", models="the model before unsync (3.10 without it)",
    summary="no page ever goes unsync: every indirect page keeps its gfn write-protected",
    replaces={"unsync_enabled": False}, must_catch=False, passes=True,
))
