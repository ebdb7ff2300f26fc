"""What the mmuspec commands share: exit codes, the usage error, run folders,
the example database of a run, progress lines, and the obligations runner.

Exit codes, for every command: 0 everything checked holds; 1 a discrepancy or
counterexample was found (for `diff --variant`: the variant was caught); 2 bad
usage (one line on stderr, no traceback); 3 inconclusive (z3 unknown, or a
budget too short to run what was asked).
"""

import datetime
import json
import os
import sys

from diff import counterexample, exampledb, families, jobs
from proofs import registry as proof_registry

OK, FOUND, USAGE, INCONCLUSIVE = 0, 1, 2, 3
MIN_VARIANT_SECONDS = 4.0  # a variant campaign shorter than this proves little when it misses
# check and zoo write a run folder under OUT_ROOT (relative to the current
# directory) and share one Hypothesis directory database beside those folders,
# so a failure stored by one run is replayed first by the next.
OUT_ROOT = "mmuspec-out"
DEFAULT_DATABASE = os.path.join(OUT_ROOT, "hypothesis-db")


class UsageError(Exception):
    """Bad input from the user: reported on one line, exit 2."""


def print_failure(res, out):
    out.write(f"DISCREPANCY in family {res.family} ({res.variant or 'plain impl'}, mode {res.mode}, "
              f"seed {res.seed})\n")
    out.write(f"  oracle: {res.oracle}\n  {res.message}\n")
    out.write(f"  shrunk counterexample, {len(res.ops)} ops"
              f"{'' if res.reproduced else ' (did NOT reproduce on replay: flaky)'}:\n")
    for i, line in enumerate(counterexample.describe_ops(res.family, res.ops, res.mode), 1):
        out.write(f"  {i:3}. {line}\n")


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
