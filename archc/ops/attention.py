"""Attention: multi-head self-attention as one layer (PyTorch's ``nn.MultiheadAttention``, torchvision's ViT names) and
scaled dot-product attention of given queries, keys and values.

Both count the in- and out-projections (if any) and the two attention matmuls, QK^T and AV, as MACs, so a transformer's
MACs agree with torchvision's GFLOPS metadata. numpy is imported inside the ONNX methods only: the compiler core runs
without the emit extras.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import Field

from archc.errors import Problem
from archc.ir.types import TensorType
from archc.ops.base import Cost, Op, OpParams, TorchCode
from archc.ops.fields import Probability, Size
from archc.ops.registry import register
from archc.ops.saved import Extra, Saved


def _swap_last(b: Any, x: str, rank: int) -> str:
    """The last two axes of a rank-``rank`` value (batch included) swapped."""
    return b.node("Transpose", [x], perm=[*range(rank - 2), rank - 1, rank - 2])


def _split_heads(b: Any, x: str, heads: int) -> str:
    """[N, L, D] -> [N, heads, L, D / heads]; the batch and the length are copied (Reshape's 0)."""
    y = b.node("Reshape", [x, b.const_int64([0, 0, heads, -1])], allowzero=0)
    return b.node("Transpose", [y], perm=[0, 2, 1, 3])


def _merge_heads(b: Any, x: str) -> str:
    """[N, heads, L, d] -> [N, L, heads * d], the inverse of :func:`_split_heads`."""
    y = b.node("Transpose", [x], perm=[0, 2, 1, 3])
    return b.node("Reshape", [y, b.const_int64([0, 0, -1])], allowzero=0)


def attend_onnx(b: Any, q: str, k: str, v: str, rank: int, head_dim: int, dtype: str,
                causal: tuple[int, int] | None = None) -> str:
    """softmax(Q K^T / sqrt(d) [+ causal mask]) V for rank-``rank`` values (batch included); ``causal`` is the
    (query length, key length) of an additive mask hiding the keys after each query (PyTorch's ``is_causal``)."""
    import numpy as np

    scores = b.node("MatMul", [q, _swap_last(b, k, rank)])
    scores = b.node("Mul", [scores, b.const_scalar(1 / math.sqrt(head_dim), dtype)])
    if causal is not None:
        mask = np.triu(np.full(causal, -np.inf, dtype=np.dtype(dtype)), k=1)
        scores = b.node("Add", [scores, b.constant("causal_mask", mask)])
    return b.node("MatMul", [b.node("Softmax", [scores], axis=-1), v])


class MultiheadAttentionParams(OpParams):
    heads: Size = Field(description="Attention heads; must divide the embedding size.")
    dropout: Probability = Field(0.0, description="Dropout on the attention weights during training.")
    bias: bool = Field(True, description="Learn biases in the input and output projections.")


@register
class MultiheadAttention(Op):
    name = "multihead_attention"
    family = "attention"
    Params = MultiheadAttentionParams
    summary = ("Multi-head self-attention over tokens [L, D] (PyTorch's nn.MultiheadAttention, batch first, with "
               "torchvision's weight names in_proj_weight, in_proj_bias, out_proj.weight, out_proj.bias). "
               "MACs: in-projection 3 L D^2 + QK^T L^2 D + AV L^2 D + out-projection L D^2.")
    example = "multihead_attention: {id: self_attention, heads: 12, dropout: 0.0}"

    def infer(self, p: MultiheadAttentionParams, inputs: list[TensorType]) -> TensorType:
        x = inputs[0]
        if x.rank != 2:
            raise Problem("E305", f"multihead_attention expects tokens [L, D] (batch implicit); found {x} "
                                  f"(rank {x.rank})")
        if x.shape[1] % p.heads:
            raise Problem("E303", f"multihead_attention heads={p.heads} expects an embedding size divisible by "
                                  f"{p.heads}; found {x.shape[1]}")
        return x

    def cost(self, p: MultiheadAttentionParams, inputs: list[TensorType], out: TensorType) -> Cost:
        length, dim = out.shape
        params = 4 * dim * dim + (4 * dim if p.bias else 0)
        macs = 4 * length * dim * dim + 2 * length * length * dim
        return Cost(params=params, macs=macs, elementwise=p.heads * length * length)

    def label(self, p: MultiheadAttentionParams, out: TensorType | None) -> str:
        return f"{p.heads} heads" + (f", {out.shape[-1]}" if out is not None else "")

    def torch(self, p: MultiheadAttentionParams, inputs: list[TensorType], out: TensorType) -> TorchCode:
        args = [str(out.shape[1]), str(p.heads)]
        if p.dropout:
            args.append(f"dropout={p.dropout!r}")
        if not p.bias:
            args.append("bias=False")
        # query, key and value the same tensor and no weights returned: eval runs PyTorch's fused fast path
        return TorchCode(f"nn.MultiheadAttention({', '.join(args)}, batch_first=True)",
                         "{m}({0}, {0}, {0}, need_weights=False)[0]")

    def saved_for_backward(self, p: MultiheadAttentionParams, inputs: list[TensorType], out: TensorType) -> Saved:
        # PyTorch's training path (F.multi_head_attention_forward): the in-projection reads a contiguous copy of the
        # sequence-first input and its packed result is copied into q, k and v
        length, dim = out.shape
        copies = (Extra("input copy", length * dim), Extra("query, key and value", 3 * length * dim))
        if not p.dropout:
            # the fused kernel keeps q, k, v, its output (which the out-projection reads, heads joined without a
            # copy) and the log-sum-exp per head and query
            return Saved(extras=(*copies, Extra("attention output", length * dim),
                                 Extra("logsumexp", p.heads * length, "float32")))
        # dropout on the weights takes the unfused path: scaled queries, transposed keys, the softmax, the dropout
        # mask and the dropped weights, and the heads joined into a copy for the out-projection
        weights = p.heads * length * length
        return Saved(extras=(*copies, Extra("scaled queries", length * dim), Extra("transposed keys", length * dim),
                             Extra("attention weights", weights), Extra("dropout mask", weights),
                             Extra("dropped weights", weights), Extra("heads joined", length * dim)))

    def parameter_sizes(self, p: MultiheadAttentionParams, inputs: list[TensorType],
                        out: TensorType) -> tuple[int, ...]:
        dim = out.shape[1]  # in_proj_weight, in_proj_bias, out_proj.weight, out_proj.bias
        return (3 * dim * dim, 3 * dim, dim * dim, dim) if p.bias else (3 * dim * dim, dim * dim)

    def onnx(self, b: Any, p: MultiheadAttentionParams, inputs: list[str], in_types: list[TensorType],
             out: TensorType, weights: dict[str, Any]) -> str:
        dim = out.shape[1]
        qkv = b.node("MatMul", [inputs[0], b.initializer("in_proj_weight", weights["in_proj_weight"].T.copy())])
        if p.bias:
            qkv = b.node("Add", [qkv, b.initializer("in_proj_bias", weights["in_proj_bias"])])
        # [N, L, 3D] -> [3, N, heads, L, d]: one projection, then q, k and v taken apart
        qkv = b.node("Reshape", [qkv, b.const_int64([0, 0, 3, p.heads, dim // p.heads])], allowzero=0)
        qkv = b.node("Transpose", [qkv], perm=[2, 0, 3, 1, 4])
        q, k, v = (b.node("Squeeze", [b.node("Gather", [qkv, b.const_int64([i])], axis=0), b.const_int64([0])])
                   for i in range(3))
        y = _merge_heads(b, attend_onnx(b, q, k, v, 4, dim // p.heads, out.dtype))
        y = b.node("MatMul", [y, b.initializer("out_proj.weight", weights["out_proj.weight"].T.copy())])
        if p.bias:
            y = b.node("Add", [y, b.initializer("out_proj.bias", weights["out_proj.bias"])])
        return y


class AttentionParams(OpParams):
    heads: Size | None = Field(None, description="For tokens [L, D]: heads the embedding is split into (default 1). "
                                                 "Inputs [heads, L, d] carry their heads and leave it unset.")
    causal: bool = Field(False, description="Hide from each query the keys after it (PyTorch's `is_causal`: a "
                                            "decoder's mask).")


@register
class ScaledDotProductAttention(Op):
    name = "scaled_dot_product_attention"
    family = "attention"
    Params = AttentionParams
    summary = ("softmax(Q K^T / sqrt(d)) V of three inputs (query, key, value), each [heads, L, d] or tokens [L, D] "
               "split into `heads`; optionally causal (PyTorch's F.scaled_dot_product_attention). MACs: QK^T + AV.")
    example = "scaled_dot_product_attention: {from: [q, k, v], heads: 12, causal: true}"
    min_inputs = 3
    max_inputs = 3

    def label(self, p: AttentionParams, out: TensorType | None) -> str:
        """``12 heads, 768, causal`` for tokens [L, D]; ``12 heads, 64 each`` for inputs [heads, L, d]."""
        if out is None:
            heads = f"{p.heads} heads" if p.heads is not None else ""
        elif out.rank == 3:
            heads = f"{out.shape[0]} heads, {out.shape[-1]} each"
        else:
            heads = f"{p.heads or 1} head{'s' if (p.heads or 1) > 1 else ''}, {out.shape[-1]}"
        return ", ".join(part for part in (heads, "causal" if p.causal else "") if part)

    def heads(self, p: AttentionParams, q: TensorType) -> int:
        return q.shape[0] if q.rank == 3 else (p.heads or 1)

    def infer(self, p: AttentionParams, inputs: list[TensorType]) -> TensorType:
        q, k, v = inputs
        if q.rank not in (2, 3):
            raise Problem("E305", f"scaled_dot_product_attention expects its query as tokens [L, D] or [heads, L, d] "
                                  f"(batch implicit); found {q} (rank {q.rank})")
        if q.rank == 3 and p.heads is not None:
            raise Problem("E306", f"scaled_dot_product_attention heads={p.heads} splits tokens [L, D]; the query {q} "
                                  "is [heads, L, d] already: leave heads unset")
        for t, what in ((k, "key"), (v, "value")):
            if t.rank != q.rank:
                raise Problem("E305", f"scaled_dot_product_attention expects query, key and value of equal rank; "
                                      f"found query {q} and {what} {t}")
        if q.shape[-1] != k.shape[-1] or k.shape[-2] != v.shape[-2] or q.shape[:-2] != k.shape[:-2] or \
                k.shape[:-2] != v.shape[:-2]:
            raise Problem("E301", f"scaled_dot_product_attention expects query [.., Lq, d], key [.., Lk, d] and value "
                                  f"[.., Lk, dv]; found {q}, {k} and {v}")
        heads = self.heads(p, q)
        if q.rank == 2 and (q.shape[1] % heads or v.shape[1] % heads):
            raise Problem("E303", f"scaled_dot_product_attention heads={heads} expects query and value sizes "
                                  f"divisible by {heads}; found {q} and {v}")
        return q.with_shape((*q.shape[:-1], v.shape[-1]))

    def cost(self, p: AttentionParams, inputs: list[TensorType], out: TensorType) -> Cost:
        q, k, v = inputs
        heads = q.shape[0] if q.rank == 3 else 1  # split heads share the full width between them
        scores = heads * q.shape[-2] * k.shape[-2]
        return Cost(macs=scores * (q.shape[-1] + v.shape[-1]), elementwise=scores)

    def torch(self, p: AttentionParams, inputs: list[TensorType], out: TensorType) -> TorchCode:
        causal = ", is_causal=True" if p.causal else ""
        heads = self.heads(p, inputs[0])
        if inputs[0].rank == 3 or heads == 1:
            return TorchCode(None, f"F.scaled_dot_product_attention({{0}}, {{1}}, {{2}}{causal})")
        # [N, L, E] -> [N, heads, L, E / heads] per input, attended, and the heads joined back
        split = f".unflatten(-1, ({heads}, -1)).transpose(1, 2)"
        steps = tuple((name, f"{{{i}}}{split}") for i, name in enumerate(("q", "k", "v")))  # views
        call = f"F.scaled_dot_product_attention({{q}}, {{k}}, {{v}}{causal}).transpose(1, 2).flatten(2)"
        return TorchCode(None, call, steps=steps)

    def saved_for_backward(self, p: AttentionParams, inputs: list[TensorType], out: TensorType) -> Saved:
        # the fused kernel keeps query, key, value (or views of them), its output and a log-sum-exp per query; its
        # output is laid out [N, L, heads, d], so joining the heads back is a view of it, the layer's output
        q, k, v = inputs
        heads = self.heads(p, q)
        if q.shape[-1] == v.shape[-1]:  # the fused kernel wants query and value heads of one width
            return Saved(inputs=(0, 1, 2), output=True,
                         extras=(Extra("logsumexp", heads * q.shape[-2], "float32"),))
        # query and value heads of different widths: PyTorch's unfused path keeps the scaled queries, the keys
        # transposed, the softmax weights and the values (copied when split from tokens)
        extras = [Extra("scaled queries", q.numel), Extra("transposed keys", k.numel),
                  Extra("attention weights", heads * q.shape[-2] * k.shape[-2])]
        split = q.rank == 2 and heads > 1
        if split:
            extras.append(Extra("values copy", v.numel))
        return Saved(inputs=() if split else (2,), extras=tuple(extras))

    def onnx(self, b: Any, p: AttentionParams, inputs: list[str], in_types: list[TensorType], out: TensorType,
             weights: dict[str, Any]) -> str:
        if any(None in dims for dims in b.in_dims):
            raise b.refuse("scaled_dot_product_attention's scale and mask follow the sizes of its inputs; export "
                           "with --dynamic batch")
        q_type, k_type = in_types[0], in_types[1]
        causal = (q_type.shape[-2], k_type.shape[-2]) if p.causal else None
        heads = self.heads(p, q_type)
        if q_type.rank == 3 or heads == 1:
            head_dim = q_type.shape[-1]
            return attend_onnx(b, *inputs, q_type.rank + 1, head_dim, out.dtype, causal)
        q, k, v = (_split_heads(b, x, heads) for x in inputs)
        return _merge_heads(b, attend_onnx(b, q, k, v, 4, q_type.shape[-1] // heads, out.dtype, causal))
