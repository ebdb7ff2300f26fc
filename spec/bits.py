"""Helpers that let one piece of arithmetic run on ints and on z3 terms.

The model's helpers are written once, with `&`, `|`, shifts, comparisons and
`ite` instead of `if`, so the code the differential tests execute on ints is
the very code proofs/ evaluates on z3 bit-vectors.  Only `ite` needs to know
which world it is in.  Note that z3's `>>` on bit-vectors is arithmetic: the
helpers mask before shifting so the sign bit never matters.
"""


def is_symbolic(x):
    """True for a z3 expression (duck-typed so spec/ needs z3 only for proofs)."""
    return hasattr(x, "sort") and hasattr(x, "sexpr")


def ite(cond, then, other):
    """`then if cond else other`, or z3.If when `cond` is symbolic."""
    if is_symbolic(cond):
        import z3

        return z3.If(cond, then, other)
    return then if cond else other


def select(values, index):
    """values[index] where `index` may be symbolic (an ite chain)."""
    if not is_symbolic(index):
        return values[index]
    out = values[-1]
    for k in range(len(values) - 2, -1, -1):
        out = ite(index == k, values[k], out)
    return out
