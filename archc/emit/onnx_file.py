"""An ONNX file written in pieces, so that a large model's weights are never in memory twice.

``ModelProto.SerializeToString()`` needs the whole model, weights included, as one protobuf, and then builds the
whole file as one buffer and copies it into a Python ``bytes``: the weights three times over (a 219 MiB model peaked
at 1.46 GiB). Here the weights stay the arrays they are (the PyTorch module's, released by it) and the protobuf holds
only their names, types and dims; the file is written field by field, each large initializer's data straight from its
array. The bytes are exactly those ``SerializeToString()`` gives for the model with its weights filled in: protobuf
writes a message's fields in field-number order, each a tag, for a message a length, then the value, so a message's
encoding is the concatenation of its fields' encodings, and a field's encoding can be produced on its own.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from archc.emit import onnx_export
from archc.emit.onnx_builder import WEIGHTLESS_KEEP_BYTES, OnnxBuilder, describe_tensor, fill_tensor

Piece = bytes | np.ndarray
"""Bytes of the file, or a weight array whose raw (little-endian, contiguous) data comes next in it."""

_GRAPH = onnx.ModelProto.DESCRIPTOR.fields_by_name["graph"]
_INITIALIZER = onnx.GraphProto.DESCRIPTOR.fields_by_name["initializer"]
_RAW_DATA = onnx.TensorProto.DESCRIPTOR.fields_by_name["raw_data"]
_LENGTH_DELIMITED = 2
"""The protobuf wire type of strings, bytes and embedded messages."""


class DeferringBuilder(OnnxBuilder):
    """An :class:`OnnxBuilder` that leaves the data of initializers larger than
    :data:`archc.emit.onnx_builder.WEIGHTLESS_KEEP_BYTES` out of the protobuf and keeps their arrays (by name)."""

    def __init__(self, model: onnx.ModelProto, opset: int) -> None:
        super().__init__(model, opset)
        self.deferred: dict[str, np.ndarray] = {}

    def fill(self, t: onnx.TensorProto, name: str, array: np.ndarray) -> None:
        if np.asarray(array).nbytes <= WEIGHTLESS_KEEP_BYTES:
            fill_tensor(t, name, array)  # shape constants: ONNX's checks read them
            return
        self.deferred[name] = describe_tensor(t, name, array)


@dataclass
class OnnxFile:
    """A model as the pieces of its file: ``head`` (the fields before the graph), the graph's pieces, ``tail``."""

    head: bytes
    graph: list[Piece]
    tail: bytes
    deferred: set[str]
    """The initializers whose data is an array among the pieces."""
    written: Path | None = None
    """Where the file was written, once :meth:`release` dropped the pieces: the bytes are read from there."""

    def __post_init__(self) -> None:
        graph = sum(p.nbytes if isinstance(p, np.ndarray) else len(p) for p in self.graph)
        self.graph_size = graph
        self.size = len(self.head) + len(_tag(_GRAPH)) + len(_varint(graph)) + graph + len(self.tail)
        """The file's size in bytes."""

    def chunks(self) -> Iterator[bytes | memoryview]:
        """The file's bytes in order; an array's data is a view of it, never copied."""
        if self.written is not None:
            yield self.to_bytes()
            return
        yield self.head + _tag(_GRAPH) + _varint(self.graph_size)
        for piece in self.graph:
            yield memoryview(piece).cast("B") if isinstance(piece, np.ndarray) else piece
        yield self.tail

    def to_bytes(self) -> bytes:
        if self.written is not None:
            return self.written.read_bytes()
        out = io.BytesIO()
        for chunk in self.chunks():
            out.write(chunk)
        return out.getvalue()

    def release(self, written: Path) -> None:
        """Drop the pieces (the weights' arrays with them) once the file is being written to ``written``."""
        self.graph, self.head, self.tail, self.written = [], b"", b"", written


def export_file(compiled: Any, state_dict: Any = None, **options: Any) -> tuple[onnx.ModelProto, OnnxFile]:
    """:func:`archc.emit.onnx_export.export_onnx` emitting with a :class:`DeferringBuilder`: the model without the
    data of its large initializers (what the checks read: :func:`archc.emit.onnx_builder.weightless` with
    ``deferred=file.deferred`` declares those as inputs), and the file's pieces."""
    made: list[DeferringBuilder] = []

    def builder(model: onnx.ModelProto, opset: int) -> DeferringBuilder:
        made.append(DeferringBuilder(model, opset))
        return made[-1]

    model = onnx_export.export_onnx(compiled, state_dict, builder=builder, **options)
    return model, split(model, made[0].deferred)


def split(model: onnx.ModelProto, deferred: dict[str, np.ndarray]) -> OnnxFile:
    """``model``'s file as pieces; the initializers named in ``deferred`` get their data from its arrays."""
    head: list[bytes] = []
    tail: list[bytes] = []
    for field, value in model.ListFields():
        if field is not _GRAPH:
            (head if field.number < _GRAPH.number else tail).append(_field_bytes(model, field, value))
    graph: list[Piece] = []
    for field, value in model.graph.ListFields():
        if field is not _INITIALIZER:
            graph.append(_field_bytes(model.graph, field, value))
            continue
        for tensor in value:
            array = deferred.get(tensor.name)
            if array is None:
                graph.append(_element_bytes(model.graph, field, tensor))
                continue
            graph.append(_initializer_head(tensor, array.nbytes))
            graph.append(array)
    return OnnxFile(b"".join(head), graph, b"".join(tail), {t.name for t in model.graph.initializer
                                                            if t.name in deferred})


def _initializer_head(tensor: onnx.TensorProto, nbytes: int) -> bytes:
    """The bytes of an initializer entry up to its raw data: the tensor's fields before ``raw_data`` (its name, type
    and dims) then raw_data's tag and length. ``describe_tensor`` sets no field after raw_data."""
    later = [f.name for f, _ in tensor.ListFields() if f.number > _RAW_DATA.number]
    if later:
        raise ValueError(f"initializer {tensor.name}: fields after raw_data ({', '.join(later)}) cannot be deferred")
    meta = tensor.SerializeToString()
    raw_head = _tag(_RAW_DATA) + _varint(nbytes)
    return _tag(_INITIALIZER) + _varint(len(meta) + len(raw_head) + nbytes) + meta + raw_head


def _field_bytes(message: Any, field: Any, value: Any) -> bytes:
    """The encoding of one field of ``message``, by protobuf itself (the field alone in a message of the type)."""
    if field.type == field.TYPE_MESSAGE and hasattr(value, "extend"):  # a repeated message: element by element
        return b"".join(_element_bytes(message, field, element) for element in value)
    alone = type(message)()
    if hasattr(value, "extend"):
        getattr(alone, field.name).extend(value)
    elif field.type == field.TYPE_MESSAGE:
        getattr(alone, field.name).CopyFrom(value)
    else:
        setattr(alone, field.name, value)
    return alone.SerializeToString()


def _element_bytes(message: Any, field: Any, element: Any) -> bytes:
    alone = type(message)()
    getattr(alone, field.name).add().CopyFrom(element)
    return alone.SerializeToString()


def _tag(field: Any) -> bytes:
    return _varint(field.number << 3 | _LENGTH_DELIMITED)


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)
