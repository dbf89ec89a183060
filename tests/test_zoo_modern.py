"""The modern networks of the zoo (issue 13: MobileNetV3, MnasNet, EfficientNet, RegNet, ConvNeXt, ViT, Swin), each
exact against torchvision's model of the same name: the parameter count and GFLOPS torchvision publishes, its state_dict
names and shapes (strict loading both ways), its eval outputs with its own random weights loaded, its stochastic depth
in train mode (the same mask under the same seed), the ONNX export verified in onnxruntime, and a readable folded
diagram.

The totals are written here as torchvision publishes them (its weights' metadata, checked below against typos), never
read back from archc. GFLOPS is written as printed, and compared to that many decimals.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from archc.compiler import Compiled, compile_file
from archc.emit.diagram import render, to_dot
from archc.emit.diagram.view import plan_view, repeat_labels

SPECS = Path(__file__).resolve().parent.parent / "specs"


@dataclass(frozen=True)
class Modern:
    spec: str
    params: int
    """Trainable parameters, as torchvision publishes them."""
    gflops: str
    """torchvision's GFLOPS (multiply-accumulates, in billions) as printed; compared to its decimals."""
    folded: dict[str, str] = field(default_factory=dict)
    """The stages the default diagram folds, and their labels."""
    runs: frozenset[str] = frozenset()
    """Runs of one block called in a plain list (torchvision's flat `features`), each drawn as one node named by its
    first call."""
    size: int = 224
    slow: bool = False
    """Eval outputs checked only with ``-m slow`` (several seconds of forward passes)."""
    onnx_by_default: bool = False
    """ONNX export and onnxruntime verification in the default suite; the rest only with ``-m slow``."""
    stochastic_depth: bool = False
    """The spec has torchvision's stochastic depth (a `stochastic_depth` param, torchvision's
    `stochastic_depth_prob`); its train mode is then checked too."""

    @property
    def places(self) -> int:
        return -int(Decimal(self.gflops).as_tuple().exponent)


CASES = [
    Modern("mobilenet_v3_large", 5_483_032, "0.217", slow=True,  # mobilenet_v3_small covers its blocks by default
           runs=frozenset(f"features.{i}" for i in (2, 4, 7, 11, 13))),
    Modern("mobilenet_v3_small", 2_542_856, "0.057", runs=frozenset(f"features.{i}" for i in (2, 4, 7, 9))),
    Modern("mnasnet1_0", 4_383_312, "0.314", folded={
        **{f"layers.{i}": "inverted_residual x 3" for i in (8, 9, 10)}, "layers.11": "inverted_residual x 2",
        "layers.12": "inverted_residual x 4", "layers.13": "inverted_residual x 1"}),
    Modern("efficientnet_b0", 5_288_548, "0.386", stochastic_depth=True, onnx_by_default=True, folded={
        "features.1": "mbconv x 1", "features.2": "mbconv x 2", "features.3": "mbconv x 2", "features.4": "mbconv x 3",
        "features.5": "mbconv x 3", "features.6": "mbconv x 4", "features.7": "mbconv x 1"}),
    Modern("efficientnet_v2_s", 21_458_488, "8.366", size=384, stochastic_depth=True, slow=True, folded={
        "features.1": "fused_mbconv x 2", "features.2": "fused_mbconv x 4", "features.3": "fused_mbconv x 4",
        "features.4": "mbconv x 6", "features.5": "mbconv x 9", "features.6": "mbconv x 15"}),
    Modern("regnet_y_400mf", 4_344_144, "0.402", folded={
        f"trunk_output.block{i}": f"bottleneck x {n}" for i, n in enumerate((1, 3, 6, 6), start=1)}),
    Modern("convnext_tiny", 28_589_128, "4.456", stochastic_depth=True, slow=True, folded={
        f"features.{i}": f"cn_block x {n}" for i, n in zip((1, 3, 5, 7), (3, 3, 9, 3), strict=True)}),
    Modern("vit_b_16", 86_567_656, "17.564", slow=True, folded={"encoder.layers": "encoder_block x 12"}),
    Modern("swin_t", 28_288_354, "4.491", stochastic_depth=True, slow=True, folded={
        f"features.{i}": f"swin_block x {n}" for i, n in zip((1, 3, 5, 7), (2, 2, 6, 2), strict=True)}),
]
MODERN_SPECS = {c.spec for c in CASES}
"""The specs this module pins (tests/test_zoo.py checks every spec is pinned somewhere)."""


def by_spec(cases: list[Modern], slow: Callable[[Modern], bool] = lambda _: False) -> Any:
    """Parametrise over ``cases``; those ``slow`` selects run only with ``-m slow``."""
    params = [pytest.param(c, id=c.spec, marks=pytest.mark.slow if slow(c) else ()) for c in cases]
    return pytest.mark.parametrize("case", params)


_compiled: dict[str, Compiled] = {}


def compiled(case: Modern) -> Compiled:
    if case.spec not in _compiled:
        _compiled[case.spec] = compile_file(SPECS / f"{case.spec}.yaml")
    return _compiled[case.spec]


class Torchvision:
    """torch, torchvision's models and archc's module builder, imported only by the tests that run models."""

    def __init__(self) -> None:
        self.torch = pytest.importorskip("torch")
        if importlib.util.find_spec("torchvision") is None:  # importorskip would import it without torchvision_ref
            pytest.skip("torchvision is not installed")
        from torchvision_ref import models, torchvision_model

        from archc.emit.torch_module import build_module

        self.models = models()
        self.model: Callable[..., Any] = torchvision_model
        self.build: Callable[..., Any] = build_module

    def reference(self, case: Modern, **kw: Any) -> Any:
        """torchvision's model with its own random initialisation, batch-norm statistics and shifts randomised so
        that eval mode does not normalise with the identity, layer scales near 1 and no parameter all zeros."""
        torch = self.torch
        torch.manual_seed(0)
        model = self.model(case.spec, **kw)
        with torch.no_grad():
            for bn in (m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)):
                bn.running_mean.uniform_(-0.5, 0.5)
                bn.running_var.uniform_(0.5, 2.0)
                bn.bias.uniform_(-0.5, 0.5)
            for name, tensor in model.named_parameters():
                if name.endswith("layer_scale"):  # ConvNeXt's 1e-6 would hide its residual branches and drop masks
                    tensor.uniform_(0.5, 1.5)
                elif not tensor.any():  # ViT's zero head and class token would make every output 0
                    tensor.normal_(0.0, 0.02)
        return model

    def ours(self, case: Modern, state: dict[str, Any]) -> Any:
        """archc's module for the spec with ``state`` loaded strictly."""
        module = self.build(compiled(case))
        module.load_state_dict(state, strict=True)
        return module

    def images(self, case: Modern, batch: int, seed: int = 1) -> Any:
        return self.torch.randn(batch, 3, case.size, case.size, generator=self.torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def tv() -> Torchvision:
    return Torchvision()


# --- the spec files ---------------------------------------------------------------------------------------------------
@by_spec(CASES)
def test_spec_is_short_and_cites_its_sources(case: Modern) -> None:
    text = (SPECS / f"{case.spec}.yaml").read_text(encoding="utf-8")
    assert text.splitlines()[0] == "# yaml-language-server: $schema=../docs/archc.schema.json"
    assert len(text.splitlines()) <= 120
    header = compiled(case).header
    assert header.name == case.spec
    assert f"(`torchvision.models.{case.spec}`)" in header.doc  # the builder
    assert re.search(r"\(\w[\w ]*(et al\.|and \w+) (19|20)\d\d, \"", header.doc)  # the paper: authors, year, title


# --- totals -----------------------------------------------------------------------------------------------------------
@by_spec(CASES)
def test_totals(case: Modern) -> None:
    total = compiled(case).costs.total
    assert total.params == case.params
    assert round(Decimal(total.macs) / 10**9, case.places) == Decimal(case.gflops)


@by_spec(CASES)
def test_published_figures_agree_with_torchvision_metadata(case: Modern, tv: Torchvision) -> None:
    weights = tv.models.get_model_weights(case.spec).DEFAULT
    assert (weights.meta["num_params"], str(weights.meta["_ops"])) == (case.params, case.gflops)
    # the GFLOPS are measured at the weights' evaluation crop, which is the spec's input size
    assert weights.transforms().crop_size == [case.size]
    assert compiled(case).graph.node("image").out_type.shape == (3, case.size, case.size)


# --- torchvision's names, shapes and outputs --------------------------------------------------------------------------
@by_spec(CASES)
def test_state_dict_loads_strictly_both_ways(case: Modern, tv: Torchvision) -> None:
    with tv.torch.device("meta"):  # names and shapes only: no memory, no initialisation
        ours = tv.build(compiled(case))
        # RegNet's builder computes its widths with tensors, which the meta device cannot read back
        theirs = tv.model(case.spec) if case.spec != "regnet_y_400mf" else None
    if theirs is None:
        theirs = tv.model(case.spec)
    their_state, our_state = theirs.state_dict(), ours.state_dict()
    assert sorted(set(their_state) ^ set(our_state)) == []
    assert {k for k, t in their_state.items() if t.shape != our_state[k].shape} == set()
    assert sum(p.numel() for p in ours.parameters()) == case.params
    ours.load_state_dict(their_state, strict=True, assign=True)  # assign: loading checks names and shapes, and
    theirs.load_state_dict(our_state, strict=True, assign=True)  # meta tensors hold no data to copy


@by_spec(CASES, slow=lambda c: c.slow)
def test_eval_outputs_match_torchvision(case: Modern, tv: Torchvision) -> None:
    theirs = tv.reference(case).eval()
    ours = tv.ours(case, theirs.state_dict()).eval()
    for batch in (1, 3):
        x = tv.images(case, batch)
        with tv.torch.no_grad():
            expected, got = theirs(x), ours(x)
        assert expected.shape == got.shape == (batch, 1000)
        assert expected.abs().max() > 0.01  # a real signal, not a vanishing one
        assert (got - expected).abs().max().item() <= 1e-5


STOCHASTIC = [c for c in CASES if c.stochastic_depth]
TORCHVISION_NAMES = {"stochastic_depth": "stochastic_depth_prob"}
"""Spec params under their torchvision builder's keyword, where it differs."""
FIXED_RATE = {"swin_t"}
"""Builders that fix `stochastic_depth_prob` (swin_t passes 0.2 itself): the train-mode test sets the modules' rates."""


@by_spec(STOCHASTIC, slow=lambda c: c.slow)
def test_stochastic_depth_rates_are_torchvisions(case: Modern, tv: Torchvision) -> None:
    from torchvision.ops import StochasticDepth

    theirs = tv.reference(case)
    # torchvision applies a block's StochasticDepth only where the block has its shortcut (EfficientNet's
    # use_res_connect); archc's spec puts drop_path exactly there
    applied = {f"{name}.{child}": module.p for name, parent in theirs.named_modules()
               for child, module in parent.named_children()
               if isinstance(module, StochasticDepth) and getattr(parent, "use_res_connect", True)}
    # Swin's block calls its one StochasticDepth module on both residual branches, where archc has a drop_path each:
    # compare the rates per block (a torchvision module's parent), every drop_path of ours inside one
    by_block = {name.rpartition(".")[0]: p for name, p in applied.items()}
    nodes = [n for n in compiled(case).graph.nodes() if n.op == "drop_path"]
    ours: dict[str, set[float]] = {}
    for n in nodes:
        block = next((b for b in by_block if n.name.startswith(f"{b}.")), n.name)
        ours.setdefault(block, set()).add(n.params.p)
    assert ours == {block: {p} for block, p in by_block.items()}
    rates = [n.params.p for n in nodes]
    assert rates == sorted(rates) and max(rates) > 0  # rising over the network


@by_spec(STOCHASTIC, slow=lambda c: c.slow)
def test_train_mode_drops_the_same_samples_as_torchvision(case: Modern, tv: Torchvision) -> None:
    # a high rate so that most batches drop some block for some sample, and no dropout so that only the masks differ
    changes = {"stochastic_depth": 0.5, **({"dropout": 0.0} if "dropout" in compiled(case).params else {})}
    keywords = {TORCHVISION_NAMES.get(k, k): v for k, v in changes.items()}
    if case.spec in FIXED_RATE:
        del keywords["stochastic_depth_prob"]
    theirs = tv.reference(case, **keywords).train()
    if case.spec in FIXED_RATE:  # the rates the model computes, rate * i / (blocks - 1), over its modules in order
        from torchvision.ops import StochasticDepth

        modules = [m for m in theirs.modules() if isinstance(m, StochasticDepth)]
        for i, module in enumerate(modules):
            module.p = changes["stochastic_depth"] * float(i) / (len(modules) - 1)
    c = compile_file(SPECS / f"{case.spec}.yaml", overrides={k: str(v) for k, v in changes.items()})
    ours = tv.build(c).train()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = tv.images(case, 4)
    outputs = []
    for seed in (1, 2):
        with tv.torch.no_grad():  # train mode's sampling, without the autograd graph
            tv.torch.manual_seed(seed)
            expected = theirs(x)
            tv.torch.manual_seed(seed)
            got = ours(x)
        assert (got - expected).abs().max().item() <= 1e-5
        outputs.append(got)
    assert (outputs[0] - outputs[1]).abs().max().item() > 0.01  # the masks differ between seeds, and they matter


# --- ONNX and diagrams ------------------------------------------------------------------------------------------------
@by_spec(CASES, slow=lambda c: not c.onnx_by_default)
def test_onnx_export_is_verified_in_onnxruntime(case: Modern, tv: Torchvision) -> None:
    pytest.importorskip("onnxruntime")
    from archc.emit.onnx_export import export_onnx, verify_onnx

    c = compiled(case)
    module = tv.ours(case, tv.reference(case).state_dict()).eval()
    report = verify_onnx(c, export_onnx(c, module.state_dict()), module)
    assert report.ok
    assert {d.case for d in report.diffs} == {"batch 1", "batch 2"}


@by_spec(CASES)
def test_default_diagram_folds_the_stages(case: Modern) -> None:
    graph = compiled(case).graph
    assert repeat_labels(graph) == case.folded
    view = plan_view(graph, depth=None, fold=None)
    folded = {item.scope for item in view.items.values() if item.scope}
    assert folded == set(case.folded) | case.runs
    dot = to_dot(compiled(case))
    assert all(label in dot for label in case.folded.values())
    if shutil.which("dot") is None:
        pytest.skip("Graphviz `dot` is not installed")
    svg = render(dot, "svg")
    assert ET.fromstring(svg).tag == "{http://www.w3.org/2000/svg}svg"


# --- input sizes from params ------------------------------------------------------------------------------------------
def test_vit_at_384_is_torchvisions_swag_model(tv: Torchvision) -> None:
    # `--set size=384` lengthens the position embedding to (384 / 16)^2 + 1 tokens: torchvision's 384x384 weights
    c = compile_file(SPECS / "vit_b_16.yaml", overrides={"size": "384"})
    weights = tv.models.ViT_B_16_Weights.IMAGENET1K_SWAG_E2E_V1
    assert weights.transforms().crop_size == [384]
    assert (c.costs.total.params, round(c.costs.total.macs / 10**9, 3)) == (86_859_496, 55.484)
    assert (weights.meta["num_params"], weights.meta["_ops"]) == (86_859_496, 55.484)
    with tv.torch.device("meta"):
        theirs = tv.model("vit_b_16", image_size=384)
        ours = tv.build(c)
    assert {k: tuple(t.shape) for k, t in ours.state_dict().items()} == {
        k: tuple(t.shape) for k, t in theirs.state_dict().items()}
    assert tuple(ours.state_dict()["encoder.pos_embedding"].shape) == (1, 577, 768)
