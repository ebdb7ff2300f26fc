"""TLBs: what a vCPU's CPU caches, and what the architecture lets it use.

Two pieces, both written once and used by every machine:

`Tlb` is one vCPU's hardware TLB as the spec and impl MMUs run it.  An
entry caches a completed translation: the linear page (at the size the
hardware walk found: 4K, 2MB or 1GB), the host pfn and guest gfn it maps,
the rights the walk ANDed (W, U, X), whether the leaf was dirty, and the
shadow (or TDP) pages the walk went through (a paging-structure cache: a
freed page among them is a use of freed memory).  Intel SDM vol. 3 4.10,
AMD APM vol. 2 5.5, as the facts the model keeps:

- a hit completes an access only if the cached rights allow it; a write
  through an entry whose dirty flag is clear walks the tables again to set
  D (AMD's locked update; Intel does not promise otherwise); a hit that is
  not allowed drops the entry (a page fault invalidates the translation of
  its address) and the access walks;
- a hit writes no A or D bit anywhere;
- entries go at a flush of this vCPU (kvm_flush_remote_tlbs, the local
  flush of KVM_REQ_TLB_FLUSH, a root load), at INVLPG of an address the
  entry covers, and whenever the hardware likes (`evict`, drawn by the
  state machine, and the oldest entry when a fill finds the TLB full).

`PermittedTranslations` is the architecture's side, kept by the oracle
machine that has no MMU: for one vCPU, every translation the guest's page
tables gave since the guest's last invalidation covering the address may
still be used (SDM 4.10.2-4.10.4: a CPU may cache any translation that
was valid, keep it after the paging structures change, and drop it at any
time; a stale entry with fewer rights may give a spurious #PF).  The
guest's stores are logged (`StoreLog`), so memory can be read as it was
at any earlier *version*; an INVLPG retires the versions up to it for the
page it names, a full flush (MOV CR3, a paging-mode or CR0.WP/CR4/EFER.NX
change) all of them.  The oracle turns the live versions of an access into
its permitted outcomes (diff/mmu.py: "stale translation"); the relaxed
mode of the live machine and unsync shadow pages use the same set.
"""

from collections import OrderedDict

from .consts import (
    ACC_EXEC_MASK, ACC_USER_MASK, ACC_WRITE_MASK, KVM_HPAGE_GFN_SHIFT, PAGE_SHIFT, PFERR_PRESENT_MASK,
    PFERR_RSVD_MASK,
)

TLB_CAPACITY = 64  # entries per vCPU unless the VM says otherwise


class TlbEntry:
    """One cached translation (a TLB entry with the paging-structure caches it used)."""

    __slots__ = ("level", "gfn", "pfn", "rights", "dirty", "pages", "span", "host_write")

    def __init__(self, level, gfn, pfn, rights, dirty, pages, span=None, host_write=None):
        self.level = level      # page size of the cached frames: 1, 2 or 3
        self.gfn = gfn          # guest frame of the page's first 4K
        self.pfn = pfn          # host frame of the page's first 4K
        self.rights = rights    # ACC_* the walk ANDed (the guest's, under TDP)
        self.dirty = dirty      # the leaf's D when cached (under TDP: guest and TDP leaf)
        self.pages = pages      # spt addresses of the shadow/TDP pages the walk read
        # address bits of the page an INVLPG invalidates as a whole (a 2MB guest
        # page cached as 4K pieces goes at once); the cached size by default
        self.span = PAGE_SHIFT + KVM_HPAGE_GFN_SHIFT(level) if span is None else span
        # the host's own W (the TDP leaf's); the same as the rights' under shadow paging
        self.host_write = bool(rights & ACC_WRITE_MASK) if host_write is None else host_write

    def frame(self, addr, shift=PAGE_SHIFT):
        """(gfn, pfn) of the 4K frame of `addr` inside this entry's page."""
        off = (addr >> shift) & ((1 << KVM_HPAGE_GFN_SHIFT(self.level)) - 1)
        return self.gfn + off, self.pfn + off

    def allows(self, write, user, fetch, wp=True):
        """The rights check on a hit; `wp` is the guest's CR0.WP (always 1 under
        shadow paging, where the host runs the guest with WP set)."""
        r = self.rights
        if (user and not r & ACC_USER_MASK) or (fetch and not r & ACC_EXEC_MASK):
            return False
        if write:
            return self.host_write and bool(r & ACC_WRITE_MASK or not (wp or user))
        return True


def _page_key(addr, level):
    return level, addr >> (PAGE_SHIFT + KVM_HPAGE_GFN_SHIFT(level))


class Tlb:
    """One vCPU's TLB: up to `capacity` entries, oldest evicted first on a full fill."""

    __slots__ = ("capacity", "entries", "fills", "hits", "flushes")

    def __init__(self, capacity=TLB_CAPACITY):
        self.capacity = capacity
        self.entries = OrderedDict()  # (level, page number) -> TlbEntry, oldest first
        self.fills = self.hits = self.flushes = 0

    def lookup(self, addr):
        """The entry covering linear address `addr`, or None."""
        if not self.entries:
            return None
        for level in (1, 2, 3):
            e = self.entries.get(_page_key(addr, level))
            if e is not None:
                return e
        return None

    def fill(self, addr, entry):
        if not self.capacity:
            return
        key = _page_key(addr, entry.level)
        self.entries.pop(key, None)
        while len(self.entries) >= self.capacity:
            self.entries.popitem(last=False)
        self.entries[key] = entry
        self.fills += 1

    def invalidate(self, addr):
        """INVLPG (or a page fault at `addr`): every entry whose page covers `addr`."""
        for key in [k for k, e in self.entries.items()
                    if (k[1] << (PAGE_SHIFT + KVM_HPAGE_GFN_SHIFT(k[0]))) >> e.span == addr >> e.span]:
            del self.entries[key]

    def flush(self):
        if self.entries:
            self.entries.clear()
        self.flushes += 1

    def flush_gfns(self, first, npages):
        """A flush of guest-physical range [first, first+npages) (the ranged flush of
        5.x kernels): the entries whose pages meet it."""
        for key in [k for k, e in self.entries.items()
                    if e.gfn < first + npages and first < e.gfn + (1 << KVM_HPAGE_GFN_SHIFT(e.level))]:
            del self.entries[key]

    def evict(self, pick):
        """The hardware drops an entry of its choosing (the `pick`-th, oldest first)."""
        if self.entries:
            key = list(self.entries)[pick % len(self.entries)]
            del self.entries[key]


class StoreLog:
    """The guest's stores to memory, in order, by 4-byte word: enough to read
    memory as it was at any earlier *version* (version k is the memory
    before store k; the current memory is version `n`)."""

    def __init__(self, mem):
        self.mem = mem          # spec.guest_memory.GuestMemory (its words dict)
        self.n = 0
        self.history = {}       # word index -> [(store index, old value)], in order

    def record(self, gpa, size):
        """Call before the store of `size` bytes at `gpa` changes the memory."""
        words = self.mem.words
        for w in range(gpa >> 2, (gpa + size + 3) >> 2):
            self.history.setdefault(w, []).append((self.n, words.get(w, 0)))
        self.n += 1

    def word_at(self, w, version):
        """Word `w` at `version`: the old value of the first store to it at or
        after that version, else its current value."""
        for idx, old in self.history.get(w, ()):
            if idx >= version:
                return old
        return self.mem.words.get(w, 0)

    def last_store_before(self, words, version, since):
        """The latest store index in [since, version) to any of `words`, or None."""
        best = None
        for w in words:
            for idx, _ in self.history.get(w, ()):
                if since <= idx < version and (best is None or idx > best):
                    best = idx
        return best


class MemoryAt:
    """A read-only view of guest memory at one version that notes the words
    read; what spec.walk.ArchCpu.walk needs of a memory (a walk of an old
    version writes no A/D bit)."""

    def __init__(self, history, version):
        self.history, self.version = history, version
        self.read_words = set()
        self.log = []

    def read(self, gpa, size):
        w = gpa >> 2
        self.read_words.add(w)
        value = self.history.word_at(w, self.version)
        if size == 8:
            self.read_words.add(w + 1)
            value |= self.history.word_at(w + 1, self.version) << 32
        return value

    def write(self, gpa, size, value, who):
        pass


class PermittedTranslations:
    """What one vCPU may still use, per the architecture: the translations of
    every memory version since its last full flush (`since`) that no INVLPG
    since has retired (`invlpgs`: (version, address) pairs)."""

    __slots__ = ("since", "invlpgs")

    def __init__(self, now):
        self.since = now
        self.invlpgs = []

    def flush(self, now):
        """MOV CR3, a paging-mode or control change: nothing older is live."""
        self.since = now
        self.invlpgs = []

    def invlpg(self, now, addr):
        """INVLPG while version `now` is current: it retires every version before
        `now` for the page of `addr` (the current one stays: the CPU may cache it
        again at once)."""
        self.invlpgs.append((now, addr))

    def stale_walks(self, history, walk_at, addr, page_bits):
        """The walks of `addr` at the earlier memory versions still live: a
        list of spec.walk.WalkResult, one per stretch of versions in which the
        walk read the same words unchanged, each a translation the CPU may have
        cached (it succeeded, or failed only on rights: a spurious #PF).

        `walk_at(mem)` walks `addr` on a memory view with the vCPU's current
        controls; `page_bits(res)` gives the size (address bits) of the page a
        walk reached.  From the current version back: a walk at version v reads
        some words; the latest store to one of them at or after `since`, store
        j, bounds the stretch (j, v] where that walk holds, and the memory
        before it (version j) is walked next.  A stretch is live unless an
        INVLPG of an address in the same page came after its last version ended."""
        out, version = [], history.n
        while True:
            view = MemoryAt(history, version)
            res = walk_at(view)
            if version < history.n and cached(res):
                bits = page_bits(res)
                if not any(v > version and (a >> bits) == (addr >> bits) for v, a in self.invlpgs):
                    out.append(res)
            j = history.last_store_before(view.read_words, version, self.since)
            if j is None:
                return out
            version = j


def cached(res):
    """A walk whose translation a TLB may hold: it reached its leaf through
    present entries without reserved bits (it succeeded, or faulted only on
    the access rights)."""
    return res.fault is None or (res.fault & PFERR_PRESENT_MASK and not res.fault & PFERR_RSVD_MASK)
