"""The impl shadow MMU: direct pages derive their gfns; rmap walks use the iterator.

Models "KVM: MMU: reduce 50% memory usage" (Lai Jiangshan, 2010, as merged
in 2.6.36 with 3af1817a0d65): a direct shadow page has no gfns[] page;
kvm_mmu_page_get_gfn() derives entry i's gfn as sp->gfn + (i << 9(level-1)),
and kvm_mmu_page_set_gfn() on a direct page only checks the gfn it is given
(a BUG on mismatch).  The rmap walkers are the iterator's (impl/rmap.py), and
shadow faults walk the guest with KVM's FNAME(walk_addr) (impl/walk.py), and
zapping all pages (memslot delete and move) bumps 3.11's generation number
instead of walking (impl/zap.py).  Everything else is spec/mmu.py's, shared
and checked by the oracle machine and the auditor.

3.10's fast_page_fault (spec/mmu.py) is shared too, but the gfn its
fast_pf_fix_direct_spte() marks dirty comes from kvm_mmu_page_get_gfn(sp,
index): the spec reads the stored gfns[], this class derives it (above),
the derivation that lets the fast path trust a direct page's gfn without
mmu_lock.  The fastpf family (diff/fastpf.py) checks it under TDP and for
vCPUs with paging off.

Prefetch ("KVM: MMU: prefetch ptes when intercepted guest #PF", Xiao
Guangrong, 2010; facts section 6), which the spec does not have: after a
fault installs a level-1 leaf, the other non-present entries of the aligned
window of PTE_PREFETCH_NUM entries around it are mapped speculatively (A
clear, host-writable).  Direct pages (TDP's __direct_map, and shadow
paging's direct pages) map runs of empty entries at sp->gfn + index, as
__direct_pte_prefetch() does once c6cecc4b9324 (2021) added the flush of a
run that reaches the end of the window; indirect pages read the guest pte of
each slot (FNAME(pte_prefetch)).  What it must install is spec/prefetch.py's;
diff/mmu.py checks it after every fault ("prefetch completeness").

The indirect loop is the 2010 form: a guest pte that is not present or has
A clear is skipped (PREFETCH_INVALID_GPTE_RULE = INVALID_GPTE_SKIP, which
the completeness oracle reads).  3.8 on (bd6360cc0a54) stop there instead:
the variant prefetch:stop-at-invalid-gpte-3.8 (impl/variants/prefetch.py).
"""

from spec import gfn as gfn_arith
from spec.consts import (
    ACC_WRITE_MASK, PAGE_SHIFT, PFERR_FETCH_MASK, PFERR_USER_MASK, PFERR_WRITE_MASK,
    PT_ACCESSED_MASK, PT_DIRTY_MASK, PT_PRESENT_MASK, PT_PAGE_TABLE_LEVEL, PT64_LEVEL_BITS, PTE_PREFETCH_NUM,
)
from spec.errors import KvmBug
from spec.rmap import is_shadow_present_pte
from spec.mmu import GuestWalk
from spec.mmu import ShadowMmu as SpecShadowMmu
from spec.prefetch import INVALID_GPTE_SKIP

from .rmap import Rmap
from .walk import MarkPageDirty
from .zap import GenerationZap


def kvm_mmu_page_derived_gfn(sp_gfn, index, level, quadrant):
    """kvm_mmu_page_get_gfn() of a direct page (Lai 2010, as merged in 2.6.36).

    sp->gfn + (index << 9(level - 1)); `quadrant` is unused since 3af1817a0d65
    aligned every direct page's gfn to its own range.
    """
    return gfn_arith.direct_sp_gfn(sp_gfn, index, level)


def pte_prefetch_window(index):
    """(first, end) of the prefetch window around entry `index`, `end` exclusive:
    the PTE_PREFETCH_NUM-aligned block holding it (`i = index & ~(PTE_PREFETCH_NUM - 1)`).
    Written with & and + only, so proofs/prefetch.py evaluates it on z3 bit-vectors."""
    first = index & ~(PTE_PREFETCH_NUM - 1)
    return first, first + PTE_PREFETCH_NUM


def direct_prefetch_run_gfn(first_gfn, k):
    """The gfn of the k-th entry of a prefetched run: direct_pte_prefetch_many() takes
    kvm_mmu_page_get_gfn() of the run's first entry and counts gfn++ from there
    (so sp->gfn + (spte - sp->spt) at level 1; proofs/prefetch.py)."""
    return first_gfn + k


class ShadowMmu(GenerationZap, SpecShadowMmu):
    rmap_class = Rmap
    kvm_mmu_page_derived_gfn = staticmethod(kvm_mmu_page_derived_gfn)
    pte_prefetch_window = staticmethod(pte_prefetch_window)
    direct_prefetch_run_gfn = staticmethod(direct_prefetch_run_gfn)
    # shadow_accessed_mask: 0 models EPT without A/D bits, where TDP never prefetches
    # (the model's host always has them; spec/prefetch.py takes the same parameter).
    shadow_accessed_mask = PT_ACCESSED_MASK
    # What FNAME(pte_prefetch) does at a not-present or A-clear guest pte, read by
    # spec/prefetch.py's expected_prefetch: the 2010 form skips it.
    PREFETCH_INVALID_GPTE_RULE = INVALID_GPTE_SKIP

    def sp_stores_gfns(self, direct):
        """Only indirect pages keep gfns[]: the patch's 4K saved per direct page."""
        return not direct

    def kvm_mmu_page_get_gfn(self, sp, index):
        if not sp.role.direct:
            return sp.gfns[index]
        return self.kvm_mmu_page_derived_gfn(sp.gfn, index, sp.role.level, sp.role.quadrant)

    def kvm_mmu_page_set_gfn(self, sp, index, gfn):
        if sp.role.direct:
            derived = self.kvm_mmu_page_get_gfn(sp, index)
            if gfn != derived:
                raise KvmBug(f"kvm_mmu_page_set_gfn: BUG_ON(gfn {gfn:#x} != derived {derived:#x}) "
                             f"in {sp} at index {index}")
        else:
            sp.gfns[index] = gfn

    def guest_walk(self, vcpu, addr, write, user, fetch):
        """FNAME(walk_addr) (impl/walk.py), read into the fields fetch needs."""
        access = (PFERR_WRITE_MASK if write else 0) | (PFERR_USER_MASK if user else 0) | \
                 (PFERR_FETCH_MASK if fetch else 0)
        w = vcpu.guest.walk_addr(addr, access)
        for e in w.events:
            if isinstance(e, MarkPageDirty):
                self.mark_page_dirty(e.gfn)
        gw = GuestWalk()
        if w.fault is not None:
            gw.fault = w.fault
            return gw
        for lvl in range(w.level, w.max_level + 1):
            gw.table_gfn[lvl] = w.table_gfn[lvl - 1]
            gw.ptes[lvl] = w.ptes[lvl - 1]
            if lvl > w.level:
                gw.pt_access_at[lvl] = w.pt_access_at[lvl - 1]
        gw.gfn, gw.level, gw.pt_access, gw.pte_access = w.gfn, w.level, w.pt_access, w.pte_access
        return gw

    def guest_pdptr(self, vcpu, i):
        return vcpu.guest.pdptrs[i]

    # -- prefetch (Xiao 2010) -------------------------------------------------------
    def direct_pte_prefetch(self, vcpu, sptep):
        """direct_pte_prefetch(): after __direct_map's leaf; level 1 only, never without A bits."""
        if not self.shadow_accessed_mask:
            return
        sp = self.page_header(sptep)
        if sp.role.level > PT_PAGE_TABLE_LEVEL:
            return
        self.direct_pte_prefetch_runs(vcpu, sp, sptep)

    def direct_pte_prefetch_runs(self, vcpu, sp, sptep):
        """__direct_pte_prefetch(): map each run of non-present entries of the window
        (the faulting entry and present ones end a run); the first run that cannot be
        mapped stops it.  A run reaching the end of the window is flushed after the
        loop (c6cecc4b9324)."""
        first, end, flush_tail = self.direct_prefetch_loop((sptep - sp.spt) // 8)
        start = None
        for i in range(first, end):
            spte = sp.sptep(i)
            if spte == sptep or is_shadow_present_pte(self.mem.spte_read(spte)):
                if start is None:
                    continue
                if self.direct_pte_prefetch_many(vcpu, sp, start, spte) < 0:
                    return
                start = None
            elif start is None:
                start = spte
        if start is not None and flush_tail:
            self.direct_pte_prefetch_many(vcpu, sp, start, sp.sptep(end))

    def direct_prefetch_loop(self, index):
        """The shape of __direct_pte_prefetch's loop: (first, end, flush_tail).

        The slots it visits (the aligned window) and whether a run still open
        at the end is mapped (the flush c6cecc4b9324 added).  The posted and
        2.6.36 forms differ from the merged one only here."""
        first, end = self.pte_prefetch_window(index)
        return first, end, True

    def direct_pte_prefetch_many(self, vcpu, sp, start, end):
        """direct_pte_prefetch_many(): entries start..end-1 (addresses), 0 or -1 to stop."""
        access = sp.role.access
        gfn = self.kvm_mmu_page_get_gfn(sp, (start - sp.spt) // 8)
        slot = self.gfn_to_memslot_dirty_bitmap(gfn, access & ACC_WRITE_MASK)
        if slot is None:
            return -1
        pfns = self.gfn_to_pfn_many_atomic(slot, gfn, (end - start) // 8)
        if not pfns:
            return -1
        for k, pfn in enumerate(pfns):
            self.prefetch_set_spte(start + 8 * k, access, self.direct_prefetch_run_gfn(gfn, k), pfn)
        return 0

    def gfn_to_memslot_dirty_bitmap(self, gfn, no_dirty_log):
        """The slot of `gfn`, or None if it has none, is KVM_MEMSLOT_INVALID, or
        logs dirty pages and a writable mapping is asked for."""
        slot = self.host.gfn_to_memslot(gfn)
        if slot is None or slot.invalid or (no_dirty_log and slot.dirty_log):
            return None
        return slot

    def gfn_to_pfn_many_atomic(self, slot, gfn, n):
        """gfn_to_page_many_atomic(): [] for a read-only slot (its hva is an error for
        a write) or a run past the slot's end; else the leading host-writable pages
        (__get_user_pages_fast with write=1 stops at the first page it cannot write)."""
        if slot.readonly or slot.base_gfn + slot.npages - gfn < n:
            return []
        out = []
        for g in range(gfn, gfn + n):
            pfn = slot.pfns[g - slot.base_gfn]
            if not self.host.pfn_writable[pfn]:
                break
            out.append(pfn)
        return out

    def pte_prefetch_gfn_to_pfn(self, gfn, no_dirty_log):
        """pte_prefetch_gfn_to_pfn(): the atomic, write-intent lookup; None on error."""
        slot = self.gfn_to_memslot_dirty_bitmap(gfn, no_dirty_log)
        if slot is None or slot.readonly:
            return None
        pfn = slot.pfns[gfn - slot.base_gfn]
        return pfn if self.host.pfn_writable[pfn] else None

    def prefetch_set_spte(self, sptep, pte_access, gfn, pfn):
        """mmu_set_spte() for a prefetched entry: no write fault, level 1, speculative
        (A clear), host-writable (the pfn was looked up for write)."""
        self.mmu_set_spte(sptep, pte_access, False, PT_PAGE_TABLE_LEVEL, gfn, pfn, True, True)

    def pte_prefetch(self, vcpu, gw, sptep):
        """FNAME(pte_prefetch): direct pages as above; an indirect page maps each
        non-present entry of the window from its guest pte."""
        sp = self.page_header(sptep)
        if sp.role.level > PT_PAGE_TABLE_LEVEL:
            return
        if sp.role.direct:
            self.direct_pte_prefetch_runs(vcpu, sp, sptep)
            return
        first, end = self.pte_prefetch_window((sptep - sp.spt) // 8)
        gptes = self.prefetch_ptes(vcpu, sp, first, end)
        for i in range(first, end):
            spte = sp.sptep(i)
            if spte == sptep or is_shadow_present_pte(self.mem.spte_read(spte)):
                continue
            if not self.prefetch_gpte(vcpu, sp, spte, gptes[i - first]):
                break

    def prefetch_ptes(self, vcpu, sp, first, end):
        """gw->prefetch_ptes: the guest ptes of the window's slots.  A 32-bit guest's
        level-1 table has 1024 entries; the shadow page of quadrant q holds 512q..."""
        width = 8 if self.guest_is_pae(vcpu) else 4
        base = 0 if self.guest_is_pae(vcpu) else sp.role.quadrant << PT64_LEVEL_BITS
        table = sp.gfn << PAGE_SHIFT
        return [vcpu.guest.mem.read(table + width * (base + i), width) for i in range(first, end)]

    def gpte_reserved(self, vcpu, gpte):
        """is_rsvd_bits_set() of a level-1 guest pte."""
        from spec.walk import PAGING_32, PAGING_64, PAGING_PAE, reserved_mask

        g = vcpu.guest
        mode = PAGING_64 if g.efer_lma else PAGING_PAE if g.cr4_pae else PAGING_32
        return bool(gpte & reserved_mask(mode, 1, gpte, g.cr4_pse, g.efer_nx, g.maxphyaddr))

    def prefetch_gpte(self, vcpu, sp, spte, gpte):
        """FNAME(prefetch_gpte): False stops the window.  As the 2010 patch
        merged it (facts section 6): a guest pte with reserved bits stops the
        window (`break`); one that is not present or has A clear is skipped
        (`continue`); a gfn with no writable host page stops.  (From 3.8 on,
        bd6360cc0a54, an invalid gpte stops too: prefetch:stop-at-invalid-gpte-3.8.)"""
        if self.gpte_reserved(vcpu, gpte):
            return False
        if not gpte & PT_PRESENT_MASK or not gpte & PT_ACCESSED_MASK:
            return True
        gfn = (gpte & self.gpte_addr_mask(vcpu)) >> PAGE_SHIFT
        pte_access = sp.role.access & self.gpte_access(vcpu, gpte)
        if not gpte & PT_DIRTY_MASK:
            pte_access &= ~ACC_WRITE_MASK  # protect_clean_gpte()
        pfn = self.pte_prefetch_gfn_to_pfn(gfn, pte_access & ACC_WRITE_MASK)
        if pfn is None:
            return False
        self.prefetch_set_spte(spte, pte_access, gfn, pfn)
        return True
