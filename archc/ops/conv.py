"""Convolution (1-D, 2-D, 3-D by input rank): groups, depthwise, dilation, non-square kernels, padding modes; and the
variants built on its geometry: LeNet-5's partially connected convolution (`conv_table`) and the gated convolution of
gated linear units (`gated_conv`).
"""

from __future__ import annotations

from math import prod
from typing import Annotated, Any

from pydantic import Field, model_validator

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
from archc.ops.fields import MAX_DIM, Channels, Padding, SizeOrList
from archc.ops.registry import register
from archc.ops.saved import Extra, Saved, saves_input

DENSE_MASK_LIMIT = 4096
"""Masks up to this many entries are written out as a 0/1 matrix in the generated source; larger ones by index."""


class ConvParams(OpParams):
    out: Channels | None = Field(None, description="Output channels. Defaults to the input channels when `depthwise`.")
    k: SizeOrList = Field(description="Kernel size: `3`, or `[1, 7]` for a 1x7 kernel.")
    s: SizeOrList = Field(1, description="Stride.")
    p: Padding = Field(0, description="Padding: int, per-dimension list, `same` (stride 1 only), `same_upper` "
                                      "(TensorFlow SAME for any stride: extra pixel bottom/right) or `valid`.")
    d: SizeOrList = Field(1, description="Dilation.")
    groups: int = Field(1, ge=1, le=1_000_000, description="Channel groups; input and output channels must divide.")
    depthwise: bool = Field(False, description="One filter group per input channel (groups = input channels).")
    bias: bool = Field(True, description="Learn an additive bias per output channel.")

    @model_validator(mode="after")
    def _out_given(self) -> ConvParams:
        if self.out is None and not self.depthwise:
            raise ValueError("`out` is required unless `depthwise: true`")
        if self.depthwise and self.groups != 1:
            raise ValueError("give either `depthwise: true` or `groups`, not both")
        return self


class ConvGeometry:
    """A convolution's resolved per-dimension numbers."""

    def __init__(self, p: ConvParams, x: TensorType) -> None:
        n = x.rank - 1
        self.n = n
        self.cin = x.channels
        self.groups = self.cin if p.depthwise else p.groups
        self.cout = p.out if p.out is not None else self.cin
        self.k = per_dim(p.k, n, "k")
        self.s = per_dim(p.s, n, "s")
        self.d = per_dim(p.d, n, "d")
        self.pads = resolve_padding(p.p, self.k, self.s, self.d, x.spatial)
        self.sizes = x.spatial


def resolve_padding(p: Any, k: tuple[int, ...], s: tuple[int, ...], d: tuple[int, ...],
                    sizes: tuple[int, ...] = ()) -> list[tuple[int, int]]:
    """(before, after) padding per spatial dimension; `same_upper` needs the input ``sizes``."""
    n = len(k)
    if p == "valid":
        return [(0, 0)] * n
    if p == "same_upper":
        # TensorFlow SAME / ONNX SAME_UPPER: output ceil(size / stride), the odd pixel padded after
        totals = [max((-(-size // si) - 1) * si + di * (ki - 1) + 1 - size, 0)
                  for size, ki, si, di in zip(sizes, k, s, d, strict=True)]
        return [(t // 2, t - t // 2) for t in totals]
    if p == "same":
        if any(v != 1 for v in s):
            raise Problem("E306", f"padding `same` expects stride 1; found stride {list(s)} (for a strided "
                                  "convolution give `same_upper` or explicit padding)")
        totals = [di * (ki - 1) for ki, di in zip(k, d)]
        return [(t // 2, t - t // 2) for t in totals]
    return [(v, v) for v in per_dim(p, n, "p")]


def same_upper_pad(p: Any, g: ConvGeometry) -> str | None:
    """`F.pad({0}, ...)` for `same_upper` where nn.ConvNd's symmetric padding cannot do it, else None.

    With a stride above 1 the padding depends on the input size (total max(eff - (n % s or s), 0), the odd pixel
    after), so it is computed from the runtime shape, as ONNX's SAME_UPPER does; F.pad lists the last axis first.
    """
    if p.p != "same_upper" or (all(b == a for b, a in g.pads) and all(s == 1 for s in g.s)):
        return None
    flat: list[str] = []
    for i in reversed(range(g.n)):
        eff, s = g.d[i] * (g.k[i] - 1) + 1, g.s[i]
        if s == 1:
            flat += [str((eff - 1) // 2), str(eff - 1 - (eff - 1) // 2)]
        else:
            total = f"max({eff} - ({{0}}.shape[{2 + i}] % {s} or {s}), 0)"
            flat += [f"{total} // 2", f"({total} + 1) // 2"]
    return f"F.pad({{0}}, ({', '.join(flat)}))"


@register
class Conv(Op):
    name = "conv"
    norm_fold_axis = 0
    output_overwritable = True
    family = "conv"
    Params = ConvParams
    summary = "Convolution over 1-D, 2-D or 3-D inputs (by input rank), with groups, depthwise and dilation."
    example = "conv: {out: 64, k: 7, s: 2, p: 3, bias: false}"
    label_fields = ("k", "s", "p", "groups")

    def infer(self, p: ConvParams, inputs: list[TensorType]) -> TensorType:
        x = inputs[0]
        expect_rank("conv", x, (2, 3, 4))
        g = ConvGeometry(p, x)
        check_groups(g.groups, g.cin, g.cout)
        spatial = tuple(
            window_out(size, k, s, pb, pa, d)
            for size, k, s, (pb, pa), d in zip(x.spatial, g.k, g.s, g.pads, g.d)
        )
        return x.with_shape((g.cout, *spatial))

    def cost(self, p: ConvParams, inputs: list[TensorType], out: TensorType) -> Cost:
        g = ConvGeometry(p, inputs[0])
        fan_in = g.cin // g.groups * prod(g.k)
        weights = g.cout * fan_in
        bias = g.cout if p.bias else 0
        return Cost(params=weights + bias, macs=out.numel * fan_in,
                    connections=out.numel * (fan_in + (1 if p.bias else 0)))

    def window(self, p: ConvParams, inputs: list[TensorType], out: TensorType) -> Window:
        g = ConvGeometry(p, inputs[0])
        return Window(tuple(d * (k - 1) + 1 for k, d in zip(g.k, g.d)), g.s, tuple(b for b, _ in g.pads))

    def label(self, p: ConvParams, out: TensorType | None) -> str:
        k = _kernel(p.k, out.rank - 1 if out is not None else 2)
        stride = _compact(p.s)
        parts = [f"{k}/{stride}" if stride != "1" else k]
        if p.depthwise:
            parts.append("depthwise")
        elif p.groups != 1:
            parts.append(f"groups {p.groups}")
        if _compact(p.d) != "1":
            parts.append(f"dilation {_compact(p.d)}")
        if out is not None:
            parts.append(str(out.channels))
        return ", ".join(parts)

    def torch(self, p: ConvParams, inputs: list[TensorType], out: TensorType) -> TorchCode:
        g = ConvGeometry(p, inputs[0])
        return TorchCode(conv_module(p, g), f"{{m}}({padded_input(p, g)})")

    def saved_for_backward(self, p: ConvParams, inputs: list[TensorType], out: TensorType) -> Saved:
        return saved_conv_input(p, ConvGeometry(p, inputs[0]))

    def inference_scratch(self, p: ConvParams, inputs: list[TensorType], out: TensorType) -> tuple[Extra, ...]:
        return padded_copy(p, ConvGeometry(p, inputs[0]))

    def parameter_sizes(self, p: ConvParams, inputs: list[TensorType], out: TensorType) -> tuple[int, ...]:
        return weight_and_bias(self.cost(p, inputs, out).params, out.channels if p.bias else 0)

    def onnx(self, b: Any, p: ConvParams, inputs: list[str], in_types: list[TensorType], out: TensorType,
             weights: dict[str, Any]) -> str:
        g = ConvGeometry(p, in_types[0])
        weight = b.initializer("weight", weights["weight"])
        bias = b.initializer("bias", weights["bias"]) if p.bias else None
        return conv_onnx(b, p, g, inputs[0], weight, bias)


def padded_input(p: Any, g: ConvGeometry) -> str:
    """The forward expression of a convolution's input: `{0}`, or `F.pad({0}, ...)` for `same_upper`."""
    return same_upper_pad(p, g) or "{0}"


def padded_copy(p: Any, g: ConvGeometry) -> tuple[Extra, ...]:
    """The padded copy of the input a convolution pads apart (`F.pad` for `same_upper`; PyTorch itself for an
    uneven `same`), or none."""
    uneven_same = p.p == "same" and any(before != after for before, after in g.pads)
    if same_upper_pad(p, g) is None and not uneven_same:
        return ()
    padded = g.cin * prod(size + before + after for size, (before, after) in zip(g.sizes, g.pads, strict=True))
    return (Extra("padded input", padded),)


def saved_conv_input(p: Any, g: ConvGeometry) -> Saved:
    """A convolution keeps the input it convolves (its weight is a parameter): the layer's input, or its padded
    copy."""
    copy = padded_copy(p, g)
    return Saved(extras=copy) if copy else saves_input()


def conv_module(p: Any, g: ConvGeometry) -> str:
    """``nn.ConvNd``'s constructor; padding that needs `F.pad` is left to the forward call."""
    pads: tuple[int, ...] | str = tuple(before for before, _ in g.pads)
    if same_upper_pad(p, g) is not None:
        pads = (0,) * g.n  # F.pad does it all
    elif p.p == "same" and any(before != after for before, after in g.pads):
        pads = '"same"'  # PyTorch pads the odd pixel after, which one number cannot say
    options = (("stride", g.s, 1), ("padding", pads, 0), ("dilation", g.d, 1))
    return conv_ctor(f"nn.Conv{g.n}d", g.cin, g.cout, g.k, options, g.groups, p.bias)


def conv_onnx(b: Any, p: Any, g: ConvGeometry, x: str, weight: str, bias: str | None) -> str:
    attrs: dict[str, Any] = {"kernel_shape": list(g.k), "strides": list(g.s)}
    if p.p == "same_upper":
        attrs["auto_pad"] = "SAME_UPPER"  # the padding follows the input size, which may be dynamic
    else:
        attrs["pads"] = [bp for bp, _ in g.pads] + [ap for _, ap in g.pads]
    return b.node("Conv", [x, weight, *([bias] if bias else [])], **attrs, dilations=list(g.d), group=g.groups)


def _kernel(value: int | list[int], n: int) -> str:
    """``7x7`` for a 2-D 7, ``1x7`` for [1, 7], ``5`` for a 1-D 5."""
    values = [value] * n if isinstance(value, int) else value
    return "x".join(str(v) for v in values)


def _compact(value: int | list[int]) -> str:
    """One number when every dimension agrees (``2`` for [2, 2]), else ``1x2``."""
    if isinstance(value, int):
        return str(value)
    return str(value[0]) if len(set(value)) == 1 else "x".join(str(v) for v in value)


_CONV = Conv()


# --- conv_table -------------------------------------------------------------------------------------------------------
class ConvTableParams(OpParams):
    connections: list[Annotated[list[Annotated[int, Field(ge=0, le=MAX_DIM)]], Field(min_length=1)]] = Field(
        min_length=1, max_length=MAX_DIM,
        description="For each output map, the input maps feeding it (0-based), e.g. LeNet-5's C3 table: "
                    "`[[0, 1, 2], [1, 2, 3], ...]`; the output has one channel per entry.")
    k: SizeOrList = Field(description="Kernel size.")
    s: SizeOrList = Field(1, description="Stride.")
    p: Padding = Field(0, description="Padding, as for `conv`.")
    d: SizeOrList = Field(1, description="Dilation.")
    bias: bool = Field(True, description="Learn an additive bias per output map.")

    def as_conv(self) -> ConvParams:
        return ConvParams(out=len(self.connections), k=self.k, s=self.s, p=self.p, d=self.d, bias=self.bias)


@register
class ConvTable(Op):
    name = "conv_table"
    family = "conv"
    Params = ConvTableParams
    summary = ("Partially connected convolution (LeNet-5's C3): each output map sees only the input maps its "
               "`connections` entry lists; only those weights count as parameters. Emitted as a dense convolution "
               "whose weight is multiplied by a fixed 0/1 mask (a non-persistent buffer, not in the state_dict).")
    example = "conv_table: {k: 5, connections: [[0, 1, 2], [1, 2, 3], [2, 3, 4], [3, 4, 5]]}"

    def infer(self, p: ConvTableParams, inputs: list[TensorType]) -> TensorType:
        x = inputs[0]
        expect_rank(self.name, x, (2, 3, 4))
        for j, row in enumerate(p.connections):
            bad = [i for i in row if i >= x.channels]
            if bad:
                raise Problem("E306", f"connections[{j}] names input map {bad[0]}, but the input has {x.channels} "
                                      f"maps (0..{x.channels - 1})")
            if len(set(row)) != len(row):
                raise Problem("E306", f"connections[{j}] lists an input map twice: {row}")
        return _CONV.infer(p.as_conv(), inputs)

    def connected(self, p: ConvTableParams) -> int:
        return sum(len(row) for row in p.connections)

    def cost(self, p: ConvTableParams, inputs: list[TensorType], out: TensorType) -> Cost:
        g = ConvGeometry(p.as_conv(), inputs[0])
        weights = self.connected(p) * prod(g.k)
        bias = g.cout if p.bias else 0
        positions = prod(out.spatial)
        # LeNet-5 C3 with the paper's table: 1,516 parameters and 151,600 connections
        return Cost(params=weights + bias, macs=positions * weights, connections=positions * (weights + bias))

    def window(self, p: ConvTableParams, inputs: list[TensorType], out: TensorType) -> Window:
        return _CONV.window(p.as_conv(), inputs, out)

    def label(self, p: ConvTableParams, out: TensorType | None) -> str:
        return f"{_CONV.label(p.as_conv(), out)}, {self.connected(p)} links"

    def mask_rows(self, p: ConvTableParams, cin: int) -> list[list[int]]:
        return [[1 if i in row else 0 for i in range(cin)] for row in p.connections]

    def torch(self, p: ConvTableParams, inputs: list[TensorType], out: TensorType) -> TorchCode:
        x = inputs[0]
        cp = p.as_conv()
        g = ConvGeometry(cp, x)
        cout, cin, n = g.cout, g.cin, g.n
        if cout * cin <= DENSE_MASK_LIMIT:
            rows = ", ".join("[" + ", ".join(f"{v}." for v in row) + "]" for row in self.mask_rows(p, cin))
            mask = f"torch.tensor([{rows}])"
        else:
            outs = [j for j, row in enumerate(p.connections) for _ in row]
            ins = [i for row in p.connections for i in row]
            mask = (f"torch.zeros({cout}, {cin}).index_put_((torch.tensor({outs}), torch.tensor({ins})), "
                    "torch.tensor(1.))")
        mask += f".view({cout}, {cin}{', 1' * n})"
        module = (f"{conv_module(cp, g)}.apply("
                  f'lambda c: c.register_buffer("mask", {mask}, persistent=False))')
        bias = "{m}.bias" if p.bias else "None"
        steps, x = _padded_step(padded_input(cp, g))
        steps += (("weight", "{m}.weight * {m}.mask"),)
        return TorchCode(module, f"F.conv{n}d({x}, {{weight}}, {bias}, {{m}}.stride, {{m}}.padding, {{m}}.dilation)",
                         steps=steps)

    def saved_for_backward(self, p: ConvTableParams, inputs: list[TensorType], out: TensorType) -> Saved:
        g = ConvGeometry(p.as_conv(), inputs[0])
        conv = saved_conv_input(p.as_conv(), g)
        # the masked weight is a new tensor the convolution keeps, one per model whatever the batch
        masked = Extra("masked weight", g.cout * g.cin * prod(g.k), per_sample=False)
        return Saved(conv.inputs, extras=(*conv.extras, masked))

    def inference_scratch(self, p: ConvTableParams, inputs: list[TensorType], out: TensorType) -> tuple[Extra, ...]:
        saved = self.saved_for_backward(p, inputs, out)
        return saved.extras  # the padded input (if any) and the masked weight, dropped after the layer

    def parameter_sizes(self, p: ConvTableParams, inputs: list[TensorType], out: TensorType) -> tuple[int, ...]:
        g = ConvGeometry(p.as_conv(), inputs[0])
        dense = g.cout * g.cin * prod(g.k)  # the whole weight, masked entries included
        return (dense, g.cout) if p.bias else (dense,)

    def onnx(self, b: Any, p: ConvTableParams, inputs: list[str], in_types: list[TensorType], out: TensorType,
             weights: dict[str, Any]) -> str:
        import numpy as np

        g = ConvGeometry(p.as_conv(), in_types[0])
        mask = np.asarray(self.mask_rows(p, g.cin), dtype=weights["weight"].dtype).reshape(
            g.cout, g.cin, *(1,) * g.n)
        weight = b.initializer("weight", weights["weight"] * mask)  # the mask baked into the weight
        bias = b.initializer("bias", weights["bias"]) if p.bias else None
        return conv_onnx(b, p, g, inputs[0], weight, bias)


# --- gated_conv -------------------------------------------------------------------------------------------------------
class GatedConvParams(ConvParams):
    """The parameters of both convolutions (`conv` and `gate` share every setting)."""


@register
class GatedConv(Op):
    name = "gated_conv"
    family = "conv"
    Params = GatedConvParams
    summary = ("Gated convolution (gated linear unit, Dauphin et al. 2017): conv(x) * sigmoid(gate(x)), two "
               "convolutions with the same settings held as sub-modules `conv` and `gate`.")
    example = "gated_conv: {out: 64, k: 3, p: 1}"
    label_fields = ("k", "s", "p", "groups")

    def infer(self, p: GatedConvParams, inputs: list[TensorType]) -> TensorType:
        return _CONV.infer(p, inputs)

    def cost(self, p: GatedConvParams, inputs: list[TensorType], out: TensorType) -> Cost:
        one = _CONV.cost(p, inputs, out)
        return Cost(params=2 * one.params, macs=2 * one.macs, elementwise=2 * out.numel,
                    connections=2 * one.connections)

    def window(self, p: GatedConvParams, inputs: list[TensorType], out: TensorType) -> Window:
        return _CONV.window(p, inputs, out)

    def label(self, p: GatedConvParams, out: TensorType | None) -> str:
        return f"{_CONV.label(p, out)}, gated"

    def torch(self, p: GatedConvParams, inputs: list[TensorType], out: TensorType) -> TorchCode:
        g = ConvGeometry(p, inputs[0])
        ctor = conv_module(p, g)
        steps, x = _padded_step(padded_input(p, g))  # padded once, read by both convolutions
        return TorchCode(f'nn.ModuleDict([("conv", {ctor}), ("gate", {ctor})])',
                         f"{{m}}.conv({x}) * torch.sigmoid({{m}}.gate({x}))", steps=steps)

    def saved_for_backward(self, p: GatedConvParams, inputs: list[TensorType], out: TensorType) -> Saved:
        conv = saved_conv_input(p, ConvGeometry(p, inputs[0]))  # read by both convolutions, kept once
        # the product keeps both factors; the sigmoid's result is one of them
        halves = (Extra("convolution output", out.numel), Extra("gate (sigmoid output)", out.numel))
        return Saved(conv.inputs, extras=(*conv.extras, *halves))

    def inference_scratch(self, p: GatedConvParams, inputs: list[TensorType], out: TensorType) -> tuple[Extra, ...]:
        # both convolutions' outputs and the sigmoid's, two alive at once beside the product
        return (*padded_copy(p, ConvGeometry(p, inputs[0])), Extra("convolution outputs", 2 * out.numel))

    def parameter_sizes(self, p: GatedConvParams, inputs: list[TensorType], out: TensorType) -> tuple[int, ...]:
        return 2 * _CONV.parameter_sizes(p, inputs, out)  # `conv` and `gate`

    def onnx(self, b: Any, p: GatedConvParams, inputs: list[str], in_types: list[TensorType], out: TensorType,
             weights: dict[str, Any]) -> str:
        g = ConvGeometry(p, in_types[0])
        halves = []
        for part in ("conv", "gate"):
            w = b.initializer(f"{part}.weight", weights[f"{part}.weight"])
            bias = b.initializer(f"{part}.bias", weights[f"{part}.bias"]) if p.bias else None
            halves.append(conv_onnx(b, p, g, inputs[0], w, bias))
        return b.node("Mul", [halves[0], b.node("Sigmoid", [halves[1]])])


def _padded_step(padded: str) -> tuple[tuple[tuple[str, str], ...], str]:
    """A composite's padded input as a temporary ``padded`` (none when the input is read as is), and how the call
    reads it."""
    return ((), padded) if padded == "{0}" else ((("padded", padded),), "{padded}")
