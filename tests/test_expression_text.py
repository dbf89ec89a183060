"""Text that looks like an expression but is not read as one says so and shows the form that works.

`p: ($k - 1) // 2` and `out: $4 * dim` were strings (a value is an expression when it starts with `$name` or is
`${...}`), then `E103 expected an integer; found str ...` with nothing to act on.
"""

from __future__ import annotations

import pytest

from archc.compiler import compile_text
from archc.errors import SpecError

PADDING = "expected an integer, a list or 'same', 'same_upper' or 'valid'"
NOTE = "was not read as an expression: only a value starting with `$name` or written as `${...}` is one; write"


def _diagnostics(text: str) -> list[str]:
    with pytest.raises(SpecError) as err:
        compile_text(text, "e.yaml")
    return [d.format() for d in err.value.diagnostics]


def test_top_level_step() -> None:
    text = ("name: e\nparams: {k: 3, dim: 4}\ninputs: {x: [3, 8, 8]}\nbody:\n"
            "  - conv: {out: $4 * dim, k: $k, p: ($k - 1) // 2}\n")
    assert _diagnostics(text) == [
        f"e.yaml:5:17: E103: 0: 'out': expected an integer; found str '$4 * dim' (the text `$4 * dim` {NOTE} "
        "`${4 * dim}`)",
        f"e.yaml:5:37: E103: 0: 'p': {PADDING}; found str '(3 - 1) // 2' (the text `($k - 1) // 2` {NOTE} "
        "`${(k - 1) // 2}`)"]


def test_inside_a_block_the_template_text_is_shown() -> None:
    text = ("name: e\ninputs: {x: [3, 8, 8]}\nblocks:\n  b:\n    args: {k: 3}\n    body:\n"
            "      - conv: {out: 4, k: $k, p: 2 * $k // 2}\nbody:\n  - b: {k: 5}\n")
    assert _diagnostics(text) == [
        f"e.yaml:7:34: E103: 0.0: 'p': {PADDING}; found str '2 * 5 // 2' (the text `2 * $k // 2` {NOTE} "
        "`${2 * k // 2}`)"]


def test_the_suggested_forms_work() -> None:
    text = ("name: e\nparams: {k: 3, dim: 4}\ninputs: {x: [3, 8, 8]}\nbody:\n"
            "  - conv: {out: '${4 * dim}', k: $k, p: '${(k - 1) // 2}'}\n")
    params = compile_text(text).graph.node("0").params
    assert (params.out, params.p) == (16, 1)


@pytest.mark.parametrize("value", ["'$n blocks'", "'${str(n)}'", "many"])
def test_no_note_for_text_that_is_no_arithmetic_or_already_an_expression(value: str) -> None:
    text = f"name: e\nparams: {{n: 3}}\ninputs: {{x: [8]}}\nbody:\n  - linear: {{out: {value}}}\n"
    (line,) = _diagnostics(text)
    assert "expected an integer; found str" in line and "not read as an expression" not in line
