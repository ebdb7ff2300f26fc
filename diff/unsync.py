"""The unsync family: the mmu family's VM with 3.10's unsync shadow pages, run
for the unsync:* variants.

Under shadow paging a guest page table whose every shadow page is level 1
goes unsync (spec/unsync.py): the guest edits it without trapping, and KVM
syncs it at INVLPG, at a CR3 load and when kvm_mmu_get_page meets it.  An
unsync spte may cache a translation older than the guest's tables, which the
architecture allows until the guest invalidates: the oracles are the mmu
family's, with the permitted-outcome set of spec/tlb.py ("stale
translation": an outcome older than the guest's last invalidation), and the
auditor's 3.10 rules (write protection: only level-1 unsync pages of a gfn
let it be writable; the unsync_child_bitmap bits reach every unsync page;
sync pages cache the guest exactly).  TDP has no unsync pages: the family
runs the shadow modes.

The machine (UnsyncMachine) is the flush family's SmpPatternMachine plus the
page-table edits a Linux guest makes most, to pages it is using, each with
the TLB flush Linux 3.10 makes for it: fork's write protection (flush_tlb_mm:
a CR3 reload on every CPU of the mm) and the COW break after it
(flush_tlb_page: INVLPG on every CPU of the mm), and munmap / mprotect / MADV_DONTNEED (a range
flush, flush_tlb_mm_range: a CR3 reload on every CPU of the mm with 3.10's
default tlb_flushall_shift of -1, INVLPG per page on a tuned CPU).  The sync
paths (FNAME(invlpg), mmu_sync_roots at the CR3 load) are where the guest's
change of an unsync page must show; these edits reach them in most examples
instead of when a random store happens to hit an entry whose spte exists.
And munmap / exit freeing page tables (free_pgtables, then tlb_finish_mmu's
flush): the patterns that take a free page for a new table (TABLE_GFNS not in
use) ran out of them within an example before it.
"""

from hypothesis import strategies as st
from hypothesis.stateful import initialize, precondition, rule

from impl.mmu import ShadowMmu as ImplShadowMmu
from spec.consts import (
    PAGE_SHIFT, PT64_BASE_ADDR_MASK, PT_PAGE_SIZE_MASK, PT_PRESENT_MASK, PT_WRITABLE_MASK,
)
from spec.walk import READ, WRITE

from .families import Family
from .mmu import TABLE_GFNS, SmpPatternMachine, make_world, swarm

# Pages a moved or refaulted pte maps: in memslot 0, above the guest's tables.
NEW_PAGES = (0x20, 0x3FF)
# A range flush: a CR3 reload (3.10's default tlb_flushall_shift -1, a range
# past the ceiling, or a hugetlb vma) three times in four, INVLPG per page else.
RANGE_FLUSH_FULL = st.sampled_from([True, True, True, False])
# munmap_frees_page_tables: the most present ptes of a table it frees (each is a store).
MAX_ZAPPED = 8


class UnsyncMachine(SmpPatternMachine):
    """SmpPatternMachine with a second vCPU on the root in 3 examples of 4 (a
    Linux guest's mm runs on every CPU), and the guest kernel's edits of ptes
    in use, each flushed as Linux 3.10 flushes it (arch/x86/mm/tlb.c).

    Each rule here draws three arguments or more: Hypothesis's first example
    of a run repeats the first rule of its order (fewest arguments first)
    that is enabled, and a pattern there would make that example long (its
    stores grow the oracle's store history) in every round of every mode."""

    # the patterns always; remap drawn, as the mmu machine draws it (in every
    # example it took unsync:tlbs-dirty's median from 0.47 s to 0.62-0.90 s, det.py)
    ALWAYS_ON = ("patterns",)

    @initialize(data=st.data())
    def setup(self, data):
        super().setup(data)
        if len(self.smp) == 1 and data.draw(st.booleans(), label="a second vCPU after all (3 in 4)"):
            self.vcpu_create(self.vmode, 0)

    # -- what the guest kernel uses -----------------------------------------------------
    def pages_in_use(self, pick, count, data):
        """A run of `count` neighbouring ptes of a level-1 table the guest uses,
        as [(gva, index)], with the table; entries not present get a new page
        first (a first touch after mmap: a new entry, no flush).  None when the
        table the machine knows there no longer translates those addresses, or
        the run would reach the identity map's entries of the guest's tables
        (the machine stores to its tables through them)."""
        level1 = sorted(t for t, (lvl, _) in self.table_at.items() if lvl == 1)
        if not level1 or not self.smp:
            return None
        table = level1[pick % len(level1)]
        base = self.table_at[table][1]
        n = 1024 if self.size == 4 else 512
        mem = self.world.oracle.mem
        present = [i for i in range(n) if mem.read((table << PAGE_SHIFT) + i * self.size, self.size)
                   & PT_PRESENT_MASK]
        start = present[(pick >> 4) % len(present)] if present and pick & 8 else (pick >> 4) % n
        run = [(base | (i << PAGE_SHIFT), i) for i in range(start, min(start + count, n))]
        if table == self.identity_pt and any(i in TABLE_GFNS for _, i in run):
            return None
        v = self.storer(table, pick)
        if v is None:
            return None
        cpu = self.world.oracle.cpus[v]
        for gva, i in run:
            gpa = (table << PAGE_SHIFT) + i * self.size
            if not any(e.level == 1 and e.gpa == gpa for e in cpu.predict(gva, READ, False).path):
                return None
        for k, (gva, i) in enumerate(run):
            if not mem.read((table << PAGE_SHIFT) + i * self.size, self.size) & PT_PRESENT_MASK:
                self.store(v, table, i, self.data_pte(self.new_page(data + k)))
        return table, run, v

    def storer(self, table, pick):
        """A vCPU on the guest's root that can still store to `table` through the
        identity map (earlier edits, or a CR3 load of another table, may have
        taken it away from some), the pick-th first; None if none can."""
        for d in range(len(self.smp)):
            v = self.smp[(pick + d) % len(self.smp)]
            res = self.world.oracle.cpus[v].predict(table << PAGE_SHIFT, WRITE, False)
            if res.fault is None and res.gfn == table:
                return v
        return None

    def new_page(self, data):
        lo, hi = NEW_PAGES
        return lo + data % (hi - lo)

    def use(self, vcpus, gvas, kinds=(READ,)):
        """The guest's threads touch the pages (on each of `vcpus`)."""
        for v in vcpus:
            for gva in gvas:
                for kind in kinds:
                    self.emit_access(v, gva, kind, False)
        self.addrs += gvas[:2]

    def paging_vcpus(self):
        return [v for v in self.vcpus if v not in self.nonpaging]

    def flush_tlb_page(self, gvas):
        """flush_tlb_page() / a per-page flush_tlb_mm_range(): INVLPG of each
        page, locally and by IPI on every other CPU of the mm (flush_tlb_func)."""
        for v in self.paging_vcpus():
            for gva in gvas:
                self.emit(["invlpg", {"vcpu": v, "addr": gva}])

    def flush_tlb_mm(self):
        """A full flush (local_flush_tlb(), and TLB_FLUSH_ALL by IPI): a CR3
        reload of its own root on every CPU of the mm."""
        for v in self.paging_vcpus():
            self.emit(["set_cr3", {"vcpu": v, "cr3": self.world.oracle.cpus[v].cr3}])

    def range_flush(self, gvas, full):
        """flush_tlb_mm_range() (3.10): a full flush with tlb_flushall_shift -1
        (the default), past the ceiling or for hugetlb; INVLPG per page else."""
        if full:
            self.flush_tlb_mm()
        else:
            self.flush_tlb_page(gvas)

    # -- the guest kernel's pte edits -------------------------------------------------
    @swarm("patterns")
    @rule(pick=st.integers(0, 1 << 16), count=st.integers(1, 4), data=st.integers(0, 1 << 10))
    def fork_then_cow(self, pick, count, data):
        """fork() and the parent's next write: copy_page_range write-protects the
        parent's ptes of pages in use (ptep_set_wrprotect) and dup_mmap ends
        with flush_tlb_mm (a CR3 reload on every CPU of the mm); the parent's
        write faults, and do_wp_page copies the page: it clears the pte and
        flushes it (ptep_clear_flush -> flush_tlb_page: INVLPG on every CPU),
        then sets the pte to the copy (none -> present, no flush).  Then the
        threads read the page and the write is retried.  Each store goes
        unsync, so the CR3 reload and the INVLPG are where KVM must sync."""
        got = self.pages_in_use(pick, count, data)
        if got is None:
            return
        table, run, v = got
        gva, i = run[0]
        self.use(self.smp, [gva])
        mem = self.world.oracle.mem
        for _, k in run:
            old = mem.read((table << PAGE_SHIFT) + k * self.size, self.size)
            self.store(v, table, k, old & ~PT_WRITABLE_MASK)
        self.flush_tlb_mm()
        self.use([v], [gva], (WRITE,))                     # the COW fault
        self.store(v, table, i, 0)
        self.flush_tlb_page([gva])
        self.store(v, table, i, self.data_pte(self.new_page(data ^ 0x155)))
        self.use(self.smp, [gva])
        self.use([v], [gva], (WRITE,))

    @swarm("patterns")
    @rule(pick=st.integers(0, 1 << 16), count=st.integers(1, 4), how=st.sampled_from(["munmap", "mprotect"]),
          full=RANGE_FLUSH_FULL, data=st.integers(0, 1 << 10))
    def change_range(self, pick, count, how, full, data):
        """munmap (zap_pte_range: the ptes cleared) or mprotect(PROT_READ) /
        fork's copy-on-write setup (change_pte_range: W cleared) of pages in
        use, then the range flush (flush_tlb_mm_range), then the guest touches
        them again: a read, and a write (which faults: SIGSEGV or a COW)."""
        got = self.pages_in_use(pick, count, data)
        if got is None:
            return
        table, run, v = got
        gvas = [gva for gva, _ in run]
        self.use(self.smp, gvas)
        mem = self.world.oracle.mem
        for _, i in run:
            old = mem.read((table << PAGE_SHIFT) + i * self.size, self.size)
            self.store(v, table, i, 0 if how == "munmap" else old & ~PT_WRITABLE_MASK)
        self.range_flush(gvas, full)
        self.use([v], gvas, (READ, WRITE))

    @swarm("patterns")
    @rule(pick=st.integers(0, 1 << 16), count=st.integers(1, 4), full=RANGE_FLUSH_FULL,
          data=st.integers(0, 1 << 10), vpick=st.integers(0, 3))
    def madvise_dontneed_refault(self, pick, count, full, data, vpick):
        """MADV_DONTNEED (zap_page_range under mmap_sem held for read): the ptes
        are cleared and the flush waits for tlb_finish_mmu (the mmu_gather);
        before it, another thread faults the first page back in
        (do_anonymous_page: a new page in a pte that is none, no flush).  Then
        the deferred range flush, and the guest uses the pages: the first
        page's pte names another page than when its spte was made."""
        got = self.pages_in_use(pick, count, data)
        if got is None:
            return
        table, run, a = got
        b = self.storer(table, vpick)
        b = a if b is None else b
        gvas = [gva for gva, _ in run]
        self.use(self.smp, gvas)
        for _, i in run:
            self.store(a, table, i, 0)
        self.store(b, table, run[0][1], self.data_pte(self.new_page(data ^ 0x2AA)))
        self.range_flush(gvas, full)
        self.use([a], gvas, (READ, WRITE))

    @swarm("patterns")
    @rule(pick=st.integers(0, 1 << 16), count=st.integers(1, 4), vpick=st.integers(0, 3),
          full=RANGE_FLUSH_FULL)
    def munmap_frees_page_tables(self, pick, count, vpick, full):
        """munmap of a range that spans the regions of `count` level-1 tables,
        or a process's exit (exit_mmap: every vma under one mmu_gather):
        unmap_vmas' zap_pte_range clears their present ptes, free_pgtables'
        free_pte_range clears the entries that link them (pmd_clear) and
        gives the pages back (pte_free_tlb), and tlb_finish_mmu flushes once
        (flush_tlb_mm_range: a CR3 reload on every CPU of the mm, INVLPG
        per page on a tuned CPU).  The pages go back to the pool the guest's
        page tables come from (TABLE_GFNS): the next table a pattern
        allocates (pte_alloc_one) may be one of them, so the patterns that
        reuse a freed page as a table keep finding one through an example.
        Not the identity map's tables (the kernel's own mappings), a table a
        vCPU's CR3 holds, or one with more than MAX_ZAPPED present ptes (the
        run stays short)."""
        if not self.smp:
            return
        links = self.links_to_tables()
        roots = {getattr(c, "cr3", 0) >> PAGE_SHIFT for c in self.world.oracle.cpus.values()}
        path = self.identity_path() | {self.identity_pt}
        cands = [t for t in self.tables if t in links and self.table_at.get(t, (0,))[0] == 1
                 and t not in path and t not in roots]
        n = 1024 if self.size == 4 else 512
        mem = self.world.oracle.mem
        freed, gvas = [], []
        for d in range(len(cands)):
            if len(freed) == count:
                break
            table = cands[(pick + d) % len(cands)]
            ptes = [i for i in range(n)
                    if mem.read((table << PAGE_SHIFT) + i * self.size, self.size) & PT_PRESENT_MASK]
            v = self.storer(table, vpick)
            parents = [(parent, slot, self.storer(parent, vpick)) for parent, slot in links[table]]
            if len(ptes) > MAX_ZAPPED or v is None and ptes or any(w is None for _, _, w in parents):
                continue
            for parent, slot, _ in parents:
                lvl, base = self.table_at[parent]
                gvas += [base | (slot << self.level_shift(lvl)) | (i << PAGE_SHIFT) for i in ptes]
            for i in ptes:                                      # zap_pte_range
                self.store(v, table, i, 0)
            for parent, slot, w in parents:                     # free_pte_range: pmd_clear
                self.store(w, parent, slot, 0)
            freed.append(table)
        if not freed:
            return
        self.range_flush(gvas, full or not gvas)                # tlb_finish_mmu
        for table in freed:                                     # pte_free: the pages are free
            del self.table_at[table]
        if self.last_table in freed:
            self.last_table = None

    def links_to_tables(self):
        """{table: [(parent, index)]}: the entries of the tables the machine
        knows above level 1 that link a table (present, not a large page)."""
        n = 1024 if self.size == 4 else 512
        mem = self.world.oracle.mem
        out = {}
        for parent, (lvl, _) in sorted(self.table_at.items()):
            if lvl < 2:
                continue
            for i in range(n):
                e = mem.read((parent << PAGE_SHIFT) + i * self.size, self.size)
                if not e & PT_PRESENT_MASK or e & PT_PAGE_SIZE_MASK and lvl in self.large_levels():
                    continue
                out.setdefault((e & PT64_BASE_ADDR_MASK) >> PAGE_SHIFT, []).append((parent, i))
        return out

    @swarm("patterns")
    @precondition(lambda self: len(self.smp) > 1)
    @rule(pick=st.integers(0, 1 << 16), k=st.integers(0x40, 0x1FF), j=st.integers(0, 511),
          data=st.integers(0x20, 0x3F), slot=st.integers(1, 511), clear=st.booleans())
    def kernel_table_in_a_new_page_directory(self, pick, k, j, data, slot, clear):
        """A kernel page table T shared by page directories (32-bit Linux's
        pgd_alloc copies the kernel PDEs into every new one): one CPU (b) writes
        a page G through a kernel mapping in T; another (a) tears the mapping
        down (vunmap: the TLB flush is lazy, vmap's purge comes later, so b
        keeps its entry meanwhile) and T goes unsync; a new page directory
        links T (here: a second slot) and the first walk through it meets T's
        unsync shadow page (kvm_sync_page_transient drops G's spte); G, freed,
        becomes a page table; b's stray store through its stale kernel
        mapping must still trap.  retarget_unsync_then_reuse (diff/mmu.py)
        without its INVLPG form."""
        self.retarget_unsync_then_reuse(pick=pick, k=k, j=j, data=data, slot=slot, clear=clear, invlpg=False)


FAMILY = Family(
    name="unsync",
    summary="the mmu family's VM under shadow paging with 3.10's unsync pages: stale "
            "translations only until the guest's invalidation, the sync paths, write protection",
    machine=UnsyncMachine,
    make_world=make_world,
    impl_base=ImplShadowMmu,
    modes=("shadow64", "mixed", "shadow32", "shadowpae"),
    variant_families=("unsync",),
)
