"""z3 obligations of the walk family, on impl/walk.py's own address helpers.

Each check instantiates the given walker class (PagingTmpl or a variant of it)
with PTTYPE 32 or 64 and evaluates its methods - leaf_gfn (which calls
gpte_to_gfn_lvl, PT_LVL_OFFSET_MASK and pse36_gfn_delta), PT_INDEX and
pdptr_index - on z3 bit-vectors.  The claims are stated independently, in the
architecture manual's terms: a large page's physical address is its base
(the entry's address bits at and above the page size, plus the PSE-36 bits
for a 4MB page) plus the linear address modulo the page size.
"""

import z3

from impl.walk import PagingTmpl
from spec.consts import PAGE_SHIFT, PT32_PSE36_BITS, PT32_PSE36_SHIFT, rsvd_bits

from .registry import all_of, obligation, solve, value


def _tmpl(impl_cls, pttype):
    return (impl_cls or PagingTmpl)(pttype)


def _large_page_gfn(impl_cls, timeout_ms, pttype, level, page_shift, base_of, label):
    """leaf_gfn(pte, addr, level) == (base(pte) + addr mod page size) >> 12."""
    tmpl = _tmpl(impl_cls, pttype)
    pte, addr = z3.BitVecs("pte addr", 64)
    got = tmpl.leaf_gfn(pte, addr, level)
    want = z3.LShR(base_of(pte) + (addr & ((1 << page_shift) - 1)), PAGE_SHIFT)
    assumptions = []
    if pttype == 32:  # a u32 pte and a 32-bit linear address
        assumptions = [z3.LShR(pte, 32) == 0, z3.LShR(addr, 32) == 0]

    def show(m):
        return (f"{label}: pte={value(m, pte):#x} addr={value(m, addr):#x}: walker gfn "
                f"{value(m, got):#x}, base + offset gives gfn {value(m, want):#x}")
    return solve(got == want, timeout_ms, show, assumptions=assumptions)


@obligation(
    "walk.large_page_gfn_2m", "walk",
    "FNAME(walk_addr)'s gfn for a 2MB leaf (PTTYPE 64, level 2) is the PDE's bits 51:21 "
    "plus the address bits 20:12: base plus the offset below 2MB",
    "for all inputs (64-bit entries and addresses)")
def large_page_gfn_2m(impl_cls, timeout_ms):
    return _large_page_gfn(impl_cls, timeout_ms, 64, 2, 21,
                           lambda pte: pte & rsvd_bits(21, 51), "2MB page")


@obligation(
    "walk.large_page_gfn_1g", "walk",
    "FNAME(walk_addr)'s gfn for a 1GB leaf (PTTYPE 64, level 3) is the PDPTE's bits 51:30 "
    "plus the address bits 29:12: base plus the offset below 1GB",
    "for all inputs (64-bit entries and addresses)")
def large_page_gfn_1g(impl_cls, timeout_ms):
    return _large_page_gfn(impl_cls, timeout_ms, 64, 3, 30,
                           lambda pte: pte & rsvd_bits(30, 51), "1GB page")


def _pse36_base(pte):
    """4MB page base: PDE bits 31:22, and PDE bits 16:13 as physical bits 35:32."""
    high = z3.LShR(pte, PT32_PSE36_SHIFT) & ((1 << PT32_PSE36_BITS) - 1)
    return (pte & rsvd_bits(22, 31)) | (high << 32)


@obligation(
    "walk.large_page_gfn_4m_pse36", "walk",
    "FNAME(walk_addr)'s gfn for a 32-bit 4MB leaf (PTTYPE 32, level 2) is the PDE's bits "
    "31:22 with the PSE-36 bits 16:13 as physical bits 35:32, plus the address bits 21:12",
    "for all inputs (32-bit entries and addresses)")
def large_page_gfn_4m_pse36(impl_cls, timeout_ms):
    return _large_page_gfn(impl_cls, timeout_ms, 32, 2, 22, _pse36_base, "4MB page")


# (name, PTTYPE, address bits, [(index function, field shift, field bits)])
def _index_layouts(impl_cls):
    t32, t64 = _tmpl(impl_cls, 32), _tmpl(impl_cls, 64)

    def lvl(t, level, bits):
        return (lambda a, t=t, level=level: t.PT_INDEX(a, level),
                PAGE_SHIFT + bits * (level - 1), bits)
    return [
        ("PT32_INDEX, 32-bit paging", 32, [lvl(t32, 2, 10), lvl(t32, 1, 10)]),
        ("pdptr_index + PT64_INDEX, PAE paging", 32,
         [(t64.pdptr_index, 30, 2), lvl(t64, 2, 9), lvl(t64, 1, 9)]),
        ("PT64_INDEX, 4-level paging", 48,
         [lvl(t64, 4, 9), lvl(t64, 3, 9), lvl(t64, 2, 9), lvl(t64, 1, 9)]),
    ]


@obligation(
    "walk.pt_index_fields", "walk",
    "PT32_INDEX / PT64_INDEX (and the PAE PDPTE index) select disjoint bit fields of the "
    "address which, with the 12-bit page offset, cover every address bit the mode "
    "translates: each index is below 2^bits, depends only on its own field, and the "
    "indices and offset put back together give the address",
    "for all inputs (64-bit addresses; 32 or 48 translated bits)")
def pt_index_fields(impl_cls, timeout_ms):
    verdicts = []
    for name, width, fields in _index_layouts(impl_cls):
        a = z3.BitVec("addr", 64)
        masks = [((1 << bits) - 1) << shift for _, shift, bits in fields]
        disjoint = all(m & n == 0 for i, m in enumerate(masks) for n in masks[i + 1:])
        disjoint = disjoint and all(m & ((1 << PAGE_SHIFT) - 1) == 0 for m in masks)
        if not disjoint:
            verdicts.append(solve(z3.BoolVal(False), timeout_ms,
                                  lambda m, name=name: f"{name}: expected fields overlap"))
            continue
        claims, rebuilt = [], a & ((1 << PAGE_SHIFT) - 1)
        for (fn, shift, bits), mask in zip(fields, masks):
            idx = fn(a)
            claims.append(z3.ULT(idx, 1 << bits))           # in range
            claims.append(idx == fn(a & mask))              # reads only its field
            rebuilt = rebuilt | (idx << shift)
        claims.append(rebuilt == a & ((1 << width) - 1))   # fields + offset cover the address

        def show(m, name=name, a=a, fields=fields):
            idxs = [value(m, fn(a)) for fn, _, _ in fields]
            return f"{name}: addr={value(m, a):#x} gives indices {[hex(i) for i in idxs]}"
        verdicts.append(solve(z3.And(*claims), timeout_ms, show))
    return all_of(verdicts)
