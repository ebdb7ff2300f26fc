"""rmap:tail-count (Linux 6.4, 141705b78381): a sound variant that must pass, and its broken forms.

Tested (sampled): the rmap campaign and the mmu campaign (tdp, shadow64) are
clean on it; the hand-written rmap oracle cases replay clean.  Searched:
every removal from every list of up to 3 descs built by adds.  Proved
(bounded): its two obligations; the broken forms are counterexamples.  The
broken forms' campaigns (caught, shrunk, replayable) run in test_rmap_diff.py
with every must-catch rmap variant.
"""

import io

import pytest
import z3

from diff import families
from diff.bench import _one_rmap
from diff.core import replay_ops
from impl import variants
from impl.rmap import Rmap, RmapIterator
from impl.variants import rmap_tail_count as T
from mmuspec import cli
from proofs import registry
from spec.consts import PT_PRESENT_MASK, PT_USER_MASK, PTE_LIST_EXT_CHOICES
from spec.errors import KvmBug, UseAfterFree
from spec.memory import SHADOW_PT_BASE, KernelMemory, RmapHead
from spec.pte_list import pte_list_is_desc
from spec.rmap import SpecRmap
from tests.test_rmap_oracles import CASES
from tests.variant_checks import one_round

NAME = "rmap:tail-count"
MUTANTS = ("rmap:tail-count-fill-from-own-desc", "rmap:tail-count-stale-tail")
S = [SHADOW_PT_BASE + 8 * k for k in range(64)]
P = PT_PRESENT_MASK | PT_USER_MASK


def tail_class(name=NAME):
    v = variants.get(name)
    return families.for_variant(v).impl_class(v)


@pytest.fixture(params=PTE_LIST_EXT_CHOICES, ids=lambda e: f"ext{e}")
def tc(request):
    mem = KernelMemory(request.param)
    for s in S:
        mem.spte_write(s, P)
    return tail_class()(mem, lambda sptep: None)


def chain(ops, head):
    """[(sptes in use, spte_count, tail_count)] head first."""
    return [(d.sptes[:d.extra["spte_count"]], d.extra["spte_count"], d.extra["tail_count"])
            for d in ops.pte_list_decode(head.val)[1]]


def test_registered_as_a_sound_patch_with_broken_forms():
    v = variants.get(NAME)
    assert (v.models, v.must_catch, v.passes, v.expected) == ("141705b78381", False, True, "passes")
    assert set(v.replaces) == {"pte_list_add", "pte_list_desc_remove_entry", "pte_list_remove",
                               "pte_list_decode", "pte_list_violations", "pte_list_add_count"}
    assert "rmap_get_next" not in v.replaces  # the patch left the iterator alone
    for m in MUTANTS:
        assert variants.get(m).must_catch
    # The rmap family runs it by default; the mmu family only when asked.
    assert families.for_variant(v).name == "rmap"
    mmu = families.get("mmu")
    assert mmu.runs(v) and not mmu.accepts(v)
    cls = mmu.impl_class(v)
    assert cls.rmap_class.variant_invariants == (T.tail_count_invariant,)
    assert not getattr(cls, "variant_invariants", ())


def test_forms_and_tag(tc):
    head = RmapHead()
    assert tc.pte_list_add(S[0], head) == 0
    assert head.val == S[0] and not pte_list_is_desc(head.val)
    assert tc.pte_list_add(S[1], head) == 1
    assert pte_list_is_desc(head.val) and chain(tc, head) == [([S[0], S[1]], 2, 0)]


def test_adds_go_to_the_head_and_a_full_head_gets_a_new_head(tc):
    ext, head = tc.ext, RmapHead()
    counts = []
    for k in range(2 * ext + 2):
        want = tc.pte_list_add_count(head.val)
        counts.append(tc.pte_list_add(S[k], head))
        assert counts[-1] == want
    assert counts == list(range(2 * ext + 2))  # exact: tail_count + spte_count
    assert chain(tc, head) == [(S[2 * ext: 2 * ext + 2], 2, 2 * ext),
                               (S[ext: 2 * ext], ext, ext), (S[:ext], ext, 0)]
    assert T.tail_count_invariant(tc) == [] and tc.pte_list_violations(head.val) == []


def test_the_3x_count_differs_when_every_desc_is_full():
    """Why pte_list_add_count is part of the seam: 3.x skips a full last desc."""
    counts = []
    for cls in (SpecRmap, tail_class()):
        ops, head = cls(KernelMemory(3), lambda s: None), RmapHead()
        counts.append([ops.pte_list_add(S[k], head) for k in range(8)])
    assert counts == [[0, 1, 2, 0, 4, 5, 3, 7], list(range(8))]


def test_removal_fills_the_hole_from_the_head(tc):
    ext, head = tc.ext, RmapHead()
    for k in range(ext + 2):
        tc.pte_list_add(S[k], head)
    tc.pte_list_remove(S[0], head)  # in the tail desc: the head's last entry moves there
    assert chain(tc, head) == [([S[ext]], 1, ext), ([S[ext + 1]] + S[1:ext], ext, 0)]
    tc.pte_list_remove(S[1], head)  # the head's only entry fills it: the head empties, is freed
    assert chain(tc, head) == [([S[ext + 1], S[ext]] + S[2:ext], ext, 0)]
    assert tc.mem.desc_frees == 1 and T.tail_count_invariant(tc) == []


def test_desc_form_never_collapses_to_single(tc):
    head = RmapHead()
    tc.pte_list_add(S[0], head)
    tc.pte_list_add(S[1], head)
    tc.pte_list_remove(S[0], head)
    assert pte_list_is_desc(head.val) and chain(tc, head) == [([S[1]], 1, 0)]
    tc.pte_list_remove(S[1], head)
    assert head.val == 0 and tc.mem.desc_frees == 1


def test_remove_absent_is_a_bug(tc):
    head = RmapHead()
    with pytest.raises(KvmBug, match="0->BUG"):
        tc.pte_list_remove(S[0], head)
    tc.pte_list_add(S[0], head)
    with pytest.raises(KvmBug, match="1->BUG"):
        tc.pte_list_remove(S[1], head)
    tc.pte_list_add(S[1], head)
    with pytest.raises(KvmBug, match="many->BUG"):
        tc.pte_list_remove(S[2], head)


def test_freed_desc_is_poisoned(tc):
    head = RmapHead()
    tc.pte_list_add(S[0], head)
    tc.pte_list_add(S[1], head)
    desc = tc.mem.desc(head.val & ~1)
    tc.pte_list_remove(S[0], head)
    tc.pte_list_remove(S[1], head)
    with pytest.raises(UseAfterFree):
        tc.mem.slot(desc, 0)


def walk(ops, head):
    it, out = RmapIterator(), []
    sptep = ops.rmap_get_first(head.val, it)
    while sptep:
        out.append(sptep)
        sptep = ops.rmap_get_next(it)
    return out


@pytest.mark.parametrize("ext", PTE_LIST_EXT_CHOICES)
def test_every_removal_from_every_list_of_up_to_3_descs(ext):
    """Searched: lists of 2..3*ext sptes built by adds; each spte removed in turn
    (from a fresh copy); the layout rules hold, exactly that spte goes, and the
    unchanged 3.x iterator walks exactly the decoded entries."""
    cls = tail_class()
    for n in range(2, 3 * ext + 1):
        for gone in range(n):
            ops, head = cls(KernelMemory(ext), lambda s: None), RmapHead()
            for k in range(n):
                ops.pte_list_add(S[k], head)
            assert walk(ops, head) == ops.pte_list_decode(head.val)[0]
            ops.pte_list_remove(S[gone], head)
            entries = ops.pte_list_decode(head.val)[0]
            assert sorted(entries) == [s for k, s in enumerate(S[:n]) if k != gone], (n, gone)
            assert ops.pte_list_violations(head.val) == [] and T.tail_count_invariant(ops) == []
            assert walk(ops, head) == entries
            live = {d.addr for d in ops.mem.live_descs()}
            assert live == {d.addr for d in ops.pte_list_decode(head.val)[1]}


@pytest.mark.parametrize("oracle", sorted(CASES))
def test_the_hand_written_oracle_cases_replay_clean(oracle):
    """Each case of test_rmap_oracles.py is a bug of some other variant: on the
    tail-count form, as on the plain impl, it must replay clean."""
    _, ops = CASES[oracle]
    assert replay_ops(families.get("rmap").world(variants.get(NAME)), ops) is None


def _adds(n):
    return [["kvm_mmu_setup", {"pte_list_ext": 3, "shadow_accessed": True}]] + [
        ["rmap_add", {"slot": 0, "level": 1, "index": 0, "spte": P | (k << 12)}] for k in range(n)]


def test_the_broken_forms_break_the_layout_rules():
    fam = families.get("rmap")
    # the hole in the tail desc filled from that desc: a partly filled non-head
    f = replay_ops(fam.world(variants.get(MUTANTS[0])), _adds(4) + [["drop_spte", {"spte": S[0]}]])
    assert f.step == 5 and T.NON_HEAD_FULL in f.message, f
    # a prepended head whose tail_count says 0
    f = replay_ops(fam.world(variants.get(MUTANTS[1])), _adds(4))
    assert f.step == 4 and "tail_count 0, the descs after it hold 3" in f.message, f
    # the invariant alone (no rmap head needed) sees it too
    world = fam.world(variants.get(MUTANTS[1]))
    for op in _adds(4):
        world.apply(op)
    bad = T.tail_count_invariant(world.sides["impl"].mmu)
    assert bad and bad[0].startswith(T.COUNTS + ": ")


def test_rmap_campaign_is_clean():
    res = one_round("rmap", NAME, steps=100)
    assert res.status == "clean", (res.oracle, res.message)
    assert {"rmap_add", "drop_spte", "kvm_unmap_rmapp", "kvm_mmu_unlink_parents"} <= set(res.rules)


@pytest.mark.parametrize("mode", ["tdp", "shadow64"])
def test_mmu_campaign_is_clean(mode):
    res = one_round("mmu", NAME, mode=mode, steps=50)
    assert res.status == "clean", (res.oracle, res.message)
    assert res.variant == NAME and res.family == "mmu"


def test_cli_runs_it_on_the_mmu_family_only_when_asked():
    out = io.StringIO()
    assert cli.main(["diff", "--family", "mmu", "--variant", NAME, "--mode", "tdp",
                     "--budget", "0.01"], out=out) == 0
    assert f"family mmu ({NAME}, mode tdp)" in out.getvalue()
    assert cli.main(["diff", "--family", "walk", "--variant", NAME], out=io.StringIO()) == 2
    assert cli.main(["bench", "gfn", "--variant", NAME], out=io.StringIO()) == 2


OBS = registry.load_all()
OBLIGATIONS = ("pte_list_tail.remove_keeps_tails_full", "pte_list_tail.add_keeps_tails_full")


@pytest.mark.parametrize("name", OBLIGATIONS)
def test_obligations_prove_on_the_tail_count_form_and_its_default(name):
    for cls in (None, tail_class()):  # None: the registry default (the plain impl)
        v = OBS[name].run(cls)
        assert v.verdict == registry.PROVED, (name, cls, v)


def test_obligations_catch_the_broken_forms():
    remove, add = (OBS[n] for n in OBLIGATIONS)
    v = remove.run(tail_class(MUTANTS[0]))
    assert v.verdict == registry.COUNTEREXAMPLE and "remove desc" in v.detail
    assert add.run(tail_class(MUTANTS[0])).verdict == registry.PROVED
    v = add.run(tail_class(MUTANTS[1]))
    assert v.verdict == registry.COUNTEREXAMPLE and "tail_count 0" in v.detail
    assert remove.run(tail_class(MUTANTS[1])).verdict == registry.PROVED


@pytest.mark.parametrize("ext", PTE_LIST_EXT_CHOICES)
def test_obligation_preconditions_are_satisfiable(ext):
    """Not vacuous: every case's preconditions have a model."""
    for n in (1, 2, 3):
        cases = [T._remove_case(ext, n, k, i)[1] for k in range(n) for i in range(ext)]
        cases.append(T._add_case(ext, n)[2])
        for pre in cases:
            s = z3.Solver()
            s.add(*pre)
            assert s.check() == z3.sat, (ext, n)


def test_walk_cost_is_the_iterators():
    """Exact slot reads of a full walk: the same as the plain impl's, n + 2."""
    for n in (1, 2, 8, 64, 512):
        reads = []
        for cls in (Rmap, tail_class()):
            mmu, head = _one_rmap(cls, n, 3)
            mmu.mem.reads = 0
            mmu.kvm_test_age_rmapp(head)
            reads.append(mmu.mem.reads)
        assert reads[0] == reads[1] == (1 if n == 1 else n + 2), (n, reads)
