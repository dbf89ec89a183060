"""Imports every op module so that each registers its ops exactly once."""

from archc.ops import activation, conv, linear, merge, norm, pool, tensor

__all__ = ["activation", "conv", "linear", "merge", "norm", "pool", "tensor"]
