"""archc.text_escape: one function per target syntax, each given hostile text (quotes, backslashes, line breaks,
triple quotes, comment ends, markup, Unicode line separators)."""

from __future__ import annotations

import ast
import tokenize
from io import StringIO

import pytest

from archc.text_escape import dot_html, dot_quoted, python_comment, python_docstring, terminal_line

HOSTILE = 'a "q" \'s\' \\N \\ """ */ <b>&amp; x\ny\u2028z\u2029\x00\x1b\x7f end'
SAMPLES = [HOSTILE, '"""', '""""', "\\", "\\\"\"\"", "*/ -->", "\u2028", "\r\n", "é ü 名前", "x\x85y"]


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
