"""Make and refresh tests/cases/: one saved counterexample per must-catch variant.

    make cases                                     # the same as the next line
    .venv/bin/python tests/make_cases.py           # hunt only the cases missing or stale
    .venv/bin/python tests/make_cases.py --check   # hunt nothing: list what is missing or stale
    .venv/bin/python tests/make_cases.py --force gfn:lai-2010   # hunt this variant's case again

Each case is tests/cases/<variant family>-<name>.json in the standard
counterexample format of diff/counterexample.py (`mmuspec replay` reads it).
A case is *good* for its variant (check_case) when: it loads; it is the
variant's, on the diff family that runs it; it has at most max_ops(variant)
ops; replayed on the variant, a discrepancy fires at its last op, from an
oracle in the variant's caught_by (and the pinned oracle, mode, message or
last op of PINS, where the variant has one); replayed on the plain impl, it
is clean.  tests/test_cases.py asserts exactly that for every registered
must-catch variant, so the suite replays fixed op lists and never searches.

Run without variant names, the tool checks every case and hunts the
variants whose case is missing or no longer good (the model changed under
it) with the same campaigns `mmuspec diff --variant` runs (Hypothesis
search, shrinking, then diff.core.minimize_ops to a 1-minimal op list),
in the pinned mode where PINS names one, else round-robin over the family's
modes; up to --tries seeds each.  A failure that is not a good case (an
oracle outside caught_by, too many ops) is not saved: the next seed is
tried.  Case files of variants no longer registered (or no longer
must-catch) are removed.  Hunts run in parallel on a local cluster, one
worker per core (--workers 1: in this process).

Exit 0 when every must-catch variant has a good case at the end, 1 when one
has not (each is named), 2 for bad usage.
"""

import argparse
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from diff import campaign, counterexample, families, jobs  # noqa: E402
from diff.core import BadOp  # noqa: E402
from impl import variants as variant_registry  # noqa: E402

CASES_DIR = os.path.join(ROOT, "tests", "cases")
MAKE = "make cases (or .venv/bin/python tests/make_cases.py)"

# The most ops a shrunk case may keep, by variant family (the bounds the
# family tests asserted on their searched counterexamples); a variant may
# have its own.  A case over its bound is hunted again.
MAX_OPS_BY_FAMILY = {"rmap": 12, "walk": 8, "gfn": 20, "prefetch": 12, "zap": 16, "flush": 24}
MAX_OPS_DEFAULT = 24
MAX_OPS_BY_VARIANT = {
    # a livelock needs the zap's lock breaks, each with a fault in it: more ops
    "zap:zap-all-lock-break": 24,
}

# What the family tests pinned beyond caught_by: the mode a variant is shown
# wrong in (and hunted in), the one oracle that must fire, a phrase of its
# message, the kind of the last op.
PINS = {
    # gfn (Lai 2010): where each form is wrong, in the machine (README's table)
    "gfn:lai-2010": {"mode": "shadow32"},     # the upper 2MB half of a 4MB guest page
    "gfn:marcelo-2010": {"mode": "tdp"},      # a level-2 page under a 1GB entry
    "gfn:pseudo-gfn-2m-mask": {"mode": "tdp"},
    "gfn:no-level-shift": {"mode": "tdp"},    # a 2MB leaf at index > 0
    # walk: each variant by the oracle made for it, at a guest access
    "walk:d-on-read": {"oracle": "A/D writes", "last_op": "access"},
    "walk:access-not-anded": {"oracle": "access rights", "last_op": "access"},
    "walk:pse36-dropped": {"oracle": "walk outcome", "last_op": "access"},
    "walk:no-pte-write-2.6": {"oracle": "kvm_mmu_pte_write", "last_op": "access"},
    "walk:stray-pte-write-3.x": {"oracle": "kvm_mmu_pte_write", "last_op": "access"},
}
for _name in ("prefetch:v3-2010", "prefetch:no-trailing-flush", "prefetch:host-writable-false"):
    # prefetch: the completeness oracle, naming the window slot missed, under TDP
    PINS[_name] = {"mode": "tdp", "oracle": "prefetch completeness", "message": "window slot"}
for _name in ("zap:lookup-ignores-gen", "zap:no-root-reload", "zap:one-bit-gen-invalid-root",
              "zap:single-bit-gen-partial-zap", "zap:zap-all-lock-break"):
    PINS[_name] = {"mode": "tdp"}

# Steps per example when hunting, by diff family (short runs shrink fast).
STEPS = {"rmap": 100, "walk": 60, "mmu": 50, "prefetch": 50, "zap": 60, "flush": 50}


def must_catch():
    """Every registered must-catch variant, by name."""
    return sorted((v for v in variant_registry.load_all().values() if v.must_catch),
                  key=lambda v: v.qualname)


def case_name(v):
    return f"{v.family}-{v.name}.json"


def case_path(v, cases_dir=CASES_DIR):
    return os.path.join(cases_dir, case_name(v))


def max_ops(v):
    return MAX_OPS_BY_VARIANT.get(v.qualname, MAX_OPS_BY_FAMILY.get(v.family, MAX_OPS_DEFAULT))


def check_case(v, data):
    """Problems of a loaded case for variant `v` (empty: a good case), and the
    Failure its replay on the variant gave (None if it gave none)."""
    try:
        fam = families.for_variant(v)
    except families.UnknownFamily as e:
        return [f"{e} yet: nothing can replay or hunt it"], None
    ops = data["ops"]
    pin = PINS.get(v.qualname, {})
    problems = []
    if data.get("variant") != v.qualname:
        problems.append(f"it is the case of {data.get('variant')!r}, not of {v.qualname}")
    if data["family"] != fam.name:
        problems.append(f"it runs on family {data['family']}, not {fam.name} (the family that runs {v.qualname})")
    if len(ops) > max_ops(v):
        problems.append(f"{len(ops)} ops, more than the {max_ops(v)} a shrunk case may keep")
    if "mode" in pin and data.get("mode") != pin["mode"]:
        problems.append(f"mode {data.get('mode')}, not {pin['mode']} (where the variant is shown wrong)")
    if problems:
        return problems, None
    try:
        _, _, failure = counterexample.replay(data, variant=v.qualname)
        _, _, clean = counterexample.replay(data, variant=None)
    except (counterexample.BadCounterexample, BadOp) as e:
        return [f"does not replay on the model as it is now: {e}"], None
    if failure is None:
        problems.append("no discrepancy on the variant any more")
    else:
        if failure.step != len(ops) - 1:
            problems.append(f"the discrepancy fires at op {failure.step + 1} of {len(ops)}, not at the last")
        if failure.oracle not in v.caught_by:
            problems.append(f"oracle {failure.oracle!r} is not one of the variant's caught_by {v.caught_by}")
        if "oracle" in pin and failure.oracle != pin["oracle"]:
            problems.append(f"oracle {failure.oracle!r}, not {pin['oracle']!r}")
        if "message" in pin and pin["message"] not in failure.message:
            problems.append(f"the message does not say {pin['message']!r}: {failure.message}")
    if "last_op" in pin and ops and ops[-1][0] != pin["last_op"]:
        problems.append(f"the last op is {ops[-1][0]}, not {pin['last_op']}")
    if clean is not None:
        problems.append(f"the plain impl fails it too: step {clean.step + 1} [{clean.oracle}] {clean.message}")
    return problems, failure


def check_file(v, path):
    """check_case on the file at `path` (problems, Failure|None); a missing or
    unreadable file is one problem."""
    if not os.path.exists(path):
        return ["missing"], None
    try:
        data = counterexample.load(path)
    except counterexample.BadCounterexample as e:
        return [str(e)], None
    return check_case(v, data)


def orphans(cases_dir=CASES_DIR):
    """Case files that name no registered must-catch variant."""
    want = {case_name(v) for v in must_catch()}
    if not os.path.isdir(cases_dir):
        return []
    return sorted(f for f in os.listdir(cases_dir) if f.endswith(".json") and f not in want)


def hunt_job(v, seed, budget, shrink_seconds=campaign.DEFAULT_SHRINK_SECONDS):
    """The campaign that hunts `v`: in its pinned mode, else round-robin over its family's modes."""
    fam = families.for_variant(v)
    mode = PINS.get(v.qualname, {}).get("mode")
    return jobs.Job(fam.name, v.qualname, mode=mode, seed=seed, budget=budget,
                    steps=STEPS.get(fam.name, campaign.DEFAULT_STEPS),
                    kind="plain" if mode else "hunt", shrink_seconds=shrink_seconds)


def _runs_somewhere(v):
    try:
        families.for_variant(v)
        return True
    except families.UnknownFamily:
        return False


def write_case(path, data):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(json.dumps(data, indent=1) + "\n")
    os.replace(tmp, path)


def make_cases(names=None, force=False, check_only=False, seed=0, tries=3, budget=60.0,
               workers=None, cases_dir=CASES_DIR, log=print,
               shrink_seconds=campaign.DEFAULT_SHRINK_SECONDS):
    """Check every must-catch variant's case (or those named), hunt the missing
    and stale ones (`force`: the named ones whatever their state) and write
    them.  `shrink_seconds` caps Hypothesis' shrinking of a failure (the op
    pass after it still makes the case 1-minimal).  Returns {variant name:
    problems left} (empty lists: good)."""
    every = must_catch()
    by_name = {v.qualname: v for v in every}
    if names:
        for n in names:
            variant_registry.get(n)  # UnknownVariant, with the known names, for a bad one
            if n not in by_name:
                raise variant_registry.UnknownVariant(f"{n} is not a must-catch variant (no case is kept for it)")
        picked = [by_name[n] for n in names]
    else:
        picked = every
    os.makedirs(cases_dir, exist_ok=True)
    if not names:
        for f in orphans(cases_dir):
            if check_only:
                log(f"orphan: {f} names no must-catch variant")
            else:
                os.remove(os.path.join(cases_dir, f))
                log(f"removed {f}: it names no must-catch variant")
    left = {}
    for v in picked:
        problems, _ = check_file(v, case_path(v, cases_dir))
        if force and names:
            problems = problems or ["--force"]
        if problems:
            left[v.qualname] = problems
            log(f"{v.qualname}: {'; '.join(problems)}")
        else:
            log(f"{v.qualname}: good ({case_name(v)})")
    if check_only or not left:
        return {n: left.get(n, []) for n in (v.qualname for v in picked)}
    huntable = {n for n in left if _runs_somewhere(by_name[n])}
    for n in sorted(set(left) - huntable):
        left[n] = left[n] + [f"not hunted: no diff family runs variants of family {by_name[n].family} yet"]
        log(f"{n}: {left[n][-1]}")
    for attempt in range(tries):
        todo = [by_name[n] for n in sorted(left) if n in huntable]
        if not todo:
            break
        s = seed + attempt
        log(f"hunting {len(todo)} variant(s), seed {s}, up to {budget:g}s of search each: "
            + ", ".join(v.qualname for v in todo))
        t0 = time.monotonic()

        def take(i, job, data, todo=todo):
            v = todo[i]
            res = campaign.CampaignResult.from_dict(data)
            if res.status != "discrepancy" or not res.ops or not res.reproduced:
                left[v.qualname] = [f"not caught with seed {job.seed} in {job.budget:g}s"]
                log(f"  {v.qualname}: not caught ({time.monotonic() - t0:.1f}s)")
                return
            case = counterexample.to_json(res)
            problems, _ = check_case(v, case)
            if problems:
                left[v.qualname] = [f"seed {job.seed} found {res.oracle!r}, {len(res.ops)} ops, "
                                    f"not a good case: " + "; ".join(problems)]
                log(f"  {v.qualname}: {left[v.qualname][0]}")
                return
            write_case(case_path(v, cases_dir), case)
            del left[v.qualname]
            log(f"  {v.qualname}: wrote {case_name(v)} ({len(res.ops)} ops, {res.oracle}, mode {res.mode}, "
                f"{time.monotonic() - t0:.1f}s)")

        jobs.run_jobs([hunt_job(v, s, budget, shrink_seconds) for v in todo], workers=workers, on_result=take)
    return {v.qualname: left.get(v.qualname, []) for v in picked}


def main(argv=None):
    p = argparse.ArgumentParser(prog="tests/make_cases.py",
                                description="make and refresh tests/cases/ (one counterexample per "
                                            "must-catch variant)")
    p.add_argument("variants", nargs="*", metavar="FAMILY:NAME", help="only these variants")
    p.add_argument("--check", action="store_true", help="hunt nothing: list missing and stale cases")
    p.add_argument("--force", action="store_true", help="hunt the named variants even if their case is good")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tries", type=int, default=3, help="seeds to try per variant (default 3)")
    p.add_argument("--budget", type=float, default=60.0, help="search seconds per variant and try (default 60)")
    p.add_argument("--workers", type=int, default=None, help="local worker processes (default: one per core)")
    p.add_argument("--dir", default=CASES_DIR, help="the cases folder (default tests/cases)")
    args = p.parse_args(argv)
    if args.force and not args.variants:
        p.error("--force needs the variants to hunt again")
    if args.tries < 1 or args.budget <= 0 or (args.workers is not None and args.workers < 1):
        p.error("--tries, --budget and --workers must be positive")
    try:
        result = make_cases(args.variants or None, force=args.force, check_only=args.check,
                            seed=args.seed, tries=args.tries, budget=args.budget,
                            workers=args.workers, cases_dir=args.dir)
    except variant_registry.UnknownVariant as e:
        sys.stderr.write(f"make_cases: error: {e}\n")
        return 2
    except jobs.ClusterError as e:
        sys.stderr.write(f"make_cases: error: {e}\n")
        return 2
    bad = {n: pr for n, pr in result.items() if pr}
    stray = orphans(args.dir) if not args.variants else []
    if bad or stray:
        for n, pr in sorted(bad.items()):
            print(f"NO GOOD CASE: {n}: {'; '.join(pr)}")
        for f in stray:
            print(f"ORPHAN: {f}")
        return 1
    print(f"every case good: {len(result)} variant(s), {args.dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
