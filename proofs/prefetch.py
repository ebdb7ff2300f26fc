"""z3 obligations of the prefetch family (Xiao 2010; facts section 6).

Evaluated on the MMU class's own static helpers (impl.mmu.ShadowMmu, or a
variant's class): pte_prefetch_window(index) -> (first, end exclusive),
direct_prefetch_run_gfn(first_gfn, k) (the loop's gfn++) and
kvm_mmu_page_derived_gfn(sp_gfn, index, level, quadrant).  The posted v3
bound is impl.variants.prefetch.v3_prefetch_window (the v3 variant replaces
the loop that uses it, not the plain window helper).  The claims are stated
independently: a window is the 8 entries of one aligned block of the 512.
"""

import z3

from spec.consts import PT64_ENT_PER_PAGE, PTE_PREFETCH_NUM

from .registry import COUNTEREXAMPLE, PROVED, Verdict, all_of, obligation, solve, value

W = 64            # the index is a pointer difference; gfns are gfn_t
GFN_BITS = 40


def _mmu(impl_cls):
    if impl_cls is not None:
        return impl_cls
    from impl.mmu import ShadowMmu

    return ShadowMmu


def _in_page(x):
    return z3.ULT(x, PT64_ENT_PER_PAGE)


@obligation(
    "prefetch.window_in_page", "prefetch",
    "for every spte index 0-511, the prefetch window (pte_prefetch_window) holds the index, "
    "starts at a multiple of PTE_PREFETCH_NUM, has exactly PTE_PREFETCH_NUM entries and stays "
    "inside the page (end <= 512)",
    "for all inputs (64-bit index, 0 <= index < 512)")
def window_in_page(impl_cls, timeout_ms):
    idx = z3.BitVec("index", W)
    first, end = _mmu(impl_cls).pte_prefetch_window(idx)
    claim = z3.And(z3.ULE(first, idx), z3.ULT(idx, end),
                   first & (PTE_PREFETCH_NUM - 1) == 0,
                   end - first == PTE_PREFETCH_NUM,
                   z3.ULE(end, PT64_ENT_PER_PAGE))

    def show(m):
        i = value(m, idx)
        return f"index {i}: window {value(m, first)}..{value(m, end) - 1}"
    return solve(claim, timeout_ms, show, [_in_page(idx)])


@obligation(
    "prefetch.v3_loop_visits_window", "prefetch",
    "the posted v3 loop (`for (; i < max; i++)`, i from index & ~7, max = index | 7) visits "
    "every slot of the window; expected false: it never visits the window's last slot",
    "for all inputs (64-bit index, 0 <= index < 512; the missed slot also searched "
    "exhaustively for every index 0-511)",
    expected=COUNTEREXAMPLE)
def v3_loop_visits_window(impl_cls, timeout_ms):
    from impl.variants.prefetch import v3_prefetch_window

    idx, slot = z3.BitVec("index", W), z3.BitVec("slot", W)
    first, end = v3_prefetch_window(idx)
    want_first = idx & ~(PTE_PREFETCH_NUM - 1)
    in_window = z3.And(z3.ULE(want_first, slot), z3.ULT(slot, want_first + PTE_PREFETCH_NUM))
    claim = z3.Implies(in_window, z3.And(z3.ULE(first, slot), z3.ULT(slot, end)))
    missed = {}
    for i in range(PT64_ENT_PER_PAGE):  # searched: which slots each index's loop misses
        f, e = v3_prefetch_window(i)
        w = i & ~(PTE_PREFETCH_NUM - 1)
        missed[i] = [s - w for s in range(w, w + PTE_PREFETCH_NUM) if not f <= s < e]
    only_last = all(m == [PTE_PREFETCH_NUM - 1] for m in missed.values())

    def show(m):
        i, s = value(m, idx), value(m, slot)
        w = i & ~(PTE_PREFETCH_NUM - 1)
        return (f"index {i}: window {w}..{w + 7}, the loop stops before {value(m, end)}, so entry "
                f"{s} (window slot {s - w}) is never visited"
                + ("; searched: for every index 0-511 the one slot missed is window slot 7"
                   if only_last else f"; searched: missed slots {missed}"))
    return solve(claim, timeout_ms, show, [_in_page(idx)])


@obligation(
    "prefetch.direct_gfn_level1_only", "prefetch",
    "the 2010 direct prefetch gfn sp->gfn + (spte - sp->spt), counted with the loop's gfn++ "
    "(direct_prefetch_run_gfn), equals kvm_mmu_page_get_gfn of the entry at level 1, also "
    "when a run starts at kvm_mmu_page_get_gfn of its first entry; at levels 2 and 3 it "
    "differs for every index > 0 (an entry there maps 512^(level-1) gfns), so prefetching "
    "above level 1 would map wrong gfns: prefetch is limited to level 1",
    "for all inputs (40-bit sp->gfn aligned to the page's range, index and run within the "
    "page, quadrant 0-3)")
def direct_gfn_level1_only(impl_cls, timeout_ms):
    mmu = _mmu(impl_cls)
    derived, run_gfn = mmu.kvm_mmu_page_derived_gfn, mmu.direct_prefetch_run_gfn
    sp_gfn, idx, k, q = (z3.BitVec(n, W) for n in ("sp_gfn", "index", "k", "quadrant"))
    base = [z3.LShR(sp_gfn, GFN_BITS) == 0, _in_page(idx), z3.ULT(q, 4)]

    def aligned(level):
        return sp_gfn & ((1 << (9 * level)) - 1) == 0

    def show_for(level, what):
        def show(m):
            g, i, kk = value(m, sp_gfn), value(m, idx), value(m, k)
            return (f"level {level}, sp->gfn {g:#x}, index {i}, k {kk}: {what}")
        return show

    checks = []
    # level 1: sp->gfn + index is the derived gfn
    checks.append(solve(run_gfn(sp_gfn, idx) == derived(sp_gfn, idx, 1, q), timeout_ms,
                        show_for(1, "sp->gfn + index differs from kvm_mmu_page_get_gfn"),
                        base + [aligned(1)]))
    # level 1: a run from its first entry's gfn, k entries on (within the window and page)
    checks.append(solve(run_gfn(derived(sp_gfn, idx, 1, q), k) == derived(sp_gfn, idx + k, 1, q),
                        timeout_ms,
                        show_for(1, "get_gfn(start) + k differs from get_gfn(start + k)"),
                        base + [aligned(1), z3.ULT(k, PTE_PREFETCH_NUM), _in_page(idx + k)]))
    # levels 2 and 3: differs for every index > 0
    for level in (2, 3):
        checks.append(solve(z3.Implies(idx != 0, run_gfn(sp_gfn, idx) != derived(sp_gfn, idx, level, q)),
                            timeout_ms,
                            show_for(level, "sp->gfn + index equals kvm_mmu_page_get_gfn above "
                                     "level 1"),
                            base + [aligned(level)]))
    v = all_of(checks)
    if v.verdict == PROVED:
        v = Verdict(PROVED, "level 1: equal (2 claims); levels 2, 3: differ for index > 0")
    return v
