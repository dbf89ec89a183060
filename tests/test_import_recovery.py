"""Recovering a short spec from a flat layer list (archc/importers: regions, scopes, blocks, repeats, the writer):
hand-made flat graphs for each construct, and the import corpus's Darknet and Caffe ResNets and DenseNet."""

from __future__ import annotations

from pathlib import Path

import pytest

from archc.compiler import compile_text
from archc.importers.condense import condense
from archc.importers.flat import FlatGraph, FlatLayer

CORPUS = Path(__file__).parents[2] / "shared" / "import-corpus"


def _conv(lid: str, out: int, src: str, s: int = 1) -> list[FlatLayer]:
    return [FlatLayer(lid, "conv", {"out": out, "k": 3, "s": s, "p": 1, "bias": False}, [src]),
            FlatLayer(f"{lid}_bn", "bn", {"eps": 1e-5}, [lid]),
            FlatLayer(f"{lid}_relu", "relu", {}, [f"{lid}_bn"])]


def _graph(layers: list[FlatLayer], outputs: list[str] | None = None) -> FlatGraph:
    return FlatGraph("t", "A test graph.", {"x": [8, 16, 16]}, layers, outputs or [layers[-1].id])


def _flat_params(graph: FlatGraph) -> int:
    text = "name: t\ninputs: {x: [8, 16, 16]}\nbody:\n" + "".join(
        f"  - {layer.op}: {{id: {layer.id}, from: [{', '.join(layer.inputs)}]"
        + "".join(f", {k}: {str(v).lower() if isinstance(v, bool) else v}" for k, v in layer.params.items()) + "}\n"
        for layer in graph.layers)
    return compile_text(text).costs.total.params


def test_identity_residual() -> None:
    layers = _conv("a", 8, "x") + _conv("b", 8, "a_relu") + [FlatLayer("sum", "add", {}, ["b_relu", "x"])]
    graph = _graph(layers)
    spec = condense(graph, "t.cfg", keep_names=False)
    assert "- residual:" in spec.text and "shortcut" not in spec.text and "from:" not in spec.text
    assert spec.compiled.costs.total.params == _flat_params(graph) == 2 * (8 * 8 * 9 + 16)


def test_branches_concat_of_three_paths() -> None:
    layers = _conv("stem", 8, "x") + _conv("p1", 4, "stem_relu") + _conv("p2", 4, "stem_relu") + \
        _conv("p3", 4, "stem_relu") + [FlatLayer("cat", "concat", {"axis": 0}, ["p1_relu", "p2_relu", "p3_relu"])]
    spec = condense(_graph(layers), "t.cfg", keep_names=False)
    assert "- branches:" in spec.text and spec.text.count("          -\n") + spec.text.count("      -\n") >= 3
    out = spec.compiled.graph.node(spec.compiled.graph.outputs["output"]) if "output" in spec.compiled.graph.outputs \
        else spec.compiled.graph.node(next(iter(spec.compiled.graph.outputs.values())))
    assert list(out.out_type.shape) == [12, 16, 16]


def test_dense_concat_is_a_residual_merged_by_concat_and_repeats_become_a_stage() -> None:
    layers: list[FlatLayer] = []
    previous = "x"
    for i in range(4):
        layers += _conv(f"l{i}", 4, previous)
        layers.append(FlatLayer(f"cat{i}", "concat", {}, [previous, f"l{i}_relu"]))
        previous = f"cat{i}"
    graph = _graph(layers)
    spec = condense(graph, "t.cfg", keep_names=False)
    assert "merge: concat" in spec.text and "repeat: 4" in spec.text
    assert spec.compiled.costs.total.params == _flat_params(graph)
    assert len(spec.text.splitlines()) < 20


def test_stage_first_copy_differs_in_stride_and_width() -> None:
    layers = _conv("c0", 16, "x", s=2)
    for i in range(1, 4):
        layers += _conv(f"c{i}", 32, f"c{i - 1}_relu")
    spec = condense(_graph(layers), "t.cfg", keep_names=False)
    assert "repeat: 4" in spec.text and "first: {" in spec.text, spec.text
    assert spec.compiled.costs.total.params == _flat_params(_graph(layers))


def test_module_paths_become_scopes_and_a_named_stage() -> None:
    layers: list[FlatLayer] = []
    previous = "x"
    for i in range(3):
        layers += [FlatLayer(f"layer1.{i}.conv", "conv", {"out": 8, "k": 3, "p": 1}, [previous]),
                   FlatLayer(f"layer1.{i}.relu", "relu", {}, [f"layer1.{i}.conv"])]
        previous = f"layer1.{i}.relu"
    layers.append(FlatLayer("head", "conv", {"out": 2, "k": 1}, [previous]))
    spec = condense(_graph(layers), "m.onnx", keep_names=True)
    assert "stage: {id: layer1, block: " in spec.text and "repeat: 3" in spec.text
    names = {n.name for n in spec.compiled.graph.nodes()}
    assert {"layer1.0.conv", "layer1.2.conv", "head"} <= names
    assert spec.paths["layer1.1.conv"] == "layer1.1.conv"


def test_from_only_where_the_input_is_not_the_previous_step() -> None:
    layers = [FlatLayer("a", "conv", {"out": 8, "k": 1}, ["x"]), FlatLayer("b", "conv", {"out": 8, "k": 1}, ["y"]),
              FlatLayer("sum", "add", {}, ["a", "b"]), FlatLayer("act", "relu", {}, ["sum"])]
    graph = FlatGraph("t", "Two inputs.", {"x": [8, 4, 4], "y": [3, 4, 4]}, layers, ["act"])
    spec = condense(graph, "t.cfg", keep_names=False)
    froms = [line.strip() for line in spec.text.splitlines() if "from:" in line]
    # `y` is quoted: YAML 1.1 reads a bare y as true
    assert froms == ['- conv: {id: b, from: "y", out: 8, k: 1}', "- add: {from: [a, b]}"], spec.text


def _corpus(*parts: str) -> Path:
    path = CORPUS.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"the import corpus is absent ({path})")
    return path


@pytest.mark.parametrize(("fmt", "name", "lines", "repeats"), [
    ("darknet", "resnet50.cfg", 80, 4),
    ("darknet", "densenet201.cfg", 80, 4),
    ("caffe", "ResNet-50-deploy.prototxt", 80, 4),
])
def test_corpus_repeats_recovered(fmt: str, name: str, lines: int, repeats: int) -> None:
    from archc.importers.run import import_model

    path = _corpus(fmt, name)
    imported = import_model(fmt, str(path))
    text = imported.text
    assert len(text.splitlines()) <= lines, text
    assert sum(1 for line in text.splitlines() if "stage:" in line or "repeat:" in line) >= repeats - 1, text
    again = compile_text(text)
    assert again.costs.total.params == imported.spec.compiled.costs.total.params


def _unit(path: str, out: int, k: int, src: str) -> list[FlatLayer]:
    """A conv-bn-relu module at a module path (`0.cv1.conv`...), as Ultralytics' Conv is imported."""
    return [FlatLayer(f"{path}.conv", "conv", {"out": out, "k": k, "s": 1, "p": k // 2, "bias": False}, [src]),
            FlatLayer(f"{path}.bn", "bn", {}, [f"{path}.conv"]),
            FlatLayer(f"{path}.act", "relu", {}, [f"{path}.bn"])]


def test_module_types_name_blocks_whose_references_are_local() -> None:
    layers: list[FlatLayer] = []
    kinds: dict[str, str] = {}
    previous = "x"
    for n, width in enumerate((8, 16)):
        layers += _unit(f"{n}.cv1", width, 1, previous) + [
            FlatLayer(f"{n}.chunk0", "slice", {"axis": 0, "start": 0, "end": width // 2}, [f"{n}.cv1.act"]),
            FlatLayer(f"{n}.chunk1", "slice", {"axis": 0, "start": width // 2, "end": width}, [f"{n}.cv1.act"]),
            FlatLayer(f"{n}.cat", "concat", {}, [f"{n}.chunk1", f"{n}.chunk0"])] + \
            _unit(f"{n}.cv2", width, 3, f"{n}.cat")
        kinds |= {f"{n}": "Split", f"{n}.cv1": "Conv", f"{n}.cv2": "Conv"}
        previous = f"{n}.cv2.act"
    layers += _unit("2.cv1", 4, 3, previous) + _unit("2.cv2", 2, 1, "2.cv1.act")
    kinds |= {"2": "Head", "2.cv1": "Conv", "2.cv2": "Conv"}  # Head once, yet a module of the source's: a block too
    graph = FlatGraph("t", "A test graph.", {"x": [8, 16, 16]}, layers, [layers[-1].id], kinds=kinds)
    spec = condense(graph, "t.yaml", keep_names=True)
    # convs 8x8x1 + 8x8x9, 8x16x1 + 16x16x9, 16x4x9 + 4x2x1 and their batch norms' weights and biases
    assert spec.compiled.costs.total.params == 64 + 576 + 128 + 2304 + 576 + 8 + 2 * (8 + 8 + 16 + 16 + 4 + 2) == 3764
    # `conv` and `split` are an op and a construct: those blocks keep the source's spelling; the padding follows the
    # kernel; a module seen once (Head) is still a block, named after its type
    assert spec.text.split("\nblocks:\n")[1] == """\
  Conv:
    args: {k: int, out: int}
    body:
      - conv: {id: conv, out: $out, k: $k, p: $k // 2, bias: false}
      - bn: {id: bn}
      - relu: {id: act}
  Split:
    args: {out: int}
    body:
      - Conv: {id: cv1, k: 1, out: $out}
      - branches:
          paths:
            -
              - slice: {id: chunk1, start: $out // 2, end: $out}
            -
              - slice: {id: chunk0, end: $out // 2}
      - Conv: {id: cv2, k: 3, out: $out}
  head:
    body:
      - Conv: {id: cv1, k: 3, out: 4}
      - Conv: {id: cv2, k: 1, out: 2}

body:
  - Split: {id: "0", out: 8}
  - Split: {id: "1", out: 16}
  - head: {id: "2"}
"""
    assert spec.paths["1.cv1.conv"] == "1.cv1.conv" and spec.paths["2.cv2.act"] == "2.cv2.act"
