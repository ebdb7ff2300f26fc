"""The walk obligations: proved on impl/walk.py's helpers, a counterexample on the
pse36-dropped variant, and each obligation able to fail on a helper broken for it."""

import pytest

from diff import families
from impl import variants
from impl.walk import PagingTmpl
from proofs import registry

OBS = registry.load_all()
WALK_OBS = ("walk.large_page_gfn_2m", "walk.large_page_gfn_1g", "walk.large_page_gfn_4m_pse36",
            "walk.pt_index_fields")


def test_walk_obligations_are_registered_for_the_family():
    for name in WALK_OBS:
        assert OBS[name].family == "walk" and OBS[name].expected == registry.PROVED
        assert OBS[name].reach.startswith("for all inputs")


@pytest.mark.parametrize("name", WALK_OBS)
def test_walk_obligation_proves(name):
    v = OBS[name].run(timeout_ms=60_000)
    assert v.verdict == registry.PROVED, (name, v)


def test_pse36_dropped_gives_a_counterexample_on_the_4mb_obligation():
    cls = families.get("walk").impl_class(variants.get("walk:pse36-dropped"))
    v = OBS["walk.large_page_gfn_4m_pse36"].run(cls)
    assert v.verdict == registry.COUNTEREXAMPLE
    assert "4MB page" in v.detail and "pte=" in v.detail
    pte = int(v.detail.split("pte=")[1].split()[0], 16)
    assert pte & (0xF << 13), "the counterexample needs PSE-36 bits"
    # The variant touches no other helper: the other obligations still prove on it.
    for name in WALK_OBS:
        if name != "walk.large_page_gfn_4m_pse36":
            assert OBS[name].run(cls).verdict == registry.PROVED, name


class ShiftedIndex(PagingTmpl):
    def PT_INDEX(self, addr, level):
        if self.PTTYPE == 64 and level == 3:
            return (addr >> 29) & 511  # overlaps the level-2 field, drops bit 38
        return super().PT_INDEX(addr, level)


class NarrowOffset(PagingTmpl):
    def PT_LVL_OFFSET_MASK(self, level):
        return super().PT_LVL_OFFSET_MASK(level) & ~(1 << 20)  # loses address bit 20


class WideBase(PagingTmpl):
    def gpte_to_gfn_lvl(self, gpte, lvl):
        return (gpte & self.PT_LVL_ADDR_MASK(1)) >> 12  # keeps the reserved/PAT bits of a large page


@pytest.mark.parametrize("cls,name", [
    (ShiftedIndex, "walk.pt_index_fields"),
    (NarrowOffset, "walk.large_page_gfn_2m"),
    (NarrowOffset, "walk.large_page_gfn_1g"),
    (WideBase, "walk.large_page_gfn_2m"),
    (WideBase, "walk.large_page_gfn_4m_pse36"),
])
def test_each_obligation_can_fail(cls, name):
    assert OBS[name].run(cls).verdict == registry.COUNTEREXAMPLE
