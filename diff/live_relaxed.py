"""The live family's relaxed mode: the host's KVM may use what a TLB may still hold.

The live family (diff/live.py) is deterministic: the models run without
TLBs and every guest store that changes a present entry is followed by a MOV
CR3 of every vCPU, so the live kernel is held to the current walk.  Real
MMUs cache, and 3.10's shadow MMU has unsync pages besides: a pte the guest
edited without INVLPG or a CR3 load may still be used with its old
translation (Intel SDM vol. 3 4.10.4, AMD APM vol. 2 5.5).

This family runs the same machine without the shootdowns, the models with
their TLBs (the capacity vm_setup draws) and the guest careful or careless
(MmuMachine.careful).  The live side's access outcome must be one the guest
allowed: the current walk, or a translation cached since the last
invalidation that covers the address, the set spec/tlb.py's
PermittedTranslations keeps for spec and impl too (MmuWorld.candidates; the
oracle "stale translation" on the model sides is the same rule).

The live side keeps an oracle of its own (MmuWorld.oracles["live"], shared
with the spec's until their choices part), so its memory is compared with
what its own choices did: a walk sets A/D bits, a stale TLB entry sets none.
When a walk and a TLB entry give the same outcome, the live memory read after
the access decides which one live took.  A store with no data (a write access
that keeps memory: the agent stores what memory holds) whose address has
more than one permitted outcome is preceded by an INVLPG on every side (the
value the agent stores is read at the walk's gfn), counted in the metrics.

What a clean campaign means is tested (sampled on this host's kernel), not
proved.
"""

import contextlib
import copy

from impl.mmu import ShadowMmu as ImplShadowMmu
from spec.consts import PAGE_SHIFT, PAGE_SIZE
from spec.mmu import MMIO, OK, PAGE_FAULT
from spec.walk import FETCH, WRITE, linear_address, PAGING_64

from . import live as L
from .core import Discrepancy
from .families import Family

ORACLE = L.ORACLE


class RelaxedLiveWorld(L.LiveWorld):
    """LiveWorld whose live side is judged against the permitted set, with an
    oracle of its own (oracles["live"])."""

    def apply(self, op):
        self._live_cands = self._live_access = self._live_choice = None
        if op[0] == "vm_setup":
            super().apply(op)
            self.oracles["live"] = self.oracles["spec"]
            return
        super().apply(op)

    @contextlib.contextmanager
    def _as_live(self):
        """LiveWorld's live-side code reads self.oracle: here, live's own oracle."""
        saved = self.oracles["spec"]
        self.oracles["spec"] = self.oracles["live"]
        try:
            yield
        finally:
            self.oracles["spec"] = saved

    def settle_access(self, what, vcpu, addr, kind, user, value, size, cands, got):
        """MmuWorld.settle_access for the model sides.  Live's choice is known only
        after its round trip: when the access has more than one permitted outcome
        and live's oracle is shared with a model side, live takes a copy first."""
        live = self.oracles.pop("live")
        self._live_cands = cands[id(live)]
        self._live_access = (vcpu, addr, kind, user, value, size)
        if len(self._live_cands) > 1 and any(o is live for o in self.oracles.values()):
            live = copy.deepcopy(live)
        try:
            super().settle_access(what, vcpu, addr, kind, user, value, size, cands, got)
        finally:
            self.oracles["live"] = live

    def live_access(self, vcpu, addr, kind, user, value=None, size=None):
        """The live side's access, judged; then live's oracle applies live's choice
        (unless it shares the sides' oracle, which applied the one outcome
        permitted)."""
        with self._as_live():
            out = super().live_access(vcpu, addr, kind, user, value, size)
        choice, access = self._live_choice, self._live_access
        self._live_choice = self._live_cands = self._live_access = None
        lo = self.oracles["live"]
        if choice and access and not any(self.oracles[n] is lo for n in self.sides):
            self._commit_live(choice, access)
        return out

    def kept_gfn(self, want):
        """A store with no data keeps the memory of the page live's oracle permits
        (its walk's page first), not the models' outcome: the models may have
        gone through a TLB entry live's kernel did not keep (an earlier access's
        permitted choices differed), and live would then store the models' page
        into its own (or 0, where the models exited as MMIO)."""
        cands = self._live_cands
        if cands is None:
            return super().kept_gfn(want)
        ok = [o[1] for o, how in sorted(cands, key=lambda c: c[1] != "walk") if o[0] == OK]
        return ok[0] if ok else None

    def _judge_access(self, what, want, out, la, kind, n):
        """The live outcome must be one live's oracle permits."""
        cands = self._live_cands
        if cands is None:
            return super()._judge_access(what, want, out, la, kind, n)
        lo = self.oracles["live"]
        matching = [(o, how) for o, how in cands if self._matches(o, out, la, kind, n, lo)]
        if not matching:
            show = lambda o: f"{o[0]} {o[1]:#x}" if o[1] is not None else o[0]
            allowed = ", ".join(show(o) + (" (walk)" if h == "walk" else " (a TLB entry since its "
                                           "last invalidation)") for o, h in cands)
            raise Discrepancy(ORACLE, f"{what}: live {L.show_live(out)}, but the guest allows "
                                      f"only {allowed}")
        self._live_choice = matching

    @staticmethod
    def _matches(outcome, out, la, kind, n, oracle):
        status, info = outcome
        if status == OK:
            if out.kind != "ok":
                return False
            if kind != "read":
                return True
            data = L.model_bytes(oracle.mem, (info << PAGE_SHIFT) | (la & 0xFFF), n)
            return out.value == int.from_bytes(data, "little")
        if status == PAGE_FAULT:
            return out.kind == "#PF" and out.error_code == info and out.cr2 == la
        if status == MMIO:
            gpa = (info << PAGE_SHIFT) | (la & 0xFFF)
            if kind == "fetch":
                return out.kind == "mmio" and (out.gpa, out.is_write) == (gpa, False)
            return out.kind == "mmio" and (out.gpa, out.length, out.is_write) == \
                (gpa, n, kind == "write")
        return False

    def _commit_live(self, choice, access):
        vcpu, addr, kind, user, value, size = access
        lo = self.oracles["live"]
        before = len(lo.mem.log)
        trial = lo
        if len(choice) > 1:   # a walk and a TLB entry agree: live's memory decides
            for outcome, how in choice:
                trial = copy.deepcopy(lo)
                trial.commit(vcpu, addr, kind, user, value, size, outcome, how)
                if all(L.model_bytes(trial.mem, gpa, n) == data for (gpa, n), data in self.pages):
                    break
            self.oracles["live"] = trial
        else:
            lo.commit(vcpu, addr, kind, user, value, size, *choice[0])
        if choice[0][1] == "tlb":
            self.stale_taken += 1
            self.live["outcomes from a TLB entry since the last invalidation (guest-allowed)"] += 1
        # pages live's choice wrote that this op's round trip did not read: read them now
        read = {gpa >> PAGE_SHIFT for (gpa, n), _ in self.pages if n == PAGE_SIZE}
        extra = {w.gfn for w in trial.mem.log[before:]} - read
        slots = [(b, b + k) for b, k, _, _ in trial.slots.values()]
        for g in sorted(extra):
            if any(b <= g < e for b, e in slots):
                self.pages.append(((g << PAGE_SHIFT, PAGE_SIZE),
                                   self.vm().read_memory(g << PAGE_SHIFT, PAGE_SIZE)))

    def _compare_pages(self):
        with self._as_live():
            super()._compare_pages()

    def _reads(self):
        with self._as_live():
            return super()._reads()


class RelaxedLiveMachine(L.LiveMachine):
    """The live machine without the deterministic default's shootdowns, and with
    the models' TLBs."""

    shootdowns = False

    def rewrite(self, op):
        name, a = op
        if name == "vm_setup":
            maxphy, gb = L.host_cpu()
            return [[name, {**a, "maxphyaddr": maxphy, "gbpages": gb}]]
        return super().rewrite(op)

    def rewrite_access(self, op):
        """A store with no data at an address with more than one permitted outcome
        gets an INVLPG of that address first (module docstring).  The live
        machine leaves out fetches whose walk reaches a gpa no memslot covers
        (this host's finding live-fetch-no-memslot-internal-error) by the
        models' walk; here live's own oracle's walk is asked too (after their
        choices parted it may go elsewhere), and a fetch one of whose stale
        translations goes there gets an INVLPG first (a TLB entry live's
        kernel kept would take the fetch there all the same)."""
        out = super().rewrite_access(op)
        w = self.world
        if len(out) == 1 and out[0][0] == "access":
            a = out[0][1]
            if a["vcpu"] not in w.oracle.cpus:
                return out
            la = linear_address(PAGING_64, a["addr"])
            if a["kind"] == WRITE and a.get("value") is None:
                cands = w.oracles["live"].candidates(a["vcpu"], la, WRITE, a["user"])
                if len({c[0] for c in cands}) > 1:
                    w.live["INVLPG before a store with no data at an address with stale "
                           "translations"] += 1
                    return [["invlpg", {"vcpu": a["vcpu"], "addr": la}]] + out
            if a["kind"] == FETCH:
                # live's oracle may walk elsewhere than the models' (their choices parted)
                cands = w.oracles["live"].candidates(a["vcpu"], la, FETCH, a["user"])
                if cands[0][0][0] == MMIO:
                    return self.drop("a fetch from a gpa with no memslot in live's own walk "
                                     "(finding live-fetch-no-memslot-internal-error)")
                if any(o[0] == MMIO for o, _ in cands[1:]):
                    w.live["INVLPG before a fetch one of whose stale translations has no "
                           "memslot (finding live-fetch-no-memslot-internal-error)"] += 1
                    return [["invlpg", {"vcpu": a["vcpu"], "addr": la}]] + out
        return out


FAMILY = Family(
    name="live-relaxed",
    summary="the live family with TLB latitude: the host's KVM may use any translation the "
            "guest has not invalidated (spec/tlb.py's permitted set); models with TLBs, "
            "careless guests",
    machine=RelaxedLiveMachine,
    make_world=lambda impl_cls, mode=L.MODE: RelaxedLiveWorld(impl_cls, mode),
    impl_base=ImplShadowMmu,
    modes=(L.MODE,),
    variant_families=("live-relaxed",),
    available=L.available,
)
