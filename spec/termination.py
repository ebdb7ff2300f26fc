"""Step bounds for the loops the kernel bounds only by the state they walk.

A loop such as kvm_zap_obsolete_pages()'s restart walk, an rmap walker that
restarts after every drop, or a fault that is retried until the tables
permit the access ends because the state it walks shrinks or the fault
fixes something.  The model gives each such loop a `LoopBound` computed from
that state (pages on a list, entries of an rmap, retries a fault may need);
a loop that goes past it raises spec.errors.Livelock, which the diff
machines report as the oracle `livelock` with a shrunk counterexample.  The
bound is generous (it never fires on a faithful form), so a loop that does
not end is a finding, not a hang.
"""

from .errors import Livelock


class LoopBound:
    """Counts the iterations of one loop; past `limit` it raises Livelock."""

    __slots__ = ("what", "limit", "n")

    def __init__(self, what, limit):
        self.what = what
        self.limit = limit
        self.n = 0

    def step(self):
        self.n += 1
        if self.n > self.limit:
            raise Livelock(f"{self.what}: still looping after {self.limit} iterations, the "
                           f"bound the state gives it")
