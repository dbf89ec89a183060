"""Typed errors and diagnostics.

Every mistake in a user's spec becomes a :class:`Diagnostic` carrying the file, line, column, an error code from
:mod:`archc.error_codes`, the layer path and a message that says what was expected and what was found. The CLI prints
diagnostics as ``file:line:col: CODE: layer.path: message`` (tools parse that line) and, when the diagnostic knows
them, the source line with a caret and a hint on indented lines after it; it maps error classes to exit codes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from archc.text_escape import terminal_line

EXIT_OK = 0
EXIT_INVALID_SPEC = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3


@dataclass(frozen=True, order=True)
class Pos:
    """A 1-based line and column inside a source file."""

    line: int = 1
    col: int = 1
    file: str = ""
    """The file when it is not the spec's own (a block of the library or of an included file); "" is the spec."""


SNIPPET_WIDTH = 100
"""Most characters of a source line shown under a diagnostic; longer lines are cut around the caret."""


@dataclass(frozen=True)
class SourceNote:
    """A place in the source shown under a diagnostic: its line's text, a caret at ``pos`` and a short label."""

    pos: Pos
    line_text: str
    label: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "label", terminal_line(self.label))

    def to_json(self) -> dict[str, object]:
        return {"line": self.pos.line, "col": self.pos.col, "source_line": self.line_text, "label": self.label}


def _shown(text: str) -> str:
    """A source fragment as printed: tabs as four spaces, unprintable characters escaped (one line, caret aligned)."""
    return "".join("    " if ch == "\t" else terminal_line(ch) for ch in text)


def _snippet(notes: list[SourceNote], number_width: int) -> list[str]:
    """``  4 | text`` for the line of ``notes`` (all on one line), then a caret line under each note's column, in column
    order; every line starts with a space so it never parses as a ``file:line:col:`` diagnostic."""
    first = notes[0]
    start = max(0, min(first.pos.col - 1, len(first.line_text)) - SNIPPET_WIDTH // 2)
    text = first.line_text[start:start + SNIPPET_WIDTH]
    prefix = "..." if start else ""
    suffix = "..." if start + SNIPPET_WIDTH < len(first.line_text) else ""
    gutter = " " * number_width
    lines = [f" {first.pos.line:>{number_width}} | {prefix}{_shown(text)}{suffix}".rstrip()]
    for note in notes:
        caret_at = len(prefix) + len(_shown(first.line_text[start:note.pos.col - 1]))
        lines.append(f" {gutter} | {' ' * caret_at}^ {note.label}".rstrip())
    return lines


@dataclass(frozen=True)
class Diagnostic:
    """One user-facing error, already located in the source.

    ``source_line`` (the text of line ``pos.line``), ``notes`` (other places, such as where an unclosed bracket
    opened) and ``hint`` (what to change) are optional: :meth:`render` shows them under the one-line form.
    """

    code: str
    message: str
    file: str = "<spec>"
    pos: Pos = field(default_factory=Pos)
    path: str = ""
    hint: str = ""
    source_line: str | None = None
    notes: tuple[SourceNote, ...] = ()

    def __post_init__(self) -> None:
        if self.pos.file:  # a layer of a library or included block: its own file, not the spec the caller names
            object.__setattr__(self, "file", self.pos.file)
        object.__setattr__(self, "message", terminal_line(self.message))
        object.__setattr__(self, "path", terminal_line(self.path))
        object.__setattr__(self, "file", terminal_line(self.file))  # a file name may hold a line break too
        object.__setattr__(self, "hint", terminal_line(self.hint))

    def format(self) -> str:
        where = f"{self.file}:{self.pos.line}:{self.pos.col}"
        layer = f"{self.path}: " if self.path else ""
        return f"{where}: {self.code}: {layer}{self.message}"

    def render(self) -> str:
        """The one-line form, then the source lines (in line order) with carets and the hint, each line indented."""
        places = [*self.notes]
        if self.source_line is not None:
            places.append(SourceNote(self.pos, self.source_line))
        places.sort(key=lambda note: note.pos)
        width = len(str(max((note.pos.line for note in places), default=0)))
        lines = [self.format()]
        for number in dict.fromkeys(note.pos.line for note in places):
            lines += _snippet([note for note in places if note.pos.line == number], width)
        if self.hint:
            lines.append(f" {' ' * width} = hint: {self.hint}")
        return "\n".join(lines)

    def to_json(self) -> dict[str, object]:
        return {
            "file": self.file,
            "line": self.pos.line,
            "col": self.pos.col,
            "code": self.code,
            "path": self.path,
            "message": self.message,
            "hint": self.hint,
            "source_line": self.source_line,
            "notes": [note.to_json() for note in self.notes],
        }


class ArchcError(Exception):
    """Base of every error archc raises on purpose."""

    exit_code = EXIT_INTERNAL


class SpecError(ArchcError):
    """The spec is invalid; carries one or more located diagnostics (exit code 1)."""

    exit_code = EXIT_INVALID_SPEC

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        if not diagnostics:
            raise ValueError("SpecError needs at least one diagnostic")
        self.diagnostics = sorted(diagnostics, key=lambda d: (d.file, d.pos, d.code, d.path, d.message))
        super().__init__("\n".join(d.format() for d in self.diagnostics))


class UsageError(ArchcError):
    """Bad command-line use or an I/O problem (exit code 2)."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str) -> None:
        super().__init__(terminal_line(message))  # it is printed as one line and may quote a path holding a line break


class Problem(Exception):
    """An unlocated user error raised deep inside a rule (shape, expression, budget).

    The pass that called the rule knows the node and its source position and turns this into a :class:`Diagnostic`.
    """

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")
