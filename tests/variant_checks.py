"""Shared assertion of the family tests: a variant is caught, shrunk, saved and replayable."""

from diff import counterexample
from diff.campaign import run_campaign
from impl import variants


def assert_caught_and_replayable(family, name, tmp_path, budget, steps, max_ops, mode=None):
    """Run a campaign on variant `name`; check the counterexample end to end.

    Caught, reproduced on replay, at most `max_ops` ops after shrinking, fired
    by one of the variant's declared oracles, saved as JSON that replays
    against the variant and passes against the plain impl, and as a pytest
    file.  Returns the CampaignResult for family-specific assertions.
    """
    v = variants.get(name)
    res = run_campaign(family, name, seed=0, budget=budget, steps=steps, mode=mode)
    assert res.status == "discrepancy", f"{name} not caught"
    assert res.reproduced
    assert res.oracle in v.caught_by, (res.oracle, v.caught_by)
    assert len(res.ops) <= max_ops, f"shrinking should leave a handful of ops, not {len(res.ops)}"
    json_path, py_path = counterexample.save(res, tmp_path)
    data = counterexample.load(json_path)
    _, _, failure = counterexample.replay(data)
    assert failure is not None and failure.oracle == res.oracle
    _, _, clean = counterexample.replay(data, variant=None)  # the plain impl passes it
    assert clean is None
    assert "def test_" in open(py_path).read()
    return res
