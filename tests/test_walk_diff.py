"""The walk family: the plain impl passes a round of search in each mode, every oracle
fires on a bug made for it; every walk variant is caught on its saved case
(tests/test_cases.py, tests/cases/)."""

import json

import pytest

from diff import counterexample, families
from diff.core import BadOp, replay_ops
from diff.walk import WalkWorld
from impl import variants
from impl.walk import KvmMmuPteWrite, MarkPageDirty, PagingTmpl
from spec.consts import (
    PT_ACCESSED_MASK, PT_DIRTY_MASK, PT_PAGE_SIZE_MASK, PT_PRESENT_MASK, PT_USER_MASK,
    PT_WRITABLE_MASK,
)
from spec.errors import KvmBug
from tests import make_cases
from tests.variant_checks import one_round

P, W, U, A, D, PS = (PT_PRESENT_MASK, PT_WRITABLE_MASK, PT_USER_MASK, PT_ACCESSED_MASK,
                     PT_DIRTY_MASK, PT_PAGE_SIZE_MASK)
WALK_VARIANTS = [v.qualname for v in variants.of_family("walk") if v.must_catch]
SOUND_VARIANTS = [v.qualname for v in variants.of_family("walk") if v.passes]
ALL_OPS = {"vcpu_setup", "guest_write", "set_cr3", "set_control", "set_paging_mode", "access"}


def setup(mode="32", **kw):
    args = {"maxphyaddr": 36, "mode": mode, "cr0_wp": True, "cr4_pse": True, "efer_nx": True}
    return ["vcpu_setup", dict(args, **kw)]


def gw(gpa, value, size=4):
    return ["guest_write", {"gpa": gpa, "size": size, "value": value}]


def cr3(v):
    return ["set_cr3", {"cr3": v}]


def access(addr=0, kind="read", user=False):
    return ["access", {"addr": addr, "kind": kind, "user": user}]


# A 32-bit two-level walk of address 0: PD gfn 0x10 -> PT gfn 0x11 -> page gfn 0x20.
TWO_LEVEL = [setup(), gw(0x10000, 0x11000 | P | W | U), gw(0x11000, 0x20000 | P | W | U),
             cr3(0x10000)]


def test_plain_impl_is_clean():
    res = one_round("walk", mode="mixed", steps=60)
    assert res.status == "clean", res.message
    assert res.examples >= 25 and res.steps > 1000
    assert ALL_OPS <= set(res.rules)  # every kind of op was exercised (tested: sampled)


@pytest.mark.parametrize("mode", ["32", "pae", "64"])
def test_plain_impl_is_clean_in_each_fixed_mode(mode):
    res = one_round("walk", mode=mode, steps=60, seed=1)
    assert res.status == "clean", res.message
    assert "set_paging_mode" not in res.rules


def test_the_issue_variants_are_registered():
    assert {"walk:d-on-read", "walk:access-not-anded", "walk:pse36-dropped",
            "walk:no-pte-write-2.6", "walk:stray-pte-write-3.x"} <= set(WALK_VARIANTS)
    assert set(SOUND_VARIANTS) == {"walk:pte-write-on-dirty-2.6", "walk:rsvd-3.10"}


CAUGHT_BY = {"walk:d-on-read": "A/D writes", "walk:access-not-anded": "access rights",
             "walk:pse36-dropped": "walk outcome", "walk:no-pte-write-2.6": "kvm_mmu_pte_write",
             "walk:stray-pte-write-3.x": "kvm_mmu_pte_write"}


def test_each_variants_case_is_pinned_to_its_oracle_at_an_access():
    """Each saved case (tests/cases/walk-*.json, replayed by tests/test_cases.py)
    must be caught by the oracle made for its bug, at a guest access, within 8 ops."""
    for name in WALK_VARIANTS:
        pin = make_cases.PINS[name]
        assert pin["oracle"] == CAUGHT_BY[name] and pin["last_op"] == "access", name
        assert make_cases.max_ops(variants.get(name)) <= 8


@pytest.mark.parametrize("name,mode", [("walk:pte-write-on-dirty-2.6", "mixed"),
                                       ("walk:rsvd-3.10", "64"), ("walk:rsvd-3.10", "pae")])
def test_sound_walker_form_passes(name, mode):
    """The walker forms of other kernels must pass (tested: sampled; one round,
    in the modes where the form's rule differs from the plain walker's)."""
    res = one_round("walk", name, mode=mode, steps=60, seed=2)
    assert res.status == "clean", res.message
    assert res.examples >= 25


def test_every_sound_form_has_a_passing_test():
    assert set(SOUND_VARIANTS) == {"walk:pte-write-on-dirty-2.6", "walk:rsvd-3.10"}


# -- every oracle fires on a bug made for it ---------------------------------------
class BadPath(PagingTmpl):
    def walk_addr(self, vcpu, addr, access):
        w = super().walk_addr(vcpu, addr, access)
        if w.table_gfn[0] is not None:
            w.table_gfn[0] += 1  # records the wrong table for level 1
        return w


class NoMarkPageDirty(PagingTmpl):
    def update_accessed_dirty_bits(self, vcpu, walker, write_fault):
        ret = super().update_accessed_dirty_bits(vcpu, walker, write_fault)
        walker.events[:] = [e for e in walker.events if not isinstance(e, MarkPageDirty)]
        return ret


class CmpxchgAlwaysFails(PagingTmpl):
    def cmpxchg_gpte(self, vcpu, pte_gpa, orig_pte, new_pte):
        return 1  # "the pte changed": walk_addr retries for ever


class StrayStore(PagingTmpl):
    def cmpxchg_gpte(self, vcpu, pte_gpa, orig_pte, new_pte):
        vcpu.mem.words[0x7000 >> 2] = 0xBAD  # a store the write log never sees
        return super().cmpxchg_gpte(vcpu, pte_gpa, orig_pte, new_pte)


class NeverLast(PagingTmpl):
    def is_last_gpte(self, mmu, level, gpte):
        return False


# (case id, oracle, bug, ops): every oracle fires on a bug made for it, at the last op.
ORACLE_CASES = [
    ("walk outcome", "walk outcome", variants.get("walk:pse36-dropped"),
     [setup(), gw(0x10000, 0x400000 | P | PS | (5 << 13)), cr3(0x10000), access()]),
    ("access rights", "access rights", variants.get("walk:access-not-anded"),
     [setup(), gw(0x10000, 0x11000 | P), gw(0x11000, 0x20000 | P | W | U), cr3(0x10000),
      access()]),
    ("A/D writes", "A/D writes", variants.get("walk:d-on-read"), TWO_LEVEL + [access()]),
    ("walk path", "walk path", BadPath, TWO_LEVEL + [access()]),
    ("mark_page_dirty", "mark_page_dirty", NoMarkPageDirty, TWO_LEVEL + [access()]),
    # a walker that declares the 2.6 rule and forgets kvm_mmu_pte_write()
    ("kvm_mmu_pte_write 2.6 missing", "kvm_mmu_pte_write", variants.get("walk:no-pte-write-2.6"),
     TWO_LEVEL + [access(kind="write")]),
    # a 3.x walker that sends one anyway
    ("kvm_mmu_pte_write 3.x stray", "kvm_mmu_pte_write",
     variants.get("walk:stray-pte-write-3.x"), TWO_LEVEL + [access(kind="write")]),
    ("guest memory", "guest memory", StrayStore, TWO_LEVEL + [access()]),
    ("kernel BUG", "kernel BUG", NeverLast, TWO_LEVEL + [access()]),
    ("livelock", "livelock", CmpxchgAlwaysFails, TWO_LEVEL + [access()]),
]


@pytest.mark.parametrize("case,oracle,bug,ops", ORACLE_CASES, ids=[c[0] for c in ORACLE_CASES])
def test_oracle_fires_on_its_bug_and_not_on_the_plain_impl(case, oracle, bug, ops):
    fam = families.get("walk")
    cls = fam.impl_class(bug) if isinstance(bug, variants.Variant) else bug
    assert replay_ops(fam.world(None), ops) is None
    failure = replay_ops(fam.make_world(cls, "mixed"), ops)
    assert failure is not None and failure.oracle == oracle, failure
    assert failure.step == len(ops) - 1


def test_control_register_oracle_fires():
    # A PAE PDPTE with R/W set must make the CR3 load #GP; an impl that skips the
    # check (load_pdptrs always succeeding) is caught at that op.
    ops = [setup("pae"), gw(0x10000, 0x11000 | P | W, 8), cr3(0x10000)]
    assert replay_ops(WalkWorld(PagingTmpl, "pae"), ops) is None
    world = WalkWorld(PagingTmpl, "pae")
    world.apply(ops[0])
    world.impl.vcpu.load_pdptrs = lambda cr3: 1
    failure = replay_ops(world, ops[1:])
    assert failure is not None and failure.oracle == "control registers"


# -- pinned behaviours of the plain walker -----------------------------------------------
def test_self_mapped_pml4_retries_and_reports_each_write():
    # PML4 entry 0 maps the PML4 itself: address 0 reads that entry at all 4 levels.
    # Setting A at level 4 changes the entry level 3 read, so cmpxchg fails once and
    # walk_addr retries; the spec sets the same bits in the same order.
    v = 0x10000 | P | W | U
    world = WalkWorld(PagingTmpl, "64")
    for op in [setup("64"), gw(0x10000, v, 8), cr3(0x10000)]:
        world.apply(op)
    s, w = world.compare_access(0x123, "write", True)
    world.check()
    assert s.ok and (s.gfn, s.level) == (0x10, 1)
    assert [(x.gpa, x.value) for x in s.writes] == [(0x10000, v | A), (0x10000, v | A | D)]
    assert w.retries == 1
    assert w.events == [MarkPageDirty(0x10), MarkPageDirty(0x10)]  # 3.x: no kvm_mmu_pte_write
    # The 2.6 form reports the dirtied leaf as well, after the same retry.
    form = families.get("walk").impl_class(variants.get("walk:pte-write-on-dirty-2.6"))
    world = WalkWorld(form, "64")
    for op in [setup("64"), gw(0x10000, v, 8), cr3(0x10000)]:
        world.apply(op)
    _, w = world.compare_access(0x123, "write", True)
    assert w.retries == 1
    assert w.events == [MarkPageDirty(0x10), MarkPageDirty(0x10),
                        KvmMmuPteWrite(0x10000, v | A | D, 8)]


def test_pdptes_are_the_ones_cached_at_cr3_load():
    world = WalkWorld(PagingTmpl, "pae")
    for op in [setup("pae"), gw(0x10000, 0x11000 | P, 8), gw(0x11000, 0x12000 | P | W | U, 8),
               gw(0x12000, 0x20000 | P | W | U, 8), cr3(0x10000),
               gw(0x10000, 0, 8)]:  # the guest clears the PDPTE in memory after the load
        world.apply(op)
        world.check()
    s, _ = world.compare_access(0x0, "read", False)
    assert s.ok and s.gfn == 0x20  # still walks through the cached PDPTE
    world.apply(cr3(0x10000))      # reload: now the PDPTE is gone
    s, _ = world.compare_access(0x0, "read", False)
    assert s.fault == 0


def test_describe_is_in_kernel_terms():
    world = families.get("walk").world()
    line = world.describe(gw(0x10000, 0x40A081))
    assert "guest writes pte" in line and "PS" in line and "4MB PDE" in line
    assert "PSE-36 bits 0x5" in world.describe(gw(0x10000, 0x40A081))
    assert world.describe(access(0x1000, "fetch", True)) == "walk_addr(0x1000, user fetch)"
    assert "MAXPHYADDR=36" in world.describe(setup())
    assert "GBPAGES=1" in world.describe(setup())
    assert "GBPAGES=0" in world.describe(setup(gbpages=False))


def test_malformed_ops_are_bad_ops(tmp_path):
    fam = families.get("walk")
    with pytest.raises(BadOp):
        replay_ops(fam.world(None), [access()])  # no vcpu_setup
    with pytest.raises(BadOp):
        replay_ops(fam.world(None), [setup(maxphyaddr=35)])
    with pytest.raises(BadOp):
        replay_ops(fam.world(None), [setup(maxphyaddr=53)])
    with pytest.raises(BadOp):
        replay_ops(fam.world(None), [setup(gbpages="no")])
    with pytest.raises(BadOp):
        replay_ops(fam.world(None), [setup(), cr3(0x10004)])
    with pytest.raises(BadOp):
        replay_ops(fam.world(None, "32"), [setup("64")])
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"mmuspec_counterexample": 1, "family": "walk",
                               "ops": [setup(), gw(0x10001, 1)]}))
    with pytest.raises(counterexample.BadCounterexample):
        counterexample.replay(counterexample.load(bad))


def test_a_walk_past_level_1_is_a_kernel_bug():
    world = WalkWorld(NeverLast, "32")
    for op in TWO_LEVEL:
        world.apply(op)
    with pytest.raises(KvmBug, match="BUG_ON"):
        world.impl.vcpu.walk_addr(0, 0)
