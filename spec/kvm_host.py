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

Host pages are pfns with a writable bit (a COW/KSM page is read-only) and a
`host_level`: the largest page size the host backs the slot with (1 = 4K,
2 = THP 2MB, 3 = hugetlbfs 1GB); the host is modelled per slot, not per hva.
"""

from .consts import KVM_HPAGE_GFN_SHIFT, PT_DIRECTORY_LEVEL, PT_PAGE_TABLE_LEVEL
from .gfn import gfn_to_index
from .memory import RmapHead

KVM_NR_PAGE_SIZES = 3
HOST_PFN_BASE = 0x100  # host pfns are small numbers, far below the shadow page tables


class KvmMemorySlot:
    def __init__(self, slot_id, base_gfn, pfns, readonly=False, dirty_log=False, host_level=1):
        self.id = slot_id
        self.base_gfn = base_gfn
        self.npages = len(pfns)
        self.pfns = list(pfns)  # gfn - base_gfn -> host pfn (the hva's page)
        self.readonly = readonly
        self.dirty_log = dirty_log
        self.host_level = host_level
        self.dirty_bitmap = set()
        self.invalid = False    # KVM_MEMSLOT_INVALID: being deleted or moved
        self.rmap = {level: {} for level in range(1, KVM_NR_PAGE_SIZES + 1)}
        self.lpage_write_count = {level: {} for level in range(2, KVM_NR_PAGE_SIZES + 1)}
        self._disallow_edges()

    def _disallow_edges(self):
        """kvm_arch_create_memslot(): a large frame that crosses the slot's edge
        is disallowed (write_count 1) at each large level."""
        for level in range(PT_DIRECTORY_LEVEL, KVM_NR_PAGE_SIZES + 1):
            span = 1 << KVM_HPAGE_GFN_SHIFT(level)
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
    """Memslots and host pages: gfn_to_memslot(), gfn_to_pfn()."""

    def __init__(self):
        self.memslots = {}
        self.pfn_writable = {}
        self.next_pfn = HOST_PFN_BASE

    def alloc_pfn(self, writable=True):
        pfn = self.next_pfn
        self.next_pfn += 1
        self.pfn_writable[pfn] = writable
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
        slot = self.gfn_to_memslot(gfn)
        return slot.host_level if slot is not None else PT_PAGE_TABLE_LEVEL
