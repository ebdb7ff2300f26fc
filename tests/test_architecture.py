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
