"""`archc import onnx` / `torch`: hand-made ONNX graphs for each node and refusal, and round trips of zoo specs
(export onnx -> import onnx -> check) with their weights."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from cli_runner import run
from onnx import TensorProto, helper, numpy_helper

from archc.compiler import compile_file, compile_text
from archc.emit.onnx_export import export_onnx
from archc.emit.torch_module import build_module
from archc.importers.flat import ImportFailure
from archc.importers.onnx_reader import read_onnx
from archc.importers.run import import_model

SPECS = Path(__file__).resolve().parent.parent / "specs"


def _model(nodes: list[onnx.NodeProto], inits: dict[str, np.ndarray], shape: list[int],
           out: str = "y") -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1] + shape)],
                              [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(v, k) for k, v in inits.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _write(tmp_path: Path, model: onnx.ModelProto) -> Path:
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    return path


def _conv_init(out: int = 8, cin: int = 3, k: int = 3) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"stem.weight": rng.standard_normal((out, cin, k, k)).astype(np.float32),
            "stem.bias": rng.standard_normal(out).astype(np.float32)}


@pytest.mark.parametrize(("node", "op", "params"), [
    (helper.make_node("Relu", ["c"], ["y"]), "relu", {}),
    (helper.make_node("Sigmoid", ["c"], ["y"]), "sigmoid", {}),
    (helper.make_node("HardSwish", ["c"], ["y"]), "hardswish", {}),
    (helper.make_node("LeakyRelu", ["c"], ["y"], alpha=0.1), "leaky_relu", {"slope": 0.1}),
    (helper.make_node("MaxPool", ["c"], ["y"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]), "maxpool",
     {"k": 3, "s": 2, "p": 1, "ceil_mode": False}),
    (helper.make_node("AveragePool", ["c"], ["y"], kernel_shape=[2, 2], strides=[2, 2]), "avgpool",
     {"k": 2, "s": 2, "p": 0, "ceil_mode": False, "count_include_pad": False}),
    (helper.make_node("GlobalAveragePool", ["c"], ["y"]), "global_avgpool", {}),
    (helper.make_node("Flatten", ["c"], ["y"], axis=1), "flatten", {}),
    (helper.make_node("LRN", ["c"], ["y"], size=5, alpha=1e-4, beta=0.75, bias=2.0), "lrn",
     {"size": 5, "alpha": 1e-4, "beta": 0.75, "k": 2.0}),
    (helper.make_node("Softmax", ["c"], ["y"], axis=1), "softmax", {"axis": 0}),
    (helper.make_node("Transpose", ["c"], ["y"], perm=[0, 2, 3, 1]), "permute", {"axes": [1, 2, 0]}),
    (helper.make_node("Unsqueeze", ["c", "ax1"], ["y"]), "unsqueeze", {"axes": [0]}),
    (helper.make_node("Slice", ["c", "s0", "e4", "ax1"], ["y"]), "slice", {"axis": 0, "start": 0, "end": 4, "step": 1}),
    (helper.make_node("Pad", ["c", "pads"], ["y"]), "zeropad", {"p": [0, 8], "axes": [0]}),
])
def test_each_node_translates(tmp_path: Path, node: onnx.NodeProto, op: str, params: dict) -> None:
    conv = helper.make_node("Conv", ["x", "stem.weight", "stem.bias"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    consts = {"ax1": np.array([1]), "s0": np.array([0]), "e4": np.array([4]),
              "pads": np.array([0, 0, 0, 0, 0, 8, 0, 0])}
    graph, weights = read_onnx(_write(tmp_path, _model([conv, node], _conv_init() | consts, [3, 8, 8])))
    assert [(layer.op, layer.params) for layer in graph.layers][1] == (op, params)
    assert graph.layers[0].id == "stem" and graph.layers[0].params["bias"] is True
    assert sorted(weights["stem"]) == ["bias", "weight"]


def test_clip_is_relu6_and_gemm_is_linear(tmp_path: Path) -> None:
    inits = _conv_init() | {"lo": np.array(0, np.float32), "hi": np.array(6, np.float32),
                            "fc.weight": np.ones((4, 8), np.float32), "fc.bias": np.zeros(4, np.float32)}
    nodes = [helper.make_node("Conv", ["x", "stem.weight", "stem.bias"], ["c"], kernel_shape=[3, 3]),
             helper.make_node("Clip", ["c", "lo", "hi"], ["r"]),
             helper.make_node("GlobalAveragePool", ["r"], ["g"]), helper.make_node("Flatten", ["g"], ["f"]),
             helper.make_node("Gemm", ["f", "fc.weight", "fc.bias"], ["y"], transB=1)]
    graph, weights = read_onnx(_write(tmp_path, _model(nodes, inits, [3, 8, 8])))
    assert [layer.op for layer in graph.layers] == ["conv", "relu6", "global_avgpool", "flatten", "linear"]
    assert graph.layers[-1].id == "fc" and graph.layers[-1].params == {"out": 4, "bias": True}
    assert weights["fc"]["weight"].shape == (4, 8) and sorted(weights) == ["fc", "stem"]
    imported = import_model("onnx", str(tmp_path / "m.onnx"))
    assert imported.spec.compiled.costs.total.params == 8 * 3 * 9 + 8 + 4 * 8 + 4


def test_unsupported_node_is_named(tmp_path: Path) -> None:
    nodes = [helper.make_node("Einsum", ["x", "x"], ["y"], equation="bchw,bchw->bchw", name="weird_einsum")]
    with pytest.raises(ImportFailure) as err:
        read_onnx(_write(tmp_path, _model(nodes, {}, [3, 8, 8])))
    [d] = err.value.diagnostics
    assert d.code == "E601" and "node 'weird_einsum' (Einsum): op type Einsum is not supported" in d.message


@pytest.mark.parametrize(("node", "message"), [
    (helper.make_node("Transpose", ["x"], ["y"], perm=[1, 0, 2, 3], name="t"),
     "node 't' (Transpose): perm [1, 0, 2, 3] moves the batch axis"),
    (helper.make_node("Squeeze", ["x"], ["y"], name="sq"), "node 'sq' (Squeeze): no axes (it could remove the batch"),
    (helper.make_node("Pad", ["x", "pads"], ["y"], mode="reflect", name="pd"), "node 'pd' (Pad): mode 'reflect'"),
    (helper.make_node("Mul", ["x", "scale"], ["y"], name="m"), "node 'm' (Mul): a constant operand of shape [3, 1, 1]"),
])
def test_refusals_name_the_node(tmp_path: Path, node: onnx.NodeProto, message: str) -> None:
    consts = {"pads": np.zeros(8, np.int64), "scale": np.ones((3, 1, 1), np.float32)}
    with pytest.raises(ImportFailure) as err:
        read_onnx(_write(tmp_path, _model([node], consts, [3, 8, 8])))
    [d] = err.value.diagnostics
    assert d.code == "E601" and message in d.message, d.message


def test_asymmetric_padding_refused(tmp_path: Path) -> None:
    conv = helper.make_node("Conv", ["x", "stem.weight"], ["y"], kernel_shape=[3, 3], pads=[0, 0, 1, 1], name="c1")
    with pytest.raises(ImportFailure) as err:
        read_onnx(_write(tmp_path, _model([conv], {"stem.weight": _conv_init()["stem.weight"]}, [3, 8, 8])))
    assert "node 'c1' (Conv): asymmetric padding [0, 0, 1, 1]" in err.value.diagnostics[0].message


def test_cli_refusals(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a protobuf at all \x00\xff")
    result = run("import", "onnx", str(bad), "-o", str(tmp_path / "s.yaml"))
    assert result.exit_code == 1 and "E602: " in result.stderr and "Traceback" not in result.stderr
    result = run("import", "keras", str(bad), "-o", str(tmp_path / "s.yaml"))
    assert result.exit_code == 2 and "unknown format 'keras'" in result.stderr
    result = run("import", "onnx", str(tmp_path / "missing.onnx"), "-o", str(tmp_path / "s.yaml"))
    assert result.exit_code == 2 and "no such file" in result.stderr
    result = run("import", "torch", "no colon", "-o", str(tmp_path / "s.yaml"))
    assert result.exit_code == 2 and "expected package.module:callable" in result.stderr


def _round_trip(tmp_path: Path, spec: str) -> None:
    compiled = compile_file(SPECS / f"{spec}.yaml")
    torch.manual_seed(0)
    module = build_module(compiled).eval()
    state = {k: v.detach().clone() for k, v in module.state_dict().items()}
    model = export_onnx(compiled, state, fold_bn=False)
    path = tmp_path / f"{spec}.onnx"
    onnx.save(model, str(path))
    imported = import_model("onnx", str(path))
    again = compile_text(imported.text, "imported.yaml")
    total, original = again.costs.total, compiled.costs.total
    assert (total.params, total.macs) == (original.params, original.macs)
    original_lines = len((SPECS / f"{spec}.yaml").read_text().splitlines())
    assert len(imported.text.splitlines()) <= 1.5 * original_lines
    rebuilt = build_module(again).eval()
    rebuilt.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in imported.state.items()}, strict=True)
    x = torch.randn(2, *compiled.graph.node(compiled.graph.inputs[0]).out_type.shape)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x), module(x), atol=1e-5, rtol=1e-5)


FAST = ["resnet18", "googlenet", "resnet20_cifar"]
SLOW = ["mlp", "lenet5_modern", "resnet34", "vgg11", "vgg13_bn", "densenet169", "squeezenet1_1", "wide_resnet50_2",
        "densenet_bc_100_k12", "unet", "alexnet", "vgg16", "vgg16_bn", "resnet50", "densenet121", "squeezenet1_0",
        "mobilenet_v2", "resnext50_32x4d", "alexnet_original",
        "googlenet_paper", "nin_cifar10", "mobilenet_v1", "zfnet", "resnet_v2", "inception_v3"]


@pytest.mark.parametrize("spec", FAST + [pytest.param(s, marks=pytest.mark.slow) for s in SLOW])
def test_zoo_round_trip(tmp_path: Path, spec: str) -> None:
    _round_trip(tmp_path, spec)


def _torchvision_resnet50() -> torch.nn.Module:
    sys.path.insert(0, str(Path(__file__).parent))
    from torchvision_ref import models

    return models().resnet50().eval()


def _check_resnet50(imported, reference: torch.nn.Module) -> None:  # type: ignore[no-untyped-def]
    text = imported.text
    assert len(text.splitlines()) <= 60, text
    assert [line.split("repeat: ")[1].split(",")[0] for line in text.splitlines() if "repeat: " in line] == \
        ["3", "4", "6", "3"]
    total = imported.spec.compiled.costs.total
    assert (total.params, total.macs) == (25_557_032, 4_089_184_256)
    module = build_module(imported.spec.compiled).eval()
    module.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(module(x), reference(x), atol=1e-5, rtol=1e-5)


@pytest.mark.slow
def test_torchvision_resnet50_through_onnx(tmp_path: Path) -> None:
    reference = _torchvision_resnet50()
    path = tmp_path / "resnet50.onnx"
    torch.onnx.export(reference, (torch.randn(1, 3, 224, 224),), str(path), dynamo=True, optimize=False)
    _check_resnet50(import_model("onnx", str(path)), reference)


@pytest.mark.slow
def test_torchvision_resnet50_through_torch_fx() -> None:
    reference = _torchvision_resnet50()
    imported = import_model("torch", "torchvision.models:resnet50")
    _check_resnet50(imported, reference)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the TorchScript exporter is deprecated, still common
def test_torchscript_exporter_names_and_folded_batch_norm(tmp_path: Path) -> None:
    """The legacy exporter folds batch norm and names initializers `onnx::Conv_N`: ids come from node names
    (`/layer/layer.0/conv/Conv` -> `layer.0.conv`), shared zero biases behind `Identity` stay biases."""
    from tests.import_models import small

    reference = small().eval()
    path = tmp_path / "small.onnx"
    torch.onnx.export(reference, (torch.randn(1, 3, 224, 224),), str(path), dynamo=False)
    imported = import_model("onnx", str(path))
    text = imported.text
    assert "stage: {id: layer, block: " in text and "repeat: 3" in text, text
    folded = sum(p.numel() for p in reference.parameters()) - 3 * 8  # each bn's 16 become the conv's 8 biases
    assert imported.spec.compiled.costs.total.params == folded
    module = build_module(imported.spec.compiled).eval()
    module.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in imported.state.items()}, strict=True)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(module(x), reference(x), atol=1e-5, rtol=1e-5)
