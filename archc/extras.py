"""Optional dependencies: what the `emit` extra provides, and the error that says how to install it.

The core install (`pip install archc`) checks, summarises, draws and writes PyTorch source as text; building modules,
exporting ONNX and verifying it need torch, onnx and onnxruntime (`pip install 'archc[emit]'`). Without them, an
emitter refuses with :class:`MissingExtra` (exit 2, with the command that installs them) instead of an ImportError.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from archc.errors import UsageError

EMIT_MODULES = frozenset({"torch", "onnx", "onnxruntime", "numpy"})
"""Top-level modules that come with the emit extra (numpy with torch and onnx)."""
EMIT_INSTALL = "pip install 'archc[emit]'"


class MissingExtra(UsageError):
    """An optional dependency is not installed (exit code 2)."""


def missing_extra(exc: ModuleNotFoundError) -> MissingExtra | None:
    """``exc`` as a :class:`MissingExtra` when the missing module belongs to the emit extra, else None."""
    top = (exc.name or "").split(".")[0]
    if top not in EMIT_MODULES:
        return None
    return MissingExtra(f"this needs the emit extra (torch, onnx and onnxruntime), which is not installed (no module "
                        f"named {top!r}); install it with {EMIT_INSTALL}")


@contextlib.contextmanager
def emit_extra() -> Iterator[None]:
    """Wrap an emitter's imports: a missing torch, onnx, onnxruntime or numpy raises :class:`MissingExtra`."""
    try:
        yield
    except ModuleNotFoundError as exc:
        refusal = missing_extra(exc)
        if refusal is None:
            raise
        raise refusal from None
