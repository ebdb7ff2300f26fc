"""mmuspec zoo: every variant (or a family's) hunted as parallel jobs; the
zoo runner that check shares."""

import json
import os
import time

from diff import campaign, counterexample, families, jobs
from impl import variants as variant_registry

from .common import (FOUND, INCONCLUSIVE, MIN_VARIANT_SECONDS, OK, UsageError, _keep_partial, _logger,
                     _run_database, _run_folder, _where, cannot_write, error_line, print_failure,
                     print_unsaved, try_write_json)
from .output import table, writable_folder


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

    def __init__(self, variants, seed, budget, steps, save_dir, shrink_seconds=None):
        runs_on = {v.qualname: families.for_variant(v) for v in variants}
        self.variants = sorted(variants, key=lambda v: (-len(runs_on[v.qualname].modes), v.qualname))
        self.budget = budget
        self.save_dir = save_dir
        # A failure's shrinking is capped at the variant's search budget (at least
        # 1 s), so a zoo of n variants takes at most about twice its search time.
        shrink = shrink_seconds if shrink_seconds is not None else \
            min(campaign.DEFAULT_SHRINK_SECONDS, max(1.0, budget))
        self.jobs = [jobs.Job(runs_on[v.qualname].name, v.qualname, seed=seed, budget=budget,
                              steps=steps, kind="hunt", shrink_seconds=shrink)
                     for v in self.variants]
        self.results = {}  # index in self.jobs -> CampaignResult
        self.saved = {}
        self.unsaved = {}  # index -> why its counterexample could not be saved

    def take(self, i, data):
        """A finished hunt: keep it, save its counterexample (a failed save is
        kept in unsaved: the run goes on, and the end prints it in full)."""
        res = self.results[i] = campaign.CampaignResult.from_dict(data)
        if res.status == "discrepancy" and res.ops:
            try:
                self.saved[i] = list(counterexample.save(res, self.save_dir))
            except OSError as e:  # the folder was writable at the start: disk full, folder removed
                self.unsaved[i] = cannot_write(e, self.save_dir)
        return res

    def lost(self):
        """(result, why) of each counterexample that could not be saved, by variant name."""
        return sorted(((self.results[i], why) for i, why in self.unsaved.items()),
                      key=lambda rw: rw[0].variant)

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


def unsaved_entries(lost):
    """summary.json's "unsaved": each counterexample that could not be saved, in full."""
    return [{"variant": r.variant, "family": r.family, "error": why,
             "counterexample": counterexample.to_json(r)} for r, why in lost]


def print_lost(lost, out):
    """Each counterexample that could not be saved, in full on `out` (print_failure's
    text, then the file it would have been)."""
    for res, why in lost:
        print_failure(res, out)
        print_unsaved(counterexample.to_json(res), why, out)


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


def run(args, out):
    """Every variant (or a family's) hunted in parallel: caught or not, by which oracle, how fast.

    --budget is the command's seconds, shared out: each variant gets
    budget * workers / variants / 2 of search (split over its family's
    modes), and as much again at most for shrinking a failure.  A must-catch variant missed is a failure of the
    tester (exit 1), or inconclusive (exit 3) when each variant had less than
    MIN_VARIANT_SECONDS.
    """
    t0 = time.monotonic()
    vs = _zoo_variants(args.family)
    database = _run_database(args)
    out_dir = _run_folder(args, "zoo")
    save_dir = args.save or os.path.join(out_dir, "counterexamples")
    writable_folder(save_dir, "--save folder" if args.save else "counterexamples folder")
    log = _logger(args.json)
    in_process = not args.scheduler and (len(vs) == 1 or args.workers == 1)
    with jobs.Runner(args.scheduler, args.workers, in_process=in_process) as runner:
        per = args.budget * min(runner.slots, len(vs)) / len(vs) / 2
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
               "missed": missed, "unexpectedly_caught": unexpected,
               "unsaved": unsaved_entries(zoo.lost())}
    if not try_write_json(summary["summary_path"], summary, "the summary"):
        summary["summary_path"] = None
    if args.json:
        out.write(json.dumps(summary, indent=1) + "\n")
        for _, why in zoo.lost():
            error_line(why)
        return code
    out.write("Variants (the zoo; tested: sampled)\n" + _Zoo.render(entries) + "\n\n")
    out.write(f"zoo kill rate {caught}/{killable} must-catch; {per:.1f}s of search per variant; "
              f"{summary['seconds']}s; output {out_dir} "
              f"({'summary.json' if summary['summary_path'] else 'summary.json NOT written'}, "
              f"counterexamples in {save_dir})\n")
    if missed and short:
        out.write(f"inconclusive: {', '.join(missed)} not caught, but each variant had only {per:.1f}s; "
                  f"rerun with --budget {int(MIN_VARIANT_SECONDS * len(vs) / runner.slots) + 1} or more\n")
    elif missed:
        out.write(f"must-catch variants NOT caught (a failure of the tester): {', '.join(missed)}\n")
    if unexpected:
        out.write(f"variants of sound patches CAUGHT (a finding): {', '.join(unexpected)}\n")
    print_lost(zoo.lost(), out)
    for _, why in zoo.lost():
        error_line(why)
    return code
