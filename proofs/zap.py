"""z3 obligations of the zap family: Xiao's 2013 generation zap (facts section 7).

The generation scheme of impl/zap.py as a transition system over shadow
pages.  A page has: alive, sp->mmu_valid_gen, role.invalid, "held"
(root_count > 0: a vCPU still uses it as a root), its place in
active_mmu_pages (new pages and zapped held roots go to the head; the tail
walk meets the other end first) and, as ground truth the kernel does not
have, its creation epoch (how many bumps came before it).  The VM has
kvm->arch.mmu_valid_gen, the number of bumps so far and whether a
kvm_zap_obsolete_pages() walk is under way.

The transitions, one per step:

  create       kvm_mmu_get_page() makes a page stamped with the current
               generation, at the head; optionally a vCPU's new root
  acquire      kvm_mmu_get_page() finds a page is_obsolete_sp() calls current
               (and not invalid: role.word holds the bit), a vCPU loads it as root
  release      a vCPU drops a root (mmu_free_roots); an invalid one is freed
  bump         kvm_mmu_invalidate_zap_all_pages(): mmu_valid_gen_next(); a tail
               walk starts.  A bump waits for the previous walk to be done
               (slots_lock serializes them), unless a check drops that
  zap          one step of the walk: the page it reaches from the tail, i.e. an
               obsolete page that is not invalid, with only obsolete invalid
               pages (skipped) below it; kvm_mmu_prepare_zap_page() marks a held
               root invalid and moves it to the head, and frees any other page.
               The walk restarts from the tail after each zap, and lock breaks
               let every other transition run between two zaps
  walk done    the walk finds nothing left to zap: it reached a page
               is_obsolete_sp() calls current, or the head
  other zap    kvm_mmu_prepare_zap_page() from another path (write flooding,
               kvm_mmu_unprotect_page, make_mmu_pages_available) of any page
  nothing

The claim: every alive page that is_obsolete_sp() calls current was created
after the last bump.  The rules are the impl class's own,
`mmu_valid_gen_next(gen, mmu_valid_gen_bits)` and `is_obsolete_gen(sp_gen,
sp_invalid, kvm_gen)`, evaluated on z3 terms (impl.mmu.ShadowMmu, or a
variant's class under `mmuspec prove --variant`).

Two proofs of it:

- a bounded model check: every trace of up to STEPS steps over SLOTS page
  slots from the initial state (a freed slot is reused); the generation a
  bit-vector of the impl's width, 64 bits (the kernel's unsigned long) when
  the impl's is unbounded, which cannot wrap within STEPS bumps.  A
  counterexample is a shortest trace, printed as kernel operations;
- an inductive invariant, for any number of pages: pages are an
  uninterpreted sort, so a state is any set of pages.  The invariant is
  universally quantified over pages (and pairs of pages); the check that a
  step keeps it instantiates those quantifiers at the pages the step names:
  the page it changes, the page(s) that would break the invariant after it,
  and for "walk done" the first page the walk did not skip.  Using only
  some instances of true universal facts is sound, so "proved" holds for
  every number of pages; a failed check may be an artefact, which is why a
  failure is reported as a counterexample only with a real trace from the
  bounded check.  An unbounded generation is an unbounded integer there
  (the kernel's unsigned long, modelled as never wrapping).

zap.single_bit_needs_complete_zap documents the precondition the single
toggling bit (5.3) relies on.  It is an obligation on the impl class's own
rules, at the class's width or at 1 bit when the class's generation is
unbounded (an unbounded counter needs no precondition: the counter invariant
never mentions the walk), with bumps allowed at any time; expected: a
counterexample.  Its detail also runs the same rules with every bump waiting,
which tells the two single-bit forms apart: fac026dac0bc's rule is then
proved, 3.11's rule still fails (the invalid root).
"""

import time
from dataclasses import dataclass

import z3

from .registry import COUNTEREXAMPLE, PROVED, UNKNOWN, Verdict, obligation

SLOTS = 4             # page slots of the bounded check
STEPS = 10            # steps of the bounded check
UNBOUNDED_WIDTH = 64  # the kernel's unsigned long
AGE_BITS = 8          # bumps since a page's creation, in the bounded check (<= STEPS)

# Transitions in the order a trace is printed with (the first that matches a step).
OPS = ("create", "create root", "acquire", "release", "bump", "zap", "walk done", "other zap",
       "nothing")


def _mmu(impl_cls):
    if impl_cls is not None:
        return impl_cls
    from impl.mmu import ShadowMmu

    return ShadowMmu


def _as_bool(x):
    return x if z3.is_expr(x) else z3.BoolVal(bool(x))


@dataclass(frozen=True)
class Rules:
    """The impl class's generation rules at its width (or at a forced one)."""
    cls: type
    bits: object          # None: unbounded
    forced: bool = False  # bits forced, the class's own generation being unbounded

    @classmethod
    def of(cls, impl_cls, force_bits=None):
        mmu = _mmu(impl_cls)
        bits = mmu.mmu_valid_gen_bits
        if bits is None and force_bits is not None:
            return cls(mmu, force_bits, True)
        return cls(mmu, bits)

    @property
    def width(self):
        return UNBOUNDED_WIDTH if self.bits is None else self.bits

    def next(self, gen):
        return self.cls.mmu_valid_gen_next(gen, self.bits)

    def obsolete(self, sp_gen, sp_invalid, kvm_gen):
        return _as_bool(self.cls.is_obsolete_gen(sp_gen, sp_invalid, kvm_gen))

    def describe(self):
        rule = getattr(self.cls.is_obsolete_gen, "__name__", "is_obsolete_gen")
        width = "unbounded" if self.bits is None else f"{self.bits}-bit"
        forced = " (forced: the class's own is unbounded)" if self.forced else ""
        return f"{width} generation{forced}, is_obsolete_sp rule {rule}"


class _Deadline:
    def __init__(self, timeout_ms):
        self.end = time.monotonic() + timeout_ms / 1000

    def left_ms(self):
        return int((self.end - time.monotonic()) * 1000)


def _check(solver, deadline):
    """(z3 result, reason when unknown); nothing is run once the deadline has passed."""
    left = deadline.left_ms()
    if left <= 0:
        return z3.unknown, "timeout"
    solver.set("timeout", left)
    r = solver.check()
    return r, (solver.reason_unknown() if r == z3.unknown else "")


def _bumps(n):
    return f"{n} bump" + ("" if n == 1 else "s")


# -- the bounded model check --------------------------------------------------
class _State:
    """One step's state: SLOTS page slots.  below[j][i]: page j lies nearer the
    tail than page i (the order of active_mmu_pages among alive pages)."""

    def __init__(self, t, n, width):
        self.n = n
        self.alive = [z3.Bool(f"alive_{t}_{i}") for i in range(n)]
        self.gen = [z3.BitVec(f"gen_{t}_{i}", width) for i in range(n)]
        self.age = [z3.BitVec(f"age_{t}_{i}", AGE_BITS) for i in range(n)]
        self.inv = [z3.Bool(f"invalid_{t}_{i}") for i in range(n)]
        self.held = [z3.Bool(f"held_{t}_{i}") for i in range(n)]
        self.below = [[z3.Bool(f"below_{t}_{j}_{i}") if i != j else z3.BoolVal(False)
                       for i in range(n)] for j in range(n)]
        self.kvm_gen = z3.BitVec(f"kvm_gen_{t}", width)
        self.walking = z3.Bool(f"walking_{t}")


def _obs(rules, s, i):
    return rules.obsolete(s.gen[i], s.inv[i], s.kvm_gen)


def _zappable(rules, s, i):
    """The tail walk reaches page i and zaps it: obsolete, not invalid, and every
    alive page below it obsolete and invalid (skipped)."""
    below = [z3.Implies(z3.And(s.alive[j], s.below[j][i]), z3.And(_obs(rules, s, j), s.inv[j]))
             for j in range(s.n) if j != i]
    return z3.And(s.alive[i], _obs(rules, s, i), z3.Not(s.inv[i]), *below)


def _update(pre, post, slot=None, page=None, to_head=False, bump=None, walking=None):
    """post equals pre except: slot's fields in `page`, slot moved to the head,
    a bump (new kvm_gen, every page one bump older), `walking`."""
    page = page or {}
    eqs = []
    for j in range(pre.n):
        for f in ("alive", "gen", "inv", "held"):
            new = page[f] if (j == slot and f in page) else getattr(pre, f)[j]
            eqs.append(getattr(post, f)[j] == new)
        age = page["age"] if (j == slot and "age" in page) else (
            pre.age[j] + 1 if bump is not None else pre.age[j])
        eqs.append(post.age[j] == age)
        for i in range(pre.n):
            if i == j:
                continue
            if to_head and i == slot:
                new = z3.BoolVal(True)
            elif to_head and j == slot:
                new = z3.BoolVal(False)
            else:
                new = pre.below[j][i]
            eqs.append(post.below[j][i] == new)
    eqs.append(post.kvm_gen == (bump if bump is not None else pre.kvm_gen))
    eqs.append(post.walking == (walking if walking is not None else pre.walking))
    return z3.And(*eqs)


def _cases(rules, pre, post, wait_for_walk=True, other_zaps=True):
    """[(op, slot or None, formula)] in OPS order."""
    out = []
    for name in OPS:
        for i in range(pre.n):
            zapped = {"alive": pre.held[i], "inv": z3.BoolVal(True)}
            if name in ("create", "create root"):
                f = z3.And(z3.Not(pre.alive[i]), _update(pre, post, i, {
                    "alive": z3.BoolVal(True), "gen": pre.kvm_gen, "age": z3.BitVecVal(0, AGE_BITS),
                    "inv": z3.BoolVal(False), "held": z3.BoolVal(name == "create root")},
                    to_head=True))
            elif name == "acquire":
                f = z3.And(pre.alive[i], z3.Not(pre.inv[i]), z3.Not(_obs(rules, pre, i)),
                           z3.Not(pre.held[i]), _update(pre, post, i, {"held": z3.BoolVal(True)}))
            elif name == "release":
                f = z3.And(pre.alive[i], pre.held[i], _update(
                    pre, post, i, {"held": z3.BoolVal(False), "alive": z3.Not(pre.inv[i])}))
            elif name == "zap":
                f = z3.And(pre.walking, _zappable(rules, pre, i),
                           _update(pre, post, i, zapped, to_head=True))
            elif name == "other zap" and other_zaps:
                f = z3.And(pre.alive[i], _update(pre, post, i, zapped, to_head=True))
            else:
                continue
            out.append((name, i, f))
        if name == "bump":
            f = _update(pre, post, bump=rules.next(pre.kvm_gen), walking=z3.BoolVal(True))
            out.append((name, None, z3.And(z3.Not(pre.walking), f) if wait_for_walk else f))
        elif name == "walk done":
            out.append((name, None, z3.And(pre.walking,
                                           *[z3.Not(_zappable(rules, pre, i)) for i in range(pre.n)],
                                           _update(pre, post, walking=z3.BoolVal(False)))))
        elif name == "nothing":
            out.append((name, None, _update(pre, post)))
    return out


def _init(rules, s):
    return z3.And(*[z3.Not(a) for a in s.alive], s.kvm_gen == 0, z3.Not(s.walking))


def _stale(rules, s, reusable_only=False):
    """Pages breaking the claim: alive, current to is_obsolete_sp(), created before
    the last bump (reusable_only: and not invalid, so kvm_mmu_get_page's lookup
    could hand them out)."""
    out = []
    for i in range(s.n):
        c = [s.alive[i], z3.Not(_obs(rules, s, i)), s.age[i] != 0]
        if reusable_only:
            c.append(z3.Not(s.inv[i]))
        out.append(z3.And(*c))
    return out


@dataclass
class _Bmc:
    verdict: str
    steps: int = 0        # proved up to / counterexample length
    trace: str = ""
    invalid: bool = False  # the stale page of the counterexample is invalid
    reason: str = ""


class _Unrolling:
    def __init__(self, rules, steps, slots, **kw):
        self.states = [_State(t, slots, rules.width) for t in range(steps + 1)]
        self.cases = [_cases(rules, a, b, **kw) for a, b in zip(self.states, self.states[1:])]
        self.rules = rules

    def solver(self, steps, reusable_only, exact):
        s = z3.Then("simplify", "propagate-values", "solve-eqs", "bit-blast", "sat").solver()
        s.add(_init(self.rules, self.states[0]))
        s.add(*[z3.Or(*[f for _, _, f in c]) for c in self.cases[:steps]])
        bad = [z3.Or(*_stale(self.rules, st, reusable_only)) for st in self.states[1:steps + 1]]
        s.add(bad[-1] if exact else z3.Or(*bad))
        return s


def bmc(rules, timeout_ms, *, steps=STEPS, slots=SLOTS, wait_for_walk=True, reusable_only=False,
        deadline=None):
    """Every trace of up to `steps` steps keeps the claim (PROVED), or a shortest trace
    breaking it (preferring one without zaps from other paths), or UNKNOWN."""
    deadline = deadline or _Deadline(timeout_ms)
    full = _Unrolling(rules, steps, slots, wait_for_walk=wait_for_walk)
    s = full.solver(steps, reusable_only, exact=False)
    r, why = _check(s, deadline)
    if r == z3.unsat:
        return _Bmc(PROVED, steps)
    if r != z3.sat:
        return _Bmc(UNKNOWN, steps, reason=f"z3: {why}")
    found = (full, s.model())
    # The shortest trace, preferring one whose zaps are all the walk's.
    walk_only = _Unrolling(rules, steps, slots, wait_for_walk=wait_for_walk, other_zaps=False)
    for t in range(1, steps + 1):
        for u in (walk_only, full):
            s = u.solver(t, reusable_only, exact=True)
            r, _ = _check(s, deadline)
            if r == z3.sat:
                return _Bmc(COUNTEREXAMPLE, t, *_render(u, s.model(), t, reusable_only))
            if r != z3.unsat:  # out of time: the first trace found, maybe not the shortest
                u, m = found
                t = next(t for t in range(1, steps + 1) if z3.is_true(m.eval(
                    z3.Or(*_stale(rules, u.states[t], reusable_only)), model_completion=True)))
                return _Bmc(COUNTEREXAMPLE, t, *_render(u, m, t, reusable_only))
    raise AssertionError("a trace of at most `steps` steps exists but none of any length")


def _render(u, m, steps, reusable_only):
    """The trace as kernel operations, pages named A, B, ... in creation order."""
    rules = u.rules
    yes = lambda x: z3.is_true(m.eval(x, model_completion=True))  # noqa: E731
    num = lambda x: m.eval(x, model_completion=True).as_long()  # noqa: E731
    names, lines, bumps = {}, [], 0

    def walk_stop(st):
        alive = [i for i in range(st.n) if yes(st.alive[i])]
        order = sorted(alive, key=lambda i: sum(yes(st.below[j][i]) for j in alive if j != i))
        for i in order:
            if not (yes(_obs(rules, st, i)) and yes(st.inv[i])):
                return f"stops at {names.get(i, '?')}, which is_obsolete_sp() calls current"
        return "skips every page to the head of the list"

    for t in range(steps):
        pre, post = u.states[t], u.states[t + 1]
        name, i = next((n, i) for n, i, f in u.cases[t] if yes(f))
        sp = names.get(i, "?")
        if name in ("create", "create root"):
            sp = names[i] = chr(ord("A") + len(names))
            root = ", a vCPU's new root (root_count 1)" if name == "create root" else ""
            text = f"kvm_mmu_get_page: new page {sp}{root}, mmu_valid_gen {num(post.gen[i])}"
        elif name == "acquire":
            text = (f"kvm_mmu_get_page finds {sp} (mmu_valid_gen {num(pre.gen[i])}: current to "
                    f"is_obsolete_sp) and a vCPU loads it as its root")
        elif name == "release":
            text = f"a vCPU drops its root {sp} (root_count 0)"
            text += ": invalid, so it is freed" if yes(pre.inv[i]) else ""
        elif name == "bump":
            bumps += 1
            text = (f"kvm_mmu_invalidate_zap_all_pages: mmu_valid_gen {num(pre.kvm_gen)} -> "
                    f"{num(post.kvm_gen)} (bump {bumps}), kvm_zap_obsolete_pages starts")
            if yes(pre.walking):
                text += " (the previous walk is not done)"
        elif name in ("zap", "other zap"):
            who = ("kvm_zap_obsolete_pages zaps" if name == "zap" else
                   "kvm_mmu_prepare_zap_page from another path (not the walk) zaps")
            what = ("root_count > 0: role.invalid set, moved to the head of active_mmu_pages"
                    if yes(pre.held[i]) else "freed")
            text = f"{who} {sp} ({what})"
        elif name == "walk done":
            text = f"kvm_zap_obsolete_pages returns: the tail walk {walk_stop(pre)}"
        else:
            continue
        lines.append(text)
    last = u.states[steps]
    i = next(i for i, f in enumerate(_stale(rules, last, reusable_only)) if yes(f))
    invalid = yes(last.inv[i])
    held = ", root_count > 0" if yes(last.held[i]) else ""
    age = num(last.age[i])
    text = (f"now {names.get(i, '?')} ({'role.invalid' if invalid else 'not invalid'}{held}, "
            f"mmu_valid_gen {num(last.gen[i])}) is current to is_obsolete_sp "
            f"(kvm->arch.mmu_valid_gen {num(last.kvm_gen)}) but was created before bump "
            f"{bumps - age + 1}, {_bumps(age)} ago")
    if reusable_only:
        text += ": kvm_mmu_get_page's lookup would hand it out"
    return "; ".join(f"{n}. {line}" for n, line in enumerate(lines, 1)) + "; " + text, invalid


def bounded_check(rules, timeout_ms, *, wait_for_walk=True, steps=STEPS, follow_up=True):
    """The bounded model check as a Verdict.  When the stale page of the counterexample
    is an invalid root, a second search (follow_up) looks for a stale page that is not
    invalid, i.e. one that kvm_mmu_get_page would reuse."""
    deadline = _Deadline(timeout_ms)
    b = bmc(rules, timeout_ms, steps=steps, wait_for_walk=wait_for_walk, deadline=deadline)
    if b.verdict == UNKNOWN:
        return Verdict(UNKNOWN, f"{rules.describe()}: {b.reason}")
    if b.verdict == PROVED:
        return Verdict(PROVED, f"{rules.describe()}: every trace of up to {b.steps} steps over "
                               f"{SLOTS} page slots")
    detail = f"{rules.describe()}: after {b.steps} steps: {b.trace}"
    if b.invalid and follow_up:
        r = bmc(rules, timeout_ms, steps=steps, wait_for_walk=wait_for_walk, reusable_only=True,
                deadline=deadline)
        if r.verdict == COUNTEREXAMPLE:
            detail += f". And a page that is not invalid, after {r.steps} steps: {r.trace}"
        elif r.verdict == PROVED:
            detail += f". No page that is not invalid looks current within {r.steps} steps"
    return Verdict(COUNTEREXAMPLE, detail)


# -- the inductive invariant -------------------------------------------------
Page = z3.DeclareSort("Page")


class _Heap:
    """A state with any number of pages: each page field a function of a Page."""

    def __init__(self, gen_sort):
        self.alive = z3.Function("alive", Page, z3.BoolSort())
        self.gen = z3.Function("gen", Page, gen_sort)
        self.ep = z3.Function("epoch", Page, z3.IntSort())
        self.inv = z3.Function("invalid", Page, z3.BoolSort())
        self.held = z3.Function("held", Page, z3.BoolSort())
        self.pos = z3.Function("pos", Page, z3.IntSort())
        self.kvm_gen = z3.Const("kvm_gen", gen_sort)
        self.epoch = z3.Int("bumps")
        self.walking = z3.Bool("walking")
        self.head = z3.Int("head_pos")

    def with_page(self, s, **page):
        new = _Heap.__new__(_Heap)
        new.__dict__.update(self.__dict__)
        for f, v in page.items():
            old = getattr(self, f)
            setattr(new, f, (lambda old, v: lambda p: z3.If(p == s, v, old(p)))(old, v))
        return new

    def with_globals(self, **glob):
        new = _Heap.__new__(_Heap)
        new.__dict__.update(self.__dict__)
        new.__dict__.update(glob)
        return new


def _h_obs(rules, h, p):
    return rules.obsolete(h.gen(p), h.inv(p), h.kvm_gen)


def _h_skipped(rules, h, q):
    return z3.And(_h_obs(rules, h, q), h.inv(q))


# An invariant is a list of (name, arity, fn(h, *pages) -> z3 Bool), each
# universally quantified over its pages.
def counter_invariant(rules):
    """Unbounded generation: it counts the bumps, and a page keeps the one it was made with."""
    return [
        ("kvm->arch.mmu_valid_gen == bumps so far", 0, lambda h: h.kvm_gen == h.epoch),
        ("every alive page: mmu_valid_gen == its creation epoch <= bumps so far", 1,
         lambda h, p: z3.Implies(h.alive(p), z3.And(h.gen(p) == h.ep(p), h.ep(p) <= h.epoch))),
    ]


def walk_invariant(rules):
    """Bounded generation: a page that is not invalid is at most one bump old, and only
    while that bump's walk runs; such pages lie in creation order, so the walk meets
    the old ones first."""
    return [
        ("every alive page: creation epoch <= bumps so far, position below the head", 1,
         lambda h, p: z3.Implies(h.alive(p), z3.And(h.ep(p) <= h.epoch, h.pos(p) < h.head))),
        ("every alive page that is not invalid was created after the last bump with the current "
         "mmu_valid_gen, or (only while the walk runs) one bump earlier with the generation "
         "before it", 1,
         lambda h, p: z3.Implies(z3.And(h.alive(p), z3.Not(h.inv(p))), z3.Or(
             z3.And(h.ep(p) == h.epoch, h.gen(p) == h.kvm_gen),
             z3.And(h.walking, h.ep(p) == h.epoch - 1, rules.next(h.gen(p)) == h.kvm_gen)))),
        ("alive pages have distinct positions", 2,
         lambda h, p, q: z3.Implies(z3.And(h.alive(p), h.alive(q), p != q), h.pos(p) != h.pos(q))),
        ("alive pages that are not invalid lie in creation order", 2,
         lambda h, p, q: z3.Implies(z3.And(h.alive(p), h.alive(q), z3.Not(h.inv(p)),
                                           z3.Not(h.inv(q)), h.pos(p) < h.pos(q)),
                                    h.ep(p) <= h.ep(q))),
    ]


def _claim(rules):
    return ("the claim: every alive page is_obsolete_sp() calls current was created after the "
            "last bump", 1,
            lambda h, p: z3.Implies(z3.And(h.alive(p), z3.Not(_h_obs(rules, h, p))),
                                    h.ep(p) == h.epoch))


def _instances(conj, h, terms):
    out = []
    for _, arity, f in conj:
        if arity == 0:
            out.append(f(h))
        elif arity == 1:
            out += [f(h, t) for t in terms]
        else:
            out += [f(h, a, b) for a in terms for b in terms]
    return out


def _transitions(rules, h, wait_for_walk):
    """(name, named pages, facts(terms), post-state) per transition from `h`.  The facts
    are the guard, with its universal parts instantiated at `terms`."""
    s, m = z3.Consts("sp first_unskipped", Page)

    def lower_skipped(x, terms):
        return [z3.Implies(z3.And(h.alive(t), h.pos(t) < h.pos(x)), _h_skipped(rules, h, t))
                for t in terms]

    zap_post = h.with_page(s, alive=h.held(s), inv=z3.BoolVal(True), pos=h.head).with_globals(
        head=h.head + 1)
    out = []
    for name, root in (("create", False), ("create root", True)):
        out.append((name, [s], lambda terms: [z3.Not(h.alive(s))],
                    h.with_page(s, alive=z3.BoolVal(True), gen=h.kvm_gen, ep=h.epoch,
                                inv=z3.BoolVal(False), held=z3.BoolVal(root), pos=h.head)
                    .with_globals(head=h.head + 1)))
    out.append(("acquire", [s], lambda terms: [h.alive(s), z3.Not(h.inv(s)),
                                               z3.Not(_h_obs(rules, h, s))],
                h.with_page(s, held=z3.BoolVal(True))))
    out.append(("release", [s], lambda terms: [h.alive(s), h.held(s)],
                h.with_page(s, held=z3.BoolVal(False), alive=z3.Not(h.inv(s)))))
    out.append(("bump", [], lambda terms: [z3.Not(h.walking)] if wait_for_walk else [],
                h.with_globals(kvm_gen=rules.next(h.kvm_gen), epoch=h.epoch + 1,
                               walking=z3.BoolVal(True))))
    out.append(("zap", [s], lambda terms: [h.walking, h.alive(s), _h_obs(rules, h, s),
                                           z3.Not(h.inv(s))] + lower_skipped(s, terms),
                zap_post))

    def walk_done(terms):
        # Nothing left to zap: if the walk does not skip every page, it stopped at the
        # first page it does not skip, m, which it calls current (a finite list has a
        # first such page; m's guard instance: m is not zappable although all below
        # it are skipped).
        unskipped = [z3.And(h.alive(t), z3.Not(_h_skipped(rules, h, t))) for t in terms]
        return [h.walking, z3.Implies(z3.Or(*unskipped), z3.And(
            h.alive(m), z3.Not(_h_obs(rules, h, m)), *lower_skipped(m, terms)))]
    out.append(("walk done", [m], walk_done, h.with_globals(walking=z3.BoolVal(False))))
    out.append(("other zap", [s], lambda terms: [h.alive(s)], zap_post))
    return out


def _h_init(rules, h, terms):
    return [z3.Not(h.alive(t)) for t in terms] + [
        h.kvm_gen == 0, h.epoch == 0, z3.Not(h.walking), h.head == 0]


def inductive_check(rules, timeout_ms, *, wait_for_walk=True, invariant=None):
    """Init => Inv, Inv => claim, and Inv and each transition => Inv' (for each
    conjunct), quantifier-free with instances at the pages each check names.
    Returns (verdict, kind, what failed or None); a failure is not a counterexample."""
    deadline = _Deadline(timeout_ms)
    unbounded = rules.bits is None
    kind = "counter" if unbounded else "walk"
    inv = invariant or (counter_invariant(rules) if unbounded else walk_invariant(rules))
    h = _Heap(z3.IntSort() if unbounded else z3.BitVecSort(rules.bits))

    def implied(facts, goal, named, why):
        ws = [z3.Const(f"w{k}", Page) for k in range(goal[1])]
        terms = named + ws
        s = z3.Solver()
        s.add(*facts(terms))
        s.add(z3.Not(goal[2](*ws)))
        r, reason = _check(s, deadline)
        if r == z3.unsat:
            return None
        return (UNKNOWN, f"{why}: z3: {reason}") if r != z3.sat else (COUNTEREXAMPLE, why)

    checks = [(lambda terms: _h_init(rules, h, terms), (n, a, (lambda f: lambda *p: f(h, *p))(f)),
               [], f"the initial state: '{n}'") for n, a, f in inv]
    claim = _claim(rules)
    checks.append((lambda terms: _instances(inv, h, terms),
                   (claim[0], claim[1], lambda *p: claim[2](h, *p)), [], "the claim"))
    for name, named, guard, post in _transitions(rules, h, wait_for_walk):
        for n, a, f in inv:
            checks.append(((lambda guard: lambda terms: _instances(inv, h, terms) + guard(terms))(guard),
                           (n, a, (lambda f, post: lambda *p: f(post, *p))(f, post)), named,
                           f"{name} keeps '{n}'"))
    for facts, goal, named, why in checks:
        bad = implied(facts, goal, named, why)
        if bad:
            return bad[0], kind, bad[1]
    return PROVED, kind, None


# -- obligations --------------------------------------------------------------
_TRACES = ("page creations (roots or not), vCPUs loading and dropping roots, bumps, the "
           "kvm_zap_obsolete_pages walk's zaps from the tail (invalid pages skipped, a held root "
           "marked invalid and moved to the head, lock breaks between any two zaps) and zaps "
           "from other paths")


@obligation(
    "zap.current_page_is_new_bounded", "zap",
    "every alive shadow page that is_obsolete_sp() calls current was created after the last "
    "kvm_mmu_invalidate_zap_all_pages() bump, in every trace of " + _TRACES + ", each bump "
    "waiting for the previous walk to finish; the impl's own mmu_valid_gen_next and "
    "is_obsolete_sp rule at its width",
    f"bounded: every trace of up to {STEPS} steps over {SLOTS} page slots from the initial state "
    f"(an unbounded generation as a 64-bit vector: no wrap within {STEPS} bumps)")
def current_page_is_new_bounded(impl_cls, timeout_ms):
    return bounded_check(Rules.of(impl_cls), timeout_ms)


@obligation(
    "zap.single_bit_needs_complete_zap", "zap",
    "a single toggling generation bit (ca333add6933, Linux 5.3; the impl's own rules at 1 bit "
    "when its generation is unbounded) keeps zap.current_page_is_new_bounded's claim even if a "
    "bump may come before the previous kvm_zap_obsolete_pages walk is done; expected false: a "
    "page made before two toggles with no complete walk between looks current again, so the "
    "1-bit form relies on slots_lock serializing the zaps (the detail also says whether the "
    "rules hold when every bump waits)",
    f"bounded: every trace of up to {STEPS} steps over {SLOTS} page slots from the initial state, "
    "bumps at any time",
    expected=COUNTEREXAMPLE)
def single_bit_needs_complete_zap(impl_cls, timeout_ms):
    rules = Rules.of(impl_cls, force_bits=1)
    deadline = _Deadline(timeout_ms)
    free = bounded_check(rules, deadline.left_ms(), wait_for_walk=False, follow_up=False)
    if free.verdict != COUNTEREXAMPLE:
        return free
    b = bmc(rules, deadline.left_ms(), wait_for_walk=True)
    if b.verdict == PROVED:
        free.detail += (f". With every bump waiting for the walk, the same rules are proved "
                        f"(every trace of up to {STEPS} steps): the wait is what makes them sound")
    elif b.verdict == COUNTEREXAMPLE:
        free.detail += (". With every bump waiting for the walk the same rules still fail, the "
                        f"rule itself being wrong at this width: after {b.steps} steps: {b.trace}")
    else:
        free.detail += f". With every bump waiting for the walk: unknown ({b.reason})"
    return free


@obligation(
    "zap.current_page_is_new_inductive", "zap",
    "zap.current_page_is_new_bounded's claim in every reachable state, with any number of "
    "pages: an invariant that implies it holds initially and is kept by every transition "
    "(each bump waiting for the previous walk); the impl's own rules at its width",
    "for all reachable states (inductive; pages an uninterpreted sort, so any number; an "
    "unbounded generation as an unbounded integer: the kernel's unsigned long never wrapping)")
def current_page_is_new_inductive(impl_cls, timeout_ms):
    rules = Rules.of(impl_cls)
    deadline = _Deadline(timeout_ms)
    verdict, kind, failed = inductive_check(rules, deadline.left_ms())
    inv = counter_invariant(rules) if kind == "counter" else walk_invariant(rules)
    if verdict == PROVED:
        return Verdict(PROVED, f"{rules.describe()}: {kind} invariant: "
                       + "; ".join(n for n, _, _ in inv))
    if verdict == UNKNOWN:
        return Verdict(UNKNOWN, f"{rules.describe()}: {kind} invariant: {failed}")
    # Not shown inductive: a counterexample only with a real trace.
    b = bounded_check(rules, deadline.left_ms())
    if b.verdict == COUNTEREXAMPLE:
        return Verdict(COUNTEREXAMPLE, f"the {kind} invariant does not hold ({failed}); a real "
                                       f"trace: {b.detail}")
    return Verdict(UNKNOWN, f"{rules.describe()}: the {kind} invariant is not shown inductive "
                            f"({failed}) and the bounded check finds no trace ({b.detail})")
