"""Tests for the safe, position-tracking YAML loader."""

from __future__ import annotations

import gc
import itertools
import math
import os
import re
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from archc import yaml_loader
from archc.errors import Diagnostic, Pos, SourceNote, SpecError, UsageError
from archc.limits import Limits
from archc.yaml_loader import LoadedDoc, load_yaml_file, load_yaml_text

DEFAULTS = Limits()


def errors(text: str | bytes, limits: Limits = DEFAULTS) -> list[str]:
    """The formatted diagnostics a load of ``text`` raises (fails the test if it loads)."""
    with pytest.raises(SpecError) as info:
        load_yaml_text(text, "s.yaml", limits)
    return [d.format() for d in info.value.diagnostics]


@pytest.fixture(params=["libyaml", "python"])
def any_loader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test with the C loader and again with the pure-Python fallback."""
    if request.param == "python":
        monkeypatch.setattr(yaml_loader, "_LOADER", yaml_loader._PY_LOADER)
    return str(request.param)


# --- positions --------------------------------------------------------------------------------------------------------


def test_positions_of_brief_example(any_loader: str) -> None:
    doc = load_yaml_text("body:\n  - conv: {out: 64}\n", "net.yaml")
    assert doc.data == {"body": [{"conv": {"out": 64}}]}
    assert doc.file == "net.yaml"
    assert doc.positions[("body", 0, "conv", "out")] == Pos(2, 17)
    assert doc.key_positions[("body", 0, "conv", "out")] == Pos(2, 12)
    assert doc.positions[("body", 0)] == Pos(2, 5)
    assert doc.key_positions[("body",)] == Pos(1, 1)
    assert doc.positions[()] == Pos(1, 1)


def test_positions_of_block_items_and_nested_keys() -> None:
    text = "name: net\nbody:\n  - relu\n  - linear:\n      out: 10\n      bias: false\n"
    doc = load_yaml_text(text)
    assert doc.data == {"name": "net", "body": ["relu", {"linear": {"out": 10, "bias": False}}]}
    assert doc.positions[("name",)] == Pos(1, 7)
    assert doc.positions[("body", 0)] == Pos(3, 5)
    assert doc.key_positions[("body", 1, "linear")] == Pos(4, 5)
    assert doc.key_positions[("body", 1, "linear", "bias")] == Pos(6, 7)
    assert doc.positions[("body", 1, "linear", "bias")] == Pos(6, 13)
    assert list(doc.data) == ["name", "body"]


def test_pos_falls_back_to_key_value_ancestor_and_origin() -> None:
    doc = load_yaml_text("a:\n  b: 1\n")
    assert doc.pos(("a", "b"), key=True) == Pos(2, 3)
    assert doc.pos(("a", "b")) == Pos(2, 6)
    assert doc.pos(("a", "missing", 3)) == Pos(2, 3)
    assert doc.pos(("a", "missing"), key=True) == Pos(2, 3)
    assert LoadedDoc(None, "x", {}, {}).pos(("a",)) == Pos(1, 1)


def test_columns_count_characters_not_bytes_and_bom_is_skipped() -> None:
    doc = load_yaml_text("\ufeffnamé: ünï\nb: [x, y]\n".encode())
    assert doc.data == {"namé": "ünï", "b": ["x", "y"]}
    assert doc.positions[("namé",)] == Pos(1, 7)
    assert doc.positions[("b", 1)] == Pos(2, 8)


def test_aliases_are_copied_and_located_at_their_anchor() -> None:
    doc = load_yaml_text("base: &b {k: 3}\nuse: *b\n")
    assert doc.data == {"base": {"k": 3}, "use": {"k": 3}}
    assert doc.data["base"] is not doc.data["use"]
    assert doc.positions[("use", "k")] == Pos(1, 14)


@pytest.mark.parametrize("text", ["", "# only a comment\n\n# another\n", "---\n", "\ufeff"])
def test_empty_documents_give_none(text: str) -> None:
    assert load_yaml_text(text).data is None


# --- YAML 1.2 core schema ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("no", "no"), ("yes", "yes"), ("on", "on"), ("off", "off"), ("y", "y"), ("1_000", "1_000"),
        ("12:30", "12:30"), ("0b101", "0b101"), ("1.2.3", "1.2.3"), ("2024-01-01", "2024-01-01"),
        ("true", True), ("False", False), ("TRUE", True), ("tRue", "tRue"),
        ("~", None), ("null", None), ("Null", None), ("NULL", None), ("", None), ("nULL", "nULL"),
        ("010", 10), ("-7", -7), ("+7", 7), ("0o17", 15), ("0x1F", 31), ("0X1F", "0X1F"), ("0o8", "0o8"),
        ("1e-3", 0.001), ("1.5", 1.5), (".5", 0.5), ("1.", 1.0), ("-2E+2", -200.0), ("1e400", math.inf),
        (".inf", math.inf), ("-.Inf", -math.inf), ("+.INF", math.inf), ("inf", "inf"),
        ('"1"', "1"), ("'true'", "true"), ('"~"', "~"), ("''", ""), ("|\n  10\n", "10\n"),
    ],
)
def test_core_schema_resolution(any_loader: str, text: str, expected: Any) -> None:
    value = load_yaml_text(f"v: {text}\n").data["v"]
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize("text", [".nan", ".NaN", ".NAN"])
def test_nan(text: str) -> None:
    assert math.isnan(load_yaml_text(f"v: {text}").data["v"])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("!!str 12", "12"), ("!!str true", "true"), ("! 12", "12"), ("! '12'", "12"), ('!!int "12"', 12),
        ("!!int 0x10", 16), ("!!float 1", 1.0), ("!!float '2.5'", 2.5), ("!!bool 'true'", True), ("!!null ~", None),
        ("!!null", None), ("!!seq [1]", [1]), ("!!map {a: 1}", {"a": 1}), ("! [1]", [1]),
    ],
)
def test_explicit_core_tags(any_loader: str, text: str, expected: Any) -> None:
    value = load_yaml_text(f"v: {text}\n").data["v"]
    assert value == expected
    assert type(value) is type(expected)


def test_plain_integer_keys_keep_their_text() -> None:
    doc = load_yaml_text("0: a\n010: b\n0x1F: c\n'1': d\n")
    assert doc.data == {"0": "a", "010": "b", "0x1F": "c", "1": "d"}
    assert doc.key_positions[("010",)] == Pos(2, 1)


# --- errors, one code at a time ---------------------------------------------------------------------------------------


def test_e001_syntax_error(any_loader: str) -> None:
    (line,) = errors("body: [conv: {out: 64}\n")  # libyaml and PyYAML word their messages differently
    assert line.startswith("s.yaml:2:1: E001: ") and "(while parsing a flow sequence at line 1, column 7)" in line
    (line,) = errors("a: b: c\n")
    assert line.startswith("s.yaml:1:5: E001: mapping values are not allowed")


SYNTAX_HINTS = [
    ("body:\n\t- relu\n", (2, 1), "this line is indented with a tab; YAML allows only spaces for indentation", []),
    ("conv:\n  out: 8\n\tk: 3\n", (3, 1), "this line is indented with a tab; YAML allows only spaces for indentation",
     []),
    ("conv: {out: ${width * 2}, k: 3}\n", (1, 14),
     "an expression inside a flow mapping {...} must be quoted: write '${width * 2}'", []),
    ("from: [a, ${n['x']}]\n", (1, 12),
     "an expression inside a flow sequence [...] must be quoted: write \"${n['x']}\"", []),
    ("conv:\n  out:8\n  k: 3\n", (3, 4),
     "put a space after ':' on line 2 (out: 8); without it YAML reads out:8 as one string",
     [(2, 6, "no space after ':'")]),
    ("body: [conv, relu\nname: x\n", (2, 5), "close the '[' opened at line 1, column 7 with ']'",
     [(1, 7, "this '[' is never closed")]),
    ("a: {b: [1, 2], c: 3\n", (2, 1), "close the '{' opened at line 1, column 4 with '}'",
     [(1, 4, "this '{' is never closed")]),
    ("name: 'it''s\nbody: []\n", (3, 1), "close the string opened at line 1, column 7 with '",
     [(1, 7, "this string is never closed")]),
    ("body:\n    - relu\n  - relu\n", (3, 3),
     "align this '-' with the item on line 2 (column 5): every item of a list starts in the same column",
     [(2, 5, "the item above")]),
    ("a: b: c\n", (1, 5), "quote a value that contains ': ' (a: 'b: c'); a nested mapping starts on its own, more "
     "indented line", []),
    ("b:\n  - x\n  -y: 2\n", (3, 3), "put a space after '-' to start a list item (- y: 2); without it YAML reads "
     "-y: 2 as text", []),
    ("b:\n  - x\n  -y\n", (4, 1), "put a space after '-' to start a list item (- y); without it YAML reads -y as text",
     [(3, 3, "no space after '-'")]),
]


@pytest.mark.parametrize(("text", "where", "hint", "notes"), SYNTAX_HINTS)
def test_e001_hints_name_the_mistake_whichever_parser(any_loader: str, text: str, where: tuple[int, int], hint: str,
                                                      notes: list[tuple[int, int, str]]) -> None:
    with pytest.raises(SpecError) as info:
        load_yaml_text(text, "s.yaml")
    (diag,) = info.value.diagnostics
    assert (diag.code, diag.pos, diag.hint) == ("E001", Pos(*where), hint)
    assert diag.source_line == re.split("\n", text)[where[0] - 1]
    assert [(n.pos.line, n.pos.col, n.label) for n in diag.notes] == notes
    assert diag.to_json()["hint"] == hint


def test_e001_without_a_recognised_mistake_has_no_hint() -> None:
    with pytest.raises(SpecError) as info:
        load_yaml_text("a: {b: 1\n c: 2}\n", "s.yaml")  # closed later: a missing comma, not an unclosed bracket
    (diag,) = info.value.diagnostics
    assert (diag.pos, diag.hint, diag.notes) == (Pos(2, 3), "", ())
    assert diag.render().splitlines()[1:] == [" 2 |  c: 2}", "   |   ^"]


def test_e001_render_and_json_of_an_unclosed_bracket() -> None:
    with pytest.raises(SpecError) as info:
        load_yaml_text("name: n\nbody: [conv, relu\n", "s.yaml")
    (diag,) = info.value.diagnostics
    assert diag.render() == "\n".join([
        "s.yaml:3:1: E001: did not find expected ',' or ']' (while parsing a flow sequence at line 2, column 7)",
        " 2 | body: [conv, relu",
        "   |       ^ this '[' is never closed",
        " 3 |",
        "   | ^",
        "   = hint: close the '[' opened at line 2, column 7 with ']'",
    ])
    assert diag.to_json() == {
        "file": "s.yaml", "line": 3, "col": 1, "code": "E001", "path": "",
        "message": "did not find expected ',' or ']' (while parsing a flow sequence at line 2, column 7)",
        "hint": "close the '[' opened at line 2, column 7 with ']'", "source_line": "",
        "notes": [{"line": 2, "col": 7, "source_line": "body: [conv, relu", "label": "this '[' is never closed"}],
    }


def test_render_aligns_the_caret_under_tabs_and_escapes_and_cuts_long_lines() -> None:
    tabbed = Diagnostic("E001", "m", "f", Pos(1, 4), source_line="\ta\u200bb: c")
    assert tabbed.render().splitlines()[1:] == [" 1 |     a\\u200bb: c", "   | " + " " * 11 + "^"]
    long = Diagnostic("E001", "m", "f", Pos(1, 151), source_line="x" * 150 + "y" + "z" * 149)
    shown = "..." + "x" * 50 + "y" + "z" * 49 + "..."
    assert long.render().splitlines()[1:] == [f" 1 | {shown}", "   | " + " " * 53 + "^"]
    note = SourceNote(Pos(9, 2), "[a", "opened here")
    wide = Diagnostic("E001", "m", "f", Pos(10, 1), hint="close it", source_line="", notes=(note,))
    assert wide.render().splitlines()[1:] == ["  9 | [a", "    |  ^ opened here", " 10 |", "    | ^",
                                              "    = hint: close it"]
    assert Diagnostic("E101", "m", "f", Pos(2, 3)).render() == "f:2:3: E101: m"


def test_render_shows_a_line_once_with_a_caret_per_place(any_loader: str) -> None:
    with pytest.raises(SpecError) as info:
        load_yaml_text("[a, b", "s.yaml")
    assert info.value.diagnostics[0].render().splitlines()[1:] == [
        " 1 | [a, b",
        "   | ^ this '[' is never closed",
        "   |      ^",
        "   = hint: close the '[' opened at line 1, column 1 with ']'",
    ]


def test_e001_multiple_documents_and_undefined_alias() -> None:
    assert errors("a: 1\n---\nb: 2\n") == ["s.yaml:2:1: E001: expected one YAML document, found a second one"]
    assert errors("--- a\n--- b\n") == ["s.yaml:2:1: E001: expected one YAML document, found a second one"]
    (line,) = errors("a: *nope\n")
    assert line.startswith("s.yaml:1:4: E001: found undefined alias")


def test_e002_duplicate_key_names_first_line() -> None:
    assert errors("conv: {out: 64, out: 128}\n") == ["s.yaml:1:17: E002: duplicate key 'out' (first defined on line 1)"]
    assert errors("a: 1\nb: 2\n'a': 3\n") == ["s.yaml:3:1: E002: duplicate key 'a' (first defined on line 1)"]
    assert errors("1: x\n'1': y\n") == ["s.yaml:2:1: E002: duplicate key '1' (first defined on line 1)"]


def test_e003_merge_keys() -> None:
    message = "E003: merge keys (<<) are not supported; write the keys out"
    assert errors("base: &b {k: 3}\nconv: {<<: *b, out: 64}\n") == [f"s.yaml:2:8: {message}"]
    assert errors("a: {!!merge x: 1}\n") == [f"s.yaml:1:5: {message}"]
    assert load_yaml_text("'<<': 1\nv: <<\n").data == {"<<": 1, "v": "<<"}


@pytest.mark.parametrize(
    ("value", "col", "message"),
    [
        ("!foo x", 4, "tag !foo is not allowed; only plain YAML values are accepted"),
        ("!!binary aGk=", 4, "tag !!binary is not allowed; only plain YAML values are accepted"),
        ("!!timestamp 2024-01-01", 4, "tag !!timestamp is not allowed; only plain YAML values are accepted"),
        ("!!set {a, b}", 4, "tag !!set is not allowed on a mapping; only plain YAML values are accepted"),
        ("!!omap [a: 1]", 4, "tag !!omap is not allowed on a sequence; only plain YAML values are accepted"),
        ("!!str [a]", 4, "tag !!str is not allowed on a sequence; only plain YAML values are accepted"),
        ("!!seq a", 4, "tag !!seq is not allowed; only plain YAML values are accepted"),
        ("!!int abc", 4, "cannot read 'abc' as !!int"),
        ("!!float 1_0", 4, "cannot read '1_0' as !!float"),
        ("!!bool yes", 4, "cannot read 'yes' as !!bool"),
        ("!!null 0", 4, "cannot read '0' as !!null"),
    ],
)
def test_e004_tags(value: str, col: int, message: str) -> None:
    assert errors(f"v: {value}\n") == [f"s.yaml:1:{col}: E004: {message}"]


def test_e004_python_object_is_refused_and_not_executed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Any] = []
    monkeypatch.setattr(os, "system", lambda *args: calls.append(args))
    marker = tmp_path / "pwned"
    text = f"body: !!python/object/apply:os.system ['echo hi > {marker}']\n"
    expected = ("s.yaml:1:7: E004: tag !!python/object/apply:os.system is not allowed on a sequence; "
                "only plain YAML values are accepted")
    assert errors(text) == [expected]
    assert calls == [] and not marker.exists()


def test_e005_file_too_large() -> None:
    small = Limits(max_file_bytes=10)
    message = "s.yaml:1:1: E005: file is larger than 10 bytes (limit max_file_bytes)"
    assert errors(b"a: 12345678\n", small) == [message]
    assert errors("é: 123456\n", small) == [message]  # 11 bytes in UTF-8 but 10 characters
    assert load_yaml_text("a: 1234\n", limits=small).data == {"a": 1234}


def test_e005_depth_with_default_and_small_limits() -> None:
    assert load_yaml_text("[" * 64 + "]" * 64).positions[(0,) * 63] == Pos(1, 64)
    assert errors("[" * 65 + "]" * 65) == ["s.yaml:1:65: E005: nesting deeper than 64 levels (limit max_depth)"]
    text = "a:\n  b:\n    c: [1]\n"
    assert errors(text, Limits(max_depth=3)) == ["s.yaml:3:8: E005: nesting deeper than 3 levels (limit max_depth)"]
    assert load_yaml_text(text, limits=Limits(max_depth=4)).data == {"a": {"b": {"c": [1]}}}


@pytest.mark.parametrize("depth", [30_000, 1_000_000])
def test_e005_huge_nesting_is_refused_quickly(any_loader: str, depth: int) -> None:
    start = time.perf_counter()
    assert errors("[" * depth) == ["s.yaml:1:65: E005: nesting deeper than 64 levels (limit max_depth)"]
    assert errors("- " * depth + "x") == ["s.yaml:1:129: E005: nesting deeper than 64 levels (limit max_depth)"]
    assert time.perf_counter() - start < 5


def test_e005_deep_nesting_even_with_a_huge_depth_limit() -> None:
    limit = Limits(max_depth=10**9)
    cap = yaml_loader.HARD_MAX_DEPTH
    expected = f"s.yaml:1:{cap + 1}: E005: nesting deeper than {cap} levels (limit max_depth)"
    assert errors("[" * 30_000, limit) == [expected]


def capped_loader(cap: int) -> type:
    """The pure-Python loader with libyaml's own nesting cap (PyYAML >= 6.0.4 has one at 1000), worded as libyaml."""

    def refuse(loader: Any, level: str) -> None:
        mark = loader.get_mark()
        raise yaml.scanner.ScannerError(f"while increasing {level} level", mark, "exceeded maximum nesting depth", mark)

    class Capped(yaml_loader._PY_LOADER):  # type: ignore[misc, valid-type]
        def fetch_flow_collection_start(self, token_class: type) -> None:
            if self.flow_level >= cap:
                refuse(self, "flow")
            super().fetch_flow_collection_start(token_class)

        def add_indent(self, column: int) -> bool:
            if self.indent < column and len(self.indents) >= cap:
                refuse(self, "block")
            return bool(super().add_indent(column))

    return Capped


def _block_maps(depth: int) -> str:
    return "".join(f"{'  ' * level}k:\n" for level in range(depth)) + f"{'  ' * depth}v\n"


@pytest.mark.parametrize("cap", [1, 10, 64, 65, 1000])
def test_e005_depth_holds_whatever_the_parsers_own_cap(cap: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """archc's depth limit, not the parser's, decides: a capped libyaml is replaced by the uncapped Python parser."""
    monkeypatch.setattr(yaml_loader, "_LOADER", capped_loader(cap))
    message = "E005: nesting deeper than 64 levels (limit max_depth)"
    assert errors("[" * 30_000) == [f"s.yaml:1:65: {message}"]
    assert errors("{a: " * 30_000) == [f"s.yaml:1:257: {message}"]
    assert errors("- " * 30_000 + "x") == [f"s.yaml:1:129: {message}"]
    assert errors(_block_maps(100)) == [f"s.yaml:65:129: {message}"]
    deep_flow = load_yaml_text("[" * 64 + "]" * 64)
    assert deep_flow.positions[(0,) * 63] == Pos(1, 64)
    deep_block = load_yaml_text("- " * 64 + "x\n")
    assert deep_block.positions[(0,) * 64] == Pos(1, 129)
    nested_seq: Any = "x"
    nested_map: Any = "v"
    for _ in range(64):
        nested_seq, nested_map = [nested_seq], {"k": nested_map}
    assert deep_block.data == nested_seq
    assert load_yaml_text(_block_maps(64)).data == nested_map


def test_e005_depth_with_libyaml_and_a_limit_above_its_cap() -> None:
    """PyYAML 6.0.4's libyaml refuses at depth 1000; archc's raised limit still decides where the error is."""
    limit = Limits(max_depth=1_200)
    assert errors("[" * 30_000, limit) == ["s.yaml:1:1201: E005: nesting deeper than 1200 levels (limit max_depth)"]
    assert errors("- " * 30_000 + "x", limit) == [
        "s.yaml:1:2401: E005: nesting deeper than 1200 levels (limit max_depth)"
    ]


def test_e005_with_libyaml_whose_cap_cannot_be_lifted(monkeypatch: pytest.MonkeyPatch) -> None:
    """A PyYAML whose libyaml caps nesting at 1000 without a setter: the refusal falls back to the Python parser."""
    monkeypatch.setattr(yaml_loader, "_libyaml", None)
    assert errors("[" * 30_000) == ["s.yaml:1:65: E005: nesting deeper than 64 levels (limit max_depth)"]
    assert errors("- " * 30_000 + "x") == ["s.yaml:1:129: E005: nesting deeper than 64 levels (limit max_depth)"]
    assert load_yaml_text("[" * 64 + "]" * 64).positions[(0,) * 63] == Pos(1, 64)


def test_libyaml_cap_is_lifted_for_one_load_and_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    class FakeLibyaml:
        def __init__(self) -> None:
            self.cap = 1000
            self.seen: list[int] = []

        def _get_max_nest_level(self) -> int:
            return self.cap

        def _set_max_nest_level(self, cap: int) -> None:
            self.cap = cap
            self.seen.append(cap)

    fake = FakeLibyaml()
    monkeypatch.setattr(yaml_loader, "_libyaml", fake)
    assert errors("[" * 100) == ["s.yaml:1:65: E005: nesting deeper than 64 levels (limit max_depth)"]
    assert load_yaml_text("[1]", limits=Limits(max_depth=10**9)).data == [1]
    assert fake.seen == [64 + 2048, 1000, yaml_loader.HARD_MAX_DEPTH + 2048, 1000] and fake.cap == 1000
    fake.cap = 10**6  # already high enough: left alone
    load_yaml_text("[1]")
    assert fake.seen == [64 + 2048, 1000, yaml_loader.HARD_MAX_DEPTH + 2048, 1000] and fake.cap == 10**6


def test_e005_python_composer_recursion_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(yaml_loader, "_LOADER", yaml_loader._PY_LOADER)
    assert errors("[" * 1000 + "]" * 1000, Limits(max_depth=10**9)) == [
        "s.yaml:1:1: E005: nesting too deep to read (limit max_depth=1000000000)"
    ]
    assert gc.isenabled()


def test_e005_alias_bomb_is_measured_fast() -> None:
    names = "abcdefghi"
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"{n}: &{n} [{', '.join([f'*{p}'] * 9)}]" for p, n in itertools.pairwise(names)]
    start = time.perf_counter()
    expected = "s.yaml:6:4: E005: this value expands to 597871 YAML nodes through aliases, more than 500000"
    assert errors("\n".join(lines) + "\n") == [f"{expected} (limit max_yaml_nodes)"]
    assert time.perf_counter() - start < 1
    assert errors("a: &a [x, x, x]\nb: [*a, *a, *a]\n", Limits(max_yaml_nodes=12)) == [
        "s.yaml:2:4: E005: this value expands to 13 YAML nodes through aliases, more than 12 (limit max_yaml_nodes)"
    ]


def test_e005_recursive_alias_and_alias_depth() -> None:
    assert errors("a: &a [1, *a]\n") == ["s.yaml:1:4: E005: recursive alias: this value contains itself"]
    assert errors("a: &a {b: [*a]}\n") == ["s.yaml:1:4: E005: recursive alias: this value contains itself"]
    text = "a: &a [1]\nb: &b [*a]\nc: &c [*b]\nd: &d [*c]\n"
    assert errors(text, Limits(max_depth=3)) == [
        "s.yaml:4:4: E005: nesting deeper than 3 levels through aliases (limit max_depth)"
    ]


def test_e005_node_count_scalar_length_and_big_integers() -> None:
    assert errors("[1, 2, 3]\n", Limits(max_yaml_nodes=3)) == [
        "s.yaml:1:8: E005: more than 3 YAML nodes (limit max_yaml_nodes)"
    ]
    assert errors("a: " + "x" * 11, Limits(max_scalar_chars=10)) == [
        "s.yaml:1:4: E005: value of 11 characters is longer than 10 (limit max_scalar_chars)"
    ]
    assert errors("n: " + "9" * 31) == ["s.yaml:1:4: E005: integer with 31 digits; at most 30 are accepted"]
    assert load_yaml_text("n: -" + "9" * 30).data["n"] == -int("9" * 30)
    assert load_yaml_text("n: 1" + "0" * 5000 + ".5").data["n"] == math.inf


def test_e006_control_characters(any_loader: str) -> None:
    message = "is not allowed in YAML (control or special character)"
    assert errors("a:\n  c: d\x00\n") == [f"s.yaml:2:7: E006: character U+0000 {message}"]
    assert errors(b"a: 1\nb: \xc3\xa9\x07\n") == [f"s.yaml:2:5: E006: character U+0007 {message}"]
    assert errors("a: \uffff") == [f"s.yaml:1:4: E006: character U+FFFF {message}"]
    assert errors("a: \x7f") == [f"s.yaml:1:4: E006: character U+007F {message}"]


def test_e006_invalid_utf8_and_surrogates() -> None:
    assert errors(b"a: \xff\n") == ["s.yaml:1:4: E006: invalid UTF-8 byte 0xFF; save the file as UTF-8"]
    assert errors("x: 1\nné: \xe9\n".encode("latin-1")) == [
        "s.yaml:2:2: E006: invalid UTF-8 byte 0xE9; save the file as UTF-8"
    ]
    assert errors(b"\xef\xbb\xbfab\xc3: 1") == ["s.yaml:1:3: E006: invalid UTF-8 byte 0xC3; save the file as UTF-8"]
    assert errors("a: \ud800") == ["s.yaml:1:4: E006: invalid UTF-8 byte 0xED; save the file as UTF-8"]


@pytest.mark.parametrize("loader", ["libyaml", "python"])
def test_reader_error_translation(loader: str) -> None:
    """A ReaderError our own pre-check missed is still located: libyaml gives byte offsets, Python characters."""
    source = "é: ok\nb: ?\n"
    offset = 10 if loader == "libyaml" else 9
    loader_class = yaml_loader._PY_LOADER if loader == "python" else yaml_loader._make_loader(yaml.CSafeLoader)
    exc = yaml.reader.ReaderError("<s>", offset, 0x1F, "?", "control characters are not allowed")
    (diag,) = yaml_loader._yaml_error(exc, source, "s.yaml", loader_class).diagnostics
    assert diag.format() == "s.yaml:2:4: E006: unacceptable character #x001f: control characters are not allowed"


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("[a, b]", "mapping keys must be strings, found a sequence"),
        ("{a: 1}", "mapping keys must be strings, found a mapping"),
        ("true", "mapping keys must be strings, found boolean 'true'; quote the key"),
        ("null", "mapping keys must be strings, found null 'null'; quote the key"),
        ("1.5", "mapping keys must be strings, found number '1.5'; quote the key"),
        ("!!int 1", "mapping keys must be strings, found integer '1'; quote the key"),
    ],
)
def test_e007_keys_must_be_strings(key: str, message: str) -> None:
    assert errors(f"ok: 1\n{key}: x\n") == [f"s.yaml:2:1: E007: {message}"]


def test_all_independent_errors_are_collected() -> None:
    text = "a: 1\nb: !foo x\na: 2\n[k]: 3\nc: {<<: {}, d: !!int x}\nt: !!set {}\n"
    assert errors(text) == [
        "s.yaml:2:4: E004: tag !foo is not allowed; only plain YAML values are accepted",
        "s.yaml:3:1: E002: duplicate key 'a' (first defined on line 1)",
        "s.yaml:4:1: E007: mapping keys must be strings, found a sequence",
        "s.yaml:5:5: E003: merge keys (<<) are not supported; write the keys out",
        "s.yaml:5:16: E004: cannot read 'x' as !!int",
        "s.yaml:6:4: E004: tag !!set is not allowed on a mapping; only plain YAML values are accepted",
    ]


def test_errors_inside_an_aliased_node_are_reported_once() -> None:
    assert errors("a: &a {x: !foo 1}\nb: [*a, *a]\n") == [
        "s.yaml:1:11: E004: tag !foo is not allowed; only plain YAML values are accepted"
    ]


# --- files ------------------------------------------------------------------------------------------------------------


def test_load_file_and_display_name(tmp_path: Path) -> None:
    path = tmp_path / "net.yaml"
    path.write_text("a: [1, 2]\n", encoding="utf-8")
    assert load_yaml_file(path).file == str(path)
    assert load_yaml_file(str(path), display_name="net").file == "net"
    assert load_yaml_file(path).data == {"a": [1, 2]}
    path.write_text("a: !foo 1\n", encoding="utf-8")
    with pytest.raises(SpecError) as info:
        load_yaml_file(path, display_name="net")
    assert [d.format() for d in info.value.diagnostics] == [
        "net:1:4: E004: tag !foo is not allowed; only plain YAML values are accepted"
    ]


@pytest.mark.parametrize(("name", "shown"), [("a\nb.yaml", "a\\nb.yaml"), ("a\u2028\tb.yaml", "a\\u2028\\tb.yaml")])
def test_file_name_is_escaped_in_diagnostics(tmp_path: Path, name: str, shown: str) -> None:
    """A line break in the file name must not split the one-line diagnostic tools parse."""
    (tmp_path / name).write_text("a: b: c\n", encoding="utf-8")
    with pytest.raises(SpecError) as info:
        load_yaml_file(tmp_path / name)
    (diag,) = info.value.diagnostics
    assert diag.format() == f"{tmp_path}/{shown}:1:5: E001: mapping values are not allowed in this context"
    assert diag.to_json()["file"] == f"{tmp_path}/{shown}"


def test_unreadable_files_are_usage_errors(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    with pytest.raises(UsageError, match=f"^cannot read {re.escape(str(missing))}: No such file or directory$"):
        load_yaml_file(missing)
    with pytest.raises(UsageError, match=f"^cannot read {re.escape(str(tmp_path))}: Is a directory$"):
        load_yaml_file(tmp_path)


def test_permission_error_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Simulated, since tests may run as root (who can read a chmod 000 file)."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(yaml_loader, "open", refuse, raising=False)
    with pytest.raises(UsageError, match=r"^cannot read locked\.yaml: Permission denied$"):
        load_yaml_file("locked.yaml")


def test_huge_file_is_not_read_fully(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    with open(path, "wb") as handle:
        handle.truncate(5 * 1024**3)  # sparse: costs no disk
    start = time.perf_counter()
    with pytest.raises(SpecError) as info:
        load_yaml_file(path)
    assert [d.code for d in info.value.diagnostics] == ["E005"]
    assert time.perf_counter() - start < 2


# --- robustness -------------------------------------------------------------------------------------------------------

_YAMLISH = st.lists(
    st.sampled_from([*"[]{}:,-?&*!|>'\"#~ \n\t.01ax", "!!int ", "&a ", "*a", "---", "<<", "\x00", "é", "\ufeff",
                     "${", "key:", "\r\n", "\u2028"]),
    max_size=40,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(st.one_of(_YAMLISH, st.text(max_size=40), st.binary(max_size=40)))
def test_any_input_loads_or_raises_spec_error(text: str | bytes) -> None:
    """Whatever the bytes, the loader answers with data or a SpecError: never another exception."""
    try:
        load_yaml_text(text, "s.yaml", Limits(max_depth=6, max_yaml_nodes=100))
    except SpecError as exc:
        assert all(d.code in {"E001", "E002", "E003", "E004", "E005", "E006", "E007"} for d in exc.diagnostics)
        for diag in exc.diagnostics:  # shown to a user: the diagnostic line, then only indented, printable lines
            first, *rest = diag.render().split("\n")
            assert first == diag.format() and first.isprintable()
            assert all(line.startswith(" ") and line.isprintable() for line in rest), rest
