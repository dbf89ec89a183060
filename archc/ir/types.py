"""Tensor types: a shape without the (symbolic) batch dimension, and a dtype."""

from __future__ import annotations

from dataclasses import dataclass
from math import prod

DTYPE_BYTES: dict[str, int] = {
    "float32": 4,
    "float16": 2,
    "bfloat16": 2,
    "float64": 8,
    "int64": 8,
    "int32": 4,
    "uint8": 1,
    "bool": 1,
}


@dataclass(frozen=True)
class TensorType:
    """The type of one tensor flowing along an edge; the batch dimension ``N`` is implicit and symbolic."""

    shape: tuple[int, ...]
    dtype: str = "float32"

    @property
    def rank(self) -> int:
        """Rank without the batch dimension."""
        return len(self.shape)

    @property
    def channels(self) -> int:
        return self.shape[0]

    @property
    def spatial(self) -> tuple[int, ...]:
        return self.shape[1:]

    @property
    def numel(self) -> int:
        """Elements for batch 1."""
        return prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.numel * DTYPE_BYTES[self.dtype]

    def with_shape(self, shape: tuple[int, ...]) -> TensorType:
        return TensorType(tuple(shape), self.dtype)

    def __str__(self) -> str:
        return "[" + ", ".join(str(d) for d in self.shape) + "]"
