"""Console-script entry point: the core commands plus the emitting ones (which load torch/onnx only when run)."""

from __future__ import annotations

import contextlib
import os
import sys

from archc.cli import (
    emit_cmds,  # noqa: F401  (registers export, draw and build)
    import_cmd,  # noqa: F401  (registers import)
    mem_cmd,  # noqa: F401  (registers mem)
    report_cmds,  # noqa: F401  (registers summary and table)
    where_cmd,  # noqa: F401  (registers where)
)
from archc.cli.app import app
from archc.errors import EXIT_USAGE


def main() -> int:
    """Run the command line in ``sys.argv``; returns the exit code (for tests and embedding)."""
    try:
        app()
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else EXIT_USAGE)
    return 0


def entry() -> None:
    """The `archc` command: run, flush, and exit without tearing the interpreter down.

    Every output is written (atomically) before the command returns; freeing a large spec's objects one by one at
    exit only costs time (1.7 s of a 100k-layer `archc check`), and the operating system reclaims the memory at once.
    """
    code = main()
    for stream in (sys.stdout, sys.stderr):
        # a closed pipe (`archc ... | head`) or stream: nothing more can be shown
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)
