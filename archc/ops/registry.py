"""The op registry: ops register themselves once, by name; duplicates are refused."""

from __future__ import annotations

import difflib
import functools
import importlib
from typing import TypeVar

from archc.ops.base import Op
from archc.ops.families import FAMILIES

_OPS: dict[str, Op] = {}

OpT = TypeVar("OpT", bound=type[Op])


def register(cls: OpT) -> OpT:
    """Class decorator: instantiate the op and add it to the registry under ``cls.name``."""
    name = cls.name
    if name in _OPS:
        raise ValueError(f"op {name!r} registered twice ({type(_OPS[name]).__qualname__} and {cls.__qualname__})")
    _OPS[name] = cls()
    return cls


@functools.cache
def _import_families() -> None:
    # importing a module registers its ops; some may be imported already (lowering imports parameter models)
    for family in FAMILIES:
        for module in family.modules:
            importlib.import_module(f"archc.ops.{module}")


def _load() -> dict[str, Op]:
    _import_families()
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
