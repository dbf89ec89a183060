"""The op registry and the ops of the spec language."""

from archc.ops.base import Cost, Op, OpParams, TorchCode, Window
from archc.ops.registry import all_ops, get_op, register

__all__ = ["Cost", "Op", "OpParams", "TorchCode", "Window", "all_ops", "get_op", "register"]
