"""DOT text primitives shared by the writers: HTML-like labels, attribute lists, edge statements, and the text of
shapes and counts. Every user string reaches DOT only through :func:`archc.text_escape.dot_html` (label text) or
:func:`archc.text_escape.dot_quoted` (ids).
"""

from __future__ import annotations

from archc.emit.diagram.style import MUTED_TEXT
from archc.ir.graph import Graph, Node
from archc.ir.types import TensorType
from archc.ops.registry import get_op
from archc.text_escape import dot_html, dot_quoted


class Html(str):
    """An HTML-like label, already built from escaped pieces; written as ``<...>`` instead of quoted."""


def value(v: str) -> str:
    return f"<{v}>" if isinstance(v, Html) else dot_quoted(v)


def attr_list(attrs: dict[str, str]) -> str:
    return "[" + ", ".join(f"{k}={value(v)}" for k, v in attrs.items()) + "]"


def edge_line(a: str, b: str, attrs: dict[str, str]) -> str:
    return f"  {dot_quoted(a)} -> {dot_quoted(b)}" + (f" {attr_list(attrs)}" if attrs else "") + ";"


def numbers_inputs(n: Node) -> bool:
    """The op's input order is its output's layout (concat): the drawing numbers the input edges."""
    op = get_op(n.op)
    return op is not None and op.ordered_inputs


def is_shortcut(g: Graph, src: str, dst: Node) -> bool:
    """A skip connection: part of a shortcut path, or a tensor that also went elsewhere, entering a merge."""
    if any(g.scopes[p].kind == "shortcut" for n in (g.node(src), dst) for p in g.scope_chain(n.scope)):
        return True
    op = get_op(dst.op)
    return op is not None and op.family == "merge" and len(g.users(src)) > 1


def shape_text(t: TensorType | None) -> str:
    return "x".join(str(d) for d in t.shape) if t is not None else "?"


def rows_table(rows: list[str]) -> Html:
    """Label lines as table rows: a little spacing keeps descenders (``global_avgpool``) off the next line."""
    cells = "".join(f"<TR><TD>{row}</TD></TR>" for row in rows)
    return Html(f'<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="1" CELLPADDING="0">{cells}</TABLE>')


def muted(s: str, size: str = "9", colour: str = MUTED_TEXT) -> str:
    """A small grey label row holding ``s``, escaped."""
    return f'<FONT POINT-SIZE="{size}" COLOR="{colour}">{dot_html(s)}</FONT>'


def count_text(n: int) -> str:
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if n >= div:
            return f"{n / div:.1f}{suffix}"
    return str(n)
