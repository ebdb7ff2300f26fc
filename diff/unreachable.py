"""Branches of spec/ and impl/ that the plain campaigns cannot reach, and why.

Read by diff/branch_coverage.py: each listed branch leaves the denominator of
the branch coverage that `mmuspec check` and `mmuspec bench coverage` report
("reachable" = every branch less these).  An entry is anchored by file,
function and a snippet of the branch line (see branch_coverage.Unreachable),
never by a line number alone, so an edit cannot silently shift it: an entry
that no longer matches a branch is reported as stale, one that matches two
lines as ambiguous, and one whose branch a campaign reached as reached.

Only branches that the model's ops cannot take belong here, each with its
reason: a kernel BUG_ON or a model assertion on a state the plain model never
builds, an oracle's failure path (it runs on a discrepancy: the zoo's
variants reach it in their hunts), validation of an argument no op passes,
code that only proofs or variants run, code no op calls.  A branch that a
better generator would reach does not belong here: it stays in the unreached
list until a generator reaches it.  `families` limits an entry to the plain
campaigns it holds for (another machine may reach the branch).

Two forms: U(file, function, snippet, to=..., why=...) names one branch line
(or one exit of it); F(file, function, why=...) (branch_coverage.
whole_function) names every branch line of a function, for code a family's
ops never call at all: the live families' long-mode-only, shadow-only,
TLB-less machines leave whole functions of TDP, paging-off, PAE and TLB code
unrun.  A whole-function entry is checked like the others (stale when the
function goes, reported for each of its branches a campaign reaches); a
function with any reached branch gets line entries instead.

Written against commit 640334b (mmuspec bench coverage --budget 60, the
unreached list read branch by branch); the live families' entries and the
every-family ones after them against 2c4b27a (bench coverage --budget 20 of
2026-12-03, read function by function).  Whether a branch is unreachable is
a reading of the code, not a proof.
"""

from .branch_coverage import Unreachable as U
from .branch_coverage import whole_function as F

BUG = "a kernel BUG_ON / model assertion: fires only on a state the plain model never builds (a variant or a bug)"
ORACLE = "an oracle's failure path: runs only on a discrepancy (the zoo's variants reach it in their hunts)"
ARG = "argument validation: no op passes such a value"
LIVELOCK = ("the step bound of a loop: passing it is the livelock oracle, which fires only when each "
            "iteration fails to make the progress the model guarantees")
RULE_3_10 = ("the 3.10 reserved-bit rule is a walker form that only walk:* variants select; the plain "
             "campaigns run the architectural rule")
HOST_RO = ("the host's only change_pte is a KSM merge (KvmHost.ksm_merge), whose new pte is read-only; "
           "the rmap family's set_pte op passes writable ones")
RMAP_ORACLE = ("the rmap family's pte_list structure checker and add count: the mmu world checks its rmaps "
               "with the auditor instead and never calls them")
NO_MODE_SWITCH = ("no op of the mmu machine switches a vCPU's paging mode (the walk family's does)")
# The plain campaigns of the mmu machine and world (diff/mmu.py's MmuMachine and make_world, or a
# subclass of the machine on that world): flush, mmu, prefetch and unsync are one campaign (bench
# coverage measures it as "flush", the first of them), fastpf runs a subclass, zap its own.  An
# entry written for "the mmu machine" holds for all of them; checked against `mmuspec bench
# coverage --budget 20` of 2026-12-03 (none of them reached a branch listed for it).
MMU_MACHINE = ("mmu", "gfn", "zap", "flush", "prefetch", "unsync", "fastpf")
# The live families' machines are the mmu machine on a subclass of its world (diff/live.py,
# diff/live_relaxed.py), its ops rewritten for the host's KVM; an entry whose reason is the
# world's (its VM's constants, the ops no mmu machine draws) holds for them too: WORLD.
# live-walk is the walk machine on the host (diff/live_walk.py: 5 files of spec/ and impl/).
LIVE = ("live", "live-relaxed")
LIVE_ALL = LIVE + ("live-walk",)
WORLD = MMU_MACHINE + LIVE
NO_CONCURRENCY = ("the model runs nothing between two steps of a kernel function (no other CPU, no "
                  "preemption): 3.10's lockless fast path races with a zap or another fault on "
                  "another CPU, which the model does not run")
EPT_NO_AD = ("the mmu world's VM always has host accessed bits (shadow_accessed_mask is a class constant): "
             "no op models EPT without A/D bits (the rmap family's vm_setup does; the mmu world's could)")
# The live families (diff/live.py, diff/live_relaxed.py, diff/live_walk.py) run what this host's KVM
# runs (shared/kvm-host-facts.md: kvm_pvm, tdp_mmu N, paging in long mode only).
LONG_MODE_ONLY = ("the live families run 64-bit guests only: this host's KVM (kvm_pvm) runs paging in long "
                  "mode only (32-bit and PAE paging shut the vCPU down: kvm-host-facts.md), so the live "
                  "machines create shadow64 vCPUs only and never leave long mode; this is 32-bit or PAE "
                  "paging's code (4-byte gptes, PDPTE registers, quadrants, 4MB pages)")
NO_DIRECT = ("the live families' VM is a shadow-paging VM whose vCPUs all page in long mode (the host has no "
             "TDP, tdp_mmu N, and a vCPU starts in long mode: kvm-host-facts.md): no TDP vCPU and no "
             "paging-off vCPU, so nothing reaches tdp_page_fault, nonpaging_page_fault/nonpaging_map, "
             "__direct_map, or 3.10's fast_page_fault, which only those two call")
NO_TLB = ("the live family's models run without TLBs (vm_setup's tlb_capacity 0: the deterministic "
          "default of diff/live.py): no entry is filled, looked up, dropped or allowed from")
HOST_NO_GBPAGES = ("this host's KVM_GET_SUPPORTED_CPUID has no 1GB pages (GBPAGES 0: kvm-host-facts.md, "
                   "recorded in the live machines' vm_setup/vcpu_setup), so PS in a PDPTE is reserved and "
                   "the walk faults with RSVD before a 1GB leaf; the plain campaigns run the Intel rule")
HOST_MAXPHY = ("MAXPHYADDR is this host's 48 (kvm-host-facts.md, recorded in the live machines' set-up): "
               "rsvd_bits(48, 51) is never empty")
WALK_NO_SWITCH = ("the walk machine switches paging mode only in its mixed mode (set_paging_mode's "
                  "precondition, diff/walk.py); live-walk runs mode 64 only")
EIGHT_BYTES = ("a 64-bit guest's entries and the live machines' stores are 8 bytes: 4-byte guest memory "
               "accesses are a 32-bit guest's (" + "see LONG_MODE_ONLY)")

ENTRIES = (
    # -- impl/mmu.py ----------------------------------------------------------------
    U("impl/mmu.py", "ShadowMmu.kvm_mmu_page_set_gfn", "if gfn != derived:", to="raise KvmBug",
      why="BUG_ON(gfn != kvm_mmu_page_get_gfn()) of the Lai patch: fires only when a derivation is wrong "
          "(the gfn:* variants)"),
    U("impl/mmu.py", "ShadowMmu.direct_pte_prefetch", "if not self.shadow_accessed_mask:", to="return",
      why=EPT_NO_AD),
    U("impl/mmu.py", "ShadowMmu.guest_walk", "if isinstance(e, MarkPageDirty):", to="for e in w.events:",
      why="the walker emits other events (KvmMmuPteWrite) only under the 2.6 dirty-bit rule, a walker "
          "form only walk:* variants select"),
    # -- impl/rmap.py, spec/rmap.py -------------------------------------------------------
    U("impl/rmap.py", "Rmap.rmap_write_protect", "if not is_large_pte(val):", to="raise KvmBug",
      why=BUG + ": an rmap above level 1 holds only large sptes"),
    U("spec/rmap.py", "SpecRmap.rmap_write_protect", "if not is_large_pte(val):", to="raise KvmBug",
      why=BUG + ": an rmap above level 1 holds only large sptes"),
    U("spec/rmap.py", "RmapBase.check_present", "if not is_shadow_present_pte(spte):", to="raise KvmBug",
      why=BUG + ": an rmap holds only present sptes"),
    U("impl/rmap.py", "Rmap.kvm_age_rmapp", "if not self.shadow_accessed_mask:", to="return",
      families=WORLD, why=EPT_NO_AD),
    U("impl/rmap.py", "Rmap.kvm_test_age_rmapp", "if not self.shadow_accessed_mask:", to="return",
      families=WORLD, why=EPT_NO_AD),
    U("spec/rmap.py", "SpecRmap.kvm_age_rmapp", "if not self.shadow_accessed_mask:", to="return",
      families=WORLD, why=EPT_NO_AD),
    U("spec/rmap.py", "SpecRmap.kvm_test_age_rmapp", "if not self.shadow_accessed_mask:", to="return",
      families=WORLD, why=EPT_NO_AD),
    U("impl/rmap.py", "Rmap.kvm_set_pte_rmapp", "if host_writable:", to="self.drop_spte(",
      families=WORLD, why=HOST_RO),
    U("spec/rmap.py", "SpecRmap.kvm_set_pte_rmapp", "if host_writable:", to="self.drop_spte(",
      families=WORLD, why=HOST_RO),
    U("spec/rmap.py", "RmapBase.mmu_spte_clear_track_bits", "if not is_shadow_present_pte(old):",
      to="return False", families=("rmap",),
      why="the rmap machine drops only sptes its rmaps hold, and they are all present"),
    U("spec/rmap.py", "RmapBase.drop_spte", "if self.mmu_spte_clear_track_bits(sptep):", to="exit",
      families=("rmap",), why="the rmap machine drops only present sptes (see mmu_spte_clear_track_bits)"),
    F("spec/rmap.py", "RmapBase.pte_list_add_count", families=WORLD, why=RMAP_ORACLE),
    # -- impl/walk.py ------------------------------------------------------------------
    U("impl/walk.py", "reset_rsvds_bits_mask", "elif level == PT64_ROOT_LEVEL:", to="raise KvmBug",
      why="root levels are 2, 3 and 4 only: the fall-through is the model's assertion"),
    U("impl/walk.py", "reset_rsvds_bits_mask_3_10", "if level == PT32_ROOT_LEVEL:", why=RULE_3_10),
    U("impl/walk.py", "reset_rsvds_bits_mask_3_10", "elif level == PT32E_ROOT_LEVEL:", why=RULE_3_10),
    U("impl/walk.py", "reset_rsvds_bits_mask_3_10", "elif level == PT64_ROOT_LEVEL:", why=RULE_3_10),
    U("impl/walk.py", "KvmVcpu.reset_rsvds_bits_mask", "if self.paging64.RSVD_RULE == RSVD_KVM_3_10:",
      to="reset_rsvds_bits_mask_3_10(", why=RULE_3_10),
    U("impl/walk.py", "PagingTmpl.dirty_leaf_events", "if self.DIRTY_BIT_RULE == DIRTY_BIT_RULE_2_6:",
      to="return [KvmMmuPteWrite(",
      why="the 2.6 dirty-bit rule is a walker form that only walk:* variants select"),
    U("impl/walk.py", "PagingTmpl.__init__", "if PTTYPE not in (32, 64):", to="raise ValueError", why=ARG),
    U("impl/walk.py", "PagingTmpl.__init__", "if self.DIRTY_BIT_RULE not in DIRTY_BIT_RULES:",
      to="raise ValueError", why=ARG),
    U("impl/walk.py", "PagingTmpl.__init__", "if self.RSVD_RULE not in RSVD_RULES:", to="raise ValueError",
      why=ARG),
    U("impl/walk.py", "PagingTmpl.walk_addr", "if walker.level < PT_PAGE_TABLE_LEVEL:", to="raise KvmBug",
      why=BUG),
    U("impl/walk.py", "KvmVcpu.__init__", "if self.kvm_set_cr3(cr3):", to="raise ValueError",
      why=ARG + " (vCPUs are created with a legal CR3)"),
    U("impl/walk.py", "KvmVcpu.set_paging_mode", 'if mode == "pae" and not self.load_pdptrs(self.cr3):',
      families=WORLD, why=NO_MODE_SWITCH),
    # -- impl/zap.py -------------------------------------------------------------------
    U("impl/zap.py", "mmu_valid_gen_next", "if bits is None:", to="return (gen + 1) & ((1 << bits)",
      why="a bounded generation (Linux 5.3's one bit) is a parameter only the zap:*single-bit* variants set"),
    U("impl/zap.py", "GenerationZap.kvm_zap_obsolete_pages", "if not self.is_obsolete_sp(sp):", to="break",
      families=tuple(f for f in MMU_MACHINE if f != "zap"),
      why="the mmu machine's memslot ops run the zap's begin and commit back to back: no page is "
          "created during the walk, so it never meets a current one (the zap family interleaves ops)"),
    # -- spec/bits.py (written once for ints and z3 bit-vectors) -----------------------------------
    U("spec/bits.py", "ite", "if is_symbolic(cond):", to="import z3",
      why="the z3 path of a helper shared with proofs/: campaigns run it on ints only"),
    U("spec/bits.py", "select", "if not is_symbolic(index):", to="out = values[-1]",
      why="the z3 path of a helper shared with proofs/: campaigns run it on ints only"),
    U("spec/bits.py", "select", "for k in range(len(values) - 2, -1, -1):",
      why="the z3 path of a helper shared with proofs/: campaigns run it on ints only"),
    # -- spec/consts.py ------------------------------------------------------------------
    U("spec/consts.py", "rsvd_bits", "if s > e:", families=("rmap",),
      why="the rmap machine computes no reserved-bit mask (consts.py is in its scope for other helpers)"),
    U("spec/consts.py", "rsvd_bits", "if s > e:", to="return 0", families=MMU_MACHINE,
      why="the mmu world's vCPUs have MAXPHYADDR 40 (diff/mmu.py): no reserved range it asks for is empty "
          "(the walk family draws 52)"),
    # -- spec/guest_memory.py, spec/kvm_host.py, spec/list_head.py, spec/memory.py --------------
    U("spec/guest_memory.py", "GuestMemory._check", "if size not in (4, 8):", to="raise ValueError", why=ARG),
    U("spec/guest_memory.py", "GuestMemory._check", "if gpa % size or gpa < 0:", to="raise ValueError",
      why=ARG),
    U("spec/guest_memory.py", "GuestMemory.write", "if who not in WRITERS:", to="raise ValueError", why=ARG),
    U("spec/guest_memory.py", "GuestMemory.write", "if value < 0 or value >> (8 * size):",
      to="raise ValueError", why=ARG),
    U("spec/kvm_host.py", "KvmMemorySlot.add_write_count", "if n < 0:", to="raise ValueError",
      why=BUG + ": unaccount_shadowed never outnumbers account_shadowed"),
    U("spec/kvm_host.py", "KvmHost.madvise_dontneed", "if lo >= hi:", to="return",
      why=ARG + ": the host ops pick a gfn inside the slot, so the clamped range is never empty"),
    U("spec/list_head.py", "ListHead.list_add", "if entry in self._next:", to="raise ValueError", why=BUG),
    U("spec/list_head.py", "ListHead.reverse", "while e is not None:",
      why="no caller: spec/ and impl/ walk the list backwards with last/prev_of "
          "(kvm_zap_obsolete_pages), never with reverse()"),
    U("spec/memory.py", "KernelMemory.spte_write", "if sptep & 7 or sptep == 0:", to="raise KvmBug", why=BUG),
    U("spec/memory.py", "KernelMemory.desc", "if d is None:", to="raise KvmBug",
      why=BUG + " (a wild pte_list_desc pointer)"),
    U("spec/memory.py", "KernelMemory.desc", "if d.freed:", to="raise UseAfterFree",
      why=BUG + " (use after free)"),
    U("spec/memory.py", "KernelMemory.slot", "if desc.freed:", to="raise UseAfterFree",
      why=BUG + " (use after free)"),
    # -- spec/mmu.py --------------------------------------------------------------------
    U("spec/mmu.py", "guest_set_paging_mode", 'if hasattr(guest, "kvm_set_cr3"):', why=NO_MODE_SWITCH),
    U("spec/mmu.py", "ShadowMmu.page_header", "if sp is None:", to="raise KvmBug", why=BUG),
    # fast_page_fault (3.10) and the paging-off vCPU's fault
    U("spec/mmu.py", "ShadowMmu.fast_page_fault", "if vcpu.root is None and not vcpu.pae_root:",
      to="return False",
      why="every fault comes right after vcpu_enter_guest(), whose kvm_mmu_load() gives a TDP or "
          "paging-off vCPU its root(s); nothing between them unloads it"),
    U("spec/mmu.py", "ShadowMmu.fast_page_fault", "if not is_shadow_present_pte(spte):", to="return True",
      why="the fault's error code is hw_error_code()'s, which has PFERR_PRESENT only when the same "
          "shadow walk ended at a present spte, so every entry the fast path walks is present; "
          + NO_CONCURRENCY),
    U("spec/mmu.py", "ShadowMmu.fast_pf_fix_direct_spte", "if not sp.role.direct:", to="raise KvmBug",
      why=BUG + ": WARN_ON(!sp->role.direct); the fast path walks only a TDP or paging-off vCPU's "
                "roots, whose pages are all direct"),
    U("spec/mmu.py", "ShadowMmu.fast_pf_fix_direct_spte", "if self.mem.spte_read(sptep) == spte:",
      to="return True", why="the lost cmpxchg64: " + NO_CONCURRENCY),
    U("spec/mmu.py", "ShadowMmu.nonpaging_page_fault", "if error_code is None:",
      to="error_code = self.hw_error_code(",
      why="its one caller, shadow_access(), passes the hardware's error code"),
    U("spec/mmu.py", "ShadowMmu.kvm_mmu_free_page", "if self.mem.spte_read(sp.sptep(i)):",
      to="raise KvmBug", why=BUG + ": prepare_zap empties a page before it is freed"),
    U("spec/mmu.py", "ShadowMmu.rmap_of_spte", "if slot is None:", to="raise KvmBug",
      why=BUG + ": a memslot change zaps every spte before the slot goes"),
    U("spec/mmu.py", "ShadowMmu.account_shadowed", "if slot is not None:", to="self.indirect_shadow_pages",
      why="every guest page table the machines link is in slot 0, never deleted or moved (and "
          "FNAME(walk_addr) cannot read a table in no memslot, so no shadow page is made for one)"),
    U("spec/mmu.py", "ShadowMmu.unaccount_shadowed", "if slot is not None:",
      to="self.indirect_shadow_pages",
      why="every guest page table the machines link is in slot 0, never deleted or moved"),
    U("spec/mmu.py", "ShadowMmu.rmap_write_protect", "if slot is None:", to="return False",
      why="it write-protects a guest page table being shadowed: always in slot 0"),
    U("spec/mmu.py", "ShadowMmu.guest_root_level", "if vcpu.kind == TDP:", to="return PT64_ROOT_LEVEL",
      why="callers ask for the guest root level of shadow vCPUs only"),
    U("spec/mmu.py", "ShadowMmu.tdp_page_fault", "if got is None:", to="return MMIO",
      why="tdp_touch returns MMIO for a gfn in no memslot (or an invalid one) before it faults"),
    U("spec/mmu.py", "ShadowMmu.__direct_map", "if lvl < PT_PAGE_TABLE_LEVEL:", to="raise KvmBug", why=BUG),
    U("spec/mmu.py", "ShadowMmu.fetch", "if path_sp is None:", to="raise KvmBug",
      why=BUG + ": a shadow vCPU runs only with its root(s) loaded"),
    U("spec/mmu.py", "ShadowMmu.fetch", "if self.gpte_changed(vcpu, gw, lvl - 1):", to="return False",
      why="gpte_changed is False in the model: the model is single-threaded, no guest entry changes "
          "inside a fault"),
    U("spec/mmu.py", "ShadowMmu.kvm_mmu_pte_write", "if not self.indirect_shadow_pages:", to="return",
      why="an emulated store is one to a write-protected gfn, which exists only while an indirect page "
          "shadows it (a VM is all TDP or all shadow)"),
    U("spec/mmu.py", "ShadowMmu.guest_access", "for _ in range(MAX_FAULT_RETRIES):", to="raise Livelock",
      why=LIVELOCK),
    U("spec/mmu.py", "ShadowMmu.tdp_touch", "for _ in range(MAX_FAULT_RETRIES):", to="raise Livelock",
      why=LIVELOCK),
    U("spec/mmu.py", "ShadowMmu.tdp_touch", 'if r == "emulate":', to="return OK, gfn, True",
      why="a TDP VM has no indirect shadow pages, so no gfn is write-protected and __direct_map never "
          "asks to emulate"),
    U("spec/mmu.py", "ShadowMmu.host_page_check", "if pfn != want:", to="raise WrongHostPage", why=ORACLE),
    U("spec/mmu.py", "ShadowMmu.kvm_arch_flush_shadow_memslot", "while self.zap_all_resume():",
      why="no op calls the one-shot form: the memslot ops run kvm_memslot_change_begin, zap_resume and "
          "kvm_memslot_change_commit"),
    # -- spec/mmu_audit.py: the auditor's failure paths ------------------------------------
    U("spec/mmu_audit.py", "_present", "if sp is None:", to="raise KvmBug", why=ORACLE),
    U("spec/mmu_audit.py", "audit", "if probe_cpu_of is not None:", to="return out",
      why="the worlds always audit with the architectural probe"),
    U("spec/mmu_audit.py", "audit_rmap", "if slot is None:", to="return [", why=ORACLE),
    U("spec/mmu_audit.py", "audit_rmap", "if want != have:", to="sorted(set(want) ^ set(have)", why=ORACLE),
    U("spec/mmu_audit.py", "audit_parent_ptes", "if child not in pointing:", to="return [", why=ORACLE),
    U("spec/mmu_audit.py", "audit_parent_ptes", "if have != pointing[sp.spt]:", to="return [", why=ORACLE),
    U("spec/mmu_audit.py", "audit_host_pages_and_write_protect", "if slot is None:", to="continue",
      why=ORACLE),
    U("spec/mmu_audit.py", "audit_host_pages_and_write_protect", "if spte_to_pfn(spte) != want:",
      to="out.append(", why=ORACLE),
    U("spec/mmu_audit.py", "audit_host_pages_and_write_protect", "if hit is not None:", to="out.append(",
      why=ORACLE),
    U("spec/mmu_audit.py", "audit_host_pages_and_write_protect", "if slot.readonly or not",
      to="out.append(", why=ORACLE),
    U("spec/mmu_audit.py", "audit_host_pages_and_write_protect", "if slot.dirty_log and gfn not in",
      to="out.append(", why=ORACLE),
    U("spec/mmu_audit.py", "audit_host_pages_and_write_protect", "if len(out) >= LIMIT:", to="break",
      why=ORACLE),
    U("spec/mmu_audit.py", "audit_lpage_counts", "if have != +want[lvl]:", to="return [", why=ORACLE),
    U("spec/mmu_audit.py", "audit_roots", "if mmu.pages.get(sp.spt) is not sp:", to="return [", why=ORACLE),
    U("spec/mmu_audit.py", "audit_roots", "if sp.role.invalid or (epochs", to="what = ", why=ORACLE),
    U("spec/mmu_audit.py", "audit_generation", "if not mmu.is_obsolete_sp(sp) and sp.epoch", to="return [",
      why=ORACLE),
    U("spec/mmu_audit.py", "_reachable_leaves", "elif vcpu.pae_root:", to="stack = [",
      why="vcpu.pae_root is a 4-entry list, never empty, so the elif is always true (its entries may "
          "all be None: the loop then adds no root)"),
    U("spec/mmu_audit.py", "audit_cache", "if bad:", to="return bad", why=ORACLE),
    U("spec/mmu_audit.py", "audit_cache", "if not res.ok:", to="return [", why=ORACLE),
    U("spec/mmu_audit.py", "audit_cache", "if got != res.gfn:", to="return [", why=ORACLE),
    U("spec/mmu_audit.py", "audit_cache", "if rights & ~guest:", to="return [", why=ORACLE),
    U("spec/mmu_audit.py", "audit_cache", "if unaccessed:", to="return [", why=ORACLE),
    U("spec/mmu_audit.py", "audit_cache", "if spte & PT_WRITABLE_MASK and not res.path", to="return [",
      why=ORACLE),
    U("spec/mmu_audit.py", "_audit_tdp_identity", "if got != addr >> PAGE_SHIFT:", to="return [", why=ORACLE),
    # -- spec/prefetch.py ----------------------------------------------------------------
    U("spec/prefetch.py", "expected_prefetch", "if sp.role.level != PT_PAGE_TABLE_LEVEL:", to="return {}",
      why="the world asks for the expected prefetch of level-1 leaves only"),
    U("spec/prefetch.py", "expected_prefetch", 'if vcpu.kind == "tdp" and not host_has_accessed_bit:',
      to="return {}", why=EPT_NO_AD),
    U("spec/prefetch.py", "expected_prefetch", "if invalid_gpte_rule not in INVALID_GPTE_RULES:",
      to="raise ValueError", why=ARG),
    U("spec/prefetch.py", "_indirect", "if invalid_gpte_rule == INVALID_GPTE_STOP:", to="return out",
      why="the 3.8 stop rule is a form only prefetch:stop-at-invalid-gpte-3.8 selects; the plain "
          "campaigns run the 2010 rule"),
    U("spec/prefetch.py", "describe_slots", "for addr in sorted(set(expected) | set(got)):", why=ORACLE),
    U("spec/prefetch.py", "describe_slots", "if want == have:", why=ORACLE),
    # -- spec/pte_list.py ----------------------------------------------------------------
    U("spec/pte_list.py", "PteListOps.pte_list_desc_remove_entry", "if desc.freed:",
      to="self.mem.desc(desc.addr)", why=BUG + " (use after free)"),
    U("spec/pte_list.py", "PteListOps.pte_list_remove", "if head == 0:", to="raise KvmBug",
      why=BUG + " (pte_list_remove 0->BUG)"),
    U("spec/pte_list.py", "PteListOps.pte_list_remove", "if head != sptep:", to="raise KvmBug",
      why=BUG + " (pte_list_remove 1->BUG)"),
    U("spec/pte_list.py", "PteListOps.pte_list_remove", "while desc is not None:", to="raise KvmBug",
      why=BUG + " (pte_list_remove many->BUG)"),
    U("spec/pte_list.py", "pte_list_decode", "if addr in seen:", to="raise KvmBug",
      why=BUG + " (a desc chain that loops)"),
    U("spec/pte_list.py", "pte_list_violations", "if desc_is_empty(slots) and not any(slots):",
      to="out.append(", why=ORACLE),
    U("spec/pte_list.py", "pte_list_violations", "elif not desc_is_packed(slots):", to="out.append(",
      why=ORACLE),
    U("spec/pte_list.py", "pte_list_violations", "if len(set(entries)) != len(entries):", to="out.append(",
      why=ORACLE),
    U("spec/pte_list.py", "pte_list_tag_violations", "if head & 7:", to="out.append(", why=ORACLE),
    U("spec/pte_list.py", "pte_list_tag_violations", "if head in mem.descs:", to="out.append(", why=ORACLE),
    # the rmap family's pte_list structure checkers: the mmu world checks its rmaps with the auditor
    F("spec/pte_list.py", "desc_is_packed", families=WORLD, why=RMAP_ORACLE),
    F("spec/pte_list.py", "pte_list_violations", families=WORLD, why=RMAP_ORACLE),
    F("spec/pte_list.py", "pte_list_tag_violations", families=WORLD, why=RMAP_ORACLE),
    F("spec/pte_list.py", "pte_list_slot_violations", families=WORLD, why=RMAP_ORACLE),
    # -- spec/nonpaging.py --------------------------------------------------------------
    U("spec/nonpaging.py", "NonpagingCpu.walk", "if kind not in ACCESS_KINDS:", to="raise ValueError",
      why=ARG),
    U("spec/nonpaging.py", "NonpagingCpu.walk", "if addr & ~LINEAR_MASK:", to="raise ValueError",
      why=ARG + " (a paging-off vCPU's accesses are drawn below 4GB)"),
    # -- spec/termination.py ---------------------------------------------------------------
    U("spec/termination.py", "LoopBound.step", "if self.n > self.limit:", to="raise Livelock", why=LIVELOCK),
    # -- spec/tlb.py ---------------------------------------------------------------------
    U("spec/tlb.py", "Tlb.flush_gfns", "for key in [k for k, e in self.entries.items()",
      why="the ranged flush of 5.x-6.x kernels: only the flush:ranged-* variants call it "
          "(impl/variants/flush.py); 3.10 flushes whole TLBs"),
    # -- spec/unsync.py ------------------------------------------------------------------
    U("spec/unsync.py", "Unsync.kvm_sync_page_common", "if sp.role.cr4_pae != int(self.guest_is_pae(vcpu)):",
      to="self.kvm_mmu_prepare_zap_page(sp, invalid_list)",
      why="its callers sync a page kvm_mmu_get_page() matched by the vCPU's role "
          "(kvm_sync_page_transient) or one below the vCPU's current roots (mmu_sync_children), "
          "and every page there was made with the vCPU's role: a switch of CR4.PAE resets the "
          "context and drops the roots first.  (kvm_sync_pages, which syncs every page of a gfn, "
          "can meet another vCPU's width: not listed)"),
    # -- spec/walk.py --------------------------------------------------------------------
    U("spec/walk.py", "paging_mode", "if not cr4_pae:", to="raise ValueError", why=ARG),
    U("spec/walk.py", "pdpte_reserved", "if rule == RSVD_KVM_3_10:", to="mask &=", why=RULE_3_10),
    U("spec/walk.py", "reserved_mask", "if rule == RSVD_KVM_3_10 and mode == PAGING_64", to="mask |=",
      why=RULE_3_10),
    U("spec/walk.py", "reserved_mask", "if not gbpages and rule == RSVD_INTEL", to="mask |=",
      families=MMU_MACHINE,
      why="the mmu world's vCPUs always have 1GB pages (gbpages is a walk family parameter)"),
    U("spec/walk.py", "ArchCpu.__init__", "if not 36 <= maxphyaddr <= PT64_PHYS_BITS:", to="raise ValueError",
      why=ARG),
    U("spec/walk.py", "ArchCpu.__init__", "if mode not in PAGING_MODES:", to="raise ValueError", why=ARG),
    U("spec/walk.py", "ArchCpu.__init__", "if rsvd_rule not in RSVD_RULES:", to="raise ValueError", why=ARG),
    U("spec/walk.py", "ArchCpu.__init__", "if self.mov_to_cr3(cr3) == GP:", to="raise ValueError",
      why=ARG + " (vCPUs are created with a legal CR3)"),
    U("spec/walk.py", "ArchCpu.mov_to_cr3", "if cr3 < 0 or cr3 >> PT32_VADDR_BITS", to="raise ValueError",
      why=ARG),
    U("spec/walk.py", "ArchCpu.set_paging_mode", "if mode not in PAGING_MODES:", to="raise ValueError",
      why=ARG),
    U("spec/walk.py", "ArchCpu.set_paging_mode", "if mode not in PAGING_MODES:", to="if mode == PAGING_PAE:",
      families=WORLD, why=NO_MODE_SWITCH),
    U("spec/walk.py", "ArchCpu.set_paging_mode", "if mode == PAGING_PAE:", families=WORLD,
      why=NO_MODE_SWITCH),
    U("spec/walk.py", "ArchCpu.set_paging_mode", "if pdptes == GP:", families=WORLD,
      why=NO_MODE_SWITCH),
    U("spec/walk.py", "ArchCpu.set_control", 'elif name == "cr4.pse":', to="raise ValueError", why=ARG),
    U("spec/walk.py", "ArchCpu.walk", "if kind not in ACCESS_KINDS:", to="raise ValueError", why=ARG),
    U("spec/walk.py", "ArchCpu.walk", "for s in STRUCTURES[mode]:", to="rights = ACC_ALL",
      why="the last structure of every paging mode is a page (entry_kind of a level-1 entry): the "
          "walk leaves the loop by its break or a fault, never by running out of structures"),

    # == every family: failure paths and arguments found since 640334b ==========================
    U("spec/mmu.py", "ShadowMmu.tlb_hit_audit", "if freed:", to="raise HostDemand", why=ORACLE),
    U("spec/mmu.py", "ShadowMmu.spte_write_audit", "if slot is not None and slot.dirty_log", to="raise HostDemand",
      why=ORACLE),
    U("spec/mmu.py", "ShadowMmu.spte_write_audit", "if self.gfn_write_protected(gfn):", to="raise HostDemand",
      why=ORACLE),
    U("spec/mmu_audit.py", "audit_unsync", "if sp.unsync and (sp.role.level != 1 or sp.role.direct):",
      to="return [", why=ORACLE),
    U("spec/mmu_audit.py", "audit_unsync", "if sp.unsync_children != len(sp.unsync_child_bitmap):",
      to="return [", why=ORACLE),
    U("spec/mmu_audit.py", "audit_unsync", "if child is not None and (child.unsync or child.unsync_children)",
      to="what = ", why=ORACLE),
    U("spec/mmu.py", "ShadowMmu.tdp_page_fault", "if error_code is None:", to="if self.fast_page_fault(",
      why="its one caller, tdp_touch(), passes no error code: the fault's is the hardware's "
          "(hw_error_code()), as an EPT violation reports it"),
    U("spec/prefetch.py", "expected_prefetch", "if invalid_gpte_rule is None:", to="if invalid_gpte_rule not in",
      why=ARG + " (diff/mmu.py's prefetch probe passes none: the MMU's own PREFETCH_INVALID_GPTE_RULE)"),
    U("spec/rmap.py", "spte_rights_taken", "if not is_shadow_present_pte(old):", to="return False",
      why="its one caller, mmu_spte_update(), returns before it for a non-present old spte"),
    U("spec/rmap.py", "spte_rights_taken", "if not is_shadow_present_pte(new) or (old ^ new)", to="return True",
      why="mmu_spte_update() (its one caller) only changes bits of a present spte: a pfn change drops "
          "the spte first (mmu_set_spte, kvm_set_pte_rmapp) and a drop goes through "
          "mmu_spte_clear_track_bits()"),
    U("spec/unsync.py", "Unsync.clear_unsync_child_bit", "if index in p.unsync_child_bitmap:", to="exit",
      why=BUG + ": 3.10's clear_unsync_child_bit() clears and decrements unconditionally (WARN_ON below "
                "0); its callers pass a bit they found set: mmu_unsync_walk() iterates the set bits, and "
                "mmu_pages_clear_parents() the path that walk just took, bottom-up, stopping at the first "
                "page that keeps an unsync child (so no other path of the same round has cleared it)"),
    U("spec/mmu.py", "ShadowMmu.fast_page_fault", "if is_writable_pte(spte):", to="return True",
      why="the fault's error code comes from a walk of the same tables just done (hw_translate, then "
          "hw_error_code): a write fault there means the leaf lacked W, and the model's TLB drops an "
          "entry that does not allow an access and walks again (tlb_access) rather than faulting on "
          "it; 3.10 meets a writable spte here when another CPU fixed it first, or a TLB flushed "
          "lazily faults: " + NO_CONCURRENCY),
    U("spec/rmap.py", "RmapBase.__init__", "if spte_update is not None:", to="self.shadow_accessed_mask =",
      families=WORLD, why="the mmu world's rmaps always get the MMU's own mmu_spte_update()"),
    U("spec/rmap.py", "RmapBase.mmu_spte_update", "if self.shadow_accessed_mask:",
      to="return spte_rights_taken(old, new)", families=WORLD, why=EPT_NO_AD),
    # == the live families =====================================================================
    # -- paging modes: long mode only --------------------------------------------------------------
    U("impl/walk.py", "reset_rsvds_bits_mask", "if level == PT32_ROOT_LEVEL:", to="m[0][1] = m[0][0] = 0",
      families=LIVE_ALL, why=LONG_MODE_ONLY),
    U("impl/walk.py", "reset_rsvds_bits_mask", "elif level == PT32E_ROOT_LEVEL:", to="high = rsvd_bits(",
      families=LIVE_ALL, why=LONG_MODE_ONLY),
    U("impl/walk.py", "PagingTmpl.PT_INDEX", "if self.PTTYPE == 64:", to="return PT32_INDEX(",
      families=LIVE_ALL, why=LONG_MODE_ONLY),
    U("impl/walk.py", "PagingTmpl.leaf_gfn", "if self.PTTYPE == 32 and level == PT_DIRECTORY_LEVEL:",
      to="gfn = gfn + self.pse36_gfn_delta", families=LIVE_ALL, why=LONG_MODE_ONLY),
    U("impl/walk.py", "PagingTmpl.gpte_access", "if self.PTTYPE == 64:", to="return access",
      families=LIVE_ALL, why=LONG_MODE_ONLY),
    U("impl/walk.py", "PagingTmpl.is_last_gpte", "if level == PT_PDPE_LEVEL and large", to="return True",
      families=LIVE_ALL, why=HOST_NO_GBPAGES),
    U("impl/walk.py", "PagingTmpl.walk_addr", "if self.PTTYPE == 64 and walker.level == PT32E_ROOT_LEVEL:",
      to="pte = mmu.pdptrs[", families=LIVE_ALL, why=LONG_MODE_ONLY),
    U("impl/walk.py", "PagingTmpl.walk_addr", "if not is_present_gpte(pte):", to="walker.level -= 1",
      families=LIVE_ALL, why=LONG_MODE_ONLY + " (a PDPTE register)"),
    U("impl/walk.py", "KvmVcpu.kvm_mmu_reset_context", "if self.efer_lma:", to="elif self.cr4_pae:",
      families=LIVE_ALL, why=LONG_MODE_ONLY),
    U("impl/walk.py", "KvmVcpu.kvm_mmu_reset_context", "elif self.cr4_pae:", families=LIVE_ALL,
      why=LONG_MODE_ONLY),
    F("impl/walk.py", "KvmVcpu.load_pdptrs", families=LIVE_ALL, why=LONG_MODE_ONLY),
    U("impl/walk.py", "KvmVcpu.kvm_set_cr3", "if self.is_pae_paging() and not self.load_pdptrs(cr3):",
      to="return 1", families=LIVE_ALL, why=LONG_MODE_ONLY),
    U("impl/walk.py", "KvmVcpu.kvm_set_cr4_pse", "if self.is_pae_paging() and pse != self.cr4_pse",
      to="return 1", families=LIVE_ALL, why=LONG_MODE_ONLY),
    F("impl/walk.py", "KvmVcpu.set_paging_mode", families=("live-walk",), why=WALK_NO_SWITCH),
    F("spec/walk.py", "ArchCpu.set_paging_mode", families=("live-walk",), why=WALK_NO_SWITCH),
    U("spec/guest_memory.py", "GuestMemory.read", "if size == 4:", to="return lo", families=LIVE_ALL,
      why=EIGHT_BYTES),
    U("spec/consts.py", "rsvd_bits", "if s > e:", to="return 0", families=LIVE_ALL, why=HOST_MAXPHY),
    U("spec/guest_memory.py", "GuestMemory.write", "if size == 8:", to="self.log.append(", families=LIVE_ALL,
      why=EIGHT_BYTES),
    U("spec/tlb.py", "MemoryAt.read", "if size == 8:", to="return value", families=LIVE, why=EIGHT_BYTES),
    U("spec/mmu.py", "ShadowMmu.kvm_mmu_get_page", "self.guest_root_level(vcpu) <= PT32_ROOT_LEVEL:",
      to="role = role._replace(quadrant", families=LIVE, why=LONG_MODE_ONLY),
    U("spec/mmu.py", "ShadowMmu.mmu_alloc_roots", "if level == PT64_ROOT_LEVEL:", to="vcpu.pae_root = [None] * 4",
      families=LIVE, why=LONG_MODE_ONLY),
    U("spec/mmu.py", "ShadowMmu.mmu_alloc_roots", "for i in range(4):", to="exit", families=LIVE,
      why=LONG_MODE_ONLY),
    U("spec/mmu.py", "ShadowMmu.mmu_alloc_roots", "for i in range(4):", to="if level == PT32E_ROOT_LEVEL:",
      families=LIVE, why=LONG_MODE_ONLY),
    U("spec/mmu.py", "ShadowMmu.mmu_alloc_roots", "if level == PT32E_ROOT_LEVEL:", families=LIVE,
      why=LONG_MODE_ONLY),
    U("spec/mmu.py", "ShadowMmu.mmu_alloc_roots", "if not pdptr & PT_PRESENT_MASK:", families=LIVE,
      why=LONG_MODE_ONLY),
    U("spec/mmu.py", "ShadowMmu.kvm_set_cr3", "if not guest_mov_to_cr3(g, cr3):", to="return False",
      families=LIVE, why=LONG_MODE_ONLY + " (a MOV to CR3 faults only on a PAE guest's bad PDPTEs)"),
    U("spec/mmu.py", "ShadowMmu.pdptrs_changed", "if guest.efer_lma or not guest.cr4_pae:", to="cached = ",
      families=LIVE, why=LONG_MODE_ONLY),
    U("spec/mmu.py", "ShadowMmu._reset_context", "if ok:", to="return ok", families=LIVE,
      why=LONG_MODE_ONLY + " (a control change faults only on a PAE guest's bad PDPTEs)"),
    U("spec/mmu.py", "ShadowMmu.shadow_walk", "if sp is None:", to="level = PT32_ROOT_LEVEL", families=LIVE,
      why=LONG_MODE_ONLY + "; " + NO_DIRECT + " (pae_root is a PAE guest's or a paging-off vCPU's)"),
    U("spec/mmu.py", "ShadowMmu.hw_translate", "if not path:", to="return None", families=LIVE,
      why="a walk is empty only at a missing pae_root entry (a PAE guest's or a paging-off vCPU's): "
          + LONG_MODE_ONLY),
    U("spec/mmu.py", "ShadowMmu.guest_walk", "if e.gpa is not None:", to="gw.ptes[e.level] = e.value",
      families=LIVE, why=LONG_MODE_ONLY + " (a PDPTE register has no gpa)"),
    U("spec/mmu.py", "ShadowMmu.guest_page_gfns", "if self.guest_root_level(vcpu) == PT32_ROOT_LEVEL:",
      to="return 1 << (10", families=LIVE, why=LONG_MODE_ONLY),
    U("spec/mmu.py", "ShadowMmu.get_written_sptes", "if not sp.role.cr4_pae and quadrant != sp.role.quadrant:",
      to="return []", families=LIVE, why=LONG_MODE_ONLY),
    U("spec/mmu_audit.py", "_reachable_leaves", "if vcpu.root is not None:", to="elif vcpu.pae_root:",
      families=LIVE, why=LONG_MODE_ONLY + "; " + NO_DIRECT + " (pae_root)"),
    U("spec/mmu_audit.py", "_reachable_leaves", "elif vcpu.pae_root:", to="roots += [", families=LIVE,
      why=LONG_MODE_ONLY + "; " + NO_DIRECT + " (pae_root)"),
    U("spec/unsync.py", "Unsync.level1_sp_gpa", "if not sp.role.cr4_pae:", to="base +=", families=LIVE,
      why=LONG_MODE_ONLY),
    U("spec/written_sptes.py", "written_spte_slots", "if gpte_is_4_bytes:", to="page_offset = page_offset << 1",
      families=LIVE, why=LONG_MODE_ONLY),
    U("spec/written_sptes.py", "written_spte_slots", "if level == PT32_ROOT_LEVEL:", families=LIVE,
      why=LONG_MODE_ONLY),
    U("spec/walk.py", "paging_mode", "if efer_lma:", to="return PAGING_PAE if cr4_pae", families=LIVE_ALL,
      why=LONG_MODE_ONLY),
    U("spec/walk.py", "linear_address", "if mode != PAGING_64:", to="return addr & ((1 << PT32_VADDR_BITS)",
      families=LIVE_ALL, why=LONG_MODE_ONLY),
    F("spec/walk.py", "pdpte_reserved", families=LIVE_ALL, why=LONG_MODE_ONLY),
    U("spec/walk.py", "reserved_mask", "if mode == PAGING_32:", to="return PT32_4MB_RSVD_MASK",
      families=LIVE_ALL, why=LONG_MODE_ONLY),
    U("spec/walk.py", "reserved_mask", "if not gbpages and rule == RSVD_INTEL", to="if rule == RSVD_KVM_3_10",
      families=LIVE_ALL, why=HOST_NO_GBPAGES),
    U("spec/walk.py", "frame_address", "if mode == PAGING_32:", to="return value & PT32_BASE_ADDR_MASK",
      families=LIVE_ALL, why=LONG_MODE_ONLY),
    U("spec/walk.py", "page_base", "if size == MB4:", to="high = ", families=LIVE_ALL, why=LONG_MODE_ONLY),
    F("spec/walk.py", "ArchCpu._read_pdptes", families=LIVE_ALL, why=LONG_MODE_ONLY),
    U("spec/walk.py", "ArchCpu.mov_to_cr3", "if self.mode == PAGING_PAE:", to="pdptes = self._read_pdptes",
      families=LIVE_ALL, why=LONG_MODE_ONLY),
    U("spec/walk.py", "ArchCpu.mov_to_cr3", "if pdptes == GP:", families=LIVE_ALL, why=LONG_MODE_ONLY),
    U("spec/walk.py", "ArchCpu.set_control", "if self.mode == PAGING_PAE and value != self.cr4_pse:",
      to="pdptes = self._read_pdptes", families=LIVE_ALL, why=LONG_MODE_ONLY),
    U("spec/walk.py", "ArchCpu.set_control", "if pdptes == GP:", families=LIVE_ALL, why=LONG_MODE_ONLY),
    U("spec/walk.py", "ArchCpu.walk", "if mode == PAGING_PAE:", to="pdpte = self.pdptes[", families=LIVE_ALL,
      why=LONG_MODE_ONLY),
    U("spec/walk.py", "ArchCpu.walk", "if not pdpte & PT_PRESENT_MASK:", families=LIVE_ALL, why=LONG_MODE_ONLY),
    U("spec/walk.py", "ArchCpu.walk", "elif mode == PAGING_32:", to="table = self.cr3 & PT32_BASE_ADDR_MASK",
      families=LIVE_ALL, why=LONG_MODE_ONLY),
    U("spec/walk.py", "ArchCpu.walk", "if e.gpa is None:", to="continue", families=LIVE_ALL,
      why=LONG_MODE_ONLY + " (a PDPTE register has no gpa)"),
    # -- no direct MMU: no TDP vCPU, no paging-off vCPU ----------------------------------------------
    F("spec/mmu.py", "ShadowMmu.tdp_page_fault", families=LIVE, why=NO_DIRECT),
    F("spec/mmu.py", "ShadowMmu.tdp_touch", families=LIVE, why=NO_DIRECT),
    F("spec/mmu.py", "ShadowMmu.tdp_access", families=LIVE, why=NO_DIRECT),
    F("spec/mmu.py", "ShadowMmu.guest_page_bits", families=LIVE, why=NO_DIRECT + " (tdp_access's)"),
    F("spec/mmu.py", "ShadowMmu.__direct_map", families=LIVE, why=NO_DIRECT),
    F("impl/mmu.py", "ShadowMmu.direct_pte_prefetch", families=LIVE, why=NO_DIRECT + " (__direct_map's)"),
    F("spec/mmu.py", "ShadowMmu.hw_error_code", families=LIVE,
      why=NO_DIRECT + " (its callers: tdp_page_fault and a paging-off vCPU's fault)"),
    F("spec/mmu.py", "ShadowMmu.fast_page_fault", families=LIVE, why=NO_DIRECT),
    F("spec/mmu.py", "ShadowMmu.fast_pf_fix_direct_spte", families=LIVE, why=NO_DIRECT),
    F("spec/mmu.py", "ShadowMmu.nonpaging_page_fault", families=LIVE, why=NO_DIRECT),
    F("spec/mmu.py", "ShadowMmu.nonpaging_map", families=LIVE, why=NO_DIRECT),
    F("spec/mmu_audit.py", "_audit_tdp_identity", families=LIVE, why=NO_DIRECT),
    U("spec/mmu.py", "ShadowMmu.base_role", "if vcpu.kind == TDP:", to="return KvmMmuPageRole(",
      families=LIVE, why=NO_DIRECT),
    U("spec/mmu.py", "ShadowMmu.mmu_alloc_roots", "if vcpu.kind == TDP:", to="sp = self.kvm_mmu_get_page(",
      families=LIVE, why=NO_DIRECT),
    U("spec/mmu.py", "ShadowMmu.mmu_alloc_roots", "if vcpu.kind == NONPAGING:", to="vcpu.pae_root = [None] * 4",
      families=LIVE, why=NO_DIRECT),
    U("spec/mmu.py", "ShadowMmu.mmu_alloc_roots", "for i in range(4):", to="sp = self.kvm_mmu_get_page(",
      families=LIVE, why=NO_DIRECT + " (a paging-off vCPU's four roots)"),
    U("spec/mmu.py", "ShadowMmu.mmu_alloc_roots", "for i in range(4):", to="return", families=LIVE,
      why=NO_DIRECT + " (a paging-off vCPU's four roots)"),
    U("spec/mmu.py", "ShadowMmu.kvm_set_cr3", "if vcpu.kind == SHADOW:", to="self.kvm_mmu_flush_tlb(vcpu)",
      families=LIVE, why=NO_DIRECT),
    U("spec/mmu.py", "ShadowMmu._reset_context", "if vcpu.kind == SHADOW:", to="self.kvm_mmu_flush_tlb(vcpu)",
      families=LIVE, why=NO_DIRECT),
    U("spec/mmu.py", "ShadowMmu.kvm_mmu_invlpg", "if vcpu.kind == SHADOW:", to="elif vcpu.kind == NONPAGING:",
      families=LIVE, why=NO_DIRECT),
    U("spec/mmu.py", "ShadowMmu.kvm_mmu_invlpg", "elif vcpu.kind == NONPAGING:", families=LIVE, why=NO_DIRECT),
    U("spec/mmu.py", "ShadowMmu.mmu_pte_write_new_pte", "if vcpu.kind == NONPAGING:", to="return",
      families=LIVE, why=NO_DIRECT),
    U("spec/mmu.py", "ShadowMmu.guest_access", "if out is None and vcpu.kind == TDP:", to="out = self.tdp_access(",
      families=LIVE, why=NO_DIRECT),
    U("spec/mmu.py", "ShadowMmu.shadow_access", "if vcpu.kind == NONPAGING:", to="status, info = self.nonpaging",
      families=LIVE, why=NO_DIRECT),
    U("spec/mmu_audit.py", "audit_cache", 'if vcpu.kind != "shadow":', to="bad = _audit_tdp_identity(",
      families=LIVE, why=NO_DIRECT),
    U("spec/mmu_audit.py", "audit_cache", "if bad:", to="continue", families=LIVE, why=NO_DIRECT),
    U("spec/unsync.py", "Unsync.kvm_mmu_sync_roots", 'if vcpu.kind != "shadow":', to="return", families=LIVE,
      why=NO_DIRECT),
    U("impl/zap.py", "GenerationZap.kvm_zap_obsolete_pages", "if not self.is_obsolete_sp(sp):", to="break",
      families=LIVE,
      why="the live machines run a memslot delete or move as KVM does, begin and commit back to back "
          "(the zap's lock-break phases are not run: diff/live.py NOT_RUN): no page is created during "
          "the walk, so it never meets a current one"),
    # -- the live family's models have no TLB -------------------------------------------------------
    U("spec/mmu.py", "ShadowMmu.guest_access", "elif out is None:", to="if out is None:", families=("live",),
      why=NO_TLB + " (out is a TLB hit's)"),
    U("spec/mmu.py", "ShadowMmu.tlb_access", "if e is None:", to="wp = ", families=("live",), why=NO_TLB),
    U("spec/mmu.py", "ShadowMmu.tlb_access", "if not e.allows(write, user, fetch, wp)", families=("live",),
      why=NO_TLB),
    F("spec/mmu.py", "ShadowMmu.tlb_hit_audit", families=("live",), why=NO_TLB),
    F("spec/tlb.py", "TlbEntry.allows", families=("live",), why=NO_TLB),
    F("spec/tlb.py", "Tlb.invalidate", families=("live",), why=NO_TLB),
    U("spec/tlb.py", "Tlb.lookup", "if not self.entries:", to="for level in (1, 2, 3):", families=("live",),
      why=NO_TLB),
    U("spec/tlb.py", "Tlb.lookup", "for level in (1, 2, 3):", families=("live",), why=NO_TLB),
    U("spec/tlb.py", "Tlb.lookup", "if e is not None:", families=("live",), why=NO_TLB),
    U("spec/tlb.py", "Tlb.fill", "if not self.capacity:", to="key = ", families=("live",), why=NO_TLB),
    U("spec/tlb.py", "Tlb.fill", "while len(self.entries) >= self.capacity:", families=("live",), why=NO_TLB),
    U("spec/tlb.py", "Tlb.flush", "if self.entries:", to="self.entries.clear()", families=("live",), why=NO_TLB),
    U("spec/tlb.py", "Tlb.evict", "if self.entries:", to="key = ", families=("live",), why=NO_TLB),
)
