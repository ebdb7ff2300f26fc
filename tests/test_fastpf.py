"""fast_page_fault (3.10) and its two software bits, on fixed op lists.

The fast path (spec/mmu.py) gives a direct MMU's read-only spte its W back
when SPTE_HOST_WRITEABLE and SPTE_MMU_WRITEABLE are both set, and marks
kvm_mmu_page_get_gfn(sp, index) dirty; dirty logging write-protects with
pt_protect false (SPTE_MMU_WRITEABLE stays), write protection for shadowing
with pt_protect true (it goes).  Direct MMUs: TDP vCPUs, and vCPUs of a
shadow-paging VM with paging off (spec.mmu.NONPAGING).  The variants'
saved cases are replayed by tests/test_cases.py; here each is also shown
caught on a hand-written op list, by the oracle made for it.
"""

import pytest

from diff import families
from diff.core import BadOp, replay_ops
from impl import variants
from spec.consts import (
    PFERR_PRESENT_MASK, PFERR_WRITE_MASK, PT_PRESENT_MASK, PT_WRITABLE_MASK, SPTE_HOST_WRITEABLE,
    SPTE_MMU_WRITEABLE,
)
from spec.mmu import NONPAGING, ShadowMmu
from spec.nonpaging import NonpagingCpu
from spec.rmap import spte_is_locklessly_modifiable, spte_write_protect_acts, spte_write_protected
from spec.guest_memory import GuestMemory

HOST, MMU, W, P = SPTE_HOST_WRITEABLE, SPTE_MMU_WRITEABLE, PT_WRITABLE_MASK, PT_PRESENT_MASK
FASTPF = ("fastpf:sp-gfn-dirty", "fastpf:ignores-mmu-writable", "fastpf:wp-keeps-mmu-writable")


# -- the bits ---------------------------------------------------------------------------
def test_locklessly_modifiable_needs_both_bits():
    assert spte_is_locklessly_modifiable(P | HOST | MMU)
    assert spte_is_locklessly_modifiable(P | W | HOST | MMU)
    assert not spte_is_locklessly_modifiable(P | HOST)
    assert not spte_is_locklessly_modifiable(P | MMU)


def test_spte_write_protect_pt_protect_rules():
    """Dirty logging (pt_protect false) touches only W sptes and keeps
    SPTE_MMU_WRITEABLE; shadowing (pt_protect true) also takes SPTE_MMU_WRITEABLE
    from a read-only spte that still has it; SPTE_HOST_WRITEABLE always stays."""
    rw, ro_logged = P | W | HOST | MMU, P | HOST | MMU
    assert spte_write_protect_acts(rw, False) and spte_write_protected(rw, False) == ro_logged
    assert not spte_write_protect_acts(ro_logged, False)
    assert spte_write_protect_acts(rw, True) and spte_write_protected(rw, True) == P | HOST
    assert spte_write_protect_acts(ro_logged, True) and spte_write_protected(ro_logged, True) == P | HOST
    assert not spte_write_protect_acts(P | HOST, True)       # already protected for shadowing
    assert not spte_write_protect_acts(P | MMU, True)         # not host-writable: nothing to do


def test_page_fault_can_be_fast_only_for_a_write_to_a_present_spte():
    can = ShadowMmu.page_fault_can_be_fast
    assert can(PFERR_PRESENT_MASK | PFERR_WRITE_MASK)
    assert not can(PFERR_WRITE_MASK) and not can(PFERR_PRESENT_MASK)


# -- op lists ---------------------------------------------------------------------------
def _tdp_ops():
    """A TDP VM: a 64-bit guest whose identity map covers gfns 0..0x1f."""
    ops = [["vm_setup", {"pte_list_ext": 3}],
           ["memslot_create", {"slot": 0, "base_gfn": 0, "npages": 0x400, "readonly": False,
                               "dirty_log": False, "host_level": 1}],
           ["host_write", {"gpa": 0x10000, "size": 8, "value": 0x11007}],
           ["host_write", {"gpa": 0x11000, "size": 8, "value": 0x12007}],
           ["host_write", {"gpa": 0x12000, "size": 8, "value": 0x13007}]]
    ops += [["host_write", {"gpa": 0x13000 + 8 * g, "size": 8, "value": (g << 12) | 0x67}]
            for g in range(0x20)]   # A and D already set: the guest's walk writes nothing
    ops.append(["vcpu_create", {"vcpu": 0, "mode": "tdp", "cr3": 0x10000, "cr0_wp": True,
                                "cr4_pse": True, "efer_nx": False}])
    return ops


def _shadow32_ops(extra=()):
    """A shadow VM: a 32-bit guest (PD at gfn 0x10, PT at 0x11 mapping gfns 0..0x1f),
    and vCPU 1 with paging off."""
    ops = [["vm_setup", {"pte_list_ext": 3}],
           ["memslot_create", {"slot": 0, "base_gfn": 0, "npages": 0x400, "readonly": False,
                               "dirty_log": False, "host_level": 1}],
           ["host_write", {"gpa": 0x10000, "size": 4, "value": 0x11007}]]
    ops += [["host_write", {"gpa": 0x11000 + 4 * g, "size": 4, "value": (g << 12) | 7}]
            for g in range(0x20)]
    ops += [["host_write", w] for w in extra]
    ops += [["vcpu_create", {"vcpu": 0, "mode": "shadow32", "cr3": 0x10000, "cr0_wp": True,
                             "cr4_pse": True, "efer_nx": False}],
            ["vcpu_create", {"vcpu": 1, "mode": NONPAGING, "cr3": 0, "cr0_wp": True,
                             "cr4_pse": True, "efer_nx": True}]]
    return ops


def _write(vcpu, addr, value=None, size=4):
    a = {"vcpu": vcpu, "addr": addr, "kind": "write", "user": False}
    if value is not None:
        a.update(value=value, size=size)
    return ["access", a]


def _run(ops, variant=None, mode="mixed"):
    world = families.get("fastpf").world(variant and variants.get(variant), mode)
    return world, replay_ops(world, ops)


def _leaf(mmu, vcpu, addr):
    """(sptep, spte) of the leaf the vCPU's tables use for `addr`."""
    _, sptep, _ = mmu.shadow_walk(mmu.vcpus[vcpu], addr)[-1]
    return sptep, mmu.mem.spte_read(sptep)


# -- TDP: dirty logging, the fast path, the dirty gfn ------------------------------------
def _dirty_round():
    return _tdp_ops() + [
        _write(0, 0x5000),                                  # W, gfn 5 (index 5 of its page)
        ["memslot_dirty_log", {"slot": 0, "on": True}],    # read-only, MMU-writable
        _write(0, 0x5000),                                  # the fast path: W again, gfn 5 dirty
        ["get_dirty_log", {"slot": 0}],
        _write(0, 0x5000),
        ["get_dirty_log", {"slot": 0}],
    ]


def test_dirty_logging_keeps_mmu_writable_and_the_fast_path_logs_the_spte_gfn():
    ops = _dirty_round()
    world, failure = _run(ops[:-3], mode="tdp")        # up to the fast path's write
    assert failure is None
    for name in ("spec", "impl"):
        mmu = world.sides[name].mmu
        sptep, spte = _leaf(mmu, 0, 0x5000)
        assert spte & (W | HOST | MMU) == W | HOST | MMU, name   # restored, both bits kept
        assert 5 in mmu.host.memslots[0].dirty_bitmap
        assert mmu.page_header(sptep).gfn == 0 and (sptep & 0xFFF) // 8 == 5
    world, failure = _run(ops[:-2], mode="tdp")            # after GET_DIRTY_LOG: read-only again
    assert failure is None
    assert _leaf(world.sides["impl"].mmu, 0, 0x5000)[1] & (W | MMU) == MMU
    assert _run(ops, mode="tdp")[1] is None


def test_sp_gfn_dirty_is_caught_by_the_dirty_log():
    failure = _run(_dirty_round(), "fastpf:sp-gfn-dirty", mode="tdp")[1]
    assert failure is not None and failure.oracle == "dirty log" and failure.step == len(_tdp_ops()) + 2
    assert "gfn 0x5" in failure.message


# -- a vCPU with paging off in a shadow VM -------------------------------------------------
def test_nonpaging_vcpu_maps_guest_physical_memory_directly():
    ops = _shadow32_ops() + [_write(1, 0x5008, 0x1234)]
    world, failure = _run(ops)
    assert failure is None
    for name in ("spec", "impl"):
        m = world.sides[name]
        v = m.mmu.vcpus[1]
        assert v.kind == NONPAGING and v.root is None and len(v.pae_root) == 4
        assert [sp.gfn for sp in v.pae_root] == [0, 1 << 18, 2 << 18, 3 << 18]
        assert all(sp.role.direct and sp.role.level == 2 for sp in v.pae_root)
        sptep, spte = _leaf(m.mmu, 1, 0x5000)
        assert m.mmu.page_header(sptep).role.direct and spte & (W | HOST | MMU) == W | HOST | MMU
        assert m.mem.read(0x5008, 4) == 0x1234


def test_a_store_to_a_shadowed_table_is_emulated_each_time():
    """The paging-off vCPU stores twice to the guest's page directory (shadowed at
    level 2, so it cannot go unsync): set_spte makes the spte read-only without
    SPTE_MMU_WRITEABLE, so the second store's fast path declines and it is
    emulated again (kvm_mmu_pte_write zaps the shadowed entry)."""
    ops = _shadow32_ops() + [
        ["access", {"vcpu": 0, "addr": 0x3000, "kind": "read", "user": False}],
        _write(1, 0x10000, 0x11007), _write(1, 0x10000, 0x11007)]
    world, failure = _run(ops)
    assert failure is None
    for name in ("spec", "impl"):
        spte = _leaf(world.sides[name].mmu, 1, 0x10000)[1]
        assert spte & (P | W | HOST | MMU) == P | HOST
    failure = _run(ops, "fastpf:ignores-mmu-writable")[1]
    assert failure is not None and failure.oracle == "write protection" and failure.step == len(ops) - 1


def _shadow_a_written_page():
    """vCPU 1 (paging off) writes page 0x15; vCPU 0 links it as a page table and
    uses it (kvm_mmu_get_page write-protects gfn 0x15: pt_protect); vCPU 1
    writes it again."""
    return _shadow32_ops(extra=[{"gpa": 0x15000, "size": 4, "value": 0x20007}]) + [
        _write(1, 0x15000),
        _write(0, 0x10008, 0x15007),                                  # PDE 2 -> table 0x15
        ["access", {"vcpu": 0, "addr": 0x800000, "kind": "read", "user": False}],
        _write(1, 0x15000),
    ]


def test_write_protection_for_shadowing_clears_mmu_writable():
    ops = _shadow_a_written_page()
    world, failure = _run(ops[:-1])
    assert failure is None
    for name in ("spec", "impl"):
        spte = _leaf(world.sides[name].mmu, 1, 0x15000)[1]
        assert spte & (P | W | HOST | MMU) == P | HOST, name
    # The last store takes the slow path: the level-1 page goes unsync and W is granted.
    world, failure = _run(ops)
    assert failure is None
    assert _leaf(world.sides["impl"].mmu, 1, 0x15000)[1] & W


def test_shadowing_also_takes_mmu_writable_from_a_dirty_logged_spte():
    """A read-only spte that dirty logging left MMU-writable loses the bit when
    the gfn becomes a guest page table (spte_write_protect with pt_protect acts
    on it though it is not writable)."""
    ops = _shadow_a_written_page()
    ops = ops[:-3] + [["memslot_dirty_log", {"slot": 0, "on": True}]] + ops[-3:-1]
    world, failure = _run(ops[:-2])
    assert failure is None
    assert _leaf(world.sides["impl"].mmu, 1, 0x15000)[1] & (W | HOST | MMU) == HOST | MMU
    world, failure = _run(ops)
    assert failure is None
    for name in ("spec", "impl"):
        assert _leaf(world.sides[name].mmu, 1, 0x15000)[1] & (W | HOST | MMU) == HOST


@pytest.mark.parametrize("name", ["fastpf:ignores-mmu-writable", "fastpf:wp-keeps-mmu-writable"])
def test_restoring_w_on_a_shadowed_gfn_is_caught_by_write_protection(name):
    ops = _shadow_a_written_page()
    failure = _run(ops, name)[1]
    assert failure is not None and failure.oracle == "write protection" and failure.step == len(ops) - 1
    assert "gfn 0x15" in failure.message


# -- the machine's rules about paging-off vCPUs -------------------------------------------------
def test_nonpaging_cpu_is_the_identity():
    cpu = NonpagingCpu(GuestMemory(), 40)
    res = cpu.walk(0xFFFFF123, "write", True)
    assert res.ok and res.gfn == 0xFFFFF and res.path == [] and res.writes == []
    with pytest.raises(ValueError):
        cpu.walk(1 << 32, "read", False)


@pytest.mark.parametrize("op", [
    ["set_cr3", {"vcpu": 1, "cr3": 0x10000}],
    ["set_control", {"vcpu": 1, "reg": "cr0.wp", "value": False}],
    ["access", {"vcpu": 1, "addr": 1 << 32, "kind": "read", "user": False}],
])
def test_what_a_nonpaging_vcpu_cannot_do_is_bad_input(op):
    with pytest.raises(BadOp):
        _run(_shadow32_ops() + [op])


def test_no_nonpaging_vcpu_in_a_tdp_vm():
    with pytest.raises(BadOp):
        _run(_tdp_ops() + [["vcpu_create", {"vcpu": 1, "mode": NONPAGING, "cr3": 0, "cr0_wp": True,
                                            "cr4_pse": True, "efer_nx": True}]])


def test_the_family_and_its_variants_are_registered():
    fam = families.get("fastpf")
    assert fam.modes == ("mixed", "tdp")
    for name in FASTPF:
        v = variants.get(name)
        assert v.must_catch and families.for_variant(v) is fam
    assert variants.get("fastpf:sp-gfn-dirty").caught_by == ("dirty log",)
