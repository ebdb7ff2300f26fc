"""The mmuspec command line.

Exit codes, for every command: 0 everything checked holds; 1 a discrepancy or
counterexample was found (for `diff --variant`: the variant was caught); 2 bad
usage (one line on stderr, no traceback); 3 inconclusive (z3 unknown, or a
budget too short to run what was asked).
"""

import argparse
import json
import sys
import time

from diff import campaign, counterexample, exampledb, families, jobs
from diff.core import BadOp
from impl import variants as variant_registry
from proofs import registry as proof_registry

from . import check, zoo
from .common import (DEFAULT_DATABASE, FOUND, INCONCLUSIVE, OK, OUT_ROOT, USAGE, UsageError, _logger,
                     cannot_write, error_line, obligation_status, print_failure, print_unsaved,
                     run_obligations)
from .output import OutputError, Progress, table, writable_folder


class Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


def _positive_float(text):
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not v > 0 or v != v or v == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds: {text!r}")
    return v


def _int_at_least(lo):
    def conv(text):
        try:
            v = int(text, 0)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if v < lo:
            raise argparse.ArgumentTypeError(f"must be >= {lo}: {text!r}")
        return v
    return conv


def _scheduler(text):
    try:
        return jobs.parse_scheduler(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def build_parser():
    p = Parser(prog="mmuspec", description="Executable spec and differential tester for the KVM x86 MMU.")
    sub = p.add_subparsers(dest="command", parser_class=Parser, required=True, metavar="COMMAND")

    def common(sp, budget=None):
        sp.add_argument("--json", action="store_true", help="machine-readable output on stdout")
        if budget is not None:
            sp.add_argument("--seed", type=_int_at_least(0), default=0, help="Hypothesis seed (default 0)")
            sp.add_argument("--budget", type=_positive_float, default=budget,
                            help=f"seconds (default {budget:g})")

    def parallel(sp, run_folder=None):
        """--scheduler/--workers/--database; with run_folder, also --out and --no-database."""
        sp.add_argument("--scheduler", type=_scheduler, metavar="tcp://HOST:PORT",
                        help="run the campaigns on this dask scheduler's workers "
                             "(default: a local cluster, one worker process per core)")
        sp.add_argument("--workers", type=_int_at_least(1), metavar="N",
                        help="local worker processes (default: the core count; 1 runs in this process), "
                             "or at most N of the scheduler's")
        default_db = f" (default {DEFAULT_DATABASE}, shared by runs)" if run_folder else " (default none)"
        sp.add_argument("--database", metavar="DIR|redis://HOST:PORT",
                        help="Hypothesis example database: stored failures are replayed first" + default_db)
        if run_folder:
            sp.add_argument("--no-database", action="store_true",
                            help="no example database: every failure must be found by search")
            sp.add_argument("--out", metavar="DIR",
                            help=f"the run's output folder (default {OUT_ROOT}/{run_folder}-<UTC time>)")

    sp = sub.add_parser("list", help="families, variants and proof obligations")
    common(sp)

    sp = sub.add_parser("diff", help="differential campaign of spec vs impl (or a variant)")
    common(sp, budget=60.0)
    sp.add_argument("--family", help="family name (default: every family, or the variant's)")
    sp.add_argument("--variant", help="run a variant (family:name) instead of the plain impl")
    sp.add_argument("--mode", help="family mode (see mmuspec list)")
    sp.add_argument("--steps", type=_int_at_least(1), default=campaign.DEFAULT_STEPS,
                    help=f"Hypothesis stateful_step_count (default {campaign.DEFAULT_STEPS})")
    sp.add_argument("--save", metavar="DIR", help="write each counterexample (JSON + pytest file) here")
    parallel(sp)

    sp = sub.add_parser("prove", help="z3 proof obligations (--symbolic: CrossHair contracts)")
    common(sp)
    sp.add_argument("--family", help="only this family's obligations")
    sp.add_argument("--variant", help="evaluate the obligations on a variant's code")
    sp.add_argument("--timeout", type=_positive_float, default=60.0,
                    help="z3 seconds per query (default 60)")
    sp.add_argument("--symbolic", action="store_true",
                    help="run CrossHair on the PEP 316 contracts and spec/impl pairs of "
                         "proofs/contracts.py instead (bounded search, never a proof)")
    sp.add_argument("--per-function", dest="per_function", type=_positive_float, default=8.0,
                    help="--symbolic: CrossHair CPU seconds per function (default 8)")
    sp.add_argument("--jobs", type=_int_at_least(1), default=2,
                    help="--symbolic: worker processes at a time (default 2)")
    sp.add_argument("--save", metavar="DIR",
                    help="--symbolic: write each counterexample (JSON + pytest file) here")

    sp = sub.add_parser("bench", help="cost measurements (reads, time, memory); branch coverage")
    common(sp)
    sp.add_argument("family", nargs="?", default="rmap", help="which bench (default rmap)")
    sp.add_argument("--variant", help="rmap bench only: measure this rmap variant (family:name) as the impl")
    sp.add_argument("--budget", type=_positive_float,
                    help="coverage bench only: seconds of each family's plain campaign under coverage "
                         "(default 10)")
    sp.add_argument("--workers", type=_int_at_least(1),
                    help="tester bench only: hunts run in this many processes at once (default 1)")

    sp = sub.add_parser("replay", help="rerun a saved counterexample")
    common(sp)
    sp.add_argument("file")
    g = sp.add_mutually_exclusive_group()
    g.add_argument("--variant", help="replay against this variant instead of the recorded one")
    g.add_argument("--impl", action="store_true", help="replay against the plain impl")

    sp = sub.add_parser("check", help="the main job: proofs, plain campaigns, every variant")
    common(sp, budget=600.0)
    sp.add_argument("--steps", type=_int_at_least(1), default=campaign.DEFAULT_STEPS)
    sp.add_argument("--save", metavar="DIR",
                    help="write counterexamples (plain impl and zoo) here (default OUT/counterexamples)")
    sp.add_argument("--report", metavar="FILE",
                    help="write the HTML report here (default OUT/report.html)")
    sp.add_argument("--no-report", action="store_true", help="write no HTML report")
    parallel(sp, run_folder="check")

    sp = sub.add_parser("zoo", help="every variant (or a family's): caught or not, by which oracle")
    common(sp, budget=60.0)
    sp.add_argument("--family", help="only the variants of this family (a variant family or a diff family)")
    sp.add_argument("--steps", type=_int_at_least(1), default=campaign.DEFAULT_STEPS)
    sp.add_argument("--save", metavar="DIR", help="write counterexamples here (default OUT/counterexamples)")
    sp.add_argument("--symbolic", metavar="SECONDS", type=_positive_float,
                    help="also run each variant's family of CrossHair contracts on it, SECONDS "
                         "per function (the 'symbolic' column: a bounded search)")
    parallel(sp, run_folder="zoo")

    sp = sub.add_parser("new-variant", help="write the skeleton of a new variant and its test")
    common(sp)
    sp.add_argument("family", help="variant family (rmap, walk, gfn, prefetch, zap, mmu)")
    sp.add_argument("name", help="lower-case words joined by '-'")
    return p


# -- commands ---------------------------------------------------------------
def _live_listing(fams):
    """The live family's part of `mmuspec list`: can it run here, what the host's
    probe measured (live.probe), and what the live side does with each mmu op.
    None when no live family is registered."""
    fam = fams.get("live")
    if fam is None:
        return None
    from diff import live
    from live.probe import probe

    ok, reason = fam.availability()
    out = {"available": ok, "reason": reason, "probe": probe().to_dict(),
           "ops": [{"op": op, "live side": where, "how": how}
                   for op, where, how in live.live_op_table()]}
    if "live-walk" in fams:
        from diff import live_walk
        out["walk_ops"] = [{"op": op, "live side": where, "how": how}
                           for op, where, how in live_walk.walk_op_table()]
    return out


def _write_live_listing(info, out):
    p = info["probe"]
    state = "runs here" if info["available"] else "skipped here"
    out.write(f"Live kernel (family live): {state}: {info['reason']}\n")
    if p.get("usable"):
        modes = ", ".join(f"{m} {r}" for m, r in p.get("paging_modes", {}).items())
        out.write(f"  probe (tested: one run): kernel {p.get('kernel')}, modules "
                  f"{','.join(p.get('kvm_modules') or []) or 'none'}, tdp_mmu {p.get('tdp_mmu')}, "
                  f"API {p.get('api_version')}, MAXPHYADDR {p.get('maxphyaddr')}, GBPAGES "
                  f"{int(bool(p.get('gbpages')))}, NX {int(bool(p.get('nx')))}\n"
                  f"  paging modes: {modes}\n")
    out.write("  mmu ops on the live side (family live):\n" + table(
        ["op", "live side", "how"],
        [[o["op"], o["live side"], o["how"]] for o in info["ops"]]) + "\n")
    if info.get("walk_ops"):
        out.write("  walk ops on the live side (family live-walk):\n" + table(
            ["op", "live side", "how"],
            [[o["op"], o["live side"], o["how"]] for o in info["walk_ops"]]) + "\n")
    out.write("\n")


def cmd_list(args, out):
    fams = families.load_all()
    vs = variant_registry.load_all()
    obs = proof_registry.load_all()
    live_info = _live_listing(fams)
    if args.json:
        out.write(json.dumps({
            "families": [{"name": f.name, "summary": f.summary, "modes": list(f.modes)}
                         for f in fams.values()],
            "live": live_info,
            "variants": [{"name": v.qualname, "models": v.models, "must_catch": v.must_catch,
                          "summary": v.summary, "replaces": sorted(v.replaces),
                          "caught_by": list(v.caught_by)} for v in sorted(vs.values(), key=lambda v: v.qualname)],
            "obligations": [{"name": o.name, "family": o.family, "expected": o.expected,
                             "reach": o.reach, "claim": o.claim} for o in obs.values()],
        }, indent=1) + "\n")
        return OK
    out.write("Families\n" + table(["family", "modes", "what"],
              [[f.name, ",".join(f.modes), f.summary] for f in fams.values()]) + "\n\n")
    if live_info is not None:
        _write_live_listing(live_info, out)
    out.write("Variants\n" + table(["variant", "models", "must catch", "replaces", "what"],
              [[v.qualname, v.models, "yes" if v.must_catch else "no", ",".join(sorted(v.replaces)),
                v.summary] for v in sorted(vs.values(), key=lambda v: v.qualname)]) + "\n\n")
    out.write("Proof obligations\n" + table(["obligation", "family", "expected", "reach"],
              [[o.name, o.family, o.expected, o.reach] for o in obs.values()]) + "\n")
    return OK


def _resolve(args):
    """(family names, variant or None) from --family/--variant; UsageError if unknown."""
    var = variant_registry.get(args.variant) if args.variant else None
    if args.family:
        fam = families.get(args.family)
        if var is not None and not fam.runs(var):
            raise UsageError(f"variant {var.qualname} does not run on family {fam.name}")
        return [fam.name], var
    if var is not None:
        return [families.for_variant(var).name], var
    return list(families.load_all()), None


def cmd_diff(args, out):
    """mmuspec diff: a campaign per family (or the variant's).  With --json, a
    list of CampaignResult.to_dict() records (diff/campaign.py), one per
    family: family, variant, mode (the modes run, comma-separated, or the
    failing one), seed, budget, status, examples, steps, rules, seconds, the
    failure's fields (oracle, message, failing_step, ops, reproduced,
    time_to_failure, shrink_seconds), metrics, and per_mode: {mode:
    {examples, steps, seconds}} for every mode the campaign ran (without
    --mode, the family's modes round-robin).  The text output gives the same
    per-mode counts, a line per mode."""
    names, var = _resolve(args)
    if args.mode and len(names) != 1:
        raise UsageError("--mode needs --family or --variant")
    if args.mode and args.mode not in families.get(names[0]).modes:
        raise UsageError(f"family {names[0]} has modes {', '.join(families.get(names[0]).modes)}, "
                         f"not {args.mode!r}")
    database = exampledb.check(args.database)
    if args.save:
        writable_folder(args.save, "--save folder")  # before any campaign: a result is never lost
    # A family that cannot run on this host (live without a usable /dev/kvm) is
    # skipped and says why; asked for alone, that is inconclusive (exit 3).
    skipped = {n: families.get(n).availability()[1] for n in names if not families.get(n).availability()[0]}
    for name, reason in skipped.items():
        sys.stderr.write(f"mmuspec diff: {name}: skipped ({reason})\n")
    names = [n for n in names if n not in skipped]
    if not names:
        return INCONCLUSIVE
    kind = "hunt" if var is not None and not args.mode else "plain"  # a variant: its modes in turn
    in_process = not args.scheduler and (len(names) == 1 or args.workers == 1)
    log = _logger(args.json)
    got, unsaved = {}, {}

    def on_result(i, job, data):
        while progresses:
            progresses.pop().done()
        res = got[i] = campaign.CampaignResult.from_dict(data)
        if res.status == "discrepancy" and args.save:
            try:
                paths = counterexample.save(res, args.save)
                res.note = f"saved {paths[0]} and {paths[1]}"
            except OSError as e:  # the folder was writable at the start: disk full, folder removed
                unsaved[i] = cannot_write(e, args.save)
                res.note = f"NOT SAVED: {unsaved[i]}"
        if not in_process:
            log(f"mmuspec diff: [{len(got)}/{len(names)}] {job.label}: {res.status}")

    progresses = []

    def progress(job):
        progresses.append(Progress(f"diff {job.variant or job.family}", quiet=args.json))
        return progresses[-1]

    with jobs.Runner(args.scheduler, args.workers, in_process=in_process) as runner:
        # --budget is the command's seconds: jobs that run side by side share it less.
        share = args.budget * min(runner.slots, len(names)) / len(names)
        todo = [jobs.Job(name, var.qualname if var else None, mode=args.mode, seed=args.seed,
                         budget=share, steps=args.steps, kind=kind) for name in names]
        try:
            runner.run(todo, database, on_result, progress)
        finally:
            while progresses:
                progresses.pop().done()
    results = [got[i] for i in range(len(todo))]
    if args.json:  # each result holds its ops: nothing is lost when a save failed
        out.write(json.dumps([r.to_dict() for r in results], indent=1) + "\n")
    else:
        for i, res in enumerate(results):
            if res.status == "discrepancy":
                print_failure(res, out)
                if i in unsaved:
                    print_unsaved(counterexample.to_json(res), unsaved[i], out)
                elif res.note:
                    out.write(f"  {res.note}\n")
            else:
                out.write(f"clean: family {res.family} ({res.variant or 'plain impl'}, mode {res.mode}): "
                          f"{res.examples} examples, {res.steps} steps, {len(res.rules)} distinct ops, "
                          f"{res.seconds:.1f}s, seed {res.seed} (tested: sampled, not proved)\n")
                if res.metrics:
                    out.write("  measured: " + ", ".join(f"{k} {v}" for k, v in sorted(res.metrics.items()))
                              + "\n")
            _write_per_mode(res, out)
    for i in sorted(unsaved):
        error_line(unsaved[i])
    return FOUND if any(r.status == "discrepancy" for r in results) else OK


def _write_per_mode(res, out):
    """diff's text output: a line per mode the campaign ran (examples, steps, seconds)."""
    for mode, c in (res.per_mode or {}).items():
        out.write(f"  mode {mode}: {c.get('examples', 0)} examples, {c.get('steps', 0)} steps, "
                  f"{c.get('seconds', 0):.1f}s\n")


def cmd_prove(args, out):
    var = variant_registry.get(args.variant) if args.variant else None
    if args.symbolic:
        from proofs import symbolic

        fams = sorted({t.family for t in symbolic.TARGETS.values()})
        if args.family and args.family not in fams:
            raise UsageError(f"no symbolic targets of family {args.family!r} (known: {', '.join(fams)})")
        if var is not None and args.family and args.family not in symbolic.VARIANT_TARGETS.get(var.family, ()):
            raise UsageError(f"variant {var.qualname} is checked by the {var.family} targets, "
                             f"not {args.family}")
        if var is not None and not symbolic.select(var, args.family):
            raise UsageError(f"no symbolic targets for variants of family {var.family}")

        if args.save:
            writable_folder(args.save, "--save folder")  # before any search: a result is never lost

        def progress(line):
            if not args.json:
                sys.stderr.write(f"prove --symbolic: {line}\n")
        start = time.monotonic()
        results = symbolic.run(var, args.per_function, args.jobs, args.family, progress=progress)
        wall = time.monotonic() - start
        unsaved = []
        if args.save:
            for r in results:
                if r.verdict == symbolic.COUNTEREXAMPLE:
                    try:
                        r.saved = list(symbolic.save(r, args.save))
                    except OSError as e:  # disk full, folder removed since the check
                        unsaved.append((r, cannot_write(e, args.save)))
        if args.json:  # each result holds its inputs: nothing is lost when a save failed
            out.write(json.dumps(symbolic.to_json(results, args.per_function, args.jobs, wall),
                                 indent=1) + "\n")
        else:
            out.write(symbolic.render(results, args.per_function, args.jobs, wall, var))
            for r, why in unsaved:
                out.write(f"{r.name}:\n")
                print_unsaved(symbolic.file_data(r), why, out)
        for _, why in unsaved:
            error_line(why)
        return symbolic.exit_code(results, var)
    if args.family:
        known = {o.family for o in proof_registry.load_all().values()}
        if args.family not in known:
            raise UsageError(f"no obligations of family {args.family!r} (known: {', '.join(sorted(known))})")
    if var is not None and args.family and var.family != args.family:
        raise UsageError(f"variant {var.qualname} has obligations of family {var.family}, "
                         f"not {args.family}")
    results = run_obligations(args.family or (var.family if var else None), var, args.timeout)
    rows = [(o, v, obligation_status(o, v, var)) for o, v in results]
    if args.json:
        out.write(json.dumps([{"name": o.name, "family": o.family, "reach": o.reach,
                               "expected": o.expected, "verdict": v.verdict, "status": s,
                               "detail": v.detail, "seconds": round(v.seconds, 3)}
                              for o, v, s in rows], indent=1) + "\n")
    else:
        out.write(table(["obligation", "expected", "verdict", "status", "seconds", "reach"],
                        [[o.name, o.expected, v.verdict, s, f"{v.seconds:.2f}", o.reach]
                         for o, v, s in rows]) + "\n")
        for o, v, s in rows:
            if v.verdict != proof_registry.PROVED and v.detail:
                out.write(f"  {o.name}: {v.verdict}: {v.detail}\n")
    if any(s == "UNKNOWN" for _, _, s in rows):
        return INCONCLUSIVE
    if var is not None:
        return FOUND if any(s == "caught" for _, _, s in rows) else OK
    return FOUND if any(s == "FAIL" for _, _, s in rows) else OK


def cmd_bench(args, out):
    from diff import bench

    if args.family not in bench.BENCHES:
        raise UsageError(f"no bench {args.family!r} (known: {', '.join(bench.BENCHES)})")
    if args.budget is not None and args.family != "coverage":
        raise UsageError(f"--budget is for the coverage bench, not bench {args.family}")
    if args.workers is not None and args.family != "tester":
        raise UsageError(f"--workers is for the tester bench, not bench {args.family}")
    if args.family == "coverage":
        if args.variant:
            raise UsageError("--variant runs on the rmap bench, not the coverage bench")
        report = bench.BENCHES["coverage"](**({"budget": args.budget} if args.budget else {}),
                                           log=None if args.json else _logger(False))
        out.write((json.dumps(report, indent=1) if args.json else bench.render(report)) + "\n")
        # a campaign of the sample failed (a discrepancy, a livelock): a finding, as in diff
        failed = [r["failure"] for r in report.get("runs", ()) if r.get("failure")]
        for f in failed if not args.json else ():
            print_failure(campaign.CampaignResult.from_dict(f), out)
        return FOUND if failed else OK
    if args.variant:
        var = variant_registry.get(args.variant)
        if args.family != "rmap" or var.family != "rmap":
            raise UsageError(f"--variant runs on the rmap bench with an rmap variant, not "
                             f"bench {args.family} with {var.qualname}")
        report = bench.bench_rmap(families.for_variant(var).impl_class(var), var.qualname)
    else:
        report = bench.BENCHES[args.family](**({"workers": args.workers} if args.workers else {}))
    out.write((json.dumps(report, indent=1) if args.json else bench.render(report)) + "\n")
    return OK


def _symbolic_file(path):
    """The data of a saved symbolic counterexample (prove --symbolic --save), else None."""
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None  # counterexample.load gives the one-line reason
    return data if isinstance(data, dict) and "mmuspec_symbolic_counterexample" in data else None


def _replay_symbolic(args, data, out):
    """Rerun a symbolic counterexample concretely (proofs.symbolic.holds)."""
    from proofs import symbolic

    target = data.get("target")
    if data.get("mmuspec_symbolic_counterexample") != symbolic.FORMAT or target not in symbolic.TARGETS \
            or not isinstance(data.get("inputs"), dict):
        raise UsageError(f"{args.file} is not a readable symbolic counterexample "
                         f"(format {symbolic.FORMAT}, a known target and its inputs)")
    which = None if args.impl else (args.variant if args.variant else "recorded")
    if which not in (None, "recorded"):
        variant_registry.get(which)
    name = data.get("variant") if which == "recorded" else which
    try:
        ok = symbolic.holds(data, which)
    except TypeError as e:
        raise UsageError(f"{args.file}: its inputs do not fit target {target!r}: {e}") from None
    if args.json:
        out.write(json.dumps({"target": target, "variant": name, "reproduced": not ok}) + "\n")
    else:
        out.write(f"replay of {args.file}: symbolic counterexample, {data.get('kind')} {target!r}, "
                  f"{name or 'plain impl'}\n")
        for line in data.get("kernel_terms") or []:
            out.write(f"  {line}\n")
        out.write("COUNTEREXAMPLE reproduced: the contract fails on these inputs\n" if not ok
                  else "clean: the contract holds on these inputs\n")
    return OK if ok else FOUND


def cmd_replay(args, out):
    data = _symbolic_file(args.file)
    if data is not None:
        return _replay_symbolic(args, data, out)
    try:
        data = counterexample.load(args.file)
        which = None if args.impl else (args.variant if args.variant else "recorded")
        ok, reason = families.get(data["family"]).availability()
        if not ok:  # e.g. a live counterexample on a host without a usable /dev/kvm
            sys.stderr.write(f"mmuspec: replay: family {data['family']} cannot run here: {reason}\n")
            return INCONCLUSIVE
        fam, name, failure, world = counterexample.replay_world(
            data, which, prepare=lambda w: getattr(w, "start_transcript", lambda: None)())
    except counterexample.BadCounterexample as e:
        raise UsageError(str(e)) from None
    try:
        transcript = getattr(world, "transcript_lines", None)
        if args.json:
            rec = {"family": fam.name, "variant": name, "reproduced": failure is not None,
                   "step": failure.step if failure else None,
                   "oracle": failure.oracle if failure else None,
                   "message": failure.message if failure else None}
            if transcript is not None:
                rec["transcript"] = world.transcript
            out.write(json.dumps(rec, indent=1) + "\n")
        else:
            lines = counterexample.describe_ops(fam.name, data["ops"], data.get("mode"))
            out.write(f"replay of {args.file}: family {fam.name}, {name or 'plain impl'}, "
                      f"{len(lines)} ops\n")
            if data.get("explanation"):
                out.write(f"  ({data['explanation']})\n")
            if transcript is not None:  # every side's answer, the live guest's instructions
                for line in transcript(failure.step if failure else None):
                    out.write(f"  {line}\n")
            else:
                for i, line in enumerate(lines, 1):
                    mark = " <-- " if failure and failure.step == i - 1 else ""
                    out.write(f"  {i:3}. {line}{mark}\n")
            if failure:
                out.write(f"DISCREPANCY at step {failure.step + 1} [{failure.oracle}]: "
                          f"{failure.message}\n")
            else:
                out.write("clean: no discrepancy on replay\n")
    finally:
        close = getattr(world, "close", None)
        if close is not None:  # a world that holds resources (the live family's VM)
            close()
    return FOUND if failure else OK


def cmd_zoo(args, out):
    """mmuspec zoo (mmuspec/zoo.py)."""
    return zoo.run(args, out)


def cmd_check(args, out):
    """mmuspec check (mmuspec/check.py)."""
    return check.run(args, out)


def cmd_new_variant(args, out):
    """Write impl/variants/<family>_<name>.py and its failing-until-filled test."""
    from .scaffold import new_variant

    module, test = new_variant(args.family, args.name)
    if args.json:
        out.write(json.dumps({"variant": f"{args.family}:{args.name}", "module": module,
                              "test": test}) + "\n")
    else:
        out.write(f"wrote {module} and {test}; fill in the TODOs (docs/extending.md), then "
                  f"`mmuspec diff --variant {args.family}:{args.name}` and `pytest {test}`\n")
    return OK


COMMANDS = {"list": cmd_list, "diff": cmd_diff, "prove": cmd_prove, "bench": cmd_bench,
            "replay": cmd_replay, "check": cmd_check, "zoo": cmd_zoo, "new-variant": cmd_new_variant}


def main(argv=None, out=None):
    out = out or sys.stdout
    try:
        args = build_parser().parse_args(argv)
        return COMMANDS[args.command](args, out)
    except UsageError as e:
        sys.stderr.write(f"mmuspec: error: {e}\n")
        return USAGE
    except (variant_registry.UnknownVariant, families.UnknownFamily, BadOp, ValueError,
            exampledb.DatabaseError, jobs.ClusterError, OutputError) as e:
        msg = e.args[0] if e.args else str(e)
        sys.stderr.write(f"mmuspec: error: {msg}\n")
        return USAGE
    except KeyboardInterrupt:
        sys.stderr.write("mmuspec: interrupted\n")
        return 130
