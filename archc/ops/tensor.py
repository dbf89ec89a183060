"""Tensor plumbing: flatten, zero padding, the zero-padding residual shortcut, dropout."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from archc.errors import Problem
from archc.ir.types import TensorType
from archc.ops.base import Cost, NoParams, Op, OpParams, TorchCode, Window, expect_rank, per_dim
from archc.ops.fields import Channels, NonNeg, Probability, SizeOrList
from archc.ops.registry import register


@register
class Flatten(Op):
    name = "flatten"
    family = "tensor"
    Params = NoParams
    summary = "Flatten all non-batch axes into one: [C, H, W] -> [C*H*W]."
    example = "flatten"

    def infer(self, p: NoParams, inputs: list[TensorType]) -> TensorType:
        return inputs[0].with_shape((inputs[0].numel,))

    def cost(self, p: NoParams, inputs: list[TensorType], out: TensorType) -> Cost:
        return Cost()

    def window(self, p: NoParams, inputs: list[TensorType], out: TensorType) -> Window | None:
        # what follows (a linear layer) sees every position: a window as large as the input
        spatial = inputs[0].spatial
        return Window(spatial, spatial, (0,) * len(spatial)) if spatial else None

    def torch(self, p: NoParams, inputs: list[TensorType], out: TensorType) -> TorchCode:
        return TorchCode(None, "torch.flatten({0}, 1)")

    def onnx(self, b: Any, p: NoParams, inputs: list[str], in_types: list[TensorType], out: TensorType,
             weights: dict[str, Any]) -> str:
        return b.node("Flatten", [inputs[0]], axis=1)


class ZeroPadParams(OpParams):
    p: NonNeg | list[NonNeg] = Field(description="Padding: an int for every side, one int per spatial dimension "
                                                 "(both sides), or [before, after] for each dimension in turn.")


@register
class ZeroPad(Op):
    name = "zeropad"
    family = "tensor"
    Params = ZeroPadParams
    summary = "Pad the spatial axes with zeros."
    example = "zeropad: {p: [0, 1, 0, 1]}"

    def pads(self, p: ZeroPadParams, x: TensorType) -> list[tuple[int, int]]:
        n = x.rank - 1
        if isinstance(p.p, list) and len(p.p) == 2 * n:
            return [(p.p[2 * i], p.p[2 * i + 1]) for i in range(n)]
        return [(v, v) for v in per_dim(p.p, n, "p")]

    def infer(self, p: ZeroPadParams, inputs: list[TensorType]) -> TensorType:
        x = inputs[0]
        expect_rank(self.name, x, (2, 3, 4))
        spatial = tuple(s + b + a for s, (b, a) in zip(x.spatial, self.pads(p, x)))
        return x.with_shape((x.channels, *spatial))

    def cost(self, p: ZeroPadParams, inputs: list[TensorType], out: TensorType) -> Cost:
        return Cost()

    def window(self, p: ZeroPadParams, inputs: list[TensorType], out: TensorType) -> Window:
        pads = self.pads(p, inputs[0])
        return Window((1,) * len(pads), (1,) * len(pads), tuple(b for b, _ in pads))

    def torch(self, p: ZeroPadParams, inputs: list[TensorType], out: TensorType) -> TorchCode:
        flat = [v for b, a in reversed(self.pads(p, inputs[0])) for v in (b, a)]  # F.pad wants last axis first
        return TorchCode(None, f"F.pad({{0}}, {tuple(flat)})")

    def onnx(self, b: Any, p: ZeroPadParams, inputs: list[str], in_types: list[TensorType], out: TensorType,
             weights: dict[str, Any]) -> str:
        pads = self.pads(p, in_types[0])
        # the spatial axes named by `axes` (Pad-18): the same tensor, and onnxruntime's pad fusion, which wrongly folds
        # a zero Pad into a following MaxPool (whose padding is -inf), leaves this form alone
        onnx_pads = [*(b_ for b_, _ in pads), *(a for _, a in pads)]
        axes = list(range(2, 2 + len(pads)))
        return b.node("Pad", [inputs[0], b.const_int64(onnx_pads), "", b.const_int64(axes)])


class PadChannelsParams(OpParams):
    out: Channels = Field(description="Output channels; the extra channels are zeros.")
    s: SizeOrList = Field(1, description="Spatial subsampling stride (takes every s-th position).")


@register
class PadChannels(Op):
    name = "pad_channels"
    family = "tensor"
    Params = PadChannelsParams
    summary = ("Subsample by a stride and pad channels with zeros: the parameter-free residual shortcut "
               "(ResNet option A), written by `shortcut: zero_pad`.")
    example = "pad_channels: {out: 32, s: 2}"

    def infer(self, p: PadChannelsParams, inputs: list[TensorType]) -> TensorType:
        x = inputs[0]
        expect_rank(self.name, x, (2, 3, 4))
        if p.out < x.channels:
            raise Problem("E306", f"pad_channels to {p.out} channels, but the input already has {x.channels}")
        s = per_dim(p.s, x.rank - 1, "s")
        return x.with_shape((p.out, *(-(-n // si) for n, si in zip(x.spatial, s))))

    def cost(self, p: PadChannelsParams, inputs: list[TensorType], out: TensorType) -> Cost:
        return Cost()

    def window(self, p: PadChannelsParams, inputs: list[TensorType], out: TensorType) -> Window:
        s = per_dim(p.s, inputs[0].rank - 1, "s")
        return Window((1,) * len(s), s, (0,) * len(s))

    def torch(self, p: PadChannelsParams, inputs: list[TensorType], out: TensorType) -> TorchCode:
        x = inputs[0]
        s = per_dim(p.s, x.rank - 1, "s")
        sub = "{0}" if all(v == 1 for v in s) else "{0}[:, :, " + ", ".join(f"::{v}" for v in s) + "]"
        extra = p.out - x.channels
        pads = "0, 0, " * (x.rank - 1)
        before = extra // 2
        return TorchCode(None, f"F.pad({sub}, ({pads}{before}, {extra - before}))")

    def onnx(self, b: Any, p: PadChannelsParams, inputs: list[str], in_types: list[TensorType], out: TensorType,
             weights: dict[str, Any]) -> str:
        x, t = inputs[0], in_types[0]
        n = t.rank - 1
        s = per_dim(p.s, n, "s")
        if any(v != 1 for v in s):
            # every s-th position from the first; the end is "to the end" so that dynamic sizes work too
            x = b.node("Slice", [x, b.const_int64([0] * n), b.const_int64([2**63 - 1] * n),
                                 b.const_int64(list(range(2, n + 2))), b.const_int64(list(s))])
        extra = p.out - t.channels
        before = extra // 2
        return b.node("Pad", [x, b.const_int64([0, before, *(0,) * n, 0, extra - before, *(0,) * n])])


class DropoutParams(OpParams):
    p: Probability = Field(0.5, description="Probability of zeroing an element during training.")


@register
class Dropout(Op):
    name = "dropout"
    family = "reg"
    Params = DropoutParams
    summary = "Randomly zero elements during training; the identity at inference."
    example = "dropout: {p: 0.5}"

    def cost(self, p: DropoutParams, inputs: list[TensorType], out: TensorType) -> Cost:
        return Cost()

    def label(self, p: DropoutParams, out: TensorType | None) -> str:
        return f"p={p.p}"

    def torch(self, p: DropoutParams, inputs: list[TensorType], out: TensorType) -> TorchCode:
        return TorchCode(f"nn.Dropout(p={p.p!r})", "{m}({0})")

    def onnx(self, b: Any, p: DropoutParams, inputs: list[str], in_types: list[TensorType], out: TensorType,
             weights: dict[str, Any]) -> str:
        return inputs[0]  # the identity at inference: no node, users read the input
