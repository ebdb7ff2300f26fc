"""The flush bounded search (proofs/flush_search.py) on a tiny bound and on fixed
sequences: plain impl and spec clean, each flush variant caught by the sequence
the depth-3 search reports first for it.  The full search is
`python -m proofs.flush_search` (README: proofs/README.md)."""

import pytest

from diff import families
from impl import variants
from proofs import flush_search as F
from spec.mmu import ShadowMmu as SpecShadowMmu

PLAIN = families.get("flush").impl_base


def _cls(qual):
    var = variants.get(qual)
    return families.for_variant(var).impl_class(var)


def test_plain_impl_and_spec_are_clean_at_depth_one():
    for cls, spec_side in ((PLAIN, False), (SpecShadowMmu, True)):
        for tdp in (False, True):
            res = F.search(cls, 1, spec_side, tdp)
            assert res.failures == 0, F.render(res, "x")
            assert res.sequences == 16  # 13 ops of vCPU 0 and 3 VM-wide ones (vCPU 1 by symmetry)


def test_a_variant_is_caught_by_the_depth_two_search():
    res = F.search(_cls("flush:notifier-unmap-no-flush"), 2, stop_at_first=True)
    assert res.flush == 1
    seq, fail, kind, _ = res.first
    assert [op[0] for op in seq] == ["read", "unmap"] and kind == "flush"
    assert "not present" in fail


R = lambda v, gva: ("read", v, gva)
SEQS = {
    "flush:zap-commit-no-flush": (R(0, 0x40200000), ("flood", 1, F.PD2, 2)),
    "flush:notifier-unmap-no-flush": (R(0, 0x1000), ("unmap", None, F.DATA_A)),
    "flush:get-dirty-log-no-flush": (R(0, 0x1000), ("get_dirty_log", None)),
    "flush:pte-write-ignores-need-remote-flush": (R(0, 0x200000), ("store", 1, F.PD, 1, None)),
    "flush:spte-update-w-only-no-flush": (R(0, 0x2000), R(0, 0x200000)),
}


@pytest.mark.parametrize("qual", sorted(SEQS))
def test_each_flush_variant_leaves_an_unflushed_change(qual):
    seq = SEQS[qual]
    for cls, spec_side in ((PLAIN, False), (SpecShadowMmu, True)):
        fail, _, log = F.run_sequence(cls, seq, spec_side)
        assert fail is None, (fail, log)
    fail, kind, log = F.run_sequence(_cls(qual), seq)
    assert kind == "flush" and fail.startswith("no flush"), (fail, log)


def test_bad_usage_exits_2(capsys):
    assert F.main(["--depth", "0"]) == 2
    assert F.main(["--variant", "flush:no-such-variant"]) == 2
    assert F.main(["--spec", "--variant", "flush:zap-commit-no-flush"]) == 2
    assert F.main(["--bogus"]) == 2
