"""The rmap family: the plain impl passes a round of search; every registered rmap
variant is caught on its saved case (tests/test_cases.py, tests/cases/)."""

import json

import pytest

from diff import counterexample, families
from impl import variants
from tests import make_cases
from tests.variant_checks import one_round

RMAP_VARIANTS = [v.qualname for v in variants.of_family("rmap") if v.must_catch]  # sound ones: their own tests


def test_plain_impl_is_clean():
    res = one_round("rmap", steps=100)
    assert res.status == "clean", res.message
    assert res.examples >= 25 and res.steps > 1000
    # Every kind of op was exercised (tested: sampled).
    assert {"rmap_add", "drop_spte", "rmap_write_protect", "kvm_unmap_rmapp", "kvm_set_pte_rmapp",
            "kvm_age_rmapp", "kvm_test_age_rmapp", "kvm_mmu_unlink_parents"} <= set(res.rules)


def test_the_issue_variants_are_registered():
    assert {"rmap:next-after-drop", "rmap:ext-off-by-one"} <= set(RMAP_VARIANTS)


def test_every_rmap_variant_has_a_case_of_at_most_12_ops():
    """Caught on a fixed op list that shrinking left short (tests/test_cases.py replays each)."""
    for name in RMAP_VARIANTS:
        v = variants.get(name)
        assert make_cases.max_ops(v) <= 12 and make_cases.case_name(v) == f"rmap-{v.name}.json"


def test_describe_is_in_kernel_terms():
    world = families.get("rmap").world()
    line = world.describe(["rmap_add", {"slot": 0, "level": 2, "index": 1, "spte": 0x1A7}])
    assert "rmap_add" in line and "rmap[slot 0, level 2, index 1]" in line and "PS" in line


def test_replay_of_a_malformed_file_is_an_error(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"mmuspec_counterexample": 1, "family": "rmap", "ops": [["rmap_add"]]}))
    with pytest.raises(counterexample.BadCounterexample, match="op 0"):
        counterexample.load(bad)
    worse = tmp_path / "worse.json"
    worse.write_text(json.dumps({"mmuspec_counterexample": 1, "family": "rmap",
                                 "ops": [["kvm_mmu_setup", {"pte_list_ext": 9, "shadow_accessed": True}]]}))
    with pytest.raises(counterexample.BadCounterexample, match="PTE_LIST_EXT"):
        counterexample.replay(counterexample.load(worse))
