"""The exhaustive walk matrix (issue 3 item 5) and a table of architecture outcomes.

In the spirit of kvm-unit-tests' x86/access.c: for each paging mode, every
combination of the parent and leaf entries' flag bits (P, W, U, A, D, PS and,
for 8-byte entries, NX) x access kind x user/supervisor x CR0.WP x EFER.NX
(x CR4.PSE for 32-bit paging, where it applies) runs through both walkers,
which must agree on everything the walk family compares (diff/walk.py:
outcome, path, rights, A/D writes, mark_page_dirty, kvm_mmu_pte_write, guest
memory).  A second part sets one odd bit at a time (reserved somewhere, or an
address/PAT/ignored bit elsewhere) in every entry of every page shape, for
every MAXPHYADDR the family samples and, in 4-level paging, with and without
1GB pages (CPUID.GBPAGES; no other mode reads it).  Both parts are *searched*
(exhaustive over the stated bound); the counts are printed and asserted.

Both parts run on both reserved-bit rules: the spec by Intel's rule against
the plain walker (PagingTmpl, RSVD_INTEL), and the spec by 3.10's rule
against the walk:rsvd-3.10 form.  The odd-bit part runs each pair on its own.
The flag part varies only the PDE/PTE (PAE, 4-level) or PDE/PTE of 32-bit
paging, where the two rules reserve the same bits, so it walks the spec once
per case and compares that walk with both impl forms: a Checker verifies, for
every entry value it loads, that the spec reserves a bit of it under the 3.10
rule exactly when it does under Intel's (spec.walk.reserved_mask and
pdpte_reserved, the only places the rule reaches), so the 3.10 spec's walk of
every case is the Intel spec's walk.  The 3.10 walker's result, when equal
field for field (and write for write) to the Intel walker's, which every
oracle has just accepted, passes them too; any other goes through the
oracles.  That keeps the two rules near the cost one rule had (pytest
--durations, 2-core development machine: this file ran in about 19.5 s on
Intel's rule alone, and runs in about 22 s on both).

The hand-written table then pins outcomes read off the architecture manual
(Intel SDM vol. 3 chapter 4), independent of both walkers and of the
constants they share, and the cases where 3.10's rule differs from Intel's.
"""

import itertools
from dataclasses import dataclass, field

import pytest

from diff import families
from diff.core import Discrepancy
from diff.walk import WalkWorld
from impl import variants
from impl.walk import PagingTmpl
from spec.consts import (
    MAXPHYADDR_CHOICES, PT64_NX_MASK, PT_ACCESSED_MASK, PT_DIRTY_MASK, PT_PAGE_SIZE_MASK,
    PT_PRESENT_MASK, PT_USER_MASK, PT_WRITABLE_MASK,
)
from spec.guest_memory import GUEST
from spec.walk import RSVD_INTEL, RSVD_KVM_3_10, RSVD_RULES, pdpte_reserved, reserved_mask

P, W, U, A, D, PS, NX = (PT_PRESENT_MASK, PT_WRITABLE_MASK, PT_USER_MASK, PT_ACCESSED_MASK,
                         PT_DIRTY_MASK, PT_PAGE_SIZE_MASK, PT64_NX_MASK)
G8 = 1 << 8  # bit 8: G in a leaf, ignored (Intel) or reserved (3.10) in a non-leaf PML4E/PDPTE
UP = P | W | U | A  # the permissive upper entries of every layout
KINDS = ("read", "write", "fetch")
ACCESSES = [(k, u) for k in KINDS for u in (False, True)]

# The walker form of each reserved-bit rule.
FORMS = {RSVD_INTEL: PagingTmpl,
         RSVD_KVM_3_10: families.get("walk").impl_class(variants.get("walk:rsvd-3.10"))}

# -- the layout every check walks ------------------------------------------------
# 64-bit: PML4 gfn 0x10 [3] -> PDPT 0x11 [5] -> PD 0x12 [7] -> PT 0x400 [9] -> 0x2345.
# PAE:    PDPT gfn 0x10 slot [2] -> PD 0x12 [7] -> PT 0x400 [9] -> 0x2345.
# 32-bit: PD gfn 0x12 [7] -> PT 0x400 [9] -> 0x2345.
# gfn 0x400 is also the 2MB/4MB frame of a PS=1 PDE; a PS=1 PDPTE maps gfn 0x40000.
LAYOUT = {
    "64": dict(cr3=0x10000, la=(3 << 39) | (5 << 30) | (7 << 21) | (9 << 12) | 0x123, size=8,
               gpa={4: 0x10000 + 3 * 8, 3: 0x11000 + 5 * 8, 2: 0x12000 + 7 * 8, 1: 0x400000 + 9 * 8},
               frame={4: 0x11000, 3: 0x12000, 2: 0x400000, 1: 0x2345000}),
    "pae": dict(cr3=0x10000, la=(2 << 30) | (7 << 21) | (9 << 12) | 0x123, size=8,
                gpa={3: 0x10000 + 2 * 8, 2: 0x12000 + 7 * 8, 1: 0x400000 + 9 * 8},
                frame={3: 0x12000, 2: 0x400000, 1: 0x2345000}),
    "32": dict(cr3=0x12000, la=(7 << 22) | (9 << 12) | 0x123, size=4,
               gpa={2: 0x12000 + 7 * 4, 1: 0x400000 + 9 * 4},
               frame={2: 0x400000, 1: 0x2345000}),
}
GB1_FRAME = 0x40000000
LEAF_LEVEL = {"4k": 1, "2m": 2, "4m": 2, "1g": 3}
SHAPES = {"64": ("4k", "2m", "1g"), "pae": ("4k", "2m"), "32": ("4k", "4m")}


def path_values(mode, shape, flags=None):
    """{level: value} of the entries a walk of LAYOUT[mode] reads for `shape`;
    `flags[level]` replaces the flag bits of that level (default: UP)."""
    lay = LAYOUT[mode]
    flags = flags or {}
    leaf = LEAF_LEVEL[shape]
    out = {}
    for level in sorted(lay["gpa"], reverse=True):
        if level < leaf:
            break
        frame = lay["frame"][level]
        if level == leaf and shape == "1g":
            frame = GB1_FRAME
        f = flags.get(level, UP | (PS if level == leaf and shape != "4k" else 0))
        if mode == "pae" and level == 3:
            f = flags.get(level, P)  # a PDPTE: P and the address only
        out[level] = frame | f
    return out


def _observed(w):
    """Every field of an impl.walk.GuestWalker the access oracles read."""
    return (w.fault, w.gfn, w.level, w.pt_access, w.pte_access, w.pte_gpa, w.table_gfn,
            w.events)


class Checker:
    """One world per (mode, MAXPHYADDR, GBPAGES, controls); entries rewritten per check.

    The spec side walks by the rule `impl_cls` declares.  Each class in `also`
    (another walker form) gets a world of its own that shares the first
    world's spec side: every access is walked once by the spec and compared
    with every form.  That is sound only where the forms' declared rules make
    the spec walk alike, so load() checks every entry it writes: the spec must
    find a reserved bit in it under each shared rule exactly when it does
    under the first world's."""

    def __init__(self, mode, maxphyaddr=36, cr0_wp=True, efer_nx=True, cr4_pse=True,
                 impl_cls=PagingTmpl, gbpages=True, also=()):
        self.mode, self.lay = mode, LAYOUT[mode]
        setup = ["vcpu_setup", {"maxphyaddr": maxphyaddr, "mode": mode, "cr0_wp": cr0_wp,
                                "cr4_pse": cr4_pse, "efer_nx": efer_nx, "gbpages": gbpages}]
        self.world = WalkWorld(impl_cls, mode)
        self.world.apply(setup)
        self.others = []
        for cls in also:
            other = WalkWorld(cls, mode)
            other.apply(setup)
            other.spec = self.world.spec  # one spec walk per access, compared with each form
            self.others.append(other)
        self.worlds = [self.world] + self.others
        self.rules = {w.rsvd_rule for w in self.worlds}
        self.ctl = (cr4_pse, efer_nx, maxphyaddr, gbpages)
        self.agreed = set()  # (level, value): the shared rules reserve alike in it
        self.count = 0
        self.cr3_outcome = None

    def _rules_agree(self, level, value):
        """The spec reserves a bit of this entry under every shared rule alike."""
        pse, nx, m, gb = self.ctl
        if self.mode == "pae" and level == 3:
            got = {bool(value & P and value & pdpte_reserved(m, r)) for r in self.rules}
        else:
            got = {bool(value & reserved_mask(self.mode, level, value, pse, nx, m, r, gb))
                   for r in self.rules}
        return len(got) == 1

    def load(self, values):
        """Write {level: value} into every memory; a PAE PDPTE (level 3) is then
        loaded into the registers by a CR3 load, whose outcome is kept."""
        size = self.lay["size"]
        if self.others:
            for key in values.items():
                if key not in self.agreed:
                    assert self._rules_agree(*key), (
                        f"the rules {sorted(self.rules)} reserve differently in L{key[0]} "
                        f"{key[1]:#x}: the spec walk cannot be shared")
                    self.agreed.add(key)
        sides = [self.world.spec] + [w.impl for w in self.worlds]
        spec_mem = self.world.spec.mem
        for level, v in values.items():
            gpa = self.lay["gpa"][level]
            if spec_mem.read(gpa, size) != v:  # every memory equals the spec's (check())
                for side in sides:
                    side.mem.write(gpa, size, v, GUEST)
        for side in sides:
            side.mem.log.clear()
        if (self.mode == "pae" and 3 in values) or self.world.spec.cpu.cr3 != self.lay["cr3"]:
            for w in self.worlds:  # the shared spec reloads the same PDPTEs each time
                w.apply(["set_cr3", {"cr3": self.lay["cr3"]}])
                w.check()
            self.cr3_outcome = self.world.last_control

    def access(self, kind, user):
        """One access: the spec walk against the first form (every oracle), then
        each other form.  A form whose walker returned exactly what the first
        one's did (every field the oracles read, and the same guest writes) and
        that declares the same D-bit rule passes every oracle the first one
        passed; any other is judged by the oracles against the same spec walk."""
        la, world = self.lay["la"], self.world
        log = world.impl.mem.log
        start = len(log)
        s, w = world.compare_access(la, kind, user)
        world.check()
        if self.others:
            seen = (_observed(w), log[start:])
            for other in self.others:
                ow, owrites = other.impl_walk(la, kind, user)
                if other.dirty_bit_rule != world.dirty_bit_rule or (_observed(ow), owrites) != seen:
                    other.judge_access(la, kind, user, s, ow, owrites)
                other.check()
        self.count += 1
        return s, w

    def sweep(self, values):
        """Every access kind x user/supervisor on the same entries."""
        dirty = True
        for kind, user in ACCESSES:
            if dirty:
                self.load(values)
            s, _ = self.access(kind, user)
            dirty = bool(s.writes)


# -- part 1: every flag combination of parent and leaf ----------------------------
def flag_bits(mode):
    return (P, W, U, A, D, PS) + ((NX,) if LAYOUT[mode]["size"] == 8 else ())


def controls(mode):
    pses = (False, True) if mode == "32" else (True,)
    return [(wp, nx, pse) for wp in (False, True) for nx in (False, True) for pse in pses]


def flags_matrix(mode, forms=(FORMS[RSVD_INTEL], FORMS[RSVD_KVM_3_10])):
    """The flag part, the spec walked once per case (by the first form's rule)
    and compared with every form in `forms`; returns the cases walked."""
    n = 0
    bits = flag_bits(mode)
    combos = [sum(b for b, on in zip(bits, sel) if on)
              for sel in itertools.product((0, 1), repeat=len(bits))]
    for wp, nx, pse in controls(mode):
        c = Checker(mode, cr0_wp=wp, efer_nx=nx, cr4_pse=pse, impl_cls=forms[0],
                    also=forms[1:])
        upper = {lvl: v for lvl, v in path_values(mode, "4k").items() if lvl > 2}
        c.load(upper)
        lay = c.lay
        for pf in combos:
            parent = lay["frame"][2] | pf
            for lf in combos:
                c.sweep({2: parent, 1: lay["frame"][1] | lf})
        n += c.count
    return n


@pytest.mark.parametrize("mode", ["32", "pae", "64"])
def test_flag_matrix_agrees(mode, capsys):
    n = flags_matrix(mode)
    want = (2 ** len(flag_bits(mode))) ** 2 * len(ACCESSES) * len(controls(mode))
    with capsys.disabled():
        print(f"\nwalk matrix, {mode} paging, parent x leaf flags: {n} combinations x 2 rules "
              f"(searched: exhaustive; one spec walk each, Intel and 3.10 impl forms agree)")
    assert n == want


# -- part 2: one odd bit at a time in every entry of every page shape -----------------
ODD_BITS = {4: (7, 8, 9, 12, 13, 16, 17, 20, 21, 22, 31),
            8: (7, 8, 12, 13, 20, 21, 29, 30, 35, 36, 39, 40, 45, 46, 47, 48, 51, 52, 58, 62, 63)}


def gbpages_choices(mode):
    """CPUID.GBPAGES values the matrix tries: only a 4-level walk reads it."""
    return (True, False) if mode == "64" else (True,)


def odd_bit_matrix(mode, impl_cls=PagingTmpl):
    """The odd-bit part for one walker form (the spec by the form's rule)."""
    n = 0
    for m in MAXPHYADDR_CHOICES:
        for gb in gbpages_choices(mode):
            for wp, nx, pse in controls(mode):
                c = Checker(mode, maxphyaddr=m, cr0_wp=wp, efer_nx=nx, cr4_pse=pse,
                            impl_cls=impl_cls, gbpages=gb)
                for shape in SHAPES[mode]:
                    base = path_values(mode, shape)
                    for level in base:
                        for bit in ODD_BITS[c.lay["size"]]:
                            if base[level] >> bit & 1:
                                continue  # already set: the same walk as the base
                            c.sweep({**base, level: base[level] | 1 << bit})
                n += c.count
    return n


def odd_bit_count(mode):
    size = LAYOUT[mode]["size"]
    cases = 0
    for shape in SHAPES[mode]:
        base = path_values(mode, shape)
        cases += sum(1 for lvl in base for b in ODD_BITS[size] if not base[lvl] >> b & 1)
    return (cases * len(ACCESSES) * len(controls(mode)) * len(MAXPHYADDR_CHOICES)
            * len(gbpages_choices(mode)))


@pytest.mark.parametrize("rule", RSVD_RULES)
@pytest.mark.parametrize("mode", ["32", "pae", "64"])
def test_odd_bit_matrix_agrees(mode, rule, capsys):
    n = odd_bit_matrix(mode, FORMS[rule])
    with capsys.disabled():
        print(f"\nwalk matrix, {mode} paging, {rule} rule, one odd bit per entry: {n} "
              f"combinations (searched: exhaustive, spec and impl agree)")
    assert n == odd_bit_count(mode)


def test_matrix_total_is_reported(capsys):
    flags = sum((2 ** len(flag_bits(m))) ** 2 * len(ACCESSES) * len(controls(m))
                for m in LAYOUT)
    odd = sum(odd_bit_count(m) for m in LAYOUT)
    with capsys.disabled():
        print(f"\nwalk matrix total, per rule (Intel, 3.10): {flags} flag combinations + {odd} "
              f"odd-bit combinations = {flags + odd}")
    assert flags == 4096 * 6 * 8 + 16384 * 6 * 4 * 2
    assert flags + odd > 1_000_000


def test_the_rules_differ_where_the_odd_bit_part_looks():
    """Each rule's pair is its own: the 3.10 walker against the spec by Intel's
    rule parts at the first odd bit the rules read differently."""
    c = Checker("64", impl_cls=FORMS[RSVD_KVM_3_10])
    c.world.spec.cpu.rsvd_rule = RSVD_INTEL
    with pytest.raises(Discrepancy) as e:
        c.sweep(path_values("64", "4k", {4: UP | G8}))
    assert e.value.oracle == "walk outcome"
    assert "RSVD" in e.value.message


def test_a_shared_spec_walk_refuses_entries_where_the_rules_part():
    c = Checker("64", also=(FORMS[RSVD_KVM_3_10],))
    with pytest.raises(AssertionError, match="cannot be shared"):
        c.load(path_values("64", "4k", {4: UP | G8}))


@pytest.mark.parametrize("name,oracle", [("walk:d-on-read", "A/D writes"),
                                         ("walk:access-not-anded", "access rights"),
                                         ("walk:pse36-dropped", "walk outcome")])
def test_the_matrix_catches_each_variant(name, oracle):
    cls = families.get("walk").impl_class(variants.get(name))
    with pytest.raises(Discrepancy) as e:
        odd_bit_matrix("32", cls)
        flags_matrix("32", (cls,))
    assert e.value.oracle == oracle


# -- part 3: outcomes from the architecture manual ------------------------------------
@dataclass
class Row:
    """One hand-checked outcome: a walk of LAYOUT[mode] for `shape`, entries with
    the given flags, and the expected result: ("fault", error code) or
    ("ok", gfn, level).  `d_on` / `a_on` / `clean`: levels whose D / A must be
    set afterwards / levels that must be left unwritten."""

    what: str
    mode: str
    access: tuple
    expect: tuple
    shape: str = "4k"
    flags: dict = field(default_factory=dict)
    wp: bool = True
    nx: bool = True
    pse: bool = True
    m: int = 36
    d_on: tuple = ()
    a_on: tuple = ()
    clean: tuple = ()
    cr3: str = "ok"
    rule: str = RSVD_INTEL  # the reserved-bit rule: the spec's, and the walker form's
    gbpages: bool = True


RO = P | U | A          # read-only user page
SUP = P | W | A         # supervisor page
T = UP                  # permissive table pointer
ROWS = [
    Row("supervisor write to a read-only page with WP=0 succeeds and sets D", "32",
        ("write", False), ("ok", 0x2345, 1), flags={2: T, 1: RO}, wp=False, d_on=(1,)),
    Row("supervisor write to a read-only page with WP=1 faults P|W", "32",
        ("write", False), ("fault", 0x3), flags={2: T, 1: RO}, clean=(2, 1)),
    Row("user write to a read-only page faults P|W|U even with WP=0", "32",
        ("write", True), ("fault", 0x7), flags={2: T, 1: RO}, wp=False),
    Row("user read of a supervisor page faults P|U", "64",
        ("read", True), ("fault", 0x5), flags={1: SUP}),
    Row("supervisor read of a user page succeeds (no SMAP)", "64",
        ("read", False), ("ok", 0x2345, 1), flags={1: RO}),
    Row("not-present PTE, supervisor read: error code 0", "32",
        ("read", False), ("fault", 0x0), flags={2: T, 1: W | U}),
    Row("not-present PDE, user write: error code W|U", "32",
        ("write", True), ("fault", 0x6), flags={2: W | U}),
    Row("PAE fetch from an NX page with EFER.NX=1 faults P|F", "pae",
        ("fetch", False), ("fault", 0x11), flags={1: UP | NX}),
    Row("PAE NX bit with EFER.NX=0 is reserved: RSVD|P", "pae",
        ("read", False), ("fault", 0x9), flags={1: UP | NX}, nx=False),
    Row("4-level PS=1 in a PML4E is reserved", "64",
        ("read", False), ("fault", 0x9), flags={4: T | PS}),
    Row("4-level 1GB page: base plus the 2MB and 4K indices", "64",
        ("read", False), ("ok", 0x40000 + (7 << 9) + 9, 3), shape="1g"),
    Row("4-level 2MB page: base plus the 4K index", "64",
        ("read", False), ("ok", 0x409, 2), shape="2m"),
    Row("32-bit PS=1 PDE with CR4.PSE=0 is a table pointer", "32",
        ("read", False), ("ok", 0x2345, 1), flags={2: T | PS}, pse=False),
    Row("32-bit 4MB page with CR4.PSE=1", "32",
        ("read", False), ("ok", 0x409, 2), shape="4m"),
    Row("32-bit 4MB page: PSE-36 bits 16:13 become physical bits 35:32", "32",
        ("read", False), ("ok", 0x409 + (0x5 << 20), 2), shape="4m",
        flags={2: UP | PS | (0x5 << 13)}),
    Row("32-bit 4MB PDE bit 21 is reserved", "32",
        ("read", False), ("fault", 0x9), shape="4m", flags={2: UP | PS | (1 << 21)}),
    Row("2MB PDE bit 13 is reserved", "pae",
        ("read", False), ("fault", 0x9), shape="2m", flags={2: UP | PS | (1 << 13)}),
    Row("2MB PDE bit 12 is PAT, not an address bit", "64",
        ("read", False), ("ok", 0x409, 2), shape="2m", flags={2: UP | PS | (1 << 12)}),
    Row("PAE PDPTE not present: error code 0 (+W for a write)", "pae",
        ("write", False), ("fault", 0x2), flags={3: 0}),
    Row("PAE PDPTE with R/W set is refused at CR3 load (#GP)", "pae",
        ("read", False), ("fault", 0x0), flags={3: P | W}, cr3="#GP"),
    Row("PAE PDPTE with A (bit 5) set is refused at CR3 load (#GP)", "pae",
        ("read", False), ("fault", 0x0), flags={3: P | A}, cr3="#GP"),
    Row("4-level PTE address bit at MAXPHYADDR is reserved", "64",
        ("read", False), ("fault", 0x9), flags={1: UP | (1 << 36)}, m=36),
    Row("4-level PTE bit 51 is an address bit with MAXPHYADDR=52", "64",
        ("read", False), ("ok", 0x2345 | (1 << 39), 1), flags={1: UP | (1 << 51)}, m=52),
    Row("32-bit fetch with EFER.NX=1: no F bit in the error code", "32",
        ("fetch", False), ("fault", 0x0), flags={2: T, 1: 0}),
    Row("PAE fetch from a not-present page with EFER.NX=1: F bit", "pae",
        ("fetch", False), ("fault", 0x10), flags={1: 0}),
    Row("4-level user fetch from a supervisor page: P|U|F", "64",
        ("fetch", True), ("fault", 0x15), flags={1: SUP}),
    Row("supervisor fetch from a user page succeeds (no SMEP)", "64",
        ("fetch", False), ("ok", 0x2345, 1), flags={1: RO}),
    Row("a read sets A on every level and D nowhere", "64",
        ("read", False), ("ok", 0x2345, 1), flags={4: P | W | U, 3: P | W | U, 2: P | W | U, 1: P | W | U},
        a_on=(4, 3, 2, 1)),
    Row("a write sets D on the leaf only", "64",
        ("write", False), ("ok", 0x2345, 1), flags={4: P | W, 3: P | W, 2: P | W, 1: P | W},
        a_on=(4, 3, 2, 1), d_on=(1,)),
    Row("a faulting walk sets no A bit", "64",
        ("write", True), ("fault", 0x7), flags={4: P | W | U, 3: P | W | U, 2: P | U, 1: P | W | U},
        clean=(4, 3, 2, 1)),
    Row("rights are ANDed: W=0 in the PDE stops a supervisor write with WP=1", "pae",
        ("write", False), ("fault", 0x3), flags={2: P | U | A, 1: UP}),
    Row("rights are ANDed: U=0 in the PDPTE (4-level) stops a user read", "64",
        ("read", True), ("fault", 0x5), flags={3: P | W | A}),
    Row("rights are ANDed: NX in the PDE stops a fetch", "64",
        ("fetch", False), ("fault", 0x11), flags={2: UP | NX}),
    Row("4-level PTE bit 55 is ignored", "64",
        ("read", False), ("ok", 0x2345, 1), flags={1: UP | (1 << 55)}),
    Row("PAE PTE bit 55 is reserved", "pae",
        ("read", False), ("fault", 0x9), flags={1: UP | (1 << 55)}),
    Row("4-level PML4E bit 8 is ignored (Intel)", "64",
        ("read", False), ("ok", 0x2345, 1), flags={4: T | G8}),
    Row("a not-present entry's reserved bits do not matter: error code 0", "64",
        ("read", False), ("fault", 0x0), flags={1: (1 << 40) | W}),
    Row("reserved bits beat a rights violation: RSVD|P|U", "64",
        ("read", True), ("fault", 0xD), flags={1: P | A | (1 << 40)}),
    Row("32-bit PTE bit 7 is PAT, not reserved", "32",
        ("read", False), ("ok", 0x2345, 1), flags={2: T, 1: UP | PS}),
    Row("a write to an already dirty page writes nothing", "32",
        ("write", False), ("ok", 0x2345, 1), flags={2: T, 1: UP | D}, clean=(2, 1)),
    Row("user write to a writable user page with WP=1 succeeds", "pae",
        ("write", True), ("ok", 0x2345, 1), flags={2: T, 1: UP}, d_on=(1,)),
    Row("4-level PTE bit 47 is an address bit with MAXPHYADDR=48 (this host's)", "64",
        ("read", False), ("ok", 0x2345 | (1 << 35), 1), flags={1: UP | (1 << 47)}, m=48),
    Row("4-level PTE bit 48 is reserved with MAXPHYADDR=48", "64",
        ("read", False), ("fault", 0x9), flags={1: UP | (1 << 48)}, m=48),
    # -- without 1GB pages (CPUID.GBPAGES=0, as on this host) --------------------------
    Row("no 1GB pages: a PDPTE with PS=1 faults RSVD|P", "64",
        ("read", False), ("fault", 0x9), shape="1g", gbpages=False, clean=(4, 3)),
    Row("no 1GB pages: a user write through a PS=1 PDPTE faults P|W|U|RSVD", "64",
        ("write", True), ("fault", 0xF), shape="1g", gbpages=False),
    Row("no 1GB pages: 2MB pages still map", "64",
        ("read", False), ("ok", 0x409, 2), shape="2m", gbpages=False),
    Row("no 1GB pages: a PDPTE with PS=0 is a table pointer as ever", "64",
        ("read", False), ("ok", 0x2345, 1), gbpages=False),
    # -- where 3.10's reserved bits differ from Intel's -------------------------------
    Row("3.10 reserves bit 8 of a non-leaf PML4E: RSVD|P (Intel walks on)", "64",
        ("read", False), ("fault", 0x9), flags={4: T | G8}, rule=RSVD_KVM_3_10),
    Row("4-level non-leaf PDPTE bit 8 is ignored (Intel)", "64",
        ("read", False), ("ok", 0x2345, 1), flags={3: T | G8}),
    Row("3.10 reserves bit 8 of a non-leaf PDPTE: RSVD|P|U|W", "64",
        ("write", True), ("fault", 0xF), flags={3: T | G8}, rule=RSVD_KVM_3_10),
    Row("3.10: bit 8 (G) of a 1GB PDPTE is not reserved", "64",
        ("read", False), ("ok", 0x40000 + (7 << 9) + 9, 3), shape="1g",
        flags={3: UP | PS | G8}, rule=RSVD_KVM_3_10),
    Row("3.10: bit 8 of a non-leaf PDE is ignored, as Intel has it", "64",
        ("read", False), ("ok", 0x2345, 1), flags={2: T | G8}, rule=RSVD_KVM_3_10),
    Row("3.10 accepts a PAE PDPTE with A (bit 5) set (Intel: #GP)", "pae",
        ("read", False), ("ok", 0x2345, 1), flags={3: P | A}, rule=RSVD_KVM_3_10),
    Row("3.10 accepts a PAE PDPTE with D (bit 6) set (Intel: #GP)", "pae",
        ("read", False), ("ok", 0x2345, 1), flags={3: P | D}, rule=RSVD_KVM_3_10),
    Row("PAE PDPTE with D (bit 6) set is refused at CR3 load (#GP)", "pae",
        ("read", False), ("fault", 0x0), flags={3: P | D}, cr3="#GP"),
    Row("3.10 refuses a PAE PDPTE with bit 7 set (#GP)", "pae",
        ("read", False), ("fault", 0x0), flags={3: P | PS}, cr3="#GP", rule=RSVD_KVM_3_10),
    Row("3.10 never reads GBPAGES: a PS=1 PDPTE maps 1GB without 1GB pages", "64",
        ("read", False), ("ok", 0x40000 + (7 << 9) + 9, 3), shape="1g", gbpages=False,
        rule=RSVD_KVM_3_10),
]


def test_the_table_has_at_least_30_rows():
    assert len(ROWS) >= 30


def test_the_rules_part_where_the_table_says():
    """Each 3.10 row run under both rules: the outcome differs exactly where the
    rules read the entries differently, so the table pins both sides."""
    differ = set()
    for row in ROWS:
        if row.rule != RSVD_KVM_3_10:
            continue
        values = path_values(row.mode, row.shape, row.flags)
        outcomes = {}
        for rule in RSVD_RULES:
            c = Checker(row.mode, maxphyaddr=row.m, cr0_wp=row.wp, efer_nx=row.nx,
                        cr4_pse=row.pse, impl_cls=FORMS[rule], gbpages=row.gbpages)
            c.load(values)
            s, _ = c.access(*row.access)
            outcomes[rule] = (c.cr3_outcome, s.fault, s.gfn)
        if outcomes[RSVD_INTEL] != outcomes[RSVD_KVM_3_10]:
            differ.add(row.what.split(":")[0].split(" (")[0])
    assert differ == {"3.10 reserves bit 8 of a non-leaf PML4E",
                      "3.10 reserves bit 8 of a non-leaf PDPTE",
                      "3.10 accepts a PAE PDPTE with A", "3.10 accepts a PAE PDPTE with D",
                      "3.10 never reads GBPAGES"}, differ


@pytest.mark.parametrize("row", ROWS, ids=[r.what for r in ROWS])
def test_architecture_outcome(row):
    c = Checker(row.mode, maxphyaddr=row.m, cr0_wp=row.wp, efer_nx=row.nx, cr4_pse=row.pse,
                impl_cls=FORMS[row.rule], gbpages=row.gbpages)
    assert c.world.spec.cpu.rsvd_rule == row.rule
    values = path_values(row.mode, row.shape, row.flags)
    if row.cr3 == "#GP":
        # Load a good PDPTE first, so the refused reload leaves a known register.
        c.load(path_values(row.mode, row.shape, {**row.flags, 3: 0}))
    c.load(values)
    assert c.cr3_outcome == row.cr3, f"{row.what}: CR3 load {c.cr3_outcome}"
    s, w = c.access(*row.access)  # spec and impl agree (or Discrepancy)
    got = ("fault", s.fault) if not s.ok else ("ok", s.gfn, s.level)
    assert got == row.expect, f"{row.what}: {got}"
    mem, lay = c.world.spec.mem, c.lay
    now = {lvl: mem.read(lay["gpa"][lvl], lay["size"]) for lvl in values}
    for lvl in row.d_on:
        assert now[lvl] & D, f"{row.what}: D not set at level {lvl}"
    for lvl in row.a_on:
        assert now[lvl] & A, f"{row.what}: A not set at level {lvl}"
    for lvl in set(values) - set(row.d_on):
        if row.mode == "pae" and lvl == 3:
            continue
        assert not (now[lvl] & D and not values[lvl] & D), f"{row.what}: D set at level {lvl}"
    for lvl in row.clean:
        assert now[lvl] == values[lvl], f"{row.what}: level {lvl} written"
