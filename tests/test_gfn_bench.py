"""`mmuspec bench gfn`: bytes per direct page and for a TDP guest touching 1 GB."""

from diff import bench
from spec.consts import GFN_T_BYTES, PAGE_SIZE, PT64_ENT_PER_PAGE, SPTE_BYTES


def test_gfn_bench_runs_and_the_impl_saves_the_gfns_page():
    assert bench.BENCHES["gfn"] is bench.bench_gfn
    r = bench.bench_gfn()
    direct, indirect = r["page_bytes"]["direct"], r["page_bytes"]["indirect"]
    assert direct["spec"] - direct["impl"] == PAGE_SIZE == PT64_ENT_PER_PAGE * GFN_T_BYTES
    assert direct["impl"] == PT64_ENT_PER_PAGE * SPTE_BYTES
    assert indirect["spec"] == indirect["impl"]  # indirect pages keep sp->gfns
    t = r["tdp"]
    assert t["direct_pages_per_level"] == {4: 1, 3: 1, 2: 1, 1: 512}
    assert t["saved_bytes"] == t["direct_pages"] * PAGE_SIZE == 515 * 4096
    text = bench.render(r)
    assert "1 GB" in text and "515" in text and f"{t['impl_bytes']:,}" in text


def test_gfn_bench_counts_pages_for_other_sizes():
    t = bench.bench_gfn(touched_bytes=4 << 20)["tdp"]  # 4 MB: two level-1 pages
    assert t["direct_pages_per_level"] == {4: 1, 3: 1, 2: 1, 1: 2}
