"""How archc's commands render `--help`: docstrings reflowed to the terminal, no value type shown for flags.

Typer's Rich help keeps a docstring's line breaks after the first paragraph, so text wrapped at 120 columns in the
source wraps again mid-sentence on an 80-column terminal; and it shows `<bool>` beside every flag, which takes no
value. The classes here fix both for every command and group; :class:`HelpTyper` makes them the default.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterable
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup, TyperOption

_LINE_BREAK_IN_PARAGRAPH = re.compile(r"[ \t]*\n[ \t]*")


def reflow(text: str | None) -> str | None:
    """Paragraphs (separated by blank lines) each on one line, for Rich to wrap at the terminal's width."""
    if text is None:
        return None
    paragraphs = re.split(r"\n[ \t]*\n", inspect.cleandoc(text))
    return "\n\n".join(_LINE_BREAK_IN_PARAGRAPH.sub(" ", paragraph.strip()) for paragraph in paragraphs)


def _hide_flag_types(params: Iterable[Any]) -> None:
    for param in params:
        # an empty metavar is what Typer shows in the type column; a flag takes no value to describe
        if isinstance(param, TyperOption) and param.is_flag and param.metavar is None:
            param.metavar = ""


class HelpCommand(TyperCommand):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.help = reflow(self.help)

    def format_help(self, ctx: Any, formatter: Any) -> None:
        _hide_flag_types(self.get_params(ctx))
        super().format_help(ctx, formatter)


class HelpGroup(TyperGroup):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.help = reflow(self.help)

    def format_help(self, ctx: Any, formatter: Any) -> None:
        _hide_flag_types(self.get_params(ctx))  # with the completion options, added after construction
        super().format_help(ctx, formatter)


class HelpTyper(typer.Typer):
    """A Typer app whose groups and commands render help with :class:`HelpGroup` and :class:`HelpCommand`."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cls=HelpGroup, **kwargs)

    def command(self, name: str | None = None, *, cls: type[TyperCommand] | None = None,
                **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        return super().command(name, cls=cls or HelpCommand, **kwargs)
