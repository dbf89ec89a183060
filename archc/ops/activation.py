"""Activation functions. Parameter-free ones come from one table; the others are classes of their own."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal

from pydantic import Field

from archc.ir.types import TensorType
from archc.ops.base import Cost, Op, OpParams, TorchCode
from archc.ops.fields import Axis, Float32, torch_dim
from archc.ops.registry import register


class _Activation(Op):
    family = "act"
    torch_call = ""
    torch_inplace: str | None = None
    onnx_op = ""

    def torch(self, p: Any, inputs: list[TensorType], out: TensorType) -> TorchCode:
        return TorchCode(None, self.torch_call, self.torch_inplace)

    def onnx(self, b: Any, p: Any, inputs: list[str], in_types: list[TensorType], out: TensorType,
             weights: dict[str, Any]) -> str:
        special = _ONNX_EMIT.get(self.name)
        if special is not None:
            return special(b, inputs[0], in_types[0])
        return b.node(self.onnx_op, [inputs[0]])


def _onnx_silu(b: Any, x: str, t: TensorType) -> str:
    return b.node("Mul", [x, b.node("Sigmoid", [x])])


def _onnx_relu6(b: Any, x: str, t: TensorType) -> str:
    return b.node("Clip", [x, b.const_scalar(0.0, t.dtype), b.const_scalar(6.0, t.dtype)])


def _onnx_hardsigmoid(b: Any, x: str, t: TensorType) -> str:
    # ONNX's defaults are alpha 0.2, beta 0.5; PyTorch's hardsigmoid is relu6(x + 3) / 6
    return b.node("HardSigmoid", [x], alpha=1 / 6, beta=0.5)


_ONNX_EMIT: dict[str, Callable[[Any, str, TensorType], str]] = {
    "silu": _onnx_silu, "relu6": _onnx_relu6, "hardsigmoid": _onnx_hardsigmoid,
}
"""Activations that are not a single default-attribute ONNX op."""

# name, forward expression, ONNX op, summary
_SIMPLE = [
    ("relu", "torch.relu({0})", "Relu", "Rectified linear unit, max(0, x)."),
    ("sigmoid", "torch.sigmoid({0})", "Sigmoid", "Logistic sigmoid, 1 / (1 + exp(-x))."),
    ("tanh", "torch.tanh({0})", "Tanh", "Hyperbolic tangent."),
    ("hardsigmoid", "F.hardsigmoid({0})", "HardSigmoid", "Piecewise-linear sigmoid, relu6(x + 3) / 6 (MobileNet v3)."),
    ("hardswish", "F.hardswish({0})", "HardSwish", "x * relu6(x + 3) / 6 (MobileNet v3)."),
    ("silu", "F.silu({0})", "", "x * sigmoid(x), also called swish."),
    ("relu6", "F.relu6({0})", "", "min(max(0, x), 6) (MobileNet)."),
]


_INPLACE = {"relu": "torch.relu_({0})", "relu6": "F.relu6({0}, inplace=True)"}
"""In-place forms of the activations whose backward pass reads their output, not their input (so overwriting the
input is safe for autograd, as torchvision's ReLU(inplace=True) and ReLU6(inplace=True) do)."""


def _make_simple(name: str, call: str, onnx_op: str, summary: str) -> type[_Activation]:
    cls = type(name.capitalize(), (_Activation,), {
        "name": name, "torch_call": call, "torch_inplace": _INPLACE.get(name), "onnx_op": onnx_op,
        "summary": summary, "example": name, "__module__": __name__,
    })
    return register(cls)


for _row in _SIMPLE:
    _make_simple(*_row)


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


class SoftmaxParams(OpParams):
    axis: Axis = Field(0, description="Axis normalised over (0 = channels / classes).")


@register
class Softmax(_Activation):
    name = "softmax"
    family = "head"
    Params = SoftmaxParams
    summary = "Softmax along an axis (the class axis by default)."
    example = "softmax"

    def torch(self, p: SoftmaxParams, inputs: list[TensorType], out: TensorType) -> TorchCode:
        return TorchCode(None, f"torch.softmax({{0}}, {torch_dim(p.axis)})")

    def onnx(self, b: Any, p: SoftmaxParams, inputs: list[str], in_types: list[TensorType], out: TensorType,
             weights: dict[str, Any]) -> str:
        return b.node("Softmax", [inputs[0]], axis=torch_dim(p.axis))


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
