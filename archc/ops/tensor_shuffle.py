"""Tensor rearrangements that interleave elements: ShuffleNet's channel shuffle and the sub-pixel convolution's pixel
shuffle."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from pydantic import Field

from archc.errors import Problem
from archc.ir.types import TensorType
from archc.ops.base import OpParams, Plumbing, TorchCode, Window, expect_rank
from archc.ops.fields import Size
from archc.ops.onnx_helpers import merge_channels, split_channels
from archc.ops.registry import register


class ChannelShuffleParams(OpParams):
    groups: Size = Field(description="Channel groups interleaved: channel g * (C / groups) + i moves to "
                                     "i * groups + g.")


@register
class ChannelShuffle(Plumbing):
    name = "channel_shuffle"
    Params = ChannelShuffleParams
    summary = "ShuffleNet's channel shuffle: split the channels into groups and interleave them."
    example = "channel_shuffle: {groups: 2}"
    label_fields = ("groups",)

    def infer(self, p: ChannelShuffleParams, inputs: list[TensorType]) -> TensorType:
        x = inputs[0]
        if x.channels % p.groups:
            raise Problem("E303", f"channel_shuffle groups={p.groups} expects channels divisible by {p.groups}; "
                                  f"found {x.channels}")
        return x

    def torch(self, p: ChannelShuffleParams, inputs: list[TensorType], out: TensorType) -> TorchCode:
        c = out.channels
        return TorchCode(None, f"{{0}}.unflatten(1, ({p.groups}, {c // p.groups})).transpose(1, 2).flatten(1, 2)")

    def onnx(self, b: Any, p: ChannelShuffleParams, inputs: list[str], in_types: list[TensorType], out: TensorType,
             weights: dict[str, Any]) -> str:
        c, n = out.channels, out.rank - 1
        y = split_channels(b, inputs[0], n, p.groups, c // p.groups)
        y = b.node("Transpose", [y], perm=[0, 2, 1, *range(3, 3 + n)])
        return merge_channels(b, y, n, c)


class PixelShuffleParams(OpParams):
    r: Size = Field(description="Upscale factor: C * r^2 channels become C channels at r times the height and width.")


@register
class PixelShuffle(Plumbing):
    name = "pixel_shuffle"
    Params = PixelShuffleParams
    summary = "Sub-pixel convolution's rearrangement (ESPCN): [C * r^2, H, W] -> [C, H * r, W * r]."
    example = "pixel_shuffle: {r: 2}"
    label_fields = ("r",)

    def infer(self, p: PixelShuffleParams, inputs: list[TensorType]) -> TensorType:
        x = inputs[0]
        expect_rank(self.name, x, (3,))
        if x.channels % (p.r * p.r):
            raise Problem("E306", f"pixel_shuffle r={p.r} expects channels divisible by {p.r * p.r}; "
                                  f"found {x.channels}")
        return x.with_shape((x.channels // (p.r * p.r), x.shape[1] * p.r, x.shape[2] * p.r))

    def window(self, p: PixelShuffleParams, inputs: list[TensorType], out: TensorType) -> Window:
        return Window((1, 1), (Fraction(1, p.r),) * 2, (0, 0))  # output (y, x) reads input (y // r, x // r)

    def torch(self, p: PixelShuffleParams, inputs: list[TensorType], out: TensorType) -> TorchCode:
        return TorchCode(None, f"F.pixel_shuffle({{0}}, {p.r})")

    def onnx(self, b: Any, p: PixelShuffleParams, inputs: list[str], in_types: list[TensorType], out: TensorType,
             weights: dict[str, Any]) -> str:
        return b.node("DepthToSpace", [inputs[0]], blocksize=p.r, mode="CRD")  # CRD is PyTorch's channel order
