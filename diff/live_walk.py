"""The live-walk family: the walk family's 64-bit cases on the host's real KVM.

The walk family (diff/walk.py) holds KVM's FNAME(walk_addr) (impl) to the
architectural walk (spec) on forests of guest page tables: odd bits,
reserved bits, shared tables, tables that map themselves.  This family runs
the same ops on a live VM too (diff/live.py's VM pool and guest agent), in
4-level paging with this host's CPUID (MAXPHYADDR and GBPAGES, in
vcpu_setup):

  vcpu_setup      memslots for the guest's tables (gfns 0x10..0x14 and
                  0x123456) and one data page (gfn 0x21); every other data
                  frame has no memslot, so a completed walk ends in an MMIO
                  exit that names its gpa.  The vCPU is created at the first
                  CR3 load (every root holds the agent's PML4E at 511 and the
                  write window's at 510, set-up host writes on every side).
  guest_write     before the first KVM_RUN a host write; after it, a guest
                  store through the write window (PML4 slot 510: a page
                  table that maps itself and one target page), then a MOV
                  CR3 of the current CR3 (the deterministic default: no TLB
                  latitude, findings/live-user-stale-translation-without-
                  flush.json)
  set_cr3, set_control (CR0.WP, EFER.NX)
                  the guest's MOV CR3, MOV CR0, WRMSR EFER; CR4.PSE and a
                  switch to 64-bit paging run on the models only (no effect
                  under long-mode paging)
  access          the guest's load, store of the bytes already there, or
                  single-stepped fetch, at CPL 0, or 3 for a user access

Compared on the live side, after the walk family's own oracles: the access
outcome (#PF with the same error code and CR2; completed: an MMIO exit at
the walk's gpa, or, on a backed page, the value the spec's memory holds) and
the guest memory of every backed page (the tables: every A/D bit), under the
oracle name "live kernel".  The machine leaves out what diff/live.py's leaves
out (named there), and stores to entries 510 and 511 of a table that may be
CR3, and accesses whose walk reads a window or agent entry.

What a clean campaign means is tested (sampled on this host's kernel).
"""

import time
from collections import Counter

from hypothesis import strategies as st
from hypothesis.stateful import initialize

from live.agent import AGENT_PML4_INDEX, agent_pml4e
from spec.consts import (
    PAGE_SHIFT, PAGE_SIZE, PT64_BASE_ADDR_MASK, PT_ACCESSED_MASK, PT_DIRTY_MASK,
    PT_PRESENT_MASK, PT_WRITABLE_MASK,
)
from spec.walk import FETCH, PAGING_64, READ, WRITE, linear_address

from . import live as L
from .core import BadOp, Discrepancy
from .families import Family
from .walk import HIGH_TABLE_GFN, TABLE_GFNS, WalkMachine, WalkWorld, show_pfec
from impl.walk import PagingTmpl

MODE = PAGING_64
ROOT_CANDIDATES = TABLE_GFNS                 # the tables the walk machine loads as CR3
WINDOW_INDEX = 510                            # PML4 slot of the write window
WINDOW_GFN = 0x7F000                          # its PDPT, PD and PT (a memslot of 3 pages)
WINDOW_GFNS = range(WINDOW_GFN, WINDOW_GFN + 3)
WINDOW_GVA = (0xFFFF << 48) | (WINDOW_INDEX << 39)   # PT entry 0: the PT itself; entry 1: the target
DATA_GFN = 0x21                               # the one data frame with a memslot
A_D = PT_ACCESSED_MASK | PT_DIRTY_MASK
TABLE_FLAGS = PT_PRESENT_MASK | PT_WRITABLE_MASK | PT_ACCESSED_MASK   # preset A: KVM never writes them
SLOTS = ((0, TABLE_GFNS[0], len(TABLE_GFNS)), (1, HIGH_TABLE_GFN, 1), (2, WINDOW_GFN, 3),
         (3, DATA_GFN, 1))
COMPARED = [(TABLE_GFNS[0], TABLE_GFNS[-1] + 1), (HIGH_TABLE_GFN, HIGH_TABLE_GFN + 1),
            (DATA_GFN, DATA_GFN + 1)]
RESERVED_ENTRY_GPAS = {(t << PAGE_SHIFT) + 8 * i for t in ROOT_CANDIDATES
                       for i in (WINDOW_INDEX, AGENT_PML4_INDEX)}
LIVE_OPS = {"vcpu_setup", "guest_write", "set_cr3", "set_control", "access"}


WALK_OPS = (
    ("vcpu_setup", "live", "KVM_CREATE_VM with memslots for the guest's tables and one data page; "
                           "MAXPHYADDR and GBPAGES must be this host's"),
    ("guest_write", "live", "a host write before the first KVM_RUN, then a guest store through the "
                            "write window and a MOV CR3"),
    ("set_cr3", "live", "the guest's MOV to CR3 (the first one creates the vCPU)"),
    ("set_control", "live", "CR0.WP, EFER.NX: the guest's MOV CR0, WRMSR EFER; CR4.PSE: models only"),
    ("set_paging_mode", "models only", "a switch to 64-bit paging only (this host runs long mode only)"),
    ("access", "live", "the guest's load, store of the bytes already there, or single-stepped fetch"),
)


def walk_op_table():
    """[(op, "live" | "models only", how)] for every walk op."""
    return list(WALK_OPS)


def window_pml4e():
    return (WINDOW_GFN << PAGE_SHIFT) | TABLE_FLAGS


def _window_tables():
    """Host writes building the window: PDPT -> PD -> PT, PT[0] = the PT itself."""
    pdpt, pd, pt = (g << PAGE_SHIFT for g in WINDOW_GFNS)
    return [(pdpt, pd | TABLE_FLAGS), (pd, pt | TABLE_FLAGS), (pt, pt | TABLE_FLAGS | A_D)]


def backed(gfn):
    return any(b <= gfn < b + n for _, b, n in SLOTS)


class LiveWalkWorld(WalkWorld):
    """The walk family's spec and impl walkers, and a live VM."""

    def __init__(self, impl_cls, mode=MODE):
        if mode != MODE:
            raise ValueError(f"the live-walk family runs mode {MODE} only, not {mode!r}")
        super().__init__(impl_cls, mode)
        self.vm_future = self._finalizer = None
        self.queue = []
        self.started = False       # the live vCPU exists
        self.pages = []
        self.live = Counter()
        self.ms = Counter()
        self.recording = False
        self.transcript = []
        self._live_outs = []

    # -- the VM -----------------------------------------------------------------------
    def vm(self):
        return L.LiveWorld.vm(self)   # the future's LiveVm (the same attributes)

    def close(self):
        pinned, self._pinned = getattr(self, "_pinned", None), None
        if pinned is not None:   # a VM that started (pinning needs its pid)
            L.unpin(pinned, self.vm_future.result().pid)
        if self._finalizer is not None and self._finalizer.alive:
            self._finalizer()

    def _send(self, what, reqs, compare=True):
        self.queue.extend((m, tuple(a), {}) for m, a in reqs)
        if not self.started:
            return None
        reads = [(lo << PAGE_SHIFT, (hi - lo) << PAGE_SHIFT) for lo, hi in COMPARED] if compare else []
        queued, self.queue = self.queue, []
        t = time.perf_counter()
        try:
            results = self.vm().batch(queued + [("read_memory", r, {}) for r in reads])
        except ValueError as e:
            raise BadOp(f"{what}: the live VM refused it: {e}") from None
        except OSError as e:
            raise Discrepancy(L.ORACLE, f"{what}: {e}") from None
        except RuntimeError as e:
            raise Discrepancy(L.ORACLE, f"{what}: the VM process failed: {e}") from None
        finally:
            self.ms["live"] += (time.perf_counter() - t) * 1000
        k = len(queued)
        if compare:
            self.pages = list(zip(reads, results[k:]))
        own = results[k - len(reqs):k]
        self._live_outs.extend(own)
        return own

    # -- ops ------------------------------------------------------------------------
    def apply(self, op):
        name, a = op
        self._live_outs = []
        if name == "set_paging_mode" and a.get("mode") != MODE:
            raise BadOp("this host runs long mode only")
        if name not in LIVE_OPS and name != "set_paging_mode":
            raise BadOp(f"op {name!r} is not run by the live-walk family")
        try:
            super().apply(op)
            handler = getattr(self, "live_" + name, None)
            if handler is None or (name == "set_control" and a["reg"] == "cr4.pse"):
                self.live[f"ops run on the models only: {name}"] += 1
                return
            handler(**a)
        finally:
            self._note(op)

    def live_vcpu_setup(self, maxphyaddr, mode, cr0_wp, cr4_pse, efer_nx, gbpages=True):
        host = L.host_cpu()
        if (maxphyaddr, gbpages) != host:
            raise BadOp(f"vcpu_setup describes MAXPHYADDR {maxphyaddr}, GBPAGES {int(gbpages)}; this "
                        f"host has {host[0]}, {int(host[1])}")
        self.vm_future, self._finalizer = L.open_vm(self)
        reqs = [("memslot_create", (sid, base, n, False, False)) for sid, base, n in SLOTS]
        reqs += [("write_memory", (g, v.to_bytes(8, "little"))) for g, v in _window_tables()]
        self._send("vcpu_setup", reqs)
        # The agent's and the window's PML4Es in every table that may be CR3, on every
        # side (set-up, before the first KVM_RUN).
        for t in ROOT_CANDIDATES:
            for i, v in ((AGENT_PML4_INDEX, agent_pml4e()), (WINDOW_INDEX, window_pml4e())):
                gpa = (t << PAGE_SHIFT) + 8 * i
                for side in (self.spec, self.impl):
                    side.mem.write(gpa, 8, v, "guest")
                self._send("vcpu_setup", [("write_memory", (gpa, v.to_bytes(8, "little")))])

    def live_guest_write(self, gpa, size, value):
        data = value.to_bytes(size, "little")
        if not self.started:
            return self._send(f"guest write {gpa:#x}", [("write_memory", (gpa, data))])
        target = (gpa & ~0xFFF & PT64_BASE_ADDR_MASK) | TABLE_FLAGS | A_D
        what = f"guest store {value:#x} at gpa {gpa:#x}"
        out = self._send(what, [
            ("access", (0, WINDOW_GVA + 8, "write", 8, target, 0)),
            ("invlpg", (0, WINDOW_GVA + PAGE_SIZE)),
            ("access", (0, WINDOW_GVA + PAGE_SIZE + (gpa & 0xFFF), "write", size, value, 0)),
            ("mov_cr3", (0, self.spec.cpu.cr3))])
        bad = [o for o in out if o.kind != "ok"]
        if bad:
            raise Discrepancy(L.ORACLE, f"{what}: the window's store failed: {L.show_live(bad[0])}")
        self.live["guest stores through the window (each followed by a MOV CR3: finding "
                  "live-user-stale-translation-without-flush)"] += 1
        return out

    def live_set_cr3(self, cr3):
        if not self.started:
            cpu = self.spec.cpu
            self.started = True
            out = self._send(f"vcpu_create(cr3 {cr3:#x})",
                             [("create_vcpu", (0, cr3, cpu.cr0_wp, cpu.efer_nx))])
            return out
        out = self._send(f"mov cr3 {cr3:#x}", [("mov_cr3", (0, cr3))])
        self._ok(f"mov cr3 {cr3:#x}", out)
        return out

    def live_set_control(self, reg, value):
        if not self.started:
            return None   # the vCPU is created with the spec's controls
        method = {"cr0.wp": "set_cr0_wp", "efer.nx": "set_efer_nx"}[reg]
        out = self._send(f"{reg}={int(value)}", [(method, (0, bool(value)))])
        self._ok(f"{reg}={int(value)}", out)
        return out

    def _ok(self, what, out):
        if out and out[0].kind != "ok":
            raise Discrepancy(L.ORACLE, f"{what}: the models completed it, live {L.show_live(out[0])}")

    def live_access(self, addr, kind, user):
        if not self.started:
            raise BadOp("an access before the first CR3 load")
        la = linear_address(PAGING_64, addr)
        s = self.last[0]
        cpl = 3 if user else 0
        what = f"walk_addr({la:#x}, {'user' if user else 'supervisor'} {kind})"
        n = 8 if la % 8 == 0 else 1
        gpa = (s.gfn << PAGE_SHIFT) | (la & 0xFFF) if s.ok else None
        if kind == READ:
            req = ("access", (0, la, "read", n, None, cpl))
        elif kind == WRITE:
            keep = int.from_bytes(L.model_bytes(self.spec.mem, gpa, n), "little") if s.ok else 0
            req = ("access", (0, la, "write", n, keep, cpl))
        elif s.ok and L.crosses_page(L.model_bytes(self.spec.mem, gpa, min(15, PAGE_SIZE - (la & 0xFFF))), la):
            self.live["fetches not compared: the instruction crosses into the next page "
                      "(a load stood in)"] += 1
            req, kind = ("access", (0, la, "read", n, None, cpl)), READ
        else:
            req = ("access", (0, la, "fetch", 8, None, cpl))
        out = self._send(what, [req])[0]
        if out.kind == "refused":
            if not s.ok:
                self.live["fetches not compared: refused by the agent (the models fault)"] += 1
                return out
            self.live["fetches not compared: refused by the agent (a load stood in)"] += 1
            kind = READ
            out = self._send(what, [("access", (0, la, "read", n, None, cpl))])[0]
        self._judge(what, s, out, la, gpa, kind, req[1][2], n)
        self.live["accesses compared"] += 1
        return out

    def _judge(self, what, s, out, la, gpa, kind, live_kind, n):
        if not s.ok:
            good = out.kind == "#PF" and out.error_code == s.fault and out.cr2 == la
            want = show_pfec(s.fault)
        elif backed(s.gfn):
            good = out.kind == "ok"
            want = f"completed at gpa {gpa:#x}"
            if good and kind == READ:
                v = int.from_bytes(L.model_bytes(self.spec.mem, gpa, n), "little")
                good, want = out.value == v, f"{want}, value {v:#x}"
        else:
            write = live_kind == "write"
            good = out.kind == "mmio" and out.gpa == gpa and out.is_write == write and \
                (kind == FETCH or out.length == n)
            want = f"MMIO exit at gpa {gpa:#x} ({'write' if write else 'read'})"
        if not good:
            raise Discrepancy(L.ORACLE, f"{what}: spec {want} (gfn {s.gfn if s.gfn is None else hex(s.gfn)}, "
                                        f"level {s.level}), live {L.show_live(out)}")

    # -- after every op -----------------------------------------------------------------
    def check(self):
        super().check()
        for (gpa, size), data in self.pages:
            model = L.model_bytes(self.spec.mem, gpa, size)
            if model != data:
                off = next(i for i in range(0, size, 8) if model[i:i + 8] != data[i:i + 8])
                from .walk import show_pte
                raise Discrepancy(L.ORACLE, (
                    f"guest memory at gpa {gpa + off:#x}: live "
                    f"{show_pte(int.from_bytes(data[off:off + 8], 'little'))}, the spec "
                    f"{show_pte(int.from_bytes(model[off:off + 8], 'little'))}"))
        self.pages = []

    def metrics(self):
        out = {f"live: {k}": v for k, v in self.live.items()}
        out.update({f"ms in {k}": int(v) for k, v in self.ms.items()})
        return out

    # -- the transcript ---------------------------------------------------------------
    def start_transcript(self):
        self.recording = True

    def _note(self, op):
        if not self.recording:
            return
        entry = {"op": self.describe(op), "sides": {}, "live": None, "instructions": []}
        if op[0] == "access" and self.last is not None:
            s, w = self.last
            entry["sides"]["spec"] = show_pfec(s.fault) if s.fault is not None else \
                f"gfn {s.gfn:#x} level {s.level}"
            entry["sides"]["impl"] = show_pfec(w.fault) if w.fault is not None else \
                f"gfn {w.gfn:#x} level {w.level}"
        if self._live_outs:
            entry["live"] = "; then ".join("done" if o is None else L.show_live(o)
                                           for o in self._live_outs)
            if self.started and op[0] in ("access", "guest_write", "set_cr3", "set_control"):
                try:
                    entry["instructions"] = self.vm().last_instructions(0)
                except Exception as e:
                    entry["instructions"] = [f"; (no listing: {e})"]
        self.transcript.append(entry)

    def transcript_lines(self, failing_step=None):
        return L.LiveWorld.transcript_lines(self, failing_step)


def make_world(impl_cls, mode=MODE):
    return LiveWalkWorld(impl_cls, mode)


class LiveWalkMachine(L.LiveRewriting, WalkMachine):
    """The walk family's machine, its ops rewritten for the live side."""

    @initialize(data=st.data())
    def setup(self, data):
        super().setup(data)

    def rewrite(self, op):
        name, a = op
        w = self.world
        if name == "vcpu_setup":
            maxphy, gb = L.host_cpu()
            return [[name, {**a, "mode": MODE, "maxphyaddr": maxphy, "gbpages": gb}]]
        if name == "set_paging_mode" and a.get("mode") != MODE:
            return self.drop("a switch out of long mode")
        if name == "guest_write":
            if any(g < a["gpa"] + a["size"] and a["gpa"] < g + 8 for g in RESERVED_ENTRY_GPAS):
                # Entries 510 and 511 of a table that may be CR3 are the window's and
                # the agent's.
                return self.drop("a store to entry 510 or 511 of a table that may be CR3")
            frame = (a["value"] & PT64_BASE_ADDR_MASK) >> PAGE_SHIFT
            if a["value"] & PT_PRESENT_MASK and (frame in L.AGENT_GFNS or frame in WINDOW_GFNS):
                return self.drop("an entry pointing at the agent's or the window's memory")
            return [op]
        if name == "access":
            return self.rewrite_access(op)
        return [op]

    def rewrite_access(self, op):
        a = op[1]
        w = self.world
        kind, user = a["kind"], a["user"]
        la = linear_address(PAGING_64, a["addr"])
        if (la >> 39) & 511 in (WINDOW_INDEX, AGENT_PML4_INDEX):
            return self.drop("an address in PML4 slot 510 or 511 (the window's, the agent's)")
        if user and (la >> 39) & 511 == L.PVM_USER_PML4_INDEX:
            # findings/live-user-pml4-slot-256.json (diff/live.py)
            return self.drop("a user access in PML4 slot 256 (finding live-user-pml4-slot-256)")
        cpu = w.spec.cpu
        res = cpu.predict(la, kind, user)
        if any(e.gpa in RESERVED_ENTRY_GPAS for e in res.path if e.gpa is not None) or \
                L.touches(res, L.AGENT_GFNS) or L.touches(res, WINDOW_GFNS):
            return self.drop("an access whose walk uses the window's or the agent's entries")
        if kind == WRITE and not user and not cpu.cr0_wp and res.ok and not backed(res.gfn) and \
                not res.path[-1].value & PT_DIRTY_MASK:
            # findings/live-mmio-write-wp0-no-dirty.json (diff/live.py)
            return self.drop("a supervisor store under CR0.WP=0 to a clean page with no memslot "
                             "(finding live-mmio-write-wp0-no-dirty)")
        if kind == FETCH and res.ok:
            if not backed(res.gfn):
                # findings/live-fetch-no-memslot-internal-error.json (diff/live.py)
                return self.drop("a fetch from a gpa with no memslot (finding "
                                 "live-fetch-no-memslot-internal-error)")
            off = la & 0xFFF
            data = L.model_bytes(cpu.mem, (res.gfn << PAGE_SHIFT) | off, min(15, PAGE_SIZE - off))
            if not L.crosses_page(data, la):
                if not user and not L.cpl0_fetch_runs(data, la):
                    # findings/live-cpl0-fetch-emulation-failure.json (diff/live.py)
                    return self.drop("a supervisor fetch of an instruction this host cannot "
                                     "single-step (finding live-cpl0-fetch-emulation-failure)")
                if len(data) < 15 and not L.runs_unintercepted(data, la):
                    # findings/live-intercepted-fetch-walks-next-page.json (diff/live.py)
                    return self.drop("a fetch of an instruction KVM intercepts, near its page's "
                                     "end (finding live-intercepted-fetch-walks-next-page)")
        return [op]


FAMILY = Family(
    name="live-walk",
    summary="the walk family's 64-bit forests on the host's real KVM: architectural walk (spec) "
            "vs FNAME(walk_addr) (impl) vs the live kernel, outcomes and A/D bits",
    machine=LiveWalkMachine,
    make_world=make_world,
    impl_base=PagingTmpl,
    modes=(MODE,),
    variant_families=("live-walk",),
    available=L.available,
)
