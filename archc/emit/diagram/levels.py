"""Encoder-decoder networks drawn as the U they are.

A skip connection of an encoder-decoder joins two tensors of equal spatial size whose producers are far apart: the
path from the early one to the merge goes down to a lower resolution and back up (U-Net's contracting and expansive
paths). When a graph has such a merge, every drawn node with a spatial output is ranked by its resolution level
(the largest maps on the first rank), so that encoder and decoder stages of equal resolution share a rank and the skip
edges run straight across; edges that go back up to a higher resolution are written reversed (``dir=back``) so the
layout keeps them upward. Found from shapes and edges only, never from layer names.
"""

from __future__ import annotations

import math

import networkx as nx

from archc.emit.diagram.view import Item, View
from archc.ir.graph import Graph, Node
from archc.ops.registry import get_op
from archc.text_escape import dot_quoted

MAX_LAYERS = 4_000
"""Beyond this the pair search (a walk between each merge's inputs) is skipped: the drawing keeps dot's ranks."""


def _spatial(n: Node) -> tuple[int, ...] | None:
    t = n.out_type
    if t is None or t.rank < 2 or not t.spatial:
        return None
    return tuple(t.spatial)


def skip_pairs(g: Graph) -> list[tuple[str, str]]:
    """(encoder layer, merge) for every merge input that skips a down-and-up detour of the merge's other input."""
    if len(g) > MAX_LAYERS:
        return []
    pairs = []
    for m in g.nodes():
        op = get_op(m.op)
        srcs = g.input_names(m.name)
        if op is None or op.family != "merge" or len(srcs) < 2:
            continue
        for a in srcs:
            size = _spatial(g.node(a))
            if size is None:
                continue
            for b in srcs:
                if b != a and _spatial(g.node(b)) == size and _dips_between(g, a, b, math.prod(size)):
                    pairs.append((a, m.name))
                    break
    return pairs


def _dips_between(g: Graph, a: str, b: str, area: int) -> bool:
    """Some layer on a path from ``a`` to ``b`` has a smaller map than ``area``: the path went down and back up."""
    between = nx.descendants(g.nx, a)
    if b not in between:
        return False
    pred = g.nx.pred
    seen = {b}
    stack = [b]
    while stack:
        x = stack.pop()
        size = _spatial(g.node(x))
        if size is not None and math.prod(size) < area:
            return True
        for p in pred[x]:
            if p in between and p not in seen:
                seen.add(p)
                stack.append(p)
    return False


def item_levels(view: View) -> dict[str, int]:
    """Drawn item id -> resolution level (0 = the largest maps) when the graph is an encoder-decoder; empty when it
    is not, or for items without a spatial output."""
    g = view.g
    if not skip_pairs(g):
        return {}
    sizes: dict[str, tuple[int, ...]] = {}
    for item in view.items.values():
        size = _spatial(_representative(view, item))
        if size is not None:
            sizes[item.id] = size
    order = sorted(set(sizes.values()), key=lambda s: (-math.prod(s), s))
    level = {s: i for i, s in enumerate(order)}
    return {item_id: level[s] for item_id, s in sizes.items()}


def _representative(view: View, item: Item) -> Node:
    """The layer whose output a drawn node shows: the layer itself, or a group's last layer read outside it."""
    if item.node is not None:
        return item.node
    leaving = [n for n in item.members if n.name in view.leaving]
    return leaving[-1] if leaving else item.members[-1]


def rank_lines(levels: dict[str, int]) -> list[str]:
    """One ``rank=same`` statement per resolution level."""
    by_level: dict[int, list[str]] = {}
    for item_id, level in levels.items():
        by_level.setdefault(level, []).append(item_id)
    return [f"  {{rank=same; {' '.join(dot_quoted(i) + ';' for i in ids)}}}" for _, ids in sorted(by_level.items())]


def oriented(a: str, b: str, attrs: dict[str, str], levels: dict[str, int]) -> tuple[str, str, dict[str, str]]:
    """The edge ``a -> b`` as written: reversed with ``dir=back`` when it climbs to a higher resolution (the decoder
    going up), so that the ranking keeps the levels; its head label moves to the tail, which is now the head."""
    if a not in levels or b not in levels or levels[a] <= levels[b]:
        return a, b, attrs
    flipped = {("taillabel" if k == "headlabel" else k): v for k, v in attrs.items()}
    return b, a, {**flipped, "dir": "back"}
