"""The CLI contract: exit codes 0/1/2/3, one-line errors, --json, save and replay."""

import io
import json
import os
import subprocess
import sys

import pytest

from mmuspec import cli
from proofs import registry

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


@pytest.mark.parametrize("argv", [
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
])
def test_bad_usage_is_one_line_and_exit_2(argv):
    code, out, err = run_process(*argv)
    assert code == 2, (argv, out, err)
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and err.startswith("mmuspec: error:")


def test_replay_bad_files_exit_2(tmp_path):
    (tmp_path / "notjson.json").write_text("{oops")
    (tmp_path / "other.json").write_text("[1, 2]")
    (tmp_path / "badop.json").write_text(json.dumps(
        {"mmuspec_counterexample": 1, "family": "rmap", "variant": None,
         "ops": [["kvm_mmu_setup", {"pte_list_ext": 3, "shadow_accessed": True}], ["no_such_op", {}]]}))
    (tmp_path / "badvariant.json").write_text(json.dumps(
        {"mmuspec_counterexample": 1, "family": "rmap", "variant": "rmap:gone", "ops": []}))
    for name in ("notjson.json", "other.json", "badop.json", "badvariant.json", "missing.json"):
        code, out, err = run_process("replay", str(tmp_path / name))
        assert code == 2, (name, err)
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_diff_plain_exits_0_and_variant_exits_1_and_replays(tmp_path):
    code, out = run("diff", "--family", "rmap", "--budget", "2")
    assert code == 0 and "clean" in out
    code, out = run("diff", "--variant", "rmap:ext-off-by-one", "--budget", "20", "--save", str(tmp_path))
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


def test_diff_json_is_machine_readable():
    code, out = run("diff", "--variant", "rmap:next-after-drop", "--budget", "20", "--json")
    data = json.loads(out)
    assert code == 1 and data[0]["status"] == "discrepancy" and data[0]["ops"]


def test_prove_exit_codes(monkeypatch):
    assert run("prove")[0] == 0
    code, out = run("prove", "--variant", "rmap:remove-leaves-hole")
    assert code == 1 and "caught" in out
    fake = registry.Obligation("fake.unknown", "rmap", "z3 gives up", "for all inputs",
                               lambda cls, t: registry.Verdict(registry.UNKNOWN, "z3: timeout"))
    monkeypatch.setitem(registry.REGISTRY, "fake.unknown", fake)
    code, out = run("prove", "--json")
    rows = {r["name"]: r for r in json.loads(out)}
    assert code == 3 and rows["fake.unknown"]["verdict"] == "unknown"
    assert rows["fake.unknown"]["status"] == "UNKNOWN"


def test_progress_is_plain_lines_when_piped():
    code, out, err = run_process("diff", "--family", "rmap", "--budget", "1")
    assert code == 0 and "\r" not in err
