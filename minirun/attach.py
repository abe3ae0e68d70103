"""`run -dit` and `minirun attach`: a detached container's terminal, reachable later.

With -t and -d, the monitor stays a (Python) process that holds the pty master
for the container's whole life: it copies what the container writes to its log
(`minirun logs`) and to every attached client, and what a client types to the
container (with -i). Clients connect to a unix socket in the container's
directory (root only: the directory is 0711 and the socket 0600), bound and
reached through /proc/self/fd/N/ so a long state root never exceeds the
108-byte limit of socket paths.

`attach` puts the user's terminal in raw mode and copies both ways until the
container exits (it then exits with the container's code, as Docker's does) or
the user types the detach keys (ctrl-p ctrl-q by default, `--detach-keys`),
which leave the container running.
"""
from __future__ import annotations

import os
import select
import socket

from .errors import MinirunError, UsageError
from .record import Container

SOCKET = "attach.sock"
DEFAULT_KEYS = "ctrl-p,ctrl-q"


def parse_keys(spec: str) -> bytes:
    """Docker's --detach-keys: a comma-separated list of `ctrl-X` (X a letter or one of
    @[\\]^_) or single characters."""
    out = bytearray()
    for part in spec.split(","):
        if len(part) == 1:
            out.append(ord(part))
        elif part.lower().startswith("ctrl-") and len(part) == 6:
            ch = part[5].upper()
            if not ("A" <= ch <= "Z" or ch in "@[\\]^_"):
                raise UsageError(f"invalid --detach-keys {spec!r}: ctrl-{part[5]}")
            out.append(ord(ch) & 0x1F)
        else:
            raise UsageError(f"invalid --detach-keys {spec!r}: ctrl-X or one character, "
                             "comma-separated")
    if not out:
        raise UsageError("--detach-keys must not be empty")
    return bytes(out)


def _at(c: Container) -> tuple[int, str]:
    """A short path to the socket: (the directory's fd, /proc/self/fd/N/attach.sock)."""
    fd = os.open(c.dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    return fd, f"/proc/self/fd/{fd}/{SOCKET}"


# -- the monitor's side ---------------------------------------------------------

def serve(c: Container, pid: int, master: int, log_fd: int) -> int:
    """Relay the pty until PID 1 exits; its wait status."""
    from . import kernel as k
    dirfd, path = _at(c)
    try:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            listener.bind(path)
        finally:
            os.umask(old)
        listener.listen(4)
    finally:
        os.close(dirfd)
    pidfd = k.kernel.pidfd_open(pid)
    clients: list[socket.socket] = []
    interactive = c.config.interactive

    from .logfile import record

    def out(data: bytes) -> None:
        try:  # a terminal's output is one stream, as in Docker's log: stdout
            os.write(log_fd, record(data, "stdout"))
        except OSError:
            pass
        for cl in list(clients):
            try:
                cl.sendall(data)
            except OSError:
                clients.remove(cl)
                cl.close()

    try:
        while True:
            try:
                ready, _, _ = select.select([master, listener, pidfd, *clients], [], [])
            except InterruptedError:
                continue
            if master in ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: no slave open any more
                    data = b""
                if data:
                    out(data)
            if listener in ready:
                cl, _ = listener.accept()
                clients.append(cl)
            for cl in [x for x in clients if x in ready]:
                try:
                    data = cl.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    clients.remove(cl)
                    cl.close()
                elif interactive:
                    try:
                        os.write(master, data)
                    except OSError:
                        pass
            if pidfd in ready:
                _drain(master, out)
                break
    finally:
        for cl in clients:
            cl.close()  # EOF: the attached clients learn the container exited
        listener.close()
        os.close(pidfd)
        try:
            os.unlink(c.dir / SOCKET)
        except OSError:
            pass
    _, status = os.waitpid(pid, 0)
    return status


def _drain(master: int, out) -> None:
    while True:
        r, _, _ = select.select([master], [], [], 0)
        if not r:
            return
        try:
            data = os.read(master, 65536)
        except OSError:
            return
        if not data:
            return
        out(data)


# -- the user's side ----------------------------------------------------------------

def attach(paths, ref: str, keys: bytes) -> int:
    """Relay the terminal to the container; the container's exit code, or 0 on detach."""
    from .state import is_running, lookup
    from .tty import raw_terminal
    c = lookup(paths, ref)
    if not is_running(c):
        raise MinirunError(f"container {c.name} is not running: you cannot attach to a "
                           "stopped container, start it first")
    if not c.config.tty or not c.config.detach:
        raise MinirunError(f"container {c.name} has no terminal to attach to (run -dit)")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dirfd, path = _at(c)
    try:
        sock.connect(path)
    except OSError as e:
        raise MinirunError(f"cannot attach to {c.name}: {e.strerror}") from None
    finally:
        os.close(dirfd)
    held = b""  # typed bytes that may be the start of the detach keys
    readers = [sock, 0]
    with raw_terminal(0):
        while True:
            try:
                ready, _, _ = select.select(readers, [], [])
            except InterruptedError:
                continue
            if sock in ready:
                data = sock.recv(65536)
                if not data:
                    break  # the container exited
                os.write(1, data)
            if 0 in ready:
                data = os.read(0, 65536)
                if not data:
                    readers.remove(0)
                    continue
                send, held, detached = scan(held, data, keys)
                if send:
                    sock.sendall(send)
                if detached:
                    sock.close()
                    os.write(2, b"\r\nread escape sequence\r\n")
                    return 0
    sock.close()
    from .manage import wait
    return wait(paths, c.id)


def scan(held: bytes, data: bytes, keys: bytes) -> tuple[bytes, bytes, bool]:
    """Look for the detach keys in what was typed: (what to send on, what to hold back as
    a possible start of the keys, whether they were typed)."""
    send = bytearray()
    for b in data:
        held += bytes([b])
        if keys.startswith(held):
            if held == keys:
                return bytes(send), b"", True
            continue
        # not the keys: the held bytes go on (the last one may begin them anew)
        while held and not keys.startswith(held):
            send.append(held[0])
            held = held[1:]
    return bytes(send), held, False


def follow(paths, c: Container, offset: int) -> int:
    """`start -a` of a container without a terminal: its log from `offset` until it
    exits (stdout and stderr each to its own stream); its exit code."""
    import sys
    from .logfile import ReadOptions, read, still_written
    from .manage import wait
    read([c.log_path], ReadOptions(), {"stdout": sys.stdout.buffer,
                                       "stderr": sys.stderr.buffer},
         follow=True, alive=lambda: still_written(c), offset=offset)
    return wait(paths, c.id)
