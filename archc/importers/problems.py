"""Collecting located refusals while an importer walks its source, and the helpers every importer shares: layer ids
from source names, and the output size of a sliding window as the source framework computes it."""

from __future__ import annotations

import re

from archc.errors import Diagnostic
from archc.importers.flat import ImportFailure, source_error, unique_name
from archc.lower.reserved import is_reserved_module_name

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class SourceProblems:
    """The refusals found in one source file: one diagnostic per construct, raised together at the end so that a user
    sees every unsupported layer at once."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.diagnostics: list[Diagnostic] = []

    def error(self, code: str, message: str, line: int = 1, col: int = 1, hint: str = "") -> None:
        self.diagnostics.append(source_error(code, message, self.file, line, col, hint))

    def unsupported(self, message: str, line: int, col: int = 1, hint: str = "") -> None:
        self.error("E601", message, line, col, hint)

    def malformed(self, message: str, line: int, col: int = 1, hint: str = "") -> None:
        self.error("E602", message, line, col, hint)

    def raise_if_any(self) -> None:
        if self.diagnostics:
            raise ImportFailure(self.diagnostics)


class Refusal(Exception):
    """Raised inside a layer's translation: the layer cannot be imported; the walk records it and goes on."""

    def __init__(self, code: str, message: str, line: int, col: int = 1) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.line = line
        self.col = col


def layer_id(name: str, taken: set[str]) -> str:
    """A source layer name as an archc id: `.` (archc's path separator) and control characters become `_`; a name
    PyTorch reserves or one already used gets a numeric suffix. The id is added to ``taken``."""
    base = _CONTROL.sub("_", name.replace(".", "_")) or "layer"
    if is_reserved_module_name(base):
        base = f"{base}_"
    return unique_name(base, taken)


def window_floor(size: int, k: int, s: int, pad_total: int, d: int = 1) -> int:
    """Output length of a window sliding over ``size`` elements padded by ``pad_total`` in all, rounded down."""
    return (size + pad_total - d * (k - 1) - 1) // s + 1
