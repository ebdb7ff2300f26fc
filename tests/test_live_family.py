"""The live family (diff/live.py): the host's KVM beside spec, impl and the oracle.

Every test here runs fixed op lists, or a short campaign, on this host's
/dev/kvm (tested: one run each), and skips with usable()'s reason when it is
unusable.  The mutant tests show that the live oracle catches a wrong
reading of the architecture that every model side shares (so nothing else
can), and the corruption tests that each observation the live side is
compared on can fire.
"""

import io
import json
import os
import re
import time

import pytest

from diff import families
from diff.core import BadOp, replay_ops
from diff.counterexample import load
from spec.consts import (
    PFERR_PRESENT_MASK, PFERR_RSVD_MASK, PFERR_WRITE_MASK, PT_ACCESSED_MASK, PT_DIRTY_MASK,
    PT_PAGE_SIZE_MASK, PT_PRESENT_MASK, PT_USER_MASK, PT_WRITABLE_MASK,
)
from live.kvm import usable

USABLE, WHY = usable()
needs_kvm = pytest.mark.skipif(not USABLE, reason=WHY)
pytestmark = pytest.mark.timeout(180)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

P, W, U = PT_PRESENT_MASK, PT_WRITABLE_MASK, PT_USER_MASK
PWU = P | W | U
LIVE_FINDINGS = sorted(f for f in os.listdir(os.path.join(ROOT, "findings")) if f.startswith("live-"))


# -- op lists ------------------------------------------------------------------------
def hw(gpa, value):
    return ["host_write", {"gpa": gpa, "size": 8, "value": value}]


def setup(ptes=(), extra=(), cr0_wp=True, efer_nx=True, dirty_log=False, slots=()):
    """vm_setup, slot 0 (gfns 0..0x3ff), the mmu family's 64-bit chain (PML4 0x10 ->
    PDPT 0x11 -> PD 0x12 -> PT 0x13, gva 0..2MB), PT entries {gva page: pte},
    the agent's PML4E in both roots, vCPU 0."""
    ops = [["vm_setup", {"pte_list_ext": 3, "tlb_capacity": 0, "maxphyaddr": 48,
                         "gbpages": False}],
           ["memslot_create", {"slot": 0, "base_gfn": 0, "npages": 0x400, "readonly": False,
                               "dirty_log": dirty_log, "host_level": 1}]]
    ops += [["memslot_create", s] for s in slots]
    ops += [hw(0x10000, 0x11000 | PWU), hw(0x11000, 0x12000 | PWU), hw(0x12000, 0x13000 | PWU)]
    table = {g << 12: (g << 12) | PWU for g in (0x10, 0x11, 0x12, 0x13)}
    table.update(dict(ptes))
    ops += [hw(0x13000 + 8 * (gva >> 12), pte) for gva, pte in sorted(table.items())]
    ops += list(extra)
    ops += [hw(0x10ff8, 0x80000027), hw(0x1f000, 0x11000 | PWU), hw(0x1fff8, 0x80000027)]
    ops.append(["vcpu_create", {"vcpu": 0, "mode": "shadow64", "cr3": 0x10000, "cr0_wp": cr0_wp,
                                "cr4_pse": True, "efer_nx": efer_nx}])
    return ops


def access(addr, kind, user=False, value=None):
    a = {"vcpu": 0, "addr": addr, "kind": kind, "user": user}
    if value is not None:
        a.update(value=value, size=8)
    return ["access", a]


def run_live(ops, world_cls=None):
    """The first Failure of `ops` on a fresh live world (None: clean)."""
    from diff.live import LiveWorld
    from impl.mmu import ShadowMmu
    world = (world_cls or LiveWorld)(ShadowMmu, "shadow64")
    try:
        return replay_ops(world, ops)
    finally:
        world.close()


def run_mmu(ops):
    """The same ops on the mmu family's world (no live side)."""
    return replay_ops(families.get("mmu").world(None, "shadow64"), ops)


# -- the family, without /dev/kvm -----------------------------------------------------
def test_family_is_registered_and_says_whether_it_can_run(monkeypatch):
    fam = families.get("live")
    assert fam.modes == ("shadow64",) and fam.available is not None
    import live.kvm
    monkeypatch.setattr(live.kvm, "usable", lambda: (False, "/dev/kvm does not exist (test)"))
    assert fam.availability() == (False, "/dev/kvm does not exist (test)")
    assert families.get("mmu").availability() == (True, "")


def test_every_mmu_op_is_classified():
    from diff.live import LIVE_RUNS, MODELS_ONLY, live_op_table, mmu_ops
    table = {op: where for op, where, _ in live_op_table()}
    assert set(table) == set(mmu_ops())
    assert {"access", "memslot_move", "get_dirty_log", "unmap_hva_range", "vcpu_create"} <= \
        {op for op, w in table.items() if w == "live"}
    assert {"change_pte", "age"} <= {op for op, w in table.items() if w == "models only"}
    assert table["memslot_change_begin"] == table["zap_resume"] == "not run"
    assert set(LIVE_RUNS).isdisjoint(MODELS_ONLY)


def test_ops_the_live_side_cannot_run_are_refused():
    from diff.live import LiveWorld
    from impl.mmu import ShadowMmu
    w = LiveWorld(ShadowMmu, "shadow64")
    for op in (["memslot_change_begin", {"slot": 1, "what": "delete"}],
               ["vcpu_create", {"vcpu": 0, "mode": "shadow32", "cr3": 0, "cr0_wp": True,
                                "cr4_pse": True, "efer_nx": True}],
               ["set_paging_mode", {"vcpu": 0, "mode": "pae"}],
               ["no_such_op", {}]):
        with pytest.raises(BadOp):
            w.apply(op)
    with pytest.raises(ValueError):
        LiveWorld(ShadowMmu, "tdp")


# -- a campaign, and what it leaves behind ---------------------------------------------
def _children_and_kvm_fds():
    """This process's live VM children, and its own /dev/kvm (or kvm anon inode) fds."""
    kids = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if ppid == os.getpid() and b"live.server" in cmd:
            kids.append(int(pid))
    fds = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if "kvm" in target:
            fds.append(target)
    return kids, fds


def _nothing_left(timeout=5.0):
    from diff.live import drain_pool
    drain_pool()
    deadline = time.monotonic() + timeout
    while True:
        kids, fds = _children_and_kvm_fds()
        if not kids and not fds or time.monotonic() > deadline:
            return kids, fds
        time.sleep(0.05)


@needs_kvm
def test_a_short_campaign_runs_clean_and_leaves_nothing_open():
    from diff.campaign import run_campaign
    res = run_campaign("live", None, seed=3, budget=0.5, steps=8, mode="shadow64",
                       min_examples=1)
    assert res.status == "clean", (res.oracle, res.message)
    assert res.examples >= 3   # one round (the first is 3 examples: diff.campaign.round_examples)
    assert {"access", "vcpu_create", "memslot_create"} <= set(res.rules)
    m = res.metrics
    assert m["live: accesses compared"] > 0 and m["ms in live"] > 0
    assert _nothing_left() == ([], [])


@needs_kvm
def test_a_short_live_walk_campaign_runs_clean():
    """The walk family's 64-bit forests on the live kernel too (diff/live_walk.py)."""
    from diff.campaign import run_campaign
    res = run_campaign("live-walk", None, seed=1, budget=0.5, steps=5, min_examples=1)
    assert res.status == "clean", (res.oracle, res.message)
    assert res.metrics["live: accesses compared"] > 0
    assert any(k.startswith("live: guest stores through the window") and v
               for k, v in res.metrics.items())
    assert _nothing_left() == ([], [])


@needs_kvm
def test_failing_and_interrupted_examples_close_their_vm(monkeypatch):
    from hypothesis import Phase, settings
    from hypothesis.stateful import run_state_machine_as_test
    from diff.live import LiveWorld

    class Wrong(LiveWorld):   # every access's live outcome is read as a page fault
        def _send(self, what, reqs):
            out = super()._send(what, reqs)
            for o in out or ():
                if getattr(o, "kind", None) == "ok" and reqs[0][0] == "access":
                    o.kind, o.error_code, o.cr2 = "#PF", 0, 0
            return out

    fam = families.get("live")
    machine = fam.machine_for(None, "shadow64", seed=0)
    machine.world_factory = staticmethod(lambda: Wrong(fam.impl_base, "shadow64"))
    with pytest.raises(Exception, match="live kernel"):
        run_state_machine_as_test(machine, settings=settings(
            max_examples=5, stateful_step_count=8, deadline=None, database=None,
            phases=[Phase.generate]))
    assert _nothing_left() == ([], [])

    class Interrupted(machine):
        calls = 0

        def emit(self, op):
            type(self).calls += 1
            if type(self).calls == 120:
                raise KeyboardInterrupt
            super().emit(op)

    Interrupted.world_factory = staticmethod(lambda: LiveWorld(fam.impl_base, "shadow64"))
    with pytest.raises(KeyboardInterrupt):
        run_state_machine_as_test(Interrupted, settings=settings(
            max_examples=5, deadline=None, database=None, phases=[Phase.generate]))
    assert _nothing_left() == ([], [])


@needs_kvm
def test_a_dropped_world_closes_its_vm():
    from diff.live import make_world
    from impl.mmu import ShadowMmu
    w = make_world(ShadowMmu)
    assert replay_ops(w, setup() + [access(0x13000, "read")]) is None
    del w
    assert _nothing_left() == ([], [])


# -- the models describe this host ------------------------------------------------------
@needs_kvm
def test_the_models_run_with_this_hosts_cpuid():
    """No 1GB pages here: a PDPTE with PS faults with RSVD on every side, where the
    mmu family's models (GBPAGES) map a 1GB page; MAXPHYADDR 48."""
    from live.probe import probe
    from diff.live import LiveWorld
    from impl.mmu import ShadowMmu
    assert (probe().maxphyaddr, probe().gbpages) == (48, False)
    ops = setup(extra=[hw(0x11008, 0x40000000 | PWU | PT_PAGE_SIZE_MASK)]) + [
        access(0x40000000, "read")]
    w = LiveWorld(ShadowMmu, "shadow64")
    try:
        assert replay_ops(w, ops) is None
        assert w.last_outcome == ("#PF", PFERR_RSVD_MASK | PFERR_PRESENT_MASK)
        guests = [m.mmu.vcpus[0].guest for m in w.sides.values()] + [w.oracle.cpus[0]]
        assert {(g.maxphyaddr, g.gbpages) for g in guests} == {(48, False)}
    finally:
        w.close()
    m = families.get("mmu").world(None, "shadow64")
    assert replay_ops(m, ops) is None
    assert m.last_outcome == ("mmio", 0x40000)   # a 1GB page, at a gfn no memslot covers


# -- a wrong reading of the architecture that every model shares -------------------------
def _ignore_cr0_wp(monkeypatch):
    """The mutant: every model reads CR0.WP as 0 (a supervisor write ignores R/W)."""
    from impl.walk import KvmVcpu
    from spec.walk import ArchCpu
    wp0 = property(lambda self: False, lambda self, value: None)
    monkeypatch.setattr(ArchCpu, "cr0_wp", wp0, raising=False)
    monkeypatch.setattr(KvmVcpu, "cr0_wp", wp0, raising=False)


def _dirty_non_leaf(monkeypatch):
    """The mutant: a write's walk sets D on every entry it used, not just the leaf,
    in the architectural walk (spec MMU and oracle) and in FNAME(update_accessed_
    dirty_bits) (impl)."""
    from impl.walk import MarkPageDirty, PagingTmpl
    from spec.guest_memory import WALKER
    from spec.walk import WRITE, ArchCpu
    walk, update = ArchCpu.walk, PagingTmpl.update_accessed_dirty_bits

    def arch_walk(self, addr, kind, user):
        start = len(self.mem.log)
        res = walk(self, addr, kind, user)
        if res.ok and kind == WRITE:
            for e in res.path[:-1]:
                if e.gpa is not None:
                    cur = self.mem.read(e.gpa, 8)
                    if not cur & PT_DIRTY_MASK:
                        self.mem.write(e.gpa, 8, cur | PT_DIRTY_MASK, WALKER)
            res.writes = self.mem.log[start:]
        return res

    def kvm_update(self, vcpu, walker, write_fault):
        if update(self, vcpu, walker, write_fault):
            return 1
        if write_fault:
            for level in range(walker.max_level, walker.level, -1):
                pte = walker.ptes[level - 1]
                if not pte & PT_DIRTY_MASK:
                    vcpu.mem.write(walker.pte_gpa[level - 1], self.pt_element_size,
                                   pte | PT_DIRTY_MASK, WALKER)
                    walker.ptes[level - 1] = pte | PT_DIRTY_MASK
                    walker.events.append(MarkPageDirty(walker.table_gfn[level - 1]))
        return 0

    monkeypatch.setattr(ArchCpu, "walk", arch_walk)
    monkeypatch.setattr(PagingTmpl, "update_accessed_dirty_bits", kvm_update)


RO_PAGE = 0x20000   # mapped P|U: read-only
MUTANTS = {
    # a supervisor store to a read-only page under CR0.WP=1
    "ignore-cr0-wp": (_ignore_cr0_wp, setup(ptes={RO_PAGE: 0x20000 | P | U}) + [
        access(RO_PAGE + 8, "write", value=0x55), access(RO_PAGE + 8, "read")],
        "#PF error code 0x3 (P|W)"),
    # any store: D lands on PML4E/PDPTE/PDE in the models only
    "dirty-non-leaf": (_dirty_non_leaf, setup(ptes={0x21000: 0x21000 | PWU}) + [
        access(0x21000, "write", value=0x66)], "guest memory at gpa 0x10000"),
}


@needs_kvm
@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_a_shared_misreading_is_caught_by_the_live_oracle_only(name, monkeypatch):
    mutate, ops, says = MUTANTS[name]
    assert run_live(ops) is None     # the models as they are agree with the live kernel
    mutate(monkeypatch)
    assert run_mmu(ops) is None      # spec, impl, oracle and auditor share the mutant
    f = run_live(ops)
    assert f is not None and f.oracle == "live kernel", f
    assert says in f.message, f.message


# -- each observation can fire --------------------------------------------------------------
def corrupting(fix):
    """A live world whose answers `fix(world, method, result)` changes first (for
    the memory it read after the op: method ("page", gpa), result its bytes)."""
    from diff.live import LiveWorld

    class Corrupt(LiveWorld):
        def _send(self, what, reqs):
            out = super()._send(what, reqs)
            if out is not None:
                out = [fix(self, m, r) for (m, _), r in zip(reqs, out)]
            self.pages = [(rng, fix(self, ("page", rng[0]), data)) for rng, data in self.pages]
            return out
    return Corrupt


def _access_field(when, **change):
    def fix(world, method, r):
        if method == "access" and getattr(r, "kind", None) == when:
            for field, fn in change.items():
                setattr(r, field, fn(getattr(r, field)))
        return r
    return fix


def _clear_accessed(gpa):
    """The live pte at `gpa` read without its A bit."""
    def fix(world, method, r):
        if isinstance(method, tuple) and method[1] <= gpa < method[1] + len(r):
            b = bytearray(r)
            b[gpa - method[1]] &= ~PT_ACCESSED_MASK
            return bytes(b)
        return r
    return fix


def _drop_dirty(world, method, r):
    return set(sorted(r)[1:]) if method == "get_dirty_log" and r else r


NO_SLOT = 0x30000
OBSERVATIONS = {
    "outcome": (setup() + [access(0x13000, "read")],
                _access_field("ok", kind=lambda k: "#PF", error_code=lambda e: 0, cr2=lambda c: 0),
                "live #PF"),
    "value read": (setup() + [access(0x13000, "read")],
                   _access_field("ok", value=lambda v: v ^ 1), "oracle ok gfn 0x13 (value"),
    "error code": (setup(ptes={RO_PAGE: 0x20000 | P | U}) + [access(RO_PAGE, "write", value=1)],
                   _access_field("#PF", error_code=lambda e: e ^ PFERR_WRITE_MASK),
                   "live #PF error code 0x1"),
    "CR2": (setup(ptes={RO_PAGE: 0x20000 | P | U}) + [access(RO_PAGE, "write", value=1)],
            _access_field("#PF", cr2=lambda c: c + 0x1000), "cr2 0x21000"),
    "MMIO gpa": (setup(ptes={NO_SLOT: 0x500000 | PWU}) + [access(NO_SLOT + 8, "read")],
                 _access_field("mmio", gpa=lambda g: g + 8), "live MMIO exit gpa 0x500010"),
    "A/D bits": (setup(ptes={0x21000: 0x21000 | PWU}) + [access(0x21000, "read")],
                 _clear_accessed(0x13000 + 8 * 0x21), "guest memory at gpa 0x13108"),
    "dirty log": (setup(dirty_log=True, ptes={0x21000: 0x21000 | PWU, 0x22000: 0x22000 | PWU}) + [
        access(0x21000, "write", value=1), access(0x22000, "write", value=2),
        ["get_dirty_log", {"slot": 0}]], _drop_dirty, "on live misses gfns"),
}


@needs_kvm
@pytest.mark.parametrize("what", sorted(OBSERVATIONS))
def test_each_compared_observation_fires_on_a_corrupted_live_answer(what):
    ops, fix, says = OBSERVATIONS[what]
    assert run_live(ops) is None
    f = run_live(ops, corrupting(fix))
    assert f is not None and f.oracle == "live kernel", f
    assert f.step == len(ops) - 1, f
    assert says in f.message, f.message


# -- findings and the command line ---------------------------------------------------
def test_every_live_finding_is_named_where_the_machines_keep_it_out():
    from diff.live import FINDINGS
    assert sorted(f[:-len(".json")] for f in LIVE_FINDINGS) == sorted(FINDINGS)
    src = "".join(open(os.path.join(ROOT, "diff", f)).read() for f in ("live.py", "live_walk.py"))
    src = re.sub(r'"\s*\n\s*f?"', "", src)   # string literals split over lines, joined
    for name in FINDINGS:
        assert src.count(f"findings/{name}.json") >= 1 and src.count(f"finding {name}") >= 1, name


@needs_kvm
@pytest.mark.parametrize("name", LIVE_FINDINGS)
def test_each_live_finding_replays_with_its_oracle(name):
    data = load(os.path.join(ROOT, "findings", name))
    assert data["family"] == "live" and data.get("explanation")
    f = run_live(data["ops"])
    assert f is not None and f.oracle == data["oracle"], f
    assert f.step == len(data["ops"]) - 1 or f.oracle != "live kernel", f


def mmuspec(*argv):
    """The command line, in this process: (exit code, stdout)."""
    from mmuspec import cli
    out = io.StringIO()
    code = cli.main(list(argv), out=out)
    return code, out.getvalue()


@needs_kvm
def test_list_shows_the_probe_and_the_ops_the_live_side_runs():
    code, out = mmuspec("list", "--json")
    assert code == 0
    info = json.loads(out)["live"]
    assert info["available"] and info["probe"]["paging_modes"]["long64"] == "runs"
    where = {o["op"]: o["live side"] for o in info["ops"]}
    assert where["access"] == "live" and where["change_pte"] == "models only"
    code, out = mmuspec("list")
    assert "Live kernel (family live): runs here" in out and "models only" in out


@needs_kvm
def test_replay_prints_every_side_and_the_guest_instructions():
    code, out = mmuspec("replay", os.path.join(ROOT, "findings",
                                               "live-fetch-no-memslot-internal-error.json"))
    assert code == 1, out
    assert "oracle mmio gfn 0x500; spec mmio gfn 0x500; impl mmio gfn 0x500; live internal error" \
        in out
    assert "iretq" in out and "DISCREPANCY at step" in out


def test_a_family_that_cannot_run_here_is_skipped_and_says_why(monkeypatch, capsys):
    """diff of the live family alone on a host without KVM: skipped with the
    reason, exit 3 (inconclusive), never a failure nor silence."""
    import dataclasses

    from diff import families
    from mmuspec import cli

    every = families.load_all
    monkeypatch.setattr(families, "load_all", lambda: {
        n: (dataclasses.replace(f, available=lambda: (False, "no /dev/kvm here")) if n == "live" else f)
        for n, f in every().items()})
    monkeypatch.setattr(families, "get", lambda name: families.load_all()[name])
    code = cli.main(["diff", "--family", "live", "--budget", "1", "--workers", "1"])
    err = capsys.readouterr().err
    assert code == 3 and "live: skipped (no /dev/kvm here)" in err
