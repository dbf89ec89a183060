"""The element types a plan is made for, and memory sizes as people write them (``16GiB``)."""

from __future__ import annotations

import re

from archc.errors import UsageError
from archc.ir.types import DTYPE_BYTES, TensorType
from archc.ops.saved import Extra
from archc.report.precision import BYTES_PER_ELEMENT, byte_size

DTYPES = BYTES_PER_ELEMENT
"""Bytes per element of weights and activations, by the name `--dtype` takes (the reports' table)."""
FLOAT_TYPES = frozenset({"float32", "float16", "bfloat16", "float64"})
"""Tensor types that follow the plan's dtype; integer tensors (token indices) keep their own."""

_UNITS = {"": 1, "b": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40,
          "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12}
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*")


def element_bytes(dtype: str, plan_dtype: str) -> int:
    """Bytes per element of a tensor of IR type ``dtype`` in a plan for ``plan_dtype``."""
    return DTYPES[plan_dtype] if dtype in FLOAT_TYPES else DTYPE_BYTES[dtype]


def tensor_bytes(t: TensorType, plan_dtype: str) -> int:
    """Bytes of one sample of ``t``."""
    return t.numel * element_bytes(t.dtype, plan_dtype)


def extra_bytes(extra: Extra, plan_dtype: str) -> int:
    """Bytes of a tensor an op keeps for its backward pass (per sample when it is per sample): in the plan's dtype
    unless the op names one (float32 statistics stay float32)."""
    return extra.numel * (DTYPES[plan_dtype] if extra.dtype is None else DTYPE_BYTES[extra.dtype])


def parse_size(text: str, option: str = "--fit") -> int:
    """``16GiB``, ``16G`` (binary), ``16GB`` (decimal), ``512MiB``, ``1.5GiB`` or plain bytes, as a byte count."""
    match = _SIZE.fullmatch(text)
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _UNITS:
        raise UsageError(f"{option}: expected a size such as 16GiB, 512MiB, 8GB or 1000000 (bytes); got {text!r}")
    size = int(float(match.group(1)) * _UNITS[unit])
    if size <= 0:
        raise UsageError(f"{option}: expected a size above zero; got {text!r}")
    return size


size_text = byte_size
"""``1.50 GiB``: sizes written as every report writes them."""
