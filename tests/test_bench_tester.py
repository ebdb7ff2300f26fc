"""`mmuspec bench tester` (diff/bench_tester.py): the goal column, the rows of
families that cannot run here or time their sides, and hunts in worker
processes.  Fixed reports, except one tiny hunt run by two workers."""

from diff import bench, bench_tester


def _row(name, times, seeds=5):
    found = [t for t in times if t is not None]
    d = {"variant": name, "family": name.split(":")[0], "must_catch": True,
         "median_seconds": bench_tester._median_detect(times), "min_seconds": min(found) if found else None,
         "max_seconds": max(found) if found else None, "misses": sum(t is None for t in times),
         "seeds": seeds, "median_shrink_seconds": None, "modes": ["mixed"], "oracles": ["o"], "runs": []}
    d["goal_met"] = bench_tester._goal_met(d)
    return d


def test_goal_needs_median_under_1s_and_worst_under_5s():
    assert _row("a:fast", [0.1, 0.2, 0.3, 0.4, 4.9])["goal_met"]
    assert not _row("a:slow-median", [0.1, 0.2, 1.0, 2.0, 3.0])["goal_met"]
    assert not _row("a:slow-worst", [0.1, 0.2, 0.3, 0.4, 5.0])["goal_met"]
    assert not _row("a:one-miss", [0.1, 0.2, 0.3, 0.4, None])["goal_met"]


def test_render_shows_goal_skipped_families_and_sides():
    det = [_row("a:fast", [0.1] * 5), _row("a:slow", [0.1, 2.0, 2.0, 2.0, 9.0])]
    rep = {"bench": "tester", "cpus": 2, "loadavg_start": [0.1, 0.1, 0.1], "loadavg_end": [0.2, 0.2, 0.2],
           "plain_seconds": 5.0, "seeds": 5, "cap_seconds": 20.0, "workers": 2,
           "target_detect_seconds": 30.0, "target_proof_seconds": 60.0,
           "goal_median_seconds": 1.0, "goal_worst_seconds": 5.0, "proofs": None,
           "throughput": [
               {"family": "live", "status": "clean", "examples": 3, "steps": 900, "rules": None,
                "seconds": 1.0, "steps_per_second": 900.0, "examples_per_second": 3.0, "oracle": None,
                "sides_steps_per_second": {"spec": 6000.0, "impl": 6500.0, "live": 2600.0},
                "sides_note": "bench_live: spec and impl include the auditor"},
               {"family": "live-walk", "skipped": "no /dev/kvm"},
               {"family": "mmu", "shares": "flush"}],
           "detect": det,
           "targets": {"detect_met": True, "detect_over_target": [], "goal_met": False,
                       "goal_missed": ["a:slow"], "proofs_met": None},
           "seconds": 12.0}
    text = bench.render(rep)
    assert "live-walk  skipped: no /dev/kvm" in text
    assert "runs on the flush machine" in text
    line = next(ln for ln in text.splitlines() if ln.strip().startswith("live ") and "auditor" in ln)
    assert line.split()[1:5] == ["900", "6000", "6500", "2600"]
    assert "goal: median < 1s and worst < 5s; 2 hunts at a time" in text
    fast = next(ln for ln in text.splitlines() if ln.strip().startswith("a:fast"))
    slow = next(ln for ln in text.splitlines() if ln.strip().startswith("a:slow"))
    assert "met     met" in fast and "met NOT MET" in slow
    assert "goal NOT MET (missed: a:slow)" in text


def test_workers_run_every_seed_of_every_variant():
    rows = bench_tester.bench_detection(seeds=2, cap=5, variant_names=["rmap:leak-empty-desc"], workers=2)
    (row,) = rows
    assert [r["seed"] for r in row["runs"]] == [0, 1]
    assert row["misses"] == 0 and all(r["caught"] for r in row["runs"])
