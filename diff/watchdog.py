"""The per-example wall-clock watchdog: no campaign, replay or test can hang.

The model's own loops carry step bounds (spec/termination.py), which report
a loop that does not end as the oracle `livelock`, deterministically and
with a shrinkable counterexample.  The watchdog backs them up for a loop
that has no bound (a variant's own code, a mutant, a bug in the harness):
a thread that watches the campaign thread and, when one example (one run of
the state machine, or one replay) has run longer than `seconds`, raises
`WatchdogExpired` in that thread.

The exception is raised asynchronously (CPython's PyThreadState_SetAsyncExc):
it lands at the next bytecode the stuck thread runs, which for a Python loop
is at once.  It derives from BaseException, not Exception, so Hypothesis
does not take it for a failure to shrink (shrinking candidates that each
hang until the watchdog fires would cost minutes); it goes straight up to
the campaign, which reports the run's trace as a `livelock` discrepancy.
"""

import ctypes
import threading
import time

DEFAULT_EXAMPLE_SECONDS = 20.0  # one example of 100 steps takes well under a second
_POLL = 0.05


class WatchdogExpired(BaseException):
    """One example ran past the watchdog's limit (a loop that does not end)."""


def _raise_in(thread_id, exc_type):
    """Raise exc_type in the thread `thread_id` at its next bytecode."""
    n = ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), ctypes.py_object(exc_type))
    if n > 1:  # more than one thread hit: undo, as the CPython docs ask
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), None)


class Watchdog:
    """A context manager around a campaign (or a replay) in the current thread.

    `start_example()` marks the start of one example, `end_example()` its
    end; an example still running `seconds` after its start is interrupted
    with WatchdogExpired.  `fired` says whether it happened (and
    `what` names the example).
    """

    def __init__(self, seconds=DEFAULT_EXAMPLE_SECONDS):
        self.seconds = seconds
        self.fired = False
        self._target = threading.get_ident()
        self._started = None
        self._stop = threading.Event()
        self._thread = None

    def __enter__(self):
        self._thread = threading.Thread(target=self._watch, name="mmuspec-watchdog", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._started = None
        if self._thread is not None:
            self._thread.join()
        return False

    def start_example(self):
        self._started = time.monotonic()

    def end_example(self):
        self._started = None

    def _watch(self):
        while not self._stop.wait(_POLL):
            started = self._started
            if started is not None and time.monotonic() - started > self.seconds:
                self.fired = True
                self._started = None
                _raise_in(self._target, WatchdogExpired)


_current = threading.local()


def current():
    """The watchdog of this thread's campaign, or None."""
    return getattr(_current, "dog", None)


class watching:
    """`with watching(seconds):` — a Watchdog that DiffMachine and replays find
    through current(), so each example is timed."""

    def __init__(self, seconds=DEFAULT_EXAMPLE_SECONDS):
        self.dog = Watchdog(seconds)
        self._outer = None

    def __enter__(self):
        self._outer = current()
        _current.dog = self.dog
        return self.dog.__enter__()

    def __exit__(self, *exc):
        _current.dog = self._outer
        return self.dog.__exit__(*exc)
