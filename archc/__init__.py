"""archc: a declarative architecture-spec compiler for neural networks.

The core (loading, validation, lowering, shapes, costs) never imports torch or onnx; emitters import them lazily.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "compile_file", "compile_text"]


def __getattr__(name: str) -> object:
    # keep `import archc` cheap: the compiler loads pydantic and networkx
    if name in ("compile_file", "compile_text"):
        from archc import compiler

        return getattr(compiler, name)
    raise AttributeError(f"module 'archc' has no attribute {name!r}")
