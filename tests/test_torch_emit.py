"""PyTorch emission: the generated source is standalone, lint-clean and deterministic; the module it defines computes
exactly the shapes and holds exactly the parameters the IR says, and matches torchvision numerically."""

from __future__ import annotations

import ast
import importlib.util
import io
import re
import subprocess
import sys
import tokenize
import traceback
from pathlib import Path

import networkx as nx
import pytest

torch = pytest.importorskip("torch")

from emit_specs import MODEL_TENSORS, TRANSFORMER  # noqa: E402

from archc.compiler import Compiled, compile_file, compile_text  # noqa: E402
from archc.emit.torch_module import (  # noqa: E402
    build_module,
    load_source,
    module_class,
    write_torch_source,
)
from archc.emit.torch_source import TorchEmitError, default_class_name, module_ref, torch_source  # noqa: E402
from archc.errors import SpecError, UsageError  # noqa: E402
from archc.ir.graph import Graph, Node  # noqa: E402
from archc.ops.base import TorchCode  # noqa: E402
from archc.ops.registry import all_ops, get_op  # noqa: E402
from archc.ops.tensor_state import batch_free, unit_batch_layers  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
RESNET50 = SPECS / "resnet50.yaml"


# --- helpers ----------------------------------------------------------------------------------------------------------
def random_inputs(compiled: Compiled, batch: int = 2, seed: int = 0) -> list[torch.Tensor]:
    """Normal floats, or indices 0..3 for integer inputs (every embedding in these tests has at least 4 rows)."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for name in compiled.graph.inputs:
        t = compiled.graph.node(name).out_type
        shape = (batch, *t.shape)
        dtype = getattr(torch, t.dtype)
        out.append(torch.randn(shape, generator=gen, dtype=dtype) if dtype.is_floating_point
                   else torch.randint(0, 4, shape, generator=gen, dtype=dtype))
    return out


def traced_shapes(compiled: Compiled, batch: int = 2) -> tuple[dict[str, tuple[int, ...]], torch.nn.Module, tuple]:
    """Run the trace build; returns the runtime shape (batch removed) of every node, the module and its output."""
    module = module_class(compiled, trace=True)().eval()
    shapes: dict[str, tuple[int, ...]] = {}
    unit = unit_batch_layers(compiled.graph)

    def record(path: str, value: torch.Tensor) -> None:
        if path in compiled.graph and batch_free(compiled.graph.node(path).op, compiled.graph.node(path).params):
            shapes[path] = tuple(value.shape)  # a tensor the model holds, used as stored: no batch axis
            return
        # gather's result and its plumbing have a batch axis of size 1, which broadcasts
        assert value.shape[0] == (1 if path in unit else batch), f"{path}: the batch axis was lost"
        shapes[path] = tuple(value.shape[1:])

    with torch.no_grad():
        out = module(*random_inputs(compiled, batch), _archc_record=record)
    return shapes, module, out if isinstance(out, tuple) else (out,)


def layer_modules(module: torch.nn.Module, compiled: Compiled) -> dict[str, torch.nn.Module]:
    """The module of every layer whose op has one (a merge node may share the path of a container)."""
    graph = compiled.graph
    paths = {n.name for n in graph.nodes() if not n.is_input and _torch_code(graph, n).module}
    return {path: sub for path, sub in module.named_modules() if path in paths}


def _first(y: torch.Tensor | tuple) -> torch.Tensor:
    """A module's output tensor: nn.MultiheadAttention returns (output, weights)."""
    return y[0] if isinstance(y, tuple) else y


def _module_gives_output(call: str) -> bool:
    """The layer's output is its module's (first) output: ``{m}(...)`` or ``{m}(...)[0]``, not a module call wrapped
    in more code (a channels-first layernorm moves the channels around its module)."""
    if not call.startswith("{m}("):
        return False
    depth = 0
    for i, char in enumerate(call):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == ")" and depth == 0:
            return call[i + 1:] in ("", "[0]")
    return False


def hooked_shapes(module: torch.nn.Module, compiled: Compiled, batch: int = 2) -> tuple[dict[str, tuple], tuple]:
    """Shapes produced by every layer module of the normal (untraced) build, from forward hooks."""
    shapes: dict[str, tuple[int, ...]] = {}
    for path, sub in layer_modules(module, compiled).items():
        if not _module_gives_output(_torch_code(compiled.graph, compiled.graph.node(path)).call):
            continue  # the forward uses its weights directly (conv_table, scale, gated_conv's sub-modules)
        sub.register_forward_hook(lambda _m, _a, y, path=path: shapes.__setitem__(path, tuple(_first(y).shape[1:])))
    with torch.no_grad():
        out = module(*random_inputs(compiled, batch))
    return shapes, out if isinstance(out, tuple) else (out,)


def assert_module_matches_ir(compiled: Compiled) -> torch.nn.Module:
    """Every node's runtime shape equals its inferred shape; parameter and buffer counts equal archc's costs."""
    graph = compiled.graph
    shapes, traced, traced_out = traced_shapes(compiled)
    expected = {n.name: n.out_type.shape for n in graph.nodes()}
    assert shapes == expected

    module = module_class(compiled)().eval()
    module.load_state_dict(traced.state_dict(), strict=True)
    layers = layer_modules(module, compiled)
    # a `parameter` or `buffer` layer is a tensor registered on its owner, not a module
    assert set(layers) == {n.name for n in graph.nodes()
                           if not n.is_input and _torch_code(graph, n).module and not _torch_code(graph, n).state}
    hooked, out = hooked_shapes(module, compiled)
    computed = set(graph.outputs.values()).union(*(nx.ancestors(graph.nx, o) for o in graph.outputs.values()))
    called = {p for p in layers if _module_gives_output(_torch_code(graph, graph.node(p)).call)}
    assert hooked == {path: expected[path] for path in called if path in computed}
    assert len(out) == len(traced_out) == len(graph.outputs)
    for a, b in zip(out, traced_out, strict=True):
        assert torch.equal(a, b), "trace mode changed what forward computes"

    # conv_table holds a dense weight times a fixed 0/1 mask; archc counts only the connected weights
    masked = sum(int((m.mask.expand_as(m.weight) == 0).sum()) for m in module.modules() if hasattr(m, "mask"))
    assert sum(p.numel() for p in module.parameters()) - masked == compiled.costs.total.params
    state = module.state_dict()  # non-persistent buffers (conv_table's fixed mask) are not model state
    assert sum(b.numel() for name, b in module.named_buffers() if name in state) == compiled.costs.total.buffers
    for key in module.state_dict():  # every key is a layer path and a local name: `layer1.0.conv1.weight`
        parts = key.split(".")  # or a layer path alone: a `parameter` or `buffer` layer's own tensor
        assert any(".".join(parts[:i]) in graph for i in range(1, len(parts) + 1)), key
    return module


def _torch_code(graph: Graph, node: Node) -> TorchCode:
    op = get_op(node.op)
    assert op is not None
    return op.torch(node.params, [n.out_type for n in graph.inputs_of(node.name)], node.out_type)


def ruff(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", *args, str(path)],
                          capture_output=True, text=True, check=False)


# --- small specs ------------------------------------------------------------------------------------------------------
SHORTCUTS = """
name: shortcuts
inputs: {image: [8, 15, 15]}
body:
  - residual: {id: ident, body: [{conv: {id: conv, out: 8, k: 3, p: 1}}, {bn: {id: bn}}]}
  - residual:
      id: proj
      shortcut: {kind: projection, id: downsample}
      body: [{conv: {id: conv, out: 16, k: 3, s: 2, p: 1, bias: false}}, {bn: {id: bn}}]
  - residual: {id: pad, shortcut: zero_pad, body: [{conv: {id: conv, out: 24, k: 3, s: 2, p: 1}}]}
  - residual: {id: plain, shortcut: {kind: projection, bn: false}, body: [{conv: {out: 32, k: 1}}]}
  - residual: {id: explicit, shortcut: [{conv: {id: c, out: 40, k: 1}}], body: [{conv: {out: 40, k: 3, p: 1}}]}
  - relu
"""

DENSE = """
name: dense
inputs: {image: [6, 8, 8]}
blocks:
  dense_layer:
    args: {growth: 4}
    body:
      - residual:
          merge: concat
          body: [{bn: {id: norm}}, relu, {conv: {id: conv, out: $growth, k: 3, p: 1, bias: false}}]
body:
  - stage: {id: block1, block: dense_layer, repeat: 3, prefix: denselayer, start: 1}
"""

BRANCHES = """
name: branchy
inputs: {x: [6, 10, 10]}
body:
  - branches:
      id: mix
      paths:
        a: {conv: {out: 4, k: 1}}
        b: [{conv: {out: 4, k: 3, p: 1}}, relu]
        c: [{maxpool: {k: 3, s: 1, p: 1}}]
  - branches: {merge: add, paths: [[{conv: {out: 14, k: 1}}], [{conv: {out: 14, k: [1, 3], p: [0, 1]}}]]}
  - branches:
      id: gate
      merge: mul
      paths: {feat: [{conv: {out: 14, k: 3, p: 1, groups: 2}}], att: [global_avgpool, sigmoid]}
"""

STAGES = """
name: staged
inputs: {image: [3, 32, 32]}
blocks:
  unit:
    args: {out: int, stride: 1}
    body: [{conv: {id: conv, out: $out, k: 3, s: $stride, p: 1, bias: false}}, {bn: {id: bn}}, relu]
body:
  - stage: {id: layer1, block: unit, repeat: 3, args: {out: 8}, first: {stride: 2}}
  - stage: {id: extra, repeat: 2, prefix: rep, start: 1, body: [{conv: {id: c, out: 8, k: 1}}, relu]}
"""

TWO_OUTPUTS = """
name: two_heads
inputs: {image: [3, 16, 16]}
outputs: [logits, pooled]
body:
  - conv: {id: stem, out: 8, k: 3, s: 2, p: 1}
  - relu
  - global_avgpool: {id: pooled, keepdims: false}
  - linear: {id: logits, out: 5}
"""

NAMED_OUTPUTS = """
name: named_heads
inputs: {image: [3, 16, 16]}
outputs: {features: stem, scores: head}
body:
  - conv: {id: stem, out: 8, k: 3, p: 1}
  - conv: {id: head, out: 2, k: 1}
"""

TWO_INPUTS = """
name: two_inputs
inputs: {a: [3, 8, 8], b: [3, 8, 8]}
body:
  - add: {from: [a, b]}
  - conv: {id: conv, out: 4, k: 3}
  - mul: {from: [conv, conv]}
"""

EVERY_OP_2D = """
name: every_op_2d
inputs: {image: [4, 15, 15]}
body:
  - conv: {id: grouped, out: 8, k: 3, p: 1, groups: 2}
  - conv: {id: depthwise, k: 3, p: 2, d: 2, depthwise: true, bias: false}
  - conv: {id: k1x7, out: 8, k: [1, 7], p: [0, 3]}
  - conv: {id: same_even, out: 8, k: 4, p: same}
  - conv: {id: strided, out: 8, k: [3, 5], s: [2, 1], p: valid}
  - bn: {id: bn, eps: 0.001, momentum: 0.01}
  - bn: {id: bn_plain, affine: false}
  - prelu: {id: prelu}
  - leaky_relu: {slope: 0.2}
  - maxpool: {id: pool_ceil, k: 2, s: 2, ceil_mode: true}
  - avgpool: {id: avg, k: 2, s: 1, p: 1, count_include_pad: false}
  - lrn: {id: lrn, size: 3, alpha: 0.0001, beta: 0.75, k: 2}
  - zeropad: {p: [0, 1, 0, 1]}
  - pad_channels: {out: 12, s: 2}
  - relu6
  - hardswish
  - hardsigmoid
  - silu
  - tanh
  - gelu: {approximate: tanh}
  - gelu
  - dropout: {id: drop, p: 0.2}
  - layernorm: {id: ln, dims: 2}
  - adaptive_avgpool: {id: adaptive, size: [3, 2]}
  - concat: {id: wide, from: [adaptive, adaptive], axis: -1}
  - global_avgpool: {id: gap, keepdims: false}
  - bn: {id: bn_flat}
  - linear: {id: fc, out: 5, bias: false}
  - prelu: {id: prelu_shared, shared: true}
  - softmax
"""

EVERY_OP_1D = """
name: every_op_1d
inputs: {signal: [4, 20]}
body:
  - conv: {id: conv, out: 8, k: 5, p: 2, d: 1}
  - bn: {id: bn}
  - relu
  - maxpool: {k: 3, s: 2, ceil_mode: true}
  - avgpool: {k: 2}
  - layernorm: {id: ln}
  - linear: {id: per_step, out: 6}
  - softmax: {axis: -1}
  - global_avgpool: {keepdims: true}
  - flatten
"""

EVERY_OP_3D = """
name: every_op_3d
inputs: {volume: [2, 6, 8, 8]}
body:
  - conv: {id: conv, out: 4, k: [1, 3, 3], p: [0, 1, 1]}
  - bn: {id: bn}
  - maxpool: {k: 2}
  - adaptive_avgpool: {size: 2}
  - flatten
"""

EVERY_OP_EXTRA = """
name: every_op_extra
inputs: {image: [8, 12, 12]}
body:
  - conv_transpose: {id: up, out: 8, k: 4, s: 2, p: 1}
  - conv_transpose: {id: up_grouped, out: 8, k: 3, p: 2, d: 2, groups: 2, bias: false, s: 2, output_padding: 1}
  - adaptive_maxpool: {id: amp, size: [5, 7]}
  - group_norm: {id: gn, groups: 4}
  - instance_norm: {id: inorm, affine: true}
  - instance_norm: {id: inorm_plain}
  - scale: {id: sc}
  - scale: {id: sc_nobias, bias: false}
  - elu: {alpha: 0.5}
  - elu
  - selu
  - mish
  - dropout2d: {id: d2, p: 0.1}
  - channel_shuffle: {groups: 2}
  - identity: {id: tap}
  - gated_conv: {id: glu, out: 8, k: 3, p: 1}
  - conv_table: {id: table, k: 3, p: 1, connections: [[0, 1], [1, 2, 3], [4, 5, 6, 7]]}
  - subsample: {id: pool2, k: 2}
  - upsample: {scale: 2, mode: nearest}
  - upsample: {size: [5, 7], mode: bilinear, align_corners: true}
  - conv: {out: 12, k: 1}
  - pixel_shuffle: {r: 2}
  - global_maxpool: {keepdims: true}
"""

TENSOR_OPS = """
name: tensor_ops
inputs: {x: [6, 4, 5]}
outputs: [flat, strided, scores, tap]
body:
  - mean: {id: m, axes: [1, 2], keepdims: true}
  - max: {id: mx, from: x, axes: [0]}
  - unsqueeze: {id: un, from: mx, axes: [0]}
  - repeat: {id: rep, from: un, shape: [6, -1, -1]}
  - repeat: {id: tile, from: x, times: [1, 2, 1]}
  - sub: {id: centred, from: [x, m]}
  - maximum: {id: clipped, from: [centred, m]}
  - add: {id: summed, from: [clipped, rep]}
  - slice: {id: first3, axis: 0, start: 0, end: 3}
  - slice: {id: strided, from: tile, axis: 1, start: 1, step: 2}
  - permute: {id: perm, from: first3, axes: [1, 2, 0]}
  - reshape: {id: flat, shape: [-1, 3]}
  - squeeze: {id: sq, from: m, axes: [1, 2]}
  - identity: {id: sq_none, from: sq}
  - identity: {id: tap, from: summed}
  - global_maxpool: {id: gmp, from: x, keepdims: false}
  - add: {id: s, from: [sq_none, gmp]}
  - log_softmax: {id: scores, from: s}
"""

UNPOOL = """
name: unpool
inputs: {image: [4, 8, 8]}
body:
  - conv: {id: enc, out: 4, k: 3, p: 1}
  - maxpool: {id: pool, k: 2}
  - conv: {id: mid, out: 4, k: 1}
  - maxunpool: {from: [mid, enc], k: 2}
"""

DEFORM = """
name: deform
inputs: {image: [4, 9, 9]}
body:
  - conv: {id: offsets, out: 18, k: 3, s: 2, p: 1}
  - deform_conv: {id: dcn, from: [image, offsets], out: 6, k: 3, s: 2, p: 1}
"""

EMBEDDING = """
name: embed
inputs: {tokens: {shape: [7], dtype: int64}}
body:
  - embedding: {id: emb, num: 10, dim: 6, padding_idx: 0}
  - layernorm: {id: ln, dims: 1}
  - permute: {axes: [1, 0]}
  - conv: {id: conv, out: 4, k: 3, p: 1}
"""

SMALL = {
    "shortcuts": SHORTCUTS, "dense": DENSE, "branches": BRANCHES, "stages": STAGES, "two_outputs": TWO_OUTPUTS,
    "named_outputs": NAMED_OUTPUTS, "two_inputs": TWO_INPUTS, "every_op_2d": EVERY_OP_2D, "every_op_1d": EVERY_OP_1D,
    "every_op_3d": EVERY_OP_3D, "every_op_extra": EVERY_OP_EXTRA, "tensor_ops": TENSOR_OPS, "unpool": UNPOOL,
    "deform": DEFORM, "embedding": EMBEDDING, "transformer": TRANSFORMER, "model_tensors": MODEL_TENSORS,
}


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths:UserWarning")
@pytest.mark.parametrize("key", sorted(SMALL))
def test_small_spec_runtime_matches_ir(key: str) -> None:
    assert_module_matches_ir(compile_text(SMALL[key], f"<{key}>"))


def test_every_registered_op_is_exercised() -> None:
    used = {n.op for text in SMALL.values() for n in compile_text(text).graph.nodes()}
    missing = sorted(set(all_ops()) - used)
    assert not missing, f"add these ops to a spec in tests/test_torch_emit.py: {missing}"


def test_shortcut_kinds_build_the_right_modules() -> None:
    compiled = compile_text(SHORTCUTS)
    module = assert_module_matches_ir(compiled)
    keys = set(module.state_dict())
    assert {"proj.downsample.0.weight", "proj.downsample.1.running_mean", "plain.shortcut.0.weight",
            "explicit.shortcut.c.weight"} <= keys
    assert not any(k.startswith("plain.shortcut.1") for k in keys)  # bn: false
    assert not any(k.startswith(("ident.shortcut", "pad.shortcut")) for k in keys)  # identity, zero_pad: no weights
    assert module.proj.downsample["0"].stride == (2, 2)
    assert compiled.graph.node("pad.shortcut.0").op == "pad_channels"
    assert compiled.graph.node("pad").out_type.shape == (24, 4, 4)


def test_zero_pad_shortcut_keeps_input_channels_in_the_middle() -> None:
    compiled = compile_text("""
name: option_a
inputs: {image: [4, 6, 6]}
body:
  - residual: {shortcut: zero_pad, body: [{conv: {id: conv, out: 8, k: 1, s: 2, bias: false}}]}
""")
    module = build_module(compiled).eval()
    torch.nn.init.zeros_(module.conv.weight)  # ids inside an anonymous residual belong to the enclosing scope
    x = torch.randn(1, 4, 6, 6)
    with torch.no_grad():
        y = module(x)
    assert torch.equal(y[:, 2:6], x[:, :, ::2, ::2])  # 4 extra channels: 2 zero channels before, 2 after
    assert torch.count_nonzero(y[:, :2]) == 0 and torch.count_nonzero(y[:, 6:]) == 0


def test_dense_residual_concatenates_shortcut_first() -> None:
    compiled = compile_text(DENSE)
    module = assert_module_matches_ir(compiled)
    assert compiled.graph.outputs == {"output": "block1.denselayer3.0"}
    assert compiled.graph.node("block1.denselayer3.0").out_type.shape == (18, 8, 8)
    assert {"block1.denselayer1.norm.weight", "block1.denselayer3.conv.weight"} <= set(module.state_dict())
    x = torch.randn(2, 6, 8, 8)
    with torch.no_grad():
        y = module(x)
    assert torch.equal(y[:, :6], x)


def test_branches_merge_and_named_paths() -> None:
    compiled = compile_text(BRANCHES)
    module = assert_module_matches_ir(compiled)
    assert compiled.graph.node("mix").out_type.shape == (14, 10, 10)
    assert {"mix.a.weight", "mix.b.0.weight", "gate.feat.0.weight"} <= set(module.state_dict())
    assert module.gate.feat["0"].groups == 2
    source = torch_source(compiled)
    assert "def forward(self, x: torch.Tensor)" in source
    assigned = {t.id for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Assign) for t in n.targets
                if isinstance(t, ast.Name)}
    assert "x" not in assigned, "the model input x is never reassigned"


def test_stage_first_overrides_and_prefix() -> None:
    module = assert_module_matches_ir(compile_text(STAGES))
    assert module.layer1[0].conv.stride == (2, 2)  # a stage is an nn.Sequential of its blocks
    assert module.layer1[1].conv.stride == module.layer1[2].conv.stride == (1, 1)
    assert {"extra.rep1.c.weight", "extra.rep2.c.weight"} <= set(module.state_dict())
    assert "extra.rep0.c.weight" not in module.state_dict()


def test_multiple_outputs_are_a_tuple_in_spec_order() -> None:
    compiled = compile_text(TWO_OUTPUTS)
    source = torch_source(compiled)
    assert "-> tuple[torch.Tensor, torch.Tensor]:" in source
    assert "# outputs in the spec's order: logits, pooled" in source
    logits, pooled = build_module(compiled).eval()(torch.randn(3, 3, 16, 16))
    assert logits.shape == (3, 5) and pooled.shape == (3, 8)

    features, scores = build_module(compile_text(NAMED_OUTPUTS))(torch.randn(1, 3, 16, 16))
    assert features.shape == (1, 8, 16, 16) and scores.shape == (1, 2, 16, 16)


def test_multiple_inputs_are_forward_arguments_in_order() -> None:
    compiled = compile_text(TWO_INPUTS)
    assert "def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:" in torch_source(compiled)
    module = build_module(compiled).eval()
    a, b = torch.randn(2, 3, 8, 8), torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        y = module(a, b)
        conv = module.conv(a + b)
    assert torch.allclose(y, conv * conv)


def test_ceil_mode_pooling_rounds_up() -> None:
    graph = compile_text(EVERY_OP_2D).graph
    # 7 x 11 input, window 2 stride 2: floor gives 3 x 5, ceil 4 x 6
    assert graph.inputs_of("pool_ceil")[0].out_type.spatial == (7, 11)
    assert graph.node("pool_ceil").out_type.spatial == (4, 6)


# --- the generated text -----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def resnet50() -> Compiled:
    return compile_file(RESNET50)


def test_resnet50_source_is_deterministic_and_standalone(resnet50: Compiled) -> None:
    source = torch_source(resnet50)
    assert source == torch_source(compile_file(RESNET50))
    tree = ast.parse(source)
    imports = [ast.unparse(n) for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert imports == ["import torch", "from torch import nn"]  # F is imported only when used
    classes = [n for n in tree.body if isinstance(n, ast.ClassDef)]
    assert [c.name for c in classes] == ["Bottleneck", "Resnet50"]  # one class per block, then the model
    assert "generated by archc 0.1.0" in ast.get_docstring(tree).lower()
    assert "classes=1000" in ast.get_docstring(tree)
    forward = next(f for f in classes[-1].body if isinstance(f, ast.FunctionDef) and f.name == "forward")
    assert not any(isinstance(n, (ast.For, ast.While, ast.ListComp, ast.GeneratorExp)) for n in ast.walk(forward))
    assert [a.arg for a in forward.args.args] == ["self", "image"]
    assert "_archc_record" not in source
    assert '            x = self.downsample["0"](x)  # resnet50.yaml:24\n' in source  # under `if`, in the block
    assert "        self.layer1 = nn.Sequential(  # resnet50.yaml:32\n" in source


def test_resnet50_source_passes_ruff_and_py_compile(resnet50: Compiled, tmp_path: Path) -> None:
    files = [tmp_path / "resnet50.py"]
    files[0].write_text(torch_source(resnet50), encoding="utf-8")
    for key, text in SMALL.items():
        files.append(tmp_path / f"{key}.py")
        files[-1].write_text(torch_source(compile_text(text)), encoding="utf-8")
    for file in files:
        subprocess.run([sys.executable, "-m", "py_compile", str(file)], check=True)
    default = ruff(tmp_path, "--isolated")
    assert default.returncode == 0, default.stdout + default.stderr
    # the project's stricter rules too, line length included (conv_table's mask is wrapped inside its brackets)
    project = ruff(tmp_path, "--config", str(ROOT / "pyproject.toml"))
    assert project.returncode == 0, project.stdout + project.stderr


def test_uses_functional_import_only_when_needed() -> None:
    source = torch_source(compile_text(EVERY_OP_2D))
    assert "import torch.nn.functional as F\n" in source
    assert "F.pad(" in source and "F.hardswish(" in source


def test_written_source_imports_and_loads_the_same_weights(tmp_path: Path) -> None:
    compiled = compile_text(SHORTCUTS)
    target = write_torch_source(compiled, tmp_path / "shortcuts.py")
    with pytest.raises(UsageError):
        write_torch_source(compiled, target)
    write_torch_source(compiled, target, force=True)
    spec = importlib.util.spec_from_file_location("shortcuts_generated", target)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    standalone = mod.Shortcuts().eval()
    built = build_module(compiled).eval()
    standalone.load_state_dict(built.state_dict(), strict=True)
    x = torch.randn(2, 8, 15, 15)
    with torch.no_grad():
        assert torch.equal(standalone(x), built(x))


def test_free_text_cannot_escape_docstrings_or_comments() -> None:
    compiled = compile_text(r'''
name: tricky
doc: "Ends a docstring? \"\"\" then code: import os; a backslash \\ and a bell \a. Trailing quote\""
inputs: {image: [3, 8, 8]}
params: {note: "x\"\"\"\ny = 1"}
body:
  - group: {id: g, label: "two\nlines import os", body: [{conv: {id: c, out: 4, k: 1}}]}
''')
    source = torch_source(compiled)
    tree = ast.parse(source)
    assert [type(n).__name__ for n in tree.body] == ["Expr", "Import", "ImportFrom", "ClassDef"]
    doc = ast.get_docstring(tree)
    assert 'docstring? """ then code: import os; a backslash \\ and a bell \x07. Trailing quote"\n' in doc
    assert 'note=\'x"""\\ny = 1\'' in doc
    comments = [t.string for t in tokenize.generate_tokens(io.StringIO(source).readline) if t.type == tokenize.COMMENT]
    assert "# g (group): two\\nlines import os" in comments
    assert build_module(compiled)(torch.randn(1, 3, 8, 8)).shape == (1, 4, 8, 8)


def test_names_that_are_keywords_or_not_identifiers() -> None:
    compiled = compile_text("""
name: kw
inputs: {class: [3, 8, 8], "3d": [4, 8, 8]}
body:
  - conv: {id: lambda, from: class, out: 4, k: 1}
  - group: {id: None, body: [{conv: {id: def, out: 4, k: 1}}, relu]}
  - add: {id: sum, from: [lambda, None]}
  - add: {from: [sum, "3d"]}
""")
    source = torch_source(compiled)
    assert "def forward(self, class_: torch.Tensor, input_3d: torch.Tensor)" in source
    assert 'getattr(self, "lambda")' in source and 'getattr(self, "None")["def"]' in source
    module = assert_module_matches_ir(compiled)
    assert {"lambda.weight", "None.def.weight"} <= set(module.state_dict())


def test_module_ref_uses_attributes_where_possible() -> None:
    assert module_ref("layer1.0.conv1") == 'self.layer1["0"].conv1'
    assert module_ref("0.fc") == 'getattr(self, "0").fc'
    assert module_ref("g.class") == 'self.g["class"]'
    assert default_class_name("resnet50") == "Resnet50"
    assert default_class_name("vgg16_bn") == "Vgg16Bn"
    assert default_class_name("3d_net") == "Model3dNet"
    assert default_class_name("none") == "NoneModel"


@pytest.mark.parametrize("body", [
    "[{conv: {id: forward, out: 4, k: 1}}]",
    "[{group: {id: g, body: [{conv: {id: keys, out: 4, k: 1}}]}}]",
    "[{group: {id: training, body: [{conv: {id: c, out: 4, k: 1}}]}}]",
])
def test_names_pytorch_reserves_are_refused_at_check_time(body: str) -> None:
    with pytest.raises(SpecError) as info:
        compile_text(f"name: bad\ninputs: {{x: [3, 8, 8]}}\nbody: {body}\n", "bad.yaml")
    assert [d.code for d in info.value.diagnostics] == ["E206"]


@pytest.mark.parametrize(("body", "message"), [
    ('[{conv: {out: 4, k: 1}}, {group: {id: "0", body: [{conv: {id: c, out: 4, k: 1}}]}}]',
     "cannot nest this layer's module inside the conv layer '0'"),
])
def test_layer_names_pytorch_cannot_hold_are_reported(body: str, message: str) -> None:
    compiled = compile_text(f"name: bad\ninputs: {{x: [3, 8, 8]}}\nbody: {body}\n", "bad.yaml")
    with pytest.raises(TorchEmitError, match=r"^bad\.yaml:3:") as info:
        torch_source(compiled)
    assert message in str(info.value)
    assert info.value.exit_code == 1


def test_unreachable_layers_keep_their_modules_but_are_not_computed() -> None:
    compiled = compile_text("""
name: side
inputs: {image: [3, 8, 8]}
outputs: [main]
body:
  - conv: {id: main, out: 4, k: 1}
  - conv: {id: aux, from: image, out: 2, k: 1}
""")
    source = torch_source(compiled)
    assert "self.aux = nn.Conv2d(3, 2, kernel_size=1)" in source
    assert "self.aux(" not in source and "# 1 layer with no path to an output" in source
    assert_module_matches_ir(compiled)  # the trace build computes every layer


def test_tracebacks_show_the_generated_line() -> None:
    module = build_module(compile_text(TWO_INPUTS))
    with pytest.raises(RuntimeError) as info:
        module(torch.randn(1, 3, 8, 8), torch.randn(1, 3, 9, 9))
    frames = [f for f in traceback.extract_tb(info.tb) if f.filename.startswith("<archc:two_inputs:")]
    assert frames and frames[0].line == "x = a + b"


def test_build_module_overrides_and_api(resnet50: Compiled) -> None:
    import archc

    assert archc.build_module is build_module and archc.torch_source is torch_source
    module = build_module(RESNET50, classes=10)
    assert module.fc.out_features == 10
    assert type(module).__name__ == "Resnet50"
    with pytest.raises(TypeError, match="need a spec path"):
        build_module(resnet50, classes=10)
    assert build_module(resnet50).fc.out_features == 1000
    cls = load_source(torch_source(resnet50, "Net"), "Net", "resnet50")
    assert cls.__name__ == "Net"
    with pytest.raises(ValueError, match="not a usable Python identifier"):
        torch_source(resnet50, "class")


@pytest.mark.slow
@pytest.mark.parametrize("path", sorted(SPECS.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_zoo_spec_runtime_matches_ir(path: Path) -> None:
    assert_module_matches_ir(compile_file(path))


# --- torchvision ------------------------------------------------------------------------------------------------------
def test_resnet50_matches_torchvision(resnet50: Compiled) -> None:
    from torchvision_ref import torchvision_model

    module = build_module(resnet50)
    assert sum(p.numel() for p in module.parameters()) == 25_557_032
    reference = torchvision_model("resnet50").eval()
    module.load_state_dict(reference.state_dict(), strict=True)
    module.eval()
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert (module(x) - reference(x)).abs().max().item() <= 1e-5


def test_resnet50_runtime_shapes_match_ir(resnet50: Compiled) -> None:
    assert_module_matches_ir(resnet50)


ZOO = ["alexnet", "densenet121", "googlenet", "resnet18", "vgg16"]
ZOO_SLOW = ["densenet169", "densenet201", "inception_v3", "mobilenet_v2", "resnet34", "resnet101", "resnet152",
            "resnext50_32x4d", "resnext101_32x8d", "squeezenet1_0", "squeezenet1_1", "vgg11", "vgg11_bn", "vgg13",
            "vgg13_bn", "vgg16_bn", "vgg19", "vgg19_bn", "wide_resnet50_2", "wide_resnet101_2"]
"""Specs written with torchvision's layer names, checked against the torchvision model of the same name."""


@pytest.mark.parametrize("name", [*ZOO, *(pytest.param(n, marks=pytest.mark.slow) for n in ZOO_SLOW)])
def test_zoo_spec_matches_torchvision(name: str) -> None:
    path = SPECS / f"{name}.yaml"
    if not path.exists():
        pytest.skip(f"specs/{name}.yaml is not written yet")
    from torchvision_ref import torchvision_model

    compiled = compile_file(path)
    kw = {}
    if name in ("googlenet", "inception_v3"):  # the spec decides whether the auxiliary classifiers exist
        kw = {"init_weights": False, "aux_logits": any(n.startswith("aux") for n in compiled.graph.nx.nodes)}
    reference = torchvision_model(name, **kw).eval()
    module = build_module(compiled)
    module.load_state_dict(reference.state_dict(), strict=True)
    module.eval()
    x = random_inputs(compiled, seed=2)
    with torch.no_grad():
        ours = module(*x)
        theirs = reference(*x)
    first = ours[0] if isinstance(ours, tuple) else ours  # torchvision returns only the logits in eval mode
    assert (first - theirs).abs().max().item() <= 1e-5


# --- in-place activations ---------------------------------------------------------------------------------------------
INPLACE = """
name: inplace
inputs: {x: [3, 8, 8]}
outputs: {logits: fc, kept: r_out}
body:
  - relu: {id: r_input}
  - conv: {id: c1, out: 4, k: 3, p: 1}
  - bn: {id: b1}
  - relu: {id: r_bn}
  - conv: {id: c2, out: 4, k: 3, p: 1}
  - relu: {id: r_shared}
  - conv: {id: c3, out: 4, k: 1, from: c2}
  - add: {id: sum, from: [c3, r_shared]}
  - relu: {id: r_sum}
  - sigmoid: {id: gate}
  - relu: {id: r_gate}
  - relu6: {id: r6, from: b1}
  - conv: {id: c4, out: 4, k: 1, from: r_gate}
  - relu: {id: r_out}
  - global_avgpool: {from: r6}
  - flatten
  - linear: {id: fc, out: 2}
"""



def test_activations_overwrite_inputs_nothing_else_reads() -> None:
    """relu_ where its input dies there and comes from conv, bn, add...; plain relu on a model input, on a value read
    again (c2 feeds c3 too, b1 feeds relu6 too) and on sigmoid's output (its backward reads it). add accumulates
    into its first input when that dies there."""
    body = torch_source(compile_text(INPLACE)).split("def forward", 1)[1]
    assert "r_bn = r_bn.add_(r_shared)" in body  # c3's output accumulates the shortcut, as `out += identity`
    statements = [line.strip() for line in body.splitlines() if "relu" in line.split(" = ")[-1]]
    assert statements == [
        "r_input = torch.relu(x)",
        "r_bn = torch.relu(r_input)",
        "r_shared = torch.relu(r_bn)",
        "r_bn = torch.relu_(r_bn)",
        "r_bn = torch.relu(r_bn)",
        "r_input = F.relu6(r_input, inplace=True)",
        "r_bn = torch.relu_(r_bn)",
    ]


@pytest.mark.parametrize("spec", ["inplace", "resnet18"])
def test_in_place_activations_train_like_out_of_place_ones(spec: str) -> None:
    """Forward and backward in training mode give the same outputs and gradients as the same source with every
    activation out of place: autograd never needs a value the in-place forms overwrite."""
    compiled = compile_text(INPLACE) if spec == "inplace" else compile_file(SPECS / f"{spec}.yaml")
    source = torch_source(compiled)
    assert "relu_(" in source
    assert re.search(r"\w+ = \w+\.add_\(\w+\)", source)
    plain = source.replace("torch.relu_(", "torch.relu(").replace(", inplace=True)", ")")
    plain = re.sub(r"(\w+)\.add_\((\w+)\)", r"\1 + \2", plain)
    name = default_class_name(compiled.graph.name)
    fast = load_source(source, name, "fast")().train()
    slow = load_source(plain, name, "slow")().train()
    slow.load_state_dict(fast.state_dict())
    inputs = random_inputs(compiled, batch=2)
    results = []
    for module in (fast, slow):
        xs = [x.clone().requires_grad_(True) for x in inputs]
        outs = module(*xs)
        outs = outs if isinstance(outs, tuple) else (outs,)
        sum(o.square().sum() for o in outs).backward()
        results.append(([o.detach() for o in outs], [x.grad for x in xs],
                        {k: p.grad for k, p in module.named_parameters()}))
    (outs_a, xgrad_a, pgrad_a), (outs_b, xgrad_b, pgrad_b) = results
    for a, b in zip([*outs_a, *xgrad_a], [*outs_b, *xgrad_b], strict=True):
        torch.testing.assert_close(a, b)
    assert pgrad_a.keys() == pgrad_b.keys()
    for key in pgrad_a:
        torch.testing.assert_close(pgrad_a[key], pgrad_b[key], msg=key)


def test_add_into_a_broadcast_first_input_stays_out_of_place() -> None:
    """`a.add_(b)` cannot grow `a`: when the first input is the smaller one the sum is a new tensor."""
    text = """
name: bcast
inputs: {x: [4, 8, 8]}
body:
  - conv: {id: c, out: 4, k: 1}
  - global_avgpool: {id: g, keepdims: true}
  - conv: {id: gate, out: 4, k: 1}
  - add: {id: s, from: [gate, c]}
"""
    compiled = compile_text(text)
    body = torch_source(compiled).split("def forward", 1)[1]
    assert ".add_(" not in body and " + " in body
    module = build_module(compiled).eval()
    x = random_inputs(compiled, batch=2)[0]
    c = module.c(x)
    torch.testing.assert_close(module(x), module.gate(c.mean((2, 3), keepdim=True)) + c)
