"""The HTML report of `mmuspec check`: one self-contained page.

`write_report(path, summary, benches)` writes a single HTML file: inline CSS,
every plot a base64 PNG in the page, no scripts and no external URLs, so it
opens anywhere and can be mailed as one file.  It shows

  - the summary: exit code and what it means, totals, the zoo kill rate;
  - the proof obligations, each with what its verdict claims: "proved (z3,
    for all inputs)", "proved (z3, bounded)", a z3 counterexample, or unknown;
  - the plain campaigns (tested: sampled), with their statistics, per mode too;
  - the branch coverage of spec/ and impl/ those campaigns reached (tested),
    per family, with every unreached branch by file and line;
  - every counterexample (plain impl or zoo) in kernel terms, with its oracle,
    message and the command that replays or reproduces it;
  - the zoo table and plots of the benches (`collect_benches()`).

`summary` is the dict `mmuspec check --json` prints.  Per-obligation rows are
read from `summary["obligation_rows"]` ({name, family, expected, verdict,
seconds, reach}) when present; without them the page shows the totals and
the registered obligations' reach, marked as not recorded.

The page is built in memory, then written to a temporary file beside `path`
and renamed over it: a failure never leaves half a page behind.  Plots use
matplotlib's Agg canvas directly (no pyplot, no global backend switch).
"""

import base64
import glob
import html
import inspect
import io
import json
import os
import re
import tempfile
import time

EXIT_MEANING = {
    0: "everything checked holds",
    1: "a discrepancy or counterexample was found, an obligation was not as expected, "
       "or a must-catch variant was missed",
    2: "bad usage",
    3: "inconclusive: z3 unknown, or a budget too short to conclude",
}

EXIT_WORD = {0: "holds", 1: "found", 2: "bad usage", 3: "inconclusive"}

# Bench parameters for collect_benches(): the same measurements, fewer or
# smaller points, so the report costs seconds.  A bench whose function takes
# `quick` gets quick=True instead.
QUICK_ARGS = {"prefetch": {"regions": (2 << 20, 8 << 20)}, "zap": {"sizes": (100, 1_000, 10_000)}}
# Benches collect_benches() leaves out unless named: the tester bench runs
# campaigns for minutes, the coverage bench a campaign per family (check
# measures coverage on its own plain campaigns instead).
SLOW_BENCHES = ("tester", "coverage")

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px 32px;
       color: #1b1b1b; background: #fff; max-width: 1400px; }
h1 { font-size: 1.6em; margin-bottom: 4px; }
h2 { font-size: 1.25em; border-bottom: 2px solid #ccd; padding-bottom: 3px; margin-top: 32px; }
h3 { font-size: 1.05em; margin: 18px 0 6px; }
table { border-collapse: collapse; margin: 8px 0 12px; font-size: 0.88em; }
th, td { border: 1px solid #c8c8d0; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #eef0f4; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.bad td { background: #fde8e8; }
tr.warn td { background: #fff6dc; }
.ok { color: #176c2c; font-weight: 600; }
.bad { color: #b3261e; font-weight: 600; }
.warn { color: #8a5a00; font-weight: 600; }
.muted { color: #666; }
.totals { display: flex; flex-wrap: wrap; gap: 12px; margin: 10px 0; }
.totals div { border: 1px solid #c8c8d0; border-radius: 6px; padding: 8px 14px; min-width: 150px; }
.totals b { display: block; font-size: 1.4em; }
pre, code { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 0.85em; }
pre { font-size: 0.8em; background: #f6f7f9; border: 1px solid #e0e0e6; padding: 8px; overflow-x: auto; }
ol.ops { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 0.85em; margin: 4px 0; }
ol.ops li.fired { background: #fde8e8; }
.cex { border-left: 4px solid #b3261e; padding: 2px 12px; margin: 14px 0; }
.cex.zoo { border-left-color: #8a5a00; }
figure { margin: 10px 0 20px; }
figure img { max-width: 100%; border: 1px solid #e0e0e6; }
figcaption { font-size: 0.85em; color: #444; }
"""


# -- benches -------------------------------------------------------------------
def collect_benches(names=None, quick=True, params=None):
    """Run benches for the report: {name: report dict}.

    `names` defaults to every bench in diff.bench.BENCHES except the slow ones
    (SLOW_BENCHES).  With `quick`, QUICK_ARGS shrink a bench's parameters (and a
    bench taking a `quick` argument gets quick=True); the results keep their
    meaning, over fewer points.  A bench that raises is reported as
    {"bench": name, "error": ...} so the page still gets written.  Each report
    gains "collect_seconds".  `params` ({name: kwargs}) overrides QUICK_ARGS.
    """
    from diff import bench

    overrides = params or {}
    if names is None:
        names = [n for n in bench.BENCHES if n not in SLOW_BENCHES]
    out = {}
    for name in names:
        fn = bench.BENCHES[name]
        kwargs = {}
        if quick:
            try:
                accepted = inspect.signature(fn).parameters
            except (TypeError, ValueError):
                accepted = {}
            if "quick" in accepted:
                kwargs = {"quick": True}
            kwargs.update({k: v for k, v in dict(QUICK_ARGS.get(name, {}), **overrides.get(name, {})).items()
                           if k in accepted})
        t = time.monotonic()
        try:
            rep = fn(**kwargs)
        except Exception as e:  # noqa: BLE001 - shown on the page, not fatal to it
            rep = {"bench": name, "error": f"{type(e).__name__}: {e}"}
        rep = dict(rep)
        rep.setdefault("bench", name)
        rep["collect_seconds"] = round(time.monotonic() - t, 3)
        out[name] = rep
    return out


# -- plots ---------------------------------------------------------------------
def _figure(w=8.0, h=3.6):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _png(fig):
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


def plot_rmap(rep):
    walk = rep.get("walk") or []
    if not walk:
        return None
    n = [r["n"] for r in walk]
    fig = _figure(9.0, 3.6)
    ax1, ax2 = fig.subplots(1, 2)
    for side, mark in (("spec", "o-"), ("impl", "s-")):
        ax1.plot(n, [max(r[f"{side}_reads"], 1) for r in walk], mark, label=side)
        ax2.plot(n, [max(r[f"{side}_seconds"], 1e-7) for r in walk], mark, label=side)
    for ax, what in ((ax1, "slot reads (exact)"), (ax2, "seconds (median wall clock)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("rmap chain length (sptes)")
        ax.set_ylabel(what)
        ax.grid(True, which="major", alpha=0.3)
        ax.legend()
    fig.suptitle("rmap full walk (kvm_test_age_rmapp): spec rmap_next vs impl rmap iterator")
    return _png(fig)


def _flatten(row, prefix=""):
    out = {}
    for k, v in row.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "_"))
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out[key] = v
    return out


ZAP_WORK_KEYS = ("max_per_hold", "lock", "work", "visited")


def zap_series(rep):
    """(x key, xs, {work series: ys}, {seconds series: ys}) from a zap bench report, or None.

    Read tolerantly: rows under "rows" (or "points"), nested dicts flattened
    ({"spec": {"max_per_hold": 5}} is spec_max_per_hold), the x axis the first
    of shadow_pages / pages / sp_count / n, the work series the spec/impl keys
    naming the longest mmu_lock hold (diff/bench_zap.py's max_per_hold), else
    the first of lock / work / visited, else every count; the time series
    every spec/impl key naming seconds.
    """
    rows = rep.get("rows") or rep.get("points") or []
    rows = [_flatten(r) for r in rows if isinstance(r, dict)]
    if not rows:
        return None
    xkey = next((k for k in ("shadow_pages", "pages", "sp_count", "n") if all(k in r for r in rows)), None)
    if xkey is None:
        return None
    keys = [k for k in rows[0] if k != xkey and ("spec" in k or "impl" in k) and all(k in r for r in rows)]
    secs = [k for k in keys if "second" in k]
    counts = [k for k in keys if k not in secs]
    work = next(([k for k in counts if w in k] for w in ZAP_WORK_KEYS if any(w in k for k in counts)), counts)
    if not work and not secs:
        return None
    pts = sorted(rows, key=lambda r: r[xkey])
    col = lambda ks: {k: [r[k] for r in pts] for k in ks}  # noqa: E731
    return xkey, [r[xkey] for r in pts], col(work), col(secs)


def plot_zap(rep):
    s = zap_series(rep)
    if s is None:
        return None
    xkey, xs, work, secs = s
    panels = [(series, label) for series, label in (
        (work, "pages visited in the longest mmu_lock hold"
         if any("max_per_hold" in k for k in work) else "work under mmu_lock"),
        (secs, "seconds (wall clock, one run)")) if series]
    fig = _figure(4.6 * len(panels) + 0.4, 3.8)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (series, label) in zip(axes, panels):
        merged = {}  # series within 2% (the spec's first hold is its whole zap) share one line
        for name, ys in series.items():
            same = next((k for k, v in merged.items()
                         if all(abs(p - q) <= 0.02 * max(abs(p), abs(q)) for p, q in zip(v[0], ys))), None)
            if same is None:
                merged[name] = (ys, [name])
            else:
                merged[same][1].append(name)
        for name, (ys, names) in merged.items():
            ax.plot(xs, ys, "o-" if name.startswith("spec") else "s--",
                    label=" = ".join(n.replace("_", " ") for n in names))
        ax.set_xlabel(xkey.replace("_", " "))
        ax.set_ylabel(label)
        if min(xs) > 0 and max(xs) / min(xs) >= 100:
            ax.set_xscale("log")
        if all(y > 0 for ys in series.values() for y in ys):
            ax.set_yscale("log")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    batch = f" (impl batch {rep['batch']})" if "batch" in rep else ""
    fig.suptitle(f"zap every shadow page: work under mmu_lock against shadow page count{batch}", fontsize=10)
    return _png(fig)


def plot_prefetch(rep):
    rows, impls = rep.get("rows") or [], rep.get("impls") or []
    if not rows or not impls:
        return None
    fig = _figure(10.0, 4.2)
    ax = fig.subplots()
    width = 0.8 / len(impls)
    for j, label in enumerate(impls):
        xs = [i + (j - (len(impls) - 1) / 2) * width for i in range(len(rows))]
        ax.bar(xs, [max(r["faults"][label], 0.8) for r in rows], width,
               label="no prefetch" if label == "none" else label.replace("prefetch:", ""))
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels([f"{_size(r['bytes'])}\n{r['mode']}\n{r['pattern']}" for r in rows], fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("page faults taken")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.set_title("faults while the guest writes every 4K page once: with and without prefetch")
    return _png(fig)


def plot_gfn(rep):
    pb = rep.get("page_bytes")
    if not pb:
        return None
    spt, gfns = rep["spt_bytes"], rep["gfns_bytes"]
    labels, spt_b, gfn_b = [], [], []
    for kind in ("direct", "indirect"):
        for side in ("spec", "impl"):
            labels.append(f"{kind}\n{side}")
            spt_b.append(spt)
            gfn_b.append(pb[kind][side] - spt)
    fig = _figure(7.0, 3.6)
    ax = fig.subplots()
    ax.bar(range(4), spt_b, 0.6, label=f"sp->spt ({spt} bytes)")
    ax.bar(range(4), gfn_b, 0.6, bottom=spt_b, label=f"sp->gfns ({gfns} bytes, where stored)")
    for i, (a, b) in enumerate(zip(spt_b, gfn_b)):
        ax.text(i, a + b, str(a + b), ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(4))
    ax.set_xticklabels(labels)
    ax.set_ylabel("bytes per shadow page")
    ax.set_ylim(0, (spt + gfns) * 1.4)
    ax.legend(fontsize=8, loc="upper center", ncol=2)
    t = rep.get("tdp") or {}
    title = "bytes per shadow page: stored gfns (spec) vs derived gfns (impl)"
    if t:
        title += f"\nTDP guest touching {_size(t['touched_bytes'])}: saved {t['saved_percent']:.0f}%"
    ax.set_title(title, fontsize=10)
    return _png(fig)


def plot_detect(names, seconds, caught, title, target=None, xlabel="seconds to first failure"):
    """Horizontal bars: time to detect per variant; misses drawn in red at the right edge."""
    if not names:
        return None
    found = [s for s, c in zip(seconds, caught) if c and s is not None]
    top = max(found + ([target] if target else []) + [1.0])
    fig = _figure(8.0, 0.9 + 0.28 * len(names))
    ax = fig.subplots()
    ys = list(range(len(names)))[::-1]
    for y, s, c in zip(ys, seconds, caught):
        if c and s is not None:
            ax.barh(y, max(s, 0.005), color="C0")
            ax.text(max(s, 0.005) * 1.1, y, f"{s:.2f}s", va="center", fontsize=7)
        else:
            ax.text(0.011, y, "missed", va="center", fontsize=7, color="#b3261e", fontweight="bold")
    if target:
        ax.axvline(target, color="#b3261e", linestyle="--", linewidth=1, label=f"target {target:g}s")
        ax.legend(fontsize=8, loc="lower right")
    ax.set_yticks(ys)
    ax.set_yticklabels(names, fontsize=8)
    ax.set_xscale("log")
    ax.set_xlim(0.01, top * 3)
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=10)
    ax.grid(True, axis="x", alpha=0.3)
    return _png(fig)


def plot_zoo(zoo):
    return plot_detect([z["variant"] + (" *" if z.get("must_catch") else "") for z in zoo],
                       [z.get("time_to_failure") for z in zoo], [bool(z.get("caught")) for z in zoo],
                       "zoo: time to first failure per variant (* must catch), before shrinking")


def plot_tester(rep):
    det = rep.get("detect") or []
    return plot_detect([d["variant"] for d in det], [d.get("median_seconds") for d in det],
                       [d.get("median_seconds") is not None for d in det],
                       f"median time to detect over {rep.get('seeds', '?')} seeds (wall clock, "
                       f"before shrinking; cap {rep.get('cap_seconds', '?')}s per run)",
                       target=rep.get("target_detect_seconds"))


PLOTS = {
    "rmap": (plot_rmap, "rmap walk cost against chain length: the spec re-scans from the head "
                        "after every entry (quadratic), the impl iterator walks once"),
    "zap": (plot_zap, "zap work under mmu_lock against shadow page count, spec vs impl"),
    "prefetch": (plot_prefetch, "page faults with and without prefetch, per region, mode and "
                                "touch pattern (log scale)"),
    "gfn": (plot_gfn, "bytes per direct shadow page: the impl derives a direct page's gfns "
                      "instead of storing sp->gfns"),
    "tester": (plot_tester, "the tester's time to detect each must-catch variant"),
}


# -- page pieces ---------------------------------------------------------------
def _e(x):
    return html.escape("" if x is None else str(x), quote=True)


def _size(b):
    if b % (1 << 30) == 0:
        return f"{b >> 30} GB"
    if b % (1 << 20) == 0:
        return f"{b >> 20} MB"
    return f"{b >> 10} KB"


def _num(x, fmt="{:.2f}"):
    if x is None:
        return "-"
    if isinstance(x, float):
        return fmt.format(x)
    return str(x)


def _table(headers, rows, cls=None, row_classes=None, numeric=()):
    """rows: lists of cells; a cell is text (escaped) or ("html", markup)."""
    out = [f'<table{f" class={_q(cls)}" if cls else ""}><thead><tr>'
           + "".join(f"<th>{_e(h)}</th>" for h in headers) + "</tr></thead><tbody>"]
    for i, row in enumerate(rows):
        rc = row_classes[i] if row_classes else None
        cells = []
        for j, c in enumerate(row):
            td = '<td class="num">' if j in numeric else "<td>"
            cells.append(td + (c[1] if isinstance(c, tuple) else _e(c)) + "</td>")
        out.append(f"<tr{f' class={_q(rc)}' if rc else ''}>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _q(s):
    return '"' + _e(s) + '"'


def _img(png, alt, caption):
    if not png:
        return ""
    data = base64.b64encode(png).decode("ascii")
    return (f'<figure><img alt={_q(alt)} src="data:image/png;base64,{data}">'
            f"<figcaption>{_e(caption)}</figcaption></figure>")


def proof_claim(verdict, reach):
    """What a verdict claims, in the README's words."""
    reach = reach or ""
    if verdict == "proved":
        if reach.startswith("bounded"):
            return "proved (z3, bounded)"
        if reach.startswith("for all inputs"):
            return "proved (z3, for all inputs)"
        return "proved (z3)"
    if verdict == "counterexample":
        return "counterexample (z3 model)"
    if verdict == "unknown":
        return "unknown (z3 gave no answer: not proved)"
    return str(verdict)


def _summary_section(s):
    code = s.get("exit")
    meaning = EXIT_MEANING.get(code, "unknown exit code")
    cls = "ok" if code == 0 else ("warn" if code == 3 else "bad")
    ob = s.get("obligations") or {}
    fams = s.get("families") or []
    zoo = s.get("zoo") or []
    clean = sum(1 for f in fams if f.get("status") != "discrepancy")
    missed = [z["variant"] for z in zoo if z.get("must_catch") and not z.get("caught")]
    boxes = [
        ("exit code", f"{code}", EXIT_WORD.get(code, "?")),
        ("wall clock", f"{s.get('seconds', '?')} s", "the whole check"),
        ("obligations", f"{ob.get('proved', 0)} proved",
         f"{ob.get('counterexample', 0)} counterexample, {ob.get('unknown', 0)} unknown"),
        ("plain campaigns", f"{clean}/{len(fams)} clean", "tested (sampled), not proved"),
        ("zoo kill rate", s.get("zoo_kill_rate", "-"),
         "must-catch missed: " + (", ".join(missed) if missed else "none")),
    ]
    cov = s.get("coverage") or {}
    if cov.get("measured") and (cov.get("total") or {}).get("percent") is not None:
        boxes.append(("branch coverage", f"{cov['total']['percent']:.1f}%",
                      f"of reachable branches, union over families (tested)"))
    out = ["<section id=\"summary\"><h2>Summary</h2>",
           f'<p>Exit <span class="{cls}">{_e(code)}</span>: {_e(meaning)}.</p>',
           '<div class="totals">']
    for label, big, small in boxes:
        out.append(f"<div><span class=\"muted\">{_e(label)}</span><b>{_e(big)}</b>"
                   f"<span class=\"muted\">{_e(small)}</span></div>")
    out.append("</div>")
    bad = ob.get("not as expected") or []
    if bad:
        out.append(f'<p class="bad">obligations not as expected: {_e(", ".join(bad))}</p>')
    if missed:
        out.append(f'<p class="bad">must-catch variants not caught: {_e(", ".join(missed))}</p>')
    out.append("<p class=\"muted\">Every claim is one of: <b>proved</b> (z3, for all inputs or for "
               "the stated bound), <b>searched</b> (exhaustive over a stated bound) or <b>tested</b> "
               "(sampled by Hypothesis). z3 unknown is never reported as proved.</p></section>")
    return "".join(out)


def _obligations_section(s):
    rows = s.get("obligation_rows") or s.get("obligation_results")
    out = ['<section id="obligations"><h2>Proof obligations</h2>']
    if rows:
        cells, classes = [], []
        for r in rows:
            verdict, expected = r.get("verdict"), r.get("expected")
            as_expected = verdict == expected
            status = ("UNKNOWN" if verdict == "unknown" else "as expected" if as_expected else "NOT as expected")
            classes.append(None if as_expected else ("warn" if verdict == "unknown" else "bad"))
            cells.append([r.get("name"), r.get("family"), expected, verdict, proof_claim(verdict, r.get("reach")),
                          status, _num(r.get("seconds")), r.get("reach")])
        out.append(_table(["obligation", "family", "expected", "verdict", "claim", "status", "seconds",
                           "reach"], cells, cls="obligations", row_classes=classes, numeric=(6,)))
        for r in rows:
            if r.get("verdict") != "proved" and r.get("detail"):
                out.append(f"<p><code>{_e(r['name'])}</code>: {_e(r['verdict'])}: {_e(r['detail'])}</p>")
    else:
        ob = s.get("obligations") or {}
        out.append(f"<p>{_e(ob.get('proved', 0))} proved, {_e(ob.get('counterexample', 0))} counterexample, "
                   f"{_e(ob.get('unknown', 0))} unknown. This summary has no per-obligation verdicts; "
                   "the registered obligations and their reach:</p>")
        try:
            from proofs import registry

            obs = registry.load_all().values()
        except Exception:  # noqa: BLE001 - the page is still useful without them
            obs = []
        cells = [[o.name, o.family, o.expected, "(not recorded)", o.reach] for o in obs]
        out.append(_table(["obligation", "family", "expected", "verdict", "reach"], cells, cls="obligations"))
    out.append("</section>")
    return "".join(out)


def _metrics_text(m):
    if not m:
        return "-"
    return ", ".join(f"{k}: {v}" for k, v in sorted(m.items()))


def _campaigns_section(s):
    fams = s.get("families") or []
    out = ['<section id="campaigns"><h2>Differential campaigns, plain impl</h2>',
           "<p>tested (sampled): Hypothesis examples of spec, impl and the abstract model driven with "
           "the same kernel operations, compared after every step. Not proved.</p>"]
    cells, classes = [], []
    for f in fams:
        bad = f.get("status") == "discrepancy"
        secs = f.get("seconds") or 0
        rate = f.get("steps", 0) / secs if secs else None
        result = f"DISCREPANCY [{f.get('oracle')}]" if bad else f"{f.get('status')}: tested (sampled)"
        cells.append([f.get("family"), result, f.get("mode"), f.get("seed"), f.get("examples"), f.get("steps"),
                      len(f.get("rules") or []), _num(secs, "{:.1f}"), _num(rate, "{:.0f}"),
                      _metrics_text(f.get("metrics"))])
        classes.append("bad" if bad else None)
    out.append(_table(["family", "result", "mode", "seed", "examples", "steps", "distinct rules", "seconds",
                       "steps/s", "metrics"], cells, cls="campaigns", row_classes=classes,
                      numeric=(3, 4, 5, 6, 7, 8)))
    for name, other in sorted((s.get("shared_machines") or {}).items()):
        out.append(f"<p class=\"muted\">{_e(name)} runs on the {_e(other)} machine: its plain campaign is "
                   f"{_e(other)}'s.</p>")
    modes = [[f.get("family"), m, c.get("examples", 0), c.get("steps", 0), _num(c.get("seconds"), "{:.1f}")]
             for f in fams for m, c in (f.get("per_mode") or {}).items()]
    if modes:
        out.append("<h3>Per mode</h3><p class=\"muted\">Each family's modes round-robin (a round of "
                   "examples in each mode, then the next); chunks summed.</p>")
        out.append(_table(["family", "mode", "examples", "steps", "seconds"], modes, cls="per-mode",
                          numeric=(2, 3, 4)))
    for f in fams:
        if f.get("rules"):
            out.append(f"<p class=\"muted\"><b>{_e(f.get('family'))}</b> rules run: "
                       f"{_e(', '.join(f['rules']))}</p>")
    out.append("</section>")
    return "".join(out)


def _coverage_section(s):
    """Branch coverage of spec/ and impl/ under the plain campaigns
    (summary["coverage"], diff/branch_coverage.py)."""
    cov = s.get("coverage")
    out = ['<section id="coverage"><h2>Branch coverage of spec/ and impl/</h2>']
    if not cov:
        out.append("<p class=\"muted\">Not recorded in this summary.</p></section>")
        return "".join(out)
    if not cov.get("measured", True):
        out.append(f"<p class=\"warn\">{_e(cov.get('note'))}</p></section>")
        return "".join(out)
    target = cov.get("target_percent")
    out.append("<p>tested: the branches (exits of lines with more than one, as coverage.py counts them) "
               "that the sampled examples took, impl/variants/ excluded. Reachable = every branch less "
               "those listed in <code>diff/unreachable.py</code> as unreachable from the model's ops"
               f"{f'; target {target:g}% per family' if target else ''}.</p>")
    if cov.get("note"):
        out.append(f"<p class=\"{'warn' if cov.get('not_measured') else 'muted'}\">{_e(cov['note'])}</p>")
    rows, classes = [], []
    speeds = cov.get("speeds") or {}
    for name, a in list((cov.get("families") or {}).items()) + [("(union)", cov.get("total") or {})]:
        pct = a.get("percent")
        rows.append([name, f"{a.get('reached', 0)}/{a.get('reachable', 0)}",
                     "-" if pct is None else f"{pct:.1f}%", a.get("listed_unreachable", 0),
                     a.get("unreached", 0), len(a.get("files") or []),
                     _num((speeds.get(name) or {}).get("slowdown"), "{:.2f}x")])
        classes.append("warn" if target and pct is not None and pct < target else None)
    out.append(_table(["family", "branches reached/reachable", "percent", "listed unreachable", "unreached",
                       "files", "measured slowdown"], rows, cls="coverage", row_classes=classes,
                      numeric=(2, 3, 4, 5, 6)))
    for name, other in sorted((cov.get("shared_machines") or {}).items()):
        out.append(f"<p class=\"muted\">{_e(name)} runs on the {_e(other)} machine: its coverage is "
                   f"{_e(other)}'s.</p>")
    from diff.branch_coverage import _anchor

    problems = [f"{p['entry']['file']} {p['entry']['function']} {_anchor(p['entry'])}: {p['problem']}"
                for p in cov.get("problems") or ()]
    for a in list((cov.get("families") or {}).values()) + [cov.get("total") or {}]:
        for r in a.get("listed_but_reached") or ():
            e = r["entry"]
            problems.append(f"{e['file']} {e['function']} {_anchor(e)}: listed as unreachable but reached "
                            f"({a.get('family') or 'union'}): line {r['line']} -> "
                            f"{'exit' if r['to'] < 0 else r['to']}")
    if problems:
        out.append("<h3>Unreachable list problems</h3><ul>"
                   + "".join(f"<li class=\"warn\">{_e(p)}</li>" for p in dict.fromkeys(problems)) + "</ul>")
    for name, a in list((cov.get("families") or {}).items()) + [("union over families", cov.get("total") or {})]:
        cells = [[f"{f['file']}:{u['line']}", u["function"], ("html", f"<code>{_e(u['text'])}</code>"),
                  "exit" if u["to"] < 0 else u["to"], u.get("reason") or ""]
                 for f in a.get("files") or () for u in f.get("unreached") or ()]
        extra = [f for f in a.get("not_executed") or () if name == "union over families"]
        if not cells and not extra:
            continue
        out.append(f"<details><summary>unreached in {_e(name)}: {len(cells)} branches</summary>")
        if cells:
            out.append(_table(["file:line", "function", "branch line", "to", "why not taken"], cells,
                              cls="unreached"))
        if extra:
            out.append(f"<p>not executed by any family: {_e(', '.join(extra))}</p>")
        for rel in a.get("mismatched") or ():
            out.append(f"<p class=\"warn\">{_e(rel)}: not counted, its source changed since it was "
                       "measured</p>")
        out.append("</details>")
    out.append("</section>")
    return "".join(out)


_SAVED_RE = re.compile(r"saved\s+(\S+?\.json)\b")


def _saved_path(rec):
    """The counterexample file a record names (a `saved`/`file` field or a 'saved X.json' note)."""
    for key in ("saved", "file", "path", "counterexample_file"):
        v = rec.get(key)
        if isinstance(v, (list, tuple)):
            v = next((p for p in v if str(p).endswith(".json")), v[0] if v else None)
        if v:
            return str(v)
    m = _SAVED_RE.search(rec.get("note") or "")
    return m.group(1) if m else None


def _cex_key(rec):
    return (rec.get("family"), rec.get("variant"), rec.get("mode"), rec.get("seed"))


def _load_cex_files(directory):
    from diff import counterexample

    out = []
    for path in sorted(glob.glob(os.path.join(directory, "*.json"))):
        try:
            data = counterexample.load(path)
        except Exception:  # noqa: BLE001 - summary.json and friends are not counterexamples
            continue
        out.append(dict(data, saved=path, source="file"))
    return out


def _family_seed(s):
    fams = s.get("families") or []
    return s.get("seed", fams[0].get("seed", 0) if fams else 0)


def runs_on(z):
    """The diff family whose machine runs a zoo entry's variant (gfn:* run on mmu)."""
    if z.get("runs_on"):
        return z["runs_on"]
    try:
        from diff import families as family_registry
        from impl import variants

        return family_registry.for_variant(variants.get(z["variant"])).name
    except Exception:  # noqa: BLE001 - an unknown variant: its own family name
        return z.get("family") or z["variant"].split(":")[0]


def gather_counterexamples(summary, counterexamples_dir=None):
    """Every counterexample the summary and the directory know of, one record each:
    {kind ('plain impl' | 'zoo' | 'file'), family, variant, mode, seed, oracle,
    message, ops (or None), n_ops, saved (path or None), failing_step}."""
    recs = []
    for f in summary.get("families") or []:
        if f.get("status") == "discrepancy":
            recs.append({"kind": "plain impl", "family": f.get("family"), "variant": f.get("variant"),
                         "mode": f.get("mode"), "seed": f.get("seed"), "oracle": f.get("oracle"),
                         "message": f.get("message"), "ops": f.get("ops"),
                         "n_ops": len(f.get("ops") or []) or None, "saved": _saved_path(f),
                         "failing_step": f.get("failing_step"), "reproduced": f.get("reproduced"),
                         "budget": f.get("budget")})
    seed = _family_seed(summary)
    for z in summary.get("zoo") or []:
        if not z.get("caught"):
            continue
        family = runs_on(z)
        ops = z.get("ops")
        recs.append({"kind": "zoo", "family": family, "variant": z["variant"], "mode": z.get("mode"),
                     "seed": z.get("seed", seed), "oracle": z.get("oracle"), "message": z.get("message"),
                     "ops": ops, "n_ops": len(ops) if ops else z.get("counterexample_ops"),
                     "saved": _saved_path(z), "failing_step": z.get("failing_step"),
                     "reproduced": z.get("reproduced"), "budget": z.get("budget")})
    if counterexamples_dir and os.path.isdir(counterexamples_dir):
        by_key = {_cex_key(r): r for r in recs}
        for d in _load_cex_files(counterexamples_dir):
            r = by_key.get(_cex_key(d))
            if r is None and d.get("variant"):  # a zoo record without seed/mode match
                r = next((x for x in recs if x["variant"] == d["variant"] and x["mode"] == d.get("mode")
                          and not x["saved"]), None)
            if r is not None:
                r["saved"] = r["saved"] or d["saved"]
                if not r["ops"]:
                    r["ops"], r["n_ops"] = d["ops"], len(d["ops"])
                continue
            recs.append({"kind": "file", "family": d["family"], "variant": d.get("variant"),
                         "mode": d.get("mode"), "seed": d.get("seed"), "oracle": d.get("oracle"),
                         "message": d.get("message"), "ops": d["ops"], "n_ops": len(d["ops"]),
                         "saved": d["saved"], "failing_step": None, "reproduced": None, "budget": None})
    return recs


def reproduce_command(rec):
    """`mmuspec replay FILE` for a saved counterexample, else the diff that finds it again."""
    if rec.get("saved"):
        return f"mmuspec replay {rec['saved']}"
    cmd = ["mmuspec", "diff"]
    if rec.get("variant"):
        cmd += ["--variant", rec["variant"]]
    else:
        cmd += ["--family", str(rec.get("family"))]
    if rec.get("mode"):
        cmd += ["--mode", str(rec["mode"])]
    cmd += ["--seed", str(rec.get("seed") or 0)]
    if rec.get("budget"):
        cmd += ["--budget", f"{rec['budget']:g}"]
    cmd += ["--save", "cex/"]
    return " ".join(cmd)


def _describe(rec):
    from diff import counterexample

    try:
        return counterexample.describe_ops(rec["family"], rec["ops"], rec.get("mode"))
    except Exception:  # noqa: BLE001 - fall back to the raw ops
        return [json.dumps(op) for op in rec["ops"]]


def _counterexamples_section(summary, counterexamples_dir):
    if counterexamples_dir is None:
        counterexamples_dir = summary.get("save_dir")
    recs = gather_counterexamples(summary, counterexamples_dir)
    out = ['<section id="counterexamples"><h2>Counterexamples</h2>']
    if not recs:
        out.append("<p>None: no discrepancy in the plain campaigns and no zoo variant caught.</p>")
    for i, r in enumerate(recs, 1):
        who = r.get("variant") or "plain impl"
        cls = "cex zoo" if r["kind"] == "zoo" else "cex"
        out.append(f'<div class={_q(cls)} id="cex-{i}"><h3>{_e(i)}. {_e(r["kind"])}: family '
                   f'{_e(r["family"])}, {_e(who)}, mode {_e(r.get("mode"))}, seed {_e(r.get("seed"))}</h3>')
        out.append(f"<p>oracle: <b>{_e(r.get('oracle') or '-')}</b></p>")
        if r.get("message"):
            out.append(f"<pre>{_e(r['message'])}</pre>")
        if r.get("reproduced") is False:
            out.append('<p class="warn">did NOT reproduce on replay: flaky</p>')
        if r.get("ops"):
            lines = _describe(r)
            out.append(f"<p>shrunk counterexample, {len(lines)} ops, in kernel terms:</p><ol class=\"ops\">")
            for k, line in enumerate(lines):
                fired = ' class="fired"' if r.get("failing_step") == k else ""
                out.append(f"<li{fired}>{_e(line)}</li>")
            out.append("</ol>")
        else:
            n = r.get("n_ops")
            out.append(f"<p class=\"muted\">{_e(n) + ' ops; ' if n else ''}the ops were not kept in "
                       "this summary: the command below finds and saves them again.</p>")
        verb = "replay" if r.get("saved") else "reproduce"
        out.append(f"<p>{verb}: <code>{_e(reproduce_command(r))}</code></p></div>")
    out.append("</section>")
    return "".join(out)


def _zoo_section(s):
    zoo = s.get("zoo") or []
    out = [f'<section id="zoo"><h2>Variants (the zoo): kill rate {_e(s.get("zoo_kill_rate", "-"))}</h2>']
    found = any("found" in z for z in zoo)  # search, or a stored failure replayed (example database)
    symbolic = any("symbolic" in z for z in zoo)  # zoo --symbolic: CrossHair contracts (bounded search)
    cells, classes = [], []
    for z in zoo:
        caught = z.get("caught")
        sound = z.get("expected") == "passes"   # a sound later patch: it must pass
        cells.append([z["variant"], runs_on(z),
                      z.get("models") or "-", "yes" if z.get("must_catch") else
                      "no (must pass)" if sound else "no",
                      ("CAUGHT (a finding)" if sound else "caught") if caught
                      else "passes" if sound else "NOT CAUGHT", z.get("mode") if caught else "-",
                      z.get("oracle") or "-", _num(z.get("time_to_failure")), _num(z.get("shrink_seconds")),
                      z.get("counterexample_ops") or "-"] + ([z.get("found") or "-"] if found else [])
                     + ([z.get("symbolic") or "-"] if symbolic else []))
        classes.append(("bad" if sound else None) if caught else
                       ("bad" if z.get("must_catch") else None if sound else "warn"))
    out.append(_table(["variant", "runs on", "models", "must catch", "result", "mode", "oracle",
                       "first failure s", "shrink s", "cex ops"] + (["found"] if found else [])
                      + (["symbolic (bounded search)"] if symbolic else []),
                      cells, cls="zoo", row_classes=classes, numeric=(7, 8, 9)))
    if zoo:
        out.append(_img(plot_zoo(zoo), "zoo time to detect per variant",
                        "time from the start of the variant's campaign (its last mode) to the first "
                        "failing step, before shrinking; log scale"))
    out.append("</section>")
    return "".join(out)


def _bench_text(rep):
    from diff import bench

    try:
        return bench.render(rep)
    except Exception:  # noqa: BLE001 - try the bench module's own renderer, then the raw data
        pass
    try:
        import importlib

        return importlib.import_module(f"diff.bench_{rep['bench']}").render(rep)
    except Exception:  # noqa: BLE001
        return json.dumps(rep, indent=1, default=str)


def _benches_section(benches):
    out = ['<section id="benches"><h2>Benches</h2>']
    if not benches:
        out.append("<p>No benches were run.</p>")
    order = [n for n in ("rmap", "zap", "prefetch", "gfn", "tester") if n in benches]
    order += [n for n in benches if n not in order]
    for name in order:
        rep = benches[name]
        took = rep.get("collect_seconds")
        out.append(f'<h3 id="bench-{_e(name)}">{_e(name)}'
                   f'{f" <span class=muted>({took:.1f}s)</span>" if isinstance(took, (int, float)) else ""}</h3>')
        if rep.get("error"):
            out.append(f"<p class=\"bad\">bench failed: {_e(rep['error'])}</p>")
            continue
        plot, caption = PLOTS.get(name, (None, ""))
        png = None
        if plot is not None:
            try:
                png = plot(rep)
            except Exception as e:  # noqa: BLE001 - a bench of another shape: text only
                out.append(f"<p class=\"warn\">no plot: {_e(type(e).__name__)}: {_e(e)}</p>")
        out.append(_img(png, f"{name} bench", caption))
        out.append(f"<details open><summary>{_e(name)} bench, as <code>mmuspec bench {_e(name)}</code> "
                   f"prints it</summary><pre>{_e(_bench_text(rep))}</pre></details>")
    out.append("</section>")
    return "".join(out)


def render_html(summary, benches=None, counterexamples_dir=None, title="mmuspec check"):
    """The whole page as a string."""
    benches = benches or {}
    stamp = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    parts = ["<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">",
             f"<title>{_e(title)}</title><style>{CSS}</style></head><body>",
             f"<h1>{_e(title)}</h1><p class=\"muted\">generated {_e(stamp)}</p>",
             _summary_section(summary), _obligations_section(summary), _campaigns_section(summary),
             _coverage_section(summary), _counterexamples_section(summary, counterexamples_dir), _zoo_section(summary),
             _benches_section(benches), "</body></html>\n"]
    return "".join(parts)


def write_report(path, summary, benches=None, counterexamples_dir=None):
    """Write the report to `path` atomically (temp file beside it, then rename); returns path."""
    text = render_html(summary, benches, counterexamples_dir)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".report-", suffix=".html.tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)  # mkstemp's 0600 is for the temp name only
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path
