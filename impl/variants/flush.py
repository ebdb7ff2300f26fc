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
from spec.consts import KVM_HPAGE_GFN_SHIFT, PT_WRITABLE_MASK, SPTE_MMU_WRITEABLE

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
    if flush and (old ^ new) & ~(PT_WRITABLE_MASK | SPTE_MMU_WRITEABLE) == 0:
        return False  # only W went (and the software bit that goes with it): "no flush needed"
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


# -- the ranged flush of later kernels (kvm_flush_remote_tlbs_with_address) ----------
def _ranged(self, gfn, pages, reason):
    """kvm_flush_remote_tlbs_with_address() with the Hyper-V range hook (5.0 on,
    c3134ce240eed): every vCPU's TLB loses only the entries that map a gfn of
    [gfn, gfn + pages); the model applies the range to every vCPU's TLB."""
    self.tlb_flushes += 1
    for v in self.vcpus.values():
        v.tlb.flush_gfns(gfn, pages)


# 1b2dc7360463 is caught through FNAME(invlpg) of an unsync leaf (the machine's
# pattern retarget_unsync_then_reuse with invlpg): the leaf's spte maps G, the
# range flushed starts at sp->gfn (the guest page table T), so another vCPU's
# TLB entry of G survives; the guest then makes G a page table and
# rmap_write_protect(G) finds no spte left to flush.  On the rmap_recycle path
# alone it is not caught: the faulting leaf re-adds the gfn, so the next
# write protection of it finds an spte and flushes every TLB.
# 3cdf93746f9a stays not must-catch: validate_direct_spte unlinks a child whose
# sptes stay in the rmaps, and the kernel's own record agrees ("no failure had
# been reported").
def _range_from_sp_gfn(self, sp, index, reason):
    # before 1b2dc7360463: the range starts at sp->gfn, the gfn of the shadow page
    # (for an indirect page, the guest page table it shadows), not at the spte's own
    return sp.gfn, 1 << KVM_HPAGE_GFN_SHIFT(sp.role.level)


def _one_page(child):
    # before 3cdf93746f9a: validate_direct_spte flushed (child->gfn, 1)
    return child.gfn, 1


RANGED = {"kvm_flush_remote_tlbs_with_address": _ranged}

register(Variant(
    family="flush", name="ranged-5.x", models="c3134ce240eed + 1b2dc7360463 + 3cdf93746f9a",
    summary="the ranged flush of 5.x-6.x kernels on Hyper-V: after an spte goes, only the TLB "
            "entries of its gfn range are flushed (the range of 6.3, each spte's own gfn)",
    replaces=RANGED, must_catch=False, passes=True,
))

register(Variant(
    family="flush", name="ranged-sp-gfn", models="1b2dc7360463",
    summary="the ranged flush from sp->gfn instead of the spte's own gfn (5.0-6.2): "
            "FNAME(invlpg) of an unsync leaf flushes the guest page table's gfn, and another "
            "vCPU's TLB entry of the page the leaf mapped survives",
    replaces={**RANGED, "spte_flush_range": _range_from_sp_gfn},
    caught_by=CAUGHT_BY,
))

register(Variant(
    family="flush", name="ranged-direct-spte-one-page", models="3cdf93746f9a",
    summary="validate_direct_spte flushes one page instead of the unlinked child's whole range "
            "(5.0-6.2); no failure was reported, and in the 3.10 model it shows none either",
    replaces={**RANGED, "direct_child_flush_range": _one_page},
    must_catch=False, caught_by=CAUGHT_BY,
))
