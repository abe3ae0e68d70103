"""minirun.tuples.NamedTuple: typing.NamedTuple's class syntax without importing typing."""
from __future__ import annotations

import subprocess
import sys

import pytest

from minirun.tuples import NamedTuple


class Port(NamedTuple):
    """A published port."""
    proto: str
    host_port: int
    host_ip: str = ""

    def label(self) -> str:
        return f"{self.host_ip or '0.0.0.0'}:{self.host_port}/{self.proto}"

    @classmethod
    def tcp(cls, port: int) -> "Port":
        return cls("tcp", port)


def test_fields_defaults_methods_and_namedtuple_api():
    p = Port("tcp", 8080)
    assert p == ("tcp", 8080, "") and p.host_ip == ""
    assert Port._fields == ("proto", "host_port", "host_ip")
    assert Port._field_defaults == {"host_ip": ""}
    assert p.label() == "0.0.0.0:8080/tcp" and Port.tcp(80) == ("tcp", 80, "")
    assert p._replace(host_ip="127.0.0.1").label() == "127.0.0.1:8080/tcp"
    assert Port._make(["udp", 53, "::"]).proto == "udp"
    assert p._asdict() == {"proto": "tcp", "host_port": 8080, "host_ip": ""}
    assert Port.__doc__ == "A published port." and Port.__module__ == __name__
    assert Port.__annotations__ == {"proto": "str", "host_port": "int", "host_ip": "str"}
    assert isinstance(p, tuple) and not hasattr(p, "__dict__")
    with pytest.raises(AttributeError):
        p.proto = "udp"


def test_typings_rules():
    with pytest.raises(TypeError, match="without a default follows"):
        class Bad(NamedTuple):
            a: int = 0
            b: int
    with pytest.raises(AttributeError, match="_make"):
        class Bad2(NamedTuple):
            a: int

            def _make(self):
                pass


def test_the_start_path_does_not_import_typing():
    """What the module is for: a container start imports no typing (nor dataclasses)."""
    code = ("import sys, minirun.fastpath, minirun.runtime, minirun.launch, "
            "minirun.network.bridge, minirun.oci.create, minirun.oci.child; "
            "print(sorted({'typing', 'dataclasses'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
