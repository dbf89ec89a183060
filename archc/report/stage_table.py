"""The stage table of a paper ("Table 1" of the ResNet paper): one row per stage, with its output size, its block's
structure (kernel sizes and widths, x repeats), params and MACs, and the totals.

Rows are the scopes at ``depth`` (1: the top-level stages and groups) and the layers outside them. A layer that
computes (a convolution, a linear layer: it has MACs) or a scope starts a row; a layer that only resizes (a pooling,
a flatten) opens the next row, as the paper lists the max pool under conv2_x; any other layer (a norm, an activation)
joins the row before it. A stage's structure is read from its first block: the weight layers of its main path
(shortcut projections left out, as in the paper), written ``[1x1, 64; 3x3, 64; 1x1, 256] x 3``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from archc.compiler import Compiled
from archc.emit.diagram.fold import folded_at
from archc.ir.graph import Graph, Node
from archc.ops.base import Cost
from archc.ops.registry import known_op
from archc.report.grid import Grid
from archc.report.layer_table import kernel_text

TIMES = "\u00d7"


@dataclass
class StageRow:
    """One row: its name (the scope's or layer's path), output size, structure text, params and MACs."""

    name: str
    output_size: str = "-"
    structure: list[str] = field(default_factory=list)
    params: int = 0
    macs: int = 0


@dataclass
class StageTable:
    name: str
    rows: list[StageRow]
    params: int
    macs: int

    def grid(self) -> Grid:
        rows = [[r.name, r.output_size, "; ".join(r.structure) or "-", f"{r.params:,}", _giga(r.macs)]
                for r in self.rows]
        notes = [f"Total: {self.params:,} parameters, {_giga(self.macs)} MACs ({self.macs:,})"]
        return Grid(["Stage", "Output size", "Structure", "Params", "MACs"], rows, {3, 4}, notes,
                    caption=f"{self.name}: stages")

    def render(self, fmt: str = "text") -> str:
        if fmt == "json":
            return json.dumps({
                "name": self.name,
                "rows": [{"stage": r.name, "output_size": r.output_size, "structure": r.structure,
                          "params": r.params, "macs": r.macs} for r in self.rows],
                "totals": {"params": self.params, "macs": self.macs},
            }, indent=1) + "\n"
        return self.grid().render(fmt)


def stage_table(c: Compiled, depth: int = 1) -> StageTable:
    """The stage table of a compiled spec, with the scopes at nesting level ``depth`` as stages."""
    g = c.graph
    rows: list[StageRow] = []
    pending: list[Node] = []  # resizing layers waiting for the row they open
    current: StageRow | None = None
    for n in g.nodes():
        if n.is_input:
            continue
        scope = folded_at(g.scope_chain(n.scope), depth)
        cost: Cost = n.meta.get("cost", Cost())
        if scope is not None:
            if current is None or current.name != scope:
                current = _open(rows, scope, pending)
                current.structure.append(_scope_structure(g, scope))
            current.params += cost.params
            current.macs += cost.macs
            current.output_size = _size(n) or current.output_size
            continue
        if cost.macs > 0 or (current is None and not _resizes(g, n)):
            current = _open(rows, n.name, pending)
            current.structure.append(_layer_text(n, with_stride=True))
        elif _resizes(g, n):
            pending.append(n)
            continue
        current.params += cost.params
        current.macs += cost.macs
        current.output_size = _size(n) or current.output_size
    if pending:  # resizing layers at the very end (a classifier-less backbone's final pool) close the last row
        last = rows[-1] if rows else _open(rows, pending[0].name, [])
        last.structure.extend(t for t in (_layer_text(p, with_stride=True) for p in pending) if t)
        last.output_size = _size(pending[-1]) or last.output_size
    for r in rows:
        r.structure = [s for s in r.structure if s]
    t = c.costs.total
    return StageTable(g.name, rows, t.params, t.macs)


def _open(rows: list[StageRow], name: str, pending: list[Node]) -> StageRow:
    row = StageRow(name)
    row.structure.extend(_layer_text(p, with_stride=True) for p in pending)
    for p in pending:
        row.output_size = _size(p) or row.output_size
    pending.clear()
    rows.append(row)
    return row


def _resizes(g: Graph, n: Node) -> bool:
    """A layer without MACs whose output differs from its input's shape (a pooling, a flatten)."""
    inputs = g.inputs_of(n.name)
    return bool(inputs) and inputs[0].out_type is not None and n.out_type is not None \
        and inputs[0].out_type.shape != n.out_type.shape


def _size(n: Node) -> str:
    """The spatial size of ``n``'s output (``56x56``); a token sequence's whole shape (``197x768``); empty for a
    vector."""
    if n.out_type is None or n.out_type.rank < 2:
        return ""
    dims = n.out_type.shape[1:] if n.out_type.rank > 2 else n.out_type.shape
    return TIMES.join(str(d) for d in dims)


def _scope_structure(g: Graph, scope: str) -> str:
    """``[1x1, 64; 3x3, 64; 1x1, 256] x 3`` for a stage of blocks, read from its first block; the weight layers of
    any other scope in order, with a repeated run written once (``[3072-d linear; 768-d linear] x 12``)."""
    stage = g.scopes[scope].kind == "stage"
    blocks = [p for p, s in g.scopes.items() if s.parent == scope and s.kind == "block"] if stage else []
    first = blocks[0] if blocks else scope
    shortcuts = tuple(p + "." for p, s in g.scopes.items() if s.kind == "shortcut")
    parts = [_layer_text(n, with_stride=not stage) for n in g.nodes()
             if (n.scope == first or n.scope.startswith(first + "."))
             and not (n.scope + ".").startswith(shortcuts) and n.meta.get("cost", Cost()).params]
    parts = [p for p in parts if p]
    if stage:
        body = "[" + "; ".join(parts) + "]" if parts else ""
        return f"{body} {TIMES} {len(blocks)}" if body and len(blocks) > 1 else body
    return _repeats(parts)


def _repeats(parts: list[str]) -> str:
    """``parts`` joined, a list made of k > 1 copies of one run written ``[run] x k``, consecutive equal items
    ``item x k``."""
    for period in range(1, len(parts) // 2 + 1):
        copies, rest = divmod(len(parts), period)
        if not rest and parts == parts[:period] * copies:
            run = "; ".join(parts[:period])
            return f"[{run}] {TIMES} {copies}" if period > 1 else f"{run} {TIMES} {copies}"
    out: list[str] = []
    i = 0
    while i < len(parts):
        j = i
        while j < len(parts) and parts[j] == parts[i]:
            j += 1
        out.append(parts[i] if j - i == 1 else f"{parts[i]} {TIMES} {j - i}")
        i = j
    return "; ".join(out)


def _layer_text(n: Node, *, with_stride: bool) -> str:
    """``7x7, 64, stride 2`` for a convolution, ``3x3 maxpool, stride 2`` for a pooling, ``1000-d linear``; empty
    for layers that say nothing about the structure (norms, activations, reshapes)."""
    p = n.params
    kernel = kernel_text(n).replace("x", TIMES)
    out = getattr(p, "out", None)
    if kernel:
        text = f"{kernel}, {out}" if out is not None else f"{kernel} {n.op}"
        groups = getattr(p, "groups", 1)
        if getattr(p, "depthwise", False):
            text += ", depthwise"
        elif isinstance(groups, int) and groups > 1:
            text += f", groups {groups}"
        stride = getattr(p, "s", 1)
        if with_stride and stride not in (1, [1], [1, 1], None):
            stride_text = TIMES.join(str(s) for s in stride) if isinstance(stride, list) else str(stride)
            text += f", stride {stride_text}"
        return text
    weighted = bool(n.meta.get("cost", Cost()).params)
    if isinstance(out, int) and weighted:
        return f"{out}-d {n.op}"
    if n.op.startswith("global_"):
        return n.op.replace("_", " ")
    if weighted and known_op(n.op).family not in {"norm", "tensor"}:
        return n.op  # a weight layer without kernel or width: attention, an embedding
    return ""


def _giga(macs: int) -> str:
    return f"{macs / 1e9:.2f} G"
