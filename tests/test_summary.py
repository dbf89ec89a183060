"""`archc summary --json`'s text: the same document as :func:`summary_json`, one layer or group per line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from archc.compiler import compile_file, compile_text
from archc.emit.summary import summary_json, summary_json_text

SPECS = Path(__file__).resolve().parent.parent / "specs"


@pytest.mark.parametrize("name", ["resnet50", "googlenet", "mlp"])
def test_text_is_the_summary_document(name: str) -> None:
    c = compile_file(SPECS / f"{name}.yaml")
    text = summary_json_text(c)
    doc = summary_json(c)
    assert json.loads(text) == doc
    assert list(json.loads(text)) == list(doc)  # the keys in the same order
    lines = text.splitlines()
    assert lines[0] == "{" and lines[-1] == "}" and text.endswith("}\n")
    start = lines.index(' "layers": [')
    assert [json.loads(line.rstrip(",")) for line in lines[start + 1:start + 1 + len(doc["layers"])]] == doc["layers"]


def test_empty_groups_and_escaped_text() -> None:
    doc = 'doc: "a \\"quoted\\" caf\\u00e9\\nline"\n'  # YAML escapes: quotes, a non-ASCII letter, a line break
    c = compile_text("name: tiny\n" + doc + "inputs: {x: [4]}\nbody:\n  - relu: {id: act}\n")
    text = summary_json_text(c)
    assert ' "doc": "a \\"quoted\\" caf\\u00e9\\nline",\n' in text
    assert ' "groups": []\n}\n' in text
    assert '  {"path": "act", "op": "relu", ' in text
    assert json.loads(text) == summary_json(c)
