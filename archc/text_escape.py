"""User text (names, docs, labels, messages) made safe for each syntax archc writes it into: one function per target.

A spec may hold any printable text and, in names read from YAML escapes, line breaks (``\\n``, ``\\u2028``), quotes,
backslashes and markup. Every emitter puts such text into its artifact through one of these functions, so none of it
can end a string, a comment or a label, or forge a line:

- :func:`dot_html`: Graphviz HTML-like label text (the diagram's node, cluster and legend text);
- :func:`dot_quoted`: a Graphviz quoted id or attribute value;
- :func:`python_docstring` and :func:`python_comment`: generated PyTorch source;
- :func:`terminal_line`: one line of a diagnostic, a note or a printed position;
- :func:`latex_text`: LaTeX body text (tables, TikZ node labels);
- :func:`markdown_cell`: one cell of a Markdown table;
- :func:`html_text`: HTML element text or a quoted attribute value;
- :func:`script_json`: data as JSON inside an HTML ``<script>`` element (the interactive viewer's).

ONNX stores strings (the graph's doc string, node metadata) length-prefixed in protobuf, so they need no escaping and
are written as they are; what prints them (``archc where``) goes through :func:`terminal_line`.
"""

from __future__ import annotations

import html
import json
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


_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "$": r"\$", "&": r"\&", "#": r"\#", "%": r"\%",
    "_": r"\_", "^": r"\textasciicircum{}", "~": r"\textasciitilde{}", "<": r"\textless{}", ">": r"\textgreater{}",
    "|": r"\textbar{}", "\u00d7": r"$\times$", "\u2192": r"$\rightarrow$", "\u2295": r"$\oplus$",
    "\u00b7": r"$\cdot$", "\u2026": r"\dots{}", "\u2013": "--", "\u2014": "---", "\u2264": r"$\leq$",
    "\u2265": r"$\geq$", "\u2018": "`", "\u2019": "'", "\u201c": "``", "\u201d": "''",
}
"""The specials, and the non-ASCII symbols archc's own text uses (a diagram's ``·`` and ``…``, quotes in docs)."""


def latex_text(value: object) -> str:
    """Text for LaTeX's body with the default (OT1/T1) fonts: specials escaped, the few non-ASCII symbols archc writes
    (×, →, ⊕, ·, typographic quotes and dashes) as math or TeX ligatures, any other non-ASCII character as ``?``
    since pdflatex without extra packages cannot set it."""
    out = []
    for ch in terminal_line(str(value)):
        if ch in _LATEX_SPECIAL:
            out.append(_LATEX_SPECIAL[ch])
        elif ord(ch) < 128:
            out.append(ch)
        else:
            out.append("?")
    return "".join(out)


def markdown_cell(value: object) -> str:
    """One Markdown table cell: on one line, pipes and backslashes escaped, HTML markup neutralised."""
    return html.escape(terminal_line(str(value)), quote=False).replace("\\", "\\\\").replace("|", "\\|")


def html_text(value: object) -> str:
    """HTML element text or a double-quoted attribute value."""
    return html.escape(_CONTROL.sub("\ufffd", str(value)), quote=True)


_SCRIPT_UNSAFE = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"}


def script_json(value: object) -> str:
    """JSON for the inside of an HTML ``<script>`` element: ``<``, ``>`` and ``&`` written as ``\\u`` escapes, so
    no string can close the element (``</script>``) or open a comment (``<!--``); anything beyond ASCII (line
    separators, a lone surrogate) escaped too. Parsed, it is the same value."""
    text = json.dumps(value, ensure_ascii=True, separators=(",", ":"))
    return re.sub("[<>&]", lambda m: _SCRIPT_UNSAFE[m.group()], text)
