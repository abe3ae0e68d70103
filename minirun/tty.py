"""Relaying a container's pty to the user's terminal (`run -t`, `exec -t`).

The pty is opened inside the container (its own devpts instance) and its
master fd is passed up over the sync socket, as runc's console socket does, so
`tty` inside names a device that exists there.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import select
import signal
import termios
import tty as _tty
from collections.abc import Iterator


def copy_winsize(src: int, dst: int) -> None:
    try:
        size = fcntl.ioctl(src, termios.TIOCGWINSZ, b"\0" * 8)
        fcntl.ioctl(dst, termios.TIOCSWINSZ, size)
    except OSError:
        pass


@contextlib.contextmanager
def raw_terminal(fd: int) -> Iterator[None]:
    """Put the user's terminal in raw mode (if it is one) and restore it afterwards."""
    if not os.isatty(fd):
        yield
        return
    saved = termios.tcgetattr(fd)
    _tty.setraw(fd)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def relay(master: int, pidfd: int) -> None:
    """Copy stdin -> master and master -> stdout until the process behind pidfd exits."""
    if os.isatty(0):
        copy_winsize(0, master)
        signal.signal(signal.SIGWINCH, lambda *_: copy_winsize(0, master))
    readers = [master, pidfd, 0]
    with raw_terminal(0):
        while True:
            try:
                ready, _, _ = select.select(readers, [], [])
            except InterruptedError:
                continue
            if master in ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: every slave fd is closed
                    data = b""
                if not data:
                    readers.remove(master)
                else:
                    os.write(1, data)
            if 0 in ready:
                data = os.read(0, 65536)
                if not data:
                    readers.remove(0)
                    os.write(master, b"\x04")  # EOF on our stdin: ^D to the container
                else:
                    os.write(master, data)
            if pidfd in ready:
                # Drain what the container wrote before it exited.
                while master in readers:
                    r, _, _ = select.select([master], [], [], 0)
                    if not r:
                        break
                    try:
                        data = os.read(master, 65536)
                    except OSError:
                        data = b""
                    if not data:
                        break
                    os.write(1, data)
                return
