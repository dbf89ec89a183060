"""Caffe deploy ``.prototxt`` files in: each ``layer`` becomes the archc layer that computes what Caffe computes.

Blobs are followed by name, so in-place layers (``top`` equal to ``bottom``: ReLU, BatchNorm, Scale) chain as Caffe runs
them; a BatchNorm followed by a Scale on its output is one ``bn`` with Caffe's affine part. Shapes are tracked as Caffe
computes them (pooling rounds up), so a layer Caffe would size differently from PyTorch is refused at its line rather
than imported wrong. Layer names become ids (``.`` replaced, since archc uses it for paths).
"""

from __future__ import annotations

from pathlib import Path

from archc.importers.caffe_layers import TRANSLATIONS
from archc.importers.caffe_params import LayerParams
from archc.importers.caffe_state import CaffeState, Skipped, bottom
from archc.importers.flat import FlatGraph
from archc.importers.problems import Refusal, SourceProblems
from archc.importers.prototxt import Message, Value, parse_prototxt
from archc.importers.reading import read_source_text, spec_name


def read_caffe(path: Path) -> FlatGraph:
    """The layers of a Caffe deploy prototxt (refusals raised together as :class:`ImportFailure`)."""
    text = read_source_text(path)
    net = parse_prototxt(text, str(path))
    problems = SourceProblems(str(path))
    importer = CaffeState(path, problems)
    _net_inputs(importer, net)
    for old in net.all("layers"):
        if isinstance(old, Message):
            problems.unsupported("the V1 `layers { type: CONVOLUTION }` format is not supported", old.line, old.col,
                                 hint="upgrade it with Caffe's upgrade_net_proto_text tool")
    for layer in net.all("layer"):
        if isinstance(layer, Message):
            _translate(importer, layer)
    problems.raise_if_any()
    if not importer.inputs:
        problems.malformed("the net declares no input (`input:` with `input_dim`/`input_shape`, or an Input layer)",
                           1)
        problems.raise_if_any()
    outputs = [importer.blobs[name].producer for name in importer.produced  # type: ignore[union-attr]
               if name not in importer.consumed and name not in importer.inputs]
    name_value = net.field("name")
    title = name_value.value.text if name_value is not None and isinstance(name_value.value, Value) else path.stem
    return FlatGraph(name=spec_name(path.stem), doc=f"Imported from the Caffe prototxt {path.name} (net {title!r}).",
                     inputs=importer.inputs, layers=importer.layers, outputs=outputs, notes=importer.notes)


def _net_inputs(importer: CaffeState, net: Message) -> None:
    """The old-style net inputs: ``input: "data"`` with four ``input_dim`` or an ``input_shape`` per input."""
    names = [f for f in net.fields if f.name == "input"]
    dims = [f for f in net.fields if f.name == "input_dim"]
    shapes = [f for f in net.fields if f.name == "input_shape"]
    try:
        if dims and shapes:
            raise Refusal("E602", "give input_dim or input_shape, not both", dims[0].line, dims[0].col)
        if dims and len(dims) != 4 * len(names):
            raise Refusal("E602", f"{len(names)} input(s) need {4 * len(names)} input_dim values; found {len(dims)}",
                          dims[0].line, dims[0].col)
        if shapes and len(shapes) != len(names):
            raise Refusal("E602", f"{len(names)} input(s) need as many input_shape; found {len(shapes)}",
                          shapes[0].line, shapes[0].col)
        if names and not dims and not shapes:
            raise Refusal("E602", "`input:` needs its dimensions (input_dim or input_shape)", names[0].line,
                          names[0].col)
        for i, name_field in enumerate(names):
            name = LayerParams.text_of(name_field)
            if dims:
                values = [LayerParams.int_of(f) for f in dims[4 * i:4 * i + 4]]
            else:
                shape = shapes[i].value
                values = [LayerParams.int_value(v) for v in shape.all("dim")] if isinstance(shape, Message) else []
            importer.declare_input(name, values, name_field.line, name_field.col)
    except Refusal as refusal:
        importer.problems.error(refusal.code, refusal.message, refusal.line, refusal.col)


def _translate(importer: CaffeState, layer: Message) -> None:
    params = LayerParams(layer)
    tops: list[str] = []
    try:
        tops = params.strings("top")
        kind = params.text("type")
        if params.excluded_from_test():
            importer.notes.append(f"layer {params.name!r} (line {layer.line}) runs only in training: left out")
            return
        translation = TRANSLATIONS.get(kind)
        if translation is None:
            raise Refusal("E601", f"Caffe layer type {kind!r} is not supported", *params.where("type"))
        bottoms = [bottom(importer, params, name) for name in params.strings("bottom")]
        translation(importer, params, bottoms, tops)
        return
    except Refusal as refusal:
        importer.problems.error(refusal.code, refusal.message, refusal.line, refusal.col)
    except Skipped:
        pass
    for top in tops:
        importer.blobs[top] = None


