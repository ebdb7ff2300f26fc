"""Variants of the walk family (FNAME(walk_addr), impl/walk.py).

Plausible mutants of the three decisions the walker must get right: when D is
set, how rights combine over the levels, and where a 32-bit 4MB page lies.

Then the walker forms of other kernels, which must pass (the plain walker is
3.x's with the architecture's reserved bits; impl/walk.py's docstring):
- pte-write-on-dirty-2.6: the 2.6.2x rule for D, kvm_mmu_pte_write() of the
  leaf the walker dirtied (DIRTY_BIT_RULE_2_6; the oracle then asks for it);
- rsvd-3.10: Linux 3.10.99's reset_rsvds_bits_mask() (RSVD_KVM_3_10; the
  spec side then walks by the 3.10 rule, spec.walk.RSVD_KVM_3_10);
and one mutant of each D rule, which must be caught by the oracle
kvm_mmu_pte_write: a 2.6-rule walker that forgets the notification, and a
3.x walker that sends one anyway.
"""

from impl.variants import Variant, register
from impl.walk import DIRTY_BIT_RULE_2_6, RSVD_KVM_3_10, KvmMmuPteWrite, is_dirty_gpte


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
    caught_by=("A/D writes", "guest memory"),
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


# -- walker forms of other kernels (must pass) and mutants of the D rules ------------
register(Variant(
    family="walk", name="pte-write-on-dirty-2.6", models="2.6.2x",
    summary="the 2.6.2x D rule: after its cmpxchg set D on the leaf, walk_addr calls "
            "kvm_mmu_pte_write() on the new pte (3.x only marks the table's gfn dirty)",
    replaces={"DIRTY_BIT_RULE": DIRTY_BIT_RULE_2_6},
    must_catch=False, passes=True,
))

register(Variant(
    family="walk", name="rsvd-3.10", models="3.10",
    summary="3.10's reset_rsvds_bits_mask: bit 8 reserved in every PML4E and non-leaf "
            "PDPTE, PAE PDPTE bits 6:5 not reserved, CPUID.GBPAGES never consulted",
    replaces={"RSVD_RULE": RSVD_KVM_3_10},
    must_catch=False, passes=True,
))


def _no_pte_write(self, pte_gpa, pte):
    # Declares the 2.6 rule but drops its kvm_mmu_pte_write().
    return []


def _stray_pte_write(self, pte_gpa, pte):
    # A 3.x walker that kept the 2.6 call.
    return [KvmMmuPteWrite(pte_gpa, pte, self.pt_element_size)]


register(Variant(
    family="walk", name="no-pte-write-2.6", models="plausible",
    summary="a 2.6-rule walker whose update of a clean leaf's D bit forgets "
            "kvm_mmu_pte_write() (sptes of the old gpte stay as they were)",
    replaces={"DIRTY_BIT_RULE": DIRTY_BIT_RULE_2_6, "dirty_leaf_events": _no_pte_write},
    caught_by=("kvm_mmu_pte_write",),
))

register(Variant(
    family="walk", name="stray-pte-write-3.x", models="plausible",
    summary="a 3.x walker that still calls kvm_mmu_pte_write() after setting D on the leaf",
    replaces={"dirty_leaf_events": _stray_pte_write},
    caught_by=("kvm_mmu_pte_write",),
))
