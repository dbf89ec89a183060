"""Block-local values (`let:`) and the copy counters of stages (`copy`, `copies`, `block_index`, `block_count`)."""

from __future__ import annotations

import pytest

from archc.compiler import compile_text
from archc.errors import SpecError

LET = """
name: t
inputs: {x: [8, 16, 16]}
blocks:
  mb:
    args: {expand: 4}
    let: {hidden: $in_channels * $expand, half: $hidden // 2}
    body:
      - conv: {id: expand, out: $hidden, k: 1}
      - conv: {id: reduce, out: $half, k: 1}
body:
  - mb: {id: a}
  - mb: {id: b, expand: 2}
"""


def test_let_values_are_evaluated_in_order_from_args_and_input_channels() -> None:
    graph = compile_text(LET, "t.yaml").graph
    assert graph.node("a.expand").out_type.shape == (32, 16, 16)
    assert graph.node("a.reduce").out_type.shape == (16, 16, 16)
    assert graph.node("b.expand").out_type.shape == (32, 16, 16)
    assert graph.node("b.reduce").out_type.shape == (16, 16, 16)


def test_a_failing_let_value_is_reported_once_at_the_value_naming_the_call() -> None:
    with pytest.raises(SpecError) as info:
        compile_text(LET.replace("$hidden // 2", "$hiden // 2"), "t.yaml")
    assert [d.format() for d in info.value.diagnostics] == [
        "t.yaml:7:49: E403: a: let 'half': unknown name 'hiden'; did you mean 'hidden'? (known names: expand, hidden, "
        "in_channels, in_shape) (for the call on line 12)"]


def test_a_let_value_named_like_an_argument_is_refused() -> None:
    with pytest.raises(SpecError) as info:
        compile_text(LET.replace("let: {hidden:", "let: {expand:"), "t.yaml")
    assert [d.format() for d in info.value.diagnostics] == [
        "t.yaml:7:11: E106: a: 'expand' is both an argument and a `let` value of block 'mb'; rename one"]


COUNTERS = """
name: t
inputs: {x: [4]}
params: {sd: 0.2}
blocks:
  blk:
    args: {p: float}
    body:
      - dropout: {id: drop, p: $p}
body:
  - stage: {id: s1, block: blk, repeat: 2, args: {p: "${sd * block_index / block_count}"}}
  - group:
      id: g
      body:
        - stage: {id: s2, block: blk, repeat: 3, args: {p: "${sd * block_index / block_count}"}}
  - stage: {id: s3, body: [{dropout: {id: d, p: "${copy / copies}"}}], repeat: 2}
"""


def test_copy_counters_count_this_stage_and_every_stage_of_the_network() -> None:
    graph = compile_text(COUNTERS, "t.yaml").graph
    rates = {n.name: n.params.p for n in graph.nodes() if n.op == "dropout"}
    # block_count: the 7 copies of the stages s1, s2 (inside a group) and s3
    assert rates == {"s1.0.drop": 0.0, "s1.1.drop": 0.2 / 7, "g.s2.0.drop": 0.2 * 2 / 7,
                     "g.s2.1.drop": 0.2 * 3 / 7, "g.s2.2.drop": 0.2 * 4 / 7, "s3.0.d": 0.0, "s3.1.d": 0.5}


def test_copy_arguments_are_evaluated_per_copy_with_first_overrides() -> None:
    text = COUNTERS.replace('args: {p: "${sd * block_index / block_count}"}}\n  - group',
                            'args: {p: $copy * 0.25}, first: {p: 0.5}}\n  - group')
    graph = compile_text(text, "t.yaml").graph
    assert [graph.node(f"s1.{i}.drop").params.p for i in range(2)] == [0.5, 0.25]


def test_block_count_is_unknown_when_a_repeat_reads_the_input_shape() -> None:
    text = COUNTERS.replace("}], repeat: 2}", "}], repeat: $in_channels // 2}")
    with pytest.raises(SpecError) as info:
        compile_text(text, "t.yaml")
    why = ("'block_count' is unknown: a `repeat` or `if:` of a stage outside blocks reads more than the params, so the "
           "network's stage copies cannot be counted beforehand")
    assert [d.format() for d in info.value.diagnostics] == [
        f"t.yaml:11:54: E403: s1: 'p': {why}", f"t.yaml:15:60: E403: g.s2: 'p': {why}"]


def test_the_guides_stochastic_depth_example_grows_linearly_over_all_blocks() -> None:
    from tests.test_docs import EXAMPLES

    example = next(e for e in EXAMPLES if "name: depth_demo" in e)
    graph = compile_text(example).graph
    rates = [n.params.p for n in graph.nodes() if n.op == "dropout"]
    assert rates == pytest.approx([0.0, 0.2 / 6, 0.4 / 6, 0.6 / 6, 0.0, 0.05])
