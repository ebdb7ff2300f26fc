"""Modelled kernel memory: spte words and the pte_list_desc slab.

sptes live at 8-byte-aligned addresses and hold u64 values (a non-present spte
is 0, as from Linux 3.1 on).  pte_list_desc objects come from their own slab
(`mmu_pte_list_desc_cache`) at 8-byte-aligned addresses distinct from every
spte address, so that a tagged rmap head (facts section 3) can point at
either.  Freed descs are poisoned: any later access raises UseAfterFree.

`reads` counts slot reads (a head word or one desc slot), the cost measure of
the rmap family (rmap_next is O(n^2) in it, rmap_get_next O(n)).
"""

from .consts import U64_MASK
from .errors import KvmBug, UseAfterFree

SHADOW_PT_BASE = 0x1000_0000  # sptes: one 4K shadow page table per 512 entries
DESC_BASE = 0x8000_0000  # the pte_list_desc slab
DESC_STRIDE = 0x40       # one cache line per desc, as the kernel sizes them


class PteListDesc:
    """struct pte_list_desc: PTE_LIST_EXT spte pointers and `more`.

    `extra` holds the words a later layout adds, by name (Linux 6.4's
    spte_count and tail_count: impl/variants/rmap_tail_count.py); a fresh
    desc is zeroed, so a name never written reads 0.
    """

    __slots__ = ("addr", "sptes", "more", "freed", "extra")

    def __init__(self, addr, ext):
        self.addr = addr
        self.sptes = [0] * ext
        self.more = 0  # address of the next desc, 0 for NULL
        self.freed = False
        self.extra = {}


class KernelMemory:
    """The spte words and desc objects one MMU instance owns."""

    def __init__(self, pte_list_ext):
        self.pte_list_ext = pte_list_ext
        self.sptes = {}  # spte address -> u64
        self.descs = {}  # desc address -> PteListDesc (freed ones kept, poisoned)
        self._next_desc = DESC_BASE
        self.reads = 0
        self.desc_allocs = 0
        self.desc_frees = 0

    # -- spte words -------------------------------------------------------
    def spte_read(self, sptep):
        """*sptep."""
        return self.sptes.get(sptep, 0)

    def spte_write(self, sptep, value):
        """*sptep = value (mmu_spte_set / mmu_spte_update without tracking)."""
        if sptep & 7 or sptep == 0:
            raise KvmBug(f"spte pointer {sptep:#x} is not 8-byte aligned")
        self.sptes[sptep] = value & U64_MASK

    def present_sptes(self):
        """{address: value} of every non-zero spte word."""
        return {a: v for a, v in self.sptes.items() if v}

    # -- the desc slab ----------------------------------------------------
    def alloc_desc(self):
        """mmu_alloc_pte_list_desc(): a zeroed desc."""
        addr = self._next_desc
        self._next_desc += DESC_STRIDE
        desc = PteListDesc(addr, self.pte_list_ext)
        self.descs[addr] = desc
        self.desc_allocs += 1
        return desc

    def free_desc(self, desc):
        """mmu_free_pte_list_desc(): poison the object."""
        self.desc(desc.addr)
        desc.freed = True
        self.desc_frees += 1

    def desc(self, addr):
        """Dereference a desc pointer; a freed or wild pointer is a bug."""
        d = self.descs.get(addr)
        if d is None:
            raise KvmBug(f"wild pte_list_desc pointer {addr:#x}")
        if d.freed:
            raise UseAfterFree(f"pte_list_desc {addr:#x} used after free")
        return d

    def slot(self, desc, i):
        """Read desc->sptes[i], counting it."""
        if desc.freed:
            raise UseAfterFree(f"pte_list_desc {desc.addr:#x} used after free")
        self.reads += 1
        return desc.sptes[i]

    def live_descs(self):
        return [d for d in self.descs.values() if not d.freed]


class RmapHead:
    """One `unsigned long` rmap head (or sp->parent_ptes); `val` is its word."""

    __slots__ = ("val",)

    def __init__(self, val=0):
        self.val = val

    def __repr__(self):
        return f"RmapHead({self.val:#x})"
