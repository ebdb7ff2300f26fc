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
# The permission bits need_remote_flush() compares (NX counted inverted).
PT64_PERM_MASK = PT_PRESENT_MASK | PT_WRITABLE_MASK | PT_USER_MASK | PT64_NX_MASK

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


# -- The guest page walk (walk family, facts sections 1, 2 and 8) -------------
# Control-register bits the walk reads.
X86_CR0_WP = 1 << 16
X86_CR4_PSE = 1 << 4
X86_CR4_PAE = 1 << 5
EFER_LMA = 1 << 10
EFER_NX = 1 << 11
# ... and the ones the live machine's VMM sets to enter long mode (live/).
X86_CR0_PE = 1 << 0
X86_CR0_ET = 1 << 4
X86_CR0_NE = 1 << 5
X86_CR0_PG = 1 << 31
EFER_SCE = 1 << 0
EFER_LME = 1 << 8
MSR_EFER = 0xC0000080
X86_EFLAGS_FIXED = 1 << 1  # RFLAGS bit 1 always reads 1
X86_EFLAGS_TF = 1 << 8

PT32_ENT_SIZE = 4  # sizeof(pt_element_t) for PTTYPE 32
PT64_ENT_SIZE = 8  # sizeof(pt_element_t) for PTTYPE 64
PT32_BASE_ADDR_MASK = 0xFFFFF000  # PAGE_MASK on a u32 guest pte
PT32_VADDR_BITS = 32  # linear-address width of 32-bit and PAE paging
PT64_VADDR_BITS = 48  # linear-address width of 4-level paging (canonical)
PT64_PHYS_BITS = 52  # architectural limit of MAXPHYADDR; PT64_BASE_ADDR_MASK ends at bit 51
MAXPHYADDR_CHOICES = (36, 40, 46, 48, 52)  # cpuid_maxphyaddr() values the walk family samples

# PAE: the four PDPTEs, loaded from CR3 into registers; index (addr >> 30) & 3.
PT32E_PDPTE_SHIFT = 30
PT32E_NR_PDPTES = 4
PT32E_CR3_PDPT_MASK = 0xFFFFFFE0  # CR3 bits 31:5 locate the 32-byte PDPT

# The PAT bit of a large-page entry (bit 7 is PS there; in a 4K pte bit 7 is PAT).
PT_PAT_LARGE_SHIFT = 12
PT_PAT_LARGE_MASK = 1 << PT_PAT_LARGE_SHIFT


def rsvd_bits(s, e):
    """rsvd_bits(s, e) of mmu.c: a mask of bits s..e inclusive (empty when s > e)."""
    if s > e:
        return 0
    return ((1 << (e - s + 1)) - 1) << s


# Reserved bits that do not depend on MAXPHYADDR or EFER.NX (Intel SDM vol. 3
# tables 4-5, 4-8, 4-15 and 4-17; facts section 8).
PT32E_PDPTE_RSVD_MASK = rsvd_bits(1, 2) | rsvd_bits(5, 8)  # PAE PDPTE, plus bits 63:MAXPHYADDR
PT32_4MB_RSVD_MASK = rsvd_bits(PT32_PSE36_SHIFT + PT32_PSE36_BITS, 21)  # bits 21:17 (PSE-36)
PT64_2MB_RSVD_MASK = rsvd_bits(PAGE_SHIFT + 1, PAGE_SHIFT + PT64_LEVEL_BITS - 1)  # bits 20:13
PT64_1GB_RSVD_MASK = rsvd_bits(PAGE_SHIFT + 1, PAGE_SHIFT + 2 * PT64_LEVEL_BITS - 1)  # bits 29:13
PT64_PML4E_RSVD_MASK = PT_PAGE_SIZE_MASK  # PS must be 0 in a PML4E


def PT64_LVL_OFFSET_MASK(level):
    """Address bits 12 .. 12+9(level-1)-1: the 4K frames inside a page of `level`."""
    return PT64_BASE_ADDR_MASK & ((1 << (PAGE_SHIFT + (level - 1) * PT64_LEVEL_BITS)) - 1)


def PT32_LVL_ADDR_MASK(level):
    """Bits 12+10(level-1) .. 31 of a u32 entry (level 2: the 4MB base 0xffc00000)."""
    return PT32_BASE_ADDR_MASK & ~((1 << (PAGE_SHIFT + (level - 1) * PT32_LEVEL_BITS)) - 1)


def PT32_LVL_OFFSET_MASK(level):
    """Address bits 12 .. 12+10(level-1)-1 (level 2: bits 12..21 of a 4MB page)."""
    return PT32_BASE_ADDR_MASK & ((1 << (PAGE_SHIFT + (level - 1) * PT32_LEVEL_BITS)) - 1)


# -- gfn derivation of direct pages (gfn family, facts sections 4 and 5) -----
# 2.6.35's __direct_map masked every direct child's gfn with this (2MB-aligned
# at every level); mainline (2.6.36) uses PT64_LVL_ADDR_MASK(level) instead.
PT64_DIR_BASE_ADDR_MASK = PT64_BASE_ADDR_MASK & ~((1 << (PAGE_SHIFT + PT64_LEVEL_BITS)) - 1)

# Sizes of the per-page arrays of struct kvm_mmu_page (the gfn bench).
SPTE_BYTES = 8    # sizeof(u64): one entry of sp->spt
GFN_T_BYTES = 8   # sizeof(gfn_t): one entry of sp->gfns

# -- zapping all shadow pages by generation (zap family, facts section 7) ----
# kvm_zap_obsolete_pages() may drop mmu_lock (cond_resched_lock) once it has
# zapped this many pages since the last break (3.11).
BATCH_ZAP_PAGES = 10
