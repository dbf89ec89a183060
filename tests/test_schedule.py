"""The one schedule every writer follows (archc/passes/schedule.py), its liveness policy in both backends, and norm
folding keyed on op capabilities (archc/passes/fold.py)."""

from __future__ import annotations

import onnx
import pytest
import torch

from archc.compiler import Compiled, compile_text
from archc.emit.onnx_builder import LAYER_KEY
from archc.emit.onnx_export import export_onnx, verify_onnx
from archc.emit.torch_module import build_module
from archc.emit.torch_source import torch_source
from archc.passes.fold import fold_pairs
from archc.passes.pipeline import SCHEDULE
from archc.passes.resources import estimate

DEAD_AUX = """
name: dead_aux
inputs: {image: [3, 8, 8]}
outputs: [head]
body:
  - conv: {id: stem, out: 4, k: 3, p: 1}
  - bn: {id: stem_bn}
  - relu: {id: act}
  - conv: {id: aux, out: 6, k: 1}
  - bn: {id: aux_bn}
  - relu: {id: aux_act}
  - conv: {id: head, from: act, out: 5, k: 1}
"""


def _randomised(compiled: Compiled) -> torch.nn.Module:
    """Eval-mode module whose norms are far from the identity, so a wrong fold shows in the outputs."""
    torch.manual_seed(0)
    module = build_module(compiled).eval()
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    return module


def _onnx_layers(model: onnx.ModelProto) -> set[str]:
    return {p.value for node in model.graph.node for p in node.metadata_props if p.key == LAYER_KEY}


def test_schedule_order_liveness_and_input_types() -> None:
    compiled = compile_text(DEAD_AUX)
    schedule = compiled.schedule()
    assert compiled.analysis(SCHEDULE) is schedule  # computed once, then read by every writer
    assert schedule.computed() == ["stem", "stem_bn", "act", "head"]
    assert schedule.dead == ["aux", "aux_bn", "aux_act"]
    freed = {step.node.name: step.freed for step in schedule.steps}
    assert freed == {"stem": ["image"], "stem_bn": ["stem"], "act": ["stem_bn"], "head": ["act"]}
    head = schedule.steps[-1]
    assert head.sources == ["act"] and [t.shape for t in head.in_types] == [(4, 8, 8)]
    # the dead layers' input types too: their modules are built (PyTorch's constructor reads them from here)
    assert {name: [t.shape for t in types] for name, types in schedule.in_types().items()} == {
        "stem": [(3, 8, 8)], "stem_bn": [(4, 8, 8)], "act": [(4, 8, 8)], "head": [(4, 8, 8)],
        "aux": [(4, 8, 8)], "aux_bn": [(6, 8, 8)], "aux_act": [(6, 8, 8)]}


def test_the_torch_emitter_reads_input_types_from_the_schedule(monkeypatch: pytest.MonkeyPatch) -> None:
    compiled = compile_text(DEAD_AUX)
    schedule = compiled.schedule()
    asked: list[str] = []
    real = type(schedule).in_types

    def counted(self: object) -> dict:
        asked.append("in_types")
        return real(self)

    monkeypatch.setattr(type(schedule), "in_types", counted)
    source = torch_source(compiled, follow_params=False)
    assert asked == ["in_types"]
    assert "self.aux = nn.Conv2d(4, 6, kernel_size=1)" in source  # a dead layer's module, from its scheduled types


def test_a_dead_branch_is_computed_by_neither_backend() -> None:
    compiled = compile_text(DEAD_AUX)
    module = _randomised(compiled)
    called: set[str] = set()
    for name, sub in module.named_modules():
        if name:
            sub.register_forward_hook(lambda m, i, o, name=name: called.add(name))
    module(torch.randn(1, 3, 8, 8))
    model = export_onnx(compiled, module.state_dict(), fold_bn=False)
    with_modules = {name for name, _ in module.named_modules() if name}
    assert with_modules == {"stem", "stem_bn", "aux", "aux_bn", "head"}  # the dead layers' modules exist
    assert called == {"stem", "stem_bn", "head"}
    assert _onnx_layers(model) == {"stem", "stem_bn", "act", "head"} == set(compiled.schedule().computed())
    assert "self.aux(" not in torch_source(compiled)
    assert verify_onnx(compiled, model, module).ok


def test_the_resources_estimate_counts_only_computed_values() -> None:
    plane = 8 * 8 * 4  # one float32 channel
    dead = estimate(compile_text(DEAD_AUX).graph, export=True, verify=True)
    # peak at batch 2: head (5 channels) written while act (4) is held; the dead aux branch is not counted
    assert (dead.batch, dead.activation_bytes) == (2, 2 * (4 + 5) * plane)
    live = estimate(compile_text(DEAD_AUX.replace("outputs: [head]", "outputs: [head, aux_act]")).graph,
                    export=True, verify=True)
    # aux_bn written while aux is held and act waits for head: 4 + 6 + 6 channels
    assert live.activation_bytes == 2 * (4 + 6 + 6) * plane


TRANSPOSE_BN = """
name: up
inputs: {image: [4, 5, 5]}
body:
  - conv_transpose: {id: up, out: 6, k: 3, s: 2, p: 1, groups: {groups}, bias: {bias}}
  - bn: {id: up_bn}
  - relu
"""


@pytest.mark.parametrize(("groups", "bias"), [(1, "false"), (2, "true")])
def test_conv_transpose_and_bn_fold_and_match_pytorch(groups: int, bias: str) -> None:
    compiled = compile_text(TRANSPOSE_BN.replace("{groups}", str(groups)).replace("{bias}", bias))
    assert fold_pairs(compiled.schedule(), set(compiled.graph.outputs.values())) == {"up": "up_bn"}
    module = _randomised(compiled)
    model = export_onnx(compiled, module.state_dict(), fold_bn=True)
    assert [node.op_type for node in model.graph.node] == ["ConvTranspose", "Relu"]
    report = verify_onnx(compiled, model, module)
    assert report.ok and report.max_rel <= 1e-5


def test_nothing_folds_into_an_op_without_the_capability() -> None:
    compiled = compile_text("""
name: no_fold
inputs: {x: [8]}
body:
  - linear: {id: fc, out: 4}
  - bn: {id: fc_bn}
""")
    assert fold_pairs(compiled.schedule(), set(compiled.graph.outputs.values())) == {}
