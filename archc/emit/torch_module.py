"""In-memory PyTorch modules, built from the same generated source that ``archc export`` writes.

The source is our own code generated from the typed IR (see :mod:`archc.emit.torch_source`), never user text: every
name that reaches it is an identifier checked by the spec schema, and free text only appears escaped in docstrings
and comments. It is compiled under a ``<archc:...>`` file name registered with :mod:`linecache`, so tracebacks and
``inspect.getsource(Model.forward)`` show the generated lines.

Modules built this way hold their weights normally (``state_dict`` / ``load_state_dict`` work) and pickle whole:
``torch.save(model)`` stores, with the weights, the generated source and the class name, and ``torch.load`` (with
``weights_only=False``, in any process where archc is installed) rebuilds the classes from that source. The classes
are not importable by name; :func:`write_torch_source` writes a file that is.
"""

from __future__ import annotations

import hashlib
import linecache
import os
from pathlib import Path
from typing import Any, SupportsIndex

from archc.compiler import Compiled, compile_file
from archc.emit.torch_source import default_class_name, torch_source
from archc.extras import emit_extra
from archc.io import write_atomic
from archc.passes.resources import check_resources

with emit_extra():
    from torch import nn


def build_module(spec: str | os.PathLike[str] | Compiled, /, **params: Any) -> nn.Module:
    """A freshly initialised ``nn.Module`` for a spec file or a compiled spec.

    ``params`` override the spec's params like ``--set`` (``build_module("resnet50.yaml", classes=10)``); they need a
    spec path, since a :class:`Compiled` has its params resolved already.
    """
    compiled = _compiled(spec, params)
    # the params are resolved already: a constructor following them would cost extra compiles for nothing
    return module_class(compiled, follow_params=False)()


def module_class(compiled: Compiled, class_name: str | None = None, *, trace: bool = False,
                 follow_params: bool = True) -> type[nn.Module]:
    """The generated ``nn.Module`` subclass for ``compiled`` (``trace``, ``follow_params``: see
    :func:`torch_source`); refuses (E502) a model whose weights do not fit ``max_build_bytes`` before any is
    allocated."""
    check_resources(compiled, export=False, verify=False)
    name = class_name or default_class_name(compiled.graph.name)
    source = torch_source(compiled, name, trace=trace, follow_params=follow_params)
    return load_source(source, name, compiled.graph.name)


def load_source(source: str, class_name: str, label: str) -> type[nn.Module]:
    """Compile generated source and return its class; ``label`` names the pseudo-file in tracebacks."""
    digest = hashlib.sha256(source.encode("utf-8")).hexdigest()[:12]
    filename = f"<archc:{label}:{digest}>"  # one name per distinct source, so tracebacks never show another variant
    code = compile(source, filename, "exec")
    # mtime None: linecache.checkcache keeps the entry (there is no file to compare against)
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    namespace: dict[str, Any] = {"__name__": f"archc_generated_{label}"}
    exec(code, namespace)  # generated from the IR, see the module docstring
    cls = namespace.get(class_name)
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise AssertionError(f"generated source does not define the nn.Module {class_name}")
    for value in namespace.values():  # the model's class and its block classes pickle by their source
        if isinstance(value, type) and issubclass(value, nn.Module) and value.__module__ == namespace["__name__"]:
            value._archc_source = (source, value.__name__, label)  # type: ignore[attr-defined]
            value.__reduce_ex__ = _reduce_generated  # type: ignore[method-assign,assignment]
    _loaded[(digest, label)] = namespace
    return cls


_loaded: dict[tuple[str, str], dict[str, Any]] = {}
"""(source digest, label) -> the namespace it was executed in: unpickling a model rebuilds its classes once."""


def _reduce_generated(module: nn.Module, protocol: SupportsIndex) -> tuple[Any, ...]:
    """Pickle a generated module as (rebuild its class from the source, then its ``__dict__``): the class is not
    importable by name, its source travels with the weights."""
    return _restore, type(module)._archc_source, module.__dict__.copy()  # type: ignore[attr-defined]


def _restore(source: str, class_name: str, label: str) -> nn.Module:
    digest = hashlib.sha256(source.encode("utf-8")).hexdigest()[:12]
    namespace = _loaded.get((digest, label))
    cls = namespace[class_name] if namespace is not None else None
    if cls is None:
        load_source(source, class_name, label)
        cls = _loaded[(digest, label)][class_name]
    return cls.__new__(cls)


def write_torch_source(compiled: Compiled, path: str | os.PathLike[str], force: bool = False) -> Path:
    """Write the standalone source atomically; refuses to replace an existing file unless ``force``."""
    return write_atomic(path, torch_source(compiled).encode("utf-8"), force=force)


def _compiled(spec: str | os.PathLike[str] | Compiled, params: dict[str, Any]) -> Compiled:
    if isinstance(spec, Compiled):
        if params:
            raise TypeError("param overrides need a spec path; compile the spec with the overrides instead")
        return spec
    return compile_file(spec, {key: _override_text(key, value) for key, value in params.items()})


def _override_text(key: str, value: Any) -> str:
    """A value as ``--set`` text, which the compiler reads back with YAML 1.2 core rules."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return repr(value) if isinstance(value, float) else str(value)
    raise TypeError(f"param {key}: overrides are numbers, booleans or strings; found {type(value).__name__}")
