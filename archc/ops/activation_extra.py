"""More activations: the exponential units (ELU, SELU), Mish, and log-softmax along an axis."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from archc.errors import Problem
from archc.ir.types import TensorType
from archc.ops.activation import SoftmaxParams
from archc.ops.base import Cost, NoParams, Op, OpParams, TorchCode
from archc.ops.fields import torch_dim
from archc.ops.registry import register

# SELU's constants (Klambauer et al. 2017) as PyTorch and ONNX define them
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


class EluParams(OpParams):
    alpha: float = Field(1.0, ge=0.0, le=1e6, description="Value approached for large negative inputs: "
                                                            "alpha * (exp(x) - 1) below zero.")


@register
class Elu(Op):
    name = "elu"
    family = "act"
    Params = EluParams
    summary = "Exponential linear unit: x above zero, alpha * (exp(x) - 1) below (Clevert et al. 2015)."
    example = "elu: {alpha: 1.0}"

    def torch(self, p: EluParams, inputs: list[TensorType], out: TensorType) -> TorchCode:
        return TorchCode(None, "F.elu({0})" if p.alpha == 1.0 else f"F.elu({{0}}, {p.alpha!r})")

    def onnx(self, b: Any, p: EluParams, inputs: list[str], in_types: list[TensorType], out: TensorType,
             weights: dict[str, Any]) -> str:
        return b.node("Elu", [inputs[0]], alpha=float(p.alpha))


@register
class Selu(Op):
    name = "selu"
    family = "act"
    Params = NoParams
    summary = "Scaled ELU with the self-normalising constants (Klambauer et al. 2017)."
    example = "selu"

    def torch(self, p: NoParams, inputs: list[TensorType], out: TensorType) -> TorchCode:
        return TorchCode(None, "F.selu({0})")

    def onnx(self, b: Any, p: NoParams, inputs: list[str], in_types: list[TensorType], out: TensorType,
             weights: dict[str, Any]) -> str:
        return b.node("Selu", [inputs[0]], alpha=SELU_ALPHA, gamma=SELU_SCALE)


@register
class Mish(Op):
    name = "mish"
    family = "act"
    Params = NoParams
    summary = "x * tanh(softplus(x)) (Misra 2019; YOLOv4)."
    example = "mish"

    def torch(self, p: NoParams, inputs: list[TensorType], out: TensorType) -> TorchCode:
        return TorchCode(None, "F.mish({0})")

    def onnx(self, b: Any, p: NoParams, inputs: list[str], in_types: list[TensorType], out: TensorType,
             weights: dict[str, Any]) -> str:
        if b.opset >= 18:
            return b.node("Mish", [inputs[0]])
        return b.node("Mul", [inputs[0], b.node("Tanh", [b.node("Softplus", [inputs[0]])])])


@register
class LogSoftmax(Op):
    name = "log_softmax"
    family = "head"
    Params = SoftmaxParams
    summary = "Logarithm of the softmax along an axis (the class axis by default), computed stably."
    example = "log_softmax"

    def infer(self, p: SoftmaxParams, inputs: list[TensorType]) -> TensorType:
        x = inputs[0]
        if not -x.rank <= p.axis < x.rank:
            raise Problem("E306", f"log_softmax axis {p.axis} is out of range for {x} (rank {x.rank})")
        return x

    def cost(self, p: SoftmaxParams, inputs: list[TensorType], out: TensorType) -> Cost:
        return Cost(elementwise=out.numel)

    def torch(self, p: SoftmaxParams, inputs: list[TensorType], out: TensorType) -> TorchCode:
        return TorchCode(None, f"torch.log_softmax({{0}}, {torch_dim(p.axis)})")

    def onnx(self, b: Any, p: SoftmaxParams, inputs: list[str], in_types: list[TensorType], out: TensorType,
             weights: dict[str, Any]) -> str:
        return b.node("LogSoftmax", [inputs[0]], axis=torch_dim(p.axis))
