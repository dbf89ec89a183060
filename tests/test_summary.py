"""`archc summary --json`'s text: the same document as :func:`summary_json`, one layer or group per line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from archc.compiler import compile_file, compile_text
from archc.emit.summary import summary_json, summary_json_text

SPECS = Path(__file__).resolve().parent.parent / "specs"


@pytest.mark.parametrize("name", ["resnet50", "googlenet", "mlp", "unet", "attention_head"])  # unet: fractional strides
def test_text_is_the_summary_document(name: str) -> None:
    c = compile_file(SPECS / f"{name}.yaml")
    text = summary_json_text(c)
    doc = summary_json(c)
    assert json.loads(text) == doc
    assert list(json.loads(text)) == list(doc)  # the keys in the same order
    lines = text.splitlines()
    assert lines[0] == "{" and lines[-1] == "}" and text.endswith("}\n")
    start = lines.index(' "layers": [')
    rows = lines[start + 1:start + 1 + len(doc["layers"])]
    layer_lines = [line.removeprefix("  ").removesuffix(",") for line in rows]
    assert layer_lines == [json.dumps(layer) for layer in doc["layers"]]  # byte for byte what json.dumps writes


def test_empty_groups_and_escaped_text() -> None:
    doc = 'doc: "a \\"quoted\\" caf\\u00e9\\nline"\n'  # YAML escapes: quotes, a non-ASCII letter, a line break
    c = compile_text("name: tiny\n" + doc + "inputs: {x: [4]}\nbody:\n  - relu: {id: act}\n")
    text = summary_json_text(c)
    assert ' "doc": "a \\"quoted\\" caf\\u00e9\\nline",\n' in text
    assert ' "groups": []\n}\n' in text
    assert '  {"path": "act", "op": "relu", ' in text
    assert json.loads(text) == summary_json(c)


def test_fractional_strides_are_written_as_json_floats() -> None:
    c = compile_text("name: up\ninputs: {x: [3, 8, 8]}\nbody:\n  - upsample: {id: up, scale: 2}\n")
    text = summary_json_text(c)
    assert '"receptive_field": {"size": [1, 1], "stride": [0.5, 0.5], "padding": [0, 0]}}' in text
    assert text == summary_json_text(c) and json.loads(text) == summary_json(c)


def test_totals_say_what_macs_count() -> None:
    """The MACs total is followed by what it holds; a transformer layer's attention matmuls are in it."""
    from archc.report.layer_table import summary_text

    c = compile_text("name: attn\ninputs: {x: [10, 8]}\nbody:\n  - multihead_attention: {id: t, heads: 2}\n")
    lines = summary_text(c).splitlines()
    at = lines.index("MACs: 4,160 (0.00 G; FLOPs = 2 x MACs = 0.00 G)")  # 4 x 10 x 8^2 + 2 x 10^2 x 8
    assert lines[at + 1] == ("MACs count convolutions, linear layers and matrix products (attention's QK^T and AV "
                             "included)")
