"""`class X(NamedTuple): field: type = default` without importing typing.

typing.NamedTuple costs every process that starts a container ~5 ms: importing
typing (~2.7 ms, and it pulls in re), then, per field, a ForwardRef that
compile()s the annotation (with `from __future__ import annotations` every
annotation is a string) -- 51 compile() calls for spec.py's four classes alone.
minirun's tuples only need what collections.namedtuple gives (fields, defaults,
_make, _replace, _asdict) plus the methods and docstrings of the class body, so
this builds exactly that and keeps the annotations as the strings they are.

The class made is a plain collections.namedtuple class, as typing's is;
the rules are typing's: a field with a default cannot precede one without, and
the namedtuple machinery (__new__, _fields, _make, ...) cannot be overridden.
"""
from __future__ import annotations

import collections

_PROHIBITED = frozenset({"__new__", "__init__", "__slots__", "__getnewargs__", "_fields",
                         "_field_defaults", "_make", "_replace", "_asdict", "_source"})
_SPECIAL = frozenset({"__module__", "__name__", "__qualname__", "__annotations__"})


class _NamedTupleMeta(type):
    def __new__(mcls, typename: str, bases: tuple, ns: dict):
        if bases != (NamedTuple,):
            raise TypeError(f"{typename}: a NamedTuple class takes no other base")
        annotations = ns.get("__annotations__", {})
        fields = tuple(annotations)
        defaults = []
        for name in fields:
            if name in ns:
                defaults.append(ns[name])
            elif defaults:
                raise TypeError(f"{typename}: field {name} without a default follows "
                                "one with a default")
        cls = collections.namedtuple(typename, fields, defaults=defaults,
                                     module=ns.get("__module__"))
        cls.__annotations__ = dict(annotations)
        if "__qualname__" in ns:
            cls.__qualname__ = ns["__qualname__"]
        for key, value in ns.items():
            if key in _PROHIBITED:
                raise AttributeError(f"{typename}: cannot overwrite NamedTuple attribute {key}")
            if key not in _SPECIAL and key not in fields:
                setattr(cls, key, value)
        return cls


NamedTuple = type.__new__(_NamedTupleMeta, "NamedTuple", (), {"__module__": __name__})
