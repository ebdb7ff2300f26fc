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
    raise ValueError(f"no renderer for bench {report['bench']!r}")


BENCHES = {"rmap": bench_rmap}
