"""The op families, defined once: the op reference's sections (`archc ops`, docs/ops.md), the diagram's colours and
legend, and the modules of :mod:`archc.ops` that hold each family's ops (the registry imports them from here).

Each op names its family in :attr:`archc.ops.base.Op.family`, and lives in one of its family's modules: a family
too large for one module is split by sub-concept (``pool_window``, ``pool_global``), never by commit.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FamilyStyle:
    """How a family's layers are drawn."""

    fill: str
    border: str
    legend: str
    """The legend's caption."""


@dataclass(frozen=True)
class Family:
    key: str
    """What an op's ``family`` says."""
    title: str
    """Section heading in the op reference."""
    style: FamilyStyle
    legend_rank: int
    """Position in the diagram's legend, which follows a network's usual order (convolution, pooling, normalisation,
    activation...) rather than the reference's."""
    modules: tuple[str, ...]
    """Modules of ``archc.ops`` holding the family's ops, one sub-concept each."""


# Colours follow the classic GoogLeNet figure where it has one (convolutions blue, pooling red, the softmax head yellow,
# concatenation green); the other families get their own light fills so black text stays readable.
FAMILIES: tuple[Family, ...] = (
    Family("conv", "Convolution", FamilyStyle("#a9c9f2", "#2a5fa8", "convolution"), 1,
           ("conv", "conv_transpose", "conv_deform")),
    Family("linear", "Fully connected", FamilyStyle("#f5c2df", "#a8437c", "fully connected"), 5, ("linear",)),
    Family("pool", "Pooling and resampling", FamilyStyle("#f4a7a3", "#b3322b", "pooling"), 2,
           ("pool_window", "pool_global", "resample")),
    Family("norm", "Normalisation", FamilyStyle("#d9ccf2", "#6a4fa3", "normalisation"), 3, ("norm",)),
    Family("act", "Activations", FamilyStyle("#ffdcb0", "#c2731d", "activation"), 4, ("activation",)),
    Family("head", "Classifier heads", FamilyStyle("#fbe48f", "#b08d0e", "classifier head (softmax)"), 9, ("head",)),
    Family("merge", "Merges", FamilyStyle("#b7e2a8", "#3f8a2e", "merge (add / concat / mul)"), 6, ("merge",)),
    Family("reg", "Regularisation", FamilyStyle("#e3e8ee", "#6b7785", "regularisation"), 7, ("dropout",)),
    Family("tensor", "Tensor plumbing", FamilyStyle("#e6e6e6", "#777777", "tensor plumbing"), 8,
           ("tensor_shape", "tensor_shuffle", "tensor_pad", "tensor_reduce", "tensor_index", "tensor_state")),
    Family("math", "Arithmetic and matrix products", FamilyStyle("#f0ecc2", "#8a7f2a", "arithmetic (matmul, x * c)"),
           10, ("tensor_math",)),
    Family("attention", "Attention", FamilyStyle("#bfe8ec", "#237f8a", "attention"), 11, ("attention",)),
)
"""In the op reference's order."""

BY_KEY: dict[str, Family] = {f.key: f for f in FAMILIES}


def family_title(key: str) -> str:
    family = BY_KEY.get(key)
    return family.title if family is not None else key
