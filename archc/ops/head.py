"""Classifier heads: softmax and log-softmax along an axis."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from archc.ir.types import TensorType
from archc.ops.base import Op, OpParams, TorchCode, norm_axis
from archc.ops.fields import Axis, torch_dim
from archc.ops.registry import register
from archc.ops.saved import Saved


class SoftmaxParams(OpParams):
    axis: Axis = Field(0, description="Axis normalised over (0 = channels / classes).")


class _Softmax(Op):
    """A normalisation along one axis, which must exist in the input."""

    family = "head"
    Params = SoftmaxParams
    torch_fn = ""
    onnx_op = ""

    def infer(self, p: SoftmaxParams, inputs: list[TensorType]) -> TensorType:
        norm_axis(self.name, p.axis, inputs[0])
        return inputs[0]

    def torch(self, p: SoftmaxParams, inputs: list[TensorType], out: TensorType) -> TorchCode:
        return TorchCode(None, f"torch.{self.torch_fn}({{0}}, {torch_dim(p.axis)})")

    def saved_for_backward(self, p: SoftmaxParams, inputs: list[TensorType], out: TensorType) -> Saved:
        return Saved(output=True)  # both derivatives read the result

    def onnx(self, b: Any, p: SoftmaxParams, inputs: list[str], in_types: list[TensorType], out: TensorType,
             weights: dict[str, Any]) -> str:
        return b.node(self.onnx_op, [inputs[0]], axis=torch_dim(p.axis))


@register
class Softmax(_Softmax):
    name = "softmax"
    summary = "Softmax along an axis (the class axis by default)."
    example = "softmax"
    torch_fn = "softmax"
    onnx_op = "Softmax"


@register
class LogSoftmax(_Softmax):
    name = "log_softmax"
    summary = "Logarithm of the softmax along an axis (the class axis by default), computed stably."
    example = "log_softmax"
    torch_fn = "log_softmax"
    onnx_op = "LogSoftmax"
