"""Normalisation: batch norm (1-D/2-D/3-D by rank), layer norm, local response norm, per-sample normalisation
(instance norm, group norm) and Caffe's per-channel affine `Scale` layer.

numpy is imported inside the ONNX methods only: the compiler core runs without the emit extras.
"""

from __future__ import annotations

from dataclasses import replace
from math import prod
from typing import Any

from pydantic import Field

from archc.errors import Problem
from archc.ir.types import TensorType
from archc.ops.base import Cost, Op, OpParams, TorchCode, expect_rank, per_channel_view, weight_and_bias
from archc.ops.fields import Float32, Positive, Probability, Size
from archc.ops.onnx_helpers import affine_onnx, merge_channels, split_channels
from archc.ops.registry import register
from archc.ops.saved import Extra, Saved


def _norm_module(cls: str, args: list[str], p: Any, *, affine_keyword: str = "affine",
                affine_default: bool = True) -> TorchCode:
    """A normalisation module's constructor and call: ``eps``, ``momentum`` and the affine switch are written where
    they differ from PyTorch's defaults."""
    args = list(args)
    if p.eps != 1e-5:
        args.append(f"eps={p.eps!r}")
    if getattr(p, "momentum", 0.1) != 0.1:
        args.append(f"momentum={p.momentum!r}")
    if p.affine != affine_default:
        args.append(f"{affine_keyword}={p.affine}")
    return TorchCode(f"{cls}({', '.join(args)})", "{m}({0})")


def _affine_cost(affine: bool, scaled: int, out: TensorType) -> Cost:
    """Normalising costs two operations per element; the affine part learns a scale and a shift per ``scaled``."""
    return Cost(params=2 * scaled if affine else 0, elementwise=2 * out.numel)


STATS = "float32"
"""The dtype of the statistics normalisations keep for the backward pass."""


def _affine_sizes(params: int) -> tuple[int, ...]:
    """An affine normalisation's ``weight`` and ``bias``, equal halves of its parameters (none without)."""
    return (params // 2, params // 2) if params else ()


class BatchNormParams(OpParams):
    eps: Positive = Field(1e-5, description="Added to the variance for numerical stability.")
    momentum: Probability = Field(0.1, description="Running-statistics update rate (PyTorch convention).")
    affine: bool = Field(True, description="Learn a per-channel scale and shift.")


@register
class BatchNorm(Op):
    name = "bn"
    foldable_norm = True
    output_overwritable = True
    family = "norm"
    Params = BatchNormParams
    summary = "Batch normalisation over the channel axis (BatchNorm1d/2d/3d chosen by input rank)."
    example = "bn: {id: bn1, eps: 0.001}"

    def infer(self, p: BatchNormParams, inputs: list[TensorType]) -> TensorType:
        expect_rank(self.name, inputs[0], (1, 2, 3, 4))
        return inputs[0]

    def cost(self, p: BatchNormParams, inputs: list[TensorType], out: TensorType) -> Cost:
        # buffers: running mean, running variance and the num_batches_tracked counter, as in the state_dict
        return replace(_affine_cost(p.affine, out.channels, out), buffers=2 * out.channels + 1)

    def torch(self, p: BatchNormParams, inputs: list[TensorType], out: TensorType) -> TorchCode:
        return _norm_module(f"nn.BatchNorm{max(1, inputs[0].rank - 1)}d", [str(out.channels)], p)

    def saved_for_backward(self, p: BatchNormParams, inputs: list[TensorType], out: TensorType) -> Saved:
        # the batch's per-channel mean and inverse deviation, whatever the batch (float32 statistics)
        return Saved(inputs=(0,), extras=(Extra("mean and invstd", 2 * out.channels, STATS, per_sample=False),))

    def parameter_sizes(self, p: BatchNormParams, inputs: list[TensorType], out: TensorType) -> tuple[int, ...]:
        return _affine_sizes(self.cost(p, inputs, out).params)

    def onnx(self, b: Any, p: BatchNormParams, inputs: list[str], in_types: list[TensorType], out: TensorType,
             weights: dict[str, Any]) -> str:
        return b.batch_norm(inputs[0], in_types[0], weights, p.eps, affine=p.affine)


class LayerNormParams(OpParams):
    dims: int | None = Field(None, ge=1, le=4, description="How many trailing axes to normalise; default all.")
    channels_first: bool = Field(False, description="Normalise the channels (axis 0) at each position of [C, H, W] "
                                                    "instead (ConvNeXt's LayerNorm2d; weights of shape [C]).")
    eps: Positive = Field(1e-5, description="Added to the variance for numerical stability.")
    affine: bool = Field(True, description="Learn an element-wise scale and shift.")


@register
class LayerNorm(Op):
    name = "layernorm"
    output_overwritable = True
    family = "norm"
    Params = LayerNormParams
    summary = ("Layer normalisation over the trailing `dims` axes (all non-batch axes by default), or over the "
               "channels at each position (`channels_first`).")
    example = "layernorm: {dims: 1}"

    def normalized_shape(self, p: LayerNormParams, x: TensorType) -> tuple[int, ...]:
        if p.channels_first:
            expect_rank(self.name, x, (2, 3, 4), "input with channels_first")
            if p.dims not in (None, 1):
                raise Problem("E306", f"channels_first normalises the channels, one axis; found dims={p.dims}")
            return (x.channels,)
        dims = p.dims if p.dims is not None else x.rank
        if dims > x.rank:
            raise Problem("E306", f"dims={dims} but the input {x} has only {x.rank} axes")
        return x.shape[x.rank - dims:]

    def infer(self, p: LayerNormParams, inputs: list[TensorType]) -> TensorType:
        self.normalized_shape(p, inputs[0])
        return inputs[0]

    def cost(self, p: LayerNormParams, inputs: list[TensorType], out: TensorType) -> Cost:
        n = prod(self.normalized_shape(p, inputs[0]))
        return _affine_cost(p.affine, n, out)

    def torch(self, p: LayerNormParams, inputs: list[TensorType], out: TensorType) -> TorchCode:
        shape = list(self.normalized_shape(p, inputs[0]))
        code = _norm_module("nn.LayerNorm", [str(shape)], p, affine_keyword="elementwise_affine")
        if p.channels_first:  # torchvision's LayerNorm2d: channels last, normalised, back
            return TorchCode(code.module, "{m}({0}.movedim(1, -1)).movedim(-1, 1)")
        return code

    def saved_for_backward(self, p: LayerNormParams, inputs: list[TensorType], out: TensorType) -> Saved:
        return Saved(inputs=(0,), extras=self.inference_scratch(p, inputs, out))

    def inference_scratch(self, p: LayerNormParams, inputs: list[TensorType], out: TensorType) -> tuple[Extra, ...]:
        # the kernel returns its statistics at inference too
        rows = inputs[0].numel // prod(self.normalized_shape(p, inputs[0]))
        return (Extra("mean and rstd", 2 * rows, STATS),)

    def parameter_sizes(self, p: LayerNormParams, inputs: list[TensorType], out: TensorType) -> tuple[int, ...]:
        return _affine_sizes(self.cost(p, inputs, out).params)

    def onnx(self, b: Any, p: LayerNormParams, inputs: list[str], in_types: list[TensorType], out: TensorType,
             weights: dict[str, Any]) -> str:
        x = in_types[0]
        dims = len(self.normalized_shape(p, x))
        if not p.channels_first:
            return b.layer_norm(inputs[0], x, dims, weights, p.eps, affine=p.affine)
        import numpy as np

        rank = x.rank + 1
        y = b.node("Transpose", [inputs[0]], perm=[0, *range(2, rank), 1])
        scale = b.initializer("weight", np.asarray(weights["weight"])) if p.affine else \
            b.constant("ones", np.ones(x.channels, np.dtype(x.dtype)))
        shift = [b.initializer("bias", np.asarray(weights["bias"]))] if p.affine else []
        y = b.node("LayerNormalization", [y, scale, *shift], axis=-1, epsilon=float(p.eps))
        return b.node("Transpose", [y], perm=[0, rank - 1, *range(1, rank - 1)])


class LRNParams(OpParams):
    size: Size = Field(5, description="Number of neighbouring channels summed over.")
    alpha: Float32 = Field(1e-4, description="Scale of the sum of squares.")
    beta: Float32 = Field(0.75, description="Exponent.")
    k: Float32 = Field(1.0, description="Additive constant (AlexNet used 2).")


@register
class LocalResponseNorm(Op):
    name = "lrn"
    family = "norm"
    Params = LRNParams
    summary = "Local response normalisation across channels (AlexNet, GoogLeNet paper)."
    example = "lrn: {size: 5, alpha: 0.0001, beta: 0.75, k: 2}"

    def infer(self, p: LRNParams, inputs: list[TensorType]) -> TensorType:
        expect_rank(self.name, inputs[0], (2, 3, 4))
        return inputs[0]

    def cost(self, p: LRNParams, inputs: list[TensorType], out: TensorType) -> Cost:
        return Cost(elementwise=out.numel * (p.size + 3))

    def torch(self, p: LRNParams, inputs: list[TensorType], out: TensorType) -> TorchCode:
        return TorchCode(f"nn.LocalResponseNorm({p.size}, alpha={p.alpha!r}, beta={p.beta!r}, k={p.k!r})", "{m}({0})")

    def saved_for_backward(self, p: LRNParams, inputs: list[TensorType], out: TensorType) -> Saved:
        # PyTorch's formula x / (k + alpha * avgpool(pad(x * x))) ** beta: the pooling keeps the padded squares,
        # the power its base, the division its denominator (and x)
        x = inputs[0]
        padded = (x.channels + p.size - 1) * prod(x.spatial)
        return Saved(inputs=(0,), extras=(Extra("padded squares", padded), Extra("power base", x.numel),
                                          Extra("denominator", x.numel)))

    def inference_scratch(self, p: LRNParams, inputs: list[TensorType], out: TensorType) -> tuple[Extra, ...]:
        # at most three input-sized temporaries alive at once (the pooled mean, its scaled copy, the power), one
        # of which the division's output replaces
        return (Extra("temporaries", 2 * inputs[0].numel),)

    def onnx(self, b: Any, p: LRNParams, inputs: list[str], in_types: list[TensorType], out: TensorType,
             weights: dict[str, Any]) -> str:
        x, t = inputs[0], in_types[0]
        if p.size % 2 and t.rank == 3:
            return b.node("LRN", [x], size=p.size, alpha=float(p.alpha), beta=float(p.beta), bias=float(p.k))
        # ONNX's LRN centres an even window one channel later than PyTorch, and onnxruntime runs only 4-D LRN:
        # PyTorch's own formula, x / (k + alpha * mean of squares over the window) ** beta, as [N, 1, C, rest]
        square = b.node("Reshape", [b.node("Mul", [x, x]), b.const_int64([0, 1, t.channels, -1])])
        padded = b.node("Pad", [square, b.const_int64([0, 0, p.size // 2, 0, 0, 0, (p.size - 1) // 2, 0])])
        mean = b.node("AveragePool", [padded], kernel_shape=[p.size, 1], strides=[1, 1])
        mean = b.node("Reshape", [mean, b.node("Shape", [x])])
        scaled = b.node("Add", [b.node("Mul", [mean, b.const_scalar(p.alpha, t.dtype)]), b.const_scalar(p.k, t.dtype)])
        return b.node("Div", [x, b.node("Pow", [scaled, b.const_scalar(p.beta, t.dtype)])])


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
        return _affine_cost(p.affine, out.channels, out)

    def torch(self, p: InstanceNormParams, inputs: list[TensorType], out: TensorType) -> TorchCode:
        return _norm_module(f"nn.InstanceNorm{out.rank - 1}d", [str(out.channels)], p, affine_default=False)

    def saved_for_backward(self, p: InstanceNormParams, inputs: list[TensorType], out: TensorType) -> Saved:
        # batch norm over [1, N * C, ...]: statistics per sample and channel, the affine weight repeated per sample
        extras = [Extra("mean and invstd", 2 * out.channels, STATS)]
        if p.affine:
            extras.append(Extra("repeated weight", out.channels))
        return Saved(inputs=(0,), extras=tuple(extras))

    def inference_scratch(self, p: InstanceNormParams, inputs: list[TensorType], out: TensorType) -> tuple[Extra, ...]:
        # statistics per sample and channel, and the affine weight and bias repeated per sample
        return (Extra("mean and invstd", 2 * out.channels, STATS), *((Extra("repeated weight and bias",
                                                                            2 * out.channels),) if p.affine else ()))

    def parameter_sizes(self, p: InstanceNormParams, inputs: list[TensorType], out: TensorType) -> tuple[int, ...]:
        return _affine_sizes(self.cost(p, inputs, out).params)

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
        return _affine_cost(p.affine, out.channels, out)

    def torch(self, p: GroupNormParams, inputs: list[TensorType], out: TensorType) -> TorchCode:
        return _norm_module("nn.GroupNorm", [str(p.groups), str(out.channels)], p)

    def saved_for_backward(self, p: GroupNormParams, inputs: list[TensorType], out: TensorType) -> Saved:
        return Saved(inputs=(0,), extras=self.inference_scratch(p, inputs, out))

    def inference_scratch(self, p: GroupNormParams, inputs: list[TensorType], out: TensorType) -> tuple[Extra, ...]:
        return (Extra("mean and rstd", 2 * p.groups, STATS),)  # the kernel returns them at inference too

    def parameter_sizes(self, p: GroupNormParams, inputs: list[TensorType], out: TensorType) -> tuple[int, ...]:
        return _affine_sizes(self.cost(p, inputs, out).params)

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

    def inference_scratch(self, p: ScaleParams, inputs: list[TensorType], out: TensorType) -> tuple[Extra, ...]:
        return (Extra("product", out.numel),) if p.bias else ()  # x * weight, then + bias

    def parameter_sizes(self, p: ScaleParams, inputs: list[TensorType], out: TensorType) -> tuple[int, ...]:
        return weight_and_bias(self.cost(p, inputs, out).params, out.channels if p.bias else 0)  # keeps x

    def onnx(self, b: Any, p: ScaleParams, inputs: list[str], in_types: list[TensorType], out: TensorType,
             weights: dict[str, Any]) -> str:
        return affine_onnx(b, inputs[0], in_types[0], weights, p.bias)
