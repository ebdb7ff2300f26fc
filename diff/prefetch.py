"""The prefetch family: the mmu family's VM, run for the prefetch:* variants.

Xiao's 2010 prefetch (facts section 6) maps the other empty entries of the
aligned window of 8 around a level-1 fault.  The spec has no prefetch, so the
guest-visible oracles of the mmu family only show prefetch safe; what shows
it complete is the "prefetch completeness" oracle (diff/mmu.py's
with_prefetch_probe against spec/prefetch.py), which runs in every mmu world.

This family reuses the mmu family's machine, world, impl class and modes
unchanged; it exists so that `mmuspec diff --family prefetch` names the
question and `--variant prefetch:*` resolves here (for_variant).  A caught
variant's message names the window slots involved (describe_slots).

The completeness oracle follows the form it checks in one respect, the stop
rule of FNAME(pte_prefetch) at an invalid guest pte: the impl class under
test declares it (PREFETCH_INVALID_GPTE_RULE: the 2010 form skips the slot,
3.8's bd6360cc0a54 stops the window there) and expected_prefetch, given the
impl's MMU, reads it.  So prefetch:stop-at-invalid-gpte-3.8 is held to its
own, less complete rule and must pass, while every other rule of the oracle
is the same for all forms (the must-catch variants are caught as before).
"""

from impl.mmu import ShadowMmu as ImplShadowMmu

from .families import Family
from .mmu import MODES, MmuMachine, make_world

FAMILY = Family(
    name="prefetch",
    summary="the mmu family's VM with prefetch on a level-1 fault (Xiao 2010, c6cecc4b9324), "
            "checked for completeness against spec/prefetch.py and for safety by the mmu oracles",
    machine=MmuMachine,
    make_world=make_world,
    impl_base=ImplShadowMmu,
    modes=MODES,
    variant_families=("prefetch",),
)
