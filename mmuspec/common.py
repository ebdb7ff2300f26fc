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

from .output import os_reason, writable_folder

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
    """The run's output folder: --out, or OUT_ROOT/<kind>-<UTC time> (a new one);
    created and checked writable now (OutputError, exit 2, if not)."""
    path = args.out
    if not path:
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        path = base = os.path.join(OUT_ROOT, f"{kind}-{stamp}")
        n = 1
        while os.path.exists(path):
            n += 1
            path = f"{base}-{n}"
    return writable_folder(path, "--out folder" if args.out else "output folder")


def _where(runner, args):
    if runner.in_process:
        return "in this process"
    if args.scheduler:
        return f"on {runner.slots} workers of {args.scheduler}"
    return f"on a local cluster of {runner.slots} workers"


def _write_json(path, data):
    """Write `data` to `path` through a temporary file; a failure removes it and
    raises OSError naming `path`."""
    tmp = path + ".tmp"
    try:
        with open(tmp, "w") as f:
            f.write(json.dumps(data, indent=1) + "\n")
        os.replace(tmp, path)
    except OSError as e:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise OSError(e.errno, e.strerror or str(e), path) from None


def _keep_partial(out_dir, todo, got, err):
    """A cluster failed mid-run: keep what finished in OUT/partial.json; the error says where
    (or, if even that cannot be written, why not)."""
    path = os.path.join(out_dir, "partial.json")
    try:
        _write_json(path, {"error": str(err), "finished": [
            {"job": todo[i].to_dict(), "result": r} for i, r in sorted(got.items())]})
    except OSError as e:
        return jobs.ClusterError(f"{err} (the {len(got)} finished campaigns could not be kept: "
                                 f"cannot write {path}: {os_reason(e)})")
    return jobs.ClusterError(f"{err} (the {len(got)} finished campaigns and their counterexamples "
                             f"are kept: {path})")


# -- output that could not be written ----------------------------------------------------
# The output folders are checked before any work (output.writable_folder); a
# write that fails later anyway (disk full, folder removed) must not lose a
# result: the counterexample goes to stdout in full and the failure is one
# line on stderr.
def error_line(message):
    """A one-line error on stderr, whatever the output mode."""
    sys.stderr.write(f"mmuspec: error: {message}\n")
    sys.stderr.flush()


def cannot_write(e, path, what="the counterexample"):
    """One line for a failed write: what, the path (the OSError's, else `path`) and the reason."""
    return f"cannot save {what} to {e.filename or path}: {os_reason(e)}"


def print_unsaved(data, why, out, indent="  "):
    """A counterexample file that could not be written, in full on `out`: why,
    then the file's JSON from a line "{" to a line "}" (paste it into a .json
    file for `mmuspec replay`), a key per line and a list item (an op) per line."""
    out.write(f"{indent}NOT SAVED ({why}); the counterexample file, for `mmuspec replay FILE`:\n")
    items = []
    for k, v in data.items():
        if isinstance(v, list) and v:
            items.append(f" {json.dumps(k)}: [\n" + ",\n".join(f"  {json.dumps(x)}" for x in v) + "\n ]")
        else:
            items.append(f" {json.dumps(k)}: {json.dumps(v)}")
    out.write("{\n" + ",\n".join(items) + "\n}\n")


def try_write_json(path, data, what):
    """_write_json, but a failure is a one-line error on stderr; True if written."""
    try:
        _write_json(path, data)
    except OSError as e:
        error_line(cannot_write(e, path, what))
        return False
    return True
