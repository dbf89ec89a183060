"""Fully connected layers: dense over the last axis, and the embedding lookup (integer indices to learned vectors)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from archc.errors import Problem
from archc.ir.types import TensorType
from archc.ops.base import Cost, Op, OpParams, TorchCode, weight_and_bias
from archc.ops.fields import MAX_DIM, Channels, Size
from archc.ops.registry import register

INDEX_DTYPES = ("int64", "int32")
TIE_PATTERN = r"^[^.\x00-\x1f\x7f]+(\.[^.\x00-\x1f\x7f]+)*$"
"""A step's path, as `from:` writes it."""


class LinearParams(OpParams):
    out: Channels = Field(description="Output features.")
    bias: bool = Field(True, description="Learn an additive bias per output feature.")
    tie: str | None = Field(None, min_length=1, max_length=256, pattern=TIE_PATTERN,
                            description="A layer above whose weight this one shares, named as `from:` names it "
                                        "(GPT-2's `lm_head` tied to the token embedding: `tie: transformer.wte`); the "
                                        "weights must have one shape ([out, in] = the embedding's [num, dim]); counted "
                                        "once.")


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
        params = (0 if p.tie else fan_in * p.out) + (p.out if p.bias else 0)  # a tied weight is its owner's
        return Cost(params=params, macs=out.numel * fan_in, connections=out.numel * (fan_in + (1 if p.bias else 0)))

    def label(self, p: LinearParams, out: TensorType | None) -> str:
        return f"{p.out}, weight of {p.tie}" if p.tie else str(p.out)

    def torch(self, p: LinearParams, inputs: list[TensorType], out: TensorType) -> TorchCode:
        bias = "" if p.bias else ", bias=False"
        return TorchCode(f"nn.Linear({inputs[0].shape[-1]}, {p.out}{bias})", "{m}({0})")

    def parameter_sizes(self, p: LinearParams, inputs: list[TensorType], out: TensorType) -> tuple[int, ...]:
        if p.tie:  # the weight is its owner's tensor
            return (p.out,) if p.bias else ()
        return weight_and_bias(self.cost(p, inputs, out).params, p.out if p.bias else 0)  # keeps its input

    def onnx(self, b: Any, p: LinearParams, inputs: list[str], in_types: list[TensorType], out: TensorType,
             weights: dict[str, Any]) -> str:
        if p.tie:  # one initializer for both layers, in the owner's layout [out, in] (an embedding's [num, dim] too)
            weight = b.shared_initializer(f"{p.tie}.weight", weights["weight"])
            if in_types[0].rank > 1:
                weight = b.node("Transpose", [weight], perm=[1, 0])
        elif in_types[0].rank > 1:
            weight = b.initializer("weight", weights["weight"].T.copy())  # MatMul takes [in, out]
        else:
            weight = b.initializer("weight", weights["weight"])
        if in_types[0].rank == 1:
            # [N, in] x [out, in]^T: Gemm keeps the weight in PyTorch's layout
            args = [inputs[0], weight]
            if p.bias:
                args.append(b.initializer("bias", weights["bias"]))
            return b.node("Gemm", args, transB=1)
        # over the last axis of a higher-rank input: MatMul broadcasts, with the weight stored transposed
        y = b.node("MatMul", [inputs[0], weight])
        if p.bias:
            y = b.node("Add", [y, b.initializer("bias", weights["bias"])])
        return y


class EmbeddingParams(OpParams):
    num: Size = Field(description="Vocabulary size: indices run from 0 to num - 1.")
    dim: Channels = Field(description="Length of each embedding vector.")
    padding_idx: int | None = Field(None, ge=-MAX_DIM, le=MAX_DIM,
                                    description="An index whose vector is kept at zero and gets no gradient.")


@register
class Embedding(Op):
    name = "embedding"
    family = "linear"
    Params = EmbeddingParams
    summary = ("Look up a learned vector for each integer index: an int64 input [L] gives [L, dim]. Declare the "
               "input as `{shape: [L], dtype: int64}`.")
    example = "embedding: {num: 10000, dim: 256}"
    label_fields = ("num", "dim")

    def infer(self, p: EmbeddingParams, inputs: list[TensorType]) -> TensorType:
        x = inputs[0]
        if x.dtype not in INDEX_DTYPES:
            raise Problem("E306", f"embedding expects integer indices ({' or '.join(INDEX_DTYPES)}); found {x} "
                                  f"{x.dtype}; declare the input with `dtype: int64`")
        if p.padding_idx is not None and not -p.num <= p.padding_idx < p.num:
            raise Problem("E306", f"padding_idx {p.padding_idx} is outside the vocabulary 0..{p.num - 1}")
        return TensorType((*x.shape, p.dim), "float32")

    def cost(self, p: EmbeddingParams, inputs: list[TensorType], out: TensorType) -> Cost:
        return Cost(params=p.num * p.dim)

    def torch(self, p: EmbeddingParams, inputs: list[TensorType], out: TensorType) -> TorchCode:
        pad = f", padding_idx={p.padding_idx}" if p.padding_idx is not None else ""
        return TorchCode(f"nn.Embedding({p.num}, {p.dim}{pad})", "{m}({0})")

    def onnx(self, b: Any, p: EmbeddingParams, inputs: list[str], in_types: list[TensorType], out: TensorType,
             weights: dict[str, Any]) -> str:
        return b.node("Gather", [b.initializer("weight", weights["weight"]), inputs[0]], axis=0)


def shared_weight_shape(op: str, p: Any, in_type: TensorType | None) -> tuple[int, int] | None:
    """The shape of the `weight` a `tie:` may share: a linear layer's [out, in] (None while its input is untyped), an
    embedding's [num, dim]; None for other ops."""
    if op == "embedding":
        return p.num, p.dim
    if op == "linear" and in_type is not None:
        return p.out, in_type.shape[-1]
    return None
