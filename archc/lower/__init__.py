"""Lowering: a validated spec becomes the graph IR, with blocks, repeats and references expanded."""

from archc.lower.budget import check_inputs, stack_room
from archc.lower.lowerer import check_expansion, lower

__all__ = ["check_expansion", "check_inputs", "lower", "stack_room"]
