"""Regularisation: dropout of elements, of whole channels and of whole samples (stochastic depth), the identity at
inference."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from archc.ir.types import TensorType
from archc.ops.base import Cost, Op, OpParams, TorchCode, expect_rank
from archc.ops.fields import Probability
from archc.ops.registry import register
from archc.ops.saved import NOTHING, Extra, Saved, View


class DropoutParams(OpParams):
    p: Probability = Field(0.5, description="Probability of zeroing an element during training.")


class _Dropout(Op):
    """Free at inference: no cost, and no ONNX node (users read the input)."""

    family = "reg"
    Params = DropoutParams

    def cost(self, p: DropoutParams, inputs: list[TensorType], out: TensorType) -> Cost:
        return Cost()

    def label(self, p: DropoutParams, out: TensorType | None) -> str:
        return f"p={p.p}"

    def mask_numel(self, x: TensorType) -> int:
        """Elements of the random mask per sample: one per element, channel or sample."""
        return x.numel

    def output_view(self, p: DropoutParams, inputs: list[TensorType], out: TensorType, training: bool) -> View | None:
        return "alias" if not training or p.p == 0.0 else None  # PyTorch returns the input itself

    def saved_for_backward(self, p: DropoutParams, inputs: list[TensorType], out: TensorType) -> Saved:
        if p.p == 0.0:
            return NOTHING
        # the product x * mask keeps the mask (in the input's dtype: PyTorch's CPU kernel; CUDA's fused kernel
        # keeps a one-byte mask instead), not x; p = 1 multiplies by a zero scalar
        mask = Extra("dropout mask", 1, per_sample=False) if p.p == 1.0 else Extra("dropout mask",
                                                                                  self.mask_numel(inputs[0]))
        return Saved(extras=(mask,))

    def onnx(self, b: Any, p: DropoutParams, inputs: list[str], in_types: list[TensorType], out: TensorType,
             weights: dict[str, Any]) -> str:
        return inputs[0]


@register
class Dropout(_Dropout):
    name = "dropout"
    summary = "Randomly zero elements during training; the identity at inference."
    example = "dropout: {p: 0.5}"

    def torch(self, p: DropoutParams, inputs: list[TensorType], out: TensorType) -> TorchCode:
        return TorchCode(f"nn.Dropout(p={p.p!r})", "{m}({0})")


@register
class Dropout2d(_Dropout):
    name = "dropout2d"
    summary = ("Spatial dropout (Tompson et al. 2015): zero whole channels during training (Dropout1d/2d/3d by "
               "input rank); the identity at inference.")
    example = "dropout2d: {p: 0.1}"

    def infer(self, p: DropoutParams, inputs: list[TensorType]) -> TensorType:
        expect_rank(self.name, inputs[0], (2, 3, 4))
        return inputs[0]

    def torch(self, p: DropoutParams, inputs: list[TensorType], out: TensorType) -> TorchCode:
        return TorchCode(f"nn.Dropout{inputs[0].rank - 1}d(p={p.p!r})", "{m}({0})")

    def mask_numel(self, x: TensorType) -> int:
        return x.channels


class DropPathParams(OpParams):
    p: Probability = Field(description="Probability of zeroing a whole sample during training.")


@register
class DropPath(_Dropout):
    name = "drop_path"
    Params = DropPathParams
    summary = ("Stochastic depth (Huang et al. 2016): during training zero each sample's whole input with "
               "probability p and scale the rest by 1 / (1 - p), torchvision's StochasticDepth(p, \"row\"); the "
               "identity at inference. Put it on a residual branch, before the add.")
    example = "drop_path: {p: 0.1}"

    def mask_numel(self, x: TensorType) -> int:
        return 1

    def saved_for_backward(self, p: DropoutParams, inputs: list[TensorType], out: TensorType) -> Saved:
        # a mask of one element per sample, also when p = 1 (bernoulli_(0) then the product)
        return NOTHING if p.p == 0.0 else Saved(extras=(Extra("drop-path mask", 1),))

    def torch(self, p: DropPathParams, inputs: list[TensorType], out: TensorType) -> TorchCode:
        if p.p == 0.0:
            return TorchCode(None, "{0}")
        survival = 1.0 - p.p
        # torchvision's StochasticDepth step by step (an empty tensor of the input's dtype and device, bernoulli_,
        # div_): the same random numbers, so the same mask under the same seed; the generated code imports torch only
        size = ", ".join(["{0}.shape[0]", *["1"] * inputs[0].rank])
        mask = f"{{0}}.new_empty(({size})).bernoulli_({survival!r})"
        if survival > 0.0:
            mask += f".div_({survival!r})"
        return TorchCode(None, f"({{0}} * {mask} if self.training else {{0}})")
