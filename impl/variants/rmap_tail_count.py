"""rmap variants: pte_list with a tail count (Lai Jiangshan, Linux 6.4, 141705b78381).

"KVM: x86/mmu: Track tail count in pte_list_desc to optimize guest fork()".
A pte_list_desc gains two words: `spte_count` (sptes in this desc) and
`tail_count` (sptes in every desc after it).  New sptes go to the head desc; a
full head gets a new head prepended (its tail_count the old list's size);
only the head may be partly filled, so a removal fills its hole with the
head's last entry and frees the head when it empties.  pte_list_add's count
is tail_count + spte_count: exact, with no walk.

What the patch changed is what this variant replaces: pte_list_add,
pte_list_desc_remove_entry, pte_list_remove (it scans spte_count slots, not
up to a NULL) and, since the layout is new, the checkers' seam on
spec.rmap.RmapBase (pte_list_decode, pte_list_violations,
pte_list_add_count).  The iterator is not replaced: the patch left
rmap_get_first()/rmap_get_next() alone (they still stop at a NULL slot or at
PTE_LIST_EXT, which the new layout keeps right: a non-head desc is full, the
head's unused slots are NULL).

The two steps the patch rewrote are pure helpers on (slots, spte_count,
tail_count) triples, written with spec.bits.ite/select so the code the
campaigns run is the code the obligations below evaluate on z3 terms:
`tail_add_to_head` and `tail_remove_slot`.  `tail_chain_ok` is the layout's
rule (every non-head desc full, the counts right), used by the variant's
invariant after every step and by both obligations as their claim.

The two counts live in the modelled desc's `extra` words (spec.memory).
"""

import z3

from impl.variants import Variant, register
from proofs.registry import PROVED, all_of, obligation, solve, value
from spec.bits import ite, select
from spec.consts import PTE_LIST_EXT_CHOICES
from spec.errors import KvmBug
from spec.pte_list import (
    pte_list_decode, pte_list_desc_addr, pte_list_head_of_desc, pte_list_head_of_spte, pte_list_is_desc,
    pte_list_slot_violations, pte_list_tag_violations,
)

SPTE_COUNT, TAIL_COUNT = "spte_count", "tail_count"
NON_HEAD_FULL = "every non-head descriptor is full"
COUNTS = "counts consistent"


# -- pure helpers on (slots, spte_count, tail_count), ints or z3 terms alike ----------
def _all(conds):
    ok = True
    for c in conds:
        ok = ite(c, ok, False)
    return ok


def desc_count_ok(slots, cnt):
    """1 <= spte_count <= PTE_LIST_EXT; the slots below it occupied, the rest NULL."""
    return _all([cnt >= 1, cnt <= len(slots)]
                + [ite(cnt > p, s != 0, s == 0) for p, s in enumerate(slots)])


def tail_chain_ok(chain):
    """The layout's rule on a chain of (slots, spte_count, tail_count), head first:
    each count matches its slots, every non-head desc is full, and each
    tail_count is the number of sptes in the descs after it."""
    conds, after = [], 0
    for k in reversed(range(len(chain))):
        slots, cnt, tail = chain[k]
        conds += [desc_count_ok(slots, cnt), tail == after]
        if k:
            conds.append(cnt == len(slots))
        after = after + cnt
    return _all(conds)


def tail_add_to_head(head, sptep):
    """pte_list_add() on a list in desc form, given its head desc.

    Returns (prepend, new, count): `prepend` is "the head is full", and then
    `new` is a new head desc (holding sptep; its `more` is the old head);
    else `new` is the head with sptep in slot spte_count.  `count` is what
    pte_list_add returns: tail_count + spte_count.
    """
    slots, cnt, tail = head
    full = cnt == len(slots)
    new = tuple(ite(full, sptep if p == 0 else 0, ite(cnt == p, sptep, s))
                for p, s in enumerate(slots))
    return full, (new, ite(full, 1, cnt + 1), ite(full, tail + cnt, tail)), tail + cnt


def tail_remove_slot(head, desc, i):
    """pte_list_desc_remove_entry()'s move: the hole at slot i of `desc` (None:
    of the head itself) gets the head's last entry, whose slot is cleared and
    the head's spte_count decremented.  Returns (head, desc); the head is
    empty, to be unlinked and freed, exactly when its spte_count is 0."""
    hslots, hcnt, htail = head
    j = hcnt - 1
    moved = select(hslots, j)
    fill = lambda slots: tuple(moved if p == i else s for p, s in enumerate(slots))
    if desc is None:
        hslots = fill(hslots)
    else:
        desc = (fill(desc[0]),) + tuple(desc[1:])
    return (tuple(ite(j == p, 0, s) for p, s in enumerate(hslots)), hcnt - 1, htail), desc


# -- the desc's new words in the modelled slab ---------------------------------------
def _state(mem, desc):
    """(slots, spte_count, tail_count) of a live desc; the two count words are read
    (counted like slots); the slots go to the pure helper uncounted, as in
    PteListOps.pte_list_desc_remove_entry."""
    mem.desc(desc.addr)  # a freed desc is poisoned
    mem.reads += 2
    return tuple(desc.sptes), desc.extra.get(SPTE_COUNT, 0), desc.extra.get(TAIL_COUNT, 0)


def _store(desc, state):
    slots, cnt, tail = state
    desc.sptes[:] = slots
    desc.extra[SPTE_COUNT], desc.extra[TAIL_COUNT] = cnt, tail


def _chain_state(descs):
    return [(tuple(d.sptes), d.extra.get(SPTE_COUNT, 0), d.extra.get(TAIL_COUNT, 0)) for d in descs]


# -- the replaced methods ------------------------------------------------------------
def _pte_list_add_using(head_step):
    def pte_list_add(self, sptep, pte_list):
        """pte_list_add() of 6.4: the count is tail_count + spte_count, no walk."""
        head = pte_list.val
        if head == 0:
            pte_list.val = pte_list_head_of_spte(sptep)
            return 0
        if not pte_list_is_desc(head):
            desc = self.mmu_alloc_pte_list_desc()
            _store(desc, ((head, sptep) + (0,) * (self.ext - 2), 2, 0))
            pte_list.val = pte_list_head_of_desc(desc.addr)
            return 1
        desc = self.mem.desc(pte_list_desc_addr(head))
        prepend, new, count = head_step(_state(self.mem, desc), sptep)
        if prepend:  # the head is full: a new head, tail descriptors stay full
            fresh = self.mmu_alloc_pte_list_desc()
            fresh.more = desc.addr
            _store(fresh, new)
            pte_list.val = pte_list_head_of_desc(fresh.addr)
        else:
            _store(desc, new)
        return count
    pte_list_add.head_step = head_step  # what the obligation evaluates
    return pte_list_add


def _remove_entry_using(slot_move):
    def pte_list_desc_remove_entry(self, pte_list, desc, i, prev_desc=None):
        """pte_list_desc_remove_entry() of 6.4: the hole is filled from the head."""
        mem = self.mem
        head = mem.desc(pte_list_desc_addr(pte_list.val))
        hstate = _state(mem, head)
        if hstate[1] < 1:
            raise KvmBug(f"pte_list_desc_remove_entry: head desc {head.addr:#x} empty (j < 0)")
        other = None if desc is head else _state(mem, desc)
        new_head, new_desc = slot_move(hstate, other, i)
        if new_desc is not None:
            _store(desc, new_desc)
        _store(head, new_head)
        if new_head[1]:
            return
        pte_list.val = pte_list_head_of_desc(head.more) if head.more else 0
        self.mmu_free_pte_list_desc(head)
    pte_list_desc_remove_entry.slot_move = slot_move  # what the obligation evaluates
    return pte_list_desc_remove_entry


def _pte_list_remove(self, sptep, pte_list):
    """pte_list_remove() of 6.4: scans spte_count slots of each desc."""
    mem = self.mem
    head = pte_list.val
    if head == 0:
        raise KvmBug(f"pte_list_remove: {sptep:#x} 0->BUG")
    if not pte_list_is_desc(head):
        if head != sptep:
            raise KvmBug(f"pte_list_remove: {sptep:#x} 1->BUG")
        pte_list.val = 0
        return
    desc = mem.desc(pte_list_desc_addr(head))
    while desc is not None:
        for i in range(_state(mem, desc)[1]):
            if mem.slot(desc, i) == sptep:
                self.pte_list_desc_remove_entry(pte_list, desc, i)
                return
        desc = mem.desc(desc.more) if desc.more else None
    raise KvmBug(f"pte_list_remove: {sptep:#x} many->BUG")


# -- the seam: decoding and judging a list of this layout ---------------------------
def _decode(self, head_val):
    """(entries, descs): each desc contributes its first spte_count slots."""
    return pte_list_decode(self.mem, head_val,
                           lambda desc: desc.sptes[:max(desc.extra.get(SPTE_COUNT, 0), 0)])


def _desc_rules(desc, is_head, after):
    """This layout's rules on one desc; `after` = sptes in the descs after it."""
    slots, cnt, tail = _chain_state([desc])[0]
    ext, out = len(slots), []
    if not is_head and cnt != ext:
        out.append(f"{NON_HEAD_FULL}: desc {desc.addr:#x} is not the head but holds {cnt} of {ext}")
    if not desc_count_ok(slots, cnt):
        out.append(f"{COUNTS}: desc {desc.addr:#x} spte_count {cnt}, slots {[hex(s) for s in slots]}")
    if tail != after:
        out.append(f"{COUNTS}: desc {desc.addr:#x} tail_count {tail}, the descs after it hold {after}")
    return out


def _violations(self, head_val):
    """Tag vs form, live descs, this layout's rules per desc, no spte twice."""
    out = pte_list_tag_violations(self.mem, head_val)
    try:
        entries, descs = self.pte_list_decode(head_val)
    except KvmBug as e:
        return out + [f"head {head_val:#x}: {e}"]
    out += pte_list_slot_violations(self.mem, head_val, entries)
    after = 0
    for k in reversed(range(len(descs))):
        out += _desc_rules(descs[k], k == 0, after)
        after += descs[k].extra.get(SPTE_COUNT, 0)
    if len(set(entries)) != len(entries):
        out.append(f"head {head_val:#x}: an spte appears twice")
    return out


def _add_count(self, head_val):
    """6.4's count is exact: the number of sptes already on the list."""
    return len(self.pte_list_decode(head_val)[0])


def tail_count_invariant(obj):
    """After every step, over every live desc of the object's slab (no rmap
    head needed): a desc another desc points to is a non-head, and must be
    full; every desc's counts match its slots and the descs after it."""
    live = obj.mem.live_descs()
    by_addr = {d.addr: d for d in live}
    non_heads = {d.more for d in live if d.more}
    out = []
    for d in live:
        nxt = by_addr.get(d.more)
        after = nxt.extra.get(SPTE_COUNT, 0) + nxt.extra.get(TAIL_COUNT, 0) if nxt else 0
        out += _desc_rules(d, d.addr not in non_heads, after)
    return out


TAIL_COUNT_FORM = {
    "pte_list_add": _pte_list_add_using(tail_add_to_head),
    "pte_list_desc_remove_entry": _remove_entry_using(tail_remove_slot),
    "pte_list_remove": _pte_list_remove,
    "pte_list_decode": _decode,
    "pte_list_violations": _violations,
    "pte_list_add_count": _add_count,
}

register(Variant(
    family="rmap", name="tail-count", models="141705b78381", must_catch=False, passes=True,
    summary="Linux 6.4 pte_list: spte_count/tail_count per desc, adds at the head desc (a full "
            "head gets a new head prepended), only the head partly filled, a hole filled from "
            "the head's last entry",
    replaces=dict(TAIL_COUNT_FORM),
    invariants=(tail_count_invariant,),
))


# -- its broken forms ----------------------------------------------------------------
def _fill_from_own_desc(head, desc, i):
    # The 3.x rule kept: the hole is filled from its own desc's last entry and
    # that desc's count decremented, so a tail desc is left partly filled.
    if desc is None:
        return tail_remove_slot(head, None, i)
    own, _ = tail_remove_slot(desc, None, i)
    return head, own


def _add_to_head_stale_tail(head, sptep):
    # The prepended head's tail_count is left as allocated (0).
    prepend, (slots, cnt, tail), count = tail_add_to_head(head, sptep)
    return prepend, (slots, cnt, ite(prepend, 0, tail)), count


register(Variant(
    family="rmap", name="tail-count-fill-from-own-desc", models="plausible",
    summary="tail-count pte_list_desc_remove_entry fills the hole from its own desc's last "
            "entry (the 3.x rule) instead of the head's: a tail desc is left partly filled",
    replaces=dict(TAIL_COUNT_FORM, pte_list_desc_remove_entry=_remove_entry_using(_fill_from_own_desc)),
    invariants=(tail_count_invariant,),
    caught_by=(f"variant invariant: {NON_HEAD_FULL}", f"variant invariant: {COUNTS}",
               "pte_list structure", "proof pte_list_tail.remove_keeps_tails_full"),
))

register(Variant(
    family="rmap", name="tail-count-stale-tail", models="plausible",
    summary="tail-count pte_list_add prepends a new head without setting its tail_count",
    replaces=dict(TAIL_COUNT_FORM, pte_list_add=_pte_list_add_using(_add_to_head_stale_tail)),
    invariants=(tail_count_invariant,),
    caught_by=(f"variant invariant: {COUNTS}", "walker return", "pte_list structure",
               "proof pte_list_tail.add_keeps_tails_full"),
))


# -- proof obligations, on the helpers the class under test runs ---------------------
def _helper(impl_cls, method, attr, default):
    """The pure helper `impl_cls`'s `method` runs (the tail-count form's own
    when the class has another pte_list, e.g. the 3.x impl)."""
    return getattr(getattr(impl_cls, method, None), attr, None) or default


def _sym_chain(ext, n):
    return [(tuple(z3.BitVec(f"d{d}s{p}", 64) for p in range(ext)),
             z3.Int(f"d{d}_spte_count"), z3.Int(f"d{d}_tail_count")) for d in range(n)]


def _occupied(chain):
    """[(occupied?, value)] of every slot of a chain (a slot below its desc's count)."""
    return [(cnt > p, s) for slots, cnt, _ in chain for p, s in enumerate(slots)]


def _holds(chain, v):
    return z3.Or([z3.And(o, s == v) for o, s in _occupied(chain)])


def _well_formed_pre(chain):
    """A chain of the layout holding distinct, 8-byte-aligned spte pointers."""
    occ = _occupied(chain)
    return [tail_chain_ok(chain)] + [z3.Implies(o, (s & 7) == 0) for o, s in occ] + [
        z3.Implies(z3.And(o1, o2), s1 != s2) for x, (o1, s1) in enumerate(occ) for o2, s2 in occ[x + 1:]]


def _show(m, chain):
    return "; ".join(f"desc {d}: spte_count {value(m, c)} tail_count {value(m, t)} "
                     f"sptes {[hex(value(m, s)) for s in slots]}" for d, (slots, c, t) in enumerate(chain))


def _remove_case(ext, n, k, i):
    """A symbolic chain of n descs and the preconditions of removing desc k's slot i."""
    chain = _sym_chain(ext, n)
    return chain, _well_formed_pre(chain) + [chain[0][1] > i if k == 0 else True]


def _add_case(ext, n):
    """A symbolic chain of n descs, a new spte and the preconditions of adding it."""
    chain, sptep = _sym_chain(ext, n), z3.BitVec("new_sptep", 64)
    return chain, sptep, _well_formed_pre(chain) + [
        sptep != 0, (sptep & 7) == 0, z3.Not(_holds(chain, sptep))]


def _check_remove(slot_move, ext, n, k, i, timeout_ms):
    chain, pre = _remove_case(ext, n, k, i)
    gone = chain[k][0][i]
    head, desc = slot_move(chain[0], None if k == 0 else chain[k], i)
    new = [head] + list(chain[1:])
    if k:
        new[k] = desc
    left = z3.If(head[1] == 0, tail_chain_ok(new[1:]), tail_chain_ok(new))
    kept = [z3.Implies(cnt > p, _holds(new, s)) for d, (slots, cnt, _) in enumerate(chain)
            for p, s in enumerate(slots) if (d, p) != (k, i)]
    only = [z3.Implies(o, z3.And(s != gone, _holds(chain, s))) for o, s in _occupied(new)]
    size = sum(c for _, c, _ in new) == sum(c for _, c, _ in chain) - 1
    claim = z3.And(left, size, *kept, *only)

    def show(m):
        return (f"PTE_LIST_EXT={ext}, remove desc {k} slot {i} of {_show(m, chain)} -> "
                f"{_show(m, new)}")
    return solve(claim, timeout_ms, show, assumptions=pre)


@obligation(
    "pte_list_tail.remove_keeps_tails_full", "rmap",
    "6.4's pte_list_desc_remove_entry (tail count) removes exactly one spte and leaves every "
    "non-head desc full and every spte_count/tail_count right, the head unlinked when it "
    "empties; evaluated on the slot move the class's removal runs (the tail-count form's own "
    "for a class with the 3.x pte_list)",
    "bounded: chains of 1-3 descs, every removal (desc, slot), head fill and contents symbolic, "
    "PTE_LIST_EXT 3 and 4; counts as unbounded integers")
def remove_keeps_tails_full(impl_cls, timeout_ms):
    move = _helper(impl_cls, "pte_list_desc_remove_entry", "slot_move", tail_remove_slot)
    cases = []
    for ext in PTE_LIST_EXT_CHOICES:
        for n in (1, 2, 3):
            for k in range(n):
                for i in range(ext):
                    v = _check_remove(move, ext, n, k, i, timeout_ms)
                    if v.verdict != PROVED:
                        return v
                    cases.append(v)
    return all_of(cases)


def _check_add(head_step, ext, n, timeout_ms):
    chain, sptep, pre = _add_case(ext, n)
    prepend, head, count = head_step(chain[0], sptep)
    grown, filled = [head] + list(chain), [head] + list(chain[1:])
    before = sum(c for _, c, _ in chain)
    ok = lambda new: z3.And(tail_chain_ok(new), _holds(new, sptep),
                            sum(c for _, c, _ in new) == before + 1,
                            *[z3.Implies(o, _holds(new, s)) for o, s in _occupied(chain)])
    claim = z3.And(count == before, z3.If(prepend, ok(grown), ok(filled)))

    def show(m):
        new = grown if z3.is_true(m.eval(prepend, model_completion=True)) else filled
        return (f"PTE_LIST_EXT={ext}, add {value(m, sptep):#x} to {_show(m, chain)} -> "
                f"{_show(m, new)}, returned {value(m, count)}")
    return solve(claim, timeout_ms, show, assumptions=pre)


@obligation(
    "pte_list_tail.add_keeps_tails_full", "rmap",
    "6.4's pte_list_add on a list in desc form (tail count) adds the spte at the head, "
    "prepends a new head when the head is full, leaves every non-head desc full and every "
    "count right, and returns the number of sptes already there",
    "bounded: chains of 1-3 descs, head fill and contents symbolic, PTE_LIST_EXT 3 and 4; "
    "counts as unbounded integers; the empty and single-spte forms are sampled, not proved")
def add_keeps_tails_full(impl_cls, timeout_ms):
    step = _helper(impl_cls, "pte_list_add", "head_step", tail_add_to_head)
    cases = []
    for ext in PTE_LIST_EXT_CHOICES:
        for n in (1, 2, 3):
            v = _check_add(step, ext, n, timeout_ms)
            if v.verdict != PROVED:
                return v
            cases.append(v)
    return all_of(cases)
