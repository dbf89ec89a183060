"""Torch's own accounting of a generated module's memory, which the static planner (archc/memory/) is checked against.

- saved for backward: every tensor autograd keeps for the backward pass goes through the pack hook of
  ``torch.autograd.graph.saved_tensors_hooks``; counted once per storage (by the storage's ``data_ptr``, at the
  storage's full size: a view keeps its whole base alive), parameters and buffers left out (they are not activations).
- inference peak: a ``TorchDispatchMode`` sees every tensor every aten op returns; each new storage is counted live
  from then until its Python storage object is collected (a weak-reference finaliser), parameters, buffers and the
  model's inputs left out; the peak of that running sum over a ``torch.no_grad()`` forward in eval mode.
- training peak: the same count over a training-mode forward and the backward of the outputs' sum (parameter
  gradients included, as they are allocated).
- weights, gradients and optimizer state: the bytes of ``p.grad`` and of every tensor in ``optimizer.state`` after
  one ``backward()`` and ``step()``.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from archc.ir.graph import Graph


def model_inputs(graph: Graph, batch: int, seed: int = 0) -> list[torch.Tensor]:
    """Random inputs of the spec's declared types at ``batch``."""
    generator = torch.Generator().manual_seed(seed)
    tensors = []
    for name in graph.inputs:
        t = graph.node(name).out_type
        assert t is not None
        shape = (batch, *t.shape)
        if not t.dtype.startswith("float"):
            tensors.append(torch.randint(0, 2, shape, generator=generator, dtype=getattr(torch, t.dtype)))
        else:
            tensors.append(torch.randn(shape, generator=generator))
    return tensors


def _state_pointers(module: nn.Module) -> set[int]:
    return {t.untyped_storage().data_ptr() for t in [*module.parameters(), *module.buffers()]}


def saved_activation_bytes(module: nn.Module, inputs: Sequence[torch.Tensor]) -> int:
    """Bytes of the distinct storages autograd saves for backward in one training-mode forward (no parameters or
    buffers)."""
    module.train()
    state = _state_pointers(module)
    storages: dict[int, int] = {}
    kept: list[torch.Tensor] = []  # saved tensors stay alive, so no address is reused while counting

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        pointer = storage.data_ptr()
        if pointer not in state and storage.nbytes():
            storages[pointer] = max(storages.get(pointer, 0), storage.nbytes())
        kept.append(t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = module(*inputs)
    del out
    kept.clear()
    return sum(storages.values())


class _LiveBytes(TorchDispatchMode):
    def __init__(self, excluded: set[int]) -> None:
        super().__init__()
        self.excluded = excluded
        self.live: dict[int, int] = {}
        self.now = 0
        self.peak = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor):
                self._track(t.untyped_storage())
        return out

    def _track(self, storage: torch.UntypedStorage) -> None:
        pointer = storage.data_ptr()
        if pointer in self.excluded or pointer in self.live or not storage.nbytes():
            return
        self.live[pointer] = storage.nbytes()
        self.now += storage.nbytes()
        self.peak = max(self.peak, self.now)
        weakref.finalize(storage, self._free, pointer)

    def _free(self, pointer: int) -> None:
        self.now -= self.live.pop(pointer, 0)


def inference_peak_bytes(module: nn.Module, inputs: Sequence[torch.Tensor]) -> int:
    """The peak of live activation bytes (outputs included, inputs, parameters and buffers excluded) in one
    eval-mode, no-grad forward."""
    module.eval()
    excluded = _state_pointers(module) | {t.untyped_storage().data_ptr() for t in inputs}
    mode = _LiveBytes(excluded)
    with torch.no_grad(), mode:
        out = module(*inputs)
    del out
    return mode.peak


def training_peak_bytes(module: nn.Module, inputs: Sequence[torch.Tensor]) -> int:
    """The peak of live tensor bytes (parameter gradients and activations; inputs, parameters and buffers
    excluded) over one training forward and backward of the outputs' sum, counted as for the inference peak."""
    module.train()
    mode = _LiveBytes(_state_pointers(module) | {t.untyped_storage().data_ptr() for t in inputs})
    with mode:
        out = module(*inputs)
        outs = out if isinstance(out, tuple) else (out,)
        sum(o.float().sum() for o in outs).backward()
    del out, outs
    return mode.peak


def training_state_bytes(module: nn.Module, inputs: Sequence[torch.Tensor], optimizer: str) -> dict[str, int]:
    """Parameter, gradient and optimizer-state bytes after one backward and one optimizer step."""
    module.train()
    params = list(module.parameters())
    if not params:
        return {"params": 0, "grads": 0, "optimizer": 0}
    opt: torch.optim.Optimizer
    if optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=0.01)
    elif optimizer == "momentum":
        opt = torch.optim.SGD(params, lr=0.01, momentum=0.9)
    elif optimizer == "adam":
        opt = torch.optim.Adam(params)
    else:
        opt = torch.optim.AdamW(params)
    out = module(*inputs)
    outs = out if isinstance(out, tuple) else (out,)
    sum(o.float().sum() for o in outs).backward()
    opt.step()
    state = 0
    for entry in opt.state.values():
        state += sum(v.nbytes for v in entry.values() if isinstance(v, torch.Tensor))
    return {"params": sum(p.nbytes for p in params), "grads": sum(p.grad.nbytes for p in params if p.grad is not None),
            "optimizer": state}
