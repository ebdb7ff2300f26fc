"""`mmuspec prove --symbolic`: CrossHair on the contracts of proofs/contracts.py.

Every target is either a PEP 316 contract (`crosshair check`) or a spec/impl
pair (`crosshair diffbehavior`), run on the code of the class under test (the
plain impl, or a variant's class).  Each target runs in its own worker
process (`python -m proofs.symbolic worker NAME SECONDS [VARIANT]`), up to
`jobs` at a time: CrossHair patches the interpreter while it runs, a path can
take long, and a worker that overruns its wall-clock allowance is killed
without taking the others down.  Inside a worker CrossHair is driven through
its Python API (analyze_function / diff_behavior), so that all post lines of
a contract are checked in one exploration, the paths explored are counted,
and a counterexample's inputs come back as values, which the worker reruns
concretely (outside CrossHair) before it is reported.

A result is one of:
  counterexample  inputs, in kernel terms, for which a post line is false or
                  the spec and impl sides differ (confirmed by a concrete rerun)
  none            "no counterexample within N s (M paths)": a bounded search,
                  never a proof, even when CrossHair's path tree was exhausted
  error           CrossHair could not explore (bad contract, precondition never
                  met, the worker died or overran, no path explored)

With a variant, the targets of the variant's family are run (gfn, prefetch,
zap, flush and unsync variants build on the mmu class, rmap on Rmap, walk on
PagingTmpl); a counterexample there means the variant was caught.
"""

import ast
import json
import os
import re
import subprocess
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field

from spec.consts import PAGE_SHIFT

from . import contracts as C

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_SECONDS = 8.0
DEFAULT_JOBS = 2
FORMAT = 1

COUNTEREXAMPLE, NONE, ERROR = "counterexample", "none", "error"


@dataclass(frozen=True)
class Target:
    name: str          # the kernel function (or spec/impl pair) checked
    kind: str          # "contract" or "diffbehavior"
    family: str        # rmap, gfn, prefetch, zap, walk
    functions: tuple   # harness names in proofs/contracts.py (1 contract, 2 spec+impl)
    runs: str          # the code of the class under test it executes
    bound: str         # the inputs searched, in kernel terms


_LAYOUT = "PTE_LIST_EXT 3 and 4; empty, a bare spte, or chains of 1-3 descs of any fill"
_SPTES = _LAYOUT + "; each spte P with any of W, A, D, PS, pfn 1 or 2; A/D masks present or not (EPT)"
_FIELDS = "gpa/gva index fields each 0, 1, 2 or 511 (32-bit: 0, 1, 512, 1023), large-page base 0-3"

TARGETS = {t.name: t for t in (
    Target("pte_list_add", "contract", "rmap", ("pte_list_add",),
           "PteListOps.pte_list_add", _LAYOUT),
    Target("pte_list_remove", "contract", "rmap", ("pte_list_remove",),
           "pte_list_remove, pte_list_desc_remove_entry, desc_remove_slot, mmu_free_pte_list_desc",
           _LAYOUT + "; every spte of the list, and one that is not on it"),
    Target("rmap_get_first/rmap_get_next", "contract", "rmap", ("rmap_iterate",),
           "Rmap.rmap_get_first, rmap_get_next", _LAYOUT),
    Target("rmap_write_protect", "contract", "rmap", ("rmap_write_protect",),
           "__rmap_write_protect with its iterator, drop_spte, pte_list_remove",
           _SPTES + "; levels 1-3 (above 1: W sptes are large)"),
    Target("kvm_unmap_rmapp", "contract", "rmap", ("kvm_unmap_rmapp",),
           "kvm_unmap_rmapp, after_drop, drop_spte, mmu_spte_clear_track_bits", _SPTES),
    Target("kvm_set_pte_rmapp", "contract", "rmap", ("kvm_set_pte_rmapp",),
           "kvm_set_pte_rmapp, after_drop, set_pte_rmapp_spte, mmu_spte_clear_track_bits",
           _SPTES + "; host pte writable or not, new pfn 0-3"),
    Target("kvm_age_rmapp", "contract", "rmap", ("kvm_age_rmapp",),
           "kvm_age_rmapp (kvm_unmap_rmapp without A bits)", _SPTES),
    Target("kvm_test_age_rmapp", "contract", "rmap", ("kvm_test_age_rmapp",),
           "kvm_test_age_rmapp", _SPTES),
    Target("kvm_mmu_unlink_parents", "contract", "rmap", ("kvm_mmu_unlink_parents",),
           "kvm_mmu_unlink_parents, drop_parent_pte", _SPTES),
    Target("kvm_mmu_page_get_gfn", "contract", "gfn", ("kvm_mmu_page_get_gfn",),
           "ShadowMmu.kvm_mmu_page_get_gfn, kvm_mmu_page_derived_gfn",
           "levels 1-3, sp->gfn any 40-bit gfn aligned to the page's range, index 0-511, "
           "role.quadrant 0-3, direct or indirect (stored gfn any 40-bit)"),
    Target("gfn derivation, TDP (spec gfns[] vs impl derived)", "diffbehavior", "gfn",
           ("spec_tdp_gfn", "impl_tdp_gfn"),
           "direct_map_child_gfn, kvm_mmu_page_get_gfn, kvm_mmu_page_derived_gfn",
           "a TDP fault creating the level 1-3 direct page and mapping the leaf through it; "
           "gpa index fields each 0, 1, 2 or 511"),
    Target("gfn derivation, shadow (spec gfns[] vs impl derived)", "diffbehavior", "gfn",
           ("spec_shadow_gfn", "impl_shadow_gfn"),
           "fetch_direct_gfn, role_quadrant, kvm_mmu_page_get_gfn, kvm_mmu_page_derived_gfn",
           "a shadow fault in a guest large page creating the direct page and mapping the leaf: "
           "32-bit 4MB, PAE/64-bit 2MB (level 1), 64-bit 1GB (levels 1-2); gva index fields "
           "0, 1, 2, 511 (32-bit: 0, 1, 512, 1023); guest page base 0-3 pages"),
    Target("rmap index (spec vs impl rmap of a leaf)", "diffbehavior", "gfn",
           ("spec_rmap_index", "impl_rmap_index"),
           "the TDP gfn derivation, then gfn_to_index(gfn, slot->base_gfn, level)",
           "as the TDP gfn derivation; memslot base 0, 1, 3 or 511 frames below the leaf's gfn"),
    Target("direct_prefetch_run_gfn", "contract", "prefetch", ("direct_prefetch_run_gfn",),
           "direct_prefetch_run_gfn, kvm_mmu_page_get_gfn",
           "level-1 direct pages, sp->gfn any 40-bit, run start 0-511, k 0-7"),
    Target("pte_prefetch_window", "contract", "prefetch", ("pte_prefetch_window",),
           "pte_prefetch_window", "index 0-511"),
    Target("direct_prefetch_loop", "contract", "prefetch", ("direct_prefetch_loop",),
           "direct_prefetch_loop (the window __direct_pte_prefetch visits, trailing flush)",
           "index 0-511"),
    Target("prefetch window (spec runs vs __direct_pte_prefetch)", "diffbehavior", "prefetch",
           ("spec_prefetch_runs", "impl_prefetch_runs"),
           "direct_pte_prefetch_runs, direct_prefetch_loop, pte_prefetch_window",
           "faulting index 0-511, any set of present window entries, any one run (or none) "
           "unmappable"),
    Target("prefetch_set_spte", "contract", "prefetch", ("prefetch_set_spte",),
           "prefetch_set_spte (mmu_set_spte recorded)", "index 0-511, access 0-7, 40-bit gfn and pfn"),
    Target("is_obsolete_sp", "contract", "zap", ("is_obsolete_sp",),
           "is_obsolete_sp, is_obsolete_gen, mmu_valid_gen_next, mmu_valid_gen_bits",
           "pages created after 0-5 bumps, asked after up to 5, valid or invalid"),
    Target("is_valid_sp", "contract", "zap", ("is_valid_sp",),
           "is_valid_sp (kvm_mmu_get_page's lookup), is_obsolete_sp", "as is_obsolete_sp"),
    Target("kvm_mmu_invalidate_zap_all_pages", "contract", "zap",
           ("kvm_mmu_invalidate_zap_all_pages",),
           "zap_all_begin/resume, kvm_zap_obsolete_pages (batching, lock breaks), "
           "zap_reload_remote_mmus, is_obsolete_sp (prepare/commit zap stubbed)",
           "0-5 pages (current, invalid held roots, held roots, older invalid roots), "
           "0-2 vCPUs, batch 1-3"),
    Target("fast_pf_fix_direct_spte", "contract", "fastpf", ("fast_pf_fix_direct_spte",),
           "fast_pf_fix_direct_spte, kvm_mmu_page_get_gfn (page_header, the spte and "
           "mark_page_dirty stubbed)",
           "direct pages of levels 1-3, sp->gfn any 40-bit gfn aligned to the page's range, "
           "index 0-511, SPTE_HOST_WRITEABLE, SPTE_MMU_WRITEABLE, A, D each set or clear"),
    Target("spte_is_locklessly_modifiable", "contract", "fastpf",
           ("spte_is_locklessly_modifiable",), "spte_is_locklessly_modifiable",
           "SPTE_HOST_WRITEABLE, SPTE_MMU_WRITEABLE, A, D each set or clear"),
    Target("need_remote_flush", "contract", "flush", ("need_remote_flush",),
           "ShadowMmu.need_remote_flush", "old and new spte: P, W, U, NX each set or clear; "
           "the same pfn or another"),
    Target("mmu_spte_update", "contract", "flush", ("mmu_spte_update",),
           "ShadowMmu.mmu_spte_update (spec.rmap.RmapBase.mmu_spte_update, spte_rights_taken)",
           "a present or absent old spte, a present new one, same pfn; P, W, U, NX each set or clear"),
    Target("mmu_need_write_protect", "contract", "unsync", ("mmu_need_write_protect",),
           "mmu_need_write_protect, kvm_unsync_pages, kvm_unsync_page (for_each_gfn_indirect_valid_sp "
           "and kvm_mmu_mark_parents_unsync stubbed)",
           "0-3 valid indirect shadow pages of the gfn, levels 1-3, the level-1 ones sync or "
           "unsync; can_unsync true or false"),
    Target("FNAME(sync_page)", "contract", "unsync", ("sync_page",),
           "sync_page, level1_sp_gpa, prefetch_invalid_gpte, gpte_addr_mask, sync_pte_access, "
           "gpte_access, sync_gfn_changed, kvm_mmu_page_get_gfn, sync_spte_dropped, sync_set_spte "
           "(drop_spte and set_spte recorded)",
           "a level-1 indirect page of a 64-bit guest (EFER.NX, MAXPHYADDR 40) with 1-3 present "
           "entries; each guest pte: P, A, W, U, D, NX, another gfn than sp->gfns[i], a reserved "
           "bit, each set or clear; each spte host-writable or not; role.access 0-7"),
    Target("kvm_mmu_mark_parents_unsync", "contract", "unsync", ("kvm_unsync_page",),
           "kvm_unsync_page, kvm_mmu_mark_parents_unsync, mark_unsync, page_header, "
           "pte_list_decode (real pages of the class under test)",
           "a level-3 root, two level-2 pages under it, a level-1 page with 1-3 parent ptes among "
           "their entries 0-2; either level-2 page with another unsync child already or not"),
    Target("kvm_mmu_sync_roots", "contract", "unsync", ("kvm_mmu_sync_roots",),
           "guest_access (faults, prefetch, mmu_need_write_protect, stores), kvm_mmu_sync_roots, "
           "mmu_sync_children, mmu_unsync_walk, kvm_sync_page, FNAME(sync_page) (proofs/sync_roots.py)",
           "proofs/sync_roots.py's one-page VM: 64-bit guest, one root, guest table 0x13 with 2 "
           "data entries; first pte of 5, first access read or write, a guest store of a new pte "
           "of 5 each, a reread or not (5000 states)"),
    Target("FNAME(invlpg)", "contract", "unsync", ("fname_invlpg",),
           "guest_access, kvm_mmu_invlpg, FNAME(invlpg), mmu_page_zap_pte, update_pte "
           "(proofs/sync_roots.py)",
           "the same VM: first pte of 5 and first access of each of 2 data entries, a guest store "
           "of a new pte of 5 into one of them, INVLPG of its gva (1000 states)"),
    Target("walker address arithmetic (architecture vs walk_addr)", "diffbehavior", "walk",
           ("spec_walk_address", "impl_walk_address"),
           "PT_INDEX, leaf_gfn, gpte_to_gfn_lvl, pse36_gfn_delta",
           "64-bit 4K/2MB/1GB and 32-bit 4K/4MB leaves; frames 0, 1, 2 and the top one; "
           "PSE-36 bits 0-15; PAT; " + _FIELDS),
    Target("walker rights and D (architecture vs walk_addr)", "diffbehavior", "walk",
           ("spec_walk_rights", "impl_walk_rights"),
           "accumulate_access, gpte_access, leaf_needs_dirty",
           "64-bit and 32-bit walks of 1-4 levels, every W/U/NX combination per level, "
           "EFER.NX, read or write, leaf D set or clear"),
)}

# which target families a variant family is run against
VARIANT_TARGETS = {"rmap": ("rmap",), "gfn": ("gfn",), "prefetch": ("prefetch",),
                   "zap": ("zap",), "walk": ("walk",), "mmu": ("gfn", "prefetch", "zap"),
                   "flush": ("flush",), "unsync": ("unsync",), "fastpf": ("fastpf",)}


@dataclass
class Result:
    name: str
    kind: str
    family: str
    verdict: str                 # counterexample | none | error
    paths: int = 0
    exhausted: bool = False
    seconds: float = 0.0         # wall clock of the worker
    budget: float = 0.0
    inputs: dict = None
    kernel_terms: list = field(default_factory=list)
    violated: list = field(default_factory=list)
    confirmed: bool = False      # the concrete rerun reproduced the counterexample
    message: str = ""
    variant: str = None
    saved: list = field(default_factory=list)

    def summary(self):
        if self.verdict == COUNTEREXAMPLE:
            return "COUNTEREXAMPLE"
        if self.verdict == NONE:
            text = f"no counterexample within {self.budget:g} s ({self.paths} paths"
            return text + ("; CrossHair's path tree exhausted)" if self.exhausted else ")")
        return f"error: {self.message}"


# -- kernel terms ------------------------------------------------------------------------
def _show_spte(value):
    from diff.rmap import show_spte

    return show_spte(value) if isinstance(value, int) else str(value)


def show_layout(ext, bare, shape):
    if not shape:
        return f"PTE_LIST_EXT={ext}, rmap head 0 (empty)"
    if bare:
        return f"PTE_LIST_EXT={ext}, rmap head = bare spte pointer {C.sptep_of(1):#x}"
    descs, k = [], 1
    for size in shape:
        descs.append("[" + " ".join(f"{C.sptep_of(k + i):#x}" for i in range(size)) + "]")
        k += size
    return f"PTE_LIST_EXT={ext}, rmap head -> desc " + " -> desc ".join(descs)


def _fmt(x):
    """Ints of 4096 and up (gfns, ptes) in hex, small ones (indices, rights) in decimal."""
    if isinstance(x, bool) or not isinstance(x, (int, tuple, list)):
        return repr(x)
    if isinstance(x, int):
        return f"{x:#x}" if x >= 4096 else str(x)
    return "(" + ", ".join(_fmt(v) for v in x) + ("," if len(x) == 1 else "") + ")"


def _hexes(xs):
    return "[" + ", ".join(f"{x:#x}" if isinstance(x, int) else str(x) for x in xs) + "]"


_GFN_KINDS = {0: "TDP fault at gpa", 1: "shadow paging, 32-bit guest 4MB page, access at gva",
              2: "shadow paging, PAE/64-bit guest 2MB page, access at gva",
              3: "shadow paging, 64-bit guest 1GB page, access at gva"}


def _sets(calls):
    """set_spte calls as sync_page's contract records them, gfn and pfn in hex."""
    return "[" + ", ".join(f"({i}, {acc}, {lvl}, {gfn:#x}, {pfn:#x}, {spec}, {hw}, {cu})"
                           for i, acc, lvl, gfn, pfn, spec, hw, cu in calls) + "]"


def explain(name, a):
    """Lines describing target `name` on inputs `a` in kernel terms, from a concrete
    rerun on the bound class."""
    t = TARGETS[name]
    fn = getattr(C, t.functions[0])
    if t.family == "rmap":
        lines = [show_layout(a["ext"], a["bare"], a["shape"])]
        if C.own_layout_class():
            lines = [f"PTE_LIST_EXT={a['ext']}, the list the variant's own pte_list_add builds from "
                     f"sptes {_hexes(C.layout_sptes(a['bare'], a['shape']))} (its own layout)"]
        if "flags" in a:
            sptes = C.layout_sptes(a["bare"], a["shape"])
            lines.append("spte values: " + ", ".join(
                f"{s:#x} = {_show_spte(C.spte_value(f))}" for s, f in zip(sptes, a["flags"])))
            lines.append("host sptes " + ("have A/D bits (shadow_accessed_mask set)" if a["accessed"]
                                          else "have no A/D bits (EPT, shadow_accessed_mask 0)"))
        if name == "pte_list_add":
            got = fn(**a)
            lines.append(f"pte_list_add(spte {C.sptep_of(sum(a['shape']) + 1):#x}) returned {got.ret!r} "
                         f"(the kernel's count: {got.want!r}); list now {_hexes(got.entries)} ({got.form})")
            lines += [f"structure: {v}" for v in got.violations]
            if got.leaked:
                lines.append(f"{got.leaked} pte_list_desc(s) leaked")
        elif name == "pte_list_remove":
            got = fn(**a)
            gone = C.sptep_of(a["k"])
            on = a["k"] <= sum(a["shape"])
            lines.append(f"pte_list_remove(spte {gone:#x}{'' if on else ', not on the list'}) "
                         f"{'raised ' + got.ret if isinstance(got.ret, str) else 'returned ' + repr(got.ret)}; "
                         f"list now {_hexes(got.entries)} ({got.form}); the abstract multiset: "
                         f"{_hexes(sorted(set(C.layout_sptes(a['bare'], a['shape'])) - {gone}))}")
            lines += [f"structure: {v}" for v in got.violations]
            if got.leaked:
                lines.append(f"{got.leaked} pte_list_desc(s) unlinked but never freed (leaked)")
        elif name.startswith("rmap_get_first"):
            seen, listed = fn(**a)
            lines.append(f"rmap_get_first/rmap_get_next visit {_hexes(seen)}; the list holds "
                         f"{_hexes(listed)}")
        else:
            walker = t.functions[0]
            args = tuple(a[k] for k in ("level", "host_writable", "new_pfn") if k in a)
            got = fn(**a)
            want = C.expect_walker(walker, a["ext"], a["bare"], a["shape"], a["flags"], a["accessed"], args)
            call = f"{walker}(rmap{''.join(', %s' % (x,) for x in args)})"
            did = (f"raised {got.ret}" + (" (a freed pte_list_desc was read)" if got.ret == "UseAfterFree" else "")
                   if isinstance(got.ret, str) else f"returned {got.ret!r}")
            lines.append(f"{call}: impl {did}, abstract model returns {want.ret!r}")
            sptes = C.layout_sptes(a["bare"], a["shape"])
            for s, g, w, n in zip(sptes, got.values, want.values, got.visits):
                mark = "" if g == w else "   <-- differs"
                lines.append(f"  spte {s:#x}: impl {_show_spte(g)}, abstract {_show_spte(w)}, "
                             f"visited {n}x{mark}")
            if tuple(sorted(got.entries)) != want.entries:
                lines.append(f"  rmap after: impl {_hexes(got.entries)}, abstract {_hexes(want.entries)}")
            if (got.pfn_accessed, got.pfn_dirty) != (want.pfn_accessed, want.pfn_dirty):
                lines.append(f"  host A/D reported: impl accessed {list(got.pfn_accessed)} dirty "
                             f"{list(got.pfn_dirty)}; owed accessed {list(want.pfn_accessed)} dirty "
                             f"{list(want.pfn_dirty)}")
            lines += [f"  structure: {v}" for v in got.violations]
            if got.leaked:
                lines.append(f"  {got.leaked} pte_list_desc(s) leaked")
        return lines
    if name == "kvm_mmu_page_get_gfn":
        sp_gfn = a["sp_frame"] << (9 * a["level"])
        want = sp_gfn + (a["index"] << (9 * (a["level"] - 1))) if a["direct"] else a["stored"]
        what = "direct" if a["direct"] else f"indirect (gfns[{a['index']}] = {a['stored']:#x})"
        return [f"{what} level-{a['level']} page, sp->gfn {sp_gfn:#x}, role.quadrant {a['quadrant']}, "
                f"entry {a['index']}: kvm_mmu_page_get_gfn gives {fn(**a):#x}, the entry maps {want:#x}"]
    if t.kind == "diffbehavior":
        spec_fn, impl_fn = (getattr(C, n) for n in t.functions)
        got = f"spec {t.functions[0]} -> {_fmt(spec_fn(**a))}; impl {t.functions[1]} -> {_fmt(impl_fn(**a))}"
        if t.functions[0] in ("spec_tdp_gfn", "spec_rmap_index"):
            level, gpa, leaf = C.case_tdp(a["level"], a["c4"], a["c3"], a["c2"], a["c1"])
            cls = C.impl_class("mmu")
            head = (f"TDP fault at gpa {gpa:#x}, leaf at level {level} maps gfn {leaf:#x} (spec "
                    f"records it in gfns[]); the impl's level-{level} direct page has sp->gfn "
                    f"{cls.direct_map_child_gfn(leaf << PAGE_SHIFT, level + 1):#x}, entry "
                    f"{C.PT64_INDEX(gpa, level)}")
            if t.functions[0] == "spec_rmap_index":
                head += f"; memslot base_gfn {max(0, leaf - C.pick(C.SLOT_OFFSETS, a['cs'])):#x}"
            return [head, got]
        if t.functions[0] == "spec_shadow_gfn":
            kind, level, gva, base, leaf = C.case_shadow(a["kind"], a["level"], a["c4"], a["c3"],
                                                         a["c2"], a["c1"], a["cb"])
            cls = C.impl_class("mmu")
            q = cls.role_quadrant(gva, level) if kind == 0 else 0
            return [f"shadow paging, {C._SHADOW_KINDS[kind]} at gfn {base:#x}, access at gva {gva:#x}: "
                    f"leaf at level {level} maps gfn {leaf:#x} (spec records it in gfns[]); the "
                    f"impl's level-{level} direct page has sp->gfn "
                    f"{cls.fetch_direct_gfn(leaf, base, level + 1):#x}, role.quadrant {q}, entry "
                    f"{C.PT64_INDEX(gva, level)}", got]
        if t.functions[0] == "spec_prefetch_runs":
            index, present, fail = C.case_prefetch(a["index"], a["present"], a["fail"])
            first = C.window_first(index)
            present_at = [first + j for j in range(8) if (present >> j) % 2]
            return [f"level-1 direct page, fault at entry {index} (window {first}..{first + 7}), "
                    f"present entries {present_at}, "
                    + (f"run #{fail} cannot be mapped" if fail < 8 else "every run can be mapped"),
                    f"runs mapped [first, end): {got}"]
        if t.functions[0] == "spec_walk_address":
            mode, level, pte, addr = C.case_walk(a["kind"], a["cf"], a["pse"], a["pat"], a["a4"],
                                                 a["a3"], a["a2"], a["a1"])
            (si, sg), (ii, ig) = spec_fn(**a), impl_fn(**a)
            return [f"{mode}-bit guest paging, leaf at level {level}: pte {pte:#x}, address {addr:#x}",
                    f"architecture (spec/walk.py): indices {list(si)}, gfn {sg:#x}; walk_addr: indices "
                    f"{list(ii)}, gfn {ig:#x}"]
        if t.functions[0] == "spec_walk_rights":
            ptes = C.case_rights(a["mode64"], a["nx"], a["depth"], a["g4"], a["g3"], a["g2"], a["g1"])
            def acc(r):
                names = [n for n, m in (("EXEC", 1), ("WRITE", 2), ("USER", 4)) if r & m]
                return "ACC_" + "|ACC_".join(names) if names else "none"
            (sr, sd), (ir, idirty) = spec_fn(**a), impl_fn(**a)
            return [f"{'64' if a['mode64'] else '32'}-bit guest, EFER.NX={int(bool(a['nx']))}, "
                    f"{'write' if a['write'] else 'read'}, leaf D {'set' if a['leaf_dirty'] else 'clear'}; "
                    f"gptes top-down {_hexes(ptes)}",
                    f"architecture: rights {acc(sr)}, leaf D after {'set' if sd else 'clear'}; walk_addr: "
                    f"rights {acc(ir)}, leaf D after {'set' if idirty else 'clear'}"]
        return [got]
    if name in ("pte_prefetch_window", "direct_prefetch_loop"):
        return [f"fault at entry {a['index']}: {name} gives {fn(**a)}, window "
                f"{C.window_first(a['index'])}..{C.window_first(a['index']) + 7}"]
    if name == "direct_prefetch_run_gfn":
        return [f"run from entry {a['start']} of a level-1 direct page at sp->gfn "
                f"{a['sp_frame'] << 9:#x}, k {a['k']}: gfn {fn(**a):#x}, entry maps "
                f"{(a['sp_frame'] << 9) + a['start'] + a['k']:#x}"]
    if name == "prefetch_set_spte":
        return [f"prefetch_set_spte(entry {a['index']}, access {a['access']}, gfn {a['gfn']:#x}, "
                f"pfn {a['pfn']:#x}) calls mmu_set_spte(sptep, access, write_fault, level, gfn, pfn, "
                f"speculative, host_writable) = {fn(**a)}"]
    if name in ("is_obsolete_sp", "is_valid_sp"):
        cls = C.impl_class("mmu")
        return [f"mmu_valid_gen {cls.mmu_valid_gen_bits or 'unbounded'} bits wide; "
                f"{'an invalid (a root still held) ' if a['invalid'] else 'a '}page created after "
                f"{a['created']} bumps (gen {C._gen_after(cls, a['created'])}), now after {a['now']} "
                f"(gen {C._gen_after(cls, a['now'])}): {name} -> {fn(**a)}"]
    if name == "kvm_mmu_invalidate_zap_all_pages":
        def page(i, c):
            bits = (["invalid"] if c % 2 else []) + (["held root"] if (c >> 1) % 2 else []) + \
                   (["older than the last bump but one"] if (c >> 2) % 2 else ["current gen"])
            return f"sp{i} ({', '.join(bits)})"
        got = fn(**a)
        return ["active_mmu_pages head to tail: " + ", ".join(page(i, c) for i, c in enumerate(a["pages"])),
                f"{a['vcpus']} vCPU(s), batch {a['batch']}",
                f"after the zap: left on the list {['sp%d' % i for i in got.active]} (owed: held roots "
                f"{['sp%d' % i for i in C.zap_expected_active(a['pages'])]}), freed "
                f"{['sp%d' % i for i in got.freed]}, pages per mmu_lock hold {list(got.per_hold)}, "
                f"vCPUs asked to reload {list(got.reloads)}" + (f", raised {got.error}" if got.error else "")]
    if name == "mmu_need_write_protect":
        got = fn(**a)
        pages = ", ".join(f"level {lv} {'unsync' if u else 'sync'}" for lv, u in zip(a["levels"], a["unsync"]))
        want = C.need_write_protect_3_10(a["levels"], a["can_unsync"], C.unsync_allowed())
        return [f"valid indirect shadow pages of gfn {C.UNSYNC_GFN:#x}: [{pages}]; can_unsync "
                f"{bool(a['can_unsync'])}",
                f"mmu_need_write_protect returned {got.ret} (3.10: {want}); unsync after "
                f"{list(got.unsync)}; kvm_unsync_page marked the parents of pages {list(got.marked)}"]
    if name == "FNAME(sync_page)":
        got = fn(**a)
        lines = [f"level-1 indirect page of a 64-bit guest table at gfn {C.UNSYNC_GFN:#x}, "
                 f"role.access {a['access']}"]
        for i, (f, w) in enumerate(zip(a["flags"], a["writable"])):
            lines.append(f"  entry {i}: spte pfn {0x100 + i:#x}{' host-writable' if w else ''}, "
                         f"sp->gfns[{i}] = {0x20 + i:#x}; guest pte now {C.sync_gpte(i, f):#x}")
        lines.append(f"sync_page returned {got.ret}, dropped {list(got.dropped)} (owed: "
                     f"{[i for i, f in enumerate(a['flags']) if C.sync_drops(f)]}), remote flush "
                     f"owed {got.flush_owed}")
        lines.append(f"set_spte calls (index, access, level, gfn, pfn, speculative, host_writable, "
                     f"can_unsync): {_sets(got.sets)}; owed "
                     f"{_sets(C.sync_expected_sets(a['flags'], a['writable'], a['access']))}")
        return lines
    if name == "kvm_mmu_mark_parents_unsync":
        got = fn(**a)
        links = ", ".join(f"D{c // 3}[{c % 3}]" for c in a["parents"])
        pre = [f"D{k}" for k in range(2) if (a["preset"] >> k) % 2]
        return [f"root[0] -> D0, root[1] -> D1; the level-1 page L has parent ptes {links}; "
                f"already with another unsync child: {pre or 'none'}",
                f"after kvm_unsync_page(L): L unsync {got.leaf_unsync}; bits missing on the way "
                f"up: {list(got.missing)}; unsync_children miscounted in {list(got.miscounted)}"]
    if name in ("kvm_mmu_sync_roots", "FNAME(invlpg)"):
        from proofs import sync_roots as S

        if name == "kvm_mmu_sync_roots":
            f1, f2, e1, e2 = C._vm_codes(a["f1"], a["f2"], a["e1"], a["e2"])
            state = ((f1, f2), (bool(a["w1"]), bool(a["w2"])), (e1, e2), bool(a["reread"]))
            fails, log = S.run_state(C.impl_class("mmu"), 1, *state)
            lines = S.describe(1, *state)
        else:
            f1, f2, new = C._vm_codes(a["f1"], a["f2"], a["new"])
            which = int(bool(a["which"]))
            fails, log = S.run_invlpg_state(C.impl_class("mmu"), (f1, f2),
                                            (bool(a["w1"]), bool(a["w2"])), which, new)
            ents = S.entries(1)
            lines = [f"64-bit guest, table {S.PT_A:#x}: entries {ents[0][1]}, {ents[1][1]} first "
                     f"{S.GPTES[f1]:#x}, {S.GPTES[f2]:#x}; the guest stores {S.GPTES[new]:#x} "
                     f"({S.GPTE_NAMES[new]}) into entry {ents[which][1]}, then INVLPG "
                     f"{S.GVAS[ents[which]]:#x}"]
        return lines + ["transitions: " + "; ".join(log)] + [f"violated: {x}" for x in fails]
    return [repr(a)]


# -- the worker ------------------------------------------------------------------------
def _plain(x):
    """A realized CrossHair value as plain JSON-able Python."""
    if isinstance(x, bool):
        return bool(x)
    if isinstance(x, int):
        return int(x)
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return x


def _check_contract(name, fn, seconds):
    from dataclasses import replace

    from crosshair.condition_parser import default_counterexample
    from crosshair.core import ConditionCheckable, SyntaxErrorCheckable
    from crosshair.core_and_libs import analyze_function
    from crosshair.options import AnalysisKind, AnalysisOptionSet
    from crosshair.statespace import MessageType

    stats = Counter()
    opts = AnalysisOptionSet(analysis_kind=[AnalysisKind.PEP316], per_condition_timeout=seconds,
                             per_path_timeout=max(1.0, seconds / 4), stats=stats)
    checkables = analyze_function(fn, opts)
    errs = [c for c in checkables if isinstance(c, SyntaxErrorCheckable)]
    if errs:
        return {"verdict": ERROR, "message": "; ".join(m.message for c in errs for m in c.messages)}
    conds = [c for c in checkables if isinstance(c, ConditionCheckable)]
    if not conds:
        return {"verdict": ERROR, "message": "no PEP 316 contract found"}
    posts = [c.conditions.post[0] for c in conds]
    captured = []

    def maker(args, ret, reprs):
        captured.append({k: _plain(v) for k, v in args.arguments.items()})
        return default_counterexample(fn.__name__, args, ret, reprs)

    combined = replace(posts[0], evaluate=lambda env: all(p.evaluate(env) for p in posts),
                       expr_source=" and ".join(f"({p.expr_source})" for p in posts))
    conditions = replace(conds[0].conditions, post=[combined], counterexample_description_maker=maker)
    messages = ConditionCheckable(conds[0].ctxfn, conds[0].options, conditions).analyze()
    out = {"paths": stats["num_paths"], "exhausted": stats["exhaustion"] > 0}
    bad = [m for m in messages if m.state in (MessageType.POST_FAIL, MessageType.EXEC_ERR,
                                               MessageType.POST_ERR)]
    if bad and captured:
        inputs = captured[-1]
        ret = fn(**inputs)
        env = dict(inputs, __return__=ret)
        violated = []
        for p in posts:
            try:
                if not p.evaluate(env):
                    violated.append(p.expr_source)
            except Exception as e:  # noqa: BLE001
                violated.append(f"{p.expr_source} (raised {type(e).__name__}: {e})")
        if not violated:
            return dict(out, verdict=ERROR, inputs=inputs,
                        message=f"CrossHair reported {bad[0].state.value} ({bad[0].message}), but "
                                f"the contract holds when rerun concretely on those inputs")
        return dict(out, verdict=COUNTEREXAMPLE, inputs=inputs, violated=violated,
                    confirmed=True, message=bad[0].message)
    if bad:
        return dict(out, verdict=ERROR, message=f"{bad[0].state.value}: {bad[0].message}")
    pre = [m for m in messages if m.state == MessageType.PRE_UNSAT]
    if pre:
        return dict(out, verdict=ERROR, message=f"precondition never met: {pre[0].message}")
    if out["paths"] == 0:
        return dict(out, verdict=ERROR, message="no path explored")
    return dict(out, verdict=NONE)


def _check_diff(fn1, fn2, seconds):
    import crosshair.core_and_libs  # noqa: F401 - installs CrossHair's patches
    from crosshair.diff_behavior import ExceptionEquivalenceType, diff_behavior
    from crosshair.fnutil import FunctionInfo
    from crosshair.options import DEFAULT_OPTIONS, AnalysisOptionSet

    stats = Counter()
    opts = DEFAULT_OPTIONS.overlay(AnalysisOptionSet(per_condition_timeout=seconds,
                                                     per_path_timeout=max(1.0, seconds / 4),
                                                     stats=stats))
    diffs = diff_behavior(FunctionInfo.from_fn(fn1), FunctionInfo.from_fn(fn2), opts,
                          ExceptionEquivalenceType.TYPE_AND_MESSAGE)
    out = {"paths": stats["num_paths"], "exhausted": stats["exhaustion"] > 0}
    if isinstance(diffs, str):
        return dict(out, verdict=ERROR, message=diffs)
    if diffs:
        d = diffs[0]
        try:
            inputs = {k: ast.literal_eval(v) for k, v in d.args.items()}
        except (ValueError, SyntaxError):
            return dict(out, verdict=ERROR, message=f"unreadable inputs {d.args}")
        try:
            r1, r2 = fn1(**inputs), fn2(**inputs)
            confirmed = r1 != r2
            detail = f"spec returns {r1!r}, impl returns {r2!r}"
        except Exception as e:  # noqa: BLE001
            confirmed, detail = True, f"raised {type(e).__name__}: {e}"
        if not confirmed:
            return dict(out, verdict=ERROR, inputs=inputs,
                        message=f"CrossHair reported a difference on {inputs}, but both sides "
                                f"return {r1!r} when rerun concretely")
        return dict(out, verdict=COUNTEREXAMPLE, inputs=inputs, confirmed=confirmed,
                    violated=[f"{fn1.__name__} == {fn2.__name__}: {detail}"],
                    message=f"{fn1.__name__}: {d.result1.describe(set())}; "
                            f"{fn2.__name__}: {d.result2.describe(set())}")
    if out["paths"] == 0:
        return dict(out, verdict=ERROR, message="no path explored")
    return dict(out, verdict=NONE)


def worker(name, seconds, variant=None):
    """Run one target in this process; returns the result as a dict."""
    from impl import variants

    C.bind(variants.get(variant) if variant else None)
    t = TARGETS[name]
    fns = [getattr(C, f) for f in t.functions]
    start = time.monotonic()
    try:
        if t.kind == "contract":
            res = _check_contract(name, fns[0], seconds)
        else:
            res = _check_diff(fns[0], fns[1], seconds)
    except (Exception, SystemExit) as e:  # noqa: BLE001 - CrossHair failing is an error result
        res = {"verdict": ERROR, "message": f"CrossHair raised {type(e).__name__}: {e}"}
    except BaseException as e:  # CrossHair's internal control-flow errors derive from it
        if isinstance(e, KeyboardInterrupt):
            raise
        res = {"verdict": ERROR, "message": f"CrossHair raised {type(e).__name__}: {e}"}
    if res.get("verdict") == COUNTEREXAMPLE:
        try:
            res["kernel_terms"] = explain(name, res["inputs"])
        except Exception as e:  # noqa: BLE001
            res["kernel_terms"] = [f"(could not render the inputs: {type(e).__name__}: {e})",
                                   repr(res["inputs"])]
    res["cpu_seconds"] = round(time.process_time(), 2)
    res["seconds"] = round(time.monotonic() - start, 2)
    return res


# -- the runner ------------------------------------------------------------------------
def select(variant=None, family=None, names=None):
    """The targets a run covers: all, a family's, a variant's family's, or named ones."""
    ts = list(TARGETS.values())
    if names:
        unknown = [n for n in names if n not in TARGETS]
        if unknown:
            raise KeyError(f"no symbolic target {unknown[0]!r}")
        ts = [TARGETS[n] for n in names]
    if variant is not None:
        fams = VARIANT_TARGETS.get(variant.family, ())
        ts = [t for t in ts if t.family in fams]
    if family:
        ts = [t for t in ts if t.family == family]
    return ts


def run(variant=None, seconds=DEFAULT_SECONDS, jobs=DEFAULT_JOBS, family=None, names=None,
        progress=None):
    """Run the selected targets in worker processes, `jobs` at a time.

    `variant` is a Variant or None.  Returns a list of Result in TARGETS order.
    A worker gets 3x its budget plus 60 s of wall clock (CrossHair's budget is
    process CPU time, and the 2 cores are shared) before it is killed.
    """
    targets = select(variant, family, names)
    qual = variant.qualname if variant is not None else None
    pending = list(targets)
    running = {}
    done = {}
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    wall = seconds * 3 + 60
    while pending or running:
        while pending and len(running) < max(1, jobs):
            t = pending.pop(0)
            cmd = [sys.executable, "-m", "proofs.symbolic", "worker", t.name, repr(float(seconds))]
            if qual:
                cmd.append(qual)
            p = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
            running[t.name] = (t, p, time.monotonic())
            if progress:
                progress(f"{t.name}: running")
        time.sleep(0.1)
        for name, (t, p, started) in list(running.items()):
            elapsed = time.monotonic() - started
            if p.poll() is None and elapsed < wall:
                continue
            if p.poll() is None:
                p.kill()
                p.communicate()
                res = {"verdict": ERROR, "message": f"worker overran {wall:g} s of wall clock and "
                                                    f"was killed", "seconds": round(elapsed, 2)}
            else:
                out, err = p.communicate()
                try:
                    res = json.loads(out.strip().splitlines()[-1])
                except (ValueError, IndexError):
                    tail = (err or out or "").strip().splitlines()[-1:] or ["no output"]
                    res = {"verdict": ERROR, "message": f"worker exited {p.returncode}: {tail[0]}",
                           "seconds": round(elapsed, 2)}
            del running[name]
            done[name] = Result(name=t.name, kind=t.kind, family=t.family, budget=float(seconds),
                                variant=qual, **{k: v for k, v in res.items() if k in _FIELDS_IN})
            if progress:
                progress(f"{t.name}: {done[name].summary()}")
    return [done[t.name] for t in targets]


_FIELDS_IN = ("verdict", "paths", "exhausted", "seconds", "inputs", "kernel_terms", "violated",
              "confirmed", "message")


def exit_code(results, variant=None):
    """0 none found, 1 a counterexample (with a variant: caught), 3 inconclusive."""
    if any(r.verdict == COUNTEREXAMPLE for r in results):
        return 1
    if any(r.verdict == ERROR for r in results) or not results:
        return 3
    return 0


def symbolic_verdicts_for_variant(qualname, seconds=5.0, jobs=DEFAULT_JOBS):
    """The zoo's "symbolic" column for one variant.

    Runs the contracts and spec/impl pairs of the variant's family on its code
    and returns {"variant", "caught" (True/False, or None when nothing could
    be concluded), "by" (targets with a counterexample), "verdicts" ({target:
    summary}), "seconds" (wall clock)}.  Cost: about (targets of the family x
    seconds) / jobs plus ~2 s per worker to start; rmap has 9 targets, the
    others 2-5, so 5 s a target is 25 s for rmap and 5-15 s for the others.
    """
    from impl import variants

    var = variants.get(qualname)
    start = time.monotonic()
    results = run(var, seconds=seconds, jobs=jobs)
    by = [r.name for r in results if r.verdict == COUNTEREXAMPLE]
    inconclusive = not by and any(r.verdict == ERROR for r in results)
    return {"variant": qualname, "caught": None if inconclusive or not results else bool(by),
            "by": by, "verdicts": {r.name: r.summary() for r in results},
            "seconds": round(time.monotonic() - start, 1)}


# -- saving and replaying counterexamples ---------------------------------------------
def file_data(result):
    """The saved file's data for a counterexample (what save() writes as JSON)."""
    t = TARGETS[result.name]
    return {"mmuspec_symbolic_counterexample": FORMAT, "target": result.name, "kind": result.kind,
            "functions": list(t.functions), "runs": t.runs, "variant": result.variant,
            "inputs": result.inputs, "kernel_terms": result.kernel_terms,
            "violated": result.violated, "crosshair": result.message}


def save(result, directory):
    """Write <stem>.json and test_<stem>.py for a counterexample; returns both paths.
    A failed write removes its temporary file and raises OSError naming the path."""
    os.makedirs(directory, exist_ok=True)
    who = (result.variant or "impl").replace(":", "-")
    stem = f"symbolic-{_slug(result.name)}-{re.sub(r'[^A-Za-z0-9_.-]', '_', who)}"
    data = file_data(result)
    json_path = os.path.join(directory, stem + ".json")
    py_path = os.path.join(directory, "test_" + stem.replace("-", "_").replace(".", "_") + ".py")
    for path, text in ((json_path, json.dumps(data, indent=1) + "\n"), (py_path, to_pytest(data))):
        try:
            with open(path + ".tmp", "w") as f:
                f.write(text)
            os.replace(path + ".tmp", path)
        except OSError as e:
            try:
                os.remove(path + ".tmp")
            except OSError:
                pass
            raise OSError(e.errno, e.strerror or str(e), path) from None
    return json_path, py_path


def holds(data, variant="recorded"):
    """Rerun a saved symbolic counterexample concretely: True if the contract holds
    (or spec and impl agree) on its inputs.  `variant`: "recorded", None (plain
    impl) or a variant name."""
    from crosshair.condition_parser import Pep316Parser
    from crosshair.fnutil import FunctionInfo
    from impl import variants

    name = data.get("variant") if variant == "recorded" else variant
    C.bind(variants.get(name) if name else None)
    try:
        t = TARGETS[data["target"]]
        fns = [getattr(C, f) for f in t.functions]
        if t.kind == "diffbehavior":
            return fns[0](**data["inputs"]) == fns[1](**data["inputs"])
        conds = Pep316Parser().get_fn_conditions(FunctionInfo.from_fn(fns[0]))
        env = dict(data["inputs"], __return__=fns[0](**data["inputs"]))
        return all(p.evaluate(env) for p in conds.post)
    finally:
        C.bind(None)


def _slug(name):
    """A target's name as a file-name part: 'gfn derivation, TDP (...)' -> 'gfn_derivation_TDP'."""
    return re.sub(r"\W+", "_", name.split(" (")[0]).strip("_")


def to_pytest(data):
    name = re.sub(r"\W", "_", f"test_{_slug(data['target'])}_{data.get('variant') or 'impl'}")
    return f'''"""Symbolic counterexample saved by mmuspec prove --symbolic: fails while the bug is there.

target {data["target"]} ({data["kind"]}), variant {data.get("variant") or "(plain impl)"}
{chr(10).join(data.get("kernel_terms") or [])}
"""

import json

from proofs.symbolic import holds

DATA = json.loads({json.dumps(json.dumps(data))})


def {name}():
    assert holds(DATA), DATA["kernel_terms"]
'''


# -- output ----------------------------------------------------------------------------
def to_json(results, seconds, jobs, wall):
    from crosshair import __version__ as ch_version

    return {"tool": f"CrossHair {ch_version}", "per_function_seconds": seconds, "jobs": jobs,
            "wall_seconds": round(wall, 1),
            "note": "bounded search: 'none' means no counterexample within the budget, never a proof",
            "results": [dict(asdict(r), bound=TARGETS[r.name].bound, runs=TARGETS[r.name].runs,
                             summary=r.summary()) for r in results]}


def render(results, seconds, jobs, wall, variant=None):
    from crosshair import __version__ as ch_version

    from mmuspec.output import table

    lines = [f"symbolic: CrossHair {ch_version} on {'variant ' + variant.qualname if variant else 'the plain impl'}"
             f", {seconds:g} s of CrossHair CPU per function, {jobs} job(s): bounded search, never a proof"]
    lines.append(table(["function", "kind", "result", "paths", "wall s"],
                       [[r.name, r.kind, r.summary(), str(r.paths), f"{r.seconds:.1f}"]
                        for r in results]))
    for r in results:
        if r.verdict == COUNTEREXAMPLE:
            lines.append(f"  {r.name}: counterexample, reproduced concretely (runs {TARGETS[r.name].runs})")
            lines += [f"    {x}" for x in r.kernel_terms]
            lines += [f"    violated: {v}" for v in r.violated]
            lines += [f"    saved {p}" for p in r.saved]
        elif r.verdict == ERROR:
            lines.append(f"  {r.name}: error: {r.message}")
    n = Counter(r.verdict for r in results)
    lines.append(f"{len(results)} checked: {n[COUNTEREXAMPLE]} counterexample, {n[NONE]} no "
                 f"counterexample within the budget, {n[ERROR]} error; wall {wall:.1f} s")
    return "\n".join(lines) + "\n"


def main(argv):
    if len(argv) >= 3 and argv[0] == "worker":
        res = worker(argv[1], float(argv[2]), argv[3] if len(argv) > 3 else None)
        sys.stdout.write(json.dumps(res) + "\n")
        return 0
    sys.stderr.write("usage: python -m proofs.symbolic worker NAME SECONDS [VARIANT]\n")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
