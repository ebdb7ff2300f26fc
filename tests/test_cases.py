"""Every must-catch variant is caught, on a fixed op list.

tests/cases/ keeps one saved counterexample per must-catch variant
(tests/make_cases.py hunts them with `mmuspec diff`'s campaigns and writes
them; `make cases` refreshes the missing and stale ones).  Here each case
is replayed, never searched for: on the variant a discrepancy fires at its
last op, from an oracle in the variant's caught_by (and the pinned oracle,
mode, message or op of tests/make_cases.PINS); on the plain impl it is
clean; it is short (at most make_cases.max_ops ops: what shrinking leaves);
`mmuspec replay` reproduces it (exit 1, and 0 with --impl); and the pytest
file generated from it fails while the bug is there.  Search belongs to
`mmuspec check`, `mmuspec zoo` and `make cases`.
"""

import io
import json
import os

import pytest

from diff import counterexample, families
from impl import variants
from mmuspec import cli
from tests import make_cases as M

MUST_CATCH = [v.qualname for v in M.must_catch()]


def _case(name):
    v = variants.get(name)
    path = M.case_path(v)
    if not os.path.exists(path):
        pytest.fail(f"{name} has no saved counterexample {os.path.relpath(path, M.ROOT)}: "
                    f"run `{M.MAKE}`, which hunts it and writes the case (then commit it)")
    data = counterexample.load(path)
    ok, why = families.get(data["family"]).availability()
    if not ok:  # a live family's case on a host without a usable /dev/kvm
        pytest.skip(f"{name}: family {data['family']} cannot run here: {why}")
    return v, path, data


@pytest.mark.parametrize("name", MUST_CATCH)
def test_case_catches_its_variant_and_not_the_plain_impl(name):
    v, path, data = _case(name)
    problems, failure = M.check_case(v, data)
    assert not problems, (f"tests/cases/{M.case_name(v)} no longer shows {name}: {'; '.join(problems)}; "
                          f"refresh it with `{M.MAKE}`")
    assert failure.step == len(data["ops"]) - 1 and failure.oracle in v.caught_by


@pytest.mark.parametrize("name", MUST_CATCH)
def test_case_replays_through_the_cli_and_its_pytest_file(name, capsys):
    v, path, data = _case(name)
    out = io.StringIO()
    assert cli.main(["replay", path, "--json"], out=out) == 1, capsys.readouterr().err
    rec = json.loads(out.getvalue())
    assert rec["reproduced"] and rec["variant"] == name and rec["oracle"] in v.caught_by
    assert rec["step"] == len(data["ops"]) - 1
    assert cli.main(["replay", path, "--impl"], out=io.StringIO()) == 0
    # The standalone pytest file `--save` writes for this counterexample fails
    # while the bug is there.
    src = counterexample.to_pytest(data)
    ns = {}
    exec(compile(src, f"test_cex_{name}.py", "exec"), ns)
    (test,) = [f for n, f in ns.items() if n.startswith("test_") and callable(f)]
    with pytest.raises(AssertionError, match=r"step \d+ \["):
        test()


def test_every_case_file_is_a_must_catch_variants():
    stray = M.orphans()
    assert not stray, (f"tests/cases/ holds {', '.join(stray)}, which name no registered must-catch "
                       f"variant: `{M.MAKE}` removes them")


def test_pins_and_bounds_name_registered_variants():
    reg = variants.load_all()
    assert set(M.PINS) <= {n for n, v in reg.items() if v.must_catch}
    assert set(M.MAX_OPS_BY_VARIANT) <= set(reg)
    for name, pin in M.PINS.items():
        v = reg[name]
        if "mode" in pin:
            assert pin["mode"] in families.for_variant(v).modes, name
        if "oracle" in pin:
            assert pin["oracle"] in v.caught_by, name


def test_the_checks_reject_a_case_that_no_longer_shows_its_variant():
    """check_case is what decides that a case must be hunted again."""
    v, _, data = _case("rmap:next-after-drop")
    assert M.check_case(v, data)[0] == []
    assert M.check_case(v, dict(data, ops=data["ops"][:-1]))[0]           # no discrepancy left
    assert M.check_case(v, dict(data, ops=data["ops"] + data["ops"]))[0]  # not at its last op
    assert "not of" in M.check_case(v, dict(data, variant="rmap:ext-off-by-one"))[0][0]
    other = variants.get("walk:d-on-read")
    assert any("family" in p for p in M.check_case(other, dict(data, variant=other.qualname))[0])


def test_make_cases_hunts_only_what_is_missing_or_stale(tmp_path, monkeypatch):
    """The tool end to end on the cheapest variant (found in well under a
    second): a missing case is hunted and written, a good one is left alone,
    a stale one is hunted again; --check hunts nothing and names an orphan."""
    from diff import jobs

    name = "rmap:next-after-drop"
    hunted = []
    real = jobs.run_jobs

    def counting(todo, **kw):
        hunted.extend(j.variant for j in todo)
        return real(todo, **kw)

    monkeypatch.setattr(jobs, "run_jobs", counting)
    (tmp_path / "gone-variant.json").write_text("{}")
    log = []

    def make(**kw):
        return M.make_cases([name], budget=10, workers=1, cases_dir=str(tmp_path), log=log.append,
                            shrink_seconds=0.2, **kw)

    # (a hunt whose failure is not a good case tries the next seed: count hunts, not seeds)
    assert make() == {name: []} and set(hunted) == {name}, log
    path = tmp_path / M.case_name(variants.get(name))
    data = counterexample.load(path)
    assert data["variant"] == name and len(data["ops"]) <= M.max_ops(variants.get(name))
    first = len(hunted)
    assert make() == {name: []} and len(hunted) == first  # good: not hunted again
    data["ops"] = data["ops"][:-1]
    path.write_text(json.dumps(data))
    assert make() == {name: []} and len(hunted) > first, log
    assert M.check_file(variants.get(name), str(path))[0] == []
    hunts = len(hunted)
    # --check over every variant hunts nothing, and names the orphan and the missing cases
    got = M.make_cases(check_only=True, cases_dir=str(tmp_path), log=log.append)
    assert len(hunted) == hunts and got[name] == [] and all(got[n] == ["missing"] for n in got if n != name)
    assert any("orphan: gone-variant.json" in line for line in log)
    assert M.main(["--check", "--dir", str(tmp_path)]) == 1
    assert M.main(["no-such:variant", "--check"]) == 2
