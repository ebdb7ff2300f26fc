"""FNAME(pte_prefetch)'s stop rule at an invalid guest pte, per kernel version.

The impl's indirect loop is the 2010 form: a guest pte that is not present or
has A clear is skipped.  From bd6360cc0a54 (3.8; 3.10.99 and 3.11 have it)
the loop stops there (prefetch:stop-at-invalid-gpte-3.8, a sound form that
must pass).  Fixed op lists where the two differ: a window with an invalid
guest pte before valid ones.  Each form maps what its own rule says and no
oracle reports either; a form that declares one rule and does the other is
caught by the completeness oracle (tested: fixed inputs, one sampled round).
"""

import pytest

from diff import families
from diff.core import replay_ops
from impl import variants
from impl.mmu import ShadowMmu
from spec.consts import PT_ACCESSED_MASK, PT_WRITABLE_MASK, SPTE_HOST_WRITEABLE
from spec.prefetch import INVALID_GPTE_SKIP, INVALID_GPTE_STOP, expected_prefetch
from tests.test_prefetch import present_slots, read, shadow32_ops, world
from tests.variant_checks import one_round

STOP = "prefetch:stop-at-invalid-gpte-3.8"
P_W_U_A = 0x27       # a valid guest pte (and the upper entries): P W U A
P_W_U = 0x07         # present, A clear: invalid for prefetch


def shadow64_ops(window):
    """A 64-bit guest: PML4 0x10 -> PDPT 0x11 -> PD 0x12 -> PT 0x13, whose entries
    0..7 (gva 0..0x7fff) are `window`'s guest ptes: gfn 0x100 + i with the flags given
    (0: not present).  A fault at gva 0x5000 (slot 5) prefetches the window 0..7."""
    ops = [["vm_setup", {"pte_list_ext": 3}],
           ["memslot_create", {"slot": 0, "base_gfn": 0, "npages": 0x400, "readonly": False,
                               "dirty_log": False, "host_level": 1}]]
    for t, n in ((0x10, 0x11), (0x11, 0x12), (0x12, 0x13)):
        ops.append(["host_write", {"gpa": t << 12, "size": 8, "value": (n << 12) | P_W_U_A}])
    for i, flags in enumerate(window):
        value = ((0x100 + i) << 12) | flags if flags else 0
        ops.append(["host_write", {"gpa": (0x13 << 12) + 8 * i, "size": 8, "value": value}])
    ops.append(["vcpu_create", {"vcpu": 0, "mode": "shadow64", "cr3": 0x10000, "cr0_wp": True,
                                "cr4_pse": True, "efer_nx": False}])
    return ops + [read(0x5000)]


# (window of guest pte flags, slots the 2010 form maps, slots 3.8 maps); slot 5 faults.
WINDOWS = {
    "not present at slot 1": ((P_W_U_A, 0, P_W_U_A, P_W_U_A, P_W_U_A, P_W_U_A, P_W_U_A, P_W_U_A),
                              [0, 2, 3, 4, 5, 6, 7], [0, 5]),
    "A clear at slot 3": ((P_W_U_A, P_W_U_A, P_W_U_A, P_W_U, P_W_U_A, P_W_U_A, P_W_U_A, P_W_U_A),
                          [0, 1, 2, 4, 5, 6, 7], [0, 1, 2, 5]),
    "invalid at slot 7, after the fault": ((P_W_U_A,) * 7 + (0,), [0, 1, 2, 3, 4, 5, 6],
                                           [0, 1, 2, 3, 4, 5, 6]),
}


def mapped(w, table_gfn):
    return sorted(i for (_, i) in present_slots(w, table_gfn=table_gfn, direct=False))


def test_the_variant_is_sound_and_names_its_commit():
    v = variants.get(STOP)
    assert (v.models, v.must_catch, v.passes, v.expected) == ("bd6360cc0a54", False, True, "passes")
    assert ShadowMmu.PREFETCH_INVALID_GPTE_RULE == INVALID_GPTE_SKIP
    assert v.build(ShadowMmu).PREFETCH_INVALID_GPTE_RULE == INVALID_GPTE_STOP


@pytest.mark.parametrize("case", sorted(WINDOWS))
def test_each_form_maps_what_its_rule_says_and_passes(case):
    window, skip_maps, stop_maps = WINDOWS[case]
    ops = shadow64_ops(window)
    plain, stop = world("shadow64"), world("shadow64", STOP)
    assert replay_ops(plain, ops) is None and replay_ops(stop, ops) is None
    assert mapped(plain, 0x13) == skip_maps
    assert mapped(stop, 0x13) == stop_maps
    got = present_slots(stop, table_gfn=0x13, direct=False)
    for (_, i), v in got.items():
        if i != 5:  # prefetched: speculative, host-writable, the guest pte's gfn
            assert v & SPTE_HOST_WRITEABLE and not v & PT_ACCESSED_MASK and not v & PT_WRITABLE_MASK


def test_a_32_bit_guest_window_stops_at_its_not_present_pte():
    """tests/test_prefetch.py's 32-bit window (2 not present, 3 A clear, 4 dirty, 6 no
    memslot): 2010 maps 0, 1 and 4; 3.8 stops at slot 2."""
    ops = shadow32_ops() + [read(0x5000)]
    plain, stop = world("shadow32"), world("shadow32", STOP)
    assert replay_ops(plain, ops) is None and replay_ops(stop, ops) is None
    assert mapped(plain, 0x11) == [0, 1, 4, 5]
    assert mapped(stop, 0x11) == [0, 1, 5]


def test_the_oracle_follows_the_declared_rule():
    """expected_prefetch on the state right after the fault's leaf: the slots each
    rule expects, the rule read from the MMU unless given."""
    window, skip_maps, stop_maps = WINDOWS["not present at slot 1"]
    seen = {}

    class Probe(ShadowMmu):
        def pte_prefetch(self, vcpu, gw, sptep):
            before = dict(self.mem.sptes)
            sp = self.page_header(sptep)
            seen[None] = expected_prefetch(self, vcpu, sptep, before)
            for rule in (INVALID_GPTE_SKIP, INVALID_GPTE_STOP):
                seen[rule] = expected_prefetch(self, vcpu, sptep, before, invalid_gpte_rule=rule)
            with pytest.raises(ValueError, match="invalid-gpte rule"):
                expected_prefetch(self, vcpu, sptep, before, invalid_gpte_rule="3.x")
            seen["sp"] = sp
            return super().pte_prefetch(vcpu, gw, sptep)

    assert replay_ops(families.get("mmu").make_world(Probe, "shadow64"), shadow64_ops(window)) is None
    sp = seen["sp"]
    slots = {rule: sorted((a - sp.spt) // 8 for a in seen[rule]) for rule in seen if rule != "sp"}
    assert slots[INVALID_GPTE_SKIP] == slots[None] == [i for i in skip_maps if i != 5]
    assert slots[INVALID_GPTE_STOP] == [i for i in stop_maps if i != 5]


def _mismatch(rule, prefetch_gpte):
    return variants.Variant(family="prefetch", name="mismatch", models="plausible", summary="",
                            replaces={"PREFETCH_INVALID_GPTE_RULE": rule,
                                      "prefetch_gpte": prefetch_gpte})


def test_a_form_declaring_one_rule_and_doing_the_other_is_caught():
    """The oracle reads the declaration, but checks the behaviour: declaring 'stop'
    while skipping maps slots 2..7 too many; declaring 'skip' while stopping maps
    them too few.  Both are caught at the fault, naming window slot 2."""
    stop_fn = variants.get(STOP).replaces["prefetch_gpte"]
    ops = shadow64_ops(WINDOWS["not present at slot 1"][0])
    for rule, fn, says in ((INVALID_GPTE_STOP, ShadowMmu.prefetch_gpte, "expected nothing"),
                           (INVALID_GPTE_SKIP, stop_fn, "impl installed nothing")):
        cls = _mismatch(rule, fn).build(ShadowMmu)
        f = replay_ops(families.get("mmu").make_world(cls, "shadow64"), ops)
        assert f is not None and f.oracle == "prefetch completeness", (rule, f)
        assert f.step == len(ops) - 1 and "slot 2 (window slot 2)" in f.message, f.message
        assert says in f.message, f.message


@pytest.mark.parametrize("mode", ["shadow32", "shadow64"])
def test_one_round_of_the_variant_is_clean(mode):
    res = one_round("prefetch", STOP, mode=mode, steps=50)
    assert res.status == "clean", (res.oracle, res.message)
    assert res.metrics["prefetched sptes"] > 0
