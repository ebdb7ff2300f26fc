"""The host A/D oracles of the mmu machine ("host dirty", "host accessed":
diff/hostpages.py) and the mmu:*-no-set-pfn-* variants (impl/variants/hostdirty.py).

Fixed op lists only: each scenario is clean on the plain impl (3.10's
reporting, spec.rmap.RmapBase) and fires the oracle on the variant that
leaves the report out.
"""

import pytest

from diff import families
from diff.core import replay_ops
from diff.hostpages import HostPageLedger
from impl import variants
from spec.consts import (
    PT_ACCESSED_MASK, PT_DIRTY_MASK, PT_PAGE_SIZE_MASK, PT_PRESENT_MASK, PT_USER_MASK, PT_WRITABLE_MASK,
    spte_to_pfn,
)

P, W, U, A, D = PT_PRESENT_MASK, PT_WRITABLE_MASK, PT_USER_MASK, PT_ACCESSED_MASK, PT_DIRTY_MASK
DROP, UPDATE, ACCESSED = ("mmu:drop-spte-no-set-pfn-dirty", "mmu:spte-update-no-set-pfn-dirty",
                          "mmu:drop-spte-no-set-pfn-accessed")


def run(ops, mode, variant=None):
    return replay_ops(families.get("mmu").world(variants.get(variant) if variant else None, mode), ops)


def store(addr, value, size=8, vcpu=0, user=False):
    return ["access", {"vcpu": vcpu, "addr": addr, "kind": "write", "user": user, "value": value,
                       "size": size}]


def read(addr, user=False):
    return ["access", {"vcpu": 0, "addr": addr, "kind": "read", "user": user}]


def tdp_ops(host_level=1):
    """A TDP VM: one slot of 1024 pages, a 64-bit guest identity-mapping gva 0..256K."""
    ops = [["vm_setup", {"pte_list_ext": 3}],
           ["memslot_create", {"slot": 0, "base_gfn": 0, "npages": 0x400, "readonly": False,
                               "dirty_log": False, "host_level": host_level}]]
    chain = [(0x10, 0x11), (0x11, 0x12), (0x12, 0x13)]
    ops += [["host_write", {"gpa": t << 12, "size": 8, "value": (n << 12) | P | W | A}] for t, n in chain]
    ops += [["host_write", {"gpa": (0x13 << 12) + 8 * g, "size": 8, "value": (g << 12) | P | W | A | D}]
            for g in range(0x40)]
    ops.append(["vcpu_create", {"vcpu": 0, "mode": "tdp", "cr3": 0x10000, "cr0_wp": True,
                                "cr4_pse": True, "efer_nx": False}])
    return ops


def shadow64_ops(cr0_wp=False):
    """A shadow VM, 64-bit guest: gva 0x13000 maps the level-1 table itself (gfn 0x13)."""
    return [["vm_setup", {"pte_list_ext": 3, "tlb_capacity": 1}],
            ["memslot_create", {"slot": 0, "base_gfn": 0, "npages": 0x400, "readonly": False,
                                "dirty_log": False, "host_level": 1}],
            ["host_write", {"gpa": 0x10000, "size": 8, "value": 0x11007}],
            ["host_write", {"gpa": 0x11000, "size": 8, "value": 0x12007}],
            ["host_write", {"gpa": 0x12000, "size": 8, "value": 0x13007}],
            ["host_write", {"gpa": 0x13098, "size": 8, "value": 0x13007}],
            ["vcpu_create", {"vcpu": 0, "mode": "shadow64", "cr3": 0x10000, "cr0_wp": cr0_wp,
                             "cr4_pse": True, "efer_nx": False}]]


def unmap(gfn, npages=1):
    return ["unmap_hva_range", {"slot": 0, "gfn": gfn, "npages": npages}]


# -- the plain impl is clean, the variant caught ----------------------------------------
SCENARIOS = {
    # TDP: a store through a 4K TDP spte, then the host unmaps the page (kvm_unmap_rmapp)
    "tdp store, notifier unmap": ("tdp", tdp_ops() + [store(0x5000, 0x1234), unmap(5)]),
    # TDP, a THP: the store goes through a 2MB spte (written at frame 5 of it); the
    # unmap splits the huge page, whose notifier drops the large spte: 3.10 reports its
    # first frame, which stands for the whole huge page
    "tdp 2MB spte, notifier unmap": ("tdp", tdp_ops(host_level=2) + [store(0x5000, 0x1234), unmap(5)]),
    # dirty logging write-protects the spte and keeps its D (3.10 reports nothing then);
    # the later drop reports it
    "tdp store, dirty log, unmap": ("tdp", tdp_ops() + [
        store(0x5000, 0x1234), ["memslot_dirty_log", {"slot": 0, "on": True}], unmap(5)]),
    # KSM merges the page: kvm_set_pte_rmapp repoints the spte (clear_track_bits first)
    "tdp store, change_pte": ("tdp", tdp_ops() + [
        store(0x5000, 0x1234), ["change_pte", {"slot": 0, "gfn": 5}]]),
    # shadow: the guest writes its own (unsync) page table through the spte mapping it,
    # then clears that pte and invalidates: FNAME(invlpg) drops the spte
    "shadow unsync store, invlpg drops": ("shadow64", shadow64_ops() + [
        store(0x13098, 0x80000000006ff066), ["invlpg", {"vcpu": 0, "addr": 0x13000}]]),
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_a_page_written_then_let_go_is_reported_dirty(name):
    mode, ops = SCENARIOS[name]
    assert run(ops, mode) is None
    f = run(ops, mode, DROP)
    assert f is not None and f.oracle == "host dirty" and f.step == len(ops) - 1, f
    f = run(ops, mode, ACCESSED)
    assert f is not None and f.oracle == "host accessed" and f.step == len(ops) - 1, f


def test_spte_update_clearing_d_must_report():
    """CR0.WP=0: a supervisor store through a read-only user gpte gets a writable
    supervisor-only spte (D set by the store).  A user read of it refaults:
    set_spte writes a user, read-only spte of the same pfn, without D, over it
    (mmu_spte_update reports D there).  When the notifier then drops the spte,
    D is no longer there to report."""
    setup = shadow64_ops(cr0_wp=False)
    ops = setup[:-1] + [  # gva 0x20000: a user, read-only guest page (gfn 0x20)
        ["host_write", {"gpa": 0x13000 + 8 * 0x20, "size": 8, "value": (0x20 << 12) | P | U | A | D}],
        setup[-1],
        store(0x20000, 0x55),          # supervisor store, CR0.WP=0: W spte without U, D set
        read(0x20000, user=True),      # refault: same pfn, U, read-only, no D
        unmap(0x20),
    ]
    assert run(ops, "shadow64") is None
    f = run(ops, "shadow64", UPDATE)
    assert f is not None and f.oracle == "host dirty" and f.step == len(ops) - 1, f
    # the drop variant reports D at the update, so it passes here
    assert run(ops, "shadow64", DROP) is None


def test_a_page_still_mapped_is_not_judged():
    """The drop of one of two sptes of a page without a report is not yet a loss:
    the other spte's D still records the write."""
    ops = tdp_ops() + [store(0x5000, 0x1234)]
    assert run(ops, "tdp", DROP) is None


def test_young_answers_count_as_accessed():
    """kvm_age_rmapp clears A and reports nothing but its young answer; the later
    drop finds A clear.  The host learned of the use from the answer."""
    ops = tdp_ops() + [read(0x5000), ["age", {"slot": 0, "gfn": 5, "test_only": False}], unmap(5)]
    assert run(ops, "tdp") is None


def test_a_tlb_hit_is_a_use_through_the_spte_it_cached():
    """TDP with a THP: the second store to the page hits the TLB (the guest's
    translation combined with the 2MB TDP leaf, cached as 4K); the ledger
    notes it under the first frame of that 2MB spte, as KVM will report it."""
    w = families.get("mmu").world(None, "tdp")
    assert replay_ops(w, tdp_ops(host_level=2) + [store(0x5000, 0x1234)]) is None
    mmu = w.sides["impl"].mmu
    large = [v for v in mmu.mem.sptes.values() if v & PT_PAGE_SIZE_MASK and v & P]
    assert len(large) == 1
    first = spte_to_pfn(large[0])
    mmu.host_pages.used["dirty"].clear()
    hits = mmu.vcpus[0].tlb.hits
    w.apply(store(0x5008, 0x1))
    assert mmu.vcpus[0].tlb.hits == hits + 1
    assert {p: (r[0], r[2]) for p, r in mmu.host_pages.used["dirty"].items()} == \
        {first + 5: ({first}, "a TLB hit")}


# -- the ledger's rule, alone ---------------------------------------------------------
class _Mmu:
    """Just what held_frames reads: no sptes, no vCPUs (every page is let go)."""

    class _Mem:
        sptes = {}

    mem, pages, vcpus = _Mem(), {}, {}


def test_ledger_one_report_covers_the_huge_page_and_later_writes():
    led = HostPageLedger()
    led.cpu_used(0x205, 0x200, 5, True, "the hardware walk")   # frame 5 of a 2MB spte
    led.told["dirty"].add(0x200)                                 # its first frame reported
    led.told["dirty"].add(0x300)
    led.cpu_used(0x300, 0x300, 0x100, True, "a TLB hit")       # written after the report
    led.told["accessed"].update({0x200, 0x300})
    assert led.settle(_Mmu()) == []
    assert not led.used["dirty"] and not led.told["dirty"]       # let go: a fresh start
    led.cpu_used(0x300, 0x300, 0x100, True, "a TLB hit")
    led.told["accessed"].add(0x300)
    bad = led.settle(_Mmu())
    assert [o for o, _ in bad] == ["host dirty"] and "0x300" in bad[0][1]


def test_variants_are_registered_as_must_catch():
    names = {v.qualname for v in variants.of_family("mmu")}
    assert {DROP, UPDATE, ACCESSED} <= names
    assert all(variants.get(n).must_catch for n in (DROP, UPDATE, ACCESSED))
