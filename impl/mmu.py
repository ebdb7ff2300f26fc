"""The impl shadow MMU: direct pages derive their gfns; rmap walks use the iterator.

Models "KVM: MMU: reduce 50% memory usage" (Lai Jiangshan, 2010, as merged
in 2.6.36 with 3af1817a0d65): a direct shadow page has no gfns[] page;
kvm_mmu_page_get_gfn() derives entry i's gfn as sp->gfn + (i << 9(level-1)),
and kvm_mmu_page_set_gfn() on a direct page only checks the gfn it is given
(a BUG on mismatch).  The rmap walkers are the iterator's (impl/rmap.py), and
shadow faults walk the guest with KVM's FNAME(walk_addr) (impl/walk.py).
Everything else is spec/mmu.py's, shared and checked by the oracle machine
and the auditor.
"""

from spec import gfn as gfn_arith
from spec.consts import ACC_WRITE_MASK, PFERR_FETCH_MASK, PFERR_USER_MASK, PFERR_WRITE_MASK
from spec.errors import KvmBug
from spec.mmu import GuestWalk
from spec.mmu import ShadowMmu as SpecShadowMmu

from .rmap import Rmap
from .walk import MarkPageDirty


def kvm_mmu_page_derived_gfn(sp_gfn, index, level, quadrant):
    """kvm_mmu_page_get_gfn() of a direct page (Lai 2010, as merged in 2.6.36).

    sp->gfn + (index << 9(level - 1)); `quadrant` is unused since 3af1817a0d65
    aligned every direct page's gfn to its own range.
    """
    return gfn_arith.direct_sp_gfn(sp_gfn, index, level)


class ShadowMmu(SpecShadowMmu):
    rmap_class = Rmap
    kvm_mmu_page_derived_gfn = staticmethod(kvm_mmu_page_derived_gfn)

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
        gw.gfn, gw.level, gw.pt_access, gw.pte_access = w.gfn, w.level, w.pt_access, w.pte_access
        return gw

    def guest_pdptr(self, vcpu, i):
        return vcpu.guest.pdptrs[i]
