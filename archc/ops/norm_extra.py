"""Per-sample normalisation (instance norm, group norm) and Caffe's per-channel affine `Scale` layer.

numpy is imported inside the ONNX methods only: the compiler core runs without the emit extras.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from archc.errors import Problem
from archc.ir.types import TensorType
from archc.ops.base import Cost, Op, OpParams, TorchCode, expect_rank
from archc.ops.fields import Positive, Size
from archc.ops.registry import register
from archc.ops.tensor_ops import merge_channels, split_channels


def _channel_shape(x: TensorType) -> tuple[int, ...]:
    """A [C] vector's shape for broadcasting over ``x`` with the batch: [C, 1, 1] for [C, H, W]."""
    return (x.channels, *(1,) * (x.rank - 1))


def affine_onnx(b: Any, y: str, x: TensorType, weights: dict[str, Any], bias: bool = True) -> str:
    """y * weight + bias with the layer's [C] weights broadcast over the spatial axes."""
    import numpy as np

    y = b.node("Mul", [y, b.initializer("weight", np.asarray(weights["weight"]).reshape(_channel_shape(x)))])
    if bias:
        y = b.node("Add", [y, b.initializer("bias", np.asarray(weights["bias"]).reshape(_channel_shape(x)))])
    return y


def per_channel_view(x: TensorType) -> str:
    """`.view(-1, 1, 1)`: a [C] vector broadcast over ``x`` (batch excluded) in PyTorch."""
    return f".view(-1{', 1' * (x.rank - 1)})"


class InstanceNormParams(OpParams):
    eps: Positive = Field(1e-5, description="Added to the variance for numerical stability.")
    affine: bool = Field(False, description="Learn a per-channel scale and shift (PyTorch's default: no).")


@register
class InstanceNorm(Op):
    name = "instance_norm"
    output_overwritable = True
    family = "norm"
    Params = InstanceNormParams
    summary = ("Instance normalisation: each channel of each sample normalised over its spatial positions "
               "(InstanceNorm1d/2d/3d by rank; style transfer). Always uses the sample's own statistics.")
    example = "instance_norm: {affine: true}"

    def infer(self, p: InstanceNormParams, inputs: list[TensorType]) -> TensorType:
        x = inputs[0]
        expect_rank(self.name, x, (2, 3, 4))
        if all(d == 1 for d in x.spatial):  # PyTorch refuses it at run time: one value has no spread
            raise Problem("E306", f"instance_norm normalises each channel over its spatial positions; found {x}, "
                                  "which has only one")
        return x

    def cost(self, p: InstanceNormParams, inputs: list[TensorType], out: TensorType) -> Cost:
        return Cost(params=2 * out.channels if p.affine else 0, elementwise=2 * out.numel)

    def torch(self, p: InstanceNormParams, inputs: list[TensorType], out: TensorType) -> TorchCode:
        args = [str(out.channels)]
        if p.eps != 1e-5:
            args.append(f"eps={p.eps!r}")
        if p.affine:
            args.append("affine=True")
        return TorchCode(f"nn.InstanceNorm{out.rank - 1}d({', '.join(args)})", "{m}({0})")

    def onnx(self, b: Any, p: InstanceNormParams, inputs: list[str], in_types: list[TensorType], out: TensorType,
             weights: dict[str, Any]) -> str:
        import numpy as np

        c = out.channels
        dtype = np.dtype(out.dtype)
        if p.affine:
            scale = b.initializer("weight", np.asarray(weights["weight"]))
            shift = b.initializer("bias", np.asarray(weights["bias"]))
        else:
            scale, shift = b.constant("ones", np.ones(c, dtype)), b.constant("zeros", np.zeros(c, dtype))
        return b.node("InstanceNormalization", [inputs[0], scale, shift], epsilon=float(p.eps))


class GroupNormParams(OpParams):
    groups: Size = Field(description="Channel groups normalised together; must divide the channels.")
    eps: Positive = Field(1e-5, description="Added to the variance for numerical stability.")
    affine: bool = Field(True, description="Learn a per-channel scale and shift.")


@register
class GroupNorm(Op):
    name = "group_norm"
    output_overwritable = True
    family = "norm"
    Params = GroupNormParams
    summary = ("Group normalisation (Wu and He 2018): channels split into groups, each normalised over its "
               "channels and spatial positions per sample; `groups: 1` is layer norm over [C, H, W].")
    example = "group_norm: {groups: 32}"
    label_fields = ("groups",)

    def infer(self, p: GroupNormParams, inputs: list[TensorType]) -> TensorType:
        x = inputs[0]
        expect_rank(self.name, x, (1, 2, 3, 4))
        if x.channels % p.groups:
            raise Problem("E303", f"group_norm groups={p.groups} expects channels divisible by {p.groups}; "
                                  f"found {x.channels}")
        return x

    def cost(self, p: GroupNormParams, inputs: list[TensorType], out: TensorType) -> Cost:
        return Cost(params=2 * out.channels if p.affine else 0, elementwise=2 * out.numel)

    def torch(self, p: GroupNormParams, inputs: list[TensorType], out: TensorType) -> TorchCode:
        args = [str(p.groups), str(out.channels)]
        if p.eps != 1e-5:
            args.append(f"eps={p.eps!r}")
        if not p.affine:
            args.append("affine=False")
        return TorchCode(f"nn.GroupNorm({', '.join(args)})", "{m}({0})")

    def onnx(self, b: Any, p: GroupNormParams, inputs: list[str], in_types: list[TensorType], out: TensorType,
             weights: dict[str, Any]) -> str:
        import numpy as np

        x = in_types[0]
        dtype = np.dtype(x.dtype)
        # [N, C, *S] -> [N, groups, C / groups, *S], instance-normalised, back, then the per-channel affine part:
        # exact at every opset (GroupNormalization-18 scales per group; onnx infers no shapes through the -21 one)
        n = x.rank - 1
        grouped = split_channels(b, inputs[0], n, p.groups, x.channels // p.groups)
        ones, zeros = b.constant("ones", np.ones(p.groups, dtype)), b.constant("zeros", np.zeros(p.groups, dtype))
        y = b.node("InstanceNormalization", [grouped, ones, zeros], epsilon=float(p.eps))
        y = merge_channels(b, y, n, x.channels)
        return affine_onnx(b, y, x, weights) if p.affine else y


class ScaleParams(OpParams):
    bias: bool = Field(True, description="Also learn a per-channel shift (Caffe's `bias_term`).")


@register
class Scale(Op):
    name = "scale"
    family = "norm"
    Params = ScaleParams
    summary = ("Caffe's Scale layer: a learned per-channel multiplier and (optionally) shift, y = x * weight + bias; "
               "what follows Caffe's BatchNorm layer, which has no affine part.")
    example = "scale: {bias: true}"

    def infer(self, p: ScaleParams, inputs: list[TensorType]) -> TensorType:
        expect_rank(self.name, inputs[0], (1, 2, 3, 4))
        return inputs[0]

    def cost(self, p: ScaleParams, inputs: list[TensorType], out: TensorType) -> Cost:
        k = 2 if p.bias else 1
        return Cost(params=k * out.channels, elementwise=k * out.numel)

    def torch(self, p: ScaleParams, inputs: list[TensorType], out: TensorType) -> TorchCode:
        c = out.channels
        items = [f'("weight", nn.Parameter(torch.ones({c})))']
        call = f"{{0}} * {{m}}.weight{per_channel_view(out)}"
        if p.bias:
            items.append(f'("bias", nn.Parameter(torch.zeros({c})))')
            call += f" + {{m}}.bias{per_channel_view(out)}"
        return TorchCode(f"nn.ParameterDict([{', '.join(items)}])", call)

    def onnx(self, b: Any, p: ScaleParams, inputs: list[str], in_types: list[TensorType], out: TensorType,
             weights: dict[str, Any]) -> str:
        return affine_onnx(b, inputs[0], in_types[0], weights, p.bias)
