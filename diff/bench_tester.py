"""`mmuspec bench tester`: how fast the tester itself is.

Three measurements, on this machine as it is (the report records its core
count and load average, since other work shares the cores):

  throughput     differential steps per second of a plain campaign of each
                 machine (`diff.campaign.run_campaign`, `plain_seconds` each);
                 a family that runs on another's machine (prefetch on mmu) is
                 that machine's campaign, listed once.  A family that cannot
                 run here (the live families without /dev/kvm) is listed as
                 skipped with its reason.  Where the machine times its sides
                 ("ms in spec", "ms in impl", "ms in live": the live families),
                 each side's steps per second too (issue 14); for the live
                 family they come from `diff.live.bench_live`, which also
                 counts the auditor's time on spec and impl; for live-relaxed
                 and live-walk from the campaign's own metrics (live-relaxed's
                 auditor time is in no side)
  detection      for each must-catch variant, `hunt_variant` (the family's
                 modes in turn, as `mmuspec diff --variant` runs it) with
                 seeds 0 .. seeds-1, each capped at `cap` seconds of budget;
                 time to detect is the wall clock from the start of the hunt
                 to the first failing step, before shrinking (the hunt's time
                 less its shrink time).  The median counts a miss as slower
                 than any catch; a median that is a miss is reported as one.
                 `workers` > 1 runs that many hunts at a time in worker
                 processes (spawn), each hunt on one core as before: use it
                 only on cores nobody else is using, or the times grow
  proofs         the whole proof suite: every obligation of
                 `proofs.registry.load_all()`, `.run()` on the plain impl

Targets (issue 7): every must-catch variant caught in a median under
TARGET_DETECT_SECONDS on 2 cores; the proof suite under TARGET_PROOF_SECONDS.
Goal (stricter, reported beside it): median under GOAL_MEDIAN_SECONDS and the
worst of the seeds under GOAL_WORST_SECONDS, a miss counting as over both.
CAP_SECONDS is the budget of one hunt: 20 s is four times the goal's worst
(a hunt past it misses the goal anyway) and keeps the whole bench of ~45
variants x 5 seeds near 10-25 minutes on 2 cores.  SHRINK_SECONDS caps the
Hypothesis shrinking of each caught hunt (campaign.hunt_variant's
shrink_seconds; `mmuspec diff` gives it 10 s): shrinking is not part of the
time to detect, and at 10 s it was most of the bench's time; the "shrink s"
column is then the capped shrink, not what a real hunt spends.
"""

import os
import statistics
import sys
import time

TARGET_DETECT_SECONDS = 30.0
TARGET_PROOF_SECONDS = 60.0
GOAL_MEDIAN_SECONDS = 1.0
GOAL_WORST_SECONDS = 5.0
PLAIN_SECONDS = 5.0
SEEDS = 5
CAP_SECONDS = 20.0
SHRINK_SECONDS = 2.0
WORKERS = 1


def _stderr(msg):
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()


def _loadavg():
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def bench_throughput(plain_seconds=PLAIN_SECONDS, family_names=None, log=None):
    """One plain campaign per machine: steps per second."""
    from . import campaign, families

    fams = families.load_all()
    names = list(family_names) if family_names else list(fams)
    machines, rows = {}, []
    for name in names:
        fam = fams[name]
        key = (fam.machine, fam.make_world)
        if key in machines:
            rows.append({"family": name, "shares": machines[key]})
            continue
        machines[key] = name
        ok, why = fam.availability()
        if not ok:
            rows.append({"family": name, "skipped": why})
            continue
        if log:
            log(f"bench tester: plain campaign, family {name} ({plain_seconds:g}s) ...")
        if name == "live":
            rows.append(_live_row(plain_seconds))
            continue
        try:
            res = campaign.run_campaign(name, None, seed=0, budget=plain_seconds)
        finally:
            if name.startswith("live"):
                from .live import drain_pool
                drain_pool()
        row = {"family": name, "status": res.status, "examples": res.examples, "steps": res.steps,
               "rules": len(res.rules), "seconds": round(res.seconds, 3),
               "steps_per_second": round(res.steps / res.seconds, 1) if res.seconds else None,
               "examples_per_second": round(res.examples / res.seconds, 2) if res.seconds else None,
               "oracle": res.oracle}
        sides = {side: res.metrics.get(f"ms in {side}") for side in ("spec", "impl", "live")}
        if any(sides.values()):
            row["sides_steps_per_second"] = {side: round(res.steps / (ms / 1000), 1) if ms else None
                                             for side, ms in sides.items()}
        rows.append(row)
    return rows


def _live_row(seconds):
    """The live family's row from diff.live.bench_live: campaign steps/s and each side's."""
    from .live import bench_live

    b = bench_live(seconds=seconds, seed=0)
    return {"family": "live", "status": b["status"], "examples": b["examples"], "steps": b["steps"],
            "rules": None, "seconds": b["seconds"], "steps_per_second": b["campaign steps/s"],
            "examples_per_second": round(b["examples"] / b["seconds"], 2) if b["seconds"] else None,
            "oracle": b.get("oracle"),
            "sides_steps_per_second": {side: b[f"{side} steps/s"] for side in ("spec", "impl", "live")},
            "sides_note": "bench_live: spec and impl include the auditor"}


def _median_detect(times):
    """Median over `seeds` runs, a miss (None) counting as slower than any catch."""
    ranked = sorted(times, key=lambda t: (t is None, t or 0.0))
    if len(ranked) % 2:
        return ranked[len(ranked) // 2]
    lo, hi = ranked[len(ranked) // 2 - 1], ranked[len(ranked) // 2]
    return None if lo is None or hi is None else (lo + hi) / 2


def _hunt(fam, qualname, seed, cap, shrink=SHRINK_SECONDS):
    """One hunt of the detection bench (also a worker process's job): its run record."""
    from . import campaign

    t = time.monotonic()
    res = campaign.hunt_variant(fam, qualname, seed=seed, budget=cap, shrink_seconds=shrink)
    total = time.monotonic() - t
    caught = res.status == "discrepancy"
    detect = total - (res.shrink_seconds or 0.0) if caught else None
    return {"seed": seed, "caught": caught, "detect_seconds": round(detect, 3) if caught else None,
            "shrink_seconds": round(res.shrink_seconds, 3) if res.shrink_seconds else None,
            "total_seconds": round(total, 3), "mode": res.mode if caught else None,
            "oracle": res.oracle, "ops": len(res.ops) if res.ops else None,
            "examples": res.examples}


def _warm():
    """A worker's start: load what a hunt loads the first time, so that no hunt's
    time includes the imports (in-process, the throughput campaigns did that)."""
    from impl import variants as variant_registry

    from . import campaign, families  # noqa: F401

    families.load_all()
    variant_registry.load_all()


def _all_runs(jobs, cap, workers, log, shrink=SHRINK_SECONDS):
    """{(qualname, seed): run record} for jobs [(family, qualname, seed)], `workers` at a time."""
    if workers <= 1:
        out = {}
        for fam, q, seed in jobs:
            if log:
                log(f"bench tester: {q} seed {seed} (cap {cap:g}s) ...")
            out[(q, seed)] = _hunt(fam, q, seed, cap, shrink)
        return out
    import concurrent.futures
    import multiprocessing

    out = {}
    # spawn, not fork: the live families leave threads and VM processes behind that a fork would copy
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                                initializer=_warm) as ex:
        futs = {ex.submit(_hunt, fam, q, seed, cap, shrink): (q, seed) for fam, q, seed in jobs}
        for fut in concurrent.futures.as_completed(futs):
            q, seed = futs[fut]
            out[(q, seed)] = r = fut.result()
            if log:
                log(f"bench tester: {q} seed {seed}: "
                    + (f"caught in {r['detect_seconds']:.2f}s" if r["caught"] else f"missed in {cap:g}s")
                    + f" ({len(out)}/{len(jobs)})")
    return out


def bench_detection(seeds=SEEDS, cap=CAP_SECONDS, variant_names=None, log=None, workers=WORKERS,
                    shrink=SHRINK_SECONDS):
    """Time to detect each must-catch variant, per seed; misses recorded."""
    from impl import variants as variant_registry

    from . import families

    vs = sorted(variant_registry.load_all().values(), key=lambda v: v.qualname)
    if variant_names:
        wanted = set(variant_names)
        vs = [v for v in vs if v.qualname in wanted]
    else:
        vs = [v for v in vs if v.must_catch]
    fam_of = {v.qualname: families.for_variant(v).name for v in vs}
    all_runs = _all_runs([(fam_of[v.qualname], v.qualname, seed) for v in vs for seed in range(seeds)],
                         cap, workers, log, shrink)
    rows = []
    for v in vs:
        fam = fam_of[v.qualname]
        runs = [all_runs[(v.qualname, seed)] for seed in range(seeds)]
        times = [r["detect_seconds"] for r in runs]
        found = [x for x in times if x is not None]
        med = _median_detect(times)
        modes = sorted({r["mode"] for r in runs if r["mode"]})
        oracles = sorted({r["oracle"] for r in runs if r["oracle"]})
        rows.append({"variant": v.qualname, "family": fam, "must_catch": v.must_catch,
                     "median_seconds": round(med, 3) if med is not None else None,
                     "min_seconds": min(found) if found else None,
                     "max_seconds": max(found) if found else None,
                     "misses": sum(1 for x in times if x is None), "seeds": seeds,
                     "median_shrink_seconds": (round(statistics.median(
                         [r["shrink_seconds"] for r in runs if r["shrink_seconds"] is not None]), 3)
                         if any(r["shrink_seconds"] is not None for r in runs) else None),
                     "modes": modes, "oracles": oracles, "runs": runs})
        rows[-1]["goal_met"] = _goal_met(rows[-1])
    return rows


def _goal_met(d):
    """Median under GOAL_MEDIAN_SECONDS and every seed caught under GOAL_WORST_SECONDS."""
    return (not d["misses"] and d["median_seconds"] is not None and d["median_seconds"] < GOAL_MEDIAN_SECONDS
            and d["max_seconds"] is not None and d["max_seconds"] < GOAL_WORST_SECONDS)


def bench_proofs(timeout_ms=None):
    """Every obligation on the plain impl; per-obligation seconds and the total."""
    from proofs import registry

    t = time.monotonic()
    obs = registry.load_all()
    rows = []
    for o in obs.values():
        v = o.run(None, timeout_ms) if timeout_ms else o.run()
        rows.append({"name": o.name, "family": o.family, "expected": o.expected, "verdict": v.verdict,
                     "seconds": round(v.seconds, 3)})
    return {"seconds": round(time.monotonic() - t, 3), "obligations": rows}


def bench_tester(plain_seconds=PLAIN_SECONDS, seeds=SEEDS, cap=CAP_SECONDS, family_names=None,
                 variant_names=None, proofs=True, log=_stderr, workers=WORKERS, shrink=SHRINK_SECONDS):
    """The whole bench: a JSON-able report (bench "tester").  Progress on stderr."""
    t0 = time.monotonic()
    report = {"bench": "tester", "cpus": os.cpu_count(), "loadavg_start": _loadavg(),
              "plain_seconds": plain_seconds, "seeds": seeds, "cap_seconds": cap,
              "target_detect_seconds": TARGET_DETECT_SECONDS, "target_proof_seconds": TARGET_PROOF_SECONDS,
              "goal_median_seconds": GOAL_MEDIAN_SECONDS, "goal_worst_seconds": GOAL_WORST_SECONDS,
              "workers": workers, "shrink_seconds": shrink}
    if log:
        log("bench tester: proof suite ...")
    report["proofs"] = bench_proofs() if proofs else None
    report["throughput"] = bench_throughput(plain_seconds, family_names, log)
    report["detect"] = bench_detection(seeds, cap, variant_names, log, workers, shrink)
    det = report["detect"]
    slow = [d["variant"] for d in det
            if d["median_seconds"] is None or d["median_seconds"] >= TARGET_DETECT_SECONDS]
    report["targets"] = {
        "detect_met": not slow, "detect_over_target": slow,
        "goal_met": all(d["goal_met"] for d in det),
        "goal_missed": [d["variant"] for d in det if not d["goal_met"]],
        "proofs_met": (report["proofs"]["seconds"] < TARGET_PROOF_SECONDS) if proofs else None,
    }
    report["loadavg_end"] = _loadavg()
    report["seconds"] = round(time.monotonic() - t0, 1)
    return report


def _s(x, fmt="{:.2f}"):
    return "-" if x is None else fmt.format(x)


def render(report):
    lines = [f"the tester's own speed on this machine: {report['cpus']} cpus, load average "
             f"{report.get('loadavg_start')} at start, {report.get('loadavg_end')} at end "
             "(other work shares the cores)", ""]
    p = report.get("proofs")
    if p:
        ok = p["seconds"] < report["target_proof_seconds"]
        lines.append(f"proof suite: {len(p['obligations'])} obligations in {p['seconds']:.1f}s "
                     f"(target < {report['target_proof_seconds']:g}s: {'met' if ok else 'NOT MET'})")
        w = max([len("obligation")] + [len(o["name"]) for o in p["obligations"]])
        lines.append(f"  {'obligation':<{w}} {'verdict':<15} {'seconds':>8}")
        for o in p["obligations"]:
            lines.append(f"  {o['name']:<{w}} {o['verdict']:<15} {o['seconds']:>8.2f}")
        lines.append("")
    lines.append(f"differential throughput, plain impl, one campaign of {report['plain_seconds']:g}s per "
                 "machine (tested: sampled)")
    lines.append(f"  {'family':<10} {'result':<12} {'examples':>9} {'steps':>8} {'rules':>6} "
                 f"{'seconds':>8} {'steps/s':>8} {'examples/s':>11}")
    sided = []
    for r in report["throughput"]:
        if "shares" in r:
            lines.append(f"  {r['family']:<10} (runs on the {r['shares']} machine: same campaign)")
            continue
        if "skipped" in r:
            lines.append(f"  {r['family']:<10} skipped: {r['skipped']}")
            continue
        result = r["status"] if r["status"] != "discrepancy" else f"DISCREPANCY [{r['oracle']}]"
        lines.append(f"  {r['family']:<10} {result:<12} {r['examples']:>9} {r['steps']:>8} "
                     f"{_s(r['rules'], '{}'):>6} "
                     f"{r['seconds']:>8.1f} {_s(r['steps_per_second'], '{:.0f}'):>8} "
                     f"{_s(r['examples_per_second'], '{:.1f}'):>11}")
        if r.get("sides_steps_per_second"):
            sided.append(r)
    if sided:
        lines.append("  steps per second of each side (steps / the seconds that side cost the campaign):")
        lines.append(f"  {'family':<12} {'campaign':>9} {'spec':>9} {'impl':>9} {'live':>9}  how")
        for r in sided:
            sd = r["sides_steps_per_second"]
            lines.append(f"  {r['family']:<12} {_s(r['steps_per_second'], '{:.0f}'):>9} "
                         + " ".join(f"{_s(sd.get(k), '{:.0f}'):>9}" for k in ("spec", "impl", "live"))
                         + f"  {r.get('sides_note') or 'the campaign metrics (auditor in no side)'}")
    lines.append("")
    target = report["target_detect_seconds"]
    lines.append(f"time to detect each variant: hunt_variant (modes in turn), seeds 0-{report['seeds'] - 1}, "
                 f"budget cap {report['cap_seconds']:g}s per run; wall clock to the first failing step, "
                 f"before shrinking"
                 + (f" (shrinking capped at {report['shrink_seconds']:g}s)" if report.get("shrink_seconds") else "")
                 + f"; target: median < {target:g}s; goal: median < "
                 f"{report.get('goal_median_seconds', 1.0):g}s and worst < {report.get('goal_worst_seconds', 5.0):g}s"
                 + (f"; {report['workers']} hunts at a time" if report.get("workers", 1) > 1 else ""))
    w = max([len("variant")] + [len(d["variant"]) for d in report["detect"]])
    lines.append(f"  {'variant':<{w}} {'median s':>9} {'min s':>7} {'max s':>7} {'misses':>7} "
                 f"{'shrink s':>9} {'target':>7} {'goal':>7}  caught in / by")
    for d in report["detect"]:
        met = d["median_seconds"] is not None and d["median_seconds"] < target
        lines.append(f"  {d['variant']:<{w}} {_s(d['median_seconds']) if d['median_seconds'] is not None else 'MISS':>9} "
                     f"{_s(d['min_seconds']):>7} {_s(d['max_seconds']):>7} "
                     f"{str(d['misses']) + '/' + str(d['seeds']):>7} {_s(d['median_shrink_seconds']):>9} "
                     f"{'met' if met else 'NOT MET':>7} "
                     f"{('met' if d['goal_met'] else 'NOT MET') if 'goal_met' in d else '-':>7}  "
                     f"{','.join(d['modes']) or '-'} / "
                     f"{'; '.join(d['oracles']) or '-'}")
    t = report.get("targets", {})
    lines.append("")
    lines.append(f"targets: detection {'met' if t.get('detect_met') else 'NOT MET'}"
                 + (f" (over: {', '.join(t['detect_over_target'])})" if t.get("detect_over_target") else "")
                 + (f"; goal {'met' if t.get('goal_met') else 'NOT MET'}"
                    + (f" (missed: {', '.join(t['goal_missed'])})" if t.get("goal_missed") else "")
                    if "goal_met" in t else "")
                 + (f"; proof suite {'met' if t.get('proofs_met') else 'NOT MET'}"
                    if t.get("proofs_met") is not None else "")
                 + f"; bench took {report['seconds']:.0f}s")
    return "\n".join(lines)
