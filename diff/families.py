"""The family registry: each diff module that defines `FAMILY` is one family.

A Family ties together the spec/impl world, the state machine that drives
it, the impl class variants modify and the modes it runs in.  Discovery is by
import of the diff package's modules, so a new family is one new module.
"""

import importlib
import pkgutil
from dataclasses import dataclass, field

from hypothesis import seed as hypothesis_seed


class UnknownFamily(LookupError):
    pass


@dataclass(frozen=True)
class Family:
    name: str
    summary: str
    machine: type            # DiffMachine subclass choosing the ops
    make_world: object       # (impl_cls, mode) -> World
    impl_base: type          # the impl class a variant of this family modifies
    modes: tuple = ("default",)
    variant_families: tuple = ()  # variant families this machine runs (default: its own name)
    notes: dict = field(default_factory=dict)
    # ((variant family, impl_base attribute), ...): another family's variants
    # this machine also runs when asked explicitly (never picked by
    # for_variant): the variant's class, built by its own family, is set as
    # that attribute of a subclass of impl_base (mmu: rmap_class).
    also_runs: tuple = ()
    # () -> (ok, reason): whether this family can run on this host (None: always).
    # A family that needs something the host may lack (the live family: a usable
    # /dev/kvm that runs long mode) says so here, with a one-line reason, so a
    # command can print "NAME: skipped (reason)" instead of running it.
    available: object = None

    def availability(self):
        """(True, "") or (False, one-line reason): can this family run here?"""
        if self.available is None:
            return True, ""
        ok, reason = self.available()
        return bool(ok), reason or ""

    def accepts(self, variant):
        """Runs `variant` by default: for_variant picks this family for it."""
        return variant.family in (self.variant_families or (self.name,))

    def runs(self, variant):
        """Can run `variant` when asked (its own families, or also_runs)."""
        return self.accepts(variant) or variant.family in dict(self.also_runs)

    def impl_class(self, variant=None):
        if variant is None:
            return self.impl_base
        attr = dict(self.also_runs).get(variant.family)
        if attr is not None and not self.accepts(variant):
            part = for_variant(variant).impl_class(variant)
            return type(f"{self.impl_base.__name__}[{variant.qualname}]", (self.impl_base,), {attr: part})
        return variant.build(self.impl_base)

    def world(self, variant=None, mode=None):
        return self.make_world(self.impl_class(variant), mode or self.modes[0])

    def machine_for(self, variant=None, mode=None, seed=0, stats=None):
        """A fresh machine class bound to (variant, mode), seeded for Hypothesis."""
        impl_cls = self.impl_class(variant)
        mode = mode or self.modes[0]
        make = self.make_world
        cls = type(f"{self.machine.__name__}_{seed}", (self.machine,), {
            "world_factory": staticmethod(lambda: make(impl_cls, mode)),
            "stats": stats,
        })
        return hypothesis_seed(seed)(cls)


_FAMILIES = {}

# Modules of the diff package that are infrastructure, not families.
_NOT_FAMILIES = {"core", "families", "campaign", "counterexample", "bench", "bench_tester", "exampledb", "jobs",
                 "bench_zap", "branch_coverage", "unreachable", "watchdog"}


def load_all():
    import diff

    for info in pkgutil.iter_modules(diff.__path__):
        if info.name in _NOT_FAMILIES or info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"diff.{info.name}")
        fam = getattr(mod, "FAMILY", None)
        if fam is not None:
            _FAMILIES[fam.name] = fam
    return dict(sorted(_FAMILIES.items()))


def for_variant(variant):
    """The diff family whose machine runs `variant` (e.g. gfn:* run on mmu)."""
    for fam in load_all().values():
        if fam.accepts(variant):
            return fam
    raise UnknownFamily(f"no diff family runs variants of family {variant.family!r}")


def get(name):
    fams = load_all()
    if name not in fams:
        raise UnknownFamily(f"unknown family {name!r} (known: {', '.join(fams)})")
    return fams[name]
