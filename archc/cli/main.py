"""Console-script entry point: the core commands plus the emitting ones (which load torch/onnx only when run)."""

from __future__ import annotations

import sys

from archc.cli import emit_cmds  # noqa: F401  (registers export, draw and build)
from archc.cli.app import app
from archc.errors import EXIT_USAGE


def entry() -> None:
    try:
        app()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else EXIT_USAGE)
        sys.exit(code)
