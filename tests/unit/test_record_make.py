"""record._make: NamedTuple construction from a record's dict, as cls(**d) but faster;
the same outcomes for what a damaged or foreign record may hold."""
from __future__ import annotations

import pytest

from minirun.record import Attachment, Config, Port, Step, _make


def test_make_is_cls_of_kwargs():
    d = {"host_ip": None, "host_port": 8080, "container_port": 80, "proto": "tcp"}
    assert _make(Port, d) == Port(**d) and type(_make(Port, d)) is Port
    assert _make(Step, {"kind": "net.veth", "intent": {}}) == Step("net.veth", {})  # default
    cfg = Config(rootfs="/r", command=("sh",), hostname="h", env={})
    assert Config.from_json(cfg.to_json()) == cfg
    att = Attachment("bridge", ports=(Port(None, 1, 2, "udp"),))
    assert Attachment.from_json(att.to_json()) == att


def test_make_refuses_as_cls_of_kwargs_does():
    with pytest.raises(TypeError):
        _make(Step, {"kind": "x", "intent": {}, "unknown": 1})
    with pytest.raises(KeyError):
        _make(Step, {"kind": "x"})            # a required field missing
    with pytest.raises(TypeError):
        _make(Step, ["x", {}])                # not an object
