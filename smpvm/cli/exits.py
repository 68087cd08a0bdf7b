"""Exit statuses, and the faults around a command that must not change them.

Every command ends with one of these statuses (README, "Exit status"):

* 0 -- ran to the end and found nothing;
* 1 -- found violations (even when the work was cut short: a finding is final);
* 2 -- bad input, or a model that misbehaves: one line on stderr saying what to fix;
* 3 -- incomplete: interrupted (Ctrl-C, SIGTERM), runs lost with their workers, or a
  cluster that went away; nothing was found in what did finish, and ``--resume``
  continues where it stopped;
* 70 -- a bug in smpvm itself.

A reader that stops early (``smpvm explore ... | head -1``) is no reason to
change the verdict: output to a closed pipe is dropped and the command runs on.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import sys

EXIT_OK = 0
EXIT_FOUND = 1
EXIT_BAD_INPUT = 2
EXIT_INCOMPLETE = 3
EXIT_INTERNAL = 70

#: Worse comes later: bad input outranks a finding, which outranks an incomplete
#: search, which outranks a clean one.
_RANK = (EXIT_OK, EXIT_INCOMPLETE, EXIT_FOUND, EXIT_BAD_INPUT, EXIT_INTERNAL)


def worst(codes) -> int:
    """The status that sums up several (see ``_RANK``)."""
    return max(codes, key=lambda c: _RANK.index(c) if c in _RANK else len(_RANK))


def verdict(found: bool, incomplete: bool) -> int:
    """1 when something was found, else 3 when the work was cut short, else 0."""
    return EXIT_FOUND if found else EXIT_INCOMPLETE if incomplete else EXIT_OK


class _DropWhenClosed(io.RawIOBase):
    """A file descriptor whose writes vanish once its reader has gone (EPIPE)."""

    def __init__(self, fd: int):
        self.fd = fd
        self.closed_by_reader = False

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        if not self.closed_by_reader:
            try:
                return os.write(self.fd, b)
            except BrokenPipeError:
                self.closed_by_reader = True
        return len(b)


@contextlib.contextmanager
def tolerant_stdout():
    """Replace the real stdout by one that drops output once the reader has gone."""
    real = sys.stdout
    if real is not sys.__stdout__ or real is None:
        yield  # captured (tests) or absent: nothing to guard
        return
    try:
        fd = real.fileno()
    except (OSError, ValueError, AttributeError):
        yield
        return
    real.flush()
    sys.stdout = io.TextIOWrapper(io.BufferedWriter(_DropWhenClosed(fd)),
                                  encoding=real.encoding, errors=real.errors,
                                  line_buffering=real.line_buffering)
    try:
        yield
    finally:
        with contextlib.suppress(OSError, ValueError):
            sys.stdout.flush()
        sys.stdout = real


@contextlib.contextmanager
def sigterm_interrupts():
    """SIGTERM stops a command the way Ctrl-C does: finished work kept, status 3."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt
    try:
        old = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)
