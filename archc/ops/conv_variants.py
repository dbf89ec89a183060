"""Convolution variants built on the plain convolution's geometry: LeNet-5's partially connected convolution
(`conv_table`) and the gated convolution of gated linear units (`gated_conv`).
"""

from __future__ import annotations

from math import prod
from typing import Annotated, Any

from pydantic import Field

from archc.errors import Problem
from archc.ir.types import TensorType
from archc.ops.base import Cost, Op, OpParams, TorchCode, Window, expect_rank
from archc.ops.conv import Conv, ConvGeometry, ConvParams, same_upper_pad
from archc.ops.fields import MAX_DIM, Padding, SizeOrList
from archc.ops.registry import register

_CONV = Conv()
DENSE_MASK_LIMIT = 4096
"""Masks up to this many entries are written out as a 0/1 matrix in the generated source; larger ones by index."""


def padded_input(g: ConvGeometry, p: Any) -> str:
    """The forward expression of a convolution's input: `{0}`, or `F.pad({0}, ...)` for `same_upper`."""
    return same_upper_pad(p, g) or "{0}"


def conv_module(p: ConvParams, inputs: list[TensorType], out: TensorType) -> str:
    """The plain convolution's module constructor (its padding is moved into the call when asymmetric)."""
    module = _CONV.torch(p, inputs, out).module
    assert module is not None
    return module


def conv_onnx(b: Any, p: Any, g: ConvGeometry, x: str, weight: str, bias: str | None) -> str:
    attrs: dict[str, Any] = {"kernel_shape": list(g.k), "strides": list(g.s), "dilations": list(g.d),
                             "group": g.groups}
    if p.p == "same_upper":
        attrs["auto_pad"] = "SAME_UPPER"  # follows the input size, like the PyTorch emission
    else:
        attrs["pads"] = [bp for bp, _ in g.pads] + [ap for _, ap in g.pads]
    return b.node("Conv", [x, weight, *([bias] if bias else [])], **attrs)


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
        module = (f"{conv_module(cp, inputs, out)}.apply("
                  f'lambda c: c.register_buffer("mask", {mask}, persistent=False))')
        bias = "{m}.bias" if p.bias else "None"
        call = (f"F.conv{n}d({padded_input(g, cp)}, {{m}}.weight * {{m}}.mask, {bias}, {{m}}.stride, "
                "{m}.padding, {m}.dilation)")
        return TorchCode(module, call)

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
        ctor = conv_module(p, inputs, out)
        x = padded_input(ConvGeometry(p, inputs[0]), p)
        return TorchCode(f'nn.ModuleDict([("conv", {ctor}), ("gate", {ctor})])',
                         f"{{m}}.conv({x}) * torch.sigmoid({{m}}.gate({x}))")

    def onnx(self, b: Any, p: GatedConvParams, inputs: list[str], in_types: list[TensorType], out: TensorType,
             weights: dict[str, Any]) -> str:
        g = ConvGeometry(p, in_types[0])
        halves = []
        for part in ("conv", "gate"):
            w = b.initializer(f"{part}.weight", weights[f"{part}.weight"])
            bias = b.initializer(f"{part}.bias", weights[f"{part}.bias"]) if p.bias else None
            halves.append(conv_onnx(b, p, g, inputs[0], w, bias))
        return b.node("Mul", [halves[0], b.node("Sigmoid", [halves[1]])])
