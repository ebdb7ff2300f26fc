"""`mmuspec bench`: cost measurements, spec beside impl in one run.

Speed and memory claims live here and in the README's recorded output, never
in timed tests.  Read counts are exact (KernelMemory.reads); times are wall
clock on this machine, medians of `REPEATS` interleaved runs.
"""

import statistics
import time

from impl.rmap import Rmap
from spec.consts import PT_PRESENT_MASK, PT_USER_MASK, PT_WRITABLE_MASK, PTE_LIST_EXT_3_6, PAGE_SHIFT
from spec.memory import SHADOW_PT_BASE, KernelMemory, RmapHead
from spec.rmap import SpecRmap

WALK_SIZES = (1, 2, 8, 64, 512, 4096)
DIRTY_LOG_PAGES = 262_144  # 1 GB of 4K pages, one spte per rmap
REPEATS = 3


def _one_rmap(cls, n, ext):
    mem = KernelMemory(ext)
    head = RmapHead()
    table = {}
    mmu = cls(mem, table.__getitem__)
    for k in range(n):
        sptep = SHADOW_PT_BASE + 8 * k
        mem.spte_write(sptep, PT_PRESENT_MASK | PT_USER_MASK | (k << PAGE_SHIFT))
        table[sptep] = head
        mmu.rmap_add(sptep, head)
    return mmu, head


def bench_walk(ext=PTE_LIST_EXT_3_6, impl_cls=Rmap):
    """A full walk (kvm_test_age_rmapp over sptes with A clear) of n entries."""
    rows = []
    for n in WALK_SIZES:
        row = {"n": n}
        for side, cls in (("spec", SpecRmap), ("impl", impl_cls)):
            mmu, head = _one_rmap(cls, n, ext)
            times = []
            for _ in range(REPEATS if n < 4096 else 1):
                mmu.mem.reads = 0
                t = time.perf_counter()
                mmu.kvm_test_age_rmapp(head)
                times.append(time.perf_counter() - t)
            row[f"{side}_reads"] = mmu.mem.reads
            row[f"{side}_seconds"] = statistics.median(times)
        row["reads_ratio"] = row["spec_reads"] / row["impl_reads"]
        row["time_ratio"] = row["spec_seconds"] / max(row["impl_seconds"], 1e-9)
        rows.append(row)
    return rows


def _dirty_log_world(cls, pages, ext):
    mem = KernelMemory(ext)
    heads = [RmapHead() for _ in range(pages)]
    table = {}
    mmu = cls(mem, table.__getitem__)
    for gfn, head in enumerate(heads):
        sptep = SHADOW_PT_BASE + 8 * gfn
        mem.sptes[sptep] = PT_PRESENT_MASK | PT_WRITABLE_MASK | PT_USER_MASK | (gfn << PAGE_SHIFT)
        table[sptep] = head
        head.val = sptep  # pte_list_add on an empty head: the bare pointer
    return mmu, heads


def bench_dirty_log(pages=DIRTY_LOG_PAGES, ext=PTE_LIST_EXT_3_6, impl_cls=Rmap):
    """GET_DIRTY_LOG: rmap_write_protect at level 1 of every dirty gfn's rmap."""
    worlds = {side: _dirty_log_world(cls, pages, ext) for side, cls in (("spec", SpecRmap), ("impl", impl_cls))}
    times = {"spec": [], "impl": []}
    reads = {}
    for _ in range(REPEATS):
        for side, (mmu, heads) in worlds.items():  # interleaved: spec, impl, spec, impl ...
            for a in mmu.mem.sptes:
                mmu.mem.sptes[a] |= PT_WRITABLE_MASK  # the guest dirtied every page again
            protect = mmu.rmap_write_protect
            mmu.mem.reads = 0
            t = time.perf_counter()
            for head in heads:
                protect(head, 1)
            times[side].append(time.perf_counter() - t)
            reads[side] = mmu.mem.reads
    spec_t, impl_t = statistics.median(times["spec"]), statistics.median(times["impl"])
    return {"pages": pages, "spec_reads": reads["spec"], "impl_reads": reads["impl"],
            "spec_seconds": spec_t, "impl_seconds": impl_t,
            "spec_over_impl": spec_t / impl_t,
            "impl_faster_percent": 100.0 * (spec_t - impl_t) / spec_t}


def bench_rmap(impl_cls=Rmap, impl_name=None):
    """`impl_cls`: the impl side (a variant's class for `mmuspec bench rmap --variant`)."""
    return {"bench": "rmap", "pte_list_ext": PTE_LIST_EXT_3_6, "repeats": REPEATS,
            "impl": impl_name or "plain impl", "walk": bench_walk(impl_cls=impl_cls),
            "get_dirty_log": bench_dirty_log(impl_cls=impl_cls)}


TDP_TOUCHED_BYTES = 1 << 30  # the gfn bench's TDP guest touches 1 GB


def bench_gfn(touched_bytes=TDP_TOUCHED_BYTES):
    """Bytes of struct kvm_mmu_page arrays: stored gfns (spec) vs derived gfns (impl).

    Counted per page: sp->spt (PT64_ENT_PER_PAGE sptes) and sp->gfns
    (PT64_ENT_PER_PAGE gfn_t), which the spec keeps for every page and the impl
    only for indirect pages.  The header (the struct itself, from its own
    kmem_cache) is the same on both sides and not counted.  The TDP guest
    touches every 4K page of gpa [0, touched_bytes) with 4K mappings; its
    direct pages are counted by running __direct_map's child-gfn helper of the
    impl class over every touched gfn, plus the level-4 root.
    """
    from impl.mmu import ShadowMmu
    from spec.consts import GFN_T_BYTES, PT64_ENT_PER_PAGE, PT64_ROOT_LEVEL, PT_PAGE_TABLE_LEVEL, SPTE_BYTES

    spt = PT64_ENT_PER_PAGE * SPTE_BYTES
    gfns = PT64_ENT_PER_PAGE * GFN_T_BYTES
    page = {"direct": {"spec": spt + gfns, "impl": spt},
            "indirect": {"spec": spt + gfns, "impl": spt + gfns}}
    pages = {PT64_ROOT_LEVEL: {0}}  # mmu_alloc_direct_roots: one level-4 direct root
    for gfn in range(touched_bytes >> PAGE_SHIFT):
        gpa = gfn << PAGE_SHIFT
        for parent in range(PT64_ROOT_LEVEL, PT_PAGE_TABLE_LEVEL, -1):  # the 4K leaf is at level 1
            pages.setdefault(parent - 1, set()).add(ShadowMmu.direct_map_child_gfn(gpa, parent))
    per_level = {lvl: len(pages[lvl]) for lvl in sorted(pages, reverse=True)}
    total = sum(per_level.values())
    spec_b, impl_b = total * page["direct"]["spec"], total * page["direct"]["impl"]
    return {"bench": "gfn", "entries": PT64_ENT_PER_PAGE, "spt_bytes": spt, "gfns_bytes": gfns,
            "page_bytes": page,
            "tdp": {"touched_bytes": touched_bytes, "touched_gfns": touched_bytes >> PAGE_SHIFT,
                    "direct_pages_per_level": per_level, "direct_pages": total,
                    "spec_bytes": spec_b, "impl_bytes": impl_b, "saved_bytes": spec_b - impl_b,
                    "saved_percent": 100.0 * (spec_b - impl_b) / spec_b}}


def render(report):
    if report["bench"] == "rmap":
        lines = [f"rmap full walk (kvm_test_age_rmapp, PTE_LIST_EXT={report['pte_list_ext']}): "
                 "slot reads are exact, times are medians of wall clock; "
                 f"impl = {report.get('impl', 'plain impl')}",
                 f"{'n':>6} {'spec reads':>11} {'impl reads':>11} {'ratio':>8} "
                 f"{'spec s':>10} {'impl s':>10} {'ratio':>8}"]
        for r in report["walk"]:
            lines.append(f"{r['n']:>6} {r['spec_reads']:>11} {r['impl_reads']:>11} {r['reads_ratio']:>8.1f} "
                         f"{r['spec_seconds']:>10.6f} {r['impl_seconds']:>10.6f} {r['time_ratio']:>8.1f}")
        d = report["get_dirty_log"]
        lines.append("")
        lines.append(f"GET_DIRTY_LOG over {d['pages']} single-spte rmaps (1 GB of 4K pages), "
                     f"rmap_write_protect level 1, side by side:")
        lines.append(f"  slot reads: spec {d['spec_reads']}  impl {d['impl_reads']}")
        lines.append(f"  spec {d['spec_seconds']:.3f}s  impl {d['impl_seconds']:.3f}s  "
                     f"spec/impl {d['spec_over_impl']:.2f}  (impl {d['impl_faster_percent']:.0f}% faster in"
                     f" Python; the kernel patch claimed 15% in C)")
        return "\n".join(lines)
    if report["bench"] == "gfn":
        pb, t = report["page_bytes"], report["tdp"]
        n = report["entries"]
        lines = [f"bytes per shadow page: sp->spt {report['spt_bytes']} ({n} sptes) + sp->gfns "
                 f"{report['gfns_bytes']} ({n} gfn_t) where stored; the struct kvm_mmu_page header "
                 "(equal on both sides) is not counted",
                 f"{'page':<14} {'spec':>8} {'impl':>8} {'saved':>8}"]
        for kind in ("direct", "indirect"):
            b = pb[kind]
            lines.append(f"{kind:<14} {b['spec']:>8} {b['impl']:>8} {b['spec'] - b['impl']:>8}")
        lines.append("")
        size = t["touched_bytes"]
        size = f"{size >> 30} GB" if size % (1 << 30) == 0 else f"{size >> 20} MB"
        lines.append(f"TDP guest touching {size} (every 4K page of gpa [0, {t['touched_bytes']:#x}), "
                     "4K mappings, 4-level root):")
        lines.append(f"{'level':>6} {'direct pages':>13}")
        for lvl, n in t["direct_pages_per_level"].items():
            lines.append(f"{lvl:>6} {n:>13}")
        lines.append(f"{'total':>6} {t['direct_pages']:>13}   spec {t['spec_bytes']:,} bytes, impl "
                     f"{t['impl_bytes']:,} bytes, saved {t['saved_bytes']:,} ({t['saved_percent']:.0f}%)")
        return "\n".join(lines)
    if report["bench"] == "prefetch":
        return _render_prefetch(report)
    if report["bench"] == "zap":
        from diff.bench_zap import render as render_zap
        return render_zap(report)
    if report["bench"] == "tester":
        from diff.bench_tester import render as render_tester
        return render_tester(report)
    if report["bench"] == "coverage":
        from diff.branch_coverage import render as render_coverage
        return render_coverage(report)
    raise ValueError(f"no renderer for bench {report['bench']!r}")




# -- prefetch (Xiao 2010, c6cecc4b9324) ----------------------------------------------
PREFETCH_REGIONS = (2 << 20, 64 << 20)      # bytes of guest memory touched
PREFETCH_PATTERNS = ("sequential", "random")
PREFETCH_MODES = ("tdp", "shadow64")
PREFETCH_REGION_GFN = 0x40000               # the region: gpa [1 GB, 1 GB + size), identity mapped
PREFETCH_TABLE_GFN = 0x10                   # PML4, PDPT, PD, then the level-1 tables


def prefetch_impls():
    """(label, impl class): no prefetch, the merged form, each prefetch:* variant."""
    from impl import variants
    from impl.mmu import ShadowMmu

    class NoPrefetch(ShadowMmu):
        def direct_pte_prefetch(self, vcpu, sptep):
            pass

        def pte_prefetch(self, vcpu, gw, sptep):
            pass

    out = [("none", NoPrefetch), ("merged", ShadowMmu)]
    for v in sorted(variants.of_family("prefetch"), key=lambda v: v.qualname):
        out.append((v.qualname, v.build(ShadowMmu)))
    return out


def _counting(impl_cls):
    class Counting(impl_cls):
        faults = 0

        def tdp_page_fault(self, vcpu, gpa, write):
            self.faults += 1
            return super().tdp_page_fault(vcpu, gpa, write)

        def shadow_page_fault(self, vcpu, addr, write, user, fetch):
            self.faults += 1
            return super().shadow_page_fault(vcpu, addr, write, user, fetch)
    return Counting


def _prefetch_vm(impl_cls, mode, pages):
    """A VM whose guest identity-maps gpa [REGION, REGION + pages*4K) with 4K ptes
    (P W U A D, upper entries P W U A), written into guest memory before the vCPU
    runs; every memslot has host_level 1, so every mapping is 4K."""
    from impl.walk import KvmVcpu, PagingTmpl
    from spec.consts import PT_ACCESSED_MASK, PT_DIRTY_MASK
    from spec.guest_memory import GuestMemory
    from spec.kvm_host import KvmHost, KvmMemorySlot
    from spec.mmu import SHADOW, TDP, Vcpu
    from spec.walk import PAGING_64, ArchCpu

    upper = PT_PRESENT_MASK | PT_WRITABLE_MASK | PT_USER_MASK | PT_ACCESSED_MASK
    leaf = upper | PT_DIRTY_MASK
    mem = GuestMemory()
    pml4, pdpt, pd = PREFETCH_TABLE_GFN, PREFETCH_TABLE_GFN + 1, PREFETCH_TABLE_GFN + 2
    pt0 = PREFETCH_TABLE_GFN + 3
    base = PREFETCH_REGION_GFN << PAGE_SHIFT
    mem.write((pml4 << PAGE_SHIFT) + 8 * ((base >> 39) & 511), 8, (pdpt << PAGE_SHIFT) | upper, "guest")
    mem.write((pdpt << PAGE_SHIFT) + 8 * ((base >> 30) & 511), 8, (pd << PAGE_SHIFT) | upper, "guest")
    npt = (pages + 511) // 512
    for t in range(npt):
        mem.write((pd << PAGE_SHIFT) + 8 * (((base >> 21) + t) & 511), 8,
                  ((pt0 + t) << PAGE_SHIFT) | upper, "guest")
    for k in range(pages):
        gfn = PREFETCH_REGION_GFN + k
        mem.write(((pt0 + k // 512) << PAGE_SHIFT) + 8 * (k % 512), 8, (gfn << PAGE_SHIFT) | leaf,
                  "guest")
    host = KvmHost()
    mmu = _counting(impl_cls)(host, PTE_LIST_EXT_3_6)
    for sid, (gfn0, n) in enumerate(((0, pt0 + npt), (PREFETCH_REGION_GFN, pages))):
        host.memslots[sid] = KvmMemorySlot(sid, gfn0, [host.alloc_pfn() for _ in range(n)],
                                           False, False, 1)
    cr3 = pml4 << PAGE_SHIFT
    if mode == "tdp":
        vcpu = Vcpu(0, TDP, ArchCpu(mem, 40, PAGING_64, True, True, True, cr3))
    else:
        vcpu = Vcpu(0, SHADOW, KvmVcpu(PagingTmpl, mem, 40, "64", True, True, True, cr3))
    mmu.vcpus[0] = vcpu
    return mmu, vcpu


def prefetch_order(pattern, pages, seed=0x9E3779B97F4A7C15):
    """The pages in touch order: 0, 1, ... or a fixed pseudo-random permutation
    (Fisher-Yates driven by xorshift64; the machines never import `random`)."""
    order = list(range(pages))
    if pattern == "random":
        x = seed
        for i in range(pages - 1, 0, -1):
            x ^= (x << 13) & 0xFFFFFFFFFFFFFFFF
            x ^= x >> 7
            x ^= (x << 17) & 0xFFFFFFFFFFFFFFFF
            j = x % (i + 1)
            order[i], order[j] = order[j], order[i]
    return order


def prefetch_faults(impl_cls, mode, pattern, pages):
    """Page faults taken while the guest writes one word of every page of the
    region once, in `pattern` order."""
    from spec.mmu import OK
    from spec.walk import WRITE

    mmu, vcpu = _prefetch_vm(impl_cls, mode, pages)
    base = PREFETCH_REGION_GFN << PAGE_SHIFT
    for k in prefetch_order(pattern, pages):
        status, gfn = mmu.guest_access(vcpu, base + (k << PAGE_SHIFT), WRITE, True)
        if status != OK or gfn != PREFETCH_REGION_GFN + k:
            raise AssertionError(f"bench guest access to page {k}: {status} {gfn}")
    return mmu.faults


def bench_prefetch(regions=PREFETCH_REGIONS, patterns=PREFETCH_PATTERNS, modes=PREFETCH_MODES):
    impls = prefetch_impls()
    rows = []
    t0 = time.perf_counter()
    for size in regions:
        pages = size >> PAGE_SHIFT
        for mode in modes:
            for pattern in patterns:
                row = {"bytes": size, "pages": pages, "mode": mode, "pattern": pattern, "faults": {}}
                for label, cls in impls:
                    row["faults"][label] = prefetch_faults(cls, mode, pattern, pages)
                rows.append(row)
    return {"bench": "prefetch", "impls": [label for label, _ in impls], "rows": rows,
            "seconds": time.perf_counter() - t0}


def _render_prefetch(report):
    impls = report["impls"]
    short = {label: label.replace("prefetch:", "") for label in impls}
    lines = ["page faults taken (calls of tdp_page_fault / shadow_page_fault) while a guest writes "
             "every 4K page of a region once; 4K guest ptes (A, D set), 4K host pages",
             f"{'region':>7} {'mode':<9} {'pattern':<11} " + " ".join(f"{short[i]:>20}" for i in impls)
             + f" {'none/merged':>12} {'no-trailing-flush/merged':>25}"]
    for r in report["rows"]:
        size = r["bytes"]
        size = f"{size >> 20} MB" if size % (1 << 20) == 0 else f"{size >> 10} KB"
        f = r["faults"]
        lines.append(f"{size:>7} {r['mode']:<9} {r['pattern']:<11} "
                     + " ".join(f"{f[i]:>20}" for i in impls)
                     + f" {f['none'] / max(f['merged'], 1):>12.2f}"
                     + f" {f['prefetch:no-trailing-flush'] / max(f['merged'], 1):>25.2f}")
    lines += ["",
              "c6cecc4b9324: faults fell from ~1.75M to <0.27M (~6.5x) once trailing runs were "
              "prefetched.  Here sequential TDP falls 8x from no-trailing-flush to merged (one fault "
              "per window of 8); the model counts only",
              "the faults of the touch loop, every one at a multiple of 8 whose whole window is "
              "empty; the kernel's smaller ratio likely reflects faults prefetch cannot save "
              "(other memory, large pages, MMIO: not measured here).",
              "no-trailing-flush and v3-2010 prefetch nothing on such a fault (its window's run "
              "reaches the window's end), so sequentially they take as many faults as no prefetch;",
              "random touches land anywhere in a window, so they save part of it (the run before "
              "the fault).  Under shadow paging both equal the merged form: the guest's pages are",
              "indirect, and FNAME(pte_prefetch)'s own loop for indirect pages never had the bug.  "
              "host-writable-false prefetches read-only sptes, so each write faults anyway.",
              f"({report['seconds']:.0f}s)"]
    return "\n".join(lines)


BENCHES = {"rmap": bench_rmap, "gfn": bench_gfn, "prefetch": bench_prefetch}
from diff.bench_tester import bench_tester  # noqa: E402  (mmuspec bench tester: the tester's own speed)
BENCHES["tester"] = bench_tester
from diff.bench_zap import bench_zap  # noqa: E402  (mmuspec bench zap: work under mmu_lock)
BENCHES["zap"] = bench_zap
from diff.branch_coverage import bench_coverage  # noqa: E402  (mmuspec bench coverage: branch coverage)
BENCHES["coverage"] = bench_coverage
