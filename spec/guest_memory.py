"""Guest physical memory: 4K pages by gfn, read and written as 4- or 8-byte entries.

What the guest page walk reads its tables from and writes its A/D bits to.
Memory is sparse: a gfn nobody wrote reads as zeros, and every gfn exists
(the walk family does not model memslots or MMIO; a later issue's host side
does).  Words are stored as naturally aligned little-endian u32s, so a PAE
guest's 8-byte pte and a 32-bit guest's two 4-byte halves of it are the same
bytes, as on hardware.

Every write is logged as a `GuestWrite(gfn, offset, size, value, who)` with
`who` "guest" (a guest store, e.g. a page-table edit) or "walker" (an A/D
update made by a page walk).  The walk family compares both sides' logs.
"""

from typing import NamedTuple

from .consts import PAGE_SHIFT, PAGE_SIZE

GUEST = "guest"
WALKER = "walker"
WRITERS = (GUEST, WALKER)

_U32 = 0xFFFFFFFF


class GuestWrite(NamedTuple):
    """One logged write: `size` bytes of `value` at gfn:offset, by `who`."""

    gfn: int
    offset: int
    size: int
    value: int
    who: str

    @property
    def gpa(self):
        return (self.gfn << PAGE_SHIFT) | self.offset


class GuestMemory:
    """Sparse guest-physical memory with a write log."""

    __slots__ = ("words", "log")

    def __init__(self, words=None):
        self.words = dict(words) if words else {}  # gpa >> 2 -> u32 (zeros omitted)
        self.log = []

    def copy(self):
        """The same contents with an empty log."""
        return GuestMemory(self.words)

    @staticmethod
    def _check(gpa, size):
        if size not in (4, 8):
            raise ValueError(f"guest entry access of {size} bytes (4 or 8 only)")
        if gpa % size or gpa < 0:
            raise ValueError(f"guest entry access at {gpa:#x} is not {size}-byte aligned")

    def read(self, gpa, size):
        """The little-endian `size`-byte value at `gpa` (naturally aligned)."""
        self._check(gpa, size)
        w = self.words
        lo = w.get(gpa >> 2, 0)
        if size == 4:
            return lo
        return lo | (w.get((gpa >> 2) + 1, 0) << 32)

    def write(self, gpa, size, value, who):
        """Store `value` (`size` bytes) at `gpa` and log it as written by `who`."""
        self._check(gpa, size)
        if who not in WRITERS:
            raise ValueError(f"writer must be one of {WRITERS}, not {who!r}")
        if value < 0 or value >> (8 * size):
            raise ValueError(f"value {value:#x} does not fit in {size} bytes")
        self._store(gpa >> 2, value & _U32)
        if size == 8:
            self._store((gpa >> 2) + 1, value >> 32)
        self.log.append(GuestWrite(gpa >> PAGE_SHIFT, gpa & (PAGE_SIZE - 1), size, value, who))

    def _store(self, word, v):
        if v:
            self.words[word] = v
        else:
            self.words.pop(word, None)

    def written_by(self, who, start=0):
        """The log entries from index `start` on that `who` made."""
        return [w for w in self.log[start:] if w.who == who]

    def snapshot(self):
        """{gpa: u32} of every non-zero word: equal snapshots, equal memories."""
        return {k << 2: v for k, v in self.words.items()}

    def __eq__(self, other):
        return isinstance(other, GuestMemory) and self.words == other.words

    __hash__ = None


class ReadOnlyView:
    """A guest memory view whose writes are dropped: a walk made through it
    (the auditor's, a prediction of what a walk would do) has no effect."""

    def __init__(self, mem):
        self._mem = mem
        self.log = []

    def read(self, gpa, size):
        return self._mem.read(gpa, size)

    def write(self, gpa, size, value, who):
        pass
