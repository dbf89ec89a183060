"""Constant folding for ONNX import: the nodes whose inputs are all constants (initializers, `Constant` nodes, the
shapes of initializers) are computed here, so that exporters' shape plumbing (a zero bias built by `Expand`, a
flatten's target shape built by `Concat`) reaches the layer translation as plain numbers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from archc.importers.onnx_proto import DTYPES, attribute_value, to_array


def attrs(node: Any) -> dict[str, Any]:
    return {a.name: attribute_value(a) for a in node.attribute}


def _constant(node: Any, _: list[np.ndarray]) -> np.ndarray:
    for a in node.attribute:
        if a.name == "value":
            return to_array(a.t)
        if a.name in ("value_ints", "value_floats"):
            dtype = np.int64 if a.name == "value_ints" else np.float32
            return np.array(attribute_value(a), dtype=dtype)
        if a.name == "value_int":
            return np.array(a.i, dtype=np.int64)
        if a.name == "value_float":
            return np.array(a.f, dtype=np.float32)
    raise ValueError("a Constant node without a value")


def _shape(node: Any, args: list[np.ndarray]) -> np.ndarray:
    a = attrs(node)
    dims = args[0].shape
    return np.array(dims[a.get("start", 0):a.get("end", len(dims))], dtype=np.int64)


def _reshape(node: Any, args: list[np.ndarray]) -> np.ndarray:
    shape = [int(v) for v in args[1]]
    shape = [args[0].shape[i] if v == 0 and not attrs(node).get("allowzero", 0) else v for i, v in enumerate(shape)]
    return args[0].reshape(shape)


def _axes(node: Any, args: list[np.ndarray]) -> list[int]:
    return [int(v) for v in (args[1] if len(args) > 1 else attrs(node).get("axes", []))]


def _unsqueeze(node: Any, args: list[np.ndarray]) -> np.ndarray:
    out = args[0]
    rank = out.ndim + len(_axes(node, args))
    for axis in sorted(a % rank for a in _axes(node, args)):
        out = np.expand_dims(out, axis)
    return out


def _squeeze(node: Any, args: list[np.ndarray]) -> np.ndarray:
    axes = _axes(node, args)
    return np.squeeze(args[0], axis=tuple(axes)) if axes else np.squeeze(args[0])


def _cast(node: Any, args: list[np.ndarray]) -> np.ndarray:
    return args[0].astype(DTYPES[attrs(node)["to"]])


FOLDERS: dict[str, Callable[[Any, list[np.ndarray]], np.ndarray]] = {
    "Constant": _constant,
    "Shape": _shape,
    "Identity": lambda n, a: a[0],
    "Expand": lambda n, a: np.broadcast_to(a[0], np.broadcast_shapes(a[0].shape, tuple(int(v) for v in a[1]))).copy(),
    "CastLike": lambda n, a: a[0].astype(a[1].dtype),
    "Cast": _cast,
    "Concat": lambda n, a: np.concatenate(a, axis=attrs(n)["axis"]),
    "Reshape": _reshape,
    "Unsqueeze": _unsqueeze,
    "Squeeze": _squeeze,
    "Gather": lambda n, a: np.take(a[0], a[1], axis=attrs(n).get("axis", 0)),
    "Transpose": lambda n, a: np.transpose(a[0], attrs(n).get("perm")),
    "Add": lambda n, a: a[0] + a[1],
    "Sub": lambda n, a: a[0] - a[1],
    "Mul": lambda n, a: a[0] * a[1],
    "Div": lambda n, a: a[0] / a[1] if a[0].dtype.kind == "f" else a[0] // a[1],
    "Sqrt": lambda n, a: np.sqrt(a[0]),
    "Neg": lambda n, a: -a[0],
    "Range": lambda n, a: np.arange(a[0], a[1], a[2]),
    "ConstantOfShape": lambda n, a: np.full([int(v) for v in a[0]], to_array(attrs(n)["value"]).reshape(-1)[0]
                                            if "value" in attrs(n) else np.float32(0)),
}


def fold(node: Any, args: list[np.ndarray]) -> np.ndarray | None:
    """The node's single output computed from constant inputs, or None when it is not a foldable node."""
    folder = FOLDERS.get(node.op_type)
    if folder is None or len(node.output) != 1:
        return None
    try:
        return np.asarray(folder(node, args))
    except (ValueError, IndexError, KeyError, TypeError):
        return None
