"""Campaign jobs, and running many of them at once on dask.distributed.

A job is one campaign described by plain data (`Job`: family, mode, variant,
seed, budget, steps, kind "plain" or "hunt", coverage); `run_job()` runs it
and returns `CampaignResult.to_dict()`.  A job with `coverage=True` runs its
campaign under branch coverage of spec/ and impl/ (diff/branch_coverage.py,
measured in the process that runs it, worker or not) and its result gains
"coverage": the executed arcs per file, plain JSON; `merge_chunks` unites
them.  Both are plain top-level names of this
module, so a dask worker anywhere imports them by reference: a worker needs
this checkout (or the installed package) on its path, nothing else.

`run_jobs()` runs a list of jobs and returns their results in job order:

- in this process, one after another, when there is a single job, or
  `workers=1` and no scheduler: no cluster is started, so quick runs stay
  cheap;
- otherwise on a `distributed.LocalCluster` it starts (worker processes of
  one thread each, `os.cpu_count()` of them unless `workers` says), or on
  the cluster of `scheduler="tcp://HOST:PORT"`.

A worker that dies mid-campaign costs its job a rerun on another worker (the
scheduler reschedules it; up to `distributed.scheduler.allowed-failures`
deaths per job, dask's default 3), never its result; tasks are submitted with
`pure=False` (a job is never served from a cache) and `retries=` for
exceptions that a retry may cure.  Jobs are submitted in order with falling
priority, so the longest (listed first by the callers) start first.
`on_result(index, job, result)` is called in this process as each job
finishes, which is where the CLI prints progress and saves counterexamples,
so what finished is kept even if the cluster fails later.

Cluster start-up and connection failures, and a cluster with no workers for
`NO_WORKERS_SECONDS`, raise ClusterError with a one-line message (the CLI
exits 2 with it).  Tested in tests/test_distributed.py against a real
scheduler and two workers on loopback, one of them SIGKILLed mid-run, and
tests/test_cli.py (an unreachable scheduler, a LocalCluster); the paths of a
job lost with every worker (KilledWorker) and of a cluster left with no
workers are not tested.
"""

import logging
import os
import re
import time
import uuid
from dataclasses import asdict, dataclass

from . import campaign

KINDS = ("plain", "hunt")
RETRIES = 2                # reruns of a job that raised (worker deaths are counted by the scheduler)
CONNECT_SECONDS = 10.0     # to reach a scheduler
NO_WORKERS_SECONDS = 60.0  # a cluster with no worker for this long is an error, not a wait
POLL_SECONDS = 0.2

# Planning: a campaign's round that has started finishes after its budget
# (25 examples: 1-2.5 s measured per family on the 2-core machine).  Used only
# to plan budgets, never to cut a job short.
ROUND_SECONDS = 2.5


class ClusterError(RuntimeError):
    """The cluster could not be started, reached or kept; the message is one line.

    `results` holds what had finished (None where a job had not)."""

    def __init__(self, message, results=None):
        super().__init__(message)
        self.results = results


@dataclass(frozen=True)
class Job:
    """One campaign, as plain data.  kind "plain": run_campaign(family, variant,
    mode); kind "hunt": hunt_variant(family, variant), mode by mode."""

    family: str
    variant: str | None = None
    mode: str | None = None
    seed: int = 0
    budget: float = 30.0
    steps: int = campaign.DEFAULT_STEPS
    kind: str = "plain"
    shrink_seconds: float = campaign.DEFAULT_SHRINK_SECONDS  # Hypothesis' shrink cap for a failure
    coverage: bool = False  # measure branch coverage of spec/ and impl/ (diff/branch_coverage.py)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"job kind must be one of {', '.join(KINDS)}, not {self.kind!r}")
        if self.kind == "hunt" and not self.variant:
            raise ValueError("a hunt job needs a variant")

    @classmethod
    def of(cls, job):
        """A Job from a Job or a dict of its fields."""
        return job if isinstance(job, cls) else cls(**job)

    def to_dict(self):
        return asdict(self)

    @property
    def label(self):
        who = self.variant or f"{self.family} (plain impl)"
        where = f", mode {self.mode}" if self.mode else ""
        cov = ", under coverage" if self.coverage else ""
        return f"{self.kind} {who}{where}, seed {self.seed}{cov}"


def run_job(job, database=None, progress=None):
    """Run one job here; returns CampaignResult.to_dict().

    `database` is an example database spec (diff.exampledb), opened in the
    process that runs the job.  `progress` is run_campaign's per-round
    callback (only meaningful in this process).  With `job.coverage` the
    result also holds "coverage" (branch_coverage.measuring's data)."""
    job = Job.of(job)
    if not job.coverage:
        return _run(job, database, progress).to_dict()
    from . import branch_coverage, families

    # Import every family (and the spec/impl modules they use) first: import-time
    # lines are then outside the measurement alike in this process and on a
    # fresh worker.
    families.load_all()
    with branch_coverage.measuring() as measured:
        modes = 1 if job.mode else len(families.get(job.family).modes)
        res = _run(job, database, progress, **branch_coverage.sample_args(modes, full_rounds=False))
    return dict(res.to_dict(), coverage=measured.data)


def _run(job, database, progress, **sample):
    """The job's campaign; `sample`: a measured plain campaign's run_campaign
    arguments (branch_coverage.sample_args)."""
    if job.kind == "hunt":
        return campaign.hunt_variant(job.family, job.variant, seed=job.seed, budget=job.budget,
                                     steps=job.steps, progress=progress, database=database,
                                     shrink_seconds=job.shrink_seconds)
    return campaign.run_campaign(job.family, job.variant, seed=job.seed, budget=job.budget,
                                 steps=job.steps, mode=job.mode, progress=progress,
                                 database=database, shrink_seconds=job.shrink_seconds, **sample)


def run_job_on_worker(job, database=None):
    """run_job as submitted to dask workers.

    A worker's event-loop thread uses the global `random` module (tornado's
    jittered callbacks, distributed's compression sampling) while a campaign
    runs in the task thread, which Hypothesis notices and reports as "Do
    not use the `random` module inside strategies".  Our machines never use
    `random` (their draws come from Hypothesis), so on a worker that warning
    is about the other thread and is silenced; in this process it is not."""
    import warnings

    from hypothesis.errors import HypothesisDeprecationWarning

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Do not use the `random` module inside strategies",
                                category=HypothesisDeprecationWarning)
        return run_job(job, database)


_SCHEDULER = re.compile(r"^(tcp|tls)://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$")


def parse_scheduler(text):
    """Validate a scheduler address: `tcp://HOST:PORT` (tls:// too, HOST:PORT means tcp)."""
    addr = text if "://" in text else f"tcp://{text}"
    m = _SCHEDULER.match(addr)
    if not m or not 0 < int(m.group(3)) < 65536:
        raise ValueError(f"scheduler address must be tcp://HOST:PORT, not {text!r}")
    return addr


def _one_line(exc):
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


class Runner:
    """Where jobs run: this process, a LocalCluster it starts, or a remote scheduler.

    A context manager; `slots` is how many jobs run at once (for budget
    planning).  `in_process=True` runs jobs here one by one."""

    def __init__(self, scheduler=None, workers=None, in_process=False):
        self.scheduler = parse_scheduler(scheduler) if scheduler else None
        self.workers = workers
        self.in_process = in_process and not self.scheduler
        self.client = self.cluster = None
        self.slots = 1

    def __enter__(self):
        if self.in_process:
            return self
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise ClusterError("parallel runs need dask.distributed (pip install 'dask[distributed]')") from None
        if self.scheduler:
            try:
                self.client = Client(self.scheduler, timeout=CONNECT_SECONDS, set_as_default=False)
            except Exception as e:  # OSError, TimeoutError, CommClosedError ...
                raise ClusterError(f"cannot connect to scheduler {self.scheduler}: {_one_line(e)}") from None
            self.slots = max(sum(self.client.nthreads().values()), 1)
            if self.workers:
                self.slots = min(self.slots, self.workers)
        else:
            n = self.workers or os.cpu_count() or 1
            try:
                self.cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                            host="127.0.0.1", dashboard_address=None,
                                            silence_logs=logging.ERROR)
                self.client = Client(self.cluster, set_as_default=False)
            except Exception as e:
                self.close()
                raise ClusterError(f"cannot start a local cluster of {n} workers: {_one_line(e)}") from None
            self.slots = n
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def close(self):
        for thing in (self.client, self.cluster):
            if thing is not None:
                try:
                    thing.close()
                except Exception:  # closing a cluster that already failed
                    pass
        self.client = self.cluster = None

    def run(self, jobs, database=None, on_result=None, progress=None):
        """Run `jobs`; their results (dicts) in job order.  See run_jobs."""
        jobs = [Job.of(j) for j in jobs]
        if self.in_process:
            results = []
            for i, job in enumerate(jobs):
                results.append(run_job(job, database, progress(job) if progress else None))
                if on_result:
                    on_result(i, job, results[-1])
            return results
        return self._run_distributed(jobs, database, on_result)

    def _run_distributed(self, jobs, database, on_result):
        from distributed import KilledWorker

        client = self.client
        results = [None] * len(jobs)
        tag = uuid.uuid4().hex[:8]
        try:
            futures = {client.submit(run_job_on_worker, job.to_dict(), database, pure=False, retries=RETRIES,
                                     priority=len(jobs) - i, key=f"mmuspec-{tag}-{i}"): i
                       for i, job in enumerate(jobs)}
        except Exception as e:
            raise ClusterError(f"cannot submit jobs: {_one_line(e)}", results) from None
        pending = set(futures)
        no_workers_since = None
        last_check = time.monotonic()
        try:
            while pending:
                done = [f for f in pending if f.done()]
                for f in done:
                    pending.discard(f)
                    i = futures[f]
                    if f.status == "finished":
                        results[i] = f.result()
                    elif f.status == "error":
                        exc = f.exception()
                        if isinstance(exc, KilledWorker):
                            raise ClusterError(f"job {jobs[i].label} was lost with every worker that "
                                               f"ran it: {_one_line(exc)}", results)
                        raise exc  # the job itself raised, after its retries: a bug, shown as such
                    else:
                        raise ClusterError(f"job {jobs[i].label} was {f.status}: lost the scheduler?",
                                           results)
                    if on_result:
                        on_result(i, jobs[i], results[i])
                if done:
                    continue
                time.sleep(POLL_SECONDS)
                now = time.monotonic()
                if now - last_check >= 2.0:
                    last_check = now
                    try:
                        n = len(client.nthreads())
                    except Exception as e:
                        raise ClusterError(f"lost the scheduler: {_one_line(e)}", results) from None
                    if n:
                        no_workers_since = None
                    elif no_workers_since is None:
                        no_workers_since = now
                    elif now - no_workers_since >= NO_WORKERS_SECONDS:
                        raise ClusterError(f"the cluster has had no workers for {NO_WORKERS_SECONDS:.0f}s "
                                           f"({len(pending)} jobs waiting)", results)
        finally:
            if pending:
                try:
                    client.cancel(list(pending))
                except Exception:
                    pass
        return results


def run_jobs(jobs, scheduler=None, workers=None, database=None, on_result=None, progress=None):
    """Run campaign jobs; their CampaignResult dicts, in job order.

    `scheduler`: None (start a LocalCluster of `workers` processes, default
    os.cpu_count()) or "tcp://HOST:PORT".  With no scheduler, a single job or
    `workers=1` runs in this process, without a cluster.  `database`: an
    example database spec shared by every job (diff.exampledb; a directory
    must be one the workers see).  `on_result(index, job, result)` is called
    as each job finishes; `progress(job)` may give a per-round callback,
    used only for jobs run in this process.  Raises ClusterError.
    """
    jobs = [Job.of(j) for j in jobs]
    in_process = scheduler is None and (len(jobs) <= 1 or workers == 1)
    with Runner(scheduler, workers, in_process=in_process) as runner:
        return runner.run(jobs, database, on_result, progress)


# -- check's plain campaigns in chunks ---------------------------------------
def merge_chunks(results):
    """One family's plain campaign from its chunks (same family and mode, seeds apart).

    Counts are summed (per_mode too) and rules united; `seconds` is worker
    time (the sum), `wall_seconds` the longest chunk.  A chunk that found a
    discrepancy gives the record its failure (the first such chunk in job
    order).  The chunks' "coverage" measurements (if any) are united
    (branch_coverage.merge), and "coverage_chunks" counts the measured ones."""
    measured = [r.get("coverage") for r in results if r.get("coverage")]
    cov = {}
    if measured:
        from . import branch_coverage

        cov = {"coverage": branch_coverage.merge(measured)}
    cov["coverage_chunks"] = len(measured)
    if len(results) == 1:
        return dict(results[0], chunks=1, wall_seconds=results[0]["seconds"], seeds=[results[0]["seed"]],
                    **cov)
    bad = [r for r in results if r["status"] != "clean"]
    out = dict(bad[0] if bad else results[0])
    out["budget"] = sum(r["budget"] for r in results)
    out["examples"] = sum(r["examples"] for r in results)
    out["steps"] = sum(r["steps"] for r in results)
    out["rules"] = sorted(set().union(*(r["rules"] for r in results)))
    out["seconds"] = sum(r["seconds"] for r in results)
    out["wall_seconds"] = max(r["seconds"] for r in results)
    metrics, per_mode = {}, {}
    for r in results:
        for k, v in (r.get("metrics") or {}).items():
            metrics[k] = metrics.get(k, 0) + v
        for m, counts in (r.get("per_mode") or {}).items():
            into = per_mode.setdefault(m, {})
            for k, v in counts.items():
                into[k] = into.get(k, 0) + v
    out["metrics"] = metrics
    out["per_mode"] = {m: {k: round(v, 3) if isinstance(v, float) else v for k, v in c.items()}
                       for m, c in per_mode.items()}
    out["chunks"] = len(results)
    out["seeds"] = [r["seed"] for r in results]
    out.pop("coverage", None)
    out.update(cov)
    return out
