"""Proof obligations: named z3 checks on the model's own helpers.

An obligation states a claim in kernel terms, the verdict we expect for the
plain code (`proved`, or `counterexample` for an obligation that documents a
bug, e.g. a posted form), and how far it reaches: `for all inputs` or
`bounded: ...`.  `check(impl_cls)` evaluates the claim on the helpers of the
given impl class (a variant's class when `mmuspec prove --variant` asks), so
a variant whose bug lives in a helper is caught by the proof too.

Verdicts are `proved` (z3 said unsat for the negated claim), `counterexample`
(sat, with a model printed in kernel values) or `unknown` (z3 unknown or
timeout): unknown is never reported as proved.
"""

import importlib
import pkgutil
import time
from dataclasses import dataclass

import z3

PROVED, COUNTEREXAMPLE, UNKNOWN = "proved", "counterexample", "unknown"
DEFAULT_TIMEOUT_MS = 60_000


@dataclass
class Verdict:
    verdict: str
    detail: str = ""
    seconds: float = 0.0


@dataclass(frozen=True)
class Obligation:
    name: str
    family: str
    claim: str
    reach: str             # "for all inputs" or "bounded: ..."
    check: object          # (impl_cls, timeout_ms) -> Verdict
    expected: str = PROVED

    def run(self, impl_cls=None, timeout_ms=DEFAULT_TIMEOUT_MS):
        t = time.monotonic()
        v = self.check(impl_cls, timeout_ms)
        v.seconds = time.monotonic() - t
        return v


REGISTRY = {}


def obligation(name, family, claim, reach, expected=PROVED):
    """Decorator: register `fn(impl_cls, timeout_ms) -> Verdict` as an obligation."""
    def wrap(fn):
        if name in REGISTRY:
            raise ValueError(f"obligation {name} registered twice")
        REGISTRY[name] = Obligation(name, family, claim, reach, fn, expected)
        return fn
    return wrap


def load_all():
    """Every obligation: proofs/* and those a variant module registers for its own code."""
    import proofs
    from impl import variants

    for info in pkgutil.iter_modules(proofs.__path__):
        if info.name != "registry":
            importlib.import_module(f"proofs.{info.name}")
    variants.load_all()
    return dict(sorted(REGISTRY.items()))


def solve(claim, timeout_ms, show_model=None, assumptions=()):
    """Prove `claim` (a z3 Bool) under `assumptions` by refuting its negation.

    Returns a Verdict; `show_model(model)` renders a counterexample in kernel
    terms.  z3 `unknown` (including a timeout) is returned as UNKNOWN with
    z3's reason.
    """
    s = z3.Solver()
    s.set("timeout", int(timeout_ms))
    s.add(*assumptions)
    s.add(z3.Not(claim))
    r = s.check()
    if r == z3.unsat:
        return Verdict(PROVED)
    if r == z3.sat:
        m = s.model()
        return Verdict(COUNTEREXAMPLE, show_model(m) if show_model else str(m))
    return Verdict(UNKNOWN, f"z3: {s.reason_unknown()}")


def value(model, x):
    """A term's value in a model as a Python int (plain ints pass through)."""
    if isinstance(x, int):
        return x
    v = model.eval(x, model_completion=True)
    return v.as_long() if hasattr(v, "as_long") else bool(z3.is_true(v))


def all_of(verdicts):
    """Combine the verdicts of sub-checks: first counterexample, else unknown, else proved."""
    verdicts = list(verdicts)
    for v in verdicts:
        if v.verdict == COUNTEREXAMPLE:
            return v
    for v in verdicts:
        if v.verdict == UNKNOWN:
            return v
    return Verdict(PROVED, f"{len(verdicts)} cases")
