"""Embedding lookup: integer indices to learned vectors."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from archc.errors import Problem
from archc.ir.types import TensorType
from archc.ops.base import Cost, Op, OpParams, TorchCode
from archc.ops.fields import MAX_DIM, Channels, Size
from archc.ops.registry import register

INDEX_DTYPES = ("int64", "int32")


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
