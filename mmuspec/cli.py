"""The mmuspec command line.

Exit codes, for every command: 0 everything checked holds; 1 a discrepancy or
counterexample was found (for `diff --variant`: the variant was caught); 2 bad
usage (one line on stderr, no traceback); 3 inconclusive (z3 unknown, or a
budget too short to run what was asked).
"""

import argparse
import datetime
import json
import os
import sys
import time

from diff import campaign, counterexample, exampledb, families, jobs
from diff.core import BadOp
from impl import variants as variant_registry
from proofs import registry as proof_registry

from .output import Progress, table

OK, FOUND, USAGE, INCONCLUSIVE = 0, 1, 2, 3
MIN_VARIANT_SECONDS = 4.0  # a variant campaign shorter than this proves little when it misses
# check and zoo write a run folder under OUT_ROOT (relative to the current
# directory) and share one Hypothesis directory database beside those folders,
# so a failure stored by one run is replayed first by the next.
OUT_ROOT = "mmuspec-out"
DEFAULT_DATABASE = os.path.join(OUT_ROOT, "hypothesis-db")


class UsageError(Exception):
    """Bad input from the user: reported on one line, exit 2."""


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

    sp = sub.add_parser("bench", help="cost measurements (reads, time, memory)")
    common(sp)
    sp.add_argument("family", nargs="?", default="rmap", help="which bench (default rmap)")
    sp.add_argument("--variant", help="rmap bench only: measure this rmap variant (family:name) as the impl")

    sp = sub.add_parser("replay", help="rerun a saved counterexample")
    common(sp)
    sp.add_argument("file")
    g = sp.add_mutually_exclusive_group()
    g.add_argument("--variant", help="replay against this variant instead of the recorded one")
    g.add_argument("--impl", action="store_true", help="replay against the plain impl")

    sp = sub.add_parser("check", help="the main job: proofs, plain campaigns, every variant")
    common(sp, budget=180.0)
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
def cmd_list(args, out):
    fams = families.load_all()
    vs = variant_registry.load_all()
    obs = proof_registry.load_all()
    if args.json:
        out.write(json.dumps({
            "families": [{"name": f.name, "summary": f.summary, "modes": list(f.modes)}
                         for f in fams.values()],
            "variants": [{"name": v.qualname, "models": v.models, "must_catch": v.must_catch,
                          "summary": v.summary, "replaces": sorted(v.replaces),
                          "caught_by": list(v.caught_by)} for v in sorted(vs.values(), key=lambda v: v.qualname)],
            "obligations": [{"name": o.name, "family": o.family, "expected": o.expected,
                             "reach": o.reach, "claim": o.claim} for o in obs.values()],
        }, indent=1) + "\n")
        return OK
    out.write("Families\n" + table(["family", "modes", "what"],
              [[f.name, ",".join(f.modes), f.summary] for f in fams.values()]) + "\n\n")
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


def print_failure(res, out):
    out.write(f"DISCREPANCY in family {res.family} ({res.variant or 'plain impl'}, mode {res.mode}, "
              f"seed {res.seed})\n")
    out.write(f"  oracle: {res.oracle}\n  {res.message}\n")
    out.write(f"  shrunk counterexample, {len(res.ops)} ops"
              f"{'' if res.reproduced else ' (did NOT reproduce on replay: flaky)'}:\n")
    for i, line in enumerate(counterexample.describe_ops(res.family, res.ops, res.mode), 1):
        out.write(f"  {i:3}. {line}\n")


def cmd_diff(args, out):
    names, var = _resolve(args)
    if args.mode and len(names) != 1:
        raise UsageError("--mode needs --family or --variant")
    if args.mode and args.mode not in families.get(names[0]).modes:
        raise UsageError(f"family {names[0]} has modes {', '.join(families.get(names[0]).modes)}, "
                         f"not {args.mode!r}")
    database = exampledb.check(args.database)
    kind = "hunt" if var is not None and not args.mode else "plain"  # a variant: its modes in turn
    in_process = not args.scheduler and (len(names) == 1 or args.workers == 1)
    log = _logger(args.json)
    got = {}

    def on_result(i, job, data):
        while progresses:
            progresses.pop().done()
        res = got[i] = campaign.CampaignResult.from_dict(data)
        if res.status == "discrepancy" and args.save:
            paths = counterexample.save(res, args.save)
            res.note = f"saved {paths[0]} and {paths[1]}"
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
    if args.json:
        out.write(json.dumps([r.to_dict() for r in results], indent=1) + "\n")
    else:
        for res in results:
            if res.status == "discrepancy":
                print_failure(res, out)
                if res.note:
                    out.write(f"  {res.note}\n")
            else:
                out.write(f"clean: family {res.family} ({res.variant or 'plain impl'}, mode {res.mode}): "
                          f"{res.examples} examples, {res.steps} steps, {len(res.rules)} distinct ops, "
                          f"{res.seconds:.1f}s, seed {res.seed} (tested: sampled, not proved)\n")
                if res.metrics:
                    out.write("  measured: " + ", ".join(f"{k} {v}" for k, v in sorted(res.metrics.items()))
                              + "\n")
    return FOUND if any(r.status == "discrepancy" for r in results) else OK


def run_obligations(family=None, variant=None, timeout=60.0):
    obs = proof_registry.load_all().values()
    if family:
        obs = [o for o in obs if o.family == family]
    impl_cls = families.for_variant(variant).impl_class(variant) if variant else None
    return [(o, o.run(impl_cls, timeout * 1000)) for o in obs]


def obligation_status(o, v, variant=None):
    """'ok' (as expected), 'FAIL', or 'UNKNOWN' for one obligation result."""
    if v.verdict == proof_registry.UNKNOWN:
        return "UNKNOWN"
    if variant is not None:
        return "caught" if v.verdict != o.expected else "not caught"
    return "ok" if v.verdict == o.expected else "FAIL"


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

        def progress(line):
            if not args.json:
                sys.stderr.write(f"prove --symbolic: {line}\n")
        start = time.monotonic()
        results = symbolic.run(var, args.per_function, args.jobs, args.family, progress=progress)
        wall = time.monotonic() - start
        if args.save:
            for r in results:
                if r.verdict == symbolic.COUNTEREXAMPLE:
                    r.saved = list(symbolic.save(r, args.save))
        if args.json:
            out.write(json.dumps(symbolic.to_json(results, args.per_function, args.jobs, wall),
                                 indent=1) + "\n")
        else:
            out.write(symbolic.render(results, args.per_function, args.jobs, wall, var))
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
    if args.variant:
        var = variant_registry.get(args.variant)
        if args.family != "rmap" or var.family != "rmap":
            raise UsageError(f"--variant runs on the rmap bench with an rmap variant, not "
                             f"bench {args.family} with {var.qualname}")
        report = bench.bench_rmap(families.for_variant(var).impl_class(var), var.qualname)
    else:
        report = bench.BENCHES[args.family]()
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
        fam, name, failure = counterexample.replay(data, which)
    except counterexample.BadCounterexample as e:
        raise UsageError(str(e)) from None
    if args.json:
        out.write(json.dumps({"family": fam.name, "variant": name, "reproduced": failure is not None,
                              "step": failure.step if failure else None,
                              "oracle": failure.oracle if failure else None,
                              "message": failure.message if failure else None}, indent=1) + "\n")
    else:
        lines = counterexample.describe_ops(fam.name, data["ops"], data.get("mode"))
        out.write(f"replay of {args.file}: family {fam.name}, {name or 'plain impl'}, {len(lines)} ops\n")
        for i, line in enumerate(lines, 1):
            mark = " <-- " if failure and failure.step == i - 1 else ""
            out.write(f"  {i:3}. {line}{mark}\n")
        if failure:
            out.write(f"DISCREPANCY at step {failure.step + 1} [{failure.oracle}]: {failure.message}\n")
        else:
            out.write("clean: no discrepancy on replay\n")
    return FOUND if failure else OK


def _logger(quiet):
    """Progress lines on stderr (nothing with --json)."""
    if quiet:
        return lambda s: None
    return lambda s: (sys.stderr.write(s + "\n"), sys.stderr.flush())


def _run_database(args):
    """check/zoo: --database, else DEFAULT_DATABASE, unless --no-database; checked now."""
    if args.no_database:
        if args.database:
            raise UsageError("--database and --no-database exclude each other")
        return None
    return exampledb.check(args.database or DEFAULT_DATABASE)


def _run_folder(args, kind):
    """The run's output folder: --out, or OUT_ROOT/<kind>-<UTC time> (a new one)."""
    path = args.out
    if not path:
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        path = base = os.path.join(OUT_ROOT, f"{kind}-{stamp}")
        n = 1
        while os.path.exists(path):
            n += 1
            path = f"{base}-{n}"
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        raise UsageError(f"cannot create output folder {path}: {e.strerror}") from None
    return path


def _where(runner, args):
    if runner.in_process:
        return "in this process"
    if args.scheduler:
        return f"on {runner.slots} workers of {args.scheduler}"
    return f"on a local cluster of {runner.slots} workers"


def _zoo_variants(family=None):
    """Every registered variant, or those of `family` (a variant family, or a diff
    family: the variants its machine runs)."""
    vs = sorted(variant_registry.load_all().values(), key=lambda v: v.qualname)
    if family is None:
        return vs
    fams = families.load_all()
    picked = [v for v in vs if fams[family].accepts(v)] if family in fams else \
        [v for v in vs if v.family == family]
    if not picked:
        known = sorted(set(fams) | {v.family for v in vs})
        if family in known:
            raise UsageError(f"family {family} has no variants")
        raise UsageError(f"unknown family {family!r} (known: {', '.join(known)})")
    return picked


def _expected(v):
    """'caught', 'passes' (a sound patch: being caught is a finding) or 'either'."""
    return getattr(v, "expected", "caught" if v.must_catch else "either")


class _Zoo:
    """The zoo as jobs: one hunt per variant, results saved as they arrive.

    Jobs go in the order they should start: variants of families with more
    modes first (a hunt runs at least a round per mode, so theirs are the
    longest), so that the short ones fill the end; entries() are by name."""

    def __init__(self, variants, seed, budget, steps, save_dir):
        runs_on = {v.qualname: families.for_variant(v) for v in variants}
        self.variants = sorted(variants, key=lambda v: (-len(runs_on[v.qualname].modes), v.qualname))
        self.budget = budget
        self.save_dir = save_dir
        self.jobs = [jobs.Job(runs_on[v.qualname].name, v.qualname, seed=seed, budget=budget,
                              steps=steps, kind="hunt") for v in self.variants]
        self.results = {}  # index in self.jobs -> CampaignResult
        self.saved = {}

    def take(self, i, data):
        """A finished hunt: keep it, save its counterexample."""
        res = self.results[i] = campaign.CampaignResult.from_dict(data)
        if res.status == "discrepancy" and res.ops:
            self.saved[i] = list(counterexample.save(res, self.save_dir))
        return res

    @staticmethod
    def found(res):
        """'database' when the failure was a stored one replayed first, 'search' otherwise."""
        if res.status != "discrepancy":
            return None
        replayed = (res.stored_failures > 0 and res.examples_to_failure is not None
                    and res.examples_to_failure <= res.stored_failures)
        return "database" if replayed else "search"

    def entries(self):
        out = []
        for i, (v, job) in enumerate(zip(self.variants, self.jobs)):
            r = self.results.get(i)
            if r is None:
                continue
            out.append({"variant": v.qualname, "family": v.family, "runs_on": job.family,
                        "models": v.models, "must_catch": v.must_catch, "expected": _expected(v),
                        "caught": r.status == "discrepancy", "mode": r.mode, "oracle": r.oracle,
                        "time_to_failure": r.time_to_failure, "shrink_seconds": r.shrink_seconds,
                        "counterexample_ops": len(r.ops) if r.ops else None,
                        "budget": job.budget, "seconds": r.seconds, "examples": r.examples,
                        "examples_to_failure": r.examples_to_failure, "found": self.found(r),
                        "reproduced": r.reproduced, "message": r.message,
                        "saved": self.saved.get(i)})
        return sorted(out, key=lambda e: e["variant"])

    def missed(self):
        return [e["variant"] for e in self.entries() if e["must_catch"] and not e["caught"]]

    def unexpected(self):
        """Variants modelling a sound patch (expected to pass) that were caught: findings."""
        return [e["variant"] for e in self.entries() if e["expected"] == "passes" and e["caught"]]

    @staticmethod
    def render(entries):
        num = lambda x: f"{x:.1f}" if x is not None else "-"
        if any("symbolic" in e for e in entries):
            return _Zoo.render([{k: v for k, v in e.items() if k != "symbolic"} for e in entries]) \
                + "\n\nsymbolic (CrossHair contracts of the variant's family, a bounded search)\n" \
                + table(["variant", "symbolic"], [[e["variant"], e.get("symbolic", "-")] for e in entries])
        return table(["variant", "family", "models", "must catch", "result", "oracle", "mode",
                      "first failure s", "shrink s", "cex steps", "found"],
                     [[e["variant"], e["runs_on"], e["models"],
                       "yes" if e["must_catch"] else "no (must pass)" if e["expected"] == "passes" else "no",
                       ("CAUGHT (a finding)" if e["expected"] == "passes" else "caught") if e["caught"]
                       else "passes" if e["expected"] == "passes" else "NOT CAUGHT", e["oracle"] or "-",
                       e["mode"] if e["caught"] else "-", num(e["time_to_failure"]),
                       num(e["shrink_seconds"]), e["counterexample_ops"] or "-", e["found"] or "-"]
                      for e in entries])


def _write_json(path, data):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(json.dumps(data, indent=1) + "\n")
    os.replace(tmp, path)


def _keep_partial(out_dir, todo, got, err):
    """A cluster failed mid-run: keep what finished in OUT/partial.json; the error says where."""
    path = os.path.join(out_dir, "partial.json")
    _write_json(path, {"error": str(err), "finished": [
        {"job": todo[i].to_dict(), "result": r} for i, r in sorted(got.items())]})
    return jobs.ClusterError(f"{err} (the {len(got)} finished campaigns and their counterexamples "
                             f"are kept: {path})")


def _run_zoo(runner, zoo, database, out_dir, log):
    """Run the zoo's hunts on `runner`, a progress line per result; a cluster
    failure keeps what finished (partial.json) and is a one-line error."""
    def on_result(i, job, data):
        res = zoo.take(i, data)
        log(f"[{len(zoo.results)}/{len(zoo.jobs)}] {job.variant}: "
            + (f"caught in mode {res.mode} by {res.oracle}" if res.status == "discrepancy"
               else "NOT caught"))
    try:
        runner.run(zoo.jobs, database, on_result)
    except jobs.ClusterError as e:
        raise _keep_partial(out_dir, zoo.jobs, {i: r.to_dict() for i, r in zoo.results.items()},
                            e) from None


def cmd_zoo(args, out):
    """Every variant (or a family's) hunted in parallel: caught or not, by which oracle, how fast.

    --budget is the command's search seconds, shared out: each variant gets
    budget * workers / variants (split over its family's modes); shrinking a
    failure comes on top.  A must-catch variant missed is a failure of the
    tester (exit 1), or inconclusive (exit 3) when each variant had less than
    MIN_VARIANT_SECONDS.
    """
    t0 = time.monotonic()
    vs = _zoo_variants(args.family)
    database = _run_database(args)
    out_dir = _run_folder(args, "zoo")
    save_dir = args.save or os.path.join(out_dir, "counterexamples")
    log = _logger(args.json)
    in_process = not args.scheduler and (len(vs) == 1 or args.workers == 1)
    with jobs.Runner(args.scheduler, args.workers, in_process=in_process) as runner:
        per = args.budget * min(runner.slots, len(vs)) / len(vs)
        zoo = _Zoo(vs, args.seed, per, args.steps, save_dir)
        log(f"mmuspec zoo: {len(vs)} variants, {per:.1f}s of search each, {_where(runner, args)}; "
            f"example database {database or 'none'}; output {out_dir}")

        _run_zoo(runner, zoo, database, out_dir, lambda s: log("mmuspec zoo: " + s))
    entries = zoo.entries()
    if args.symbolic:
        from proofs import symbolic

        for e in entries:
            log(f"mmuspec zoo: symbolic contracts on {e['variant']} ...")
            v = symbolic.symbolic_verdicts_for_variant(e["variant"], seconds=args.symbolic)
            e["symbolic"] = ("caught: " + ", ".join(v["by"]) if v["caught"] else
                             "inconclusive" if v["caught"] is None else
                             "no counterexample within the budget")
    missed, unexpected = zoo.missed(), zoo.unexpected()
    short = per < MIN_VARIANT_SECONDS
    code = FOUND if unexpected or (missed and not short) else INCONCLUSIVE if missed else OK
    # the kill rate is over the variants that must be caught (a sound patch must pass)
    caught = sum(e["caught"] for e in entries if e["must_catch"])
    killable = sum(1 for e in entries if e["must_catch"])
    summary = {"exit": code, "seconds": round(time.monotonic() - t0, 1), "out_dir": out_dir,
               "summary_path": os.path.join(out_dir, "summary.json"), "save_dir": save_dir,
               "database": database, "workers": runner.slots, "scheduler": args.scheduler,
               "variant_budget": per, "zoo": entries, "zoo_kill_rate": f"{caught}/{killable}",
               "missed": missed, "unexpectedly_caught": unexpected}
    _write_json(summary["summary_path"], summary)
    if args.json:
        out.write(json.dumps(summary, indent=1) + "\n")
        return code
    out.write("Variants (the zoo; tested: sampled)\n" + _Zoo.render(entries) + "\n\n")
    out.write(f"zoo kill rate {caught}/{killable} must-catch; {per:.1f}s of search per variant; "
              f"{summary['seconds']}s; output {out_dir} (summary.json, counterexamples in {save_dir})\n")
    if missed and short:
        out.write(f"inconclusive: {', '.join(missed)} not caught, but each variant had only {per:.1f}s; "
                  f"rerun with --budget {int(MIN_VARIANT_SECONDS * len(vs) / runner.slots) + 1} or more\n")
    elif missed:
        out.write(f"must-catch variants NOT caught (a failure of the tester): {', '.join(missed)}\n")
    if unexpected:
        out.write(f"variants of sound patches CAUGHT (a finding): {', '.join(unexpected)}\n")
    return code


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


def _write_check_report(path, summary, save_dir, log):
    """The HTML report (mmuspec/report.py) with quick benches; its path, or None
    (and a one-line note) if it could not be written: the results stay saved."""
    from . import report

    log(f"mmuspec check: report {path} ...")
    try:
        report.write_report(path, summary, report.collect_benches(), save_dir)
    except OSError as e:
        log(f"mmuspec check: report not written: {e}")
        return None
    return path


def cmd_check(args, out):
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
        got, saved = {}, {}

        def plain_result(i, job, data):
            res = campaign.CampaignResult.from_dict(data)
            got[i] = data
            if res.status == "discrepancy" and res.ops:
                saved[i] = list(counterexample.save(res, save_dir))
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
        "database": database,
        "scheduler": args.scheduler,
        "workers": runner.slots,
        "budget": args.budget,
        "plan": {"plain_chunks_per_family": chunks, "plain_chunk_budget": round(plain_share, 1),
                 "variant_budget": round(var_share, 1), "min_variant_seconds": MIN_VARIANT_SECONDS},
    }
    summary["report"] = None if args.no_report else args.report or os.path.join(out_dir, "report.html")
    _write_json(summary["summary_path"], summary)
    if summary["report"] and not _write_check_report(summary["report"], summary, save_dir, log):
        summary["report"] = None
        _write_json(summary["summary_path"], summary)
    if args.json:
        out.write(json.dumps(summary, indent=1) + "\n")
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
    out.write(f"output: {out_dir} (summary.json; counterexamples in {save_dir}); "
              f"example database: {database or 'none'}\n")
    if summary.get("report"):
        out.write(f"report: {summary['report']}\n")
    for res in plain_res:
        if res.status == "discrepancy":
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
    return code


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
            exampledb.DatabaseError, jobs.ClusterError) as e:
        msg = e.args[0] if e.args else str(e)
        sys.stderr.write(f"mmuspec: error: {msg}\n")
        return USAGE
    except KeyboardInterrupt:
        sys.stderr.write("mmuspec: interrupted\n")
        return 130
