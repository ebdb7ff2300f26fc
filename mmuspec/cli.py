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

from diff import campaign, counterexample, families
from diff.core import BadOp
from impl import variants as variant_registry
from proofs import registry as proof_registry

from .output import Progress, table

OK, FOUND, USAGE, INCONCLUSIVE = 0, 1, 2, 3
MIN_VARIANT_SECONDS = 4.0  # a variant campaign shorter than this proves little when it misses


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


def build_parser():
    p = Parser(prog="mmuspec", description="Executable spec and differential tester for the KVM x86 MMU.")
    sub = p.add_subparsers(dest="command", parser_class=Parser, required=True, metavar="COMMAND")

    def common(sp, budget=None):
        sp.add_argument("--json", action="store_true", help="machine-readable output on stdout")
        if budget is not None:
            sp.add_argument("--seed", type=_int_at_least(0), default=0, help="Hypothesis seed (default 0)")
            sp.add_argument("--budget", type=_positive_float, default=budget,
                            help=f"seconds (default {budget:g})")

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

    sp = sub.add_parser("prove", help="z3 proof obligations")
    common(sp)
    sp.add_argument("--family", help="only this family's obligations")
    sp.add_argument("--variant", help="evaluate the obligations on a variant's code")
    sp.add_argument("--timeout", type=_positive_float, default=60.0,
                    help="z3 seconds per query (default 60)")

    sp = sub.add_parser("bench", help="cost measurements (reads, time, memory)")
    common(sp)
    sp.add_argument("family", nargs="?", default="rmap", help="which bench (default rmap)")

    sp = sub.add_parser("replay", help="rerun a saved counterexample")
    common(sp)
    sp.add_argument("file")
    g = sp.add_mutually_exclusive_group()
    g.add_argument("--variant", help="replay against this variant instead of the recorded one")
    g.add_argument("--impl", action="store_true", help="replay against the plain impl")

    sp = sub.add_parser("check", help="the main job: proofs, plain campaigns, every variant")
    common(sp, budget=180.0)
    sp.add_argument("--steps", type=_int_at_least(1), default=campaign.DEFAULT_STEPS)
    sp.add_argument("--save", metavar="DIR", help="write counterexamples of the plain impl here")
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
        if var is not None and not fam.accepts(var):
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
    results = []
    share = args.budget / len(names)
    for name in names:
        prog = Progress(f"diff {var.qualname if var else name}", quiet=args.json)
        if var is not None and not args.mode:  # a variant: try the family's modes in turn
            res = campaign.hunt_variant(name, var.qualname, seed=args.seed, budget=share,
                                        steps=args.steps, progress=prog)
        else:
            res = campaign.run_campaign(name, var.qualname if var else None, seed=args.seed,
                                        budget=share, steps=args.steps, mode=args.mode,
                                        progress=prog)
        prog.done()
        results.append(res)
        if res.status == "discrepancy" and args.save:
            paths = counterexample.save(res, args.save)
            res.note = f"saved {paths[0]} and {paths[1]}"
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
    report = bench.BENCHES[args.family]()
    out.write((json.dumps(report, indent=1) if args.json else bench.render(report)) + "\n")
    return OK


def cmd_replay(args, out):
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


def cmd_check(args, out):
    """Proofs, then a plain campaign per family, then every variant; a summary table."""
    t0 = time.monotonic()
    fams = families.load_all()
    vs = [v for v in sorted(variant_registry.load_all().values(), key=lambda v: v.qualname)]
    log = (lambda s: None) if args.json else (lambda s: (sys.stderr.write(s + "\n"), sys.stderr.flush()))
    log("mmuspec check: proof obligations ...")
    proofs = run_obligations()
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
    remaining = max(args.budget - (time.monotonic() - t0), 1.0)
    plain_share = remaining * 0.6 / max(len(fams), 1)
    var_share = remaining * 0.4 / max(len(vs), 1)
    plain = []
    for name in fams:
        log(f"mmuspec check: plain impl campaign, family {name} ({plain_share:.0f}s) ...")
        prog = Progress(f"  {name}", quiet=args.json)
        res = campaign.run_campaign(name, None, seed=args.seed, budget=plain_share, steps=args.steps,
                                    progress=prog)
        prog.done()
        if res.status == "discrepancy" and args.save:
            res.note = "saved " + counterexample.save(res, args.save)[0]
        plain.append(res)
    zoo = []
    for v in vs:
        log(f"mmuspec check: variant {v.qualname} ...")
        res = campaign.hunt_variant(families.for_variant(v).name, v.qualname, seed=args.seed,
                                    budget=var_share, steps=args.steps)
        zoo.append((v, res))
    proof_bad = [o.name for o, v in proofs if obligation_status(o, v) == "FAIL"]
    proof_unknown = [o.name for o, v in proofs if obligation_status(o, v) == "UNKNOWN"]
    missed = [v.qualname for v, r in zoo if v.must_catch and r.status != "discrepancy"]
    plain_bad = [r.family for r in plain if r.status == "discrepancy"]
    caught = sum(1 for v, r in zoo if r.status == "discrepancy")
    # Below MIN_VARIANT_SECONDS a miss says more about the budget than the tester.
    short = var_share < MIN_VARIANT_SECONDS
    if proof_bad or plain_bad or (missed and not short):
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
        "families": [r.to_dict() for r in plain],
        "shared_machines": shared,
        "zoo": [{"variant": v.qualname, "must_catch": v.must_catch, "caught": r.status == "discrepancy",
                 "mode": r.mode,
                 "oracle": r.oracle, "time_to_failure": r.time_to_failure,
                 "shrink_seconds": r.shrink_seconds,
                 "counterexample_ops": len(r.ops) if r.ops else None} for v, r in zoo],
        "zoo_kill_rate": f"{caught}/{len(zoo)}",
    }
    if args.json:
        out.write(json.dumps(summary, indent=1) + "\n")
        return code
    out.write("Proof obligations (proved = z3, for all inputs or the stated bound)\n")
    out.write(table(["obligation", "expected", "verdict", "seconds", "reach"],
                    [[o.name, o.expected, v.verdict, f"{v.seconds:.2f}", o.reach] for o, v in proofs]) + "\n\n")
    out.write("Differential campaigns, plain impl (tested: sampled)\n")
    out.write(table(["family", "result", "examples", "steps", "distinct ops", "seconds"],
                    [[r.family, r.status if r.status != "discrepancy" else f"DISCREPANCY [{r.oracle}]",
                      r.examples, r.steps, len(r.rules), f"{r.seconds:.0f}"] for r in plain]) + "\n")
    for name, other in shared.items():
        out.write(f"({name} runs on the {other} machine: its plain campaign is {other}'s)\n")
    out.write("\n")
    out.write("Variants (the zoo)\n")
    out.write(table(["variant", "models", "must catch", "result", "mode", "oracle", "first failure s",
                     "shrink s", "cex ops"],
                    [[v.qualname, v.models, "yes" if v.must_catch else "no",
                      "caught" if r.status == "discrepancy" else "NOT CAUGHT",
                      r.mode if r.status == "discrepancy" else "-", r.oracle or "-",
                      f"{r.time_to_failure:.1f}" if r.time_to_failure is not None else "-",
                      f"{r.shrink_seconds:.1f}" if r.shrink_seconds is not None else "-",
                      len(r.ops) if r.ops else "-"] for v, r in zoo]) + "\n\n")
    out.write(f"obligations: {summary['obligations']['proved']} proved, "
              f"{summary['obligations']['counterexample']} counterexample, {len(proof_unknown)} unknown; "
              f"plain impl: {'clean' if not plain_bad else 'DISCREPANCY in ' + ', '.join(plain_bad)}; "
              f"zoo kill rate {caught}/{len(zoo)}; {summary['seconds']}s\n")
    for res in plain:
        if res.status == "discrepancy":
            print_failure(res, out)
    if proof_bad:
        out.write(f"obligations not as expected: {', '.join(proof_bad)}\n")
    if missed and short:
        out.write(f"inconclusive: {', '.join(missed)} not caught, but each variant had only "
                  f"{var_share:.1f}s; rerun with --budget {int(MIN_VARIANT_SECONDS / 0.4 * len(vs)) + 20} "
                  f"or more\n")
    elif missed:
        out.write(f"must-catch variants NOT caught (a failure of the tester): {', '.join(missed)}\n")
    return code


COMMANDS = {"list": cmd_list, "diff": cmd_diff, "prove": cmd_prove, "bench": cmd_bench,
            "replay": cmd_replay, "check": cmd_check}


def main(argv=None, out=None):
    out = out or sys.stdout
    try:
        args = build_parser().parse_args(argv)
        return COMMANDS[args.command](args, out)
    except UsageError as e:
        sys.stderr.write(f"mmuspec: error: {e}\n")
        return USAGE
    except (variant_registry.UnknownVariant, families.UnknownFamily, BadOp, ValueError) as e:
        msg = e.args[0] if e.args else str(e)
        sys.stderr.write(f"mmuspec: error: {msg}\n")
        return USAGE
    except KeyboardInterrupt:
        sys.stderr.write("mmuspec: interrupted\n")
        return 130
