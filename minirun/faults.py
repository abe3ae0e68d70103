"""Fault injection for tests: make one named setup step fail on purpose.

`MINIRUN_FAULT=attach.veth minirun run ...` raises at that step, so tests can
check that every failure path leaves nothing behind and exits 125. Costs one
dictionary lookup per step when unused.
"""
from __future__ import annotations

import os

from .errors import MinirunError

STEPS = ("prepare.address", "prepare.ports", "attach.bridge", "attach.firewall-network",
         "attach.netns", "attach.veth", "attach.address", "attach.ports", "start.go")


def check(step: str) -> None:
    if os.environ.get("MINIRUN_FAULT") == step:
        raise MinirunError(f"injected fault at {step}")
