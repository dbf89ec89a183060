"""archc.text_escape: one function per target syntax, each given hostile text (quotes, backslashes, line breaks,
triple quotes, comment ends, markup, Unicode line separators)."""

from __future__ import annotations

import ast
import json
import tokenize
from io import StringIO
from pathlib import Path

import pytest

from archc.compiler import compile_file
from archc.emit.summary import summary_json
from archc.emit.torch_source import torch_source
from archc.report.layer_table import summary_text
from archc.text_escape import dot_html, dot_quoted, python_comment, python_docstring, script_json, terminal_line

HOSTILE = 'a "q" \'s\' \\N \\ """ */ <b>&amp; x\ny\u2028z\u2029\x00\x1b\x7f end'
SAMPLES = [HOSTILE, '"""', '""""', "\\", "\\\"\"\"", "*/ -->", "\u2028", "\r\n", "é ü 名前", "x\x85y"]


def test_script_json_exact() -> None:
    assert script_json({"a</script>": "<!-- & \u2028 é"}) == \
        '{"a\\u003c/script\\u003e":"\\u003c!-- \\u0026 \\u2028 \\u00e9"}'


@pytest.mark.parametrize("text", SAMPLES)
def test_script_json_cannot_leave_its_script_element_and_reads_back(text: str) -> None:
    value = {text: [text, 1]}
    encoded = script_json(value)
    assert not set(encoded) & set("<>&\u2028\u2029") and encoded.isascii()
    assert json.loads(encoded) == value


def test_dot_html_exact() -> None:
    assert dot_html(HOSTILE) == ("a &quot;q&quot; &#x27;s&#x27; \\\\N \\\\ &quot;&quot;&quot; */ &lt;b&gt;&amp;amp; "
                                 "x\ny\u2028z\u2029\ufffd\ufffd\ufffd end")  # a line break is white space in HTML
    assert dot_html(42) == "42"


@pytest.mark.parametrize("text", SAMPLES)
def test_dot_html_holds_no_markup_no_lone_backslash_and_no_control_character_but_white_space(text: str) -> None:
    out = dot_html(text)
    assert "<" not in out and ">" not in out and '"' not in out
    assert out.replace("\\\\", "").count("\\") == 0  # Graphviz expands \N, \G... even in HTML labels
    assert not any((ch < " " and ch not in "\t\n") or ch == "\x7f" for ch in out)


def test_dot_quoted_exact() -> None:
    assert dot_quoted('a"b\\c') == '"a\\"b\\\\c"'
    assert dot_quoted("layer1.0.conv1") == '"layer1.0.conv1"'


@pytest.mark.parametrize("text", SAMPLES)
def test_dot_quoted_is_one_string_and_reads_back(text: str) -> None:
    out = dot_quoted(text)
    # DOT's quoted string: only \" is an escape of the parser; doubled backslashes stay for Graphviz's own escapes
    body = out[1:-1]
    assert out[0] == out[-1] == '"' and '"' not in body.replace('\\"', "")
    assert not body.endswith("\\") or body.endswith("\\\\")  # no backslash escaping the closing quote


def test_python_docstring_exact() -> None:
    assert python_docstring(HOSTILE) == ('a "q" \'s\' \\\\N \\\\ \\"\\"\\" */ <b>&amp; x\\ny\\u2028z\\u2029\\x00\\x1b'
                                         '\\x7f end')
    assert python_docstring("trailing spaces   ") == "trailing spaces"


@pytest.mark.parametrize("text", SAMPLES)
def test_python_docstring_is_one_line_and_reads_back(text: str) -> None:
    out = python_docstring(text)
    source = f'"""{out}\n"""'  # as the emitter writes docstrings: the closing quotes on a line of their own
    assert len(source.splitlines()) == 2  # no line break of any kind (\u2028 included) survives
    assert ast.literal_eval(source) == text.rstrip() + "\n"


def test_python_comment_exact() -> None:
    assert python_comment('say "hi"\n# x') == "say 'hi'\\n# x"


@pytest.mark.parametrize("text", SAMPLES)
def test_python_comment_cannot_end_the_comment_or_a_one_line_docstring(text: str) -> None:
    out = python_comment(text)
    source = f"x = 1  # {out}\ny = 2\n"
    tokens = list(tokenize.generate_tokens(StringIO(source).readline))
    comments = [t.string for t in tokens if t.type == tokenize.COMMENT]
    assert comments == [f"# {out}"] and len(source.splitlines()) == 2
    assert ast.literal_eval(f'"""{out}"""') == text.rstrip().replace('"', "'")


def test_terminal_line_exact() -> None:
    assert terminal_line("plain ü") == "plain ü"
    assert terminal_line("a\nb\u2028c\x1b") == "a\\nb\\u2028c\\x1b"
    assert len(terminal_line(HOSTILE).splitlines()) == 1


# --- every emitter: a spec whose file name, layer names and doc hold hostile text -------------------------------------
HOSTILE_SPEC = r"""name: tiny
doc: "say \"\"\" */ <b> & \\ \u2028 end"
inputs: {image: [3, 8, 8]}
blocks:
  unit:
    body:
      - conv: {id: c, out: 4, k: 3, p: 1}
body:
  - conv: {id: "st\u2028em", out: 4, k: 3, p: 1}
  - group: {id: "gr\u2028p", body: [relu, unit]}
"""


@pytest.fixture
def hostile_spec(tmp_path: Path) -> Path:
    spec = tmp_path / 'ti\nny""".yaml'
    spec.write_text(HOSTILE_SPEC, encoding="utf-8")
    return spec


def test_generated_python_keeps_hostile_names_in_its_comments_and_docstrings(hostile_spec: Path) -> None:
    source = torch_source(compile_file(hostile_spec))
    tree = ast.parse(source)  # was an IndentationError: the file name's line break ended a comment
    doc = ast.get_docstring(tree, clean=False) or ""
    assert doc.startswith('tiny: the PyTorch module Tiny.\n\nsay """ */ <b> & \\\n end')  # U+2028 splits the paragraph
    assert 'from ti\nny""".yaml; edit the spec' in doc
    lines = source.splitlines()
    file_comment = "# ti\\nny\\'\\'\\'.yaml"  # the line break escaped, the quotes made single
    stem = "        self.add_module('st\\u2028em', nn.Conv2d(3, 4, kernel_size=3, padding=1))"
    assert f"{stem}  {file_comment}:9" in lines
    assert "        # gr\\u2028p (group)" in lines
    assert f"    \"\"\"The block 'unit' ({file_comment[2:]}:5).\"\"\"" in lines
    comments = [t.string for t in tokenize.generate_tokens(StringIO(source).readline) if t.type == tokenize.COMMENT]
    assert comments and all(len(c.splitlines()) == 1 and "\u2028" not in c for c in comments)


def test_onnx_stores_hostile_text_as_it_is_and_where_prints_it_on_one_line(hostile_spec: Path, tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    from typer.testing import CliRunner

    from archc.cli.main import app

    out = tmp_path / "t.onnx"
    result = CliRunner().invoke(app, ["export", "onnx", str(hostile_spec), "-o", str(out)])
    assert result.exit_code == 0, result.stderr
    model = onnx.load(str(out))
    assert model.graph.doc_string == 'say """ */ <b> & \\ \u2028 end'  # protobuf strings need no escaping
    meta = {e.key: e.value for e in model.graph.node[0].metadata_props}
    assert meta == {"archc.layer": "st\u2028em", "archc.source": f"{hostile_spec}:9:5"}
    result = CliRunner().invoke(app, ["where", str(out), "st\u2028em"])
    assert result.exit_code == 0, result.stderr
    escaped_file = str(hostile_spec).replace("\n", "\\n")
    assert result.stdout == f"{escaped_file}:9:5: st\\u2028em\n"


def test_summary_rows_stay_one_line_each(hostile_spec: Path) -> None:
    table = summary_text(compile_file(hostile_spec)).split("\n\n", 1)[0].split("\n")
    assert table == [
        "Layer          Op    Output shape  Params   MACs  Receptive field",
        "-------------  ----  ------------  ------  -----  ---------------",
        "st\\u2028em     conv  [4, 8, 8]        112  6,912  3 (stride 1)",
        "gr\\u2028p.0    relu  [4, 8, 8]          0      0  3 (stride 1)",
        "gr\\u2028p.1.c  conv  [4, 8, 8]        148  9,216  5 (stride 1)",
    ]
    assert summary_json(compile_file(hostile_spec))["layers"][0]["path"] == "st\u2028em"  # JSON escapes it itself
