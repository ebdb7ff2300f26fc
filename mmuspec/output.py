"""Terminal output: tables, progress (a live line on a terminal, plain lines when piped),
and the output folders a command writes (checked before any work starts)."""

import os
import sys
import tempfile
import time


class OutputError(Exception):
    """An output folder that cannot be written: the message is one line (exit 2)."""


def os_reason(e):
    """The one-line reason of an OSError: its strerror, else its first line."""
    return e.strerror or (str(e).splitlines() or [type(e).__name__])[0]


def writable_folder(path, what):
    """Make sure the command can write into folder `path` before it starts any
    work: create it if missing, then create and remove a probe file in it
    (permission bits alone do not say: root ignores them, /proc refuses
    anyway).  Returns `path`; raises OutputError naming `what` (e.g. "--save
    folder"), the path and the reason."""
    try:
        os.makedirs(path, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".mmuspec-probe-", dir=path)
        os.close(fd)
        os.remove(probe)
    except OSError as e:
        raise OutputError(f"cannot write to {what} {path}: {os_reason(e)}") from None
    return path


def table(headers, rows):
    """A plain aligned text table."""
    rows = [[str(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(headers)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()
    out = [line(headers), line(["-" * w for w in widths])]
    out += [line(r) for r in rows]
    return "\n".join(out)


class Progress:
    """Progress on stderr: rewritten in place on a terminal, a line per update when piped.

    When piped, updates are rate-limited to one line every `every` seconds.
    """

    def __init__(self, label, stream=None, every=10.0, quiet=False):
        self.label = label
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.every = every
        self.quiet = quiet
        self.last = 0.0
        self.dirty = False

    def __call__(self, res):
        if self.quiet:
            return
        msg = (f"{self.label}: {res.examples} examples, {res.steps} steps, "
               f"{res.seconds:.0f}s of {res.budget:.0f}s")
        if self.tty:
            self.stream.write("\r" + msg[:120].ljust(80))
            self.stream.flush()
            self.dirty = True
        elif time.monotonic() - self.last >= self.every:
            self.stream.write(msg + "\n")
            self.stream.flush()
            self.last = time.monotonic()

    def done(self):
        if self.tty and self.dirty:
            self.stream.write("\r" + " " * 80 + "\r")
            self.stream.flush()
