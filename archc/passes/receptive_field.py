"""Receptive field of every layer: size, effective stride (jump) and effective padding per spatial axis.

The classic recurrence (Araujo et al., Distill 2019): through a window of extent k, stride s and padding p,
``size += (k - 1) * jump``, ``padding += p * jump``, ``jump *= s``. Where paths merge, the largest field over all
paths is kept, so multi-branch networks report the field of their widest path. Up-sampling layers (transposed
convolution, interpolation, pixel shuffle) have strides below 1, kept exact as fractions: after a U-Net's decoder the
jump is back to 1 input pixel per output pixel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from archc.ir.graph import Graph
from archc.ops.registry import known_op

Length = int | Fraction
"""A length in input pixels: whole numbers until an up-sampling layer makes a step smaller than one."""


@dataclass(frozen=True)
class Field:
    size: tuple[Length, ...]
    stride: tuple[Length, ...]
    padding: tuple[Length, ...]

    @property
    def pixels(self) -> tuple[int, ...]:
        """The size in whole input pixels (a field that covers part of a pixel reads all of it)."""
        return tuple(math.ceil(v) for v in self.size)

    def to_json(self) -> dict[str, list[int | float]]:
        return {"size": list(self.pixels), "stride": [_number(v) for v in self.stride],
                "padding": [_number(v) for v in self.padding]}

    def __str__(self) -> str:
        def one(values: tuple[Length, ...]) -> str:
            return str(values[0]) if len(set(values)) == 1 else "x".join(map(str, values))

        return f"{one(self.pixels)} (stride {one(self.stride)})"


def _number(value: Length) -> int | float:
    return int(value) if value == int(value) else float(value)


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


def analyse_receptive_fields(graph: Graph) -> dict[str, Field | None]:
    """The :class:`Field` of every node downstream of a spatial input (None for the others), by node name."""
    fields: dict[str, Field | None] = {}
    for node in graph.topological():
        if node.out_type is None:
            continue
        if node.is_input:
            n = node.out_type.rank - 1
            fields[node.name] = Field((1,) * n, (1,) * n, (0,) * n) if n > 0 else None
            continue
        ins = graph.inputs_of(node.name)
        found = [f for f in (fields.get(p.name) for p in ins) if f is not None]
        if not found:
            fields[node.name] = None
            continue
        rf = _merge(found)
        op = known_op(node.op)
        in_types = [p.out_type for p in ins if p.out_type is not None]
        win = op.window(node.params, in_types, node.out_type)
        if win is not None and len(win.kernel) == len(rf.size):
            rf = Field(
                tuple(r + (k - 1) * j for r, k, j in zip(rf.size, win.kernel, rf.stride)),
                tuple(j * s for j, s in zip(rf.stride, win.stride)),
                tuple(p + q * j for p, q, j in zip(rf.padding, win.padding, rf.stride)),
            )
        fields[node.name] = rf
    return fields
