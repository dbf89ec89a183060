"""Fully connected (dense) layer over the last axis."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from archc.ir.types import TensorType
from archc.ops.base import Cost, Op, OpParams, TorchCode
from archc.ops.fields import Channels
from archc.ops.registry import register


class LinearParams(OpParams):
    out: Channels = Field(description="Output features.")
    bias: bool = Field(True, description="Learn an additive bias per output feature.")


@register
class Linear(Op):
    name = "linear"
    output_overwritable = True
    family = "linear"
    Params = LinearParams
    summary = "Fully connected layer applied to the last axis (flatten first for a classic classifier)."
    example = "linear: {id: fc, out: 1000}"

    def infer(self, p: LinearParams, inputs: list[TensorType]) -> TensorType:
        x = inputs[0]
        return x.with_shape((*x.shape[:-1], p.out))

    def cost(self, p: LinearParams, inputs: list[TensorType], out: TensorType) -> Cost:
        fan_in = inputs[0].shape[-1]
        params = fan_in * p.out + (p.out if p.bias else 0)
        return Cost(params=params, macs=out.numel * fan_in, connections=out.numel * (fan_in + (1 if p.bias else 0)))

    def label(self, p: LinearParams, out: TensorType | None) -> str:
        return str(p.out)

    def torch(self, p: LinearParams, inputs: list[TensorType], out: TensorType) -> TorchCode:
        bias = "" if p.bias else ", bias=False"
        return TorchCode(f"nn.Linear({inputs[0].shape[-1]}, {p.out}{bias})", "{m}({0})")

    def onnx(self, b: Any, p: LinearParams, inputs: list[str], in_types: list[TensorType], out: TensorType,
             weights: dict[str, Any]) -> str:
        if in_types[0].rank == 1:
            # [N, in] x [out, in]^T: Gemm keeps the weight in PyTorch's layout
            args = [inputs[0], b.initializer("weight", weights["weight"])]
            if p.bias:
                args.append(b.initializer("bias", weights["bias"]))
            return b.node("Gemm", args, transB=1)
        # over the last axis of a higher-rank input: MatMul broadcasts, with the weight stored transposed
        y = b.node("MatMul", [inputs[0], b.initializer("weight", weights["weight"].T.copy())])
        if p.bias:
            y = b.node("Add", [y, b.initializer("bias", weights["bias"])])
        return y
