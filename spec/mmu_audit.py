"""The MMU auditor: the kernel's own invariants, checked after every step.

Named for arch/x86/kvm/mmu_audit.c (audit_mappings, audit_rmap,
audit_write_protection, audit_sptes_have_rmaps), extended with what makes a
present spte a valid cache of the guest translation (facts section 5).  It
reads a spec.mmu.ShadowMmu (spec or impl form alike) and returns a list of
violations, each "rule: message"; the rule names are the oracle names the
reports print:

  auditor: rmap            every present leaf spte is in exactly the rmap of
                           (its gfn, its level) and every rmap entry is a
                           present leaf spte of that gfn and level
  auditor: parent_ptes     sp->parent_ptes is exactly the set of sptes that
                           point at sp
  auditor: host page       a leaf's pfn is the memslot's current mapping of
                           its gfn (nothing maps a page the host unmapped)
  auditor: cache           a leaf reachable from a vCPU root caches the guest
                           translation: same gfn, rights within the guest's
                           AND, the guest's A bits set along the walk, W only
                           with the leaf's D set; under TDP, a leaf reached at
                           gpa A has kvm_mmu_page_get_gfn() == A >> 12
  auditor: write protect   no W spte maps a gfn an indirect page shadows, a
                           read-only slot or a read-only host page; W under
                           dirty logging only for a gfn in the dirty bitmap
  auditor: lpage count     lpage_info write counts equal the slot-edge
                           disallows plus the live indirect pages accounted
  auditor: roots           every vCPU root is a live page; a vCPU with no
                           reload request pending reaches (through its
                           roots) only valid pages created since the last
                           zap-all began: it never runs on an obsolete table
  auditor: unsync          only level-1 indirect pages are unsync, and every
                           entry leading to an unsync page (or to one with
                           unsync children) has its unsync_child_bitmap bit
                           set; the cache rule skips leaves of unsync pages
                           (the access-time oracle judges what they give)
  auditor: generation      with a generation number (impl/zap.py): a page
                           whose generation matches kvm->arch.mmu_valid_gen
                           ("looks current") was created since the last
                           bump (the page's epoch: model ground truth, not
                           kernel state)
"""

from collections import Counter

from .consts import (
    ACC_EXEC_MASK, ACC_USER_MASK, ACC_WRITE_MASK, KVM_HPAGE_GFN_SHIFT, PAGE_SHIFT,
    PT32_ROOT_LEVEL, PT64_BASE_ADDR_MASK, PT64_LEVEL_BITS, PT64_NX_MASK,
    PT64_ROOT_LEVEL, PT_ACCESSED_MASK, PT_DIRTY_MASK, PT_PRESENT_MASK, PT_USER_MASK,
    PT_WRITABLE_MASK, spte_to_pfn,
)
from .errors import KvmBug
from .guest_memory import ReadOnlyView
from .kvm_host import KvmMemorySlot

LIMIT = 1  # violations to report per rule


def _present(mmu):
    """{sp: [(index, sptep, spte)]} of every present spte, from one pass over the spte memory."""
    out = {}
    for sptep, spte in mmu.mem.sptes.items():
        if spte & PT_PRESENT_MASK:
            sp = mmu.pages.get(sptep & ~0xFFF)
            if sp is None:
                raise KvmBug(f"present spte {sptep:#x} in no live shadow page")
            out.setdefault(sp, []).append(((sptep - sp.spt) // 8, sptep, spte))
    return out


def _leaves(mmu, present=None):
    """Every present leaf spte: (sp, index, sptep, spte)."""
    for sp, entries in (present if present is not None else _present(mmu)).items():
        for i, sptep, spte in entries:
            if mmu.is_last_spte(spte, sp.role.level):
                yield sp, i, sptep, spte


def audit(mmu, probe_cpu_of=None):
    """All violations in `mmu`; `probe_cpu_of(vcpu)` gives an architectural
    CPU (spec.walk.ArchCpu) on a read-only view of guest memory for the cache rule."""
    try:
        present = _present(mmu)
    except KvmBug as e:
        return [f"auditor: parent_ptes: {e}"]
    out = []
    out += audit_rmap(mmu, present)
    out += audit_parent_ptes(mmu, present)
    out += audit_host_pages_and_write_protect(mmu, present)
    out += audit_lpage_counts(mmu)
    out += audit_roots(mmu, present)
    out += audit_generation(mmu)
    out += audit_unsync(mmu, present)
    if probe_cpu_of is not None:
        out += audit_cache(mmu, probe_cpu_of, present)
    return out


def audit_rmap(mmu, present=None):
    want = Counter()
    for sp, i, sptep, spte in _leaves(mmu, present):
        gfn = mmu.kvm_mmu_page_get_gfn(sp, i)
        slot = mmu.host.gfn_to_memslot(gfn)
        if slot is None:
            return [f"auditor: rmap: leaf spte {sptep:#x} of {sp} maps gfn {gfn:#x}, in no memslot"]
        want[(slot.id, sp.role.level, slot.rmap_head(gfn, sp.role.level)), sptep] += 1
    have = Counter()
    for slot in mmu.host.memslots.values():
        for level, heads in slot.rmap.items():
            for idx, head in heads.items():
                for sptep in mmu.rmap.pte_list_decode(head.val)[0]:  # the rmap's own layout
                    have[(slot.id, level, head), sptep] += 1
    if want != have:
        (k, sptep) = sorted(set(want) ^ set(have) | {x for x in want if want[x] != have[x]},
                            key=lambda x: x[1])[0]
        slot_id, level, _ = k
        where = "missing from" if want[(k, sptep)] > have[(k, sptep)] else "unexpected in"
        return [f"auditor: rmap: spte {sptep:#x} {where} the level-{level} rmap of slot {slot_id}"]
    return []


def audit_parent_ptes(mmu, present=None):
    pointing = {sp.spt: Counter() for sp in mmu.pages.values()}
    for sp, entries in (present if present is not None else _present(mmu)).items():
        for i, sptep, spte in entries:
            if not mmu.is_last_spte(spte, sp.role.level):
                child = spte & PT64_BASE_ADDR_MASK
                if child not in pointing:
                    return [f"auditor: parent_ptes: {sp} entry {i} points at {child:#x}, "
                            f"not a live shadow page"]
                pointing[child][sp.sptep(i)] += 1
    for sp in mmu.pages.values():
        have = Counter(mmu.rmap.pte_list_decode(sp.parent_ptes.val)[0])
        if have != pointing[sp.spt]:
            return [f"auditor: parent_ptes: {sp}: parent_ptes {sorted(hex(x) for x in have)} but "
                    f"pointed at by {sorted(hex(x) for x in pointing[sp.spt])}"]
    return []


def audit_host_pages_and_write_protect(mmu, present=None):
    out = []
    # 3.10's rule: a gfn is writable through an spte only if no valid indirect
    # page shadows it, or every one that does is level 1 and unsync
    shadowed = sorted({sp.gfn for sp in mmu.pages.values()
                       if not sp.role.direct and not sp.role.invalid
                       and not (sp.role.level == 1 and sp.unsync)})
    for sp, i, sptep, spte in _leaves(mmu, present):
        gfn = mmu.kvm_mmu_page_get_gfn(sp, i)
        slot = mmu.host.gfn_to_memslot(gfn)
        if slot is None:
            continue  # reported by audit_rmap
        want = slot.pfns[gfn - slot.base_gfn]
        if spte_to_pfn(spte) != want:
            out.append(f"auditor: host page: spte {sptep:#x} of {sp} maps gfn {gfn:#x} to pfn "
                       f"{spte_to_pfn(spte):#x}, the memslot maps it to {want:#x}")
        if spte & PT_WRITABLE_MASK:
            span = 1 << KVM_HPAGE_GFN_SHIFT(sp.role.level)
            hit = next((g for g in shadowed if gfn <= g < gfn + span), None)
            if hit is not None:
                out.append(f"auditor: write protect: W spte {sptep:#x} maps gfn {hit:#x}, "
                           f"a shadowed guest table (and not a level-1 unsync one)")
            if slot.readonly or not mmu.host.pfn_writable.get(want, False):
                out.append(f"auditor: write protect: W spte {sptep:#x} maps gfn {gfn:#x} of a "
                           f"read-only slot or host page")
            if slot.dirty_log and gfn not in slot.dirty_bitmap:
                out.append(f"auditor: write protect: W spte {sptep:#x} maps gfn {gfn:#x} under "
                           f"dirty logging but the gfn is not in the dirty bitmap")
        if len(out) >= LIMIT:
            break
    return out[:LIMIT]


def audit_lpage_counts(mmu):
    for slot in mmu.host.memslots.values():
        fresh = KvmMemorySlot(slot.id, slot.base_gfn, slot.pfns, userspace_gfn=slot.userspace_gfn)
        want = {lvl: Counter(c) for lvl, c in fresh.lpage_write_count.items()}
        for sp in mmu.active_mmu_pages:
            if sp.role.direct or sp.role.invalid or not slot.contains(sp.gfn):
                continue
            for lvl in want:
                want[lvl][(sp.gfn >> KVM_HPAGE_GFN_SHIFT(lvl)) - (slot.base_gfn >> KVM_HPAGE_GFN_SHIFT(lvl))] += 1
        for lvl in want:
            have = Counter({k: v for k, v in slot.lpage_write_count[lvl].items() if v})
            if have != +want[lvl]:
                return [f"auditor: lpage count: slot {slot.id} level {lvl}: write counts "
                        f"{dict(have)}, live indirect pages and edges give {dict(+want[lvl])}"]
    return []


def _root_pages(vcpu):
    if vcpu.root is not None:
        return [vcpu.root]
    return [sp for sp in (vcpu.pae_root or []) if sp]


def audit_roots(mmu, present):
    # Without a generation number (3.10, whose zap is one mmu_lock hold, and
    # 5.1-5.2's zap with lock breaks) a page the zap has not reached yet is
    # not obsolete: the epoch part of the rule holds outside a zap only.
    epochs = getattr(mmu, "has_generation", False) or not mmu.zap_in_progress()
    for vcpu in mmu.vcpus.values():
        stack = _root_pages(vcpu)
        for sp in stack:
            if mmu.pages.get(sp.spt) is not sp:
                return [f"auditor: roots: vcpu {vcpu.id} holds {sp}, a freed page"]
        if vcpu.reload:
            continue
        seen = set()
        while stack:
            sp = stack.pop()
            if sp.spt in seen:
                continue
            seen.add(sp.spt)
            if sp.role.invalid or (epochs and sp.epoch != mmu.zap_epoch):
                what = "invalid" if sp.role.invalid else "obsolete (created before the last zap-all)"
                return [f"auditor: roots: vcpu {vcpu.id} runs with no reload pending on {sp}, "
                        f"which is {what}"]
            for i, sptep, spte in present.get(sp, ()):
                if not mmu.is_last_spte(spte, sp.role.level):
                    stack.append(mmu.page_header(spte & PT64_BASE_ADDR_MASK))
    return []


def audit_unsync(mmu, present):
    """unsync: only level-1 indirect pages are unsync; every entry that leads to
    an unsync page, or to a page with unsync children, has its bit set in its
    page's unsync_child_bitmap (a set bit may be stale, never a missing one),
    and unsync_children counts the bits."""
    for sp in mmu.pages.values():
        if sp.unsync and (sp.role.level != 1 or sp.role.direct):
            return [f"auditor: unsync: {sp} is unsync above level 1 or direct"]
        if sp.unsync_children != len(sp.unsync_child_bitmap):
            return [f"auditor: unsync: {sp} has unsync_children {sp.unsync_children} but "
                    f"{len(sp.unsync_child_bitmap)} bits set"]
    for sp, entries in present.items():
        for i, sptep, spte in entries:
            if mmu.is_last_spte(spte, sp.role.level):
                continue
            child = mmu.pages.get(spte & PT64_BASE_ADDR_MASK)
            if child is not None and (child.unsync or child.unsync_children) \
                    and i not in sp.unsync_child_bitmap:
                what = "unsync" if child.unsync else "with unsync children"
                return [f"auditor: unsync: {sp} entry {i} leads to {child}, {what}, but its "
                        f"unsync_child_bitmap bit is clear (mmu_sync_children would miss it)"]
    return []


def audit_generation(mmu):
    if not getattr(mmu, "has_generation", False):
        return []  # the spec (3.10) has no generation number, nor had 5.1-5.2
    for sp in mmu.active_mmu_pages:
        if not mmu.is_obsolete_sp(sp) and sp.epoch != mmu.zap_epoch:
            return [f"auditor: generation: {sp} has generation {sp.mmu_valid_gen} == "
                    f"kvm->arch.mmu_valid_gen {mmu.mmu_valid_gen} (looks current) but was created "
                    f"{mmu.zap_epoch - sp.epoch} zap-all(s) ago"
                    f"{' (invalid, root_count %d)' % sp.root_count if sp.role.invalid else ''}"]
    return []


def _reachable_leaves(mmu, vcpu, present):
    """(address, level, sptep, spte, [sptes top-down]) of every leaf under the vCPU's roots."""
    roots = []
    if vcpu.root is not None:
        roots.append((vcpu.root, PT64_ROOT_LEVEL, 0))
    elif vcpu.pae_root:
        roots += [(sp, PT32_ROOT_LEVEL, i << 30) for i, sp in enumerate(vcpu.pae_root) if sp]
    stack = [(sp, lvl, base, []) for sp, lvl, base in roots]
    while stack:
        sp, lvl, base, above = stack.pop()
        for i, sptep, spte in present.get(sp, ()):
            addr = base | (i << (PAGE_SHIFT + PT64_LEVEL_BITS * (lvl - 1)))
            if mmu.is_last_spte(spte, lvl):
                yield addr, lvl, sptep, spte, above + [spte]
            else:
                stack.append((mmu.page_header(spte & PT64_BASE_ADDR_MASK), lvl - 1, addr,
                              above + [spte]))


def _canonical(addr):
    return addr | (0xFFFF << 48) if addr & (1 << 47) else addr


# Entries kept per MMU by _memo_walk before the memo starts again.
WALK_MEMO_ENTRIES = 1 << 14


def _memo_walk(mmu, cpu, va):
    """cpu.walk(va, READ, supervisor) on the auditor's read-only view, memoized
    across audits of `mmu`: a walk is a function of the CPU's control state
    (mode, CR3, the PDPTE registers, CR0.WP, CR4.PSE, EFER.NX, MAXPHYADDR, the
    reserved-bit rule, GBPAGES), the address and the guest entries it read.
    A remembered result is used only if every entry on its path still holds
    the value the walk read (re-read now), so it is the walk's own answer;
    the audit of a step where few tables changed costs a few reads per leaf
    instead of a walk.  The memo lives on the MMU and is dropped when large."""
    from .walk import PAGING_32, READ

    mode = cpu.mode
    key = (id(getattr(cpu.mem, "_mem", cpu.mem)), mode, cpu.cr3, cpu.pdptes, cpu.cr0_wp, cpu.cr4_pse, cpu.efer_nx,
           cpu.maxphyaddr, cpu.rsvd_rule, cpu.gbpages, va)
    memo = mmu.__dict__.get("_audit_walk_memo")
    if memo is None or len(memo) > WALK_MEMO_ENTRIES:
        memo = mmu.__dict__["_audit_walk_memo"] = {}
    res = memo.get(key)
    width = 4 if mode == PAGING_32 else 8
    read = cpu.mem.read
    if res is not None and all(e.gpa is None or read(e.gpa, width) == e.value for e in res.path):
        return res
    res = memo[key] = cpu.walk(va, READ, False)
    return res


def audit_cache(mmu, probe_cpu_of, present):
    for vcpu in mmu.vcpus.values():
        if vcpu.root is None and not vcpu.pae_root:
            continue
        if vcpu.kind != "shadow":
            bad = _audit_tdp_identity(mmu, vcpu, present)
            if bad:
                return bad
            continue
        cpu = probe_cpu_of(vcpu)
        for addr, lvl, sptep, spte, path in _reachable_leaves(mmu, vcpu, present):
            if mmu.page_header(sptep).unsync:
                continue  # may cache an older guest pte until an invalidation syncs it
            va = _canonical(addr) if vcpu.root is not None else addr
            res = _memo_walk(mmu, cpu, va)
            where = f"vcpu {vcpu.id} address {va:#x}: spte {sptep:#x} = {spte:#x} at level {lvl}"
            if not res.ok:
                return [f"auditor: cache: {where}, but the guest walk faults (error {res.fault:#x})"]
            got = mmu.spte_gfn(sptep, lvl, va)
            if got != res.gfn:
                return [f"auditor: cache: {where} maps gfn {got:#x}, the guest maps {res.gfn:#x}"]
            rights = ACC_EXEC_MASK | ACC_WRITE_MASK | ACC_USER_MASK
            for v in path:
                if not v & PT_WRITABLE_MASK:
                    rights &= ~ACC_WRITE_MASK
                if not v & PT_USER_MASK:
                    rights &= ~ACC_USER_MASK
                if v & PT64_NX_MASK:
                    rights &= ~ACC_EXEC_MASK
            guest = res.rights
            if not vcpu.guest.cr0_wp and rights & ACC_WRITE_MASK and not rights & ACC_USER_MASK:
                guest |= ACC_WRITE_MASK  # the CR0.WP=0 supervisor-write page
            if rights & ~guest:
                return [f"auditor: cache: {where} grants rights {rights} beyond the guest's {res.rights}"]
            unaccessed = [e for e in res.path if e.gpa is not None and not e.value & PT_ACCESSED_MASK]
            if unaccessed:
                return [f"auditor: cache: {where}, but the guest entry at {unaccessed[0].gpa:#x} "
                        f"has A clear"]
            if spte & PT_WRITABLE_MASK and not res.path[-1].value & PT_DIRTY_MASK:
                return [f"auditor: cache: {where} is writable but the guest leaf is clean"]
    return []


def _audit_tdp_identity(mmu, vcpu, present):
    """Under TDP a leaf reached at guest-physical address A maps gfn A >> 12:
    the gfn the MMU derives or stores for it (kvm_mmu_page_get_gfn) must be
    the one its position in the tree names."""
    for addr, lvl, sptep, spte, path in _reachable_leaves(mmu, vcpu, present):
        got = mmu.spte_gfn(sptep, lvl, addr)
        if got != addr >> PAGE_SHIFT:
            return [f"auditor: cache: vcpu {vcpu.id} TDP leaf spte {sptep:#x} at level {lvl} is "
                    f"reached at gpa {addr:#x} but kvm_mmu_page_get_gfn gives gfn {got:#x}"]
    return []


def probe_cpu(guest):
    """An ArchCpu with `guest`'s control state on a read-only view of its memory."""
    from .walk import ArchCpu, PAGING_32, PAGING_64, PAGING_PAE

    mode = PAGING_64 if guest.efer_lma else PAGING_PAE if guest.cr4_pae else PAGING_32
    cpu = ArchCpu.__new__(ArchCpu)
    cpu.mem = ReadOnlyView(guest.mem)
    cpu.maxphyaddr = guest.maxphyaddr
    cpu.cr0_wp, cpu.cr4_pse, cpu.efer_nx = guest.cr0_wp, guest.cr4_pse, guest.efer_nx
    cpu.cr4_pae, cpu.efer_lma = mode != PAGING_32, mode == PAGING_64
    cpu.cr3 = guest.cr3
    cpu.gbpages = getattr(guest, "gbpages", True)      # the guest's CPUID, not the default
    cpu.rsvd_rule = getattr(guest, "rsvd_rule", cpu.rsvd_rule)
    pdptes = getattr(guest, "pdptes", None)
    cpu.pdptes = tuple(pdptes if pdptes is not None else guest.pdptrs)
    return cpu
