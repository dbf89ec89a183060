"""The data every importer produces: a flat list of archc layers with explicit inputs and their origin in the source.

A :class:`FlatGraph` is already in archc's vocabulary (op names and fields as a spec writes them), so the writer that
turns it into YAML, and the pass that recovers blocks, stages and residuals from it, know nothing of the source format.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from archc.errors import Diagnostic, Pos, SpecError


@dataclass
class FlatLayer:
    """One layer: ``op`` and ``params`` as a spec would write them (without ``id``/``from``), its inputs by id.

    ``origin`` says where it came from (``file:line`` of a cfg/prototxt/YAML, or an ONNX node's name) for comments and
    errors; ``note`` is a remark the writer keeps as a comment beside the layer (what could not be carried over).
    """

    id: str
    op: str
    params: dict[str, Any] = field(default_factory=dict)
    inputs: list[str] = field(default_factory=list)
    origin: str = ""
    note: str = ""


@dataclass
class FlatGraph:
    """A whole imported model: named inputs with their shapes (channels first, batch implicit), layers in a
    topological order, output layer ids, and notes for the spec's header (what could not be recovered)."""

    name: str
    doc: str
    inputs: dict[str, list[int]]
    layers: list[FlatLayer]
    outputs: list[str]
    params: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    kinds: dict[str, str] = field(default_factory=dict)
    """Module path -> the source's module type (``2`` -> ``C2f``, ``2.m.0`` -> ``Bottleneck``): names the blocks
    recovered from those scopes, as the source names them."""

    def layer(self, layer_id: str) -> FlatLayer:
        for candidate in self.layers:
            if candidate.id == layer_id:
                return candidate
        raise KeyError(layer_id)


class ImportFailure(SpecError):
    """A source the importer cannot turn into a spec: one located diagnostic per unsupported construct (exit 1)."""


def source_error(code: str, message: str, file: str, line: int = 1, col: int = 1, hint: str = "") -> Diagnostic:
    """A diagnostic located in the imported source (a cfg/prototxt/YAML line; line 1 and the node named for ONNX)."""
    return Diagnostic(code=code, message=message, file=file, pos=Pos(line, col), hint=hint)


def unique_name(base: str, taken: set[str], separator: str = "_") -> str:
    """``base``, or ``base`` and the first free number (``conv_2``, ``conv_3``...) if taken; added to ``taken``."""
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        candidate = f"{base}{separator}{n}"
    taken.add(candidate)
    return candidate
