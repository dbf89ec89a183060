"""Tensor shape without arithmetic: flatten, reshape, permute, repeat, expand, squeeze/unsqueeze, slice, identity.
Axes never include the batch: axis 0 is the channels.
"""

from __future__ import annotations

from math import prod
from typing import Annotated, Any

from pydantic import Field, model_validator

from archc.errors import Problem
from archc.ir.types import TensorType
from archc.ops.base import NoParams, OpParams, Plumbing, TorchCode, Window, norm_axes, norm_axis, whole_input
from archc.ops.fields import MAX_DIM, MAX_RANK, Axis, Size
from archc.ops.registry import register
from archc.ops.saved import View

INT64_MAX = 2**63 - 1
DimOrInfer = Annotated[int, Field(ge=-1, le=MAX_DIM)]
Position = Annotated[int, Field(ge=0, le=MAX_RANK - 1)]
"""An axis counted from 0 (the channels), batch excluded."""


@register
class Flatten(Plumbing):
    name = "flatten"
    Params = NoParams
    summary = "Flatten all non-batch axes into one: [C, H, W] -> [C*H*W]."
    example = "flatten"

    def infer(self, p: NoParams, inputs: list[TensorType]) -> TensorType:
        return inputs[0].with_shape((inputs[0].numel,))

    def window(self, p: NoParams, inputs: list[TensorType], out: TensorType) -> Window | None:
        # what follows (a linear layer) sees every position: a window as large as the input
        return whole_input(inputs[0]) if inputs[0].spatial else None

    def torch(self, p: NoParams, inputs: list[TensorType], out: TensorType) -> TorchCode:
        return TorchCode(None, "torch.flatten({0}, 1)")

    def output_view(self, p: NoParams, inputs: list[TensorType], out: TensorType, training: bool) -> View | None:
        return "reshape"  # a view of a contiguous input, else a copy

    def onnx(self, b: Any, p: NoParams, inputs: list[str], in_types: list[TensorType], out: TensorType,
             weights: dict[str, Any]) -> str:
        return b.node("Flatten", [inputs[0]], axis=1)


class ReshapeParams(OpParams):
    shape: list[DimOrInfer] = Field(min_length=1, max_length=MAX_RANK,
                                    description="Target shape without the batch; one entry may be -1 (inferred).")


@register
class Reshape(Plumbing):
    name = "reshape"
    Params = ReshapeParams
    summary = "Reshape to a shape without the batch, keeping the element order; one -1 is inferred."
    example = "reshape: {shape: [-1, 49]}"
    label_fields = ("shape",)

    def infer(self, p: ReshapeParams, inputs: list[TensorType]) -> TensorType:
        x = inputs[0]
        if p.shape.count(-1) > 1:
            raise Problem("E306", f"reshape to {p.shape}: at most one -1")
        if 0 in p.shape:
            raise Problem("E306", f"reshape to {p.shape}: dimensions are positive (or one -1)")
        known = prod(d for d in p.shape if d != -1)
        if -1 in p.shape:
            if x.numel % known:
                raise Problem("E306", f"reshape to {p.shape}: {x.numel} elements ({x}) are not divisible by {known}")
            shape = tuple(x.numel // known if d == -1 else d for d in p.shape)
        else:
            shape = tuple(p.shape)
        if prod(shape) != x.numel:
            raise Problem("E306", f"reshape to {p.shape} expects {prod(shape)} elements; found {x.numel} ({x})")
        return x.with_shape(shape)

    def torch(self, p: ReshapeParams, inputs: list[TensorType], out: TensorType) -> TorchCode:
        return TorchCode(None, f"{{0}}.reshape({{0}}.shape[0], {', '.join(map(str, p.shape))})")

    def output_view(self, p: ReshapeParams, inputs: list[TensorType], out: TensorType, training: bool) -> View | None:
        return "reshape"  # a view of a contiguous input, else a copy

    def onnx(self, b: Any, p: ReshapeParams, inputs: list[str], in_types: list[TensorType], out: TensorType,
             weights: dict[str, Any]) -> str:
        return b.node("Reshape", [inputs[0], b.const_int64([0, *p.shape])], allowzero=0)


class PermuteParams(OpParams):
    axes: list[Position] = Field(
        min_length=1, max_length=MAX_RANK, description="The input axes in their new order, e.g. `[1, 2, 0]` for "
                                                       "[C, H, W] -> [H, W, C].")


@register
class Permute(Plumbing):
    name = "permute"
    Params = PermuteParams
    summary = "Reorder the axes (the batch stays first)."
    example = "permute: {axes: [1, 2, 0]}"
    label_fields = ("axes",)

    def infer(self, p: PermuteParams, inputs: list[TensorType]) -> TensorType:
        x = inputs[0]
        if sorted(p.axes) != list(range(x.rank)):
            raise Problem("E306", f"permute axes {p.axes} expects each of 0..{x.rank - 1} exactly once for {x}")
        return x.with_shape(tuple(x.shape[a] for a in p.axes))

    def torch(self, p: PermuteParams, inputs: list[TensorType], out: TensorType) -> TorchCode:
        return TorchCode(None, f"{{0}}.permute(0, {', '.join(str(a + 1) for a in p.axes)})")

    def output_view(self, p: PermuteParams, inputs: list[TensorType], out: TensorType, training: bool) -> View | None:
        return "strided"

    def onnx(self, b: Any, p: PermuteParams, inputs: list[str], in_types: list[TensorType], out: TensorType,
             weights: dict[str, Any]) -> str:
        return b.node("Transpose", [inputs[0]], perm=[0, *(a + 1 for a in p.axes)])


class RepeatParams(OpParams):
    times: list[Size] | None = Field(None, max_length=MAX_RANK,
                                     description="Tile: copies along each axis, e.g. `[1, 2, 2]`.")
    shape: list[DimOrInfer] | None = Field(None, max_length=MAX_RANK,
                                           description="Expand (broadcast) size-1 axes to these sizes; -1 keeps an "
                                                       "axis, e.g. `[64, -1, -1]` spreads a [1, H, W] map over 64 "
                                                       "channels.")

    @model_validator(mode="after")
    def _one_form(self) -> RepeatParams:
        if (self.times is None) == (self.shape is None):
            raise ValueError("give exactly one of `times` (tile) and `shape` (expand)")
        return self


@register
class Repeat(Plumbing):
    name = "repeat"
    Params = RepeatParams
    summary = "Repeat a tensor along axes: tile it (`times`) or broadcast its size-1 axes (`shape`)."
    example = "repeat: {shape: [64, -1, -1]}"
    label_fields = ("times", "shape")

    def infer(self, p: RepeatParams, inputs: list[TensorType]) -> TensorType:
        x = inputs[0]
        given = p.times if p.times is not None else p.shape
        assert given is not None
        if len(given) != x.rank:
            raise Problem("E306", f"repeat expects one entry per axis of {x} ({x.rank}); found {given}")
        if p.times is not None:
            return x.with_shape(tuple(n * t for n, t in zip(x.shape, p.times, strict=True)))
        return expanded(self.name, x, given)

    def output_view(self, p: RepeatParams, inputs: list[TensorType], out: TensorType, training: bool) -> View | None:
        return "strided" if p.times is None else None  # broadcasting by `shape` is an expand; tiling copies

    def torch(self, p: RepeatParams, inputs: list[TensorType], out: TensorType) -> TorchCode:
        if p.times is not None:
            return TorchCode(None, f"{{0}}.repeat(1, {', '.join(map(str, p.times))})")
        assert p.shape is not None
        return expand_torch(p.shape)

    def onnx(self, b: Any, p: RepeatParams, inputs: list[str], in_types: list[TensorType], out: TensorType,
             weights: dict[str, Any]) -> str:
        if p.times is not None:
            return b.node("Tile", [inputs[0], b.const_int64([1, *p.times])])
        assert p.shape is not None
        return expand_onnx(b, inputs[0], p.shape)


def expanded(op: str, x: TensorType, shape: list[int]) -> TensorType:
    """``x`` with its size-1 axes broadcast to ``shape``; -1 keeps an axis."""
    if len(shape) != x.rank:
        raise Problem("E306", f"{op} expects one entry per axis of {x} ({x.rank}); found {shape}")
    out = []
    for n, want in zip(x.shape, shape, strict=True):
        if want in (-1, n):
            out.append(n)
        elif n == 1 and want >= 1:
            out.append(want)
        else:
            raise Problem("E306", f"{op} to shape {shape} expands only size-1 axes; {x} has size {n} where {want} "
                                  "is asked")
    return x.with_shape(tuple(out))


def expand_torch(shape: list[int]) -> TorchCode:
    return TorchCode(None, f"{{0}}.expand(-1, {', '.join(map(str, shape))})")


def expand_onnx(b: Any, x: str, shape: list[int]) -> str:
    # Expand broadcasts: 1 keeps a dimension, so the batch and the -1 axes are given as 1
    return b.node("Expand", [x, b.const_int64([1, *(1 if d == -1 else d for d in shape)])])


class ExpandParams(OpParams):
    shape: list[DimOrInfer] = Field(min_length=1, max_length=MAX_RANK,
                                    description="Sizes without the batch, one per axis: a size-1 axis is broadcast to "
                                                "its entry, -1 keeps an axis.")


@register
class Expand(Plumbing):
    name = "expand"
    Params = ExpandParams
    summary = ("Broadcast size-1 axes to the given sizes without copying (torch's expand); -1 keeps an axis: "
               "[1, D] -> [L, D] is `expand: {shape: [L, -1]}`.")
    example = "expand: {shape: [197, -1]}"
    label_fields = ("shape",)

    def infer(self, p: ExpandParams, inputs: list[TensorType]) -> TensorType:
        return expanded(self.name, inputs[0], p.shape)

    def output_view(self, p: ExpandParams, inputs: list[TensorType], out: TensorType, training: bool) -> View | None:
        return "strided"

    def torch(self, p: ExpandParams, inputs: list[TensorType], out: TensorType) -> TorchCode:
        return expand_torch(p.shape)

    def onnx(self, b: Any, p: ExpandParams, inputs: list[str], in_types: list[TensorType], out: TensorType,
             weights: dict[str, Any]) -> str:
        return expand_onnx(b, inputs[0], p.shape)


class SqueezeParams(OpParams):
    axes: list[Axis] | None = Field(None, max_length=MAX_RANK,
                                    description="Size-1 axes to remove, e.g. `[1, 2]` for [C, 1, 1] -> [C]; default: "
                                                "every size-1 axis (then the output rank depends on the input's "
                                                "sizes, which a dynamic-size export refuses).")


@register
class Squeeze(Plumbing):
    name = "squeeze"
    Params = SqueezeParams
    summary = "Remove size-1 axes: [C, 1, 1] -> [C]."
    example = "squeeze: {axes: [1, 2]}"

    def axes(self, p: SqueezeParams, x: TensorType) -> list[int]:
        if p.axes is None:
            return [i for i, n in enumerate(x.shape) if n == 1]
        axes = norm_axes(self.name, p.axes, x)
        wrong = [a for a in axes if x.shape[a] != 1]
        if wrong:
            raise Problem("E306", f"squeeze expects axes of size 1; axis {wrong[0]} of {x} has size "
                                  f"{x.shape[wrong[0]]}")
        return axes

    def infer(self, p: SqueezeParams, inputs: list[TensorType]) -> TensorType:
        x = inputs[0]
        axes = self.axes(p, x)
        shape = tuple(n for i, n in enumerate(x.shape) if i not in axes)
        if not shape:
            raise Problem("E306", f"squeeze would remove every axis of {x}; keep at least one")
        return x.with_shape(shape)

    def torch(self, p: SqueezeParams, inputs: list[TensorType], out: TensorType) -> TorchCode:
        dims = tuple(a + 1 for a in self.axes(p, inputs[0]))
        return TorchCode(None, f"{{0}}.squeeze({dims})" if dims else "{0}")

    def output_view(self, p: SqueezeParams, inputs: list[TensorType], out: TensorType, training: bool) -> View | None:
        return "alias"

    def onnx(self, b: Any, p: SqueezeParams, inputs: list[str], in_types: list[TensorType], out: TensorType,
             weights: dict[str, Any]) -> str:
        axes = [a + 1 for a in self.axes(p, in_types[0])]
        return b.node("Squeeze", [inputs[0], b.const_int64(axes)]) if axes else inputs[0]


class UnsqueezeParams(OpParams):
    axes: list[Position] = Field(
        min_length=1, max_length=MAX_RANK, description="Positions of the new size-1 axes in the output, e.g. `[1, 2]` "
                                                       "for [C] -> [C, 1, 1].")


@register
class Unsqueeze(Plumbing):
    name = "unsqueeze"
    Params = UnsqueezeParams
    summary = "Insert size-1 axes at the given output positions: [C] -> [C, 1, 1]."
    example = "unsqueeze: {axes: [1, 2]}"

    def infer(self, p: UnsqueezeParams, inputs: list[TensorType]) -> TensorType:
        x = inputs[0]
        rank = x.rank + len(p.axes)
        if len(set(p.axes)) != len(p.axes) or max(p.axes) >= rank:
            raise Problem("E306", f"unsqueeze axes {p.axes} expects distinct positions below the output rank {rank}")
        rest = iter(x.shape)
        return x.with_shape(tuple(1 if i in p.axes else next(rest) for i in range(rank)))

    def torch(self, p: UnsqueezeParams, inputs: list[TensorType], out: TensorType) -> TorchCode:
        # inserting in ascending order puts every axis at its output position
        return TorchCode(None, "{0}" + "".join(f".unsqueeze({a + 1})" for a in sorted(p.axes)))

    def output_view(self, p: UnsqueezeParams, inputs: list[TensorType], out: TensorType, training: bool) -> View | None:
        return "alias"

    def onnx(self, b: Any, p: UnsqueezeParams, inputs: list[str], in_types: list[TensorType], out: TensorType,
             weights: dict[str, Any]) -> str:
        return b.node("Unsqueeze", [inputs[0], b.const_int64([a + 1 for a in p.axes])])


class SliceParams(OpParams):
    axis: Axis = Field(0, description="Axis sliced (0 = channels).")
    start: int = Field(0, ge=-MAX_DIM, le=MAX_DIM, description="First index (negative counts from the end).")
    end: int | None = Field(None, ge=-MAX_DIM, le=MAX_DIM,
                            description="Index after the last (exclusive; negative counts from the end); default: "
                                        "the end of the axis.")
    step: Size = Field(1, description="Take every step-th index.")


@register
class Slice(Plumbing):
    name = "slice"
    Params = SliceParams
    summary = ("A contiguous (or strided) range of one axis, Python-style: ShuffleNet v2's channel split is two "
               "slices of the channels.")
    example = 'slice: {axis: 0, start: 0, end: "${in_channels // 2}"}'
    label_fields = ("axis", "start", "end")

    def bounds(self, p: SliceParams, x: TensorType) -> tuple[int, int, int, int]:
        """(axis, start, end, count) with start and end clamped into the axis as Python does."""
        axis = norm_axis(self.name, p.axis, x)
        start, end, step = slice(p.start, p.end, p.step).indices(x.shape[axis])
        count = len(range(start, end, step))
        if count < 1:
            raise Problem("E306", f"slice {p.start}:{p.end if p.end is not None else ''} of axis {p.axis} "
                                  f"(size {x.shape[axis]}) is empty")
        return axis, start, end, count

    def infer(self, p: SliceParams, inputs: list[TensorType]) -> TensorType:
        x = inputs[0]
        axis, _, _, count = self.bounds(p, x)
        return x.with_shape(tuple(count if i == axis else n for i, n in enumerate(x.shape)))

    # the spec's bounds, not the clamped ones, so that a negative bound counts from the end at any input size
    def torch(self, p: SliceParams, inputs: list[TensorType], out: TensorType) -> TorchCode:
        axis = self.bounds(p, inputs[0])[0]
        bounds = f"{p.start or ''}:{p.end if p.end is not None else ''}" + (f":{p.step}" if p.step != 1 else "")
        return TorchCode(None, f"{{0}}[{', '.join([':'] * (axis + 1) + [bounds])}]")

    def output_view(self, p: SliceParams, inputs: list[TensorType], out: TensorType, training: bool) -> View | None:
        return "strided"

    def onnx(self, b: Any, p: SliceParams, inputs: list[str], in_types: list[TensorType], out: TensorType,
             weights: dict[str, Any]) -> str:
        axis = self.bounds(p, in_types[0])[0]
        end = p.end if p.end is not None else INT64_MAX
        y = b.node("Slice", [inputs[0], *(b.const_int64([v]) for v in (p.start, end, axis + 1, p.step))])
        if b.in_dims[0][axis] is None and b.out_dims[axis] is not None:
            y = b.reshape(y, out)  # a fixed-length slice of a size-dependent axis: restate the static length
        return y


@register
class Identity(Plumbing):
    name = "identity"
    Params = NoParams
    summary = "Pass the input through unchanged (a placeholder, or a named tap on a tensor)."
    example = "identity: {id: features}"

    def torch(self, p: NoParams, inputs: list[TensorType], out: TensorType) -> TorchCode:
        return TorchCode(None, "{0}")

    def output_view(self, p: NoParams, inputs: list[TensorType], out: TensorType, training: bool) -> View | None:
        return "alias"

    def onnx(self, b: Any, p: NoParams, inputs: list[str], in_types: list[TensorType], out: TensorType,
             weights: dict[str, Any]) -> str:
        return inputs[0]  # no node: users read the input
