"""Variants of the walk family (FNAME(walk_addr), impl/walk.py).

Plausible mutants of the three decisions the walker must get right: when D is
set, how rights combine over the levels, and where a 32-bit 4MB page lies.
"""

from impl.variants import Variant, register
from impl.walk import is_dirty_gpte


def _leaf_needs_dirty_on_read(self, write_fault, pte):
    # Forgets to ask whether the access is a write: every access dirties the leaf.
    return not is_dirty_gpte(pte)


def _leaf_access_only(self, pt_access, mmu, gpte):
    # pte_access = gpte_access(gpte): the upper levels' rights are dropped.
    return self.gpte_access(mmu, gpte)


def _pse36_dropped(self, gpte):
    # PDE bits 16:13 never reach the gfn: a 4MB page above 4GB lands below it.
    return 0


register(Variant(
    family="walk", name="d-on-read", models="plausible",
    summary="update_accessed_dirty_bits sets D on the leaf for reads and fetches too",
    replaces={"leaf_needs_dirty": _leaf_needs_dirty_on_read},
    caught_by=("A/D writes", "guest memory", "kvm_mmu_pte_write"),
))

register(Variant(
    family="walk", name="access-not-anded", models="plausible",
    summary="walk_addr takes pte_access from the leaf gpte alone instead of ANDing it "
            "with pt_access",
    replaces={"accumulate_access": _leaf_access_only},
    caught_by=("walk outcome", "access rights"),
))

register(Variant(
    family="walk", name="pse36-dropped", models="plausible",
    summary="pse36_gfn_delta returns 0: a 32-bit 4MB page loses its PSE-36 bits (physical "
            "bits 35:32)",
    replaces={"pse36_gfn_delta": _pse36_dropped},
    caught_by=("walk outcome", "proof walk.large_page_gfn_4m_pse36"),
))
