"""Contracts of the impl's core functions, checked symbolically by CrossHair.

`mmuspec prove --symbolic` (proofs/symbolic.py) runs CrossHair on every
contract below and `crosshair diffbehavior` on every spec/impl pair at the
end of this file.  What each covers, assumes and trusts: proofs/README.md.

Style: PEP 316 docstrings (`pre:` / `post:` lines), not icontract.  The
contracts must not change the code the differential campaigns run and
measure: a docstring is inert, while icontract's decorators wrap the function
and check at every call (and icontract is not in requirements.lock).  CrossHair
reads PEP 316 natively, so `crosshair check --analysis_kind=PEP316
proofs.contracts.pte_list_remove` reproduces any one check by hand.

Why harnesses and not contracts on the functions themselves: the functions
under test take kernel objects (a KernelMemory, an RmapHead, a shadow page)
or are deliberately untyped (they run on ints and on z3 bit-vectors alike),
while CrossHair symbolizes typed plain arguments; and a variant replaces the
function, so the contract has to stand apart from any one implementation.
Each harness below is named after the kernel function it checks, takes plain
ints, bools and lists, builds the modelled kernel state from them, calls the
real function of the *class under test* (impl.rmap.Rmap, impl.mmu.ShadowMmu or
impl.walk.PagingTmpl; a variant's class after `bind(variant)`) and returns
what it observed; the `post:` lines compare that with the abstract model
(diff/rmap.py's AbstractRmaps for the walkers, multisets for pte_list,
spec/ helpers elsewhere).

Inputs are kernel-shaped and small on purpose.  CrossHair keeps `+`, `*`,
shifts by constants and low-bit masks symbolic, but realizes (enumerates)
a value at any other `&`, `|` or `^`, which the address arithmetic is full of:
so a gpa is built from page-table index fields drawn from a few edge values
(FIELD9/FIELD10), and a pte_list from a layout (descs and their fill) whose
sptes are canonical addresses.  The pte_list code only compares spte pointers
with each other and with NULL, so renaming the sptes injectively maps runs
onto runs: canonical addresses lose no behaviour (an argument, stated in the
README as trusted).  Every result is a bounded search, never a proof.
"""

from collections import Counter
from typing import List, NamedTuple, Optional

from spec.consts import (
    ACC_ALL, ACC_EXEC_MASK, ACC_USER_MASK, ACC_WRITE_MASK, PAGE_SHIFT,
    PT64_BASE_ADDR_MASK, PT64_INDEX, PT64_NX_MASK, PT_ACCESSED_MASK, PT_DIRTY_MASK,
    PT_PAGE_SIZE_MASK, PT_PRESENT_MASK, PT_USER_MASK, PT_WRITABLE_MASK, PTE_PREFETCH_NUM,
)
from spec.gfn import gfn_to_index
from spec.memory import SHADOW_PT_BASE, KernelMemory, RmapHead
from spec.mmu import KvmMmuPage, KvmMmuPageRole
from spec.prefetch import _runs, window_of
from spec.pte_list import pte_list_decode, pte_list_desc_addr, pte_list_head_of_desc, \
    pte_list_is_desc, pte_list_violations
from spec.walk import KB4, PAGING_32, PAGING_64, STRUCTURES, entry_kind, entry_rights, page_base

from diff.rmap import AbstractRmaps
from impl.mmu import ShadowMmu
from impl.rmap import Rmap, RmapIterator
from impl.walk import PagingTmpl

# -- the class under test ----------------------------------------------------------
_BOUND = {}


def _bases():
    return {"rmap": Rmap, "mmu": ShadowMmu, "walk": PagingTmpl}


def bind(variant=None):
    """Make every harness run `variant`'s code (a Variant, or None: the plain impl).

    The variant is built on its diff family's impl class (rmap: Rmap; gfn,
    prefetch, zap, mmu: ShadowMmu; walk: PagingTmpl); the other classes stay plain.
    """
    _BOUND.clear()
    if variant is None:
        return
    from diff import families

    base = families.for_variant(variant).impl_base
    for key, cls in _bases().items():
        if cls is base:
            _BOUND[key] = variant.build(base)


def impl_class(key):
    """The class under test for `key` ("rmap", "mmu" or "walk")."""
    return _BOUND.get(key) or _bases()[key]


def _instance(key):
    """An instance of the class under test without running __init__: the harness
    sets exactly the fields the checked method reads."""
    cls = impl_class(key)
    return object.__new__(cls), cls


# =================================================================================
# pte_list and the rmap walkers (spec/pte_list.py, impl/rmap.py)
# =================================================================================
MAX_DESCS = 3        # chains of up to 3 pte_list_descs (up to 12 sptes)
MEMBER_SPTE_SHAPES = 32      # an rmap member's value: P plus 5 bits (W, A, D, PS, which of 2 pfns)


def sptep_of(k):
    """The canonical address of the k-th spte (k >= 1) of the layout."""
    return SHADOW_PT_BASE + 8 * k


def layout_sptes(bare, shape):
    """The sptes a layout holds, in list order."""
    return [sptep_of(k) for k in range(1, sum(shape) + 1)]


def own_layout(ops):
    """True when the class under test keeps its pte_lists in another layout than
    3.x's (it replaces the checkers' seam, spec.rmap.RmapBase.pte_list_decode:
    e.g. rmap:tail-count, Linux 6.4)."""
    from spec.rmap import RmapBase

    base = getattr(RmapBase, "pte_list_decode", None)
    return base is not None and getattr(type(ops), "pte_list_decode", base) is not base


def new_ops(ext, rmap_of=None, accessed_mask=PT_ACCESSED_MASK):
    """(memory, the class under test on it, the rmap head every spte belongs to)."""
    mem = KernelMemory(ext)
    head = RmapHead()
    ops = impl_class("rmap")(mem, rmap_of or (lambda sptep: head), accessed_mask)
    return mem, ops, head


def build_list(mem, bare, shape, ops=None, head=None):
    """Lay out sptes 1..n in `head`: empty ([]), a bare spte pointer (bare, [1]),
    or a desc chain whose desc d holds shape[d] sptes in its first slots.

    Every packed 3.x layout is one of these.  A class with its own layout
    (own_layout) gets the list its own pte_list_add builds from sptes 1..n
    instead: `shape` then only says how many (the add-reachable layouts)."""
    head = head if head is not None else RmapHead()
    if not shape:
        return head
    if ops is not None and own_layout(ops):
        for k in range(1, sum(shape) + 1):
            ops.pte_list_add(sptep_of(k), head)
        return head
    if bare:
        head.val = sptep_of(1)
        return head
    k, prev = 1, None
    for size in shape:
        d = mem.alloc_desc()
        for i in range(size):
            d.sptes[i] = sptep_of(k)
            k += 1
        if prev is None:
            head.val = pte_list_head_of_desc(d.addr)
        else:
            prev.more = d.addr
        prev = d
    return head


def reachable_descs(mem, head):
    addrs = set()
    if head.val and pte_list_is_desc(head.val):
        addr = pte_list_desc_addr(head.val)
        while addr and addr not in addrs:
            addrs.add(addr)
            d = mem.descs.get(addr)
            addr = d.more if d is not None else 0
    return addrs


class ListAfter(NamedTuple):
    """What a pte_list operation left: its return value (or the exception it
    raised, as 'KvmBug'/'UseAfterFree'/...), what it had to return (`want`:
    for pte_list_add, the count of the layout's seam pte_list_add_count), the
    list decoded, its form, the structure violations (the layout's rules and
    the variant's own invariants) and live descs no longer reachable (leaked)."""
    ret: object
    want: object
    entries: tuple
    form: str
    violations: tuple
    leaked: int


def _decode(ops, head):
    seam = getattr(ops, "pte_list_decode", None)
    return seam(head.val) if seam else pte_list_decode(ops.mem, head.val)


def _violations(ops, head):
    seam = getattr(ops, "pte_list_violations", None)
    out = list(seam(head.val) if seam else pte_list_violations(ops.mem, head.val))
    for inv in getattr(ops, "variant_invariants", ()):
        out += inv(ops)
    return tuple(dict.fromkeys(out))


def _observe(ops, head, ret, want=None):
    mem = ops.mem
    try:
        entries, _ = _decode(ops, head)
        violations = _violations(ops, head)
    except Exception as e:  # noqa: BLE001 - a wild or freed pointer is an observation
        return ListAfter(ret, want, (), "broken", (type(e).__name__,), 0)
    form = "empty" if head.val == 0 else "desc" if pte_list_is_desc(head.val) else "bare"
    live = {d.addr for d in mem.live_descs()}
    leaked = len(live - reachable_descs(mem, head))
    return ListAfter(ret, want, tuple(entries), form, violations, leaked)


def kernel_add_count(ext, bare, shape):
    """pte_list_add()'s return in 3.x, from the layout: 0 (empty), 1 (bare); else ext
    for every full desc it walks past, plus the entries of the desc it fills,
    and nothing for a full last desc when it appends a new one (facts section 3).
    (The contract asks the layout's seam, pte_list_add_count; this is its 3.x
    value, for reading counterexamples.)"""
    if not shape:
        return 0
    if bare:
        return 1
    count = 0
    for d, size in enumerate(shape):
        if size < ext:
            return count + size
        if d == len(shape) - 1:
            return count
        count += ext
    return count


def pte_list_add(ext: int, bare: bool, shape: List[int]) -> ListAfter:
    """pte_list_add(new spte, rmap head) on every list layout within the bound.

    pre: ext in (3, 4)
    pre: len(shape) <= 3
    pre: all(1 <= s <= ext for s in shape)
    pre: not bare or shape == [1]
    post: Counter(__return__.entries) == Counter(layout_sptes(bare, shape)) + Counter([sptep_of(sum(shape) + 1)])
    post: __return__.violations == ()
    post: __return__.leaked == 0
    post: __return__.form == "bare" if not shape else __return__.form == "desc"
    post: __return__.ret == __return__.want
    """
    mem, ops, head = new_ops(ext)
    build_list(mem, bare, shape, ops, head)
    seam = getattr(ops, "pte_list_add_count", None)
    want = seam(head.val) if seam else kernel_add_count(ext, bare, shape)
    try:
        ret = ops.pte_list_add(sptep_of(sum(shape) + 1), head)
    except Exception as e:  # noqa: BLE001
        ret = type(e).__name__
    return _observe(ops, head, ret, want)


def pte_list_remove(ext: int, bare: bool, shape: List[int], k: int) -> ListAfter:
    """pte_list_remove(spte k, rmap head); k one past the end removes an spte that
    is not on the list, which is a kernel BUG that leaves the list alone.

    pre: ext in (3, 4)
    pre: len(shape) <= 3
    pre: all(1 <= s <= ext for s in shape)
    pre: not bare or shape == [1]
    pre: 1 <= k <= sum(shape) + 1
    post: Counter(__return__.entries) == Counter(layout_sptes(bare, shape)) - Counter([sptep_of(k)])
    post: (__return__.ret == "KvmBug") == (k == sum(shape) + 1)
    post: __return__.violations == ()
    post: __return__.leaked == 0
    post: __return__.form != "bare" or bare or own_layout_class()
    """
    mem, ops, head = new_ops(ext)
    build_list(mem, bare, shape, ops, head)
    try:
        ret = ops.pte_list_remove(sptep_of(k), head)
    except Exception as e:  # noqa: BLE001
        ret = type(e).__name__
    return _observe(ops, head, ret)


def own_layout_class():
    return own_layout(object.__new__(impl_class("rmap")))


def rmap_iterate(ext: int, bare: bool, shape: List[int]) -> tuple:
    """rmap_get_first() then rmap_get_next() until 0: (the sptes visited, the list
    decoded).  The walk visits the list in its order, each spte exactly once.
    (A walk past 2n+2 steps ends with 'LOOP'; an exception ends it with its name.)

    pre: ext in (3, 4)
    pre: len(shape) <= 3
    pre: all(1 <= s <= ext for s in shape)
    pre: not bare or shape == [1]
    post: __return__[0] == __return__[1]
    post: sorted(__return__[1]) == layout_sptes(bare, shape)
    """
    mem, ops, head = new_ops(ext)
    build_list(mem, bare, shape, ops, head)
    listed = tuple(_decode(ops, head)[0])
    seen = []
    it = RmapIterator()
    try:
        sptep = ops.rmap_get_first(head.val, it)
        while sptep:
            seen.append(sptep)
            if len(seen) > 2 * sum(shape) + 2:
                return tuple(seen) + ("LOOP",), listed
            sptep = ops.rmap_get_next(it)
    except Exception as e:  # noqa: BLE001
        return tuple(seen) + (type(e).__name__,), listed
    return tuple(seen), listed


def spte_value(flags):
    """An rmap member's value: present, pfn 1 or 2, and W, A, D, PS from `flags`
    (built with + and branches, so CrossHair branches on the bits)."""
    value = PT_PRESENT_MASK + ((2 if (flags >> 4) % 2 else 1) << PAGE_SHIFT)
    if flags % 2:
        value += PT_WRITABLE_MASK
    if (flags >> 1) % 2:
        value += PT_ACCESSED_MASK
    if (flags >> 2) % 2:
        value += PT_DIRTY_MASK
    if (flags >> 3) % 2:
        value += PT_PAGE_SIZE_MASK
    return value


class WalkAfter(NamedTuple):
    """What a walker did: its return (or 'KvmBug'/'UseAfterFree'/... if it raised),
    the spte values after it in layout order, the list left, structure
    violations, leaked descs, visits per spte (check_present or
    drop_parent_pte calls), and the pfns reported accessed and dirty."""
    ret: object
    values: tuple
    entries: tuple
    violations: tuple
    leaked: int
    visits: tuple
    pfn_accessed: tuple
    pfn_dirty: tuple


class WalkExpected(NamedTuple):
    """The abstract model's answer (diff/rmap.py AbstractRmaps) and the host A/D
    reports mmu_spte_clear_track_bits owes for every spte dropped or repointed."""
    ret: object
    values: tuple
    entries: tuple
    pfn_accessed: tuple
    pfn_dirty: tuple


_COUNTING = {}


def _counting(cls):
    """`cls` with check_present and drop_parent_pte counting their sptes."""
    sub = _COUNTING.get(cls)
    if sub is None:
        class Counting(cls):
            def check_present(self, sptep, walker):
                self.visits[sptep] = self.visits.get(sptep, 0) + 1
                return super().check_present(sptep, walker)

            def drop_parent_pte(self, parent_ptes, parent_pte):
                self.visits[parent_pte] = self.visits.get(parent_pte, 0) + 1
                return super().drop_parent_pte(parent_ptes, parent_pte)

        sub = _COUNTING[cls] = Counting
    return sub


_KEY = ("slot", "level", "index")   # the one rmap under test, for AbstractRmaps


def run_walker(walker, ext, bare, shape, flags, accessed, args):
    mem = KernelMemory(ext)
    head = RmapHead()
    ops = _counting(impl_class("rmap"))(mem, lambda sptep: head, PT_ACCESSED_MASK if accessed else 0)
    ops.visits = {}
    build_list(mem, bare, shape, ops, head)
    sptes = layout_sptes(bare, shape)
    for s, f in zip(sptes, flags):
        mem.spte_write(s, spte_value(f))
    try:
        ret = getattr(ops, walker)(head, *args)
    except Exception as e:  # noqa: BLE001
        ret = type(e).__name__
    after = _observe(ops, head, ret)
    return WalkAfter(ret, tuple(mem.spte_read(s) for s in sptes), after.entries, after.violations,
                     after.leaked, tuple(ops.visits.get(s, 0) for s in sptes),
                     tuple(sorted(ops.pfn_accessed)), tuple(sorted(ops.pfn_dirty)))


def expect_walker(walker, ext, bare, shape, flags, accessed, args):
    mask = PT_ACCESSED_MASK if accessed else 0
    model = AbstractRmaps(mask)
    sptes = layout_sptes(bare, shape)
    before = {s: spte_value(f) for s, f in zip(sptes, flags)}
    for s in sptes:
        if walker == "kvm_mmu_unlink_parents":
            model.sptes[s] = before[s]
            model.parents[0][s] += 1
        else:
            model.add(_KEY, s, before[s])
    if walker == "kvm_mmu_unlink_parents":
        ret = model.kvm_mmu_unlink_parents(0)
        left = model.parents[0]
    else:
        ret = getattr(model, walker)(_KEY, *args)
        left = model.rmap(_KEY)
    values = tuple(model.sptes[s] for s in sptes)
    tracked = [s for s, v in zip(sptes, values)
               if walker == "kvm_set_pte_rmapp" or (v == 0 and walker != "kvm_mmu_unlink_parents")]
    dirty_mask = PT_DIRTY_MASK if accessed else 0
    acc = {(before[s] & PT64_BASE_ADDR_MASK) >> PAGE_SHIFT for s in tracked
           if not mask or before[s] & mask}
    dirty = {(before[s] & PT64_BASE_ADDR_MASK) >> PAGE_SHIFT for s in tracked
             if not dirty_mask or before[s] & dirty_mask}
    return WalkExpected(ret, values, tuple(sorted(left.elements())), tuple(sorted(acc)),
                        tuple(sorted(dirty)))


def walk_agrees(got, want):
    """The walker's observable effect equals the abstract model's, the list is well
    formed and nothing leaked."""
    return (got.ret == want.ret and got.values == want.values
            and tuple(sorted(got.entries)) == want.entries
            and got.pfn_accessed == want.pfn_accessed and got.pfn_dirty == want.pfn_dirty
            and got.violations == () and got.leaked == 0)


def each_once(got):
    return all(v == 1 for v in got.visits)


def dropped_once_rest_seen(got):
    """A walker that restarts after each drop: every spte is visited, and every
    spte it dropped exactly once."""
    return all(n >= 1 and (n == 1 or v != 0) for n, v in zip(got.visits, got.values))


def rmap_write_protect(ext: int, bare: bool, shape: List[int], flags: List[int], accessed: bool,
                       level: int) -> WalkAfter:
    """__rmap_write_protect(rmap, level): at level 1 every W spte loses W; above, every
    W spte (large) is dropped and the walk restarts; returns whether any was W.

    pre: ext in (3, 4)
    pre: len(shape) <= 3
    pre: all(1 <= s <= ext for s in shape)
    pre: not bare or shape == [1]
    pre: len(flags) == sum(shape) and all(0 <= f < 32 for f in flags)
    pre: 1 <= level <= 3
    pre: level == 1 or all(f % 2 == 0 or (f >> 3) % 2 == 1 for f in flags)
    post: walk_agrees(__return__, expect_walker("rmap_write_protect", ext, bare, shape, flags, accessed, (level,)))
    post: each_once(__return__) if level == 1 else dropped_once_rest_seen(__return__)
    """
    return run_walker("rmap_write_protect", ext, bare, shape, flags, accessed, (level,))


def kvm_unmap_rmapp(ext: int, bare: bool, shape: List[int], flags: List[int],
                    accessed: bool) -> WalkAfter:
    """kvm_unmap_rmapp(): every spte dropped (A/D reported to the host), the rmap
    left empty; returns whether there was any.

    pre: ext in (3, 4)
    pre: len(shape) <= 3
    pre: all(1 <= s <= ext for s in shape)
    pre: not bare or shape == [1]
    pre: len(flags) == sum(shape) and all(0 <= f < 32 for f in flags)
    post: walk_agrees(__return__, expect_walker("kvm_unmap_rmapp", ext, bare, shape, flags, accessed, ()))
    post: each_once(__return__)
    """
    return run_walker("kvm_unmap_rmapp", ext, bare, shape, flags, accessed, ())


def kvm_set_pte_rmapp(ext: int, bare: bool, shape: List[int], flags: List[int], accessed: bool,
                      host_writable: bool, new_pfn: int) -> WalkAfter:
    """kvm_set_pte_rmapp(): a writable host pte drops every spte; else every spte
    is repointed to new_pfn with W, HOST_WRITEABLE and A cleared, after
    mmu_spte_clear_track_bits reported the old pfn's A/D; returns whether any.

    pre: ext in (3, 4)
    pre: len(shape) <= 3
    pre: all(1 <= s <= ext for s in shape)
    pre: not bare or shape == [1]
    pre: len(flags) == sum(shape) and all(0 <= f < 32 for f in flags)
    pre: 0 <= new_pfn < 4
    post: walk_agrees(__return__, expect_walker("kvm_set_pte_rmapp", ext, bare, shape, flags, accessed, (host_writable, new_pfn)))
    post: each_once(__return__)
    """
    return run_walker("kvm_set_pte_rmapp", ext, bare, shape, flags, accessed,
                      (host_writable, new_pfn))


def kvm_age_rmapp(ext: int, bare: bool, shape: List[int], flags: List[int],
                  accessed: bool) -> WalkAfter:
    """kvm_age_rmapp(): clears A on every spte and reports whether any had it; with
    no A bit (EPT) it unmaps instead.

    pre: ext in (3, 4)
    pre: len(shape) <= 3
    pre: all(1 <= s <= ext for s in shape)
    pre: not bare or shape == [1]
    pre: len(flags) == sum(shape) and all(0 <= f < 32 for f in flags)
    post: walk_agrees(__return__, expect_walker("kvm_age_rmapp", ext, bare, shape, flags, accessed, ()))
    post: each_once(__return__)
    """
    return run_walker("kvm_age_rmapp", ext, bare, shape, flags, accessed, ())


def kvm_test_age_rmapp(ext: int, bare: bool, shape: List[int], flags: List[int],
                       accessed: bool) -> WalkAfter:
    """kvm_test_age_rmapp(): whether any spte has A (False with no A bit); changes
    nothing, and visits no spte twice.

    pre: ext in (3, 4)
    pre: len(shape) <= 3
    pre: all(1 <= s <= ext for s in shape)
    pre: not bare or shape == [1]
    pre: len(flags) == sum(shape) and all(0 <= f < 32 for f in flags)
    post: walk_agrees(__return__, expect_walker("kvm_test_age_rmapp", ext, bare, shape, flags, accessed, ()))
    post: all(v <= 1 for v in __return__.visits)
    """
    return run_walker("kvm_test_age_rmapp", ext, bare, shape, flags, accessed, ())


def kvm_mmu_unlink_parents(ext: int, bare: bool, shape: List[int], flags: List[int],
                           accessed: bool) -> WalkAfter:
    """kvm_mmu_unlink_parents(sp): every parent pte cleared and taken off
    sp->parent_ptes, each exactly once (no host A/D report: these are not leaves).

    pre: ext in (3, 4)
    pre: len(shape) <= 3
    pre: all(1 <= s <= ext for s in shape)
    pre: not bare or shape == [1]
    pre: len(flags) == sum(shape) and all(0 <= f < 32 for f in flags)
    post: walk_agrees(__return__, expect_walker("kvm_mmu_unlink_parents", ext, bare, shape, flags, accessed, ()))
    post: each_once(__return__)
    """
    return run_walker("kvm_mmu_unlink_parents", ext, bare, shape, flags, accessed, ())


# =================================================================================
# gfns of shadow pages (impl/mmu.py, spec/gfn.py)
# =================================================================================
FIELD9 = (0, 1, 2, 511)       # a 9-bit page-table index field: edges and neighbours
FIELD10 = (0, 1, 512, 1023)   # a 10-bit (32-bit guest) index field: both halves' edges


def _page(level, gfn, direct, quadrant, gfns=None):
    sp = KvmMmuPage(SHADOW_PT_BASE, gfns, 1)
    sp.gfn = gfn
    sp.role = KvmMmuPageRole(level, 1, quadrant, direct, ACC_ALL, 0, 0, 1)
    return sp


def kvm_mmu_page_get_gfn(direct: bool, level: int, sp_frame: int, index: int, quadrant: int,
                         stored: int) -> int:
    """kvm_mmu_page_get_gfn(sp, index): an indirect page's stored gfns[index]; a direct
    page's sp->gfn + (index << 9(level-1)), whatever role.quadrant (a direct
    page's gfn is aligned to its own range since 3af1817a0d65).

    pre: 1 <= level <= 3
    pre: 0 <= sp_frame < 2 ** (40 - 9 * level)
    pre: 0 <= index < 512
    pre: 0 <= quadrant < 4
    pre: 0 <= stored < 2 ** 40
    post: __return__ == ((sp_frame << (9 * level)) + (index << (9 * (level - 1))) if direct else stored)
    """
    mmu, cls = _instance("mmu")
    sp_gfn = sp_frame << (9 * level)
    gfns = None
    if not direct:
        gfns = [0] * 512
        gfns[index] = stored
    return cls.kvm_mmu_page_get_gfn(mmu, _page(level, sp_gfn, direct, quadrant, gfns), index)


def direct_prefetch_run_gfn(sp_frame: int, start: int, k: int) -> int:
    """direct_prefetch_run_gfn(first_gfn, k): the k-th entry of a prefetched run that
    starts at entry `start` of a level-1 direct page maps kvm_mmu_page_get_gfn of
    entry start + k (the loop's gfn++ is the derived gfn at level 1).

    pre: 0 <= sp_frame < 2 ** 31
    pre: 0 <= start < 512 and 0 <= k < 8 and start + k < 512
    post: __return__ == (sp_frame << 9) + start + k
    """
    mmu, cls = _instance("mmu")
    sp = _page(1, sp_frame << 9, True, 0)
    first = cls.kvm_mmu_page_get_gfn(mmu, sp, start)
    return cls.direct_prefetch_run_gfn(first, k)


# =================================================================================
# prefetch (impl/mmu.py; spec/prefetch.py)
# =================================================================================
def pte_prefetch_window(index: int) -> tuple:
    """pte_prefetch_window(index): the PTE_PREFETCH_NUM-aligned block holding index.

    pre: 0 <= index < 512
    post: __return__[0] <= index < __return__[1]
    post: __return__[1] - __return__[0] == PTE_PREFETCH_NUM
    post: __return__[0] % PTE_PREFETCH_NUM == 0
    post: __return__[1] <= 512
    """
    return tuple(impl_class("mmu").pte_prefetch_window(index))


def direct_prefetch_loop(index: int) -> tuple:
    """direct_prefetch_loop(index) = (first, end, flush_tail): __direct_pte_prefetch
    visits exactly the window of spec/prefetch.window_of(index) and maps a run
    still open at the window's end (c6cecc4b9324).

    pre: 0 <= index < 512
    post: __return__ == (window_first(index), window_first(index) + PTE_PREFETCH_NUM, True)
    """
    mmu, cls = _instance("mmu")
    return tuple(cls.direct_prefetch_loop(mmu, index))


def window_first(index):
    return window_of(index)[0]


def prefetch_set_spte(index: int, access: int, gfn: int, pfn: int) -> tuple:
    """prefetch_set_spte(sptep, access, gfn, pfn): mmu_set_spte() with no write
    fault, at level 1, speculative (A clear) and host-writable (facts section 6;
    the reviewer's note on v3).  mmu_set_spte itself is recorded, not run.

    pre: 0 <= index < 512 and 0 <= access < 8 and 0 <= gfn < 2 ** 40 and 0 <= pfn < 2 ** 40
    post: __return__ == ((SHADOW_PT_BASE + 8 * index, access, False, 1, gfn, pfn, True, True),)
    """
    mmu, cls = _instance("mmu")
    calls = []
    mmu.mmu_set_spte = lambda *a: calls.append(tuple(bool(x) if i in (2, 6, 7) else x
                                                     for i, x in enumerate(a)))
    cls.prefetch_set_spte(mmu, SHADOW_PT_BASE + 8 * index, access, gfn, pfn)
    return tuple(calls)


# =================================================================================
# zapping all pages by generation (impl/zap.py)
# =================================================================================
class _Role(NamedTuple):
    invalid: int


class _Page:
    """The fields of a kvm_mmu_page the generation zap reads."""

    def __init__(self, name, gen, invalid, held):
        self.name = name
        self.mmu_valid_gen = gen
        self.role = _Role(int(invalid))
        self.root_count = 1 if held else 0

    def __repr__(self):
        return f"sp{self.name}"


def _active_list(pages):
    """active_mmu_pages as the model keeps it (spec/list_head.py's ListHead, or a
    plain list newest first in older trees), holding `pages` head to tail."""
    try:
        from spec.list_head import ListHead
    except ImportError:
        return list(pages)
    head = ListHead()
    for sp in reversed(pages):
        head.list_add(sp)
    return head


def _list_del(active, sp):
    if hasattr(active, "list_del"):
        active.list_del(sp)
    else:
        active.remove(sp)


def _list_add(active, sp):
    if hasattr(active, "list_add"):
        active.list_add(sp)
    else:
        active.insert(0, sp)


def _gen_after(cls, bumps):
    gen = 0
    for _ in range(bumps):
        gen = cls.mmu_valid_gen_next(gen, cls.mmu_valid_gen_bits)
    return gen


def is_obsolete_sp(created: int, now: int, invalid: bool) -> bool:
    """is_obsolete_sp(kvm, sp) for a page created after `created` bumps of
    mmu_valid_gen, asked after `now` bumps: a page from before the last bump is
    obsolete, invalid or not; a valid page of the current generation is not.
    (An invalid page of the current generation may go either way: 3.11 calls it
    current, fac026dac0bc obsolete; lookups skip it for being invalid.)  Kernel
    invariant assumed: kvm_zap_obsolete_pages runs to its end before the next
    bump, so a page older than the last bump but one is an invalid root still
    held.

    pre: 0 <= created <= now <= 5
    pre: now - created <= 1 or invalid
    post: created == now or __return__
    post: created < now or invalid or not __return__
    """
    mmu, cls = _instance("mmu")
    mmu.mmu_valid_gen = _gen_after(cls, now)
    return bool(cls.is_obsolete_sp(mmu, _Page(0, _gen_after(cls, created), invalid, invalid)))


def is_valid_sp(created: int, now: int, invalid: bool) -> bool:
    """kvm_mmu_get_page()'s lookup test: a page may be reused only if it is
    neither invalid nor obsolete (same epochs and invariant as is_obsolete_sp).

    pre: 0 <= created <= now <= 5
    pre: now - created <= 1 or invalid
    post: __return__ == (not invalid and created == now)
    """
    mmu, cls = _instance("mmu")
    mmu.mmu_valid_gen = _gen_after(cls, now)
    return bool(cls.is_valid_sp(mmu, _Page(0, _gen_after(cls, created), invalid, invalid)))


class ZapAfter(NamedTuple):
    """What kvm_mmu_invalidate_zap_all_pages left: pages still on active_mmu_pages,
    pages freed, pages put on the invalid list per mmu_lock hold, vCPUs asked
    to reload, an error name if it raised or did not end, and what the
    variant's own invariants (Variant.invariants) say afterwards."""
    active: tuple
    freed: tuple
    per_hold: tuple
    reloads: tuple
    error: Optional[str]
    invariants: tuple = ()


def zap_expected_active(pages):
    """The held roots: prepare_zap leaves them on the list (invalid) until released."""
    return tuple(sorted(i for i, code in enumerate(pages) if (code >> 1) % 2))


def zap_expected_freed(pages):
    return tuple(sorted(i for i, code in enumerate(pages) if not (code >> 1) % 2))


def kvm_mmu_invalidate_zap_all_pages(pages: List[int], vcpus: int, batch: int) -> ZapAfter:
    """kvm_mmu_invalidate_zap_all_pages(): bump mmu_valid_gen, ask every vCPU to
    reload, then kvm_zap_obsolete_pages() from the tail, resumed after every
    cond_resched_lock() until it ends.  Every page that existed is freed, except
    held roots (left on the list, invalid); no mmu_lock hold puts more pages on
    the invalid list than the batch (kvm_mmu_prepare_zap_page's return is what
    `batch` counts: a held root counts 0).  kvm_mmu_prepare_zap_page and
    kvm_mmu_commit_zap_page are stubs (unlink and free are not this
    contract's; the stub zaps no children, so each call adds 0 or 1); the walk,
    the batching, the obsolete test and the bump are the impl's.

    `pages` lists active_mmu_pages head (newest) to tail, one code each: bit 0
    invalid (a root zapped before, still held), bit 1 held (root_count > 0),
    bit 2 older than the previous bump (only such a held invalid root survives
    a completed zap).  Kernel invariants assumed: invalid pages are held roots;
    older pages lie tail-side of the others.

    pre: len(pages) <= 5 and all(0 <= c < 8 for c in pages)
    pre: all(c % 2 == 0 or (c >> 1) % 2 == 1 for c in pages)
    pre: all((c >> 2) % 2 == 0 or c % 2 == 1 for c in pages)
    pre: all((pages[i] >> 2) % 2 <= (pages[i + 1] >> 2) % 2 for i in range(len(pages) - 1))
    pre: 0 <= vcpus <= 2 and 1 <= batch <= 3
    post: __return__.error is None
    post: __return__.active == zap_expected_active(pages)
    post: __return__.freed == zap_expected_freed(pages)
    post: all(n <= batch for n in __return__.per_hold)
    post: __return__.reloads == (True,) * vcpus
    post: __return__.invariants == ()
    """
    from types import SimpleNamespace

    mmu, cls = _instance("mmu")
    gen_old = _gen_after(cls, 1)
    gen_now = _gen_after(cls, 2)
    sps = [_Page(i, gen_old if (c >> 2) % 2 else gen_now, c % 2, (c >> 1) % 2)
           for i, c in enumerate(pages)]
    mmu.mmu_valid_gen = gen_now
    mmu.zap_epoch = 2
    mmu.active_mmu_pages = _active_list(sps)
    mmu.zapped_obsolete_pages = []
    mmu._zap = None
    mmu.zap_batch_pages = batch
    mmu.mmu_lock_holds = []
    mmu.tlb_flushes = 0
    mmu.vcpus = {i: SimpleNamespace(reload=False) for i in range(vcpus)}
    freed, per_hold = [], []

    def prepare(sp, invalid_list):
        while len(per_hold) < len(mmu.mmu_lock_holds):
            per_hold.append(0)
        _list_del(mmu.active_mmu_pages, sp)
        sp.role = _Role(1)
        if sp.root_count:
            _list_add(mmu.active_mmu_pages, sp)   # list_move to the head
            return 0
        invalid_list.append(sp)
        per_hold[-1] += 1
        return 1                                  # the pages it queued

    def commit(invalid_list):
        freed.extend(sp.name for sp in invalid_list)
        invalid_list.clear()

    mmu.kvm_mmu_prepare_zap_page = prepare
    mmu.kvm_mmu_commit_zap_page = commit
    error = None
    try:
        more = cls.zap_all_begin(mmu)
        rounds = 0
        while more:
            rounds += 1
            if rounds > 4 * len(pages) + 4:
                error = "no end"
                break
            more = cls.zap_all_resume(mmu)
    except Exception as e:  # noqa: BLE001
        error = type(e).__name__
    invariants = []
    if error is None:
        for inv in getattr(mmu, "variant_invariants", ()):
            try:
                invariants += inv(mmu)
            except Exception as e:  # noqa: BLE001
                invariants.append(f"{getattr(inv, '__name__', 'invariant')} raised {type(e).__name__}")
    return ZapAfter(tuple(sorted(sp.name for sp in list(mmu.active_mmu_pages))), tuple(sorted(freed)),
                    tuple(per_hold), tuple(mmu.vcpus[i].reload for i in range(vcpus)), error,
                    tuple(invariants))


# =================================================================================
# spec/impl pairs for `crosshair diffbehavior`.  diffbehavior has no
# preconditions, so every input is folded into the bound with `%` (which
# CrossHair keeps symbolic): any ints name one case, and no path is spent on
# inputs outside it.  `case_*` gives the case the ints name, for reports.
# =================================================================================
# gfn derivation: the gfn the spec records for a leaf (gfns[] of the page), and
# the one the impl derives for it, for one fault that creates the direct page
# and maps the leaf through it.  TDP (__direct_map): the page at level 1-3
# under the entry at level+1.  Shadow paging (FNAME(fetch)), guest large page
# kind 0: 32-bit 4MB, level-1 page; 1: PAE/64-bit 2MB, level-1 page; 2:
# 64-bit 1GB, page at level 1 or 2.  c4..c1 pick the address's index fields
# (FIELD9 / FIELD10), cb the guest large page's base (its number among pages
# of its size, 0-3).
def pick(table, c):
    """table[c % len(table)], reached by comparisons: CrossHair then branches on which
    entry (a few paths) instead of enumerating the values of the address built from it."""
    c = c % len(table)
    for k in range(len(table) - 1):
        if c == k:
            return table[k]
    return table[-1]


def case_tdp(level, c4, c3, c2, c1):
    """(level, gpa, the gfn the leaf maps) of a TDP fault."""
    level = 1 + level % 3
    gpa = (pick(FIELD9, c4) << 39) + (pick(FIELD9, c3) << 30) + (pick(FIELD9, c2) << 21) + \
        (pick(FIELD9, c1) << 12)
    return level, gpa, ((gpa >> PAGE_SHIFT) >> (9 * (level - 1))) << (9 * (level - 1))


def spec_tdp_gfn(level: int, c4: int, c3: int, c2: int, c1: int) -> int:
    """The spec's kvm_mmu_page_get_gfn: gfns[index], set to the gfn the TDP fault mapped."""
    return case_tdp(level, c4, c3, c2, c1)[2]


def impl_tdp_gfn(level: int, c4: int, c3: int, c2: int, c1: int) -> int:
    """The impl's kvm_mmu_page_get_gfn on the direct page __direct_map made:
    sp->gfn = direct_map_child_gfn(the leaf's address, level + 1), then derived."""
    level, gpa, leaf = case_tdp(level, c4, c3, c2, c1)
    mmu, cls = _instance("mmu")
    sp = _page(level, cls.direct_map_child_gfn(leaf << PAGE_SHIFT, level + 1), True, 0)
    return cls.kvm_mmu_page_get_gfn(mmu, sp, PT64_INDEX(gpa, level))


_SHADOW_KINDS = ("32-bit guest 4MB page", "PAE/64-bit guest 2MB page", "64-bit guest 1GB page")


def case_shadow(kind, level, c4, c3, c2, c1, cb):
    """(kind, level, gva, guest page base gfn, the gfn the leaf maps) of a shadow fault."""
    kind = kind % 3
    if kind == 0:
        gva = (pick(FIELD10, c2) << 22) + (pick(FIELD10, c1) << 12)
        base = (cb % 4) << 10
        return kind, 1, gva, base, base + (gva >> PAGE_SHIFT) % 1024
    gva = (pick(FIELD9, c4) << 39) + (pick(FIELD9, c3) << 30) + (pick(FIELD9, c2) << 21) + \
        (pick(FIELD9, c1) << 12)
    if kind == 1:
        base = (cb % 4) << 9
        return kind, 1, gva, base, base + (gva >> PAGE_SHIFT) % 512
    level = 1 + level % 2
    base = (cb % 4) << 18
    walker = base + (gva >> PAGE_SHIFT) % (1 << 18)
    return kind, level, gva, base, (walker >> (9 * (level - 1))) << (9 * (level - 1))


def spec_shadow_gfn(kind: int, level: int, c4: int, c3: int, c2: int, c1: int, cb: int) -> int:
    """The spec's kvm_mmu_page_get_gfn: gfns[index], set to the walker's gfn aligned to
    the level of the leaf (the gfn the shadow fault mapped)."""
    return case_shadow(kind, level, c4, c3, c2, c1, cb)[4]


def impl_shadow_gfn(kind: int, level: int, c4: int, c3: int, c2: int, c1: int, cb: int) -> int:
    """The impl's kvm_mmu_page_get_gfn on the direct page FNAME(fetch) made:
    sp->gfn = fetch_direct_gfn(walker gfn, guest page base, level + 1), role.quadrant
    from role_quadrant for a 32-bit guest, then derived."""
    kind, level, gva, base, leaf = case_shadow(kind, level, c4, c3, c2, c1, cb)
    mmu, cls = _instance("mmu")
    quadrant = cls.role_quadrant(gva, level) if kind == 0 else 0
    sp = _page(level, cls.fetch_direct_gfn(leaf, base, level + 1), True, quadrant)
    return cls.kvm_mmu_page_get_gfn(mmu, sp, PT64_INDEX(gva, level))


# rmap index: the rmap head (its index in the memslot's level-`level` array) each
# side files a TDP leaf spte under, rmap_of_spte = gfn_to_rmap(kvm,
# kvm_mmu_page_get_gfn(sp, i), level), in a memslot whose base lies
# SLOT_OFFSETS[cs] frames below the leaf's gfn (both VMs have the same slots).
SLOT_OFFSETS = (0, 1, 3, 511)


def spec_rmap_index(level: int, c4: int, c3: int, c2: int, c1: int, cs: int) -> int:
    level, gpa, leaf = case_tdp(level, c4, c3, c2, c1)
    return gfn_to_index(spec_tdp_gfn(level - 1, c4, c3, c2, c1),
                        max(0, leaf - pick(SLOT_OFFSETS, cs)), level)


def impl_rmap_index(level: int, c4: int, c3: int, c2: int, c1: int, cs: int) -> int:
    level, gpa, leaf = case_tdp(level, c4, c3, c2, c1)
    return gfn_to_index(impl_tdp_gfn(level - 1, c4, c3, c2, c1),
                        max(0, leaf - pick(SLOT_OFFSETS, cs)), level)


# prefetch window: the runs of empty entries __direct_pte_prefetch tries to map,
# as (first entry, end entry) in order, for a fault at entry `index` of a
# level-1 direct page whose window slots `present` (bit j: window slot j) are
# present; run number `fail` cannot be mapped (8: every run can), which ends
# the prefetch.
def case_prefetch(index, present, fail):
    return index % 512, present % 256, fail % 9


def spec_prefetch_runs(index: int, present: int, fail: int) -> tuple:
    """spec/prefetch.py: the window (window_of) and its runs (_runs), in order, up to
    and including the first that cannot be mapped."""
    index, present, fail = case_prefetch(index, present, fail)
    window = window_of(index)
    empty = [j for j in window if j != index and not (present >> (j - window[0])) % 2]
    out = []
    for run in _runs(empty):
        out.append((run[0], run[-1] + 1))
        if len(out) - 1 == fail:
            break
    return tuple(out)


def impl_prefetch_runs(index: int, present: int, fail: int) -> tuple:
    """The impl's direct_pte_prefetch_runs on that page, with direct_pte_prefetch_many
    recorded (it returns -1 for run number `fail`)."""
    index, present, fail = case_prefetch(index, present, fail)
    mmu, cls = _instance("mmu")
    mmu.mem = KernelMemory(3)
    sp = _page(1, 0, True, 0)
    first = index - index % PTE_PREFETCH_NUM
    for j in range(first, first + PTE_PREFETCH_NUM):
        if j == index or (present >> (j - first)) % 2:
            mmu.mem.spte_write(sp.sptep(j), PT_PRESENT_MASK | (1 << PAGE_SHIFT))
    out = []

    def many(vcpu, page, start, end):
        out.append(((start - page.spt) // 8, (end - page.spt) // 8))
        return -1 if len(out) - 1 == fail else 0

    mmu.direct_pte_prefetch_many = many
    cls.direct_pte_prefetch_runs(mmu, None, sp, sp.sptep(index))
    return tuple(out)


# walker address arithmetic: the indices a walk uses and the leaf's gfn.
# kind 0/1/2: 64-bit guest, leaf at level 1/2/3 (4K, 2MB, 1GB); kind 3/4:
# 32-bit guest, leaf at level 1/2 (4K, 4MB with PSE-36).  The leaf pte has no
# reserved bits: its frame is FRAME64/FRAME32[cf] in units of its page size,
# pse the PSE-36 bits, pat the PAT bit 12 of a large page; the address has
# index fields a4..a1 and page offset 0xabc.
_WALK_KINDS = ((PAGING_64, 1), (PAGING_64, 2), (PAGING_64, 3), (PAGING_32, 1), (PAGING_32, 2))
FRAME64 = (0, 1, 2, (1 << 22) - 1)   # the top one reaches bit 51 for a 1GB page
FRAME32 = (0, 1, 2, 1023)


def case_walk(kind, cf, pse, pat, a4, a3, a2, a1):
    """(paging mode, leaf level, leaf pte, address)."""
    mode, level = pick(_WALK_KINDS, kind)
    large = level > 1
    if mode == PAGING_64:
        addr = (pick(FIELD9, a4) << 39) + (pick(FIELD9, a3) << 30) + (pick(FIELD9, a2) << 21) + \
            (pick(FIELD9, a1) << 12) + 0xabc
        pte = PT_PRESENT_MASK + ((pick(FRAME64, cf) % (1 << (40 - 9 * (level - 1))))
                                 << (PAGE_SHIFT + 9 * (level - 1)))
    else:
        addr = (pick(FIELD10, a2) << 22) + (pick(FIELD10, a1) << 12) + 0xabc
        pte = PT_PRESENT_MASK + (pick(FRAME32, cf) << (22 if large else 12))
        if large:
            pte += (pse % 16) << 13
    if large:
        pte += PT_PAGE_SIZE_MASK + ((pat % 2) << 12)
    return mode, level, pte, addr


def spec_walk_address(kind: int, cf: int, pse: int, pat: int, a4: int, a3: int, a2: int,
                      a1: int) -> tuple:
    """spec/walk.py: the STRUCTURES' index of each level down to the leaf, and
    (page_base | la & (size - 1)) >> 12 (MAXPHYADDR 52)."""
    mode, level, pte, addr = case_walk(kind, cf, pse, pat, a4, a3, a2, a1)
    idx = tuple((addr >> s.index_shift) % (1 << s.index_bits) for s in STRUCTURES[mode]
                if s.level >= level)
    size = entry_kind(mode, level, pte, True)[1] if level > 1 else KB4
    return idx, (page_base(mode, pte, size, 52) + addr % size) >> PAGE_SHIFT


def impl_walk_address(kind: int, cf: int, pse: int, pat: int, a4: int, a3: int, a2: int,
                      a1: int) -> tuple:
    """impl/walk.py: PT_INDEX(addr, level) per level and leaf_gfn(pte, addr, level)."""
    mode, level, pte, addr = case_walk(kind, cf, pse, pat, a4, a3, a2, a1)
    tmpl = impl_class("walk")(64 if mode == PAGING_64 else 32)
    top = 4 if mode == PAGING_64 else 2
    idx = tuple(tmpl.PT_INDEX(addr, lvl) for lvl in range(top, level - 1, -1))
    return idx, tmpl.leaf_gfn(pte, addr, level)


# walker rights and the dirty bit: the rights a successful walk grants (ANDed
# over the levels) and whether the leaf's D bit is set after it.  g4..g1 are the
# entries' W/U/NX bits (bit 0 W, bit 1 U, bit 2 NX, kept only in a 64-bit walk
# with EFER.NX: elsewhere XD is reserved and the walk faults first); `depth`
# how many levels the walk reads (the last `depth` of g4..g1).
def case_rights(mode64, nx, depth, g4, g3, g2, g1):
    """The gptes of the walk, top-down."""
    gs = pick(((g1,), (g2, g1), (g3, g2, g1), (g4, g3, g2, g1)) if mode64 else ((g1,), (g2, g1)),
              depth)
    ptes = []
    for g in gs:
        pte = PT_PRESENT_MASK + (PT_WRITABLE_MASK if g % 2 else 0) + \
            (PT_USER_MASK if (g >> 1) % 2 else 0)
        if mode64 and nx and (g >> 2) % 2:
            pte += PT64_NX_MASK
        ptes.append(pte)
    return ptes


def spec_walk_rights(mode64: bool, nx: bool, write: bool, leaf_dirty: bool, depth: int, g4: int,
                     g3: int, g2: int, g1: int) -> tuple:
    """spec/walk.py: AND of entry_rights over the path; D set on the leaf by a write."""
    rights = ACC_ALL
    for pte in case_rights(mode64, nx, depth, g4, g3, g2, g1):
        rights &= entry_rights(PAGING_64 if mode64 else PAGING_32, pte, nx)
    return rights, bool(leaf_dirty or write)


def impl_walk_rights(mode64: bool, nx: bool, write: bool, leaf_dirty: bool, depth: int, g4: int,
                     g3: int, g2: int, g1: int) -> tuple:
    """impl/walk.py: walk_addr's pt_access/pte_access loop (accumulate_access) and
    update_accessed_dirty_bits' leaf_needs_dirty."""
    from types import SimpleNamespace

    ptes = case_rights(mode64, nx, depth, g4, g3, g2, g1)
    tmpl = impl_class("walk")(64 if mode64 else 32)
    mmu = SimpleNamespace(nx=nx)
    pt_access = pte_access = ACC_ALL
    for pte in ptes:
        pt_access &= pte_access
        pte_access = tmpl.accumulate_access(pt_access, mmu, pte)
    leaf = ptes[-1] + (PT_DIRTY_MASK if leaf_dirty else 0)
    return pte_access & (ACC_EXEC_MASK | ACC_WRITE_MASK | ACC_USER_MASK), \
        bool(leaf_dirty or tmpl.leaf_needs_dirty(write, leaf))


# =================================================================================
# flush decisions (spec/mmu.py, spec/rmap.py): the rights a TLB may still hold
# =================================================================================
def _spte_of(flags, pfn):
    """An spte from 4 flag bits (P, W, U, NX) and a pfn."""
    spte = pfn << 12
    for bit, mask in ((1, PT_PRESENT_MASK), (2, PT_WRITABLE_MASK), (4, PT_USER_MASK),
                      (8, PT64_NX_MASK)):
        if flags & bit:
            spte |= mask
    return spte


def lost_rights(old_flags, new_flags, same_pfn):
    """What a TLB that cached `old` may hold beyond `new` (in flag terms): the
    spte went (P), another pfn, or W or U lost, or NX gained."""
    if not old_flags & 1:
        return False
    if not new_flags & 1 or not same_pfn:
        return True
    return bool(old_flags & ~new_flags & 6) or bool(new_flags & ~old_flags & 8)


def need_remote_flush(old_flags: int, new_flags: int, same_pfn: bool) -> bool:
    """need_remote_flush(old, new) of kvm_mmu_pte_write: other vCPUs must flush
    exactly when the spte lost something a TLB may hold.

    pre: 0 <= old_flags < 16 and 0 <= new_flags < 16
    post: __return__ == lost_rights(old_flags, new_flags, same_pfn)
    """
    cls = impl_class("mmu")
    return bool(cls.need_remote_flush(_spte_of(old_flags, 5), _spte_of(new_flags, 5 if same_pfn else 6)))


def mmu_spte_update(old_flags: int, new_flags: int) -> bool:
    """mmu_spte_update(sptep, new) (same pfn): True, a flush of every vCPU, exactly
    when a right went that a TLB may still hold.

    pre: 0 <= old_flags < 16 and 0 <= new_flags < 16 and new_flags & 1
    post: __return__ == lost_rights(old_flags, new_flags, True)
    """
    mmu, cls = _instance("mmu")
    mmu.mem = KernelMemory(3)
    from spec.rmap import SpecRmap

    mmu.rmap = SpecRmap(mmu.mem, None)
    sptep = SHADOW_PT_BASE + 8
    mmu.mem.spte_write(sptep, _spte_of(old_flags, 5))
    return bool(cls.mmu_spte_update(mmu, sptep, _spte_of(new_flags, 5)))


# =================================================================================
# unsync shadow pages (spec/unsync.py, 3.10): going unsync, syncing, INVLPG
# =================================================================================
UNSYNC_GFN = 0x13   # the guest page table whose shadow pages the unsync harnesses hold


def unsync_allowed():
    """The class's `unsync_enabled` (spec/unsync.py): False is the always-write-protect
    form (unsync:always-protect, a sound variant), which the 3.10 rule below allows."""
    return bool(getattr(impl_class("mmu"), "unsync_enabled", True))


def need_write_protect_3_10(levels, can_unsync, enabled=True):
    """mmu_need_write_protect()'s answer in 3.10, restated: a writable spte of the gfn is
    refused iff a valid indirect page shadows it and unsync is not allowed here
    (can_unsync false: a sync's set_spte, 36a2e6774bfb), or one such page is above
    level 1.  (Without unsync, every shadowed gfn is refused.)"""
    if not levels:
        return False
    if not can_unsync or not enabled:
        return True
    return any(level != 1 for level in levels)


class NeedWpAfter(NamedTuple):
    """mmu_need_write_protect's return, each page's unsync flag after it, and the pages
    (by position) whose parents kvm_unsync_page went on to mark, in call order."""
    ret: bool
    unsync: tuple
    marked: tuple


def mmu_need_write_protect(levels: List[int], unsync: List[bool], can_unsync: bool) -> NeedWpAfter:
    """mmu_need_write_protect(vcpu, gfn, can_unsync) over the valid indirect shadow
    pages of the gfn (for_each_gfn_indirect_valid_sp, a stub yielding them): True
    (refuse W, keep the gfn write-protected) iff there is one and unsync is not
    allowed, or one is above level 1; when it returns False, kvm_unsync_pages()
    has made every page of the gfn unsync, calling __kvm_unsync_page (which marks
    the parents: kvm_mmu_mark_parents_unsync, a stub recording the page) exactly
    for those that were sync; when it returns True, nothing changed.  Kernel
    invariant assumed: only level-1 pages are unsync.

    pre: len(levels) <= 3 and len(unsync) == len(levels)
    pre: all(1 <= level <= 3 for level in levels)
    pre: all(level == 1 or not u for level, u in zip(levels, unsync))
    post: __return__.ret == need_write_protect_3_10(levels, can_unsync, unsync_allowed())
    post: __return__.unsync == (tuple(unsync) if __return__.ret else (True,) * len(levels))
    post: __return__.marked == (() if __return__.ret else tuple(i for i, u in enumerate(unsync) if not u))
    """
    mmu, cls = _instance("mmu")
    pages = []
    for level, u in zip(levels, unsync):
        sp = _page(level, UNSYNC_GFN, False, 0, [0] * 512)
        sp.unsync = bool(u)
        pages.append(sp)
    marked = []

    def valid_sps(gfn):
        return iter(pages if gfn == UNSYNC_GFN else [])

    def mark_parents(sp):
        marked.append(next(i for i, p in enumerate(pages) if p is sp))

    mmu.for_each_gfn_indirect_valid_sp = valid_sps
    mmu.kvm_mmu_mark_parents_unsync = mark_parents
    ret = cls.mmu_need_write_protect(mmu, UNSYNC_GFN, can_unsync)
    return NeedWpAfter(bool(ret), tuple(bool(sp.unsync) for sp in pages), tuple(marked))


# FNAME(sync_page): a level-1 indirect page of a 64-bit guest (EFER.NX on,
# MAXPHYADDR 40) shadowing the guest table at gfn UNSYNC_GFN, whose entries
# 0..n-1 hold present sptes (pfn 0x100 + i, recorded gfn sp->gfns[i] = 0x20 + i,
# host-writable or not).  The guest pte of entry i now: bit 0 P, 1 A, 2 W, 3 U,
# 4 D, 5 NX, 6 it names gfn 0x30 + i instead of 0x20 + i, 7 a reserved bit (45).
def sync_gpte(i, f):
    gpte = ((0x30 if (f >> 6) % 2 else 0x20) + i) << PAGE_SHIFT
    for bit, mask in ((0, PT_PRESENT_MASK), (1, PT_ACCESSED_MASK), (2, PT_WRITABLE_MASK),
                      (3, PT_USER_MASK), (4, PT_DIRTY_MASK), (5, PT64_NX_MASK), (7, 1 << 45)):
        if (f >> bit) % 2:
            gpte += mask
    return gpte


def sync_drops(f):
    """The entry goes: the gpte is invalid (not present, A clear, a reserved bit:
    prefetch_invalid_gpte) or names another gfn than sp->gfns[i]."""
    return not f % 2 or not (f >> 1) % 2 or bool((f >> 7) % 2) or bool((f >> 6) % 2)


def sync_rights(f, access):
    """The rights a kept entry gets: the page's role.access AND the guest pte's
    (exec unless NX, W, U), W only if the guest pte is dirty (protect_clean_gpte)."""
    rights = 0 if (f >> 5) % 2 else ACC_EXEC_MASK
    if (f >> 2) % 2 and (f >> 4) % 2:
        rights += ACC_WRITE_MASK
    if (f >> 3) % 2:
        rights += ACC_USER_MASK
    return rights & access


def sync_expected_sets(flags, writable, access):
    """The set_spte calls sync_page owes: every kept entry, level 1, its recorded
    gfn, the old pfn, speculative, the old host-writable bit, can_unsync false."""
    return tuple((i, sync_rights(f, access), 1, 0x20 + i, 0x100 + i, True, bool(w), False)
                 for i, (f, w) in enumerate(zip(flags, writable)) if not sync_drops(f))


class SyncAfter(NamedTuple):
    """sync_page's return (True: zap the page), the entries it dropped (in order),
    its set_spte calls (index, pte_access, level, gfn, pfn, speculative,
    host_writable, can_unsync) and whether a remote flush is owed afterwards."""
    ret: bool
    dropped: tuple
    sets: tuple
    flush_owed: bool


def sync_page(flags: List[int], writable: List[bool], access: int) -> SyncAfter:
    """FNAME(sync_page)(vcpu, sp): each present entry whose guest pte is invalid or
    names another gfn than sp->gfns[i] is dropped (drop_spte, a stub) and a remote
    flush is owed for it (f81602958c11; 3.10 only counted kvm->tlbs_dirty); every
    other entry gets the guest's current rights through set_spte (a stub
    recording its arguments) with can_unsync false (36a2e6774bfb); True (zap the
    page) iff nothing present is left.  The reads of guest memory, the validity
    test, the gfn test and the rights are the class's own.

    pre: 1 <= len(flags) <= 3 and len(writable) == len(flags)
    pre: all(0 <= f < 256 for f in flags)
    pre: 0 <= access < 8
    post: __return__.dropped == tuple(i for i, f in enumerate(flags) if sync_drops(f))
    post: __return__.sets == sync_expected_sets(flags, writable, access)
    post: __return__.ret == all(sync_drops(f) for f in flags)
    post: __return__.flush_owed == any(sync_drops(f) for f in flags)
    """
    from types import SimpleNamespace

    from spec.consts import SPTE_HOST_WRITEABLE

    mmu, cls = _instance("mmu")
    mmu.mem = KernelMemory(3)
    mmu.sync_flush_owed = False
    mmu.tlbs_dirty = 0
    sp = _page(1, UNSYNC_GFN, False, 0, [0] * 512)
    sp.role = sp.role._replace(access=access)
    guest_mem = {}
    for i, (f, w) in enumerate(zip(flags, writable)):
        sp.gfns[i] = 0x20 + i
        spte = PT_PRESENT_MASK + ((0x100 + i) << PAGE_SHIFT)
        if w:
            spte += SPTE_HOST_WRITEABLE
        mmu.mem.spte_write(sp.sptep(i), spte)
        guest_mem[(UNSYNC_GFN << PAGE_SHIFT) + 8 * i] = sync_gpte(i, f)
    guest = SimpleNamespace(mem=SimpleNamespace(read=lambda gpa, size: guest_mem.get(gpa, 0)),
                            efer_lma=True, cr4_pae=True, cr4_pse=True, efer_nx=True, maxphyaddr=40)
    vcpu = SimpleNamespace(guest=guest)
    dropped, sets = [], []

    def drop_spte(sptep):
        dropped.append((sptep - sp.spt) // 8)
        mmu.mem.spte_write(sptep, 0)

    def set_spte(sptep, pte_access, level, gfn, pfn, speculative, host_writable, can_unsync=True):
        sets.append(((sptep - sp.spt) // 8, pte_access, level, gfn, pfn, bool(speculative),
                     bool(host_writable), bool(can_unsync)))
        return False

    mmu.drop_spte = drop_spte
    mmu.set_spte = set_spte
    ret = cls.sync_page(mmu, vcpu, sp)
    return SyncAfter(bool(ret), tuple(dropped), tuple(sets), bool(mmu.sync_flush_owed))


# __kvm_unsync_page -> kvm_mmu_mark_parents_unsync: a small tree of real pages
# of the class under test: root (level 3, gfn 0x11) entries 0 and 1 lead to
# level-2 pages D0 (gfn 0x12) and D1 (gfn 0x15); the level-1 page L (gfn
# UNSYNC_GFN) has a parent pte for each code c of `parents`: entry c % 3 of D(c // 3).
class MarkAfter(NamedTuple):
    """After __kvm_unsync_page(L): L unsync or not; the entries on a path from L
    up to the root whose unsync_child_bitmap bit is clear ("page name[index]");
    pages whose unsync_children does not count their bits."""
    leaf_unsync: bool
    missing: tuple
    miscounted: tuple


def kvm_unsync_page(parents: List[int], preset: int) -> MarkAfter:
    """__kvm_unsync_page(vcpu, sp) of kvm_unsync_pages(): sp->unsync, then
    kvm_mmu_mark_parents_unsync(sp): every entry on every path from sp up to the
    root gets its unsync_child_bitmap bit (mark_unsync; a page whose count goes
    0 -> 1 marks its own parents), and each page's unsync_children counts its
    bits.  `preset` bit k: D_k already has another unsync child (entry 7, bit
    set, count 1) and, as the kernel keeps it, the root's entry k has its bit.

    pre: 1 <= len(parents) <= 3 and all(0 <= c < 6 for c in parents)
    pre: len(set(parents)) == len(parents)
    pre: 0 <= preset < 4
    post: __return__.leaf_unsync
    post: __return__.missing == ()
    post: __return__.miscounted == ()
    """
    from spec.kvm_host import KvmHost

    cls = impl_class("mmu")
    mmu = cls(KvmHost(), 3)
    names = {}

    def page(level, gfn, name):
        sp = mmu.kvm_mmu_alloc_page(False)
        sp.gfn = gfn
        sp.role = KvmMmuPageRole(level, 1, 0, 0, ACC_ALL, 0, 1, 1)
        names[sp.spt] = name
        return sp

    def link(parent, index, child):
        sptep = parent.sptep(index)
        mmu.mem.spte_write(sptep, child.spt | PT_PRESENT_MASK | PT_WRITABLE_MASK | PT_USER_MASK
                           | PT_ACCESSED_MASK)
        mmu.mmu_page_add_parent_pte(child, sptep)

    root = page(3, 0x11, "root")
    root.root_count = 1
    ds = [page(2, 0x12, "D0"), page(2, 0x15, "D1")]
    leaf = page(1, UNSYNC_GFN, "L")
    for k, d in enumerate(ds):
        link(root, k, d)
        if (preset >> k) % 2:
            d.unsync_child_bitmap.add(7)
            d.unsync_children = 1
            root.unsync_child_bitmap.add(k)
            root.unsync_children += 1
    for c in parents:
        link(ds[c // 3], c % 3, leaf)
    cls.kvm_unsync_page(mmu, leaf)
    missing = []
    for c in parents:
        d = ds[c // 3]
        if c % 3 not in d.unsync_child_bitmap:
            missing.append(f"{names[d.spt]}[{c % 3}]")
        if c // 3 not in root.unsync_child_bitmap:
            missing.append(f"root[{c // 3}]")
    miscounted = tuple(names[sp.spt] for sp in (root, *ds)
                       if sp.unsync_children != len(sp.unsync_child_bitmap))
    return MarkAfter(bool(leaf.unsync), tuple(dict.fromkeys(missing)), miscounted)


# A whole small VM (proofs/sync_roots.py): a 64-bit guest, one root, guest page
# table A (gfn 0x13) with data entries 1 and 2; the codes pick GPTES (f: the
# first pte, e: the pte the guest stores later), w the first access (write or
# read).  The transitions are the class's own (guest_access: faults, unsync,
# stores; kvm_mmu_sync_roots; kvm_mmu_invlpg).
def _vm_codes(*codes):
    from proofs.sync_roots import GPTES

    return tuple(pick(tuple(range(len(GPTES))), c) for c in codes)


def kvm_mmu_sync_roots(f1: int, f2: int, w1: bool, w2: bool, e1: int, e2: int,
                       reread: bool) -> tuple:
    """kvm_mmu_sync_roots(vcpu) after the guest edited its unsync page table: no
    leaf reachable from the root is stale against guest memory (the auditor's
    cache rule, unsync pages judged too), no page below the root is left
    unsync, and the auditor is clean.  Returns the violations.  The same
    claim and VM as `python -m proofs.sync_roots` (which enumerates them all).

    pre: 0 <= f1 < 5 and 0 <= f2 < 5 and 0 <= e1 < 5 and 0 <= e2 < 5
    post: __return__ == ()
    """
    from proofs import sync_roots

    f1, f2, e1, e2 = _vm_codes(f1, f2, e1, e2)
    fails, _ = sync_roots.run_state(impl_class("mmu"), 1, (f1, f2), (bool(w1), bool(w2)),
                                    (e1, e2), bool(reread))
    return tuple(fails)


def fname_invlpg(f1: int, f2: int, w1: bool, w2: bool, which: bool, new: int) -> tuple:
    """kvm_mmu_invlpg(vcpu, gva) -> FNAME(invlpg) after the guest edited the pte of
    that gva in its unsync page table (and nothing else): the unsync leaf is
    zapped and refilled from the guest pte (update_pte), so no reachable leaf is
    stale (unsync pages judged too) and the auditor is clean.  Returns the
    violations.

    pre: 0 <= f1 < 5 and 0 <= f2 < 5 and 0 <= new < 5
    post: __return__ == ()
    """
    from proofs import sync_roots

    f1, f2, new = _vm_codes(f1, f2, new)
    fails, _ = sync_roots.run_invlpg_state(impl_class("mmu"), (f1, f2), (bool(w1), bool(w2)),
                                           int(bool(which)), new)
    return tuple(fails)


# =================================================================================
# fast_page_fault (spec/mmu.py, 3.10; impl's kvm_mmu_page_get_gfn)
# =================================================================================
def fast_pf_fix_direct_spte(level: int, sp_frame: int, index: int, bits: int) -> tuple:
    """fast_pf_fix_direct_spte(vcpu, sptep, spte): on a direct page, W set by the
    cmpxchg and the spte's own gfn kvm_mmu_page_get_gfn(sp, index) marked dirty,
    nothing else; returns (the spte after, the gfns marked dirty).  page_header,
    the spte memory and mark_page_dirty are stubs.

    pre: 1 <= level <= 3
    pre: 0 <= sp_frame < 2 ** (40 - 9 * level)
    pre: 0 <= index < 512
    pre: 0 <= bits < 16
    post: __return__[0] == fast_pf_spte(bits) | 2
    post: __return__[1] == ((sp_frame << (9 * level)) + (index << (9 * (level - 1))),)
    """
    mmu, cls = _instance("mmu")
    sp = _page(level, sp_frame << (9 * level), True, 0)
    sptep = SHADOW_PT_BASE + 8 * index
    cells, dirty = {sptep: fast_pf_spte(bits)}, []

    class Mem:
        def spte_read(self, p):
            return cells[p]

        def spte_write(self, p, v):
            cells[p] = v

    mmu.mem = Mem()
    mmu.page_header = lambda p: sp
    mmu.mark_page_dirty = dirty.append
    cls.fast_pf_fix_direct_spte(mmu, None, sptep, cells[sptep])
    return cells[sptep], tuple(dirty)


def fast_pf_spte(bits):
    """A present, read-only direct spte with the two software bits, A and D drawn."""
    from spec.consts import PT_ACCESSED_MASK, PT_DIRTY_MASK, SPTE_HOST_WRITEABLE, SPTE_MMU_WRITEABLE
    spte = PT_PRESENT_MASK | (0x1234 << 12)
    for k, m in enumerate((SPTE_HOST_WRITEABLE, SPTE_MMU_WRITEABLE, PT_ACCESSED_MASK, PT_DIRTY_MASK)):
        if bits >> k & 1:
            spte |= m
    return spte


def spte_is_locklessly_modifiable(bits: int) -> bool:
    """spte_is_locklessly_modifiable(spte) (3.10), as the class under test reads it:
    true exactly when both SPTE_HOST_WRITEABLE and SPTE_MMU_WRITEABLE are set
    (fast_page_fault may then set W outside mmu_lock).

    pre: 0 <= bits < 16
    post: __return__ == (bits & 3 == 3)
    """
    mmu, cls = _instance("mmu")
    return bool(cls.spte_is_locklessly_modifiable(fast_pf_spte(bits)))
