"""A small reader of protocol-buffer text format (Caffe's ``.prototxt``), without a schema and without the protobuf
package: messages of ``name: value`` and ``name { ... }`` fields, in order, each with its line and column.

Values stay as written: a quoted string, a number or an enum identifier (``MAX``, ``true``); the importer that knows
the schema converts them. ``#`` starts a comment; ``<...>`` may delimit a message as ``{...}`` does; ``name: [1, 2]``
is the short form of a repeated scalar.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from archc.importers.flat import ImportFailure, source_error

_TOKEN = re.compile(r"""
    (?P<space>[ \t\r\f\v]+) | (?P<newline>\n) | (?P<comment>\#[^\n]*)
  | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<number>[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|inf|nan)[fF]?(?![\w.]))
  | (?P<ident>[A-Za-z_][\w.]*)
  | (?P<punct>[:{}<>\[\],;])
""", re.VERBOSE)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"', "0": "\0"}


@dataclass
class Value:
    """A scalar as written: ``kind`` is ``string`` (unquoted, escapes resolved), ``number`` or ``ident``."""

    kind: str
    text: str
    line: int
    col: int


@dataclass
class Field:
    name: str
    value: Value | Message
    line: int
    col: int


@dataclass
class Message:
    fields: list[Field] = field(default_factory=list)
    line: int = 1
    col: int = 1

    def all(self, name: str) -> list[Value | Message]:
        return [f.value for f in self.fields if f.name == name]

    def field(self, name: str) -> Field | None:
        """The last field of that name (protobuf's rule for a non-repeated field given twice)."""
        found = [f for f in self.fields if f.name == name]
        return found[-1] if found else None

    def message(self, name: str) -> Message | None:
        found = self.field(name)
        return found.value if found is not None and isinstance(found.value, Message) else None


@dataclass
class _Token:
    kind: str
    text: str
    line: int
    col: int


class PrototxtError(Exception):
    def __init__(self, message: str, line: int, col: int) -> None:
        super().__init__(message)
        self.message, self.line, self.col = message, line, col


def parse_prototxt(text: str, file: str) -> Message:
    """The whole file as one message; a syntax error is an :class:`ImportFailure` (E602) at its position."""
    try:
        tokens = _tokens(text)
        parser = _Parser(tokens)
        root = parser.fields(None)
    except PrototxtError as exc:
        raise ImportFailure([source_error("E602", exc.message, file, exc.line, exc.col)]) from None
    return root


def _tokens(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    line, line_start, pos = 1, 0, 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise PrototxtError(f"unexpected character {text[pos]!r}", line, pos - line_start + 1)
        kind = match.lastgroup or ""
        if kind == "newline":
            line, line_start = line + 1, match.end()
        elif kind not in ("space", "comment"):
            tokens.append(_Token(kind, match.group(), line, pos - line_start + 1))
        pos = match.end()
    return tokens


def _unquote(token: _Token) -> str:
    body = token.text[1:-1]
    out, i = [], 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            out.append(_ESCAPES.get(body[i + 1], body[i + 1]))
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


MAX_DEPTH = 64
"""Messages nested deeper than this are refused (a real prototxt nests three or four levels)."""


class _Parser:
    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens = tokens
        self.pos = 0
        self.depth = 0

    def peek(self) -> _Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def next(self, expected: str) -> _Token:
        token = self.peek()
        if token is None:
            last = self.tokens[-1] if self.tokens else _Token("", "", 1, 1)
            raise PrototxtError(f"the file ends where {expected} was expected", last.line, last.col + len(last.text))
        self.pos += 1
        return token

    def fields(self, close: _Token | None) -> Message:
        """Fields up to the closing bracket matching ``close`` (the end of the file for the root)."""
        message = Message(line=close.line if close else 1, col=close.col if close else 1)
        end = {"{": "}", "<": ">"}.get(close.text) if close else None
        while True:
            token = self.peek()
            if token is None:
                if close is not None:
                    raise PrototxtError(f"'{close.text}' opened here is never closed", close.line, close.col)
                return message
            if end is not None and token.text == end and token.kind == "punct":
                self.pos += 1
                return message
            if token.kind == "punct" and token.text in ",;":  # allowed between fields
                self.pos += 1
                continue
            if token.kind != "ident":
                raise PrototxtError(f"expected a field name, found {token.text!r}", token.line, token.col)
            self.pos += 1
            self.field_value(message, token)

    def field_value(self, message: Message, name: _Token) -> None:
        token = self.next(f"a value for {name.text!r}")
        if token.kind == "punct" and token.text == ":":
            token = self.next(f"a value for {name.text!r}")
            if token.kind == "punct" and token.text == "[":
                self.repeated(message, name)
                return
        if token.kind == "punct" and token.text in "{<":
            if self.depth >= MAX_DEPTH:
                raise PrototxtError(f"messages nested more than {MAX_DEPTH} deep", token.line, token.col)
            self.depth += 1
            child = self.fields(token)
            self.depth -= 1
            child.line, child.col = name.line, name.col  # a message is shown where its name stands
            message.fields.append(Field(name.text, child, name.line, name.col))
            return
        if token.kind in ("string", "number", "ident"):
            message.fields.append(Field(name.text, self.scalar(token), name.line, name.col))
            return
        raise PrototxtError(f"expected a value for {name.text!r}, found {token.text!r}", token.line, token.col)

    def scalar(self, token: _Token) -> Value:
        if token.kind == "string":
            text = _unquote(token)
            while (following := self.peek()) is not None and following.kind == "string":  # "a" "b" is "ab"
                self.pos += 1
                text += _unquote(following)
            return Value("string", text, token.line, token.col)
        return Value(token.kind, token.text, token.line, token.col)

    def repeated(self, message: Message, name: _Token) -> None:
        while True:
            token = self.next(f"a value or ']' in the list of {name.text!r}")
            if token.kind == "punct" and token.text == "]":
                return
            if token.kind not in ("string", "number", "ident"):
                raise PrototxtError(f"expected a value in the list of {name.text!r}, found {token.text!r}",
                                    token.line, token.col)
            message.fields.append(Field(name.text, self.scalar(token), token.line, token.col))
            token = self.next(f"',' or ']' in the list of {name.text!r}")
            if token.kind == "punct" and token.text == "]":
                return
            if not (token.kind == "punct" and token.text == ","):
                raise PrototxtError(f"expected ',' or ']' in the list of {name.text!r}, found {token.text!r}",
                                    token.line, token.col)
