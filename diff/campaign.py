"""A campaign: one family, one variant (or the plain impl), a seed and a budget.

`run_campaign()` is a plain function returning a plain record, so it can run
in this process or anywhere else.  It runs Hypothesis on the family's state
machine in rounds (seed, seed+1, ...) until the time budget is spent or a
round fails.  A failure is shrunk by Hypothesis; the op trace of the last
(shrunk) run is replayed through a fresh world to confirm it and to name the
oracle that fired, then reduced op by op (diff.core.minimize_ops) to a
1-minimal list on which the same oracle fires.

What a clean campaign means is *tested* (sampled): N examples of up to
`steps` steps each, reported in the record.
"""

import time
from dataclasses import asdict, dataclass, field

from hypothesis import HealthCheck, Phase, Verbosity, settings
from hypothesis.stateful import get_state_machine_test, run_state_machine_as_test

from impl import variants as variant_registry

from . import exampledb, families, watchdog
from .core import BadOp, Discrepancy, minimize_ops, replay_ops

EXAMPLES_PER_ROUND = 25
FIRST_ROUND_EXAMPLES = 3  # round r runs min(EXAMPLES_PER_ROUND, FIRST_ROUND_EXAMPLES * 2**r) per mode


def round_examples(rnd, first=FIRST_ROUND_EXAMPLES):
    """Examples per mode in round `rnd`: the rounds double from `first` up to
    EXAMPLES_PER_ROUND.  A form wrong in one mode only is met after a few
    examples of each mode instead of a full round of every mode before it."""
    return min(EXAMPLES_PER_ROUND, first << min(rnd, 8))
DEFAULT_STEPS = 100
DEFAULT_SHRINK_SECONDS = 10.0


def _cap_hypothesis_shrinking(seconds):
    """Bound Hypothesis' shrink phase (its default cap is 300 s).

    Shrinking a stateful run costs 10-40x the time to find it; after the cap
    Hypothesis reports the smallest failure so far and minimize_ops finishes
    the job on the ops.  The knob is an internal constant of the pinned
    Hypothesis version (requirements.lock); if it moves, the default stands.
    """
    from hypothesis.internal.conjecture import engine

    if hasattr(engine, "MAX_SHRINKING_SECONDS"):
        engine.MAX_SHRINKING_SECONDS = seconds


@dataclass
class CampaignResult:
    family: str
    variant: str | None
    mode: str
    seed: int
    budget: float
    status: str = "clean"          # clean | discrepancy | inconclusive
    examples: int = 0
    steps: int = 0
    rules: list = field(default_factory=list)
    seconds: float = 0.0
    time_to_failure: float | None = None   # first failing step seen, before shrinking
    shrink_seconds: float | None = None
    oracle: str | None = None
    message: str | None = None
    failing_step: int | None = None
    ops: list | None = None
    reproduced: bool | None = None
    metrics: dict = field(default_factory=dict)  # the family's measurements, summed over runs
    note: str = ""
    database: str | None = None             # the example database spec, if any
    stored_failures: int = 0                # examples stored under this campaign's key at its start
    examples_to_failure: int | None = None  # machine runs up to and including the first failing one
    per_mode: dict = field(default_factory=dict)  # mode -> {"examples", "steps", "seconds"}

    def to_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, data):
        """The record back from to_dict() (e.g. from a worker); unknown keys are ignored."""
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in known})


def hypothesis_settings(examples, steps, database=None):
    """Settings of one round; with an example database, stored failures are replayed first."""
    return settings(
        max_examples=examples,
        stateful_step_count=steps,
        deadline=None,
        database=database,
        verbosity=Verbosity.quiet,
        phases=((Phase.reuse,) if database is not None else ()) + (Phase.generate, Phase.shrink),
        report_multiple_bugs=False,
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )


class _Stats(dict):
    """The campaign's stats dict; also notes how many machine runs it took to
    the first failure (DiffMachine sets "first_failure" once, at that moment)."""

    def __setitem__(self, key, value):
        if key == "first_failure" and self.get(key) is None and value is not None:
            super().__setitem__("examples_to_failure", self.get("runs", 0))
        super().__setitem__(key, value)


def _run_round(machine, examples, steps, db, key):
    """One Hypothesis run of `machine`; with a database, under our key (exampledb.campaign_key).

    Hypothesis would key a stateful test by a digest of the machine class,
    which for our per-seed classes depends on the seed; `find()` in
    Hypothesis sets `_hypothesis_internal_database_key` on its test the same
    way.  The key's effect is tested (tests/test_distributed.py): if a
    Hypothesis upgrade stops reading it, the replay test fails.
    """
    if db is None:
        run_state_machine_as_test(machine, settings=hypothesis_settings(examples, steps))
        return
    test = get_state_machine_test(machine, settings=hypothesis_settings(examples, steps, db))
    test._hypothesis_internal_database_key = key
    test()


def run_campaign(family, variant=None, seed=0, budget=30.0, steps=DEFAULT_STEPS, mode=None,
                 progress=None, min_examples=EXAMPLES_PER_ROUND, shrink_seconds=DEFAULT_SHRINK_SECONDS,
                 database=None, example_seconds=watchdog.DEFAULT_EXAMPLE_SECONDS,
                 first_round=FIRST_ROUND_EXAMPLES):
    """Differential campaign; returns a CampaignResult.

    `family` and `variant` are names (`variant` as family:name or None for the
    plain impl).  With `mode` None the campaign covers every mode of the
    family, round-robin: one round of round_examples(r) examples in each
    mode (round r uses seed + r; the rounds double from `first_round`
    examples to EXAMPLES_PER_ROUND), then the next round in each, until the
    budget is spent and every mode had at least one round, or a round fails
    (a form can be wrong, or a path reachable, in one mode only).  With a
    mode, only that mode.  `per_mode` in the record gives each mode's
    examples, steps and seconds.

    `budget` is seconds of generation; at least `min_examples` examples run
    whatever the budget, and a round that has started finishes.
    `progress(result)` is called after every round.  Shrinking a failure
    takes at most `shrink_seconds` in Hypothesis plus the op-level pass.
    Every example runs under a watchdog (diff.watchdog): one that runs past
    `example_seconds` ends the campaign with the oracle `livelock` (the
    model's loops carry step bounds that report `livelock` long before).

    `database` is None (no example database), a directory or
    `redis://HOST:PORT` (see diff.exampledb).  With one, every round first
    replays the failures stored under (family, variant, mode), whatever seed
    found them, and stores what it finds, and the modes with stored failures
    go first; `stored_failures` and `examples_to_failure` (counted in the
    failing mode's round) tell a replay from a fresh find.  A database that
    fails mid-campaign raises exampledb.DatabaseError rather than passing
    for a discrepancy.
    """
    fam = families.get(family)
    var = variant_registry.get(variant) if variant else None
    if var is not None and not fam.runs(var):
        raise variant_registry.UnknownVariant(
            f"variant {var.qualname} does not run on family {fam.name}")
    if mode is not None and mode not in fam.modes:
        raise ValueError(f"family {fam.name} has modes {', '.join(fam.modes)}, not {mode!r}")
    modes = [mode] if mode else list(fam.modes)
    db = exampledb.open_database(database)
    db_errors = exampledb.errors() if db is not None else ()
    keys = {m: exampledb.campaign_key(fam.name, var.qualname if var else None, m) for m in modes}
    stored = {m: 0 for m in modes}
    if db is not None:
        stored = {m: exampledb.count_stored(db, keys[m], database) for m in modes}
        modes.sort(key=lambda m: not stored[m])  # stable: the family's order otherwise
    res = CampaignResult(fam.name, var.qualname if var else None, ",".join(modes), seed, budget)
    if db is not None:
        res.database = exampledb.normalize(database)
        res.stored_failures = sum(stored.values())
    res.per_mode = {m: {"examples": 0, "steps": 0, "seconds": 0.0} for m in modes}
    stats = _Stats(runs=0, steps=0, rules=set(), first_failure=None)
    _cap_hypothesis_shrinking(shrink_seconds)
    start = time.monotonic()
    rnd = 0
    with watchdog.watching(example_seconds):
        while True:
            for m in modes:
                if _one_round(fam, var, m, seed + rnd, round_examples(rnd, first_round), steps, db, keys[m],
                              db_errors, database, stats, res, start):
                    res.stored_failures = stored[m]
                    return res
                if progress:
                    progress(res)
                done = res.seconds >= budget and stats["runs"] >= min_examples
                if done and all(p["examples"] for p in res.per_mode.values()):
                    return res
            rnd += 1


def _one_round(fam, var, mode, seed, examples, steps, db, key, db_errors, database, stats, res, start):
    """One round of `examples` examples in `mode`, its counts added to `res`.
    True when it failed (`res` is then the failure, shrunk and replayed)."""
    machine = fam.machine_for(var, mode, seed=seed, stats=stats)
    before = (stats["runs"], stats["steps"], time.monotonic())
    try:
        _run_round(machine, examples, steps, db, key)
    except db_errors as e:  # the database failed, not the code under test
        raise exampledb.DatabaseError(
            f"example database {database}: {str(e).splitlines()[0]}") from None
    except watchdog.WatchdogExpired:  # an example ran past the watchdog: no Hypothesis shrinking
        _record_failure(fam, var, mode, machine, stats, res, start, before[0], None, shrink=False)
        return True
    except Exception as exc:  # the shrunk failure; Discrepancy or anything the model raised
        _record_failure(fam, var, mode, machine, stats, res, start, before[0], exc)
        return True
    finally:
        _count(res, mode, stats, before, start)
    return False


def _count(res, mode, stats, before, start):
    runs, steps, t = before
    pm = res.per_mode[mode]
    pm["examples"] += stats["runs"] - runs
    pm["steps"] += stats["steps"] - steps
    pm["seconds"] = round(pm["seconds"] + time.monotonic() - t, 3)
    res.examples = stats["runs"]  # machine runs, shrinking replays included
    res.steps = stats["steps"]
    res.rules = sorted(stats["rules"])
    res.metrics = dict(stats.get("metrics", {}))
    res.seconds = time.monotonic() - start


def _record_failure(fam, var, mode, machine, stats, res, start, runs_before, exc, shrink=True):
    """Fill `res` with the failure of `mode`'s round: its trace replayed through a
    fresh world (under the watchdog) to confirm it and name the oracle, then
    reduced op by op (shrink=False for a watchdog livelock, whose every
    candidate could run until the watchdog fires: its trace is kept as run)."""
    first = stats.get("first_failure") or time.monotonic()
    if stats.get("examples_to_failure") is not None:
        res.examples_to_failure = stats["examples_to_failure"] - runs_before
    res.time_to_failure = first - start
    res.mode = mode
    res.ops = list(machine.last_trace or [])
    res.status = "discrepancy"
    try:
        failure = replay_ops(fam.world(var, mode), res.ops)
    except BadOp as bad:  # the machine generated an op its world rejects: a tester bug
        failure, exc = None, bad
    if failure is not None:
        res.reproduced = True
        if shrink:
            res.ops, failure = minimize_ops(lambda: fam.world(var, mode), res.ops, failure)
        else:
            res.ops = res.ops[: failure.step + 1]
        res.oracle, res.message, res.failing_step = failure.oracle, failure.message, failure.step
    elif exc is None:
        res.reproduced = False
        res.oracle = "livelock"
        res.message = "an example ran past the watchdog's limit; the replay did not"
    else:
        res.reproduced = False
        res.oracle = exc.oracle if isinstance(exc, Discrepancy) else "exception"
        res.message = f"{type(exc).__name__}: {exc}".splitlines()[0]
    res.shrink_seconds = time.monotonic() - first


def hunt_variant(family, variant, seed=0, budget=30.0, steps=DEFAULT_STEPS, progress=None,
                 database=None, shrink_seconds=DEFAULT_SHRINK_SECONDS):
    """Hunt a variant in every mode of its family, round-robin (run_campaign
    with no mode): one round in each mode (the rounds double from
    FIRST_ROUND_EXAMPLES examples to EXAMPLES_PER_ROUND), then the next
    round in each, until one catches it or the budget is spent
    (every mode gets at least one round).  Returns the failing result, its
    time to failure counted from the start of the hunt, or one clean record
    summing every round.  A form can be wrong in one mode only (e.g. a gfn
    derivation that fails under TDP but not under shadow paging), and
    round-robin does not spend the budget in a mode that cannot fail first.
    With a database the modes that have stored failures go first, so a
    known failure is replayed before any search."""
    return run_campaign(family, variant, seed=seed, budget=budget, steps=steps, progress=progress,
                        min_examples=EXAMPLES_PER_ROUND, database=database,
                        shrink_seconds=shrink_seconds)
