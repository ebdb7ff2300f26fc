"""The unsync contracts (proofs/contracts.py) and the sync-roots bounded search
(proofs/sync_roots.py), concretely on fixed inputs: no CrossHair here (that is
tests/test_symbolic.py), no full search (that is `python -m proofs.sync_roots`)."""

import functools
import itertools

import pytest
from crosshair.condition_parser import Pep316Parser
from crosshair.fnutil import FunctionInfo

from diff import families
from impl import variants
from proofs import contracts as C
from proofs import sync_roots as S
from spec.mmu import ShadowMmu as SpecShadowMmu


@functools.lru_cache(maxsize=None)
def _conds(fn):
    return Pep316Parser().get_fn_conditions(FunctionInfo.from_fn(fn))


def _holds(fn, **a):
    """None if a precondition fails, else whether every post line holds."""
    conds = _conds(fn)
    if not all(p.evaluate(a) for p in conds.pre):
        return None
    env = dict(a, __return__=fn(**a))
    return all(p.evaluate(env) for p in conds.post)


@pytest.fixture
def bound():
    yield C.bind
    C.bind(None)


def _cls(qual):
    v = variants.get(qual)
    return families.for_variant(v).impl_class(v)


# -- the contracts, concretely --------------------------------------------------------
def test_need_write_protect_contract_holds_on_its_whole_bound():
    """Exhaustive over the contract's bound (a test of the harness, not CrossHair)."""
    checked = 0
    for n in range(4):
        for levels in itertools.product((1, 2, 3), repeat=n):
            for unsync in itertools.product((False, True), repeat=n):
                for can_unsync in (False, True):
                    r = _holds(C.mmu_need_write_protect, levels=list(levels), unsync=list(unsync),
                               can_unsync=can_unsync)
                    assert r is not False, (levels, unsync, can_unsync)
                    checked += r is True
    assert checked == 170   # the pre excludes unsync pages above level 1


def test_need_write_protect_is_the_3_10_rule():
    f = C.mmu_need_write_protect
    assert f([1, 1], [False, True], True) == (False, (True, True), (0,))   # unsync the sync one
    assert f([1, 2], [False, False], True) == (True, (False, False), ())   # an upper page: protect
    assert f([1], [False], False) == (True, (False,), ())                   # a sync's set_spte
    assert f([], [], True) == (False, (), ())                               # not shadowed


def test_sync_page_contract_holds_on_every_single_entry_pte():
    for flags in range(256):
        for w in (False, True):
            assert _holds(C.sync_page, flags=[flags], writable=[w], access=7), (flags, w)
    got = C.sync_page([0x1f, 0x5f, 0x1d], [True, False, False], 7)   # kept, other gfn, A clear
    assert got.dropped == (1, 2) and got.flush_owed and not got.ret
    assert got.sets == ((0, 7, 1, 0x20, 0x100, True, True, False),)


def test_mark_parents_contract_holds_on_its_bound():
    for k in (1, 2, 3):
        for parents in itertools.permutations(range(6), k):
            for preset in range(4):
                assert _holds(C.kvm_unsync_page, parents=list(parents), preset=preset), (parents, preset)


VM_CASES = {
    # variant: (contract, inputs that break it)
    "unsync:need-write-protect-ignores-upper": (C.mmu_need_write_protect,
                                                dict(levels=[2], unsync=[False], can_unsync=True)),
    "unsync:sync-keeps-changed-gfn": (C.sync_page, dict(flags=[0x43], writable=[False], access=0)),
    "unsync:tlbs-dirty": (C.sync_page, dict(flags=[0], writable=[False], access=0)),
    "unsync:sync-with-can-unsync": (C.sync_page, dict(flags=[3], writable=[False], access=0)),
    "unsync:parents-not-marked": (C.kvm_unsync_page, dict(parents=[0], preset=0)),
    # the first data entry mapped gfn 0x20 W D, the guest clears it; sync (or INVLPG)
    "unsync:cr3-no-sync": (C.kvm_mmu_sync_roots, dict(f1=1, f2=0, w1=False, w2=False, e1=0, e2=0,
                                                      reread=False)),
    "unsync:invlpg-no-sync": (C.fname_invlpg, dict(f1=1, f2=0, w1=False, w2=False, which=False,
                                                   new=0)),
}


@pytest.mark.parametrize("qual", sorted(VM_CASES))
def test_each_must_catch_unsync_variant_breaks_a_contract(qual, bound):
    fn, a = VM_CASES[qual]
    assert _holds(fn, **a) is True, "the plain impl meets it"
    bound(variants.get(qual))
    assert _holds(fn, **a) is False


def test_always_protect_meets_every_unsync_contract(bound):
    bound(variants.get("unsync:always-protect"))
    for fn, a in VM_CASES.values():
        assert _holds(fn, **a) is True, fn.__name__
    assert C.mmu_need_write_protect([1], [False], True).ret is True   # its own rule


def test_every_unsync_variant_is_covered_by_the_cases():
    quals = {v.qualname for v in variants.load_all().values()
             if v.family == "unsync" and v.must_catch}
    assert quals == set(VM_CASES)


# -- the sync-roots search ------------------------------------------------------------
def test_search_on_a_slice_is_clean_and_says_searched():
    res = S.search(pages=1, limit=150)
    assert res.states == 150 and res.failures == 0
    text = res.summary()
    assert text.startswith("searched (exhaustive, bound: the first 150 of:") and "proved" not in text
    assert S.search(pages=1, spec_side=True, limit=60).failures == 0


def test_sync_leaves_nothing_stale_after_the_guest_retargets_entries():
    """Fixed states of the bound, plain impl and spec: the guest edits both entries of
    its unsync table (retarget, clear, make clean), then kvm_mmu_sync_roots."""
    for spec_side, cls in ((False, families.get("unsync").impl_base), (True, SpecShadowMmu)):
        for state in [((1, 2), (True, False), (2, 0), False), ((1, 4), (False, True), (3, 1), True),
                      ((4, 4), (True, True), (1, 2), False)]:
            fails, log = S.run_state(cls, 1, *state, spec_side=spec_side)
            assert fails == [], (spec_side, state, log)
            assert any("unsync before the sync: sp(gfn 0x13" in x for x in log), log


def test_two_page_states_are_clean():
    for state in [((1, 2, 1), (True, False, True), (2, 0, 4), False),
                  ((4, 1, 0), (True, True, False), (1, 4, 1), True)]:
        fails, log = S.run_state(families.get("unsync").impl_base, 2, *state)
        assert fails == [], (state, log)


def test_cr3_no_sync_leaves_a_stale_spte():
    fails, log = S.run_state(_cls("unsync:cr3-no-sync"), 1, (1, 0), (False, False), (0, 0), False)
    assert any(f.startswith("stale spte: vcpu 0 address 0x1000") for f in fails), fails
    assert any(f.startswith("unsync after sync") for f in fails)
    res = S.search(_cls("unsync:cr3-no-sync"), pages=1, limit=300, stop_at_first=True)
    assert res.stale == 1 and "COUNTEREXAMPLE" in res.summary()


def test_sync_keeps_changed_gfn_is_stale_after_the_sync():
    fails, _ = S.run_state(_cls("unsync:sync-keeps-changed-gfn"), 1, (2, 0), (False, False),
                           (4, 0), False)
    assert any("maps gfn 0x21, the guest maps 0x14" in f for f in fails), fails


def test_invlpg_form():
    assert S.run_invlpg_state(families.get("unsync").impl_base, (1, 2), (True, False), 1, 4)[0] == []
    fails, _ = S.run_invlpg_state(_cls("unsync:invlpg-no-sync"), (1, 0), (False, False), 0, 2)
    assert fails and fails[0].startswith("stale spte"), fails


def test_cli_bad_variant_is_exit_2(capsys):
    assert S.main(["--variant", "unsync:nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown variant") and len(err.strip().splitlines()) == 1
