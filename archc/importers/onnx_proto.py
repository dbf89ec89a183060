"""Reading ONNX files without importing the `onnx` package.

`import onnx` loads ml_dtypes and onnx's C++ helpers (most of `archc import onnx`'s CPU time for a ResNet-50); the
importer needs only the protobuf messages, so it loads onnx's generated `onnx_ml_pb2` module alone (it depends on
`google.protobuf` only) and decodes tensors and attributes itself. When `onnx` is already imported (tests, a
program embedding archc) its own module is used. A model with external data goes through `onnx.load`.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

_PB2: ModuleType | None = None

# TensorProto.DataType -> numpy dtype
DTYPES: dict[int, Any] = {1: np.float32, 2: np.uint8, 3: np.int8, 4: np.uint16, 5: np.int16, 6: np.int32,
                          7: np.int64, 9: np.bool_, 10: np.float16, 11: np.float64, 12: np.uint32, 13: np.uint64}


def pb2() -> ModuleType:
    """onnx's generated protobuf module."""
    global _PB2
    if _PB2 is None:
        if "onnx" in sys.modules:
            import onnx

            _PB2 = onnx.onnx_ml_pb2
        else:
            found = importlib.util.find_spec("onnx")
            if found is None or not found.submodule_search_locations:
                raise ModuleNotFoundError("No module named 'onnx'", name="onnx")
            location = Path(next(iter(found.submodule_search_locations))) / "onnx_ml_pb2.py"
            spec = importlib.util.spec_from_file_location("onnx.onnx_ml_pb2", location)
            assert spec is not None and spec.loader is not None  # onnx ships the file
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            _PB2 = module
    return _PB2


def load(path: Path) -> Any:
    """The ModelProto in ``path`` (raises what protobuf raises for a file that is not one)."""
    model = pb2().ModelProto()
    model.ParseFromString(path.read_bytes())
    if any(t.data_location == 1 for t in model.graph.initializer):  # EXTERNAL: onnx resolves the side files
        import onnx

        return onnx.load(str(path))
    return model


def to_array(tensor: Any) -> np.ndarray:
    """A TensorProto's values as a numpy array."""
    dtype = DTYPES.get(tensor.data_type)
    if dtype is None:
        raise ValueError(f"tensor {tensor.name!r}: element type {tensor.data_type} is not supported")
    dims = tuple(tensor.dims)
    if tensor.raw_data:
        return np.frombuffer(tensor.raw_data, dtype=np.dtype(dtype).newbyteorder("<")).astype(dtype).reshape(dims)
    if tensor.data_type in (1,):
        values: Any = tensor.float_data
    elif tensor.data_type == 11:
        values = tensor.double_data
    elif tensor.data_type in (7,):
        values = tensor.int64_data
    elif tensor.data_type == 10:  # float16 stored as its bits in int32_data
        return np.array(tensor.int32_data, dtype=np.uint16).view(np.float16).reshape(dims)
    elif tensor.data_type in (12, 13):
        values = tensor.uint64_data
    else:
        values = tensor.int32_data
    return np.array(values, dtype=dtype).reshape(dims)


def attribute_value(a: Any) -> Any:
    """An AttributeProto's value (FLOAT 1, INT 2, STRING 3, TENSOR 4, FLOATS 6, INTS 7, STRINGS 8)."""
    kind = a.type
    if kind == 1:
        return a.f
    if kind == 2:
        return a.i
    if kind == 3:
        return a.s
    if kind == 4:
        return a.t
    if kind == 6:
        return list(a.floats)
    if kind == 7:
        return list(a.ints)
    if kind == 8:
        return list(a.strings)
    raise ValueError(f"attribute {a.name!r}: type {kind} is not supported")
