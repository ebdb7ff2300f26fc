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
from hypothesis.stateful import run_state_machine_as_test

from impl import variants as variant_registry

from . import families
from .core import BadOp, Discrepancy, minimize_ops, replay_ops

EXAMPLES_PER_ROUND = 25
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

    def to_dict(self):
        return asdict(self)


def hypothesis_settings(examples, steps):
    return settings(
        max_examples=examples,
        stateful_step_count=steps,
        deadline=None,
        database=None,
        verbosity=Verbosity.quiet,
        phases=(Phase.generate, Phase.shrink),
        report_multiple_bugs=False,
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )


def run_campaign(family, variant=None, seed=0, budget=30.0, steps=DEFAULT_STEPS, mode=None,
                 progress=None, min_examples=EXAMPLES_PER_ROUND, shrink_seconds=DEFAULT_SHRINK_SECONDS):
    """Differential campaign; returns a CampaignResult.

    `family` and `variant` are names (`variant` as family:name or None for the
    plain impl).  `budget` is seconds of generation; at least `min_examples`
    examples run whatever the budget, and a round that has started finishes.
    `progress(result)` is called after every round.  Shrinking a failure
    takes at most `shrink_seconds` in Hypothesis plus the op-level pass.
    """
    fam = families.get(family)
    var = variant_registry.get(variant) if variant else None
    if var is not None and not fam.accepts(var):
        raise variant_registry.UnknownVariant(
            f"variant {var.qualname} does not run on family {fam.name}")
    mode = mode or fam.modes[0]
    if mode not in fam.modes:
        raise ValueError(f"family {fam.name} has modes {', '.join(fam.modes)}, not {mode!r}")
    res = CampaignResult(fam.name, var.qualname if var else None, mode, seed, budget)
    stats = {"runs": 0, "steps": 0, "rules": set(), "first_failure": None}
    _cap_hypothesis_shrinking(shrink_seconds)
    start = time.monotonic()
    rnd = 0
    while True:
        machine = fam.machine_for(var, mode, seed=seed + rnd, stats=stats)
        try:
            run_state_machine_as_test(machine, settings=hypothesis_settings(EXAMPLES_PER_ROUND, steps))
        except Exception as exc:  # the shrunk failure; Discrepancy or anything the model raised
            first = stats.get("first_failure") or time.monotonic()
            res.time_to_failure = first - start
            res.ops = list(machine.last_trace or [])
            res.status = "discrepancy"
            try:
                failure = replay_ops(fam.world(var, mode), res.ops)
            except BadOp as bad:  # the machine generated an op its world rejects: a tester bug
                failure = None
                exc = bad
            if failure is not None:
                res.reproduced = True
                res.ops, failure = minimize_ops(lambda: fam.world(var, mode), res.ops, failure)
                res.oracle, res.message, res.failing_step = failure.oracle, failure.message, failure.step
            else:
                res.reproduced = False
                res.oracle = exc.oracle if isinstance(exc, Discrepancy) else "exception"
                res.message = f"{type(exc).__name__}: {exc}".splitlines()[0]
            res.shrink_seconds = time.monotonic() - first
            break
        finally:
            rnd += 1
            res.examples = stats["runs"]  # machine runs, shrinking replays included
            res.steps = stats["steps"]
            res.rules = sorted(stats["rules"])
            res.metrics = dict(stats.get("metrics", {}))
            res.seconds = time.monotonic() - start
        if progress:
            progress(res)
        if res.seconds >= budget and rnd * EXAMPLES_PER_ROUND >= min_examples:
            break
    res.seconds = time.monotonic() - start
    return res


def hunt_variant(family, variant, seed=0, budget=30.0, steps=DEFAULT_STEPS, progress=None):
    """Run a variant's campaigns mode by mode (the family's modes in order, the
    budget split evenly) until one catches it; returns that result, or the
    last clean one.  A form can be wrong in one mode only (e.g. a gfn
    derivation that fails under TDP but not under shadow paging)."""
    fam = families.get(family)
    res = None
    for mode in fam.modes:
        res = run_campaign(family, variant, seed=seed, budget=budget / len(fam.modes),
                           steps=steps, mode=mode, progress=progress,
                           min_examples=EXAMPLES_PER_ROUND)
        if res.status != "clean":
            return res
    return res
