"""mmuspec check, the main job: proofs, then the zoo and the plain campaigns as
parallel jobs (one chunk per family measured for branch coverage of spec/ and
impl/); summary.json, the HTML report and a summary table."""

import json
import os
import time

from diff import campaign, counterexample, families, jobs

from .common import (FOUND, INCONCLUSIVE, MIN_VARIANT_SECONDS, OK, UsageError, _keep_partial, _logger,
                     _run_database, _run_folder, _where, cannot_write, error_line, obligation_status,
                     print_failure, run_obligations, try_write_json)
from .output import table, writable_folder
from .zoo import _Zoo, _run_zoo, _zoo_variants, print_lost, unsaved_entries


CHUNK_SEED_STRIDE = 10_000   # plain campaign chunks of one family run seeds this far apart
CLOSE_SECONDS = 5.0          # planning: stopping the cluster and printing
ZOO_SHARE = 0.55             # of the worker time left after the proofs: the variants' search budget


def variant_budget(wall, slots, n_variants):
    """check: each variant's search budget: ZOO_SHARE of `wall` seconds on `slots`
    workers holds its search and its shrinking (capped at the search budget:
    _Zoo), so half of it is search."""
    return ZOO_SHARE * max(wall, 1.0) * slots / max(n_variants, 1) / 2


def plain_chunk_budget(remaining, n_families):
    """check: the budget of each plain chunk, once the zoo is done.  Each family
    has one chunk per worker, so every worker runs one chunk of each family:
    `remaining` seconds split over the families, less the round a chunk
    finishes after its budget (at least 1 s).  (plain_plan refines this with
    the rounds every mode must get and the coverage chunk.)"""
    return max(remaining / max(n_families, 1) - jobs.ROUND_SECONDS, 1.0)


# Branch coverage (diff/branch_coverage.py) slows a campaign down by about
# COVERAGE_SLOWDOWN (over 2x), so one chunk per family is measured, and its
# cost comes out of the plain chunks' budget (plain_plan).
COVERAGE_CHUNKS = 1
COVERAGE_ANALYSIS_SECONDS = 2.0  # planning: analysing the merged arcs here, after the campaigns


def least_examples(modes, min_examples=campaign.EXAMPLES_PER_ROUND, first_round=campaign.FIRST_ROUND_EXAMPLES):
    """The fewest examples a campaign of `modes` modes runs whatever its budget:
    whole cycles of rounds over the modes (round r: campaign.round_examples)
    until `min_examples` ran; every mode has a round.  (run_campaign can stop
    within a cycle; a cycle is the plan's unit.)"""
    total, rnd = 0, 0
    while total < min_examples or rnd == 0:
        total += modes * campaign.round_examples(rnd, first_round)
        rnd += 1
    return total


def chunk_seconds(budget, modes, slowdown=1.0, round_seconds=None, min_examples=campaign.EXAMPLES_PER_ROUND,
                  first_round=campaign.FIRST_ROUND_EXAMPLES):
    """Planned worker seconds of one plain chunk of a family with `modes` modes.
    run_campaign stops at the end of the first round after which the budget is
    spent and `min_examples` ran (least_examples): at most the budget plus
    the round that finishes after it, at least its least examples.  A round
    of EXAMPLES_PER_ROUND examples takes `round_seconds` (default
    jobs.ROUND_SECONDS), a measured chunk's `slowdown` times longer."""
    rnd = (round_seconds or jobs.ROUND_SECONDS) * slowdown
    least = least_examples(modes, min_examples, first_round) * rnd / campaign.EXAMPLES_PER_ROUND
    return max(budget + rnd, least)


# Seconds of one round (EXAMPLES_PER_ROUND examples) of each family's plain
# campaign, unmeasured, two campaigns at a time on the 2-core machine: from
# the plain chunks of `mmuspec check` (600 s, 2026-12-03 15:17 UTC; steps per
# second times steps per example).  The zoo's hunts time their clean modes
# faster (their quick first rounds; flush 4.1 s against 7.9 s here), and do
# not time a family without must-catch variants (the live ones) at all: with
# jobs.ROUND_SECONDS for those, that check planned 922 worker-seconds and
# took 1,310 (785 s for a 600 s budget).  plain_plan takes the larger of this
# and the zoo's measure.
ROUND_SECONDS_MEASURED = {"fastpf": 4.9, "flush": 7.9, "gfn": 4.9, "live": 11.3,
                          "live-relaxed": 13.7, "live-walk": 5.4, "rmap": 1.0, "unsync": 10.1,
                          "walk": 1.9, "zap": 4.4}
# and the slowdown branch coverage cost each family in that check (its
# measured chunk's steps per second against the other's): plain_plan's
# estimate of a measured chunk, branch_coverage.COVERAGE_SLOWDOWN for others
SLOWDOWN_MEASURED = {"fastpf": 4.1, "flush": 3.3, "gfn": 3.2, "live": 2.7, "live-relaxed": 2.9,
                     "live-walk": 1.6, "rmap": 2.5, "unsync": 4.1, "walk": 1.8, "zap": 3.9}


def planned_round_seconds(seen, names):
    """{family: seconds per round} for check's plan: the zoo's measure
    (round_seconds_seen) or ROUND_SECONDS_MEASURED, the larger."""
    return {f: max(seen.get(f, 0.0), ROUND_SECONDS_MEASURED.get(f, jobs.ROUND_SECONDS)) for f in names}


def round_seconds_seen(results, runs_on):
    """{family: seconds of a round of EXAMPLES_PER_ROUND examples} measured by the
    zoo's hunts on this machine just now (their clean modes: a failing mode's
    time includes its shrinking), for the families with at least a round's
    worth of examples; `runs_on` maps a hunt's family to the plain campaign
    whose machine it ran on.  plain_plan uses them instead of ROUND_SECONDS."""
    secs, exs = {}, {}
    for r in results:
        fam = runs_on.get(r.family, r.family)
        for mode, c in (r.per_mode or {}).items():
            if r.status == "discrepancy" and mode == r.mode:
                continue
            secs[fam] = secs.get(fam, 0.0) + c.get("seconds", 0.0)
            exs[fam] = exs.get(fam, 0) + c.get("examples", 0)
    per = campaign.EXAMPLES_PER_ROUND
    return {f: max(per * secs[f] / exs[f], 0.2) for f in secs if exs[f] >= per and secs[f] > 0}


def plain_plan(remaining, slots, family_modes, chunks, coverage=True, round_seconds=None):
    """check: the plain chunks' budget once the zoo is done, and which families'
    branch coverage fits.  `family_modes`: {family: number of modes}; each
    family has `chunks` chunks, COVERAGE_CHUNKS of them measured for the
    families measured; `round_seconds`: {family: seconds per round} where
    measured (round_seconds_seen), else jobs.ROUND_SECONDS.

    The planned work (chunk_seconds of every chunk) must fit in `remaining`
    seconds on `slots` workers, and the longest chunk in `remaining`: the
    largest budget (at least 1 s) that fits.  Coverage never adds time to
    check: the families are measured cheapest first (the coverage cost of a
    family grows with its modes), as many as fit with 1 s budgets; the others
    are not measured this run.  Returns {"budget", "coverage" (the families
    measured, in family order), "planned_worker_seconds",
    "available_worker_seconds", "coverage_worker_seconds",
    "coverage_short_worker_seconds" (what measuring every family lacks)}."""
    from diff.branch_coverage import COVERAGE_SLOWDOWN, sample_args

    measured = min(COVERAGE_CHUNKS, chunks)
    avail = max(remaining, 0.0) * max(slots, 1)
    rounds = round_seconds or {}

    def cost(f, b, cov):
        m, rnd = family_modes[f], rounds.get(f)
        plain = chunk_seconds(b, m, round_seconds=rnd)
        slowdown = SLOWDOWN_MEASURED.get(f, COVERAGE_SLOWDOWN)
        sample = sample_args(m, full_rounds=False)
        slow = chunk_seconds(b, m, slowdown, rnd, sample["min_examples"], sample["first_round"]) \
            if cov else plain
        k = measured if cov else 0
        return k * slow + (chunks - k) * plain, slow, k * (slow - plain)

    def work(b, cov_set):
        parts = [cost(f, b, f in cov_set) for f in family_modes]
        return sum(p[0] for p in parts), max((p[1] for p in parts), default=0.0), sum(p[2] for p in parts)

    def fits(b, cov_set):
        total, longest, _ = work(b, cov_set)
        return total <= avail and longest <= max(remaining, 0.0)

    order = sorted(family_modes, key=lambda f: (cost(f, 1.0, True)[2], f)) if coverage else []
    cov_set = set()
    for f in order:  # cheapest first; adding a family only adds work
        if not fits(1.0, cov_set | {f}):
            break
        cov_set.add(f)
    lo, hi = 1.0, max(remaining, 1.0)
    if fits(hi, cov_set):
        lo = hi
    else:
        for _ in range(40):  # bisection: work() grows with the budget
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if fits(mid, cov_set) else (lo, mid)
    total, _, extra = work(lo, cov_set)
    short = work(1.0, set(family_modes))[0] - avail if coverage and len(cov_set) < len(family_modes) else None
    return {"budget": lo, "coverage": [f for f in family_modes if f in cov_set],
            "planned_worker_seconds": round(total, 1), "available_worker_seconds": round(avail, 1),
            "coverage_worker_seconds": round(extra, 1),
            "coverage_short_worker_seconds": round(short, 1) if short is not None else None}


REPORT_SECONDS = 20.0  # kept from check's budget for the report's quick benches and plots


def _write_check_report(path, summary, save_dir, log, error=None):
    """The HTML report (mmuspec/report.py) with quick benches; its path, or None
    (and a one-line note, to `error` if given, else to `log`) if it could not be
    written: the results stay saved."""
    from . import report

    log(f"mmuspec check: report {path} ...")
    try:
        report.write_report(path, summary, report.collect_benches(), save_dir)
    except OSError as e:
        if error is None:
            log(f"mmuspec check: report not written: {e}")
        else:
            error(cannot_write(e, path, "the report"))
        return None
    return path


def per_mode_rows(plain):
    """[family, mode, examples, steps, seconds] for each mode of each plain campaign."""
    rows = []
    for f in plain:
        for mode, c in (f.get("per_mode") or {}).items():
            rows.append([f["family"], mode, c.get("examples", 0), c.get("steps", 0),
                         f"{c.get('seconds', 0):.1f}"])
    return rows


def coverage_speeds(results):
    """Steps per second of a family's measured and unmeasured chunks, and their
    ratio (the slowdown coverage cost in this run), from the chunks' results."""
    def rate(rs):
        secs = sum(r["seconds"] for r in rs)
        return sum(r["steps"] for r in rs) / secs if secs else None
    m = rate([r for r in results if r.get("coverage")])
    u = rate([r for r in results if not r.get("coverage")])
    return {"measured_steps_per_second": round(m, 1) if m else None,
            "unmeasured_steps_per_second": round(u, 1) if u else None,
            "slowdown": round(u / m, 2) if m and u else None}


def coverage_record(measure, arcs, speeds, chunks, plan, shared, rerun_budget=None):
    """summary["coverage"]: branch_coverage.report of the measured chunks of the
    families in `measure` (or why none was, with the --budget that would leave
    room for every family)."""
    from diff import branch_coverage

    short = plan.get("coverage_short_worker_seconds")
    lack = ((f"; measuring every family needs about {short:.0f} more worker seconds" if short else "")
            + (f" (rerun with --budget {rerun_budget} or more)" if rerun_budget else ""))
    if not measure:
        return {"measured": False, "rerun_budget": rerun_budget,
                "note": "branch coverage not measured: the time left for the plain campaigns cannot "
                        "hold a measured chunk of any family (a round per mode, about "
                        f"{branch_coverage.COVERAGE_SLOWDOWN:g}x slower) without going over the budget"
                        + lack}
    skipped = [f for f in arcs if f not in measure]
    whole = COVERAGE_CHUNKS >= chunks
    note = (f"measured on {min(COVERAGE_CHUNKS, chunks)} of {chunks} chunk(s) per family"
            + (" (the whole plain campaign)" if whole else "")
            + f": coverage.py's tracer slows a campaign about {branch_coverage.COVERAGE_SLOWDOWN:g}x, "
            "so the measured chunk runs fewer examples in the same budget")
    if skipped:
        note += (f"; NOT measured this run (no room in the budget): {', '.join(skipped)}, so the union "
                 "is over the files the measured families ran" + lack)
    rec = branch_coverage.report({f: arcs.get(f) for f in measure}, note=note, every_file=not skipped)
    rec.update({"measured": True, "not_measured": skipped, "rerun_budget": rerun_budget if skipped else None,
                "chunks_measured": min(COVERAGE_CHUNKS, chunks), "chunks": chunks,
                "speeds": {f: v for f, v in speeds.items() if f in measure},
                "shared_machines": {n: o for n, o in shared.items() if o in measure}})
    return rec


def coverage_text(cov):
    """check's printed coverage section: the per-family table, the list's problems,
    and where the unreached branches are listed."""
    from diff import branch_coverage

    if not cov.get("measured"):
        return cov["note"]
    lines = ["Branch coverage of spec/ and impl/ (impl/variants/ excluded; tested: the branches the "
             "sampled examples took), " + cov["note"],
             table(branch_coverage.SUMMARY_HEADERS, branch_coverage.summary_rows(cov))]
    slow = [f"{n} {s['slowdown']}x" for n, s in (cov.get("speeds") or {}).items() if s.get("slowdown")]
    if slow:
        lines.append("measured slowdown in this run (steps/s, unmeasured/measured chunks): " + ", ".join(slow))
    for name, other in (cov.get("shared_machines") or {}).items():
        lines.append(f"({name} runs on the {other} machine: its coverage is {other}'s)")
    lines.append(f"reachable = branches less those listed in diff/unreachable.py; target "
                 f"{cov['target_percent']:g}% per family; the unreached branches, by file and line, are in "
                 "summary.json and the report (`mmuspec bench coverage` prints them)")
    probs = branch_coverage.problem_lines(cov)
    if probs:
        lines.append("unreachable list problems:")
        lines += probs
    return "\n".join(lines)


def run(args, out):
    """Proofs, then the zoo and the plain campaigns as parallel jobs; a summary table.

    The run's folder (--out) gets summary.json and counterexamples/ (unless
    --save); the example database defaults to DEFAULT_DATABASE, shared by
    runs.  --budget is the command's seconds: proofs first, in this process;
    then every variant with variant_budget() of search; then each family's
    plain campaign in one chunk per worker, sized by plain_plan() to the time
    left, one chunk per family measured for branch coverage when it fits
    (its slowdown comes out of the same time).  Budgets are plans, not
    cut-offs (a started round finishes, a failure is shrunk after its
    budget).
    """
    t0 = time.monotonic()
    if not args.no_report:  # the report's benches and plots come out of the same budget
        args.budget = max(args.budget - REPORT_SECONDS, 1.0)
    fams = families.load_all()
    vs = _zoo_variants()
    database = _run_database(args)
    out_dir = _run_folder(args, "check")
    save_dir = args.save or os.path.join(out_dir, "counterexamples")
    writable_folder(save_dir, "--save folder" if args.save else "counterexamples folder")
    if not args.no_report and args.report:
        if os.path.isdir(args.report):
            raise UsageError(f"--report {args.report} is a folder: give the report's file name")
        writable_folder(os.path.dirname(args.report) or ".", "--report folder")
    log = _logger(args.json)
    # A family that reuses another's machine and world (prefetch on mmu) has the
    # same plain campaign: run it once.
    machines, shared = {}, {}
    for name, fam in fams.items():
        key = (fam.machine, fam.make_world)
        if key in machines:
            shared[name] = machines[key]
        else:
            machines[key] = name
    fams = {n: f for n, f in fams.items() if n not in shared}
    # A family that cannot run on this host (the live family without a usable
    # /dev/kvm) is skipped, and says why: neither a failure nor hidden.
    skipped_fams = {n: f.availability()[1] for n, f in fams.items() if not f.availability()[0]}
    fams = {n: f for n, f in fams.items() if n not in skipped_fams}
    for name, reason in skipped_fams.items():
        log(f"mmuspec check: {name}: skipped ({reason})")
    in_process = not args.scheduler and args.workers == 1
    with jobs.Runner(args.scheduler, args.workers, in_process=in_process) as runner:
        log(f"mmuspec check: output {out_dir}; campaigns {_where(runner, args)}; "
            f"example database {database or 'none'}")
        log("mmuspec check: proof obligations ...")
        proofs = run_obligations()
        # Two phases, so a fast zoo (failures replayed from the database) leaves
        # its time to the plain campaigns: first every variant with a fixed
        # search budget, then the plain chunks sized to the time left.
        deadline = t0 + args.budget - CLOSE_SECONDS
        wall = deadline - time.monotonic()
        var_share = variant_budget(wall, runner.slots, len(vs))
        zoo = _Zoo(vs, args.seed, var_share, args.steps, save_dir)
        log(f"mmuspec check: {len(vs)} variants x {var_share:.1f}s ...")

        _run_zoo(runner, zoo, database, out_dir, lambda s: log("mmuspec check: " + s))
        chunks = 1 if in_process else max(runner.slots, 1)
        rounds = planned_round_seconds(round_seconds_seen(zoo.results.values(), shared), fams)
        plan = plain_plan(deadline - time.monotonic() - COVERAGE_ANALYSIS_SECONDS, runner.slots,
                          {n: len(f.modes) for n, f in fams.items()}, chunks, round_seconds=rounds)
        plan["round_seconds"] = {f: round(rounds.get(f, jobs.ROUND_SECONDS), 2) for f in fams}
        plain_share, measure = plan["budget"], plan["coverage"]
        # The measured chunks first: they are the longest, so they start first.
        order = sorted(((name, c) for name in fams for c in range(chunks)),
                       key=lambda nc: not (nc[0] in measure and nc[1] < COVERAGE_CHUNKS))
        plain_jobs = [jobs.Job(name, None, seed=args.seed + c * CHUNK_SEED_STRIDE, budget=plain_share,
                               steps=args.steps, coverage=name in measure and c < COVERAGE_CHUNKS)
                      for name, c in order]
        skipped = [n for n in fams if n not in measure]
        log(f"mmuspec check: plain impl, {len(fams)} families x {chunks} chunks x {plain_share:.0f}s"
            + (f", branch coverage measured on {COVERAGE_CHUNKS} chunk of {', '.join(measure)}" if measure
               else "") + (f", coverage NOT measured for {', '.join(skipped)} (budget too short)"
                           if skipped else "") + " ...")
        got, saved, unsaved = {}, {}, {}

        def plain_result(i, job, data):
            res = campaign.CampaignResult.from_dict(data)
            got[i] = data
            if res.status == "discrepancy" and res.ops:
                try:
                    saved[i] = list(counterexample.save(res, save_dir))
                except OSError as e:  # the folder was writable at the start: disk full, folder removed
                    unsaved[i] = (res, cannot_write(e, save_dir))
            log(f"mmuspec check: [{len(got)}/{len(plain_jobs)}] {job.label}: "
                + (res.status if res.status != "discrepancy" else f"DISCREPANCY [{res.oracle}]"))
        try:
            runner.run(plain_jobs, database, plain_result)
        except jobs.ClusterError as e:
            done = {i: r.to_dict() for i, r in zoo.results.items()}
            done.update({len(zoo.jobs) + i: r for i, r in got.items()})
            raise _keep_partial(out_dir, zoo.jobs + plain_jobs, done, e) from None
    plain, measured_arcs, speeds = [], {}, {}
    for name in fams:
        idx = [i for i, j in enumerate(plain_jobs) if j.family == name]
        merged = jobs.merge_chunks([got[i] for i in idx])
        merged["distinct_rules"] = len(merged["rules"])
        merged["saved"] = [p for i in idx for p in saved.get(i, [])] or None
        measured_arcs[name] = merged.pop("coverage", None)
        speeds[name] = coverage_speeds([got[i] for i in idx])
        plain.append(merged)
    t_cov = time.monotonic()
    short = plan.get("coverage_short_worker_seconds")
    rerun = None
    if short:  # the zoo takes ZOO_SHARE of any extra budget, the plain campaigns the rest
        rerun = int(args.budget + (0 if args.no_report else REPORT_SECONDS)
                    + short / (max(runner.slots, 1) * (1 - ZOO_SHARE))) + 1
    cov = coverage_record(measure, measured_arcs, speeds, chunks, plan, shared, rerun)
    cov["analysis_seconds"] = round(time.monotonic() - t_cov, 2)
    plain_res = [campaign.CampaignResult.from_dict(d) for d in plain]
    zoo_entries = zoo.entries()
    plain_lost = [unsaved[i] for i in sorted(unsaved)]
    lost = plain_lost + zoo.lost()  # counterexamples that could not be saved: printed in full
    proof_bad = [o.name for o, v in proofs if obligation_status(o, v) == "FAIL"]
    proof_unknown = [o.name for o, v in proofs if obligation_status(o, v) == "UNKNOWN"]
    missed, unexpected = zoo.missed(), zoo.unexpected()
    plain_bad = [r.family for r in plain_res if r.status == "discrepancy"]
    caught = sum(e["caught"] for e in zoo_entries if e["must_catch"])
    killable = sum(1 for e in zoo_entries if e["must_catch"])
    # Below MIN_VARIANT_SECONDS a miss says more about the budget than the tester.
    short = var_share < MIN_VARIANT_SECONDS
    if proof_bad or plain_bad or unexpected or (missed and not short):
        code = FOUND
    elif proof_unknown or missed:
        code = INCONCLUSIVE
    else:
        code = OK
    summary = {
        "exit": code, "seconds": round(time.monotonic() - t0, 1),
        "obligations": {"proved": sum(v.verdict == "proved" for _, v in proofs),
                        "counterexample": sum(v.verdict == "counterexample" for _, v in proofs),
                        "unknown": len(proof_unknown), "not as expected": proof_bad},
        "obligation_results": [{"name": o.name, "family": o.family, "expected": o.expected,
                                "verdict": v.verdict, "status": obligation_status(o, v),
                                "seconds": round(v.seconds, 3), "reach": o.reach, "detail": v.detail}
                               for o, v in proofs],
        "families": plain,
        "shared_machines": shared,
        "skipped_families": skipped_fams,
        "zoo": zoo_entries,
        "zoo_kill_rate": f"{caught}/{killable}",
        "missed": missed,
        "unexpectedly_caught": unexpected,
        "out_dir": out_dir,
        "summary_path": os.path.join(out_dir, "summary.json"),
        "save_dir": save_dir,
        "counterexamples": [p for d in plain for p in (d["saved"] or [])]
                           + [p for e in zoo_entries for p in (e["saved"] or [])],
        "unsaved": unsaved_entries(lost),
        "database": database,
        "scheduler": args.scheduler,
        "workers": runner.slots,
        "budget": args.budget,
        "plan": {"plain_chunks_per_family": chunks, "plain_chunk_budget": round(plain_share, 1),
                 "variant_budget": round(var_share, 1), "min_variant_seconds": MIN_VARIANT_SECONDS,
                 "coverage_chunks_per_family": COVERAGE_CHUNKS if measure else 0,
                 "coverage_families": measure,
                 "planned_worker_seconds": plan["planned_worker_seconds"],
                 "available_worker_seconds": plan["available_worker_seconds"],
                 "coverage_worker_seconds": plan["coverage_worker_seconds"],
                 "round_seconds": plan["round_seconds"]},
        "coverage": cov,
    }
    summary["report"] = None if args.no_report else args.report or os.path.join(out_dir, "report.html")
    summary_written = try_write_json(summary["summary_path"], summary, "the summary")
    if summary["report"] and not _write_check_report(summary["report"], summary, save_dir, log,
                                                     error=error_line):
        summary["report"] = None
        if summary_written:
            summary_written = try_write_json(summary["summary_path"], summary, "the summary")
    if not summary_written:
        summary["summary_path"] = None
    if args.json:
        out.write(json.dumps(summary, indent=1) + "\n")
        for _, why in lost:
            error_line(why)
        return code
    out.write("Proof obligations (proved = z3, for all inputs or the stated bound)\n")
    out.write(table(["obligation", "expected", "verdict", "seconds", "reach"],
                    [[o.name, o.expected, v.verdict, f"{v.seconds:.2f}", o.reach] for o, v in proofs]) + "\n\n")
    out.write(f"Differential campaigns, plain impl (tested: sampled; {chunks} chunk(s) of distinct "
              f"seeds per family, seconds are worker time)\n")
    out.write(table(["family", "result", "examples", "steps", "distinct ops", "seconds"],
                    [[r.family, r.status if r.status != "discrepancy" else f"DISCREPANCY [{r.oracle}]",
                      r.examples, r.steps, len(r.rules), f"{r.seconds:.0f}"] for r in plain_res]) + "\n")
    for name, other in shared.items():
        out.write(f"({name} runs on the {other} machine: its plain campaign is {other}'s)\n")
    for name, reason in skipped_fams.items():
        out.write(f"{name}: skipped ({reason})\n")
    out.write("\nPer mode (the chunks summed; each family's modes round-robin)\n")
    out.write(table(["family", "mode", "examples", "steps", "seconds"], per_mode_rows(plain)) + "\n\n")
    out.write(coverage_text(cov) + "\n\n")
    out.write(f"Variants (the zoo; {var_share:.1f}s of search each; found: by search, or a stored "
              f"failure replayed from the example database)\n")
    out.write(_Zoo.render(zoo_entries) + "\n\n")
    out.write(f"obligations: {summary['obligations']['proved']} proved, "
              f"{summary['obligations']['counterexample']} counterexample, {len(proof_unknown)} unknown; "
              f"plain impl: {'clean' if not plain_bad else 'DISCREPANCY in ' + ', '.join(plain_bad)}; "
              f"zoo kill rate {caught}/{killable} must-catch; {summary['seconds']}s "
              f"{_where(runner, args)}\n")
    out.write(f"output: {out_dir} ({'summary.json' if summary_written else 'summary.json NOT written'}; "
              f"counterexamples in {save_dir}); example database: {database or 'none'}\n")
    if summary.get("report"):
        out.write(f"report: {summary['report']}\n")
    for res in plain_res:  # those not saved are printed in full below
        if res.status == "discrepancy" and res.family not in {r.family for r, _ in plain_lost}:
            print_failure(res, out)
    if proof_bad:
        out.write(f"obligations not as expected: {', '.join(proof_bad)}\n")
    if missed and short:
        need = MIN_VARIANT_SECONDS * len(vs) / (ZOO_SHARE * runner.slots) + (args.budget - wall)
        out.write(f"inconclusive: {', '.join(missed)} not caught, but each variant had only "
                  f"{var_share:.1f}s; rerun with --budget {int(need) + 1} or more\n")
    elif missed:
        out.write(f"must-catch variants NOT caught (a failure of the tester): {', '.join(missed)}\n")
    if unexpected:
        out.write(f"variants of sound patches CAUGHT (a finding): {', '.join(unexpected)}\n")
    print_lost(lost, out)
    for _, why in lost:
        error_line(why)
    return code
