"""Shared helpers of the family tests: saved cases instead of search.

Each must-catch variant is shown caught on a fixed op list, its saved case
in tests/cases/ (tests/test_cases.py checks every one; `make cases` makes and
refreshes them).  Search belongs to `mmuspec check`, `mmuspec zoo` and
`make cases`; a test runs at most one round of a campaign per mode, as a
smoke that the machine still generates and its oracles hold on the plain
impl (or on a sound variant).
"""

from diff import campaign, counterexample
from impl import variants


def one_round(family, variant=None, mode=None, steps=campaign.DEFAULT_STEPS, seed=0, examples=None):
    """A campaign of one round (EXAMPLES_PER_ROUND examples) in `mode`, or in
    each of the family's modes when `mode` is None; `examples`: rounds until at
    least that many examples ran (tested: sampled)."""
    return campaign.run_campaign(family, variant, seed=seed, budget=0, steps=steps, mode=mode,
                                 min_examples=examples or campaign.EXAMPLES_PER_ROUND,
                                 first_round=campaign.EXAMPLES_PER_ROUND)


def quick_shrink(monkeypatch, seconds=0.5):
    """Cap Hypothesis' shrinking of a failure found in this process at `seconds`
    (a stateful shrink can take 10x the search; diff.core.minimize_ops still
    makes the op list 1-minimal): for the tests of the search machinery."""
    real = campaign._cap_hypothesis_shrinking
    monkeypatch.setattr(campaign, "_cap_hypothesis_shrinking", lambda s: real(min(s, seconds)))


def case_result(name):
    """The saved case of variant `name` as the CampaignResult of a campaign that
    found it: replayed, so oracle, message and step are the model's of today."""
    from tests import make_cases

    v = variants.get(name)
    data = counterexample.load(make_cases.case_path(v))
    _, _, failure = counterexample.replay(data)
    assert failure is not None, f"{name}: its saved case no longer fails: run `{make_cases.MAKE}`"
    return campaign.CampaignResult(
        data["family"], name, data["mode"], data.get("seed", 0), 0.0, status="discrepancy",
        examples=1, steps=len(data["ops"]), rules=sorted({op[0] for op in data["ops"]}),
        seconds=0.0, time_to_failure=0.0, shrink_seconds=0.0, oracle=failure.oracle,
        message=failure.message, failing_step=failure.step, ops=data["ops"], reproduced=True,
        per_mode={data["mode"]: {"examples": 1, "steps": len(data["ops"]), "seconds": 0.0}})


def canned_campaigns(monkeypatch):
    """From here on, a campaign of a variant returns its saved case (no search),
    and a plain campaign runs one round per mode whatever its budget: for the
    tests of what the commands do with a result (output, saving, exit codes)."""
    real = campaign.run_campaign

    def run_campaign(family, variant=None, seed=0, budget=30.0, steps=campaign.DEFAULT_STEPS,
                     mode=None, **kw):
        if variant is not None and variants.get(variant).must_catch:
            return case_result(variant)
        kw.pop("min_examples", None)
        return real(family, variant, seed=seed, budget=0, steps=steps, mode=mode, **kw)

    monkeypatch.setattr(campaign, "run_campaign", run_campaign)


def assert_caught_and_replayable(family, name, tmp_path, budget=None, steps=None, max_ops=None, mode=None):
    """The variant's saved case is good (tests/make_cases.check_case: caught at
    its last op by one of its oracles, clean on the plain impl, short), and
    saving it writes JSON that loads and replays and a pytest file.  No search:
    `budget` and `steps` are ignored (they are the old search helper's);
    `max_ops` and `mode`, when given, are checked.  Returns the CampaignResult."""
    from tests import make_cases

    v = variants.get(name)
    path = make_cases.case_path(v)
    problems, _ = make_cases.check_file(v, path)
    assert not problems, f"{name}: {'; '.join(problems)}: run `{make_cases.MAKE}`"
    res = case_result(name)
    assert res.family == family, (res.family, family)
    assert max_ops is None or len(res.ops) <= max_ops, f"{len(res.ops)} ops"
    assert mode is None or res.mode == mode, (res.mode, mode)
    json_path, py_path = counterexample.save(res, tmp_path)
    data = counterexample.load(json_path)
    assert counterexample.replay(data)[2].oracle == res.oracle
    assert counterexample.replay(data, variant=None)[2] is None
    assert "def test_" in open(py_path).read()
    return res
