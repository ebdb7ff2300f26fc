"""The walk family: the architectural walk (spec) vs KVM's FNAME(walk_addr) (impl).

Two sides take every op, each with its own guest memory: the spec
(spec.walk.ArchCpu) and the impl (impl.walk.KvmVcpu around PagingTmpl or a
variant of it).  Ops build all state: `vcpu_setup` first (MAXPHYADDR and
GBPAGES are the guest's CPUID), then guest stores of page-table entries, CR3
loads, control-bit changes, paging-mode switches and accesses.

The impl's walker form says which kernel's rules it follows
(impl/walk.py): the spec side walks by the reserved-bit rule the form
declares (PagingTmpl.RSVD_RULE: Intel's, or 3.10's), and the
kvm_mmu_pte_write oracle asks for what the form's D-bit rule
(PagingTmpl.DIRTY_BIT_RULE) requires.  After every access the sides must
agree exactly on:

  walk outcome        fault with the same error code, or the same gfn and level
  walk path           the entries read: level and gpa top-down (table_gfn[] and
                      pte_gpa[] of the walker, the PDPTE register excepted)
  access rights       pt_access = AND of the rights above the leaf, pte_access =
                      AND of all levels minus W for a clean leaf when the access
                      is not a write (protect_clean_gpte)
  A/D writes          the walker's guest-memory writes, in order, value for value
  mark_page_dirty     one mark_page_dirty(table_gfn) per walker write
  kvm_mmu_pte_write   2.6 rule: one notification per leaf whose D the walker
                      set; 3.x rule: none at all
  kernel BUG          the impl raised KvmBug
  livelock            a walk looped past its bound (retry_walk: spec.errors.Livelock)

and after every op on:

  guest memory        the two memories are equal word for word
  control registers   CR3 loads and mode/control changes succeed or #GP alike;
                      CR3, paging mode and the PDPTE registers are equal

What a clean campaign means is tested (sampled), not proved.
"""

from hypothesis import strategies as st
from hypothesis.stateful import initialize, precondition, rule

from impl.walk import DIRTY_BIT_RULE_2_6, DIRTY_BIT_RULES, KvmMmuPteWrite, KvmVcpu, \
    MarkPageDirty, PagingTmpl
from spec.consts import (
    ACC_ALL, ACC_EXEC_MASK, ACC_USER_MASK, ACC_WRITE_MASK, MAXPHYADDR_CHOICES, PAGE_SHIFT,
    PFERR_FETCH_MASK, PFERR_PRESENT_MASK, PFERR_RSVD_MASK, PFERR_USER_MASK, PFERR_WRITE_MASK,
    PT32_PSE36_SHIFT, PT32E_NR_PDPTES, PT32E_PDPTE_SHIFT, PT64_NX_MASK, PT64_PHYS_BITS,
    PT_ACCESSED_MASK, PT_DIRTY_MASK, PT_GLOBAL_MASK, PT_PAGE_SIZE_MASK, PT_PCD_MASK,
    PT_PRESENT_MASK, PT_PWT_MASK, PT_USER_MASK, PT_WRITABLE_MASK,
)
from spec.errors import KvmBug, Livelock
from spec.guest_memory import GUEST, GuestMemory
from spec.walk import (
    ACCESS_KINDS, FETCH, GP, PAGING_32, PAGING_64, PAGING_MODES, PAGING_PAE, RSVD_RULES,
    STRUCTURES, WRITE, ArchCpu, linear_address,
)

from .core import BadOp, DiffMachine, Discrepancy, World
from .families import Family

MODES = ("mixed",) + PAGING_MODES
CONTROLS = ("cr0.wp", "cr4.pse", "efer.nx")

_FLAGS = (("P", PT_PRESENT_MASK), ("W", PT_WRITABLE_MASK), ("U", PT_USER_MASK),
          ("PWT", PT_PWT_MASK), ("PCD", PT_PCD_MASK), ("A", PT_ACCESSED_MASK),
          ("D", PT_DIRTY_MASK), ("PS", PT_PAGE_SIZE_MASK), ("G", PT_GLOBAL_MASK),
          ("NX", PT64_NX_MASK))
_NAMED = 0
for _n, _m in _FLAGS:
    _NAMED |= _m


def show_pte(v, size=8):
    """A guest entry in kernel terms: its flag names, its frame and any other bits
    (for a 4-byte entry with PS, also what it maps as a 4MB PDE)."""
    flags = " ".join(n for n, m in _FLAGS if v & m)
    other = v & ~_NAMED & ~0xFFFFFFFFFF000 & ~(1 << 63)
    frame = (v >> PAGE_SHIFT) & ((1 << 40) - 1)
    out = f"{v:#x} (gfn {frame:#x}{' ' + flags if flags else ''}"
    if other:
        out += f" other {other:#x}"
    if size == 4 and v & PT_PAGE_SIZE_MASK:
        pse36 = (v >> PT32_PSE36_SHIFT) & 0xF
        out += f"; as a 4MB PDE: base gfn {(v & 0xFFC00000) >> PAGE_SHIFT:#x}"
        out += f", PSE-36 bits {pse36:#x}" if pse36 else ""
    return out + ")"


def show_access(kind, user):
    return f"{'user' if user else 'supervisor'} {kind}"


def show_pfec(code):
    names = [n for n, m in (("P", PFERR_PRESENT_MASK), ("W", PFERR_WRITE_MASK),
                            ("U", PFERR_USER_MASK), ("RSVD", PFERR_RSVD_MASK),
                            ("F", PFERR_FETCH_MASK)) if code & m]
    return f"#PF error code {code:#x} ({'|'.join(names) or 'not present'})"


def show_acc(acc):
    return "".join(c if acc & m else "-" for c, m in (("U", ACC_USER_MASK), ("W", ACC_WRITE_MASK),
                                                      ("X", ACC_EXEC_MASK)))


def pfec_of(kind, user):
    """The error code KVM's walk_addr is called with for this access."""
    code = PFERR_USER_MASK if user else 0
    if kind == WRITE:
        code |= PFERR_WRITE_MASK
    elif kind == FETCH:
        code |= PFERR_FETCH_MASK
    return code


def protect_clean(access, leaf_value, kind):
    """KVM's refinement of the architectural rights (protect_clean_gpte, 3.x):
    a clean leaf is mapped without W unless the access is the write that
    dirties it.  Written here, in the oracle, from facts section 5."""
    if kind != WRITE and not leaf_value & PT_DIRTY_MASK:
        return access & ~ACC_WRITE_MASK
    return access


class SpecSide:
    def __init__(self, maxphyaddr, mode, cr0_wp, cr4_pse, efer_nx, gbpages=True,
                 rsvd_rule=RSVD_RULES[0]):
        self.mem = GuestMemory()
        self.cpu = ArchCpu(self.mem, maxphyaddr, mode, cr0_wp, cr4_pse, efer_nx,
                           gbpages=gbpages, rsvd_rule=rsvd_rule)


class ImplSide:
    def __init__(self, impl_cls, maxphyaddr, mode, cr0_wp, cr4_pse, efer_nx, gbpages=True):
        self.mem = GuestMemory()
        self.vcpu = KvmVcpu(impl_cls, self.mem, maxphyaddr, mode, cr0_wp, cr4_pse, efer_nx,
                            gbpages=gbpages)


def walker_rules(impl_cls):
    """(reserved-bit rule, D-bit rule) the walker form declares (impl/walk.py)."""
    rsvd = getattr(impl_cls, "RSVD_RULE", RSVD_RULES[0])
    dirty = getattr(impl_cls, "DIRTY_BIT_RULE", DIRTY_BIT_RULES[0])
    if rsvd not in RSVD_RULES:
        raise ValueError(f"{impl_cls.__name__}.RSVD_RULE {rsvd!r} is none of {RSVD_RULES}")
    if dirty not in DIRTY_BIT_RULES:
        raise ValueError(f"{impl_cls.__name__}.DIRTY_BIT_RULE {dirty!r} is none of "
                         f"{DIRTY_BIT_RULES}")
    return rsvd, dirty


def _impl_mode(vcpu):
    if vcpu.efer_lma:
        return PAGING_64
    return PAGING_PAE if vcpu.cr4_pae else PAGING_32


class WalkWorld(World):
    """Spec and impl walkers over their own guest memories (module docstring)."""

    def __init__(self, impl_cls, mode="mixed"):
        if mode not in MODES:
            raise ValueError(f"walk family modes are {', '.join(MODES)}, not {mode!r}")
        self.impl_cls = impl_cls
        self.rsvd_rule, self.dirty_bit_rule = walker_rules(impl_cls)
        self.family_mode = mode
        self.spec = None
        self.impl = None
        self.last = None  # (spec WalkResult, impl GuestWalker) of the last access
        self.last_control = None  # "ok" or "#GP": outcome of the last control op

    # -- ops ------------------------------------------------------------------
    def apply(self, op):
        name, a = op
        if name == "vcpu_setup":
            self.op_vcpu_setup(**a)
            return
        if self.spec is None:
            raise BadOp("the first op must be vcpu_setup")
        handler = getattr(self, "op_" + name, None)
        if handler is None:
            raise BadOp(f"unknown walk op {name!r}")
        handler(**a)

    def op_vcpu_setup(self, maxphyaddr, mode, cr0_wp, cr4_pse, efer_nx, gbpages=True):
        if (not isinstance(maxphyaddr, int) or isinstance(maxphyaddr, bool)
                or not 36 <= maxphyaddr <= PT64_PHYS_BITS):
            raise BadOp(f"MAXPHYADDR must be an integer in 36..{PT64_PHYS_BITS} "
                        f"(the machine samples {MAXPHYADDR_CHOICES})")
        if mode not in PAGING_MODES:
            raise BadOp(f"paging mode must be one of {PAGING_MODES}")
        if not isinstance(gbpages, bool):
            raise BadOp(f"gbpages (CPUID.GBPAGES) must be true or false, not {gbpages!r}")
        if self.family_mode != "mixed" and mode != self.family_mode:
            raise BadOp(f"mode {self.family_mode} world set up in {mode} paging")
        self.spec = SpecSide(maxphyaddr, mode, cr0_wp, cr4_pse, efer_nx, gbpages, self.rsvd_rule)
        self.impl = ImplSide(self.impl_cls, maxphyaddr, mode, cr0_wp, cr4_pse, efer_nx, gbpages)

    def op_guest_write(self, gpa, size, value):
        for side in (self.spec, self.impl):
            side.mem.write(gpa, size, value, GUEST)

    def _control(self, what, spec_out, impl_ret):
        want = "#GP" if spec_out == GP else "ok"
        got = "#GP" if impl_ret else "ok"
        if want != got:
            raise Discrepancy("control registers", f"{what}: spec {want}, impl {got}")
        self.last_control = want

    def op_set_cr3(self, cr3):
        if cr3 < 0 or cr3 >> 32 or cr3 & 0x1F:
            raise BadOp(f"CR3 {cr3:#x} must be 32-bit and 32-byte aligned")
        self._control(f"MOV to CR3 {cr3:#x}", self.spec.cpu.mov_to_cr3(cr3),
                      self.impl.vcpu.kvm_set_cr3(cr3))

    def op_set_control(self, reg, value):
        if reg not in CONTROLS:
            raise BadOp(f"control must be one of {CONTROLS}")
        setter = {"cr0.wp": "kvm_set_cr0_wp", "cr4.pse": "kvm_set_cr4_pse",
                  "efer.nx": "kvm_set_efer_nx"}[reg]
        self._control(f"{reg.upper()}={int(value)}", self.spec.cpu.set_control(reg, value),
                      getattr(self.impl.vcpu, setter)(value))

    def op_set_paging_mode(self, mode):
        if mode not in PAGING_MODES:
            raise BadOp(f"paging mode must be one of {PAGING_MODES}")
        if self.family_mode != "mixed" and mode != self.family_mode:
            raise BadOp(f"mode {self.family_mode} world cannot switch to {mode} paging")
        self._control(f"switch to {mode} paging", self.spec.cpu.set_paging_mode(mode),
                      self.impl.vcpu.set_paging_mode(mode))

    def op_access(self, addr, kind, user):
        if kind not in ACCESS_KINDS:
            raise BadOp(f"access kind must be one of {ACCESS_KINDS}")
        self.compare_access(addr, kind, bool(user))

    # -- the comparison of one access ---------------------------------------------
    def compare_access(self, addr, kind, user, spec_result=None):
        """Walk `addr` on both sides and raise Discrepancy unless they agree.

        `spec_result`: the spec's WalkResult of this very access, already walked
        on this world's spec side (a caller that compares one spec walk with
        several impl forms, tests/test_walk_matrix.py); None walks it here."""
        cpu = self.spec.cpu
        la = linear_address(cpu.mode, addr)
        if spec_result is None:
            try:
                spec_result = cpu.walk(la, kind, user)
            except Livelock as e:
                raise Discrepancy("livelock", f"walk_addr({la:#x}, {show_access(kind, user)}): "
                                              f"spec: {e}") from None
        w, impl_writes = self.impl_walk(la, kind, user)
        return self.judge_access(la, kind, user, spec_result, w, impl_writes)

    def impl_walk(self, la, kind, user):
        """The impl's walk_addr of linear address `la`: (GuestWalker, its guest
        writes); a KvmBug or Livelock is the Discrepancy of its oracle."""
        log = self.impl.mem.log
        start = len(log)
        try:
            w = self.impl.vcpu.walk_addr(la, pfec_of(kind, user))
        except KvmBug as e:
            raise Discrepancy("kernel BUG", f"walk_addr({la:#x}, {show_access(kind, user)}): "
                                            f"impl raised {type(e).__name__}: {e}") from None
        except Livelock as e:
            raise Discrepancy("livelock", f"walk_addr({la:#x}, {show_access(kind, user)}): "
                                          f"impl: {e}") from None
        return w, log[start:]

    def judge_access(self, la, kind, user, s, w, impl_writes):
        """Every per-access oracle on spec result `s` and impl walker `w` (module
        docstring); returns (s, w)."""
        self.last = (s, w)

        def what():
            return f"walk_addr({la:#x}, {show_access(kind, user)})"

        # walk outcome
        if s.fault != w.fault or (s.fault is None and (s.gfn != w.gfn or s.level != w.level)):
            want = ("ok", s.gfn, s.level) if s.fault is None else ("fault", s.fault)
            got = ("ok", w.gfn, w.level) if w.fault is None else ("fault", w.fault)
            raise Discrepancy("walk outcome", f"{what()}: spec {self._show_outcome(want)}, "
                                              f"impl {self._show_outcome(got)}")
        # walk path: the spec's entries (levels top-down) are exactly the walker's
        # pte_gpa[] slots that are set, each table_gfn[] the frame of its pte_gpa
        pte_gpa, table_gfn = w.pte_gpa, w.table_gfn
        same, n = True, 0
        for e in s.path:
            gpa = e.gpa
            if gpa is not None:
                n += 1
                if pte_gpa[e.level - 1] != gpa or table_gfn[e.level - 1] != gpa >> PAGE_SHIFT:
                    same = False
                    break
        if not same or n != len(pte_gpa) - pte_gpa.count(None):
            spec_path = [(e.level, e.gpa) for e in s.path if e.gpa is not None]
            impl_path = [(lvl, pte_gpa[lvl - 1]) for lvl in range(len(pte_gpa), 0, -1)
                         if pte_gpa[lvl - 1] is not None]
            raise Discrepancy("walk path", (
                f"{what()}: spec read {[f'L{lv}@{g:#x}' for lv, g in spec_path]}, impl pte_gpa "
                f"{[f'L{lv}@{g:#x}' for lv, g in impl_path]}, table_gfn "
                f"{[hex(g) if g is not None else None for g in table_gfn]}"))
        # access rights
        if s.fault is None:
            pt_access = ACC_ALL
            for e in s.path[:-1]:
                pt_access &= e.rights
            pte_access = protect_clean(s.rights, s.path[-1].value, kind)
            if w.pt_access != pt_access or w.pte_access != pte_access:
                raise Discrepancy("access rights", (
                    f"{what()}: spec pt_access {show_acc(pt_access)} pte_access "
                    f"{show_acc(pte_access)}, impl pt_access {show_acc(w.pt_access)} pte_access "
                    f"{show_acc(w.pte_access)}"))
        # A/D writes
        if s.writes != impl_writes:
            raise Discrepancy("A/D writes", (
                f"{what()}: spec wrote {self._show_writes(s.writes)}, impl wrote "
                f"{self._show_writes(impl_writes)}"))
        if not s.writes and not w.events:
            return s, w  # nothing written, nothing reported: the last two oracles hold
        # mark_page_dirty
        want_dirty = [MarkPageDirty(x.gfn) for x in s.writes]
        got_dirty = [e for e in w.events if isinstance(e, MarkPageDirty)]
        if want_dirty != got_dirty:
            raise Discrepancy("mark_page_dirty", (
                f"{what()}: want mark_page_dirty of gfns {[hex(e.gfn) for e in want_dirty]}, "
                f"impl {[hex(e.gfn) for e in got_dirty]}"))
        # kvm_mmu_pte_write: what the form's D-bit rule asks for
        want_pw = self._dirtied_leaf(s) if self.dirty_bit_rule == DIRTY_BIT_RULE_2_6 else []
        got_pw = [e for e in w.events if isinstance(e, KvmMmuPteWrite)]
        if want_pw != got_pw:
            raise Discrepancy("kvm_mmu_pte_write", (
                f"{what()}: {self.dirty_bit_rule} walker: want "
                f"{[(hex(e.gpa), hex(e.new)) for e in want_pw]}, impl "
                f"{[(hex(e.gpa), hex(e.new)) for e in got_pw]}"))
        return s, w

    @staticmethod
    def _dirtied_leaf(s):
        """kvm_mmu_pte_write records due for spec result `s`: leaf writes that set D."""
        if not s.ok:
            return []
        leaf = s.path[-1]
        old = leaf.value
        out = []
        for x in s.writes:
            if x.gpa == leaf.gpa:
                if x.value & PT_DIRTY_MASK and not old & PT_DIRTY_MASK:
                    out.append(KvmMmuPteWrite(x.gpa, x.value, x.size))
                old = x.value
        return out

    @staticmethod
    def _show_outcome(o):
        if o[0] == "fault":
            return show_pfec(o[1])
        return f"gfn {o[1]:#x} at level {o[2]}"

    @staticmethod
    def _show_writes(ws):
        return "[" + ", ".join(f"{x.gpa:#x}={x.value:#x}" for x in ws) + "]"

    # -- after-step oracles ---------------------------------------------------------
    def check(self):
        if self.spec is None:
            return
        sm, im = self.spec.mem, self.impl.mem
        if sm.words != im.words:
            a, b = sm.snapshot(), im.snapshot()
            gpa = min(k for k in set(a) | set(b) if a.get(k, 0) != b.get(k, 0))
            raise Discrepancy("guest memory", (
                f"u32 at gpa {gpa:#x}: spec {a.get(gpa, 0):#x}, impl {b.get(gpa, 0):#x}"))
        cpu, vcpu = self.spec.cpu, self.impl.vcpu
        if (cpu.cr4_pae != vcpu.cr4_pae or cpu.efer_lma != vcpu.efer_lma or cpu.cr3 != vcpu.cr3
                or cpu.cr0_wp != vcpu.cr0_wp or cpu.cr4_pse != vcpu.cr4_pse
                or cpu.efer_nx != vcpu.efer_nx):
            mine = (cpu.mode, cpu.cr3, cpu.cr0_wp, cpu.cr4_pse, cpu.efer_nx)
            theirs = (_impl_mode(vcpu), vcpu.cr3, vcpu.cr0_wp, vcpu.cr4_pse, vcpu.efer_nx)
            raise Discrepancy("control registers", f"(mode, CR3, WP, PSE, NX): spec {mine}, "
                                                   f"impl {theirs}")
        if cpu.cr4_pae and not cpu.efer_lma and list(cpu.pdptes) != list(vcpu.pdptrs):
            raise Discrepancy("control registers", (
                f"PDPTE registers: spec {[hex(v) for v in cpu.pdptes]}, impl "
                f"{[hex(v) for v in vcpu.pdptrs]}"))

    # -- kernel-terms rendering ----------------------------------------------------
    @staticmethod
    def describe(op):
        name, a = op
        if name == "vcpu_setup":
            mode = {"32": "32-bit", "pae": "PAE", "64": "4-level"}.get(a["mode"], a["mode"])
            return (f"kvm_vcpu_setup(MAXPHYADDR={a['maxphyaddr']}, "
                    f"GBPAGES={int(a.get('gbpages', True))}, {mode} paging, "
                    f"CR0.WP={int(a['cr0_wp'])}, CR4.PSE={int(a['cr4_pse'])}, "
                    f"EFER.NX={int(a['efer_nx'])})")
        if name == "guest_write":
            gpa, size = a["gpa"], a["size"]
            return (f"guest writes pte {show_pte(a['value'], size)} at gpa {gpa:#x} "
                    f"(gfn {gpa >> PAGE_SHIFT:#x} index {(gpa & 0xFFF) // size}, {size}-byte)")
        if name == "set_cr3":
            return f"kvm_set_cr3({a['cr3']:#x})"
        if name == "set_control":
            return f"set {a['reg'].upper()}={int(a['value'])} (kvm_mmu_reset_context)"
        if name == "set_paging_mode":
            return f"guest switches to {a['mode']} paging (kvm_mmu_reset_context)"
        if name == "access":
            return f"walk_addr({a['addr']:#x}, {show_access(a['kind'], a['user'])})"
        return World.describe(op)


def make_world(impl_cls, mode):
    return WalkWorld(impl_cls, mode)


# -- strategies -----------------------------------------------------------------
TABLE_GFNS = (0x10, 0x11, 0x12, 0x13, 0x14)  # guest page tables below 4GB
HIGH_TABLE_GFN = 0x123456                     # a table above 4GB (8-byte entries only)
INDEX_CHOICES = (0, 1, 2, 3, 255, 256, 511, 512, 1023)
# Bits with a meaning somewhere: PAT/PS, G, PAT of a large page, PSE-36 and the
# reserved bits of 4MB/2MB/1GB entries, address bits around every MAXPHYADDR,
# the ignored 62:52 of a 4-level entry, NX.
ODD_BITS_4 = (7, 8, 9, 12, 13, 16, 17, 20, 21, 31)
ODD_BITS_8 = (7, 8, 12, 13, 17, 20, 21, 29, 32, 35, 36, 39, 40, 45, 46, 47, 48, 51, 52, 58, 62,
              63)


def entry_size(mode):
    return 4 if mode == PAGING_32 else 8


def levels_of(mode):
    """Levels of the tables in memory, top-down (PAE: the PDPT is registers)."""
    return [s.level for s in STRUCTURES[mode]]


def large_page_levels(mode):
    return {s.level: s.large_page for s in STRUCTURES[mode] if s.large_page}


# Leaf frames per page size: aligned bases below and above 4GB.
FRAMES = {
    "4k-32": (0x20, 0x21, 0x3FF, 0xFFFFF),
    "4k-64": (0x20, 0x21, 0x3FF, 0xFFFFF, 0x123457, 0x987654),
    "4m": (0x400, 0x800, 0xFFC00),
    "2m": (0x200, 0x400, 0x1FE00, 0xABC00),
    "1g": (0x40000, 0x80000, 0x7C0000),
}


@st.composite
def entries(draw, mode, tables, level=None, below=()):
    """A page-table entry for a table at `level` (None: any): mostly a pointer to
    a table of the level below (`below`), else to any of `tables` (shared, its
    own table, another level), a large page where the level allows one, or a
    4K page; random flags, and now and then an odd bit (reserved somewhere)."""
    size = entry_size(mode)
    large = large_page_levels(mode)
    if level == 1:
        kind = "page"
    else:
        kinds = ["table", "table", "table"]
        kinds += ["large"] if level is None or level in large else []
        kinds += ["page"] if level is None else []
        kind = draw(st.sampled_from(kinds))
    if kind == "table":
        gfn = draw(st.sampled_from(list(below) or list(tables))
                   if below and draw(st.integers(0, 3)) != 3 else st.sampled_from(tables))
    elif kind == "large":
        key = "4m" if mode == PAGING_32 else "1g" if level == 3 else "2m"
        if level is None and mode != PAGING_32:
            key = draw(st.sampled_from(("2m", "1g")))
        gfn = draw(st.sampled_from(FRAMES[key]))
    else:
        gfn = draw(st.sampled_from(FRAMES["4k-32" if size == 4 else "4k-64"]))
    # One draw for the flags; 0 (what Hypothesis shrinks to) is a present entry
    # with no odd bits.  Bits 0-3: W U A D; 4-6: all set -> not present;
    # 7-9: all set -> PS on a table pointer; 10-12: all set -> NX;
    # 13-14: PSE-36 nibble choice; 15-17: all set -> odd bits.
    r = draw(st.integers(0, (1 << 18) - 1))
    v = gfn << PAGE_SHIFT
    v |= PT_WRITABLE_MASK if r & 1 else 0
    v |= PT_USER_MASK if r & 2 else 0
    v |= PT_ACCESSED_MASK if r & 4 else 0
    v |= PT_DIRTY_MASK if r & 8 else 0
    v |= 0 if (r >> 4) & 7 == 7 else PT_PRESENT_MASK
    if kind == "large" or (r >> 7) & 7 == 7:
        v |= PT_PAGE_SIZE_MASK
    if kind == "large" and mode == PAGING_32:
        v |= (5, 1, 8, 15)[(r >> 13) & 3] << PT32_PSE36_SHIFT
    if size == 8 and (r >> 10) & 7 == 7:
        v |= PT64_NX_MASK
    if (r >> 15) & 7 == 7:
        odd = ODD_BITS_4 if size == 4 else ODD_BITS_8
        for b in draw(st.lists(st.sampled_from(odd), min_size=1, max_size=2)):
            v |= 1 << b
    return v & ((1 << (8 * size)) - 1)


@st.composite
def forests(draw, mode):
    """Guest page-table forests as guest writes [(gpa, size, value)], and a CR3.

    A chain of tables, one per level, from a small pool, plus extra tables of
    random levels; entries point mostly one level down but also anywhere in
    the pool, so tables are shared between parents and can map themselves.
    For PAE the CR3 page holds the 4 PDPTEs (in one of its 32-byte slots)."""
    size = entry_size(mode)
    levels = levels_of(mode)
    pool = list(TABLE_GFNS) + ([HIGH_TABLE_GFN] if size == 8 else [])
    root = draw(st.sampled_from(TABLE_GFNS))  # CR3 stays below 4GB
    chain = [root] + draw(st.permutations([g for g in pool if g != root]))[:len(levels) - 1]
    level_of = dict(zip(chain, levels))
    for g in draw(st.lists(st.sampled_from([g for g in pool if g not in level_of]),
                           max_size=2, unique=True)):
        level_of[g] = draw(st.sampled_from(levels))
    tables = sorted(level_of)
    writes = []
    cr3 = root << PAGE_SHIFT
    if mode == PAGING_PAE:
        pdpt = draw(st.sampled_from(TABLE_GFNS))
        slot = draw(st.sampled_from((0, 0, 1, 127)))
        cr3 = (pdpt << PAGE_SHIFT) | (slot << 5)
        dirs = [g for g in tables if level_of[g] == 2]
        for i in range(PT32E_NR_PDPTES):
            if draw(st.integers(0, 3)) == 3:
                continue
            v = (draw(st.sampled_from(dirs)) << PAGE_SHIFT) | PT_PRESENT_MASK
            if draw(st.integers(0, 7)) == 7:
                v |= 1 << draw(st.sampled_from((1, 2, 3, 5, 7, 40, 63)))
            writes.append(((pdpt << PAGE_SHIFT) + (slot << 5) + 8 * i, 8, v))
    for t in tables:
        lvl = level_of[t]
        below = [g for g in tables if level_of[g] == lvl - 1]
        per_entry = entries(mode, tables, lvl, below)
        for _ in range(draw(st.integers(1, 3))):
            index = draw(st.sampled_from(INDEX_CHOICES) | st.integers(0, 4096 // size - 1))
            index %= 4096 // size
            writes.append(((t << PAGE_SHIFT) + index * size, size, draw(per_entry)))
    return writes, cr3


class WalkMachine(DiffMachine):
    """Builds a forest, then interleaves accesses, pte edits and mode changes."""

    def _mode(self):
        return self.world.spec.cpu.mode

    @initialize(data=st.data())
    def setup(self, data):
        fam = self.world.family_mode
        mode = data.draw(st.sampled_from(PAGING_MODES)) if fam == "mixed" else fam
        self.written = {}  # gfn -> set of byte offsets the guest wrote
        # GBPAGES is drawn for every vCPU; only a 4-level walk reads it.  True first,
        # so examples shrink towards the walk as it always was.
        self.emit(["vcpu_setup", {
            "maxphyaddr": data.draw(st.sampled_from(MAXPHYADDR_CHOICES)), "mode": mode,
            "cr0_wp": data.draw(st.booleans()), "cr4_pse": data.draw(st.booleans()),
            "efer_nx": data.draw(st.booleans()),
            "gbpages": data.draw(st.sampled_from((True, False)))}])
        writes, cr3 = data.draw(forests(mode))
        for gpa, size, value in writes:
            self._guest_write(gpa, size, value)
        self.roots = [cr3]  # CR3 values that point at a forest root
        self.emit(["set_cr3", {"cr3": cr3}])

    def _guest_write(self, gpa, size, value):
        self.written.setdefault(gpa >> PAGE_SHIFT, set()).add(gpa & 0xFFF)
        self.emit(["guest_write", {"gpa": gpa, "size": size, "value": value}])

    def _address(self, seed):
        """An address whose walk follows entries the guest wrote (mostly).

        `seed` holds one 12-bit pick per step: the PDPTE slot (PAE), an index
        per level (mostly among the indices the guest wrote in that table,
        1 in 16 any index), and the page offset."""
        cpu = self.world.spec.cpu
        mode, mem = cpu.mode, self.world.spec.mem
        picks = iter([(seed >> (12 * i)) & 0xFFF for i in range(6)])
        la = 0
        if mode == PAGING_PAE:
            pick = next(picks)
            present = [i for i, v in enumerate(cpu.pdptes) if v & PT_PRESENT_MASK]
            slot = present[pick % len(present)] if present and pick % 8 != 7 else pick % 4
            la |= slot << PT32E_PDPTE_SHIFT
            table = cpu.pdptes[slot] & 0xFFFFFFFFFF000
        else:
            table = cpu.cr3 & ~0xFFF
        for s in STRUCTURES[mode]:
            pick = next(picks)
            offs = sorted(self.written.get(table >> PAGE_SHIFT, ()))
            idxs = sorted({o // s.entry_size for o in offs})
            if idxs and pick % 16 != 15:
                index = idxs[(pick >> 4) % len(idxs)]
            else:
                index = (pick >> 2) % (1 << s.index_bits)
            la |= index << s.index_shift
            value = mem.read(table + index * s.entry_size, s.entry_size)
            table = value & (0xFFFFF000 if s.entry_size == 4 else 0xFFFFFFFFFF000)
        return la | (next(picks, 0) & 0xFFF)

    @rule(accesses=st.lists(st.tuples(st.integers(0, (1 << 72) - 1),
                                      st.sampled_from(ACCESS_KINDS), st.booleans()),
                            min_size=1, max_size=3))
    def access(self, accesses):
        for seed, kind, user in accesses:
            self.emit(["access", {"addr": self._address(seed), "kind": kind, "user": user}])

    @rule(pick=st.integers(0, 1 << 16),
          bit=st.sampled_from((0, 1, 1, 2, 2, 5, 5, 6, 6, 7, 7, 8, 13, 16, 17, 21, 40, 47, 52, 63,
                               63)))
    def edit_pte(self, pick, bit):
        """The guest flips one bit of an entry it wrote before."""
        size = entry_size(self._mode())
        spots = sorted((g, o & ~(size - 1)) for g, offs in self.written.items() for o in offs)
        if not spots or (size == 4 and bit >= 32):
            return
        gfn, off = spots[pick % len(spots)]
        gpa = (gfn << PAGE_SHIFT) | off
        value = self.world.spec.mem.read(gpa, size) ^ (1 << bit)
        self._guest_write(gpa, size, value)

    @rule(data=st.data())
    def new_entry(self, data):
        mode = self._mode()
        size = entry_size(mode)
        tables = sorted(self.written) or list(TABLE_GFNS)
        gfn = data.draw(st.sampled_from(tables))
        index = data.draw(st.sampled_from(INDEX_CHOICES)) % (4096 // size)
        value = data.draw(entries(mode, tables if size == 8 else [t for t in tables if t < 1 << 20]
                                  or list(TABLE_GFNS)))
        self._guest_write((gfn << PAGE_SHIFT) + index * size, size, value)

    @rule(reg=st.sampled_from(CONTROLS), value=st.booleans())
    def set_control(self, reg, value):
        self.emit(["set_control", {"reg": reg, "value": value}])

    @rule(pick=st.integers(0, 1 << 16), slot=st.sampled_from((0, 0, 1, 127)))
    def set_cr3(self, pick, slot):
        """Mostly back to a forest root; else any table the guest wrote, as CR3."""
        if pick % 4 != 3:
            cr3 = self.roots[pick % len(self.roots)]
        else:
            tables = sorted(g for g in self.written if g < 1 << 20) or list(TABLE_GFNS)
            cr3 = (tables[pick % len(tables)] << PAGE_SHIFT) | (slot << 5)
        self.emit(["set_cr3", {"cr3": cr3}])

    @rule(data=st.data())
    def new_forest(self, data):
        """Write another forest for the current paging mode and load its root."""
        writes, cr3 = data.draw(forests(self._mode()))
        for gpa, size, value in writes:
            self._guest_write(gpa, size, value)
        self.roots.append(cr3)
        self.emit(["set_cr3", {"cr3": cr3}])

    @precondition(lambda self: self.world.family_mode == "mixed")
    @rule(mode=st.sampled_from(PAGING_MODES))
    def set_paging_mode(self, mode):
        self.emit(["set_paging_mode", {"mode": mode}])


FAMILY = Family(
    name="walk",
    summary="guest page walk: architectural walk (spec) vs KVM FNAME(walk_addr) "
            "(Kivity 2007 walker simplification, 3.x A/D after success)",
    machine=WalkMachine,
    make_world=make_world,
    impl_base=PagingTmpl,
    modes=MODES,
)
