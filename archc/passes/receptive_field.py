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


def _merge(found: list[tuple[Field, tuple[int, ...]]], out_spatial: tuple[int, ...]) -> Field:
    """The field where paths meet: on each axis, the widest of the inputs that vary along it.

    An input of size 1 on an axis the output spans is broadcast there (a squeeze-excitation gate scaling a feature
    map): every output position reads the same value of it, so it adds nothing spatial on that axis. Its own field
    (the whole image, after a global pool) is not the output's, which is what stays exact for SE networks."""
    if len(found) == 1:
        return found[0][0]
    n = len(found[0][0].size)
    found = [(f, spatial) for f, spatial in found if len(f.size) == n]
    size: list[Length] = []
    stride: list[Length] = []
    padding: list[Length] = []
    for i in range(n):
        spans = len(out_spatial) == n and out_spatial[i] > 1
        varying = [f for f, spatial in found if not (spans and len(spatial) == n and spatial[i] == 1)]
        axis = varying or [f for f, _ in found]
        size.append(max(f.size[i] for f in axis))
        stride.append(max(f.stride[i] for f in axis))
        padding.append(max(f.padding[i] for f in axis))
    return Field(tuple(size), tuple(stride), tuple(padding))


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
        found = [(f, p.out_type.spatial if p.out_type is not None else ()) for p in ins
                 if (f := fields.get(p.name)) is not None]
        if not found:
            fields[node.name] = None
            continue
        rf = _merge(found, node.out_type.spatial)
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
