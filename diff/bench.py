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


def bench_walk(ext=PTE_LIST_EXT_3_6):
    """A full walk (kvm_test_age_rmapp over sptes with A clear) of n entries."""
    rows = []
    for n in WALK_SIZES:
        row = {"n": n}
        for side, cls in (("spec", SpecRmap), ("impl", Rmap)):
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


def bench_dirty_log(pages=DIRTY_LOG_PAGES, ext=PTE_LIST_EXT_3_6):
    """GET_DIRTY_LOG: rmap_write_protect at level 1 of every dirty gfn's rmap."""
    worlds = {side: _dirty_log_world(cls, pages, ext) for side, cls in (("spec", SpecRmap), ("impl", Rmap))}
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


def bench_rmap():
    return {"bench": "rmap", "pte_list_ext": PTE_LIST_EXT_3_6, "repeats": REPEATS,
            "walk": bench_walk(), "get_dirty_log": bench_dirty_log()}


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
                 "slot reads are exact, times are medians of wall clock",
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
    raise ValueError(f"no renderer for bench {report['bench']!r}")


BENCHES = {"rmap": bench_rmap, "gfn": bench_gfn}
