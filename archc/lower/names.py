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
    """Steps of this scope without an `id` (their layer path, and line): not referable, but worth a hint."""

    def child(self) -> NameTable:
        return NameTable(parent=self)

    def define(self, name: str, entry: Entry) -> bool:
        """Add a name; False when the name already exists in this table."""
        if name in self.entries and not self.entries[name].excluded:
            return False
        self.entries[name] = entry
        return True

    def lookup(self, ref: str) -> Entry | None:
        """Resolve ``a`` or a dotted ``a.b.c``: the first part lexically, the rest inside named constructs."""
        head, *rest = ref.split(".")
        table: NameTable | None = self
        entry = None
        while table is not None and entry is None:
            entry = table.entries.get(head)
            table = table.parent
        for part in rest:
            if entry is not None and entry.excluded:
                return entry  # inside a switched-off step: it is the step that is missing
            if entry is None or entry.inner is None:
                return None
            entry = entry.inner.entries.get(part)
        return entry

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
        """Paths of the steps without an `id` a step on ``before_line`` could otherwise take its input from."""
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
        if any(ref == path or path.endswith("." + ref) for path in unnamed):
            return f"; '{ref}' is a step without an `id`, and only ids can be referenced: give that step an `id`"
        close = difflib.get_close_matches(ref, names, n=3, cutoff=0.5)
        if close:
            return "; did you mean " + " or ".join(f"'{c}'" for c in close) + "?"
        hint = "; visible here: " + ", ".join(names) if names and len(names) <= 12 else ""
        if unnamed:
            steps = ", ".join(unnamed) if len(unnamed) <= 6 else f"{', '.join(unnamed[:6])}, ..."
            hint += f"; steps without an `id` cannot be referenced ({steps}): give the one you mean an `id`"
        return hint


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
