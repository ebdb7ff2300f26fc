"""Output is never lost: every output folder is checked before any work starts
(exit 2, one line), and a write that fails later anyway prints the result in
full on stdout, says so in one line on stderr, and never ends in a traceback.

The variant is rmap:next-after-drop, in this process (--workers 1); the
tests of what happens to a result take its saved case (tests/cases/) as
the campaign's result instead of searching for it
(tests/variant_checks.canned_campaigns).  Tests run as root, so permission
bits would not stop a write: the unwritable folders are under /proc, and
failures mid-run are a save function that raises, or a folder replaced by
a file after the check.
"""

import errno
import io
import json
import os
import shutil
import subprocess
import sys

import pytest

from diff import counterexample, jobs
from impl import variants
from mmuspec import check, cli, common, zoo
from proofs import symbolic
from tests.variant_checks import canned_campaigns

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VARIANT = "rmap:next-after-drop"
DIFF = ["diff", "--variant", VARIANT, "--budget", "5", "--workers", "1"]


def run(argv, capsys):
    out = io.StringIO()
    code = cli.main(list(argv), out=out)
    return code, out.getvalue(), capsys.readouterr().err


def errors(err):
    return [line for line in err.splitlines() if line.startswith("mmuspec: error:")]


def pasted_texts(stdout):
    """The counterexample files printed on stdout, each from a line "{" to a line "}",
    as printed."""
    texts, lines = [], None
    for line in stdout.splitlines():
        if line == "{":
            lines = []
        if lines is not None:
            lines.append(line)
            if line == "}":
                texts.append("\n".join(lines) + "\n")
                lines = None
    return texts


def pasted(stdout):
    return [json.loads(t) for t in pasted_texts(stdout)]


def no_space(res_or_result, directory):
    raise OSError(errno.ENOSPC, "No space left on device", os.path.join(directory, "cex.json"))


# -- checked before any work ----------------------------------------------------------------
def test_diff_save_under_proc_exits_2_in_one_line_no_traceback():
    """The reviewer's case, as a process: nothing found, nothing lost, one line."""
    env = dict(os.environ, PYTHONPATH=ROOT)
    p = subprocess.run([sys.executable, "-m", "mmuspec", *DIFF, "--save", "/proc/x"], capture_output=True,
                       text=True, cwd=ROOT, env=env, timeout=120)
    assert p.returncode == 2 and p.stdout == "" and "Traceback" not in p.stderr
    assert p.stderr.splitlines() == ["mmuspec: error: cannot write to --save folder /proc/x: "
                                     "No such file or directory"]


@pytest.fixture
def no_work(monkeypatch):
    """Any campaign, proof or symbolic search starting fails the test."""
    def started(*a, **k):
        raise AssertionError("work started before the output folders were checked")
    monkeypatch.setattr(jobs, "Runner", started)
    monkeypatch.setattr(check, "run_obligations", started)
    monkeypatch.setattr(symbolic, "run", started)


@pytest.mark.parametrize("argv, what", [
    (DIFF + ["--save", "/proc/x"], "--save folder /proc/x"),
    (DIFF + ["--save", "/proc/self"], "--save folder /proc/self"),   # exists, refuses files
    (["zoo", "--workers", "1", "--no-database", "--out", "/proc/x"], "--out folder /proc/x"),
    (["zoo", "--workers", "1", "--no-database", "--out", "OUT", "--save", "/proc/x/y"], "--save folder /proc/x/y"),
    (["check", "--workers", "1", "--no-database", "--out", "/proc/x"], "--out folder /proc/x"),
    (["check", "--workers", "1", "--no-database", "--out", "OUT", "--save", "/proc/x"], "--save folder /proc/x"),
    (["check", "--workers", "1", "--no-database", "--out", "OUT", "--report", "/proc/x/r.html"],
     "--report folder /proc/x"),
    (["prove", "--symbolic", "--variant", "zap:no-root-reload", "--save", "/proc/x"], "--save folder /proc/x"),
])
def test_unwritable_output_folders_exit_2_before_any_work(argv, what, no_work, tmp_path, capsys):
    argv = [str(tmp_path / "out") if a == "OUT" else a for a in argv]
    code, out, err = run(argv, capsys)
    assert code == 2 and out == "" and "Traceback" not in err
    assert len(err.splitlines()) == 1 and err.startswith(f"mmuspec: error: cannot write to {what}: ")


def test_a_file_where_the_folder_should_be_is_exit_2(no_work, tmp_path, capsys):
    (tmp_path / "afile").write_text("")
    code, out, err = run(DIFF + ["--save", str(tmp_path / "afile")], capsys)
    assert code == 2 and errors(err) == [f"mmuspec: error: cannot write to --save folder "
                                         f"{tmp_path / 'afile'}: File exists"]
    code, out, err = run(["check", "--workers", "1", "--no-database", "--out", str(tmp_path / "o"),
                          "--report", str(tmp_path)], capsys)
    assert code == 2 and len(err.splitlines()) == 1 and "is a folder" in err


def test_a_missing_save_folder_is_created(tmp_path, monkeypatch, capsys):
    """Checked means created too: the probe file is gone again."""
    folder = tmp_path / "new" / "deeper"

    def interrupted(*a, **k):  # stop at the first campaign
        raise KeyboardInterrupt
    monkeypatch.setattr(jobs, "Runner", interrupted)
    code, out, err = run(DIFF + ["--save", str(folder)], capsys)
    assert code == 130 and folder.is_dir() and os.listdir(folder) == []


# -- failing later anyway ------------------------------------------------------------------
def test_diff_save_failing_mid_run_prints_the_counterexample_in_full(tmp_path, monkeypatch, capsys):
    canned_campaigns(monkeypatch)
    monkeypatch.setattr(counterexample, "save", no_space)
    code, out, err = run(DIFF + ["--save", str(tmp_path)], capsys)
    assert code == 1 and "Traceback" not in err
    assert errors(err) == [f"mmuspec: error: cannot save the counterexample to {tmp_path / 'cex.json'}: "
                           f"No space left on device"]
    assert out.startswith(f"DISCREPANCY in family rmap ({VARIANT}") and "NOT SAVED" in out
    (doc,) = pasted(out)
    assert doc["variant"] == VARIANT and doc["ops"] and doc["ops"][0][0] == "kvm_mmu_setup"
    # Pasted into a file, it replays: the variant is caught again, the plain impl is clean.
    path = tmp_path / "pasted.json"
    path.write_text(pasted_texts(out)[0])
    assert run(["replay", str(path)], capsys)[0] == 1
    assert run(["replay", str(path), "--impl"], capsys)[0] == 0


def test_diff_json_keeps_the_ops_when_the_save_fails(tmp_path, monkeypatch, capsys):
    canned_campaigns(monkeypatch)
    monkeypatch.setattr(counterexample, "save", no_space)
    code, out, err = run(DIFF + ["--save", str(tmp_path), "--json"], capsys)
    (res,) = json.loads(out)
    assert code == 1 and res["ops"] and res["note"].startswith("NOT SAVED: cannot save")
    assert len(errors(err)) == 1 and "Traceback" not in err


def test_diff_save_folder_replaced_by_a_file_mid_run(tmp_path, monkeypatch, capsys):
    """A real OSError from the real save: the folder passed the check, then became a file."""
    canned_campaigns(monkeypatch)
    folder = tmp_path / "cex"
    real_save = counterexample.save

    def replace_then_save(res, directory):
        shutil.rmtree(directory)
        open(directory, "w").close()
        return real_save(res, directory)
    monkeypatch.setattr(counterexample, "save", replace_then_save)
    code, out, err = run(DIFF + ["--save", str(folder)], capsys)
    assert code == 1 and "Traceback" not in err and len(errors(err)) == 1
    assert f"cannot save the counterexample to {folder}" in errors(err)[0]
    assert pasted(out)[0]["ops"]


def test_zoo_lost_counterexample_and_summary(tmp_path, monkeypatch, capsys):
    """zoo: the table and verdict stand; the counterexample is printed in full
    (and kept in the --json summary); each failed write is one line."""
    canned_campaigns(monkeypatch)
    monkeypatch.setattr(zoo, "_zoo_variants", lambda family=None: [variants.get(VARIANT)])
    monkeypatch.setattr(counterexample, "save", no_space)

    def read_only(path, data):
        raise OSError(errno.EROFS, "Read-only file system", path)
    monkeypatch.setattr(common, "_write_json", read_only)
    argv = ["zoo", "--budget", "2", "--workers", "1", "--no-database", "--out", str(tmp_path / "z")]
    code, out, err = run(argv, capsys)
    assert code == 0 and "Traceback" not in err and "zoo kill rate 1/1" in out
    assert "summary.json NOT written" in out and pasted(out)[0]["variant"] == VARIANT
    assert errors(err) == [f"mmuspec: error: cannot save the summary to {tmp_path / 'z' / 'summary.json'}: "
                           f"Read-only file system",
                           f"mmuspec: error: cannot save the counterexample to "
                           f"{tmp_path / 'z' / 'counterexamples' / 'cex.json'}: No space left on device"]
    code, out, err = run(argv + ["--json"], capsys)
    summary = json.loads(out)
    assert code == 0 and summary["summary_path"] is None and len(errors(err)) == 2
    (lost,) = summary["unsaved"]
    assert lost["variant"] == VARIANT and lost["counterexample"]["ops"] and "No space" in lost["error"]


def test_check_lost_counterexample_and_report(tmp_path, monkeypatch, capsys):
    """check, trimmed to one family, no obligations and one variant: a failed
    counterexample save and a failed report are one line each; summary.json
    keeps the counterexample."""
    from diff import families
    from mmuspec import report

    canned_campaigns(monkeypatch)
    every = families.load_all
    monkeypatch.setattr(families, "load_all", lambda: {n: f for n, f in every().items() if n == "rmap"})
    monkeypatch.setattr(check, "run_obligations", lambda: [])
    monkeypatch.setattr(check, "_zoo_variants", lambda family=None: [variants.get(VARIANT)])
    monkeypatch.setattr(counterexample, "save", no_space)
    monkeypatch.setattr(report, "collect_benches", lambda *a, **k: {})

    def read_only(path, *a, **k):
        raise OSError(errno.EROFS, "Read-only file system", path)
    monkeypatch.setattr(report, "write_report", read_only)
    out_dir = tmp_path / "c"
    code, out, err = run(["check", "--budget", "22", "--workers", "1", "--no-database", "--out", str(out_dir)],
                         capsys)
    assert code == 0 and "Traceback" not in err and "zoo kill rate 1/1" in out
    assert errors(err) == [f"mmuspec: error: cannot save the report to {out_dir / 'report.html'}: "
                           f"Read-only file system",
                           f"mmuspec: error: cannot save the counterexample to "
                           f"{out_dir / 'counterexamples' / 'cex.json'}: No space left on device"]
    assert pasted(out)[0]["variant"] == VARIANT and "report:" not in out
    summary = json.loads((out_dir / "summary.json").read_text())
    assert summary["report"] is None and summary["unsaved"][0]["counterexample"]["ops"]


def test_prove_symbolic_save_failing_prints_the_file(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(symbolic, "save", no_space)
    code, out, err = run(["prove", "--symbolic", "--variant", "zap:no-root-reload", "--per-function", "3",
                          "--save", str(tmp_path)], capsys)
    assert code == 1 and "Traceback" not in err and len(errors(err)) >= 1
    docs = pasted(out)
    assert docs and all(d["mmuspec_symbolic_counterexample"] == 1 and d["inputs"] is not None for d in docs)
    path = tmp_path / "pasted.json"
    path.write_text(pasted_texts(out)[0])
    assert run(["replay", str(path)], capsys)[0] == 1


def test_failed_writes_leave_no_temporary_file_and_name_the_path(tmp_path):
    target = tmp_path / "summary.json"
    target.mkdir()
    (target / "x").write_text("")  # os.replace onto a non-empty folder fails
    with pytest.raises(OSError) as e:
        common._write_json(str(target), {"a": 1})
    assert e.value.filename == str(target) and os.listdir(tmp_path) == ["summary.json"]


def test_partial_results_that_cannot_be_kept_say_so():
    err = common._keep_partial("/proc/x", [], {}, jobs.ClusterError("scheduler lost"))
    assert isinstance(err, jobs.ClusterError)
    assert str(err) == ("scheduler lost (the 0 finished campaigns could not be kept: cannot write "
                        "/proc/x/partial.json: No such file or directory)")
