"""Counterexample files: save, load (with validation), replay, and as pytest.

A file is JSON: {"mmuspec_counterexample": 1, "family", "variant", "mode",
"seed", "oracle", "message", "ops": [[name, {args}], ...]}.  Replaying runs
the ops through a fresh world of that family with that variant (or another
impl given on the command line) and reports the first discrepancy.
"""

import json
import os
import re

from impl import variants as variant_registry

from . import families
from .core import BadOp, replay_ops, validate_ops

FORMAT = 1


class BadCounterexample(ValueError):
    """A counterexample file that cannot be read; the message is one line."""


def to_json(res):
    return {
        "mmuspec_counterexample": FORMAT,
        "family": res.family,
        "variant": res.variant,
        "mode": res.mode,
        "seed": res.seed,
        "oracle": res.oracle,
        "message": res.message,
        "ops": res.ops,
    }


def file_stem(res):
    who = (res.variant or f"{res.family}:impl").replace(":", "-")
    return re.sub(r"[^A-Za-z0-9_.-]", "_", f"cex-{who}-{res.mode}-seed{res.seed}")


def save(res, directory):
    """Write <stem>.json and test_<stem>.py into `directory`; returns both paths.

    Writes to a temporary name first, so an interrupted save never leaves a
    truncated file behind or clobbers an earlier result.  A failed write
    raises OSError with the path it could not write.
    """
    os.makedirs(directory, exist_ok=True)
    stem = file_stem(res)
    data = to_json(res)
    json_path = os.path.join(directory, stem + ".json")
    py_path = os.path.join(directory, "test_" + stem.replace("-", "_").replace(".", "_") + ".py")
    _atomic_write(json_path, json.dumps(data, indent=1) + "\n")
    _atomic_write(py_path, to_pytest(data))
    return json_path, py_path


def _atomic_write(path, text):
    """Write `text` to `path` through a temporary file.  On failure (disk full,
    folder gone) the temporary file is removed and the OSError names `path`."""
    tmp = path + ".tmp"
    try:
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except OSError as e:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise OSError(e.errno, e.strerror or str(e), path) from None


def load(path):
    """Read and validate a counterexample file; raises BadCounterexample."""
    try:
        with open(path) as f:
            data = json.load(f)
    except OSError as e:
        raise BadCounterexample(f"cannot read {path}: {e.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BadCounterexample(f"{path} is not JSON: {e}") from None
    if not isinstance(data, dict) or data.get("mmuspec_counterexample") != FORMAT:
        raise BadCounterexample(f"{path} is not an mmuspec counterexample (format {FORMAT})")
    for k in ("family", "ops"):
        if k not in data:
            raise BadCounterexample(f"{path}: missing {k!r}")
    try:
        validate_ops(data["ops"])
    except BadOp as e:
        raise BadCounterexample(f"{path}: {e}") from None
    return data


def replay(data, variant="recorded"):
    """Replay a loaded counterexample.  Returns (family, variant name, Failure|None).

    `variant` is "recorded" (the file's), None (the plain impl) or a name.
    Raises UnknownFamily, UnknownVariant or BadCounterexample.
    """
    fam, name, failure, world = replay_world(data, variant)
    close = getattr(world, "close", None)
    if close is not None:   # a world that holds resources (the live family's VM)
        close()
    return fam, name, failure


def replay_world(data, variant="recorded", prepare=None):
    """As replay(), and the world the ops ran on: (family, variant name,
    Failure|None, world).  `prepare(world)` runs before the first op (the CLI
    asks a world that keeps a transcript to start it).  The caller closes a
    world that has close()."""
    fam = families.get(data["family"])
    name = data.get("variant") if variant == "recorded" else variant
    var = variant_registry.get(name) if name else None
    mode = data.get("mode") or fam.modes[0]
    if mode not in fam.modes:
        raise BadCounterexample(f"family {fam.name} has no mode {mode!r}")
    world = fam.world(var, mode)
    if prepare is not None:
        prepare(world)
    try:
        failure = replay_ops(world, data["ops"])
    except BadOp as e:
        close = getattr(world, "close", None)
        if close is not None:
            close()
        raise BadCounterexample(str(e)) from None
    return fam, name, failure, world


def describe_ops(family, ops, mode=None):
    fam = families.get(family)
    describe = fam.world(None, mode).describe
    return [describe(op) for op in ops]


def to_pytest(data):
    """A standalone pytest file that replays the ops and fails while the bug is there."""
    name = re.sub(r"\W", "_", f"test_{data.get('variant') or data['family']}_seed{data.get('seed', 0)}")
    ops_src = json.dumps(data["ops"], indent=1)
    ops_src = ops_src.replace("true", "True").replace("false", "False").replace("null", "None")
    return f'''"""Counterexample saved by mmuspec: replays the ops below and asserts no discrepancy.

family {data["family"]}, variant {data.get("variant") or "(plain impl)"}, mode {data.get("mode")}
oracle that fired: {data.get("oracle")}
{data.get("message")}

It fails while the discrepancy is there; run it from the mmuspec checkout
(`.venv/bin/pytest THIS_FILE`).
"""

import pytest

from diff import families
from diff.counterexample import replay

COUNTEREXAMPLE = {{
    "mmuspec_counterexample": {FORMAT},
    "family": {data["family"]!r},
    "variant": {data.get("variant")!r},
    "mode": {data.get("mode")!r},
    "ops": {ops_src},
}}


def {name}():
    ok, why = families.get(COUNTEREXAMPLE["family"]).availability()
    if not ok:  # e.g. a live counterexample on a host without a usable /dev/kvm
        pytest.skip(why)
    fam, variant, failure = replay(COUNTEREXAMPLE)
    assert failure is None, (
        f"step {{failure.step + 1}} [{{failure.oracle}}] {{failure.message}}")
'''
