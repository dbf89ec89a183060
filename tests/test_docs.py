"""The docs stay true: spec examples compile, generated references match the registries, the schema file is current."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from archc.compiler import compile_text
from archc.ops.registry import all_ops
from archc.spec.schema import json_schema
from tools.docgen import GENERATED

ROOT = Path(__file__).resolve().parent.parent
LANGUAGE = (ROOT / "docs" / "spec-language.md").read_text(encoding="utf-8")
EXAMPLES = re.findall(r"```yaml spec\n(.*?)```", LANGUAGE, re.S)


def test_language_reference_has_examples_of_every_construct() -> None:
    for construct in ("residual:", "branches:", "stage:", "group:", "blocks:", "outputs:", "from:", "if:", "${"):
        assert construct in LANGUAGE, construct
    assert len(EXAMPLES) >= 7


@pytest.mark.parametrize("index", range(len(EXAMPLES)))
def test_language_examples_compile(index: int) -> None:
    compiled = compile_text(EXAMPLES[index], f"docs/spec-language.md#example{index}")
    assert compiled.graph.outputs


def test_inception_example_names_follow_torchvision() -> None:
    example = next(e for e in EXAMPLES if "inception3a" in e)
    graph = compile_text(example).graph
    assert "inception3a.branch1.conv" in graph
    assert "inception3a.branch2.0.conv" in graph
    assert "inception3a.branch2.1.bn" in graph
    assert graph.node("inception3a").out_type.shape == (256, 28, 28)


@pytest.mark.parametrize("rel", sorted(GENERATED))
def test_generated_reference_is_current(rel: str) -> None:
    committed = (ROOT / rel).read_text(encoding="utf-8")
    assert committed == GENERATED[rel](), f"{rel} is stale: run `python -m tools.docgen`"


def test_every_op_is_documented() -> None:
    ops_doc = (ROOT / "docs" / "ops.md").read_text(encoding="utf-8")
    for name in all_ops():
        assert f"### `{name}`" in ops_doc


def test_schema_file_is_current() -> None:
    committed = json.loads((ROOT / "docs" / "archc.schema.json").read_text(encoding="utf-8"))
    assert committed == json_schema(), "docs/archc.schema.json is stale: run `python -m tools.docgen`"


@pytest.mark.parametrize("spec", sorted((ROOT / "specs").glob("*.yaml")), ids=lambda p: p.name)
def test_zoo_spec_validates_against_schema_and_has_modeline(spec: Path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    from archc.yaml_loader import load_yaml_file

    text = spec.read_text(encoding="utf-8")
    assert text.startswith("# yaml-language-server: $schema=../docs/archc.schema.json\n")
    schema = json.loads((ROOT / "docs" / "archc.schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft7Validator.check_schema(schema)
    errors = list(jsonschema.Draft7Validator(schema).iter_errors(load_yaml_file(spec).data))
    assert not errors, [e.message for e in errors[:3]]


def test_schema_rejects_an_unknown_top_level_key() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json_schema()
    bad = {"name": "x", "inputs": {"a": [1]}, "body": ["relu"], "layers": []}
    assert list(jsonschema.Draft7Validator(schema).iter_errors(bad))
