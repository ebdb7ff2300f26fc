"""The mmu family: a whole VM, spec vs impl vs the architectural oracle, auditor after every step."""

import pytest

from diff import families
from diff.core import Discrepancy, replay_ops
from impl import variants
from tests import make_cases
from tests.variant_checks import one_round

GFN_VARIANTS = [v.qualname for v in variants.of_family("gfn")]

# Where each form of the Lai 2010 patch is wrong, in the machine (tested: each
# saved case, tests/cases/gfn-*.json, is in this mode).  The z3 obligation gfn.derived_equals_recorded also covers the cases the
# machine does not reach (proofs/gfn.py).
WRONG_IN = {
    "gfn:lai-2010": "shadow32",           # the upper 2MB half of a 4MB guest page
    "gfn:marcelo-2010": "tdp",            # a level-2 page under a 1GB entry
    "gfn:pseudo-gfn-2m-mask": "tdp",
    "gfn:no-level-shift": "tdp",          # a 2MB leaf at index > 0
}


@pytest.mark.parametrize("mode", ["tdp", "shadow32", "shadowpae", "shadow64", "mixed"])
def test_plain_impl_is_clean(mode):
    res = one_round("mmu", mode=mode, steps=50)
    assert res.status == "clean", (res.oracle, res.message)
    assert {"access", "memslot_create", "set_cr3"} <= set(res.rules)


def test_the_issue_variants_are_registered():
    assert set(WRONG_IN) <= set(GFN_VARIANTS)


def test_each_gfn_case_is_in_the_mode_the_form_is_wrong_in():
    """tests/test_cases.py replays each case (caught at its last op, clean on the plain
    impl, at most 20 ops); the mode it runs in is pinned here."""
    assert {n: make_cases.PINS[n]["mode"] for n in WRONG_IN} == WRONG_IN
    assert all(make_cases.max_ops(variants.get(n)) <= 20 for n in WRONG_IN)


def _base_ops(mode="shadow32", host_level=1):
    ops = [["vm_setup", {"pte_list_ext": 3}],
           ["memslot_create", {"slot": 0, "base_gfn": 0, "npages": 0x400, "readonly": False,
                               "dirty_log": False, "host_level": host_level}],
           ["host_write", {"gpa": 0x10000, "size": 4, "value": 0x11007}]]
    ops += [["host_write", {"gpa": 0x11000 + 4 * g, "size": 4, "value": (g << 12) | 7}]
            for g in range(0x20)]
    ops.append(["vcpu_create", {"vcpu": 0, "mode": mode, "cr3": 0x10000, "cr0_wp": True,
                                "cr4_pse": True, "efer_nx": False}])
    return ops


def test_a_4mb_page_upper_half_derives_through_the_quadrant():
    """Hand-written: a 32-bit guest maps a 4MB page; the upper 2MB half gets a
    direct page with quadrant 1.  Mainline is clean, lai-2010 hits the BUG."""
    ops = _base_ops() + [
        ["access", {"vcpu": 0, "addr": 0x10004, "kind": "write", "user": False,
                    "value": 0x87, "size": 4}],                      # PDE 1: 4MB page at gfn 0
        ["access", {"vcpu": 0, "addr": 0x601000, "kind": "read", "user": False}],
    ]
    fam = families.get("mmu")
    assert replay_ops(fam.world(None, "shadow32"), ops) is None
    f = replay_ops(fam.world(variants.get("gfn:lai-2010"), "shadow32"), ops)
    assert f is not None and f.oracle == "kernel BUG" and "q1" in f.message


def test_auditor_catches_a_stale_spte():
    """A guest store emulated without kvm_mmu_pte_write leaves a stale spte.
    (With unsync off: in 3.10 the store to a level-1 table would unsync it
    instead of trapping.)"""
    from impl.mmu import ShadowMmu

    class NoPteWrite(ShadowMmu):
        unsync_enabled = False

        def kvm_mmu_pte_write(self, vcpu, gpa, new, nbytes):
            return None

    ops = _base_ops() + [
        ["access", {"vcpu": 0, "addr": 0x5000, "kind": "read", "user": False}],
        ["access", {"vcpu": 0, "addr": 0x11014, "kind": "write", "user": False,
                    "value": 0, "size": 4}],                         # unmap gva 0x5000
    ]
    fam = families.get("mmu")
    assert replay_ops(fam.world(None, "shadow32"), ops) is None
    f = replay_ops(fam.make_world(NoPteWrite, "shadow32"), ops)
    assert f is not None and f.oracle == "auditor: cache", f


def test_dirty_log_oracle_catches_a_missing_write_protect():
    from impl.mmu import ShadowMmu

    class NoProtect(ShadowMmu):
        def kvm_vm_ioctl_get_dirty_log(self, slot_id):
            slot = self.host.memslots[slot_id]
            dirty = sorted(slot.dirty_bitmap)
            slot.dirty_bitmap = set()
            return dirty  # forgets to write-protect what it reported

    ops = [["vm_setup", {"pte_list_ext": 3}],
           ["memslot_create", {"slot": 0, "base_gfn": 0, "npages": 0x400, "readonly": False,
                               "dirty_log": False, "host_level": 1}]]
    chain = [(0x10, 0x11), (0x11, 0x12), (0x12, 0x13)]  # 64-bit: PML4 -> PDPT -> PD -> PT
    ops += [["host_write", {"gpa": t << 12, "size": 8, "value": (n << 12) | 7}] for t, n in chain]
    ops += [["host_write", {"gpa": (0x13 << 12) + 8 * g, "size": 8, "value": (g << 12) | 7}]
            for g in range(0x20)]
    ops.append(["vcpu_create", {"vcpu": 0, "mode": "tdp", "cr3": 0x10000, "cr0_wp": True,
                                "cr4_pse": True, "efer_nx": False}])
    ops += [
        ["memslot_dirty_log", {"slot": 0, "on": True}],
        ["access", {"vcpu": 0, "addr": 0x5000, "kind": "write", "user": False,
                    "value": 1, "size": 8}],
        ["get_dirty_log", {"slot": 0}],
        ["access", {"vcpu": 0, "addr": 0x5000, "kind": "write", "user": False,
                    "value": 2, "size": 8}],
        ["get_dirty_log", {"slot": 0}],
    ]
    fam = families.get("mmu")
    assert replay_ops(fam.world(None, "tdp"), ops) is None
    f = replay_ops(fam.make_world(NoProtect, "tdp"), ops)
    assert f is not None and f.oracle == "auditor: write protect", f
    assert f.step == len(ops) - 3  # right after the first GET_DIRTY_LOG


def test_derived_gfn_oracle_fires_on_a_misplaced_direct_page():
    """A direct page whose derivation goes wrong after the fact: the auditor's
    comparison with the gfns the spec stored names the entry.  (A wrong
    sp->gfn itself is the cache rule's: see the next test.)"""
    ops = _base_ops() + [
        ["access", {"vcpu": 0, "addr": 0x10004, "kind": "write", "user": False,
                    "value": 0x87, "size": 4}],
        ["access", {"vcpu": 0, "addr": 0x601000, "kind": "read", "user": False}],
    ]
    world = families.get("mmu").world(None, "shadow32")
    assert replay_ops(world, ops) is None
    direct = [sp for sp in world.sides["impl"].mmu.pages.values() if sp.role.direct]
    assert direct
    world.sides["impl"].mmu.kvm_mmu_page_derived_gfn = lambda gfn, index, level, q: gfn + index + 1
    with pytest.raises(Discrepancy) as e:
        world.check()
    assert e.value.oracle == "auditor: derived gfn"


def test_tdp_identity_rule_fires_on_a_misplaced_direct_page():
    """Under TDP a leaf reached at gpa A must map gfn A >> 12: a direct page whose
    sp->gfn is not the start of its range breaks the auditor's cache rule."""
    ops = [["vm_setup", {"pte_list_ext": 3}],
           ["memslot_create", {"slot": 0, "base_gfn": 0, "npages": 0x400, "readonly": False,
                               "dirty_log": False, "host_level": 1}],
           ["vcpu_create", {"vcpu": 0, "mode": "tdp", "cr3": 0x10000, "cr0_wp": True,
                            "cr4_pse": True, "efer_nx": False}]]
    world = families.get("mmu").world(None, "tdp")
    assert replay_ops(world, ops) is None
    mmu = world.sides["impl"].mmu
    vcpu = mmu.vcpus[0]
    mmu.vcpu_enter_guest(vcpu)  # the root
    assert mmu.tdp_page_fault(vcpu, 0x5000, False) == "ok"
    leaf_page = [sp for sp in mmu.pages.values() if sp.role.level == 1][0]
    leaf_page.gfn += 1
    from spec.mmu_audit import audit, probe_cpu

    found = audit(mmu, lambda v: probe_cpu(v.guest))
    assert any(m.startswith("auditor: cache:") and "gpa 0x5000" in m for m in found), found


def test_host_page_oracle_fires_without_the_bug_check():
    """With kvm_mmu_page_set_gfn's BUG_ON removed, the lai-2010 derivation is
    still caught: the CPU would use the wrong host page."""
    from impl.mmu import ShadowMmu

    lai = variants.get("gfn:lai-2010").build(ShadowMmu)

    class NoBugCheck(lai):
        def kvm_mmu_page_set_gfn(self, sp, index, gfn):
            if not sp.role.direct:
                sp.gfns[index] = gfn

    ops = _base_ops() + [
        ["access", {"vcpu": 0, "addr": 0x10004, "kind": "write", "user": False,
                    "value": 0x87, "size": 4}],
        ["access", {"vcpu": 0, "addr": 0x601000, "kind": "read", "user": False}],
    ]
    f = replay_ops(families.get("mmu").make_world(NoBugCheck, "shadow32"), ops)
    assert f is not None and f.oracle == "host page", f


def test_the_cr4_pse_finding_still_reproduces():
    """findings/cr4-pse-toggle-stale-4mb.json: a 32-bit guest maps a 4MB page,
    clears CR4.PSE; the reloaded root is the same shadow page (the role has no
    PSE bit) and keeps the 4MB-derived spte, which the guest's walk no longer
    allows.  Spec and impl agree (it is shared 3.10 behaviour); the auditor's
    cache rule against the architecture is what sees it."""
    import os

    from diff import counterexample

    path = os.path.join(os.path.dirname(os.path.dirname(__file__)), "findings",
                        "cr4-pse-toggle-stale-4mb.json")
    _, _, f = counterexample.replay(counterexample.load(path))
    assert f is not None and f.oracle == "auditor: cache"


def test_the_auditors_probe_keeps_the_guests_cpuid():
    """spec/mmu_audit.probe_cpu walks with the guest's own CPUID: a PS=1 PDPTE of
    a guest without 1GB pages faults with RSVD (found by the live family)."""
    from spec.consts import PFERR_PRESENT_MASK, PFERR_RSVD_MASK
    from spec.guest_memory import GuestMemory
    from spec.mmu_audit import probe_cpu
    from spec.walk import PAGING_64, READ, ArchCpu

    mem = GuestMemory()
    mem.write(0x10000, 8, 0x11007, "guest")
    mem.write(0x11008, 8, 0x40000087, "guest")
    guest = ArchCpu(mem, 48, PAGING_64, cr3=0x10000, gbpages=False)
    assert probe_cpu(guest).walk(0x40000000, READ, False).fault == PFERR_RSVD_MASK | PFERR_PRESENT_MASK


def test_the_auditors_walk_memo_answers_as_a_fresh_walk_after_each_table_edit():
    """spec/mmu_audit._memo_walk: a remembered walk is used only while every entry
    on its path holds what was read; after an edit of any entry (the leaf, a
    table above it, a CR3 change) it answers what a fresh walk answers."""
    from types import SimpleNamespace

    from spec.guest_memory import GuestMemory
    from spec.mmu_audit import _memo_walk, probe_cpu
    from spec.walk import PAGING_64, READ, ArchCpu

    mem = GuestMemory()
    for gpa, val in ((0x10000, 0x11007), (0x11000, 0x12007), (0x12000, 0x13007), (0x13008, 0x55007)):
        mem.write(gpa, 8, val, "guest")
    guest = ArchCpu(mem, 48, PAGING_64, cr3=0x10000)
    mmu = SimpleNamespace()

    def both(va=0x1000):
        cpu = probe_cpu(guest)
        got, fresh = _memo_walk(mmu, cpu, va), cpu.walk(va, READ, False)
        assert (got.fault, got.gfn, got.level, got.rights) == (fresh.fault, fresh.gfn, fresh.level, fresh.rights)
        return got

    first = both()
    assert first.gfn == 0x55 and both() is first               # nothing changed: remembered
    mem.write(0x13008, 8, 0x66007, "guest")                   # the leaf now names another page
    assert both().gfn == 0x66
    mem.write(0x11000, 8, 0x12005, "guest")                   # a table above loses W
    assert not both().rights & 2
    mem.write(0x12000, 8, 0, "guest")                         # a table above is gone
    assert both().fault is not None
    guest.cr3 = 0x20000                                       # another root: another key
    assert both().fault is not None and len(mmu._audit_walk_memo) == 2
