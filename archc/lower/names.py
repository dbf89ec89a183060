"""Lexical name tables: which step ids a `from:` can see, and what each id stands for."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field


@dataclass
class Entry:
    """An id: the node holding its output, and, for named constructs, the table of names inside."""

    node: str | None
    inner: NameTable | None = None


@dataclass
class NameTable:
    parent: NameTable | None = None
    entries: dict[str, Entry] = field(default_factory=dict)

    def child(self) -> NameTable:
        return NameTable(parent=self)

    def define(self, name: str, entry: Entry) -> bool:
        """Add a name; False when the name already exists in this table."""
        if name in self.entries:
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
            if entry is None or entry.inner is None:
                return None
            entry = entry.inner.entries.get(part)
        return entry

    def visible(self) -> list[str]:
        names: list[str] = []
        table: NameTable | None = self
        while table is not None:
            names.extend(table.entries)
            table = table.parent
        return names

    def suggest(self, ref: str) -> str:
        names = self.visible()
        close = difflib.get_close_matches(ref, names, n=3, cutoff=0.5)
        if close:
            return "; did you mean " + " or ".join(f"'{c}'" for c in close) + "?"
        if names and len(names) <= 12:
            return "; visible here: " + ", ".join(names)
        return ""
