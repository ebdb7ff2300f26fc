"""`mmuspec bench tester`: how fast the tester itself is.

Three measurements, on this machine as it is (the report records its core
count and load average, since other work shares the cores):

  throughput     differential steps per second of a plain campaign of each
                 machine (`diff.campaign.run_campaign`, `plain_seconds` each);
                 a family that runs on another's machine (prefetch on mmu) is
                 that machine's campaign, listed once
  detection      for each must-catch variant, `hunt_variant` (the family's
                 modes in turn, as `mmuspec diff --variant` runs it) with
                 seeds 0 .. seeds-1, each capped at `cap` seconds of budget;
                 time to detect is the wall clock from the start of the hunt
                 to the first failing step, before shrinking (the hunt's time
                 less its shrink time).  The median counts a miss as slower
                 than any catch; a median that is a miss is reported as one
  proofs         the whole proof suite: every obligation of
                 `proofs.registry.load_all()`, `.run()` on the plain impl

Targets (issue 7): every must-catch variant caught in a median under
TARGET_DETECT_SECONDS on 2 cores; the proof suite under TARGET_PROOF_SECONDS.
"""

import os
import statistics
import sys
import time

TARGET_DETECT_SECONDS = 30.0
TARGET_PROOF_SECONDS = 60.0
PLAIN_SECONDS = 5.0
SEEDS = 5
CAP_SECONDS = 60.0


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
        if log:
            log(f"bench tester: plain campaign, family {name} ({plain_seconds:g}s) ...")
        res = campaign.run_campaign(name, None, seed=0, budget=plain_seconds)
        rows.append({"family": name, "status": res.status, "examples": res.examples, "steps": res.steps,
                     "rules": len(res.rules), "seconds": round(res.seconds, 3),
                     "steps_per_second": round(res.steps / res.seconds, 1) if res.seconds else None,
                     "examples_per_second": round(res.examples / res.seconds, 2) if res.seconds else None,
                     "oracle": res.oracle})
    return rows


def _median_detect(times):
    """Median over `seeds` runs, a miss (None) counting as slower than any catch."""
    ranked = sorted(times, key=lambda t: (t is None, t or 0.0))
    if len(ranked) % 2:
        return ranked[len(ranked) // 2]
    lo, hi = ranked[len(ranked) // 2 - 1], ranked[len(ranked) // 2]
    return None if lo is None or hi is None else (lo + hi) / 2


def bench_detection(seeds=SEEDS, cap=CAP_SECONDS, variant_names=None, log=None):
    """Time to detect each must-catch variant, per seed; misses recorded."""
    from impl import variants as variant_registry

    from . import campaign, families

    vs = sorted(variant_registry.load_all().values(), key=lambda v: v.qualname)
    if variant_names:
        wanted = set(variant_names)
        vs = [v for v in vs if v.qualname in wanted]
    else:
        vs = [v for v in vs if v.must_catch]
    rows = []
    for v in vs:
        fam = families.for_variant(v).name
        runs = []
        for seed in range(seeds):
            if log:
                log(f"bench tester: {v.qualname} seed {seed} (cap {cap:g}s) ...")
            t = time.monotonic()
            res = campaign.hunt_variant(fam, v.qualname, seed=seed, budget=cap)
            total = time.monotonic() - t
            caught = res.status == "discrepancy"
            detect = total - (res.shrink_seconds or 0.0) if caught else None
            runs.append({"seed": seed, "caught": caught, "detect_seconds": round(detect, 3) if caught else None,
                         "shrink_seconds": round(res.shrink_seconds, 3) if res.shrink_seconds else None,
                         "total_seconds": round(total, 3), "mode": res.mode if caught else None,
                         "oracle": res.oracle, "ops": len(res.ops) if res.ops else None,
                         "examples": res.examples})
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
    return rows


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
                 variant_names=None, proofs=True, log=_stderr):
    """The whole bench: a JSON-able report (bench "tester").  Progress on stderr."""
    t0 = time.monotonic()
    report = {"bench": "tester", "cpus": os.cpu_count(), "loadavg_start": _loadavg(),
              "plain_seconds": plain_seconds, "seeds": seeds, "cap_seconds": cap,
              "target_detect_seconds": TARGET_DETECT_SECONDS, "target_proof_seconds": TARGET_PROOF_SECONDS}
    if log:
        log("bench tester: proof suite ...")
    report["proofs"] = bench_proofs() if proofs else None
    report["throughput"] = bench_throughput(plain_seconds, family_names, log)
    report["detect"] = bench_detection(seeds, cap, variant_names, log)
    det = report["detect"]
    slow = [d["variant"] for d in det
            if d["median_seconds"] is None or d["median_seconds"] >= TARGET_DETECT_SECONDS]
    report["targets"] = {
        "detect_met": not slow, "detect_over_target": slow,
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
    for r in report["throughput"]:
        if "shares" in r:
            lines.append(f"  {r['family']:<10} (runs on the {r['shares']} machine: same campaign)")
            continue
        result = r["status"] if r["status"] != "discrepancy" else f"DISCREPANCY [{r['oracle']}]"
        lines.append(f"  {r['family']:<10} {result:<12} {r['examples']:>9} {r['steps']:>8} {r['rules']:>6} "
                     f"{r['seconds']:>8.1f} {_s(r['steps_per_second'], '{:.0f}'):>8} "
                     f"{_s(r['examples_per_second'], '{:.1f}'):>11}")
    lines.append("")
    target = report["target_detect_seconds"]
    lines.append(f"time to detect each variant: hunt_variant (modes in turn), seeds 0-{report['seeds'] - 1}, "
                 f"budget cap {report['cap_seconds']:g}s per run; wall clock to the first failing step, "
                 f"before shrinking; target: median < {target:g}s")
    w = max([len("variant")] + [len(d["variant"]) for d in report["detect"]])
    lines.append(f"  {'variant':<{w}} {'median s':>9} {'min s':>7} {'max s':>7} {'misses':>7} "
                 f"{'shrink s':>9} {'target':>7}  caught in / by")
    for d in report["detect"]:
        met = d["median_seconds"] is not None and d["median_seconds"] < target
        lines.append(f"  {d['variant']:<{w}} {_s(d['median_seconds']) if d['median_seconds'] is not None else 'MISS':>9} "
                     f"{_s(d['min_seconds']):>7} {_s(d['max_seconds']):>7} "
                     f"{str(d['misses']) + '/' + str(d['seeds']):>7} {_s(d['median_shrink_seconds']):>9} "
                     f"{'met' if met else 'NOT MET':>7}  {','.join(d['modes']) or '-'} / "
                     f"{'; '.join(d['oracles']) or '-'}")
    t = report.get("targets", {})
    lines.append("")
    lines.append(f"targets: detection {'met' if t.get('detect_met') else 'NOT MET'}"
                 + (f" (over: {', '.join(t['detect_over_target'])})" if t.get("detect_over_target") else "")
                 + (f"; proof suite {'met' if t.get('proofs_met') else 'NOT MET'}"
                    if t.get("proofs_met") is not None else "")
                 + f"; bench took {report['seconds']:.0f}s")
    return "\n".join(lines)
