"""Each rmap oracle is shown to fire: a short, hand-written op list per oracle.

The campaigns in test_rmap_diff.py show every variant is caught by *some*
oracle; this file pins that each oracle by name catches the bug it is for, so
no comparison in diff/rmap.py is a check nothing can trip.
"""

import pytest

from diff import families
from diff.core import replay_ops
from impl import variants
from spec.consts import PT_ACCESSED_MASK, PT_DIRTY_MASK, PT_PRESENT_MASK, PT_USER_MASK, PT_WRITABLE_MASK

P = PT_PRESENT_MASK | PT_USER_MASK
SETUP = ["kvm_mmu_setup", {"pte_list_ext": 3, "shadow_accessed": True}]


def add(spte, index=0, level=1):
    return ["rmap_add", {"slot": 0, "level": level, "index": index, "spte": spte}]


def key(**kw):
    return dict({"slot": 0, "level": 1, "index": 0}, **kw)


CASES = {
    # young in the first spte, old in the last: "young = last" says False.
    "walker return": ("rmap:age-young-is-last",
                      [SETUP, add(P | PT_ACCESSED_MASK | 0x1000), add(P | 0x2000),
                       ["kvm_age_rmapp", key()]]),
    # three young sptes fill a desc; both say young, but slot 2 keeps its A bit.
    "spte memory": ("rmap:ext-off-by-one",
                    [SETUP, add(P | PT_ACCESSED_MASK | 0x1000), add(P | 0x2000),
                     add(P | PT_ACCESSED_MASK | 0x3000),
                     ["kvm_age_rmapp", key()]]),
    # a hole in slot 0 frees a desc that still holds entries.
    "rmap contents": ("rmap:remove-leaves-hole",
                      [SETUP, add(P | 0x1000), add(P | 0x2000), ["drop_spte", {"spte": 0x10000000}]]),
    # an emptied desc unlinked but never freed.
    "pte_list structure": ("rmap:leak-empty-desc",
                           [SETUP, add(P | 0x1000), add(P | 0x2000),
                            ["drop_spte", {"spte": 0x10000000}], ["drop_spte", {"spte": 0x10000008}]]),
    # a dirty spte repointed by change_pte without reporting the old pfn dirty.
    "host A/D tracking": ("rmap:set-pte-no-track",
                          [SETUP, add(P | PT_DIRTY_MASK | PT_ACCESSED_MASK | 0x1000),
                           ["kvm_set_pte_rmapp", key(host_writable=False, new_pfn=7)]]),
    # a one-entry desc: dropping it frees the desc, rmap_get_next reads it after free.
    "kernel BUG": ("rmap:next-after-drop",
                   [SETUP, add(P | 0x1000), add(P | 0x2000), ["drop_spte", {"spte": 0x10000008}],
                    ["kvm_unmap_rmapp", key()]]),
}


@pytest.mark.parametrize("oracle", sorted(CASES))
def test_oracle_fires_on_its_bug_and_not_on_the_plain_impl(oracle):
    name, ops = CASES[oracle]
    fam = families.get("rmap")
    assert replay_ops(fam.world(None), ops) is None
    failure = replay_ops(fam.world(variants.get(name)), ops)
    assert failure is not None and failure.oracle == oracle, failure
    assert failure.step == len(ops) - 1


def test_use_after_free_is_named():
    name, ops = CASES["kernel BUG"]
    failure = replay_ops(families.get("rmap").world(variants.get(name)), ops)
    assert "UseAfterFree" in failure.message
