"""Variants of the mmu family: KVM forgets to tell the host what the guest did to a page.

In 3.10 the two functions that overwrite a present spte report its A and D
bits to the host before they go (spec.rmap.RmapBase, shared by spec and
impl): mmu_spte_update() calls kvm_set_pfn_accessed() / kvm_set_pfn_dirty()
for an A or D bit the new spte clears, and mmu_spte_clear_track_bits()
(under drop_spte(), and kvm_set_pte_rmapp()) for the A and D of the spte it
clears.  Each variant is that code with one call left out, everything else
(the spte written, the flush decision) unchanged:

- drop-spte-no-set-pfn-dirty: mmu_spte_clear_track_bits() forgets
  kvm_set_pfn_dirty(): a page the guest wrote through an spte that is then
  zapped, unmapped by a notifier or write-protected away (a large spte) is
  let go by KVM with the host believing it clean;
- spte-update-no-set-pfn-dirty: mmu_spte_update() forgets
  kvm_set_pfn_dirty() when the new spte clears D (set_spte() over a present
  spte of the same pfn, which builds the new spte without D: a refault that
  changes its rights, FNAME(sync_page), FNAME(update_pte)); the spte's D,
  the only record of the write, is gone, and the later drop reports nothing;
- drop-spte-no-set-pfn-accessed: mmu_spte_clear_track_bits() forgets
  kvm_set_pfn_accessed() (the host's LRU loses the use: a cost, not data).

All three are caught by diff/hostpages.py's oracles ("host dirty", "host
accessed"), which follow the guest's accesses and the host's calls, not this
code.  The rmap family's "host A/D tracking" oracle compares the same calls
for the rmap walkers alone (rmap:set-pte-no-track).
"""

from impl.rmap import Rmap
from impl.variants import Variant, register
from spec.rmap import RmapBase

CAUGHT_BY = ("host dirty",)


class _NotCalled:
    """A call the variant leaves out: kvm_set_pfn_*() is never made."""

    def add(self, pfn):
        pass


def _without(kind, fn):
    """fn (a 3.10 function of RmapBase) with its kvm_set_pfn_<kind>() calls left
    out: RmapBase records each call in pfn_<kind>, which is set aside for it."""
    attr = f"pfn_{kind}"

    def forgetful(rmap, *args):
        kept = getattr(rmap, attr)
        setattr(rmap, attr, _NotCalled())
        try:
            return fn(rmap, *args)
        finally:
            setattr(rmap, attr, kept)
    forgetful.__name__ = fn.__name__
    forgetful.__doc__ = f"{fn.__name__}() without kvm_set_pfn_{kind}()."
    return forgetful


class _RmapDropNoDirty(Rmap):
    mmu_spte_clear_track_bits = _without("dirty", RmapBase.mmu_spte_clear_track_bits)


class _RmapDropNoAccessed(Rmap):
    mmu_spte_clear_track_bits = _without("accessed", RmapBase.mmu_spte_clear_track_bits)


_update_no_dirty = _without("dirty", RmapBase.mmu_spte_update)


def _mmu_spte_update_no_dirty(self, sptep, new):
    return _update_no_dirty(self.rmap, sptep, new)


register(Variant(
    family="mmu", name="drop-spte-no-set-pfn-dirty", models="plausible",
    summary="mmu_spte_clear_track_bits (drop_spte, kvm_set_pte_rmapp) forgets kvm_set_pfn_dirty: "
            "a page the guest wrote is let go with the host believing it clean",
    replaces={"rmap_class": _RmapDropNoDirty},
    caught_by=CAUGHT_BY,
))

register(Variant(
    family="mmu", name="spte-update-no-set-pfn-dirty", models="plausible",
    summary="mmu_spte_update forgets kvm_set_pfn_dirty when the new spte clears D (set_spte over "
            "a present spte): the write's only record goes, and the later drop reports nothing",
    replaces={"mmu_spte_update": _mmu_spte_update_no_dirty},
    caught_by=CAUGHT_BY,
))

register(Variant(
    family="mmu", name="drop-spte-no-set-pfn-accessed", models="plausible",
    summary="mmu_spte_clear_track_bits forgets kvm_set_pfn_accessed: the host's LRU never "
            "learns that the guest used a page KVM lets go",
    replaces={"rmap_class": _RmapDropNoAccessed},
    caught_by=("host accessed",),
))
