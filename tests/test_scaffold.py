"""`mmuspec new-variant`: the skeleton registers, and its test fails until filled in."""

import shutil
import subprocess
import sys

import pytest

from mmuspec.scaffold import ScaffoldError, new_variant, replaceable

REPO = __import__("os").path.dirname(__import__("os").path.dirname(__file__))


def test_replaceable_lists_the_impl_seams():
    from impl.mmu import ShadowMmu

    names = replaceable(ShadowMmu)
    assert {"kvm_zap_obsolete_pages", "is_obsolete_gen", "mmu_valid_gen_bits",
            "kvm_mmu_page_get_gfn", "pte_prefetch_window"} <= set(names)


def test_bad_input_is_refused(tmp_path):
    with pytest.raises(ScaffoldError, match="unknown variant family"):
        new_variant("nosuch", "x", tmp_path)
    with pytest.raises(ScaffoldError, match="lower-case"):
        new_variant("zap", "Bad Name", tmp_path)
    with pytest.raises(ScaffoldError, match="already exists"):
        new_variant("zap", "no-root-reload", tmp_path)


def test_skeleton_registers_and_its_test_fails_until_filled(tmp_path):
    """In a copy of the repository: the new module is listed by `mmuspec list`
    with no other edit, and the generated test fails (nothing replaced yet)."""
    root = tmp_path / "repo"
    shutil.copytree(REPO, root, ignore=shutil.ignore_patterns(".venv", ".git", "__pycache__",
                                                             "mmuspec-out", "*.egg-info"))
    module, test = new_variant("zap", "my-patch", root)
    assert module.endswith("zap_my_patch.py") and (root / module).exists()
    with pytest.raises(ScaffoldError, match="exists"):
        new_variant("zap", "my-patch", root)
    listed = subprocess.run([sys.executable, "-c", "import sys; sys.path.insert(0, '.');"
                             "from impl import variants; print('zap:my-patch' in variants.load_all())"],
                            cwd=root, capture_output=True, text=True)
    assert listed.stdout.strip() == "True", listed.stderr
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test],
                         cwd=root, capture_output=True, text=True)
    assert run.returncode == 1 and "fill in the variant's replacements" in run.stdout
