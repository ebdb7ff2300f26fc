"""Variants of the flush family: TLB flushes missing where 3.10 makes them.

Every flush the model makes is a call of kvm_flush_remote_tlbs(reason) with
the kernel function that flushes as its reason (spec/mmu.py), or a decision
that feeds one (mmu_spte_update()'s return, need_remote_flush()).  Each
variant cuts one of them:

- get-dirty-log-no-flush: KVM_GET_DIRTY_LOG write-protects the pages it
  reports but does not flush: a vCPU keeps writing through its writable TLB
  entry and the page is never logged (the race 6dbf79e7164e closed had the
  same effect: the flush came after mmu_lock was released);
- zap-commit-no-flush: kvm_mmu_commit_zap_page() frees the zapped pages
  without the flush before the free: another vCPU's TLB still walks them;
- pte-write-ignores-need-remote-flush: kvm_mmu_pte_write() flushes only the
  writing vCPU: another vCPU keeps the old translation of the gfn, which
  KVM may later shadow as a page table without flushing (rmap_write_protect
  finds no spte of it), and writes the table behind KVM's back;
- notifier-unmap-no-flush: the MMU notifier drops the sptes of an
  invalidated range but does not flush: a TLB still reaches the page the
  host freed;
- spte-update-w-only-no-flush: mmu_spte_update() does not ask for a flush
  when W is the only right it takes away (the rule of 3.10 itself, dropped):
  rmap_write_protect() of a gfn KVM starts shadowing returns false and
  kvm_mmu_get_page() skips its flush.
"""

from impl.variants import Variant, register
from spec.mmu import ShadowMmu as SpecShadowMmu
from spec.rmap import RmapBase
from spec.consts import PT_WRITABLE_MASK

CAUGHT_BY = ("dirty log", "write protection", "freed shadow page", "host page", "stale translation",
             "guest outcome", "guest memory", "auditor: write protect", "auditor: cache")


def skipping(*reasons):
    """kvm_flush_remote_tlbs() that does nothing when called for one of `reasons`."""
    def kvm_flush_remote_tlbs(self, reason):
        if reason in reasons:
            return
        SpecShadowMmu.kvm_flush_remote_tlbs(self, reason)
    return kvm_flush_remote_tlbs


def _never_remote(old, new):
    return False


def _update_without_w_flush(self, sptep, new):
    old = self.mem.spte_read(sptep)
    flush = RmapBase.mmu_spte_update(self.rmap, sptep, new)
    if flush and (old ^ new) & ~PT_WRITABLE_MASK == 0:
        return False  # only W went: "no flush needed"
    return flush


register(Variant(
    family="flush", name="get-dirty-log-no-flush", models="plausible",
    summary="KVM_GET_DIRTY_LOG write-protects what it reports without flushing: a writable TLB "
            "entry keeps writing and the page is not logged again",
    replaces={"kvm_flush_remote_tlbs": skipping("kvm_vm_ioctl_get_dirty_log")},
    caught_by=CAUGHT_BY,
))

register(Variant(
    family="flush", name="zap-commit-no-flush", models="plausible",
    summary="kvm_mmu_commit_zap_page frees the zapped shadow pages without flushing first: "
            "another vCPU's TLB still walks a freed page",
    replaces={"kvm_flush_remote_tlbs": skipping("kvm_mmu_commit_zap_page")},
    caught_by=CAUGHT_BY,
))

register(Variant(
    family="flush", name="pte-write-ignores-need-remote-flush", models="plausible",
    summary="kvm_mmu_pte_write flushes only the writing vCPU: another vCPU keeps the old "
            "translation, and a later shadowing of that gfn finds nothing to flush",
    replaces={"need_remote_flush": _never_remote},
    caught_by=CAUGHT_BY,
))

register(Variant(
    family="flush", name="notifier-unmap-no-flush", models="plausible",
    summary="the invalidate_range_start notifier drops the sptes but does not flush: a TLB "
            "reaches the page the host freed",
    replaces={"kvm_flush_remote_tlbs": skipping("kvm_mmu_notifier_invalidate_range_start")},
    caught_by=CAUGHT_BY,
))

register(Variant(
    family="flush", name="spte-update-w-only-no-flush", models="plausible",
    summary="mmu_spte_update asks for no flush when W is the only right it takes away: a gfn "
            "KVM starts shadowing stays writable in a TLB",
    replaces={"mmu_spte_update": _update_without_w_flush},
    caught_by=CAUGHT_BY,
))
