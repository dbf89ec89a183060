"""`chunk` (and what `split` shares with it): one tensor cut along an axis into several parts, each a `slice` node
named by its index (`qkv.0`, `qkv.1`, `qkv.2`), so later steps take a part with `from:` as they take any step by its
index path.

The IR has one output per node, so the step itself has none: the lowerer refuses a step that reads it without naming
a part (archc/lower/lowerer.py, through :class:`archc.lower.names.PartsTable`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from archc.errors import Problem
from archc.ir.types import TensorType
from archc.lower.budget import Count, Counter, value_of
from archc.lower.constructs.common import enter, parse
from archc.lower.context import Ctx, Lowering, Result, Source
from archc.lower.names import Entry, PartsTable
from archc.ops.base import norm_axis
from archc.ops.tensor_shape import SliceParams
from archc.spec.model import ChunkSpec, SplitSpec
from archc.spec.report import DocPath


def chunk_sizes(chunks: int, length: int, axis: int, x: TensorType) -> list[int]:
    """torch.chunk's part sizes; refused when it would give fewer parts than asked (a `from: qkv.3` would miss)."""
    if chunks > length:
        raise Problem("E306", f"chunk into {chunks} parts: axis {axis} of {x} has only {length} positions")
    size = -(-length // chunks)
    sizes = [size] * (length // size) + ([length % size] if length % size else [])
    if len(sizes) != chunks:
        raise Problem("E306", f"chunk of {length} positions (axis {axis} of {x}) into {chunks} parts: equal parts of "
                              f"{size} make only {len(sizes)} (as torch.chunk cuts); give the sizes with `split`")
    return sizes


def split_sizes(sizes: list[int], length: int, axis: int, x: TensorType) -> list[int]:
    if sum(sizes) != length:
        raise Problem("E306", f"split sizes {sizes} sum to {sum(sizes)}; axis {axis} of {x} has {length} positions")
    return list(sizes)


def chunk(lowerer: Lowering, model: type[ChunkSpec], body: dict[str, Any], where: DocPath, ctx: Ctx,
          inputs: list[Source], ident: str | None, anon: str) -> Result:
    return lower_parts(lowerer, model, body, where, ctx, inputs, ident, anon)


def lower_parts(lowerer: Lowering, model: type[ChunkSpec | SplitSpec], body: dict[str, Any], where: DocPath, ctx: Ctx,
          inputs: list[Source], ident: str | None, anon: str) -> Result:
    layer = ctx.layer(ident, anon)
    spec = parse(lowerer, model, body, where, ctx, inputs, layer)
    if spec is None:
        return None, None
    op = "chunk" if isinstance(spec, ChunkSpec) else "split"
    count = spec.chunks if isinstance(spec, ChunkSpec) else len(spec.sizes)
    table = PartsTable(op=op, layer=layer)
    inner = enter(lowerer, ctx, ident, anon, op, where)
    x = inputs[0]
    t = lowerer.graph.node(x).out_type if x is not None else None
    sizes = _sizes(lowerer, spec, t, where, layer) if t is not None else None
    start, line = 0, lowerer.report.doc.pos(where, key=True).line
    for i in range(count):
        name = f"{inner.scope}.{i}" if ident else f"{anon}.{i}"
        node: Source = None
        if sizes is not None:
            end = start + sizes[i]
            params = SliceParams(axis=spec.axis, start=start, end=end if i < count - 1 else None)
            node = lowerer.add_node(name, "slice", params, where, inner if ident else ctx, [x])
            start = end
        table.define(str(i), Entry(node, line=line))
    return None, table


def _sizes(lowerer: Lowering, spec: ChunkSpec | SplitSpec, t: TensorType, where: DocPath,
           layer: str) -> list[int] | None:
    """The parts' sizes along the axis, or None after reporting at the field that does not fit the input."""
    op = "chunk" if isinstance(spec, ChunkSpec) else "split"
    try:
        axis = norm_axis(op, spec.axis, t)
    except Problem as problem:
        lowerer.report.error(problem.code, problem.message, (*where, "axis"), layer)
        return None
    try:
        if isinstance(spec, ChunkSpec):
            return chunk_sizes(spec.chunks, t.shape[axis], spec.axis, t)
        return split_sizes(spec.sizes, t.shape[axis], spec.axis, t)
    except Problem as problem:
        lowerer.report.error(problem.code, problem.message, (*where, "chunks" if op == "chunk" else "sizes"), layer)
        return None


def count_chunk(counter: Counter, body: dict[str, Any], scope: Mapping[str, Any], chain: tuple[str, ...]) -> Count:
    """One `slice` per part, when the count is known before lowering."""
    chunks = value_of(body.get("chunks"), scope)
    return counter.clamp(chunks, 0) if type(chunks) is int and chunks > 0 else (0, 0)


def reads_whole(ref: str, table: PartsTable) -> str:
    """Why a step cannot take the chunk or split ``ref`` as one input, naming what it can take."""
    names = [f"{ref}.{key}" for key in table.entries]
    shown = ", ".join(names) if len(names) <= 4 else f"{', '.join(names[:3])}, ..., {names[-1]}"
    return f"'{ref}' is a `{table.op}` with {len(names)} outputs; take one part with `from:` ({shown})"


def reads_nothing(step_kind: str, body: dict[str, Any]) -> bool:
    """A step that takes no input (a `buffer`, a `parameter` without a batch axis) may follow a chunk or split."""
    return step_kind == "buffer" or (step_kind == "parameter" and body.get("batch_axis", False) is False)
