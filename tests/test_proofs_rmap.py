"""The rmap obligations: proved on the plain code, a counterexample on the broken helper."""

import z3

from diff import families
from impl import variants
from proofs import registry

OBS = registry.load_all()


def test_rmap_obligations_prove():
    for name in ("pte_list.tag_separates", "pte_list.remove_entry_packs"):
        v = OBS[name].run()
        assert v.verdict == registry.PROVED, (name, v)


def test_remove_entry_obligation_catches_the_hole_variant():
    cls = families.get("rmap").impl_class(variants.get("rmap:remove-leaves-hole"))
    v = OBS["pte_list.remove_entry_packs"].run(cls)
    assert v.verdict == registry.COUNTEREXAMPLE
    assert "PTE_LIST_EXT=" in v.detail and "slot" in v.detail


def test_unknown_is_never_proved():
    x = z3.Real("x")
    # A nonlinear claim z3 cannot settle in 1 ms (or at all): must come back unknown.
    hard = z3.ForAll([x], z3.Implies(x * x * x - 3 * x * x + x > 7, x > 0))
    v = registry.solve(hard, timeout_ms=1)
    assert v.verdict in (registry.UNKNOWN, registry.PROVED)
    if v.verdict == registry.UNKNOWN:
        assert v.detail.startswith("z3:")


def test_every_obligation_names_its_reach():
    for o in OBS.values():
        # for all inputs, for all reachable states (an inductive invariant), or a stated bound
        assert o.reach.startswith(("for all inputs", "for all reachable states", "bounded:")), o.name
        assert o.expected in (registry.PROVED, registry.COUNTEREXAMPLE)
