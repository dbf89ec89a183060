"""One entry for every format: read the source, recover the spec, map the weights onto the spec's layer paths."""

from __future__ import annotations

import importlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from archc.errors import UsageError
from archc.importers.condense import ImportedSpec, condense
from archc.importers.flat import FlatGraph

FORMATS = ("onnx", "torch", "darknet", "caffe", "ultralytics")
TEXT_FORMATS = ("darknet", "caffe", "ultralytics")


@dataclass
class Imported:
    spec: ImportedSpec
    state: dict[str, np.ndarray] | None
    """The weights as a state_dict of the spec's module (None for formats that carry none)."""

    @property
    def text(self) -> str:
        return self.spec.text


def _read_text_format(fmt: str, source: str, options: dict[str, Any]) -> FlatGraph:
    try:
        module = importlib.import_module(f"archc.importers.{fmt}")
        reader = getattr(module, f"read_{fmt}")
    except (ImportError, AttributeError):
        raise UsageError(f"archc import {fmt}: this format's importer is not available in this build") from None
    return reader(Path(source), **options)


def import_model(fmt: str, source: str, **options: Any) -> Imported:
    """Import ``source`` (a file, or for ``torch`` a ``package.module:callable``) as a spec."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}: expected one of {', '.join(FORMATS)}")
    if fmt in TEXT_FORMATS:
        graph = _read_text_format(fmt, source, {k: v for k, v in options.items() if v is not None})
        # Ultralytics ids are real module paths (a checkpoint's state_dict names): their scopes name the blocks
        return Imported(condense(graph, source, keep_names=fmt == "ultralytics"), None)
    if fmt == "onnx":
        from archc.importers.onnx_reader import read_onnx

        graph, weights = read_onnx(Path(source))
    else:
        from archc.importers.torch_reader import read_torch

        graph, weights = read_torch(source)
    spec = condense(graph, source, keep_names=True)
    state = {f"{spec.paths[lid]}.{name}": value for lid, tensors in weights.items() for name, value in tensors.items()}
    return Imported(spec, state)


def state_dict_bytes(state: dict[str, np.ndarray]) -> bytes:
    """The weights as a `torch.save` file (what `archc export onnx --weights` and `load_state_dict` read)."""
    import torch

    buffer = io.BytesIO()
    torch.save({name: torch.from_numpy(np.array(value, copy=True)) for name, value in state.items()}, buffer)
    return buffer.getvalue()
