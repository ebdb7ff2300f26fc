"""z3 obligations of the flush family: the ranged flush covers what the spte mapped.

Issue 15.5.  From 5.0 (c3134ce240eed) a flush after an spte goes may name a
gfn range, kvm_flush_remote_tlbs_with_address(kvm, start, pages), and on
Hyper-V only the TLB entries of that range go.  Such a flush is only sound
if the range holds every gfn the dropped spte could have put in a TLB.  The
model's seam for it (spec/mmu.py) is ShadowMmu.spte_flush_range(sp, index)
(kvm_flush_remote_tlbs_sptep's range: 6.3's, the spte's own gfn
kvm_mmu_page_get_gfn(sp, index) aligned to sp->role.level and
KVM_PAGES_PER_HPAGE of it) and ShadowMmu.direct_child_flush_range(child)
(validate_direct_spte's, 3cdf93746f9a).  These obligations evaluate those
methods of the class under test (the plain impl, or with `prove --variant`
a flush variant's class, e.g. flush:ranged-sp-gfn, 1b2dc7360463's earlier
form from sp->gfn) on z3 bit-vectors, and state what the spte mapped on
their own:

- an entry of a *direct* page at level L maps the gfns [sp->gfn + index *
  512^(L-1), + 512^(L-1)) (the page maps a linear range from sp->gfn, which
  3af1817a0d65 aligned to the page's own range);
- an entry of an *indirect* page maps the page of level L holding the gfn
  recorded for it when it was made (sp->gfns[index]: every gfn g with
  g >> 9(L-1) == gfns[index] >> 9(L-1));
- the entry that linked a direct child at level L (an entry of level L + 1)
  mapped [child->gfn, child->gfn + 512^L).
"""

import z3

from spec.consts import KVM_HPAGE_GFN_SHIFT

from .registry import Verdict, all_of, obligation, solve, value

W = 64            # gfn_t
GFN_BITS = 40     # gfns of 52-bit guest-physical addresses
LEVELS = (1, 2, 3)   # leaf levels (a 512GB leaf does not exist)


def _mmu(impl_cls):
    if impl_cls is not None:
        return impl_cls
    from impl.mmu import ShadowMmu

    return ShadowMmu


class _Role:
    """The role fields spte_flush_range and kvm_mmu_page_get_gfn read."""

    def __init__(self, level, direct, quadrant):
        self.level, self.direct, self.quadrant = level, direct, quadrant


class _Gfns:
    """sp->gfns of an indirect page: the entry under test recorded `stored`."""

    def __init__(self, stored):
        self.stored = stored

    def __getitem__(self, index):
        return self.stored


class _Page:
    """A kvm_mmu_page with symbolic gfn, quadrant and recorded gfn."""

    def __init__(self, gfn, level, direct, quadrant, stored):
        self.gfn = gfn
        self.role = _Role(level, int(direct), quadrant)
        self.gfns = None if direct else _Gfns(stored)


def _below(x, bits):
    return z3.LShR(x, bits) == 0


SMALL_GFN_BITS = 20   # counterexamples are looked for below 4GB of gfns first (readability only)


def _solve(claim, timeout_ms, show, facts, small):
    """solve(), trying small inputs first so a counterexample reads easily; a
    claim that holds on them is then solved on the full range."""
    v = solve(claim, timeout_ms, show, facts + small)
    if v.verdict == "counterexample":
        return v
    return solve(claim, timeout_ms, show, facts)


@obligation(
    "flush.range_covers_spte_gfn", "flush",
    "the ranged flush after an spte goes (kvm_flush_remote_tlbs_with_address with "
    "spte_flush_range(sp, index): start, pages) covers every gfn that spte mapped: for a direct "
    "page sp->gfn + index * 512^(level-1) and the 512^(level-1) gfns after it, for an indirect "
    "page the level's page holding sp->gfns[index]; levels 1-3, any role.quadrant",
    "for all inputs (levels 1-3, direct and indirect pages, sp->gfn < 2^40 (a direct page's "
    "aligned to its range, 3af1817a0d65), index 0-511, role.quadrant 0-3, recorded gfn < 2^40)")
def range_covers_spte_gfn(impl_cls, timeout_ms):
    cls = _mmu(impl_cls)
    mmu = object.__new__(cls)
    verdicts = []
    for level in LEVELS:
        for direct in (False, True):   # indirect first: 1b2dc7360463's sharper case
            tag = f"_l{level}{'d' if direct else 'i'}"
            sp_gfn = z3.BitVec("sp_gfn" + tag, W)
            index = z3.BitVec("index" + tag, W)
            quadrant = z3.BitVec("quadrant" + tag, W)
            stored = z3.BitVec("gfns_index" + tag, W)
            shift = KVM_HPAGE_GFN_SHIFT(level)
            facts = [_below(sp_gfn, GFN_BITS), z3.ULT(index, 512), z3.ULT(quadrant, 4),
                     _below(stored, GFN_BITS)]
            if direct:
                facts.append(sp_gfn & ((1 << (shift + 9)) - 1) == 0)
                first = sp_gfn + index * (1 << shift)
            else:
                first = z3.LShR(stored, shift) * (1 << shift)
            last = first + ((1 << shift) - 1)     # the mapped gfns: first..last
            start, pages = cls.spte_flush_range(mmu, _Page(sp_gfn, level, direct, quadrant, stored),
                                                index, "proofs/flush.py")
            claim = z3.And(z3.ULE(start, first), z3.ULT(last, start + pages))

            def show(m, level=level, direct=direct, sp_gfn=sp_gfn, index=index, quadrant=quadrant,
                     stored=stored, first=first, last=last, start=start, pages=pages):
                what = (f"direct level-{level} page, sp->gfn {value(m, sp_gfn):#x}" if direct else
                        f"indirect level-{level} page, sp->gfn {value(m, sp_gfn):#x} (the guest table "
                        f"it shadows), sp->gfns[{value(m, index)}] = {value(m, stored):#x}")
                s, n = value(m, start), value(m, pages)
                return (f"{what}, role.quadrant {value(m, quadrant)}, entry {value(m, index)}: the "
                        f"spte mapped gfns {value(m, first):#x}..{value(m, last):#x}, the flush "
                        f"covers {s:#x}..{s + n - 1:#x} ({n} page{'s' if n != 1 else ''}): a TLB entry of "
                        f"{value(m, first) if value(m, first) < s else value(m, last):#x} survives")
            verdicts.append(_solve(claim, timeout_ms, show, facts,
                                   [_below(sp_gfn, SMALL_GFN_BITS), _below(stored, SMALL_GFN_BITS)]))
    v = all_of(verdicts)
    if v.verdict == "proved":
        v = Verdict(v.verdict, f"{len(verdicts)} cases (levels 1-3, direct and indirect)")
    return v


@obligation(
    "flush.direct_child_range_covers", "flush",
    "the ranged flush after validate_direct_spte unlinks a direct child "
    "(direct_child_flush_range(child): start, pages) covers every gfn the linking entry mapped: "
    "child->gfn and the 512^level gfns after it",
    "for all inputs (child levels 1-3, child->gfn < 2^40 aligned to its range)")
def direct_child_range_covers(impl_cls, timeout_ms):
    cls = _mmu(impl_cls)
    verdicts = []
    for level in LEVELS:
        gfn = z3.BitVec(f"child_gfn_l{level}", W)
        span = 1 << (9 * level)        # an entry of level + 1 maps 512^level gfns
        facts = [_below(gfn, GFN_BITS), gfn & (span - 1) == 0]
        start, pages = cls.direct_child_flush_range(_Page(gfn, level, True, 0, None))
        last = gfn + (span - 1)
        claim = z3.And(z3.ULE(start, gfn), z3.ULT(last, start + pages))

        def show(m, level=level, gfn=gfn, last=last, start=start, pages=pages):
            s, n = value(m, start), value(m, pages)
            return (f"direct level-{level} child at child->gfn {value(m, gfn):#x}: its parent entry "
                    f"(level {level + 1}) mapped {value(m, gfn):#x}..{value(m, last):#x}, the flush "
                    f"covers {s:#x}..{s + n - 1:#x} ({n} page{'s' if n != 1 else ''})")
        verdicts.append(_solve(claim, timeout_ms, show, facts, [_below(gfn, SMALL_GFN_BITS + 9 * level)]))
    v = all_of(verdicts)
    if v.verdict == "proved":
        v = Verdict(v.verdict, f"{len(verdicts)} cases (child levels 1-3)")
    return v
