"""Zapping all shadow pages by generation number (Xiao Guangrong, 2013; Linux 3.11).

"KVM: MMU: fast invalidate all pages" and its series replace the walk of
kvm_mmu_zap_all() (spec/mmu.py, every page in one mmu_lock hold) with:

  kvm_mmu_invalidate_zap_all_pages()
      kvm->arch.mmu_valid_gen++           every page is now obsolete
      kvm_reload_remote_mmus()            vCPUs drop their roots at next entry
      kvm_zap_obsolete_pages()            reclaim from the tail of
                                          active_mmu_pages (oldest first),
                                          stopping at the first current page;
                                          invalid pages (roots still held)
                                          are skipped; after BATCH_ZAP_PAGES
                                          zapped pages cond_resched_lock() may
                                          drop mmu_lock, and the walk restarts

A new page is stamped with the current generation (kvm_mmu_alloc_page via
kvm_mmu_get_page), kvm_mmu_get_page()'s lookup skips obsolete pages, and
kvm_mmu_prepare_zap_page() of a held root moves it to the head and asks for
a reload only if the root is current.

The generation's width is a class parameter, `mmu_valid_gen_bits`: None is
3.11's unsigned long (modelled unbounded); 1 is the single toggling bit of
ca333add6933 (Linux 5.3).  The two rules below are written with `!=`, `&`,
`+` and spec.bits.ite so proofs/zap.py evaluates these very functions on z3
bit-vectors.
"""

from spec.bits import ite
from spec.consts import BATCH_ZAP_PAGES
from spec.termination import LoopBound


def mmu_valid_gen_next(gen, bits):
    """kvm->arch.mmu_valid_gen after a bump: gen + 1, modulo 2^bits when the
    generation is `bits` wide (bits=1: ca333add6933's `gen ? 0 : 1`)."""
    if bits is None:
        return gen + 1
    return (gen + 1) & ((1 << bits) - 1)


def is_obsolete_gen(sp_gen, sp_invalid, kvm_gen):
    """is_obsolete_sp() of 3.11: sp->mmu_valid_gen != kvm->arch.mmu_valid_gen.
    role.invalid plays no part (fac026dac0bc, 2020, added it)."""
    return sp_gen != kvm_gen


def is_obsolete_gen_or_invalid(sp_gen, sp_invalid, kvm_gen):
    """is_obsolete_sp() since fac026dac0bc: an invalid page is obsolete too."""
    return ite(sp_invalid, True, sp_gen != kvm_gen)


class GenerationZap:
    """The 3.11 zap, mixed into impl.mmu.ShadowMmu ahead of the spec class."""

    has_generation = True              # False: a form without mmu_valid_gen (5.1-5.2)
    mmu_valid_gen_bits = None          # None: unbounded (3.11's unsigned long)
    zap_batch_pages = BATCH_ZAP_PAGES  # the diff machine may draw smaller batches
    mmu_valid_gen_next = staticmethod(mmu_valid_gen_next)
    is_obsolete_gen = staticmethod(is_obsolete_gen)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.mmu_valid_gen = 0         # kvm->arch.mmu_valid_gen
        self.zapped_obsolete_pages = []
        self._zap = None               # the kvm_zap_obsolete_pages walk, paused at a lock break
        self._zap_holds = None         # LoopBound on the zap's mmu_lock holds

    def on_new_page(self, sp):
        """kvm_mmu_get_page(): sp->mmu_valid_gen = kvm->arch.mmu_valid_gen."""
        sp.mmu_valid_gen = self.mmu_valid_gen

    def is_obsolete_sp(self, sp):
        return self.is_obsolete_gen(sp.mmu_valid_gen, sp.role.invalid, self.mmu_valid_gen)

    def reload_for_held_root(self, sp):
        """3.11 kvm_mmu_prepare_zap_page() of a held root: reload only if it was
        current (the bump already asked every vCPU to drop obsolete roots)."""
        if not sp.role.invalid and not self.is_obsolete_sp(sp):
            self.kvm_reload_remote_mmus()

    # -- kvm_mmu_invalidate_zap_all_pages -----------------------------------------
    def zap_all_begin(self):
        """kvm_mmu_invalidate_zap_all_pages(): bump, reload, then zap up to the first lock break.

        Termination: after the bump every page on the list is obsolete and
        every page created later is current, so the walk, which stops at the
        first current page, has at most the pages of this moment to zap, a
        batch per mmu_lock hold.  More holds than that (plus one to find the
        list done, and one to spare) means the walk is zapping pages created
        during its own lock breaks, the livelock 002c5f73c508 fixed: the
        bound is counted in zap_all_resume(), which every form shares."""
        self.mmu_lock_holds = [0]
        self._zap_holds = LoopBound(
            "kvm_mmu_invalidate_zap_all_pages: mmu_lock holds of one zap (the walk keeps finding "
            "pages created in its own lock breaks)",
            len(self.active_mmu_pages) // self.zap_batch_pages + 2)
        self.mmu_valid_gen = self.mmu_valid_gen_next(self.mmu_valid_gen, self.mmu_valid_gen_bits)
        self.zap_epoch += 1
        self.zap_reload_remote_mmus()
        self._zap = self.kvm_zap_obsolete_pages()
        return self._run_to_break()

    def zap_reload_remote_mmus(self):
        """The bump's kvm_reload_remote_mmus(): every vCPU drops its (now obsolete) roots."""
        self.kvm_reload_remote_mmus()

    def zap_in_progress(self):
        return self._zap is not None

    def zap_all_resume(self):
        if self._zap is None:
            return False
        self._zap_holds.step()
        self.mmu_lock_holds.append(0)
        return self._run_to_break()

    def _run_to_break(self):
        try:
            next(self._zap)
            return True
        except StopIteration:
            self._zap = None
            return False

    def kvm_zap_obsolete_pages(self):
        """A generator: each `yield` is a cond_resched_lock() that dropped mmu_lock.

        Walks active_mmu_pages from the tail (list_for_each_entry_safe_reverse:
        the next entry is taken before the body runs, so a root the body moves
        to the head is met again at the end and skipped as invalid).  The
        zapped pages wait on zapped_obsolete_pages and are freed at the end.
        """
        batch = 0
        active = self.active_mmu_pages
        visits = self.zap_hold_bound()
        while True:  # restart:
            restart = False
            sp = active.last
            while sp is not None:
                prev = active.prev_of(sp)   # taken before the body runs
                visits.step()
                self.mmu_lock_holds[-1] += 1
                if not self.is_obsolete_sp(sp):
                    break
                if sp.role.invalid:
                    sp = prev
                    continue
                if batch >= self.zap_batch_pages:
                    yield  # cond_resched_lock(&kvm->mmu_lock): other work may run
                    batch = 0
                    visits = self.zap_hold_bound()
                    restart = True
                    break
                ret = self.prepare_zap_count(sp, self.zapped_obsolete_pages)
                batch += ret
                if ret:
                    restart = True
                    break
                sp = prev
            if not restart:
                break
        self.kvm_mmu_commit_zap_page(self.zapped_obsolete_pages)

    def zap_hold_bound(self):
        """Pages one mmu_lock hold of the walk may visit: each restart (after a
        page was zapped, at most a batch and one more per hold) walks at most
        the whole list."""
        return LoopBound("kvm_zap_obsolete_pages: pages visited in one mmu_lock hold",
                         (len(self.active_mmu_pages) + 1) * (self.zap_batch_pages + 2))

    def prepare_zap_count(self, sp, invalid_list):
        """kvm_mmu_prepare_zap_page()'s return: the pages it put on the invalid
        list (0 for a held root, which stays on the active list)."""
        return self.kvm_mmu_prepare_zap_page(sp, invalid_list)
