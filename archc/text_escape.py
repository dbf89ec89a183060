"""User text (names, docs, labels, messages) made safe for each syntax archc writes it into: one function per target.

A spec may hold any printable text and, in names read from YAML escapes, line breaks (``\\n``, ``\\u2028``), quotes,
backslashes and markup. Every emitter puts such text into its artifact through one of these functions, so none of it
can end a string, a comment or a label, or forge a line:

- :func:`dot_html`: Graphviz HTML-like label text (the diagram's node, cluster and legend text);
- :func:`dot_quoted`: a Graphviz quoted id or attribute value;
- :func:`python_docstring` and :func:`python_comment`: generated PyTorch source;
- :func:`terminal_line`: one line of a diagnostic, a note or a printed position.

ONNX stores strings (the graph's doc string, node metadata) length-prefixed in protobuf, so they need no escaping and
are written as they are; what prints them (``archc where``) goes through :func:`terminal_line`.
"""

from __future__ import annotations

import html
import re

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def dot_html(value: object) -> str:
    """Text inside an HTML-like label: control characters replaced, markup escaped, and backslashes doubled because
    Graphviz expands ``\\N``-style escapes even inside HTML labels."""
    s = _CONTROL.sub("\ufffd", str(value))
    return html.escape(s, quote=True).replace("\\", "\\\\")


def dot_quoted(value: str) -> str:
    """A DOT quoted id or attribute value, quotes included."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def python_docstring(text: str) -> str:
    """Text inside a triple-quoted docstring: backslashes, unprintable characters (line breaks included) and triple
    quotes escaped; trailing spaces dropped."""
    out = []
    for ch in text.rstrip():
        if ch == "\\":
            out.append("\\\\")
        elif not ch.isprintable():
            out.append(ch.encode("unicode_escape").decode("ascii"))
        else:
            out.append(ch)
    return "".join(out).replace('"""', '\\"\\"\\"')


def python_comment(text: str) -> str:
    """Text for a ``#`` comment or a one-line docstring: line breaks cannot end it and no quote can close it."""
    return python_docstring(text).replace('"', "'")


def terminal_line(text: str) -> str:
    """``text`` as one readable line: line breaks and other unprintable characters written as Python escapes
    (``\\n``, ``\\u2028``), everything else unchanged."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)
