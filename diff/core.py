"""The differential core every family plugs into.

A family provides a *world*: spec, impl (possibly a variant) and an abstract
model side by side.  Everything that happens to a world is an *op*, a
`[name, {args}]` pair in kernel terms that is plain JSON.  `World.apply(op)`
runs one op on every side and raises `Discrepancy` when they disagree;
`World.check()` runs the after-step oracles.  The Hypothesis state machine
(`DiffMachine`) only chooses ops; replaying a saved list of ops through a
fresh world reproduces a run exactly, which is what counterexample files,
`mmuspec replay` and the generated pytest files do.
"""

import re
import time
from dataclasses import dataclass

from hypothesis.stateful import RuleBasedStateMachine, invariant

from spec.errors import KvmBug, Livelock

from . import watchdog


class Discrepancy(Exception):
    """Spec, impl or an oracle disagree.  `oracle` names the check that fired."""

    def __init__(self, oracle, message):
        super().__init__(f"[{oracle}] {message}")
        self.oracle = oracle
        self.message = message


class BadOp(ValueError):
    """An op that is malformed for its family (e.g. from a hand-edited file)."""


def run_sides(sides, fn_name, *args):
    """Call one method on every side; returns {side: ("ok", value) | ("bug", text)}."""
    out = {}
    for name, obj in sides.items():
        try:
            out[name] = ("ok", getattr(obj, fn_name)(*args))
        except KvmBug as e:
            out[name] = ("bug", f"{type(e).__name__}: {e}")
        except Livelock as e:
            out[name] = ("livelock", str(e))
    return out


def agree(outcomes, what):
    """Raise unless every side returned the same thing (or raised the same way)."""
    items = list(outcomes.items())
    for name, res in items:
        if res[0] == "livelock":
            raise Discrepancy("livelock", f"{what}: {name}: {res[1]}")
    first_name, first = items[0]
    for name, res in items[1:]:
        if res != first:
            kinds = {n: r[0] for n, r in items}
            oracle = "kernel BUG" if "bug" in kinds.values() else "walker return"
            shown = ", ".join(f"{n} {_show(r)}" for n, r in items)
            raise Discrepancy(oracle, f"{what}: {shown}")
    if first[0] == "bug":
        raise Discrepancy("kernel BUG", f"{what}: every side hit {first[1]}")
    return first[1]


def _show(res):
    kind, val = res
    if kind == "bug":
        return f"raised {val}"
    return f"returned {val!r}"


class World:
    """Base of a family's world.  Subclasses define apply(), check(), describe()."""

    def apply(self, op):  # pragma: no cover - interface
        raise NotImplementedError

    def check(self):  # pragma: no cover - interface
        raise NotImplementedError

    @staticmethod
    def describe(op):
        name, args = op
        show = lambda v: f"{v:#x}" if isinstance(v, int) and not isinstance(v, bool) and v > 9 else v
        inner = ", ".join(f"{k}={show(v)}" for k, v in args.items())
        return f"{name}({inner})"


def check_variant_invariants(obj, side="impl"):
    """The invariants a variant declares (Variant.invariants) on the object its
    class built; a violation is the oracle "variant invariant: <rule>"."""
    for inv in getattr(obj, "variant_invariants", ()):
        for bad in inv(obj):
            rule, _, msg = bad.partition(": ")
            raise Discrepancy(f"variant invariant: {rule}", f"{side}: {msg or rule}")


@dataclass
class Failure:
    """The first discrepancy of a replay: at op index `step` (0-based)."""

    step: int
    oracle: str
    message: str


def validate_ops(ops):
    """Shape check of a saved op list; raises BadOp with a one-line reason."""
    if not isinstance(ops, list):
        raise BadOp("ops must be a list")
    for i, op in enumerate(ops):
        if (not isinstance(op, list) or len(op) != 2 or not isinstance(op[0], str)
                or not isinstance(op[1], dict)):
            raise BadOp(f"op {i} is not [name, {{args}}]")


def replay_ops(world, ops):
    """Apply and check each op in turn; the first Failure, or None if clean.

    Under a watchdog (diff.watchdog), the whole replay counts as one
    example: a replay that runs past its limit is the Failure `livelock`."""
    validate_ops(ops)
    dog = watchdog.current()
    if dog is not None:
        dog.start_example()
    i = 0
    try:
        for i, op in enumerate(ops):
            try:
                world.apply(op)
                world.check()
            except Discrepancy as d:
                return Failure(i, d.oracle, d.message)
            except Livelock as e:
                return Failure(i, "livelock", str(e))
            except (KeyError, TypeError, ValueError) as e:
                raise BadOp(f"op {i} {op[0]!r}: {type(e).__name__}: {e}") from None
    except watchdog.WatchdogExpired:
        return Failure(i, "livelock", f"op {i} {ops[i][0]!r} still running after the watchdog's "
                                      f"{dog.seconds:g} s (a loop with no step bound that did not end)")
    finally:
        if dog is not None:
            dog.end_example()
    return None


def _replay_or_none(make_world, ops):
    try:
        return replay_ops(make_world(), ops)
    except BadOp:
        return None  # a candidate whose ops no longer make sense is not a failure


def minimize_ops(make_world, ops, failure):
    """Reduce a failing op list until no single op can go (1-minimal).

    Hypothesis shrinks the choices behind the rules; this pass works on the
    ops themselves, which replay deterministically.  A candidate counts when
    the same oracle fires (and, for a world whose `minimize_same_message` is
    set, with the same message up to its numbers: the live worlds, where a
    shorter list can reach one of the host's known findings that the
    machine's rewrite keeps out of its examples).  Chunks are tried before
    single ops.  Returns (ops, failure) for the smallest list found.
    """
    cur, best = list(ops[: failure.step + 1]), failure
    same_message = getattr(make_world(), "minimize_same_message", False)
    shape = lambda f: re.sub(r"0x[0-9a-fA-F]+|\d+", "#", f.message)
    size = max(len(cur) // 2, 1)
    while size >= 1:
        i, changed = len(cur) - size, False
        while i >= 0:
            cand = cur[:i] + cur[i + size:]
            f = _replay_or_none(make_world, cand) if cand else None
            if f is not None and f.oracle == failure.oracle and (
                    not same_message or shape(f) == shape(failure)):
                cur, best, changed = cand[: f.step + 1], f, True
                i = min(i, len(cur)) - size
            else:
                i -= 1
        if not changed:
            size //= 2
    return cur, best


class DiffMachine(RuleBasedStateMachine):
    """Base state machine: rules call `self.emit(op)`; the world is checked after each step.

    `world_factory` is set per run by Family.machine(); the op trace of the
    most recent run is kept on the class so the campaign can save the shrunk
    counterexample Hypothesis replays last.
    """

    world_factory = None
    last_trace = None
    stats = None  # {"runs": int, "steps": int, "rules": set()} across the campaign

    def __init__(self):
        super().__init__()
        dog = watchdog.current()
        if dog is not None:
            dog.start_example()
        self.world = type(self).world_factory()
        self.trace = []
        type(self).last_trace = self.trace
        if type(self).stats is not None:
            type(self).stats["runs"] += 1

    def emit(self, op):
        self.trace.append(op)
        st = type(self).stats
        if st is not None:
            st["steps"] += 1
            st["rules"].add(op[0])
        self._noting_failure(self.world.apply, op)

    def teardown(self):
        """Add the world's measurements (World.metrics(), if any) to the campaign's."""
        dog = watchdog.current()
        if dog is not None:
            dog.end_example()
        st, metrics = type(self).stats, getattr(self.world, "metrics", None)
        if st is not None and metrics is not None:
            for k, v in metrics().items():
                st.setdefault("metrics", {})[k] = st.get("metrics", {}).get(k, 0) + v

    @invariant()
    def oracles_hold(self):
        self._noting_failure(self.world.check)

    def _noting_failure(self, fn, *args):
        """Run fn; on the campaign's first failure, note when (time to first failure).
        A Livelock (a model loop past its step bound) is the oracle `livelock`."""
        try:
            try:
                fn(*args)
            except Livelock as e:
                raise Discrepancy("livelock", str(e)) from None
        except Exception:
            st = type(self).stats
            if st is not None and st.get("first_failure") is None:
                st["first_failure"] = time.monotonic()
            raise
