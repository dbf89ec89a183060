"""Arithmetic on activations: the matrix product of two activations (attention's QK^T and AV) and element-wise
arithmetic by a constant (attention's ``x * 0.125``)."""

from __future__ import annotations

from math import prod
from typing import Any

from pydantic import Field

from archc.errors import Problem
from archc.ir.types import TensorType
from archc.ops.base import Cost, Op, OpParams, TorchCode
from archc.ops.fields import Float32
from archc.ops.registry import register
from archc.ops.saved import NOTHING, Extra, Saved

FLOAT_DTYPES = ("float32", "float16", "bfloat16", "float64")


class MatMulParams(OpParams):
    transpose_a: bool = Field(False, description="Swap the last two axes of the first input before multiplying.")
    transpose_b: bool = Field(False, description="Swap the last two axes of the second input before multiplying "
                                                 "(`true` for attention's Q K^T).")


def _matrix(t: TensorType, transposed: bool) -> tuple[int, int]:
    """(rows, columns) of the trailing matrix of ``t`` as the product reads it."""
    rows, cols = t.shape[-2], t.shape[-1]
    return (cols, rows) if transposed else (rows, cols)


@register
class MatMul(Op):
    name = "matmul"
    family = "math"
    Params = MatMulParams
    summary = ("Matrix product of two activations over their last two axes, the leading axes batched (equal, or 1 "
               "where they differ): [.., M, K] x [.., K, P] -> [.., M, P]. MACs: M x K x P per matrix.")
    example = "matmul: {from: [q, k], transpose_b: true}"
    min_inputs = 2
    max_inputs = 2
    label_fields = ("transpose_a", "transpose_b")

    def infer(self, p: MatMulParams, inputs: list[TensorType]) -> TensorType:
        a, b = inputs
        if a.rank < 2:
            raise Problem("E305", f"matmul expects matrices [.., M, K] (batch implicit): inputs of rank 2 or more; "
                                  f"found {a} (rank {a.rank})")
        if b.rank != a.rank:
            raise Problem("E305", f"matmul expects inputs of equal rank; found {a} (rank {a.rank}) and {b} "
                                  f"(rank {b.rank})")
        m, k = _matrix(a, p.transpose_a)
        k_b, n = _matrix(b, p.transpose_b)
        if k != k_b:
            ta = "^T" if p.transpose_a else ""
            tb = "^T" if p.transpose_b else ""
            raise Problem("E301", f"matmul multiplies [{m}, {k}] by [{k_b}, {n}] (first{ta} by second{tb}): the inner "
                                  f"sizes must be equal; found {a} and {b}")
        batch = []
        for x, y in zip(a.shape[:-2], b.shape[:-2]):
            if x != y and 1 not in (x, y):
                raise Problem("E301", f"matmul expects the leading axes equal (or 1 where they differ); found {a} "
                                      f"and {b}")
            batch.append(max(x, y))
        return a.with_shape((*batch, m, n))

    def cost(self, p: MatMulParams, inputs: list[TensorType], out: TensorType) -> Cost:
        inner = _matrix(inputs[0], p.transpose_a)[1]
        return Cost(macs=out.numel * inner)

    def torch(self, p: MatMulParams, inputs: list[TensorType], out: TensorType) -> TorchCode:
        a = "{0}.transpose(-2, -1)" if p.transpose_a else "{0}"
        b = "{1}.transpose(-2, -1)" if p.transpose_b else "{1}"
        return TorchCode(None, f"torch.matmul({a}, {b})")

    def saved_for_backward(self, p: MatMulParams, inputs: list[TensorType], out: TensorType) -> Saved:
        # each factor for the other's gradient; one broadcast over leading axes is kept expanded (a copy)
        batch = out.shape[:-2]
        kept = tuple(port for port, x in enumerate(inputs) if x.shape[:-2] == batch)
        expanded = tuple(Extra(f"input {port} broadcast", prod(batch) * x.shape[-2] * x.shape[-1])
                         for port, x in enumerate(inputs) if x.shape[:-2] != batch)
        return Saved(inputs=kept, product=True, extras=expanded, contiguous_inputs=True)

    def onnx(self, b: Any, p: MatMulParams, inputs: list[str], in_types: list[TensorType], out: TensorType,
             weights: dict[str, Any]) -> str:
        args = []
        for value, t, transposed in zip(inputs, in_types, (p.transpose_a, p.transpose_b)):
            if transposed:
                rank = t.rank + 1  # with the batch
                value = b.node("Transpose", [value], perm=[*range(rank - 2), rank - 1, rank - 2])
            args.append(value)
        return b.node("MatMul", args)


class ScalarParams(OpParams):
    value: Float32 = Field(description="The constant.")


class _ScalarArithmetic(Op):
    family = "math"
    Params = ScalarParams
    symbol = ""
    onnx_op = ""

    def infer(self, p: ScalarParams, inputs: list[TensorType]) -> TensorType:
        x = inputs[0]
        if x.dtype not in FLOAT_DTYPES:  # PyTorch would promote an integer tensor to float; keep types honest
            raise Problem("E306", f"{self.name} expects a floating-point input; found {x} {x.dtype}")
        return x

    def label(self, p: ScalarParams, out: TensorType | None) -> str:
        return f"{self.symbol} {p.value!r}"

    def torch(self, p: ScalarParams, inputs: list[TensorType], out: TensorType) -> TorchCode:
        return TorchCode(None, f"{{0}} {self.symbol} {p.value!r}")

    def saved_for_backward(self, p: ScalarParams, inputs: list[TensorType], out: TensorType) -> Saved:
        return NOTHING  # the constant is all a scaled gradient needs

    def onnx(self, b: Any, p: ScalarParams, inputs: list[str], in_types: list[TensorType], out: TensorType,
             weights: dict[str, Any]) -> str:
        return b.node(self.onnx_op, [inputs[0], b.const_scalar(p.value, in_types[0].dtype)])


@register
class MulScalar(_ScalarArithmetic):
    name = "mul_scalar"
    summary = "Multiply every element by a constant: attention's scaling `x * 0.125`."
    example = "mul_scalar: {value: 0.125}"
    symbol = "*"
    onnx_op = "Mul"


@register
class AddScalar(_ScalarArithmetic):
    name = "add_scalar"
    summary = "Add a constant to every element: `x + 1`."
    example = "add_scalar: {value: 1.0}"
    symbol = "+"
    onnx_op = "Add"
