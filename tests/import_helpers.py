"""Shared by the importer tests: where the import corpus lives, and compiling a FlatGraph as a flat spec (one step per
layer, every input explicit) so that an importer's output is checked by archc itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from archc.compiler import compile_text
from archc.importers.condense import ImportedSpec
from archc.importers.flat import FlatGraph
from archc.passes.pipeline import Compiled

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "import-corpus"


def corpus_file(relative: str) -> Path:
    """A file of the import corpus, or a skip saying the corpus is not next to this checkout."""
    path = CORPUS / relative
    if not path.is_file():
        pytest.skip(f"the import corpus is not at {CORPUS} (it lives beside the repository, never inside it)")
    return path


def flat_id(layer_id: str) -> str:
    """A layer id as a flat spec's step id: a module path's `.` (archc's path separator) as `__`."""
    return layer_id.replace(".", "__")


def flat_spec(graph: FlatGraph) -> dict[str, Any]:
    body: list[dict[str, Any]] = []
    for layer in graph.layers:
        inputs = [flat_id(name) for name in layer.inputs]
        source: Any = inputs[0] if len(inputs) == 1 else inputs
        body.append({layer.op: {"id": flat_id(layer.id), "from": source, **layer.params}})
    return {"name": graph.name, "doc": graph.doc, "inputs": graph.inputs,
            "outputs": [flat_id(name) for name in graph.outputs], "body": body}


def compile_flat(graph: FlatGraph) -> Compiled:
    return compile_text(yaml.safe_dump(flat_spec(graph), sort_keys=False), f"{graph.name}.yaml")


def shapes(compiled: Compiled) -> dict[str, list[int]]:
    """Each layer's output shape by id (batch excluded)."""
    return {node.name: list(node.out_type.shape) for node in compiled.graph.nodes()
            if not node.is_input and node.out_type is not None}


def imported(fmt: str, relative: str, **options: str) -> ImportedSpec:
    """A corpus file through `archc import`'s own path: the importer, block recovery and the spec writer."""
    from archc.importers.run import import_model

    return import_model(fmt, str(corpus_file(relative)), **options).spec


def shapes_by_layer(spec: ImportedSpec) -> dict[str, list[int]]:
    """Each imported layer's output shape by its id in the FlatGraph, looked up at its path in the written spec."""
    by_path = shapes(spec.compiled)
    return {layer_id: by_path[path] for layer_id, path in spec.paths.items() if path in by_path}
