"""Which sptes of a shadow page a guest write to its page table touches.

The arithmetic of get_written_sptes() (mmu.c, 2.6.3x-3.11), in our own words:
for a shadow page of a 32-bit guest table (role.cr4_pae clear) the byte offset
of the write is doubled (4-byte guest entries, 8-byte sptes); at level 2 it is
rounded down to an spte and doubled again, since a guest PDE maps 4MB and a
shadow PDE 2MB, and two sptes are touched.  The page offset's bits above 12
then name the quadrant the write falls in: a page whose role.quadrant differs
is not touched at all.

Written with `&`, `|` and shifts only, so proofs/gfn.py evaluates it on z3
bit-vectors (spec/bits.py); `level` and `gpte_is_4_bytes` are Python values.
kvm_mmu_pte_write in spec/mmu.py is meant to call `written_spte_slots` (or a
static method of the same name on the MMU class, which proofs/gfn.py prefers).
"""

from .consts import PAGE_SHIFT, PAGE_SIZE, PT32_ROOT_LEVEL, SPTE_BYTES


def written_spte_slots(page_offset, level, gpte_is_4_bytes):
    """(quadrant, first spte index, number of sptes) a write at `page_offset` touches.

    `page_offset` is offset_in_page(gpa) of the write in the guest page table.
    For 8-byte guest entries the quadrant is 0 and never compared (the kernel
    skips the check); for 4-byte entries the caller must compare it with
    sp->role.quadrant and touch nothing on a mismatch.
    """
    nspte = 1
    quadrant = 0
    if gpte_is_4_bytes:
        page_offset = page_offset << 1            # 32 -> 64: 4-byte gptes, 8-byte sptes
        if level == PT32_ROOT_LEVEL:
            page_offset = page_offset & ~7        # round down to an spte ...
            page_offset = page_offset << 1        # ... a 4MB guest PDE is two 2MB sptes
            nspte = 2
        quadrant = page_offset >> PAGE_SHIFT
        page_offset = page_offset & (PAGE_SIZE - 1)
    # page_offset / sizeof(u64), as a shift: z3's `/` on bit-vectors is signed.
    return quadrant, page_offset >> _SPTE_SHIFT, nspte


_SPTE_SHIFT = SPTE_BYTES.bit_length() - 1  # 3
