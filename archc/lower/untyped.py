"""Expressions of a step whose input an earlier error left untyped.

Such a step cannot know `in_channels` or `in_shape`; an expression reading them must not add a second error
(`unknown name 'in_channels'`) to the one that caused it, so the lookup fails quietly and the step is skipped.
"""

from __future__ import annotations

from collections import ChainMap
from collections.abc import Collection, Mapping
from typing import Any

from archc.errors import Problem

SHAPE_NAMES = ("in_channels", "in_shape")
"""Names bound to a step's input shape in its expressions."""


class UntypedInput(Problem):
    """An expression read the shape of an input that an earlier error left untyped: that error is the cause."""

    def __init__(self) -> None:
        super().__init__("E403", "the input's shape is unknown after an earlier error")


class AfterError(ChainMap):
    """The expression scope of a step whose input an earlier error left untyped: reading `in_channels` or
    `in_shape` fails quietly instead of reporting an unknown name (the earlier error is reported once)."""

    def __init__(self, *maps: Mapping[str, Any], unknown: Collection[str] = SHAPE_NAMES) -> None:
        super().__init__(*maps)
        self.unknown = unknown
        """The names that failed (a live collection: a block's defaults add the ones that fail as they go)."""

    def __contains__(self, key: object) -> bool:
        return key in self.unknown or super().__contains__(key)

    def __getitem__(self, key: str) -> Any:
        if key in self.unknown:
            raise UntypedInput()
        return super().__getitem__(key)
