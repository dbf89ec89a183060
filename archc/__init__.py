"""archc: a declarative architecture-spec compiler for neural networks.

The core (loading, validation, lowering, shapes, costs) never imports torch or onnx; emitters import them lazily.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "build", "build_module", "compile_file", "compile_text", "torch_source"]


def __getattr__(name: str) -> object:
    # keep `import archc` cheap: the compiler loads pydantic and networkx
    if name in ("compile_file", "compile_text"):
        from archc import compiler

        return getattr(compiler, name)
    if name == "torch_source":  # text only; imports torch just to check layer names against nn.Module
        from archc.emit.torch_source import torch_source

        return torch_source
    if name == "build":  # the build and export orchestration (archc.build.build_artifacts, write_build, write_onnx)
        import importlib

        return importlib.import_module("archc.build")
    if name == "build_module":  # imports torch
        from archc.emit.torch_module import build_module

        return build_module
    raise AttributeError(f"module 'archc' has no attribute {name!r}")
