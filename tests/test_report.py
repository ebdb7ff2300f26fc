"""The HTML report (mmuspec/report.py) and `mmuspec bench tester`.

The report is built from a small synthetic check summary (hand-written
counterexample ops, a zoo of three) and real quick benches, then checked as
text and rendered in headless Chromium: the DOM must hold the tables and the
embedded images, and a screenshot must show plot pixels.
"""

import json
import os
import re
import shutil
import subprocess

import pytest

from diff import bench, bench_tester
from mmuspec import report

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)

# rmap:next-after-drop's shrunk counterexample (README): two parents in one
# desc, the walker drops the first and misses the second.
CEX_OPS = [["kvm_mmu_setup", {"pte_list_ext": 3, "shadow_accessed": False}],
           ["link_parent", {"sp": 0, "spte": 0x100027}],
           ["link_parent", {"sp": 0, "spte": 0x100027}],
           ["kvm_mmu_unlink_parents", {"sp": 0}]]
HOSTILE = "<script>alert('x')</script> & \"quotes\""


def synthetic_summary(cex_file=None):
    plain_bad = {"family": "rmap", "variant": None, "mode": "default", "seed": 0, "budget": 10.0,
                 "status": "discrepancy", "examples": 40, "steps": 900, "rules": ["link_parent", "rmap_add"],
                 "seconds": 1.5, "time_to_failure": 0.2, "shrink_seconds": 0.5, "oracle": "spte memory",
                 "message": "spte 0x10000008: impl 0x100027 " + HOSTILE, "failing_step": 3,
                 "ops": CEX_OPS, "reproduced": True, "metrics": {},
                 "note": f"saved {cex_file}" if cex_file else ""}
    plain_ok = {"family": "mmu", "variant": None, "mode": "mixed", "seed": 0, "budget": 10.0,
                "status": "clean", "examples": 75, "steps": 6000, "rules": ["guest_access", "vm_setup"],
                "seconds": 10.2, "time_to_failure": None, "shrink_seconds": None, "oracle": None,
                "message": None, "failing_step": None, "ops": None, "reproduced": None,
                "metrics": {"dirty_log_extra": 3}, "note": "",
                "per_mode": {"mixed": {"examples": 25, "steps": 2000, "seconds": 3.1},
                             "tdp": {"examples": 50, "steps": 4000, "seconds": 7.1}}}
    unreached = {"line": 546, "function": "ShadowMmu.hw_translate", "text": "if fetch and v & PT64_NX_MASK:",
                 "to": 547, "to_text": "return None", "reason": "the condition on line 546 was never true"}
    mmu_cov = {"family": "mmu", "branches": 10, "reached": 8, "listed_unreachable": 1, "reachable": 9,
               "percent": 88.9, "unreached": 1, "not_executed": [], "mismatched": [], "listed_but_reached": [],
               "files": [{"file": "spec/mmu.py", "branches": 10, "reached": 8, "listed_unreachable": 1,
                          "unreached": [unreached]}]}
    coverage = {"measured": True, "note": "measured on 1 of 2 chunk(s) per family", "target_percent": 95.0,
                "families": {"mmu": mmu_cov}, "total": dict(mmu_cov, family=None, not_executed=["spec/errors.py"]),
                "speeds": {"mmu": {"slowdown": 3.4}}, "shared_machines": {"prefetch": "mmu"},
                "problems": [{"entry": {"file": "spec/mmu.py", "function": "ShadowMmu.gone", "line": "if x",
                                        "to": None, "families": None, "why": "w"},
                              "problem": "stale: spec/mmu.py has no function ShadowMmu.gone"}]}
    return {
        "exit": 1, "seconds": 42.0,
        "obligations": {"proved": 2, "counterexample": 1, "unknown": 1, "not as expected": []},
        "obligation_rows": [
            {"name": "pte_list.tag_separates", "family": "rmap", "expected": "proved", "verdict": "proved",
             "seconds": 0.01, "reach": "for all inputs (64-bit pointers)"},
            {"name": "pte_list.remove_entry_packs", "family": "rmap", "expected": "proved",
             "verdict": "proved", "seconds": 1.0, "reach": "bounded: chains of 1-3 descs"},
            {"name": "prefetch.v3_loop_visits_window", "family": "prefetch", "expected": "counterexample",
             "verdict": "counterexample", "seconds": 0.02, "reach": "for all inputs (64-bit index)"},
            {"name": "walk.slow", "family": "walk", "expected": "proved", "verdict": "unknown",
             "seconds": 60.0, "reach": "for all inputs", "detail": "z3: timeout"}],
        "families": [plain_bad, plain_ok],
        "shared_machines": {"prefetch": "mmu"},
        "zoo": [{"variant": "rmap:next-after-drop", "must_catch": True, "caught": True, "mode": "default",
                 "oracle": "spte memory", "time_to_failure": 0.1, "shrink_seconds": 0.7,
                 "counterexample_ops": 4},
                {"variant": "gfn:lai-2010", "must_catch": True, "caught": True, "mode": "tdp",
                 "oracle": "guest outcome", "time_to_failure": 2.5, "shrink_seconds": 4.0,
                 "counterexample_ops": 9},
                {"variant": "walk:d-on-read", "must_catch": True, "caught": False, "mode": "64",
                 "oracle": None, "time_to_failure": None, "shrink_seconds": None, "counterexample_ops": None}],
        "zoo_kill_rate": "2/3",
        "coverage": coverage,
    }


# diff/bench_zap.py's report shape
ZAP = {"bench": "zap", "batch": 10, "rows": [
    {"pages": n, "spec": {"holds": 1, "max_per_hold": n + 1, "visited": n + 1, "first_hold_seconds": n * 1e-6,
                          "seconds": n * 1e-6},
     "impl": {"holds": n // 10 + 2, "max_per_hold": 11, "visited": n + 2, "first_hold_seconds": 1e-5,
              "seconds": n * 2e-6}} for n in (100, 1000, 10000)]}


@pytest.fixture(scope="module")
def benches():
    """Real benches, on fewer points than the report's quick ones (the rmap walk to
    512 entries, GET_DIRTY_LOG over 4096 rmaps), and the tester bench on one variant
    with Hypothesis' shrinking capped: the page needs each plot, not the numbers."""
    from diff import campaign

    real_dirty_log, real_cap = bench.bench_dirty_log, campaign._cap_hypothesis_shrinking
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(bench, "WALK_SIZES", (1, 2, 8, 64, 512))
        mp.setattr(bench, "bench_dirty_log", lambda **kw: real_dirty_log(**dict(kw, pages=4096)))
        mp.setattr(campaign, "_cap_hypothesis_shrinking", lambda s: real_cap(min(s, 0.5)))
        b = report.collect_benches(params={"zap": {"sizes": (100, 1000)}, "prefetch": {"regions": (2 << 20,)}})
        assert set(b) == {n for n in bench.BENCHES if n not in report.SLOW_BENCHES}
        assert "error" not in b["rmap"] and [r["n"] for r in b["rmap"]["walk"]] == [1, 2, 8, 64, 512]
        b.setdefault("zap", dict(ZAP))  # until the zap bench is registered in diff.bench.BENCHES
        b["tester"] = bench_tester.bench_tester(plain_seconds=0.3, seeds=1, cap=3, family_names=["rmap"],
                                                variant_names=["rmap:next-after-drop"], proofs=False,
                                                log=None)
    return b


@pytest.fixture(scope="module")
def page(tmp_path_factory, benches):
    d = tmp_path_factory.mktemp("report")
    cexdir = d / "cex"
    cexdir.mkdir()
    zoo_file = cexdir / "cex-rmap-next-after-drop-default-seed0.json"
    zoo_file.write_text(json.dumps({"mmuspec_counterexample": 1, "family": "rmap",
                                    "variant": "rmap:next-after-drop", "mode": "default", "seed": 0,
                                    "oracle": "spte memory", "message": "m", "ops": CEX_OPS}))
    (cexdir / "summary.json").write_text("{}")  # not a counterexample: ignored
    path = d / "report.html"
    summary = synthetic_summary(cex_file="out/cex-rmap-impl-default-seed0.json")
    report.write_report(str(path), summary, benches, counterexamples_dir=str(cexdir))
    return path


def test_page_is_self_contained_and_escaped(page):
    text = page.read_text()
    assert text.startswith("<!DOCTYPE html>")
    assert not re.search(r"(?:src|href)\s*=\s*[\"']?(?:https?:)?//", text)
    assert "<script" not in text and "&lt;script&gt;" in text
    assert "<link" not in text
    for table in ("obligations", "campaigns", "zoo", "per-mode", "coverage", "unreached"):
        assert f'<table class="{table}">' in text
    assert "spec/mmu.py:546" in text and "88.9%" in text and "has no function ShadowMmu.gone" in text
    assert "proved (z3, for all inputs)" in text and "proved (z3, bounded)" in text
    assert "tested (sampled)" in text and "unknown (z3 gave no answer: not proved)" in text
    # counterexamples in kernel terms, with the command to replay or reproduce each
    assert "mmu_page_add_parent_pte" in text and "kvm_mmu_unlink_parents" in text
    assert "mmuspec replay out/cex-rmap-impl-default-seed0.json" in text
    assert re.search(r"mmuspec replay \S*cex-rmap-next-after-drop-default-seed0\.json", text)
    assert "mmuspec diff --variant gfn:lai-2010 --mode tdp --seed 0" in text
    images = re.findall(r'<img alt="([^"]*)" src="data:image/png;base64,', text)
    assert {"zoo time to detect per variant", "rmap bench", "zap bench", "prefetch bench", "gfn bench",
            "tester bench"} <= set(images)
    assert not [f for f in os.listdir(page.parent) if f.endswith(".tmp")]


def test_failed_render_leaves_the_old_page(tmp_path):
    path = tmp_path / "report.html"
    path.write_text("old page")
    with pytest.raises(Exception):
        report.write_report(str(path), {"families": 5}, {})
    assert path.read_text() == "old page"
    assert os.listdir(tmp_path) == ["report.html"]


def test_obligations_fall_back_without_rows(tmp_path):
    s = synthetic_summary()
    del s["obligation_rows"]
    html = report.render_html(s, {})
    assert "(not recorded)" in html and "pte_list.tag_separates" in html


def test_reads_the_parallel_check_summary():
    """cmd_check's summary: obligation_results, zoo entries with family/runs_on and saved paths."""
    s = synthetic_summary()
    s["obligation_results"] = s.pop("obligation_rows")
    s["zoo"][0].update({"family": "rmap", "runs_on": "rmap", "found": "search",
                        "saved": ["run/cex-rmap-next-after-drop-default-seed0.json",
                                  "run/test_cex_rmap_next_after_drop_default_seed0.py"]})
    s["zoo"][1].update({"family": "gfn", "runs_on": "mmu", "message": "gfn 0x1ff <> 0x200"})
    html = report.render_html(s, {})
    assert "proved (z3, bounded)" in html and "(not recorded)" not in html
    assert "mmuspec replay run/cex-rmap-next-after-drop-default-seed0.json" in html
    assert "gfn 0x1ff &lt;&gt; 0x200" in html and "<th>found</th>" in html
    recs = report.gather_counterexamples(s)
    assert [r["family"] for r in recs if r["kind"] == "zoo"] == ["rmap", "mmu"]


def test_zap_series_reads_the_lock_work():
    xkey, xs, work, secs = report.zap_series(ZAP)
    assert xkey == "pages" and xs == [100, 1000, 10000]
    assert set(work) == {"spec_max_per_hold", "impl_max_per_hold"}
    assert set(secs) == {"spec_first_hold_seconds", "spec_seconds", "impl_first_hold_seconds", "impl_seconds"}
    flat = {"rows": [{"shadow_pages": n, "spec_lock_work": 3 * n, "impl_lock_work": 8} for n in (1, 2)]}
    assert set(report.zap_series(flat)[2]) == {"spec_lock_work", "impl_lock_work"}
    assert report.zap_series({"bench": "zap"}) is None


def test_bench_tester_smoke(benches):
    rep = benches["tester"]
    json.dumps(rep)
    (row,) = rep["detect"]
    assert row["variant"] == "rmap:next-after-drop" and row["misses"] == 0 and row["median_seconds"] < 3
    assert rep["throughput"][0]["family"] == "rmap" and rep["throughput"][0]["steps"] > 0
    text = bench.render(rep)
    assert "rmap:next-after-drop" in text and "steps/s" in text and "target" in text


def _chromium(*args, tmp):
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp}"]
    return subprocess.run([CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=180)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_report_renders_in_chromium(page, tmp_path):
    url = page.resolve().as_uri()
    p = _chromium("--dump-dom", url, tmp=tmp_path / "profile-dom")
    assert p.returncode == 0, p.stderr[-2000:]
    dom = p.stdout
    for table in ("obligations", "campaigns", "zoo", "per-mode", "coverage"):
        assert f'<table class="{table}">' in dom
    assert len(re.findall(r"<tr[ >]", dom)) >= 4 + 1 + 2 + 1 + 3 + 1
    assert len(re.findall(r'<img [^>]*src="data:image/png;base64,', dom)) >= 6
    assert "&lt;script&gt;" in dom and "<script" not in dom

    shot = tmp_path / "report.png"
    p = _chromium(f"--screenshot={shot}", "--window-size=1200,4000", url, tmp=tmp_path / "profile-shot")
    assert p.returncode == 0 and shot.exists(), p.stderr[-2000:]
    from PIL import Image

    im = Image.open(shot).convert("RGB")
    assert im.size == (1200, 4000)
    # matplotlib's first colour (C0, #1f77b4) is used by no CSS rule: its pixels are decoded plots.
    blue = sum(n for n, c in im.getcolors(maxcolors=1 << 20) if c == (0x1F, 0x77, 0xB4))
    assert blue > 5000


def test_check_writes_its_report(benches, tmp_path, monkeypatch):
    """cmd_check's report step: the page lands at the path it names, with the
    benches it collected; an unwritable path is a note, not a lost run."""
    from mmuspec import check

    monkeypatch.setattr(report, "collect_benches", lambda *a, **k: benches)
    notes = []
    path = check._write_check_report(str(tmp_path / "report.html"), synthetic_summary(),
                                   str(tmp_path), notes.append)
    assert path and "<table" in (tmp_path / "report.html").read_text()
    (tmp_path / "a-file").write_text("")
    assert check._write_check_report(str(tmp_path / "a-file" / "r.html"),
                                   synthetic_summary(), str(tmp_path), notes.append) is None
    assert any("report not written" in n for n in notes)
