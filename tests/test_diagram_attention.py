"""Attention in diagrams: one node labelled with its heads and width, transformer stages folded `x 12` by default and
opened by depth, tokens drawn with their [L, D] shape."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from archc.compiler import Compiled, compile_file, compile_text
from archc.emit.diagram import to_dot
from archc.ops.registry import known_op

SPECS = Path(__file__).resolve().parent.parent / "specs"
NODE = re.compile(r'^\s*"([^"]+)" \[label=<(.*)>', re.M)


def _nodes(dot: str) -> dict[str, str]:
    return dict(NODE.findall(dot))


@pytest.fixture(scope="module")
def vit() -> Compiled:
    return compile_file(SPECS / "vit_b_16.yaml")


@pytest.fixture(scope="module")
def gpt() -> Compiled:
    return compile_file(SPECS / "gpt_decoder.yaml")


def test_vit_folds_its_encoder_and_draws_attention_with_heads_and_width(vit: Compiled) -> None:
    nodes = _nodes(to_dot(vit))
    main = [n for n in nodes if not n.startswith("inset:")]
    assert len(main) == 13
    assert "encoder_block x 12" in nodes["scope:encoder.layers"]
    attention = [label for label in nodes.values() if "multihead_attention" in label]
    assert len(attention) == 1 and "multihead_attention 12 heads, 768" in attention[0]  # in the block's inset
    assert "197x768" in nodes["tokens"]  # tokens [L, D]: the class token joined the 196 patches


def test_depth_opens_the_encoder_one_attention_node_per_layer(vit: Compiled) -> None:
    layers = [n for n in _nodes(to_dot(vit, depth=3)) if n.startswith("scope:encoder.layers.")]
    assert layers == [f"scope:encoder.layers.encoder_layer_{i}" for i in range(12)]
    nodes = _nodes(to_dot(vit, depth=4))
    assert len(nodes) == 96
    attention = [name for name, label in nodes.items() if "multihead_attention 12 heads, 768" in label]
    assert attention == [f"encoder.layers.encoder_layer_{i}.self_attention" for i in range(12)]


def test_gpt_attention_is_one_causal_node_in_its_folded_block(gpt: Compiled) -> None:
    nodes = _nodes(to_dot(gpt))
    assert "gpt_block x 12" in nodes["scope:transformer.h"]
    sdpa = [label for label in nodes.values() if "scaled_dot_product_attention" in label]
    assert len(sdpa) == 1 and "scaled_dot_product_attention 12 heads, 768, causal" in sdpa[0]


@pytest.mark.parametrize(("tokens", "params", "label"), [
    ("[10, 64]", "heads: 8", "8 heads, 64"),
    ("[10, 64]", "causal: true", "1 head, 64, causal"),
    ("[4, 10, 16]", "causal: false", "4 heads, 16 each"),
])
def test_scaled_dot_product_attention_label(tokens: str, params: str, label: str) -> None:
    compiled = compile_text(f"name: a\ninputs: {{x: {tokens}}}\nbody:\n"
                            f"  - scaled_dot_product_attention: {{id: att, from: [x, x, x], {params}}}\n")
    node = compiled.graph.node("att")
    assert known_op(node.op).label(node.params, node.out_type) == label
