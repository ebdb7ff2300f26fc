"""The fastpf family: the mmu family's VM, run for the fastpf:* variants.

3.10's fast_page_fault() (spec/mmu.py) runs on direct MMUs: TDP vCPUs, and
vCPUs of a shadow-paging VM with paging off (spec.mmu.NONPAGING, which mixed
mode's vcpu_create draws: their direct sptes share the rmaps of the gfns the
other vCPUs shadow).  It gives a read-only spte W back, without mmu_lock,
when SPTE_HOST_WRITEABLE and SPTE_MMU_WRITEABLE are both set, and marks
kvm_mmu_page_get_gfn(sp, index) dirty.  The oracles that see it go wrong are
the host's: "dirty log" (a write completes through a writable spte, or a
TLB entry, to a gfn not marked dirty while dirty logging is on; and
GET_DIRTY_LOG misses a gfn the guest wrote), "write protection" (a store
reaches a guest page table KVM write-protects without trapping), and the
auditor's write-protect rule.  This family reuses the mmu family's machine
and world; it exists so that `mmuspec diff --family fastpf` names the
question and `--variant fastpf:*` resolves here.  Its machine differs first
in one draw: a shadow VM starts with a paging-off vCPU beside vCPU 0 in half the
examples (the mmu machine's mixed mode adds one only now and then), so the
search spends its time where the two software bits matter.

Two rules steer it toward the fast path's own cases (tested: `mmuspec bench
coverage`), each something a VMM or guest does, each in a swarm group of the
mmu machine's (dirty_log, memslots) so that the examples without it keep
their pace:

  migration_round      a VMM's live migration over a page a direct vCPU uses:
                       dirty logging on, a write, GET_DIRTY_LOG, a write again
                       (the fast path gives W back: the spte is still
                       SPTE_MMU_WRITEABLE), the final GET_DIRTY_LOG; then,
                       drawn, the migration is cancelled: logging off and one
                       more write, where mapping_level() allows a large page
                       again over the 4K table logging left (the fast path
                       stops above it, the slow path drops the table)
  paging_off_access    a vCPU with paging off (an AP in real mode, firmware)
                       uses guest-physical memory directly: any memslot's
                       pages (read-only and high ones too), its edges, just
                       past its end (MMIO)

Four more, in a swarm group of this machine's own ("corners", drawn like the
mmu machine's groups: half the examples), reach the guest-side corners of the
shadow vCPUs these VMs run beside the direct ones:

  self_map             a guest kernel's recursive page-table slot (a root
                       entry pointing at the root itself, A clear), used:
                       FNAME(walk_addr) reads that entry at two levels, its
                       cmpxchg of A finds it changed and retries the walk
                       (twice, with two such slots)
  table_at_two_levels  a page-table page the guest also links as a page
                       directory while its shadow page is unsync (a kernel
                       reusing a freed table page): kvm_mmu_get_page() of the
                       level-2 page syncs the gfn's pages (kvm_sync_pages)
  nx_data_pages        a kernel's W^X data mapping: EFER.NX on, neighbouring
                       ptes with XD set, used (NX sptes, prefetched ones too; a
                       fetch faults)
  pae_bad_pdpt         a PAE guest loads CR3 with a page that is no valid PDPT,
                       or toggles CR4.PSE while its PDPT holds a reserved bit:
                       the #GP of load_pdptrs()

In one example in eight the vCPUs' TLBs hold nothing (capacity 0: every
entry evicted at once, which the architecture allows; the live family's
models run so).
"""

from hypothesis import strategies as st
from hypothesis.stateful import initialize, precondition, rule

from impl.mmu import ShadowMmu as ImplShadowMmu
from spec.consts import (PAGE_SHIFT, PT64_NX_MASK, PT_ACCESSED_MASK, PT_PRESENT_MASK, PT_USER_MASK,
                         PT_WRITABLE_MASK)
from spec.mmu import NONPAGING
from spec.walk import ACCESS_KINDS, PAGING_32, PAGING_64, PAGING_PAE, READ, WRITE

from .families import Family
from .mmu import TABLE_GFNS, MigrationRound, MmuMachine, make_world, not_changing, swarm


class FastpfMachine(MigrationRound, MmuMachine):
    """The mmu machine; in a shadow VM of mixed mode, a paging-off vCPU from the start
    (drawn: half the examples)."""

    @initialize(data=st.data())
    def setup(self, data):
        self.no_tlb = data.draw(st.sampled_from([False] * 7 + [True]), label="TLBs that hold nothing")
        super().setup(data)
        if self.world.mode == "mixed" and self.vmode != "tdp" and \
                data.draw(st.booleans(), label="a paging-off vCPU from the start"):
            self.vcpus.append(len(self.vcpus))
            self.nonpaging.add(self.vcpus[-1])
            self.emit(["vcpu_create", {"vcpu": self.vcpus[-1], "mode": NONPAGING, "cr3": 0,
                                       "cr0_wp": True, "cr4_pse": True, "efer_nx": True}])

    def emit(self, op):
        if op[0] == "vm_setup" and self.no_tlb:
            op = [op[0], {**op[1], "tlb_capacity": 0}]
        super().emit(op)

    def direct_vcpus(self):
        """The vCPUs whose MMU is direct (fast_page_fault runs for them): every vCPU
        of a TDP VM, the paging-off ones of a shadow VM."""
        return list(self.vcpus) if self.vmode == "tdp" else sorted(self.nonpaging)

    def migration_vcpus(self):
        """migration_round (diff.mmu.MigrationRound) over a page a direct vCPU uses."""
        return self.direct_vcpus() or self.vcpus

    @swarm("memslots")
    @precondition(lambda self: bool(self.nonpaging))
    @rule(pick=st.integers(0, 1 << 16), where=st.sampled_from(["first", "inside", "last", "past"]),
          kind=st.sampled_from(ACCESS_KINDS), off=st.integers(0, 0x1FF))
    def paging_off_access(self, pick, where, kind, off):
        """A paging-off vCPU's access to guest-physical memory (module docstring)."""
        v = sorted(self.nonpaging)[pick % len(self.nonpaging)]
        slots = sorted(self.world.oracle.slots.values())
        base, n, _, _ = slots[(pick >> 2) % len(slots)]
        gfn = {"first": base, "inside": base + (pick >> 4) % n, "last": base + n - 1,
               "past": base + n}[where]
        self.emit_access(v, (gfn << PAGE_SHIFT) | (off << 3), kind, False)

    def draw_swarm(self, data):
        """The mmu machine's groups, and "corners" (the four rules after this): the
        shadow vCPUs' questions, not the fast path's, so in a group of their own
        that half the examples leave out (tested: the fastpf:* variants' examples
        to failure with det.py, seeds 0-4, as without these rules).  The mmu
        machine's "patterns" are always on, as in SmpPatternMachine: one of them,
        paging_off_store_to_a_new_table, is the fast path's own question (a page
        a paging-off vCPU wrote becomes a guest page table); with them in half
        the examples, wp-keeps-mmu-writable took a median 1.16 s, with them in
        every example 0.08 s (det.py, seeds 0-4; the other two 0.38 and 0.23 s
        before, 0.14 and 0.17 s after)."""
        corners = data.draw(st.booleans(), label="swarm corners")
        return super().draw_swarm(data) | ({"corners"} if corners else set()) | {"patterns"}

    @swarm("corners")
    @precondition(lambda self: self.vmode != "tdp" and not getattr(self, "self_mapped", False))
    @rule(pick=st.integers(0, 1 << 16), k=st.integers(2, 255), j=st.integers(2, 255))
    def self_map(self, pick, k, j):
        """A recursive page-table slot (module docstring): root entries k (and j, in a
        64-bit guest) point at the root, A clear; then a load through them.  Once
        per example: the search of the translations a careless guest's TLB may
        still hold (spec/tlb.py) goes over the store history, and grows with every
        table reached at several levels (diff/live.py's self_map says more)."""
        self.self_mapped = True
        root = self.roots[0]
        entries = 1024 if self.size == 4 else 512
        if self.gmode == PAGING_PAE:   # the PDPT is a register set: the self-map is the PD's
            root = TABLE_GFNS[1]
        k, j = k % entries, j % entries
        mem = self.world.oracle.mem
        if k == j or any(mem.read((root << PAGE_SHIFT) + i * self.size, self.size) & PT_PRESENT_MASK
                         for i in (k, j)):
            return
        v = self.smp[pick % len(self.smp)]
        link = self.entry(root, PT_PRESENT_MASK | PT_WRITABLE_MASK)   # A clear: the walk sets it
        self.store(v, root, k, link)
        if self.gmode == PAGING_64:
            self.store(v, root, j, link)
            gva = (k << 39) | (k << 30) | (j << 21) | (j << 12)
        elif self.gmode == PAGING_PAE:
            gva = (k << 21) | (k << 12)
        else:
            gva = (k << 22) | (k << 12)
        self.emit_access(v, gva, READ, False)

    @swarm("corners")
    @precondition(lambda self: self.gmode == PAGING_64 and self.vmode != "tdp")
    @rule(pick=st.integers(0, 1 << 16), s=st.integers(2, 511), j=st.integers(0, 255),
          data=st.integers(0x20, 0x3F))
    def table_at_two_levels(self, pick, s, j, data):
        """A page-table page the guest kernel also links as a page directory
        (module docstring): shadowed as a PT, stored to (its page goes unsync),
        then linked under the PDPT and used as a PD, so kvm_mmu_get_page() makes a
        level-2 page for a gfn with an unsync level-1 page: kvm_sync_pages()."""
        free = [t for t in self.tables if t not in self.table_at]
        l2 = sorted(t for t, (lvl, _) in self.table_at.items() if lvl == 2)
        pdpt = TABLE_GFNS[1]
        mem = self.world.oracle.mem
        if not free or not l2 or self.table_at.get(pdpt) != (3, 0) or \
                mem.read((pdpt << PAGE_SHIFT) + 8 * s, 8) & PT_PRESENT_MASK:
            return
        table, parent = free[pick % len(free)], l2[pick % len(l2)]
        slot = 1 + (pick >> 4) % 511
        if mem.read((parent << PAGE_SHIFT) + 8 * slot, 8) & PT_PRESENT_MASK:
            return
        v = self.smp[pick % len(self.smp)]
        base = self.table_at[parent][1] | (slot << self.level_shift(2))
        self.store(v, table, j, self.data_pte(data))
        self.table_at[table] = (1, base)
        self.store(v, parent, slot, self.entry(table, PT_PRESENT_MASK | PT_WRITABLE_MASK | PT_USER_MASK
                                                | PT_ACCESSED_MASK))
        self.emit_access(v, base | (j << PAGE_SHIFT), READ, False)           # shadowed as a PT
        self.store(v, table, j + 1, self.data_pte(data + 1))                # unsync
        i = 256 + (j % 256)                                                  # its PD role's entry
        self.store(v, table, i, self.entry(self.identity_pt, PT_PRESENT_MASK | PT_WRITABLE_MASK
                                           | PT_USER_MASK | PT_ACCESSED_MASK))
        self.store(v, pdpt, s, self.entry(table, PT_PRESENT_MASK | PT_WRITABLE_MASK | PT_USER_MASK
                                          | PT_ACCESSED_MASK))
        self.emit_access(v, (s << 30) | (i << 21) | ((pick & 0x3F) << PAGE_SHIFT), READ, False)

    @swarm("corners")
    @precondition(lambda self: self.gmode != PAGING_32)
    @rule(pick=st.integers(0, 1 << 16), k=st.integers(0x40, 0x1FE), data=st.integers(0x20, 0x3E),
          kind=st.sampled_from(ACCESS_KINDS))
    def nx_data_pages(self, pick, k, data, kind):
        """A kernel's W^X data mapping (module docstring): EFER.NX on, two
        neighbouring ptes mapping data pages with XD set, A and D set (so the
        fault's prefetch maps the second), then an access to the first: a load
        or store maps it with NX, a fetch faults."""
        table = self.identity_pt
        mem = self.world.oracle.mem
        if any(mem.read((table << PAGE_SHIFT) + 8 * i, 8) & PT_PRESENT_MASK for i in (k, k + 1)):
            return
        v = self.smp[pick % len(self.smp)]
        if not self.world.oracle.cpus[v].efer_nx:
            self.emit(["set_control", {"vcpu": v, "reg": "efer.nx", "value": True}])
        for i in (k, k + 1):
            self.store(v, table, i, self.data_pte(data + i - k) | PT64_NX_MASK)
        self.addrs.append(k << PAGE_SHIFT)
        self.emit_access(v, k << PAGE_SHIFT, kind, False)

    @swarm("corners")
    @precondition(lambda self: self.gmode == PAGING_PAE and self.vmode != "tdp")
    @rule(pick=st.integers(0, 1 << 16), how=st.sampled_from(["cr3", "cr4.pse"]))
    def pae_bad_pdpt(self, pick, how):
        """A PAE guest's #GP on loading its PDPTEs (module docstring): CR3 at a page
        table (its present entries have R/W and U/S set, reserved in a PDPTE), or a
        reserved bit stored into an unused PDPTE (the fourth GB), CR4.PSE toggled
        (the PDPTEs are loaded again), and the PDPTE cleared."""
        v = self.smp[pick % len(self.smp)]
        if how == "cr3":
            self.emit(["set_cr3", {"vcpu": v, "cr3": self.identity_pt << PAGE_SHIFT}])
            return
        pse = self.world.oracle.cpus[v].cr4_pse
        self.store(v, TABLE_GFNS[0], 3, PT_PRESENT_MASK | PT_WRITABLE_MASK)
        self.emit(["set_control", {"vcpu": v, "reg": "cr4.pse", "value": not pse}])
        self.store(v, TABLE_GFNS[0], 3, 0)


FAMILY = Family(
    name="fastpf",
    summary="the mmu family's VM with 3.10's fast_page_fault on its direct MMUs (TDP, and "
            "paging-off vCPUs of a shadow VM): the two software bits and the dirty gfn",
    machine=FastpfMachine,
    make_world=make_world,
    impl_base=ImplShadowMmu,
    modes=("mixed", "tdp"),
    variant_families=("fastpf",),
)
