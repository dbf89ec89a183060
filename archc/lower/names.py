"""Lexical name tables: which step ids a `from:` can see, and what each id stands for."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field


@dataclass
class Entry:
    """An id: the node holding its output, and, for named constructs, the table of names inside."""

    node: str | None
    inner: NameTable | None = None
    line: int = 0
    """Where the id was defined (0: unknown), for pointing at the first of two duplicates."""
    excluded: bool = False
    """The step exists in the spec but its `if:` is false: outputs naming it are dropped, inputs from it refused."""


@dataclass
class NameTable:
    parent: NameTable | None = None
    entries: dict[str, Entry] = field(default_factory=dict)
    unnamed: list[tuple[str, int]] = field(default_factory=list)
    """Steps of this scope without an `id` (their layer path, and line), for hints."""
    indexed: dict[str, Entry] = field(default_factory=dict)
    """Steps of this scope without an `id`, by their layer path relative to the scope (`3`, or `2.0` inside an
    unnamed group): `from: features.3` names them as PyTorch's module paths do."""

    def child(self) -> NameTable:
        return NameTable(parent=self)

    def release(self) -> None:
        """Empty this table and every table inside it, once lowering is done: a table and the named constructs in
        it refer to each other (``parent``, ``Entry.inner``), cycles that only the cycle collector would free."""
        stack, seen = [self], {id(self)}
        while stack:
            table = stack.pop()
            for entry in (*table.entries.values(), *table.indexed.values()):
                inner, entry.inner = entry.inner, None
                if inner is not None and id(inner) not in seen:
                    seen.add(id(inner))
                    stack.append(inner)
            table.parent, table.entries, table.indexed, table.unnamed = None, {}, {}, []

    def define(self, name: str, entry: Entry) -> bool:
        """Add a name; False when the name already exists in this table."""
        if name in self.entries and not self.entries[name].excluded:
            return False
        self.entries[name] = entry
        return True

    def lookup(self, ref: str) -> Entry | None:
        """Resolve ``a`` or a dotted ``a.b.c``: the first part lexically, the rest inside named constructs. A part
        may be an unnamed step's index (``features.3``), an unnamed group's steps' too (``2.0``)."""
        parts = ref.split(".")
        for table in self.chain():
            if parts[0] in table.entries or any(".".join(parts[:n]) in table.indexed for n in range(1, len(parts) + 1)):
                return table.resolve(parts)
        return None

    def resolve(self, parts: list[str]) -> Entry | None:
        """``parts`` inside this table: an id, or the longest index path, then the rest inside that step."""
        candidates = [(1, self.entries.get(parts[0]))]
        candidates += [(n, self.indexed.get(".".join(parts[:n]))) for n in range(len(parts), 0, -1)]
        for used, entry in candidates:
            if entry is None:
                continue
            if used == len(parts) or entry.excluded:
                return entry  # inside a switched-off step: it is the step that is missing
            if entry.inner is not None:
                found = entry.inner.resolve(parts[used:])
                if found is not None:
                    return found
        return None

    def chain(self) -> list[NameTable]:
        """This table and the enclosing ones, innermost first."""
        tables: list[NameTable] = []
        table: NameTable | None = self
        while table is not None:
            tables.append(table)
            table = table.parent
        return tables

    def visible(self, before_line: int | None = None) -> list[str]:
        """Names in this scope and the enclosing ones; with ``before_line``, only those defined above that line.
        The constructs enclosing this scope are left out: a step cannot take its input from its own group."""
        tables = self.chain()
        enclosing = {id(t) for t in tables}
        return [name for table in tables for name, entry in table.entries.items()
                if (before_line is None or entry.line < before_line)
                and (entry.inner is None or id(entry.inner) not in enclosing)]

    def unnamed_before(self, before_line: int | None = None) -> list[str]:
        """Index paths of the steps without an `id` a step on ``before_line`` can take its input from."""
        return [name for table in self.chain() for name, line in table.unnamed
                if before_line is None or line < before_line]

    def suggest(self, ref: str, before_line: int | None = None) -> str:
        """A hint for an unknown ``ref``: close names, else the names a step on ``before_line`` can take."""
        head, *rest = ref.split(".")
        entry = self.lookup(head) if rest else None
        if entry is not None:
            return _suggest_inside(head, entry, rest)
        names = self.visible(before_line)
        unnamed = self.unnamed_before(before_line)
        close = difflib.get_close_matches(ref, names, n=3, cutoff=0.5)
        if close:
            return "; did you mean " + " or ".join(f"'{c}'" for c in close) + "?"
        hint = "; visible here: " + ", ".join(names) if names and len(names) <= 12 else ""
        if unnamed:
            steps = ", ".join(unnamed) if len(unnamed) <= 6 else f"{', '.join(unnamed[:6])}, ..."
            hint += f"; steps without an `id` are referenced by their index: {steps}"
        return hint


@dataclass
class PartsTable(NameTable):
    """The parts of a step with several outputs (`chunk`, `split`), named `0`, `1`, ... (`from: qkv.1`): the step
    itself has no single output to take."""

    op: str = ""
    layer: str = ""


def _suggest_inside(known: str, entry: Entry, rest: list[str]) -> str:
    """Hint for a dotted reference whose head exists: which part is missing, and what is there instead."""
    for part in rest:
        if entry.inner is None:
            return f"; '{known}' is a single step with no named steps inside"
        found = entry.inner.entries.get(part)
        if found is None:
            names = list(entry.inner.entries)
            close = difflib.get_close_matches(part, names, n=3, cutoff=0.5)
            if close:
                return "; did you mean " + " or ".join(f"'{known}.{c}'" for c in close) + "?"
            return f"; '{known}' contains: {', '.join(names) or 'no named steps'}"
        entry, known = found, f"{known}.{part}"
    return ""
