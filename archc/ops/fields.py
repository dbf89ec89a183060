"""Field types shared by op parameter models, each with bounds and a description for the JSON Schema."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

MAX_DIM = 1_000_000
MAX_RANK = 5
"""Most axes a tensor has, batch excluded: a parameter listing axes has at most this many entries."""
FLOAT32_MAX = 3.4028234663852886e38
"""Largest finite float32: every float parameter is emitted into float32 tensors and ONNX float attributes."""

Channels = Annotated[int, Field(ge=1, le=MAX_DIM, description="Number of output channels or features.")]
Size = Annotated[int, Field(ge=1, le=MAX_DIM)]
NonNeg = Annotated[int, Field(ge=0, le=MAX_DIM)]
SizeOrList = Annotated[Size | list[Size], Field(description="One value for every spatial dimension, or one each.")]
NonNegOrList = Annotated[NonNeg | list[NonNeg],
                         Field(description="One value for every spatial dimension, or one each.")]
Padding = Annotated[
    NonNeg | list[NonNeg] | Literal["same", "same_upper", "valid"],
    Field(description="Zero padding: an int, one int per spatial dimension, `same` (stride 1), `same_upper` "
                      "(TensorFlow SAME: output ceil(input / stride), the odd pixel bottom/right) or `valid`."),
]
Axis = Annotated[int, Field(ge=-5, le=4, description="Axis without the batch: 0 is channels, -1 the last axis.")]
# every float field is one of these: finite and within float32's range (``inf`` would reach model.py as a bare name)
Float32 = Annotated[float, Field(allow_inf_nan=False, ge=-FLOAT32_MAX, le=FLOAT32_MAX)]
Probability = Annotated[float, Field(allow_inf_nan=False, ge=0.0, le=1.0)]
Positive = Annotated[float, Field(allow_inf_nan=False, gt=0.0, le=FLOAT32_MAX)]


def torch_dim(axis: int) -> int:
    """A spec axis (batch excluded) as a PyTorch dim (batch included)."""
    return axis + 1 if axis >= 0 else axis
