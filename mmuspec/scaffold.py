"""`mmuspec new-variant FAMILY NAME`: the skeleton of a new variant.

Writes `impl/variants/<family>_<name>.py` (the variant, registered at import,
so `mmuspec list`, `diff`, `prove`, `zoo`, `check` and the report pick it up
with no edit elsewhere) and `tests/test_variant_<family>_<name>.py`, whose
test fails until the skeleton is filled in: the variant must replace at
least one impl method and meet its expected verdict (caught, or passes).
Never overwrites a file.  docs/extending.md walks through filling it in.
"""

import inspect
import keyword
import os
import re

from diff import families
from impl import variants as variant_registry


class ScaffoldError(ValueError):
    """Bad family or name, or a file that already exists (one-line message)."""


def variant_families():
    """{variant family name: the diff Family that runs it}."""
    out = {}
    for fam in families.load_all().values():
        for vf in fam.variant_families or (fam.name,):
            out.setdefault(vf, fam)
    return out


def replaceable(impl_cls):
    """Names the impl class defines or overrides in impl/ (what a patch can change)."""
    names = set()
    for klass in impl_cls.__mro__:
        if klass.__module__.startswith("impl."):
            names.update(n for n in vars(klass) if not n.startswith("__"))
    return sorted(names)


MODULE = '''"""{family}:{name} -- TODO: one line on the patch this models.

TODO: the patch (commit id, or "posted form" with the list thread, or
"plausible" for a mutant), what it changes, and why the suite should catch
it or pass it.  Name the kernel functions it replaces.
"""

from impl.variants import Variant, register


# TODO: each replacement is a plain function taking `self` (or a value, for a
# class attribute such as mmu_valid_gen_bits), named for the kernel function.
# What impl.{base_module}.{base} defines and a variant may replace:
{methods}


# TODO (optional): invariants of the variant's new state, checked after every
# step on the impl object: fn(obj) -> ["rule: message", ...], empty when it holds.

# TODO (optional): a proof obligation on the variant's own helpers, registered
# with proofs.registry.obligation (see proofs/pte_list.py for the house style).

register(Variant(
    family="{family}", name="{name}", models="TODO: commit id, posted form or plausible",
    summary="TODO: one line in kernel terms",
    replaces={{}},            # TODO: {{"impl_method": replacement}}
    must_catch=True,          # a bug: the tester must catch it
    passes=False,             # or a sound patch: must_catch=False, passes=True
    caught_by=(),             # TODO: the oracles expected to fire
))
'''

TEST = '''"""{family}:{name}: the variant meets its expected verdict (tested: sampled)."""

from diff.campaign import hunt_variant
from impl import variants


def test_{ident}_meets_its_verdict():
    v = variants.get("{family}:{name}")
    assert v.replaces, "fill in the variant's replacements in {module_path}"
    res = hunt_variant("{diff_family}", v.qualname, seed=0, budget=30)
    if v.must_catch:
        assert res.status == "discrepancy", "not caught: the tester misses this bug"
        assert not v.caught_by or res.oracle in v.caught_by, res.oracle
    else:
        assert v.passes and res.status == "clean", (res.oracle, res.message)
'''


def new_variant(family, name, root="."):
    """Write the two files; returns their paths.  Raises ScaffoldError."""
    fams = variant_families()
    if family not in fams:
        raise ScaffoldError(f"unknown variant family {family!r} (known: {', '.join(sorted(fams))})")
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", name):
        raise ScaffoldError(f"variant names are lower-case words joined by '-', not {name!r}")
    qual = f"{family}:{name}"
    if qual in variant_registry.load_all():
        raise ScaffoldError(f"variant {qual} already exists")
    ident = re.sub(r"\W", "_", f"{family}_{name}")
    if keyword.iskeyword(ident):
        ident += "_"
    fam = fams[family]
    base = fam.impl_base
    module_path = os.path.join("impl", "variants", f"{ident}.py")
    test_path = os.path.join("tests", f"test_variant_{ident}.py")
    for p in (module_path, test_path):
        if os.path.exists(os.path.join(root, p)):
            raise ScaffoldError(f"{p} exists; not overwriting it")
    methods = []
    for m in replaceable(base):
        attr = inspect.getattr_static(base, m)
        kind = "staticmethod" if isinstance(attr, staticmethod) else \
            "attribute" if not callable(attr) else "method"
        methods.append(f"#   {m} ({kind})")
    with open(os.path.join(root, module_path), "x") as f:
        f.write(MODULE.format(family=family, name=name, base=base.__name__,
                              base_module=base.__module__.split(".", 1)[1],
                              methods="\n".join(methods) or "#   (none)"))
    with open(os.path.join(root, test_path), "x") as f:
        f.write(TEST.format(family=family, name=name, ident=ident, module_path=module_path,
                            diff_family=fam.name))
    return module_path, test_path
