"""The VM process: `python -m live.server RFD WFD PARENT_PID`.

It owns one live.machine.Machine (created on the first call that needs it)
and answers framed requests from its parent over two pipes:

  frame     8-byte little-endian length, then a pickle
  request   (method, args, kwargs); method is a Machine command, "batch"
            (a list of requests, answered as a list, stopping at the first
            error), "probe" (live.probe.measure()), "ping" or "close"
  reply     ("ok", result) or ("error", type name, message, errno, ioctl)

Why a process of its own: the KVM_RUN watchdog is SIGALRM from an interval
timer, and Python delivers signals only to its main thread, which here is
the thread in KVM_RUN whatever thread of the parent drives the VM.

It never outlives its parent: PR_SET_PDEATHSIG(SIGKILL) (the parent spawns
it from a thread that lives as long as the parent process, see live/vm.py),
and end of file on the request pipe (the parent's descriptors close when it
exits, however it exits) makes it close the VM and exit.
"""

import ctypes
import os
import pickle
import signal
import struct
import sys

PR_SET_PDEATHSIG = 1
HEADER = struct.Struct("<Q")
MACHINE_METHODS = frozenset((
    "set_user_memory_region", "memslot_create", "memslot_delete", "memslot_move",
    "memslot_dirty_log", "read_memory", "write_memory", "get_dirty_log", "madvise_dontneed",
    "create_vcpu", "access", "fetch", "invlpg", "mov_cr3", "set_cr0_wp", "set_efer_nx", "state",
    "spin", "last_instructions"))


def read_frame(fd):
    """One frame's payload, or None at end of file."""
    head = _read_exact(fd, HEADER.size)
    if head is None:
        return None
    (n,) = HEADER.unpack(head)
    body = _read_exact(fd, n)
    if body is None:
        raise EOFError("the pipe closed inside a frame")
    return pickle.loads(body)


def _read_exact(fd, n):
    parts, got = [], 0
    while got < n:
        chunk = os.read(fd, n - got)
        if not chunk:
            if got:
                raise EOFError("the pipe closed inside a frame")
            return None
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def write_frame(fd, obj):
    body = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    data = memoryview(HEADER.pack(len(body)) + body)
    while data:
        data = data[os.write(fd, data):]


class Server:
    def __init__(self):
        self.machine = None

    def handle(self, request):
        method, args, kwargs = request
        try:
            return ("ok", self.call(method, args, kwargs))
        except Exception as e:   # every error goes back to the parent, one line
            return ("error", type(e).__name__, str(e), getattr(e, "errno", None),
                    getattr(e, "ioctl", None))

    def call(self, method, args, kwargs):
        if method == "ping":
            return os.getpid()
        if method == "probe":
            from .probe import measure
            return measure()
        if method == "batch":
            out = []
            for m, a, k in args[0]:
                if m == "batch":
                    raise ValueError("batches do not nest")
                out.append(self.call(m, a, k))
            return out
        if method not in MACHINE_METHODS:
            raise ValueError(f"unknown VM method {method!r}")
        if self.machine is None:
            from .machine import Machine
            self.machine = Machine()
        return getattr(self.machine, method)(*args, **kwargs)

    def close(self):
        if self.machine is not None:
            self.machine.close()
            self.machine = None


def _die_with_parent(parent_pid):
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:   # the parent went away before prctl
        os._exit(0)


def main(argv):
    rfd, wfd, parent = (int(x) for x in argv[:3])
    _die_with_parent(parent)
    from .machine import _alarm
    signal.signal(signal.SIGALRM, _alarm)
    server = Server()
    try:
        while True:
            try:
                request = read_frame(rfd)
            except EOFError:
                break
            if request is None or request[0] == "close":
                if request is not None:
                    server.close()
                    write_frame(wfd, ("ok", None))
                break
            write_frame(wfd, server.handle(request))
    except BrokenPipeError:
        pass
    finally:
        server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
