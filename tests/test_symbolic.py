"""The symbolic checks: contracts (CrossHair), the inductive pte_list proof (z3).

CrossHair runs in worker processes (proofs.symbolic.run), as `mmuspec prove
--symbolic` runs it; budgets are small, so only quick, deterministic outcomes
are asserted (CrossHair's search is seeded).
"""

import itertools
import json

from crosshair.condition_parser import Pep316Parser
from crosshair.fnutil import FunctionInfo

from diff import families
from impl import variants
from proofs import contracts as C
from proofs import registry, symbolic
from proofs.pte_list_inductive import desc_fill_slot
from spec.memory import KernelMemory, RmapHead
from spec.pte_list import PteListOps, pte_list_head_of_desc


# -- z3: the inductive step ----------------------------------------------------------
def test_packing_inductive_is_proved_and_catches_the_hole_variant():
    o = registry.load_all()["pte_list.packing_inductive"]
    assert o.reach.startswith("for all inputs")
    assert o.run().verdict == registry.PROVED
    cls = families.get("rmap").impl_class(variants.get("rmap:remove-leaves-hole"))
    v = o.run(cls)
    assert v.verdict == registry.COUNTEREXAMPLE and "remove slot" in v.detail


def test_fill_encoding_matches_the_executed_pte_list_add():
    """desc_fill_slot encodes pte_list_add's fill loop: check it on every packed desc."""
    for ext in (3, 4):
        for n in range(1, ext):   # a non-full desc the walk stops at
            mem = KernelMemory(ext)
            d = mem.alloc_desc()
            d.sptes[:n] = [0x1000_0008 * (k + 1) for k in range(n)]
            before = tuple(d.sptes)
            head = RmapHead(pte_list_head_of_desc(d.addr))
            PteListOps(mem).pte_list_add(0x7000_0000, head)
            assert tuple(d.sptes) == desc_fill_slot(before, 0x7000_0000), (ext, n)


# -- the contracts, concretely: every layout within the bound ------------------------
def _posts(fn):
    return Pep316Parser().get_fn_conditions(FunctionInfo.from_fn(fn))


def _holds(fn, **a):
    conds = _posts(fn)
    if not all(p.evaluate(a) for p in conds.pre):
        return None
    env = dict(a, __return__=fn(**a))
    return all(p.evaluate(env) for p in conds.post)


def _layouts():
    for ext in (3, 4):
        yield ext, False, []
        yield ext, True, [1]
        for n in (1, 2, 3):
            for shape in itertools.product(range(1, ext + 1), repeat=n):
                yield ext, False, list(shape)


def test_pte_list_contracts_hold_on_every_layout():
    """Exhaustive over the bound, concretely (a test, not CrossHair): the contracts are
    not vacuous and the plain impl meets them."""
    checked = 0
    for ext, bare, shape in _layouts():
        assert _holds(C.pte_list_add, ext=ext, bare=bare, shape=shape)
        assert _holds(C.rmap_iterate, ext=ext, bare=bare, shape=shape)
        for k in range(1, sum(shape) + 2):
            assert _holds(C.pte_list_remove, ext=ext, bare=bare, shape=shape, k=k), (ext, shape, k)
            checked += 1
    assert checked > 500


def test_walker_contracts_hold_and_name_the_variant_concretely():
    flags = [0b00011, 0b10101, 0b01001]   # W+A, W+D+pfn2, W+PS
    a = dict(ext=3, bare=False, shape=[3], flags=flags, accessed=True)
    for fn in (C.kvm_unmap_rmapp, C.kvm_age_rmapp, C.kvm_test_age_rmapp, C.kvm_mmu_unlink_parents):
        assert _holds(fn, **a), fn.__name__
    assert _holds(C.rmap_write_protect, level=1, **a)
    large = dict(a, flags=[0b01011, 0b10100, 0b01001])   # W sptes large above level 1
    assert _holds(C.rmap_write_protect, level=2, **large)
    assert _holds(C.kvm_set_pte_rmapp, host_writable=True, new_pfn=3, **a)
    C.bind(variants.get("rmap:next-after-drop"))
    try:
        assert _holds(C.kvm_unmap_rmapp, **a) is False
    finally:
        C.bind(None)


# -- CrossHair ----------------------------------------------------------------------
def test_plain_contracts_find_nothing_within_a_small_budget():
    rs = symbolic.run(None, seconds=3, names=["pte_list_remove", "is_obsolete_sp"])
    assert [r.verdict for r in rs] == [symbolic.NONE, symbolic.NONE], [r.summary() for r in rs]
    assert all(r.paths > 0 for r in rs)
    assert all("proved" not in r.summary() for r in rs)
    assert rs[1].exhausted   # 36 paths: the whole bound


def test_variants_are_caught_with_inputs_in_kernel_terms(tmp_path):
    cases = [("rmap:remove-leaves-hole", "pte_list_remove"),
             ("walk:pse36-dropped", "walker address arithmetic (architecture vs walk_addr)")]
    for qual, target in cases:
        var = variants.get(qual)
        (r,) = symbolic.run(var, seconds=6, names=[target])
        assert r.verdict == symbolic.COUNTEREXAMPLE and r.confirmed, (qual, r.summary(), r.message)
        assert r.kernel_terms and r.violated
        json_path, py_path = symbolic.save(r, str(tmp_path))
        data = json.load(open(json_path))
        assert data["variant"] == qual and data["inputs"] == r.inputs
        assert symbolic.holds(data) is False          # the variant still breaks it
        assert symbolic.holds(data, variant=None) is True   # the plain impl does not
        if qual.startswith("rmap:"):
            assert "PTE_LIST_EXT=" in " ".join(r.kernel_terms)


def test_cli_symbolic_variant_caught_and_usage(capsys):
    """`mmuspec prove --symbolic`, in this process (the CrossHair runs are worker
    processes either way): exit 1 and JSON for a caught variant, exit 2 for a bad family."""
    import io

    from mmuspec import cli

    out = io.StringIO()
    code = cli.main(["prove", "--symbolic", "--variant", "zap:one-bit-gen-invalid-root",
                     "--per-function", "3", "--json"], out=out)
    assert code == 1, capsys.readouterr().err
    data = json.loads(out.getvalue())
    names = {r["name"]: r for r in data["results"]}
    assert names["is_obsolete_sp"]["verdict"] == "counterexample"
    assert "proved" not in out.getvalue().replace("never a proof", "")
    capsys.readouterr()
    assert cli.main(["prove", "--symbolic", "--family", "nope"], out=io.StringIO()) == 2
    assert "nope" in capsys.readouterr().err


def test_every_variant_family_has_targets():
    for v in variants.load_all().values():
        assert symbolic.select(v), v.qualname


def test_unsync_targets_catch_a_variant_and_pass_the_plain_impl(tmp_path):
    """The unsync family's CrossHair targets: mmu_need_write_protect's contract is
    searched to the end of its (small) path tree on the plain impl, and catches
    the variant that unsyncs a gfn a page above level 1 shadows."""
    (plain,) = symbolic.run(None, seconds=4, names=["mmu_need_write_protect"])
    assert plain.verdict == symbolic.NONE and plain.paths > 0, plain.summary()
    assert "proved" not in plain.summary()
    var = variants.get("unsync:need-write-protect-ignores-upper")
    assert [t.name for t in symbolic.select(var)][:1] == ["mmu_need_write_protect"]
    (r,) = symbolic.run(var, seconds=4, names=["mmu_need_write_protect"])
    assert r.verdict == symbolic.COUNTEREXAMPLE and r.confirmed, (r.summary(), r.message)
    assert "level 2" in r.kernel_terms[0] or "level 3" in r.kernel_terms[0], r.kernel_terms
    json_path, _ = symbolic.save(r, str(tmp_path))
    data = json.load(open(json_path))
    assert symbolic.holds(data) is False and symbolic.holds(data, variant=None) is True
