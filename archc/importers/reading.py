"""Reading an imported source file as text, and naming the spec after it."""

from __future__ import annotations

import re
from pathlib import Path

from archc.importers.flat import ImportFailure, source_error
from archc.limits import DEFAULT_LIMITS, Limits
from archc.yaml_loader import read_spec


def read_source_text(path: Path, limits: Limits = DEFAULT_LIMITS) -> str:
    """The file's text: a regular file (or ``-``), at most ``max_file_bytes``, UTF-8 (a byte that is not is refused
    at its line, E602); a missing or unreadable file is a usage error (exit 2)."""
    data, shown = read_spec(path, limits)
    if len(data) > limits.max_file_bytes:
        raise ImportFailure([source_error("E602", f"the file is larger than {limits.max_file_bytes:,} bytes (limit "
                                                  "max_file_bytes)", shown)])
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ImportFailure([source_error("E602", f"the file is not UTF-8 text (byte 0x{data[exc.start]:02x})",
                                          shown, line, col)]) from None


def spec_name(stem: str) -> str:
    """A model name (letters, digits, `_`, not starting with a digit) from a file name: `yolov3-tiny` ->
    `yolov3_tiny`, `ResNet-50-deploy` -> `ResNet_50_deploy`."""
    name = re.sub(r"[^A-Za-z0-9_]+", "_", stem).strip("_") or "imported"
    return f"model_{name}" if name[0].isdigit() else name
