"""struct list_head, as kvm->arch.active_mmu_pages uses it.

A circular doubly linked list: list_add() puts an entry at the head,
list_del() and list_move() are O(1), iteration runs head to tail (newest to
oldest for the active list) and `reverse()` from the tail.  The zap walks
(kvm_zap_obsolete_pages) need list_for_each_entry_safe_reverse's rule: the
next entry (toward the head) is taken before the body runs; `prev_of()` is
that step.  Entries are any hashable objects (here: struct kvm_mmu_page).
"""


class ListHead:
    def __init__(self):
        self._next = {}   # entry -> the entry after it (toward the tail), None at the tail
        self._prev = {}   # entry -> the entry before it (toward the head), None at the head
        self.first = None
        self.last = None

    def __len__(self):
        return len(self._next)

    def __contains__(self, entry):
        return entry in self._next

    def __iter__(self):
        e = self.first
        while e is not None:
            nxt = self._next[e]
            yield e
            e = nxt

    def reverse(self):
        e = self.last
        while e is not None:
            prv = self._prev[e]
            yield e
            e = prv

    def next_of(self, entry):
        """The entry after `entry` (toward the tail), or None at the tail
        (list_for_each_entry_safe's step, taken before the body runs)."""
        return self._next[entry]

    def prev_of(self, entry):
        """The entry before `entry` (toward the head), or None at the head."""
        return self._prev[entry]

    def list_add(self, entry):
        """list_add(): insert at the head."""
        if entry in self._next:
            raise ValueError("list_add of an entry already on the list")
        self._prev[entry], self._next[entry] = None, self.first
        if self.first is not None:
            self._prev[self.first] = entry
        else:
            self.last = entry
        self.first = entry

    def list_del(self, entry):
        prv, nxt = self._prev.pop(entry), self._next.pop(entry)
        if prv is None:
            self.first = nxt
        else:
            self._next[prv] = nxt
        if nxt is None:
            self.last = prv
        else:
            self._prev[nxt] = prv

    def list_move(self, entry):
        """list_move() to this list's head."""
        self.list_del(entry)
        self.list_add(entry)
