"""Branch coverage of spec/ and impl/ under the plain campaigns (diff/branch_coverage.py).

Fixed inputs: a toy source tree (its branches known by reading it), hand-made
arc sets, a tiny rmap campaign (in this process and on one dask worker
process), and `mmuspec bench coverage` on the rmap machine alone.
"""

import json
import textwrap

import pytest

from diff import branch_coverage as bc
from diff import bench, families, jobs
from mmuspec import check, cli, report

TOY = textwrap.dedent('''\
    def pick(x):
        if x > 0:
            return 1
        return 2


    class Mmu:
        def walk(self, n):
            for i in range(n):
                if i == 3:
                    return i
            return None
    ''')
# pick: line 2 (if) -> 3 | 4.  Mmu.walk: line 9 (for) -> 10 | 12; line 10 (if) -> 11 | 9.


@pytest.fixture
def toy(tmp_path):
    (tmp_path / "spec").mkdir()
    (tmp_path / "spec" / "toy.py").write_text(TOY)
    (tmp_path / "impl" / "variants").mkdir(parents=True)
    (tmp_path / "impl" / "variants" / "v.py").write_text("def f(a):\n    if a:\n        return 1\n")
    return str(tmp_path)


def measurement(arcs, root, rel="spec/toy.py"):
    return {"files": {rel: {"sha1": bc._sha1(f"{root}/{rel}"), "arcs": [list(a) for a in arcs]}}}


def test_toy_branches_and_the_variants_left_out(toy):
    assert bc.source_files(toy) == ["spec/toy.py"]  # impl/variants/ is not measured
    a = bc.analyze(measurement([(1, 2), (2, 3), (-1, 1)], toy), family="rmap", entries=(), root=toy)
    assert (a["branches"], a["reached"], a["reachable"], a["unreached"]) == (6, 1, 6, 5)
    missed = {(u["line"], u["to"]) for u in a["files"][0]["unreached"]}
    assert missed == {(2, 4), (9, 10), (9, 12), (10, 11), (10, 9)}
    walk = [u for u in a["files"][0]["unreached"] if u["line"] == 10]
    assert {u["function"] for u in walk} == {"Mmu.walk"} and walk[0]["text"] == "if i == 3:"


def test_merging_two_jobs_unions_the_arcs(toy):
    one = dict(measurement([(1, 2), (2, 3)], toy), seconds=1.0, tracer="CTracer")
    two = dict(measurement([(1, 2), (2, 4)], toy), seconds=2.0)
    m = bc.merge([one, None, two])
    assert m["files"]["spec/toy.py"]["arcs"] == [[1, 2], [2, 3], [2, 4]]
    assert m["seconds"] == 3.0 and m["jobs"] == 2 and m["tracer"] == "CTracer" and m["mismatched"] == []
    a = bc.analyze(m, family="rmap", entries=(), root=toy)
    assert a["reached"] == 2 and a["reachable"] == 6
    # another source (a worker on another checkout, or an edit since): not united, not counted
    other = {"files": {"spec/toy.py": {"sha1": "0" * 40, "arcs": [[9, 10]]}}}
    m2 = bc.merge([one, other])
    assert m2["mismatched"] == ["spec/toy.py"]
    assert bc.analyze(m2, family="rmap", entries=(), root=toy)["files"] == []
    assert bc.merge([None]) is None


def test_merge_chunks_unites_coverage_and_sums_per_mode(toy):
    base = {"family": "walk", "variant": None, "mode": "32,64", "seed": 0, "budget": 1.0, "status": "clean",
            "examples": 3, "steps": 30, "rules": ["a"], "seconds": 1.0, "metrics": {},
            "per_mode": {"32": {"examples": 2, "steps": 20, "seconds": 0.5},
                         "64": {"examples": 1, "steps": 10, "seconds": 0.5}}}
    one = dict(base, coverage=measurement([(2, 3)], toy))
    two = dict(base, seed=10000)
    merged = jobs.merge_chunks([one, two])
    assert merged["per_mode"] == {"32": {"examples": 4, "steps": 40, "seconds": 1.0},
                                  "64": {"examples": 2, "steps": 20, "seconds": 1.0}}
    assert merged["coverage_chunks"] == 1 and merged["coverage"]["files"]["spec/toy.py"]["arcs"] == [[2, 3]]
    assert jobs.merge_chunks([two])["coverage_chunks"] == 0 and "coverage" not in jobs.merge_chunks([two])


def test_unreachable_entries_leave_the_denominator_and_stale_ones_are_flagged(toy):
    data = measurement([(1, 2), (2, 3), (9, 10), (10, 9), (9, 12)], toy)
    entries = (
        bc.Unreachable("spec/toy.py", "Mmu.walk", "if i == 3", to="return i", why="never 3"),
        bc.Unreachable("spec/toy.py", "pick", "if x > 0", to="return 2", why="only for rmap",
                       families=("rmap",)),
        bc.Unreachable("spec/toy.py", "pick", "if x < 0", why="stale: the line changed"),
        bc.Unreachable("spec/toy.py", "gone", "if x", why="stale: the function went"),
        bc.Unreachable("spec/toy.py", "Mmu.walk", "for i in range(n)", to="return None", why="reached"),
        bc.Unreachable("spec/nope.py", "f", "if y", why="stale: the file went"),
    )
    a = bc.analyze(data, family="rmap", entries=entries, root=toy)
    assert (a["branches"], a["listed_unreachable"], a["reachable"], a["reached"]) == (6, 2, 4, 4)
    assert a["unreached"] == 0 and a["percent"] == 100.0
    problems = [p["problem"] for p in a["problems"]]
    assert len(problems) == 3 and all(p.startswith("stale") for p in problems)
    assert any("no branch line of pick contains 'if x < 0'" in p for p in problems)
    assert any("has no function gone" in p for p in problems)
    assert [(r["line"], r["to"]) for r in a["listed_but_reached"]] == [(9, 12)]
    # the rmap-only entry does not apply to another family, nor to the union
    w = bc.analyze(data, family="walk", entries=entries, root=toy)
    assert w["listed_unreachable"] == 1 and [(u["line"], u["to"]) for u in w["files"][0]["unreached"]] == [(2, 4)]
    assert bc.analyze(data, family=None, entries=entries, root=toy)["listed_unreachable"] == 1
    assert len(bc.check_entries(entries, toy)) == 3


def test_an_ambiguous_anchor_is_not_applied(toy):
    e = bc.Unreachable("spec/toy.py", "Mmu.walk", "i", why="matches the for and the if")
    a = bc.analyze(measurement([], toy), family="rmap", entries=(e,), root=toy)
    assert a["listed_unreachable"] == 0 and a["problems"][0]["problem"].startswith("ambiguous: 2 branch lines")
    with pytest.raises(ValueError):
        bc.Unreachable("spec/toy.py", "pick", "if x", why="")


NESTED = textwrap.dedent('''\
    def outer(xs):
        def inner(x):
            if x:
                return 1
            return 0
        for x in xs:
            if inner(x):
                break
        return None


    def flat(y):
        return y
    ''')
# outer: line 6 (for) -> 7 | 9; line 7 (if) -> 8 | 6.  outer.inner: line 3 (if) -> 4 | 5.  flat: none.


def test_a_whole_function_entry_lists_every_branch_of_its_function(toy):
    """line=None (whole_function): every exit of every branch line of the
    function, in the families it names; the union keeps them unless it holds
    for every family."""
    data = measurement([(1, 2), (2, 3)], toy)
    walk = bc.whole_function("spec/toy.py", "Mmu.walk", why="no op walks", families=("live",))
    assert walk.line is None and walk.whole and walk.anchor() == "every branch line"
    a = bc.analyze(data, family="live", entries=(walk,), root=toy)
    assert (a["branches"], a["listed_unreachable"], a["reachable"], a["reached"]) == (6, 4, 2, 1)
    assert [(u["line"], u["to"]) for u in a["files"][0]["unreached"]] == [(2, 4)]
    assert a["problems"] == [] and a["listed_but_reached"] == []
    assert bc.analyze(data, family="rmap", entries=(walk,), root=toy)["listed_unreachable"] == 0
    assert bc.analyze(data, family=None, entries=(walk,), root=toy)["listed_unreachable"] == 0
    assert bc.analyze(data, family=None, entries=(bc.whole_function("spec/toy.py", "Mmu.walk", why="w"),),
                      root=toy)["listed_unreachable"] == 4
    assert walk.key()["whole_function"] and walk.key()["line"] is None
    # a `to` needs a line to go from
    with pytest.raises(ValueError):
        bc.Unreachable("spec/toy.py", "Mmu.walk", None, why="w", to="exit")
    with pytest.raises(ValueError):
        bc.whole_function("spec/toy.py", "Mmu.walk", why=" ")


def test_a_whole_function_entry_is_anchored(toy):
    """Stale when its function is gone or has no branch line; every branch of it
    a campaign reaches is reported; a nested function is not its outer one's."""
    (__import__("pathlib").Path(toy) / "spec" / "nested.py").write_text(NESTED)
    entries = (
        bc.whole_function("spec/toy.py", "Mmu.gone", why="stale: no such function"),
        bc.whole_function("spec/nested.py", "flat", why="stale: no branch line"),
        bc.whole_function("spec/nested.py", "outer", why="its own lines only"),
        bc.whole_function("spec/toy.py", "pick", why="reached: wrong"),
    )
    data = bc.merge([measurement([(1, 2), (2, 3)], toy),
                     measurement([(6, 7), (7, 6), (6, 9)], toy, rel="spec/nested.py")])
    a = bc.analyze(data, family="live", entries=entries, root=toy)
    problems = sorted(p["problem"] for p in a["problems"])
    assert problems == ["stale: spec/nested.py flat has no branch line", "stale: spec/toy.py has no function Mmu.gone"]
    assert sorted((r["line"], r["to"]) for r in a["listed_but_reached"]) == [(2, 3), (6, 7), (6, 9), (7, 6)]
    nested = next(r for r in a["files"] if r["file"] == "spec/nested.py")
    # outer's 4 arcs are listed (3 reached: reported); inner's 2 are not outer's
    assert nested["listed_unreachable"] == 1 and {(u["line"], u["function"]) for u in nested["unreached"]} == \
        {(3, "outer.inner")}
    assert len(bc.check_entries(entries, toy)) == 2
    rec = {"families": {"live": a}, "total": a, "problems": a["problems"]}
    text = "\n".join(bc.problem_lines(rec))
    assert "spec/toy.py Mmu.gone every branch line: stale" in text
    assert "outer every branch line: listed as unreachable but reached (in live): line 6 -> 7" in text


TWINS = textwrap.dedent('''\
    def roots(pae, n):
        if pae:
            for i in range(4):
                n += i
            return n
        for i in range(4):
            n -= i
        return n
    ''')
# line 3 (for) -> 4 | 5; line 6 (for) -> 7 | 8: the same text twice.


def test_an_exit_tells_two_lines_of_the_same_text_apart(toy):
    (__import__("pathlib").Path(toy) / "spec" / "twins.py").write_text(TWINS)
    first = bc.Unreachable("spec/twins.py", "roots", "for i in range(4):", to="n += i", why="w")
    both = bc.Unreachable("spec/twins.py", "roots", "for i in range(4):", to="return n", why="w")
    every = bc.Unreachable("spec/twins.py", "roots", "for i in range(4):", why="w")
    a = bc.analyze(measurement([], toy, rel="spec/twins.py"), family="rmap", entries=(first, both, every),
                   root=toy)
    assert a["listed_unreachable"] == 1
    assert [p["problem"][:12] for p in a["problems"]] == ["ambiguous: 2", "ambiguous: 2"]
    # a `to` that is one exit's whole line names it alone (`return n` is in `return n - 1` too)
    (__import__("pathlib").Path(toy) / "spec" / "pre.py").write_text(
        "def f(n):\n    if n:\n        return n\n    return n - 1\n")
    e = bc.Unreachable("spec/pre.py", "f", "if n:", to="return n", why="w")
    a = bc.analyze(measurement([(2, 4)], toy, rel="spec/pre.py"), family="rmap", entries=(e,), root=toy)
    assert a["listed_unreachable"] == 1 and a["listed_but_reached"] == [] and a["reached"] == 1


def test_the_unreachable_list_matches_the_source():
    """Every entry of diff/unreachable.py still names one branch of today's source."""
    assert bc.check_entries() == []


@pytest.fixture(scope="module")
def tiny_job():
    return jobs.run_job(jobs.Job("rmap", budget=0.01, steps=5, coverage=True))


def test_a_job_returns_its_coverage(tiny_job):
    cov = tiny_job["coverage"]
    json.dumps(tiny_job)
    assert tiny_job["status"] == "clean" and tiny_job["per_mode"]["default"]["examples"] > 0
    assert {"spec/rmap.py", "impl/rmap.py", "spec/pte_list.py"} <= set(cov["files"])
    assert all(f.startswith(("spec/", "impl/")) and not f.startswith("impl/variants/") for f in cov["files"])
    assert all(len(f["sha1"]) == 40 and f["arcs"] for f in cov["files"].values())
    assert cov["tracer"] == "CTracer"
    a = bc.analyze(cov, family="rmap")
    assert 0 < a["reached"] <= a["reachable"] and a["mismatched"] == []
    assert "coverage" not in jobs.run_job(jobs.Job("rmap", budget=0.01, steps=5))


def test_a_dask_worker_measures_its_own_job(tiny_job):
    """A LocalCluster of one worker process: the job's arcs come back in its result."""
    with jobs.Runner(workers=1) as runner:
        (res,) = runner.run([jobs.Job("rmap", budget=0.01, steps=5, coverage=True)])
    assert set(res["coverage"]["files"]) == set(tiny_job["coverage"]["files"])
    assert {"impl/rmap.py"} <= set(res["coverage"]["files"])


def test_check_plans_coverage_out_of_its_budget(tiny_job):
    modes = {"mmu": 5, "rmap": 1, "walk": 4, "zap": 5}
    plan = check.plain_plan(200.0, 2, modes, 2)
    assert plan["coverage"] == list(modes) and plan["coverage_short_worker_seconds"] is None
    assert plan["planned_worker_seconds"] <= plan["available_worker_seconds"]
    plain = check.plain_plan(200.0, 2, modes, 2, coverage=False)
    assert plain["budget"] > plan["budget"] and plain["coverage_worker_seconds"] == 0
    # not room for all: the cheapest families (fewest modes) are measured, the rest wait
    part = check.plain_plan(40.0, 2, modes, 2)
    assert part["coverage"] == ["rmap", "walk"] and part["coverage_short_worker_seconds"] > 0
    assert part["planned_worker_seconds"] <= part["available_worker_seconds"]
    short = check.plain_plan(15.0, 2, modes, 2)
    assert short["coverage"] == [] and short["coverage_short_worker_seconds"] > 0
    rec = check.coverage_record([], {}, {}, 2, short, {}, rerun_budget=260)
    assert "not measured" in check.coverage_text(rec) and "--budget 260" in rec["note"]
    # rounds measured faster than ROUND_SECONDS leave room for every family in the same time
    fast = check.plain_plan(60.0, 2, modes, 2, round_seconds={f: 1.0 for f in modes})
    assert fast["coverage"] == list(modes)
    rec = check.coverage_record(["rmap"], {"rmap": tiny_job["coverage"], "walk": None}, {}, 2, part, {},
                                rerun_budget=300)
    assert set(rec["families"]) == {"rmap"} and rec["not_measured"] == ["walk"]
    text = check.coverage_text(rec)
    assert "NOT measured this run" in text and "walk" in text and "--budget 300" in text


def test_round_seconds_come_from_the_zoo_clean_modes():
    from diff.campaign import CampaignResult

    caught = CampaignResult("prefetch", "prefetch:v3-2010", "tdp", 0, 5.0, status="discrepancy",
                            per_mode={"mixed": {"examples": 50, "steps": 1, "seconds": 4.0},
                                      "tdp": {"examples": 3, "steps": 1, "seconds": 30.0}})
    clean = CampaignResult("rmap", "rmap:tail-count", "default", 0, 5.0,
                           per_mode={"default": {"examples": 10, "steps": 1, "seconds": 1.0}})
    got = check.round_seconds_seen([caught, clean], {"prefetch": "mmu"})
    assert got == {"mmu": 2.0}  # 25 examples at 4 s / 50; the failing mode and short samples ignored


def test_report_renders_the_coverage_section(toy, monkeypatch):
    monkeypatch.setattr(bc, "ROOT", toy)
    monkeypatch.setattr(bc, "load_entries", lambda: (
        bc.Unreachable("spec/toy.py", "pick", "if x > 0", to="return 2", why="w"),
        bc.Unreachable("spec/toy.py", "pick", "if nothing", why="stale"),))
    cov = bc.report({"rmap": measurement([(1, 2), (2, 3), (9, 10)], toy)}, root=toy, note="measured on 1 of 2 chunks")
    cov.update({"measured": True, "speeds": {"rmap": {"slowdown": 3.4}}, "shared_machines": {"prefetch": "mmu"}})
    summary = {"exit": 0, "families": [{"family": "rmap", "status": "clean", "examples": 5, "steps": 50,
                                        "per_mode": {"default": {"examples": 5, "steps": 50, "seconds": 1.0}}}],
               "coverage": cov}
    html = report.render_html(summary, {})
    assert '<section id="coverage">' in html and '<table class="coverage">' in html
    assert '<table class="unreached">' in html and "spec/toy.py:9" in html and "Mmu.walk" in html
    assert "stale" in html and "3.40x" in html and '<table class="per-mode">' in html
    assert "2/5" in html  # reached / reachable: one of 6 branches listed
    text = check.coverage_text(cov)
    assert "rmap" in text and "(union)" in text and "stale" in text
    off = report.render_html(dict(summary, coverage={"measured": False, "note": "not measured: short"}), {})
    assert "not measured: short" in off


def test_bench_coverage_runs(monkeypatch, capsys):
    every = families.load_all
    monkeypatch.setattr(families, "load_all", lambda: {n: f for n, f in every().items() if n == "rmap"})
    monkeypatch.setattr(bc, "BENCH_STEPS", 5)
    assert cli.main(["bench", "coverage", "--budget", "0.01", "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["bench"] == "coverage" and set(rec["families"]) == {"rmap"}
    assert rec["families"]["rmap"]["reached"] > 0 and rec["runs"][0]["per_mode"]["default"]["examples"] > 0
    assert rec["total"]["branches"] >= rec["families"]["rmap"]["branches"]
    text = bench.render(rec)
    assert "unreached in rmap" in text and "(union)" in text and "reached/reachable" in text
    assert cli.main(["bench", "rmap", "--budget", "1"]) == 2


def test_diff_prints_a_line_per_mode(capsys):
    assert cli.main(["diff", "--family", "walk", "--budget", "0.01", "--steps", "3"]) == 0
    text = capsys.readouterr().out
    for mode in families.get("walk").modes:
        assert f"  mode {mode}: " in text
    assert cli.main(["diff", "--family", "rmap", "--budget", "0.01", "--steps", "3", "--json"]) == 0
    (rec,) = json.loads(capsys.readouterr().out)
    assert rec["per_mode"]["default"]["examples"] == rec["examples"]


def test_bench_coverage_reports_a_failing_campaign(monkeypatch, capsys):
    """A campaign of the sample that fails (here the rmap:next-after-drop variant's
    Rmap standing in for the plain impl) is a finding: exit 1 and the shrunk
    counterexample printed, as diff prints it."""
    from diff import campaign

    every = families.load_all
    monkeypatch.setattr(families, "load_all", lambda: {n: f for n, f in every().items() if n == "rmap"})
    monkeypatch.setattr(bc, "BENCH_STEPS", 20)
    plain = campaign.run_campaign
    monkeypatch.setattr(campaign, "run_campaign",
                        lambda name, **kw: plain(name, "rmap:next-after-drop", **kw))
    assert cli.main(["bench", "coverage", "--budget", "0.01"]) == 1
    out = capsys.readouterr().out
    assert "DISCREPANCY [" in out and "shrunk counterexample" in out and "rmap_" in out


def test_the_plan_counts_the_examples_a_campaign_runs_whatever_its_budget():
    """check's planner: the quick first rounds (3, 6, 12, 24, then 25 per mode) in
    whole cycles over the modes until the minimum ran; a measured chunk of one
    mode has full rounds (branch_coverage.sample_args)."""
    assert check.least_examples(1) == 45 and check.least_examples(5) == 45
    assert check.least_examples(5, bc.COVERAGE_MIN_EXAMPLES) == 105
    one = bc.sample_args(1, full_rounds=False)
    assert one["first_round"] == 25 and one["example_seconds"] > 20.0   # the watchdog's, slowed down
    assert check.least_examples(1, one["min_examples"], one["first_round"]) == 75
    assert check.chunk_seconds(0.0, 1, 1.0, 2.0, one["min_examples"], one["first_round"]) == 6.0
