"""Branch coverage of spec/ and impl/ under the plain campaigns (coverage.py, branch=True).

What is measured: every arc (line to line, or a line out of its function)
the Python interpreter takes in the files of spec/ and impl/, impl/variants/
left out (a variant's code runs only in its hunt), while a plain campaign
runs.  A *branch* is an exit of a line with more than one possible exit (an
`if`, a loop head, a `while`, ...), as coverage.py counts it; a branch is
*reached* when the campaign took it at least once.  What the numbers claim
is **tested** (sampled): the arcs the sampled examples took, not every arc
the ops could take.

Three steps, so the measurement runs wherever the campaign runs (this
process, or a dask worker process, each measuring its own job) and only
plain JSON travels:

  measure   `measuring()`, a context manager around the campaign in the
            current thread: a `coverage.Coverage(branch=True)` kept in memory
            (no data file), source limited to spec/ and impl/; afterwards
            `.data` is {"files": {path: {"arcs": [[from, to], ...], "sha1"}},
            "seconds", "tracer"}, paths relative to the checkout;
  merge     `merge(datas)`: the union of the arcs of several jobs (chunks,
            workers, families);
  analyze   `analyze(data, ...)`, in the process that reports: each file's
            possible arcs and branch lines come from coverage.py's own parser
            of the file as it is now (a file whose sha1 differs from the
            measured one was edited since, or the worker ran another
            checkout: it is listed as mismatched, not counted); the unreached
            branches, minus those listed in diff/unreachable.py as
            unreachable from the model's ops, with the reason.

The unreachable list is keyed by a stable anchor, not a line number: the
file, the function's qualified name (coverage.py's code regions, e.g.
"ShadowMmu.mmu_set_spte"), a snippet of the branch line's source and,
optionally, the exit (a snippet of the destination line, or "exit" for the
jump out of the function).  An entry that matches no branch of the current
source is reported as *stale*; one that matches more than one branch line of
its function (and whose exit, if it names one, does not tell them apart) is
*ambiguous* (not applied: lengthen the snippet); one whose
branch a campaign did reach is *reached* (its reason is wrong).  An entry
without a snippet (`whole_function()`) names every branch line of its
function, for code a family's ops never run (a paging mode, a TLB, a caller
the family has not): stale when the function is gone or has no branch left,
reached for each of its branches a campaign takes.

Scope: a family's numbers count the files its campaign executed (at least
one arc); the union counts every file of spec/ and impl/ (not variants), so a
file no family runs shows with all its branches unreached.  A listed entry
with `families` set applies to those families only (a branch the rmap
machine cannot reach may be the mmu machine's to reach), and so does not
lower the union's denominator.

Cost: the C tracer in branch mode slows a campaign down (see
`COVERAGE_SLOWDOWN`); `mmuspec check` measures one chunk per family and the
time comes out of the chunk's own budget.
"""

import hashlib
import os
import threading
from dataclasses import dataclass

from .watchdog import DEFAULT_EXAMPLE_SECONDS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the checkout
MEASURED_DIRS = ("spec", "impl")
OMITTED_DIRS = ("impl/variants",)
FORMAT = 1

# Measured on the 2-core development machine (Python 3.11.7, coverage 7.17.3,
# CTracer, branch=True), steps per second of a plain campaign without and with
# measurement (tested: single runs, other work sharing the cores): 20 s
# campaigns, seed 0, in turn: rmap 4.2x, walk 1.7x, mmu 3.4x, zap 3.4x; the
# chunks of one `mmuspec check --budget 420` (measured beside unmeasured):
# mmu 3.2x, rmap 2.1x, walk 2.1x, zap 4.5x.  Over 2x, so check measures one
# chunk per family and plans its rounds to take this much longer.
COVERAGE_SLOWDOWN = 3.5

# A measured campaign runs at least COVERAGE_MIN_EXAMPLES examples whatever
# the budget, so a family whose examples are slow (a live VM per example) is
# not measured on a handful.  Measured (tested, seed 0, bench coverage of the
# live family alone): 29 examples reached 91.4% of its reachable branches, 54
# 95.4%, 79 97.0%.
COVERAGE_MIN_EXAMPLES = 75
# The per-example watchdog (diff/watchdog.py) is set for campaigns at full
# speed; a measured one runs up to COVERAGE_SLOWDOWN times slower, and a long
# example then passed the 20 s limit and was reported as "livelock": an
# unsync example of 356 ops (mixed mode, a 600 s check's measured chunk, two
# campaigns sharing the cores) that replays in 2.3 s alone, 9.7 s under
# coverage (tested: one replay each).  Its limit grows by the same factor.
COVERAGE_EXAMPLE_SECONDS = DEFAULT_EXAMPLE_SECONDS * COVERAGE_SLOWDOWN


def sample_args(modes, full_rounds=True):
    """run_campaign's arguments for a campaign of `modes` modes measured for
    coverage.  bench coverage samples each mode with full rounds from the
    first (campaign.EXAMPLES_PER_ROUND examples in every mode), not a hunt's
    quick first rounds; check's measured chunks keep the quick first rounds
    (`full_rounds` False: five full rounds under coverage cost a five-mode
    family over 2 minutes of a 10-minute check) where they serve, which is
    reaching every mode early: a family of one mode has full rounds."""
    from . import campaign

    full = full_rounds or modes == 1
    first = campaign.EXAMPLES_PER_ROUND if full else campaign.FIRST_ROUND_EXAMPLES
    return {"first_round": first, "min_examples": COVERAGE_MIN_EXAMPLES,
            "example_seconds": COVERAGE_EXAMPLE_SECONDS}


# -- the unreachable list's entries -------------------------------------------------
@dataclass(frozen=True)
class Unreachable:
    """A branch (or every exit of a branch line) the plain campaigns cannot reach.

    `file`: path from the checkout ("spec/mmu.py"); `function`: the qualified
    name of the function holding the branch line ("ShadowMmu.mmu_set_spte");
    `line`: a snippet of that line's source (it must be on exactly one branch
    line of the function, or, on several lines of the same text, `to` must be
    an exit of one of them only), or None: every branch line of the function (its
    own lines as coverage.py's code regions give them: a function nested in
    it is a region of its own, not included), for a function no op of the
    listed families calls (`whole_function()` writes such an entry); `to`:
    None (every exit of the line), "exit" (the exit out of the function) or
    a snippet of the destination line (only with a `line`; a snippet equal
    to one exit's whole line names that exit alone); `families`: None
    (every family) or the plain campaigns it applies to; `why`: the reason,
    in kernel terms.

    A whole-function entry is anchored like a line entry: a function that no
    longer exists, or has no branch line left, makes it stale; each of its
    branches a campaign reaches is reported as listed but reached."""

    file: str
    function: str
    line: str | None
    why: str
    to: str | None = None
    families: tuple | None = None

    def __post_init__(self):
        for name in ("file", "function", "line", "why"):
            if name == "line" and self.line is None:
                continue
            if not isinstance(getattr(self, name), str) or not getattr(self, name).strip():
                raise ValueError(f"unreachable entry {self.file}:{self.function}: `{name}` must be "
                                 f"a non-empty string" + (" or None" if name == "line" else ""))
        if self.line is None and self.to is not None:
            raise ValueError(f"unreachable entry {self.file}:{self.function}: `to` needs a `line` "
                             f"(an entry for every branch of the function has every exit)")
        if self.families is not None and (isinstance(self.families, str) or not self.families):
            raise ValueError(f"unreachable entry {self.file}:{self.function}: `families` must be "
                             f"a tuple of family names or None")

    def applies_to(self, family):
        """True for every family if `families` is None; for the union (family None)
        only an entry that holds for every family."""
        if self.families is None:
            return True
        return family is not None and family in self.families

    @property
    def whole(self):
        """True for an entry that lists every branch line of its function."""
        return self.line is None

    def anchor(self):
        """How reports name the entry's branch line(s): the snippet, repr'd, or
        "every branch line" for a whole-function entry."""
        return "every branch line" if self.whole else repr(self.line)

    def key(self):
        return {"file": self.file, "function": self.function, "line": self.line, "to": self.to,
                "families": list(self.families) if self.families else None, "why": self.why,
                "whole_function": self.whole}


def whole_function(file, function, why, families=None):
    """An entry for every branch line of `function` in `file` (Unreachable with
    line None): a function the listed families' ops never call, or whose every
    branch depends on a state they never build."""
    return Unreachable(file, function, None, why=why, families=families)


def load_entries():
    """The entries of diff/unreachable.py (ENTRIES)."""
    from . import unreachable

    entries = tuple(unreachable.ENTRIES)
    for e in entries:
        if not isinstance(e, Unreachable):
            raise ValueError(f"diff/unreachable.py: every entry must be an Unreachable(...), not {e!r}")
    return entries


# -- measure ------------------------------------------------------------------------
def _dirs(root=ROOT):
    return [os.path.join(root, d) for d in MEASURED_DIRS]


def _omitted(root=ROOT):
    return [os.path.join(root, d, "*") for d in OMITTED_DIRS]


def _rel(path, root=ROOT):
    return os.path.relpath(os.path.realpath(path), os.path.realpath(root)).replace(os.sep, "/")


def _in_scope(rel):
    top = rel.split("/", 1)[0]
    return (top in MEASURED_DIRS and rel.endswith(".py")
            and not any(rel == d or rel.startswith(d + "/") for d in OMITTED_DIRS))


def source_files(root=ROOT):
    """Every measured file, as paths relative to the checkout, sorted."""
    out = []
    for d in MEASURED_DIRS:
        for dirpath, dirnames, filenames in os.walk(os.path.join(root, d)):
            dirnames[:] = sorted(n for n in dirnames if n != "__pycache__")
            for f in filenames:
                rel = _rel(os.path.join(dirpath, f), root)
                if _in_scope(rel):
                    out.append(rel)
    return sorted(out)


def _sha1(path):
    try:
        with open(path, "rb") as f:
            return hashlib.sha1(f.read()).hexdigest()
    except OSError:
        return None


class measuring:
    """`with measuring() as m: ...`: branch coverage of spec/ and impl/ in this
    thread (and threads it starts) while the block runs; `m.data` afterwards.

    The data is kept in memory (no .coverage file): a Coverage object with
    data_file=None.  coverage.py runs one measurement at a time in a process
    (a second start() pauses the first), so measurements in one process are
    serialized by a lock: a dask worker with several threads runs its
    measured jobs one after another (check's workers have one thread)."""

    _lock = threading.Lock()

    def __init__(self, root=ROOT):
        self.root = root
        self.data = None
        self._cov = None
        self._t0 = None

    def __enter__(self):
        import time

        import coverage

        self._cov = coverage.Coverage(data_file=None, branch=True, config_file=False,
                                      source=_dirs(self.root), omit=_omitted(self.root))
        self._cov.set_option("run:disable_warnings", ["no-data-collected", "module-not-measured",
                                                      "module-not-imported"])
        measuring._lock.acquire()
        self._t0 = time.monotonic()
        try:
            self._cov.start()
        except BaseException:
            measuring._lock.release()
            raise
        return self

    def __exit__(self, *exc):
        import time

        try:
            self._cov.stop()
        finally:
            measuring._lock.release()
        seconds = time.monotonic() - self._t0
        self.data = collect(self._cov, self.root)
        self.data["seconds"] = round(seconds, 3)
        return False


def collect(cov, root=ROOT):
    """The stopped Coverage `cov`'s arcs as plain JSON (see the module doc)."""
    data = cov.get_data()
    files = {}
    for path in sorted(data.measured_files()):
        rel = _rel(path, root)
        arcs = data.arcs(path) or []
        if not _in_scope(rel) or not arcs:
            continue
        files[rel] = {"sha1": _sha1(path), "arcs": sorted([a, b] for a, b in arcs)}
    tracer = None
    try:
        tracer = cov._collector.tracer_name()  # "CTracer" (the fast one) or "PyTracer"
    except Exception:  # noqa: BLE001 - informational only
        pass
    return {"format": FORMAT, "files": files, "tracer": tracer}


# -- merge --------------------------------------------------------------------------
def merge(datas):
    """The union of several measurements (None entries are skipped), or None if
    there is none.  Arcs of a file measured on different sources (sha1) are
    not united: the file is listed in "mismatched"."""
    datas = [d for d in datas if d]
    if not datas:
        return None
    files, mismatched = {}, set()
    for d in datas:
        mismatched.update(d.get("mismatched") or ())
        for rel, f in (d.get("files") or {}).items():
            into = files.get(rel)
            if into is None:
                files[rel] = {"sha1": f.get("sha1"), "arcs": {tuple(a) for a in f["arcs"]}}
            elif into["sha1"] != f.get("sha1"):
                mismatched.add(rel)
            else:
                into["arcs"].update(tuple(a) for a in f["arcs"])
    return {"format": FORMAT,
            "files": {rel: {"sha1": f["sha1"], "arcs": sorted(list(a) for a in f["arcs"])}
                      for rel, f in sorted(files.items())},
            "mismatched": sorted(mismatched),
            "seconds": round(sum(d.get("seconds") or 0.0 for d in datas), 3),
            "tracer": next((d.get("tracer") for d in datas if d.get("tracer")), None),
            "jobs": sum(d.get("jobs", 1) for d in datas)}


# -- analyze ------------------------------------------------------------------------
class _File:
    """One source file as coverage.py parses it now: branch lines, their possible
    exits, the function of each line, the line texts."""

    _cache = {}
    _cov = None  # one Coverage object for its configuration (exclusion rules)

    def __init__(self, rel, root):
        import coverage
        from coverage.python import PythonFileReporter

        self.rel = rel
        self.path = os.path.join(root, rel)
        self.sha1 = _sha1(self.path)
        if _File._cov is None:
            _File._cov = coverage.Coverage(data_file=None, branch=True, config_file=False)
        self.fr = PythonFileReporter(self.path, _File._cov)
        with open(self.path, encoding="utf-8") as f:
            self.lines = f.read().splitlines()
        exits = {}
        for a, b in self.fr.arcs():
            exits.setdefault(a, set()).add(b)
        self._single = {a: next(iter(bs)) for a, bs in exits.items() if len(bs) == 1}
        counts = self.fr.exit_counts()
        no_branch = self.fr.no_branch_lines()
        excluded = self.fr.excluded_lines()
        self.branches = {a: sorted(b for b in exits.get(a, ()) if b not in excluded)
                         for a, n in counts.items() if n > 1 and a not in no_branch}
        self.function = {}
        for region in self.fr.code_regions():
            if region.kind == "function":
                for ln in region.lines:
                    self.function[ln] = region.name

    @classmethod
    def get(cls, rel, root):
        path = os.path.join(root, rel)
        try:
            st = os.stat(path)
        except OSError:
            return None
        key = (path, st.st_mtime_ns, st.st_size)
        if key not in cls._cache:
            cls._cache[key] = cls(rel, root)
        return cls._cache[key]

    def executed(self, arcs):
        """The measured arcs in the parser's terms, as coverage.py's own analysis
        takes them (results.analysis_from_file_reporter): lines of a multi-line
        statement mapped to its first line, a self-arc to the line's one exit."""
        arcs = self.fr.translate_arcs(tuple(a) for a in arcs)
        out = {(a, b) for a, b in arcs if a != b}
        out |= {(a, self._single[a]) for a, b in arcs if a == b and a in self._single}
        return self.fr.translate_arcs(out)

    def text(self, ln):
        return self.lines[ln - 1].strip() if 0 < ln <= len(self.lines) else ""

    def exit_text(self, a, b):
        """The destination of arc (a, b): "exit" out of the function, else line b's text."""
        return "exit" if b < 0 else self.text(b)

    def reason(self, a, b):
        """coverage.py's description of a missed arc, without its "line N didn't ... " lead."""
        try:
            desc = self.fr.missing_arc_description(a, b)
        except Exception:  # noqa: BLE001 - a description is a nicety
            return ""
        _, sep, why = desc.partition(" because ")
        return why if sep else desc


def _match(entry, f):
    """The branch arcs of file `f` (a _File) that `entry` names, and a problem
    (None, "stale: ..." or "ambiguous: ...")."""
    if entry.whole:
        lines = [a for a in f.branches if f.function.get(a) == entry.function]
        if not lines:
            if entry.function in set(f.function.values()):
                return [], f"stale: {f.rel} {entry.function} has no branch line"
            return [], f"stale: {f.rel} has no function {entry.function}"
        return [(a, b) for a in sorted(lines) for b in f.branches[a]], None
    lines = [a for a in f.branches if f.function.get(a) == entry.function and entry.line in f.text(a)]
    if len(lines) > 1 and entry.to is not None:
        # Two lines of the same text (two `for i in range(4):` loops): the exit named
        # may tell them apart; it must then belong to one of them only.
        with_to = [a for a in lines if any((b < 0) if entry.to == "exit" else (b > 0 and entry.to in f.text(b))
                                           for b in f.branches[a])]
        lines = with_to if len(with_to) == 1 else lines
    if not lines:
        where = "function" if entry.function in set(f.function.values()) else "no function"
        return [], (f"stale: no branch line of {entry.function} contains {entry.line!r}"
                    if where == "function" else f"stale: {f.rel} has no function {entry.function}")
    if len(lines) > 1:
        return [], (f"ambiguous: {len(lines)} branch lines of {entry.function} contain {entry.line!r} "
                    f"(lines {', '.join(map(str, sorted(lines)))}): lengthen the snippet")
    a = lines[0]
    if entry.to is None:
        arcs = [(a, b) for b in f.branches[a]]
    elif entry.to == "exit":
        arcs = [(a, b) for b in f.branches[a] if b < 0]
    else:
        arcs = [(a, b) for b in f.branches[a] if b > 0 and entry.to in f.text(b)]
        exact = [(a, b) for a, b in arcs if f.text(b) == entry.to.strip()]
        arcs = exact if len(arcs) > 1 and exact else arcs   # `return lo` vs `return lo | ...`
    if not arcs:
        return [], f"stale: no exit of line {a} ({f.text(a)!r}) goes to {entry.to!r}"
    return arcs, None


def check_entries(entries=None, root=ROOT):
    """Each entry's problem against the current source: [{entry, problem}] for the
    stale and ambiguous ones (an entry whose file is gone is stale)."""
    entries = load_entries() if entries is None else entries
    return [{"entry": e.key(), "problem": problem}
            for e, _, problem in _matched(entries, root) if problem]


def _matched(entries, root):
    """(entry, its arcs, its problem or None) for each entry, against the source."""
    for e in entries:
        f = _File.get(e.file, root) if _in_scope(e.file) else None
        if f is None:
            yield e, None, f"stale: no measured file {e.file}"
            continue
        arcs, problem = _match(e, f)
        yield e, arcs, problem


def analyze(data, family=None, scope=None, entries=None, root=ROOT):
    """Branch coverage of `data` (measure/merge output, or None for nothing run).

    `family`: the plain campaign the data is of (selects the entries that
    apply), or None for the union.  `scope`: the files counted; default the
    files `data` executed for a family, every measured file for the union.
    Returns {family, branches, reached, listed_unreachable, reachable,
    percent, files: [{file, branches, reached, listed_unreachable,
    unreached: [{line, function, text, to, to_text, reason}]}], unreached
    (count), not_executed, mismatched, listed_but_reached, problems}."""
    entries = load_entries() if entries is None else entries
    data = data or {"files": {}}
    measured = data.get("files") or {}
    mismatched = set(data.get("mismatched") or ())
    if scope is None:
        scope = sorted(measured) if family is not None else source_files(root)
    unreach, problems = {}, []
    for e, arcs, problem in _matched(entries, root):
        if problem:
            problems.append({"entry": e.key(), "problem": problem})
        elif e.applies_to(family):
            for arc in arcs:
                unreach.setdefault((e.file, arc), e)
    out_files, totals = [], {"branches": 0, "reached": 0, "listed": 0}
    listed_reached, not_executed = [], []
    for rel in scope:
        f = _File.get(rel, root)
        if f is None:
            continue
        got = measured.get(rel)
        if got is not None and got.get("sha1") and got["sha1"] != f.sha1:
            mismatched.add(rel)
        if rel in mismatched:
            continue
        executed = f.executed((got or {}).get("arcs", ()))
        if not executed:
            not_executed.append(rel)
        row = {"file": rel, "branches": 0, "reached": 0, "listed_unreachable": 0, "unreached": []}
        for a in sorted(f.branches):
            for b in f.branches[a]:
                row["branches"] += 1
                entry = unreach.get((rel, (a, b)))
                if (a, b) in executed:
                    row["reached"] += 1
                    if entry is not None:
                        listed_reached.append({"entry": entry.key(), "line": a, "to": b})
                elif entry is not None:
                    row["listed_unreachable"] += 1
                else:
                    row["unreached"].append({"line": a, "function": f.function.get(a, "<module>"),
                                             "text": f.text(a), "to": b, "to_text": f.exit_text(a, b),
                                             "reason": f.reason(a, b)})
        totals["branches"] += row["branches"]
        totals["reached"] += row["reached"]
        totals["listed"] += row["listed_unreachable"]
        out_files.append(row)
    reachable = totals["branches"] - totals["listed"]
    return {"family": family, "branches": totals["branches"], "reached": totals["reached"],
            "listed_unreachable": totals["listed"], "reachable": reachable,
            "percent": round(100.0 * totals["reached"] / reachable, 1) if reachable else None,
            "unreached": sum(len(r["unreached"]) for r in out_files),
            "files": out_files, "not_executed": not_executed, "mismatched": sorted(mismatched),
            "listed_but_reached": listed_reached, "problems": problems,
            "measured_seconds": data.get("seconds"), "tracer": data.get("tracer")}


TARGET_PERCENT = 95.0  # the goal (issue): reached / reachable per family


def report(per_family, root=ROOT, entries=None, note=None, every_file=True):
    """The coverage record of check and `bench coverage`: {families: {name:
    analyze(...)}, total: analyze(union), problems, target_percent, note}.
    `per_family`: {family: measurement or None}.  The union counts every
    measured file (`every_file`), or, when some families were not measured,
    only the files the measured ones executed."""
    entries = load_entries() if entries is None else entries
    fams = {name: analyze(d, family=name, entries=entries, root=root) for name, d in per_family.items()}
    union = merge(list(per_family.values()))
    total = analyze(union, family=None, entries=entries, root=root,
                    scope=None if every_file else sorted((union or {}).get("files") or ()))
    problems = total.pop("problems")
    for a in fams.values():
        a.pop("problems")
    return {"families": fams, "total": total, "problems": problems, "target_percent": TARGET_PERCENT,
            "note": note}


# -- text -----------------------------------------------------------------------------
def _pct(a):
    return "-" if a.get("percent") is None else f"{a['percent']:.1f}%"


def summary_rows(rec):
    """Rows of the per-family table: family, reached/reachable, percent, listed, unreached."""
    rows = []
    for name, a in list(rec["families"].items()) + [("(union)", rec["total"])]:
        rows.append([name, f"{a['reached']}/{a['reachable']}", _pct(a), a["listed_unreachable"],
                     a["unreached"], len(a["files"])])
    return rows


SUMMARY_HEADERS = ["family", "branches reached/reachable", "percent", "listed unreachable", "unreached",
                   "files"]


def unreached_lines(a, indent="  "):
    """The unreached branches of one analysis, grouped by file, one line each:
    `file:line  function  source -> destination  (why)`."""
    lines = []
    for row in a["files"]:
        if not row["unreached"]:
            continue
        lines.append(f"{indent}{row['file']} ({row['reached']}/{row['branches'] - row['listed_unreachable']}"
                     f" reachable branches reached):")
        for u in row["unreached"]:
            dest = "exit" if u["to"] < 0 else f"{u['to']}"
            lines.append(f"{indent}  {row['file']}:{u['line']} -> {dest}  {u['function']}  "
                         f"`{u['text']}`  ({u['reason']})")
    for rel in a.get("mismatched") or ():
        lines.append(f"{indent}{rel}: not counted, its source changed since it was measured")
    return lines


def _anchor(key):
    """An entry's key() as reports name its line(s) (Unreachable.anchor)."""
    return "every branch line" if key.get("line") is None else repr(key["line"])


def problem_lines(rec, indent="  "):
    out = []
    for p in rec.get("problems") or ():
        e = p["entry"]
        out.append(f"{indent}diff/unreachable.py: {e['file']} {e['function']} {_anchor(e)}: {p['problem']}")
    seen = set()
    for a in list(rec["families"].values()) + [rec["total"]]:
        for r in a.get("listed_but_reached") or ():
            e = r["entry"]
            k = (e["file"], e["function"], e["line"], e["to"], r["line"], r["to"])
            if k in seen:
                continue
            seen.add(k)
            fam = f" (in {a['family']})" if a["family"] else ""
            out.append(f"{indent}diff/unreachable.py: {e['file']} {e['function']} {_anchor(e)}: "
                       f"listed as unreachable but reached{fam}: line {r['line']} -> "
                       f"{'exit' if r['to'] < 0 else r['to']}")
    return out


# -- mmuspec bench coverage -----------------------------------------------------------------
BENCH_SECONDS = 10.0
BENCH_STEPS = None  # the campaigns' stateful step count (None: campaign.DEFAULT_STEPS); tests lower it


def plain_machines(family_names=None):
    """{family: the family whose machine runs its plain campaign}: a family that
    shares another's machine and world (prefetch on mmu) maps to it."""
    from . import families

    fams = families.load_all()
    names = list(family_names) if family_names else list(fams)
    machines, out = {}, {}
    # the machine's own family (MmuMachine's is mmu, defined beside it) runs first, then by name
    home = sorted(fams, key=lambda n: fams[n].machine.__module__.rpartition(".")[2] != n)
    for name in home:
        fam = fams[name]
        machines.setdefault((fam.machine, fam.make_world), name)
    for name in fams:
        fam = fams[name]
        key = (fam.machine, fam.make_world)
        if name in names:
            out[name] = machines[key]
    return out


def bench_coverage(budget=BENCH_SECONDS, seed=0, family_names=None, log=None, quick=False):
    """`mmuspec bench coverage`: each machine's plain campaign (every mode,
    round-robin) for `budget` seconds in this process, under branch coverage;
    per family and for the union, reached / reachable branches and the
    unreached ones; "measured" keeps each family's arcs (measuring's data) so
    the record can be analysed again (analyze, report) after an edit of
    diff/unreachable.py.  `quick` (the HTML report's quick benches) is 2 s."""
    import gc
    import time

    from . import campaign, families

    if quick:
        budget = min(budget, 2.0)
    t0 = time.monotonic()
    runs_on = plain_machines(family_names)
    families.load_all()
    per, runs = {}, []
    for name, machine in runs_on.items():
        if machine != name:
            runs.append({"family": name, "shares": machine})
            continue
        if log:
            log(f"bench coverage: {name}, {budget:g}s under coverage ...")
        with measuring() as m:
            res = campaign.run_campaign(name, seed=seed, budget=budget,
                                        steps=BENCH_STEPS or campaign.DEFAULT_STEPS,
                                        **sample_args(len(families.get(name).modes)))
        per[name] = m.data
        # the measured arcs stay in memory for the report: keep them (and what the
        # campaigns left) out of the cyclic GC's scans, which otherwise grow with
        # every family measured and slow the later ones past their watchdog
        gc.collect()
        gc.freeze()
        runs.append({"family": name, "status": res.status, "oracle": res.oracle,
                     "failure": res.to_dict() if res.status == "discrepancy" else None, "examples": res.examples,
                     "steps": res.steps, "seconds": round(res.seconds, 2),
                     "steps_per_second": round(res.steps / res.seconds, 1) if res.seconds else None,
                     "per_mode": res.per_mode})
    t1 = time.monotonic()
    rec = report(per, note=f"each machine's plain campaign, {budget:g}s in this process under coverage "
                           f"(seed {seed})")
    rec.update({"bench": "coverage", "budget": budget, "seed": seed, "runs": runs, "measured": per,
                "analysis_seconds": round(time.monotonic() - t1, 2),
                "seconds": round(time.monotonic() - t0, 1)})
    return rec


def render(rec, unreached=True):
    from mmuspec.output import table

    lines = [f"branch coverage of spec/ and impl/ (impl/variants/ excluded), coverage.py branch mode "
             f"({rec['total'].get('tracer') or '?'}); tested: the branches the sampled examples took"]
    if rec.get("note"):
        lines.append(rec["note"])
    for r in rec.get("runs") or ():
        if "shares" in r:
            lines.append(f"  {r['family']}: runs on the {r['shares']} machine (same plain campaign)")
        else:
            modes = ", ".join(f"{m} {c['examples']}/{c['steps']}" for m, c in (r.get("per_mode") or {}).items())
            result = r["status"] if r["status"] != "discrepancy" else f"DISCREPANCY [{r['oracle']}]"
            lines.append(f"  {r['family']}: {result}, {r['examples']} examples, {r['steps']} steps, "
                         f"{r['seconds']}s, {r['steps_per_second']} steps/s under coverage "
                         f"(examples/steps per mode: {modes})")
    lines.append("")
    lines.append(table(SUMMARY_HEADERS, summary_rows(rec)))
    lines.append(f"reachable = branches less those listed in diff/unreachable.py; target "
                 f"{rec['target_percent']:g}% per family")
    probs = problem_lines(rec)
    if probs:
        lines.append("")
        lines.append("unreachable list problems:")
        lines += probs
    if unreached:
        for name, a in list(rec["families"].items()) + [("union over families", rec["total"])]:
            body = unreached_lines(a)
            if name == "union over families" and a.get("not_executed"):
                body.append("  not executed by any family: " + ", ".join(a["not_executed"]))
            if body:
                lines.append("")
                lines.append(f"unreached in {name} ({a['unreached']}):")
                lines += body
    if "seconds" in rec:
        lines.append("")
        lines.append(f"({rec['seconds']:.0f}s; analysis {rec.get('analysis_seconds', 0):.1f}s)")
    return "\n".join(lines)
