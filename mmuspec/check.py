"""mmuspec check, the main job: proofs, then the zoo and the plain campaigns as
parallel jobs; summary.json, the HTML report and a summary table."""

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
    """check: each variant's search budget, ZOO_SHARE of `wall` seconds on `slots` workers."""
    return ZOO_SHARE * max(wall, 1.0) * slots / max(n_variants, 1)


def plain_chunk_budget(remaining, n_families):
    """check: the budget of each plain chunk, once the zoo is done.  Each family
    has one chunk per worker, so every worker runs one chunk of each family:
    `remaining` seconds split over the families, less the round a chunk
    finishes after its budget (at least 1 s)."""
    return max(remaining / max(n_families, 1) - jobs.ROUND_SECONDS, 1.0)


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


def run(args, out):
    """Proofs, then the zoo and the plain campaigns as parallel jobs; a summary table.

    The run's folder (--out) gets summary.json and counterexamples/ (unless
    --save); the example database defaults to DEFAULT_DATABASE, shared by
    runs.  --budget is the command's seconds: proofs first, in this process;
    then every variant with variant_budget() of search; then each family's
    plain campaign in one chunk per worker, sized by plain_chunk_budget() to
    the time left.  Budgets are plans, not cut-offs (a started round
    finishes, a failure is shrunk after its budget).
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
        plain_share = plain_chunk_budget(deadline - time.monotonic(), len(fams))
        plain_jobs = [jobs.Job(name, None, seed=args.seed + c * CHUNK_SEED_STRIDE, budget=plain_share,
                               steps=args.steps) for name in fams for c in range(chunks)]
        log(f"mmuspec check: plain impl, {len(fams)} families x {chunks} chunks x {plain_share:.0f}s ...")
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
    plain = []
    for name in fams:
        idx = [i for i, j in enumerate(plain_jobs) if j.family == name]
        merged = jobs.merge_chunks([got[i] for i in idx])
        merged["distinct_rules"] = len(merged["rules"])
        merged["saved"] = [p for i in idx for p in saved.get(i, [])] or None
        plain.append(merged)
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
                 "variant_budget": round(var_share, 1), "min_variant_seconds": MIN_VARIANT_SECONDS},
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
    out.write("\n")
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
