"""The Caffe importer: each layer type on small prototxt files written here, each refusal at its file:line:col, and the
corpus networks (ResNet-50, AlexNet, GoogLeNet) against their published figures and archc's own zoo specs."""

from __future__ import annotations

import textwrap
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from archc.compiler import compile_file
from archc.importers.caffe import read_caffe
from archc.importers.flat import FlatGraph, ImportFailure
from archc.passes.pipeline import Compiled
from tests.import_helpers import compile_flat, corpus_file, imported, shapes, shapes_by_layer

SPECS = Path(__file__).resolve().parents[1] / "specs"
HEADER = 'name: "t"\ninput: "data"\ninput_dim: 1\ninput_dim: {c}\ninput_dim: {h}\ninput_dim: {w}\n'


def prototxt(tmp_path: Path, body: str, c: int = 3, h: int = 8, w: int = 8) -> Path:
    path = tmp_path / "net.prototxt"
    path.write_text(HEADER.format(c=c, h=h, w=w) + textwrap.dedent(body))
    return path


def ops(graph: FlatGraph) -> list[tuple[str, str, dict[str, Any], list[str]]]:
    return [(layer.id, layer.op, layer.params, layer.inputs) for layer in graph.layers]


def refusal(path: Path) -> list[str]:
    with pytest.raises(ImportFailure) as info:
        read_caffe(path)
    return [d.format() for d in info.value.diagnostics]


def test_convolution_relu_in_place(tmp_path: Path) -> None:
    path = prototxt(tmp_path, """
        layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
          convolution_param { num_output: 16 kernel_size: 3 stride: 2 pad: 1 group: 1 } }
        layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
        layer { name: "conv2" type: "Convolution" bottom: "conv1" top: "conv2"
          convolution_param { num_output: 8 kernel_h: 3 kernel_w: 1 pad_h: 1 group: 2 bias_term: false } }
    """)
    graph = read_caffe(path)
    assert graph.inputs == {"data": [3, 8, 8]}
    assert ops(graph) == [
        ("conv1", "conv", {"out": 16, "k": 3, "s": 2, "p": 1}, ["data"]),
        ("relu1", "relu", {}, ["conv1"]),
        ("conv2", "conv", {"out": 8, "k": [3, 1], "p": [1, 0], "groups": 2, "bias": False}, ["relu1"]),
    ]
    assert graph.outputs == ["conv2"]
    assert graph.layers[0].origin == "net.prototxt:8"
    compiled = compile_flat(graph)
    assert shapes(compiled)["conv2"] == [8, 4, 4]
    assert compiled.costs.total.params == (3 * 9 * 16 + 16) + 8 * 3 * 1 * 8


def test_batchnorm_and_scale_become_one_affine_bn(tmp_path: Path) -> None:
    path = prototxt(tmp_path, """
        layer { name: "bn" type: "BatchNorm" bottom: "data" top: "data" batch_norm_param { eps: 0.001 } }
        layer { name: "scale" type: "Scale" bottom: "data" top: "data" scale_param { bias_term: true } }
        layer { name: "bn2" type: "BatchNorm" bottom: "data" top: "x" }
        layer { name: "scale2" type: "Scale" bottom: "x" top: "x" }
        layer { name: "scale3" type: "Scale" bottom: "x" top: "y" scale_param { bias_term: true } }
    """)
    graph = read_caffe(path)
    assert ops(graph) == [
        ("bn", "bn", {"eps": 0.001}, ["data"]),
        ("bn2", "bn", {"affine": False}, ["bn"]),
        ("scale2", "scale", {"bias": False}, ["bn2"]),  # no shift: not PyTorch's affine batch norm
        ("scale3", "scale", {}, ["scale2"]),
    ]
    assert graph.notes == ["each Caffe BatchNorm layer followed by a Scale layer with a bias is one `bn`: the Scale's "
                           "scale and shift are PyTorch's affine batch norm"]
    assert compile_flat(graph).costs.total.params == 2 * 3 + 0 + 3 + 2 * 3


def test_pooling_rounds_up_as_caffe_does(tmp_path: Path) -> None:
    path = prototxt(tmp_path, """
        layer { name: "pool1" type: "Pooling" bottom: "data" top: "pool1"
          pooling_param { pool: MAX kernel_size: 3 stride: 2 } }
        layer { name: "pool2" type: "Pooling" bottom: "pool1" top: "pool2"
          pooling_param { pool: AVE kernel_size: 2 stride: 1 pad: 1 } }
        layer { name: "pool3" type: "Pooling" bottom: "pool2" top: "pool3"
          pooling_param { pool: AVE global_pooling: true } }
        layer { name: "pool4" type: "Pooling" bottom: "data" top: "pool4" pooling_param { kernel_size: 2 } }
    """, h=8, w=8)
    graph = read_caffe(path)
    assert ops(graph) == [
        ("pool1", "maxpool", {"k": 3, "s": 2, "ceil_mode": True}, ["data"]),  # 8 -> ceil(5 / 2) + 1 = 4
        ("pool2", "avgpool", {"k": 2, "s": 1, "p": 1}, ["pool1"]),
        ("pool3", "global_avgpool", {}, ["pool2"]),
        ("pool4", "maxpool", {"k": 2, "s": 1}, ["data"]),  # Caffe's stride defaults to 1
    ]
    found = shapes(compile_flat(graph))
    assert (found["pool1"], found["pool2"], found["pool3"], found["pool4"]) == ([3, 4, 4], [3, 5, 5], [3, 1, 1],
                                                                               [3, 7, 7])
    assert graph.outputs == ["pool3", "pool4"]


def _caffe_pool(x: list[list[float]], kind: str, k: int, s: int, p: int) -> list[list[float]]:
    """Forward_cpu of Caffe's pooling_layer.cpp on one channel (square window)."""
    n = len(x)
    out_n = -(-(n + 2 * p - k) // s) + 1
    if p and (out_n - 1) * s >= n + p:
        out_n -= 1
    out = []
    for ph in range(out_n):
        row = []
        for pw in range(out_n):
            hs, ws = ph * s - p, pw * s - p
            he, we = min(hs + k, n + p), min(ws + k, n + p)
            size = (he - hs) * (we - ws)
            hs, ws, he, we = max(hs, 0), max(ws, 0), min(he, n), min(we, n)
            values = [x[i][j] for i in range(hs, he) for j in range(ws, we)]
            row.append(max(values) if kind == "MAX" else sum(values) / size)
        out.append(row)
    return out


@pytest.mark.parametrize(("kind", "k", "s", "p", "side"), [
    ("MAX", 3, 2, 0, 8), ("AVE", 3, 2, 0, 8), ("AVE", 2, 2, 1, 7), ("MAX", 3, 2, 1, 6), ("AVE", 3, 2, 1, 6),
    ("AVE", 3, 3, 1, 8)])
def test_pooling_values_equal_caffes(tmp_path: Path, kind: str, k: int, s: int, p: int, side: int) -> None:
    torch = pytest.importorskip("torch")
    from archc.emit.torch_module import build_module

    path = prototxt(tmp_path, f"""
        layer {{ name: "pool" type: "Pooling" bottom: "data" top: "pool"
          pooling_param {{ pool: {kind} kernel_size: {k} stride: {s} pad: {p} }} }}
    """, c=1, h=side, w=side)
    module = build_module(compile_flat(read_caffe(path))).eval()
    x = torch.rand(1, 1, side, side) - 2  # all negative: a padded zero would win a max
    expected = torch.tensor(_caffe_pool(x[0, 0].tolist(), kind, k, s, p))
    assert torch.allclose(module(x)[0, 0], expected, atol=1e-6)


def test_lrn_eltwise_concat(tmp_path: Path) -> None:
    path = prototxt(tmp_path, """
        layer { name: "a" type: "Convolution" bottom: "data" top: "a"
          convolution_param { num_output: 4 kernel_size: 1 } }
        layer { name: "norm" type: "LRN" bottom: "a" top: "norm" lrn_param { local_size: 3 alpha: 0.0001 beta: 0.75 } }
        layer { name: "sum" type: "Eltwise" bottom: "a" bottom: "norm" top: "sum" }
        layer { name: "prod" type: "Eltwise" bottom: "sum" bottom: "a" top: "prod" eltwise_param { operation: PROD } }
        layer { name: "diff" type: "Eltwise" bottom: "prod" bottom: "a" top: "diff"
          eltwise_param { coeff: 1 coeff: -1 } }
        layer { name: "cat" type: "Concat" bottom: "diff" bottom: "data" top: "cat" }
        layer { name: "max" type: "Eltwise" bottom: "a" bottom: "norm" top: "max" eltwise_param { operation: MAX } }
    """)
    graph = read_caffe(path)
    assert ops(graph)[1:] == [
        ("norm", "lrn", {"size": 3, "alpha": 0.0001, "beta": 0.75, "k": 1.0}, ["a"]),
        ("sum", "add", {}, ["a", "norm"]),
        ("prod", "mul", {}, ["sum", "a"]),
        ("diff", "sub", {}, ["prod", "a"]),
        ("cat", "concat", {}, ["diff", "data"]),
        ("max", "maximum", {}, ["a", "norm"]),
    ]
    assert shapes(compile_flat(graph))["cat"] == [7, 8, 8]


def test_classifier_tail_and_names(tmp_path: Path) -> None:
    path = prototxt(tmp_path, """
        layer { name: "inception_3a/pool.proj" type: "Pooling" bottom: "data" top: "p"
          pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
        layer { name: "fc6" type: "InnerProduct" bottom: "p" top: "fc6" inner_product_param { num_output: 10 } }
        layer { name: "drop6" type: "Dropout" bottom: "fc6" top: "fc6" dropout_param { dropout_ratio: 0.4 } }
        layer { name: "fc7" type: "InnerProduct" bottom: "fc6" top: "fc7"
          inner_product_param { num_output: 5 bias_term: false } }
        layer { name: "prob" type: "Softmax" bottom: "fc7" top: "prob" }
    """, h=4, w=4)
    graph = read_caffe(path)
    assert ops(graph) == [
        ("inception_3a/pool_proj", "maxpool", {"k": 2}, ["data"]),  # `.` separates archc's layer paths
        ("fc6_flatten", "flatten", {}, ["inception_3a/pool_proj"]),
        ("fc6", "linear", {"out": 10}, ["fc6_flatten"]),
        ("drop6", "dropout", {"p": 0.4}, ["fc6"]),
        ("fc7", "linear", {"out": 5, "bias": False}, ["drop6"]),
        ("prob", "softmax", {}, ["fc7"]),
    ]
    compiled = compile_flat(graph)
    assert compiled.costs.total.params == 12 * 10 + 10 + 10 * 5


def test_input_layer_split_and_activations(tmp_path: Path) -> None:
    path = tmp_path / "net.prototxt"
    path.write_text(textwrap.dedent("""
        layer { name: "data" type: "Input" top: "data" input_param { shape: { dim: 10 dim: 2 dim: 5 dim: 5 } } }
        layer { name: "split" type: "Split" bottom: "data" top: "s1" top: "s2" }
        layer { name: "sig" type: "Sigmoid" bottom: "s1" top: "sig" }
        layer { name: "tanh" type: "TanH" bottom: "s2" top: "tanh" }
        layer { name: "prelu" type: "PReLU" bottom: "tanh" top: "prelu" prelu_param { channel_shared: true } }
        layer { name: "leaky" type: "ReLU" bottom: "sig" top: "leaky" relu_param { negative_slope: 0.2 } }
        layer { name: "flat" type: "Flatten" bottom: "leaky" top: "flat" }
    """))
    graph = read_caffe(path)
    assert graph.inputs == {"data": [2, 5, 5]}
    assert ops(graph) == [
        ("sig", "sigmoid", {}, ["data"]),
        ("tanh", "tanh", {}, ["data"]),
        ("prelu", "prelu", {"shared": True}, ["tanh"]),
        ("leaky", "leaky_relu", {"slope": 0.2}, ["sig"]),
        ("flat", "flatten", {}, ["leaky"]),
    ]
    assert graph.outputs == ["prelu", "flat"]
    assert shapes(compile_flat(graph))["flat"] == [50]


def test_deconvolution_dilation_and_axes(tmp_path: Path) -> None:
    path = prototxt(tmp_path, """
        layer { name: "up" type: "Deconvolution" bottom: "data" top: "up"
          convolution_param { num_output: 4 kernel_size: 4 stride: 2 pad: 1 bias_term: false } }
        layer { name: "dil" type: "Convolution" bottom: "up" top: "dil"
          convolution_param { num_output: 4 kernel_size: 3 dilation: 2 pad: 2 } }
        layer { name: "rows" type: "Concat" bottom: "dil" bottom: "up" top: "rows" concat_param { axis: 2 } }
        layer { name: "sm" type: "Softmax" bottom: "rows" top: "sm" softmax_param { axis: -1 } }
    """)
    graph = read_caffe(path)
    assert ops(graph) == [
        ("up", "conv_transpose", {"out": 4, "k": 4, "s": 2, "p": 1, "bias": False}, ["data"]),
        ("dil", "conv", {"out": 4, "k": 3, "p": 2, "d": 2}, ["up"]),
        ("rows", "concat", {"axis": 1}, ["dil", "up"]),
        ("sm", "softmax", {"axis": 2}, ["rows"]),
    ]
    assert shapes(compile_flat(graph))["sm"] == [4, 32, 16]


def test_training_only_layers_are_left_out(tmp_path: Path) -> None:
    path = prototxt(tmp_path, """
        layer { name: "loss" type: "SoftmaxWithLoss" bottom: "data" top: "loss" include { phase: TRAIN } }
        layer { name: "relu" type: "ReLU" bottom: "data" top: "out" }
    """)
    graph = read_caffe(path)
    assert [layer.id for layer in graph.layers] == ["relu"]
    assert graph.notes == ["layer 'loss' (line 8) runs only in training: left out"]


def test_refusals_are_located(tmp_path: Path) -> None:
    path = prototxt(tmp_path, """
        layer { name: "a" type: "Reorg" bottom: "data" top: "a" }
        layer { name: "b" type: "Eltwise" bottom: "data" bottom: "data" top: "b" eltwise_param { coeff: 2 coeff: 2 } }
        layer { name: "c" type: "LRN" bottom: "data" top: "c" lrn_param { norm_region: WITHIN_CHANNEL } }
        layer { name: "d" type: "Pooling" bottom: "data" top: "d" pooling_param { pool: STOCHASTIC kernel_size: 2 } }
        layer { name: "e" type: "ReLU" bottom: "nothing" top: "e" }
        layer { name: "f" type: "Convolution" bottom: "data" top: "f" convolution_param { kernel_size: 3 } }
        layer { name: "g" type: "ReLU" bottom: "a" top: "g" }
        layer { name: "h" type: "Concat" bottom: "data" bottom: "d2" top: "h" }
    """)
    assert refusal(path) == [
        f"{path}:8:25: E601: Caffe layer type 'Reorg' is not supported",
        f"{path}:9:97: E601: eltwise_param.coeff [2.0, 2.0] (a weighted sum) is not supported",
        f"{path}:10:80: E601: lrn_param.norm_region: WITHIN_CHANNEL is not supported (supported: ACROSS_CHANNELS)",
        f"{path}:11:81: E601: pooling_param.pool: STOCHASTIC is not supported (supported: MAX, AVE)",
        f"{path}:12:40: E602: layer 'e' reads blob 'nothing', which no layer above produces",
        f"{path}:13:63: E602: layer 'f' needs a positive convolution_param.num_output",
        f"{path}:15:57: E602: layer 'h' reads blob 'd2', which no layer above produces",
    ]


def test_syntax_errors_are_located(tmp_path: Path) -> None:
    path = prototxt(tmp_path, 'layer {\n  name: "a"\n  type: "ReLU" bottom: "data" top: "a"\n')
    assert refusal(path) == [f"{path}:7:7: E602: '{{' opened here is never closed"]
    path = prototxt(tmp_path, 'layer { name: "a" type: "ReLU" bottom: "data" top: "a" } }\n')
    assert refusal(path) == [f"{path}:7:58: E602: expected a field name, found '}}'"]
    path = prototxt(tmp_path, 'layer { name: "a" type: "ReLU" bottom: "data" top: "a" convolution_param: [1, {] }\n')
    assert refusal(path) == [f"{path}:7:79: E602: expected a value in the list of 'convolution_param', found '{{'"]
    path = tmp_path / "old.prototxt"
    path.write_text('input: "data"\ninput_dim: 1\ninput_dim: 3\ninput_dim: 4\ninput_dim: 4\n'
                    'layers { name: "c" type: CONVOLUTION bottom: "data" top: "c" }\n')
    assert refusal(path) == [f"{path}:6:1: E601: the V1 `layers {{ type: CONVOLUTION }}` format is not supported"]
    path.write_text('input: "data"\ninput_dim: 1\ninput_dim: 3\n')
    assert refusal(path) == [f"{path}:2:1: E602: 1 input(s) need 4 input_dim values; found 2"]


def test_pooling_caffe_and_pytorch_disagree(tmp_path: Path) -> None:
    # window 1 stride 3 on 5: Caffe's ceil gives windows at 0, 3 and 6 (past the end); PyTorch's rule drops the last
    path = prototxt(tmp_path, """
        layer { name: "p" type: "Pooling" bottom: "data" top: "p" pooling_param { kernel_size: 1 stride: 3 } }
    """, h=5, w=5)
    assert refusal(path) == [f"{path}:8:1: E601: layer 'p': Caffe's rounding gives a last window outside the input "
                             "that PyTorch's ceil mode drops"]


# --- the corpus ---------------------------------------------------------------------------------------------------


def test_resnet50() -> None:
    graph = read_caffe(corpus_file("caffe/ResNet-50-deploy.prototxt"))
    spec = imported("caffe", "caffe/ResNet-50-deploy.prototxt")
    compiled = spec.compiled
    # torchvision's 25,557,032 plus conv1's 64 biases: the prototxt leaves conv1's bias_term at Caffe's default
    # (true) and sets it false on the 52 other convolutions
    assert graph.layer("conv1").params == {"out": 64, "k": 7, "s": 2, "p": 3}
    assert compiled.costs.total.params == 25_557_032 + 64
    assert compiled.costs.total.macs == 3_857_973_248  # ResNet v1: the stride on the first 1x1 convolution
    assert graph.layer("res2a_branch2a").params == {"out": 64, "k": 1, "bias": False}
    assert graph.layer("res3a_branch2a").params == {"out": 128, "k": 1, "s": 2, "bias": False}
    assert graph.outputs == ["prob"]
    assert shapes_by_layer(spec)["prob"] == [1000]


def test_resnet50_import_is_short_with_its_stages() -> None:
    spec = imported("caffe", "caffe/ResNet-50-deploy.prototxt")
    assert len(spec.text.splitlines()) <= 80  # from 2,320 lines of prototxt
    assert "- stage: {" in spec.text
    found = Counter(node.name.split(".")[0] for node in spec.compiled.graph.nodes() if node.op == "add")
    assert list(found.values()) == [3, 4, 6, 3]  # the residual adds of each stage


def test_alexnet_is_the_zoo_spec() -> None:
    compiled = imported("caffe", "caffe/bvlc_alexnet-deploy.prototxt").compiled
    assert compiled.costs.total.params == 60_965_224
    assert _layers(compiled) == _layers(compile_file(SPECS / "alexnet_original.yaml"))


def test_googlenet_is_the_paper_spec() -> None:
    compiled = imported("caffe", "caffe/bvlc_googlenet-deploy.prototxt").compiled
    assert compiled.costs.total.params == 6_998_552
    reference = compile_file(SPECS / "googlenet_paper.yaml")
    assert _layers(compiled) == _layers(reference)
    assert compiled.costs.total.macs == reference.costs.total.macs


def _layers(compiled: Compiled) -> list[tuple[str, list[int], int]]:
    """(op, output shape, params) of every layer that computes something, in order."""
    return [(node.op, list(node.out_type.shape), node.meta["cost"].params) for node in compiled.graph.nodes()
            if not node.is_input and node.op not in ("relu", "dropout", "flatten", "softmax")]
