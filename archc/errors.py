"""Typed errors and diagnostics.

Every mistake in a user's spec becomes a :class:`Diagnostic` carrying the file, line, column, an error code from
:mod:`archc.error_codes`, the layer path and a message that says what was expected and what was found. The CLI prints
diagnostics as ``file:line:col: CODE: layer.path: message`` and maps error classes to exit codes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

EXIT_OK = 0
EXIT_INVALID_SPEC = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3


@dataclass(frozen=True, order=True)
class Pos:
    """A 1-based line and column inside a source file."""

    line: int = 1
    col: int = 1


def one_line(text: str) -> str:
    """``text`` with line breaks and other unprintable characters escaped (``\\n``, ``\\u2028``): a name in a spec
    may hold any of them, and a diagnostic must stay one readable line."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)


@dataclass(frozen=True)
class Diagnostic:
    """One user-facing error, already located in the source."""

    code: str
    message: str
    file: str = "<spec>"
    pos: Pos = field(default_factory=Pos)
    path: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "message", one_line(self.message))
        object.__setattr__(self, "path", one_line(self.path))
        object.__setattr__(self, "file", one_line(self.file))  # a file name may hold a line break too

    def format(self) -> str:
        where = f"{self.file}:{self.pos.line}:{self.pos.col}"
        layer = f"{self.path}: " if self.path else ""
        return f"{where}: {self.code}: {layer}{self.message}"

    def to_json(self) -> dict[str, object]:
        return {
            "file": self.file,
            "line": self.pos.line,
            "col": self.pos.col,
            "code": self.code,
            "path": self.path,
            "message": self.message,
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
        super().__init__(one_line(message))  # it is printed as one line and may quote a path holding a line break


class Problem(Exception):
    """An unlocated user error raised deep inside a rule (shape, expression, budget).

    The pass that called the rule knows the node and its source position and turns this into a :class:`Diagnostic`.
    """

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")
