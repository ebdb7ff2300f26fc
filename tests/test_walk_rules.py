"""The walker's rules by kernel version, on fixed op lists (tested).

- The D bit: the plain walker is 3.x's (setting D is reported by
  mark_page_dirty() only); walk:pte-write-on-dirty-2.6 is the 2.6.2x form
  (kvm_mmu_pte_write() of the dirtied leaf too).  The oracle asks each form
  for what its rule requires, so a 2.6 form that forgets the call and a 3.x
  form that makes one are both caught.
- Reserved bits: Intel's (the spec's default, the plain walker) and 3.10's
  (spec.walk.RSVD_KVM_3_10, the walk:rsvd-3.10 form); a non-leaf PML4E with
  bit 8 set is where they part.
- CPUID.GBPAGES: without 1GB pages a PS=1 PDPTE faults RSVD|P (plus the
  access bits) under Intel's rule; 3.10 never reads GBPAGES.
- Termination: retry_walk is bounded by what the state allows; past it the
  walk raises spec.errors.Livelock, reported as the oracle `livelock`.
"""

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

from diff import families
from diff.core import Discrepancy, replay_ops
from diff.walk import WalkMachine, WalkWorld
from impl import variants
from impl.walk import (
    DIRTY_BIT_RULE_2_6, DIRTY_BIT_RULE_3, RSVD_INTEL, RSVD_KVM_3_10, KvmMmuPteWrite, KvmVcpu,
    MarkPageDirty, PagingTmpl,
)
from spec.consts import (
    MAXPHYADDR_CHOICES, PT_ACCESSED_MASK, PT_DIRTY_MASK, PT_PAGE_SIZE_MASK, PT_PRESENT_MASK,
    PT_USER_MASK, PT_WRITABLE_MASK,
)
from spec.errors import Livelock
from spec.guest_memory import GuestMemory
from spec.walk import RSVD_KVM_3_10 as SPEC_RSVD_KVM_3_10
from spec.walk import ArchCpu

P, W, U, A, D, PS = (PT_PRESENT_MASK, PT_WRITABLE_MASK, PT_USER_MASK, PT_ACCESSED_MASK,
                     PT_DIRTY_MASK, PT_PAGE_SIZE_MASK)
G8 = 1 << 8
FAM = families.get("walk")


def form(name):
    return FAM.impl_class(variants.get(name))


def setup(mode="64", **kw):
    args = {"maxphyaddr": 36, "mode": mode, "cr0_wp": True, "cr4_pse": True, "efer_nx": True}
    return ["vcpu_setup", dict(args, **kw)]


def gw(gpa, value, size=8):
    return ["guest_write", {"gpa": gpa, "size": size, "value": value}]


def cr3(v):
    return ["set_cr3", {"cr3": v}]


def access(addr=0, kind="read", user=False):
    return ["access", {"addr": addr, "kind": kind, "user": user}]


def world_after(cls, ops, mode="mixed"):
    world = FAM.make_world(cls, mode)
    assert replay_ops(world, ops) is None
    return world


# 4-level walk of address 0: PML4 gfn 0x10 -> PDPT 0x11 -> PD 0x12 -> PT 0x13 -> page 0x20.
def four_level(pml4e=0x11000 | P | W | U, pdpte=0x12000 | P | W | U, pte=0x20000 | P | W | U):
    return [setup(), gw(0x10000, pml4e), gw(0x11000, pdpte), gw(0x12000, 0x13000 | P | W | U),
            gw(0x13000, pte), cr3(0x10000)]


# -- 1. the D bit, per kernel version ------------------------------------------------
def test_the_forms_declare_their_rules():
    assert PagingTmpl.DIRTY_BIT_RULE == DIRTY_BIT_RULE_3 and PagingTmpl.RSVD_RULE == RSVD_INTEL
    assert form("walk:pte-write-on-dirty-2.6").DIRTY_BIT_RULE == DIRTY_BIT_RULE_2_6
    assert form("walk:no-pte-write-2.6").DIRTY_BIT_RULE == DIRTY_BIT_RULE_2_6
    assert form("walk:stray-pte-write-3.x").DIRTY_BIT_RULE == DIRTY_BIT_RULE_3
    assert form("walk:rsvd-3.10").RSVD_RULE == RSVD_KVM_3_10
    for name, expected in [("walk:pte-write-on-dirty-2.6", "passes"), ("walk:rsvd-3.10", "passes"),
                           ("walk:no-pte-write-2.6", "caught"),
                           ("walk:stray-pte-write-3.x", "caught")]:
        assert variants.get(name).expected == expected, name


def test_3x_walker_marks_the_table_dirty_and_nothing_else():
    world = world_after(PagingTmpl, four_level() + [access(kind="write")])
    _, w = world.last
    # A on all four levels (the leaf's A and D in one cmpxchg): four mark_page_dirty,
    # no kvm_mmu_pte_write
    assert w.events == [MarkPageDirty(g) for g in (0x10, 0x11, 0x12, 0x13)]


def test_2_6_walker_also_reports_the_dirtied_leaf():
    world = world_after(form("walk:pte-write-on-dirty-2.6"), four_level() + [access(kind="write")])
    _, w = world.last
    pte = 0x20000 | P | W | U | A | D
    got = [e for e in w.events if isinstance(e, KvmMmuPteWrite)]
    assert got == [KvmMmuPteWrite(0x13000, pte, 8)]
    # a read, or a write to a leaf already dirty, sets no D: no notification
    for ops in ([access()], [access(kind="write"), access(kind="write")]):
        world = world_after(form("walk:pte-write-on-dirty-2.6"), four_level() + ops)
        assert not [e for e in world.last[1].events if isinstance(e, KvmMmuPteWrite)]


@pytest.mark.parametrize("name", ["walk:no-pte-write-2.6", "walk:stray-pte-write-3.x"])
def test_each_d_rule_mutant_is_caught_on_a_fixed_op_list(name):
    ops = four_level() + [access(), access(kind="write")]
    failure = replay_ops(FAM.make_world(form(name), "mixed"), ops)
    assert failure is not None and failure.oracle == "kvm_mmu_pte_write", failure
    assert failure.step == len(ops) - 1  # the read before sets A only: nothing is due
    assert replay_ops(FAM.make_world(form("walk:pte-write-on-dirty-2.6"), "mixed"), ops) is None
    assert replay_ops(FAM.world(None), ops) is None


# -- 2. reserved bits: Intel's rule and 3.10's ------------------------------------------
def test_non_leaf_pml4e_bit_8_intel_walks_on_3_10_faults_rsvd():
    ops = four_level(pml4e=0x11000 | P | W | U | G8) + [access(kind="write", user=True)]
    intel = world_after(PagingTmpl, ops)
    s, w = intel.last
    assert s.ok and w.fault is None and (s.gfn, s.level) == (0x20, 1)
    v310 = world_after(form("walk:rsvd-3.10"), ops)
    s, w = v310.last
    assert v310.spec.cpu.rsvd_rule == SPEC_RSVD_KVM_3_10
    assert s.fault == w.fault == 0xF  # P|W|U|RSVD
    assert not s.writes  # a faulting walk sets no A bit


def test_a_walker_form_judged_by_the_other_rule_is_caught():
    """The spec follows the rule the form declares: a walker with 3.10's masks
    declaring Intel's rule (or the reverse) is caught at the PML4E."""
    ops = four_level(pml4e=0x11000 | P | W | U | G8) + [access()]
    wrong = [type("Masks310", (PagingTmpl,), {"RSVD_RULE": RSVD_KVM_3_10}),
             type("MasksIntel", (form("walk:rsvd-3.10"),), {"RSVD_RULE": RSVD_INTEL})]
    for cls in wrong:
        world = FAM.make_world(cls, "mixed")
        world.rsvd_rule = RSVD_INTEL if cls.RSVD_RULE == RSVD_KVM_3_10 else RSVD_KVM_3_10
        failure = replay_ops(world, ops)
        assert failure is not None and failure.oracle == "walk outcome", (cls, failure)


def test_pae_pdpte_with_accessed_bit_is_gp_for_intel_and_loads_under_3_10():
    pdpte = 0x11000 | P | A
    ops = [setup("pae"), gw(0x10000, pdpte), gw(0x11000, 0x12000 | P | W | U),
           gw(0x12000, 0x20000 | P | W | U), cr3(0x10000)]
    intel = world_after(PagingTmpl, ops)
    assert intel.last_control == "#GP" and intel.impl.vcpu.pdptrs == [0] * 4
    v310 = world_after(form("walk:rsvd-3.10"), ops + [access()])
    assert v310.last_control == "ok" and v310.impl.vcpu.pdptrs[0] == pdpte
    assert v310.last[0].gfn == 0x20


def test_3_10_masks_are_the_ones_read_in_3_10_99():
    """reset_rsvds_bits_mask() of 3.10.99 (mmu.c), 4-level and PAE, MAXPHYADDR 40,
    EFER.NX=1: the masks the 3.10 form builds, bit for bit."""
    vcpu = KvmVcpu(form("walk:rsvd-3.10"), GuestMemory(), 40, "64")
    m = vcpu.mmu.rsvd_bits_mask
    high = ((1 << 52) - 1) & ~((1 << 40) - 1)  # rsvd_bits(40, 51)
    assert m[0][3] == m[1][3] == m[0][2] == high | 0x180  # bits 8:7
    assert m[1][2] == high | (((1 << 30) - 1) & ~((1 << 13) - 1))  # bits 29:13
    assert m[1][1] == high | (((1 << 21) - 1) & ~((1 << 13) - 1))  # bits 20:13
    assert m[0][1] == m[0][0] == m[1][0] == high
    assert vcpu.pdpte_rsvd_mask() == (((1 << 64) - 1) & ~((1 << 40) - 1)) | 0x180 | 0x6
    intel = KvmVcpu(PagingTmpl, GuestMemory(), 40, "64")
    assert intel.mmu.rsvd_bits_mask[0][3] == high | PS and intel.mmu.rsvd_bits_mask[0][2] == high
    assert intel.pdpte_rsvd_mask() == vcpu.pdpte_rsvd_mask() | A | D  # Intel: bits 8:5


# -- 3. GBPAGES ---------------------------------------------------------------------
def one_gb(gbpages, kind="read", user=False):
    return [setup(gbpages=gbpages), gw(0x10000, 0x11000 | P | W | U),
            gw(0x11000, 0x40000000 | P | W | U | PS), cr3(0x10000),
            access(addr=0x12345678, kind=kind, user=user)]


def test_without_1gb_pages_a_ps_pdpte_faults_rsvd_plus_the_access_bits():
    s, w = world_after(PagingTmpl, one_gb(True)).last
    assert s.ok and (s.gfn, s.level) == (0x40000 + 0x12345, 3)
    for kind, user, code in [("read", False, 0x9), ("write", False, 0xB), ("write", True, 0xF),
                             ("fetch", False, 0x19)]:
        s, w = world_after(PagingTmpl, one_gb(False, kind, user)).last
        assert s.fault == w.fault == code, (kind, user)


def test_3_10_walks_1gb_pages_whatever_gbpages_says():
    s, w = world_after(form("walk:rsvd-3.10"), one_gb(False)).last
    assert s.ok and w.fault is None and (s.gfn, s.level) == (0x40000 + 0x12345, 3)


def test_arch_cpu_defaults_keep_todays_walk():
    """New ArchCpu parameters default to what the walk always was (the mmu
    family builds ArchCpu positionally and, in mmu_audit, without __init__)."""
    mem = GuestMemory()
    cpu = ArchCpu(mem, 36, "64", True, True, True, 0)
    assert cpu.gbpages is True and cpu.rsvd_rule == "intel"
    bare = ArchCpu.__new__(ArchCpu)
    assert bare.gbpages is True and bare.rsvd_rule == "intel"
    with pytest.raises(ValueError):
        ArchCpu(mem, 36, rsvd_rule="2.6")


class RecordingWorld(WalkWorld):
    setups = []

    def apply(self, op):
        if op[0] == "vcpu_setup":
            RecordingWorld.setups.append(op[1])
        return super().apply(op)


def test_the_machine_draws_gbpages_and_every_maxphyaddr():
    """What the campaign samples (tested): GBPAGES both ways, in 4-level paging
    too, and every MAXPHYADDR of spec.consts.MAXPHYADDR_CHOICES."""
    RecordingWorld.setups = []
    machine = type("Rec", (WalkMachine,), {
        "world_factory": staticmethod(lambda: RecordingWorld(PagingTmpl, "mixed")), "stats": None})
    run_state_machine_as_test(machine, settings=settings(
        max_examples=60, stateful_step_count=2, deadline=None, database=None, derandomize=True,
        suppress_health_check=list(HealthCheck)))
    seen = RecordingWorld.setups
    assert any(not a["gbpages"] and a["mode"] == "64" for a in seen)
    assert any(a["gbpages"] and a["mode"] == "64" for a in seen)
    assert {a["maxphyaddr"] for a in seen} == set(MAXPHYADDR_CHOICES)


def test_maxphyaddr_48_replays():
    """48 (this host's MAXPHYADDR) is accepted in a saved op list even while the
    machine samples only MAXPHYADDR_CHOICES."""
    ops = four_level(pte=0x20000 | P | (1 << 47)) + [access()]
    ops[0] = setup(maxphyaddr=48)
    s, _ = world_after(PagingTmpl, ops).last
    assert s.ok and s.gfn == 0x20 | (1 << 35)
    ops[0] = setup(maxphyaddr=46)
    s, _ = world_after(PagingTmpl, ops).last
    assert s.fault == 0x9


# -- 4. termination ---------------------------------------------------------------------
class CmpxchgAlwaysFails(PagingTmpl):
    def cmpxchg_gpte(self, vcpu, pte_gpa, orig_pte, new_pte):
        return 1  # "the pte changed": walk_addr retries for ever


def test_a_walk_that_retries_past_its_bound_is_a_livelock():
    ops = four_level() + [access()]
    world = FAM.make_world(CmpxchgAlwaysFails, "mixed")
    failure = replay_ops(world, ops)
    assert failure is not None and failure.oracle == "livelock" and failure.step == len(ops) - 1
    assert "retry_walk" in failure.message and "impl" in failure.message
    # the walker itself raises Livelock after PT_MAX_FULL_LEVELS + 1 retries
    vcpu = world.impl.vcpu
    with pytest.raises(Livelock, match="after 5 iterations"):
        vcpu.walk_addr(0, 0)
    with pytest.raises(Discrepancy) as e:
        world.compare_access(0, "read", False)
    assert e.value.oracle == "livelock"


def test_no_livelock_when_nothing_needs_writing():
    """With every A (and D) already set the walk never calls cmpxchg: no retry."""
    ops = four_level(pml4e=0x11000 | P | W | U | A, pdpte=0x12000 | P | W | U | A,
                     pte=0x20000 | P | W | U | A | D)
    ops[3] = gw(0x12000, 0x13000 | P | W | U | A)
    assert replay_ops(FAM.make_world(CmpxchgAlwaysFails, "mixed"), ops + [access()]) is None


def test_the_retry_bound_holds_for_a_walk_that_writes_its_own_entries():
    """PML4 entry 0 maps the PML4 itself: the walk reads one entry at all four
    levels and every A/D write changes what a later level read; it needs one
    retry, within the bound of five."""
    v = 0x10000 | P | W | U
    world = world_after(PagingTmpl, [setup(), gw(0x10000, v), cr3(0x10000),
                                     access(0x123, "write", True)])
    s, w = world.last
    assert s.ok and w.retries == 1 <= PagingTmpl(64).max_walk_retries() == 5


def _effective(mask, ps):
    """What a mask reserves in the entries it applies to: rsvd_bits_mask[ps] is
    read only for entries whose bit 7 is `ps`, so bit 7 of [0] never matters
    and bit 7 of [1] reserves every such entry."""
    if ps:
        return "every entry" if mask & PS else mask
    return mask & ~PS


def test_where_the_reserved_bit_rules_differ_searched():
    """Searched, exhaustive over MAXPHYADDR 36..52 x EFER.NX x CR4.PSE x GBPAGES x
    paging mode x level x bit 7: what 3.10's masks (reset_rsvds_bits_mask_3_10
    and its PDPTE mask) reserve differs from the architecture's form exactly
    in bit 8 of a PML4E or of a PDPTE with PS=0 (4-level), in a PDPTE with
    PS=1 without GBPAGES (the architecture reserves the whole entry), and in
    bits 6:5 of a PAE PDPTE register; the spec's reserved_mask() and
    pdpte_reserved() under the two rules differ the same way.  Masks are
    compared bit for bit, so this holds for every gpte."""
    from spec.walk import RSVD_INTEL as SPEC_INTEL, pdpte_reserved, reserved_mask

    intel_cls, v310_cls = PagingTmpl, form("walk:rsvd-3.10")
    n = 0
    for m in range(36, 53):
        for nx in (False, True):
            for pse in (False, True):
                for gb in (False, True):
                    for mode in ("32", "pae", "64"):
                        a = KvmVcpu(intel_cls, GuestMemory(), m, mode, True, pse, nx, gbpages=gb)
                        b = KvmVcpu(v310_cls, GuestMemory(), m, mode, True, pse, nx, gbpages=gb)
                        ma, mb = a.mmu.rsvd_bits_mask, b.mmu.rsvd_bits_mask
                        for lvl in range(1, {"32": 2, "pae": 2, "64": 4}[mode] + 1):
                            for ps in (0, 1):
                                case = (m, nx, pse, gb, mode, lvl, ps)
                                ea = _effective(ma[ps][lvl - 1], ps)
                                eb = _effective(mb[ps][lvl - 1], ps)
                                value = PS if ps else 0
                                sa = _effective(reserved_mask(mode, lvl, value, pse, nx, m,
                                                              SPEC_INTEL, gb), ps)
                                sb = _effective(reserved_mask(mode, lvl, value, pse, nx, m,
                                                              SPEC_RSVD_KVM_3_10, gb), ps)
                                if mode == "64" and not ps and lvl in (3, 4):
                                    assert ea ^ eb == sa ^ sb == G8 and not ea & G8, case
                                elif mode == "64" and ps and lvl == 3 and not gb:
                                    assert ea == sa == "every entry" != eb, case
                                    assert eb == sb and not eb & G8, case
                                else:
                                    assert ea == eb and sa == sb, case
                                assert (ea, eb) == (sa, sb), case  # the spec's masks are the impl's
                                n += 1
                        assert a.pdpte_rsvd_mask() ^ b.pdpte_rsvd_mask() == A | D
                        assert pdpte_reserved(m, SPEC_INTEL) == a.pdpte_rsvd_mask()
                        assert pdpte_reserved(m, SPEC_RSVD_KVM_3_10) == b.pdpte_rsvd_mask()
    assert n == 17 * 2 * 2 * 2 * 2 * (2 + 2 + 4)
