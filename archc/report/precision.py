"""The number formats a report can count bytes in: ``--dtype fp32|fp16|bf16|int8``."""

from __future__ import annotations

from archc.errors import UsageError

BYTES_PER_ELEMENT: dict[str, int] = {"fp32": 4, "fp16": 2, "bf16": 2, "int8": 1}
"""Bytes of one parameter or activation element in each format a user can ask a report for."""


def element_bytes(dtype: str) -> int:
    """Bytes per element of ``dtype``; a usage error naming the choices for anything else."""
    if dtype not in BYTES_PER_ELEMENT:
        raise UsageError(f"--dtype: expected one of {', '.join(BYTES_PER_ELEMENT)}; got {dtype!r}")
    return BYTES_PER_ELEMENT[dtype]


def byte_size(n: int | float) -> str:
    """``n`` bytes as a short binary size: ``512 B``, ``3.50 KiB``, ``97.70 MiB``, ``1.25 GiB``."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{int(n)} B"
