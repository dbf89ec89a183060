"""A table of text cells as plain text, Markdown, CSV, LaTeX or HTML: one renderer for every table archc prints.

The summary and the stage table build a :class:`Grid` (header, rows, which columns are numbers, notes under it); the
format is chosen at the end, so every table reads the same in a terminal, a README, a spreadsheet, a paper and a
notebook.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass, field

from archc.text_escape import html_text, latex_text, markdown_cell, terminal_line

TABLE_FORMATS = ("text", "markdown", "csv", "latex", "html")


@dataclass
class Grid:
    """Rows of already formatted cells; ``numeric`` columns are right-aligned; ``notes`` are lines after the table
    (totals), written as a paragraph in Markdown/LaTeX/HTML and left out of CSV, which holds only the table."""

    header: list[str]
    rows: list[list[str]]
    numeric: set[int] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)
    caption: str = ""

    def render(self, fmt: str) -> str:
        writers: dict[str, Callable[[Grid], str]] = {
            "text": _text, "markdown": _markdown, "csv": _csv, "latex": _latex, "html": _html,
        }
        return writers[fmt](self)


def _text(g: Grid) -> str:
    table = [[terminal_line(c) for c in g.header]] + [[terminal_line(c) for c in r] for r in g.rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(g.header))]
    lines = []
    for i, r in enumerate(table):
        cells = [r[j].rjust(widths[j]) if j in g.numeric else r[j].ljust(widths[j]) for j in range(len(r))]
        lines.append("  ".join(cells).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    if g.notes:
        lines.append("")
        lines.extend(terminal_line(n) for n in g.notes)
    return "\n".join(lines) + "\n"


def _markdown(g: Grid) -> str:
    align = ["---:" if i in g.numeric else "---" for i in range(len(g.header))]
    lines = [f"**{markdown_cell(g.caption)}**", ""] if g.caption else []
    lines.append("| " + " | ".join(markdown_cell(c) for c in g.header) + " |")
    lines.append("| " + " | ".join(align) + " |")
    lines.extend("| " + " | ".join(markdown_cell(c) for c in r) + " |" for r in g.rows)
    if g.notes:
        lines.append("")
        lines.extend(markdown_cell(n) + "  " for n in g.notes)  # two spaces: a line break inside the paragraph
    return "\n".join(lines).rstrip() + "\n"


def _csv(g: Grid) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(g.header)
    writer.writerows(g.rows)
    return buffer.getvalue()


def _latex(g: Grid) -> str:
    """A ``table`` float holding a ``tabular``: standard LaTeX only (no booktabs), so it compiles anywhere."""
    spec = "".join("r" if i in g.numeric else "l" for i in range(len(g.header)))
    lines = ["\\begin{table}[ht]", "\\centering", "\\small"]
    if g.caption:
        lines.append(f"\\caption{{{latex_text(g.caption)}}}")
    lines += [f"\\begin{{tabular}}{{{spec}}}", "\\hline",
              " & ".join(f"\\textbf{{{latex_text(c)}}}" for c in g.header) + " \\\\", "\\hline"]
    lines.extend(" & ".join(latex_text(c) for c in r) + " \\\\" for r in g.rows)
    lines.append("\\hline")
    lines.append("\\end{tabular}")
    if g.notes:
        lines.append("\\par\\smallskip")
        lines.extend(latex_text(n) + " \\\\" for n in g.notes)
    lines.append("\\end{table}")
    return "\n".join(lines) + "\n"


def _html(g: Grid) -> str:
    def cells(tag: str, row: list[str]) -> str:
        return "".join(f'<{tag}{_align(i, g)}>{html_text(c)}</{tag}>' for i, c in enumerate(row))

    parts = ['<table class="archc">']
    if g.caption:
        parts.append(f"<caption>{html_text(g.caption)}</caption>")
    parts.append(f"<thead><tr>{cells('th', g.header)}</tr></thead><tbody>")
    parts.extend(f"<tr>{cells('td', r)}</tr>" for r in g.rows)
    parts.append("</tbody></table>")
    if g.notes:
        parts.append("<p>" + "<br>".join(html_text(n) for n in g.notes) + "</p>")
    return "\n".join(parts) + "\n"


def _align(column: int, g: Grid) -> str:
    return ' style="text-align:right"' if column in g.numeric else ""


def latex_document(body: str) -> str:
    """``body`` (a table from :meth:`Grid.render`) wrapped in a minimal ``article`` document that pdflatex compiles."""
    return ("\\documentclass{article}\n\\usepackage[margin=1.5cm,landscape]{geometry}\n\\pagestyle{empty}\n"
            "\\begin{document}\n" + body + "\\end{document}\n")
