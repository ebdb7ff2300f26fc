"""Variants of the zap family: ways the generation-number zap (Xiao 2013) goes wrong.

The impl (impl/zap.py) is 3.11's kvm_mmu_invalidate_zap_all_pages() with an
unbounded generation.  Each variant replaces one method or parameter of
impl.mmu.ShadowMmu:

- lookup-ignores-gen: kvm_mmu_get_page()'s lookup keeps 3.10's test (role
  match, not invalid) and forgets `if (is_obsolete_sp(kvm, sp)) continue;`:
  a fault in a lock break of the zap finds a page of the old generation and
  links it under the vCPU's new root;
- one-bit-gen-invalid-root: mmu_valid_gen is the single toggling bit of
  ca333add6933 (Linux 5.3) but is_obsolete_sp() still ignores role.invalid,
  as before fac026dac0bc (2020): a root zapped while held stays on the list
  as an invalid page; after two toggles its generation matches again, it
  looks current, and kvm_zap_obsolete_pages() stops its tail walk there, so
  the obsolete pages created after it are never reclaimed and look current
  at the next toggle;
- no-root-reload: the bump forgets kvm_reload_remote_mmus(): vCPUs keep
  running on their obsolete roots (and 3.11's prepare_zap does not ask for a
  reload of an obsolete root either).

- zap-all-lock-break (002c5f73c508, the livelock it fixed): Linux 5.1-5.2
  had no generation number (it was reverted) and memslot deletion zapped
  every page with kvm_mmu_zap_all(), whose walk from the head of
  active_mmu_pages drops mmu_lock in cond_resched_lock() and restarts from
  the head.  Pages that vCPUs add in the lock breaks go to the head, so the
  walk zaps them too, and with vCPUs faulting in every break it never ends.
  The precondition, other vCPUs running and faulting while the zap is in its
  lock breaks, is what the zap machine generates (faults between
  zap_resume ops).  Caught by the termination bound of the shared zap
  driver: a zap may take no more mmu_lock holds than the pages on the list
  when it began need (impl/zap.py, `livelock`).  With TLBs it is also
  caught by `host page` (our reading, not a reported bug): the walk drops
  sptes and breaks the lock before its commit flushes, with no reload asked
  at the start, so a vCPU's TLB still maps a page whose spte is gone and a
  host notifier in the break finds nothing to flush.

And the single toggling bit of Linux 5.3 (ca333add6933, with fac026dac0bc
treating invalid pages as obsolete): `single-bit-gen` is sound and must pass;
its precondition (every obsolete page is zapped before the next toggle) is
a checked invariant of the variant, and `single-bit-gen-partial-zap` drops
it (the zap gives up at its first lock break) and must be caught.
"""

from impl.variants import Variant, register
from impl.zap import GenerationZap, is_obsolete_gen_or_invalid

CAUGHT_BY = ("livelock", "auditor: roots", "auditor: generation", "zap complete", "deleted slot",
             "guest outcome", "host page", "kernel BUG")


def _lookup_ignores_gen(self, sp):
    # 3.10's test only: the page is not invalid
    return not sp.role.invalid


def _no_reload(self):
    pass


register(Variant(
    family="zap", name="lookup-ignores-gen", models="plausible",
    summary="kvm_mmu_get_page's lookup does not skip obsolete pages",
    replaces={"is_valid_sp": _lookup_ignores_gen},
    caught_by=CAUGHT_BY,
))

register(Variant(
    family="zap", name="one-bit-gen-invalid-root", models="ca333add6933 before fac026dac0bc",
    summary="a 1-bit mmu_valid_gen with is_obsolete_sp ignoring role.invalid: a held invalid "
            "root survives two toggles and looks current again",
    replaces={"mmu_valid_gen_bits": 1},
    caught_by=CAUGHT_BY + ("proof zap.current_page_is_new_bounded",),
))

register(Variant(
    family="zap", name="no-root-reload", models="plausible",
    summary="the mmu_valid_gen bump does not ask the vCPUs to reload their roots",
    replaces={"zap_reload_remote_mmus": _no_reload},
    caught_by=CAUGHT_BY,
))



# -- the single-bit generation (Linux 5.3, ca333add6933, with fac026dac0bc) ----------
def _complete_zap_before_toggle(mmu):
    """ca333add6933's precondition, as a state invariant: outside a zap-all, no
    page is obsolete but an invalid root a vCPU still holds; so the next toggle,
    which makes the other generation current again, revives nothing."""
    if mmu.zap_in_progress():
        return []  # a zap is in its lock breaks: obsolete pages are being reclaimed
    for sp in mmu.active_mmu_pages:
        if mmu.is_obsolete_sp(sp) and not (sp.role.invalid and sp.root_count):
            return [f"complete zap: {sp} (generation {sp.mmu_valid_gen}, root_count "
                    f"{sp.root_count}) is obsolete after the zap ended; the next toggle of "
                    f"mmu_valid_gen {mmu.mmu_valid_gen} makes it current"]
    return []


def _zap_stops_at_first_lock_break(self):
    # kvm_zap_obsolete_pages() that frees what it zapped and returns at its
    # first lock break, leaving the rest to "later" (nothing reclaims it)
    walk = GenerationZap.kvm_zap_obsolete_pages(self)
    if next(walk, "done") is None:
        walk.close()
        self.kvm_mmu_commit_zap_page(self.zapped_obsolete_pages)
    return
    yield  # a generator, like the walk it replaces


SINGLE_BIT = {"mmu_valid_gen_bits": 1, "is_obsolete_gen": is_obsolete_gen_or_invalid}

register(Variant(
    family="zap", name="single-bit-gen", models="ca333add6933 + fac026dac0bc",
    summary="mmu_valid_gen is one toggling bit and invalid pages count as obsolete; sound "
            "because every obsolete page is zapped before the next toggle (a checked invariant)",
    replaces=SINGLE_BIT, must_catch=False, passes=True,
    invariants=(_complete_zap_before_toggle,),
    caught_by=(),
))

register(Variant(
    family="zap", name="single-bit-gen-partial-zap", models="plausible",
    summary="the single-bit generation with a zap that gives up at its first lock break: "
            "obsolete pages survive to the next toggle and look current",
    replaces={**SINGLE_BIT, "kvm_zap_obsolete_pages": _zap_stops_at_first_lock_break},
    invariants=(_complete_zap_before_toggle,),
    caught_by=CAUGHT_BY + ("variant invariant: complete zap", "proof zap.single_bit_needs_complete_zap"),
))


# -- 002c5f73c508: the livelock of a zap-all that breaks the lock and restarts -----------
def _no_generation(gen, bits):
    # 5.1-5.2: the generation number had been reverted; nothing is ever obsolete
    return gen


def _zap_all_from_the_head(self):
    # kvm_mmu_zap_all() of 5.1-5.2: list_for_each_entry_safe from the head (newest
    # first); skip an invalid root still held; every zapped page restarts the walk;
    # cond_resched_lock() drops mmu_lock (here: once a batch is zapped) and the walk
    # restarts from the head, where pages added in the break now are
    batch = 0
    active = self.active_mmu_pages
    visits = self.zap_hold_bound()
    while True:  # restart:
        sp, restart = active.first, False
        while sp is not None:
            nxt = active.next_of(sp)
            visits.step()
            self.mmu_lock_holds[-1] += 1
            if sp.role.invalid and sp.root_count:
                sp = nxt
                continue
            if batch >= self.zap_batch_pages:
                yield  # cond_resched_lock(&kvm->mmu_lock)
                batch, visits, restart = 0, self.zap_hold_bound(), True
                break
            ret = self.prepare_zap_count(sp, self.zapped_obsolete_pages)
            batch += ret
            if ret:
                restart = True
                break
            sp = nxt
        if not restart:
            break
    self.kvm_mmu_commit_zap_page(self.zapped_obsolete_pages)


register(Variant(
    family="zap", name="zap-all-lock-break", models="002c5f73c508",
    summary="5.1-5.2's kvm_mmu_zap_all on memslot delete: no generation, a walk from the head "
            "that drops mmu_lock and restarts; pages vCPUs add in the breaks are zapped too, so "
            "with faulting vCPUs it never ends (the livelock 002c5f73c508 fixed)",
    replaces={"has_generation": False, "mmu_valid_gen_next": _no_generation,
              "zap_reload_remote_mmus": _no_reload,
              "kvm_zap_obsolete_pages": _zap_all_from_the_head},
    caught_by=CAUGHT_BY,
))
