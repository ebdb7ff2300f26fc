"""Architecture rules that a reviewer would otherwise check by hand."""

import ast
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def imports_of(path):
    tree = ast.parse(open(path).read())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def py_files(pkg):
    d = os.path.join(ROOT, pkg)
    for dirpath, _, files in os.walk(d):
        for f in files:
            if f.endswith(".py"):
                yield os.path.join(dirpath, f)


def test_spec_imports_neither_impl_nor_diff():
    for path in py_files("spec"):
        for mod in imports_of(path):
            assert not mod.split(".")[0] in ("impl", "diff", "proofs", "mmuspec"), (path, mod)


def test_impl_does_not_import_diff():
    for path in py_files("impl"):
        for mod in imports_of(path):
            assert mod.split(".")[0] not in ("diff", "mmuspec"), (path, mod)


def test_page_table_bits_are_defined_only_in_consts():
    pattern = re.compile(r"^\s*(PT\w*_MASK|PFERR_\w+|SPTE_\w+|ACC_\w+)\s*=", re.M)
    for pkg in ("spec", "impl", "diff", "proofs", "mmuspec"):
        for path in py_files(pkg):
            if path.endswith(os.path.join("spec", "consts.py")):
                continue
            assert not pattern.search(open(path).read()), path


def test_no_random_module_in_the_machines():
    for pkg in ("diff", "impl", "spec"):
        for path in py_files(pkg):
            assert "random" not in [m.split(".")[0] for m in imports_of(path)], path


# -- spec/consts.py against the facts ------------------------------------------------------
# Every value below is written out by hand, from /work/shared/kvm-mmu-facts.md
# (section numbers in the comments), from the x86 architecture for the control
# registers, and from the Intel SDM vol. 3 chapter 4 entry-format tables for the
# reserved bits (named by title: their numbers shift between SDM editions;
# consts.py cites 4-5, 4-8, 4-15 and 4-17).  Nothing here is read from
# consts.py or parsed from the facts file: a wrong constant fails here.
CONSTANTS = {
    # facts 1: numbers
    "PAGE_SHIFT": 12,
    "PAGE_SIZE": 4096,
    "PT64_LEVEL_BITS": 9,
    "PT64_ENT_PER_PAGE": 512,
    "PT32_LEVEL_BITS": 10,
    "PT32_ENT_PER_PAGE": 1024,
    "PT_PAGE_TABLE_LEVEL": 1,
    "PT_DIRECTORY_LEVEL": 2,
    "PT_PDPE_LEVEL": 3,
    "PT64_ROOT_LEVEL": 4,
    "PT32E_ROOT_LEVEL": 3,
    "PT32_ROOT_LEVEL": 2,
    "PT64_BASE_ADDR_MASK": 0x000FFFFFFFFFF000,
    "U64_MASK": 0xFFFFFFFFFFFFFFFF,
    "PTE_LIST_EXT_3_4": 4,
    "PTE_LIST_EXT_3_6": 3,
    "PTE_LIST_EXT_CHOICES": (3, 4),
    "RMAP_RECYCLE_THRESHOLD": 1000,
    "PTE_PREFETCH_NUM": 8,
    "KVM_MMU_HASH_SHIFT": 10,        # 1024 buckets, hash(gfn) = gfn & 1023
    "KVM_NUM_MMU_PAGES": 1024,
    "ACC_EXEC_MASK": 1,
    "ACC_WRITE_MASK": 2,
    "ACC_USER_MASK": 4,
    "ACC_ALL": 7,
    "PFERR_PRESENT_MASK": 0x1,       # error code bits: PRESENT 0, WRITE 1, USER 2, RSVD 3, FETCH 4
    "PFERR_WRITE_MASK": 0x2,
    "PFERR_USER_MASK": 0x4,
    "PFERR_RSVD_MASK": 0x8,
    "PFERR_FETCH_MASK": 0x10,
    # facts 1: 32-bit 4MB pages: base pde & 0xffc00000, pde bits 13-16 -> pa bits 32-35
    "PT32_4MB_BASE_MASK": 0xFFC00000,
    "PT32_PSE36_SHIFT": 13,
    "PT32_PSE36_BITS": 4,
    "PT32_PSE36_MASK": 0x1E000,
    # facts 2: entry bits 0 P, 1 W, 2 U, 3 PWT, 4 PCD, 5 A, 6 D, 7 PS, 8 G, 63 NX
    "PT_PRESENT_SHIFT": 0,
    "PT_WRITABLE_SHIFT": 1,
    "PT_USER_SHIFT": 2,
    "PT_PWT_SHIFT": 3,
    "PT_PCD_SHIFT": 4,
    "PT_ACCESSED_SHIFT": 5,
    "PT_DIRTY_SHIFT": 6,
    "PT_PAGE_SIZE_SHIFT": 7,
    "PT_GLOBAL_SHIFT": 8,
    "PT64_NX_SHIFT": 63,
    "PT_PRESENT_MASK": 0x1,
    "PT_WRITABLE_MASK": 0x2,
    "PT_USER_MASK": 0x4,
    "PT_PWT_MASK": 0x8,
    "PT_PCD_MASK": 0x10,
    "PT_ACCESSED_MASK": 0x20,
    "PT_DIRTY_MASK": 0x40,
    "PT_PAGE_SIZE_MASK": 0x80,
    "PT_GLOBAL_MASK": 0x100,
    "PT64_NX_MASK": 0x8000000000000000,
    # mmu.c: PT64_PERM_MASK = P | W | U | NX (need_remote_flush)
    "PT64_PERM_MASK": 0x8000000000000007,
    # facts 2: spte software bits, 3.6+ positions (HOST_WRITEABLE bit 10, MMU_WRITEABLE bit 11)
    "PT_FIRST_AVAIL_BITS_SHIFT": 10,
    "SPTE_HOST_WRITEABLE": 0x400,
    "SPTE_MMU_WRITEABLE": 0x800,
    # Control registers (architectural): CR0.WP bit 16, CR4.PSE bit 4, CR4.PAE bit 5,
    # EFER.LMA bit 10, EFER.NXE bit 11.
    "X86_CR0_WP": 0x10000,
    "X86_CR4_PSE": 0x10,
    "X86_CR4_PAE": 0x20,
    "EFER_LMA": 0x400,
    "EFER_NX": 0x800,
    # ... and what the live VMM sets for long mode (SDM vol. 3 2.5, 2.2.1; MSR index C000_0080H):
    # CR0.PE bit 0, ET bit 4, NE bit 5, PG bit 31; EFER.SCE bit 0, LME bit 8;
    # RFLAGS bit 1 reserved as 1, TF bit 8.
    "X86_CR0_PE": 0x1,
    "X86_CR0_ET": 0x10,
    "X86_CR0_NE": 0x20,
    "X86_CR0_PG": 0x80000000,
    "EFER_SCE": 0x1,
    "EFER_LME": 0x100,
    "MSR_EFER": 0xC0000080,
    "X86_EFLAGS_FIXED": 0x2,
    "X86_EFLAGS_TF": 0x100,
    # facts 8 and the SDM: entry sizes, address widths, PAE PDPTEs
    "PT32_ENT_SIZE": 4,
    "PT64_ENT_SIZE": 8,
    "PT32_BASE_ADDR_MASK": 0xFFFFF000,
    "PT32_VADDR_BITS": 32,
    "PT64_VADDR_BITS": 48,
    "PT64_PHYS_BITS": 52,
    "MAXPHYADDR_CHOICES": (36, 40, 46, 48, 52),  # the model's sample of MAXPHYADDR values (48: this host)
    "PT32E_PDPTE_SHIFT": 30,                 # index (addr >> 30) & 3
    "PT32E_NR_PDPTES": 4,
    "PT32E_CR3_PDPT_MASK": 0xFFFFFFE0,       # SDM "Use of CR3 with PAE paging": bits 31:5 locate the PDPT
    "PT_PAT_LARGE_SHIFT": 12,                # SDM: PAT is bit 12 of a 4MB, 2MB or 1GB page entry
    "PT_PAT_LARGE_MASK": 0x1000,
    # Reserved bits that depend neither on MAXPHYADDR nor on EFER.NX (SDM vol. 3 chapter 4):
    "PT32E_PDPTE_RSVD_MASK": 0x1E6,          # "PAE Page-Directory-Pointer-Table Entry": bits 2:1, 8:5
    "PT32_4MB_RSVD_MASK": 0x3E0000,          # "32-Bit PDE that Maps a 4-MByte Page": bits 21:(M-19)
                                             # with M = 36 (4 PSE-36 bits), as KVM's rsvd_bits(17, 21)
    "PT64_2MB_RSVD_MASK": 0x1FE000,          # "PDE that Maps a 2-MByte Page": bits 20:13
    "PT64_1GB_RSVD_MASK": 0x3FFFE000,        # "PDPTE that Maps a 1-GByte Page": bits 29:13
    "PT64_PML4E_RSVD_MASK": 0x80,            # "PML4 Entry": bit 7 (PS) reserved, must be 0
    # facts 4: 2.6.35's direct gfn mask, 2MB-aligned
    "PT64_DIR_BASE_ADDR_MASK": 0x000FFFFFFFE00000,
    # struct kvm_mmu_page arrays: sizeof(u64), sizeof(gfn_t)
    "SPTE_BYTES": 8,
    "GFN_T_BYTES": 8,
    # facts 7: lock break every BATCH_ZAP_PAGES zapped pages (3.11)
    "BATCH_ZAP_PAGES": 10,
}

A64 = 0x0000123456789ABC    # PT64 indexes 0x189, 0xb3, 0xd1, 0x24 at levels 1..4
TOP = 0x00007FFFFFFFFFFF    # the highest canonical lower-half address
A32 = 0xC0801234            # PT32 indexes 1, 0x302 at levels 1, 2
FUNCTIONS = {
    "KVM_HPAGE_GFN_SHIFT": [((1,), 0), ((2,), 9), ((3,), 18)],
    "KVM_PAGES_PER_HPAGE": [((1,), 1), ((2,), 512), ((3,), 262144)],
    "PT64_INDEX": [((A64, 1), 0x189), ((A64, 2), 0xB3), ((A64, 3), 0xD1), ((A64, 4), 0x24),
                   ((TOP, 1), 511), ((TOP, 3), 511), ((TOP, 4), 255), ((0x1000, 1), 1), ((0xFFF, 1), 0)],
    "PT32_INDEX": [((A32, 1), 1), ((A32, 2), 0x302), ((0xFFFFFFFF, 1), 1023), ((0xFFFFFFFF, 2), 1023),
                   ((0x3FFFFF, 2), 0), ((0x400000, 2), 1)],
    "PT64_LVL_ADDR_MASK": [((1,), 0x000FFFFFFFFFF000), ((2,), 0x000FFFFFFFE00000),
                           ((3,), 0x000FFFFFC0000000)],
    "PT64_LVL_OFFSET_MASK": [((1,), 0), ((2,), 0x1FF000), ((3,), 0x3FFFF000)],
    "PT32_LVL_ADDR_MASK": [((1,), 0xFFFFF000), ((2,), 0xFFC00000)],
    "PT32_LVL_OFFSET_MASK": [((1,), 0), ((2,), 0x3FF000)],
    "spte_to_pfn": [((0x8000000123456867,), 0x123456), ((0x000FFFFFFFFFF000,), 0xFFFFFFFFFF),
                    ((0xFFF,), 0)],
    "rsvd_bits": [((1, 2), 0x6), ((5, 8), 0x1E0), ((13, 20), 0x1FE000), ((52, 62), 0x7FF0000000000000),
                  ((3, 3), 0x8), ((3, 2), 0)],
}


def consts_mismatches(module):
    """Each way `module` (spec/consts.py or a copy) differs from the values
    written out above, one line each; and each public name of it that is not
    checked here (a new constant must get a checked value)."""
    import types

    def show(x):
        return hex(x) if type(x) is int else repr(x)

    bad = []
    for name, want in CONSTANTS.items():
        got = getattr(module, name, "<missing>")
        if type(got) is not type(want) or got != want:
            bad.append(f"{name} = {show(got)}, expected {show(want)}")
    for name, cases in FUNCTIONS.items():
        fn = getattr(module, name, None)
        if not callable(fn):
            bad.append(f"{name} is missing or not a function")
            continue
        for args, want in cases:
            got = fn(*args)
            if type(got) is not type(want) or got != want:
                bad.append(f"{name}({', '.join(map(show, args))}) = {show(got)}, expected {show(want)}")
    public = {n for n, v in vars(module).items()
              if not n.startswith("_") and not isinstance(v, types.ModuleType)}
    for name in sorted(public - CONSTANTS.keys() - FUNCTIONS.keys()):
        bad.append(f"{name} is not checked by tests/test_architecture.py: add its expected value")
    return bad


def test_consts_match_the_facts():
    from spec import consts

    assert consts_mismatches(consts) == []


def _consts_copy(tmp_path, edit):
    """spec/consts.py copied to tmp_path, `edit` applied to its text, loaded as its own module."""
    import importlib.util

    text = open(os.path.join(ROOT, "spec", "consts.py")).read()
    path = tmp_path / "consts_copy.py"
    path.write_text(edit(text))
    spec = importlib.util.spec_from_file_location("consts_copy", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_corrupted_constant_or_an_unchecked_one_is_reported(tmp_path):
    """The check on copies of consts.py (the real file is not touched): the
    reviewer's corruption of PT_USER_MASK, a wrong reserved mask, a wrong
    level mask, and a new constant without a checked value."""
    def sub(old, new):
        def edit(text):
            assert text.count(old) == 1, old
            return text.replace(old, new)
        return edit

    assert consts_mismatches(_consts_copy(tmp_path, lambda t: t)) == []
    bad = consts_mismatches(_consts_copy(tmp_path, sub("PT_USER_MASK = 1 << PT_USER_SHIFT",
                                                       "PT_USER_MASK = 1 << PT_PWT_SHIFT")))
    assert bad == ["PT_USER_MASK = 0x8, expected 0x4",
                   "PT64_PERM_MASK = 0x800000000000000b, expected 0x8000000000000007"]
    bad = consts_mismatches(_consts_copy(tmp_path, sub("rsvd_bits(5, 8)", "rsvd_bits(5, 7)")))
    assert bad == ["PT32E_PDPTE_RSVD_MASK = 0xe6, expected 0x1e6"]
    bad = consts_mismatches(_consts_copy(tmp_path, sub("PT64_BASE_ADDR_MASK = 0x000FFFFFFFFFF000",
                                                       "PT64_BASE_ADDR_MASK = 0x00FFFFFFFFFFF000")))
    assert "PT64_BASE_ADDR_MASK = 0xfffffffffff000, expected 0xffffffffff000" in bad
    assert "PT64_LVL_ADDR_MASK(0x2) = 0xffffffffe00000, expected 0xfffffffe00000" in bad
    bad = consts_mismatches(_consts_copy(tmp_path, lambda t: t + "\nEPT_VIOLATION_ACC_WRITE = 1 << 1\n"))
    assert bad == ["EPT_VIOLATION_ACC_WRITE is not checked by tests/test_architecture.py: "
                   "add its expected value"]
