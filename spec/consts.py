"""x86 and KVM constants: the one module that holds them.

Every number here is taken from ../shared/kvm-mmu-facts.md sections 1 and 2
(arch/x86/kvm/mmu.c and paging_tmpl.h of Linux 3.10/3.11).  spec/, impl/,
diff/ and proofs/ all import from here; nothing else defines a page-table bit.
"""

PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT

# Page-table geometry.
PT64_LEVEL_BITS = 9
PT64_ENT_PER_PAGE = 1 << PT64_LEVEL_BITS  # 512
PT32_LEVEL_BITS = 10
PT32_ENT_PER_PAGE = 1 << PT32_LEVEL_BITS  # 1024

PT_PAGE_TABLE_LEVEL = 1
PT_DIRECTORY_LEVEL = 2
PT_PDPE_LEVEL = 3
PT64_ROOT_LEVEL = 4
PT32E_ROOT_LEVEL = 3
PT32_ROOT_LEVEL = 2

PT64_BASE_ADDR_MASK = 0x000FFFFFFFFFF000
U64_MASK = (1 << 64) - 1

# Entry bits, guest pte and spte alike (facts section 2).
PT_PRESENT_SHIFT = 0
PT_WRITABLE_SHIFT = 1
PT_USER_SHIFT = 2
PT_PWT_SHIFT = 3
PT_PCD_SHIFT = 4
PT_ACCESSED_SHIFT = 5
PT_DIRTY_SHIFT = 6
PT_PAGE_SIZE_SHIFT = 7
PT_GLOBAL_SHIFT = 8
PT64_NX_SHIFT = 63

PT_PRESENT_MASK = 1 << PT_PRESENT_SHIFT
PT_WRITABLE_MASK = 1 << PT_WRITABLE_SHIFT
PT_USER_MASK = 1 << PT_USER_SHIFT
PT_PWT_MASK = 1 << PT_PWT_SHIFT
PT_PCD_MASK = 1 << PT_PCD_SHIFT
PT_ACCESSED_MASK = 1 << PT_ACCESSED_SHIFT
PT_DIRTY_MASK = 1 << PT_DIRTY_SHIFT
PT_PAGE_SIZE_MASK = 1 << PT_PAGE_SIZE_SHIFT
PT_GLOBAL_MASK = 1 << PT_GLOBAL_SHIFT
PT64_NX_MASK = 1 << PT64_NX_SHIFT

# Software bits of an spte (3.6+ positions).
PT_FIRST_AVAIL_BITS_SHIFT = 10
SPTE_HOST_WRITEABLE = 1 << PT_FIRST_AVAIL_BITS_SHIFT
SPTE_MMU_WRITEABLE = 1 << (PT_FIRST_AVAIL_BITS_SHIFT + 1)

# 32-bit paging: 4MB page base and the PSE36 bits (pde bits 13-16 -> pa 32-35).
PT32_4MB_BASE_MASK = 0xFFC00000
PT32_PSE36_SHIFT = 13
PT32_PSE36_BITS = 4
PT32_PSE36_MASK = ((1 << PT32_PSE36_BITS) - 1) << PT32_PSE36_SHIFT

# Access rights as KVM accumulates them.
ACC_EXEC_MASK = 1
ACC_WRITE_MASK = 2
ACC_USER_MASK = 4
ACC_ALL = ACC_EXEC_MASK | ACC_WRITE_MASK | ACC_USER_MASK

# Page-fault error code bits.
PFERR_PRESENT_MASK = 1 << 0
PFERR_WRITE_MASK = 1 << 1
PFERR_USER_MASK = 1 << 2
PFERR_RSVD_MASK = 1 << 3
PFERR_FETCH_MASK = 1 << 4

# rmap / pte_list.
PTE_LIST_EXT_3_4 = 4  # PTE_LIST_EXT up to Linux 3.4
PTE_LIST_EXT_3_6 = 3  # PTE_LIST_EXT from Linux 3.6 on
PTE_LIST_EXT_CHOICES = (PTE_LIST_EXT_3_6, PTE_LIST_EXT_3_4)
RMAP_RECYCLE_THRESHOLD = 1000

PTE_PREFETCH_NUM = 8
KVM_MMU_HASH_SHIFT = 10
KVM_NUM_MMU_PAGES = 1 << KVM_MMU_HASH_SHIFT


def KVM_HPAGE_GFN_SHIFT(level):
    """Shift from a gfn to its frame number at `level` (0, 9, 18)."""
    return (level - 1) * PT64_LEVEL_BITS


def KVM_PAGES_PER_HPAGE(level):
    """4K pages in one page of `level`: 1, 512, 262144."""
    return 1 << KVM_HPAGE_GFN_SHIFT(level)


def PT64_INDEX(address, level):
    """Index of `address` in a 64-bit-format table of `level`."""
    return (address >> (PAGE_SHIFT + (level - 1) * PT64_LEVEL_BITS)) & (PT64_ENT_PER_PAGE - 1)


def PT32_INDEX(address, level):
    """Index of `address` in a 32-bit-format table of `level`."""
    return (address >> (PAGE_SHIFT + (level - 1) * PT32_LEVEL_BITS)) & (PT32_ENT_PER_PAGE - 1)


def PT64_LVL_ADDR_MASK(level):
    """Address bits 12+9(level-1) .. 51."""
    return PT64_BASE_ADDR_MASK & ~((1 << (PAGE_SHIFT + (level - 1) * PT64_LEVEL_BITS)) - 1)


def spte_to_pfn(spte):
    """spte_to_pfn() of mmu.c; works on ints and z3 bit-vectors alike."""
    return (spte & PT64_BASE_ADDR_MASK) >> PAGE_SHIFT
