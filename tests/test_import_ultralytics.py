"""The Ultralytics importer: rows of small model YAML files written here (each module, scaling, refusals at their
file:line:col), the modules' values against a PyTorch transcription of Ultralytics' own, and yolov8.yaml at every
scale against the parameter counts and GFLOPs in the file's comments."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any

import pytest

from archc.errors import UsageError
from archc.importers.condense import ImportedSpec
from archc.importers.flat import FlatGraph, ImportFailure
from archc.importers.ultralytics import read_ultralytics
from tests.import_helpers import compile_flat, corpus_file, flat_id, imported, shapes, shapes_by_layer


def model_yaml(tmp_path: Path, rows: str, extra: str = "") -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(f"nc: 4\n{extra}backbone:\n{textwrap.dedent(rows)}")
    return path


def ops(graph: FlatGraph) -> list[tuple[str, str, dict[str, Any], list[str]]]:
    return [(layer.id, layer.op, layer.params, layer.inputs) for layer in graph.layers]


def refusal(path: Path, scale: str | None = None) -> list[str]:
    with pytest.raises(ImportFailure) as info:
        read_ultralytics(path, scale)
    return [d.format() for d in info.value.diagnostics]


BN = {"eps": 0.001, "momentum": 0.03}


def test_conv_is_conv_bn_silu(tmp_path: Path) -> None:
    graph = read_ultralytics(model_yaml(tmp_path, "  - [-1, 1, Conv, [16, 3, 2]]\n  - [-1, 1, Conv, [8]]\n"))
    assert graph.inputs == {"image": [3, 640, 640]}
    assert ops(graph) == [
        ("0.conv", "conv", {"out": 16, "k": 3, "s": 2, "p": 1, "bias": False}, ["image"]),
        ("0.bn", "bn", BN, ["0.conv"]),
        ("0.act", "silu", {}, ["0.bn"]),
        ("1.conv", "conv", {"out": 8, "k": 1, "s": 1, "p": 0, "bias": False}, ["0.act"]),  # every Conv alike
        ("1.bn", "bn", BN, ["1.conv"]),
        ("1.act", "silu", {}, ["1.bn"]),
    ]
    assert graph.outputs == ["1.act"]
    assert graph.layers[0].origin == "tiny.yaml:3"
    assert graph.notes == []  # no scales in the file: nothing was assumed
    assert graph.kinds == {"0": "Conv", "1": "Conv"}


def test_c2f_splits_chains_and_concatenates(tmp_path: Path) -> None:
    graph = read_ultralytics(model_yaml(tmp_path, "  - [-1, 2, C2f, [16, True]]\n"))
    assert [(lid, op) for lid, op, _, _ in ops(graph)] == [
        ("0.cv1.conv", "conv"), ("0.cv1.bn", "bn"), ("0.cv1.act", "silu"),
        ("0.chunk0", "slice"), ("0.chunk1", "slice"),
        *[(f"0.m.{i}.{part}", op) for i in range(2) for part, op in
          [("cv1.conv", "conv"), ("cv1.bn", "bn"), ("cv1.act", "silu"), ("cv2.conv", "conv"), ("cv2.bn", "bn"),
           ("cv2.act", "silu"), ("add", "add")]],
        ("0.cat", "concat"), ("0.cv2.conv", "conv"), ("0.cv2.bn", "bn"), ("0.cv2.act", "silu"),
    ]
    layers = {layer.id: layer for layer in graph.layers}
    assert layers["0.chunk0"].params == {"axis": 0, "start": 0, "end": 8}
    assert layers["0.chunk1"].params == {"axis": 0, "start": 8, "end": 16}
    assert layers["0.m.0.add"].inputs == ["0.chunk1", "0.m.0.cv2.act"]
    assert layers["0.cat"].inputs == ["0.chunk0", "0.chunk1", "0.m.0.add", "0.m.1.add"]
    compiled = compile_flat(graph)
    # cv1 3->16, two bottlenecks of two 3x3 8->8, cv2 32->16; every conv with a bn
    assert compiled.costs.total.params == (3 * 16 + 32) + 2 * 2 * (9 * 8 * 8 + 16) + (32 * 16 + 32)
    assert shapes(compiled)[flat_id("0.cat")] == [32, 640, 640]


def test_c2f_without_shortcut_and_sppf(tmp_path: Path) -> None:
    graph = read_ultralytics(model_yaml(tmp_path, "  - [-1, 1, C2f, [16]]\n  - [-1, 1, SPPF, [8, 3]]\n"))
    layers = {layer.id: layer for layer in graph.layers}
    assert "0.m.0.add" not in layers  # C2f's default: shortcut=False
    assert [(lid, op, params) for lid, op, params, _ in ops(graph) if lid.startswith("1.m")] == [
        ("1.m", "maxpool", {"k": 3, "s": 1, "p": 1}), ("1.m_1", "maxpool", {"k": 3, "s": 1, "p": 1}),
        ("1.m_2", "maxpool", {"k": 3, "s": 1, "p": 1})]
    assert layers["1.cat"].inputs == ["1.cv1.act", "1.m", "1.m_1", "1.m_2"]
    assert layers["1.cv1.conv"].params["out"] == 8  # c1 // 2
    assert shapes(compile_flat(graph))[flat_id("1.cat")] == [32, 640, 640]


def test_concat_upsample_and_detect(tmp_path: Path) -> None:
    path = tmp_path / "det.yaml"
    path.write_text(textwrap.dedent("""\
        nc: 4
        backbone:
          - [-1, 1, Conv, [16, 3, 2]]
          - [-1, 1, Conv, [32, 3, 2]]
        head:
          - [-1, 1, nn.Upsample, [None, 2, "nearest"]]
          - [[-1, 0], 1, Concat, [1]]
          - [[3, 1], 1, Detect, [nc]]
    """))
    graph = read_ultralytics(path)
    layers = {layer.id: layer for layer in graph.layers}
    assert layers["2.upsample"].op == "upsample" and layers["2.upsample"].params == {"mode": "nearest", "scale": 2}
    assert layers["3.cat"].inputs == ["2.upsample", "0.act"]
    assert graph.outputs == ["4.cat0", "4.cat1", "4.dfl.out"]
    compiled = compile_flat(graph)
    found = shapes(compiled)
    # 16 * 80 * 80 + 16 * 40 * 40 = 8,000 anchors for a 640 input at strides 8 and 16
    assert [found[flat_id(name)] for name in graph.outputs] == [[68, 320, 320], [68, 160, 160], [4, 128000]]
    c2, c3 = max(16, 48 // 4, 64), max(48, min(4, 100))  # Detect's branch widths from the first level's 48 channels
    detect = sum(9 * c_in * c2 + 2 * c2 + 9 * c2 * c2 + 2 * c2 + c2 * 64 + 64 +
                 9 * c_in * c3 + 2 * c3 + 9 * c3 * c3 + 2 * c3 + c3 * 4 + 4 for c_in in (48, 32))
    backbone = (27 * 16 + 32) + (9 * 16 * 32 + 64)
    assert compiled.costs.total.params == backbone + detect + 16  # + the DFL's 16 fixed weights


def test_scales_repeats_and_channels(tmp_path: Path) -> None:
    scales = "scales:\n  a: [0.33, 0.25, 64]\n  b: [1.0, 1.0, 1024]\n"
    path = model_yaml(tmp_path, "  - [-1, 1, Conv, [128, 3, 2]]\n  - [-1, 6, C2f, [100, True]]\n"
                                "  - [-1, 1, Conv, [4]]\n", scales)
    graph = read_ultralytics(path)  # no scale asked for: the first, with a note
    assert graph.notes == ["no scale asked for: the first, 'a', as Ultralytics assumes (scales: a, b)"]
    layers = {layer.id: layer for layer in graph.layers}
    assert layers["0.conv"].params["out"] == 16  # min(128, 64) * 0.25 = 16
    assert layers["1.cv2.conv"].params["out"] == 16  # min(100, 64) * 0.25 = 16, a multiple of 8
    assert sum(1 for lid in layers if lid.endswith(".add")) == 2  # round(6 * 0.33) bottlenecks
    assert layers["2.conv"].params["out"] == 4  # equal to nc: not scaled
    graph = read_ultralytics(path, "b")
    layers = {layer.id: layer for layer in graph.layers}
    assert (layers["0.conv"].params["out"], layers["1.cv2.conv"].params["out"]) == (128, 104)  # ceil(100 / 8) * 8
    assert sum(1 for lid in layers if lid.endswith(".add")) == 6
    assert graph.notes == []
    with pytest.raises(UsageError, match=r"--scale z: .*tiny.yaml defines the scales a, b"):
        read_ultralytics(path, "z")


def test_refusals_are_located(tmp_path: Path) -> None:
    path = model_yaml(tmp_path, """\
          - [-1, 1, Conv, [16, 3, 2]]
          - [-1, 1, C3k2, [32]]
          - [-1, 1, Conv]
          - [5, 1, Conv, [8]]
          - [-1, 1, nn.Upsample, [None, 2, "bilinear"]]
          - [[-1, 0], 1, Concat, [1]]
          - [-1, 0, Conv, [8]]
        """)
    assert refusal(path) == [
        f"{path}:4:11: E601: Ultralytics module 'C3k2' is not supported (supported: Bottleneck, C2f, C3, Concat, Conv, "
        "Detect, SPPF, nn.Upsample)",
        f"{path}:5:3: E602: a row is [from, repeats, module, args]",
        f"{path}:6:4: E602: from: 5 refers to row 5, which is not before this row (3)",
        f"{path}:7:24: E601: nn.Upsample other than by an integer scale_factor in mode 'nearest' is not supported",
        f"{path}:9:8: E602: repeats 0 must be a positive integer",
    ]
    path = model_yaml(tmp_path, "  - [-1, 1000000000, C2f, [16]]\n")
    assert refusal(path) == [f"{path}:3:8: E601: repeats 1000000000 make 1000000000 copies, more layers than archc's "
                             "limit max_layers (200,000)"]
    path = model_yaml(tmp_path, "  - [-1, 1, Conv, [16, 3, 2]]\n  - [-1, 1, Conv, [16, 3, 2]]\n"
                                "  - [[-1, 0], 1, Concat, [1]]\n")
    assert refusal(path) == [f"{path}:5:4: E602: Concat joins rows of different sizes (16x160x160, 16x320x320)"]
    path = tmp_path / "bad.yaml"
    path.write_text("nc: 80\nhead: []\n")
    assert refusal(path) == [f"{path}:1:1: E602: an Ultralytics model YAML has `backbone:` (and `head:`) lists of "
                             "[from, repeats, module, args] rows"]
    path.write_text("backbone: [[-1, 1, Conv, [16]]\nnc: 3\n")
    assert [line.split(": ")[1] for line in refusal(path)] == ["E001"]


def test_modules_compute_what_ultralytics_computes(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from torch import nn

    from archc.emit.torch_module import build_module

    class Conv(nn.Module):  # ultralytics.nn.modules.conv.Conv
        def __init__(self, c1: int, c2: int, k: int = 1, s: int = 1) -> None:
            super().__init__()
            self.conv = nn.Conv2d(c1, c2, k, s, k // 2, bias=False)
            self.bn = nn.BatchNorm2d(c2, eps=0.001, momentum=0.03)
            self.act = nn.SiLU()

        def forward(self, x: Any) -> Any:
            return self.act(self.bn(self.conv(x)))

    class Bottleneck(nn.Module):
        def __init__(self, c1: int, c2: int, shortcut: bool, k: tuple[int, int] = (3, 3), e: float = 1.0) -> None:
            super().__init__()
            self.cv1, self.cv2 = Conv(c1, int(c2 * e), k[0]), Conv(int(c2 * e), c2, k[1])
            self.add = shortcut and c1 == c2

        def forward(self, x: Any) -> Any:
            return x + self.cv2(self.cv1(x)) if self.add else self.cv2(self.cv1(x))

    class C2f(nn.Module):
        def __init__(self, c1: int, c2: int, n: int, shortcut: bool) -> None:
            super().__init__()
            self.c = c2 // 2
            self.cv1, self.cv2 = Conv(c1, 2 * self.c), Conv((2 + n) * self.c, c2)
            self.m = nn.ModuleList(Bottleneck(self.c, self.c, shortcut) for _ in range(n))  # k 3x3, e 1.0

        def forward(self, x: Any) -> Any:
            y = list(self.cv1(x).chunk(2, 1))
            y.extend(m(y[-1]) for m in self.m)
            return self.cv2(torch.cat(y, 1))

    class SPPF(nn.Module):
        def __init__(self, c1: int, c2: int, k: int) -> None:
            super().__init__()
            self.cv1, self.cv2 = Conv(c1, c1 // 2), Conv(c1 // 2 * 4, c2)
            self.m = nn.MaxPool2d(k, 1, k // 2)

        def forward(self, x: Any) -> Any:
            y = [self.cv1(x)]
            y.extend(self.m(y[-1]) for _ in range(3))
            return self.cv2(torch.cat(y, 1))

    class C3(nn.Module):
        def __init__(self, c1: int, c2: int, n: int) -> None:
            super().__init__()
            c_ = c2 // 2
            self.cv1, self.cv2, self.cv3 = Conv(c1, c_), Conv(c1, c_), Conv(2 * c_, c2)
            self.m = nn.Sequential(*(Bottleneck(c_, c_, True, (1, 3)) for _ in range(n)))

        def forward(self, x: Any) -> Any:
            return self.cv3(torch.cat((self.m(self.cv1(x)), self.cv2(x)), 1))

    reference = nn.Sequential(Conv(3, 16, 3, 2), C2f(16, 16, 2, True), SPPF(16, 8, 5), C3(8, 16, 2),
                              nn.Sequential(Bottleneck(16, 8, True, e=0.5), Bottleneck(8, 8, True, e=0.5))).eval()
    graph = read_ultralytics(model_yaml(tmp_path, "  - [-1, 1, Conv, [16, 3, 2]]\n  - [-1, 2, C2f, [16, True]]\n"
                                                  "  - [-1, 1, SPPF, [8, 5]]\n  - [-1, 2, C3, [16]]\n"
                                                  "  - [-1, 2, Bottleneck, [8]]\n"))
    graph.inputs["image"] = [3, 32, 32]  # no layer depends on the size
    module = build_module(compile_flat(graph)).eval()
    with torch.no_grad():
        for tensor in reference.state_dict().values():
            if tensor.is_floating_point():
                tensor.uniform_(0.5, 1.5)
        state = {f"{flat_id(name.rsplit('.', 1)[0])}.{name.rsplit('.', 1)[1]}": value
                 for name, value in reference.state_dict().items()}
        module.load_state_dict(state, strict=True)
        x = torch.randn(2, 3, 32, 32)
        assert torch.allclose(module(x), reference(x), atol=1e-5)


# --- yolov8.yaml ----------------------------------------------------------------------------------------------------

# the file's comments: parameters and GFLOPs at 640 per scale
YOLOV8 = {"n": (3_157_200, 8.9), "s": (11_166_560, 28.8), "m": (25_902_640, 79.3), "l": (43_691_520, 165.7),
          "x": (68_229_648, 258.5)}


def ultralytics_gflops(spec: ImportedSpec) -> float:
    """GFLOPs as Ultralytics prints them: 2 x thop's count, which is every convolution's multiply-accumulates
    (archc's MACs) plus 4 per batch-norm output element (normalise, then scale and shift), and nothing for SiLU,
    pooling, upsampling or concatenation; the DFL's convolution is not counted (Detect runs in training mode)."""
    nodes = list(spec.compiled.graph.nodes())
    macs = sum(node.meta["cost"].macs for node in nodes if node.op == "conv" and node.name != spec.paths["22.dfl.conv"])
    bn_elements = sum(node.out_type.numel for node in nodes if node.op == "bn")
    return 2 * (macs + 4 * bn_elements) / 1e9


@pytest.mark.parametrize("scale", ["n", "s"])
def test_yolov8_params_and_gflops(scale: str) -> None:
    spec = imported("ultralytics", "ultralytics/yolov8.yaml", scale=scale)
    params, gflops = YOLOV8[scale]
    assert spec.compiled.costs.total.params == params  # Ultralytics' "parameters" include the DFL's 16 fixed weights
    assert round(ultralytics_gflops(spec), 1) == gflops
    # with the batch norms folded into the convolutions ("fused"), Ultralytics prints 2 x archc's MACs
    assert round(2 * spec.compiled.costs.total.macs / 1e9, 1) == {"n": 8.7, "s": 28.6}[scale]
    found = shapes_by_layer(spec)
    outputs = ["22.cat0", "22.cat1", "22.cat2", "22.dfl.out"]
    assert list(spec.compiled.graph.outputs.values()) == [spec.paths[name] for name in outputs]
    assert [found[name] for name in outputs] == [[144, 80, 80], [144, 40, 40], [144, 20, 20], [4, 8400]]


@pytest.mark.parametrize("scale", ["n", "s"])
def test_yolov8_reads_like_its_source(scale: str) -> None:
    """A block per Ultralytics module type, called with its arguments row by row, names kept as module paths (the
    recovered spec, not the flat fallback: 3,157,200 / 11,166,560 parameters are checked above on the same path)."""
    spec = imported("ultralytics", "ultralytics/yolov8.yaml", scale=scale)
    lines = spec.text.splitlines()
    assert len(lines) <= 130  # 221 lines of generic blocks and loose layers before module types named the blocks
    blocks_text, body = spec.text.split("\nbody:\n")
    names = re.findall(r"^  (\w+):$", blocks_text.split("\nblocks:\n")[1], re.M)
    # Conv keeps its spelling (`conv` is an op); C2f comes with two bottlenecks, one, or one without the shortcut
    assert names == ["Conv", "bottleneck", "sppf", "bottleneck2", "conv_block", "c2f", "c2f2", "c2f3"]
    assert "    args: {k: 3, out: int, s: 1}\n" in blocks_text and "p: $k // 2" in blocks_text
    assert '- slice: {id: chunk1, from: "cv1.act", start: $out // 2, end: $out}' in blocks_text  # local to c2f
    width = {"n": 1, "s": 2}[scale]
    assert body.splitlines()[:5] == [f'  - Conv: {{id: "0", out: {16 * width}, s: 2}}',
                                     f'  - Conv: {{id: "1", out: {32 * width}, s: 2}}',
                                     f'  - c2f2: {{id: "2", out: {32 * width}}}',
                                     f'  - Conv: {{id: "3", out: {64 * width}, s: 2}}',
                                     f'  - c2f: {{id: "4", out: {64 * width}}}']
    assert '  - sppf: {id: "9"}' in body.splitlines()
    assert spec.paths["2.m.0.cv1.conv"] == "2.m.0.cv1.conv"  # a checkpoint's state_dict names, without `model.`


@pytest.mark.slow
@pytest.mark.parametrize("scale", ["m", "l", "x"])
def test_yolov8_larger_scales(scale: str) -> None:
    spec = imported("ultralytics", "ultralytics/yolov8.yaml", scale=scale)
    params, gflops = YOLOV8[scale]
    assert spec.compiled.costs.total.params == params
    assert round(ultralytics_gflops(spec), 1) == gflops


def test_yolov8_default_scale_is_the_first() -> None:
    graph = read_ultralytics(corpus_file("ultralytics/yolov8.yaml"))
    assert graph.notes == ["no scale asked for: the first, 'n', as Ultralytics assumes (scales: n, s, m, l, x)"]
    assert graph.name == "yolov8n"
    spec = imported("ultralytics", "ultralytics/yolov8.yaml")
    assert "# no scale asked for: the first, 'n'" in spec.text
