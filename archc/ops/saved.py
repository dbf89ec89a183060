"""What autograd keeps of one layer for the backward pass: the type of each op's memory rule
(:meth:`archc.ops.base.Op.saved_for_backward`), read by the static memory planner (archc/memory/).

A rule names the layer's own inputs and output it keeps (the planner counts each storage once: a tensor saved by two
layers, or a view of it, is one allocation) and the tensors it makes only for the backward pass (max pooling's
indices, batch norm's statistics, a dropout mask). Weights are parameters, counted apart, never here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

View = Literal["alias", "strided", "reshape"]
"""How an output shares its first input's storage: ``alias`` the same layout (identity, squeeze, dropout at
inference), ``strided`` other strides (permute, slice, select, expand: never contiguous), ``reshape`` a view of a
contiguous input but a contiguous copy of any other (flatten, reshape)."""


@dataclass(frozen=True)
class Extra:
    """A tensor a layer allocates for its backward pass alone."""

    what: str
    """What it is, for the planner's listing: ``indices``, ``mean and invstd``, ``dropout mask``."""
    numel: int
    """Elements per sample (``per_sample``), or in all."""
    dtype: str | None = None
    """``int64``, ``float32``...; None: the activations' dtype."""
    per_sample: bool = True
    """Scales with the batch; False: one tensor whatever the batch (batch norm's per-channel statistics)."""


@dataclass(frozen=True)
class Saved:
    """The tensors one layer keeps for the backward pass, in training mode."""

    inputs: tuple[int, ...] = ()
    """Input ports whose tensor is kept."""
    output: bool = False
    """The layer's output is kept (ReLU, sigmoid and softmax differentiate through their result)."""
    extras: tuple[Extra, ...] = ()
    product: bool = False
    """A product of its inputs (mul, matmul): an input is kept only when another input needs a gradient, as
    autograd's derivative of ``a * b`` with respect to ``a`` reads only ``b``."""
    contiguous_inputs: bool = False
    """The op makes its kept inputs contiguous first: a strided input (a permuted view) is kept as a copy (batched
    matrix products fold their operands with a reshape)."""
    copied_in_place: bool = False
    """Run in place, the layer keeps a copy of its input taken before overwriting it, not the input itself (PyTorch's
    ``relu6_``, whose derivative reads the input, clones it first)."""


NOTHING = Saved()
"""A layer whose backward pass reads no tensor: sums, concatenation, views, copies, resampling by sizes."""


def saves_input() -> Saved:
    """The layer keeps its first input (convolution, linear, average pooling, most activations)."""
    return Saved(inputs=(0,))
