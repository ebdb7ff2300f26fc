"""Prefetch (Xiao 2010): the plain impl clean, each variant caught by the completeness
oracle (on its saved case: tests/test_cases.py, tests/cases/prefetch-*.json),
hand-written faults with their exact prefetched sptes, and the proofs."""

import io

import pytest

import diff.mmu as diff_mmu
from diff import families
from diff.core import replay_ops
from impl import variants
from impl.mmu import ShadowMmu
from proofs import registry
from spec.consts import PT_ACCESSED_MASK, PT_PRESENT_MASK, PT_WRITABLE_MASK, SPTE_HOST_WRITEABLE
from tests import make_cases
from tests.variant_checks import one_round

PREFETCH_VARIANTS = ("prefetch:v3-2010", "prefetch:no-trailing-flush", "prefetch:host-writable-false")
SOUND_VARIANTS = ("prefetch:stop-at-invalid-gpte-3.8",)  # tests/test_prefetch_stop_rule.py


def test_variants_are_registered_each_replacing_one_method():
    got = {v.qualname: v for v in variants.of_family("prefetch")}
    assert set(got) == set(PREFETCH_VARIANTS) | set(SOUND_VARIANTS)
    for name in PREFETCH_VARIANTS:
        v = got[name]
        assert v.must_catch and len(v.replaces) == 1 and "prefetch completeness" in v.caught_by
        v.build(ShadowMmu)
    for name in SOUND_VARIANTS:
        assert got[name].expected == "passes"
        got[name].build(ShadowMmu)


@pytest.mark.parametrize("mode", ["tdp", "shadow32", "shadow64"])
def test_plain_impl_is_clean_and_prefetches(mode):
    res = one_round("prefetch", mode=mode, steps=50)
    assert res.status == "clean", (res.oracle, res.message)
    assert res.metrics["prefetched sptes"] > 0 and res.metrics["level-1 faults"] > 0


def test_each_prefetch_case_is_pinned_to_completeness():
    """tests/test_cases.py replays each saved case: under TDP, at most 12 ops, caught by
    the completeness oracle, whose message names the window slot missed."""
    for name in PREFETCH_VARIANTS:
        assert make_cases.PINS[name] == {"mode": "tdp", "oracle": "prefetch completeness",
                                         "message": "window slot"}
        assert make_cases.max_ops(variants.get(name)) <= 12


def test_prefetch_variants_resolve_to_the_prefetch_family():
    for name in PREFETCH_VARIANTS:
        assert families.for_variant(variants.get(name)).name == "prefetch"
    assert not families.get("mmu").accepts(variants.get(PREFETCH_VARIANTS[0]))


def test_cli_diff_family_prefetch_clean_and_catches_v3():
    from mmuspec.cli import main

    out = io.StringIO()
    assert main(["diff", "--family", "prefetch", "--mode", "tdp", "--budget", "0.01", "--steps", "50"],
                out=out) == 0, out.getvalue()
    assert "clean: family prefetch" in out.getvalue()
    out = io.StringIO()
    assert main(["diff", "--family", "prefetch", "--variant", "prefetch:v3-2010", "--mode", "tdp",
                 "--budget", "20", "--steps", "50"], out=out) == 1, out.getvalue()
    text = out.getvalue()
    assert "prefetch completeness" in text and "slot" in text


# -- hand-written faults -----------------------------------------------------------
A_SET = 0x27  # P W U A: the walks write nothing, so only the data access faults


def tdp_ops():
    ops = [["vm_setup", {"pte_list_ext": 3}],
           ["memslot_create", {"slot": 0, "base_gfn": 0, "npages": 0x400, "readonly": False,
                               "dirty_log": False, "host_level": 1}]]
    chain = [(0x10, 0x11), (0x11, 0x12), (0x12, 0x13)]
    ops += [["host_write", {"gpa": t << 12, "size": 8, "value": (n << 12) | A_SET}] for t, n in chain]
    ops += [["host_write", {"gpa": (0x13 << 12) + 8 * g, "size": 8, "value": (g << 12) | A_SET}]
            for g in range(0x40)]
    ops.append(["vcpu_create", {"vcpu": 0, "mode": "tdp", "cr3": 0x10000, "cr0_wp": True,
                                "cr4_pse": True, "efer_nx": False}])
    return ops


def read(addr):
    return ["access", {"vcpu": 0, "addr": addr, "kind": "read", "user": False}]


def present_slots(world, table_gfn=None, direct=True, level=1):
    mmu = world.sides["impl"].mmu
    out = {}
    for sp in mmu.pages.values():
        if sp.role.level == level and bool(sp.role.direct) == direct and \
                (table_gfn is None or sp.gfn == table_gfn):
            for i in range(512):
                v = mmu.mem.spte_read(sp.sptep(i))
                if v & PT_PRESENT_MASK:
                    out[(sp.gfn, i)] = v
    return out


def world(mode, variant=None):
    fam = families.get("mmu")
    return fam.world(variants.get(variant) if variant else None, mode)


def test_tdp_fault_on_a_multiple_of_8_prefetches_the_trailing_run():
    """gfn 0x28 (index 40, window 40..47): the merged form maps 41..47, speculative and
    host-writable; the 2.6.36 form (no trailing flush) maps nothing, v3 too."""
    ops = tdp_ops() + [read(0x28000)]
    w = world("tdp")
    assert replay_ops(w, ops) is None
    got = present_slots(w)
    data = {i: v for (g, i), v in got.items() if 40 <= i < 48}
    assert sorted(data) == list(range(40, 48))
    for i in range(41, 48):
        assert data[i] & SPTE_HOST_WRITEABLE and not data[i] & PT_ACCESSED_MASK
        assert data[i] & PT_WRITABLE_MASK  # TDP: ACC_ALL
    assert data[40] & PT_ACCESSED_MASK  # the faulting entry, then used by the access
    for v in ("prefetch:no-trailing-flush", "prefetch:v3-2010"):
        f = replay_ops(world("tdp", v), ops)
        assert f is not None and f.oracle == "prefetch completeness", (v, f)
        assert f.step == len(ops) - 1
        assert "window 40..47" in f.message and "slot 47 (window slot 7)" in f.message


def test_tdp_fault_on_the_last_slot_separates_v3_from_2_6_36():
    """gfn 0x2f (window slot 7): the run 40..46 ends at the faulting entry, so 2.6.36 maps
    it; v3's loop stops before slot 7 and never flushes the open run."""
    ops = tdp_ops() + [read(0x2f000)]
    assert replay_ops(world("tdp", "prefetch:no-trailing-flush"), ops) is None
    f = replay_ops(world("tdp", "prefetch:v3-2010"), ops)
    assert f is not None and f.oracle == "prefetch completeness"
    assert "slot 40 (window slot 0)" in f.message and "slot 46 (window slot 6)" in f.message


def test_tdp_prefetch_stops_at_the_end_of_the_memslot():
    """A slot of 0x3fe pages; a fault at gfn 0x3fc (window 0x3f8..0x3ff of the level-1
    page of gfn 0x200) maps the run 0x3f8..0x3fb; the trailing run 0x3fd..0x3ff passes
    the slot's end, so gfn_to_page_many_atomic refuses all of it (0x3fd included)."""
    ops = tdp_ops()
    ops[1][1]["npages"] = 0x3fe
    ops.insert(-1, ["host_write", {"gpa": (0x13 << 12) + 8 * 0x1fc, "size": 8,
                                   "value": (0x3fc << 12) | A_SET}])
    ops.append(read(0x1fc000))
    w = world("tdp")
    assert replay_ops(w, ops) is None
    got = sorted(i for (g, i), v in present_slots(w).items() if g == 0x200)
    assert got == [0x1f8, 0x1f9, 0x1fa, 0x1fb, 0x1fc]
    ops[1][1]["npages"] = 0x400  # the whole run fits: all of it is mapped
    w = world("tdp")
    assert replay_ops(w, ops) is None
    assert sorted(i for (g, i), v in present_slots(w).items() if g == 0x200) == list(range(0x1f8, 0x200))


def shadow32_ops():
    """A 32-bit guest: PDE 0 -> table 0x11, PTEs with A set, some special ones."""
    ops = [["vm_setup", {"pte_list_ext": 3}],
           ["memslot_create", {"slot": 0, "base_gfn": 0, "npages": 0x400, "readonly": False,
                               "dirty_log": False, "host_level": 1}],
           ["host_write", {"gpa": 0x10000, "size": 4, "value": 0x11000 | A_SET}]]
    ptes = {g: (g << 12) | A_SET for g in range(0x20)}
    ptes[2] = 0                        # not present: skipped
    ptes[3] = (3 << 12) | 0x07         # A clear: skipped
    ptes[4] = (4 << 12) | 0x67         # dirty: writable spte
    ptes[6] = (0x900 << 12) | A_SET    # no memslot: the prefetch stops here
    ops += [["host_write", {"gpa": 0x11000 + 4 * g, "size": 4, "value": v}] for g, v in ptes.items()]
    ops.append(["vcpu_create", {"vcpu": 0, "mode": "shadow32", "cr3": 0x10000, "cr0_wp": True,
                                "cr4_pse": True, "efer_nx": False}])
    return ops


def test_shadow_prefetch_reads_the_guest_ptes():
    """Fault at gva 0x5000 (window 0..7 of the shadow of table 0x11): 0, 1 read-only,
    2 (not present) and 3 (A clear) skipped, 4 writable (D set), 6 has no memslot so 6
    and 7 are not mapped.  host-writable-false installs them without HW."""
    ops = shadow32_ops() + [read(0x5000)]
    w = world("shadow32")
    assert replay_ops(w, ops) is None
    got = present_slots(w, table_gfn=0x11, direct=False)
    assert sorted(i for (_, i) in got) == [0, 1, 4, 5]
    for i in (0, 1, 4):
        v = got[(0x11, i)]
        assert v & SPTE_HOST_WRITEABLE and not v & PT_ACCESSED_MASK
        assert bool(v & PT_WRITABLE_MASK) == (i == 4)
    f = replay_ops(world("shadow32", "prefetch:host-writable-false"), ops)
    assert f is not None and f.oracle == "prefetch completeness"
    assert "slot 0 (window slot 0)" in f.message


def test_shadow_prefetch_in_the_upper_quadrant():
    """The same guest ptes at entries 512.. of the 1024-entry table: the shadow page of
    quadrant 1 reads them there (a fault at gva 0x205000)."""
    ops = shadow32_ops()
    ops = [op if op[0] != "host_write" or not 0x11000 <= op[1]["gpa"] < 0x12000
           else ["host_write", {**op[1], "gpa": op[1]["gpa"] + 0x800}] for op in ops]
    ops.append(read(0x205000))
    w = world("shadow32")
    assert replay_ops(w, ops) is None
    sps = [sp for sp in w.sides["impl"].mmu.pages.values() if sp.gfn == 0x11 and sp.role.level == 1]
    assert [sp.role.quadrant for sp in sps] == [1]
    got = present_slots(w, table_gfn=0x11, direct=False)
    assert sorted(i for (_, i) in got) == [0, 1, 4, 5]


class NoPrefetch(ShadowMmu):
    """A prefetch that silently does nothing."""

    def direct_pte_prefetch(self, vcpu, sptep):
        pass

    def pte_prefetch(self, vcpu, gw, sptep):
        pass


class WrongGfnPrefetch(ShadowMmu):
    """An unsafe prefetch: each run mapped one gfn too far."""

    direct_prefetch_run_gfn = staticmethod(lambda first_gfn, k: first_gfn + k + 1)


def test_a_prefetch_doing_nothing_passes_every_oracle_but_completeness(monkeypatch):
    ops = tdp_ops() + [read(0x28000)]
    fam = families.get("mmu")
    f = replay_ops(fam.make_world(NoPrefetch, "tdp"), ops)
    assert f is not None and f.oracle == "prefetch completeness"
    monkeypatch.setattr(diff_mmu, "with_prefetch_probe", lambda cls: cls)
    assert replay_ops(fam.make_world(NoPrefetch, "tdp"), ops) is None  # safe, so unseen


def test_an_unsafe_prefetch_is_caught_without_completeness(monkeypatch):
    ops = tdp_ops() + [read(0x28000), read(0x29000)]
    fam = families.get("mmu")
    f = replay_ops(fam.make_world(WrongGfnPrefetch, "tdp"), ops)
    assert f is not None and f.oracle in ("prefetch completeness", "kernel BUG")
    monkeypatch.setattr(diff_mmu, "with_prefetch_probe", lambda cls: cls)
    f = replay_ops(fam.make_world(WrongGfnPrefetch, "tdp"), ops)
    assert f is not None and f.oracle in ("kernel BUG", "host page", "auditor: cache"), f


# -- proofs --------------------------------------------------------------------------
OBS = registry.load_all()


def test_prefetch_proofs_have_their_expected_verdicts():
    for name in ("prefetch.window_in_page", "prefetch.v3_loop_visits_window",
                 "prefetch.direct_gfn_level1_only"):
        o = OBS[name]
        v = o.run()
        assert o.family == "prefetch" and v.verdict == o.expected, (name, v)
    v = OBS["prefetch.v3_loop_visits_window"].run()
    assert v.verdict == registry.COUNTEREXAMPLE and "(window slot 7) is never visited" in v.detail
    assert "the one slot missed is window slot 7" in v.detail


def test_prefetch_proofs_can_fail():
    class BadWindow(ShadowMmu):
        pte_prefetch_window = staticmethod(lambda i: (i & ~7, (i & ~7) + 9))

    v = OBS["prefetch.window_in_page"].run(BadWindow)
    assert v.verdict == registry.COUNTEREXAMPLE and "index" in v.detail
    # a derivation with no level shift makes sp->gfn + index right above level 1 too
    no_shift = variants.get("gfn:no-level-shift").build(ShadowMmu)
    v = OBS["prefetch.direct_gfn_level1_only"].run(no_shift)
    assert v.verdict == registry.COUNTEREXAMPLE and "level 2" in v.detail


def test_shadow_direct_page_of_a_4mb_guest_page():
    """A 32-bit guest's 4MB page (PDE 1, clean) read at gva 0x601000: the direct page of
    its upper 2MB half (gfn 0x200, quadrant 1) gets index 1; the merged form maps 0 and
    2..7 read-only (the guest page is clean), 2.6.36 only the run before the fault."""
    ops = shadow32_ops() + [
        ["access", {"vcpu": 0, "addr": 0x10004, "kind": "write", "user": False,
                    "value": 0x87, "size": 4}],
        read(0x601000)]
    w = world("shadow32")
    assert replay_ops(w, ops) is None
    got = present_slots(w, direct=True)
    assert sorted(i for (g, i) in got if g == 0x200) == list(range(8))
    assert not any(got[(0x200, i)] & PT_WRITABLE_MASK for i in range(8))
    f = replay_ops(world("shadow32", "prefetch:no-trailing-flush"), ops)
    assert f is not None and f.oracle == "prefetch completeness"
    assert "slot 2 (window slot 2)" in f.message and "slot 0 (window" not in f.message


def test_no_tdp_prefetch_without_host_accessed_bits():
    """shadow_accessed_mask 0 (EPT without A/D bits): direct_pte_prefetch does nothing,
    and spec/prefetch.py, given the same parameter, expects nothing."""
    class NoAccessedBit(ShadowMmu):
        shadow_accessed_mask = 0

    ops = tdp_ops() + [read(0x28000)]
    w = families.get("mmu").make_world(NoAccessedBit, "tdp")
    assert replay_ops(w, ops) is None
    assert sorted(i for (g, i) in present_slots(w) if 40 <= i < 48) == [40]


# -- bench ---------------------------------------------------------------------------
def test_prefetch_bench_direction_on_a_small_region():
    from diff.bench import bench_prefetch, render

    rep = bench_prefetch(regions=(64 << 12,))
    rows = {(r["mode"], r["pattern"]): r["faults"] for r in rep["rows"]}
    seq = rows[("tdp", "sequential")]
    assert seq["none"] == 64 and seq["merged"] == 8  # one fault per window of 8
    assert seq["merged"] < seq["prefetch:no-trailing-flush"] <= seq["none"]
    assert seq["prefetch:v3-2010"] <= seq["none"]
    rnd = rows[("tdp", "random")]
    assert rnd["merged"] < rnd["prefetch:no-trailing-flush"] <= rnd["none"]
    shadow = rows[("shadow64", "sequential")]
    assert shadow["merged"] < shadow["none"] and shadow["merged"] == 8
    text = render(rep)
    assert "256 KB" in text and "c6cecc4b9324" in text
