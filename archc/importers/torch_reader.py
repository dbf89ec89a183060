"""`archc import torch package.module:callable`: a PyTorch model traced with torch.fx, module paths as layer ids.

The callable is found with importlib (`torchvision.models:resnet50`; no eval), called without arguments, and traced
symbolically. Each `call_module` node becomes a layer named by its module path, so the spec's state_dict keys are the
model's own; functions and methods (`torch.flatten`, `+`, `torch.cat`, `F.relu`) become parameter-free layers.
"""

from __future__ import annotations

import importlib
import operator
import os
import re
import sys
from typing import Any

import numpy as np

from archc.errors import UsageError
from archc.importers.flat import FlatGraph, FlatLayer, ImportFailure, source_error
from archc.importers.onnx_reader import Weights, path_id

_TARGET = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")


def load_callable(target: str) -> Any:
    if not _TARGET.match(target):
        raise UsageError(f"{target!r}: expected package.module:callable, e.g. torchvision.models:resnet50")
    module_name, attr = target.split(":")
    added = os.getcwd() not in sys.path
    if added:  # modules in the current directory are found, as `python -m` and uvicorn find them
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # the user's module may fail in any way while importing
        raise UsageError(f"cannot import {module_name}: {type(exc).__name__}: {exc}") from None
    finally:
        if added:
            sys.path.remove(os.getcwd())
    if not hasattr(module, attr):
        raise UsageError(f"{module_name} has no attribute {attr!r}")
    return getattr(module, attr)


def _pair(v: Any) -> Any:
    if isinstance(v, (tuple, list)):
        return v[0] if all(x == v[0] for x in v) else list(v)
    return v


def _module_layer(mod: Any) -> tuple[str, dict[str, Any]] | None:
    from torch import nn

    if isinstance(mod, nn.Conv2d) and isinstance(mod.padding, (tuple, int)):
        return "conv", {"out": mod.out_channels, "k": _pair(mod.kernel_size), "s": _pair(mod.stride),
                        "p": _pair(mod.padding), "d": _pair(mod.dilation), "groups": mod.groups,
                        "bias": mod.bias is not None}
    if isinstance(mod, nn.BatchNorm2d | nn.BatchNorm1d):
        return "bn", {"eps": mod.eps, "momentum": mod.momentum, "affine": mod.affine}
    if isinstance(mod, nn.Linear):
        return "linear", {"out": mod.out_features, "bias": mod.bias is not None}
    if isinstance(mod, nn.MaxPool2d) and mod.dilation in (1, (1, 1)):
        return "maxpool", {"k": _pair(mod.kernel_size), "s": _pair(mod.stride), "p": _pair(mod.padding),
                           "ceil_mode": mod.ceil_mode}
    if isinstance(mod, nn.AvgPool2d):
        return "avgpool", {"k": _pair(mod.kernel_size), "s": _pair(mod.stride), "p": _pair(mod.padding),
                           "ceil_mode": mod.ceil_mode, "count_include_pad": mod.count_include_pad}
    if isinstance(mod, nn.AdaptiveAvgPool2d):
        size = _pair(mod.output_size)
        return ("global_avgpool", {}) if size == 1 else ("adaptive_avgpool", {"size": size})
    if isinstance(mod, nn.Dropout):
        return "dropout", {"p": mod.p}
    if isinstance(mod, nn.Flatten) and mod.start_dim == 1 and mod.end_dim == -1:
        return "flatten", {}
    simple = {nn.ReLU: "relu", nn.ReLU6: "relu6", nn.Sigmoid: "sigmoid", nn.Tanh: "tanh", nn.Hardswish: "hardswish",
              nn.Hardsigmoid: "hardsigmoid", nn.SiLU: "silu", nn.Identity: "identity", nn.GELU: "gelu"}
    for cls, op in simple.items():
        if type(mod) is cls:
            return op, {}
    if isinstance(mod, nn.LocalResponseNorm):
        return "lrn", {"size": mod.size, "alpha": mod.alpha, "beta": mod.beta, "k": mod.k}
    return None


def _function_layer(target: Any, args: tuple, kwargs: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    import torch
    import torch.nn.functional as F

    if target in (operator.add, torch.add) or target == "add":
        return "add", {}
    if target in (operator.mul, torch.mul) or target == "mul":
        return "mul", {}
    if target in (torch.flatten,) or target == "flatten":
        start = args[1] if len(args) > 1 else kwargs.get("start_dim", 0)
        return ("flatten", {}) if start == 1 else None
    if target is torch.cat:
        dim = args[1] if len(args) > 1 else kwargs.get("dim", 0)
        return ("concat", {"axis": dim - 1 if dim > 0 else dim}) if dim != 0 else None
    if target in (F.relu, torch.relu) or target in ("relu", "relu_"):
        return "relu", {}
    if target in (torch.sigmoid,) or target == "sigmoid":
        return "sigmoid", {}
    return None


def read_torch(target: str, **options: Any) -> tuple[FlatGraph, Weights]:
    """The model ``target`` builds, as a flat layer list with its weights by layer id."""
    import torch
    import torch.fx

    factory = load_callable(target)
    try:
        model = factory()
    except Exception as exc:  # the user's constructor
        raise UsageError(f"{target}() failed: {type(exc).__name__}: {exc}") from None
    if not isinstance(model, torch.nn.Module):
        raise UsageError(f"{target}() returned {type(model).__name__}, not a torch.nn.Module")
    model.eval()
    try:
        traced = torch.fx.symbolic_trace(model)
    except Exception as exc:  # data-dependent control flow and the like
        raise ImportFailure([source_error("E601", f"torch.fx cannot trace {target}: {type(exc).__name__}: {exc}",
                                          target)]) from None
    modules = dict(traced.named_modules())
    size = options.get("input_size") or [3, 224, 224]
    inputs: dict[str, list[int]] = {}
    value_of: dict[str, str] = {}
    layers: list[FlatLayer] = []
    weights: Weights = {}
    taken: set[str] = set()
    problems = []
    outputs: list[str] = []
    for node in traced.graph.nodes:
        if node.op == "placeholder":
            inputs[node.name] = list(size)
            value_of[node.name] = node.name
            taken.add(node.name)
            continue
        if node.op == "output":
            result = node.args[0]
            for value in result if isinstance(result, (tuple, list)) else [result]:
                if value.name in value_of:  # else its producer was refused, already reported
                    outputs.append(value_of[value.name])
            continue
        data = [a.name for a in node.args if isinstance(a, torch.fx.Node)]
        if node.target is torch.cat:
            data = [a.name for a in node.args[0]]
        if node.op == "call_module":
            mod = modules[node.target]
            mapped = _module_layer(mod)
            what = f"module {node.target} ({type(mod).__name__})"
            name = node.target
        else:
            mapped = _function_layer(node.target, node.args, node.kwargs)
            what = f"{node.op} {getattr(node.target, '__name__', node.target)}"
            name = node.name
        if any(d not in value_of for d in data):
            continue  # it reads a refused node's value: that one is reported
        if mapped is None:
            problems.append(source_error("E601", f"{node.name}: {what} is not supported", target))
            continue
        op, params = mapped
        if op == "identity":
            value_of[node.name] = value_of[data[0]]
            continue
        lid = path_id(name, taken)
        layers.append(FlatLayer(lid, op, params, [value_of[d] for d in data], origin=node.name))
        value_of[node.name] = lid
        if node.op == "call_module":
            state = {k: v.detach().cpu().numpy() for k, v in modules[node.target].state_dict().items()}
            if state:
                weights[lid] = {k: np.asarray(v) for k, v in state.items()}
    if problems:
        raise ImportFailure(problems)
    name = re.sub(r"\W", "_", target.split(":")[1])
    doc = f"Imported from the PyTorch model {target} (traced with torch.fx)."
    return FlatGraph(name, doc, inputs, layers, outputs), weights
