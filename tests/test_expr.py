"""Tests for archc.expr: the safe ``$name`` / ``${expr}`` evaluator."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from archc.errors import Problem
from archc.expr import evaluate, is_expression, referenced_names, substitute

SCOPE: dict[str, object] = {
    "width": 64, "i": 3, "a": 5, "b": 2, "n": 7, "width_mult": 0.75, "name": "stem", "flag": True,
    "sizes": [1, 2, 3], "nothing": None,
}


def make_divisible(v: float, divisor: int, min_value: int | None = None) -> int:
    """torchvision's ``_make_divisible`` (torchvision/models/_utils.py), copied as a reference."""
    if min_value is None:
        min_value = divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


def problem(text: str, scope: dict[str, object] | None = None) -> Problem:
    with pytest.raises(Problem) as info:
        evaluate(text, SCOPE if scope is None else scope)
    return info.value


# --- values -----------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("$width", 64),
    ("${width * 4}", 256),
    ("${width // 3}", 21),
    ("${width % 5}", 4),
    ("${2 ** 10}", 1024),
    ("${-width + +1}", -63),
    ("${ width }", 64),
    ("${min(a, b)}", 2),
    ("${max([a, b, 9])}", 9),
    ("${abs(-3)}", 3),
    ("${round(2.567, 2)}", 2.57),
    ("${max(1, round(n * 0.5))}", 4),
    ("${ceil(7 / 2)}", 4),
    ("${floor(7 / 2)}", 3),
    ("${int('12') + int(3.9)}", 15),
    ("${float(3)}", 3.0),
    ("${bool(0)}", False),
    ("${str(width) + 'x'}", "64x"),
    ("${len(name) + len(sizes)}", 7),
    ("${a if a > 2 else 2}", 5),
    ("${a if a > 10 else 2}", 2),
    ("${1 < a <= 5}", True),
    ("${1 < a < 3}", False),
    ("${a == 5 and b != 5}", True),
    ("${0 or nothing}", None),
    ("${not flag}", False),
    ("${True + 1}", 2),
    ("${[a, b * 2]}", [5, 4]),
    ("${(a, b)}", [5, 2]),
    ("${sizes + [4]}", [1, 2, 3, 4]),
    ("${'ab' * 3}", "ababab"),
    ("${2 ** -1}", 0.5),
    ("$sizes", [1, 2, 3]),
    ("$nothing", None),
    ("${'}'}", "}"),
])
def test_whole_expression_keeps_type(text: str, expected: object) -> None:
    result = evaluate(text, SCOPE)
    assert result == expected
    assert type(result) is type(expected)


def test_division_gives_float() -> None:
    result = evaluate("${width / 2}", SCOPE)
    assert result == 32.0
    assert isinstance(result, float)


@pytest.mark.parametrize(("text", "expected"), [
    ("conv${i}", "conv3"),
    ("conv$i", "conv3"),
    ("${name}_${i}", "stem_3"),
    ("x${width / 2}", "x32.0"),
    ("${0.1 + 0.2}!", "0.30000000000000004!"),
    ("sizes=$sizes", "sizes=[1, 2, 3]"),
    ("$$5", "$5"),
    ("$${width}", "${width}"),
    ("cost: $5", "cost: $5"),
    ("a $ b", "a $ b"),
    ("plain", "plain"),
    ("", ""),
])
def test_embedded_pieces_make_strings(text: str, expected: str) -> None:
    assert evaluate(text, SCOPE) == expected


@pytest.mark.parametrize(("v", "d"), [(32 * 0.75, 8), (12 * 1.4, 8), (16 * 0.35, 8), (96 * 1.1, 8), (3, 8), (91, 8)])
def test_divisible_matches_torchvision(v: float, d: int) -> None:
    assert evaluate(f"${{divisible({v!r}, {d})}}", SCOPE) == make_divisible(v, d)


def test_divisible_known_values_and_min_value() -> None:
    assert evaluate("${divisible(32 * 0.75, 8)}", SCOPE) == 24  # int(24 + 4) // 8 * 8 = 24
    assert evaluate("${divisible(12*1.4, 8)}", SCOPE) == 16  # int(16.8 + 4) // 8 * 8 = 16, not below 0.9 * 16.8
    assert evaluate("${divisible(32 * width_mult, 8)}", SCOPE) == 24
    assert evaluate("${divisible(4, 8, min_value=16)}", SCOPE) == 16
    assert evaluate("${divisible(4, 8, 16)}", SCOPE) == 16


# --- is_expression, substitute, referenced_names ------------------------------------------------------------------

@pytest.mark.parametrize(("value", "expected"), [
    ("$width", True), ("${1}", True), ("conv${i}", True), ("$$5", True), ("${", True),
    ("cost $5", False), ("plain", False), ("$", False), (64, False), (None, False), (["$x"], False),
])
def test_is_expression(value: object, expected: bool) -> None:
    assert is_expression(value) is expected


def test_substitute_recurses_and_leaves_keys() -> None:
    spec = {"$width": ["$width", {"out": "${width * 2}", "id": "conv${i}"}], "k": 3, "act": "relu", "on": None}
    assert substitute(spec, SCOPE) == {"$width": [64, {"out": 128, "id": "conv3"}], "k": 3, "act": "relu", "on": None}
    assert substitute(5, SCOPE) == 5


def test_referenced_names() -> None:
    assert referenced_names("${divisible(width * a, 8)}_$name") == {"width", "a", "name"}
    assert referenced_names("${max(x, min(y, 1))}") == {"x", "y"}
    assert referenced_names("plain $$x") == set()
    with pytest.raises(Problem) as info:
        referenced_names("${width *}")
    assert info.value.code == "E401"


# --- errors ---------------------------------------------------------------------------------------------------------

def test_unknown_name_suggests() -> None:
    err = problem("${widht * 4}")
    assert err.code == "E403"
    assert err.message.startswith("unknown name 'widht'; did you mean 'width'?")
    assert "known names: a, b" in err.message
    assert problem("$widht").message.startswith("unknown name 'widht'; did you mean 'width'?")
    assert "known names: none" in problem("$x", {}).message
    many = {f"p{k}": k for k in range(30)}
    assert "known names" not in problem("${q}", many).message


@pytest.mark.parametrize(("text", "found"), [
    ("${x.__class__}", "attribute access '.__class__'"),
    ("${().__class__}", "attribute access '.__class__'"),
    ("${open('f')}", "call to 'open'"),
    ("${[i for i in x]}", "list comprehension"),
    ("${__import__('os')}", "call to '__import__'"),
    ("${__builtins__}", "dunder name '__builtins__'"),
    ("$__class__", "dunder name '__class__'"),
    ("${sizes[0]}", "subscript"),
    ("${lambda: 1}", "lambda"),
    ("${f'{a}'}", "f-string"),
    ("${(y := 1)}", "assignment expression"),
    ("${max(*sizes)}", "starred expression"),
    ("${min(a, key=b)}", "keyword argument 'key'"),
    ("${divisible(8, 8, **sizes)}", "keyword argument '**'"),
    ("${(lambda: 1)()}", "calling lambda"),
    ("${a << 2}", "operator '<<'"),
    ("${1 in sizes}", "operator 'in'"),
    ("${b'x'}", "bytes constant"),
    ("${1j}", "complex constant"),
    ("${name.upper()}", "calling attribute access '.upper'"),
])
def test_forbidden_constructs(text: str, found: str) -> None:
    err = problem(text)
    assert err.code == "E402"
    assert found in err.message
    assert "only constants, names" in err.message


def test_bare_function_name_is_refused() -> None:
    err = problem("${min}")
    assert err.code == "E402"
    assert "expected a call such as min(...)" in err.message


@pytest.mark.parametrize("text", ["${width *}", "${}", "${)}", "${", "a ${width", "${'abc}", "${a\x00}",
                                  "${{'a': 1}}", "${'\\d'}", "${(" + "(" * 250 + ")" * 250 + ")}"])
def test_syntax_errors(text: str) -> None:
    err = problem(text)
    assert err.code == "E401"


def test_syntax_error_names_expression() -> None:
    assert "'${width *}'" in problem("${width *}").message


@pytest.mark.parametrize(("text", "fragment"), [
    ("${'abc' * b * 'x'}", "expected an int to repeat str 'abcabc'"),
    ("${name - 1}", "expected a number for '-', found str 'stem'"),
    ("${'abc' * 'd'}", "found str 'd'"),
    ("${name + 1}", "expected a str to append to str 'stem' with '+', found int 1"),
    ("${1 + name}", "expected a number for '+', found str 'stem'"),
    ("${-name}", "expected a number for unary '-', found str 'stem'"),
    ("${name < 3}", "expected a value comparable with str 'stem' for '<', found int 3"),
    ("${abs(name)}", "expected a number for abs()"),
    ("${int('abc')}", "expected a number or a numeric string for int(), found str 'abc'"),
    ("${float(sizes)}", "found list [1, 2, 3]"),
    ("${len(5)}", "expected a str or list for len()"),
    ("${min([])}", "expected a non-empty list"),
    ("${max(1, 'a')}", "expected values of one comparable type for max()"),
    ("${round(1.5, 10**9)}", "as digits for round()"),
    ("${divisible(10, 0)}", "expected a positive int divisor"),
    ("${divisible(10, 2.5)}", "expected a positive int divisor"),
    ("${round(1, 2, 3)}", "expected 1 to 2 arguments for round(), found 3"),
    ("${abs()}", "expected 1 arguments for abs(), found 0"),
    ("${divisible(8, min_value=1)}", "expected 2 to 3 arguments"),
    ("${(-8) ** 0.5}", "finite real number"),
])
def test_type_errors_say_expected_and_found(text: str, fragment: str) -> None:
    err = problem(text)
    assert err.code == "E404"
    assert fragment in err.message


# --- resource safety --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["${9**9**9}", "${2 ** 65}", "${10 ** 64}", "${(10**18) ** 2}", "${1.5 ** 1000}",
                                  "${0.5 ** -1000}", "${2.0 ** 1e6}"])
def test_power_too_large_fails_fast(text: str) -> None:
    start = time.perf_counter()
    err = problem(text)
    assert time.perf_counter() - start < 0.5
    assert err.code == "E404"
    assert "result too large" in err.message


def test_power_within_limits() -> None:
    assert evaluate("${2 ** 59}", SCOPE) == 2**59
    assert evaluate("${2 ** 0.5}", SCOPE) == 2**0.5
    assert problem("${2 ** 64 // 2 ** 10}").code == "E404"  # every intermediate int must stay within 10**18


def test_text_too_long() -> None:
    err = problem("${" + "1 + " * 300 + "1}")
    assert err.code == "E404"
    assert "expression too long" in err.message


def test_too_many_nodes() -> None:
    text = "${" + "+".join(["1"] * 201) + "}"
    assert len(text) < 1000
    err = problem(text)
    assert err.code == "E404"
    assert "expression too complex" in err.message


@pytest.mark.parametrize("text", ["${10**18 + 1}", "${10**9 * 10**9 * 10}", "${1000000000000000000000}",
                                  "${int(1e300)}", "${round(1e300)}", "${ceil(1e200)}"])
def test_int_too_large(text: str) -> None:
    err = problem(text)
    assert err.code == "E404"
    assert "10**18" in err.message


@pytest.mark.parametrize(
    "text", ["${1e308 * 10}", "${1e999}", "${float('inf')}", "${float('nan')}", "${-1e308 - 1e308}"]
)
def test_float_not_finite(text: str) -> None:
    err = problem(text)
    assert err.code == "E404"
    assert "finite" in err.message


@pytest.mark.parametrize("text", ["${1 / 0}", "${a // 0}", "${a % 0}", "${1.5 / 0.0}", "${0 ** -1}"])
def test_division_by_zero(text: str) -> None:
    err = problem(text)
    assert err.code == "E404"
    assert "division by zero" in err.message


@pytest.mark.parametrize("text", ["${'a' * 1001}", "${1001 * 'a'}", "${[0] * 2000}", "${[[1] * 500] * 3}",
                                  "${'x' * 10**18}", "${str([[1] * 300] * 3)}"])
def test_repetition_and_concatenation_too_large(text: str) -> None:
    err = problem(text)
    assert err.code == "E404"
    assert "too large" in err.message


def test_concatenation_too_large() -> None:
    scope = {"s": "a" * 600}
    err = problem("${s + s}", scope)
    assert err.code == "E404"
    assert evaluate("${s * 0 + s}", scope) == "a" * 600


def test_rendered_string_too_large() -> None:
    scope = {"s": "a" * 1000}
    err = problem("$s" * 11, scope)
    assert err.code == "E404"


def test_only_chosen_branch_is_evaluated() -> None:
    assert evaluate("${a if a > 0 else 1 / 0}", SCOPE) == 5
    assert evaluate("${a > 0 or 1 / 0}", SCOPE) is True


def test_scope_value_too_large_is_refused_in_arithmetic() -> None:
    err = problem("${x * 2}", {"x": 10**40})
    assert err.code == "E404"


# --- fuzzing ----------------------------------------------------------------------------------------------------------

TOKENS = ["0", "1", "2", "9", "64", "1.5", "1e308", "width", "widht", "name", "sizes", "x", "__class__", "min", "max",
          "round", "divisible", "int", "str", "len", "+", "-", "*", "/", "//", "%", "**", "<", "==", "and", "or",
          "not", " if ", " else ", "(", ")", "[", "]", ",", ".", "$", "$$", "{", "}", "${", "'", '"', " ", "=",
          "lambda", ":", "for", "in", "\\"]
FUZZ_SCOPE: dict[str, object] = {"width": 64, "name": "ab", "sizes": [1, 2], "x": 1.5}


@settings(max_examples=600, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=30).map("".join), st.booleans())
def test_fuzz_only_problem_escapes(text: str, wrap: bool) -> None:
    if wrap:
        text = "${" + text + "}"
    for call in (lambda: evaluate(text, FUZZ_SCOPE), lambda: referenced_names(text),
                 lambda: substitute([text, {"k": text}], FUZZ_SCOPE)):
        try:
            call()
        except Problem as err:
            assert err.code in {"E401", "E402", "E403", "E404"}
    assert isinstance(is_expression(text), bool)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789abwx_+-*/%<>=!()[]{},.$'\" \\", max_size=40))
def test_fuzz_random_characters(text: str) -> None:
    for candidate in (text, "${" + text + "}"):
        try:
            evaluate(candidate, FUZZ_SCOPE)
        except Problem as err:
            assert err.code in {"E401", "E402", "E403", "E404"}
