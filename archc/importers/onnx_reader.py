"""`archc import onnx`: an ONNX file as a :class:`FlatGraph` and the weights it carries.

Layer ids are module paths where the file records them: archc's own `archc.layer` node metadata, the state_dict-style
initializer names PyTorch's exporters write (`layer1.0.conv1.weight` names layer `layer1.0.conv1`), or torch.export's
`name_scopes` metadata for layers without weights. Anything else keeps the node's name.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import numpy as np

from archc.errors import UsageError
from archc.importers.flat import FlatGraph, FlatLayer, ImportFailure, source_error, unique_name
from archc.importers.onnx_const import fold
from archc.importers.onnx_nodes import SHAPE_KEY, Unsupported, translate
from archc.importers.onnx_proto import load, to_array
from archc.importers.problems import layer_id
from archc.importers.reading import spec_name
from archc.lower.reserved import is_reserved_module_name

Weights = dict[str, dict[str, np.ndarray]]
"""Layer id -> its tensors by state_dict name (`weight`, `bias`, `running_mean`, ...)."""

_STATE_NAME = re.compile(r"^(?P<path>[A-Za-z_][\w-]*(?:\.[\w-]+)*)\.(?:weight|bias|running_mean|running_var)$")


def load_model(path: Path) -> Any:
    if not path.exists():
        raise UsageError(f"{path}: no such file")
    if path.is_dir():
        raise UsageError(f"{path}: is a directory, not an ONNX file")
    try:
        return load(path)
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except Exception as exc:  # protobuf's DecodeError and friends: any means "not an ONNX file"
        raise ImportFailure([source_error("E602", f"not a readable ONNX model ({type(exc).__name__})",
                                          str(path))]) from None


_FLOAT = np.zeros((), dtype=np.float32)
"""What `CastLike` reads from an activation: only its element type (activations are float32)."""


def _foldable(node: Any, consts: dict[str, np.ndarray]) -> bool:
    data = [name for name in node.input if name]
    if node.op_type == "CastLike":  # the second operand only names a type
        data = data[:1]
    return all(name in consts for name in data)


def _module_path(node: Any, named: set[str]) -> str:
    """The module path the file records for a node, or ''."""
    meta = {p.key: p.value for p in node.metadata_props}
    if meta.get("archc.layer"):
        return meta["archc.layer"]
    for name in node.input[1:]:
        match = _STATE_NAME.match(name) if name in named else None
        if match:
            return match.group("path")
    scopes_text = meta.get("pkg.torch.onnx.name_scopes")
    if scopes_text:
        try:
            scopes = ast.literal_eval(scopes_text)
        except (ValueError, SyntaxError):
            return ""
        if isinstance(scopes, list) and len(scopes) >= 3 and all(isinstance(s, str) for s in scopes):
            return scopes[-2]
    return ""


def path_id(path: str, taken: set[str]) -> str:
    """A module path kept as a layer id (its dots are the spec's scopes); sanitised per component, made unique."""
    parts = [re.sub(r"[\x00-\x1f\x7f/:]", "_", part) or "_" for part in path.split(".")]
    parts = [f"{part}_" if is_reserved_module_name(part) else part for part in parts]
    base = ".".join(parts)
    return unique_name(base, taken)


def _input_shapes(graph: Any, consts: set[str], file: str) -> dict[str, list[int]]:
    shapes: dict[str, list[int]] = {}
    for value in graph.input:
        if value.name in consts:
            continue
        dims = value.type.tensor_type.shape.dim
        sizes = [d.dim_value if d.HasField("dim_value") else 0 for d in dims[1:]]
        if not dims or any(size <= 0 for size in sizes):
            raise ImportFailure([source_error("E601", f"input {value.name!r}: every axis but the batch needs a fixed "
                                                      f"size, found {[d.dim_param or d.dim_value for d in dims]}",
                                              file)])
        shapes[value.name] = sizes
    return shapes


def _reshape_input_shapes(model: Any) -> dict[str, np.ndarray]:
    """The inferred shapes of the values a Reshape reads, when one copies sizes (`0` in its target): ONNX's shape
    inference runs only then (it needs the onnx package)."""
    wanted = {node.input[0] for node in model.graph.node if node.op_type == "Reshape"}
    if not wanted:
        return {}
    import onnx

    inferred = onnx.shape_inference.infer_shapes(onnx.load_from_string(model.SerializeToString()))
    out: dict[str, np.ndarray] = {}
    for value in list(inferred.graph.value_info) + list(inferred.graph.input):
        dims = value.type.tensor_type.shape.dim
        if value.name in wanted and dims and all(d.HasField("dim_value") for d in dims[1:]):
            out[SHAPE_KEY + value.name] = np.array([1] + [d.dim_value for d in dims[1:]], dtype=np.int64)
    return out


def _legacy_scope_path(name: str) -> str:
    """The module path in a TorchScript exporter's node name: `/layer1/layer1.0/conv1/Conv` -> `layer1.0.conv1`."""
    parts = [p for p in name.split("/")[:-1] if p]
    path, previous = "", ""
    for part in parts:  # a Sequential's child is written `parent.index` under `parent`
        step = part[len(previous) + 1:] if previous and part.startswith(previous + ".") else part
        path, previous = (f"{path}.{step}" if path else step), part
    return path


def read_onnx(path: Path, **options: Any) -> tuple[FlatGraph, Weights]:
    """The model in ``path`` as a flat layer list, with each layer's weights (numpy arrays) by layer id."""
    model = load_model(path)
    file = str(path)
    graph = model.graph
    consts: dict[str, np.ndarray] = {t.name: to_array(t) for t in graph.initializer}
    named = set(consts)
    raw_inputs = _input_shapes(graph, named, file)
    taken: set[str] = set()
    value_of: dict[str, str] = {name: layer_id(name, taken) for name in raw_inputs}  # value -> producing layer id
    inputs = {value_of[name]: shape for name, shape in raw_inputs.items()}
    layers: list[FlatLayer] = []
    weights: Weights = {}
    problems = []
    inferred = False
    failed: set[str] = set()  # values of refused nodes: their consumers are not reported again
    for node in graph.node:
        if _foldable(node, consts):
            value = fold(node, [consts.get(name, _FLOAT) for name in node.input if name])
            if value is not None:
                consts[node.output[0]] = value
                if node.op_type == "Identity" and node.input[0] in named:  # a shared initializer, still a weight
                    named.add(node.output[0])
                continue
        where = node.name or (node.output[0] if node.output else node.op_type)
        if not inferred and node.op_type == "Reshape" and len(node.input) > 1 and node.input[1] in consts and \
                0 in consts[node.input[1]].reshape(-1)[1:]:
            consts.update(_reshape_input_shapes(model))  # a target copying input sizes: shapes needed, once
            inferred = True
        if any(name in failed for name in node.input):
            failed.update(node.output)
            continue
        try:
            t = translate(node, consts, named)
            missing = [name for name in t.inputs if name not in value_of]
            if missing:
                raise Unsupported(f"input {missing[0]!r} is not produced by an imported layer")
        except Unsupported as exc:
            problems.append(source_error("E601", f"node {where!r} ({node.op_type}): {exc}", file,
                                         hint="rewrite the model without it, or export it at a lower opset"))
            failed.update(node.output)
            continue
        if t.alias:
            value_of[node.output[0]] = value_of[t.inputs[0]]
            continue
        path_name = _module_path(node, named) or (_legacy_scope_path(where) if where.startswith("/") else "") or where
        lid = path_id(path_name, taken)
        layers.append(FlatLayer(lid, t.op, t.params, [value_of[name] for name in t.inputs], origin=where))
        if t.weights:
            weights[lid] = t.weights
        for op, params in t.then:
            previous, lid = lid, path_id(f"{path_name}_{len(layers)}", taken)
            layers.append(FlatLayer(lid, op, params, [previous], origin=where))
        for out in node.output[:1]:
            value_of[out] = lid
    if problems:
        raise ImportFailure(problems)
    outputs = []
    for value in graph.output:
        if value.name not in value_of or value_of[value.name] in inputs:
            raise ImportFailure([source_error("E601", f"output {value.name!r} is not computed by an imported layer",
                                              file)])
        outputs.append(value_of[value.name])
    name = spec_name(graph.name if re.fullmatch(r"[A-Za-z_]\w*", graph.name or "") and graph.name != "main_graph"
                     else path.stem)
    doc = f"Imported from the ONNX file {path.name} (producer {model.producer_name or 'unknown'}" \
          f"{' ' + model.producer_version if model.producer_version else ''}, opset " \
          f"{max((o.version for o in model.opset_import if o.domain in ('', 'ai.onnx')), default=0)})."
    return FlatGraph(name, doc, inputs, layers, outputs), weights
