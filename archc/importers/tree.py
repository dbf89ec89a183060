"""The nested form an imported model takes on its way to spec text: steps (layers), residuals, branches, scopes
(groups and block instances), block calls and stages. Built from a :class:`FlatGraph` by the recovery passes
(regions.py, scopes.py, blocks.py) and written out by spec_writer.py."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from archc.importers.flat import FlatLayer

WEIGHTED_OPS = frozenset({
    "conv", "conv_transpose", "conv_table", "gated_conv", "deform_conv", "bn", "linear", "prelu", "scale",
    "layernorm", "group_norm", "instance_norm", "embedding", "subsample", "multihead_attention", "parameter", "buffer",
})
"""Ops holding tensors: their ids are their state_dict names and are always kept; other layers' ids are soft."""


@dataclass
class Item:
    """A step of a body. ``source`` is the flat layer id whose value the step reads when that is not the previous
    step's output (the writer turns it into ``from:``); ``output`` is the flat layer id the step's value stands for."""

    output: str = ""
    source: list[str] | None = None


@dataclass
class Leaf(Item):
    layer: FlatLayer | None = None
    scope: tuple[str, ...] = ()
    name: str | None = None
    """The id written in the spec (local to its scope), or None to let archc name it by its index."""


@dataclass
class Residual(Item):
    body: list[Item] = field(default_factory=list)
    shortcut: list[Item] | str = "identity"
    """``identity``, ``projection`` (a 1x1 conv and batch norm where shapes differ) or explicit steps."""
    shortcut_id: str | None = None
    shortcut_steps: list[Item] = field(default_factory=list)
    shortcut_bn: bool = True
    """The explicit steps a `projection` shortcut replaced (for naming their weights)."""
    merge: str = "add"
    fork: str = ""
    """The flat id of the value the residual reads (for shape checks)."""
    merge_leaf: Leaf | None = None
    """The merge layer the construct replaced: its module path places the construct in its scope."""


@dataclass
class Branches(Item):
    paths: list[list[Item]] = field(default_factory=list)
    names: list[str | None] = field(default_factory=list)
    merge: str = "concat"
    axis: int = 0
    merge_leaf: Leaf | None = None


@dataclass
class Scope(Item):
    """A named region: a group, or (once blocks are recovered) a block instance."""

    name: str | None = None
    body: list[Item] = field(default_factory=list)
    kind: str | None = None
    """The source's module type for this scope (from :attr:`FlatGraph.kinds`), if it says one."""


@dataclass
class Call(Item):
    block: str = ""
    name: str | None = None
    args: dict[str, Any] = field(default_factory=dict)
    instance: list[Item] = field(default_factory=list)
    """The copy's own steps (the block's body with this copy's numbers), for naming its weights."""


@dataclass
class Stage(Item):
    name: str | None = None
    block: str = ""
    repeat: int = 1
    args: dict[str, Any] = field(default_factory=dict)
    first: dict[str, Any] = field(default_factory=dict)
    prefix: str = ""
    start: int = 0
    copies: list[Call] = field(default_factory=list)
    partial: bool = False
    """Part of a scope's steps: its copies are named in that scope (`start:` written even when 0)."""


@dataclass
class Block:
    name: str
    args: dict[str, Any]
    """Argument -> default, or a type name (`int`) when every call gives it."""
    body: list[Item]


@dataclass
class Tree:
    body: list[Item]
    blocks: list[Block] = field(default_factory=list)


def leaves(items: list[Item]) -> list[Leaf]:
    """Every leaf under ``items``, in order."""
    out: list[Leaf] = []
    for item in items:
        if isinstance(item, Leaf):
            out.append(item)
        elif isinstance(item, Residual):
            out += leaves(item.body) + (leaves(item.shortcut) if isinstance(item.shortcut, list) else [])
        elif isinstance(item, Branches):
            for path in item.paths:
                out += leaves(path)
        elif isinstance(item, Scope):
            out += leaves(item.body)
    return out


def merge_leaves(items: list[Item]) -> list[Leaf]:
    """The merge layers of every residual and branches under ``items``."""
    out: list[Leaf] = []
    for item in items:
        if isinstance(item, (Residual, Branches)) and item.merge_leaf is not None:
            out.append(item.merge_leaf)
        for body in children(item):
            out += merge_leaves(body)
    return out


def children(item: Item) -> list[list[Item]]:
    """The nested bodies of an item, each a list of steps."""
    if isinstance(item, Residual):
        return [item.body] + ([item.shortcut] if isinstance(item.shortcut, list) else [])
    if isinstance(item, Branches):
        return list(item.paths)
    if isinstance(item, Scope):
        return [item.body]
    return []
