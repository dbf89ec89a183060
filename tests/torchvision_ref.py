"""Import ``torchvision.models`` on the CPU torch build, for use as a reference in tests.

torchvision 0.28's compiled extension does not load against this torch build, so ``import torchvision`` dies while
``torchvision._meta_registrations`` registers fake kernels for C++ ops that were never registered
(``RuntimeError: operator torchvision::nms does not exist``). The model definitions are pure Python, so the import
is made to tolerate exactly that failure: ``torch.library.register_fake`` is wrapped for the duration of the import
and skips operators that do not exist. Nothing else is patched, and the original function is restored afterwards.
"""

from __future__ import annotations

import functools
import importlib
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

import torch
import torch.library
from torch import nn


def _missing_operator(exc: RuntimeError) -> bool:
    return "does not exist" in str(exc)


@contextmanager
def _tolerant_register_fake() -> Iterator[None]:
    original = torch.library.register_fake

    @functools.wraps(original)
    def register_fake(op: Any, func: Callable | None = None, /, *args: Any, **kwargs: Any) -> Any:
        def apply(fn: Callable) -> Callable:
            try:
                return original(op, fn, *args, **kwargs)
            except RuntimeError as exc:
                if not _missing_operator(exc):
                    raise
                return fn  # the C++ op is absent on this build; its fake kernel is never needed by the models

        return apply if func is None else apply(func)

    torch.library.register_fake = register_fake
    try:
        yield
    finally:
        torch.library.register_fake = original


@functools.cache
def models() -> ModuleType:
    """``torchvision.models``, imported once."""
    if "torchvision.models" in sys.modules:
        return sys.modules["torchvision.models"]
    # a failed earlier import leaves half-initialised modules behind; start clean
    for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
        del sys.modules[name]
    with _tolerant_register_fake():
        return importlib.import_module("torchvision.models")


def torchvision_model(name: str, **kw: Any) -> nn.Module:
    """A torchvision classification model, by default with random weights: ``torchvision_model("resnet50")``."""
    kw.setdefault("weights", None)
    return models().get_model(name, **kw)
