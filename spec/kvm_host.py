"""The host side of a VM: memslots, host pages, rmap arrays, lpage_info.

Models struct kvm_memory_slot of Linux 3.10 (facts sections 3 and 9): a slot
maps guest frames base_gfn .. base_gfn+npages-1 to host pages; it carries one
rmap head per (level, index) (index = gfn_to_index), the lpage_info
write_count that forbids large mappings (a large frame that crosses a slot
edge, or holds a shadowed guest table), the dirty bitmap, and the flags
KVM_MEM_READONLY and KVM_MEM_LOG_DIRTY_PAGES, and KVM_MEMSLOT_INVALID while
a delete or move flushes the shadow pages: gfn_to_memslot() still finds
such a slot (its rmaps are needed to zap), but its hva translation fails, so
no fault or prefetch maps it.

Host pages are pfns with a writable bit (a COW/KSM page is read-only).  A
slot's `host_level` is the largest page size the host backs it with (1 =
4K, 2 = THP 2MB, 3 = hugetlbfs 1GB); huge pages are aligned in the host's
virtual addresses (`userspace_gfn`, the slot's hva >> PAGE_SHIFT), and the
host may split one (`split`), after which its frame is backed by 4K pages.

`KvmHost` is also the host's mm as far as KVM sees it: what it does to the
pages behind a slot (madvise(MADV_DONTNEED), a KSM merge, a COW break, the
THP split any of those needs first) it announces to the VM's MMU notifier
(`notifier`, the MMU: kvm_mmu_notifier_invalidate_range_start and
kvm_mmu_notifier_change_pte of virt/kvm/kvm_main.c), before the pages
change.  The diff machines call these host functions and the kernel's
notifier callbacks run; nothing outside the model does the kernel's work.
"""

from .consts import KVM_HPAGE_GFN_SHIFT, PT_DIRECTORY_LEVEL, PT_PAGE_TABLE_LEVEL
from .gfn import gfn_to_index
from .memory import RmapHead

KVM_NR_PAGE_SIZES = 3
HOST_PFN_BASE = 0x100  # host pfns are small numbers, far below the shadow page tables


class KvmMemorySlot:
    def __init__(self, slot_id, base_gfn, pfns, readonly=False, dirty_log=False, host_level=1,
                 userspace_gfn=None):
        self.id = slot_id
        self.base_gfn = base_gfn
        self.npages = len(pfns)
        self.pfns = list(pfns)  # gfn - base_gfn -> host pfn (the hva's page)
        self.readonly = readonly
        self.dirty_log = dirty_log
        self.host_level = host_level
        # userspace_addr >> PAGE_SHIFT: a move keeps it, so a slot moved to a base
        # of another alignment no longer lines up with the host's huge pages
        self.userspace_gfn = base_gfn if userspace_gfn is None else userspace_gfn
        self.split = set()      # host huge frames ((hva >> 12) >> 9) split into 4K pages
        self.dirty_bitmap = set()
        self.invalid = False    # KVM_MEMSLOT_INVALID: being deleted or moved
        self.rmap = {level: {} for level in range(1, KVM_NR_PAGE_SIZES + 1)}
        self.lpage_write_count = {level: {} for level in range(2, KVM_NR_PAGE_SIZES + 1)}
        self._disallow_edges()

    def hva_gfn(self, gfn):
        """The host virtual page (hva >> PAGE_SHIFT) backing `gfn`."""
        return gfn - self.base_gfn + self.userspace_gfn

    def host_page_level(self, gfn):
        """The size of the host page backing `gfn` (host_mapping_level()): the
        slot's host level, or 4K in a huge frame the host has split."""
        if self.host_level > PT_PAGE_TABLE_LEVEL and \
                self.hva_gfn(gfn) >> KVM_HPAGE_GFN_SHIFT(PT_DIRECTORY_LEVEL) in self.split:
            return PT_PAGE_TABLE_LEVEL
        return self.host_level

    def _disallow_edges(self):
        """kvm_arch_create_memslot(): a large frame that crosses the slot's edge
        is disallowed (write_count 1) at each large level, and every frame of a
        level where the slot's gfns and its hva are not equally aligned (the
        host's huge pages cannot line up with the guest's)."""
        for level in range(PT_DIRECTORY_LEVEL, KVM_NR_PAGE_SIZES + 1):
            span = 1 << KVM_HPAGE_GFN_SHIFT(level)
            if (self.base_gfn ^ self.userspace_gfn) & (span - 1):
                last = gfn_to_index(self.base_gfn + self.npages - 1, self.base_gfn, level)
                self.lpage_write_count[level] = {i: 1 for i in range(last + 1)}
                continue
            if self.base_gfn & (span - 1):
                self.lpage_write_count[level][0] = 1
            last = self.base_gfn + self.npages
            if last & (span - 1):
                idx = gfn_to_index(last - 1, self.base_gfn, level)
                self.lpage_write_count[level][idx] = self.lpage_write_count[level].get(idx, 0) + 1
                if idx == 0 and self.base_gfn & (span - 1):
                    self.lpage_write_count[level][0] = 1  # one frame, counted once

    def contains(self, gfn):
        return self.base_gfn <= gfn < self.base_gfn + self.npages

    def rmap_head(self, gfn, level):
        """__gfn_to_rmap(): the rmap head of `gfn` at `level`."""
        idx = gfn_to_index(gfn, self.base_gfn, level)
        heads = self.rmap[level]
        head = heads.get(idx)
        if head is None:
            head = heads[idx] = RmapHead()
        return head

    def write_count(self, gfn, level):
        return self.lpage_write_count[level].get(gfn_to_index(gfn, self.base_gfn, level), 0)

    def add_write_count(self, gfn, delta):
        """account_shadowed() (+1) / unaccount_shadowed() (-1) at every large level."""
        for level in range(PT_DIRECTORY_LEVEL, KVM_NR_PAGE_SIZES + 1):
            idx = gfn_to_index(gfn, self.base_gfn, level)
            n = self.lpage_write_count[level].get(idx, 0) + delta
            if n < 0:
                raise ValueError(f"lpage write_count of gfn {gfn:#x} level {level} below 0")
            self.lpage_write_count[level][idx] = n


class KvmHost:
    """Memslots and host pages: gfn_to_memslot(), gfn_to_pfn(); and the host mm's
    changes to the pages behind a slot, announced to `notifier` (the MMU)."""

    def __init__(self):
        self.memslots = {}
        self.pfn_writable = {}
        self.next_pfn = HOST_PFN_BASE
        self.notifier = None  # the VM's MMU: kvm_unmap_hva_range(), kvm_set_spte_hva()

    def alloc_pfn(self, writable=True):
        pfn = self.next_pfn
        self.next_pfn += 1
        self.pfn_writable[pfn] = writable
        return pfn

    def alloc_backing(self, base_gfn, npages, host_level):
        """The pfns of a new slot's backing memory: contiguous, and aligned like
        the gfns below the host's page size (a THP's 512 pages are one frame)."""
        span = 1 << KVM_HPAGE_GFN_SHIFT(host_level)
        self.next_pfn = (self.next_pfn + 2 * span) & ~(span - 1)
        self.next_pfn += base_gfn & (span - 1)  # pfn and gfn agree below the large page
        return [self.alloc_pfn() for _ in range(npages)]

    # -- the host mm, as the MMU notifier sees it ------------------------------------
    def _range(self, slot, gfn, npages):
        return max(gfn, slot.base_gfn), min(gfn + npages, slot.base_gfn + slot.npages)

    def split_huge_pages(self, slot, lo, hi):
        """split_huge_page() of every huge frame that [lo, hi) touches: the host
        invalidates the whole huge range (the notifier drops every spte of it,
        large ones included), then maps the same pages with 4K ptes."""
        if slot.host_level <= PT_PAGE_TABLE_LEVEL or lo >= hi:
            return
        shift = KVM_HPAGE_GFN_SHIFT(PT_DIRECTORY_LEVEL)
        for frame in range(slot.hva_gfn(lo) >> shift, (slot.hva_gfn(hi - 1) >> shift) + 1):
            if frame in slot.split:
                continue
            start = max((frame << shift) - slot.userspace_gfn + slot.base_gfn, slot.base_gfn)
            end = min(((frame + 1) << shift) - slot.userspace_gfn + slot.base_gfn,
                      slot.base_gfn + slot.npages)
            self.notifier.kvm_unmap_hva_range(slot, start, end)
            slot.split.add(frame)

    def madvise_dontneed(self, slot, gfn, npages):
        """madvise(MADV_DONTNEED) on the backing of gfn..gfn+npages-1: the huge
        frames it cuts are split first, the range is invalidated
        (kvm_mmu_notifier_invalidate_range_start), and its pages are freed: the
        next fault finds new ones."""
        lo, hi = self._range(slot, gfn, npages)
        if lo >= hi:
            return
        self.split_huge_pages(slot, lo, hi)
        self.notifier.kvm_unmap_hva_range(slot, lo, hi)
        for g in range(lo, hi):
            slot.pfns[g - slot.base_gfn] = self.alloc_pfn()

    def ksm_merge(self, slot, gfn):
        """KSM merges the page behind `gfn` into a shared read-only page; KSM never
        merges inside a THP, so its frame is split first.  The new pte is
        announced with set_pte_at_notify() (kvm_mmu_notifier_change_pte), as
        before 2ec74c3ef2d8 moved every notifier outside the PT lock; from then
        on an invalidate_range_start around it drops the sptes first."""
        lo, hi = self._range(slot, gfn, 1)
        self.split_huge_pages(slot, lo, hi)
        pfn = self.alloc_pfn(writable=False)
        self.notifier.kvm_set_spte_hva(slot, gfn, pfn, False)
        slot.pfns[gfn - slot.base_gfn] = pfn

    def break_cow(self, slot, gfn):
        """A write fault on a read-only (COW/KSM) page of a writable slot: do_wp_page()
        invalidates the page (the notifier drops its sptes) and maps a new
        writable copy.  Returns the new pfn."""
        self.split_huge_pages(slot, gfn, gfn + 1)
        self.notifier.kvm_unmap_hva_range(slot, gfn, gfn + 1)
        pfn = self.alloc_pfn(writable=True)
        slot.pfns[gfn - slot.base_gfn] = pfn
        return pfn

    def gfn_to_memslot(self, gfn):
        for slot in self.memslots.values():
            if slot.contains(gfn):
                return slot
        return None

    def gfn_to_pfn(self, gfn, write):
        """(pfn, map_writable) or None when no slot maps `gfn`, or its slot is
        KVM_MEMSLOT_INVALID (the hva is bad: the fault exits like MMIO)."""
        slot = self.gfn_to_memslot(gfn)
        if slot is None or slot.invalid:
            return None
        pfn = slot.pfns[gfn - slot.base_gfn]
        writable = self.pfn_writable[pfn] and not slot.readonly
        return pfn, writable

    def host_mapping_level(self, gfn):
        """host_mapping_level(): the size of the host page behind `gfn`."""
        slot = self.gfn_to_memslot(gfn)
        return slot.host_page_level(gfn) if slot is not None else PT_PAGE_TABLE_LEVEL
