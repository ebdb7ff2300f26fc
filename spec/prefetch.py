"""What prefetch should install: the completeness oracle of the prefetch issue.

The spec MMU has no prefetch (spec/mmu.py's hooks do nothing), so the
guest-visible oracles only prove a prefetch *safe*: one that silently maps
nothing passes them.  This module states what the merged patch (Xiao 2010,
with the trailing-run flush of c6cecc4b9324) intends to install after a
fault put a level-1 leaf at `sptep` (facts section 6), as a plain function
of the state the prefetch starts from: the spte memory right after the
leaf's install, the page's role and gfn, the memslots and host pages, the
guest's page table and the gfns shadowed by indirect pages.  diff/mmu.py
compares it, fault by fault, with what the impl installed ("prefetch
completeness"): exactly this set, nothing more, nothing less.

Which kernel version: the 2010 form (facts section 6), except for one rule
that is a parameter, the stop rule of FNAME(pte_prefetch) at an invalid
guest pte (one that is not present or has A clear), since two kernels differ
there and both forms are sound:

- INVALID_GPTE_SKIP, the 2010 posting and the default: such a slot is
  skipped and the loop goes on to the next one (`continue`);
- INVALID_GPTE_STOP, from bd6360cc0a54 ("KVM: MMU: introduce
  FNAME(prefetch_gpte)", Oct 2012, in 3.8; 3.10.99 and 3.11 have it): the
  loop calls FNAME(prefetch_gpte), whose prefetch_invalid_gpte() check
  returns false there, and a false return ends the window (`break`).

A guest pte with reserved bits ends the window in both forms (facts section
6 for 2010; 3.10.99's prefetch_invalid_gpte checks reserved bits first).  The
forms in between (2.6.38 to 3.7: FNAME(prefetch_invalid_gpte) then
`continue`) skip reserved ptes too; they are not modelled.
__direct_pte_prefetch has no guest ptes, so the rule changes nothing on
direct pages.  The rule an MMU follows is its class attribute
PREFETCH_INVALID_GPTE_RULE (impl/mmu.py: the 2010 one), which
expected_prefetch reads unless it is given one: a form that is less complete
by design is judged against its own rule, and a form that declares one rule
and does the other is caught.

The rules, in our words:

- Only a level-1 page; the window is the aligned block of PTE_PREFETCH_NUM
  entries holding the faulting one.  The faulting entry and present entries
  are never touched.
- Direct pages (TDP and shadow paging's direct pages): the empty entries form
  runs, separated by the faulting entry and present entries, taken in window
  order.  Entry j of a level-1 direct page maps gfn sp->gfn + j.  A run is
  mapped only if a memslot holds its first gfn (and, for a writable mapping,
  does not log dirty pages), the slot is writable and holds the whole run;
  then its leading host-writable pages are mapped.  A run that cannot be
  mapped at all ends the prefetch.  TDP does nothing when the host has no A
  bit (EPT without A/D bits).
- Indirect pages: each empty entry reads its guest pte (a 32-bit guest's
  level-1 table is 1024 entries, the page of quadrant q holding 512q..);
  a pte with reserved bits ends the prefetch, one that is not present or has
  A clear is skipped (INVALID_GPTE_SKIP) or ends the prefetch
  (INVALID_GPTE_STOP); its gfn must have a memslot (without dirty logging
  when the mapping is writable) that is writable, and a host-writable page,
  else the prefetch ends.  Rights are the page's access AND the guest pte's,
  write removed unless the guest pte is dirty.
- Every prefetched spte is speculative (A clear), host-writable, level 1; W
  (with MMU-writable) only if the rights allow it and no valid indirect page
  above level 1 shadows the gfn (level-1 ones go unsync: 3.10's
  mmu_need_write_protect; with unsync off, no valid indirect page at all).
"""

from .consts import (
    ACC_EXEC_MASK, ACC_USER_MASK, ACC_WRITE_MASK, PAGE_SHIFT, PT32_BASE_ADDR_MASK,
    PT64_BASE_ADDR_MASK, PT64_NX_MASK, PT_ACCESSED_MASK, PT_DIRTY_MASK, PT_PAGE_TABLE_LEVEL,
    PT_PRESENT_MASK, PT_USER_MASK, PT_WRITABLE_MASK, PTE_PREFETCH_NUM, SPTE_HOST_WRITEABLE,
    SPTE_MMU_WRITEABLE,
)
from .walk import PAGING_32, PAGING_64, PAGING_PAE, reserved_mask

# FNAME(pte_prefetch) at a guest pte that is not present or has A clear:
INVALID_GPTE_SKIP = "skip"   # the 2010 posting: `continue` to the next slot
INVALID_GPTE_STOP = "stop"   # bd6360cc0a54 (3.8) on: FNAME(prefetch_gpte) false, `break`
INVALID_GPTE_RULES = (INVALID_GPTE_SKIP, INVALID_GPTE_STOP)


def window_of(index):
    """The window's entries (a range) around entry `index`."""
    first = index - index % PTE_PREFETCH_NUM
    return range(first, first + PTE_PREFETCH_NUM)


def _shadowed(mmu, gfn):
    """mmu_need_write_protect() would refuse W: a valid indirect page shadows the
    gfn and unsync is off, or one of them is above level 1 (else the level-1
    pages go unsync and W is granted)."""
    return any(p.gfn == gfn and not p.role.direct and not p.role.invalid
               and (p.role.level > 1 or not mmu.unsync_enabled)
               for p in mmu.pages.values())


def prefetched_spte(mmu, access, gfn, pfn):
    """The spte a prefetch installs for `gfn` with rights `access`."""
    spte = PT_PRESENT_MASK | SPTE_HOST_WRITEABLE | (pfn << PAGE_SHIFT)
    if not access & ACC_EXEC_MASK:
        spte |= PT64_NX_MASK
    if access & ACC_USER_MASK:
        spte |= PT_USER_MASK
    if access & ACC_WRITE_MASK and not _shadowed(mmu, gfn):
        spte |= PT_WRITABLE_MASK | SPTE_MMU_WRITEABLE
    return spte


def _usable_slot(host, gfn, writable):
    slot = host.gfn_to_memslot(gfn)
    if slot is None or slot.invalid or slot.readonly or (writable and slot.dirty_log):
        return None
    return slot


def _runs(empty):
    """Maximal runs of consecutive entries in the sorted list `empty`."""
    runs = []
    for j in empty:
        if runs and runs[-1][-1] == j - 1:
            runs[-1].append(j)
        else:
            runs.append([j])
    return runs


def expected_prefetch(mmu, vcpu, sptep, sptes, host_has_accessed_bit=True, invalid_gpte_rule=None):
    """{spte address: spte value} the prefetch after the leaf at `sptep` installs.

    `sptes` is the spte memory (address -> value) right after the leaf's
    install; `mmu` supplies pages, memslots and host pages (which prefetch
    does not change); `vcpu` the faulting vCPU (its kind and guest paging).
    `invalid_gpte_rule` (one of INVALID_GPTE_RULES) defaults to the rule the
    MMU declares, `mmu.PREFETCH_INVALID_GPTE_RULE`."""
    if invalid_gpte_rule is None:
        invalid_gpte_rule = mmu.PREFETCH_INVALID_GPTE_RULE
    if invalid_gpte_rule not in INVALID_GPTE_RULES:
        raise ValueError(f"prefetch invalid-gpte rule must be one of {INVALID_GPTE_RULES}, "
                         f"not {invalid_gpte_rule!r}")
    sp = mmu.page_header(sptep)
    if sp.role.level != PT_PAGE_TABLE_LEVEL:
        return {}
    index = (sptep - sp.spt) // 8
    empty = [j for j in window_of(index)
             if j != index and not sptes.get(sp.sptep(j), 0) & PT_PRESENT_MASK]
    if sp.role.direct:
        if vcpu.kind == "tdp" and not host_has_accessed_bit:
            return {}
        return _direct(mmu, sp, empty)
    return _indirect(mmu, vcpu, sp, empty, invalid_gpte_rule)


def _direct(mmu, sp, empty):
    out = {}
    access = sp.role.access
    for run in _runs(empty):
        gfn0 = sp.gfn + run[0]
        slot = _usable_slot(mmu.host, gfn0, access & ACC_WRITE_MASK)
        if slot is None or gfn0 + len(run) > slot.base_gfn + slot.npages:
            return out
        mapped = 0
        for j in run:
            pfn = slot.pfns[sp.gfn + j - slot.base_gfn]
            if not mmu.host.pfn_writable[pfn]:
                break
            out[sp.sptep(j)] = prefetched_spte(mmu, access, sp.gfn + j, pfn)
            mapped += 1
        if not mapped:
            return out
    return out


def _indirect(mmu, vcpu, sp, empty, invalid_gpte_rule):
    g = vcpu.guest
    mode = PAGING_64 if g.efer_lma else PAGING_PAE if g.cr4_pae else PAGING_32
    width = 4 if mode == PAGING_32 else 8
    first = 512 * sp.role.quadrant if mode == PAGING_32 else 0
    out = {}
    for j in empty:
        gpte = g.mem.read((sp.gfn << PAGE_SHIFT) + width * (first + j), width)
        if gpte & reserved_mask(mode, 1, gpte, g.cr4_pse, g.efer_nx, g.maxphyaddr):
            return out  # reserved bits stop the window
        if not gpte & PT_PRESENT_MASK or not gpte & PT_ACCESSED_MASK:
            if invalid_gpte_rule == INVALID_GPTE_STOP:
                return out  # 3.8 on: an invalid gpte ends the window too
            continue        # 2010: skipped
        rights = ACC_EXEC_MASK
        if gpte & PT_WRITABLE_MASK and gpte & PT_DIRTY_MASK:
            rights |= ACC_WRITE_MASK
        if gpte & PT_USER_MASK:
            rights |= ACC_USER_MASK
        if mode != PAGING_32 and g.efer_nx and gpte & PT64_NX_MASK:
            rights &= ~ACC_EXEC_MASK
        access = sp.role.access & rights
        gfn = (gpte & (PT32_BASE_ADDR_MASK if mode == PAGING_32 else PT64_BASE_ADDR_MASK)) >> PAGE_SHIFT
        slot = _usable_slot(mmu.host, gfn, access & ACC_WRITE_MASK)
        if slot is None:
            return out
        pfn = slot.pfns[gfn - slot.base_gfn]
        if not mmu.host.pfn_writable[pfn]:
            return out
        out[sp.sptep(j)] = prefetched_spte(mmu, access, gfn, pfn)
    return out


def describe_slots(sp, index, expected, got, show):
    """Lines naming the window slots where the impl differs from `expected`."""
    window = window_of(index)
    lines = [f"fault at {sp} index {index}, window {window[0]}..{window[-1]}"]
    for addr in sorted(set(expected) | set(got)):
        want, have = expected.get(addr), got.get(addr)
        if want == have:
            continue
        slot = (addr - sp.spt) // 8 if sp.spt <= addr < sp.spt + 4096 else None
        where = f"slot {slot} (window slot {slot - window[0]})" if slot is not None \
            else f"spte {addr:#x} outside the faulting page"
        lines.append(f"{where}: expected {show(want) if want is not None else 'nothing'}, "
                     f"impl installed {show(have) if have is not None else 'nothing'}")
    return lines
