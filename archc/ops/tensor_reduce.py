"""Reductions over chosen axes: mean, sum and max, with or without keeping the reduced axes as size 1."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from archc.errors import Problem
from archc.ir.types import TensorType
from archc.ops.base import Cost, Op, OpParams, TorchCode, norm_axes
from archc.ops.fields import MAX_RANK, Axis
from archc.ops.onnx_helpers import reduce_node
from archc.ops.registry import register
from archc.ops.saved import NOTHING, Saved


class ReduceParams(OpParams):
    axes: list[Axis] = Field(min_length=1, max_length=MAX_RANK,
                             description="Axes reduced (0 = channels), e.g. `[0]` for a per-position statistic over "
                                         "channels (CBAM) or `[1, 2]` over space.")
    keepdims: bool = Field(False, description="Keep the reduced axes as size 1.")


class _Reduce(Op):
    family = "tensor"
    Params = ReduceParams
    torch_fn = ""
    onnx_op = ""
    label_fields = ("axes",)

    def infer(self, p: ReduceParams, inputs: list[TensorType]) -> TensorType:
        x = inputs[0]
        axes = norm_axes(self.name, p.axes, x)
        if p.keepdims:
            return x.with_shape(tuple(1 if i in axes else n for i, n in enumerate(x.shape)))
        shape = tuple(n for i, n in enumerate(x.shape) if i not in axes)
        if not shape:
            raise Problem("E306", f"{self.name} over every axis of {x} leaves none; use `keepdims: true`")
        return x.with_shape(shape)

    def cost(self, p: ReduceParams, inputs: list[TensorType], out: TensorType) -> Cost:
        return Cost(elementwise=inputs[0].numel)

    def torch(self, p: ReduceParams, inputs: list[TensorType], out: TensorType) -> TorchCode:
        dims = tuple(a + 1 for a in norm_axes(self.name, p.axes, inputs[0]))
        keep = ", keepdim=True" if p.keepdims else ""
        return TorchCode(None, f"torch.{self.torch_fn}({{0}}, {dims}{keep})")

    def saved_for_backward(self, p: ReduceParams, inputs: list[TensorType], out: TensorType) -> Saved:
        return NOTHING  # sums and means spread the gradient by sizes alone

    def onnx(self, b: Any, p: ReduceParams, inputs: list[str], in_types: list[TensorType], out: TensorType,
             weights: dict[str, Any]) -> str:
        axes = [a + 1 for a in norm_axes(self.name, p.axes, in_types[0])]
        return reduce_node(b, self.onnx_op, inputs[0], axes, p.keepdims)


@register
class Mean(_Reduce):
    name = "mean"
    summary = "Mean over the given axes."
    example = "mean: {axes: [0], keepdims: true}"
    torch_fn = "mean"
    onnx_op = "ReduceMean"


@register
class Sum(_Reduce):
    name = "sum"
    summary = "Sum over the given axes."
    example = "sum: {axes: [-1], keepdims: true}"
    torch_fn = "sum"
    onnx_op = "ReduceSum"


@register
class Max(_Reduce):
    name = "max"
    summary = "Maximum over the given axes."
    example = "max: {axes: [0], keepdims: true}"
    torch_fn = "amax"
    onnx_op = "ReduceMax"

    def saved_for_backward(self, p: ReduceParams, inputs: list[TensorType], out: TensorType) -> Saved:
        return Saved(inputs=(0,), output=True)  # amax finds its maxima again by comparing input and result
