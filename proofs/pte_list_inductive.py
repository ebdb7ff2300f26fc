"""The pte_list packing invariant, for chains of any length: an inductive step.

pte_list.remove_entry_packs (proofs/pte_list.py) proves the removal step for
chains of 1-3 descs; the CrossHair contracts pte_list_add/pte_list_remove
(proofs/contracts.py) search the executed code on chains of up to 3.  Here
the chain length is unbounded.

The invariant, I(chain): every pte_list_desc of the chain is packed
(spec.pte_list.desc_is_packed: slot 0 occupied, occupied slots a prefix), so
no desc is empty; its entries, the multiset M(chain), are the sptes on the
list.  A chain is split around the one desc an operation touches:

    chain = prefix ++ [d] ++ suffix,   I(chain) = P and packed(d) and S,
    |M(chain)| = n_p + count(d) + n_s

where P, S (the prefix's and suffix's invariant) and n_p, n_s (their sizes)
are an abstract summary of "the rest of the chain": z3 Bools and Ints, any
value.  The step proved, for one symbolic desc d of PTE_LIST_EXT 3 and 4
64-bit slots, on the code's own helpers evaluated on z3 terms:

  remove, for every slot i (pte_list_desc_remove_entry):
    P, packed(d), S, d[i] != 0, the occupied slots of d distinct
      =>  d' = desc_remove_slot(d, i) is either empty (then the desc is
          unlinked: chain' = prefix ++ suffix) or packed
          (chain' = prefix ++ [d'] ++ suffix), so I(chain') = P and S
          (and packed(d')); M(d') = M(d) - {d[i]}, so |M(chain')| = |M(chain)| - 1
  add (pte_list_add), at the desc the walk stops at:
    P, packed(d), S, x != 0
      =>  d not full: d' = desc_fill_slot(d, x) is packed, M(d') = M(d) + {x};
          d full (the walk's last desc): the appended desc (x, 0, ...) is
          packed;  either way I(chain') and |M(chain')| = |M(chain)| + 1
  the head forms: a bare spte pointer plus x becomes the desc (old, x, 0...),
    which is packed.

By induction on the chain (the walks of pte_list_add and pte_list_remove go
desc by desc, and every desc but d is left as it was), every list reachable
from the empty head by adds and removes satisfies I, whatever its length.

Trusted, not checked here (proofs/README.md): that the operations touch no
desc but d (read off the code: pte_list_desc_remove_entry writes d's slots,
prev->more or the head, and frees d; pte_list_add writes one slot of d or
links one new desc at the tail); and desc_fill_slot below, which *encodes*
pte_list_add's `while (desc->sptes[i]) ++i; desc->sptes[i] = spte;` (its loop
is control flow on the slots, not a helper that runs on z3 terms).  The
encoding is runnable on ints and tests/test_symbolic.py checks it against
the executed pte_list_add on every packed desc with a free slot, both widths.
"""

import z3

from spec.bits import ite
from spec.consts import PTE_LIST_EXT_CHOICES
from spec.pte_list import PteListOps, desc_is_empty, desc_is_packed

from .registry import PROVED, UNKNOWN, Verdict, obligation, solve as _solve, value


def solve(claim, timeout_ms, show, assumptions):
    """registry.solve, but a step whose assumptions cannot hold is not 'proved'."""
    s = z3.Solver()
    s.set("timeout", int(timeout_ms))
    s.add(*assumptions)
    if s.check() != z3.sat:
        return Verdict(UNKNOWN, "vacuous: the step's assumptions cannot all hold")
    return _solve(claim, timeout_ms, show, assumptions)


def desc_fill_slot(slots, x):
    """The slot pte_list_add fills: the first NULL one gets `x` (ints or z3 terms).

    An encoding of the loop in spec.pte_list.PteListOps.pte_list_add, for a
    desc the walk stopped at because its last slot is free."""
    ext = len(slots)
    first_free = ext
    for p in range(ext - 1, -1, -1):
        first_free = ite(slots[p] == 0, p, first_free)
    return tuple(ite(first_free == p, x, slots[p]) for p in range(ext))


def _count(slots):
    return z3.Sum([z3.If(s != 0, 1, 0) for s in slots])


def _occurs(x, slots):
    return z3.Sum([z3.If(s == x, 1, 0) for s in slots])


def _distinct_occupied(slots):
    return [z3.Implies(z3.And(a != 0, b != 0), a != b)
            for k, a in enumerate(slots) for b in slots[k + 1:]]


def _show(slots, after, what):
    def show(m):
        return (f"{what}: sptes {[hex(value(m, s)) for s in slots]} -> "
                f"{[hex(value(m, s)) for s in after]}")
    return show


def _remove_step(remove_slot, ext, i, timeout_ms):
    d = tuple(z3.BitVec(f"slot{p}", 64) for p in range(ext))
    P, S = z3.Bools("prefix_packed suffix_packed")
    n_p, n_s = z3.Ints("prefix_sptes suffix_sptes")
    pre = [P, S, n_p >= 0, n_s >= 0, desc_is_packed(d), d[i] != 0] + _distinct_occupied(d)
    new = tuple(remove_slot(d, i))
    emptied = desc_is_empty(new)
    # chain' = prefix ++ suffix when d was emptied (and unlinked), else prefix ++ [d'] ++ suffix
    inv_after = z3.And(P, S, z3.If(emptied, z3.And(*[s == 0 for s in new]), desc_is_packed(new)))
    size_after = n_p + z3.If(emptied, 0, _count(new)) + n_s
    multiset = [_occurs(d[i], new) == 0]
    multiset += [z3.Implies(d[p] != 0, _occurs(d[p], new) == 1) for p in range(ext) if p != i]
    multiset.append(_count(new) == _count(d) - 1)
    claim = z3.And(inv_after, size_after == n_p + _count(d) + n_s - 1, *multiset)
    return solve(claim, timeout_ms, _show(d, new, f"PTE_LIST_EXT={ext}, remove slot {i}"), pre)


def _add_step(ext, timeout_ms):
    d = tuple(z3.BitVec(f"slot{p}", 64) for p in range(ext))
    x = z3.BitVec("new_spte", 64)
    P, S = z3.Bools("prefix_packed suffix_packed")
    n_p, n_s = z3.Ints("prefix_sptes suffix_sptes")
    pre = [P, S, n_p >= 0, n_s >= 0, desc_is_packed(d), x != 0]
    full = d[ext - 1] != 0
    filled = desc_fill_slot(d, x)
    appended = (x,) + (z3.BitVecVal(0, 64),) * (ext - 1)
    inv_after = z3.And(P, S, z3.If(full, z3.And(desc_is_packed(d), desc_is_packed(appended)),
                                  desc_is_packed(filled)))
    size_after = n_p + z3.If(full, _count(d) + 1, _count(filled)) + n_s
    grows = z3.If(full, z3.BoolVal(True),
                  z3.And(_occurs(x, filled) == _occurs(x, d) + 1,
                         *[z3.Implies(z3.And(d[p] != 0, d[p] != x), _occurs(d[p], filled) == _occurs(d[p], d))
                           for p in range(ext)]))
    claim = z3.And(inv_after, size_after == n_p + _count(d) + n_s + 1, grows)
    return solve(claim, timeout_ms, _show(d, filled, f"PTE_LIST_EXT={ext}, add"), pre)


def _bare_to_desc(ext, timeout_ms):
    old, x = z3.BitVecs("bare_spte new_spte", 64)
    desc = (old, x) + (z3.BitVecVal(0, 64),) * (ext - 2)
    return solve(desc_is_packed(desc), timeout_ms, lambda m: f"PTE_LIST_EXT={ext}, bare -> desc",
                 [old != 0, x != 0])


@obligation(
    "pte_list.packing_inductive", "rmap",
    "every pte_list reachable by pte_list_add and pte_list_remove keeps each desc packed (no "
    "empty desc, occupied slots a prefix) and changes by exactly one spte, for chains of any "
    "length: the inductive step over the one desc an operation touches (desc_remove_slot and "
    "desc_is_packed evaluated on z3 terms; the add's slot fill is an encoding, see the module)",
    "for all inputs (chains of any length by induction; PTE_LIST_EXT 3 and 4, every removal "
    "slot, 64-bit slot contents)")
def packing_inductive(impl_cls, timeout_ms):
    remove_slot = (impl_cls or PteListOps).desc_remove_slot
    n = 0
    for ext in PTE_LIST_EXT_CHOICES:
        checks = [_add_step(ext, timeout_ms), _bare_to_desc(ext, timeout_ms)]
        checks += [_remove_step(remove_slot, ext, i, timeout_ms) for i in range(ext)]
        for v in checks:
            if v.verdict != PROVED:
                return v
        n += len(checks)
    return Verdict(PROVED, f"{n} steps (add, bare->desc, remove at every slot; PTE_LIST_EXT "
                           f"{' and '.join(map(str, PTE_LIST_EXT_CHOICES))})")
