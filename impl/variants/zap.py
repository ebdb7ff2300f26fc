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
"""

from impl.variants import Variant, register

CAUGHT_BY = ("auditor: roots", "auditor: generation", "zap complete", "deleted slot",
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

