"""Receptive field of every layer: size, effective stride (jump) and effective padding per spatial axis.

The classic recurrence (Araujo et al., Distill 2019): through a window of extent k, stride s and padding p,
``size += (k - 1) * jump``, ``padding += p * jump``, ``jump *= s``. Where paths merge, the largest field over all
paths is kept, so multi-branch networks report the field of their widest path.
"""

from __future__ import annotations

from dataclasses import dataclass

from archc.ir.graph import Graph
from archc.ops.registry import get_op


@dataclass(frozen=True)
class Field:
    size: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]

    def to_json(self) -> dict[str, list[int]]:
        return {"size": list(self.size), "stride": list(self.stride), "padding": list(self.padding)}

    def __str__(self) -> str:
        def one(v: tuple[int, ...]) -> str:
            return str(v[0]) if len(set(v)) == 1 else "x".join(map(str, v))

        return f"{one(self.size)} (stride {one(self.stride)})"


def _merge(fields: list[Field]) -> Field:
    if len(fields) == 1:
        return fields[0]
    n = len(fields[0].size)
    fields = [f for f in fields if len(f.size) == n]
    return Field(
        tuple(max(f.size[i] for f in fields) for i in range(n)),
        tuple(max(f.stride[i] for f in fields) for i in range(n)),
        tuple(max(f.padding[i] for f in fields) for i in range(n)),
    )


def analyse_receptive_fields(graph: Graph) -> None:
    """Store a :class:`Field` in ``node.meta["rf"]`` for every node downstream of a spatial input (else None)."""
    for node in graph.topological():
        if node.out_type is None:
            continue
        if node.is_input:
            n = node.out_type.rank - 1
            node.meta["rf"] = Field((1,) * n, (1,) * n, (0,) * n) if n > 0 else None
            continue
        ins = graph.inputs_of(node.name)
        fields = [f for f in (p.meta.get("rf") for p in ins) if f is not None]
        if not fields:
            node.meta["rf"] = None
            continue
        rf = _merge(fields)
        op = get_op(node.op)
        if op is None:
            raise KeyError(f"{node.name}: unknown op {node.op!r}")  # lowering only makes nodes of known ops
        in_types = [p.out_type for p in ins if p.out_type is not None]
        win = op.window(node.params, in_types, node.out_type)
        if win is not None and len(win.kernel) == len(rf.size):
            rf = Field(
                tuple(r + (k - 1) * j for r, k, j in zip(rf.size, win.kernel, rf.stride)),
                tuple(j * s for j, s in zip(rf.stride, win.stride)),
                tuple(p + q * j for p, q, j in zip(rf.padding, win.padding, rf.stride)),
            )
        node.meta["rf"] = rf
