"""How a firewall tool's failure is reported (shared by `base` and `_libnft`, so that
neither imports the other)."""
from __future__ import annotations

import re


class CommandFailed(Exception):
    """A runner command failed; `message` is the tool's first meaningful error line."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def first_error_line(text: str) -> str:
    """The line of a tool's stderr worth showing: nft's `Error: ...`, else the first one."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in lines:
        if "Error:" in line:  # nft prefixes a location: "/dev/stdin:1:1-20: Error: ..."
            return line[line.index("Error:") + len("Error:"):].strip()
    if not lines:
        return "failed"
    # "iptables-restore v1.8.9 (nf_tables): Chain 'X' does not exist" -> the message
    return re.sub(r"^\S+ v[0-9.]+ \([^)]*\): ", "", lines[0])
