"""z3 obligations of the gfn family: derived gfns, quadrants, rmap indices.

The Lai 2010 patch ("reduce 50% memory usage") drops sp->gfns[] for direct
pages: kvm_mmu_page_get_gfn derives entry i's gfn from sp->gfn.  That is only
sound if the gfn each fault path gives a new direct page, and the role it
gives it, make the derivation hit the gfn the fault later maps through that
page.  These obligations evaluate the MMU class's own static helpers
(kvm_mmu_page_derived_gfn, direct_map_child_gfn, fetch_direct_gfn,
role_quadrant; impl.mmu.ShadowMmu or a variant of it) on z3 bit-vectors and
state the claims independently: a leaf at level L maps the faulting gfn
aligned down to L; a 32-bit guest table entry e is shadowed by the page of
quadrant e / (entries per quadrant).
"""

from dataclasses import dataclass

import z3

from spec import gfn as gfn_arith
from spec import written_sptes
from spec.consts import (
    KVM_HPAGE_GFN_SHIFT, PAGE_SHIFT, PT32_ENT_SIZE, PT32_INDEX, PT32_LEVEL_BITS, PT64_INDEX,
    PT64_LEVEL_BITS,
)

from .registry import COUNTEREXAMPLE, PROVED, UNKNOWN, Verdict, obligation, solve, value

W = 64                      # gfn_t, gpa_t and gva_t are 64-bit
TDP_ADDR_BITS = 48          # what a 4-level TDP root maps
GVA64_BITS = 48             # 4-level paging (the low canonical half; bits 63:48 are never read)
GVA32_BITS = 32
GFN_BITS = 40               # gfns of 52-bit guest-physical addresses
PSE36_GFN_BITS = 24         # a 4MB page's gfn with PSE-36: 36-bit physical addresses
SMALL_ADDR_BITS = 32        # counterexamples are looked for below 4GB first (readability only)


def _mmu(impl_cls):
    """The class whose static helpers are evaluated (the plain impl by default)."""
    if impl_cls is not None:
        return impl_cls
    from impl.mmu import ShadowMmu

    return ShadowMmu


def _below(x, bits):
    return z3.LShR(x, bits) == 0


def _align(gfn, level):
    """The gfn aligned down to a page of `level` (the claim's own arithmetic)."""
    return gfn & ~((1 << KVM_HPAGE_GFN_SHIFT(level)) - 1)


# -- gfn.derived_equals_recorded ---------------------------------------------
@dataclass(frozen=True)
class _Kind:
    """One way a fault path creates a direct page at `level` and maps a leaf through it."""
    key: str          # short name used in summaries
    label: str        # kernel terms
    what: str         # what faults through it, for the shared-page cases
    world: str        # "tdp" or "shadow": pages are shared only within one world
    level: int        # role.level of the direct page
    quadrant_role: bool = False  # role.quadrant computed from the address (32-bit guests)
    page_shift: int = 0          # shadow: log2 of the guest large page in 4K frames
    addr_bits: int = TDP_ADDR_BITS
    base_bits: int = GFN_BITS


def _kinds():
    tdp = [_Kind(f"TDP L{lvl}", f"TDP: level-{lvl} page under a level-{lvl + 1} entry",
                 "TDP fault", "tdp", lvl) for lvl in (1, 2, 3)]
    # Before the `!direct_map` test (2.6.3x), kvm_mmu_get_page computed role.quadrant
    # under TDP too, whenever the guest was in real mode or 32-bit paging.
    tdp_q = _Kind("TDP L1 with a 2.6.35 role.quadrant",
                  "TDP, guest in real mode or 32-bit paging, role.quadrant computed from the gpa "
                  "(2.6.35): level-1 page under a level-2 entry",
                  "TDP fault with a 2.6.35 role.quadrant", "tdp", 1, True)
    s32 = _Kind("shadow 32-bit 4MB page L1", "shadow paging, 32-bit guest 4MB page: level-1 "
                "page under a level-2 entry", "32-bit guest 4MB page", "shadow", 1, True,
                PT32_LEVEL_BITS, GVA32_BITS,
                PSE36_GFN_BITS)
    s2m = _Kind("shadow 2MB page L1", "shadow paging, PAE/64-bit guest 2MB page: level-1 page "
                "under a level-2 entry", "2MB guest page", "shadow", 1, False, PT64_LEVEL_BITS,
                GVA64_BITS)
    s1g = [_Kind(f"shadow 64-bit 1GB page L{lvl}", f"shadow paging, 64-bit guest 1GB page: "
                 f"level-{lvl} page under a level-{lvl + 1} entry", "64-bit guest 1GB page",
                 "shadow", lvl, False,
                 2 * PT64_LEVEL_BITS, GVA64_BITS) for lvl in (1, 2)]
    return tdp, tdp_q, [s32, s2m] + s1g


@dataclass
class _Fault:
    kind: _Kind
    addr: object      # gpa under TDP, gva under shadow paging
    base: object      # the guest large page's base gfn (shadow), else None
    walker: object    # the gfn the walk gives (shadow), else None
    sp_gfn: object    # sp->gfn the fault path gives the direct page
    quadrant: object  # role.quadrant of that page
    index: object     # the entry of the page the fault maps through
    recorded: object  # the gfn the fault maps at that entry (rmap_add / kvm_mmu_page_set_gfn)
    path: object      # which parent entry leads to the page
    facts: list       # input constraints
    small: list       # extra bounds tried first, for a readable counterexample


def _fault(mmu, kind, tag):
    """Symbolic fault of `kind` (inputs named with `tag`), evaluated on `mmu`'s helpers."""
    lvl = kind.level
    addr = z3.BitVec(f"addr{tag}", W)
    facts, small = [_below(addr, kind.addr_bits)], [_below(addr, SMALL_ADDR_BITS)]
    index = PT64_INDEX(addr, lvl)
    path = z3.LShR(addr, PAGE_SHIFT + PT64_LEVEL_BITS * lvl)
    quadrant = mmu.role_quadrant(addr, lvl) if kind.quadrant_role else z3.BitVecVal(0, W)
    if kind.world == "tdp":
        # __direct_map: the child under the level-(L+1) entry for gpa `addr`;
        # the leaf at level L maps the faulting gfn aligned to L.
        sp_gfn = mmu.direct_map_child_gfn(addr, lvl + 1)
        recorded = _align(z3.LShR(addr, PAGE_SHIFT), lvl)
        return _Fault(kind, addr, None, None, sp_gfn, quadrant, index, recorded, path, facts, small)
    # FNAME(fetch) for a guest large page of 2^page_shift frames at gfn `base`:
    # the walk gives base + the gva's offset bits inside the page, and fetch
    # makes a direct page under every shadow entry below the guest's level.
    base = z3.BitVec(f"base{tag}", W)
    facts += [_below(base, kind.base_bits), base & ((1 << kind.page_shift) - 1) == 0]
    small.append(_below(base, SMALL_ADDR_BITS - PAGE_SHIFT))
    walker = base | (z3.LShR(addr, PAGE_SHIFT) & ((1 << kind.page_shift) - 1))
    sp_gfn = mmu.fetch_direct_gfn(walker, base, lvl + 1)
    return _Fault(kind, addr, base, walker, sp_gfn, quadrant, index, _align(walker, lvl),
                  path, facts, small)


def _solve_preferring_small(claim, timeout_ms, show, facts, small):
    """solve(), but a counterexample within `small` bounds is looked for first.

    The verdict is always that of the full query unless the small one already
    found a counterexample (which is then one of the full query's too).
    """
    v = solve(claim, timeout_ms, show, assumptions=facts + small)
    if v.verdict == COUNTEREXAMPLE:
        return v
    return solve(claim, timeout_ms, show, assumptions=facts)


def _pair_case(mmu, k1, k2, same_fault, timeout_ms):
    """Fault 1 creates a direct page, fault 2 maps a leaf through it.

    Fault 2 reaches the page through the same parent entry (same kind, same
    parent entry, same guest large page) or by kvm_mmu_get_page's hash lookup
    (same sp->gfn and role.quadrant).  With `same_fault`, both are one fault.
    """
    f1, f2 = _fault(mmu, k1, "1"), _fault(mmu, k2, "2")
    facts = f1.facts + f2.facts
    lookup = z3.And(f1.sp_gfn == f2.sp_gfn, f1.quadrant == f2.quadrant)
    same_entry = z3.BoolVal(False)
    if k1 is k2:
        same_page = [f1.base == f2.base] if f1.base is not None else []
        same_entry = z3.And(f1.path == f2.path, *same_page)
        if same_fault:
            facts += [f1.addr == f2.addr] + same_page
    reach = z3.BoolVal(True) if same_fault else z3.Or(same_entry, lookup)
    derived = mmu.kvm_mmu_page_derived_gfn(f1.sp_gfn, f2.index, k1.level, f1.quadrant)
    claim = z3.Implies(reach, derived == f2.recorded)

    def show(m):
        v = lambda x: value(m, x)  # noqa: E731
        what = "gpa" if k2.world == "tdp" else "gva"
        text = (f"level {k1.level}, role.quadrant {v(f1.quadrant)}, index {v(f2.index)}: "
                f"derived gfn {v(derived):#x}, fault path records gfn {v(f2.recorded):#x}; "
                f"{k2.label}, {what} {v(f2.addr):#x}")
        if f2.base is not None:
            text += f", guest page at gfn {v(f2.base):#x}, walker gfn {v(f2.walker):#x}"
        text += f", sp->gfn {v(f1.sp_gfn):#x}"
        if not same_fault:
            via_entry = z3.is_true(m.eval(same_entry, True))
            how = "the same parent entry" if via_entry else "the hash lookup (same gfn and role)"
            text += f"; the page was made by a fault at {what} {v(f1.addr):#x}"
            if f1.base is not None:
                text += f" (guest page at gfn {v(f1.base):#x}"
                text += f"; {k1.label})" if k1 is not k2 else ")"
            elif k1 is not k2:
                text += f" ({k1.label})"
            text += f" and reached through {how}"
        return text
    return _solve_preferring_small(claim, timeout_ms, show, facts, f1.small + f2.small)


def _derived_cases():
    """(summary name, k1, k2) in reporting order: single paths first, then shared pages."""
    tdp, tdp_q, shadow = _kinds()
    t1, t2, t3 = tdp
    s32, s2m, s1g1, s1g2 = shadow
    cases = [(k.key, k, k) for k in (t1, s32, s2m, t2, t3, s1g1, s1g2, tdp_q)]
    for group in ([t1, tdp_q], [s32, s2m, s1g1]):  # level-1 pages found by gfn and role
        cases += [(f"L1 page of a {a.what} found for a {b.what}", a, b)
                  for a in group for b in group if a is not b]
    return cases


def _one_derived_case(mmu, k1, k2, timeout_ms):
    if k1 is k2:  # the simplest counterexample first: one fault creates and maps
        v = _pair_case(mmu, k1, k2, True, timeout_ms)
        if v.verdict != PROVED:
            return v
    return _pair_case(mmu, k1, k2, False, timeout_ms)


@obligation(
    "gfn.derived_equals_recorded", "gfn",
    "for every direct page and entry, kvm_mmu_page_get_gfn's derived gfn (sp->gfn and the index, "
    "level and role.quadrant) equals the gfn the fault path maps there: TDP (__direct_map's "
    "child gfn, levels 1-3, and level 1 with the role.quadrant 2.6.35 computed for real-mode and "
    "32-bit guests), shadow paging's direct pages for guest large pages (FNAME(fetch): 32-bit "
    "4MB pages with their quadrants, PAE/64-bit 2MB pages, 64-bit 1GB pages at levels 1 and 2), "
    "for the fault that made the page and for any later fault that reaches it through the same "
    "parent entry or finds it by gfn and role in the hash",
    "for all inputs (gpas below 2^48; gvas below 2^48, 2^32 for 32-bit guests; guest large-page "
    "bases below 2^40 gfns, 2^24 for PSE-36 4MB pages)")
def derived_equals_recorded(impl_cls, timeout_ms):
    mmu = _mmu(impl_cls)
    results = [(name, _one_derived_case(mmu, k1, k2, timeout_ms))
               for name, k1, k2 in _derived_cases()]
    wrong = [(n, v) for n, v in results if v.verdict == COUNTEREXAMPLE]
    unknown = [(n, v) for n, v in results if v.verdict == UNKNOWN]
    right = [n for n, v in results if v.verdict == PROVED]
    if wrong:
        detail = f"{wrong[0][1].detail}. Wrong in: {'; '.join(n for n, _ in wrong)}"
        if unknown:
            detail += f". Unknown in: {'; '.join(n for n, _ in unknown)}"
        paths = [n for n in right if not n.startswith("L1 page of")]
        shared = len(right) - len(paths)
        if paths or shared:
            detail += f". Right in: {'; '.join(paths + [f'{shared} shared-page cases'] if shared else paths)}"
        return Verdict(COUNTEREXAMPLE, detail)
    if unknown:
        return Verdict(UNKNOWN, "; ".join(f"{n}: {v.detail}" for n, v in unknown))
    return Verdict(PROVED, f"{len(results)} cases")


# -- gfn.quadrant_selects_entries --------------------------------------------
def _written_slots(mmu):
    return getattr(mmu, "written_spte_slots", written_sptes.written_spte_slots)


def _quadrant_case(mmu, level, timeout_ms):
    gaddr, k, page_q = z3.BitVecs(f"gaddr byte quadrant_l{level}", W)
    per_quadrant_bits = PT64_LEVEL_BITS - (level - 1)   # 512 guest PTEs, 256 guest PDEs
    per_quadrant = 1 << per_quadrant_bits
    sptes_per_entry = 1 << (level - 1)                  # a 4MB guest PDE is two 2MB sptes
    facts = [_below(gaddr, GVA32_BITS), z3.ULT(k, PT32_ENT_SIZE), z3.ULT(page_q, 1 << level)]

    q = mmu.role_quadrant(gaddr, level)     # the page the fault for gaddr builds at this level
    i = PT64_INDEX(gaddr, level)            # ... and the spte it uses there
    e = PT32_INDEX(gaddr, level)            # the guest entry gaddr walks through
    covers = lambda quad: z3.LShR(e, per_quadrant_bits) == quad  # noqa: E731
    first_spte = (e & (per_quadrant - 1)) * sptes_per_entry

    # A guest write to (any byte of) entry e, seen by a shadow page of quadrant page_q.
    wq, widx, nspte = _written_slots(mmu)(e * PT32_ENT_SIZE + k, level, True)
    hit = wq == page_q
    claims = [
        covers(q),                                          # the fault's page covers e ...
        z3.LShR(i, level - 1) == e & (per_quadrant - 1),    # ... and its spte i shadows e
        hit == covers(page_q),                              # a write touches exactly the covering page
        z3.BoolVal(nspte == sptes_per_entry),
        z3.Implies(hit, widx == first_spte),                # ... at e's sptes
        wq == q, z3.ULE(widx, i), z3.ULT(i, widx + nspte),  # ... including the fault's spte i
    ]

    def show(m):
        return (f"level {level}, 32-bit guest, gaddr {value(m, gaddr):#x}: guest entry "
                f"{value(m, e)}, fault's page role.quadrant {value(m, q)} index {value(m, i)}; "
                f"a write to byte {value(m, k)} of the entry gives quadrant {value(m, wq)}, "
                f"sptes {value(m, widx)}..{value(m, widx) + nspte - 1} (page of quadrant "
                f"{value(m, page_q)}: {'touched' if z3.is_true(m.eval(hit, True)) else 'skipped'})")
    return solve(z3.And(*claims), timeout_ms, show, assumptions=facts)


@obligation(
    "gfn.quadrant_selects_entries", "gfn",
    "for a 32-bit guest, role.quadrant selects the guest entries a shadow page covers: the "
    "page the fault for gaddr builds at level 1 (2) covers gaddr's guest PTE (PDE) and its spte "
    "index shadows it; get_written_sptes' doubled offset (and, for a PDE, the rounding, second "
    "doubling and two sptes) touches a page iff its quadrant covers the written entry, at "
    "exactly that entry's sptes, the fault's spte among them",
    "for all inputs (32-bit guest addresses, every byte of the written 4-byte entry, every "
    "quadrant of the page; levels 1 and 2)")
def quadrant_selects_entries(impl_cls, timeout_ms):
    mmu = _mmu(impl_cls)
    verdicts = [_quadrant_case(mmu, level, timeout_ms) for level in (1, 2)]
    for v in verdicts:
        if v.verdict != PROVED:
            return v
    return Verdict(PROVED, "levels 1 and 2")


# -- gfn.rmap_index_frames ----------------------------------------------------
def rmap_index_claims(gfn_to_index, timeout_ms):
    """The rmap obligation on a given gfn_to_index (tests pass broken ones)."""
    for level in (1, 2, 3):
        base, npages, g1, g2 = z3.BitVecs(f"base_gfn npages gfn1 gfn2_l{level}", W)
        last = base + npages - 1
        inside = lambda g: z3.And(z3.ULE(base, g), z3.ULE(g, last))  # noqa: E731
        facts = [z3.ULE(1, npages), _below(base + npages, GFN_BITS), _below(npages, GFN_BITS),
                 inside(g1), inside(g2)]
        shift = KVM_HPAGE_GFN_SHIFT(level)
        i1, i2 = gfn_to_index(g1, base, level), gfn_to_index(g2, base, level)
        same_frame = z3.LShR(g1, shift) == z3.LShR(g2, shift)
        claims = [(i1 == i2) == same_frame,
                  gfn_to_index(base, base, level) == 0,
                  z3.ULE(i1, gfn_to_index(last, base, level))]  # inside the slot's rmap array

        def show(m, level=level, base=base, npages=npages, g1=g1, g2=g2, i1=i1, i2=i2):
            return (f"level {level}, slot base_gfn {value(m, base):#x} npages {value(m, npages):#x}: "
                    f"gfn {value(m, g1):#x} -> index {value(m, i1):#x}, gfn {value(m, g2):#x} -> "
                    f"index {value(m, i2):#x} (last index "
                    f"{value(m, gfn_to_index(last, base, level)):#x})")
        small = [_below(base + npages, SMALL_ADDR_BITS - PAGE_SHIFT)]
        v = _solve_preferring_small(z3.And(*claims), timeout_ms, show, facts, small)
        if v.verdict != PROVED:
            return v
    return Verdict(PROVED, "levels 1-3")


@obligation(
    "gfn.rmap_index_frames", "gfn",
    "gfn_to_index(gfn, slot->base_gfn, level): two gfns of one memslot get the same rmap head "
    "iff they lie in the same level-sized frame; the slot's first gfn gets index 0 and every "
    "gfn of the slot an index no larger than its last gfn's (inside the rmap array), for any "
    "slot base, aligned or not",
    "for all inputs (slots with base_gfn + npages <= 2^40; levels 1-3)")
def rmap_index_frames(impl_cls, timeout_ms):
    return rmap_index_claims(gfn_arith.gfn_to_index, timeout_ms)
