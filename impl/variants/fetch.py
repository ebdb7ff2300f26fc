"""Variants of the mmu family: FNAME(fetch)'s choice of the shadow pages' access.

FNAME(fetch) makes (or finds, through kvm_mmu_get_page's hash) an indirect
shadow page for each guest table on the way down; the page's role.access is
part of its identity, so a lower table reached through upper entries with
different rights gets a page per rights.  The model follows b1bd5cba3306
("KVM: X86: MMU: Use the correct inherited permissions to get shadow page",
2021): the access is what is inherited down to the entry that points at the
table (spec.mmu.ShadowMmu.fetch_page_access).

- pt-access-all-levels-3.10: the form from cea0f0e7ea54 (2007) to 2021,
  3.10's included: gw->pt_access, the AND over every level above the leaf,
  for every page.  Two PDPTEs, one U|W and one U, point at the same page
  directory; its PDEs are one U and one U|W.  A read through the U|W PDPTE
  and the U PDE makes the directory's page with access U; a write through
  the U|W PDPTE and the U|W PDE then maps the U|W table below it writable;
  a read through the U PDPTE reuses the directory's page; a write through
  the U PDPTE and the U|W PDE finds every spte present and completes, where
  the guest's tables allow no write (a missing #PF).  Caught by the
  architectural oracle ("guest outcome"), reached by the machine's pattern
  shared_table_different_rights (64-bit guests).
"""

from impl.variants import Variant, register


def _all_levels(gw, level):
    # 3.10 FNAME(fetch): access = gw->pt_access for every level
    return gw.pt_access


register(Variant(
    family="mmu", name="pt-access-all-levels-3.10", models="b1bd5cba3306 (bug from cea0f0e7ea54)",
    summary="FNAME(fetch) gives every indirect page the access ANDed over all levels (3.10): a "
            "lower table reached through upper entries with different rights shares one page, "
            "and a write the guest's tables forbid completes",
    replaces={"fetch_page_access": _all_levels},
    caught_by=("guest outcome", "stale translation", "auditor: cache"),
))
