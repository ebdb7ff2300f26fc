"""The CLI contract: exit codes 0/1/2/3, one-line errors, --json, save and replay.

Most commands run in this process (cli.main, as the `mmuspec` entry point
calls it); a few run as processes, where the process is the point (the
entry point, exit status and stderr of a real run, progress when piped, a
generated pytest file run by pytest).  Searches are the cheapest variants'
(found in well under a second) or none: counterexamples come from
tests/cases/ where the search is not what is tested.
"""

import io
import json
import os
import subprocess
import sys

import pytest

from impl import variants
from mmuspec import check, cli
from proofs import registry, symbolic
from tests.variant_checks import canned_campaigns, quick_shrink

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(*argv):
    out = io.StringIO()
    code = cli.main(list(argv), out=out)
    return code, out.getvalue()


def run_process(*argv):
    env = dict(os.environ, PYTHONPATH=ROOT)
    p = subprocess.run([sys.executable, "-m", "mmuspec", *argv], capture_output=True, text=True,
                       cwd=ROOT, env=env, timeout=300)
    return p.returncode, p.stdout, p.stderr


def test_list_names_everything():
    code, out = run("list", "--json")
    data = json.loads(out)
    assert code == 0
    assert "rmap" in [f["name"] for f in data["families"]]
    assert {"rmap:next-after-drop", "rmap:ext-off-by-one"} <= {v["name"] for v in data["variants"]}
    assert "pte_list.tag_separates" in [o["name"] for o in data["obligations"]]


BAD_USAGE = [
    ["diff", "--variant", "rmap:no-such"],
    ["diff", "--variant", "nocolon"],
    ["diff", "--family", "nosuch"],
    ["diff", "--budget", "-1"],
    ["diff", "--budget", "abc"],
    ["diff", "--seed", "x"],
    ["diff", "--steps", "0"],
    ["diff", "--family", "rmap", "--mode", "nosuch"],
    ["prove", "--variant", "rmap:no-such"],
    ["bench", "nosuch"],
    ["frobnicate"],
    [],
    ["diff", "--scheduler", "nonsense"],
    ["zoo", "--scheduler", "tcp://host"],
    ["check", "--scheduler", "tcp://127.0.0.1:99999"],
    ["check", "--workers", "0"],
    ["zoo", "--workers", "x"],
    ["zoo", "--family", "nosuch"],
    ["zoo", "--budget", "0"],
    ["zoo", "--database", "http://example.invalid/db"],
    ["diff", "--database", "redis://"],
    ["diff", "--database", "redis://127.0.0.1:6379/notanumber"],
    ["zoo", "--database", "somewhere", "--no-database"],
    ["check", "--database", "/dev/null"],
]


@pytest.fixture
def no_work(monkeypatch):
    """Any campaign, proof or symbolic search starting fails the test."""
    from diff import jobs

    def started(*a, **k):
        raise AssertionError("work started on bad usage")
    monkeypatch.setattr(jobs, "Runner", started)
    monkeypatch.setattr(check, "run_obligations", started)
    monkeypatch.setattr(symbolic, "run", started)


@pytest.mark.parametrize("argv", BAD_USAGE)
def test_bad_usage_is_one_line_and_exit_2(argv, no_work, capsys):
    code, out = run(*argv)
    err = capsys.readouterr().err
    assert code == 2, (argv, out, err)
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and err.startswith("mmuspec: error:")


@pytest.mark.parametrize("argv", [[], ["diff", "--budget", "abc"], ["zoo", "--family", "nosuch"]])
def test_bad_usage_of_the_real_process_is_one_line_and_exit_2(argv):
    code, out, err = run_process(*argv)
    assert code == 2, (argv, out, err)
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and err.startswith("mmuspec: error:")


def _bad_replay_files(tmp_path):
    (tmp_path / "notjson.json").write_text("{oops")
    (tmp_path / "other.json").write_text("[1, 2]")
    (tmp_path / "badop.json").write_text(json.dumps(
        {"mmuspec_counterexample": 1, "family": "rmap", "variant": None,
         "ops": [["kvm_mmu_setup", {"pte_list_ext": 3, "shadow_accessed": True}], ["no_such_op", {}]]}))
    (tmp_path / "badvariant.json").write_text(json.dumps(
        {"mmuspec_counterexample": 1, "family": "rmap", "variant": "rmap:gone", "ops": []}))
    return ("notjson.json", "other.json", "badop.json", "badvariant.json", "missing.json")


def test_replay_bad_files_exit_2(tmp_path, capsys):
    for name in _bad_replay_files(tmp_path):
        code, out = run("replay", str(tmp_path / name))
        err = capsys.readouterr().err
        assert code == 2, (name, err)
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_replay_bad_file_in_a_real_process_exits_2(tmp_path):
    _bad_replay_files(tmp_path)
    code, out, err = run_process("replay", str(tmp_path / "badop.json"))
    assert code == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_diff_plain_exits_0_and_variant_exits_1_and_replays(tmp_path, monkeypatch):
    code, out = run("diff", "--family", "rmap", "--budget", "0.01")
    assert code == 0 and "clean" in out
    # a real search, of a variant found in well under a second
    quick_shrink(monkeypatch)
    code, out = run("diff", "--variant", "rmap:next-after-drop", "--budget", "20", "--save", str(tmp_path))
    assert code == 1 and "DISCREPANCY" in out and "kvm_mmu_setup(PTE_LIST_EXT=" in out
    saved = sorted(p for p in os.listdir(tmp_path) if p.endswith(".json"))
    assert len(saved) == 1
    path = str(tmp_path / saved[0])
    assert run("replay", path)[0] == 1
    assert run("replay", path, "--impl")[0] == 0
    code, out = run("replay", path, "--json")
    assert code == 1 and json.loads(out)["reproduced"] is True
    # The generated pytest file fails while the bug is there.
    py = [p for p in os.listdir(tmp_path) if p.endswith(".py")][0]
    p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path / py)],
                       cwd=ROOT, capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=ROOT))
    assert p.returncode == 1 and "1 failed" in p.stdout


def test_diff_json_is_machine_readable(monkeypatch):
    canned_campaigns(monkeypatch)  # the variant's saved case, not a search
    code, out = run("diff", "--variant", "rmap:ext-off-by-one", "--budget", "20", "--json")
    data = json.loads(out)
    assert code == 1 and data[0]["status"] == "discrepancy" and data[0]["ops"]
    assert data[0]["variant"] == "rmap:ext-off-by-one" and data[0]["reproduced"] is True


def test_prove_exit_codes(monkeypatch):
    assert run("prove")[0] == 0  # every obligation has its expected verdict
    code, out = run("prove", "--variant", "rmap:remove-leaves-hole")
    assert code == 1 and "caught" in out
    fake = registry.Obligation("fake.unknown", "rmap", "z3 gives up", "for all inputs",
                               lambda cls, t: registry.Verdict(registry.UNKNOWN, "z3: timeout"))
    monkeypatch.setitem(registry.REGISTRY, "fake.unknown", fake)
    code, out = run("prove", "--family", "rmap", "--json")
    rows = {r["name"]: r for r in json.loads(out)}
    assert code == 3 and rows["fake.unknown"]["verdict"] == "unknown"
    assert rows["fake.unknown"]["status"] == "UNKNOWN"


def test_progress_is_plain_lines_when_piped():
    code, out, err = run_process("diff", "--family", "rmap", "--budget", "0.01")
    assert code == 0 and "\r" not in err


def _closed_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again: nothing listens there


def test_unreachable_scheduler_and_redis_are_one_line_errors(tmp_path, monkeypatch, capsys):
    from diff import jobs

    monkeypatch.setattr(jobs, "CONNECT_SECONDS", 2.0)  # dask retries a refused connection until then
    port = _closed_port()
    code = cli.main(["zoo", "--family", "walk", "--scheduler", f"tcp://127.0.0.1:{port}",
                     "--no-database", "--out", str(tmp_path / "zoo")], out=io.StringIO())
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert err.startswith(f"mmuspec: error: cannot connect to scheduler tcp://127.0.0.1:{port}")
    code = cli.main(["diff", "--family", "rmap", "--budget", "0.01",
                     "--database", f"redis://127.0.0.1:{port}"], out=io.StringIO())
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert err.startswith(f"mmuspec: error: cannot reach Redis at 127.0.0.1:{port}")


def test_diff_of_several_families_runs_on_a_local_cluster(monkeypatch, capsys):
    """No --family: a job per family on a LocalCluster (two worker processes),
    results in family order.  Trimmed to rmap and walk to stay quick."""
    from diff import families

    every = families.load_all
    monkeypatch.setattr(families, "load_all",
                        lambda: {n: f for n, f in every().items() if n in ("rmap", "walk")})
    code, out = run("diff", "--budget", "0.01", "--steps", "10", "--workers", "2", "--json")
    err = capsys.readouterr().err
    data = json.loads(out)
    assert code == 0 and [r["family"] for r in data] == ["rmap", "walk"], err
    assert all(r["status"] == "clean" and r["examples"] > 0 for r in data)
    assert "Traceback" not in err and "mmuspec diff:" not in err  # --json: no progress lines


# The zoo's search machinery, on variants found in well under a second.
ZOO_PICK = ("rmap:next-after-drop", "walk:d-on-read")


def test_zoo_in_process_saves_and_reports(tmp_path, monkeypatch, capsys):
    """zoo --workers 1 runs here; the table, summary.json and saved counterexamples;
    again on the same database, every failure is replayed, not searched for.
    (A sound variant in the zoo: the next test.)"""
    from mmuspec import zoo

    monkeypatch.setattr(zoo, "_zoo_variants", lambda family=None: [variants.get(n) for n in ZOO_PICK])
    quick_shrink(monkeypatch)
    out_dir = tmp_path / "run"
    code, out = run("zoo", "--workers", "1", "--budget", "8", "--steps", "60",
                    "--database", str(tmp_path / "db"), "--out", str(out_dir))
    assert code == 0, (out, capsys.readouterr().err)
    summary = json.loads((out_dir / "summary.json").read_text())
    assert summary["zoo_kill_rate"] == "2/2" and summary["workers"] == 1
    assert {e["variant"] for e in summary["zoo"]} == set(ZOO_PICK)
    for e in summary["zoo"]:
        assert e["variant"] in out
        assert e["found"] == "search"
        assert [os.path.dirname(p) for p in e["saved"]] == [str(out_dir / "counterexamples")] * 2
    code, out = run("zoo", "--workers", "1", "--budget", "8", "--steps", "60",
                    "--database", str(tmp_path / "db"), "--out", str(tmp_path / "again"), "--json")
    caught = [e for e in json.loads(out)["zoo"] if e["caught"]]
    assert code == 0 and caught and all(e["found"] == "database" for e in caught)


def test_zoo_symbolic_column_and_sound_variants(tmp_path, monkeypatch, capsys):
    """zoo --symbolic adds each variant's CrossHair verdict; a sound patch passes
    and is left out of the kill rate (two zap variants: one must be caught,
    one is the sound single-bit generation)."""
    from mmuspec import zoo

    picked = [variants.get("zap:no-root-reload"), variants.get("zap:single-bit-gen")]
    monkeypatch.setattr(zoo, "_zoo_variants", lambda family=None: picked)
    # the search column comes from the saved case (a search of the budget's
    # length can miss on a slow machine): this test is about the symbolic one
    canned_campaigns(monkeypatch)
    code = cli.main(["zoo", "--workers", "1", "--budget", "2", "--steps", "10", "--no-database",
                     "--out", str(tmp_path / "z"), "--symbolic", "2", "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert code == 0, summary
    assert summary["zoo_kill_rate"] == "1/1"
    by = {e["variant"]: e for e in summary["zoo"]}
    assert by["zap:single-bit-gen"]["caught"] is False and by["zap:single-bit-gen"]["expected"] == "passes"
    assert by["zap:no-root-reload"]["symbolic"].startswith("caught: ")
    assert by["zap:single-bit-gen"]["symbolic"] == "no counterexample within the budget"


def test_replay_reads_a_saved_symbolic_counterexample(tmp_path, capsys):
    """prove --symbolic --save writes it; replay reruns it concretely: exit 1 on the
    variant, 0 on the plain impl, 2 for a foreign file (that one as a process)."""
    code, out = run("prove", "--symbolic", "--variant", "zap:no-root-reload",
                    "--per-function", "3", "--save", str(tmp_path))
    assert code == 1, capsys.readouterr().err
    (path,) = [p for p in tmp_path.iterdir() if p.suffix == ".json"]
    assert run("replay", str(path))[0] == 1
    assert run("replay", str(path), "--impl")[0] == 0
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"mmuspec_symbolic_counterexample": 1, "target": "nope"}))
    code, out, err = run_process("replay", str(bad))
    assert code == 2 and "not a readable symbolic counterexample" in err and "Traceback" not in err
