"""The Darknet importer: each section kind on small cfg files written here, each refusal at its file:line:col, and the
corpus networks (yolov3, yolov3-tiny, resnet50, densenet201) against darknet's own figures."""

from __future__ import annotations

import textwrap
from collections import Counter
from pathlib import Path

import pytest

from archc.compiler import compile_text
from archc.importers.darknet import read_darknet
from archc.importers.flat import FlatGraph, ImportFailure
from tests.import_helpers import compile_flat, corpus_file, imported, shapes, shapes_by_layer

NET = "[net]\nwidth={w}\nheight={h}\nchannels={c}\n"


def cfg(tmp_path: Path, body: str, w: int = 8, h: int = 8, c: int = 3, name: str = "net.cfg") -> Path:
    path = tmp_path / name
    path.write_text(NET.format(w=w, h=h, c=c) + textwrap.dedent(body))
    return path


def refusal(path: Path) -> list[str]:
    with pytest.raises(ImportFailure) as info:
        read_darknet(path)
    return [d.format() for d in info.value.diagnostics]


def ops(graph: FlatGraph) -> list[tuple[str, str, dict[str, object], list[str]]]:
    return [(layer.id, layer.op, layer.params, layer.inputs) for layer in graph.layers]


# --- constructs ---------------------------------------------------------------------------------------------------


def test_convolutional_with_batch_norm_and_leaky(tmp_path: Path) -> None:
    path = cfg(tmp_path, """
        [convolutional]
        batch_normalize=1
        filters=16
        size=3
        stride=2
        pad=1
        activation=leaky
    """)
    graph = read_darknet(path)
    assert graph.inputs == {"image": [3, 8, 8]}
    assert ops(graph) == [
        ("conv0", "conv", {"out": 16, "k": 3, "s": 2, "p": 1, "bias": False}, ["image"]),
        ("bn0", "bn", {"momentum": 0.01}, ["conv0"]),
        ("leaky0", "leaky_relu", {"slope": 0.1}, ["bn0"]),
    ]
    assert graph.layers[0].origin == "net.cfg:6"
    compiled = compile_flat(graph)
    assert shapes(compiled)["leaky0"] == [16, 4, 4]
    assert compiled.costs.total.params == 3 * 9 * 16 + 2 * 16  # weights, then the bn's scale and shift


def test_convolutional_without_batch_norm_keeps_its_bias_and_groups(tmp_path: Path) -> None:
    # size=1 pad=1 means padding size/2 = 0; padding= is used when pad is absent
    path = cfg(tmp_path, """
        [convolutional]
        filters=6
        size=1
        pad=1
        activation=linear
        [convolutional]
        filters=6
        size=3
        padding=2
        groups=3
        activation=mish
    """, c=6)
    graph = read_darknet(path)
    assert ops(graph) == [
        ("conv0", "conv", {"out": 6, "k": 1}, ["image"]),
        ("conv1", "conv", {"out": 6, "k": 3, "p": 2, "groups": 3}, ["conv0"]),
        ("mish1", "mish", {}, ["conv1"]),
    ]
    compiled = compile_flat(graph)
    assert shapes(compiled)["mish1"] == [6, 10, 10]
    assert compiled.costs.total.params == (6 * 6 + 6) + (2 * 9 * 6 + 6)


@pytest.mark.parametrize(("name", "op"), [("relu", "relu"), ("logistic", "sigmoid"), ("swish", "silu"),
                                          ("tanh", "tanh")])
def test_activations(tmp_path: Path, name: str, op: str) -> None:
    graph = read_darknet(cfg(tmp_path, f"[convolutional]\nfilters=4\nactivation={name}\n"))
    assert [(layer.id, layer.op) for layer in graph.layers] == [("conv0", "conv"), (f"{name}0", op)]


def test_default_activation_is_logistic(tmp_path: Path) -> None:
    graph = read_darknet(cfg(tmp_path, "[convolutional]\nfilters=4\n"))
    assert graph.layers[-1].op == "sigmoid"  # darknet's parse_convolutional default


def test_maxpool_default_padding(tmp_path: Path) -> None:
    # darknet pads size-1 in all: size 2 stride 2 on 7x7 gives (7 + 1 - 2) / 2 + 1 = 4, via ceil mode
    path = cfg(tmp_path, "[maxpool]\nsize=2\nstride=2\n[maxpool]\nsize=3\nstride=2\n", w=7, h=7)
    graph = read_darknet(path)
    assert ops(graph) == [
        ("maxpool0", "maxpool", {"k": 2, "s": 2, "ceil_mode": True}, ["image"]),
        ("maxpool1", "maxpool", {"k": 3, "s": 2, "p": 1}, ["maxpool0"]),
    ]
    assert shapes(compile_flat(graph)) == {"maxpool0": [3, 4, 4], "maxpool1": [3, 2, 2]}


def test_short_section_names(tmp_path: Path) -> None:
    graph = read_darknet(cfg(tmp_path, "[conv]\nfilters=4\nactivation=linear\n[max]\nstride=2\n[avg]\n"))
    assert [(layer.id, layer.op) for layer in graph.layers] == [("conv0", "conv"), ("maxpool1", "maxpool"),
                                                                ("avgpool2", "global_avgpool")]


def test_maxpool_size_defaults_to_the_stride(tmp_path: Path) -> None:
    graph = read_darknet(cfg(tmp_path, "[maxpool]\nstride=2\n", w=8, h=8))
    assert ops(graph) == [("maxpool0", "maxpool", {"k": 2, "s": 2}, ["image"])]
    path = cfg(tmp_path, "[maxpool]\nstride=2\nmaxpool_depth=1\n")
    assert refusal(path) == [f"{path}:7:1: E601: [maxpool] option maxpool_depth=1 is not supported"]


def test_maxpool_on_even_sizes_needs_no_ceil_mode(tmp_path: Path) -> None:
    graph = read_darknet(cfg(tmp_path, "[maxpool]\nsize=2\nstride=2\n", w=8, h=8))
    assert ops(graph) == [("maxpool0", "maxpool", {"k": 2, "s": 2}, ["image"])]  # (8 + 1 - 2) / 2 + 1 = 4 = 8 / 2


def test_maxpool_stride_one_keeps_the_size(tmp_path: Path) -> None:
    # yolov3-tiny's layer 11: size 2 stride 1 keeps 13x13 (darknet pads one row and column after)
    graph = read_darknet(cfg(tmp_path, "[maxpool]\nsize=2\nstride=1\n", w=13, h=13))
    assert ops(graph) == [
        ("maxpool0", "maxpool", {"k": 2, "s": 1, "p": 1}, ["image"]),
        ("maxpool0_rows", "slice", {"axis": 1, "start": 1}, ["maxpool0"]),
        ("maxpool0_cols", "slice", {"axis": 2, "start": 1}, ["maxpool0_rows"]),
    ]
    assert shapes(compile_flat(graph))["maxpool0_cols"] == [3, 13, 13]


def _darknet_maxpool(x: list[list[float]], size: int, stride: int, pad_total: int) -> list[list[float]]:
    """forward_maxpool_layer of darknet's maxpool_layer.c on one channel: windows from -pad/2, outside ignored."""
    h, w = len(x), len(x[0])
    out_h, out_w = (h + pad_total - size) // stride + 1, (w + pad_total - size) // stride + 1
    offset = -(pad_total // 2)
    out = []
    for i in range(out_h):
        row = []
        for j in range(out_w):
            values = [x[i * stride + offset + n][j * stride + offset + m] for n in range(size) for m in range(size)
                      if 0 <= i * stride + offset + n < h and 0 <= j * stride + offset + m < w]
            row.append(max(values))
        out.append(row)
    return out


@pytest.mark.parametrize(("size", "stride", "side"), [(2, 1, 5), (2, 2, 5), (3, 2, 6), (4, 3, 7), (2, 2, 6)])
def test_maxpool_values_equal_darknets(tmp_path: Path, size: int, stride: int, side: int) -> None:
    torch = pytest.importorskip("torch")
    from archc.emit.torch_module import build_module

    graph = read_darknet(cfg(tmp_path, f"[maxpool]\nsize={size}\nstride={stride}\n", w=side, h=side, c=1))
    module = build_module(compile_flat(graph)).eval()
    x = -torch.rand(1, 1, side, side) - 1  # all negative: zero padding would show
    expected = _darknet_maxpool(x[0, 0].tolist(), size, stride, size - 1)
    assert module(x)[0, 0].tolist() == expected


def test_route_concatenates_and_aliases(tmp_path: Path) -> None:
    path = cfg(tmp_path, """
        [convolutional]
        filters=4
        activation=linear
        [convolutional]
        filters=5
        activation=linear
        [route]
        layers=-1,0
        [route]
        layers=1
        [convolutional]
        filters=2
        activation=linear
    """)
    graph = read_darknet(path)
    assert ops(graph)[2] == ("route2", "concat", {}, ["conv1", "conv0"])
    assert ops(graph)[3] == ("conv4", "conv", {"out": 2, "k": 1}, ["conv1"])  # a one-layer route is that layer
    assert shapes(compile_flat(graph))["route2"] == [9, 8, 8]


def test_route_groups_take_a_channel_slice(tmp_path: Path) -> None:
    path = cfg(tmp_path, "[convolutional]\nfilters=8\nactivation=linear\n[route]\nlayers=-1\ngroups=2\ngroup_id=1\n")
    graph = read_darknet(path)
    assert ops(graph)[-1] == ("route1_group", "slice", {"axis": 0, "start": 4, "end": 8}, ["conv0"])


def test_shortcut_adds_and_activates(tmp_path: Path) -> None:
    path = cfg(tmp_path, """
        [convolutional]
        filters=3
        activation=linear
        [convolutional]
        filters=3
        activation=linear
        [shortcut]
        from=-2
        activation=leaky
    """)
    graph = read_darknet(path)
    assert ops(graph)[-2:] == [("shortcut2", "add", {}, ["conv1", "conv0"]),
                               ("leaky2", "leaky_relu", {"slope": 0.1}, ["shortcut2"])]
    assert shapes(compile_flat(graph))["leaky2"] == [3, 8, 8]


def test_shortcut_between_shapes_pads_and_subsamples(tmp_path: Path) -> None:
    # darknet's resnet50.cfg adds a 64-channel 8x8 layer into a 16-channel 4x4 one: every 2nd position, channels
    # padded with zeros (shortcut_cpu adds the channels both have)
    path = cfg(tmp_path, """
        [convolutional]
        filters=4
        activation=linear
        [convolutional]
        filters=6
        stride=2
        activation=linear
        [shortcut]
        from=-2
    """)
    graph = read_darknet(path)
    assert ops(graph)[-4:] == [
        ("shortcut2_rows", "slice", {"axis": 1, "end": 8, "step": 2}, ["conv0"]),
        ("shortcut2_cols", "slice", {"axis": 2, "end": 8, "step": 2}, ["shortcut2_rows"]),
        ("shortcut2_pad", "zeropad", {"p": [0, 2], "axes": [0]}, ["shortcut2_cols"]),
        ("shortcut2", "add", {}, ["conv1", "shortcut2_pad"]),
    ]
    assert shapes(compile_flat(graph))["shortcut2"] == [6, 4, 4]


def _darknet_shortcut(add: list[list[list[float]]], out: list[list[list[float]]]) -> list[list[list[float]]]:
    """shortcut_cpu of darknet's blas.c (alpha = beta = 1): ``add`` (c1, h1, w1) into ``out`` (c2, h2, w2)."""
    c1, h1, w1, c2, h2, w2 = len(add), len(add[0]), len(add[0][0]), len(out), len(out[0]), len(out[0][0])
    stride, sample = max(w1 // w2, 1), max(w2 // w1, 1)
    result = [[row[:] for row in channel] for channel in out]
    for k in range(min(c1, c2)):
        for j in range(min(h1, h2)):
            for i in range(min(w1, w2)):
                result[k][j * sample][i * sample] += add[k][j * stride][i * stride]
    return result


@pytest.mark.parametrize(("c_from", "c_to", "stride"), [(4, 6, 2), (6, 4, 1), (5, 5, 3)])
def test_shortcut_values_equal_darknets(tmp_path: Path, c_from: int, c_to: int, stride: int) -> None:
    torch = pytest.importorskip("torch")
    from archc.emit.torch_module import build_module

    path = cfg(tmp_path, f"[maxpool]\nsize=1\nstride=1\n[convolutional]\nfilters={c_to}\nstride={stride}\n"
                         f"activation=linear\n[shortcut]\nfrom=-2\n", w=7, h=7, c=c_from)
    graph = read_darknet(path)
    compiled = compile_flat(graph)
    module = build_module(compiled).eval()
    x = torch.rand(1, c_from, 7, 7)
    out = module(x)[0]
    conv = dict(module.named_modules())["conv1"]
    expected = _darknet_shortcut(x[0].tolist(), conv(x)[0].tolist())
    assert torch.allclose(out, torch.tensor(expected), atol=1e-6)


def test_upsample_yolo_heads_are_outputs(tmp_path: Path) -> None:
    path = cfg(tmp_path, """
        [convolutional]
        filters=18
        activation=linear
        [yolo]
        mask=0,1,2
        classes=1
        [route]
        layers=-2
        [upsample]
        stride=2
        [convolutional]
        filters=18
        activation=linear
        [yolo]
        mask=3,4,5
        classes=1
    """, w=4, h=4)
    graph = read_darknet(path)
    assert graph.outputs == ["conv0", "conv4"]
    assert ops(graph)[1] == ("upsample3", "upsample", {"mode": "nearest", "scale": 2}, ["conv0"])
    assert shapes(compile_flat(graph))["conv4"] == [18, 8, 8]


def test_region_head_is_an_output(tmp_path: Path) -> None:
    # YOLOv2: 5 anchors x (20 classes + 4 coords + 1)
    path = cfg(tmp_path, "[convolutional]\nfilters=125\nactivation=linear\n[region]\nnum=5\nclasses=20\ncoords=4\n")
    graph = read_darknet(path)
    assert graph.outputs == ["conv0"]
    path = cfg(tmp_path, "[convolutional]\nfilters=120\nactivation=linear\n[region]\nnum=5\nclasses=20\n")
    assert refusal(path) == [f"{path}:8:1: E602: [region] expects 125 input channels (5 anchors x (20 classes + box "
                             "and objectness)); the layer before gives 120"]


def test_classifier_tail(tmp_path: Path) -> None:
    path = cfg(tmp_path, """
        [convolutional]
        filters=4
        activation=relu
        [dropout]
        probability=.25
        [connected]
        output=10
        activation=linear
        [connected]
        batch_normalize=1
        output=5
        activation=relu
        [softmax]
        groups=1
        [cost]
        type=sse
    """, w=2, h=2)
    graph = read_darknet(path)
    assert ops(graph)[2:] == [
        ("dropout1", "dropout", {"p": 0.25}, ["relu0"]),
        ("flatten2", "flatten", {}, ["dropout1"]),
        ("fc2", "linear", {"out": 10}, ["flatten2"]),
        ("fc3", "linear", {"out": 5, "bias": False}, ["fc2"]),
        ("bn3", "bn", {"momentum": 0.01}, ["fc3"]),
        ("relu3", "relu", {}, ["bn3"]),
        ("softmax4", "softmax", {}, ["relu3"]),
    ]
    assert graph.outputs == ["softmax4"]
    assert graph.notes == ["the training loss [cost] (line 20) is not part of the network: left out"]
    compiled = compile_flat(graph)
    assert compiled.costs.total.params == (3 * 4 + 4) + (16 * 10 + 10) + (10 * 5 + 2 * 5)


def test_avgpool_is_global_and_softmax_keeps_channels(tmp_path: Path) -> None:
    graph = read_darknet(cfg(tmp_path, "[avgpool]\n[softmax]\n", w=5, h=3))
    assert ops(graph) == [("avgpool0", "global_avgpool", {}, ["image"]),
                          ("softmax1", "softmax", {}, ["avgpool0"])]
    assert shapes(compile_flat(graph))["softmax1"] == [3, 1, 1]


def test_crop_takes_the_centre_scaled(tmp_path: Path) -> None:
    graph = read_darknet(cfg(tmp_path, "[crop]\ncrop_height=4\ncrop_width=2\n", w=6, h=8))
    assert ops(graph) == [
        ("crop0", "slice", {"axis": 1, "start": 2, "end": 6}, ["image"]),
        ("crop0_cols", "slice", {"axis": 2, "start": 2, "end": 4}, ["crop0"]),
        ("crop0_scale", "mul_scalar", {"value": 2.0}, ["crop0_cols"]),
        ("crop0_shift", "add_scalar", {"value": -1.0}, ["crop0_scale"]),
    ]
    assert shapes(compile_flat(graph))["crop0_shift"] == [3, 4, 2]


# --- refusals -----------------------------------------------------------------------------------------------------


def test_unsupported_layer_and_activation_are_located(tmp_path: Path) -> None:
    path = cfg(tmp_path, """
        [reorg]
        stride=2
        [convolutional]
        filters=4
        activation = relie
        [local]
        size=3
    """)
    assert refusal(path) == [
        f"{path}:6:1: E601: darknet layer [reorg] is not supported",
        f"{path}:10:14: E601: darknet activation 'relie' has no archc op (supported: linear, leaky, relu, logistic, "
        "mish, swish, tanh, elu, selu)",
        f"{path}:11:1: E601: darknet layer [local] is not supported",
    ]


def test_malformed_lines_and_references(tmp_path: Path) -> None:
    path = tmp_path / "bad.cfg"
    path.write_text("width=3\n[net]\nwidth=4\nheight=4\nchannels=1\n[convolutional\nfilters\n")
    assert refusal(path) == [
        f"{path}:1:1: E602: option 'width' before the first [section]",
        f"{path}:6:1: E602: malformed section header '[convolutional': expected [name]",
        f"{path}:7:1: E602: cannot read 'filters': expected key=value or a [section] header",
    ]
    path = cfg(tmp_path, "[convolutional]\nfilters=4x\n[route]\nlayers=-1,5\n[shortcut]\nfrom=-9\n")
    assert refusal(path) == [
        f"{path}:6:9: E602: [convolutional] option filters='4x' is not an integer",
        f"{path}:8:8: E602: [route] layers=-1,5 refers to layer 5, which is not before this layer (1)",
        f"{path}:10:6: E602: [shortcut] from=-9 refers to layer -7, which does not exist: this is layer 2",
    ]


def test_route_of_different_sizes_and_bad_yolo(tmp_path: Path) -> None:
    path = cfg(tmp_path, """
        [convolutional]
        filters=3
        [convolutional]
        filters=4
        stride=2
        [route]
        layers=-1,-2
        [yolo]
        mask=0,1,2
        classes=80
    """)
    assert refusal(path) == [
        f"{path}:11:1: E602: [route] joins layers of different sizes (4x4x4, 3x8x8); darknet concatenates channels "
        "of equal height and width",
    ]
    path = cfg(tmp_path, "[convolutional]\nfilters=4\n[yolo]\nmask=0,1,2\nclasses=80\n")
    assert refusal(path) == [
        f"{path}:7:1: E602: [yolo] expects 255 input channels (3 anchors x (80 classes + box and objectness)); the "
        "layer before gives 4",
    ]


def test_options_archc_cannot_follow(tmp_path: Path) -> None:
    path = cfg(tmp_path, "[convolutional]\nfilters=4\nbinary=1\n[shortcut]\nfrom=-1\nalpha=0.5\n"
                         "[upsample]\nstride=-2\n")
    assert refusal(path) == [
        f"{path}:7:1: E601: [convolutional] option binary=1 is not supported",
        f"{path}:10:1: E601: [shortcut] alpha=0.5 (a weighted sum) is not supported",
        f"{path}:11:1: E601: [upsample] stride=-2 (downsampling) is not supported",
    ]


def test_missing_net_and_input_size(tmp_path: Path) -> None:
    path = tmp_path / "nonet.cfg"
    path.write_text("\n[convolutional]\nfilters=4\n")
    assert refusal(path) == [f"{path}:2:1: E602: a darknet cfg starts with a [net] section (input size and channels)"]
    path.write_text("[net]\nwidth=8\n")
    assert refusal(path) == [f"{path}:1:1: E602: [net] needs positive channels=, height= and width="]


# --- the corpus ---------------------------------------------------------------------------------------------------


def test_yolov3_params_and_heads() -> None:
    spec = imported("darknet", "darknet/yolov3.cfg")
    assert spec.compiled.costs.total.params == 61_949_149
    heads = ["conv81", "conv93", "conv105"]  # darknet's layers 81, 93 and 105 feed its three [yolo] layers
    assert list(spec.compiled.graph.outputs.values()) == [spec.paths[name] for name in heads]
    found = shapes_by_layer(spec)
    assert [found[name] for name in heads] == [[255, 19, 19], [255, 38, 38], [255, 76, 76]]  # the cfg's 608x608
    # no layer depends on the input size: the written spec at darknet's reference size, 416x416
    assert "inputs: {image: [3, 608, 608]}" in spec.text
    at_416 = compile_text(spec.text.replace("inputs: {image: [3, 608, 608]}", "inputs: {image: [3, 416, 416]}"))
    assert [shapes(at_416)[path] for path in at_416.graph.outputs.values()] == [[255, 13, 13], [255, 26, 26],
                                                                                 [255, 52, 52]]
    assert at_416.costs.total.params == 61_949_149


# darknet's printout of yolov3-tiny at 416x416: layer -> output (c, h, w)
YOLOV3_TINY = {0: (16, 416, 416), 1: (16, 208, 208), 2: (32, 208, 208), 3: (32, 104, 104), 4: (64, 104, 104),
               5: (64, 52, 52), 6: (128, 52, 52), 7: (128, 26, 26), 8: (256, 26, 26), 9: (256, 13, 13),
               10: (512, 13, 13), 11: (512, 13, 13), 12: (1024, 13, 13), 13: (256, 13, 13), 14: (512, 13, 13),
               15: (255, 13, 13), 18: (128, 13, 13), 19: (128, 26, 26), 20: (384, 26, 26), 21: (256, 26, 26),
               22: (255, 26, 26)}


def test_yolov3_tiny_has_darknets_layer_shapes() -> None:
    graph = read_darknet(corpus_file("darknet/yolov3-tiny.cfg"))
    spec = imported("darknet", "darknet/yolov3-tiny.cfg")
    found = shapes_by_layer(spec)
    last_of_layer: dict[int, str] = {}
    for layer in graph.layers:  # a darknet layer's output is the last archc layer written for it
        digits = "".join(ch for ch in layer.id.split("_")[0] if ch.isdigit())
        last_of_layer[int(digits)] = layer.id
    assert {i: tuple(found[last_of_layer[i]]) for i in YOLOV3_TINY} == YOLOV3_TINY
    assert graph.outputs == ["conv15", "conv22"]
    # darknet's 8,858,734 weights of yolov3-tiny.weights hold 2 x 3,184 running statistics, archc's buffers
    assert spec.compiled.costs.total.params == 8_858_734 - 2 * 3_184


def test_resnet50_params_by_formula() -> None:
    compiled = imported("darknet", "darknet/resnet50.cfg").compiled
    # 7x7 stem with bn, then 3-4-6-3 bottlenecks (1x1 w, 3x3 w, 1x1 4w, each with bn; darknet's shortcuts are
    # parameter-free), a 1x1 convolution to 1000 classes with bias
    params, channels = 7 * 7 * 3 * 64 + 2 * 64, 64
    for blocks, width in [(3, 64), (4, 128), (6, 256), (3, 512)]:
        for _ in range(blocks):
            params += channels * width + 2 * width + 9 * width * width + 2 * width + width * 4 * width + 8 * width
            channels = 4 * width
    params += 2048 * 1000 + 1000
    assert compiled.costs.total.params == params == 22_780_456
    assert [shapes(compiled)[name] for name in compiled.graph.outputs.values()] == [[1000, 1, 1]]


def test_densenet201_params_by_formula() -> None:
    compiled = imported("darknet", "darknet/densenet201.cfg").compiled
    # 7x7 stem with bn; dense layers (1x1 to 128 and 3x3 to 32, each with bn) of 6, 12, 48, 32; transitions 1x1 to
    # 128, 256, 512 with bn (and max pooling); a 1x1 convolution to 1000 classes with bias
    params, channels = 7 * 7 * 3 * 64 + 2 * 64, 64
    for layers, transition in [(6, 128), (12, 256), (48, 512), (32, 0)]:
        for _ in range(layers):
            params += channels * 128 + 2 * 128 + 9 * 128 * 32 + 2 * 32
            channels += 32
        if transition:
            params += channels * transition + 2 * transition
            channels = transition
    params += channels * 1000 + 1000
    assert compiled.costs.total.params == params == 17_173_160
    assert [shapes(compiled)[name] for name in compiled.graph.outputs.values()] == [[1000, 1, 1]]


@pytest.mark.parametrize(("relative", "merge", "per_stage"), [("darknet/resnet50.cfg", "add", [3, 4, 6, 3]),
                                                          ("darknet/densenet201.cfg", "concat", [6, 12, 48, 32])])
def test_corpus_imports_are_short_with_their_repeats(relative: str, merge: str, per_stage: list[int]) -> None:
    spec = imported("darknet", relative)
    assert len(spec.text.splitlines()) <= 80  # from 510 and 1,951 lines of cfg
    assert "- stage: {" in spec.text
    # the residual adds (dense concatenations) of each stage, counted in the compiled spec's top-level scopes
    found = Counter(node.name.split(".")[0] for node in spec.compiled.graph.nodes() if node.op == merge)
    assert list(found.values()) == per_stage
