"""Text helpers of the PyTorch emitter: names, literals, module references and escaped free text."""

from __future__ import annotations

import builtins
import keyword
import re
import textwrap
from typing import Any

INDENT = "    "
LINE = 120
DOC_WIDTH = 116
RECORD = "_archc_record"
"""The shape-recording callback taken by ``forward`` in trace mode."""
# names a variable must not take: the module's own, keywords, and builtins an op's forward expression may call
RESERVED = frozenset({"self", "torch", "nn", "F", "OrderedDict", RECORD, *keyword.kwlist, *keyword.softkwlist,
                      *dir(builtins)})
_SAFE_LITERAL = re.compile(r"[A-Za-z0-9_.]*")


def attr_ok(name: str) -> bool:
    # `self.__x` inside a class body is name-mangled to `self._Model__x`: such names go through strings
    return name.isidentifier() and not keyword.iskeyword(name) and not name.startswith("__")


def literal(text: str) -> str:
    """A string literal, double-quoted when that needs no escaping, else ``repr``."""
    return f'"{text}"' if _SAFE_LITERAL.fullmatch(text) else repr(text)


def py_value(value: Any) -> str:
    """Python source of a constructor argument value (numbers, strings, booleans, tuples of them)."""
    if isinstance(value, str):
        return literal(value)
    if isinstance(value, (list, tuple)):
        inner = ", ".join(py_value(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    return repr(value)


def module_ref(path: str, base: str = "self") -> str:
    """Python expression for the module at ``path`` inside ``self``: ``self.layer1["0"].conv1``."""
    head, *rest = path.split(".")
    ref = f"{base}.{head}" if attr_ok(head) else f"getattr({base}, {literal(head)})"
    for part in rest:
        ref += f".{part}" if attr_ok(part) else f"[{literal(part)}]"
    return ref


def camel_case(name: str) -> str:
    """``resnet50`` -> ``Resnet50``, ``vgg16_bn`` -> ``Vgg16Bn``; a name that is no usable class name gains a word."""
    parts = [p for p in re.split(r"[^A-Za-z0-9]+", name) if p]
    camel = "".join(p[:1].upper() + p[1:] for p in parts)
    if not camel or not camel[0].isalpha():
        camel = "Model" + camel
    return camel + "Model" if camel in RESERVED else camel


def wrap(text: str) -> list[str]:
    lines: list[str] = []
    for paragraph in text.strip().splitlines():
        wrapped = textwrap.wrap(paragraph, DOC_WIDTH, break_long_words=False, break_on_hyphens=False)
        lines.extend(wrapped or [""])
    return lines


def with_comment(line: str, comment: str, indent: int = 0) -> list[str]:
    """``line`` (wrapped by :func:`fit` when it is too long) with a trailing ``# comment`` on its first line when
    both fit the line length (``line`` is to be indented by ``indent`` more columns), else the comment above."""
    lines = fit(line, indent)
    if not comment:
        return lines
    if indent + len(lines[0]) + 4 + len(comment) <= LINE:
        return [f"{lines[0]}  # {comment}", *lines[1:]]
    pad = line[: len(line) - len(line.lstrip())]
    return [f"{pad}# {comment}", *lines]


_OPENERS = {"(": ")", "[": "]", "{": "}"}


def _scan(text: str) -> tuple[list[tuple[int, int]], list[int], list[int]]:
    """Outside string literals: the outermost bracket pairs of ``text`` (open, close), the positions of the commas
    outside every bracket, and of the spaces outside every bracket (brackets ``text`` does not close are ignored)."""
    pairs: list[tuple[int, int]] = []
    commas: list[int] = []
    spaces: list[int] = []
    stack: list[int] = []
    quote, i = "", 0
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 1  # an escaped character never ends the string
            elif ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch in _OPENERS:
            stack.append(i)
        elif ch in ")]}" and stack:
            start = stack.pop()
            if not stack:
                pairs.append((start, i))
        elif not stack and ch == ",":
            commas.append(i)
        elif not stack and ch == " ":
            spaces.append(i)
        i += 1
    return pairs, commas, spaces


def _split_at(text: str, cuts: list[int], keep: int) -> list[str]:
    """``text`` cut at the positions ``cuts`` (the character there stays on the left part if ``keep``)."""
    parts, start = [], 0
    for cut in cuts:
        parts.append(text[start:cut + keep].strip())
        start = cut + 1
    parts.append(text[start:].strip())
    return [part for part in parts if part]


def fit(line: str, indent: int = 0) -> list[str]:
    """``line`` (Python source, to be indented by ``indent`` more columns) over several lines when it is longer than
    the line length: its longest outermost bracket is opened, the elements inside it are wrapped at their commas
    (a conditional expression before its ``if`` and ``else``) and each resulting line is fitted again. Only whitespace
    inside brackets changes, so the code means the same; a line with no bracket to open is left as it is."""
    pad = line[: len(line) - len(line.lstrip())]
    text = line.strip()
    width = indent + len(pad)
    if width + len(text) <= LINE:
        return [line]
    pairs, _, _ = _scan(text)
    pairs = [(start, end) for start, end in pairs if end - start > 2]
    if not pairs:
        return [line]
    start, end = max(pairs, key=lambda pair: pair[1] - pair[0])
    while True:  # a lone bracketed argument opens with its call, as `torch.tensor([` ... `])`
        inner = text[start + 1:end]
        lone = inner.strip()
        if not (lone[:1] in _OPENERS and _scan(lone)[0] == [(0, len(lone) - 1)] and len(lone) > 3):
            break
        start += 1 + len(inner) - len(inner.lstrip())
        end = start + len(lone) - 1
    _, commas, spaces = _scan(inner)
    elements = _split_at(inner, commas, 1)
    grouping = text[start] == "(" and not commas and (start == 0 or not (text[start - 1].isalnum()
                                                                          or text[start - 1] in "_)]"))
    if grouping:  # a parenthesised expression: no comma may be added; a conditional breaks before `if` and `else`
        cuts = [i for i in spaces if inner.startswith((" if ", " else "), i)]
        elements = _split_at(inner, cuts, 0) if len(cuts) == 2 else [inner.strip()]
    elif not inner.rstrip().endswith(",") and not any(inner.startswith(" for ", i) for i in spaces):
        elements[-1] += ","  # as a formatter writes it (never after a lone generator, where it is a syntax error)
    body = width + len(INDENT)
    rows: list[str] = []
    for element in elements:
        if rows and not grouping and body + len(rows[-1]) + 1 + len(element) <= LINE:
            rows[-1] += " " + element
        else:
            rows.append(element)
    lines = fit(pad + text[: start + 1], indent)
    for row in rows:
        lines.extend(fit(pad + INDENT + row, indent))
    lines.extend(fit(pad + text[end:], indent))
    return lines
