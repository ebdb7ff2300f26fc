"""A small 4-level guest page table for probes and tests.

Laid out the way the mmu family's guest lays out its own: PML4 at gfn 0x10
(CR3 = 0x10000), then PDPT, PD and PT at gfns 0x11..0x13, the page table
mapping gva 0..2MB; entry AGENT_PML4_INDEX of the PML4 is the agent's.
Entries are built here and written by the host before the first KVM_RUN;
after it only the guest may change them (a store through the agent).
"""

import struct

from spec.consts import PAGE_SHIFT, PT_PRESENT_MASK, PT_USER_MASK, PT_WRITABLE_MASK

from .agent import AGENT_PML4_INDEX, agent_pml4e

ROOT_GFN = 0x10
PML4, PDPT, PD, PT = ((ROOT_GFN + k) << PAGE_SHIFT for k in range(4))
TABLE = PT_PRESENT_MASK | PT_WRITABLE_MASK | PT_USER_MASK   # non-leaf: no A, no D


class SmallPageTable:
    """PML4 -> PDPT -> PD -> PT for gva 0..2MB; `leaves` maps gva pages."""

    def __init__(self):
        self.entries = {PML4: PDPT | TABLE, PML4 + 8 * AGENT_PML4_INDEX: agent_pml4e(),
                        PDPT: PD | TABLE, PD: PT | TABLE}

    @property
    def cr3(self):
        return PML4

    @staticmethod
    def pte_gpa(gva):
        """gpa of the level-1 entry that maps gva (gva below 2MB)."""
        if not 0 <= gva < 1 << 21:
            raise ValueError(f"gva {gva:#x} is outside the 2MB this table maps")
        return PT + 8 * (gva >> PAGE_SHIFT)

    def map(self, gva, gfn, flags):
        """A leaf for gva's page -> gfn with `flags` (P, W, U, A, D, NX bits)."""
        self.entries[self.pte_gpa(gva)] = (gfn << PAGE_SHIFT) | flags
        return self

    def write_to(self, vm):
        """Host writes of every entry (set-up, before the first KVM_RUN)."""
        for gpa, value in sorted(self.entries.items()):
            vm.write_memory(gpa, struct.pack("<Q", value))
        return self


def read_entry(vm, gpa):
    return struct.unpack("<Q", vm.read_memory(gpa, 8))[0]
