"""After kvm_mmu_sync_roots(), no reachable spte is stale: an exhaustive bounded search.

Issue 16.4.  The claim: once mmu_sync_roots() (kvm_mmu_sync_roots ->
mmu_sync_children of the root) has run, every leaf spte reachable from the
vCPU's root is a valid cache of the guest translation *as guest memory is
now* (spec/mmu_audit.py's cache rule, applied to unsync pages too, which the
auditor otherwise exempts): the gfn the guest maps, rights within the
guest's, the guest's A bits set, W only with the guest leaf's D.  Two more
things are checked on the way, since they are the kernel's own postcondition
and invariants: no page reachable from the root is still unsync, and the whole
auditor (rmap, parent_ptes, write protection, unsync bitmap, ...) is clean.

It is a *bounded search*, not a proof: every state of the bound below is
built with the model's own transition functions (ShadowMmu.guest_access:
faults, unsync on a guest write to a shadowed table, stores through the
writable spte; then kvm_mmu_sync_roots), on the plain impl, the spec, or a
variant's class, and checked.  The bound (SMALL_VM):

  a 64-bit guest (CR0.WP=1, CR4.PSE, EFER.NX) with one root: PML4 gfn 0x10,
  PDPT 0x11, PD 0x12; PD[0] -> guest page table A (gfn 0x13) and, with two
  pages, PD[1] -> table B (gfn 0x14).  Table A maps itself at gva 0x13000 and
  B at gva 0x14000 (writable), so the guest can edit both.  The data entries
  are A[1] (gva 0x1000), A[2] (gva 0x2000) and, with two pages, B[1] (gva
  0x201000); each guest pte is one of GPTES (not present; gfn 0x20 W+D; gfn
  0x21 read-only; gfn 0x20 writable but clean; gfn 0x14, table B itself, W+D).

  A state: each data entry's first pte (GPTES), the vCPU's first access to it
  (read or write, which faults the leaf in, prefetch included), then the
  guest's store of a new pte (GPTES) into each data entry through the table's
  own gva (the first store makes the table's level-1 shadow page unsync via
  mmu_need_write_protect, the next go straight through the writable spte),
  then, or not, a read of every data gva before the sync (which may refault
  through the unsync page).  Then kvm_mmu_sync_roots(vcpu), then the check.

  One page: 5^2 x 2^2 x 5^2 x 2 = 5000 states; two pages: 5^3 x 2^3 x 5^3 x 2
  = 250000 states.

`python -m proofs.sync_roots [--pages 1|2] [--variant F:N] [--spec]` runs it
and prints "searched (exhaustive, bound ...)" with the count and the time, or
the first state that breaks the claim, in kernel terms (exit 1).

Not attempted: an inductive (unbounded) form.  The argument it would need is
compositional: mmu_sync_children() only returns when mmu_unsync_walk() finds
no unsync page through the unsync_child_bitmap bits (so the auditor's unsync
rule, every entry towards an unsync page has its bit, is what makes "no
unsync page left below the root" hold), and FNAME(sync_page) makes each entry
of a page it syncs a valid cache or drops it (the `FNAME(sync_page)` contract
of proofs/contracts.py searches that per entry).  Neither step is proved here.
"""

import itertools
import sys
import time
from dataclasses import dataclass

from spec.consts import (
    PAGE_SHIFT, PT_ACCESSED_MASK, PT_DIRTY_MASK, PT_PRESENT_MASK, PT_USER_MASK, PT_WRITABLE_MASK,
)
from spec.errors import HostDemand, KvmBug, Livelock, WrongHostPage
from spec.mmu import SHADOW
from spec.mmu_audit import audit, audit_cache, probe_cpu, _present
from spec.walk import PAGING_64

_PWUAD = PT_PRESENT_MASK | PT_WRITABLE_MASK | PT_USER_MASK | PT_ACCESSED_MASK | PT_DIRTY_MASK
_TABLE = PT_PRESENT_MASK | PT_WRITABLE_MASK | PT_USER_MASK | PT_ACCESSED_MASK

PML4, PDPT, PD, PT_A, PT_B = 0x10, 0x11, 0x12, 0x13, 0x14
DATA_A, DATA_B = 0x20, 0x21

# the guest ptes a data entry takes (first value and the guest's edits)
GPTES = (
    0,                                                                  # not present
    (DATA_A << PAGE_SHIFT) | _PWUAD,                                    # gfn 0x20, W, D
    (DATA_B << PAGE_SHIFT) | PT_PRESENT_MASK | PT_USER_MASK | PT_ACCESSED_MASK,   # 0x21 read-only
    (DATA_A << PAGE_SHIFT) | _TABLE,                                    # gfn 0x20, W but clean
    (PT_B << PAGE_SHIFT) | _PWUAD,                                      # gfn 0x14: table B, W, D
)
GPTE_NAMES = ("not present", "gfn 0x20 W D", "gfn 0x21 read-only", "gfn 0x20 W clean",
              "gfn 0x14 (table B) W D")

# (table gfn, index) of each data entry; the gva it maps
ENTRIES = ((PT_A, 1), (PT_A, 2), (PT_B, 1))
GVAS = {(PT_A, 1): 0x1000, (PT_A, 2): 0x2000, (PT_B, 1): 0x201000}
SELF_GVA = {PT_A: PT_A << PAGE_SHIFT, PT_B: PT_B << PAGE_SHIFT}   # where the guest edits a table

TRANSITION_ERRORS = (KvmBug, Livelock, WrongHostPage, HostDemand)


def entries(pages):
    return ENTRIES[:2] if pages == 1 else ENTRIES


def bound_text(pages):
    n = len(entries(pages))
    return (f"64-bit guest, one root, {pages} guest page table(s) of level-1 shadow pages, "
            f"{n} data entries, each: first pte of {len(GPTES)}, first access read or write, "
            f"a guest store of a new pte of {len(GPTES)}; then a reread of every entry or not; "
            f"{len(GPTES) ** n * 2 ** n * len(GPTES) ** n * 2} states")


@dataclass
class SmallVm:
    """One VM of the bound: the MMU (class under test), its vCPU 0, guest memory."""
    mmu: object
    vcpu: object
    mem: object
    log: list


def build_vm(mmu_cls, pages, first, spec_side=False):
    """The VM before any vCPU access: guest tables in memory, guest ptes `first`
    (a GPTES code per data entry), one memslot of 64 4K pages, vCPU 0 created."""
    from diff.mmu import Machine
    from impl.walk import PagingTmpl

    m = Machine(mmu_cls, 3, None if spec_side else PagingTmpl)
    m.mmu.kvm_memslot_create(0, 0, 64, False, False, 1)

    def put(gfn, index, value):
        m.mem.write((gfn << PAGE_SHIFT) + 8 * index, 8, value, "guest")
    put(PML4, 0, (PDPT << PAGE_SHIFT) | _TABLE)
    put(PDPT, 0, (PD << PAGE_SHIFT) | _TABLE)
    put(PD, 0, (PT_A << PAGE_SHIFT) | _TABLE)
    put(PT_A, PT_A, (PT_A << PAGE_SHIFT) | _PWUAD)
    if pages > 1:
        put(PD, 1, (PT_B << PAGE_SHIFT) | _TABLE)
        put(PT_A, PT_B, (PT_B << PAGE_SHIFT) | _PWUAD)
    for (table, index), code in zip(entries(pages), first):
        put(table, index, GPTES[code])
    guest = m.make_guest(SHADOW, PAGING_64, PML4 << PAGE_SHIFT, True, True, True)
    vcpu = m.mmu.kvm_vm_ioctl_create_vcpu(0, SHADOW, guest)
    return SmallVm(m.mmu, vcpu, m.mem, [])


def access(vm, gva, kind, value=None):
    out = vm.mmu.guest_access(vm.vcpu, gva, kind, False, value, 8 if value is not None else None)
    vm.log.append(f"{kind} {gva:#x}" + (f" <- {value:#x}" if value is not None else "") + f": {out[0]}")
    return out


def run_to_unsync(vm, pages, writes, edits, reread):
    """The transitions of one state, up to (not including) the sync: the first
    access of every data entry (a write where `writes` says), the guest's store
    of each edit through the table's own gva, the optional reread."""
    ents = entries(pages)
    for (table, index), w in zip(ents, writes):
        access(vm, GVAS[(table, index)], "write" if w else "read", 0 if w else None)
    for (table, index), code in zip(ents, edits):
        access(vm, SELF_GVA[table] + 8 * index, "write", GPTES[code])
    if reread:
        for e in ents:
            access(vm, GVAS[e], "read")


def reachable_pages(mmu, vcpu):
    """Every shadow page reachable from the vCPU's root(s)."""
    from spec.consts import PT64_BASE_ADDR_MASK
    from spec.rmap import is_large_pte, is_shadow_present_pte

    roots = [vcpu.root] if vcpu.root is not None else [sp for sp in (vcpu.pae_root or []) if sp]
    seen, stack = [], list(roots)
    while stack:
        sp = stack.pop()
        if sp in seen:
            continue
        seen.append(sp)
        if sp.role.level == 1:
            continue
        for i in range(512):
            spte = mmu.mem.spte_read(sp.sptep(i))
            if is_shadow_present_pte(spte) and not is_large_pte(spte):
                stack.append(mmu.page_header(spte & PT64_BASE_ADDR_MASK))
    return seen


def stale_sptes(mmu, vcpu):
    """The claim, on one VM: [] when every leaf reachable from the vCPU's root
    caches the guest translation of guest memory as it is now, else the first
    violation.  The auditor's cache rule exempts unsync pages (they may lag
    until an invalidation); here they are judged too.  Mutates the VM (clears
    `unsync` on every page to judge them: the VM is thrown away after)."""
    for sp in mmu.pages.values():
        sp.unsync = False
    return [v.replace("auditor: cache: ", "stale spte: ", 1)
            for v in audit_cache(mmu, lambda v: probe_cpu(v.guest), _present(mmu))]


def check_after_sync(mmu, vcpu):
    """Everything the search checks after kvm_mmu_sync_roots(), the first
    violation of each: the auditor's rules, no unsync page below the root (the
    kernel's postcondition), and the claim itself, no stale reachable spte
    (checked last: it clears the pages' unsync flags)."""
    out = audit(mmu, lambda v: probe_cpu(v.guest))[:1]
    left = [sp for sp in reachable_pages(mmu, vcpu) if sp.unsync]
    if left:
        out.append(f"unsync after sync: {left[0]} is reachable from the root and still unsync "
                   f"(mmu_sync_children did not reach it)")
    return out + stale_sptes(mmu, vcpu)[:1]


def is_stale(failure):
    """A violation of the claim proper (as opposed to the auditor or the
    unsync-left postcondition)."""
    return failure.startswith("stale spte") or failure.startswith("auditor: cache")


def run_state(mmu_cls, pages, first, writes, edits, reread, spec_side=False):
    """(failures, the transitions' log) of one state of the bound."""
    vm = build_vm(mmu_cls, pages, first, spec_side)
    try:
        run_to_unsync(vm, pages, writes, edits, reread)
        unsync = [sp for sp in vm.mmu.pages.values() if sp.unsync]
        vm.log.append("unsync before the sync: " + (", ".join(map(str, unsync)) or "none"))
        vm.mmu.kvm_mmu_sync_roots(vm.vcpu)
        vm.log.append("kvm_mmu_sync_roots(vcpu 0)")
    except TRANSITION_ERRORS as e:
        return [f"transition raised {type(e).__name__}: {e}"], vm.log
    return check_after_sync(vm.mmu, vm.vcpu), vm.log


def run_invlpg_state(mmu_cls, first, writes, which, new, spec_side=False):
    """(failures, log) of the INVLPG form (the `FNAME(invlpg)` contract): one page,
    the first accesses, the guest's store of `new` into data entry `which` only
    (the store that makes table A unsync), then kvm_mmu_invlpg of that entry's
    gva.  Only the invalidated entry changed, so nothing reachable may be stale
    (unsync pages judged too), and the auditor must be clean."""
    vm = build_vm(mmu_cls, 1, first, spec_side)
    ents = entries(1)
    try:
        for e, w in zip(ents, writes):
            access(vm, GVAS[e], "write" if w else "read", 0 if w else None)
        table, index = ents[which]
        access(vm, SELF_GVA[table] + 8 * index, "write", GPTES[new])
        vm.mmu.kvm_mmu_invlpg(vm.vcpu, GVAS[ents[which]])
        vm.log.append(f"invlpg {GVAS[ents[which]]:#x}")
    except TRANSITION_ERRORS as e:
        return [f"transition raised {type(e).__name__}: {e}"], vm.log
    out = audit(vm.mmu, lambda v: probe_cpu(v.guest))[:1]
    return out + stale_sptes(vm.mmu, vm.vcpu)[:1], vm.log


def invlpg_states():
    codes = range(len(GPTES))
    return itertools.product(itertools.product(codes, repeat=2),
                             itertools.product((False, True), repeat=2), (0, 1), codes)


def states(pages):
    n = len(entries(pages))
    codes = range(len(GPTES))
    return itertools.product(itertools.product(codes, repeat=n),
                             itertools.product((False, True), repeat=n),
                             itertools.product(codes, repeat=n), (False, True))


def describe(pages, first, writes, edits, reread):
    ents = entries(pages)
    out = []
    for e, f, w, d in zip(ents, first, writes, edits):
        out.append(f"table {e[0]:#x}[{e[1]}] (gva {GVAS[e]:#x}): first pte {GPTES[f]:#x} "
                   f"({GPTE_NAMES[f]}), first access {'write' if w else 'read'}, guest stores "
                   f"{GPTES[d]:#x} ({GPTE_NAMES[d]})")
    out.append("then " + ("a read of every data gva" if reread else "no access") + " before the sync")
    return out


@dataclass
class SearchResult:
    states: int
    stale: int          # states breaking the claim: a stale reachable spte after the sync
    other: int          # states breaking only the rest (auditor, unsync left, a transition raised)
    first: tuple        # (state, failures, log) of the first failure (a stale one if any), or None
    seconds: float
    bound: str

    @property
    def failures(self):
        return self.stale + self.other

    def summary(self):
        if not self.failures:
            return (f"searched (exhaustive, bound: {self.bound}): {self.states} states, no stale "
                    f"spte after kvm_mmu_sync_roots, auditor clean, no unsync page left below the "
                    f"root; {self.seconds:.1f} s")
        return (f"COUNTEREXAMPLE (exhaustive search, bound: {self.bound}): of {self.states} "
                f"states, {self.stale} leave a stale spte after kvm_mmu_sync_roots, {self.other} "
                f"more break only the auditor, the no-unsync-left postcondition or a transition; "
                f"{self.seconds:.1f} s")


def search(mmu_cls=None, pages=1, spec_side=False, stop_at_first=False, limit=None):
    """Every state of the bound (the first `limit` of them, if given), on
    `mmu_cls` (default: the plain impl; spec_side: the spec's ShadowMmu).
    stop_at_first: stop at the first state that leaves a stale spte."""
    if mmu_cls is None:
        if spec_side:
            from spec.mmu import ShadowMmu as mmu_cls
        else:
            from impl.mmu import ShadowMmu as mmu_cls
    start = time.monotonic()
    count = stale = other = 0
    first = None
    for state in itertools.islice(states(pages), limit):
        count += 1
        fails, log = run_state(mmu_cls, pages, *state, spec_side=spec_side)
        if not fails:
            continue
        if any(is_stale(f) for f in fails):
            stale += 1
            if first is None or not any(is_stale(f) for f in first[1]):
                first = (state, fails, log)
            if stop_at_first:
                break
        else:
            other += 1
            if first is None:
                first = (state, fails, log)
    bound = bound_text(pages) if limit is None else f"the first {count} of: {bound_text(pages)}"
    return SearchResult(count, stale, other, first, time.monotonic() - start, bound)


def render(res, pages, who):
    lines = [f"kvm_mmu_sync_roots leaves no stale spte, on {who}: {res.summary()}"]
    if res.first:
        state, fails, log = res.first
        lines += ["  first failing state:"] + [f"    {x}" for x in describe(pages, *state)]
        lines += ["  transitions:"] + [f"    {x}" for x in log]
        lines += [f"  violated: {f}" for f in fails]
    return "\n".join(lines) + "\n"


def main(argv):
    import argparse

    p = argparse.ArgumentParser(prog="python -m proofs.sync_roots",
                                description="exhaustive bounded search: no stale spte after "
                                            "kvm_mmu_sync_roots")
    p.add_argument("--pages", type=int, choices=(1, 2), default=1)
    p.add_argument("--variant", help="a variant's class (family:name) instead of the plain impl")
    p.add_argument("--spec", action="store_true", help="the spec's ShadowMmu instead of the impl")
    p.add_argument("--first", action="store_true", help="stop at the first state with a stale spte")
    args = p.parse_args(argv)
    cls, who = None, "the spec" if args.spec else "the plain impl"
    if args.variant:
        from diff import families
        from impl import variants

        try:
            var = variants.get(args.variant)
        except LookupError as e:
            sys.stderr.write(f"error: {e}\n")
            return 2
        if args.spec:
            sys.stderr.write("error: --spec and --variant exclude each other\n")
            return 2
        cls, who = families.for_variant(var).impl_class(var), f"variant {var.qualname}"
    res = search(cls, args.pages, args.spec, args.first)
    sys.stdout.write(render(res, args.pages, who))
    return 1 if res.failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
