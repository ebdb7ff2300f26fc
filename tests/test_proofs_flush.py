"""The flush obligations (proofs/flush.py): the ranged flush's range covers what the
dropped spte mapped.  Proved on the plain impl and the sound ranged form; a
counterexample on each of the two historical range bugs."""

import io
import json

import pytest
import z3

from diff import families
from impl import variants
from mmuspec import cli
from proofs import registry

OBS = registry.load_all()
NAMES = ("flush.range_covers_spte_gfn", "flush.direct_child_range_covers")


def _cls(qual):
    v = variants.get(qual)
    return families.for_variant(v).impl_class(v)


@pytest.mark.parametrize("name", NAMES)
def test_proved_on_the_plain_impl_and_the_sound_ranged_form(name):
    o = OBS[name]
    assert o.family == "flush" and o.reach.startswith("for all inputs")
    assert o.run().verdict == registry.PROVED
    assert o.run(_cls("flush:ranged-5.x")).verdict == registry.PROVED


def test_range_from_sp_gfn_is_a_counterexample():
    """1b2dc7360463's earlier form flushed from sp->gfn: for an indirect page that is
    the guest table it shadows, not the gfn the spte mapped."""
    v = OBS["flush.range_covers_spte_gfn"].run(_cls("flush:ranged-sp-gfn"))
    assert v.verdict == registry.COUNTEREXAMPLE
    assert v.detail.startswith("indirect level-1 page") and "survives" in v.detail
    assert OBS["flush.direct_child_range_covers"].run(_cls("flush:ranged-sp-gfn")).verdict == \
        registry.PROVED


def test_one_page_child_flush_is_a_counterexample():
    v = OBS["flush.direct_child_range_covers"].run(_cls("flush:ranged-direct-spte-one-page"))
    assert v.verdict == registry.COUNTEREXAMPLE and "(1 page)" in v.detail


def test_prove_variant_reports_it_caught():
    out = io.StringIO()
    code = cli.main(["prove", "--variant", "flush:ranged-sp-gfn", "--json"], out=out)
    rows = {r["name"]: r for r in json.loads(out.getvalue())}
    assert code == 1
    assert rows["flush.range_covers_spte_gfn"]["status"] == "caught"
    assert rows["flush.direct_child_range_covers"]["status"] == "not caught"


@pytest.mark.parametrize("name", NAMES)
def test_z3_unknown_is_never_proved(name, monkeypatch):
    monkeypatch.setattr(z3.Solver, "check", lambda self, *a: z3.unknown)
    monkeypatch.setattr(z3.Solver, "reason_unknown", lambda self: "timeout")
    v = OBS[name].run()
    assert v.verdict == registry.UNKNOWN and v.detail == "z3: timeout"
