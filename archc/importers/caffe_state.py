"""The state of a Caffe import: blobs by name (which archc layer last wrote each, its shape), the layers written, and
Caffe's size arithmetic."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from archc.importers.caffe_params import LayerParams
from archc.importers.flat import FlatLayer
from archc.importers.problems import Refusal, SourceProblems, layer_id, window_floor

Shape = tuple[int, ...]


@dataclass
class Blob:
    producer: str  # the archc id whose output this blob currently is
    shape: Shape
    bn: FlatLayer | None = None  # a BatchNorm layer that a Scale on this blob may complete


class CaffeState:
    def __init__(self, path: Path, problems: SourceProblems) -> None:
        self.origin_file = path.name
        self.problems = problems
        self.layers: list[FlatLayer] = []
        self.blobs: dict[str, Blob | None] = {}  # None: produced by a refused layer
        self.taken: set[str] = set()
        self.consumed: set[str] = set()
        self.produced: list[str] = []  # blob names in the order they were last written
        self.inputs: dict[str, list[int]] = {}
        self.notes: list[str] = []

    def add(self, name: str, op: str, params: dict[str, Any], inputs: list[str], line: int, note: str = "") -> str:
        layer = FlatLayer(layer_id(name, self.taken), op, params, inputs, f"{self.origin_file}:{line}", note)
        self.layers.append(layer)
        return layer.id

    def declare_input(self, name: str, dims: list[int], line: int, col: int) -> None:
        if len(dims) < 2 or any(d < 1 for d in dims):
            raise Refusal("E602", f"input {name!r} needs a batch and at least one more positive dimension (found "
                                  f"{dims})", line, col)
        if name in self.blobs:
            raise Refusal("E602", f"input {name!r} is declared twice", line, col)
        self.taken.add(name)
        self.inputs[name] = dims[1:]  # Caffe's first dimension is the batch
        self.blobs[name] = Blob(name, tuple(dims[1:]))
        self.produced.append(name)


class Skipped(Exception):
    """A layer reading a blob of a refused layer: nothing more to say about it."""


def bottom(importer: CaffeState, params: LayerParams, name: str) -> tuple[str, Blob]:
    if name not in importer.blobs:
        raise Refusal("E602", f"layer {params.name!r} reads blob {name!r}, which no layer above produces",
                      *params.where("bottom", name))
    blob = importer.blobs[name]
    if blob is None:
        raise Skipped
    importer.consumed.add(name)
    return name, blob


def set_top(importer: CaffeState, top: str, producer: str, shape: Shape, bn: FlatLayer | None = None) -> None:
    importer.blobs[top] = Blob(producer, shape, bn)
    importer.consumed.discard(top)  # an in-place layer's output is a new value of the blob, not yet read
    if top in importer.produced:
        importer.produced.remove(top)
    importer.produced.append(top)


def pooled(size: int, k: int, s: int, p: int) -> int:
    """Caffe's pooling output length: rounded up, minus a last window that would start in the end padding."""
    out = -(-(size + 2 * p - k) // s) + 1
    if p and (out - 1) * s >= size + p:
        out -= 1
    return out


def conv_out(size: int, k: int, s: int, p: int, d: int) -> int:
    return window_floor(size, k, s, 2 * p, d)
