"""Channel-wise (spatial) dropout: whole feature maps are dropped together."""

from __future__ import annotations

from typing import Any

from archc.ir.types import TensorType
from archc.ops.base import Cost, Op, TorchCode, expect_rank
from archc.ops.registry import register
from archc.ops.tensor import DropoutParams


@register
class Dropout2d(Op):
    name = "dropout2d"
    family = "reg"
    Params = DropoutParams
    summary = ("Spatial dropout (Tompson et al. 2015): zero whole channels during training (Dropout1d/2d/3d by "
               "input rank); the identity at inference.")
    example = "dropout2d: {p: 0.1}"

    def infer(self, p: DropoutParams, inputs: list[TensorType]) -> TensorType:
        expect_rank(self.name, inputs[0], (2, 3, 4))
        return inputs[0]

    def cost(self, p: DropoutParams, inputs: list[TensorType], out: TensorType) -> Cost:
        return Cost()

    def label(self, p: DropoutParams, out: TensorType | None) -> str:
        return f"p={p.p}"

    def torch(self, p: DropoutParams, inputs: list[TensorType], out: TensorType) -> TorchCode:
        return TorchCode(f"nn.Dropout{inputs[0].rank - 1}d(p={p.p!r})", "{m}({0})")

    def onnx(self, b: Any, p: DropoutParams, inputs: list[str], in_types: list[TensorType], out: TensorType,
             weights: dict[str, Any]) -> str:
        return inputs[0]  # the identity at inference: no node, users read the input
