"""Load a spec file as plain Python data with source positions, refusing anything unsafe or oversized.

Only PyYAML's safe parser and composer run (never a constructor, so no tag can create objects), and every limit is
checked before the step it protects: size before decoding; depth, node count and scalar length in an iterative event
scan before composing (the composers recurse natively and crash on deep input); alias-expanded size per unique node
before converting (billion laughs, cycles). Then every unique node is checked once (tags, keys, duplicates, merge keys;
all errors collected) and the graph is converted iteratively, recording the position of every value and key.

Plain scalars are resolved with the YAML 1.2 core schema (:mod:`archc.yaml_scalars`). Mapping keys must be strings;
the one exception is a plain integer key such as ``0:``, kept as its original text because layer names may be digits.
Every user problem raises :class:`SpecError`; unreadable files raise :class:`UsageError`.
"""

from __future__ import annotations

import codecs
import contextlib
import gc
import os
import re
import stat
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NoReturn

import yaml

from archc.errors import Diagnostic, Pos, Problem, SpecError, UsageError
from archc.limits import DEFAULT_LIMITS, Limits
from archc.yaml_hints import syntax_hint
from archc.yaml_scalars import CORE, MERGE_REFUSED, resolve_plain, resolve_tagged, tag_name

YamlPath = tuple[str | int, ...]

IMPLICIT = "tag:archc,2024:implicit"
"""Tag our resolver gives untagged plain scalars, so explicit tags such as ``!!str 12`` stay distinguishable."""
HARD_MAX_DEPTH = 5_000
"""Depth cap applied whatever the limits say: both composers recurse, the C one on the C stack (crash near 30,000)."""

LINE_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")
"""Line breaks as PyYAML and libyaml count them (YAML 1.1): positions we compute agree with their marks."""
_NON_PRINTABLE = re.compile("[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_UNREAD = object()
_KIND_NAMES = {yaml.ScalarNode: "scalar", yaml.SequenceNode: "sequence", yaml.MappingNode: "mapping"}
_KIND_TAGS = {yaml.ScalarNode: CORE + "str", yaml.SequenceNode: CORE + "seq", yaml.MappingNode: CORE + "map"}


def _make_loader(base: type) -> type:
    """A loader of the safe family whose resolver leaves every scalar to us (see :data:`IMPLICIT`)."""

    def resolve(self: Any, kind: type, value: Any, implicit: tuple[bool, bool]) -> str:
        return IMPLICIT if kind is yaml.ScalarNode and implicit[0] else _KIND_TAGS[kind]

    return type(f"Archc{base.__name__}", (base,), {"yaml_implicit_resolvers": {}, "resolve": resolve})


_PY_LOADER = _make_loader(yaml.SafeLoader)
LIBYAML_LOOKAHEAD = 1024
"""Characters libyaml's scanner may read past a possible simple key, each of which can open a nesting level."""
try:
    from yaml import _yaml as _libyaml
except ImportError:  # PyYAML built without libyaml
    _libyaml = None
_LOADER = _make_loader(yaml.CSafeLoader) if hasattr(yaml, "CSafeLoader") else _PY_LOADER


@dataclass(frozen=True)
class LoadedDoc:
    """A loaded spec: plain data plus where each value and each mapping key was written."""

    data: Any
    file: str
    positions: dict[YamlPath, Pos]
    key_positions: dict[YamlPath, Pos]

    def pos(self, path: YamlPath, *, key: bool = False) -> Pos:
        """Position of ``path`` (its key if ``key``), else of the nearest known ancestor, else 1:1."""
        path = tuple(path)
        if key and path in self.key_positions:
            return self.key_positions[path]
        for end in range(len(path), -1, -1):
            found = self.positions.get(path[:end])
            if found is not None:
                return found
        return Pos(1, 1)


def load_yaml_file(path: str | os.PathLike[str], limits: Limits = DEFAULT_LIMITS,
                   display_name: str | None = None) -> LoadedDoc:
    """Read the spec (see :func:`read_spec`) and load it."""
    data, shown = read_spec(path, limits)
    return load_yaml_text(data, display_name if display_name is not None else shown, limits)


STDIN = "-"
"""The spec path that reads standard input; diagnostics show it as ``<stdin>``."""


def read_spec(path: str | os.PathLike[str], limits: Limits = DEFAULT_LIMITS) -> tuple[bytes, str]:
    """At most ``max_file_bytes + 1`` bytes of a spec (enough to know it is too large) and the name to show.

    Only a regular file or ``-`` (standard input) is read: a FIFO or a device could block or never end.
    """
    shown = os.fspath(path)
    if shown == STDIN:
        return sys.stdin.buffer.read(limits.max_file_bytes + 1), "<stdin>"
    try:
        with open(path, "rb", opener=_open_nonblocking) as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise UsageError(f"cannot read {shown}: not a regular file (pass - to read standard input)")
            return handle.read(limits.max_file_bytes + 1), shown
    except OSError as exc:
        raise UsageError(f"cannot read {shown}: {exc.strerror or exc}") from None


def _open_nonblocking(path: str, flags: int) -> int:
    return os.open(path, flags | os.O_NONBLOCK)  # opening a FIFO waits for a writer; a regular file ignores the flag


def load_yaml_text(text: str | bytes, file: str = "<spec>", limits: Limits = DEFAULT_LIMITS) -> LoadedDoc:
    """Load one YAML document; an empty document (or only comments) gives ``data=None``."""
    source = _decode(text, file, limits)
    with collector_paused():  # hundreds of thousands of acyclic objects: the collector would make this much slower
        root, bang_marks = _parse(source, file, limits)
        if root is None:
            return LoadedDoc(None, file, {}, {})
        nodes = _measure(root, file, limits)
        scalars, keys = _Checker(file, bang_marks).run(nodes)
        data, positions, key_positions = _build(root, scalars, keys, _offset_pos(source, len(source)))
    return LoadedDoc(data, file, positions, key_positions)


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Pause Python's cycle collector, restoring its previous state after.

    Loading and compiling a spec allocate many small objects that form no cycles; the collector's passes over them
    (in a process that has imported torch, over everything torch holds too) cost about a tenth of the time. What was
    made meanwhile then joins the oldest generation at once (``freeze`` then ``unfreeze``, which move lists without
    scanning them): otherwise the first collection after would scan all of it as young objects (a second for a
    200,000-layer graph), and then again in the middle generation. Cyclic garbage among it waits for the next full
    collection.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.freeze()
            gc.unfreeze()
            gc.enable()


def _fail(code: str, message: str, file: str, pos: Pos) -> NoReturn:
    raise SpecError([Diagnostic(code, message, file, pos)])


def _mark_pos(mark: Any) -> Pos:
    return Pos(mark.line + 1, mark.column + 1)


def _offset_pos(text: str, offset: int) -> Pos:
    """Line and column of a character offset, counting line breaks as YAML parsers do (as :data:`LINE_BREAK`)."""
    offset = max(0, min(offset, len(text)))
    line, line_start = 1, 0
    for match in LINE_BREAK.finditer(text, 0, offset):
        line, line_start = line + 1, match.end()
    return Pos(line, offset - line_start + 1)


def _decode(text: str | bytes, file: str, limits: Limits) -> str:
    """Check size, UTF-8 and control characters, and drop a leading BOM, before YAML sees anything."""
    if isinstance(text, str):  # at least one byte per character: cut before encoding a huge string
        text = text[: limits.max_file_bytes + 1].encode("utf-8", "surrogatepass")
    if len(text) > limits.max_file_bytes:
        _fail("E005", f"file is larger than {limits.max_file_bytes} bytes (limit max_file_bytes)", file, Pos(1, 1))
    text = text.removeprefix(codecs.BOM_UTF8)
    try:
        source = text.decode("utf-8")
    except UnicodeDecodeError as exc:
        prefix = text[: exc.start].decode("utf-8")
        _fail("E006", f"invalid UTF-8 byte 0x{text[exc.start]:02X}; save the file as UTF-8", file,
              _offset_pos(prefix, len(prefix)))
    bad = _NON_PRINTABLE.search(source)
    if bad:
        _fail("E006", f"character U+{ord(bad.group()):04X} is not allowed in YAML (control or special character)",
              file, _offset_pos(source, bad.start()))
    return source


class _ParserGaveUp(Exception):
    """libyaml refused to nest deeper than its own cap, which archc's limits (not libyaml's) must decide."""


def _is_nesting_refusal(exc: yaml.YAMLError, loader: type) -> bool:
    """Whether ``exc`` is libyaml's own depth cap (``exceeded maximum nesting depth``, PyYAML >= 6.0.4 at 1000).

    Its scanner looks ahead up to 1024 characters on a line, so in ``[[[[...`` it refuses at column 1001 before the
    parser has produced a single event for archc's depth check to see.
    """
    if loader is _PY_LOADER or not isinstance(exc, yaml.MarkedYAMLError):
        return False
    text = f"{exc.problem or ''} {exc.context or ''}".lower()
    return "nesting" in text or "depth" in text


@contextlib.contextmanager
def _libyaml_nesting_room(max_depth: int) -> Iterator[None]:
    """Lift libyaml's own nesting cap above ``max_depth`` plus its look-ahead for one load, then restore it.

    The cap is process-wide and only PyYAML builds that have it can set it (``_set_max_nest_level``, 6.0.4); without
    the setter, a refusal falls back to the pure-Python parser (see :func:`_parse`), which is quadratic on deep flow
    nesting (seconds at a raised max_depth of 5000).
    """
    get_cap = getattr(_libyaml, "_get_max_nest_level", None)
    set_cap = getattr(_libyaml, "_set_max_nest_level", None)
    needed = max_depth + 2 * LIBYAML_LOOKAHEAD  # the scanner opens at most one level per character it looks ahead
    if get_cap is None or set_cap is None or get_cap() >= needed:
        yield
        return
    before = get_cap()
    set_cap(needed)
    try:
        yield
    finally:
        set_cap(before)


def _parse(source: str, file: str, limits: Limits) -> tuple[yaml.Node | None, set[tuple[int, int]]]:
    """Scan (bounding depth and size) and compose with libyaml, its own nesting cap lifted where PyYAML allows, or
    with the pure-Python parser if that cap still refuses first: that parser has no cap, so archc's limit fires at
    its own position either way."""
    with contextlib.suppress(_ParserGaveUp), _libyaml_nesting_room(min(limits.max_depth, HARD_MAX_DEPTH)):
        bang_marks = _scan_events(source, file, limits, _LOADER)
        return _compose(source, file, limits, _LOADER), bang_marks
    bang_marks = _scan_events(source, file, limits, _PY_LOADER)  # slow on deep flow nesting, hence the room above
    return _compose(source, file, limits, _PY_LOADER), bang_marks


def _yaml_error(exc: yaml.YAMLError, source: str, file: str, loader: type) -> SpecError:
    """Translate any PyYAML error into a located E001 (syntax) or E006 (reader) diagnostic."""
    if _is_nesting_refusal(exc, loader):
        raise _ParserGaveUp from None
    if isinstance(exc, yaml.reader.ReaderError):
        offset = exc.position
        if loader is not _PY_LOADER:  # libyaml reports a byte offset into the UTF-8 encoding
            offset = len(source.encode("utf-8")[:offset].decode("utf-8", "ignore"))
        message = str(exc).splitlines()[0]  # "unacceptable character #x0000: ..." without PyYAML's location
        return SpecError([Diagnostic("E006", message, file, _offset_pos(source, offset))])
    if not isinstance(exc, yaml.MarkedYAMLError):
        return SpecError([Diagnostic("E001", f"invalid YAML: {exc}", file, Pos(1, 1))])
    mark = exc.problem_mark or exc.context_mark
    message = exc.problem or exc.context or "invalid YAML"
    ctx = _inside(source, _mark_pos(exc.context_mark)) if exc.context_mark else None
    if exc.problem and exc.context:  # e.g. "did not find expected key (while parsing a block mapping at line 1, ...)"
        where = f" at line {ctx.line}, column {ctx.col}" if ctx else ""
        message = f"{exc.problem} ({exc.context}{where})"
    pos = _inside(source, _mark_pos(mark)) if mark else Pos(1, 1)
    lines = LINE_BREAK.split(source)
    hint = syntax_hint(lines, pos, ctx)
    return SpecError([Diagnostic("E001", message, file, pos, hint=hint.text if hint else "",
                                 source_line=lines[pos.line - 1], notes=hint.notes if hint else ())])


def _inside(source: str, pos: Pos) -> Pos:
    """``pos`` moved onto the text: libyaml puts end-of-input errors on a line after a last line without a break."""
    lines = LINE_BREAK.split(source)
    if pos.line > len(lines):
        return _offset_pos(source, len(source))
    return Pos(pos.line, min(pos.col, len(lines[pos.line - 1]) + 1))


def _event_problem(event: yaml.Event, documents: int, nodes: int, depth: int, limits: Limits) -> Problem | None:
    """The limit (or the one-document rule) this event breaks, given the running counts including it."""
    max_depth = min(limits.max_depth, HARD_MAX_DEPTH)
    if documents > 1:
        return Problem("E001", "expected one YAML document, found a second one")
    if nodes > limits.max_yaml_nodes:
        return Problem("E005", f"more than {limits.max_yaml_nodes} YAML nodes (limit max_yaml_nodes)")
    if depth > max_depth:
        return Problem("E005", f"nesting deeper than {max_depth} levels (limit max_depth)")
    if isinstance(event, yaml.ScalarEvent) and len(event.value) > limits.max_scalar_chars:
        return Problem("E005", f"value of {len(event.value)} characters is longer than {limits.max_scalar_chars} "
                       "(limit max_scalar_chars)")
    return None


def _scan_events(source: str, file: str, limits: Limits, loader: type) -> set[tuple[int, int]]:
    """Bound documents, depth, node count and scalar length from the event stream, stopping at the first excess.

    PyYAML's event parser is iterative, so this is safe on any nesting. Returns the marks of scalars tagged with the
    non-specific ``!``: our resolver cannot see that tag, which makes a plain scalar a string.
    """
    depth = nodes = documents = 0
    bang_marks: set[tuple[int, int]] = set()
    try:
        for event in yaml.parse(source, Loader=loader):
            if isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
                continue
            documents += isinstance(event, yaml.DocumentStartEvent)
            nodes += isinstance(event, yaml.NodeEvent)
            depth += isinstance(event, yaml.CollectionStartEvent)
            problem = _event_problem(event, documents, nodes, depth, limits)
            if problem is not None:
                _fail(problem.code, problem.message, file, _mark_pos(event.start_mark))
            if isinstance(event, yaml.ScalarEvent) and event.tag == "!":
                bang_marks.add((event.start_mark.line, event.start_mark.column))
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, source, file, loader) from None
    return bang_marks


def _compose(source: str, file: str, limits: Limits, loader_class: type) -> yaml.Node | None:
    """Compose the node graph (aliases become shared nodes); the event scan has already bounded its depth."""
    loader = loader_class(source)
    try:
        return loader.get_single_node()
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, source, file, loader_class) from None
    except RecursionError:
        _fail("E005", f"nesting too deep to read (limit max_depth={limits.max_depth})", file, Pos(1, 1))
    finally:
        loader.dispose()


def _children(node: yaml.Node) -> list[yaml.Node]:
    """A collection's nodes; for a mapping, keys and values alike."""
    return [child for pair in node.value for child in pair] if isinstance(node, yaml.MappingNode) else list(node.value)


def _measure(root: yaml.Node, file: str, limits: Limits) -> list[yaml.Node]:
    """Alias-expanded size and depth of every unique node, memoised by id; returns unique nodes children-first.

    Iterative post-order walk, so a 9x9 alias bomb costs 81 steps and a recursive alias is caught as a node met again
    while it is still open.
    """
    size: dict[int, tuple[int, int]] = {}
    open_ids: set[int] = set()
    order: list[yaml.Node] = []
    stack: list[tuple[yaml.Node, list[yaml.Node] | None]] = [(root, None)]
    while stack:
        node, children = stack.pop()
        nid = id(node)
        if children is None:  # first visit
            if nid in size:
                continue
            if isinstance(node, yaml.ScalarNode):
                size[nid] = (1, 0)
                order.append(node)
                continue
            if nid in open_ids:
                _fail("E005", "recursive alias: this value contains itself", file, _mark_pos(node.start_mark))
            open_ids.add(nid)
            children = _children(node)
            stack.append((node, children))
            stack.extend((child, None) for child in children if id(child) not in size)
            continue
        open_ids.discard(nid)
        kids = [size[id(child)] for child in children]
        count = 1 + sum(c for c, _ in kids)
        depth = 1 + max((d for _, d in kids), default=0)
        if count > limits.max_yaml_nodes:
            _fail("E005", f"this value expands to {count} YAML nodes through aliases, more than "
                  f"{limits.max_yaml_nodes} (limit max_yaml_nodes)", file, _mark_pos(node.start_mark))
        if depth > (max_depth := min(limits.max_depth, HARD_MAX_DEPTH)):
            _fail("E005", f"nesting deeper than {max_depth} levels through aliases (limit max_depth)", file,
                  _mark_pos(node.start_mark))
        size[nid] = (count, depth)
        order.append(node)
    return order


class _Checker:
    """Visits each unique node once, resolving scalars and keys and collecting every independent error."""

    def __init__(self, file: str, bang_marks: set[tuple[int, int]]) -> None:
        self.file = file
        self.bang_marks = bang_marks
        self.diagnostics: list[Diagnostic] = []
        self.scalars: dict[int, Any] = {}
        self.keys: dict[int, list[str]] = {}

    def run(self, nodes: list[yaml.Node]) -> tuple[dict[int, Any], dict[int, list[str]]]:
        """Check ``nodes`` (children before parents) and raise one SpecError listing every problem found."""
        for node in nodes:
            if isinstance(node, yaml.ScalarNode):
                self._scalar(node)
            else:
                if node.tag != _KIND_TAGS[type(node)]:
                    self._error("E004", f"tag {tag_name(node.tag)} is not allowed on a {_KIND_NAMES[type(node)]}; "
                                "only plain YAML values are accepted", node)
                if isinstance(node, yaml.MappingNode):
                    self._mapping(node)
        if self.diagnostics:
            raise SpecError(self.diagnostics)
        return self.scalars, self.keys

    def _error(self, code: str, message: str, node: yaml.Node) -> None:
        self.diagnostics.append(Diagnostic(code, message, self.file, _mark_pos(node.start_mark)))

    def _scalar(self, node: yaml.ScalarNode) -> None:
        plain = not node.style
        bang = (node.start_mark.line, node.start_mark.column) in self.bang_marks
        try:
            if node.tag == IMPLICIT:
                self.scalars[id(node)] = resolve_plain(node.value) if plain and not bang else node.value
            else:
                self.scalars[id(node)] = resolve_tagged(node.tag, node.value)
        except Problem as problem:
            self._error(problem.code, problem.message, node)

    def _key(self, node: yaml.Node) -> str | None:
        """The key's string, or None after recording why it is refused."""
        if not isinstance(node, yaml.ScalarNode):
            self._error("E007", f"mapping keys must be strings, found a {_KIND_NAMES[type(node)]}", node)
            return None
        value = self.scalars.get(id(node), _UNREAD)
        if value is _UNREAD:  # its own error is already recorded
            return None
        if node.tag == IMPLICIT and not node.style and node.value == "<<":
            self._error("E003", MERGE_REFUSED, node)
            return None
        if isinstance(value, str):
            return value
        if type(value) is int and node.tag == IMPLICIT:
            return str(node.value)
        kind = {bool: "boolean", float: "number", int: "integer"}.get(type(value), "null")
        self._error("E007", f"mapping keys must be strings, found {kind} {node.value!r}; quote the key", node)
        return None

    def _mapping(self, node: yaml.MappingNode) -> None:
        first: dict[str, yaml.Node] = {}
        for key_node, _ in node.value:
            key = self._key(key_node)
            if key is None:
                continue
            if key in first:
                self._error("E002", f"duplicate key {key!r} (first defined on line "
                            f"{first[key].start_mark.line + 1})", key_node)
            else:
                first[key] = key_node
        self.keys[id(node)] = list(first)


def _build(root: yaml.Node, scalars: dict[int, Any], keys: dict[int, list[str]],
           end: Pos) -> tuple[Any, dict[YamlPath, Pos], dict[YamlPath, Pos]]:
    """Convert the checked graph to plain data, iteratively; aliased nodes become independent copies."""
    positions: dict[YamlPath, Pos] = {}
    key_positions: dict[YamlPath, Pos] = {}
    holder: list[Any] = [None]
    stack: list[tuple[yaml.Node, YamlPath, Any, int | str]] = [(root, (), holder, 0)]
    while stack:
        node, path, parent, slot = stack.pop()
        positions[path] = min(_mark_pos(node.start_mark), end)  # an empty value at the very end: after the text
        value: Any
        if isinstance(node, yaml.ScalarNode):
            value = scalars[id(node)]
        elif isinstance(node, yaml.SequenceNode):
            value = [None] * len(node.value)
            stack.extend((child, (*path, index), value, index) for index, child in enumerate(node.value))
        else:
            value = {}
            for key, (key_node, child) in zip(keys[id(node)], node.value, strict=True):
                value[key] = None
                key_positions[(*path, key)] = _mark_pos(key_node.start_mark)
                stack.append((child, (*path, key), value, key))
        parent[slot] = value
    return holder[0], positions, key_positions
