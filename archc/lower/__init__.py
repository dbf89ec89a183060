"""Lowering: a validated spec becomes the graph IR, with blocks, repeats and references expanded."""

from archc.lower.lowerer import lower

__all__ = ["lower"]
