"""The library of built-in blocks, shipped as YAML in the package (archc/blocks/*.yaml): callable from any spec by
name, replaced by a spec's own block of the same name. Their diagnostics point at the library file's lines."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from archc.spec.model import BlockSpec, SpecHeader
from archc.yaml_loader import LoadedDoc, load_yaml_file

LIBRARY_DIR = Path(__file__).resolve().parent.parent / "blocks"


@functools.cache
def library() -> dict[str, tuple[BlockSpec, LoadedDoc]]:
    """Block name -> its definition and the file it is written in (loaded once; the files are part of archc, so
    a mistake in one is a bug, raised as such)."""
    blocks: dict[str, tuple[BlockSpec, LoadedDoc]] = {}
    for path in sorted(LIBRARY_DIR.glob("*.yaml")):
        doc = load_yaml_file(path)
        for name, raw in doc.data["blocks"].items():
            if name in blocks:
                raise RuntimeError(f"the block library defines '{name}' twice ({path.name})")
            blocks[name] = (BlockSpec.model_validate(raw), doc)
    return blocks


def library_names() -> list[str]:
    return sorted(library())


def with_library(header: SpecHeader) -> tuple[SpecHeader, dict[str, Any]]:
    """``header`` with the library's blocks its own do not replace, and the document each of those comes from."""
    extra = {name: entry for name, entry in library().items() if name not in header.blocks}
    if not extra:
        return header, {}
    blocks = {**{name: spec for name, (spec, _) in extra.items()}, **header.blocks}
    return header.model_copy(update={"blocks": blocks}), {name: doc for name, (_, doc) in extra.items()}
