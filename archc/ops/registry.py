"""The op registry: ops register themselves once, by name; duplicates are refused."""

from __future__ import annotations

import difflib
from typing import TypeVar

from archc.ops.base import Op

_OPS: dict[str, Op] = {}

OpT = TypeVar("OpT", bound=type[Op])


def register(cls: OpT) -> OpT:
    """Class decorator: instantiate the op and add it to the registry under ``cls.name``."""
    name = cls.name
    if name in _OPS:
        raise ValueError(f"op {name!r} registered twice ({type(_OPS[name]).__qualname__} and {cls.__qualname__})")
    _OPS[name] = cls()
    return cls


def _load() -> dict[str, Op]:
    # importing the package registers every op module once
    import archc.ops.library  # noqa: F401

    return _OPS


def get_op(name: str) -> Op | None:
    return _load().get(name)


def known_op(name: str) -> Op:
    """The op of a graph node: lowering only makes nodes of registered ops, so a miss is a bug in archc."""
    op = _load().get(name)
    if op is None:
        raise KeyError(f"op {name!r} is not registered")
    return op


def all_ops() -> dict[str, Op]:
    """Every registered op, sorted by name."""
    return dict(sorted(_load().items()))


def closest_ops(name: str, extra: list[str] | None = None) -> list[str]:
    return difflib.get_close_matches(name, [*_load(), *(extra or [])], n=3, cutoff=0.6)
