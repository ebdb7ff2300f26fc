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

Written against commit 640334b (mmuspec bench coverage --budget 60, the
unreached list read branch by branch).  Whether a branch is unreachable is a
reading of the code, not a proof.
"""

from .branch_coverage import Unreachable as U

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
MMU_MACHINE = ("mmu", "zap", "flush", "prefetch", "unsync", "fastpf")
NO_CONCURRENCY = ("the model runs nothing between two steps of a kernel function (no other CPU, no "
                  "preemption): 3.10's lockless fast path races with a zap or another fault on "
                  "another CPU, which the model does not run")
EPT_NO_AD = ("the mmu world's VM always has host accessed bits (shadow_accessed_mask is a class constant): "
             "no op models EPT without A/D bits (the rmap family's vm_setup does; the mmu world's could)")

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
      families=MMU_MACHINE, why=EPT_NO_AD),
    U("impl/rmap.py", "Rmap.kvm_test_age_rmapp", "if not self.shadow_accessed_mask:", to="return",
      families=MMU_MACHINE, why=EPT_NO_AD),
    U("spec/rmap.py", "SpecRmap.kvm_age_rmapp", "if not self.shadow_accessed_mask:", to="return",
      families=MMU_MACHINE, why=EPT_NO_AD),
    U("spec/rmap.py", "SpecRmap.kvm_test_age_rmapp", "if not self.shadow_accessed_mask:", to="return",
      families=MMU_MACHINE, why=EPT_NO_AD),
    U("impl/rmap.py", "Rmap.kvm_set_pte_rmapp", "if host_writable:", to="self.drop_spte(",
      families=MMU_MACHINE, why=HOST_RO),
    U("spec/rmap.py", "SpecRmap.kvm_set_pte_rmapp", "if host_writable:", to="self.drop_spte(",
      families=MMU_MACHINE, why=HOST_RO),
    U("spec/rmap.py", "RmapBase.mmu_spte_clear_track_bits", "if not is_shadow_present_pte(old):",
      to="return False", families=("rmap",),
      why="the rmap machine drops only sptes its rmaps hold, and they are all present"),
    U("spec/rmap.py", "RmapBase.drop_spte", "if self.mmu_spte_clear_track_bits(sptep):", to="exit",
      families=("rmap",), why="the rmap machine drops only present sptes (see mmu_spte_clear_track_bits)"),
    U("spec/rmap.py", "RmapBase.pte_list_add_count", "for d in descs:", families=MMU_MACHINE,
      why=RMAP_ORACLE),
    U("spec/rmap.py", "RmapBase.pte_list_add_count", "if d.sptes[-1] and d.more:", families=MMU_MACHINE,
      why=RMAP_ORACLE),
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
      families=MMU_MACHINE, why=NO_MODE_SWITCH),
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
    U("spec/pte_list.py", "desc_is_packed", "for p in range(1, len(slots)):", families=MMU_MACHINE,
      why=RMAP_ORACLE),
    U("spec/pte_list.py", "pte_list_violations", "for d in descs:", families=MMU_MACHINE, why=RMAP_ORACLE),
    U("spec/pte_list.py", "pte_list_violations", "if desc_is_empty(slots) and not any(slots):",
      to="elif not desc_is_packed", families=MMU_MACHINE, why=RMAP_ORACLE),
    U("spec/pte_list.py", "pte_list_violations", "elif not desc_is_packed(slots):", to="for d in descs:",
      families=MMU_MACHINE, why=RMAP_ORACLE),
    U("spec/pte_list.py", "pte_list_violations", "if len(set(entries)) != len(entries):", to="return out",
      families=MMU_MACHINE, why=RMAP_ORACLE),
    U("spec/pte_list.py", "pte_list_tag_violations", "if head and not pte_list_is_desc(head):",
      families=MMU_MACHINE, why=RMAP_ORACLE),
    U("spec/pte_list.py", "pte_list_tag_violations", "if head & 7:", to="if head in mem.descs:",
      families=MMU_MACHINE, why=RMAP_ORACLE),
    U("spec/pte_list.py", "pte_list_tag_violations", "if head in mem.descs:", to="return out",
      families=MMU_MACHINE, why=RMAP_ORACLE),
    U("spec/pte_list.py", "pte_list_slot_violations", "if not pte_list_is_desc(head):",
      families=MMU_MACHINE, why=RMAP_ORACLE),
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
      families=MMU_MACHINE, why=NO_MODE_SWITCH),
    U("spec/walk.py", "ArchCpu.set_paging_mode", "if mode == PAGING_PAE:", families=MMU_MACHINE,
      why=NO_MODE_SWITCH),
    U("spec/walk.py", "ArchCpu.set_paging_mode", "if pdptes == GP:", families=MMU_MACHINE,
      why=NO_MODE_SWITCH),
    U("spec/walk.py", "ArchCpu.set_control", 'elif name == "cr4.pse":', to="raise ValueError", why=ARG),
    U("spec/walk.py", "ArchCpu.walk", "if kind not in ACCESS_KINDS:", to="raise ValueError", why=ARG),
    U("spec/walk.py", "ArchCpu.walk", "for s in STRUCTURES[mode]:", to="rights = ACC_ALL",
      why="the last structure of every paging mode is a page (entry_kind of a level-1 entry): the "
          "walk leaves the loop by its break or a fault, never by running out of structures"),
)
