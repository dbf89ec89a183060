"""Deformable convolution v1 (Dai et al. 2017): a 2-D convolution whose sampling positions are shifted by offsets
that another layer predicts.

The PyTorch emission needs no torchvision: each kernel tap's shifted positions are sampled bilinearly with
``F.grid_sample`` (zero outside the input, as torchvision and ONNX's DeformConv do) and the samples are contracted
with the weight. The weights live in an ``nn.Conv2d`` so the state_dict matches ``torchvision.ops.DeformConv2d``
(``weight`` [out, in / groups, kh, kw], ``bias``); that module's own forward is not used. ONNX: ``DeformConv``
(opset 19).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from archc.errors import Problem
from archc.ir.types import TensorType
from archc.ops.base import (
    Cost,
    Op,
    OpParams,
    TorchCode,
    Window,
    check_groups,
    conv_ctor,
    expect_rank,
    per_dim,
    weight_and_bias,
    window_out,
)
from archc.ops.fields import Channels, NonNegOrList, SizeOrList
from archc.ops.registry import register
from archc.ops.saved import Extra, Saved

DEFORM_CONV_OPSET = 19


class DeformConvParams(OpParams):
    out: Channels = Field(description="Output channels.")
    k: SizeOrList = Field(description="Kernel size.")
    s: SizeOrList = Field(1, description="Stride.")
    p: NonNegOrList = Field(0, description="Zero padding on both sides.")
    d: SizeOrList = Field(1, description="Dilation.")
    groups: int = Field(1, ge=1, le=1_000_000, description="Channel groups; input and output channels must divide.")
    offset_groups: int = Field(1, ge=1, le=1_000_000,
                               description="Channel groups sharing one set of offsets; must divide the input channels.")
    bias: bool = Field(True, description="Learn an additive bias per output channel.")


class DeformGeometry:
    def __init__(self, p: DeformConvParams, x: TensorType) -> None:
        self.cin, self.cout = x.channels, p.out
        self.k = per_dim(p.k, 2, "k")
        self.s = per_dim(p.s, 2, "s")
        self.p = per_dim(p.p, 2, "p")
        self.d = per_dim(p.d, 2, "d")
        self.taps = self.k[0] * self.k[1]


@register
class DeformConv(Op):
    name = "deform_conv"
    family = "conv"
    Params = DeformConvParams
    summary = ("Deformable convolution v1 on [C, H, W]: `from: [x, offsets]`, where `offsets` (usually a conv "
               "layer) gives [2 * offset_groups * kh * kw, H_out, W_out] (dy, dx) shifts of every kernel tap.")
    example = "deform_conv: {from: [x, offset], out: 64, k: 3, p: 1}"
    min_inputs = 2
    max_inputs = 2
    label_fields = ("k", "s", "p", "groups", "offset_groups")

    def infer(self, p: DeformConvParams, inputs: list[TensorType]) -> TensorType:
        x, offset = inputs
        expect_rank(self.name, x, (3,))
        g = DeformGeometry(p, x)
        check_groups(p.groups, g.cin, g.cout)
        if g.cin % p.offset_groups:
            raise Problem("E303", f"offset_groups={p.offset_groups} expects input channels divisible by "
                                  f"{p.offset_groups}; found {g.cin}")
        spatial = tuple(window_out(n, k, s, pad, pad, d)
                        for n, k, s, pad, d in zip(x.spatial, g.k, g.s, g.p, g.d, strict=True))
        want = (2 * p.offset_groups * g.taps, *spatial)
        if offset.shape != want:
            raise Problem("E306", f"deform_conv expects offsets [2 * offset_groups * kh * kw, H_out, W_out] = "
                                  f"{list(want)}; found {offset}")
        return x.with_shape((g.cout, *spatial))

    def cost(self, p: DeformConvParams, inputs: list[TensorType], out: TensorType) -> Cost:
        g = DeformGeometry(p, inputs[0])
        fan_in = g.cin // p.groups * g.taps
        bias = g.cout if p.bias else 0
        positions = out.spatial[0] * out.spatial[1]
        # every input channel is sampled bilinearly (4 weighted taps) at each kernel tap of each output position
        return Cost(params=g.cout * fan_in + bias, macs=out.numel * fan_in,
                    elementwise=4 * g.cin * g.taps * positions, connections=out.numel * (fan_in + (1 if p.bias else 0)))

    def window(self, p: DeformConvParams, inputs: list[TensorType], out: TensorType) -> Window:
        # the nominal field (zero offsets); learned offsets can reach further
        g = DeformGeometry(p, inputs[0])
        return Window(tuple(d * (k - 1) + 1 for k, d in zip(g.k, g.d, strict=True)), g.s, g.p)

    def torch(self, p: DeformConvParams, inputs: list[TensorType], out: TensorType) -> TorchCode:
        g = DeformGeometry(p, inputs[0])
        options = (("stride", g.s, 1), ("padding", g.p, 0), ("dilation", g.d, 1))
        ctor = conv_ctor("nn.Conv2d", g.cin, g.cout, g.k, options, p.groups, p.bias)
        bias = " + {m}.bias.view(-1, 1, 1)" if p.bias else ""
        return TorchCode(ctor, f"{{y}}.reshape(-1, {g.cout}, {{1}}.shape[2], {{1}}.shape[3]){bias}",
                         steps=self.torch_steps(p, g))

    def saved_for_backward(self, p: DeformConvParams, inputs: list[TensorType], out: TensorType) -> Saved:
        g = DeformGeometry(p, inputs[0])
        positions = out.spatial[0] * out.spatial[1]
        # grid_sample keeps the input and its sampling grid; the product with the weight keeps the sampled columns
        grid = Extra("sampling grid", p.offset_groups * g.taps * positions * 2)
        return Saved(inputs=(0,), extras=(grid, Extra("sampled columns", g.cin * g.taps * positions)))

    def parameter_sizes(self, p: DeformConvParams, inputs: list[TensorType], out: TensorType) -> tuple[int, ...]:
        return weight_and_bias(self.cost(p, inputs, out).params, out.channels if p.bias else 0)

    def torch_steps(self, p: DeformConvParams, g: DeformGeometry) -> tuple[tuple[str, str], ...]:
        """Bilinear sampling at the offset taps, then one einsum with the weight: x is {0} [N, C, H, W], the offsets
        {1} [N, 2 * og * kh * kw, Ho, Wo]; leaves ``y`` [N, groups, out / groups, Ho * Wo]."""
        og, (kh, kw), (sh, sw), (ph, pw), (dh, dw) = p.offset_groups, g.k, g.s, g.p, g.d
        steps = [("taps", "{1}.unflatten(1, (" + f"{og}, {kh}, {kw}, 2))")]
        for i, axis, n_kernel, dil, stride, pad in ((0, "y", kh, dh, sh, ph), (1, "x", kw, dw, sw, pw)):
            # sampling position of tap k at output o: o * stride - pad + k * dilation + offset, normalised for
            # grid_sample's align_corners=False: (2 * pos + 1) / size - 1
            kernel_view = [1, 1, 1, 1, 1, 1]
            kernel_view[2 + i] = n_kernel
            out_view = [1, 1, 1, 1, 1, 1]
            out_view[4 + i] = -1
            kernel = _scaled(f"torch.arange({n_kernel}, device={{0}}.device)", dil, 0)
            grid = _scaled(f"torch.arange({{1}}.shape[{2 + i}], device={{0}}.device)", stride, pad)
            steps += [(f"tap_{axis}", f"{kernel}.view{tuple(kernel_view)}"),
                      (f"out_{axis}", f"{grid}.view{tuple(out_view)}"),
                      (f"grid_{axis}", f"(2 * ({{taps}}[:, :, :, :, {i}] + {{tap_{axis}}} + {{out_{axis}}}) + 1) "
                                       f"/ {{0}}.shape[{2 + i}] - 1")]
        groups = p.groups
        steps += [
            ("grid", f"torch.stack([{{grid_x}}, {{grid_y}}], -1).reshape(-1, {g.taps} * {{1}}.shape[2], "
                     "{1}.shape[3], 2)"),
            ("planes", f"{{0}}.reshape(-1, {g.cin // og}, {{0}}.shape[2], {{0}}.shape[3])"),
            ("sampled", "F.grid_sample({planes}, {grid}, align_corners=False)"),
            ("cols", f"{{sampled}}.reshape(-1, {groups}, {g.cin // groups}, {g.taps}, "
                     "{1}.shape[2] * {1}.shape[3])"),
            ("weight", f"{{m}}.weight.reshape({groups}, {g.cout // groups}, {g.cin // groups}, {g.taps})"),
            ("y", 'torch.einsum("ngckp,gock->ngop", {cols}, {weight})'),
        ]
        return tuple(steps)

    def onnx(self, b: Any, p: DeformConvParams, inputs: list[str], in_types: list[TensorType], out: TensorType,
             weights: dict[str, Any]) -> str:
        if b.opset < DEFORM_CONV_OPSET:
            raise b.refuse(f"deform_conv exports as DeformConv, which needs opset {DEFORM_CONV_OPSET} or later "
                           f"(this export uses {b.opset})")
        g = DeformGeometry(p, in_types[0])
        args = [inputs[0], b.initializer("weight", weights["weight"]), inputs[1]]
        if p.bias:
            args.append(b.initializer("bias", weights["bias"]))
        return b.node("DeformConv", args, kernel_shape=list(g.k), strides=list(g.s), pads=list(g.p) * 2,
                      dilations=list(g.d), group=p.groups, offset_group=p.offset_groups)


def _scaled(expr: str, mul: int, sub: int) -> str:
    """`(expr * mul - sub)` without the no-op parts."""
    text = expr + (f" * {mul}" if mul != 1 else "") + (f" - {sub}" if sub else "")
    return f"({text})" if text != expr else expr
