"""The variant registry: named replacements of impl functions.

A variant is `family:name` (e.g. `rmap:next-after-drop`).  It names the impl
class it modifies, the methods it replaces (each replacement a plain function
taking `self`), what it models (a kernel commit id, "posted form" or
"plausible") and whether the tester must catch it, or (a sound later patch)
must pass every suite; it may declare invariants of its own new state,
checked after every step, and register proof obligations in its module.  `build()` makes the
subclass; nothing is monkeypatched, so variants can run side by side.

Every module in this package registers its family's variants at import;
`load_all()` imports them all, so adding a variant touches only its module.
"""

import importlib
import pkgutil
from dataclasses import dataclass, field


class UnknownVariant(LookupError):
    """No variant of that name (or a malformed `family:name`)."""


@dataclass(frozen=True)
class Variant:
    family: str
    name: str
    models: str          # a kernel commit id, "posted form" or "plausible"
    summary: str
    must_catch: bool = True
    replaces: dict = field(default_factory=dict)  # impl method name -> function
    caught_by: tuple = ()  # the oracles expected to catch it (documentation)
    # A sound patch (a later optimisation we model) is expected to PASS every
    # suite: passes=True, must_catch=False.  Being caught is then a finding.
    passes: bool = False
    # Invariants of the variant's own new state, checked after every step on
    # the impl object it builds: fn(obj) -> ["rule: message", ...] (empty when
    # it holds).  A violation is the oracle "variant invariant: <rule>".
    invariants: tuple = ()

    @property
    def expected(self):
        """'caught', 'passes' or 'either' (a variant kept for the record only)."""
        return "caught" if self.must_catch else "passes" if self.passes else "either"

    @property
    def qualname(self):
        return f"{self.family}:{self.name}"

    def build(self, base):
        """The impl class with this variant's replacements applied."""
        missing = [m for m in self.replaces if not hasattr(base, m)]
        if missing:
            raise UnknownVariant(
                f"{self.qualname} replaces {', '.join(missing)}, not methods of {base.__name__}"
            )
        if self.must_catch and self.passes:
            raise ValueError(f"{self.qualname}: must_catch and passes exclude each other")
        ns = {"variant_invariants": tuple(self.invariants)}
        for m, fn in self.replaces.items():
            ns[m] = staticmethod(fn) if _is_static(base, m) else fn
        return type(f"{base.__name__}[{self.qualname}]", (base,), ns)


def _is_static(cls, name):
    for k in cls.__mro__:
        if name in k.__dict__:
            return isinstance(k.__dict__[name], staticmethod)
    return False


REGISTRY = {}


def register(variant):
    if variant.qualname in REGISTRY:
        raise ValueError(f"variant {variant.qualname} registered twice")
    REGISTRY[variant.qualname] = variant
    return variant


def load_all():
    """Import every variants module once; returns the registry."""
    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")
    return REGISTRY


def get(qualname):
    """The variant `family:name`; raises UnknownVariant with a one-line reason."""
    load_all()
    if qualname.count(":") != 1 or not all(qualname.split(":")):
        raise UnknownVariant(f"variant names are family:name, not {qualname!r}")
    try:
        return REGISTRY[qualname]
    except KeyError:
        fam = qualname.split(":")[0]
        known = sorted(n for n in REGISTRY if n.startswith(fam + ":"))
        hint = f" (known: {', '.join(known)})" if known else ""
        raise UnknownVariant(f"unknown variant {qualname!r}{hint}") from None


def of_family(family):
    load_all()
    return [v for k, v in sorted(REGISTRY.items()) if v.family == family]
