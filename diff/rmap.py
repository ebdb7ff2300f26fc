"""The rmap family: pte_list + rmap walkers, spec (rmap_next) vs impl (iterator).

Three sides take every op: the spec (spec.rmap.SpecRmap), the impl
(impl.rmap.Rmap or a variant of it) and `AbstractRmaps`, a plain model that
knows each rmap only as a multiset (a Counter) of spte pointers and each
walker only by its effect.  After every step:

  walker return      spec, impl and abstract return the same value;
                     pte_list_add's count is its layout's (see below)
  spte memory        the three spte memories are equal
  rmap contents      every rmap and parent_ptes list, decoded, equals the
                     abstract multiset (on spec and impl)
  pte_list structure tag bit vs form, packed descs, no empty desc, no spte
                     twice (spec.pte_list.pte_list_violations), no leaked desc
  host A/D tracking  the pfns reported accessed/dirty agree
  kernel BUG         one side raised KvmBug/UseAfterFree (or all did)

Decoding a list, its structure rules and pte_list_add's count depend on the
desc layout, so each side is asked through its own object (the seam on
spec.rmap.RmapBase: pte_list_decode, pte_list_violations, pte_list_add_count);
a variant with another layout (Linux 6.4's tail count) replaces them.
"""

from collections import Counter

from hypothesis import strategies as st
from hypothesis.stateful import initialize, rule

from impl.rmap import Rmap
from spec.consts import (
    PAGE_SHIFT, PT64_BASE_ADDR_MASK, PT_ACCESSED_MASK, PT_DIRTY_MASK,
    PT_PAGE_SIZE_MASK, PT_PRESENT_MASK, PT_USER_MASK, PT_WRITABLE_MASK,
    PTE_LIST_EXT_CHOICES, SPTE_HOST_WRITEABLE,
)
from spec.memory import SHADOW_PT_BASE, KernelMemory, RmapHead
from spec.rmap import SpecRmap

from .core import BadOp, DiffMachine, Discrepancy, World, agree, check_variant_invariants, run_sides
from .families import Family

SLOTS = (0, 1)
LEVELS = (1, 2, 3)
INDICES = (0, 1, 2)
SHADOW_PAGES = (0, 1, 2)  # shadow pages whose parent_ptes lists we exercise

WALKERS = ("rmap_write_protect", "kvm_unmap_rmapp", "kvm_set_pte_rmapp",
           "kvm_age_rmapp", "kvm_test_age_rmapp")

_BITS = (("P", PT_PRESENT_MASK), ("W", PT_WRITABLE_MASK), ("U", PT_USER_MASK),
         ("A", PT_ACCESSED_MASK), ("D", PT_DIRTY_MASK), ("PS", PT_PAGE_SIZE_MASK),
         ("HW", SPTE_HOST_WRITEABLE))


def show_spte(v):
    """An spte value in kernel terms: pfn and flag names."""
    if not v:
        return "0"
    flags = " ".join(n for n, m in _BITS if v & m)
    return f"{v:#x} (pfn {(v & PT64_BASE_ADDR_MASK) >> PAGE_SHIFT:#x} {flags})"


def rmap_name(slot, level, index):
    return f"rmap[slot {slot}, level {level}, index {index}]"


class AbstractRmaps:
    """The independent oracle: rmaps as multisets, walkers as set effects."""

    def __init__(self, accessed):
        self.accessed = accessed
        self.sptes = {}
        self.rmaps = {}
        self.parents = {sp: Counter() for sp in SHADOW_PAGES}
        self.spte_rmap = {}

    def rmap(self, key):
        return self.rmaps.setdefault(key, Counter())

    def add(self, key, sptep, value):
        self.sptes[sptep] = value
        self.rmap(key)[sptep] += 1
        self.spte_rmap[sptep] = key

    def drop(self, sptep):
        if self.sptes.get(sptep, 0):
            c = self.rmap(self.spte_rmap[sptep])
            c[sptep] -= 1
            if not c[sptep]:
                del c[sptep]
        self.sptes[sptep] = 0

    def rmap_write_protect(self, key, level):
        hit = False
        for s in list(self.rmap(key)):
            if self.sptes[s] & PT_WRITABLE_MASK:
                hit = True
                if level == 1:
                    self.sptes[s] &= ~PT_WRITABLE_MASK
                else:
                    self.drop(s)
        return hit

    def kvm_unmap_rmapp(self, key):
        members = list(self.rmap(key))
        for s in members:
            self.drop(s)
        return bool(members)

    def kvm_set_pte_rmapp(self, key, host_writable, new_pfn):
        members = list(self.rmap(key))
        for s in members:
            if host_writable:
                self.drop(s)
            else:
                keep = ~(PT64_BASE_ADDR_MASK | PT_WRITABLE_MASK | SPTE_HOST_WRITEABLE
                         | self.accessed)
                self.sptes[s] = (self.sptes[s] & keep) | (new_pfn << PAGE_SHIFT)
        return bool(members)

    def kvm_age_rmapp(self, key):
        if not self.accessed:
            return self.kvm_unmap_rmapp(key)
        young = False
        for s in self.rmap(key):
            if self.sptes[s] & PT_ACCESSED_MASK:
                young = True
                self.sptes[s] &= ~PT_ACCESSED_MASK
        return young

    def kvm_test_age_rmapp(self, key):
        return bool(self.accessed) and any(
            self.sptes[s] & PT_ACCESSED_MASK for s in self.rmap(key))

    def kvm_mmu_unlink_parents(self, sp):
        for s in self.parents[sp]:
            self.sptes[s] = 0
        self.parents[sp] = Counter()
        return None


class RmapSide:
    """One MMU (spec or impl) with its rmap heads and parent_ptes lists."""

    def __init__(self, cls, ext, accessed):
        self.mem = KernelMemory(ext)
        self.heads = {}
        self.parents = {sp: RmapHead() for sp in SHADOW_PAGES}
        self.spte_rmap = {}  # sptep -> RmapHead (page_header + gfn_to_rmap)
        self.mmu = cls(self.mem, self.spte_rmap.__getitem__, accessed)

    def head(self, key):
        return self.heads.setdefault(key, RmapHead())


class RmapWorld(World):
    """Spec, impl and abstract rmaps side by side (see the module docstring)."""

    def __init__(self, impl_cls, mode="default"):
        self.impl_cls = impl_cls
        self.sides = None
        self.abstract = None
        self.next_spte = SHADOW_PT_BASE

    # -- ops ----------------------------------------------------------------
    def apply(self, op):
        name, a = op
        if name == "kvm_mmu_setup":
            if a["pte_list_ext"] not in PTE_LIST_EXT_CHOICES:
                raise BadOp(f"PTE_LIST_EXT must be one of {PTE_LIST_EXT_CHOICES}")
            accessed = PT_ACCESSED_MASK if a["shadow_accessed"] else 0
            self.sides = {"spec": RmapSide(SpecRmap, a["pte_list_ext"], accessed),
                          "impl": RmapSide(self.impl_cls, a["pte_list_ext"], accessed)}
            self.abstract = AbstractRmaps(accessed)
            return
        if self.sides is None:
            raise BadOp("the first op must be kvm_mmu_setup")
        handler = getattr(self, "op_" + name, None)
        if handler is None:
            raise BadOp(f"unknown rmap op {name!r}")
        handler(**a)

    def _walk(self, what, walker, args_of, abstract_args):
        """Run one walker on spec and impl (args_of(side)) and on the abstract model."""
        outs = {}
        for side_name, side in self.sides.items():
            outs.update(run_sides({side_name: side.mmu}, walker, *args_of(side)))
        outs["abstract"] = ("ok", getattr(self.abstract, walker)(*abstract_args))
        return agree(outs, what)

    def op_rmap_add(self, slot, level, index, spte):
        key = (slot, level, index)
        sptep = self.next_spte
        self.next_spte += 8
        outs, want = {}, {}
        for side_name, side in self.sides.items():
            side.mem.spte_write(sptep, spte)
            head = side.head(key)
            side.spte_rmap[sptep] = head
            want[side_name] = side.mmu.pte_list_add_count(head.val)
            outs.update(run_sides({side_name: side.mmu}, "rmap_add", sptep, head))
        self._agree_on_count(outs, want, f"rmap_add({sptep:#x}, {rmap_name(*key)})")
        self.abstract.add(key, sptep, spte)

    def _agree_on_count(self, outs, want, what):
        """pte_list_add's count: each side's equals its layout's rule (the seam,
        RmapBase.pte_list_add_count); spec and impl agree on it unless the impl's
        layout counts by another rule (e.g. 6.4's exact tail_count + spte_count)."""
        for name, (kind, val) in outs.items():
            if kind == "ok" and val != want[name]:
                raise Discrepancy("walker return", (
                    f"{what}: {name} returned {val}, its layout's pte_list_add must return "
                    f"{want[name]}"))
        s, i = (type(self.sides[n].mmu).pte_list_add_count for n in ("spec", "impl"))
        if s is not i:
            outs = {n: (k, "its layout's count" if k == "ok" else v) for n, (k, v) in outs.items()}
        agree(outs, what)

    def op_drop_spte(self, spte):
        outs = run_sides({n: s.mmu for n, s in self.sides.items()}, "drop_spte", spte)
        agree(outs, f"drop_spte({spte:#x})")
        self.abstract.drop(spte)

    def op_spte_update(self, spte, set_bits, clear_bits):
        for side in self.sides.values():
            v = side.mem.spte_read(spte)
            side.mem.spte_write(spte, (v | set_bits) & ~clear_bits)
        v = self.abstract.sptes[spte]
        self.abstract.sptes[spte] = (v | set_bits) & ~clear_bits

    def op_link_parent(self, sp, spte):
        sptep = self.next_spte
        self.next_spte += 8
        outs, want = {}, {}
        for side_name, side in self.sides.items():
            side.mem.spte_write(sptep, spte)
            want[side_name] = side.mmu.pte_list_add_count(side.parents[sp].val)
            outs.update(run_sides({side_name: side.mmu}, "pte_list_add", sptep, side.parents[sp]))
        self._agree_on_count(outs, want, f"mmu_page_add_parent_pte(sp {sp}, {sptep:#x})")
        self.abstract.sptes[sptep] = spte
        self.abstract.parents[sp][sptep] += 1

    def op_kvm_mmu_unlink_parents(self, sp):
        self._walk(f"kvm_mmu_unlink_parents(sp {sp})", "kvm_mmu_unlink_parents",
                   lambda side: (side.parents[sp],), abstract_args=(sp,))

    def _key_walk(self, walker, slot, level, index, *extra):
        key = (slot, level, index)
        lvl = (level,) if walker == "rmap_write_protect" else ()
        self._walk(f"{walker}({rmap_name(*key)}{''.join(', %s' % (x,) for x in extra)})",
                   walker, lambda side: (side.head(key),) + lvl + extra,
                   abstract_args=(key,) + lvl + extra)

    def op_rmap_write_protect(self, slot, level, index):
        self._key_walk("rmap_write_protect", slot, level, index)

    def op_kvm_unmap_rmapp(self, slot, level, index):
        self._key_walk("kvm_unmap_rmapp", slot, level, index)

    def op_kvm_set_pte_rmapp(self, slot, level, index, host_writable, new_pfn):
        self._key_walk("kvm_set_pte_rmapp", slot, level, index, host_writable, new_pfn)

    def op_kvm_age_rmapp(self, slot, level, index):
        self._key_walk("kvm_age_rmapp", slot, level, index)

    def op_kvm_test_age_rmapp(self, slot, level, index):
        self._key_walk("kvm_test_age_rmapp", slot, level, index)

    # -- oracles ------------------------------------------------------------
    def check(self):
        if self.sides is None:
            return
        ab = self.abstract
        want_mem = {a: v for a, v in ab.sptes.items() if v}
        for name, side in self.sides.items():
            got = side.mem.present_sptes()
            if got != want_mem:
                a = min(x for x in set(got) | set(want_mem) if got.get(x) != want_mem.get(x))
                other = "impl" if name == "spec" else "spec"
                raise Discrepancy("spte memory", (
                    f"spte {a:#x}: {name} {show_spte(got.get(a, 0))}, abstract model "
                    f"{show_spte(want_mem.get(a, 0))}, {other} "
                    f"{show_spte(self.sides[other].mem.spte_read(a))}"))
        lists = [(rmap_name(*k), k, None) for k in ab.rmaps] + \
                [(f"sp {sp}->parent_ptes", None, sp) for sp in SHADOW_PAGES]
        for name, side in self.sides.items():
            reachable = set()
            for label, key, sp in lists:
                head = side.parents[sp] if key is None else side.head(key)
                bad = side.mmu.pte_list_violations(head.val)  # the side's own layout rules
                if bad:
                    raise Discrepancy("pte_list structure", f"{name} {label}: {bad[0]}")
                entries, descs = side.mmu.pte_list_decode(head.val)
                reachable.update(d.addr for d in descs)
                want = ab.parents[sp] if key is None else ab.rmaps[key]
                if Counter(entries) != want:
                    missing = sorted((want - Counter(entries)).elements())
                    extra = sorted((Counter(entries) - want).elements())
                    raise Discrepancy("rmap contents", (
                        f"{name} {label}: missing {[hex(s) for s in missing]}, "
                        f"unexpected {[hex(s) for s in extra]}"))
            leaked = [d.addr for d in side.mem.live_descs() if d.addr not in reachable]
            if leaked:
                raise Discrepancy("pte_list structure",
                                  f"{name}: pte_list_desc {leaked[0]:#x} leaked (live, unreachable)")
        s, i = self.sides["spec"].mmu, self.sides["impl"].mmu
        check_variant_invariants(i)
        if (s.pfn_accessed, s.pfn_dirty) != (i.pfn_accessed, i.pfn_dirty):
            raise Discrepancy("host A/D tracking", (
                f"kvm_set_pfn_accessed/dirty: spec {sorted(s.pfn_accessed)}/{sorted(s.pfn_dirty)}, "
                f"impl {sorted(i.pfn_accessed)}/{sorted(i.pfn_dirty)}"))

    @staticmethod
    def describe(op):
        name, a = op
        if name == "kvm_mmu_setup":
            return (f"kvm_mmu_setup(PTE_LIST_EXT={a['pte_list_ext']}, shadow_accessed_mask="
                    f"{'PT_ACCESSED_MASK' if a['shadow_accessed'] else '0 (EPT)'})")
        if name == "rmap_add":
            return (f"rmap_add(new spte = {show_spte(a['spte'])}, "
                    f"{rmap_name(a['slot'], a['level'], a['index'])})")
        if name == "link_parent":
            return f"mmu_page_add_parent_pte(sp {a['sp']}, new parent spte = {show_spte(a['spte'])})"
        if name == "drop_spte":
            return f"drop_spte({a['spte']:#x})"
        if name == "spte_update":
            bits = lambda m: "|".join(n for n, b in _BITS if m & b) or "0"
            return f"mmu_spte_update({a['spte']:#x}, set {bits(a['set_bits'])}, clear {bits(a['clear_bits'])})"
        if name == "kvm_mmu_unlink_parents":
            return f"kvm_mmu_unlink_parents(sp {a['sp']})"
        key = rmap_name(a["slot"], a["level"], a["index"])
        if name == "kvm_set_pte_rmapp":
            return (f"kvm_set_pte_rmapp({key}, host pte {'writable' if a['host_writable'] else 'read-only'}"
                    f", new pfn {a['new_pfn']:#x})")
        return f"{name}({key})"


# -- the state machine ----------------------------------------------------
keys = st.tuples(st.sampled_from(SLOTS), st.sampled_from(LEVELS), st.sampled_from(INDICES))
flag_bits = st.fixed_dictionaries({"w": st.booleans(), "a": st.booleans(), "d": st.booleans(),
                                   "hw": st.booleans()})


def make_spte(level, pfn, f):
    v = PT_PRESENT_MASK | PT_USER_MASK | (pfn << PAGE_SHIFT)
    v |= PT_WRITABLE_MASK if f["w"] else 0
    v |= PT_ACCESSED_MASK if f["a"] else 0
    v |= PT_DIRTY_MASK if f["d"] else 0
    v |= SPTE_HOST_WRITEABLE if f["hw"] else 0
    v |= PT_PAGE_SIZE_MASK if level > 1 else 0
    return v


class RmapMachine(DiffMachine):
    """Adds and drops sptes in several rmaps, flips their bits, runs every walker."""

    @initialize(ext=st.sampled_from(PTE_LIST_EXT_CHOICES), shadow_accessed=st.booleans())
    def setup(self, ext, shadow_accessed):
        self.emit(["kvm_mmu_setup", {"pte_list_ext": ext, "shadow_accessed": shadow_accessed}])

    def live(self):
        return sorted(s for s, v in self.world.abstract.sptes.items()
                      if v and s in self.world.abstract.spte_rmap)

    @rule(key=keys, pfn=st.integers(0, 15), f=flag_bits, n=st.integers(1, 9))
    def rmap_add(self, key, pfn, f, n):
        slot, level, index = key
        for k in range(n):
            self.emit(["rmap_add", {"slot": slot, "level": level, "index": index,
                                    "spte": make_spte(level, pfn + k, f)}])

    @rule(pick=st.integers(0, 1 << 16))
    def drop_spte(self, pick):
        live = self.live()
        if live:
            self.emit(["drop_spte", {"spte": live[pick % len(live)]}])

    @rule(pick=st.integers(0, 1 << 16),
          bits=st.sampled_from([PT_WRITABLE_MASK, PT_ACCESSED_MASK, PT_DIRTY_MASK]),
          on=st.booleans())
    def spte_update(self, pick, bits, on):
        live = self.live()
        if live:
            self.emit(["spte_update", {"spte": live[pick % len(live)],
                                       "set_bits": bits if on else 0,
                                       "clear_bits": 0 if on else bits}])

    @rule(sp=st.sampled_from(SHADOW_PAGES), n=st.integers(1, 6))
    def link_parent(self, sp, n):
        for _ in range(n):
            self.emit(["link_parent", {"sp": sp, "spte": PT_PRESENT_MASK | PT_WRITABLE_MASK
                                       | PT_USER_MASK | PT_ACCESSED_MASK | (0x100 + sp) << PAGE_SHIFT}])

    @rule(sp=st.sampled_from(SHADOW_PAGES))
    def kvm_mmu_unlink_parents(self, sp):
        self.emit(["kvm_mmu_unlink_parents", {"sp": sp}])

    @rule(key=keys, walker=st.sampled_from(["rmap_write_protect", "kvm_unmap_rmapp",
                                             "kvm_age_rmapp", "kvm_test_age_rmapp"]))
    def walk(self, key, walker):
        slot, level, index = key
        self.emit([walker, {"slot": slot, "level": level, "index": index}])

    @rule(key=keys, host_writable=st.booleans(), new_pfn=st.integers(0, 15))
    def kvm_set_pte_rmapp(self, key, host_writable, new_pfn):
        slot, level, index = key
        self.emit(["kvm_set_pte_rmapp", {"slot": slot, "level": level, "index": index,
                                         "host_writable": host_writable, "new_pfn": new_pfn}])


FAMILY = Family(
    name="rmap",
    summary="pte_list and rmap walkers: rmap_next (spec) vs rmap_get_first/next (Yoshikawa 2012)",
    machine=RmapMachine,
    make_world=RmapWorld,
    impl_base=Rmap,
)
