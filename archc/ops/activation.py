"""Activation functions: the parameter-free ones from one table, the others (leaky ReLU, PReLU, GELU, ELU) as classes
of their own. The softmax family is in :mod:`archc.ops.head`."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import Field

from archc.ir.types import TensorType
from archc.ops.base import Cost, NoParams, Op, OpParams, TorchCode
from archc.ops.fields import Float32
from archc.ops.registry import register
from archc.ops.saved import Saved

OnnxEmit = Callable[[Any, str, TensorType], str]
"""(builder, input, input type) -> output: an activation's ONNX nodes."""

# SELU's constants (Klambauer et al. 2017) as PyTorch and ONNX define them
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


class _Activation(Op):
    family = "act"


@dataclass(frozen=True)
class PointwiseForm:
    """Everything a parameter-free activation emits."""

    call: str
    """PyTorch forward expression."""
    onnx: OnnxEmit
    summary: str
    inplace: str | None = None
    """In-place form, for activations whose backward pass reads their output, not their input: overwriting the input
    is then safe for autograd, as torchvision's ReLU(inplace=True) and ReLU6(inplace=True) do."""
    saves_output: bool = False
    """Autograd differentiates through the result (ReLU, sigmoid, tanh) and keeps it, not the input."""


def _onnx_op(op_type: str, **attrs: Any) -> OnnxEmit:
    """One ONNX node of ``op_type`` on the input."""
    return lambda b, x, t: b.node(op_type, [x], **attrs)


def _onnx_relu6(b: Any, x: str, t: TensorType) -> str:
    return b.node("Clip", [x, b.const_scalar(0.0, t.dtype), b.const_scalar(6.0, t.dtype)])


def _onnx_mish(b: Any, x: str, t: TensorType) -> str:
    if b.opset >= 18:
        return b.node("Mish", [x])
    return b.node("Mul", [x, b.node("Tanh", [b.node("Softplus", [x])])])


POINTWISE: dict[str, PointwiseForm] = {
    "relu": PointwiseForm("torch.relu({0})", _onnx_op("Relu"), "Rectified linear unit, max(0, x).",
                          "torch.relu_({0})", saves_output=True),
    "sigmoid": PointwiseForm("torch.sigmoid({0})", _onnx_op("Sigmoid"), "Logistic sigmoid, 1 / (1 + exp(-x)).",
                             saves_output=True),
    "tanh": PointwiseForm("torch.tanh({0})", _onnx_op("Tanh"), "Hyperbolic tangent.", saves_output=True),
    # ONNX's HardSigmoid defaults are alpha 0.2, beta 0.5; PyTorch's is relu6(x + 3) / 6
    "hardsigmoid": PointwiseForm("F.hardsigmoid({0})", _onnx_op("HardSigmoid", alpha=1 / 6, beta=0.5),
                                 "Piecewise-linear sigmoid, relu6(x + 3) / 6 (MobileNet v3)."),
    "hardswish": PointwiseForm("F.hardswish({0})", _onnx_op("HardSwish"), "x * relu6(x + 3) / 6 (MobileNet v3)."),
    "silu": PointwiseForm("F.silu({0})", lambda b, x, t: b.node("Mul", [x, b.node("Sigmoid", [x])]),
                          "x * sigmoid(x), also called swish."),
    "relu6": PointwiseForm("F.relu6({0})", _onnx_relu6, "min(max(0, x), 6) (MobileNet).",
                           "F.relu6({0}, inplace=True)"),
    "selu": PointwiseForm("F.selu({0})", _onnx_op("Selu", alpha=SELU_ALPHA, gamma=SELU_SCALE),
                          "Scaled ELU with the self-normalising constants (Klambauer et al. 2017)."),
    "mish": PointwiseForm("F.mish({0})", _onnx_mish, "x * tanh(softplus(x)) (Misra 2019; YOLOv4)."),
}
"""The parameter-free activations, by name."""


class _Pointwise(_Activation):
    form: ClassVar[PointwiseForm]

    def torch(self, p: NoParams, inputs: list[TensorType], out: TensorType) -> TorchCode:
        return TorchCode(None, self.form.call, self.form.inplace)

    def saved_for_backward(self, p: NoParams, inputs: list[TensorType], out: TensorType) -> Saved:
        # ReLU6 in place (hardtanh_) keeps a copy of its input
        return Saved(output=True) if self.form.saves_output else Saved(inputs=(0,), copied_in_place=True)

    def onnx(self, b: Any, p: NoParams, inputs: list[str], in_types: list[TensorType], out: TensorType,
             weights: dict[str, Any]) -> str:
        return self.form.onnx(b, inputs[0], in_types[0])


for _name, _form in POINTWISE.items():
    register(type(_name.capitalize(), (_Pointwise,), {
        "name": _name, "form": _form, "summary": _form.summary, "example": _name, "__module__": __name__,
    }))


class LeakyReluParams(OpParams):
    slope: Float32 = Field(0.01, description="Slope for negative inputs.")


@register
class LeakyRelu(_Activation):
    name = "leaky_relu"
    Params = LeakyReluParams
    summary = "max(0, x) + slope * min(0, x)."
    example = "leaky_relu: {slope: 0.1}"

    def torch(self, p: LeakyReluParams, inputs: list[TensorType], out: TensorType) -> TorchCode:
        return TorchCode(None, f"F.leaky_relu({{0}}, {p.slope!r})")

    def onnx(self, b: Any, p: LeakyReluParams, inputs: list[str], in_types: list[TensorType], out: TensorType,
             weights: dict[str, Any]) -> str:
        return b.node("LeakyRelu", [inputs[0]], alpha=float(p.slope))


class PReluParams(OpParams):
    shared: bool = Field(False, description="One learned slope for all channels instead of one per channel.")


@register
class PRelu(_Activation):
    name = "prelu"
    Params = PReluParams
    summary = "Leaky ReLU with a learned slope per channel (or one shared slope)."
    example = "prelu"

    def cost(self, p: PReluParams, inputs: list[TensorType], out: TensorType) -> Cost:
        return Cost(params=1 if p.shared else out.channels, elementwise=out.numel)

    def torch(self, p: PReluParams, inputs: list[TensorType], out: TensorType) -> TorchCode:
        n = 1 if p.shared else out.channels
        return TorchCode(f"nn.PReLU({n})", "{m}({0})")

    def onnx(self, b: Any, p: PReluParams, inputs: list[str], in_types: list[TensorType], out: TensorType,
             weights: dict[str, Any]) -> str:
        slope = weights["weight"]
        if not p.shared and out.rank > 1:
            slope = slope.reshape(-1, *(1,) * (out.rank - 1))  # one slope per channel, broadcast over space
        return b.node("PRelu", [inputs[0], b.initializer("weight", slope)])


class GeluParams(OpParams):
    approximate: Literal["none", "tanh"] = Field("none", description="`tanh` for the tanh approximation.")


@register
class Gelu(_Activation):
    name = "gelu"
    Params = GeluParams
    summary = "Gaussian error linear unit."
    example = "gelu"

    def torch(self, p: GeluParams, inputs: list[TensorType], out: TensorType) -> TorchCode:
        extra = "" if p.approximate == "none" else f", approximate={p.approximate!r}"
        return TorchCode(None, f"F.gelu({{0}}{extra})")

    def onnx(self, b: Any, p: GeluParams, inputs: list[str], in_types: list[TensorType], out: TensorType,
             weights: dict[str, Any]) -> str:
        x, dtype = inputs[0], in_types[0].dtype
        if b.opset >= 20:
            return b.node("Gelu", [x], approximate=p.approximate)
        # Gelu arrived in opset 20: before it, PyTorch's formulas spelled out
        if p.approximate == "tanh":
            cube = b.node("Mul", [b.node("Mul", [x, x]), x])
            inner = b.node("Add", [x, b.node("Mul", [cube, b.const_scalar(0.044715, dtype)])])
            core = b.node("Tanh", [b.node("Mul", [inner, b.const_scalar(math.sqrt(2 / math.pi), dtype)])])
        else:
            core = b.node("Erf", [b.node("Div", [x, b.const_scalar(math.sqrt(2.0), dtype)])])
        half_x = b.node("Mul", [x, b.const_scalar(0.5, dtype)])
        return b.node("Mul", [half_x, b.node("Add", [core, b.const_scalar(1.0, dtype)])])


class EluParams(OpParams):
    alpha: float = Field(1.0, ge=0.0, le=1e6, description="Value approached for large negative inputs: "
                                                            "alpha * (exp(x) - 1) below zero.")


@register
class Elu(_Activation):
    name = "elu"
    Params = EluParams
    summary = "Exponential linear unit: x above zero, alpha * (exp(x) - 1) below (Clevert et al. 2015)."
    example = "elu: {alpha: 1.0}"

    def torch(self, p: EluParams, inputs: list[TensorType], out: TensorType) -> TorchCode:
        return TorchCode(None, "F.elu({0})" if p.alpha == 1.0 else f"F.elu({{0}}, {p.alpha!r})")

    def onnx(self, b: Any, p: EluParams, inputs: list[str], in_types: list[TensorType], out: TensorType,
             weights: dict[str, Any]) -> str:
        return b.node("Elu", [inputs[0]], alpha=float(p.alpha))
