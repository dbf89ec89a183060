"""Hints for YAML syntax errors, read from the source text around where the parser stopped.

PyYAML's messages name the parser's state (``mapping values are not allowed in this context``), not the mistake. Each
rule here recognises one common mistake from the text itself, so the hint is the same whichever parser (libyaml or the
pure-Python one, whose wordings differ) reported the error. A rule that does not recognise its mistake returns None.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from archc.errors import Pos, SourceNote

_CLOSERS = {"[": "]", "{": "}"}
_FLOW_NAMES = {"[": "flow sequence [...]", "{": "flow mapping {...}"}
_KEY_WITHOUT_SPACE = re.compile(r"(?P<indent> *)(?:- +)?(?P<key>[A-Za-z_][\w.-]*):(?P<value>[^\s:/]\S*)")
_PLAIN_KEY = re.compile(r" *(?:- +)?[\w.$-]+")
_LIST_ITEM = re.compile(r"(?P<indent> *)-(?: |$)")
_DASH_WITHOUT_SPACE = re.compile(r""" *(?=-[\w"'])""")


@dataclass(frozen=True)
class SyntaxHint:
    """What to change, and other places worth showing (e.g. where a bracket opened)."""

    text: str
    notes: tuple[SourceNote, ...] = ()


@dataclass(frozen=True)
class _At:
    """The error's surroundings: every source line, where the parser stopped, and the construct it was inside."""

    lines: list[str]
    pos: Pos
    opened: Pos | None

    def line(self, number: int) -> str:
        return self.lines[number - 1] if 1 <= number <= len(self.lines) else ""

    def char(self, pos: Pos) -> str:
        line = self.line(pos.line)
        return line[pos.col - 1] if 1 <= pos.col <= len(line) else ""


def syntax_hint(lines: list[str], pos: Pos, opened: Pos | None) -> SyntaxHint | None:
    """The hint for a YAML syntax error at ``pos``; ``opened`` is where the enclosing construct began, if known."""
    at = _At(lines, pos, opened)
    for rule in _RULES:
        hint = rule(at)
        if hint is not None:
            return hint
    return None


def _tab(at: _At) -> SyntaxHint | None:
    line = at.line(at.pos.line)
    if "\t" in line[: len(line) - len(line.lstrip(" \t"))]:
        return SyntaxHint("this line is indented with a tab; YAML allows only spaces for indentation")
    if at.char(at.pos) == "\t":
        return SyntaxHint("YAML does not allow a tab here; use spaces")
    return None


def _expression_text(line: str, start: int) -> str:
    """The ``{...}`` opening at ``line[start]``, up to its matching ``}`` (or the end of the line)."""
    depth = 0
    for index in range(start, len(line)):
        depth += {"{": 1, "}": -1}.get(line[index], 0)
        if depth == 0:
            return line[start:index + 1]
    return line[start:].rstrip()


def _innermost_open(text: str) -> str:
    """The innermost ``[`` or ``{`` left open in ``text`` (one line, quotes ignored), or ''."""
    stack: list[str] = []
    for char in text:
        if char in _CLOSERS:
            stack.append(char)
        elif stack and char == _CLOSERS[stack[-1]]:
            stack.pop()
    return stack[-1] if stack else ""


def _unquoted_expression(at: _At) -> SyntaxHint | None:
    """``{out: ${w * 2}}``: inside a flow collection ``{`` is a bracket, so the expression must be a quoted string."""
    line = at.line(at.pos.line)
    for match in re.finditer(r"\$\{", line):
        expression = _expression_text(line, match.start() + 1)
        if not match.start() <= at.pos.col - 1 < match.start() + 1 + len(expression):
            continue
        bracket = _innermost_open(line[: match.start()]) or (at.char(at.opened) if at.opened else "")
        if bracket not in _CLOSERS:
            continue
        written = "$" + expression
        quote = '"' if "'" in written else "'"
        where = _FLOW_NAMES[bracket]
        return SyntaxHint(f"an expression inside a {where} must be quoted: write {quote}{written}{quote}")
    return None


def _closing_offset(text: str, start: int) -> int | None:
    """Where the bracket at ``text[start]`` closes, skipping quoted strings and comments; None if it never does."""
    stack: list[str] = []
    index = start
    while index < len(text):
        char = text[index]
        if char in "\"'":
            index = _quote_end(text, index)
            if index < 0:
                return None
        elif char == "#" and (index == 0 or text[index - 1] in " \t\n"):
            index = text.find("\n", index)
            if index < 0:
                return None
        elif char in _CLOSERS:
            stack.append(_CLOSERS[char])
        elif stack and char == stack[-1]:
            stack.pop()
            if not stack:
                return index
        index += 1
    return None


def _quote_end(text: str, start: int) -> int:
    """Index of the quote closing the string that opens at ``start``, or -1: ``''`` escapes ``'``, ``\\"`` ``"``."""
    quote = text[start]
    index = start + 1
    while index < len(text):
        char = text[index]
        if quote == '"' and char == "\\":
            index += 2
            continue
        if char == quote:
            if quote == "'" and text[index + 1:index + 2] == "'":
                index += 2
                continue
            return index
        index += 1
    return -1


def _unclosed(at: _At) -> SyntaxHint | None:
    """A bracket or quote the parser was inside when it stopped, which nothing later closes."""
    if at.opened is None:
        return None
    opener = at.char(at.opened)
    text = "\n".join(at.lines)
    start = sum(len(line) + 1 for line in at.lines[: at.opened.line - 1]) + at.opened.col - 1
    where = f"line {at.opened.line}, column {at.opened.col}"
    if opener in _CLOSERS and _closing_offset(text, start) is None:
        note = SourceNote(at.opened, at.line(at.opened.line), f"this '{opener}' is never closed")
        return SyntaxHint(f"close the '{opener}' opened at {where} with '{_CLOSERS[opener]}'", (note,))
    if opener and opener in "\"'" and _quote_end(text, start) < 0:
        note = SourceNote(at.opened, at.line(at.opened.line), "this string is never closed")
        return SyntaxHint(f"close the string opened at {where} with {opener}", (note,))
    return None


def _missing_space(at: _At) -> SyntaxHint | None:
    """``out:8`` on an earlier line is one plain string; the next ``key:`` then cannot start a mapping value."""
    if at.char(at.pos) != ":":
        return None
    error_line = at.line(at.pos.line)
    indent = len(error_line) - len(error_line.lstrip(" \t"))
    for number in range(at.pos.line - 1, max(0, at.pos.line - 4), -1):
        match = _KEY_WITHOUT_SPACE.fullmatch(at.line(number).rstrip())
        if match is not None and len(match["indent"]) == indent:
            colon = Pos(number, match.end("key") + 1)
            note = SourceNote(colon, at.line(number), "no space after ':'")
            return SyntaxHint(f"put a space after ':' on line {number} ({match['key']}: {match['value']}); without "
                              f"it YAML reads {match['key']}:{match['value']} as one string", (note,))
    return None


def _colon_in_value(at: _At) -> SyntaxHint | None:
    """``a: b: c``: a plain value cannot contain ``: ``; quote it, or start a nested mapping on its own line."""
    line = at.line(at.pos.line)
    if at.char(at.pos) != ":" or ": " not in line[: at.pos.col - 1] or _innermost_open(line[: at.pos.col - 1]):
        return None
    key, _, value = line.partition(": ")
    value = value.split(" #")[0].strip()
    if not _PLAIN_KEY.fullmatch(key) or not value.isprintable():
        return None
    quote = '"' if "'" in value else "'"
    key = key.strip().removeprefix("- ").strip()
    return SyntaxHint(f"quote a value that contains ': ' ({key}: {quote}{value}{quote}); a nested mapping "
                      "starts on its own, more indented line")


def _misaligned_item(at: _At) -> SyntaxHint | None:
    """A ``-`` item indented differently from the item above it in the same list."""
    item = _LIST_ITEM.match(at.line(at.pos.line))
    if item is None or at.pos.col != len(item["indent"]) + 1:
        return None
    for number in range(at.pos.line - 1, 0, -1):
        above = _LIST_ITEM.match(at.line(number))
        if above is not None and above["indent"] != item["indent"]:
            note = SourceNote(Pos(number, len(above["indent"]) + 1), at.line(number), "the item above")
            return SyntaxHint(f"align this '-' with the item on line {number} (column {len(above['indent']) + 1}): "
                              "every item of a list starts in the same column", (note,))
    return None


def _dash_without_space(at: _At) -> SyntaxHint | None:
    """``-y: 2`` among list items: without a space after it, ``-`` does not start an item (the parser stops at it or
    after the scalar it begins)."""
    for pos in (at.pos, at.opened):
        line = at.line(pos.line) if pos else ""
        dash = _DASH_WITHOUT_SPACE.match(line)
        if pos and dash is not None and pos.col == dash.end() + 1:
            item = line[dash.end() + 1:].rstrip()
            note = SourceNote(pos, line, "no space after '-'") if pos is not at.pos else None
            return SyntaxHint(f"put a space after '-' to start a list item (- {item}); without it YAML reads "
                              f"-{item} as text", (note,) if note else ())
    return None


_RULES: tuple[Callable[[_At], SyntaxHint | None], ...] = (
    _tab, _unquoted_expression, _unclosed, _missing_space, _colon_in_value, _misaligned_item, _dash_without_space,
)
