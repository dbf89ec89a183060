"""Merges of several tensors: element-wise add, multiply, subtract and maximum (with broadcasting), concatenation."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from archc.errors import Problem
from archc.ir.types import TensorType
from archc.ops.base import Cost, NoParams, Op, OpParams, TorchCode, norm_axis
from archc.ops.fields import Axis, torch_dim
from archc.ops.registry import register
from archc.ops.saved import NOTHING, Extra, Saved


def broadcast(op: str, inputs: list[TensorType], sources: list[str]) -> TensorType:
    """NumPy broadcasting restricted to inputs of equal rank; the mismatch names both inputs."""
    first = inputs[0]
    shape = list(first.shape)
    for t, src in zip(inputs[1:], sources[1:]):
        if t.rank != first.rank or any(a != b and 1 not in (a, b) for a, b in zip(shape, t.shape)):
            which = (f" ({sources[0]})", f" ({src})") if len(inputs) > 2 else ("", "")
            raise Problem("E301", f"{op} expects inputs of equal shape (or 1 where they differ); found {first}"
                                  f"{which[0]} and {t}{which[1]}")
        shape = [max(a, b) for a, b in zip(shape, t.shape)]
    return first.with_shape(tuple(shape))


class _Elementwise(Op):
    family = "merge"
    Params = NoParams
    min_inputs = 2
    max_inputs = None
    symbol = ""
    onnx_op = ""

    def infer(self, p: Any, inputs: list[TensorType]) -> TensorType:
        return broadcast(self.name, inputs, [f"input {i}" for i in range(len(inputs))])

    def cost(self, p: Any, inputs: list[TensorType], out: TensorType) -> Cost:
        return Cost(elementwise=out.numel * (len(inputs) - 1))

    def torch(self, p: Any, inputs: list[TensorType], out: TensorType) -> TorchCode:
        return TorchCode(None, f" {self.symbol} ".join(f"{{{i}}}" for i in range(len(inputs))))

    def saved_for_backward(self, p: Any, inputs: list[TensorType], out: TensorType) -> Saved:
        return NOTHING  # sums pass the gradient through

    def onnx(self, b: Any, p: Any, inputs: list[str], in_types: list[TensorType], out: TensorType,
             weights: dict[str, Any]) -> str:
        y = inputs[0]
        for other in inputs[1:]:
            y = b.node(self.onnx_op, [y, other])
        return y


@register
class Add(_Elementwise):
    name = "add"
    output_overwritable = True
    summary = "Element-wise sum of two or more inputs (residual merge)."
    example = "add: {from: [conv3, shortcut]}"
    symbol = "+"
    onnx_op = "Add"

    def torch(self, p: Any, inputs: list[TensorType], out: TensorType) -> TorchCode:
        code = super().torch(p, inputs, out)
        if inputs[0].shape != out.shape or inputs[0].dtype != out.dtype:  # broadcasting grows the first input
            return code
        # torchvision's `out += identity`: accumulate into the first input when nothing reads it again
        return TorchCode(None, code.call, "{0}" + "".join(f".add_({{{i}}})" for i in range(1, len(inputs))))


@register
class Mul(_Elementwise):
    name = "mul"

    def saved_for_backward(self, p: Any, inputs: list[TensorType], out: TensorType) -> Saved:
        # each factor is kept for the other's gradient; `a * b * c` also keeps the partial products
        partial = tuple(Extra("partial product", out.numel) for _ in inputs[2:])
        return Saved(inputs=tuple(range(len(inputs))), product=True, extras=partial)
    summary = "Element-wise product of two or more inputs (gating, attention)."
    example = "mul: {from: [features, gate]}"
    symbol = "*"
    onnx_op = "Mul"


@register
class Sub(_Elementwise):
    name = "sub"
    summary = "Element-wise difference of two inputs, first minus second (broadcast where a size is 1)."
    example = "sub: {from: [x, mean]}"
    min_inputs = 2
    max_inputs = 2
    symbol = "-"
    onnx_op = "Sub"


@register
class Maximum(_Elementwise):
    name = "maximum"
    summary = ("Element-wise maximum of two or more inputs (Caffe's Eltwise MAX, maxout): `torch.maximum`; the "
               "reduction over axes is `max`.")
    example = "maximum: {from: [a, b]}"
    onnx_op = "Max"

    def torch(self, p: Any, inputs: list[TensorType], out: TensorType) -> TorchCode:
        call = "{0}"
        for i in range(1, len(inputs)):
            call = f"torch.maximum({call}, {{{i}}})"
        return TorchCode(None, call)

    def saved_for_backward(self, p: Any, inputs: list[TensorType], out: TensorType) -> Saved:
        # each torch.maximum keeps both operands to route the gradient; a chain also keeps its partial maxima
        partial = tuple(Extra("partial maximum", out.numel) for _ in inputs[2:])
        return Saved(inputs=tuple(range(len(inputs))), extras=partial)


class ConcatParams(OpParams):
    axis: Axis = Field(0, description="Axis to join along (0 = channels).")


@register
class Concat(Op):
    name = "concat"
    output_overwritable = True
    ordered_inputs = True
    family = "merge"
    Params = ConcatParams
    summary = "Concatenation of two or more inputs along an axis (channels by default)."
    example = "concat: {from: [branch1, branch2]}"
    min_inputs = 2
    max_inputs = None

    def infer(self, p: ConcatParams, inputs: list[TensorType]) -> TensorType:
        first = inputs[0]
        axis = norm_axis(self.name, p.axis, first)
        total = 0
        for i, t in enumerate(inputs):
            others = [d for j, d in enumerate(t.shape) if j != axis]
            want = [d for j, d in enumerate(first.shape) if j != axis]
            if t.rank != first.rank or others != want:
                which = (" (input 0)", f" (input {i})") if len(inputs) > 2 else ("", "")
                raise Problem("E302", f"concat along axis {p.axis} expects inputs equal in every other dimension; "
                                      f"found {first}{which[0]} and {t}{which[1]}")
            total += t.shape[axis]
        shape = list(first.shape)
        shape[axis] = total
        return first.with_shape(tuple(shape))

    def cost(self, p: ConcatParams, inputs: list[TensorType], out: TensorType) -> Cost:
        return Cost()

    def torch(self, p: ConcatParams, inputs: list[TensorType], out: TensorType) -> TorchCode:
        items = ", ".join(f"{{{i}}}" for i in range(len(inputs)))
        return TorchCode(None, f"torch.cat([{items}], {torch_dim(p.axis)})")

    def saved_for_backward(self, p: ConcatParams, inputs: list[TensorType], out: TensorType) -> Saved:
        return NOTHING  # the gradient is sliced back by sizes

    def onnx(self, b: Any, p: ConcatParams, inputs: list[str], in_types: list[TensorType], out: TensorType,
             weights: dict[str, Any]) -> str:
        return b.node("Concat", inputs, axis=torch_dim(p.axis))
