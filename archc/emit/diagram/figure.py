"""A figure's options (title, legend, palette, font, block insets, style) and the palettes.

The default palette is the families' own (:data:`archc.emit.diagram.style.FAMILY_STYLES`); ``print`` turns it into
grey levels of the same lightness (a grayscale printer shows the same figure); ``colorblind`` draws from the Okabe-Ito
palette (Okabe and Ito 2008, "Color Universal Design"), whose eight colours stay distinct under the common forms of
colour blindness.
"""

from __future__ import annotations

from dataclasses import dataclass

from archc.emit.diagram.style import (
    CLUSTER_BORDER,
    CLUSTER_FILLS,
    EDGE_COLOR,
    FAMILY_STYLES,
    MUTED_TEXT,
    SHORTCUT_COLOR,
    UNKNOWN_FAMILY,
)
from archc.errors import UsageError
from archc.ops.families import FamilyStyle

PALETTE_NAMES = ("default", "print", "colorblind")
STYLES = ("graph", "blocks")
"""``graph``: the layer graph laid out by Graphviz; ``blocks``: feature maps as 3-D boxes sized by their shape."""
MIN_FONT_SIZE = 4.0
MAX_FONT_SIZE = 48.0
DEFAULT_FONT = "Helvetica,Arial,sans-serif"
DEFAULT_FONT_SIZE = 10.0


@dataclass(frozen=True)
class Palette:
    name: str
    families: dict[str, FamilyStyle]
    unknown: FamilyStyle
    shortcut: str
    edge: str
    muted: str
    cluster_fills: tuple[str, ...]
    cluster_border: str

    def family(self, key: str) -> FamilyStyle:
        return self.families.get(key, self.unknown)


def _gray(colour: str) -> str:
    """The grey of the same relative luminance (ITU-R BT.709 weights on the sRGB values)."""
    r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    level = round(0.2126 * r + 0.7152 * g + 0.0722 * b)
    return f"#{level:02x}{level:02x}{level:02x}"


def _grayed(style: FamilyStyle) -> FamilyStyle:
    return FamilyStyle(_gray(style.fill), _gray(style.border), style.legend)


def _tint(colour: str, amount: float) -> str:
    """``colour`` mixed with white (``amount`` of white): a light fill under black text."""
    r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return "#" + "".join(f"{round(c + (255 - c) * amount):02x}" for c in (r, g, b))


OKABE_ITO = {
    "orange": "#e69f00", "sky_blue": "#56b4e9", "bluish_green": "#009e73", "yellow": "#f0e442",
    "blue": "#0072b2", "vermillion": "#d55e00", "reddish_purple": "#cc79a7", "black": "#000000",
}
_OKABE_ITO_FAMILIES = {
    "conv": "sky_blue", "pool": "vermillion", "norm": "reddish_purple", "act": "orange", "linear": "blue",
    "merge": "bluish_green", "head": "yellow", "attention": "blue", "math": "yellow",
}
"""Family -> Okabe-Ito colour; the remaining families (plumbing, regularisation) are greys."""


def _okabe_ito(key: str, style: FamilyStyle) -> FamilyStyle:
    name = _OKABE_ITO_FAMILIES.get(key)
    if name is None:
        return FamilyStyle("#ffffff" if key == "input" else "#e8e8e8", "#000000" if key == "input" else "#666666",
                           style.legend)
    colour = OKABE_ITO[name]
    return FamilyStyle(_tint(colour, 0.55), colour, style.legend)


PALETTES: dict[str, Palette] = {
    "default": Palette("default", dict(FAMILY_STYLES), UNKNOWN_FAMILY, SHORTCUT_COLOR, EDGE_COLOR, MUTED_TEXT,
                       CLUSTER_FILLS, CLUSTER_BORDER),
    "print": Palette("print", {k: _grayed(s) for k, s in FAMILY_STYLES.items()}, _grayed(UNKNOWN_FAMILY),
                     "#000000", "#333333", "#444444", tuple(_gray(c) for c in CLUSTER_FILLS), _gray(CLUSTER_BORDER)),
    "colorblind": Palette("colorblind", {k: _okabe_ito(k, s) for k, s in FAMILY_STYLES.items()},
                          FamilyStyle("#ffffff", "#999999", "other"), OKABE_ITO["vermillion"], "#444444",
                          MUTED_TEXT, CLUSTER_FILLS, CLUSTER_BORDER),
}


@dataclass(frozen=True)
class FigureOptions:
    """What a drawing shows besides the layers, and how it looks."""

    title: bool = True
    legend: bool = True
    palette: str = "default"
    font: str = DEFAULT_FONT
    """Graphviz font name(s), comma-separated fallbacks."""
    font_size: float = DEFAULT_FONT_SIZE
    """Points, of a layer's name; the other text scales with it."""
    insets: bool = True
    """Draw each folded block's body once, beside the main path."""
    style: str = "graph"

    def __post_init__(self) -> None:
        if self.palette not in PALETTES:
            raise UsageError(f"unknown palette {self.palette!r}; choose one of {', '.join(PALETTE_NAMES)}")
        if self.style not in STYLES:
            raise UsageError(f"unknown diagram style {self.style!r}; choose one of {', '.join(STYLES)}")
        if not MIN_FONT_SIZE <= self.font_size <= MAX_FONT_SIZE:
            raise UsageError(f"font size must be between {MIN_FONT_SIZE:g} and {MAX_FONT_SIZE:g} points; "
                             f"got {self.font_size:g}")
        if not self.font.strip() or any(ch in self.font for ch in '"\\\n<>'):
            raise UsageError(f"font name must be a plain name such as Helvetica or 'DejaVu Sans'; got {self.font!r}")

    @property
    def colours(self) -> Palette:
        return PALETTES[self.palette]

    def size(self, relative: float) -> str:
        """A text size relative to the layer-name size (the default drawing's 10 pt), as Graphviz writes it."""
        return f"{self.font_size * relative / DEFAULT_FONT_SIZE:g}"


DEFAULT_OPTIONS = FigureOptions()
