"""pte_list_add / pte_list_remove against the kernel's semantics (facts section 3)."""

import pytest

from spec.consts import PTE_LIST_EXT_CHOICES
from spec.errors import KvmBug, UseAfterFree
from spec.memory import SHADOW_PT_BASE, KernelMemory, RmapHead
from spec.pte_list import (
    PteListOps, desc_is_packed, desc_remove_slot, pte_list_decode, pte_list_is_desc,
    pte_list_violations,
)

S = [SHADOW_PT_BASE + 8 * k for k in range(64)]


@pytest.fixture(params=PTE_LIST_EXT_CHOICES, ids=lambda e: f"ext{e}")
def ops(request):
    return PteListOps(KernelMemory(request.param))


def entries(ops, head):
    return pte_list_decode(ops.mem, head.val)[0]


def test_forms_and_tag(ops):
    head = RmapHead()
    assert ops.pte_list_add(S[0], head) == 0
    assert head.val == S[0] and not pte_list_is_desc(head.val)  # single: the bare pointer
    assert ops.pte_list_add(S[1], head) == 1
    assert pte_list_is_desc(head.val) and entries(ops, head) == [S[0], S[1]]


def test_add_count_is_the_kernels(ops):
    """The count skips a full last desc when a new desc is appended (kernel quirk)."""
    ext, head = ops.ext, RmapHead()
    counts = [ops.pte_list_add(S[k], head) for k in range(2 * ext + 2)]
    # Worked by hand from mmu.c 3.4: a full head desc with no `more` counts 0.
    expected = {3: [0, 1, 2, 0, 4, 5, 3, 7], 4: [0, 1, 2, 3, 0, 5, 6, 7, 4, 9]}[ext]
    assert counts == expected
    assert entries(ops, head) == S[: 2 * ext + 2]


def test_remove_fills_hole_from_last(ops):
    head = RmapHead()
    for k in range(ops.ext):
        ops.pte_list_add(S[k], head)
    ops.pte_list_remove(S[0], head)
    desc = ops.mem.desc(head.val & ~1)
    assert desc.sptes[0] == S[ops.ext - 1] and desc.sptes[ops.ext - 1] == 0
    assert pte_list_violations(ops.mem, head.val) == []


def test_desc_form_never_collapses_to_single(ops):
    head = RmapHead()
    ops.pte_list_add(S[0], head)
    ops.pte_list_add(S[1], head)
    ops.pte_list_remove(S[0], head)
    assert pte_list_is_desc(head.val) and entries(ops, head) == [S[1]]
    ops.pte_list_remove(S[1], head)
    assert head.val == 0 and ops.mem.desc_frees == 1


def test_empty_middle_desc_is_unlinked(ops):
    head = RmapHead()
    n = 3 * ops.ext
    for k in range(n):
        ops.pte_list_add(S[k], head)
    for k in range(ops.ext, 2 * ops.ext):  # empty the second desc
        ops.pte_list_remove(S[k], head)
    _, descs = pte_list_decode(ops.mem, head.val)
    assert len(descs) == 2 and sorted(entries(ops, head)) == sorted(S[: ops.ext] + S[2 * ops.ext: n])


def test_remove_absent_is_a_bug(ops):
    head = RmapHead()
    with pytest.raises(KvmBug, match="0->BUG"):
        ops.pte_list_remove(S[0], head)
    ops.pte_list_add(S[0], head)
    with pytest.raises(KvmBug, match="1->BUG"):
        ops.pte_list_remove(S[1], head)
    ops.pte_list_add(S[1], head)
    with pytest.raises(KvmBug, match="many->BUG"):
        ops.pte_list_remove(S[2], head)


def test_freed_desc_is_poisoned(ops):
    head = RmapHead()
    ops.pte_list_add(S[0], head)
    ops.pte_list_add(S[1], head)
    desc = ops.mem.desc(head.val & ~1)
    ops.pte_list_remove(S[0], head)
    ops.pte_list_remove(S[1], head)
    with pytest.raises(UseAfterFree):
        ops.mem.slot(desc, 0)


@pytest.mark.parametrize("ext", PTE_LIST_EXT_CHOICES)
def test_desc_remove_slot_every_shape(ext):
    """Searched: every packed desc of every fill and every removal position."""
    for fill in range(1, ext + 1):
        slots = tuple(S[k] if k < fill else 0 for k in range(ext))
        for i in range(fill):
            new = desc_remove_slot(slots, i)
            assert sorted(x for x in new if x) == sorted(x for x in slots if x and x != slots[i])
            assert desc_is_packed(new) or not any(new)


def test_structure_checker_catches_a_hole():
    mem = KernelMemory(3)
    ops, head = PteListOps(mem), RmapHead()
    for k in range(3):
        ops.pte_list_add(S[k], head)
    mem.desc(head.val & ~1).sptes[0] = 0
    assert any("not packed" in m for m in pte_list_violations(mem, head.val))


def test_structure_checker_sees_a_lost_tag():
    """A desc head whose tag bit was lost reads as a single spte: the check
    compares the tag with what the head points at."""
    mem = KernelMemory(3)
    ops, head = PteListOps(mem), RmapHead()
    for k in range(2):
        ops.pte_list_add(S[k], head)
    assert pte_list_violations(mem, head.val) == []
    assert any("untagged" in m for m in pte_list_violations(mem, head.val & ~1))
    mem.desc(head.val & ~1).sptes[1] = head.val & ~1  # a slot holding a desc address
    assert any("desc slot holds" in m for m in pte_list_violations(mem, head.val))


def test_a_looping_desc_chain_is_a_livelock_not_a_hang():
    """pte_list_add and pte_list_remove walk the chain with a bound of the live
    descs (spec/termination.py): a chain that loops is reported, not followed forever."""
    from spec.errors import Livelock

    mem = KernelMemory(3)
    ops, head = PteListOps(mem), RmapHead()
    for k in range(7):
        ops.pte_list_add(S[k], head)
    first = mem.desc(head.val & ~1)
    mem.desc(first.more).more = first.addr  # desc 2 -> desc 1: a cycle
    with pytest.raises(Livelock):
        ops.pte_list_add(S[8], head)
    with pytest.raises(Livelock):
        ops.pte_list_remove(S[40], head)
