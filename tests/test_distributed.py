"""Campaigns on a real dask cluster, and the shared Hypothesis example database.

Everything listens on loopback only: a `dask scheduler` and `dask worker`
processes (the venv's `dask` entry point, one process and one thread per
worker, no nanny so that SIGKILL of the process is the worker's death) and,
for the Redis database, a `redis-server` with persistence off.  Every process
started here is stopped here, by its own handle.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from diff import campaign, exampledb, families, jobs
from impl import variants
from mmuspec import check, cli, common

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DASK = os.path.join(os.path.dirname(sys.executable), "dask")

distributed = pytest.importorskip("distributed", reason="dask.distributed is not installed (requirements.lock)")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, seconds=30.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.2)
    return False


def stop(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


class Cluster:
    """A dask scheduler and its workers, each a process of ours."""

    def __init__(self, logdir):
        self.logdir = logdir
        self.port = free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.env = dict(os.environ, PYTHONPATH=ROOT)
        self.procs = []
        self.workers = {}  # name -> Popen
        self.count = 0
        self.scheduler = self._spawn("scheduler", [DASK, "scheduler", "--host", "127.0.0.1",
                                                   "--port", str(self.port), "--no-dashboard"])
        if not wait_port(self.port, self.scheduler):
            self.close()
            pytest.skip(f"dask scheduler did not start (log: {self.logdir}/scheduler.log)")

    def _spawn(self, name, argv):
        log = open(os.path.join(self.logdir, f"{name}.log"), "w")
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=self.logdir, env=self.env)
        self.procs.append(p)
        return p

    def start_worker(self):
        self.count += 1
        name = f"w{self.count}"
        self.workers[name] = self._spawn(name, [
            DASK, "worker", self.address, "--nworkers", "1", "--nthreads", "1", "--no-nanny",
            "--no-dashboard", "--host", "127.0.0.1", "--name", name, "--death-timeout", "60"])
        return name

    def client(self):
        return distributed.Client(self.address, timeout=10, set_as_default=False)

    def addresses(self, client):
        """Worker name -> address, as the scheduler sees them."""
        return {w["name"]: a for a, w in client.scheduler_info(n_workers=-1)["workers"].items()}

    def ensure_workers(self, n, seconds=60.0):
        for name, p in list(self.workers.items()):
            if p.poll() is not None:
                del self.workers[name]
        while len(self.workers) < n:
            self.start_worker()
        with self.client() as c:
            c.wait_for_workers(n, timeout=seconds)

    def close(self):
        for p in reversed(self.procs):
            stop(p)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    if not os.path.exists(DASK):
        pytest.skip(f"no dask entry point at {DASK}")
    c = Cluster(str(tmp_path_factory.mktemp("dask")))
    try:
        c.ensure_workers(2)
        yield c
    finally:
        c.close()


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server): "
                    "the Redis database test needs a real server")
    port = free_port()
    logdir = tmp_path_factory.mktemp("redis")
    p = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                          "--appendonly", "no", "--dir", str(logdir)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if not wait_port(port, p, 10):
            pytest.skip(f"redis-server did not start on 127.0.0.1:{port}")
        yield f"redis://127.0.0.1:{port}"
    finally:
        stop(p)


PLAIN_AND_VARIANT_JOBS = [
    jobs.Job("rmap", budget=4),
    jobs.Job("rmap", "rmap:next-after-drop", budget=4, kind="hunt"),
    jobs.Job("walk", budget=4),
    jobs.Job("walk", "walk:d-on-read", budget=4, kind="hunt"),
]


def assert_complete_and_correct(todo, results):
    assert len(results) == len(todo) and all(r is not None for r in results)
    for job, r in zip(todo, results):
        assert (r["family"], r["variant"]) == (job.family, job.variant)
        assert r["examples"] >= campaign.EXAMPLES_PER_ROUND and r["steps"] > 0
        if job.variant:
            assert r["status"] == "discrepancy" and r["reproduced"], (job, r["message"])
            assert r["oracle"] in variants.get(job.variant).caught_by
            assert r["ops"]
        else:
            assert r["status"] == "clean", (job, r["message"])


def test_worker_killed_mid_run_costs_a_retry_not_a_result(cluster):
    cluster.ensure_workers(2)
    finished, box = [], {}

    def run():
        try:
            box["results"] = jobs.run_jobs(PLAIN_AND_VARIANT_JOBS, scheduler=cluster.address,
                                           on_result=lambda i, job, r: finished.append(i))
        except BaseException as e:  # reported by the assertions below
            box["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    plain = {i for i, job in enumerate(PLAIN_AND_VARIANT_JOBS) if job.kind == "plain"}
    with cluster.client() as c:
        victim, running = None, []
        deadline = time.monotonic() + 60
        while not running and time.monotonic() < deadline:
            for name, addr in cluster.addresses(c).items():
                # a plain job: it runs its whole 4 s budget (a hunt may end in 1 s)
                keys = [k for k in c.processing().get(addr, ()) if str(k).startswith("mmuspec-")
                        and int(str(k).rsplit("-", 1)[1]) in plain]
                if keys:
                    victim, running = name, keys
                    break
            time.sleep(0.1)
        assert running, "no plain job started on any worker"
        time.sleep(1.0)  # well inside its 4 s campaign
        assert not finished or len(finished) < len(PLAIN_AND_VARIANT_JOBS)
        addr = cluster.addresses(c)[victim]
        still = [k for k in c.processing().get(addr, ()) if str(k).startswith("mmuspec-")]
        cluster.workers[victim].send_signal(signal.SIGKILL)
        cluster.workers[victim].wait(timeout=10)
    t.join(timeout=240)
    assert not t.is_alive(), "run_jobs did not return"
    assert "error" not in box, box.get("error")
    assert still, "the killed worker was not running a job"
    assert_complete_and_correct(PLAIN_AND_VARIANT_JOBS, box["results"])
    # The job that was running on the killed worker was rerun elsewhere: its result is there.
    lost = [int(str(k).rsplit("-", 1)[1]) for k in still]
    assert all(box["results"][i] is not None for i in lost)
    cluster.ensure_workers(2)  # a replacement, for the tests below


def test_run_jobs_in_process_for_one_job(monkeypatch):
    """A single job runs here, with no cluster: same record."""
    from tests.variant_checks import quick_shrink

    quick_shrink(monkeypatch)
    got = []
    res = jobs.run_jobs([PLAIN_AND_VARIANT_JOBS[1]], on_result=lambda i, job, r: got.append(i))
    assert got == [0]
    assert_complete_and_correct(PLAIN_AND_VARIANT_JOBS[1:2], res)


def test_campaign_key_names_family_variant_mode_not_seed():
    k = exampledb.campaign_key("mmu", "gfn:lai-2010", "tdp")
    assert k == b"mmuspec-campaign-v1:mmu:gfn:lai-2010:tdp"
    assert len({k, exampledb.campaign_key("mmu", None, "tdp"), exampledb.campaign_key("mmu", "gfn:lai-2010", "mixed"),
                exampledb.campaign_key("prefetch", "gfn:lai-2010", "tdp")}) == 4


@pytest.fixture(params=["directory", "redis"])
def database(request, tmp_path):
    if request.param == "directory":
        return str(tmp_path / "hypothesis-db")
    return request.getfixturevalue("redis_url")


def test_failure_stored_with_one_seed_is_replayed_first_with_another(database, cluster):
    """Campaign A (seed 1, here) finds and stores; campaign B (seed 2, on a dask
    worker: another process) reports the same failure at its first example."""
    name = "rmap:next-after-drop"
    a = campaign.run_campaign("rmap", name, seed=1, budget=10, database=database)
    assert a.status == "discrepancy" and a.stored_failures == 0
    [b] = jobs.run_jobs([jobs.Job("rmap", name, seed=2, budget=10)], scheduler=cluster.address,
                        database=database)
    assert b["status"] == "discrepancy" and b["stored_failures"] >= 1
    assert b["examples_to_failure"] == 1, "the stored failure was not the first example"
    assert b["examples"] <= 3 and b["shrink_seconds"] < 2  # no search, no Hypothesis shrinking
    assert (b["oracle"], b["ops"]) == (a.oracle, a.ops)
    # The plain impl has its own key: it sees nothing stored, and so cannot
    # delete the variant's failure (Hypothesis drops stored examples that pass).
    c = campaign.run_campaign("rmap", None, seed=2, budget=1, database=database)
    assert c.status == "clean" and c.stored_failures == 0
    db = exampledb.open_database(database)
    assert list(db.fetch(exampledb.campaign_key("rmap", name, "default")))


@pytest.fixture(scope="module")
def shared_db(tmp_path_factory):
    return str(tmp_path_factory.mktemp("shared") / "hypothesis-db")


def test_zoo_catches_must_catch_variants_on_the_cluster(cluster, shared_db):
    """Must-catch variants of four families as hunt jobs on the cluster, each
    found by search (the database is fresh).  Search budgets are seconds, so they are
    generous (a caught variant stops early); Hypothesis' shrinking is capped
    at 1 s, the op pass still makes each counterexample 1-minimal.  (That every
    must-catch variant is caught: tests/test_cases.py, on saved cases.)"""
    cluster.ensure_workers(2)
    # A few variants of different families that are found in well under a second:
    # what is tested here is the cluster and the database, not search (that is
    # `mmuspec zoo` and `bench tester`).
    quick = ("rmap:next-after-drop", "walk:d-on-read", "zap:no-root-reload", "prefetch:v3-2010")
    vs = [variants.get(n) for n in quick]
    todo = [jobs.Job(families.for_variant(v).name, v.qualname, budget=12, kind="hunt", shrink_seconds=1)
            for v in vs]
    results = jobs.run_jobs(todo, scheduler=cluster.address, database=shared_db)
    missed = [v.qualname for v, r in zip(vs, results) if r["status"] != "discrepancy"]
    assert not missed
    for v, r in zip(vs, results):
        assert r["reproduced"] and r["stored_failures"] == 0, v.qualname
        assert r["oracle"] in v.caught_by or not v.caught_by, (v.qualname, r["oracle"])


# The zoo command's machinery on the cluster: a walk variant found in well under
# a second, and a sound walker form that must pass (it spends its whole budget).
ZOO_PICK = ("walk:d-on-read", "walk:pte-write-on-dirty-2.6")


def test_zoo_command_on_the_cluster(cluster, tmp_path, capsys, monkeypatch):
    from mmuspec import zoo

    cluster.ensure_workers(2)
    monkeypatch.setattr(zoo, "_zoo_variants", lambda family=None: [variants.get(n) for n in ZOO_PICK])
    out = tmp_path / "zoo"
    code = cli.main(["zoo", "--family", "walk", "--scheduler", cluster.address, "--budget", "8",
                     "--steps", "60", "--no-database", "--out", str(out)])
    text = capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert code == 0, text
    assert summary["workers"] == 2 and summary["variant_budget"] >= common.MIN_VARIANT_SECONDS
    assert {e["variant"] for e in summary["zoo"]} == set(ZOO_PICK)
    for e in summary["zoo"]:
        assert e["variant"] in text and e["runs_on"] == "walk"
        if e["expected"] != "caught":
            assert e["expected"] == "passes" and not e["caught"]
            continue
        assert e["caught"] and e["found"] == "search"
        assert all(os.path.exists(p) for p in e["saved"])
        assert os.path.dirname(e["saved"][0]) == str(out / "counterexamples")
    assert "zoo kill rate 1/1" in text and "NOT CAUGHT" not in text


def test_check_on_the_cluster(cluster, shared_db, tmp_path, capsys, monkeypatch):
    """mmuspec check --scheduler, end to end but trimmed to fit a test: the
    rmap and walk families, their obligations, and a variant of each found in
    well under a second.  The whole check is `make run`.  The shared database
    (stored by the cluster zoo test, when it ran first) lets the variants be
    replayed.  The budget is the least that gives each variant the
    MIN_VARIANT_SECONDS of search a miss would need to count, with a margin
    for the proofs on a loaded machine."""
    cluster.ensure_workers(2)
    every_family, obligations = families.load_all, check.run_obligations
    monkeypatch.setattr(families, "load_all",
                        lambda: {n: f for n, f in every_family().items() if n in ("rmap", "walk")})
    monkeypatch.setattr(check, "run_obligations",
                        lambda: obligations(family="rmap") + obligations(family="walk"))
    monkeypatch.setattr(check, "_zoo_variants", lambda family=None: [
        variants.get("rmap:next-after-drop"), variants.get("walk:d-on-read")])
    out = tmp_path / "check"
    code = cli.main(["check", "--scheduler", cluster.address, "--budget", "30", "--database", shared_db,
                     "--out", str(out), "--no-report", "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert summary == json.loads((out / "summary.json").read_text()) and summary["report"] is None
    assert summary["obligations"]["not as expected"] == [] and summary["obligations"]["unknown"] == 0
    assert [f["family"] for f in summary["families"]] == ["rmap", "walk"]
    assert all(f["status"] == "clean" and f["chunks"] == 2 and f["distinct_rules"] > 0
               for f in summary["families"])
    assert summary["workers"] == 2 and summary["out_dir"] == str(out) and summary["database"] == shared_db
    assert summary["plan"]["variant_budget"] >= common.MIN_VARIANT_SECONDS
    assert len(summary["zoo"]) == 2 and summary["zoo_kill_rate"] == "2/2" and code == 0, summary["missed"]
    for e in summary["zoo"]:
        assert all(p.startswith(str(out / "counterexamples")) and os.path.exists(p) for p in e["saved"])
    assert sorted(summary["counterexamples"]) == sorted(p for e in summary["zoo"] for p in e["saved"])
