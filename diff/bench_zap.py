"""`mmuspec bench zap`: work under mmu_lock to zap every shadow page.

Spec: kvm_mmu_zap_all() walks and zaps every page in one mmu_lock hold.
Impl (Xiao 2013, 3.11): the bump of mmu_valid_gen and a first batch, then
batches of BATCH_ZAP_PAGES with a lock break between them, and the pages
freed at the end (the deferred reclaim).  The VM has `n` empty direct
shadow pages (gfns 1..n: every hash bucket used alike) and one TDP root held by a vCPU; work is
counted in pages visited by the zap walks per mmu_lock hold (exact), time
is wall clock on this machine (one run per size).
"""

import time

from spec.consts import ACC_ALL, BATCH_ZAP_PAGES, PT_PAGE_TABLE_LEVEL, PT64_ROOT_LEVEL
from spec.kvm_host import KvmHost, KvmMemorySlot
from spec.mmu import TDP, ShadowMmu as SpecShadowMmu, Vcpu

ZAP_SIZES = (100, 1_000, 10_000, 100_000)


def _vm(cls, n):
    host = KvmHost()
    host.memslots[0] = KvmMemorySlot(0, 0, [host.alloc_pfn() for _ in range(1)])
    mmu = cls(host)
    vcpu = Vcpu(0, TDP, None)
    mmu.vcpus[0] = vcpu
    root = mmu.kvm_mmu_get_page(vcpu, 0, 0, PT64_ROOT_LEVEL, True, ACC_ALL, 0)
    root.root_count += 1
    vcpu.root = root
    for k in range(n):
        mmu.kvm_mmu_get_page(vcpu, k + 1, 0, PT_PAGE_TABLE_LEVEL, True, ACC_ALL, 0)
    return mmu


def zap_work(cls, n):
    mmu = _vm(cls, n)
    t = time.perf_counter()
    mmu.zap_all_begin()
    first = time.perf_counter() - t
    while mmu.zap_all_resume():
        pass
    total = time.perf_counter() - t
    holds = mmu.mmu_lock_holds
    assert len(mmu.pages) == 1, "only the held root may survive the zap"
    return {"holds": len(holds), "max_per_hold": max(holds), "visited": sum(holds),
            "first_hold_seconds": first, "seconds": total}


def bench_zap(sizes=ZAP_SIZES):
    from impl.mmu import ShadowMmu as ImplShadowMmu

    rows = []
    for n in sizes:
        rows.append({"pages": n, "spec": zap_work(SpecShadowMmu, n),
                     "impl": zap_work(ImplShadowMmu, n)})
    return {"bench": "zap", "batch": BATCH_ZAP_PAGES, "rows": rows}


def render(report):
    lines = [f"zapping every shadow page (n empty direct pages + 1 held TDP root): pages visited "
             f"per mmu_lock hold (exact) and wall time; impl batch {report['batch']}",
             f"{'pages':>8} | {'spec holds':>10} {'max/hold':>9} {'seconds':>8} | {'impl holds':>10} "
             f"{'max/hold':>9} {'visited':>9} {'1st hold s':>10} {'total s':>8}"]
    for r in report["rows"]:
        s, i = r["spec"], r["impl"]
        lines.append(f"{r['pages']:>8} | {s['holds']:>10} {s['max_per_hold']:>9} {s['seconds']:>8.3f} | "
                     f"{i['holds']:>10} {i['max_per_hold']:>9} {i['visited']:>9} "
                     f"{i['first_hold_seconds']:>10.4f} {i['seconds']:>8.3f}")
    lines.append("The spec holds mmu_lock for the whole walk; the impl's longest hold is bounded by "
                 "the batch (plus the held roots it skips), and the deferred reclaim visits about "
                 "as many pages in total, spread over lock breaks.")
    return "\n".join(lines)
