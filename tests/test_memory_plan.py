"""The static memory planner (archc/memory/) against torch's own accounting of the generated module.

Measured with tests/torch_memory.py: saved-for-backward bytes through ``torch.autograd.graph.saved_tensors_hooks``
(one count per storage, parameters and buffers apart), the inference peak as the largest sum of live tensor storages a
``TorchDispatchMode`` sees in a no-grad eval forward (plus the inputs the caller holds), and parameter, gradient and
optimizer-state bytes after one ``backward()`` and ``torch.optim`` step.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from archc.compiler import compile_file, compile_text
from archc.memory.plan import plan_memory

torch = pytest.importorskip("torch")
sys.path.insert(0, str(Path(__file__).parent))

from op_cases import CASES, Case  # noqa: E402
from torch_memory import (  # noqa: E402
    inference_peak_bytes,
    model_inputs,
    saved_activation_bytes,
    training_peak_bytes,
    training_state_bytes,
)

from archc.emit.torch_module import build_module  # noqa: E402
from archc.ops.registry import all_ops  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
ZOO = sorted(p.stem for p in (ROOT / "specs").glob("*.yaml"))
FAST = {"lenet5", "resnet18", "mobilenet_v2", "densenet121", "alexnet_original", "gated_cnn"}
BATCH = 2


def _zoo_param(name: str) -> object:
    return name if name in FAST else pytest.param(name, marks=pytest.mark.slow)


def _measure(compiled: object, *, input_grads: bool = False) -> tuple[int, int]:
    module = build_module(compiled)
    inputs = model_inputs(compiled.graph, BATCH)
    if input_grads:
        for t in inputs:
            if t.is_floating_point():
                t.requires_grad_(True)
    saved = saved_activation_bytes(module, inputs)
    detached = [t.detach() for t in inputs]
    return saved, inference_peak_bytes(module, detached) + sum(t.nbytes for t in detached)


@pytest.mark.parametrize("name", [_zoo_param(n) for n in ZOO])
def test_zoo_saved_activations_and_inference_peak_match_torch(name: str) -> None:
    compiled = compile_file(ROOT / "specs" / f"{name}.yaml")
    plan = plan_memory(compiled, batch=BATCH, optimizer="sgd")
    saved, peak = _measure(compiled)
    assert abs(plan.activations - saved) <= 0.02 * saved, (plan.activations, saved)
    inference = plan_memory(compiled, batch=BATCH)
    assert abs(inference.activations - peak) <= 0.10 * peak, (inference.activations, peak)


@pytest.mark.parametrize("name", [_zoo_param(n) for n in ("lenet5", "resnet18", "mobilenet_v2", "vit_b_16", "unet")])
def test_training_step_peak_matches_torch(name: str) -> None:
    """The step's peak (gradients, saved tensors and transients alive at once in the backward pass) against the
    live bytes of a real forward and backward, inputs held by the caller added."""
    compiled = compile_file(ROOT / "specs" / f"{name}.yaml")
    plan = plan_memory(compiled, batch=BATCH, optimizer="sgd")
    inputs = model_inputs(compiled.graph, BATCH)
    measured = training_peak_bytes(build_module(compiled), inputs) + sum(t.nbytes for t in inputs)
    assert abs(plan.peak - measured) <= 0.10 * measured, (plan.peak, measured)


def test_resnet18_figures_are_exact() -> None:
    """The rules are exact, not merely within tolerance, on the common families (measured at batch 2)."""
    compiled = compile_file(ROOT / "specs" / "resnet18.yaml")
    plan = plan_memory(compiled, batch=BATCH, optimizer="sgd")
    assert plan.activations == 44_398_080  # what saved_tensors_hooks counts
    assert plan_memory(compiled, batch=BATCH).activations == 14_049_280  # what the dispatch-mode count peaks at
    saved, peak = _measure(compiled)
    assert (saved, peak) == (44_398_080, 14_049_280)


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam", "adamw"])
@pytest.mark.parametrize("name", ["lenet5", "resnet18", "gated_cnn",
                                  pytest.param("attention_head", marks=pytest.mark.slow)])
def test_weights_gradients_and_optimizer_state_equal_torch_optim(name: str, optimizer: str) -> None:
    compiled = compile_file(ROOT / "specs" / f"{name}.yaml")
    plan = plan_memory(compiled, batch=BATCH, optimizer=optimizer)
    got = training_state_bytes(build_module(compiled), model_inputs(compiled.graph, BATCH), optimizer)
    assert got == {"params": plan.weights.params, "grads": plan.gradients, "optimizer": plan.optimizer_state}


DEAD_BRANCH = """
name: dead_branch
inputs: {x: [3, 8, 8]}
outputs: [head]
body:
  - conv: {id: stem, out: 4, k: 3, p: 1}
  - conv: {id: unused, from: stem, out: 8, k: 3}
  - global_avgpool: {from: stem, keepdims: false}
  - linear: {id: head, out: 5}
"""


def test_a_layer_no_output_needs_gets_no_gradient_nor_optimizer_state() -> None:
    compiled = compile_text(DEAD_BRANCH, "dead.yaml")
    plan = plan_memory(compiled, batch=BATCH, optimizer="adam")
    stem, unused, head = 4 * 3 * 9 + 4, 8 * 4 * 9 + 8, 4 * 5 + 5
    assert plan.weights.params == 4 * (stem + unused + head)
    assert plan.gradients == 4 * (stem + head)
    assert plan.optimizer_state == 2 * 4 * (stem + head) + 4 * 4  # four tensors, each with a float32 step
    got = training_state_bytes(build_module(compiled), model_inputs(compiled.graph, BATCH), "adam")
    assert got == {"params": plan.weights.params, "grads": plan.gradients, "optimizer": plan.optimizer_state}


TIED = """
name: tied
inputs: {tokens: {shape: [5], dtype: int64}}
body:
  - embedding: {id: wte, num: 11, dim: 4}
  - linear: {id: mid, out: 4}
  - linear: {id: head, out: 11, tie: wte}
"""


@pytest.mark.parametrize("bias", [False, True])
def test_a_tied_weight_is_one_tensor_with_one_gradient(bias: bool) -> None:
    compiled = compile_text(TIED.replace("tie: wte", f"tie: wte, bias: {str(bias).lower()}"), "tied.yaml")
    plan = plan_memory(compiled, batch=BATCH, optimizer="adam")
    assert plan.weights.params == 4 * (11 * 4 + 4 * 4 + 4 + (11 if bias else 0))
    got = training_state_bytes(build_module(compiled), model_inputs(compiled.graph, BATCH), "adam")
    assert got == {"params": plan.weights.params, "grads": plan.gradients, "optimizer": plan.optimizer_state}


def test_every_registered_op_has_cases_checked_here() -> None:
    assert {case.op for case in CASES} == set(all_ops())


@pytest.mark.parametrize("case", CASES, ids=[f"{c.op}-{i}" for i, c in enumerate(CASES)])
def test_every_op_rule_matches_autograd(case: Case) -> None:
    """Each op's own rule, on every contract case, with inputs that need gradients (so that every rule is
    exercised), and its parameter tensors as the module allocates them."""
    compiled = compile_text(case.text, f"<{case.op}>")
    plan = plan_memory(compiled, batch=BATCH, optimizer="adam", input_grads=True)
    saved, _ = _measure(compiled, input_grads=True)
    assert abs(plan.activations - saved) <= 0.02 * saved, (plan.activations, saved)
    module = build_module(compiled)
    tensors = list(module.parameters())
    assert plan.weights.params == sum(t.nbytes for t in tensors)
    assert plan.optimizer_state == 2 * plan.weights.trained + 4 * len(tensors)  # every case computes every layer
