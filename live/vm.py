"""LiveVm: a live KVM VM running the agent, usable from any thread.

The VM lives in a child process (live/server.py) that this object starts
and talks to over two pipes.  Every method is one request and one reply
(or `batch` for many); the child bounds each guest command by its SIGALRM
watchdog (1 s), and this side bounds each reply by its own timeout, after
which it kills the child and raises LiveVmError.  close() ends the child
and closes both pipes; so do leaving a `with` block, garbage collection and
interpreter exit.  The child is started from one long-lived spawner thread,
so its PR_SET_PDEATHSIG fires when this process ends, not when the thread
that made the LiveVm does.

Commands (the machine's API, returning live.machine.Outcome records):
access(vcpu, gva, kind, size, value=None, cpl=0) with kind read/write/rmw/
fetch, invlpg, mov_cr3, set_cr0_wp, set_efer_nx, state, spin,
last_instructions; memory: memslot_create/delete/move/dirty_log,
set_user_memory_region, read_memory, write_memory (before the first
KVM_RUN only), get_dirty_log, madvise_dontneed; create_vcpu.
"""

import concurrent.futures
import os
import select
import subprocess
import sys
import threading
import time
import weakref

from .kvm import KvmError, usable
from .server import read_frame, write_frame

REPLY_TIMEOUT = 10.0      # a command takes at most ~1 s (the watchdog); this is the backstop
STARTUP_TIMEOUT = 30.0
PER_BATCH_ITEM = 1.5      # added to REPLY_TIMEOUT per command of a batch
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_spawner = None
_spawner_lock = threading.Lock()
_live = weakref.WeakSet()


class LiveVmError(RuntimeError):
    """The VM process failed, timed out or went away."""


def _spawn(argv, pass_fds, env):
    """Popen from the one spawner thread (see the module docstring)."""
    global _spawner
    with _spawner_lock:
        if _spawner is None:
            _spawner = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="live-spawner")
    return _spawner.submit(subprocess.Popen, argv, pass_fds=pass_fds, env=env,
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           close_fds=True).result()


def _reap(proc, fds):
    """Close our pipe ends and make sure the child is gone (finalizer-safe)."""
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass
    if proc.poll() is None:
        try:
            proc.wait(timeout=2.0)   # it exits on end of file
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class VmProcess:
    """The child process and its framed request/reply pipes."""

    def __init__(self, timeout=REPLY_TIMEOUT):
        ok, why = usable()
        if not ok:
            raise LiveVmError(why)
        self.timeout = timeout
        self.lock = threading.Lock()
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        env = dict(os.environ)
        env["PYTHONPATH"] = _ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        try:
            self.proc = _spawn([sys.executable, "-m", "live.server", str(to_child_r),
                                str(from_child_w), str(os.getpid())],
                               (to_child_r, from_child_w), env)
        except BaseException:
            for fd in (to_child_r, to_child_w, from_child_r, from_child_w):
                os.close(fd)
            raise
        os.close(to_child_r)
        os.close(from_child_w)
        self.wfd, self.rfd = to_child_w, from_child_r
        self.pid = self.proc.pid
        self.closed = False
        self._finalizer = weakref.finalize(self, _reap, self.proc, (self.wfd, self.rfd))
        _live.add(self)
        self.call("ping", timeout=STARTUP_TIMEOUT)

    def call(self, method, *args, timeout=None, **kwargs):
        with self.lock:
            if self.closed:
                raise LiveVmError("the VM is closed")
            try:
                write_frame(self.wfd, (method, args, kwargs))
                reply = self._read_reply(self.timeout if timeout is None else timeout)
            except (BrokenPipeError, EOFError, OSError) as e:
                code = self.proc.poll()
                self._abandon()
                raise LiveVmError(f"the VM process went away (exit code {code}): {e}") from None
        if reply[0] == "ok":
            return reply[1]
        _, kind, msg, err, ioctl = reply
        if kind in ("ValueError", "TypeError"):
            raise ValueError(msg)
        if kind == "KvmError":
            raise KvmError(ioctl, err)
        raise LiveVmError(f"{kind}: {msg}")

    def _read_reply(self, timeout):
        deadline = time.monotonic() + timeout
        poller = select.poll()
        poller.register(self.rfd, select.POLLIN | select.POLLHUP | select.POLLERR)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self._abandon()
                raise LiveVmError(f"the VM process did not answer within {timeout:g} s: killed it")
            if poller.poll(left * 1000):
                break
        reply = read_frame(self.rfd)
        if reply is None:
            raise EOFError("end of file on the reply pipe")
        return reply

    def _abandon(self):
        """Kill the child (a timeout or a broken pipe) and release everything."""
        self.closed = True
        if self.proc.poll() is None:
            self.proc.kill()
        self._finalizer()

    def close(self):
        with self.lock:
            if self.closed:
                return
            self.closed = True
            try:
                write_frame(self.wfd, ("close", (), {}))
                self._read_reply(5.0)
            except Exception:
                pass
            self._finalizer()

    def _forget_after_fork(self):
        """In a forked child: drop our copies of the pipes, leave the VM alone."""
        self.closed = True
        self._finalizer.detach()
        for fd in (self.wfd, self.rfd):
            try:
                os.close(fd)
            except OSError:
                pass


def _after_fork_in_child():
    global _spawner, _spawner_lock
    _spawner, _spawner_lock = None, threading.Lock()   # the spawner thread did not fork
    for p in list(_live):
        p._forget_after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)


class LiveVm:
    """One live VM with the agent; see the module docstring."""

    def __init__(self, timeout=REPLY_TIMEOUT):
        self._p = VmProcess(timeout)

    @property
    def pid(self):
        """The VM process's pid."""
        return self._p.pid

    @property
    def closed(self):
        return self._p.closed

    def _call(self, method, *args, **kwargs):
        return self._p.call(method, *args, **kwargs)

    # memory
    def set_user_memory_region(self, slot, gpa, size, flags=0):
        return self._call("set_user_memory_region", slot, gpa, size, flags)

    def memslot_create(self, slot, base_gfn, npages, readonly=False, dirty_log=False):
        return self._call("memslot_create", slot, base_gfn, npages, readonly, dirty_log)

    def memslot_delete(self, slot):
        return self._call("memslot_delete", slot)

    def memslot_move(self, slot, base_gfn):
        return self._call("memslot_move", slot, base_gfn)

    def memslot_dirty_log(self, slot, on):
        return self._call("memslot_dirty_log", slot, on)

    def read_memory(self, gpa, size):
        return self._call("read_memory", gpa, size)

    def write_memory(self, gpa, data):
        return self._call("write_memory", gpa, bytes(data))

    def get_dirty_log(self, slot):
        return self._call("get_dirty_log", slot)

    def madvise_dontneed(self, slot, gfn, npages):
        return self._call("madvise_dontneed", slot, gfn, npages)

    # vCPUs and guest commands
    def create_vcpu(self, vcpu, cr3, cr0_wp=True, efer_nx=True):
        return self._call("create_vcpu", vcpu, cr3, cr0_wp, efer_nx)

    def access(self, vcpu, gva, kind, size=8, value=None, cpl=0):
        return self._call("access", vcpu, gva, kind, size, value, cpl)

    def fetch(self, vcpu, gva, cpl=0):
        return self._call("fetch", vcpu, gva, cpl)

    def invlpg(self, vcpu, gva):
        return self._call("invlpg", vcpu, gva)

    def mov_cr3(self, vcpu, cr3):
        return self._call("mov_cr3", vcpu, cr3)

    def set_cr0_wp(self, vcpu, on):
        return self._call("set_cr0_wp", vcpu, on)

    def set_efer_nx(self, vcpu, on):
        return self._call("set_efer_nx", vcpu, on)

    def state(self, vcpu):
        return self._call("state", vcpu)

    def spin(self, vcpu):
        return self._call("spin", vcpu)

    def last_instructions(self, vcpu):
        return self._call("last_instructions", vcpu)

    def batch(self, requests):
        """Many commands in one round trip: [(method, args, kwargs), ...] ->
        [result, ...]; the first error raises (the commands before it ran)."""
        reqs = [(m, tuple(a), dict(k)) for m, a, k in requests]
        return self._call("batch", reqs, timeout=self._p.timeout + PER_BATCH_ITEM * len(reqs))

    def close(self):
        self._p.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

