"""The shadow MMU of a VM, as mmu.c and paging_tmpl.h of Linux 3.10 have it.

The spec form: every shadow page stores `gfns[]` (direct pages too, as
before Lai 2010), every rmap walk is written on rmap_next() (spec.rmap), and
zapping all pages walks the active list.  impl/mmu.py changes exactly those
choices (derived gfns, the rmap iterator); everything else here is shared,
so it is checked by the architectural oracle and the auditor
(spec/mmu_audit.py), not by the spec/impl comparison.

Modelled: memslots and host pages (spec/kvm_host.py); vCPUs under TDP or
shadow paging of 32-bit, PAE and 64-bit guests; `struct kvm_mmu_page` with
its role (level, cr4_pae, quadrant, direct, access, invalid, nxe, cr0_wp),
spt[512], gfns[], parent_ptes, root_count, the hash by gfn and the active
list; kvm_mmu_get_page() with role matching and the quadrant rule,
link_shadow_page(), mmu_set_spte()/set_spte(), rmap_add()/rmap_remove(),
kvm_mmu_prepare_zap_page()/kvm_mmu_commit_zap_page(), roots
(mmu_alloc_direct_roots, mmu_alloc_shadow_roots with the four PAE roots,
mmu_free_roots), account_shadowed()/unaccount_shadowed() and
has_wrprotected_page(), mapping_level(), tdp_page_fault() with
__direct_map(), FNAME(page_fault) with FNAME(fetch), and kvm_mmu_pte_write()
with get_written_sptes() and FNAME(update_pte) for emulated guest stores.
Direct MMUs take 3.10's fast_page_fault() first: TDP vCPUs, and vCPUs of a
shadow-paging VM running with paging off (NONPAGING: nonpaging_page_fault()
and nonpaging_map() on four direct level-2 roots, gva == gpa), which share
the VM's rmaps, so write protection for shadowing (pt_protect: it clears
SPTE_MMU_WRITEABLE) reaches their sptes.

Not modelled (stated so no result is read as covering them): unsync shadow
pages (every indirect page stays write-protected), write flooding and
misaligned-write detection, MMIO sptes, rmap recycling, async page faults,
guest INVLPG (a no-op without unsync pages), TDP faults on the guest's own
page-table reads (the TDP vCPU's guest walk is done by the architectural
walker; its A/D writes are touched through the TDP map as writes).
"""

from collections import namedtuple

from . import gfn as gfn_arith
from .consts import (
    ACC_ALL, ACC_EXEC_MASK, ACC_USER_MASK, ACC_WRITE_MASK, KVM_NUM_MMU_PAGES, PAGE_SHIFT,
    PFERR_FETCH_MASK, PFERR_PRESENT_MASK, PFERR_USER_MASK, PFERR_WRITE_MASK, PT32_ROOT_LEVEL,
    PT32E_ROOT_LEVEL, PT64_BASE_ADDR_MASK, PT64_INDEX, PT64_NX_MASK, PT64_ROOT_LEVEL,
    PT_ACCESSED_MASK, PT_DIRECTORY_LEVEL, PT_DIRTY_MASK, PT_PAGE_SIZE_MASK, PT_PAGE_TABLE_LEVEL,
    PT_PRESENT_MASK, PT_USER_MASK, PT_WRITABLE_MASK, PT64_ENT_PER_PAGE, KVM_HPAGE_GFN_SHIFT,
    PT64_PERM_MASK, RMAP_RECYCLE_THRESHOLD,
    SPTE_HOST_WRITEABLE, SPTE_MMU_WRITEABLE, spte_to_pfn,
)
from .errors import HostDemand, KvmBug, Livelock, WrongHostPage
from .gfn import gfn_to_index
from .kvm_host import KVM_NR_PAGE_SIZES, KvmHost, KvmMemorySlot
from .list_head import ListHead
from .memory import SHADOW_PT_BASE, KernelMemory, RmapHead
from .rmap import (
    RmapBase, SpecRmap, is_large_pte, is_shadow_present_pte, is_writable_pte,
    spte_is_locklessly_modifiable,
)
from .termination import LoopBound
from .tlb import TLB_CAPACITY, Tlb, TlbEntry
from .unsync import Unsync
from .written_sptes import written_spte_slots

KvmMmuPageRole = namedtuple(
    "KvmMmuPageRole", "level cr4_pae quadrant direct access invalid nxe cr0_wp")

# Access outcomes, as the guest sees them.
OK, PAGE_FAULT, MMIO = "ok", "#PF", "mmio"
MAX_FAULT_RETRIES = 8
TDP, SHADOW = "tdp", "shadow"
NONPAGING = "nonpaging"   # CR0.PG=0 under shadow paging: a direct map (nonpaging_init_context)


class KvmMmuPage:
    """struct kvm_mmu_page."""

    __slots__ = ("gfn", "role", "spt", "gfns", "parent_ptes", "root_count", "unsync",
                 "unsync_children", "unsync_child_bitmap", "mmu_valid_gen", "write_flooding_count",
                 "serial", "epoch")

    def __init__(self, spt, gfns, serial):
        self.gfn = 0
        self.role = None
        self.spt = spt          # address of spt[0] in the spte memory
        self.gfns = gfns        # list of 512 gfns, or None (derived)
        self.parent_ptes = RmapHead()
        self.root_count = 0
        self.unsync = False
        self.unsync_children = 0         # set bits of unsync_child_bitmap
        self.unsync_child_bitmap = set()  # indices whose entry leads to an unsync page
        self.mmu_valid_gen = 0
        self.write_flooding_count = 0  # emulated writes since a fault last walked through it
        self.serial = serial    # creation order, to pair spec and impl pages
        self.epoch = 0          # zaps begun before its creation (oracle ground truth, not kernel state)

    def sptep(self, index):
        return self.spt + 8 * index

    def __repr__(self):
        r = self.role
        return (f"sp(gfn {self.gfn:#x} level {r.level}{' direct' if r.direct else ''}"
                f"{' q%d' % r.quadrant if r.quadrant else ''} access {r.access}"
                f"{' invalid' if r.invalid else ''})")


def guest_mov_to_cr3(guest, cr3):
    """MOV to CR3 on the guest's paging state: spec.walk.ArchCpu, or the impl's
    KvmVcpu (duck-typed: spec/ does not import impl/).  False for a #GP."""
    if hasattr(guest, "kvm_set_cr3"):
        return guest.kvm_set_cr3(cr3) == 0
    return guest.mov_to_cr3(cr3) is None


def guest_set_paging_mode(guest, mode):
    """Switch the guest's paging mode ("32", "pae", "64"); False for a #GP."""
    if hasattr(guest, "kvm_set_cr3"):
        return guest.set_paging_mode(mode) == 0
    return guest.set_paging_mode(mode) is None


def guest_set_control(guest, reg, value):
    """Set CR0.WP, EFER.NX or CR4.PSE on the guest's paging state; False for a #GP."""
    if hasattr(guest, "kvm_set_cr3"):
        fn = {"cr0.wp": guest.kvm_set_cr0_wp, "efer.nx": guest.kvm_set_efer_nx,
              "cr4.pse": guest.kvm_set_cr4_pse}[reg]
        return fn(value) == 0
    return guest.set_control(reg, value) is None


class GuestWalk:
    """What the shadow MMU needs of a guest walk (struct guest_walker's fields)."""

    __slots__ = ("fault", "gfn", "level", "table_gfn", "ptes", "pt_access", "pt_access_at",
                 "pte_access")

    def __init__(self):
        self.fault = None
        self.gfn = self.level = self.pt_access = self.pte_access = None
        self.table_gfn = {}  # level -> gfn of the guest table holding that level's entry
        self.ptes = {}       # level -> guest pte value
        # level -> the rights of the entries from the root down to this level's
        # (b1bd5cba3306's walker->pt_access[level - 1]): the access the shadow
        # page of the table that entry points at is made with
        self.pt_access_at = {}


class Vcpu:
    """One vCPU: its guest paging state (`guest`), its MMU roots and its CPU's TLB."""

    def __init__(self, vcpu_id, kind, guest, tlb_capacity=TLB_CAPACITY):
        self.id = vcpu_id
        self.kind = kind          # TDP, SHADOW or NONPAGING
        self.guest = guest        # spec: ArchCpu; impl: KvmVcpu
        self.root = None          # the root kvm_mmu_page (64-bit shadow or TDP)
        self.pae_root = None      # [sp or None] * 4 for 32-bit and PAE guests
        self.reload = False       # KVM_REQ_MMU_RELOAD pending
        self.mmu_sync_request = False  # KVM_REQ_MMU_SYNC pending
        self.tlb = Tlb(tlb_capacity)  # spec/tlb.py


class ShadowMmu(Unsync):
    """The spec VM's MMU: kvm->arch plus the vCPUs' struct kvm_mmu."""

    rmap_class = SpecRmap
    # gfn arithmetic, as static methods a variant may replace (spec/gfn.py)
    direct_map_child_gfn = staticmethod(gfn_arith.direct_map_child_gfn)
    fetch_direct_gfn = staticmethod(gfn_arith.fetch_direct_gfn)
    role_quadrant = staticmethod(gfn_arith.role_quadrant)
    # fast_page_fault's test of the two software bits (spec/rmap.py), a seam for variants
    spte_is_locklessly_modifiable = staticmethod(spte_is_locklessly_modifiable)

    def __init__(self, host=None, pte_list_ext=3):
        self.host = host or KvmHost()
        self.host.notifier = self  # kvm_mmu_notifier_* (virt/kvm/kvm_main.c) call into this MMU
        self.mem = KernelMemory(pte_list_ext)
        self.rmap = self.rmap_class(self.mem, self.rmap_of_spte, PT_ACCESSED_MASK,
                                    spte_update=self.mmu_spte_update)
        self.pages = {}                 # spt address -> sp (page_header)
        self.mmu_page_hash = [[] for _ in range(KVM_NUM_MMU_PAGES)]
        self.active_mmu_pages = ListHead()  # list_add at the head: newest first
        self.indirect_shadow_pages = 0
        self.vcpus = {}
        self.next_spt = SHADOW_PT_BASE
        self.serial = 0
        self.tlb_flushes = 0
        self.freed_pages = set()        # spt addresses of freed pages (never reused)
        self.mmu_lock_holds = []        # pages visited per mmu_lock hold of the last zap
        self.zap_epoch = 0              # zap-alls begun so far (oracle ground truth, not kernel state)
        self.tlb_capacity = TLB_CAPACITY  # entries per vCPU TLB (the VM's parameter)
        self.sync_flush_owed = False      # FNAME(sync_page) dropped an spte: a remote flush is owed
        self.tlbs_dirty = 0               # kvm->tlbs_dirty (3.10: drops not flushed yet)
        self.rmap_recycle_threshold = RMAP_RECYCLE_THRESHOLD  # the VM's parameter
        self._tdp_leaf = None

    def kvm_vm_ioctl_create_vcpu(self, vcpu_id, kind, guest):
        """KVM_CREATE_VCPU: a vCPU with no roots yet and an empty TLB."""
        self.vcpus[vcpu_id] = Vcpu(vcpu_id, kind, guest, self.tlb_capacity)
        return self.vcpus[vcpu_id]

    # -- pages ----------------------------------------------------------------
    def page_header(self, addr):
        sp = self.pages.get(addr & ~0xFFF)
        if sp is None:
            raise KvmBug(f"page_header({addr:#x}): not a shadow page")
        return sp

    def sp_stores_gfns(self, direct):
        """The spec keeps gfns[] for every page (the pre-2010 layout)."""
        return True

    def kvm_mmu_alloc_page(self, direct):
        spt, self.next_spt = self.next_spt, self.next_spt + 4096
        gfns = [0] * PT64_ENT_PER_PAGE if self.sp_stores_gfns(direct) else None
        self.serial += 1
        sp = KvmMmuPage(spt, gfns, self.serial)
        self.pages[spt] = sp
        self.active_mmu_pages.list_add(sp)
        return sp

    def kvm_mmu_page_get_gfn(self, sp, index):
        return sp.gfns[index]

    def kvm_mmu_page_set_gfn(self, sp, index, gfn):
        sp.gfns[index] = gfn

    def kvm_mmu_free_page(self, sp):
        for i in range(PT64_ENT_PER_PAGE):
            if self.mem.spte_read(sp.sptep(i)):
                raise KvmBug(f"kvm_mmu_free_page: {sp} not empty at {i}")
        self.mmu_page_hash[sp.gfn % KVM_NUM_MMU_PAGES].remove(sp)
        del self.pages[sp.spt]
        self.freed_pages.add(sp.spt)

    def for_each_gfn_sp(self, gfn):
        """for_each_gfn_sp(): the hash bucket's pages of `gfn`.  A generator over
        the bucket as it was at the start (pages leave the bucket only when
        kvm_mmu_commit_zap_page() frees them, after the walk)."""
        for sp in list(self.mmu_page_hash[gfn % KVM_NUM_MMU_PAGES]):
            if sp.gfn == gfn:
                yield sp

    def for_each_gfn_indirect_valid_sp(self, gfn):
        """for_each_gfn_indirect_valid_sp(): as the macro, `role.invalid` is
        tested when the walk reaches a page, so a page the loop body zapped
        (an unsync child taken along) is skipped."""
        for sp in self.for_each_gfn_sp(gfn):
            if not sp.role.direct and not sp.role.invalid:
                yield sp

    def is_obsolete_sp(self, sp):
        """3.10 has no generation number: no page is obsolete (impl/zap.py adds it)."""
        return False

    def is_valid_sp(self, sp):
        """A page kvm_mmu_get_page()'s lookup may return: neither invalid nor obsolete."""
        return not sp.role.invalid and not self.is_obsolete_sp(sp)

    # -- rmaps ----------------------------------------------------------------
    def rmap_of_spte(self, sptep):
        """gfn_to_rmap(kvm, kvm_mmu_page_get_gfn(sp, idx), sp->role.level)."""
        sp = self.page_header(sptep)
        gfn = self.kvm_mmu_page_get_gfn(sp, (sptep - sp.spt) // 8)
        slot = self.host.gfn_to_memslot(gfn)
        if slot is None:
            raise KvmBug(f"rmap of spte {sptep:#x}: gfn {gfn:#x} in no memslot")
        return slot.rmap_head(gfn, sp.role.level)

    def rmap_add(self, sptep, gfn):
        sp = self.page_header(sptep)
        self.kvm_mmu_page_set_gfn(sp, (sptep - sp.spt) // 8, gfn)
        slot = self.host.gfn_to_memslot(gfn)
        return self.rmap.rmap_add(sptep, slot.rmap_head(gfn, sp.role.level))

    def drop_spte(self, sptep):
        self.rmap.drop_spte(sptep)

    def mmu_page_add_parent_pte(self, sp, parent_pte):
        if parent_pte:
            self.rmap.pte_list_add(parent_pte, sp.parent_ptes)

    def drop_parent_pte(self, sp, parent_pte):
        self.rmap.drop_parent_pte(sp.parent_ptes, parent_pte)

    # -- write protection for shadowing -----------------------------------------
    def account_shadowed(self, gfn):
        slot = self.host.gfn_to_memslot(gfn)
        if slot is not None:
            slot.add_write_count(gfn, +1)
        self.indirect_shadow_pages += 1

    def unaccount_shadowed(self, gfn):
        slot = self.host.gfn_to_memslot(gfn)
        if slot is not None:
            slot.add_write_count(gfn, -1)
        self.indirect_shadow_pages -= 1

    def has_wrprotected_page(self, gfn, level):
        slot = self.host.gfn_to_memslot(gfn)
        return slot is not None and slot.write_count(gfn, level) > 0

    def rmap_write_protect(self, gfn):
        """rmap_write_protect(kvm, gfn): every level's rmap of `gfn` (large sptes
        dropped), with pt_protect: SPTE_MMU_WRITEABLE goes too, from read-only
        sptes as well, so fast_page_fault cannot make them writable again."""
        slot = self.host.gfn_to_memslot(gfn)
        if slot is None:
            return False
        done = False
        for level in range(PT_PAGE_TABLE_LEVEL, KVM_NR_PAGE_SIZES + 1):
            done |= self.rmap.rmap_write_protect(slot.rmap_head(gfn, level), level,
                                                 pt_protect=self.shadowing_pt_protect)
        return done

    # rmap_write_protect(kvm, gfn)'s pt_protect: true in 3.10 (a form may differ:
    # fastpf:wp-keeps-mmu-writable)
    shadowing_pt_protect = True

    # -- kvm_mmu_get_page -------------------------------------------------------
    def base_role(self, vcpu):
        if vcpu.kind == TDP:
            return KvmMmuPageRole(0, 0, 0, 1, 0, 0, 0, 0)
        g = vcpu.guest
        return KvmMmuPageRole(0, int(self.guest_is_pae(vcpu)), 0, 0, 0, 0,
                              int(g.efer_nx), int(g.cr0_wp))

    def guest_root_level(self, vcpu):
        """mmu->root_level: 4, 3 (PAE) or 2; TDP vCPUs have a direct 4-level map."""
        if vcpu.kind == TDP:
            return PT64_ROOT_LEVEL
        g = vcpu.guest
        return PT64_ROOT_LEVEL if g.efer_lma else PT32E_ROOT_LEVEL if g.cr4_pae else PT32_ROOT_LEVEL

    def guest_is_pae(self, vcpu):
        return vcpu.guest.cr4_pae

    def kvm_mmu_get_page(self, vcpu, gfn, gaddr, level, direct, access, parent_pte):
        role = self.base_role(vcpu)._replace(level=level, direct=int(direct), access=access)
        if direct:
            role = role._replace(cr4_pae=0)
        if vcpu.kind == SHADOW and self.guest_root_level(vcpu) <= PT32_ROOT_LEVEL:
            role = role._replace(quadrant=self.role_quadrant(gaddr, level))
        need_sync = False
        for sp in self.for_each_gfn_sp(gfn):
            if not self.is_valid_sp(sp):
                continue  # an invalid page never matches the role; 3.11 skips obsolete ones
            need_sync |= sp.unsync
            if sp.role != role:
                continue
            if sp.unsync and self.kvm_sync_page_transient(vcpu, sp):
                break  # zapped: make a new page
            self.mmu_page_add_parent_pte(sp, parent_pte)
            if sp.unsync_children:
                vcpu.mmu_sync_request = True  # KVM_REQ_MMU_SYNC: this vCPU only
                self.kvm_mmu_mark_parents_unsync(sp)
            elif sp.unsync:
                self.kvm_mmu_mark_parents_unsync(sp)
            sp.write_flooding_count = 0  # __clear_sp_write_flooding_count()
            return sp
        sp = self.kvm_mmu_alloc_page(direct)
        self.mmu_page_add_parent_pte(sp, parent_pte)
        sp.gfn = gfn
        sp.role = role
        sp.epoch = self.zap_epoch
        self.mmu_page_hash[gfn % KVM_NUM_MMU_PAGES].insert(0, sp)
        self.on_new_page(sp)
        if not direct:
            if self.rmap_write_protect(gfn):
                self.kvm_flush_remote_tlbs("kvm_mmu_get_page: rmap_write_protect")
            if level > PT_PAGE_TABLE_LEVEL and need_sync:
                self.kvm_sync_pages(vcpu, gfn)  # no page of the gfn may stay unsync now
            self.account_shadowed(gfn)
        return sp

    def on_new_page(self, sp):
        """Hook for state a new page carries (issue 6: the generation)."""

    def link_shadow_page(self, sptep, sp):
        self.mem.spte_write(sptep, sp.spt | PT_PRESENT_MASK | PT_WRITABLE_MASK | PT_USER_MASK
                            | PT_ACCESSED_MASK)

    # -- zapping ----------------------------------------------------------------
    def is_last_spte(self, spte, level):
        return level == PT_PAGE_TABLE_LEVEL or is_large_pte(spte)

    def mmu_page_zap_pte(self, sp, sptep):
        pte = self.mem.spte_read(sptep)
        if not is_shadow_present_pte(pte):
            return False
        if self.is_last_spte(pte, sp.role.level):
            self.drop_spte(sptep)
        else:
            child = self.page_header(pte & PT64_BASE_ADDR_MASK)
            self.drop_parent_pte(child, sptep)
        return True

    def kvm_mmu_prepare_zap_page(self, sp, invalid_list):
        """kvm_mmu_prepare_zap_page(): unlink `sp` (and the unsync pages below
        it) and queue it for kvm_mmu_commit_zap_page().  Returns the pages put
        on `invalid_list` (a held root stays on the active list and counts 0),
        which callers walking the active list restart on."""
        ret = self.mmu_zap_unsync_children(sp, invalid_list)
        for i in range(PT64_ENT_PER_PAGE):
            self.mmu_page_zap_pte(sp, sp.sptep(i))
        self.rmap.kvm_mmu_unlink_parents(sp.parent_ptes)
        if not sp.role.invalid and not sp.role.direct:
            self.unaccount_shadowed(sp.gfn)
        if sp.unsync:
            self.kvm_unlink_unsync_page(sp)
        if not sp.root_count:
            ret += 1
            self.active_mmu_pages.list_del(sp)  # list_move onto invalid_list
            invalid_list.append(sp)
        else:
            self.active_mmu_pages.list_move(sp)  # to the head
            self.reload_for_held_root(sp)
        sp.role = sp.role._replace(invalid=1)
        return ret

    def reload_for_held_root(self, sp):
        """A root still in use was zapped: its vCPUs must reload (3.10: always)."""
        self.kvm_reload_remote_mmus()

    def kvm_flush_remote_tlbs_sptep(self, sptep, reason):
        """The flush after one spte went.  3.10 flushes every vCPU's whole TLB;
        5.x kernels on Hyper-V flush the spte's range only
        (kvm_flush_remote_tlbs_with_address(spte_flush_range(...))): the
        seam impl/variants/flush.py's ranged forms replace."""
        sp = self.page_header(sptep)
        self.kvm_flush_remote_tlbs_with_address(*self.spte_flush_range(sp, (sptep - sp.spt) // 8, reason),
                                                reason)

    def spte_flush_range(self, sp, index, reason):
        """(first gfn, pages) an spte at `index` of `sp` maps: its own gfn,
        kvm_mmu_page_get_gfn(sp, index) (stored or derived), aligned to its
        level, and KVM_PAGES_PER_HPAGE of that level (kvm_flush_remote_tlbs_sptep
        of 6.3, after 1b2dc7360463 and 3cdf93746f9a)."""
        span = 1 << KVM_HPAGE_GFN_SHIFT(sp.role.level)
        return self.kvm_mmu_page_get_gfn(sp, index) & ~(span - 1), span

    def kvm_flush_remote_tlbs_with_address(self, gfn, pages, reason):
        """3.10 has no ranged flush: every vCPU's whole TLB."""
        self.kvm_flush_remote_tlbs(reason)

    def kvm_flush_remote_tlbs(self, reason):
        """kvm_flush_remote_tlbs(): every vCPU's TLB, before the vCPU's next guest
        access (the request and the IPI of make_all_cpus_request).  `reason`
        names the kernel function that flushes: every call site is a seam a
        variant can cut (impl/variants/flush.py)."""
        self.tlb_flushes += 1
        self.tlbs_dirty = 0
        for v in self.vcpus.values():
            v.tlb.flush()

    def kvm_mmu_commit_zap_page(self, invalid_list):
        if invalid_list:
            self.kvm_flush_remote_tlbs("kvm_mmu_commit_zap_page")
        for sp in invalid_list:
            self.kvm_mmu_free_page(sp)
        invalid_list.clear()

    def kvm_reload_remote_mmus(self):
        for v in self.vcpus.values():
            v.reload = True

    def kvm_mmu_zap_all(self):
        """kvm_mmu_zap_all(): prepare-zap every page on the active list, then commit,
        all in one mmu_lock hold: the hold's work is every page visited.

        As 3.10, the walk restarts from the head whenever a prepare-zap put
        pages on the invalid list (it may have taken unsync pages further down
        the list with it).  Invalid roots still held stay on the list (their
        prepare-zap returns 0, so the walk goes on past them) until their vCPUs
        release them.
        """
        invalid = []
        visited = 0
        bound = LoopBound("kvm_mmu_zap_all: pages visited", (len(self.active_mmu_pages) + 1) ** 2)
        restart = True
        while restart:
            restart = False
            for sp in list(self.active_mmu_pages):
                bound.step()
                visited += 1
                if self.kvm_mmu_prepare_zap_page(sp, invalid):
                    restart = True
                    break
        self.kvm_mmu_commit_zap_page(invalid)
        self.mmu_lock_holds.append(visited)

    # Zapping every page, as memslot delete and move need it.  The spec walks
    # (kvm_mmu_zap_all, one hold); impl/zap.py bumps a generation and reclaims
    # in batches, dropping mmu_lock between them, where other work may run.
    def zap_all_begin(self):
        """Start zapping every shadow page; returns when mmu_lock is first dropped."""
        self.mmu_lock_holds = []
        self.zap_epoch += 1
        self.kvm_mmu_zap_all()
        self.kvm_reload_remote_mmus()  # kvm_arch_flush_shadow_all(): after the zap, unlocked

    def zap_all_resume(self):
        """Take mmu_lock again for a zap in progress, up to its next lock break.
        False when the zap is complete (the spec's is, at begin)."""
        return False

    def zap_in_progress(self):
        """A zap-all is in its lock breaks (never in the spec: one hold)."""
        return False

    # -- roots ------------------------------------------------------------------
    def mmu_free_roots(self, vcpu):
        invalid = []
        roots = [vcpu.root] if vcpu.root is not None else [sp for sp in (vcpu.pae_root or []) if sp]
        for sp in roots:
            sp.root_count -= 1
            if not sp.root_count and sp.role.invalid:
                self.kvm_mmu_prepare_zap_page(sp, invalid)
        self.kvm_mmu_commit_zap_page(invalid)
        vcpu.root, vcpu.pae_root = None, None

    def kvm_mmu_load(self, vcpu):
        """Allocate the vCPU's roots if it has none (mmu_alloc_roots), sync what
        is unsync below them (kvm_mmu_sync_roots); loading them (mmu->set_cr3:
        vmx_set_cr3 / svm_set_cr3) flushes the vCPU's TLB."""
        if vcpu.root is not None or vcpu.pae_root is not None:
            return
        self.mmu_alloc_roots(vcpu)
        self.kvm_mmu_sync_roots(vcpu)
        vcpu.tlb.flush()

    def mmu_alloc_roots(self, vcpu):
        """mmu_alloc_direct_roots() / mmu_alloc_shadow_roots()."""
        if vcpu.kind == TDP:
            sp = self.kvm_mmu_get_page(vcpu, 0, 0, PT64_ROOT_LEVEL, True, ACC_ALL, 0)
            sp.root_count += 1
            vcpu.root = sp
            return
        if vcpu.kind == NONPAGING:
            # shadow_root_level PT32E_ROOT_LEVEL: four direct level-2 roots, one per GB
            vcpu.pae_root = [None] * 4
            for i in range(4):
                sp = self.kvm_mmu_get_page(vcpu, i << (30 - PAGE_SHIFT), i << 30, PT32_ROOT_LEVEL,
                                           True, ACC_ALL, 0)
                sp.root_count += 1
                vcpu.pae_root[i] = sp
            return
        root_gfn = vcpu.guest.cr3 >> PAGE_SHIFT
        level = self.guest_root_level(vcpu)
        if level == PT64_ROOT_LEVEL:
            sp = self.kvm_mmu_get_page(vcpu, root_gfn, 0, PT64_ROOT_LEVEL, False, ACC_ALL, 0)
            sp.root_count += 1
            vcpu.root = sp
            return
        vcpu.pae_root = [None] * 4
        for i in range(4):
            if level == PT32E_ROOT_LEVEL:
                pdptr = self.guest_pdptr(vcpu, i)
                if not pdptr & PT_PRESENT_MASK:
                    continue
                root_gfn = (pdptr & PT64_BASE_ADDR_MASK) >> PAGE_SHIFT
            sp = self.kvm_mmu_get_page(vcpu, root_gfn, i << 30, PT32_ROOT_LEVEL, False, ACC_ALL, 0)
            sp.root_count += 1
            vcpu.pae_root[i] = sp

    def guest_pdptr(self, vcpu, i):
        return vcpu.guest.pdptes[i]

    def kvm_mmu_unload(self, vcpu):
        self.mmu_free_roots(vcpu)

    # -- the guest's control registers, as KVM sees them (x86.c) ----------------------
    def kvm_set_cr3(self, vcpu, cr3):
        """MOV to CR3; False for a #GP (a PAE PDPTE with reserved bits).

        A TDP vCPU loads CR3 itself.  A shadow vCPU exits to kvm_set_cr3():
        the same CR3 with unchanged PAE PDPTEs (pdptrs_changed()) only syncs
        the roots and flushes the local TLB; another value is loaded (with
        its PDPTEs) and kvm_mmu_new_cr3() frees the roots."""
        g = vcpu.guest
        if vcpu.kind == SHADOW and cr3 == g.cr3 and not self.pdptrs_changed(g):
            self.kvm_mmu_sync_roots(vcpu)
            self.kvm_mmu_flush_tlb(vcpu)
            return True
        if not guest_mov_to_cr3(g, cr3):
            return False
        if vcpu.kind == SHADOW:
            self.mmu_free_roots(vcpu)
        self.kvm_mmu_flush_tlb(vcpu)  # the CPU's CR3 load (or the new root's)
        return True

    def pdptrs_changed(self, guest):
        """pdptrs_changed(): a PAE guest's PDPTEs in memory differ from the cached ones."""
        if guest.efer_lma or not guest.cr4_pae:
            return False
        cached = tuple(guest.pdptes if hasattr(guest, "pdptes") else guest.pdptrs)
        base = guest.cr3 & ~0x1F
        return tuple(guest.mem.read(base + 8 * i, 8) for i in range(4)) != cached

    def kvm_set_paging_mode(self, vcpu, mode):
        """The guest's CR0/CR4/EFER sequence into another paging mode:
        kvm_mmu_reset_context() (the roots are freed).  False for a #GP."""
        return self._reset_context(vcpu, guest_set_paging_mode(vcpu.guest, mode))

    def kvm_set_control(self, vcpu, reg, value):
        """kvm_set_cr0 (WP), kvm_set_cr4 (PSE) or set_efer (NX): a change of any
        of them resets the MMU context (kvm_mmu_reset_context: the roots are
        freed, the role changes).  False for a #GP."""
        return self._reset_context(vcpu, guest_set_control(vcpu.guest, reg, value))

    def _reset_context(self, vcpu, ok):
        if ok:
            if vcpu.kind == SHADOW:
                self.kvm_mmu_unload(vcpu)
            self.kvm_mmu_flush_tlb(vcpu)
        return ok

    def kvm_mmu_flush_tlb(self, vcpu):
        """kvm_mmu_flush_tlb(): the local vCPU's TLB (KVM_REQ_TLB_FLUSH)."""
        vcpu.tlb.flush()

    def kvm_mmu_invlpg(self, vcpu, gva):
        """The guest's INVLPG.  Under shadow paging KVM intercepts it
        (kvm_mmu_invlpg: FNAME(invlpg), which syncs an unsync leaf, then a
        flush of the local TLB; a vCPU with paging off: nonpaging_invlpg,
        nothing, then the flush); under TDP it is the CPU's own (the TLB
        entries of that page go)."""
        if vcpu.kind == SHADOW:
            self.fname_invlpg(vcpu, gva)
            self.invlpg_flush_local(vcpu, gva)
        elif vcpu.kind == NONPAGING:
            self.invlpg_flush_local(vcpu, gva)
        else:
            vcpu.tlb.invalidate(gva)

    def invlpg_flush_local(self, vcpu, gva):
        """What kvm_mmu_invlpg() flushes after FNAME(invlpg): 3.10 the whole local
        TLB (kvm_mmu_flush_tlb); 4.20 on only the address (faff87588d8b)."""
        self.kvm_mmu_flush_tlb(vcpu)

    def vcpu_enter_guest(self, vcpu):
        """KVM_REQ_MMU_RELOAD, then kvm_mmu_load(): what vcpu_enter_guest does first."""
        if vcpu.reload:
            vcpu.reload = False
            self.kvm_mmu_unload(vcpu)
        if vcpu.mmu_sync_request:
            vcpu.mmu_sync_request = False
            self.kvm_mmu_sync_roots(vcpu)
        self.kvm_mmu_load(vcpu)

    # -- the hardware walk of the shadow/TDP tables -----------------------------
    def shadow_walk(self, vcpu, addr):
        """The entries the hardware uses for `addr`, top-down: [(sp, sptep, level)]."""
        out = []
        if vcpu.root is not None:
            sp, level = vcpu.root, PT64_ROOT_LEVEL
        else:
            sp = vcpu.pae_root[(addr >> 30) & 3] if vcpu.pae_root else None
            if sp is None:
                return out
            level = PT32_ROOT_LEVEL
        while True:
            sptep = sp.sptep(PT64_INDEX(addr, level))
            out.append((sp, sptep, level))
            spte = self.mem.spte_read(sptep)
            if not is_shadow_present_pte(spte) or self.is_last_spte(spte, level):
                return out
            sp = self.page_header(spte & PT64_BASE_ADDR_MASK)
            level -= 1

    def hw_translate(self, vcpu, addr, write, user, fetch):
        """Walk the tables as the CPU does (CR0.WP=1, EFER.NX=1 on the host).

        Returns (leaf sptep, level, TlbEntry) when the access is allowed, else
        None.  Sets A on the leaf (and D for a write) like the hardware; the
        entry is what the TLB may cache of the walk (pfn and gfn of the page's
        first 4K, the ANDed rights, the leaf's D, the pages walked).
        """
        path = self.shadow_walk(vcpu, addr)
        if not path:
            return None
        sp, sptep, level = path[-1]
        spte = self.mem.spte_read(sptep)
        if not is_shadow_present_pte(spte):
            return None
        rights = ACC_ALL
        for _, p, _ in path:
            v = self.mem.spte_read(p)
            if not v & PT_WRITABLE_MASK:
                rights &= ~ACC_WRITE_MASK
            if not v & PT_USER_MASK:
                rights &= ~ACC_USER_MASK
            if v & PT64_NX_MASK:
                rights &= ~ACC_EXEC_MASK
        if (write and not rights & ACC_WRITE_MASK) or (user and not rights & ACC_USER_MASK) \
                or (fetch and not rights & ACC_EXEC_MASK):
            return None
        new = spte | PT_ACCESSED_MASK | (PT_DIRTY_MASK if write else 0)
        if new != spte:
            self.mem.spte_write(sptep, new)
        sp_leaf = path[-1][0]
        entry = TlbEntry(level, self.kvm_mmu_page_get_gfn(sp_leaf, (sptep - sp_leaf.spt) // 8),
                         spte_to_pfn(new), rights, bool(new & PT_DIRTY_MASK),
                         tuple(p[0].spt for p in path))
        return sptep, level, entry

    def spte_gfn(self, sptep, level, addr):
        """The gfn a leaf spte maps for `addr` (its page's gfn plus the offset in a large page)."""
        sp = self.page_header(sptep)
        base = self.kvm_mmu_page_get_gfn(sp, (sptep - sp.spt) // 8)
        return base + ((addr >> PAGE_SHIFT) & ((1 << KVM_HPAGE_GFN_SHIFT(level)) - 1))

    # -- mmu_set_spte ---------------------------------------------------------------
    def set_spte(self, sptep, pte_access, level, gfn, pfn, speculative, host_writable,
                 can_unsync=True):
        """set_spte(): returns True when a write had to be refused (emulate)."""
        spte = PT_PRESENT_MASK
        if not speculative:
            spte |= PT_ACCESSED_MASK
        if not pte_access & ACC_EXEC_MASK:
            spte |= PT64_NX_MASK
        if pte_access & ACC_USER_MASK:
            spte |= PT_USER_MASK
        if level > PT_PAGE_TABLE_LEVEL:
            spte |= PT_PAGE_SIZE_MASK
        if host_writable:
            spte |= SPTE_HOST_WRITEABLE
        else:
            pte_access &= ~ACC_WRITE_MASK
        spte |= pfn << PAGE_SHIFT
        ret = False
        keep_w = False
        if pte_access & ACC_WRITE_MASK:
            if level > PT_PAGE_TABLE_LEVEL and self.has_wrprotected_page(gfn, level):
                return False  # "goto done": nothing is installed, the guest refaults
            spte |= PT_WRITABLE_MASK | SPTE_MMU_WRITEABLE
            if not can_unsync and self.mem.spte_read(sptep) & PT_WRITABLE_MASK:
                keep_w = True  # "goto set_pte": writable already, kept (no dirty marking)
            elif self.mmu_need_write_protect(gfn, can_unsync):
                ret = True
                pte_access &= ~ACC_WRITE_MASK
                spte &= ~(PT_WRITABLE_MASK | SPTE_MMU_WRITEABLE)
        if pte_access & ACC_WRITE_MASK and not keep_w:
            self.mark_page_dirty(gfn)
        if self.mmu_spte_update(sptep, spte):
            self.kvm_flush_remote_tlbs("set_spte")
        return ret

    def mmu_spte_update(self, sptep, new):
        """mmu_spte_update(): write `new` over a (maybe present) spte; True when a
        TLB may still hold a right it takes away (spec.rmap.RmapBase).  The
        rmap walkers' write protection calls this method too."""
        return RmapBase.mmu_spte_update(self.rmap, sptep, new)

    def mmu_set_spte(self, sptep, pte_access, write_fault, level, gfn, pfn, speculative,
                     host_writable):
        """mmu_set_spte(): returns True when the access must be emulated."""
        old = self.mem.spte_read(sptep)
        was_rmapped = False
        if is_shadow_present_pte(old):
            if level > PT_PAGE_TABLE_LEVEL and not is_large_pte(old):
                child = self.page_header(old & PT64_BASE_ADDR_MASK)
                self.drop_parent_pte(child, sptep)
                self.kvm_flush_remote_tlbs("mmu_set_spte: a page table replaced by a large page")
            elif pfn != spte_to_pfn(old):
                self.drop_spte(sptep)
                self.kvm_flush_remote_tlbs_sptep(sptep, "mmu_set_spte: another pfn")
            else:
                was_rmapped = True
        emulate = bool(self.set_spte(sptep, pte_access, level, gfn, pfn, speculative,
                                     host_writable) and write_fault)
        if is_shadow_present_pte(self.mem.spte_read(sptep)) and not was_rmapped:
            if self.rmap_add(sptep, gfn) > self.rmap_recycle_threshold:
                self.rmap_recycle(sptep, gfn)
        return emulate

    def rmap_recycle(self, sptep, gfn):
        """rmap_recycle(): pte_list_add's count passed RMAP_RECYCLE_THRESHOLD (a
        VM parameter in the model): every spte of the rmap the new spte joined
        goes, the new one too (its access faults again), then a flush."""
        sp = self.page_header(sptep)
        slot = self.host.gfn_to_memslot(gfn)
        self.rmap.kvm_unmap_rmapp(slot.rmap_head(gfn, sp.role.level))
        self.kvm_flush_remote_tlbs_sptep(sptep, "rmap_recycle")

    def mark_page_dirty(self, gfn):
        slot = self.host.gfn_to_memslot(gfn)
        if slot is not None and slot.dirty_log:
            slot.dirty_bitmap.add(gfn)

    # -- mapping level ------------------------------------------------------------
    def mapping_level(self, gfn):
        """mapping_level() (with transparent_hugepage_adjust()): the largest page
        the host backs `gfn` with and no write-protected gfn forbids; 4K under
        dirty logging.  Asked after gfn_to_pfn(), which may split a THP."""
        slot = self.host.gfn_to_memslot(gfn)
        if slot is None or slot.dirty_log:
            return PT_PAGE_TABLE_LEVEL  # mapping_level_dirty_bitmap()
        host_level = self.host.host_mapping_level(gfn)
        if host_level == PT_PAGE_TABLE_LEVEL:
            return host_level
        level = PT_DIRECTORY_LEVEL
        while level <= host_level:
            if self.has_wrprotected_page(gfn, level):
                break
            level += 1
        return level - 1

    def gfn_to_pfn(self, gfn, write):
        """(pfn, map_writable), breaking COW for a write to a read-only host page."""
        got = self.host.gfn_to_pfn(gfn, write)
        if got is None:
            return None
        pfn, writable = got
        slot = self.host.gfn_to_memslot(gfn)
        if write and not writable and not slot.readonly:
            pfn = self.host.break_cow(slot, gfn)  # its invalidate reaches our notifier
            writable = True
        return pfn, writable

    # -- the TDP fault ------------------------------------------------------------
    def tdp_page_fault(self, vcpu, gpa, write, error_code=None):
        """tdp_page_fault() -> fast_page_fault(), else __direct_map(); returns OK,
        MMIO or 'emulate'.  `error_code`: what the exit reports (None: the
        hardware's, hw_error_code()).  As 3.10, the fast path runs before the
        pfn lookup, at the level mapping_level() gives then; the model asks
        mapping_level() again after gfn_to_pfn() (which may split a THP: 3.10's
        transparent_hugepage_adjust() comes there too)."""
        if error_code is None:
            error_code = self.hw_error_code(vcpu, gpa, write, False, False)
        if self.fast_page_fault(vcpu, gpa, self.mapping_level(gpa >> PAGE_SHIFT), error_code):
            return OK
        got = self.gfn_to_pfn(gpa >> PAGE_SHIFT, write)
        if got is None:
            return MMIO
        gfn = gpa >> PAGE_SHIFT
        level = self.mapping_level(gfn)
        gfn &= ~((1 << KVM_HPAGE_GFN_SHIFT(level)) - 1)
        pfn, map_writable = got
        slot = self.host.gfn_to_memslot(gfn)
        pfn = slot.pfns[gfn - slot.base_gfn] if level > PT_PAGE_TABLE_LEVEL else pfn
        if write and not map_writable:
            return MMIO  # a write to a read-only memslot exits to userspace
        return "emulate" if self.__direct_map(vcpu, gpa, write, map_writable, level, gfn, pfn) else OK

    def __direct_map(self, vcpu, gpa, write, map_writable, level, gfn, pfn):
        addr = gfn << PAGE_SHIFT
        if vcpu.root is not None:
            sp, lvl = vcpu.root, PT64_ROOT_LEVEL
        else:  # a nonpaging vCPU's four roots (shadow_walk_init at PT32E_ROOT_LEVEL)
            sp, lvl = vcpu.pae_root[(addr >> 30) & 3], PT32_ROOT_LEVEL
        while True:
            if lvl < PT_PAGE_TABLE_LEVEL:
                raise KvmBug(f"__direct_map: walked below level 1 looking for level {level}")
            sptep = sp.sptep(PT64_INDEX(addr, lvl))
            if lvl == level:
                emulate = self.mmu_set_spte(sptep, ACC_ALL, write, level, gfn, pfn, False,
                                            map_writable)
                self.direct_pte_prefetch(vcpu, sptep)
                return emulate
            # 3.10 stopped at a large spte above the target level (nothing installed,
            # the vCPU faulted again: a livelock for a read-only large spte under
            # dirty logging); the model drops it with a flush, as 404381c5839d does.
            self.drop_large_spte(sptep)
            spte = self.mem.spte_read(sptep)
            if not is_shadow_present_pte(spte):
                child = self.kvm_mmu_get_page(vcpu, self.direct_map_child_gfn(addr, lvl), addr,
                                              lvl - 1, True, ACC_ALL, sptep)
                self.link_shadow_page(sptep, child)
                sp = child
            else:
                sp = self.page_header(spte & PT64_BASE_ADDR_MASK)
            lvl -= 1

    # -- the fast page fault (3.10): W restored without mmu_lock --------------------
    def hw_error_code(self, vcpu, addr, write, user, fetch):
        """The error code the CPU reports for the fault hw_translate() refused:
        PFERR_PRESENT when its walk of KVM's tables reached a present leaf (a
        protection fault; for EPT the exit qualification's "readable" bit,
        which handle_ept_violation turns into it), plus WRITE, USER, FETCH
        for the access."""
        path = self.shadow_walk(vcpu, addr)
        code = (PFERR_WRITE_MASK if write else 0) | (PFERR_USER_MASK if user else 0) \
            | (PFERR_FETCH_MASK if fetch else 0)
        if path and is_shadow_present_pte(self.mem.spte_read(path[-1][1])):
            code |= PFERR_PRESENT_MASK
        return code

    @staticmethod
    def page_fault_can_be_fast(error_code):
        """page_fault_can_be_fast(): only a write to a present spte (its W may
        just be missing)."""
        return bool(error_code & PFERR_PRESENT_MASK and error_code & PFERR_WRITE_MASK)

    def fast_page_fault(self, vcpu, gva, level, error_code):
        """fast_page_fault() (3.10, Xiao 2012): for direct MMUs only
        (tdp_page_fault, nonpaging_map), before the pfn lookup and without
        mmu_lock.  Walk the vCPU's tables to `level` (stopping at a
        non-present entry); True means "let the vCPU retry": the entry went
        away meanwhile, or it is already writable (a TLB flushed lazily), or
        it was read-only and locklessly modifiable (both SPTE_HOST_WRITEABLE
        and SPTE_MMU_WRITEABLE: write-protected only for dirty logging) and
        fast_pf_fix_direct_spte() gave it W back.  False: the slow path."""
        if vcpu.root is None and not vcpu.pae_root:
            return False  # !VALID_PAGE(root_hpa)
        if not self.page_fault_can_be_fast(error_code):
            return False
        sptep, spte = None, 0
        for _, p, lvl in self.shadow_walk(vcpu, gva):  # for_each_shadow_entry_lockless
            sptep, spte = p, self.mem.spte_read(p)
            if not is_shadow_present_pte(spte) or lvl < level:
                break
        if not is_shadow_present_pte(spte):
            return True  # !is_rmap_spte(): the mapping changed, fault again
        if not self.is_last_spte(spte, level):
            return False
        if is_writable_pte(spte):
            return True  # spurious: a TLB flushed lazily (upper entries are ACC_ALL)
        if not self.spte_is_locklessly_modifiable(spte):
            return False  # write-protected for another reason than dirty logging
        return self.fast_pf_fix_direct_spte(vcpu, sptep, spte)

    def fast_pf_fix_direct_spte(self, vcpu, sptep, spte):
        """fast_pf_fix_direct_spte(): set W by cmpxchg64 and, if it won, mark
        the spte's gfn dirty: kvm_mmu_page_get_gfn(sp, index), stable without
        mmu_lock since the page is direct (the spec reads the stored gfns[],
        the impl derives it: Lai 2010).  The model runs nothing in between,
        so the cmpxchg finds `spte` and wins.  No flush: W only goes up."""
        sp = self.page_header(sptep)
        if not sp.role.direct:
            raise KvmBug(f"fast_pf_fix_direct_spte: WARN_ON(!sp->role.direct) for {sp}")
        gfn = self.kvm_mmu_page_get_gfn(sp, (sptep - sp.spt) // 8)
        if self.mem.spte_read(sptep) == spte:
            self.mem.spte_write(sptep, spte | PT_WRITABLE_MASK)
            self.mark_page_dirty(gfn)
        return True

    # -- a vCPU with paging off, under shadow paging (nonpaging_init_context) -------
    def nonpaging_page_fault(self, vcpu, gva, write, error_code=None):
        """nonpaging_page_fault(): gfn = gva >> PAGE_SHIFT (the address is
        guest-physical), then nonpaging_map().  Returns (OK, None) to retry,
        (MMIO, gfn) or ("emulate", gfn), as shadow_page_fault() does.
        `error_code` None: the hardware's (hw_error_code())."""
        if error_code is None:
            error_code = self.hw_error_code(vcpu, gva, write, False, False)
        gfn = gva >> PAGE_SHIFT
        status = self.nonpaging_map(vcpu, gva & ~0xFFF, error_code, gfn)
        return (status, None) if status == OK else (status, gfn)

    def nonpaging_map(self, vcpu, v, error_code, gfn):
        """nonpaging_map(): tdp_page_fault()'s steps on the vCPU's four-root
        direct map, which maps 2MB pages at most (a PAE table);
        fast_page_fault() first.  OK, MMIO or 'emulate'."""
        write = bool(error_code & PFERR_WRITE_MASK)
        if self.fast_page_fault(vcpu, v, min(self.mapping_level(gfn), PT_DIRECTORY_LEVEL), error_code):
            return OK
        got = self.gfn_to_pfn(gfn, write)
        if got is None:
            return MMIO
        level = min(self.mapping_level(gfn), PT_DIRECTORY_LEVEL)
        gfn &= ~((1 << KVM_HPAGE_GFN_SHIFT(level)) - 1)
        pfn, map_writable = got
        if level > PT_PAGE_TABLE_LEVEL:
            slot = self.host.gfn_to_memslot(gfn)
            pfn = slot.pfns[gfn - slot.base_gfn]
        if write and not map_writable:
            return MMIO  # a write to a read-only memslot exits to userspace
        return "emulate" if self.__direct_map(vcpu, v, write, map_writable, level, gfn, pfn) else OK

    # -- the shadow fault -----------------------------------------------------------
    def guest_walk(self, vcpu, addr, write, user, fetch):
        """FNAME(walk_addr) as the spec sees it: the architectural walk, read as a
        guest_walker (table_gfn[], ptes[], pt_access, pte_access with
        protect_clean_gpte).  Its A/D writes are marked dirty."""
        from .walk import FETCH, READ, WRITE

        kind = WRITE if write else FETCH if fetch else READ
        before = len(vcpu.guest.mem.log)
        res = vcpu.guest.walk(addr, kind, user)
        for w in vcpu.guest.mem.log[before:]:
            self.mark_page_dirty(w.gfn)
        gw = GuestWalk()
        if not res.ok:
            gw.fault = res.fault
            return gw
        pt_access = ACC_ALL
        for e in res.path[:-1]:
            pt_access &= e.rights
            gw.pt_access_at[e.level] = pt_access
        for e in res.path:
            if e.gpa is not None:
                gw.table_gfn[e.level] = e.gpa >> PAGE_SHIFT
            gw.ptes[e.level] = e.value
        leaf = res.path[-1]
        gw.gfn, gw.level, gw.pt_access = res.gfn, res.level, pt_access
        gw.pte_access = pt_access & leaf.rights
        if not write and not leaf.value & PT_DIRTY_MASK:
            gw.pte_access &= ~ACC_WRITE_MASK  # protect_clean_gpte()
        return gw

    def large_base_gfn(self, vcpu, gw):
        """The guest large page's own base gfn (what 2.6.35's fetch used)."""
        size = self.guest_page_gfns(vcpu, gw.level)
        return gw.gfn & ~(size - 1)

    def guest_page_gfns(self, vcpu, level):
        if level == 1:
            return 1
        if self.guest_root_level(vcpu) == PT32_ROOT_LEVEL:
            return 1 << (10 * (level - 1))
        return 1 << KVM_HPAGE_GFN_SHIFT(level)

    def shadow_page_fault(self, vcpu, addr, write, user, fetch):
        """FNAME(page_fault): walk, inject a #PF or fetch.  Returns
        (PAGE_FAULT, error code), (MMIO, gfn), ("emulate", gfn) or (OK, None)."""
        gw = self.guest_walk(vcpu, addr, write, user, fetch)
        if gw.fault is not None:
            return PAGE_FAULT, gw.fault
        got = self.gfn_to_pfn(gw.gfn, write)
        if got is None:
            return MMIO, gw.gfn
        level = PT_PAGE_TABLE_LEVEL
        if gw.level >= PT_DIRECTORY_LEVEL:
            level = min(gw.level, self.mapping_level(gw.gfn))
        pfn, map_writable = got
        if write and not map_writable:
            return MMIO, gw.gfn
        large_base = self.large_base_gfn(vcpu, gw)
        walker_gfn = gw.gfn & ~((1 << KVM_HPAGE_GFN_SHIFT(level)) - 1)
        if level > PT_PAGE_TABLE_LEVEL:
            slot = self.host.gfn_to_memslot(walker_gfn)
            pfn = slot.pfns[walker_gfn - slot.base_gfn]
        if write and not gw.pte_access & ACC_WRITE_MASK and not vcpu.guest.cr0_wp and not user:
            gw.pte_access = (gw.pte_access | ACC_WRITE_MASK) & ~ACC_USER_MASK
        emulate = self.fetch(vcpu, addr, gw, walker_gfn, large_base, write, level, pfn, map_writable)
        return ("emulate", gw.gfn) if emulate else (OK, None)

    @staticmethod
    def fetch_page_access(gw, level):
        """The role.access FNAME(fetch) gives the shadow page of the table that the
        guest entry at `level` points at: the rights inherited down to that
        entry (b1bd5cba3306, 2021).  3.10 passed gw->pt_access, the AND over
        every level above the leaf, so one lower table reached through upper
        entries with different rights shared a page it must not
        (mmu:pt-access-all-levels-3.10)."""
        return gw.pt_access_at.get(level, gw.pt_access)

    def fetch(self, vcpu, addr, gw, walker_gfn, large_base, write, hlevel, pfn, map_writable):
        """FNAME(fetch): indirect pages down to the guest leaf's level, direct
        pages below it, then the leaf spte."""
        path_sp = vcpu.root if vcpu.root is not None else vcpu.pae_root[(addr >> 30) & 3]
        if path_sp is None:
            raise KvmBug("fetch: no root for the address")
        lvl = PT64_ROOT_LEVEL if vcpu.root is not None else PT32_ROOT_LEVEL
        sp = path_sp
        while lvl > gw.level:
            sptep = sp.sptep(PT64_INDEX(addr, lvl))
            sp.write_flooding_count = 0  # clear_sp_write_flooding_count(): the page is in use
            self.drop_large_spte(sptep)
            spte = self.mem.spte_read(sptep)
            if not is_shadow_present_pte(spte):
                table_gfn = gw.table_gfn[lvl - 1]
                child = self.kvm_mmu_get_page(vcpu, table_gfn, addr, lvl - 1, False,
                                              self.fetch_page_access(gw, lvl), sptep)
                if self.gpte_changed(vcpu, gw, lvl - 1):
                    return False  # the table changed under us: let the guest refault
                self.link_shadow_page(sptep, child)
                sp = child
            else:
                sp = self.page_header(spte & PT64_BASE_ADDR_MASK)
            lvl -= 1
        while lvl > hlevel:
            sptep = sp.sptep(PT64_INDEX(addr, lvl))
            self.validate_direct_spte(sptep, gw.pte_access)
            self.drop_large_spte(sptep)
            spte = self.mem.spte_read(sptep)
            if not is_shadow_present_pte(spte):
                direct_gfn = self.fetch_direct_gfn(walker_gfn, large_base, lvl)
                child = self.kvm_mmu_get_page(vcpu, direct_gfn, addr, lvl - 1, True,
                                              gw.pte_access, sptep)
                self.link_shadow_page(sptep, child)
                sp = child
            else:
                sp = self.page_header(spte & PT64_BASE_ADDR_MASK)
            lvl -= 1
        sptep = sp.sptep(PT64_INDEX(addr, lvl))
        emulate = self.mmu_set_spte(sptep, gw.pte_access, write, lvl, walker_gfn, pfn, False,
                                    map_writable)
        self.pte_prefetch(vcpu, gw, sptep)
        return emulate

    # -- prefetch hooks: where the kernel calls them; the spec prefetches nothing --
    def direct_pte_prefetch(self, vcpu, sptep):
        """direct_pte_prefetch(), after __direct_map installed its leaf (impl/mmu.py)."""

    def pte_prefetch(self, vcpu, gw, sptep):
        """FNAME(pte_prefetch), after FNAME(fetch) installed its leaf (impl/mmu.py)."""

    def gpte_changed(self, vcpu, gw, level):
        """FNAME(gpte_changed): the guest entry at `level` no longer reads the same."""
        return False  # the model is single-threaded: nothing changes inside a fault

    def drop_large_spte(self, sptep):
        """drop_large_spte(): a large spte in the way of a smaller mapping is
        dropped, and every TLB flushed."""
        spte = self.mem.spte_read(sptep)
        if is_shadow_present_pte(spte) and is_large_pte(spte):
            self.drop_spte(sptep)
            self.kvm_flush_remote_tlbs_sptep(sptep, "drop_large_spte")

    def validate_direct_spte(self, sptep, direct_access):
        """validate_direct_spte(): a direct child created with other access is unlinked."""
        spte = self.mem.spte_read(sptep)
        if not is_shadow_present_pte(spte) or is_large_pte(spte):
            return
        child = self.page_header(spte & PT64_BASE_ADDR_MASK)
        if child.role.access == direct_access:
            return
        self.drop_parent_pte(child, sptep)
        self.kvm_flush_remote_tlbs_with_address(*self.direct_child_flush_range(child),
                                                "validate_direct_spte")

    @staticmethod
    def direct_child_flush_range(child):
        """(first gfn, pages) the entry that linked a direct child mapped: the
        child's whole range (3cdf93746f9a: it was one page)."""
        return child.gfn, 1 << KVM_HPAGE_GFN_SHIFT(child.role.level + 1)

    # -- emulated guest stores: kvm_mmu_pte_write ----------------------------------
    written_spte_slots = staticmethod(written_spte_slots)

    def get_written_sptes(self, sp, gpa, nbytes):
        """get_written_sptes(): the spte(s) a guest write at `gpa` touches in `sp`.

        The arithmetic is spec/written_sptes.py's, the function proofs/gfn.py
        proves (gfn.quadrant_selects_entries)."""
        quadrant, first, npte = self.written_spte_slots(gpa & 0xFFF, sp.role.level,
                                                        not sp.role.cr4_pae)
        if not sp.role.cr4_pae and quadrant != sp.role.quadrant:
            return []
        return [sp.sptep(first + k) for k in range(npte)]

    def kvm_mmu_pte_write(self, vcpu, gpa, new, nbytes):
        """An emulated guest store to a shadowed guest table."""
        if not self.indirect_shadow_pages:
            return
        gfn = gpa >> PAGE_SHIFT
        gentry = self.guest_read_gpte(vcpu, gpa, nbytes)
        base = self.base_role(vcpu)
        invalid = []
        remote_flush = local_flush = False
        for sp in self.for_each_gfn_indirect_valid_sp(gfn):
            if self.detect_write_flooding(sp):
                self.kvm_mmu_prepare_zap_page(sp, invalid)
                continue
            sptes = self.get_written_sptes(sp, gpa, nbytes)
            local_flush |= bool(sptes)
            for sptep in sptes:
                entry = self.mem.spte_read(sptep)
                self.mmu_page_zap_pte(sp, sptep)
                if gentry and (sp.role.cr0_wp, sp.role.cr4_pae, sp.role.nxe) == \
                        (base.cr0_wp, base.cr4_pae, base.nxe):
                    self.mmu_pte_write_new_pte(vcpu, sp, sptep, gentry)
                remote_flush |= self.need_remote_flush(entry, self.mem.spte_read(sptep))
        self.mmu_pte_write_flush_tlb(vcpu, bool(invalid), remote_flush, local_flush)
        self.kvm_mmu_commit_zap_page(invalid)

    @staticmethod
    def detect_write_flooding(sp):
        """detect_write_flooding(): a page above level 1 written three times by
        the guest with no fault walking through it in between is no longer a
        page table: kvm_mmu_pte_write() zaps it.  (Level-1 pages are skipped:
        they can go unsync.  Misaligned writes, detect_write_misaligned(), are
        not generated: the guest stores whole ptes.)"""
        if sp.role.level == PT_PAGE_TABLE_LEVEL:
            return False
        sp.write_flooding_count += 1
        return sp.write_flooding_count >= 3

    @staticmethod
    def need_remote_flush(old, new):
        """need_remote_flush(): other vCPUs may cache `old`: they must flush when
        the new spte is gone, maps another pfn, or grants fewer rights (P, W, U,
        and X, NX counted inverted)."""
        if not is_shadow_present_pte(old):
            return False
        if not is_shadow_present_pte(new):
            return True
        if (old ^ new) & PT64_BASE_ADDR_MASK:
            return True
        old ^= PT64_NX_MASK
        new ^= PT64_NX_MASK
        return bool(old & ~new & PT64_PERM_MASK)

    def mmu_pte_write_flush_tlb(self, vcpu, zap_page, remote_flush, local_flush):
        """mmu_pte_write_flush_tlb(): nothing when pages were zapped (their commit
        flushes), else every TLB when need_remote_flush said so, else this vCPU's."""
        if zap_page:
            return
        if remote_flush:
            self.kvm_flush_remote_tlbs("kvm_mmu_pte_write: need_remote_flush")
        elif local_flush:
            self.kvm_mmu_flush_tlb(vcpu)

    def guest_read_gpte(self, vcpu, gpa, nbytes):
        """The whole new guest pte (a 4-byte write to an 8-byte pte reads all 8)."""
        width = 8 if self.guest_is_pae(vcpu) else 4
        return vcpu.guest.mem.read(gpa & ~(width - 1), width)

    def mmu_pte_write_new_pte(self, vcpu, sp, sptep, gpte):
        if sp.role.level != PT_PAGE_TABLE_LEVEL:
            return  # a PDE write only zaps
        if vcpu.kind == NONPAGING:
            return  # vcpu->arch.mmu.update_pte is nonpaging_update_pte(): nothing
        self.update_pte(vcpu, sp, sptep, gpte)

    def update_pte(self, vcpu, sp, sptep, gpte):
        """FNAME(update_pte): install the new guest pte as a speculative spte."""
        if self.prefetch_invalid_gpte(vcpu, sp, sptep, gpte):
            return
        pte_access = sp.role.access & self.gpte_access(vcpu, gpte)
        if not gpte & PT_DIRTY_MASK:
            pte_access &= ~ACC_WRITE_MASK
        gfn = (gpte & self.gpte_addr_mask(vcpu)) >> PAGE_SHIFT
        got = self.host.gfn_to_pfn(gfn, False)
        if got is None:
            return
        pfn, writable = got
        self.mmu_set_spte(sptep, pte_access, False, PT_PAGE_TABLE_LEVEL, gfn, pfn, True, writable)

    def gpte_addr_mask(self, vcpu):
        return PT64_BASE_ADDR_MASK if self.guest_is_pae(vcpu) else 0xFFFFF000

    def gpte_access(self, vcpu, gpte):
        access = ACC_EXEC_MASK
        if gpte & PT_WRITABLE_MASK:
            access |= ACC_WRITE_MASK
        if gpte & PT_USER_MASK:
            access |= ACC_USER_MASK
        if self.guest_is_pae(vcpu) and vcpu.guest.efer_nx and gpte & PT64_NX_MASK:
            access &= ~ACC_EXEC_MASK
        return access

    def prefetch_invalid_gpte(self, vcpu, sp, sptep, gpte):
        """prefetch_invalid_gpte() (3.10.99's mmu.c): reserved bits, not present or
        A clear: drop the spte instead and answer true.  FNAME(update_pte) then maps
        nothing; FNAME(prefetch_gpte) of bd6360cc0a54 (3.8 on) returns false, which
        ends FNAME(pte_prefetch)'s window (prefetch:stop-at-invalid-gpte-3.8; the
        impl's 2010 loop skips such a slot, spec/prefetch.py)."""
        from .walk import reserved_mask, PAGING_32, PAGING_64, PAGING_PAE

        g = vcpu.guest
        mode = PAGING_64 if g.efer_lma else PAGING_PAE if g.cr4_pae else PAGING_32
        bad = (not gpte & PT_PRESENT_MASK
               or gpte & reserved_mask(mode, 1, gpte, g.cr4_pse, g.efer_nx, g.maxphyaddr)
               or not gpte & PT_ACCESSED_MASK)
        if bad:
            self.drop_spte(sptep)
        return bool(bad)

    # -- a guest access, as on hardware ---------------------------------------------
    def guest_access(self, vcpu, addr, kind, user, value=None, size=None):
        """One guest access (`value`: a store of `size` bytes) through the MMU.

        The CPU walks the shadow (or TDP) tables; a leaf that permits the
        access completes it; otherwise the page-fault handler injects a #PF,
        exits for MMIO, emulates the access, or fixes the tables and the
        access is retried.  Returns (OK, gfn), (PAGE_FAULT, error code) or
        (MMIO, gfn).
        """
        from .walk import FETCH, WRITE

        write, fetch = kind == WRITE, kind == FETCH
        for _ in range(MAX_FAULT_RETRIES):
            self.vcpu_enter_guest(vcpu)
            out = self.tlb_access(vcpu, addr, write, user, fetch)
            if out is None and vcpu.kind == TDP:
                out = self.tdp_access(vcpu, addr, kind, user, write)
            elif out is None:
                out = self.shadow_access(vcpu, addr, write, user, fetch)
            if out is None:
                continue  # the fault fixed the tables: retry the instruction
            status, info, emulated = out
            if status == OK and value is not None:
                self.guest_store(vcpu, info, addr, value, size, emulated)
            return status, info
        raise Livelock(f"guest access {kind} {addr:#x}: still faulting after {MAX_FAULT_RETRIES} "
                       f"tries (each fault should fix what the access needs)")

    def tlb_access(self, vcpu, addr, write, user, fetch):
        """The CPU tries its TLB first.  A hit whose rights allow the access
        completes it with the cached translation (no A/D written anywhere); a
        write through an entry whose D is clear walks again (to set D); a hit
        that does not allow the access drops the entry (a page fault
        invalidates its address) and walks.  Returns (OK, gfn, False) or None."""
        tlb = vcpu.tlb
        e = tlb.lookup(addr)
        if e is None:
            return None
        wp = vcpu.kind != TDP or vcpu.guest.cr0_wp  # the host runs shadow guests with WP=1
        if not e.allows(write, user, fetch, wp) or (write and not e.dirty):
            tlb.invalidate(addr)
            return None
        tlb.hits += 1
        gfn, pfn = e.frame(addr)
        self.tlb_hit_audit(vcpu, e, gfn, pfn, write)
        return OK, gfn, False

    def tlb_hit_audit(self, vcpu, entry, gfn, pfn, write):
        """What the host demands of any access, whatever the guest allowed: it
        reaches the memslot's current page (not one the host unmapped, nor a
        deleted slot's), through no freed shadow page; a write while dirty
        logging is on finds its gfn already marked dirty; a write never
        reaches a guest page table KVM write-protects.  A TLB hit is where a
        missing flush shows: the walk would have faulted."""
        self.host_page_check(gfn, pfn)
        freed = [a for a in entry.pages if a in self.freed_pages]
        if freed:
            raise HostDemand("freed shadow page", (
                f"vcpu {vcpu.id} used a TLB entry for gfn {gfn:#x} cached through shadow page "
                f"{freed[0]:#x}, which has been freed"))
        if write:
            self.spte_write_audit(vcpu, gfn, "TLB entry")

    def spte_write_audit(self, vcpu, gfn, through="spte"):
        """What the host demands of a write the CPU completes through a writable
        spte, or a TLB entry cached from one (tlb_hit_audit): under dirty
        logging the gfn is already marked dirty (every path that makes an
        spte writable marks it: set_spte, fast_pf_fix_direct_spte), and the
        gfn is no guest page table KVM write-protects."""
        slot = self.host.gfn_to_memslot(gfn)
        if slot is not None and slot.dirty_log and gfn not in slot.dirty_bitmap:
            raise HostDemand("dirty log", (
                f"vcpu {vcpu.id} wrote gfn {gfn:#x} through a writable {through} while dirty "
                f"logging is on, but the gfn is not marked dirty"))
        if self.gfn_write_protected(gfn):
            raise HostDemand("write protection", (
                f"vcpu {vcpu.id} wrote gfn {gfn:#x}, a guest page table KVM write-protects, "
                f"through a writable {through} (no fault, no emulation)"))

    def gfn_write_protected(self, gfn):
        """Writes to `gfn` must trap: a valid indirect page that is not unsync
        shadows it (3.10: a sync page has no writable spte of its gfn)."""
        return any(not sp.unsync for sp in self.for_each_gfn_indirect_valid_sp(gfn))

    def shadow_access(self, vcpu, addr, write, user, fetch):
        """(status, info, emulated), or None to retry.  The CPU runs on KVM's
        tables; a fault goes to the vCPU's mmu.page_fault: FNAME(page_fault),
        or nonpaging_page_fault() for a vCPU with paging off."""
        hit = self.hw_translate(vcpu, addr, write, user, fetch)
        if hit is not None:
            sptep, level, entry = hit
            gfn = self.spte_gfn(sptep, level, addr)
            self.host_touch(sptep, level, gfn)
            if write:
                self.spte_write_audit(vcpu, gfn)
            vcpu.tlb.fill(addr, entry)
            return OK, gfn, False
        if vcpu.kind == NONPAGING:
            status, info = self.nonpaging_page_fault(vcpu, addr, write,
                                                     self.hw_error_code(vcpu, addr, write, user, fetch))
        else:
            status, info = self.shadow_page_fault(vcpu, addr, write, user, fetch)
        if status == "emulate":
            return OK, info, True
        if status == OK:
            return None
        return status, info, False

    def tdp_access(self, vcpu, addr, kind, user, write):
        before = len(vcpu.guest.mem.log)
        res = vcpu.guest.walk(addr, kind, user)  # the CPU walks the guest's own tables
        for w in vcpu.guest.mem.log[before:]:
            self.tdp_touch(vcpu, w.gfn, True)   # its A/D writes go through the TDP map
        if not res.ok:
            return PAGE_FAULT, res.fault, False
        out = self.tdp_touch(vcpu, res.gfn, write)
        e = self._tdp_leaf
        if out[0] == OK and not out[2] and e is not None:
            # The combined gva -> hpa translation, cached per 4K page; an INVLPG
            # anywhere in the guest's page drops it (its span).
            dirty = bool(res.path[-1].value & PT_DIRTY_MASK) or write
            vcpu.tlb.fill(addr, TlbEntry(PT_PAGE_TABLE_LEVEL, res.gfn, e.frame(res.gfn << PAGE_SHIFT)[1],
                                         res.rights, dirty and e.dirty, e.pages,
                                         span=self.guest_page_bits(vcpu, res.level),
                                         host_write=e.host_write))
        return out

    @staticmethod
    def guest_page_bits(vcpu, level):
        """Address bits below the guest's page at `level` (12, 21, 22 or 30)."""
        if level == PT_PAGE_TABLE_LEVEL:
            return PAGE_SHIFT
        return PAGE_SHIFT + (10 if not vcpu.guest.cr4_pae else 9) * (level - 1)

    def tdp_touch(self, vcpu, gfn, write):
        """Access guest-physical `gfn` through the TDP tables, faulting them in.

        Returns (status, gfn, emulated); the TDP leaf's TlbEntry is left in
        `_tdp_leaf` for tdp_access to combine with the guest's translation."""
        self._tdp_leaf = None
        slot = self.host.gfn_to_memslot(gfn)
        if slot is None or slot.invalid:
            return MMIO, gfn, False
        for _ in range(MAX_FAULT_RETRIES):
            self.vcpu_enter_guest(vcpu)
            hit = self.hw_translate(vcpu, gfn << PAGE_SHIFT, write, False, False)
            if hit is not None:
                sptep, level, entry = hit
                got = self.spte_gfn(sptep, level, gfn << PAGE_SHIFT)
                self.host_touch(sptep, level, got)
                if write:
                    self.spte_write_audit(vcpu, got)
                self._tdp_leaf = entry
                return OK, got, False
            r = self.tdp_page_fault(vcpu, gfn << PAGE_SHIFT, write)
            if r == MMIO:
                return MMIO, gfn, False
            if r == "emulate":
                return OK, gfn, True
        raise Livelock(f"tdp access to gfn {gfn:#x}: still faulting after {MAX_FAULT_RETRIES} tries "
                       f"(each fault should fix what the access needs)")

    def host_touch(self, sptep, level, gfn):
        """The CPU used the host page a leaf maps: it must be the memslot's current page."""
        spte = self.mem.spte_read(sptep)
        self.host_page_check(gfn, spte_to_pfn(spte) + (gfn & ((1 << KVM_HPAGE_GFN_SHIFT(level)) - 1)))

    def host_page_check(self, gfn, pfn):
        slot = self.host.gfn_to_memslot(gfn)
        want = slot.pfns[gfn - slot.base_gfn] if slot is not None and not slot.invalid else None
        if pfn != want:
            raise WrongHostPage(f"the guest used host page {pfn:#x} for gfn {gfn:#x}, which the "
                         f"memslot maps to {want if want is None else hex(want)}")

    def guest_store(self, vcpu, gfn, addr, value, size, emulated):
        """The data of a completed store; an emulated one is reported to the MMU."""
        gpa = (gfn << PAGE_SHIFT) | (addr & 0xFFF)
        vcpu.guest.mem.write(gpa, size, value, "guest")
        if emulated:  # emulator_write_phys(): kvm_write_guest marks the page dirty
            self.mark_page_dirty(gfn)
            self.kvm_mmu_pte_write(vcpu, gpa, value, size)

    # -- MMU notifiers (virt/kvm/kvm_main.c, the rmap handlers of mmu.c) -------------
    def kvm_handle_hva_range(self, slot, gfn_start, gfn_end, handler):
        """kvm_handle_hva_range(): `handler` on every rmap of every level whose
        frame meets gfn_start..gfn_end-1 (a large frame that the range only
        touches counts); the OR of what it returns."""
        ret = False
        for level in range(PT_PAGE_TABLE_LEVEL, KVM_NR_PAGE_SIZES + 1):
            first = gfn_to_index(gfn_start, slot.base_gfn, level)
            last = gfn_to_index(gfn_end - 1, slot.base_gfn, level)
            heads = slot.rmap[level]
            for idx in range(first, last + 1):
                head = heads.get(idx)
                if head is not None and head.val:
                    ret |= bool(handler(head))
        return ret

    def kvm_unmap_hva_range(self, slot, gfn_start, gfn_end):
        """kvm_mmu_notifier_invalidate_range_start(): kvm_unmap_rmapp on the range,
        then a flush if any spte went."""
        if self.kvm_handle_hva_range(slot, gfn_start, gfn_end, self.rmap.kvm_unmap_rmapp) \
                or self.tlbs_dirty:
            self.kvm_flush_remote_tlbs("kvm_mmu_notifier_invalidate_range_start")

    def kvm_set_spte_hva(self, slot, gfn, new_pfn, host_writable):
        """kvm_mmu_notifier_change_pte(): kvm_set_pte_rmapp on the page's rmaps,
        which flushes when it found an spte (3.10: the handler, not the notifier)."""
        if self.kvm_handle_hva_range(
                slot, gfn, gfn + 1, lambda head: self.rmap.kvm_set_pte_rmapp(head, host_writable, new_pfn)):
            self.kvm_flush_remote_tlbs("kvm_set_pte_rmapp")

    def kvm_age_hva(self, slot, gfn, test_only):
        """kvm_mmu_notifier_clear_flush_young() (kvm_age_rmapp, then a flush if the
        page was young: A was cleared) or kvm_mmu_notifier_test_young()
        (kvm_test_age_rmapp): is the page young?"""
        walker = self.rmap.kvm_test_age_rmapp if test_only else self.rmap.kvm_age_rmapp
        young = self.kvm_handle_hva_range(slot, gfn, gfn + 1, walker)
        if young and not test_only:
            self.kvm_flush_remote_tlbs("kvm_mmu_notifier_clear_flush_young")
        return young

    # -- memslots and the dirty log (virt/kvm/kvm_main.c, x86.c) --------------------
    def kvm_memslot_create(self, slot_id, base_gfn, npages, readonly, dirty_log, host_level):
        """KVM_SET_USER_MEMORY_REGION creating a slot: the VMM's backing memory,
        then kvm_arch_create_memslot() (rmaps, lpage_info) and its install."""
        pfns = self.host.alloc_backing(base_gfn, npages, host_level)
        self.host.memslots[slot_id] = KvmMemorySlot(slot_id, base_gfn, pfns, readonly, dirty_log,
                                                    host_level)

    def kvm_memslot_change_begin(self, slot_id):
        """KVM_SET_USER_MEMORY_REGION deleting or moving a slot, up to the zap's
        first lock break: the slot is installed as KVM_MEMSLOT_INVALID (its gfns
        fault as MMIO from now on) and kvm_arch_flush_shadow_memslot() starts."""
        self.host.memslots[slot_id].invalid = True
        self.zap_all_begin()

    def kvm_memslot_change_commit(self, slot_id, new_base=None):
        """The rest of the delete or move: the zap runs to its end, then the slot
        is removed, or installed at `new_base` with the same backing (its hva:
        kvm_arch_create_memslot() of the new slot)."""
        while self.zap_all_resume():
            pass
        old = self.host.memslots.pop(slot_id)
        if new_base is not None:
            self.host.memslots[slot_id] = KvmMemorySlot(
                slot_id, new_base, old.pfns, old.readonly, old.dirty_log, old.host_level,
                userspace_gfn=old.userspace_gfn)
            self.host.memslots[slot_id].split = set(old.split)

    def kvm_memslot_set_dirty_log(self, slot_id, on):
        """KVM_SET_USER_MEMORY_REGION changing KVM_MEM_LOG_DIRTY_PAGES: a new
        (empty) dirty bitmap, and on enabling kvm_arch_commit_memory_region()'s
        kvm_mmu_slot_remove_write_access()."""
        slot = self.host.memslots[slot_id]
        slot.dirty_log = on
        slot.dirty_bitmap = set()
        if on:
            self.kvm_mmu_slot_remove_write_access(slot)

    def kvm_mmu_slot_remove_write_access(self, slot):
        """Write-protect every spte of the slot, at every level (pt_protect false:
        SPTE_MMU_WRITEABLE stays, so fast_page_fault may restore W); then flush."""
        for level in range(PT_PAGE_TABLE_LEVEL, KVM_NR_PAGE_SIZES + 1):
            for head in list(slot.rmap[level].values()):
                self.rmap.rmap_write_protect(head, level, pt_protect=False)
        self.kvm_flush_remote_tlbs("kvm_mmu_slot_remove_write_access")

    def kvm_vm_ioctl_get_dirty_log(self, slot_id):
        """KVM_GET_DIRTY_LOG: report and clear the bitmap, write-protect what it
        reported, and flush if it reported anything."""
        slot = self.host.memslots[slot_id]
        dirty = sorted(slot.dirty_bitmap)
        slot.dirty_bitmap = set()
        for gfn in dirty:  # kvm_mmu_write_protect_pt_masked(): level 1, pt_protect false
            self.rmap.rmap_write_protect(slot.rmap_head(gfn, PT_PAGE_TABLE_LEVEL),
                                         PT_PAGE_TABLE_LEVEL, pt_protect=False)
        if dirty:
            self.kvm_flush_remote_tlbs("kvm_vm_ioctl_get_dirty_log")
        return dirty

    def kvm_arch_flush_shadow_memslot(self, slot):
        """Memslot delete or move: zap every shadow page (the work between the
        lock breaks of a zap is run at once here; diff/mmu.py's two-phase ops
        interleave other work with it)."""
        self.zap_all_begin()
        while self.zap_all_resume():
            pass
