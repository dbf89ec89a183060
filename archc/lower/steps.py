"""The step grammar, parsed in one place for lowering and for the expansion budget counted before it.

A step is an op, block or construct name alone (`relu`) or a one-key mapping from that name to its parameters
(`{conv: {out: 64, k: 3}}`, where `{relu: }` means no parameters). The keys every step may carry (`id`, `from`,
`if`) are set apart; nothing here reports: lowering turns a :class:`BadStep` into its diagnostic, the budget counts it
as nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from archc.spec.model import COMMON_KEYS
from archc.spec.report import DocPath


@dataclass(frozen=True)
class Step:
    kind: str
    """The op, block or construct name."""
    body: dict[str, Any]
    """The step's parameter mapping, common keys included ({} for a name alone)."""
    common: dict[str, Any]
    """The common keys it sets (`id`, `from`, `if`)."""
    keyed: bool
    """Written as `{kind: ...}`: diagnostics about the step point at that key, one level below the list item."""

    def at(self, where: DocPath) -> DocPath:
        """The path of the step's parameter mapping, given the path of its list item."""
        return (*where, self.kind) if self.keyed else where

    @property
    def params(self) -> dict[str, Any]:
        """The parameters without the common keys."""
        return {k: v for k, v in self.body.items() if k not in COMMON_KEYS}


@dataclass(frozen=True)
class BadStep:
    """Not a step: ``kind`` is set when it is a one-key mapping whose value is not a mapping."""

    raw: Any
    kind: str | None = None


def parse_step(raw: Any) -> Step | BadStep:
    if isinstance(raw, str):
        return Step(raw, {}, {}, keyed=False)
    if isinstance(raw, dict) and len(raw) == 1:
        (kind, body), = raw.items()
        if body is None:
            return Step(kind, {}, {}, keyed=True)
        if not isinstance(body, dict):
            return BadStep(raw, kind)
        return Step(kind, body, {k: body[k] for k in COMMON_KEYS if k in body}, keyed=True)
    return BadStep(raw)
