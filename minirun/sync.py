"""The parent/child protocol of a container's start, in one place (runc's sync.go is the model).

`minirun run` (launch.py, the parent) and the container's PID 1 (init.py, the
child) share a socketpair and exchange one-line messages:

    child  -> parent   NS                    namespaces exist: attach the network now
    parent -> child    GO                    network done: finish and exec
    child  -> parent   PTY + fd (SCM_RIGHTS) the pty master, with -t
    child  -> parent   "error CODE MESSAGE"  something failed; CODE is the exit code
    (EOF on the socket after GO)             exec succeeded (the socket is close-on-exec)

If the parent dies before GO, the child's read returns EOF and it exits, so a
SIGKILLed `minirun run` never leaves a half-made container running. `exec`
(execute.py) uses the same channel and error lines.
"""
from __future__ import annotations

import _socket
import sys

from .errors import CommandNotExecutable, CommandNotFound, MinirunError

NS = "ns"
GO = "go"
PTY = "pty"
ERROR = "error"


class Channel:
    def __init__(self, sock):  # a socket: socket.socket, or _socket.socket (launch.py)
        self.sock = sock
        self.buf = b""

    def send(self, line: str) -> None:
        self.sock.sendall(line.replace("\n", " ").encode() + b"\n")

    def recv(self) -> str | None:
        while b"\n" not in self.buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                return None
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line.decode()

    def send_error(self, code: int, msg: str) -> None:
        """Report a failure; quietly, as the other side may be gone already."""
        try:
            self.send(f"{ERROR} {code} {msg}")
        except OSError:
            pass

    def send_fd(self, fd: int) -> None:
        # SCM_RIGHTS by hand (socket.send_fds would need socket.py, which PID 1 can no
        # longer import here: it runs after pivot_root)
        self.sock.sendmsg([PTY.encode() + b"\n"], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS,
                                                    fd.to_bytes(4, sys.byteorder, signed=True))])


ERRORS_BY_CODE = {126: CommandNotExecutable, 127: CommandNotFound}


def reported_error(line: str | None) -> MinirunError | None:
    """The error an "error CODE MESSAGE" line stands for (None if it is not one): the
    child's exit code picks the class, so 126/127 reach the CLI."""
    if not line or not line.startswith(ERROR + " "):
        return None
    _, code, msg = line.split(" ", 2)
    return ERRORS_BY_CODE.get(int(code), MinirunError)(msg.strip())
