"""Budgets (E501) are checked analytically, before anything is allocated, and each one can be raised.

Every budget is exercised twice on the same spec: refused under the default (or a lowered) limit, accepted once the
limit is raised, with the exact totals the refusal was about.
"""

from __future__ import annotations

import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest

import archc.compiler
from archc.compiler import Compiled, compile_text
from archc.errors import Diagnostic, SpecError
from archc.limits import DEFAULT_LIMITS, Limits
from archc.lower.budget import Counter
from archc.lower.constructs import CONSTRUCT_COUNTS
from archc.lower.lowerer import Lowerer
from archc.spec.model import CONSTRUCTS
from archc.spec.report import Reporter

ARCHC = Path(sys.executable).parent / "archc"

HUGE_PARAMS = """\
name: huge_params
inputs: {x: [1000000]}
body:
  - linear: {id: fc, out: 1000000}
"""
WIDE_CONV = """\
name: wide_conv
inputs: {image: [3, 1000, 1000]}
body:
  - conv: {id: conv, out: 4096, k: 3, p: 1, bias: false}
"""
HUGE_INPUT = """\
name: huge_input
inputs: {image: [3, 50000, 50000]}
body:
  - global_avgpool
"""
MANY_ACTIVATIONS = """\
name: many_activations
inputs: {image: [64, 2000, 2000]}
blocks:
  unit: {body: [relu]}
body:
  - stage: {id: layers, block: unit, repeat: 100}
"""
NESTED_REPEATS = """\
name: nested_repeats
inputs: {x: [8]}
blocks:
  inner: {body: [{stage: {body: [relu], repeat: 20}}]}
body:
  - relu
  - stage: {id: outer, block: inner, repeat: 30}
"""
SHAPE_DEPENDENT_REPEATS = """\
name: shape_dependent
inputs: {x: [20]}
blocks:
  inner: {body: [{stage: {body: [relu], repeat: "${in_channels}"}}]}
body:
  - stage: {id: outer, block: inner, repeat: 30}
"""
SKIPPED_STEPS = """\
name: skipped
inputs: {x: [8]}
blocks:
  b0: {body: [{relu: {if: false}}, {relu: {if: false}}, {relu: {if: false}}, {relu: {if: false}}, relu]}
  b1: {body: [b0, b0, b0, b0, b0]}
  b2: {body: [b1, b1, b1, b1, b1]}
body: [b2]
"""
SHAPE_DEPENDENT_SKIPS = """\
name: skipped_late
inputs: {x: [8]}
blocks:
  b0:
    body:
      - group: {if: "${in_channels < 100}", body: [relu]}
      - group: {if: "${in_channels < 100}", body: [relu]}
      - relu
  b1: {body: [b0, b0, b0, b0, b0]}
body: [b1, b1, b1, b1, b1]
"""
BLOCK_CHAIN = "name: chain\ninputs: {x: [8]}\nblocks:\n  b0: {body: [relu]}\n" + "".join(
    f"  b{i}: {{body: [b{i - 1}]}}\n" for i in range(1, 40)) + "body: [b39]\n"


def refused(text: str, limits: Limits = DEFAULT_LIMITS) -> Diagnostic:
    """The single E501 compiling ``text`` under ``limits`` reports."""
    with pytest.raises(SpecError) as info:
        compile_text(text, "spec.yaml", limits=limits)
    assert [d.code for d in info.value.diagnostics] == ["E501"], info.value
    return info.value.diagnostics[0]


def raised(**limits: int) -> Limits:
    return DEFAULT_LIMITS.with_overrides(limits)


def test_params_budget() -> None:
    d = refused(HUGE_PARAMS)
    assert "1,000,001,000,000 parameters and buffers, more than 10,000,000,000 (limit max_params)" in d.message
    assert (d.pos.line, d.pos.col) == (4, 5)
    c = compile_text(HUGE_PARAMS, limits=raised(max_params=10**13))
    assert c.costs.total.params == 1_000_001_000_000
    assert c.costs.total.macs == 10**12


def test_params_are_counted_not_allocated() -> None:
    """A trillion parameters (4 TB of float32) compile in a few MB: the budget is arithmetic on shapes."""
    tracemalloc.start()
    try:
        c = compile_text(HUGE_PARAMS, limits=raised(max_params=10**13))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert c.costs.total.params == 1_000_001_000_000
    assert peak < 20 * 2**20


def test_tensor_elements_budget() -> None:
    d = refused(WIDE_CONV)
    assert "[4096, 1000, 1000] has 4,096,000,000 elements per sample, more than 2,147,483,647" in d.message
    assert "(limit max_tensor_elements)" in d.message
    assert (d.pos.line, d.path) == (4, "conv")
    c = compile_text(WIDE_CONV, limits=raised(max_tensor_elements=5 * 10**9))
    assert c.graph.node("conv").out_type.shape == (4096, 1000, 1000)
    assert c.costs.total.params == 4096 * 3 * 9


def test_input_elements_budget() -> None:
    d = refused(HUGE_INPUT)
    assert d.message == ("input 'image' of shape [3, 50000, 50000] has 7,500,000,000 elements per sample, more than "
                         "2,147,483,647 (limit max_tensor_elements)")
    assert (d.pos.line, d.pos.col) == (2, 17)
    c = compile_text(HUGE_INPUT, limits=raised(max_tensor_elements=10**10))
    assert c.graph.node("image").out_type.shape == (3, 50000, 50000)


def test_input_dimension_budget() -> None:
    d = refused(HUGE_PARAMS, raised(max_dim=999_999))
    assert d.message == "input 'x' of shape [1000000] has a dimension above 999,999 (limit max_dim)"


def test_activation_budget() -> None:
    per_layer = 64 * 2000 * 2000 * 4
    d = refused(MANY_ACTIVATIONS, raised(max_activation_bytes=50 * per_layer))
    assert f"layer outputs take {100 * per_layer:,} bytes per sample" in d.message
    assert "(limit max_activation_bytes)" in d.message
    c = compile_text(MANY_ACTIVATIONS, limits=raised(max_activation_bytes=100 * per_layer))
    assert c.costs.total.activation_bytes == 100 * per_layer
    assert c.costs.total.layers == 100


def test_layer_budget_is_checked_before_lowering(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nested literal repeats are counted from the source: lowering never starts."""

    def no_lowering(*args: object) -> None:
        raise AssertionError("lowering started")

    with monkeypatch.context() as patch:
        patch.setattr(archc.compiler, "lower", no_lowering)
        d = refused(NESTED_REPEATS, raised(max_layers=600))
    assert d.message == ("the model would have more than 600 layers after expanding blocks and repeats up to this "
                         "step (limit max_layers)")
    assert (d.pos.line, d.pos.col, d.path) == (7, 46, "outer")
    c = compile_text(NESTED_REPEATS, limits=raised(max_layers=601))
    assert c.costs.total.layers == 601


def test_layer_budget_while_lowering() -> None:
    """Counts that depend on shapes are unknown before lowering, which refuses them as it goes."""
    d = refused(SHAPE_DEPENDENT_REPEATS, raised(max_layers=500))
    assert "(limit max_layers)" in d.message
    c = compile_text(SHAPE_DEPENDENT_REPEATS, limits=raised(max_layers=600))
    assert c.costs.total.layers == 600


def test_step_budget_counts_skipped_steps() -> None:
    d = refused(SKIPPED_STEPS, raised(max_steps=150))
    assert d.message == ("more than 150 steps after expanding blocks and repeats up to this step, counting steps "
                         "skipped by `if` (limit max_steps)")
    # 1 + 5 + 25 + 125 steps: b2, its 5 calls of b1, their 25 calls of b0 and the 5 steps of each b0
    c = compile_text(SKIPPED_STEPS, limits=raised(max_steps=156))
    assert c.costs.total.layers == 25


def test_step_budget_while_lowering() -> None:
    """`if` conditions on shapes are unknown before lowering, so the steps they guard count only when lowered."""
    # certain before lowering: 5 + 25 + 75 steps (b1 calls, b0 calls, b0 steps); lowering also enters the 50 groups
    d = refused(SHAPE_DEPENDENT_SKIPS, raised(max_steps=150))
    assert d.message == "more than 150 steps after expanding blocks and repeats, counting steps skipped by `if` " \
                        "(limit max_steps)"
    c = compile_text(SHAPE_DEPENDENT_SKIPS, limits=raised(max_steps=155))
    assert c.costs.total.layers == 75


def test_block_depth_budget() -> None:
    d = refused(BLOCK_CHAIN)
    assert d.message == "blocks nested deeper than 32"
    c: Compiled = compile_text(BLOCK_CHAIN, limits=raised(max_block_depth=40))
    assert c.costs.total.layers == 1


def test_limits_from_the_command_line(tmp_path: Path) -> None:
    spec = tmp_path / "huge.yaml"
    spec.write_text(HUGE_PARAMS)
    refused_run = subprocess.run([str(ARCHC), "check", str(spec)], capture_output=True, text=True, timeout=60)
    assert refused_run.returncode == 1
    assert refused_run.stderr.startswith(f"{spec}:4:5: E501: ")
    accepted = subprocess.run([str(ARCHC), "check", str(spec), "--limit", "max_params=10_000_000_000_000"],
                              capture_output=True, text=True, timeout=60)
    assert accepted.returncode == 0, accepted.stderr
    assert "1,000,001,000,000 params" in accepted.stdout
    unknown = subprocess.run([str(ARCHC), "check", str(spec), "--limit", "max_parms=1"], capture_output=True,
                             text=True, timeout=60)
    assert unknown.returncode == 2
    assert "unknown limit(s) max_parms" in unknown.stderr


def test_nesting_deeper_than_the_stack_is_refused() -> None:
    """Raised limits can allow more nesting than Python's stack holds: a located E005, never a RecursionError."""
    chain = "name: chain\ninputs: {x: [8]}\nblocks:\n  b0: {body: [relu]}\n" + "".join(
        f"  b{i}: {{body: [b{i - 1}]}}\n" for i in range(1, 8000)) + "body: [b7999]\n"
    with pytest.raises(SpecError) as info:
        compile_text(chain, "spec.yaml", limits=raised(max_block_depth=10**6))
    assert [d.format() for d in info.value.diagnostics] == [
        "spec.yaml:8004:1: E005: blocks and constructs are nested too deeply to compile (limits max_depth, "
        "max_block_depth)"]
    assert sys.getrecursionlimit() < 20_000  # restored


@pytest.mark.parametrize("path", sorted((Path(__file__).resolve().parent.parent / "specs").glob("*.yaml")),
                         ids=lambda p: p.stem)
def test_expansion_bound_never_exceeds_what_lowering_builds(path: Path) -> None:
    """The count made before lowering is a lower bound (so it never refuses a spec that fits), and a close one."""
    c = archc.compiler.compile_file(path)
    counter = Counter(c.header, c.params, DEFAULT_LIMITS, CONSTRUCT_COUNTS)
    layers, steps = counter.steps(c.header.body, counter.params, ())
    lowerer = Lowerer(c.header, c.params, Reporter(c.doc), DEFAULT_LIMITS, str(path))
    lowerer.run()
    assert steps <= lowerer.budget.steps_lowered
    assert layers <= c.costs.total.layers
    assert layers >= 0.5 * c.costs.total.layers  # only merges, projections and shape-dependent steps are missed


SHAPE_DEPENDENT_STAGE_OF_BLOCKS = """\
name: stage_of_blocks
inputs: {x: [8]}
blocks:
  unit: {body: [{linear: {out: 8}}, relu, relu]}
body:
  - stage: {id: s, block: unit, repeat: "${in_channels * 10000}"}
"""


def test_stage_of_blocks_is_refused_before_it_expands() -> None:
    """A repeat read from the input's shape is unknown before lowering; the stage counts its copies before building
    the first one (it used to build 200,000 layers first: 5 s, 0.5 GB)."""
    start = time.perf_counter()
    d = refused(SHAPE_DEPENDENT_STAGE_OF_BLOCKS)
    elapsed = time.perf_counter() - start
    assert d.format() == ("spec.yaml:6:41: E501: s: 80,000 copies of at least 3 layers each would make the model "
                          "larger than 200,000 layers (limit max_layers)")
    assert elapsed < 3, elapsed  # a sanity bound, not a benchmark: the refusal builds nothing
    c = compile_text(SHAPE_DEPENDENT_STAGE_OF_BLOCKS.replace("10000", "10"), limits=raised(max_layers=240))
    assert c.costs.total.layers == 240
    d = refused(SHAPE_DEPENDENT_STAGE_OF_BLOCKS.replace("10000", "10"), raised(max_layers=239))
    assert d.message == ("80 copies of at least 3 layers each would make the model larger than 239 layers "
                         "(limit max_layers)")


def test_stage_counts_its_steps_before_it_expands() -> None:
    text = SHAPE_DEPENDENT_STAGE_OF_BLOCKS.replace("10000", "10")
    d = refused(text, raised(max_steps=240))
    assert d.message == ("80 copies of at least 3 steps each would pass 240 steps, counting steps skipped by `if` "
                         "(limit max_steps)")
    assert (d.pos.line, d.pos.col, d.path) == (6, 41, "s")


def test_expansion_count_fails_closed_on_an_unknown_construct(monkeypatch: pytest.MonkeyPatch) -> None:
    """A construct added without teaching the counter is a bug reported as such, never counted as nothing."""
    monkeypatch.setitem(CONSTRUCTS, "loop", CONSTRUCTS["group"])
    header = archc.compiler.SpecHeader.model_validate({"name": "n", "inputs": {"x": [8]},
                                                       "body": [{"loop": {"body": ["relu"]}}]})
    counter = Counter(header, {}, DEFAULT_LIMITS, CONSTRUCT_COUNTS)
    with pytest.raises(RuntimeError, match="does not know the construct 'loop'"):
        counter.steps(header.body, {}, ())
