"""Reading a Darknet ``.cfg`` file: ``[section]`` headers and ``key=value`` options, with their lines.

Darknet's own reader (``read_cfg`` in parser.c) deletes every whitespace character of a line before looking at it,
skips lines that are empty or start with ``#`` or ``;``, and refuses any other line without ``=``; this one does the
same, and remembers where each section and option stands so that a refusal can point at it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from archc.importers.problems import Refusal, SourceProblems


@dataclass
class Option:
    value: str
    line: int
    col: int
    """Column of the value (after ``=``) in the original line."""


@dataclass
class Section:
    kind: str
    line: int
    options: dict[str, Option] = field(default_factory=dict)

    def text(self, key: str, default: str) -> str:
        option = self.options.get(key)
        return default if option is None else option.value

    def integer(self, key: str, default: int) -> int:
        option = self.options.get(key)
        if option is None:
            return default
        try:
            return int(option.value)
        except ValueError:
            # darknet reads it with atoi, which turns "3x" into 3 and "abc" into 0: say so instead of guessing
            raise Refusal("E602", f"[{self.kind}] option {key}={option.value!r} is not an integer", option.line,
                          option.col) from None

    def number(self, key: str, default: float) -> float:
        option = self.options.get(key)
        if option is None:
            return default
        try:
            return float(option.value)
        except ValueError:
            raise Refusal("E602", f"[{self.kind}] option {key}={option.value!r} is not a number", option.line,
                          option.col) from None

    def integers(self, key: str) -> list[int]:
        option = self.options.get(key)
        if option is None:
            raise Refusal("E602", f"[{self.kind}] needs the option {key}=", self.line)
        try:
            return [int(part) for part in option.value.split(",") if part != ""]
        except ValueError:
            raise Refusal("E602", f"[{self.kind}] option {key}={option.value!r} is not a comma-separated list of "
                                  "integers", option.line, option.col) from None


def parse_cfg(text: str, problems: SourceProblems) -> list[Section]:
    """The sections of a cfg file in order; lines that are neither a header nor an option are reported (E602)."""
    sections: list[Section] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = "".join(raw.split())
        if not line or line[0] in "#;":
            continue
        if line[0] == "[":
            if not line.endswith("]") or len(line) < 3:
                problems.malformed(f"malformed section header {raw.strip()!r}: expected [name]", number,
                                   raw.index("[") + 1)
                continue
            sections.append(Section(line[1:-1].lower(), number))
            continue
        key, sep, value = line.partition("=")
        if not sep or not key:
            problems.malformed(f"cannot read {raw.strip()!r}: expected key=value or a [section] header", number,
                               len(raw) - len(raw.lstrip()) + 1)
            continue
        if not sections:
            problems.malformed(f"option {key!r} before the first [section]", number, len(raw) - len(raw.lstrip()) + 1)
            continue
        options = sections[-1].options
        if key not in options:  # darknet's option_find takes the first of two equal keys
            after = raw[raw.index("=") + 1:]
            options[key] = Option(value, number, raw.index("=") + 2 + len(after) - len(after.lstrip()))
    return sections
