"""Mutation fuzzing of the compiler, seeded from the model zoo.

Each example takes a spec from ``specs/``, mutates its loaded data (delete, duplicate, swap or move steps, replace
values, rename keys, inject expressions, rewire ids and ``from`` references) and/or its text (drop, repeat or swap
lines, truncate, insert characters or bytes, replace numbers and words), and compiles the result in-process,
sometimes with ``--set`` overrides or tight limits. The compiler may accept it or raise :class:`SpecError` (or
:class:`UsageError`), nothing else, and every diagnostic must point inside the text it was given.

A few thousand derandomized examples run by default; ``-m slow`` runs at least 50,000 across all cores. Shrunk
failures live in ``tests/fuzz_regressions/`` and are replayed by :func:`test_fuzz_regressions`.
"""

from __future__ import annotations

import copy
import os
import re
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from archc.compiler import compile_text
from archc.errors import SpecError, UsageError
from archc.limits import DEFAULT_LIMITS, Limits
from archc.lower.library import LIBRARY_DIR
from archc.ops.registry import all_ops
from archc.yaml_loader import LINE_BREAK, load_yaml_text

ROOT = Path(__file__).resolve().parent.parent
REGRESSIONS = ROOT / "tests" / "fuzz_regressions"
_DOC_EXAMPLES = re.findall(r"```yaml spec\n(.*?)```", (ROOT / "docs" / "spec-language.md").read_text("utf-8"), re.S)


def _seed(name: str, raw: bytes) -> tuple[str, str | bytes, Any]:
    """A seed with its loaded data, or None as data when the file does not load (its text is still worth mutating)."""
    try:
        text = raw.decode("utf-8")
        return name, text, load_yaml_text(text, name).data
    except (UnicodeDecodeError, SpecError):
        return name, raw, None


GOLDEN = ROOT / "tests" / "golden" / "diagnostics"
VALID_SEEDS = [*(_seed(p.name, p.read_bytes()) for p in sorted((ROOT / "specs").glob("*.yaml"))),
               *(_seed(f"spec-language.md#{i}", text.encode()) for i, text in enumerate(_DOC_EXAMPLES))]
"""(name, text, loaded data) of every zoo spec and example of the language reference."""
BROKEN_SEEDS = [_seed(p.name, p.read_bytes()) for p in sorted(GOLDEN.glob("*.yaml"))]
"""The same of every golden diagnostics case: small, nearly valid, each broken in one way. Half the examples start
from each group."""

DEFAULT_EXAMPLES = 6_000
SLOW_EXAMPLES = 50_000

# --- vocabulary -------------------------------------------------------------------------------------------------------
OPS = sorted(all_ops())
CONSTRUCT_NAMES = ["residual", "branches", "stage", "group"]
KEYS = ["out", "k", "s", "p", "d", "groups", "depthwise", "bias", "id", "from", "if", "body", "block", "repeat", "args",
        "first", "paths", "merge", "axis", "shortcut", "kind", "bn", "prefix", "start", "label", "shape", "dtype",
        "name", "inputs", "outputs", "params", "blocks", "doc", "classes", "width", "stride", "eps", "momentum",
        "mode", "size", "scale", "dims", "p_drop", "negative_slope", "<<", "", " ", "x" * 70, "in_channels",
        "__class__"]
INTS = [0, 1, -1, 2, 3, 7, 64, 255, 1000, 10**6, 10**6 + 1, 10**9, 10**12, 2**31, 2**63, -(2**63), 10**30]
FLOATS = [0.5, -0.0, 1e-300, 1e308, 3.5, float("inf"), float("nan")]
EXPRESSIONS = [
    "${9**9**9}", "${__import__('os')}", "${'a' * 10**9}", "$width", "${width * 4}", "${in_channels // 2}",
    "${in_shape[0]}", "${1/0}", "${[1] * 1000}", "${max([])}", "${round(1e308, 30)}", "${divisible(3, 0)}",
    "${int('x')}", "${float('nan')}", "${-(2**63)}", "${'a' + 1}", "$$", "${", "${}", "${x if y else z}",
    "${(1, 2)}", "${len(in_shape)}", "${str(10**18) * 10}", "${10**18 + 1}", "$classes", "${classes * 1.5}",
    "${True + 1}", "${not 0}", "${min(1, 'a')}", "${abs(-1e400)}", "${in_channels * 2}", "${in_shape}",
    "${[in_channels, 3]}", "$in_channels", "${2 ** 0.5}", "${(-8) ** 0.5}", "${10**18 * 10**18}", "${'${x}'}",
    "${" + "-" * 300 + "1}", "${" + "(" * 120 + "1" + ")" * 120 + "}", "${a.b}", "${f'x'}", "${lambda: 1}",
    "$width$width", "x${1}y", "${divisible(in_channels * 0.75, 8)}", "${ceil(1e300)}", "${int(1e300)}",
]
TEXT_CHUNKS = ["\t", "\r", "\r\n", "\u2028", "\x85", "\x00", "\x1b", "{", "}", "[", "]", ":", ": ", "- ", "&a ", "*a",
               "! ", "!!str ", "!!python/object:os.system ", "|", ">", "#", '"', "'", " ", "\n", "%YAML 1.1\n", "@",
               "`", "\ufeff", "---\n", "...\n", "? ", "<<: ", "${", "$", "\ud800", "é", "\U0001f600", "0x", "-.inf",
               "~", "null", "yes", "1e3", "&b [*b]"]
WORDS = [*OPS, *CONSTRUCT_NAMES, *KEYS, "true", "false", "null", "x", "image", "layer1", "0", "-1", "1000000000000"]


# --- the property -----------------------------------------------------------------------------------------------------
def source_lines(text: str | bytes) -> list[str]:
    """The lines of the text as the compiler sees it (BOM dropped), split at every YAML line break."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "surrogateescape")
    return LINE_BREAK.split(text.removeprefix("\ufeff"))


def check_compiles_or_reports(text: str | bytes, overrides: dict[str, str] | None = None,
                              limits: Limits = DEFAULT_LIMITS) -> None:
    """Compile; only SpecError/UsageError may escape, and every diagnostic points inside ``text``."""
    try:
        compile_text(text, "fuzz.yaml", overrides, limits)
    except UsageError:
        return
    except SpecError as exc:
        for d in exc.diagnostics:
            # an error inside a built-in block points into the library's own file, which the spec called
            in_library = Path(d.file).parent == LIBRARY_DIR
            assert d.file == "fuzz.yaml" or in_library, d.format()
            lines = source_lines(Path(d.file).read_text(encoding="utf-8") if in_library else text)
            assert 1 <= d.pos.line <= len(lines), f"line outside the file ({len(lines)} lines): {d.format()}"
            width = len(lines[d.pos.line - 1])
            assert 1 <= d.pos.col <= width + 1, f"column outside line {d.pos.line} ({width} chars): {d.format()}"
            assert re.fullmatch(r"E\d{3}", d.code), d.format()
            assert d.message and "\n" not in d.message, d.format()


# --- data mutations ---------------------------------------------------------------------------------------------------
def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(data, dict):
        for key, value in data.items():
            out.extend(_paths(value, (*prefix, key)))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            out.extend(_paths(value, (*prefix, index)))
    return out


def _get(data: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        data = data[part]
    return data


def _names(data: Any) -> list[str]:
    """Ids, block names, params and inputs of the spec: plausible values for references."""
    found: set[str] = set()
    for path in _paths(data):
        value = _get(data, path)
        if path and path[-1] == "id" and isinstance(value, str):
            found.add(value)
        if isinstance(value, dict) and path in {("blocks",), ("params",), ("inputs",)}:
            found.update(str(k) for k in value)
    return sorted(found)


def random_value(draw: Any, names: list[str], depth: int = 0) -> Any:
    kind = draw(st.integers(0, 9 if depth < 2 else 6))
    if kind == 0:
        return draw(st.sampled_from(INTS)) if draw(st.booleans()) else draw(st.integers(-300, 300))
    if kind == 1:
        return draw(st.sampled_from(FLOATS))
    if kind == 2:
        return draw(st.booleans())
    if kind == 3:
        return None
    if kind == 4:
        return draw(st.sampled_from(EXPRESSIONS))
    if kind == 5:
        return draw(st.sampled_from(names or ["x"])) if draw(st.booleans()) else draw(st.sampled_from(WORDS))
    if kind == 6:
        return draw(st.text(max_size=12))
    if kind == 7:
        return [random_value(draw, names, depth + 1) for _ in range(draw(st.integers(0, 4)))]
    if kind == 8:
        return {draw(st.sampled_from(KEYS)): random_value(draw, names, depth + 1)}
    return {draw(st.sampled_from(OPS + CONSTRUCT_NAMES)): {draw(st.sampled_from(KEYS)): random_value(draw, names,
                                                                                                    depth + 1)}}


def mutate_data(draw: Any, data: Any) -> Any:
    """Apply one structural mutation at a random place; returns the (possibly new) root."""
    paths = _paths(data)
    names = _names(data)
    path = draw(st.sampled_from(paths))
    target = _get(data, path)
    op = draw(st.sampled_from(["replace", "replace", "delete", "duplicate", "swap", "rename", "expr", "rewire",
                               "wrap", "move", "step", "add_key"]))
    if op == "add_key" and isinstance(target, dict):
        target[draw(st.sampled_from(KEYS + OPS + CONSTRUCT_NAMES))] = random_value(draw, names)
        return data
    if not path or op == "replace":
        value = random_value(draw, names)
        return value if not path else _set(data, path, value)
    parent, last = _get(data, path[:-1]), path[-1]
    if op == "delete":
        del parent[last]
    elif op == "duplicate" and isinstance(parent, list):
        parent.insert(last, copy.deepcopy(target))
    elif op == "swap" and isinstance(parent, list) and len(parent) > 1:
        other = draw(st.integers(0, len(parent) - 1))
        parent[last], parent[other] = parent[other], parent[last]
    elif op == "rename" and isinstance(parent, dict):
        new_key = draw(st.sampled_from(KEYS + OPS + CONSTRUCT_NAMES + names))
        if new_key not in parent:
            parent[new_key] = parent.pop(last)
    elif op == "expr":
        parent[last] = draw(st.sampled_from(EXPRESSIONS))
    elif op == "rewire":
        refs = names + ["nowhere", "layer1.0", "image.x", "a" * 300]
        choice = draw(st.sampled_from(refs))
        key = draw(st.sampled_from(["from", "id", "block"]))
        if isinstance(target, dict):
            target[key] = [choice, draw(st.sampled_from(refs))] if draw(st.booleans()) else choice
        else:
            parent[last] = {str(target) if not isinstance(target, (dict, list)) else "relu": {key: choice}}
    elif op == "wrap":
        parent[last] = [target] if draw(st.booleans()) else {draw(st.sampled_from(KEYS)): target}
    elif op == "move":
        lists = [p for p in paths if isinstance(_get(data, p), list) and p[: len(path)] != path]
        if lists:
            destination = _get(data, draw(st.sampled_from(lists)))
            destination.insert(draw(st.integers(0, len(destination))), copy.deepcopy(target))
    elif op == "step" and isinstance(parent, list):
        parent.insert(last, random_value(draw, names, depth=1) if draw(st.booleans()) else
                      {draw(st.sampled_from(OPS + CONSTRUCT_NAMES + names)): random_value(draw, names, depth=1)})
    return data


def _set(data: Any, path: tuple[Any, ...], value: Any) -> Any:
    _get(data, path[:-1])[path[-1]] = value
    return data


def dump(data: Any) -> str:
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump(data, Dumper=dumper, sort_keys=False, allow_unicode=True, default_flow_style=None, width=120)


# --- text mutations ---------------------------------------------------------------------------------------------------
def mutate_text(draw: Any, text: str | bytes) -> str | bytes:
    if isinstance(text, bytes):
        offset = draw(st.integers(0, len(text)))
        return text[:offset] + draw(st.binary(min_size=1, max_size=6)) + text[offset:]
    lines = text.split("\n")
    op = draw(st.sampled_from(["drop", "repeat", "swap", "truncate", "chunk", "bytes", "number", "word", "indent"]))
    i = draw(st.integers(0, len(lines) - 1))
    if op == "drop":
        del lines[i: i + draw(st.integers(1, 3))]
    elif op == "repeat":
        lines.insert(i, lines[i])
    elif op == "swap":
        j = draw(st.integers(0, len(lines) - 1))
        lines[i], lines[j] = lines[j], lines[i]
    elif op == "truncate":
        return text[: draw(st.integers(0, len(text)))]
    elif op == "chunk":
        offset = draw(st.integers(0, len(text)))
        return text[:offset] + draw(st.sampled_from(TEXT_CHUNKS)) + text[offset:]
    elif op == "bytes":
        raw = text.encode("utf-8", "surrogatepass")
        offset = draw(st.integers(0, len(raw)))
        return raw[:offset] + draw(st.binary(min_size=1, max_size=6)) + raw[offset:]
    elif op == "number":
        numbers = list(re.finditer(r"-?\d+", text))
        if numbers:
            m = draw(st.sampled_from(numbers))
            new = str(draw(st.sampled_from(INTS))) if draw(st.booleans()) else draw(st.sampled_from(EXPRESSIONS))
            return text[: m.start()] + new + text[m.end():]
    elif op == "word":
        words = list(re.finditer(r"[A-Za-z_][A-Za-z0-9_]*", text))
        if words:
            m = draw(st.sampled_from(words))
            return text[: m.start()] + draw(st.sampled_from(WORDS)) + text[m.end():]
    elif op == "indent":
        lines[i] = (" " * draw(st.integers(1, 4)) + lines[i]) if draw(st.booleans()) else lines[i].lstrip()
    return "\n".join(lines)


@st.composite
def mutated_specs(draw: Any, shard: int = 0, shards: int = 1) -> tuple[str | bytes, dict[str, str] | None, Limits]:
    group = VALID_SEEDS if draw(st.booleans()) else BROKEN_SEEDS
    _, text, data = draw(st.sampled_from(group[shard::shards]))
    source: str | bytes = text
    if data is not None and draw(st.booleans()):
        data = copy.deepcopy(data)
        for _ in range(draw(st.integers(1, 4))):
            data = mutate_data(draw, data)
        source = dump(data)
    if draw(st.integers(0, 2)) > 0 or source is text:
        for _ in range(draw(st.integers(1, 3))):
            source = mutate_text(draw, source)
    overrides = None
    if draw(st.integers(0, 9)) == 0:
        key = draw(st.sampled_from(["classes", "width", "growth", "dropout", "nope", "in_channels"]))
        overrides = {key: draw(st.sampled_from(["10", "-1", "0", "1e3", "true", "x", "${9**9}", "$classes", "",
                                                "1000000000000", "[1, 2]", "1" * 40]))}
    limits = Limits()
    if draw(st.integers(0, 9)) == 0:
        # the smallest limit a Limits accepts is 1
        limits = Limits(max_layers=draw(st.sampled_from([1, 2, 10, 100])), max_params=draw(st.sampled_from([1, 10**4])),
                        max_tensor_elements=draw(st.sampled_from([1, 10**5])), max_steps=draw(st.sampled_from([1, 50])),
                        max_activation_bytes=draw(st.sampled_from([1, 10**6])), max_block_depth=draw(st.sampled_from(
                            [1, 2, 3])), max_depth=draw(st.sampled_from([2, 8, 64])))
    return source, overrides, limits


def _run_fuzz(examples: int, run_seed: int | None, shard: int = 0, shards: int = 1) -> int:
    """Run ``examples`` mutated specs of one shard of the seeds; derandomized unless ``run_seed`` is given.

    Returns how many ran.
    """
    ran = [0]

    @settings(max_examples=examples, deadline=None, derandomize=run_seed is None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(mutated_specs(shard, shards))
    def fuzz(case: tuple[str | bytes, dict[str, str] | None, Limits]) -> None:
        ran[0] += 1
        source, overrides, limits = case
        try:
            check_compiles_or_reports(source, overrides, limits)
        except Exception as exc:
            raise AssertionError(f"{type(exc).__name__}: {exc}\ninput: {source!r}\noverrides: {overrides}\n"
                                 f"limits: {limits}") from exc

    if run_seed is not None:
        fuzz = seed(run_seed)(fuzz)
    fuzz()
    return ran[0]


def _in_processes(jobs: list[tuple[int, int | None, int, int]]) -> int:
    with ProcessPoolExecutor(min(len(jobs), os.cpu_count() or 1)) as pool:
        return sum(pool.map(_run_fuzz, *zip(*jobs, strict=True)))


def test_fuzz_default() -> None:
    """A few thousand derandomized examples, the seeds split between two processes."""
    start = time.perf_counter()
    ran = _in_processes([(DEFAULT_EXAMPLES // 2, None, shard, 2) for shard in range(2)])
    assert ran >= DEFAULT_EXAMPLES
    print(f"fuzz: {ran} mutated specs in {time.perf_counter() - start:.1f} s")


@pytest.mark.slow
def test_fuzz_slow() -> None:
    """At least 50,000 random examples in chunks of a few thousand, on every core."""
    chunks = 20
    start = time.perf_counter()
    ran = _in_processes([(-(-SLOW_EXAMPLES // chunks), 1000 + i, 0, 1) for i in range(chunks)])
    assert ran >= SLOW_EXAMPLES
    print(f"fuzz: {ran} mutated specs in {time.perf_counter() - start:.1f} s")


# --- regressions ------------------------------------------------------------------------------------------------------
REGRESSION_CODES = {
    "cr_line_breaks.yaml": ["E006"],  # positions of lone-CR files disagreed between the loader and PyYAML
    "u2028_line_breaks.yaml": ["E103"],  # U+2028 breaks a line for PyYAML: positions must count it too
    "eof_error_past_last_line.yaml": ["E001"],  # libyaml put the error on a line after the last one
    "explicit_empty_document.yaml": ["E102"],  # the empty document's null sat on a line after the last one
    "input_rank6.yaml": ["E103"],  # the list form of an input shape escaped the rank check: ValidationError
    "outputs_all_switched_off.yaml": ["E103"],  # no outputs: InternalError from the IR lint
    "outputs_empty.yaml": ["E103"],
    "step_id_not_a_string.yaml": ["E103", "E103", "E103"],  # a non-string id of an op step: TypeError
    "control_characters_in_names.yaml": ["E104", "E201", "E104"],  # a newline in a step name broke the message line
}
"""Every input in tests/fuzz_regressions/ (the fuzzer's shrunk failures and their siblings found by hand) and the
codes it must now report; the comment says what it used to do."""


def test_fuzz_regressions() -> None:
    """Replay every shrunk failure: a located SpecError with the expected codes, positions inside the file."""
    files = sorted(p.name for p in REGRESSIONS.iterdir() if p.is_file())
    assert files == sorted(REGRESSION_CODES)
    for name, codes in REGRESSION_CODES.items():
        text = (REGRESSIONS / name).read_bytes()
        check_compiles_or_reports(text)
        with pytest.raises(SpecError) as info:
            compile_text(text, "fuzz.yaml")
        assert [d.code for d in info.value.diagnostics] == codes, name
        assert all(d.message.isprintable() and d.path.isprintable() for d in info.value.diagnostics), name
