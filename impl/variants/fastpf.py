"""Variants of the fastpf family: 3.10's fast_page_fault gone wrong.

fast_page_fault() (spec/mmu.py; Xiao Guangrong 2012, in 3.6) gives a direct
MMU's read-only spte its W back without mmu_lock when both software bits say
it may: SPTE_HOST_WRITEABLE (the host page is writable) and
SPTE_MMU_WRITEABLE (only dirty logging write-protected it: write protection
for shadowing, rmap_write_protect(kvm, gfn) with pt_protect, clears it).
It then marks the spte's gfn dirty, kvm_mmu_page_get_gfn(sp, index): for the
impl (Lai 2010) derived from sp->gfn, which is what makes the lockless gfn
stable.  Each variant breaks one of those rules:

- sp-gfn-dirty: fast_pf_fix_direct_spte() marks sp->gfn dirty, the first gfn
  of the direct page, instead of the spte's own: a page written under dirty
  logging is not logged (a TDP VM, a write protected by GET_DIRTY_LOG or by
  enabling the log, at an index > 0 of its level-1 direct page);
- ignores-mmu-writable: the fast path asks only for SPTE_HOST_WRITEABLE: a
  vCPU with paging off gets W back on a gfn another vCPU's page table lives
  in (set_spte made its spte read-only for that, without
  SPTE_MMU_WRITEABLE), and its store reaches the guest page table without
  trapping;
- wp-keeps-mmu-writable: write protection for shadowing passes pt_protect
  false (as dirty logging does): the direct spte of a data page that becomes
  a guest page table keeps SPTE_MMU_WRITEABLE, and the paging-off vCPU's next
  store gets W back through the fast path.

The last two need a direct MMU in a VM that shadows: a vCPU with paging off
(spec.mmu.NONPAGING) of a shadow-paging VM, which mixed mode's vcpu_create
draws; the first runs under TDP too.
"""

from impl.variants import Variant, register
from spec.consts import PT_WRITABLE_MASK, SPTE_HOST_WRITEABLE

# The oracle each is made for: "dirty log" (a write completes to a gfn not marked
# dirty while dirty logging is on), "write protection" (a store reaches a guest page
# table KVM write-protects without trapping; the auditor's write-protect rule sees
# the same spte after the step).
DIRTY_LOG = ("dirty log",)
WRITE_PROTECTION = ("write protection", "auditor: write protect")


def _fix_marks_sp_gfn(self, vcpu, sptep, spte):
    # fast_pf_fix_direct_spte() with gfn = sp->gfn: right only at index 0
    sp = self.page_header(sptep)
    if self.mem.spte_read(sptep) == spte:
        self.mem.spte_write(sptep, spte | PT_WRITABLE_MASK)
        self.mark_page_dirty(sp.gfn)
    return True


def _host_writeable_only(spte):
    # spte_is_locklessly_modifiable() that forgets SPTE_MMU_WRITEABLE
    return bool(spte & SPTE_HOST_WRITEABLE)



register(Variant(
    family="fastpf", name="sp-gfn-dirty", models="plausible",
    summary="fast_pf_fix_direct_spte marks sp->gfn dirty instead of kvm_mmu_page_get_gfn(sp, "
            "index): a write restored by the fast path under dirty logging is not logged",
    replaces={"fast_pf_fix_direct_spte": _fix_marks_sp_gfn},
    caught_by=DIRTY_LOG,
))

register(Variant(
    family="fastpf", name="ignores-mmu-writable", models="plausible",
    summary="fast_page_fault restores W on any host-writable spte, ignoring SPTE_MMU_WRITEABLE: "
            "a paging-off vCPU's store reaches a guest page table KVM write-protects",
    replaces={"spte_is_locklessly_modifiable": _host_writeable_only},
    caught_by=WRITE_PROTECTION,
))

register(Variant(
    family="fastpf", name="wp-keeps-mmu-writable", models="plausible",
    summary="rmap_write_protect(kvm, gfn) for shadowing passes pt_protect false: the direct "
            "spte of a new guest page table keeps SPTE_MMU_WRITEABLE and the fast path makes "
            "it writable again",
    replaces={"shadowing_pt_protect": False},
    caught_by=WRITE_PROTECTION,
))
