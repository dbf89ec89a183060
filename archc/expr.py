"""Safe evaluation of ``$name`` and ``${expr}`` expressions inside spec values.

Specs are untrusted input, so expressions are never handed to ``eval``/``exec`` or compiled to code objects: ``eval``
cannot be sandboxed (``().__class__.__mro__`` and friends reach everything) and even plain arithmetic such as
``9**9**9`` hangs it. Instead the text is parsed with ``ast.parse(mode="eval")``, every node is checked against an
explicit whitelist, and a small interpreter (a table from node type to handler) walks the tree: constants, names from
the scope, arithmetic, comparisons, ``and``/``or``/``not``, ``a if c else b``, lists and calls to a few named
functions. Operations check operands and result sizes *before* they can exhaust time or memory, and every failure is
raised as :class:`~archc.errors.Problem` with a code from E401 to E404.
"""

from __future__ import annotations

import ast
import difflib
import functools
import math
import operator
import re
import warnings
from collections.abc import Callable, Mapping
from typing import Any, cast

from archc.errors import Problem

Scope = Mapping[str, object]

MAX_EXPR_CHARS = 1_000
MAX_NODES = 200  # expression nodes (ast.expr) in one ${...}
MAX_INT = 10**18
MAX_POW_EXPONENT = 64
MAX_POW_BITS = 256
MAX_SIZE = 1_000  # characters of a str, or items of a list counted through nested lists
MAX_RENDERED = 10_000  # characters of a string assembled from several pieces
MAX_ROUND_DIGITS = 30

# "$$", "$name", "${...}" (quoted strings may contain "}") or an unclosed "${".
_PIECE = re.compile(r"""\$(?:(?P<dollar>\$)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"""
                    r"""|\{(?P<expr>(?:[^}'"]|'[^']*'|"[^"]*")*)\}|(?P<open>\{))""")


# --- values ---------------------------------------------------------------------------------------------------------

def _show(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _describe(value: object) -> str:
    """``str 'abc'``, ``int 3``, ``None``: type and shortened value, for messages."""
    if value is None:
        return "None"
    if isinstance(value, int) and abs(value) > MAX_INT:
        return f"int of {value.bit_length()} bits"
    return f"{type(value).__name__} {_show(repr(value), 40)}"


def _expected(what: str, found: object) -> Problem:
    return Problem("E404", f"expected {what}, found {_describe(found)}")


def _size(value: object, budget: int = MAX_SIZE) -> int:
    """Characters of a str or items of a (nested) list; stops counting soon after ``budget``."""
    if isinstance(value, str):
        return len(value)
    total = 0
    for item in value if isinstance(value, list) else ():
        total += 1 + _size(item, budget - total)
        if total > budget:
            break
    return total


def _checked(value: object) -> object:
    """Refuse values that are too large, not finite or not real."""
    if isinstance(value, int) and abs(value) > MAX_INT:
        raise _expected("an int of magnitude at most 10**18 (result too large)", value)
    if (isinstance(value, float) and not math.isfinite(value)) or isinstance(value, complex):
        raise _expected("a finite real number (result too large, or a fractional power of a negative number?)", value)
    if isinstance(value, (str, list)) and _size(value) > MAX_SIZE:
        raise Problem("E404", f"result too large: expected at most {MAX_SIZE} characters or list items, found more")
    return value


def _number(value: object, what: str) -> int | float:
    if isinstance(value, (int, float)):
        return value
    raise _expected(f"a number for {what}", value)


def _format(value: object) -> str:
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_format(item) for item in value) + "]"
    return str(value)


# --- operators ------------------------------------------------------------------------------------------------------

def _arith(symbol: str, fn: Callable[[Any, Any], object], divides: bool = False) -> Callable[[object, object], object]:
    def apply(left: object, right: object) -> object:
        a, b = _number(left, f"'{symbol}'"), _number(right, f"'{symbol}'")
        if divides and b == 0:
            raise Problem("E404", f"division by zero: expected a non-zero right operand for '{symbol}', found {b!r}")
        return fn(a, b)

    return apply


def _add(left: object, right: object) -> object:
    if (isinstance(left, str) and isinstance(right, str)) or (isinstance(left, list) and isinstance(right, list)):
        return left + right  # both operands are within MAX_SIZE; the result is checked by _checked
    if not isinstance(left, (str, list)):
        return _arith("+", operator.add)(left, right)
    raise _expected(f"a {type(left).__name__} to append to {_describe(left)} with '+'", right)


def _mul(left: object, right: object) -> object:
    seq, count = (left, right) if isinstance(left, (str, list)) else (right, left)
    if not isinstance(seq, (str, list)):
        return _arith("*", operator.mul)(left, right)
    if not isinstance(count, int):
        raise _expected(f"an int to repeat {_describe(seq)} with '*'", count)
    if _size(seq) * max(count, 0) > MAX_SIZE:
        raise Problem("E404", f"result too large: repeating {_describe(seq)} {count} times exceeds {MAX_SIZE} items")
    return seq * count


def _pow(left: object, right: object) -> object:
    base, exp = _number(left, "'**'"), _number(right, "'**'")
    if isinstance(exp, int) and exp > MAX_POW_EXPONENT:
        raise Problem("E404", f"result too large: expected an exponent of at most {MAX_POW_EXPONENT}, found {exp}")
    if base != 0 and exp * math.log2(abs(base)) > MAX_POW_BITS:
        raise Problem("E404", f"result too large: {base!r} ** {exp!r} would exceed 2**{MAX_POW_BITS}")
    if base == 0 and exp < 0:
        raise Problem("E404", "division by zero: expected a non-zero base for '**' with a negative exponent, found 0")
    return base**exp


_BINOPS: dict[type[ast.operator], Callable[[object, object], object]] = {
    ast.Add: _add, ast.Sub: _arith("-", operator.sub), ast.Mult: _mul, ast.Pow: _pow,
    ast.Div: _arith("/", operator.truediv, divides=True),
    ast.FloorDiv: _arith("//", operator.floordiv, divides=True),
    ast.Mod: _arith("%", operator.mod, divides=True),
}
_UNARY: dict[type[ast.unaryop], Callable[[object], object]] = {
    ast.Not: operator.not_, ast.USub: lambda v: -_number(v, "unary '-'"), ast.UAdd: lambda v: +_number(v, "unary '+'"),
}
_COMPARE: dict[type[ast.cmpop], tuple[str, Callable[[Any, Any], Any]]] = {
    ast.Eq: ("==", operator.eq), ast.NotEq: ("!=", operator.ne), ast.Lt: ("<", operator.lt),
    ast.LtE: ("<=", operator.le), ast.Gt: (">", operator.gt), ast.GtE: (">=", operator.ge),
}


# --- functions ------------------------------------------------------------------------------------------------------

def _min_max(name: str, pick: Callable[[list[Any]], object]) -> Callable[..., object]:
    def apply(*args: object) -> object:
        items = args[0] if len(args) == 1 else list(args)
        if not isinstance(items, list) or not items:
            raise _expected(f"a non-empty list or several values for {name}()", items)
        try:
            return pick(items)
        except TypeError:
            raise _expected(f"values of one comparable type for {name}()", items) from None

    return apply


def _round(value: object, ndigits: object = None) -> object:
    number = _number(value, "round()")
    if ndigits is None:
        return round(number)
    if not isinstance(ndigits, int) or abs(ndigits) > MAX_ROUND_DIGITS:
        raise _expected(f"an int between -{MAX_ROUND_DIGITS} and {MAX_ROUND_DIGITS} as digits for round()", ndigits)
    return round(number, ndigits)


def _convert(name: str, kind: Callable[[Any], object]) -> Callable[[object], object]:
    def apply(value: object) -> object:
        try:
            if isinstance(value, (int, float, str)):
                return kind(value)
        except ValueError:
            pass
        raise _expected(f"a number or a numeric string for {name}()", value)

    return apply


def _len(value: object) -> int:
    if isinstance(value, (str, list)):
        return len(value)
    raise _expected("a str or list for len()", value)


def _divisible(value: object, divisor: object, min_value: object = None) -> int:
    """Round to a multiple of ``divisor`` without dropping 10% below ``value`` (MobileNet's ``_make_divisible``)."""
    v = _number(value, "divisible()")
    if not isinstance(divisor, int) or isinstance(divisor, bool) or divisor <= 0:
        raise _expected("a positive int divisor for divisible()", divisor)
    if min_value is not None and not isinstance(min_value, int):
        raise _expected("an int or None as min_value for divisible()", min_value)
    new_v = max(min_value or divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


_FUNCTIONS: dict[str, tuple[int, int, Callable[..., object]]] = {  # name: (least, most arguments, implementation)
    "min": (1, MAX_NODES, _min_max("min", min)), "max": (1, MAX_NODES, _min_max("max", max)),
    "abs": (1, 1, lambda v: abs(_number(v, "abs()"))), "round": (1, 2, _round),
    "ceil": (1, 1, lambda v: math.ceil(_number(v, "ceil()"))),
    "floor": (1, 1, lambda v: math.floor(_number(v, "floor()"))),
    "int": (1, 1, _convert("int", int)), "float": (1, 1, _convert("float", float)),
    "bool": (1, 1, bool), "str": (1, 1, _format), "len": (1, 1, _len), "divisible": (2, 3, _divisible),
}


# --- evaluation -----------------------------------------------------------------------------------------------------

def _lookup(name: str, scope: Scope) -> object:
    if name.startswith("__"):
        raise _forbidden(f"dunder name '{name}'")
    if name in scope:
        return scope[name]
    if name in _FUNCTIONS:
        raise Problem("E402", f"expected a call such as {name}(...), found the bare function name '{name}'")
    names = sorted(key for key in scope if isinstance(key, str))
    message = f"unknown name '{name}'"
    close = difflib.get_close_matches(name, names, n=3)
    if close:
        message += "; did you mean " + " or ".join(f"'{c}'" for c in close) + "?"
    if len(names) <= 10:
        message += f" (known names: {', '.join(names) or 'none'})"
    raise Problem("E403", message)


def _eval(node: ast.AST, scope: Scope) -> object:
    return _checked(_HANDLERS[type(node)](node, scope))


def _compare(node: ast.Compare, scope: Scope) -> bool:
    left = _eval(node.left, scope)
    for op, comparator in zip(node.ops, node.comparators, strict=True):
        right = _eval(comparator, scope)
        symbol, fn = _COMPARE[type(op)]
        try:
            if not fn(left, right):
                return False
        except TypeError:
            raise _expected(f"a value comparable with {_describe(left)} for '{symbol}'", right) from None
        left = right
    return True


def _boolop(node: ast.BoolOp, scope: Scope) -> object:
    value: object = None
    for operand in node.values:
        value = _eval(operand, scope)
        if bool(value) == isinstance(node.op, ast.Or):
            break
    return value


def _call(node: ast.Call, scope: Scope) -> object:
    name = cast(ast.Name, node.func).id  # _check_call made sure it is a whitelisted plain name
    args = [_eval(arg, scope) for arg in node.args]
    kwargs = {str(kw.arg): _eval(kw.value, scope) for kw in node.keywords}
    low, high, fn = _FUNCTIONS[name]
    if not low <= len(args) <= high - len(kwargs):
        expected = str(low) if low == high else f"{low} to {high}"
        raise Problem("E404", f"expected {expected} arguments for {name}(), found {len(args) + len(kwargs)}")
    return fn(*args, **kwargs)


_HANDLERS: dict[type[ast.AST], Callable[[Any, Scope], object]] = {
    ast.Constant: lambda node, scope: node.value,
    ast.Name: lambda node, scope: _lookup(node.id, scope),
    ast.BinOp: lambda node, scope: _BINOPS[type(node.op)](_eval(node.left, scope), _eval(node.right, scope)),
    ast.UnaryOp: lambda node, scope: _UNARY[type(node.op)](_eval(node.operand, scope)),
    ast.IfExp: lambda node, scope: _eval(node.body if _eval(node.test, scope) else node.orelse, scope),
    ast.List: lambda node, scope: [_eval(item, scope) for item in node.elts],
    ast.Tuple: lambda node, scope: [_eval(item, scope) for item in node.elts],
    ast.Compare: _compare, ast.BoolOp: _boolop, ast.Call: _call,
}


# --- parsing and the whitelist --------------------------------------------------------------------------------------

_ALLOWED_NODES = {*_HANDLERS, *_BINOPS, *_UNARY, *_COMPARE, ast.And, ast.Or, ast.Load, ast.Expression, ast.keyword}
_ALLOWED_TEXT = ("only constants, names, arithmetic (+ - * / // % **), comparisons, and/or/not, 'a if c else b', "
                 f"lists and calls to {', '.join(_FUNCTIONS)} are allowed")
_CONSTRUCTS = {ast.Subscript: "subscript '[...]'", ast.Lambda: "lambda", ast.ListComp: "list comprehension",
               ast.SetComp: "set comprehension", ast.DictComp: "dict comprehension", ast.Dict: "dict display",
               ast.GeneratorExp: "generator expression", ast.JoinedStr: "f-string", ast.Set: "set display",
               ast.NamedExpr: "assignment expression ':='", ast.Starred: "starred expression '*'",
               ast.LShift: "operator '<<'", ast.RShift: "operator '>>'", ast.BitOr: "operator '|'",
               ast.BitAnd: "operator '&'", ast.BitXor: "operator '^'", ast.MatMult: "operator '@'",
               ast.Invert: "operator '~'", ast.In: "operator 'in'", ast.NotIn: "operator 'not in'",
               ast.Is: "operator 'is'", ast.IsNot: "operator 'is not'"}


def _forbidden(what: str) -> Problem:
    return Problem("E402", f"{what} is not allowed in expressions; {_ALLOWED_TEXT}")


def _construct(node: ast.AST) -> str:
    if isinstance(node, ast.Attribute):
        return f"attribute access '.{node.attr}'"
    return _CONSTRUCTS.get(type(node), f"'{type(node).__name__}'")


def _check_call(node: ast.Call) -> None:
    if not isinstance(node.func, ast.Name):
        raise _forbidden(f"calling {_construct(node.func)}")
    if node.func.id not in _FUNCTIONS:
        raise _forbidden(f"call to '{node.func.id}'")
    for kw in node.keywords:
        if (node.func.id, kw.arg) != ("divisible", "min_value"):
            raise _forbidden(f"keyword argument '{kw.arg or '**'}' to {node.func.id}()")


def _check_node(node: ast.AST) -> None:
    if type(node) not in _ALLOWED_NODES:
        raise _forbidden(_construct(node))
    if isinstance(node, ast.Constant) and not isinstance(node.value, (int, float, str, type(None))):
        raise _forbidden(f"{type(node.value).__name__} constant {_show(repr(node.value), 20)}")
    if isinstance(node, ast.Name) and node.id.startswith("__"):
        raise _forbidden(f"dunder name '{node.id}'")
    if isinstance(node, ast.Call):
        _check_call(node)


@functools.lru_cache(maxsize=1024)
def _parse(source: str) -> ast.Expression:
    """Parse the text between ``${`` and ``}`` and check every node against the whitelist."""
    if len(source) > MAX_EXPR_CHARS:
        raise Problem("E404", f"expression too long: expected at most {MAX_EXPR_CHARS} characters, found {len(source)}")
    try:
        with warnings.catch_warnings():  # turns "invalid escape sequence" and similar into a SyntaxError
            warnings.simplefilter("error")
            tree = ast.parse(source.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        reason = exc.msg if isinstance(exc, SyntaxError) else type(exc).__name__
        raise Problem("E401", f"invalid expression '${{{_show(source)}}}': {reason}") from None
    nodes = list(ast.walk(tree))
    count = sum(isinstance(node, ast.expr) for node in nodes)
    if count > MAX_NODES:
        raise Problem("E404", f"expression too complex: expected at most {MAX_NODES} nodes, found {count}")
    for node in nodes:
        _check_node(node)
    return tree


def _pieces(text: str) -> list[tuple[str, str]]:
    """Split text into ("text", literal), ("name", name) and ("expr", source) pieces; ``$$`` becomes ``$``."""
    pieces: list[tuple[str, str]] = []
    literal, end = "", 0
    for match in _PIECE.finditer(text):
        literal, end = literal + text[end : match.start()], match.end()
        if match["open"] is not None:
            raise Problem("E401", f"unclosed '${{' in '{_show(text)}': expected a '}}' after the expression")
        if match["dollar"]:
            literal += "$"
            continue
        if literal:
            pieces.append(("text", literal))
        pieces.append(("name", match["name"]) if match["name"] else ("expr", match["expr"]))
        literal = ""
    literal += text[end:]
    return [*pieces, ("text", literal)] if literal else pieces


def _piece_value(kind: str, source: str, scope: Scope) -> object:
    return _lookup(source, scope) if kind == "name" else _eval(_parse(source).body, scope)


# --- public API -----------------------------------------------------------------------------------------------------

def is_expression(value: object) -> bool:
    """True for a str containing ``$name``, ``${...}`` or an escaped ``$$`` anywhere."""
    return isinstance(value, str) and _PIECE.search(value) is not None


_BARE_MULTI = re.compile(r"\$[A-Za-z_(](?:[^$]|(?<![A-Za-z0-9_])\$(?=[A-Za-z_]))*")
_LATER_DOLLAR = re.compile(r"(?<![A-Za-z0-9_])\$(?=[A-Za-z_])")
_NAME = re.compile(r"\$[A-Za-z_][A-Za-z0-9_]*")


def _bare_expression(text: str) -> ast.Expression | None:
    """``$width * 4``: a value starting with ``$`` that parses as a whole expression (flow-mapping friendly)."""
    if not _BARE_MULTI.fullmatch(text) or _NAME.fullmatch(text):
        return None
    try:
        # later names may carry a `$` too: `$bn_size * $growth`
        return _parse(_LATER_DOLLAR.sub("", text[1:]))
    except Problem as problem:
        if problem.code == "E401":
            return None  # plain text with an embedded $name, e.g. "$n blocks"
        raise


@functools.lru_cache(maxsize=4096)
def _plan(text: str) -> tuple[ast.Expression | None, tuple[tuple[str, str], ...]]:
    """How to evaluate ``text`` (a bare expression, or pieces), parsed once: specs repeat the same few texts."""
    bare = _bare_expression(text)
    return bare, (tuple(_pieces(text)) if bare is None else ())


def evaluate(text: str, scope: Scope) -> object:
    """Evaluate ``text``: a lone ``$name``/``${expr}``/``$expr`` keeps its type; text with pieces becomes a str."""
    bare, pieces = _plan(text)
    try:
        if bare is not None:
            return _eval(bare.body, scope)
        if len(pieces) == 1 and pieces[0][0] != "text":
            return _piece_value(*pieces[0], scope)
        out = "".join(src if kind == "text" else _format(_piece_value(kind, src, scope)) for kind, src in pieces)
    except (ArithmeticError, TypeError, ValueError, RecursionError, MemoryError) as exc:  # a safety net only
        raise Problem("E404", f"cannot evaluate '{_show(text)}': {type(exc).__name__}: {_show(str(exc))}") from None
    if len(out) > MAX_RENDERED:
        raise Problem("E404", f"result too large: expected at most {MAX_RENDERED} characters, found {len(out)}")
    return out


def substitute(value: object, scope: Scope) -> object:
    """Evaluate every expression string inside nested lists and dicts (keys untouched); other values unchanged."""
    if isinstance(value, str):
        return evaluate(value, scope) if is_expression(value) else value
    if isinstance(value, list):
        return [substitute(item, scope) for item in value]
    if isinstance(value, dict):
        return {key: substitute(item, scope) for key, item in value.items()}
    return value


def referenced_names(text: str) -> set[str]:
    """Names the expressions in ``text`` refer to (names of called functions excluded)."""
    names: set[str] = set()
    for kind, source in _pieces(text):
        if kind == "name":
            names.add(source)
        elif kind == "expr":
            nodes = list(ast.walk(_parse(source)))
            called = {id(node.func) for node in nodes if isinstance(node, ast.Call)}
            names |= {node.id for node in nodes if isinstance(node, ast.Name) and id(node) not in called}
    return names
