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
    """``line`` with a trailing ``# comment`` when both fit the line length (``line`` is to be indented by ``indent``
    more columns), else the comment on the line above."""
    if not comment:
        return [line]
    if indent + len(line) + 4 + len(comment) <= LINE:
        return [f"{line}  # {comment}"]
    indent = line[: len(line) - len(line.lstrip())]
    return [f"{indent}# {comment}", line]
