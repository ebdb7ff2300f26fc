"""The gfn obligations: proved on the plain impl, a counterexample on each gfn variant
(printed in kernel values), and the quadrant and rmap obligations able to fail."""

import re

import pytest

from impl import variants
from impl.mmu import ShadowMmu
from proofs import gfn as gfn_proofs
from proofs import registry
from spec import written_sptes

OBS = registry.load_all()
GFN_OBS = ("gfn.derived_equals_recorded", "gfn.quadrant_selects_entries", "gfn.rmap_index_frames")
GFN_VARIANTS = ("gfn:lai-2010", "gfn:marcelo-2010", "gfn:pseudo-gfn-2m-mask", "gfn:no-level-shift")


def variant_class(name):
    return variants.get(name).build(ShadowMmu)


def test_gfn_obligations_are_registered_for_the_family():
    for name in GFN_OBS:
        o = OBS[name]
        assert o.family == "gfn" and o.expected == registry.PROVED
        assert o.reach.startswith("for all inputs")


def test_gfn_variants_are_registered():
    got = {v.qualname: v for v in variants.of_family("gfn")}
    assert set(got) == set(GFN_VARIANTS)
    assert got["gfn:lai-2010"].models == got["gfn:marcelo-2010"].models == "posted form"
    assert got["gfn:pseudo-gfn-2m-mask"].models == "2.6.35"
    assert got["gfn:no-level-shift"].models == "plausible"
    for v in got.values():
        assert v.caught_by == ("kernel BUG", "host page", "auditor: derived gfn",
                               "prefetch completeness", "proof gfn.derived_equals_recorded")
        assert set(v.replaces) <= {"kvm_mmu_page_derived_gfn", "direct_map_child_gfn", "fetch_direct_gfn"}
        cls = v.build(ShadowMmu)
        for m in v.replaces:  # still static methods: callable on the class with kernel arguments
            assert isinstance(cls.__dict__[m], staticmethod)


@pytest.mark.parametrize("name", GFN_OBS)
def test_gfn_obligation_proves_on_the_plain_impl(name):
    v = OBS[name].run(timeout_ms=60_000)
    assert v.verdict == registry.PROVED, (name, v)


def _hex_after(label, text):
    return int(re.search(label + r" (0x[0-9a-f]+)", text).group(1), 16)


@pytest.mark.parametrize("name,wrong,right", [
    # Lai's posting: the upper 2MB half of a 32-bit guest's 4MB page (no quadrant term).
    ("gfn:lai-2010", ["shadow 32-bit 4MB page L1", "TDP L2", "TDP L3", "shadow 64-bit 1GB page L1"],
     ["TDP L1", "shadow 2MB page L1"]),
    # The update fixes 32-bit shadow paging but not TDP's large entries.
    ("gfn:marcelo-2010", ["TDP L2", "TDP L3", "shadow 64-bit 1GB page L1",
                          "TDP L1 with a 2.6.35 role.quadrant"],
     ["TDP L1", "shadow 32-bit 4MB page L1", "shadow 2MB page L1"]),
    ("gfn:pseudo-gfn-2m-mask", ["TDP L2", "TDP L3"],
     ["TDP L1", "shadow 32-bit 4MB page L1", "shadow 64-bit 1GB page L1", "shadow 64-bit 1GB page L2"]),
    ("gfn:no-level-shift", ["TDP L2", "TDP L3", "shadow 64-bit 1GB page L2"],
     ["TDP L1", "shadow 32-bit 4MB page L1", "shadow 64-bit 1GB page L1"]),
])
def test_each_variant_gives_a_kernel_counterexample(name, wrong, right):
    cls = variant_class(name)
    v = OBS["gfn.derived_equals_recorded"].run(cls)
    assert v.verdict == registry.COUNTEREXAMPLE, (name, v)
    d = v.detail
    for word in ("level ", "role.quadrant ", "index ", "derived gfn 0x", "records gfn 0x", "sp->gfn 0x"):
        assert word in d, (word, d)
    assert re.search(r"\b(gpa|gva) 0x", d)
    assert _hex_after("derived gfn", d) != _hex_after("records gfn", d)
    wrong_part = d.split("Wrong in: ")[1].split(". Right in: ")[0].split("; ")
    right_part = d.split(". Right in: ")[1].split("; ")
    assert set(wrong) <= set(wrong_part), wrong_part
    assert set(right) <= set(right_part), right_part
    # The variants touch only the derived-gfn helpers: the other obligations hold on them.
    for other in GFN_OBS[1:]:
        assert OBS[other].run(cls).verdict == registry.PROVED, (name, other)


def test_lai_counterexample_is_the_upper_half_of_a_4mb_page():
    d = OBS["gfn.derived_equals_recorded"].run(variant_class("gfn:lai-2010")).detail
    first = d.split(". Wrong in")[0]
    assert "32-bit guest 4MB page" in first and "role.quadrant 1" in first
    gva = _hex_after("gva", first)
    assert gva & (1 << 21), "the upper 2MB half of the 4MB page"
    assert _hex_after("records gfn", first) - _hex_after("derived gfn", first) == 512


class QuadrantFrom32BitIndex(ShadowMmu):
    @staticmethod
    def role_quadrant(gaddr, level):  # reads the 32-bit index bits, not the 64-bit ones
        return (gaddr >> (12 + 10 * level)) & ((1 << level) - 1)


class WriteWithoutRounding(ShadowMmu):
    @staticmethod
    def written_spte_slots(page_offset, level, gpte_is_4_bytes):  # no `&= ~7` before the 2nd doubling
        page_offset <<= 1
        if level == 2:
            page_offset <<= 1
        return page_offset >> 12, (page_offset & 4095) >> 3, level


class WriteOneSpte(ShadowMmu):
    @staticmethod
    def written_spte_slots(page_offset, level, gpte_is_4_bytes):  # a 4MB PDE touches one spte only
        q, i, _ = written_sptes.written_spte_slots(page_offset, level, gpte_is_4_bytes)
        return q, i, 1


@pytest.mark.parametrize("cls", [QuadrantFrom32BitIndex, WriteWithoutRounding, WriteOneSpte])
def test_quadrant_obligation_can_fail(cls):
    v = OBS["gfn.quadrant_selects_entries"].run(cls)
    assert v.verdict == registry.COUNTEREXAMPLE
    assert "32-bit guest, gaddr 0x" in v.detail and "role.quadrant" in v.detail


def test_rmap_obligation_catches_subtracting_before_shifting():
    # (gfn - base_gfn) >> shift: wrong for a slot whose base is not frame-aligned.
    v = gfn_proofs.rmap_index_claims(lambda g, base, lvl: (g - base) >> (9 * (lvl - 1)), 60_000)
    assert v.verdict == registry.COUNTEREXAMPLE and "base_gfn 0x" in v.detail
    base = _hex_after("base_gfn", v.detail)
    level = int(v.detail.split()[1].rstrip(","))
    assert base % (1 << (9 * (level - 1))) != 0
