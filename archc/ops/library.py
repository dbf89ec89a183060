"""Imports every op module so that each registers its ops exactly once."""

from archc.ops import (
    activation,
    activation_extra,
    conv,
    conv_transpose,
    conv_variants,
    deform_conv,
    dropout_extra,
    embedding,
    linear,
    merge,
    merge_extra,
    norm,
    norm_extra,
    pool,
    pool_extra,
    reduce,
    resample,
    tensor,
    tensor_ops,
)

__all__ = [
    "activation", "activation_extra", "conv", "conv_transpose", "conv_variants", "deform_conv", "dropout_extra",
    "embedding", "linear", "merge", "merge_extra", "norm", "norm_extra", "pool", "pool_extra", "reduce", "resample",
    "tensor", "tensor_ops",
]
