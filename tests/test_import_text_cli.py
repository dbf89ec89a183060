"""`archc import darknet|caffe|ultralytics` end to end: the spec written passes `archc check` with the source's
figures, a refusal is a located diagnostic with exit 1 and nothing written, a bad --scale is a usage error (exit 2);
and the protobuf-text reader's corners."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from archc.compiler import compile_file
from archc.importers.flat import ImportFailure
from archc.importers.prototxt import Message, Value, parse_prototxt
from tests.cli_runner import run

CFG = """\
[net]
width=32
height=32
channels=3

[convolutional]
batch_normalize=1
filters=8
size=3
stride=1
pad=1
activation=leaky

[maxpool]
size=2
stride=2

[convolutional]
filters=10
size=1
stride=1
pad=1
activation=linear

[avgpool]

[softmax]
groups=1

[cost]
type=sse
"""


def test_darknet_cli_writes_a_spec_that_checks(tmp_path: Path) -> None:
    source, out = tmp_path / "tiny.cfg", tmp_path / "tiny.yaml"
    source.write_text(CFG)
    result = run("import", "darknet", str(source), "-o", str(out))
    assert result.exit_code == 0, result.output
    compiled = compile_file(out)
    assert compiled.costs.total.params == 3 * 9 * 8 + 2 * 8 + 8 * 10 + 10
    text = out.read_text()
    assert "Imported from the Darknet cfg tiny.cfg." in text
    assert "the training loss [cost] (line 30) is not part of the network: left out" in text
    assert f"wrote {out} (" in result.output


def test_darknet_cli_refusal_is_located_and_writes_nothing(tmp_path: Path) -> None:
    source, out = tmp_path / "bad.cfg", tmp_path / "bad.yaml"
    source.write_text(CFG.replace("[maxpool]", "[reorg]"))
    result = run("import", "darknet", str(source), "-o", str(out))
    assert result.exit_code == 1
    assert f"{source}:14:1: E601: darknet layer [reorg] is not supported" in result.output
    assert "Traceback" not in result.output
    assert not out.exists()


def test_caffe_cli(tmp_path: Path) -> None:
    source, out = tmp_path / "net.prototxt", tmp_path / "net.yaml"
    source.write_text(textwrap.dedent("""\
        name: "tiny"
        input: "data"
        input_shape { dim: 1 dim: 3 dim: 8 dim: 8 }
        layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
                convolution_param { num_output: 4 kernel_size: 3 pad: 1 } }
        layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
        layer { name: "fc" type: "InnerProduct" bottom: "conv1" top: "fc" inner_product_param { num_output: 2 } }
    """))
    result = run("import", "caffe", str(source), "-o", str(out))
    assert result.exit_code == 0, result.output
    assert compile_file(out).costs.total.params == 3 * 9 * 4 + 4 + 4 * 64 * 2 + 2
    source.write_text('name: "tiny"\nlayer { name: "a" type: "ReLU" bottom: "data" top: "a" }\n')
    result = run("import", "caffe", str(source), "-o", str(out), "--force")
    assert result.exit_code == 1
    assert f"{source}:2:40: E602: layer 'a' reads blob 'data', which no layer above produces" in result.output


def test_ultralytics_cli_scales(tmp_path: Path) -> None:
    source, out = tmp_path / "tiny.yaml", tmp_path / "spec.yaml"
    source.write_text("nc: 4\nscales:\n  n: [0.5, 0.25, 64]\n  s: [0.5, 0.5, 64]\n"
                      "backbone:\n  - [-1, 1, Conv, [64, 3, 2]]\n  - [-1, 2, C2f, [64, True]]\n")
    result = run("import", "ultralytics", str(source), "-o", str(out), "--scale", "s")
    assert result.exit_code == 0, result.output
    compiled = compile_file(out)
    assert compiled.costs.total.params == (27 * 32 + 64) + (32 * 32 + 64) + (9 * 16 * 16 + 32) * 2 + (48 * 32 + 64)
    result = run("import", "ultralytics", str(source), "-o", str(out), "--scale", "x", "--force")
    assert result.exit_code == 2
    assert "--scale x:" in result.output and "defines the scales n, s" in result.output
    result = run("import", "darknet", str(source), "-o", str(out), "--scale", "s", "--force")
    assert result.exit_code == 2


def test_prototxt_reader_corners(tmp_path: Path) -> None:
    message = parse_prototxt(textwrap.dedent("""\
        # a comment
        name: "a" "b"   # adjacent strings join
        dim: [1, 2, 3]
        inner < x: 1.5e-3 flag: true ; y: -2 >
        inner: { s: 'it\\'s' }
    """), "t.prototxt")
    assert [f.name for f in message.fields] == ["name", "dim", "dim", "dim", "inner", "inner"]
    name = message.field("name")
    assert name is not None and isinstance(name.value, Value) and name.value.text == "ab"
    assert [v.text for v in message.all("dim") if isinstance(v, Value)] == ["1", "2", "3"]
    first, second = message.all("inner")
    assert isinstance(first, Message) and isinstance(second, Message)
    assert [(f.name, f.value.text, f.value.kind) for f in first.fields if isinstance(f.value, Value)] == [
        ("x", "1.5e-3", "number"), ("flag", "true", "ident"), ("y", "-2", "number")]
    assert (first.line, first.col) == (4, 1)
    s = second.field("s")
    assert s is not None and isinstance(s.value, Value) and s.value.text == "it's"


@pytest.mark.parametrize(("text", "expected"), [
    ("a: 1\nb {\n", "t.prototxt:2:3: E602: '{' opened here is never closed"),
    ("a: \n", "t.prototxt:1:3: E602: the file ends where a value for 'a' was expected"),
    ("a: @\n", "t.prototxt:1:4: E602: unexpected character '@'"),
    ("a: [1 2]\n", "t.prototxt:1:7: E602: expected ',' or ']' in the list of 'a', found '2'"),
    ("1: 2\n", "t.prototxt:1:1: E602: expected a field name, found '1'"),
    ("a {" * 100 + "}" * 100, "t.prototxt:1:195: E602: messages nested more than 64 deep"),
])
def test_prototxt_syntax_errors(text: str, expected: str) -> None:
    with pytest.raises(ImportFailure) as info:
        parse_prototxt(text, "t.prototxt")
    assert [d.format() for d in info.value.diagnostics] == [expected]
