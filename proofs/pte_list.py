"""z3 obligations of the rmap family, on spec/pte_list.py's own helpers."""

import z3

from spec.consts import PTE_LIST_EXT_CHOICES
from spec.pte_list import (
    PteListOps, desc_is_empty, desc_is_packed, pte_list_desc_addr,
    pte_list_head_of_desc, pte_list_head_of_spte, pte_list_is_desc,
)

from .registry import all_of, obligation, solve, value


@obligation(
    "pte_list.tag_separates", "rmap",
    "bit 0 of an rmap head separates every 8-byte-aligned spte pointer from every "
    "desc pointer, and decoding gives each pointer back",
    "for all inputs (64-bit pointers)")
def tag_separates(impl_cls, timeout_ms):
    spte, desc = z3.BitVecs("sptep desc", 64)
    aligned = z3.And((spte & 7) == 0, (desc & 7) == 0, spte != 0, desc != 0)
    hs, hd = pte_list_head_of_spte(spte), pte_list_head_of_desc(desc)
    claim = z3.Implies(aligned, z3.And(
        hs != hd,
        z3.Not(pte_list_is_desc(hs)), pte_list_is_desc(hd),
        pte_list_desc_addr(hd) == desc, hs == spte))
    return solve(claim, timeout_ms,
                 lambda m: f"sptep={value(m, spte):#x} desc={value(m, desc):#x}")


def _remove_case(remove_slot, ext, chain_len, k, i, timeout_ms):
    """Remove slot i of desc k in a chain of `chain_len` packed descs."""
    chain = [tuple(z3.BitVec(f"d{d}s{p}", 64) for p in range(ext)) for d in range(chain_len)]
    pre = [desc_is_packed(c) for c in chain]
    pre.append(chain[k][i] != 0)
    flat = [s for c in chain for s in c]
    pre += [(s & 7) == 0 for s in flat]  # spte pointers are 8-byte aligned
    pre += [z3.Implies(z3.And(a != 0, b != 0), a != b)
            for x, a in enumerate(flat) for b in flat[x + 1:]]
    old = chain[k]
    new = tuple(remove_slot(old, i))
    gone = old[i]
    # Every desc left in the chain is packed: desc k is either packed or empty,
    # and pte_list_desc_remove_entry unlinks exactly the empty one.
    packed = z3.If(desc_is_empty(new), z3.And(*[s == 0 for s in new]), desc_is_packed(new))
    # The desc's entries lose exactly `gone`.
    kept = [z3.Implies(z3.And(p != i, old[p] != 0), z3.Or(*[n == old[p] for n in new]))
            for p in range(ext)]
    no_new = [z3.Implies(n != 0, z3.Or(*[n == old[p] for p in range(ext) if p != i]))
              for n in new]
    claim = z3.And(packed, *kept, *no_new, *[n != gone for n in new])

    def show(m):
        return (f"PTE_LIST_EXT={ext}, chain of {chain_len}, remove desc {k} slot {i}: "
                f"sptes {[hex(value(m, s)) for s in old]} -> {[hex(value(m, n)) for n in new]}")
    return solve(claim, timeout_ms, show, assumptions=pre)


@obligation(
    "pte_list.remove_entry_packs", "rmap",
    "pte_list_desc_remove_entry keeps every desc of the chain packed (occupied slots a "
    "prefix, slot 0 occupied, an emptied desc unlinked) and removes exactly one spte; "
    "slot contents symbolic, the unlink itself is control flow the state machine samples",
    "bounded: chains of 1-3 descs, every removal position, PTE_LIST_EXT 3 and 4")
def remove_entry_packs(impl_cls, timeout_ms):
    remove_slot = (impl_cls or PteListOps).desc_remove_slot
    cases = []
    for ext in PTE_LIST_EXT_CHOICES:
        for chain_len in (1, 2, 3):
            for k in range(chain_len):
                for i in range(ext):
                    v = _remove_case(remove_slot, ext, chain_len, k, i, timeout_ms)
                    if v.verdict != "proved":
                        return v
                    cases.append(v)
    return all_of(cases)
