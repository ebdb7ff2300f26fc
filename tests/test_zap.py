"""The zap family: walk (spec) against generation number (impl, Xiao 2013).

Tested (sampled): the plain impl is clean in a round of search per mode;
every zap variant is caught on its saved case (tests/test_cases.py,
tests/cases/zap-*.json).  Hand-written op lists show the zap oracles firing.
"""

import pytest

from diff import families
from diff.core import BadOp, Discrepancy, replay_ops
from diff.mmu import check_zap_complete
from impl import variants
from impl.mmu import ShadowMmu as ImplShadowMmu
from impl.zap import is_obsolete_gen_or_invalid, mmu_valid_gen_next
from tests import make_cases
from tests.variant_checks import one_round

ZAP_VARIANTS = [v.qualname for v in variants.of_family("zap") if v.must_catch]
SOUND_VARIANTS = [v.qualname for v in variants.of_family("zap") if v.passes]


@pytest.mark.parametrize("mode", ["tdp", "shadow64"])
def test_plain_impl_is_clean(mode):
    res = one_round("zap", mode=mode, steps=60, examples=50)  # two rounds: a zap_resume is rarer
    assert res.status == "clean", (res.oracle, res.message)
    assert {"memslot_change_begin", "zap_resume", "memslot_change_commit"} <= set(res.rules)
    assert res.metrics["zap-alls"] > 0


def test_the_issue_variants_are_registered():
    assert {"zap:lookup-ignores-gen", "zap:one-bit-gen-invalid-root",
            "zap:no-root-reload"} <= set(ZAP_VARIANTS)


def test_each_zap_case_is_a_short_tdp_run():
    """tests/test_cases.py replays each case; here its bounds: TDP, at most 16 ops
    (24 for the livelock, which needs the zap's lock breaks, each with a fault in it)."""
    for name in ZAP_VARIANTS:
        assert make_cases.PINS[name]["mode"] == "tdp", name
        assert make_cases.max_ops(variants.get(name)) == (24 if name == "zap:zap-all-lock-break" else 16)


def test_generation_width():
    assert [mmu_valid_gen_next(g, None) for g in (0, 1, 7)] == [1, 2, 8]
    assert [mmu_valid_gen_next(g, 1) for g in (0, 1)] == [1, 0]
    assert [mmu_valid_gen_next(g, 2) for g in (0, 1, 2, 3)] == [1, 2, 3, 0]


# Two TDP vCPUs share the root; the first zap leaves it invalid but held by
# vCPU 0, which does not run again; vCPU 1 builds new pages; the second zap
# toggles a 1-bit generation back to the root's.
TWO_TOGGLES = [
    ["vm_setup", {"pte_list_ext": 3, "zap_batch": 1}],
    ["memslot_create", {"slot": 0, "base_gfn": 0, "npages": 0x400, "readonly": False,
                        "dirty_log": False, "host_level": 1}],
    ["memslot_create", {"slot": 1, "base_gfn": 0x40200, "npages": 0x200, "readonly": False,
                        "dirty_log": False, "host_level": 1}],
    # the guest maps gva 0 to gfn 0 through tables at gfns 0x10..0x13
    ["host_write", {"gpa": 0x10000, "size": 8, "value": 0x11007}],
    ["host_write", {"gpa": 0x11000, "size": 8, "value": 0x12007}],
    ["host_write", {"gpa": 0x12000, "size": 8, "value": 0x13007}],
    ["host_write", {"gpa": 0x13000, "size": 8, "value": 0x7}],
    ["vcpu_create", {"vcpu": 0, "mode": "tdp", "cr3": 0x10000, "cr0_wp": True, "cr4_pse": True,
                     "efer_nx": True}],
    ["vcpu_create", {"vcpu": 1, "mode": "tdp", "cr3": 0x10000, "cr0_wp": True, "cr4_pse": True,
                     "efer_nx": True}],
    ["access", {"vcpu": 0, "addr": 0, "kind": "read", "user": False}],
    ["access", {"vcpu": 1, "addr": 0, "kind": "read", "user": False}],
    ["memslot_move", {"slot": 1, "base_gfn": 0x700}],
    ["access", {"vcpu": 1, "addr": 0, "kind": "read", "user": False}],
    ["memslot_delete", {"slot": 1}],
]


def _world(impl_cls):
    return families.get("zap").make_world(impl_cls, "tdp")


def test_one_bit_generation_stops_the_walk_at_the_held_root():
    """ca333add6933 without fac026dac0bc: the walk meets the invalid root,
    whose generation matches again, stops, and leaves vCPU 1's pages."""
    one_bit = type("OneBit", (ImplShadowMmu,), {"mmu_valid_gen_bits": 1})
    failure = replay_ops(_world(one_bit), TWO_TOGGLES)
    assert failure is not None and failure.step == len(TWO_TOGGLES) - 1
    assert failure.oracle == "zap complete", failure.message
    assert "created 1 zap-all(s) ago" in failure.message


def test_treating_invalid_pages_as_obsolete_fixes_it():
    fixed = type("Fixed", (ImplShadowMmu,), {
        "mmu_valid_gen_bits": 1, "is_obsolete_gen": staticmethod(is_obsolete_gen_or_invalid)})
    assert replay_ops(_world(fixed), TWO_TOGGLES) is None
    assert replay_ops(_world(ImplShadowMmu), TWO_TOGGLES) is None


def test_the_generation_rule_fires_when_the_root_looks_current():
    """With the commit's own check skipped, the auditor's generation rule sees
    the held invalid root looking current two zaps later."""
    one_bit = type("OneBit", (ImplShadowMmu,), {"mmu_valid_gen_bits": 1})
    w = _world(one_bit)
    for op in TWO_TOGGLES[:-1]:
        w.apply(op)
    w.apply(["memslot_change_begin", {"slot": 1, "what": "delete"}])
    with pytest.raises(Discrepancy) as e:
        w.check()
    assert e.value.oracle == "auditor: generation"
    assert "looks current" in e.value.message and "invalid, root_count 1" in e.value.message


def test_deleted_slot_oracle_fires_on_a_leaf_in_the_old_range():
    w = _world(ImplShadowMmu)
    for op in TWO_TOGGLES[:10]:
        w.apply(op)
    mmu = w.sides["impl"].mmu
    with pytest.raises(Discrepancy) as e:   # gfn 0 and the tables are mapped, in slot 0's range
        check_zap_complete(mmu, "impl", "memslot_delete(0)", 0, 0x400)
    assert e.value.oracle == "deleted slot"


def test_the_zap_reclaims_in_batches_with_lock_breaks():
    w = _world(ImplShadowMmu)
    for op in TWO_TOGGLES[:11]:
        w.apply(op)
    w.apply(["memslot_change_begin", {"slot": 1, "what": "delete"}])
    impl, spec = w.sides["impl"].mmu, w.sides["spec"].mmu
    assert len(spec.active_mmu_pages) == 1 and spec.active_mmu_pages.first.role.invalid  # the held root
    assert len(impl.active_mmu_pages) > 1        # a batch of 1: obsolete pages wait for the next hold
    w.check()                                    # lock break: every oracle holds
    w.apply(["access", {"vcpu": 1, "addr": 0x1000, "kind": "read", "user": False}])
    w.check()
    w.apply(["zap_resume", {}])
    w.apply(["memslot_change_commit", {}])
    w.check()
    assert len(w.holds["impl"][0]) > 2 and len(w.holds["spec"][0]) == 1
    with pytest.raises(BadOp):
        w.apply(["zap_resume", {}])


def test_slots_lock_ops_are_refused_during_a_change():
    w = _world(ImplShadowMmu)
    for op in TWO_TOGGLES[:11]:
        w.apply(op)
    w.apply(["memslot_change_begin", {"slot": 1, "what": "delete"}])
    for op in (["memslot_delete", {"slot": 0}], ["memslot_dirty_log", {"slot": 0, "on": True}],
               ["memslot_create", {"slot": 2, "base_gfn": 0x700, "npages": 8, "readonly": False,
                                   "dirty_log": False, "host_level": 1}]):
        with pytest.raises(BadOp):
            w.apply(op)


@pytest.mark.parametrize("name", SOUND_VARIANTS)
def test_sound_variant_passes(name):
    """The single toggling bit of Linux 5.3 (ca333add6933 + fac026dac0bc) is sound
    under the machine, its precondition invariant included (tested: sampled)."""
    for mode in ("tdp", "shadow64"):
        res = one_round("zap", name, mode=mode, steps=60)
        assert res.status == "clean", (mode, res.oracle, res.message)


def test_the_single_bit_precondition_is_a_checked_invariant():
    """Dropping the complete zap (the walk gives up at its first lock break) leaves
    obsolete pages after the zap; the variant's invariant names them."""
    v = variants.get("zap:single-bit-gen-partial-zap")
    w = _world(families.get("zap").impl_class(v))
    for op in TWO_TOGGLES[:11]:
        w.apply(op)
    with pytest.raises(Discrepancy) as e:
        w.apply(["memslot_delete", {"slot": 1}])
    assert e.value.oracle == "zap complete"
    mmu = w.sides["impl"].mmu
    (bad,) = v.invariants[0](mmu)
    assert bad.startswith("complete zap: ") and "makes it current" in bad
    sound = variants.get("zap:single-bit-gen")
    assert replay_ops(_world(families.get("zap").impl_class(sound)), TWO_TOGGLES) is None
