"""ONNX nodes as archc layers: one translation per supported op type, each returning the archc op, its fields as a
spec writes them, the weights it holds (named as the PyTorch module's state_dict names them) and its data inputs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from archc.importers.onnx_const import attrs


class Unsupported(Exception):
    """The node cannot be imported (E601): the message says what about it."""


@dataclass
class Translated:
    op: str
    params: dict[str, Any] = field(default_factory=dict)
    weights: dict[str, np.ndarray] = field(default_factory=dict)
    inputs: list[str] = field(default_factory=list)
    """Data inputs (value names): the activations the layer reads."""
    alias: bool = False
    """The node passes its input through (Identity, inference Dropout): no layer, consumers read the input."""
    then: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    """Parameter-free layers that follow in a chain (a slice of two axes is two `slice` layers)."""


Consts = dict[str, np.ndarray]


def _f32(value: Any) -> float:
    """A float32 attribute as the short decimal it was written as (0.1, not 0.100000001)."""
    return float(str(np.float32(value)))


def _square(values: list[int]) -> int | list[int]:
    """A per-axis list written as one number when all axes agree, as specs write square kernels."""
    return values[0] if values and all(v == values[0] for v in values) else list(values)


def _padding(node: Any, rank: int) -> int | list[int]:
    a = attrs(node)
    auto_pad = a.get("auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
    if auto_pad not in ("NOTSET", "VALID"):
        raise Unsupported(f"auto_pad {auto_pad!r} (only explicit pads are imported)")
    pads = list(a.get("pads", [0] * 2 * rank))
    begin, end = pads[:rank], pads[rank:]
    if begin != end:
        raise Unsupported(f"asymmetric padding {pads} (begin {begin}, end {end})")
    return _square(begin)


def _data(node: Any, consts: Consts, count: int = 1) -> list[str]:
    inputs = [name for name in node.input[:count] if name]
    for name in inputs:
        if name in consts:
            raise Unsupported(f"input {name!r} is a constant where an activation was expected")
    return inputs


def _const(node: Any, consts: Consts, index: int, what: str) -> np.ndarray:
    if index >= len(node.input) or not node.input[index]:
        raise Unsupported(f"no {what} input")
    if node.input[index] not in consts:
        raise Unsupported(f"its {what} {node.input[index]!r} is computed at run time (only constant {what}s import)")
    return consts[node.input[index]]


def _optional(node: Any, consts: Consts, index: int, what: str) -> np.ndarray | None:
    if index >= len(node.input) or not node.input[index]:
        return None
    return _const(node, consts, index, what)


def _real_bias(bias: np.ndarray | None, named: bool) -> bool:
    """A bias the exporter built from zeros (torch.export's `Expand` of 0 for bias=False) is no bias."""
    return bias is not None and (named or bool(np.any(bias != 0)))


def conv(node: Any, consts: Consts, named: set[str]) -> Translated:
    a = attrs(node)
    w = _const(node, consts, 1, "weight")
    bias = _optional(node, consts, 2, "bias")
    rank = w.ndim - 2
    groups = int(a.get("group", 1))
    params: dict[str, Any] = {"out": int(w.shape[0]), "k": _square([int(v) for v in w.shape[2:]])}
    params["s"] = _square(list(a.get("strides", [1] * rank)))
    params["p"] = _padding(node, rank)
    params["d"] = _square(list(a.get("dilations", [1] * rank)))
    params["groups"] = groups
    has_bias = _real_bias(bias, len(node.input) > 2 and node.input[2] in named)
    params["bias"] = has_bias
    weights = {"weight": w}
    if has_bias and bias is not None:
        weights["bias"] = bias
    return Translated("conv", params, weights, _data(node, consts))


def conv_transpose(node: Any, consts: Consts, named: set[str]) -> Translated:
    a = attrs(node)
    w = _const(node, consts, 1, "weight")
    bias = _optional(node, consts, 2, "bias")
    rank = w.ndim - 2
    groups = int(a.get("group", 1))
    if a.get("output_shape"):
        raise Unsupported("output_shape (write output_padding instead)")
    params: dict[str, Any] = {"out": int(w.shape[1]) * groups, "k": _square([int(v) for v in w.shape[2:]]),
                              "s": _square(list(a.get("strides", [1] * rank))), "p": _padding(node, rank),
                              "output_padding": _square(list(a.get("output_padding", [0] * rank))),
                              "d": _square(list(a.get("dilations", [1] * rank))), "groups": groups}
    has_bias = _real_bias(bias, len(node.input) > 2 and node.input[2] in named)
    params["bias"] = has_bias
    weights = {"weight": w} | ({"bias": bias} if has_bias and bias is not None else {})
    return Translated("conv_transpose", params, weights, _data(node, consts))


def batch_norm(node: Any, consts: Consts, named: set[str]) -> Translated:
    a = attrs(node)
    if a.get("training_mode", 0):
        raise Unsupported("training_mode 1 (export the model in eval mode)")
    scale, shift, mean, var = (_const(node, consts, i, what) for i, what in
                               enumerate(("scale", "bias", "mean", "variance"), start=1))
    params = {"eps": _f32(a.get("epsilon", 1e-5)), "momentum": round(1.0 - _f32(a.get("momentum", 0.9)), 6)}
    weights = {"weight": scale, "bias": shift, "running_mean": mean, "running_var": var,
               "num_batches_tracked": np.array(0, dtype=np.int64)}
    return Translated("bn", params, weights, _data(node, consts))


def _pool(op: str) -> Callable[[Any, Consts, set[str]], Translated]:
    def translate(node: Any, consts: Consts, named: set[str]) -> Translated:
        a = attrs(node)
        kernel = list(a["kernel_shape"])
        rank = len(kernel)
        if any(d != 1 for d in a.get("dilations", [1] * rank)):
            raise Unsupported("dilated pooling")
        if len(node.output) > 1 and node.output[1]:
            raise Unsupported("pooling indices as an output")
        params: dict[str, Any] = {"k": _square(kernel), "s": _square(list(a.get("strides", [1] * rank))),
                                  "p": _padding(node, rank), "ceil_mode": bool(a.get("ceil_mode", 0))}
        if op == "avgpool":
            params["count_include_pad"] = bool(a.get("count_include_pad", 0))
        return Translated(op, params, {}, _data(node, consts))

    return translate


def gemm(node: Any, consts: Consts, named: set[str]) -> Translated:
    a = attrs(node)
    if a.get("transA", 0) or float(a.get("alpha", 1.0)) != 1.0 or float(a.get("beta", 1.0)) != 1.0:
        raise Unsupported("transA, alpha or beta other than 0, 1, 1")
    w = _const(node, consts, 1, "weight")
    w = w if a.get("transB", 0) else w.T
    bias = _optional(node, consts, 2, "bias")
    has_bias = _real_bias(bias, len(node.input) > 2 and node.input[2] in named)
    if has_bias and bias is not None and bias.shape != (w.shape[0],):
        bias = np.broadcast_to(bias, (w.shape[0],)).copy()
    weights = {"weight": np.ascontiguousarray(w)} | ({"bias": bias} if has_bias and bias is not None else {})
    return Translated("linear", {"out": int(w.shape[0]), "bias": has_bias}, weights, _data(node, consts))


def matmul(node: Any, consts: Consts, named: set[str]) -> Translated:
    if node.input[1] in consts:
        w = consts[node.input[1]]
        if w.ndim != 2:
            raise Unsupported(f"a constant right operand of rank {w.ndim} (a linear layer's is 2)")
        return Translated("linear", {"out": int(w.shape[1]), "bias": False},
                          {"weight": np.ascontiguousarray(w.T)}, _data(node, consts))
    return Translated("matmul", {}, {}, _data(node, consts, 2))


def _binary(op: str, scalar_op: str | None) -> Callable[[Any, Consts, set[str]], Translated]:
    def translate(node: Any, consts: Consts, named: set[str]) -> Translated:
        const = [name for name in node.input if name in consts]
        if not const:
            return Translated(op, {}, {}, list(node.input))
        value = consts[const[0]]
        if scalar_op is None or value.size != 1 or len(const) != 1:
            raise Unsupported(f"a constant operand of shape {list(value.shape)} (only a single number is imported)")
        if op == "sub" and node.input[0] in consts:
            raise Unsupported("a constant minus an activation")
        number = float(value.reshape(()))
        data = [name for name in node.input if name not in consts]
        if op == "sub":
            return Translated("add_scalar", {"value": -number}, {}, data)
        return Translated(scalar_op, {"value": number}, {}, data)

    return translate


def clip(node: Any, consts: Consts, named: set[str]) -> Translated:
    a = attrs(node)
    low = _optional(node, consts, 1, "minimum")
    high = _optional(node, consts, 2, "maximum")
    bounds = (float(low.reshape(-1)[0]) if low is not None else a.get("min"),
              float(high.reshape(-1)[0]) if high is not None else a.get("max"))
    if bounds == (0.0, 6.0):
        return Translated("relu6", {}, {}, _data(node, consts))
    if bounds[0] == 0.0 and bounds[1] is None:
        return Translated("relu", {}, {}, _data(node, consts))
    raise Unsupported(f"bounds {bounds} (only relu6's 0..6 and relu's 0.. are imported)")


def flatten(node: Any, consts: Consts, named: set[str]) -> Translated:
    if attrs(node).get("axis", 1) != 1:
        raise Unsupported(f"axis {attrs(node)['axis']} (archc flattens all but the batch axis)")
    return Translated("flatten", {}, {}, _data(node, consts))


SHAPE_KEY = "#shape:"
"""Consts entries under this prefix hold an activation's inferred shape (only computed where a Reshape needs it)."""


def reshape(node: Any, consts: Consts, named: set[str]) -> Translated:
    shape = [int(v) for v in _const(node, consts, 1, "shape")]
    if 0 in shape[1:] and not attrs(node).get("allowzero", 0):  # 0 copies the input's size at that axis
        known = consts.get(SHAPE_KEY + node.input[0])
        if known is None:
            raise Unsupported(f"target shape {shape} copies sizes of an input whose shape is unknown")
        shape = [int(known[i]) if v == 0 and i else v for i, v in enumerate(shape)]
    if len(shape) == 2 and shape[0] in (0, 1, -1):
        return Translated("flatten", {}, {}, _data(node, consts))
    if not shape or shape[0] not in (0, 1, -1):
        raise Unsupported(f"target shape {shape} changes the batch axis")
    return Translated("reshape", {"shape": shape[1:]}, {}, _data(node, consts))


def concat(node: Any, consts: Consts, named: set[str]) -> Translated:
    axis = int(attrs(node)["axis"])
    if axis == 0:
        raise Unsupported("concatenation along the batch axis")
    return Translated("concat", {"axis": axis - 1 if axis > 0 else axis}, {}, _data(node, consts, len(node.input)))


def lrn(node: Any, consts: Consts, named: set[str]) -> Translated:
    a = attrs(node)
    return Translated("lrn", {"size": int(a["size"]), "alpha": _f32(a.get("alpha", 1e-4)),
                              "beta": _f32(a.get("beta", 0.75)), "k": _f32(a.get("bias", 1.0))},
                      {}, _data(node, consts))


def _reduce(op: str) -> Callable[[Any, Consts, set[str]], Translated]:
    def translate(node: Any, consts: Consts, named: set[str]) -> Translated:
        a = attrs(node)
        axes_value = _optional(node, consts, 1, "axes")
        axes = [int(v) for v in (axes_value if axes_value is not None else a.get("axes", []))]
        if not axes or any(v == 0 for v in axes):
            raise Unsupported("a reduction over the batch axis")
        keep = bool(a.get("keepdims", 1))
        if op == "mean" and sorted(axes) in ([2, 3], [-2, -1]) and keep:
            return Translated("global_avgpool", {}, {}, _data(node, consts))
        return Translated(op, {"axes": [v - 1 if v > 0 else v for v in axes], "keepdims": keep}, {},
                          _data(node, consts))

    return translate


def softmax(op: str) -> Callable[[Any, Consts, set[str]], Translated]:
    def translate(node: Any, consts: Consts, named: set[str]) -> Translated:
        axis = int(attrs(node).get("axis", -1))
        if axis == 0:
            raise Unsupported("a softmax over the batch axis")
        return Translated(op, {"axis": axis - 1 if axis > 0 else axis}, {}, _data(node, consts))

    return translate


def dropout(node: Any, consts: Consts, named: set[str]) -> Translated:
    ratio = _optional(node, consts, 1, "ratio")
    p = float(ratio) if ratio is not None else float(attrs(node).get("ratio", 0.5))
    return Translated("dropout", {"p": round(p, 6)}, {}, _data(node, consts))


def leaky_relu(node: Any, consts: Consts, named: set[str]) -> Translated:
    return Translated("leaky_relu", {"slope": _f32(attrs(node).get("alpha", 0.01))}, {},
                      _data(node, consts))


def hard_sigmoid(node: Any, consts: Consts, named: set[str]) -> Translated:
    a = attrs(node)
    if abs(float(a.get("alpha", 0.2)) - 1 / 6) > 1e-6 or abs(float(a.get("beta", 0.5)) - 0.5) > 1e-6:
        raise Unsupported("alpha/beta other than 1/6 and 1/2 (PyTorch's hardsigmoid)")
    return Translated("hardsigmoid", {}, {}, _data(node, consts))


def gelu(node: Any, consts: Consts, named: set[str]) -> Translated:
    approximate = attrs(node).get("approximate", b"none")
    approximate = approximate.decode() if isinstance(approximate, bytes) else approximate
    return Translated("gelu", {"approximate": approximate}, {}, _data(node, consts))


_HUGE = 2 ** 62


def _axis(a: int, what: str) -> int:
    if a == 0:
        raise Unsupported(f"{what} the batch axis")
    return a - 1 if a > 0 else a


def slice_(node: Any, consts: Consts, named: set[str]) -> Translated:
    starts = [int(v) for v in _const(node, consts, 1, "starts")]
    ends = [int(v) for v in _const(node, consts, 2, "ends")]
    axes_value = _optional(node, consts, 3, "axes")
    steps_value = _optional(node, consts, 4, "steps")
    axes = [int(v) for v in axes_value] if axes_value is not None else list(range(len(starts)))
    steps = [int(v) for v in steps_value] if steps_value is not None else [1] * len(starts)
    layers = []
    for axis, start, end, step in zip(axes, starts, ends, steps):
        if (start, step) == (0, 1) and end >= _HUGE:
            continue  # the whole axis
        if step < 1:
            raise Unsupported(f"step {step} (only forward slices are imported)")
        params: dict[str, Any] = {"axis": _axis(axis, "a slice along"), "start": start, "step": step}
        if end < _HUGE:
            params["end"] = end
        layers.append(("slice", params))
    if not layers:
        return Translated("identity", {}, {}, _data(node, consts), alias=True)
    return Translated(layers[0][0], layers[0][1], {}, _data(node, consts), then=layers[1:])


def pad(node: Any, consts: Consts, named: set[str]) -> Translated:
    a = attrs(node)
    mode = a.get("mode", b"constant")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    if mode != "constant":
        raise Unsupported(f"mode {mode!r} (only zero padding is imported)")
    pads = [int(v) for v in (_const(node, consts, 1, "pads") if len(node.input) > 1 else a.get("pads", []))]
    value = _optional(node, consts, 2, "constant value")
    if value is not None and value.size and float(value.reshape(-1)[0]) != 0.0:
        raise Unsupported(f"constant value {float(value.reshape(-1)[0])} (only zeros are imported)")
    axes_value = _optional(node, consts, 3, "axes")
    rank = len(pads) // 2
    axes = [int(v) for v in axes_value] if axes_value is not None else list(range(rank))
    p: list[int] = []
    padded: list[int] = []
    for n, axis in enumerate(axes):
        before, after = pads[n], pads[n + rank]
        if before < 0 or after < 0:
            raise Unsupported(f"negative padding {pads} (a crop)")
        if before or after:
            padded.append(_axis(axis, "padding"))
            p += [before, after]
    if not padded:
        return Translated("identity", {}, {}, _data(node, consts), alias=True)
    return Translated("zeropad", {"p": p, "axes": padded}, {}, _data(node, consts))


def _node_axes(node: Any, consts: Consts) -> list[int]:
    value = _optional(node, consts, 1, "axes")
    return [int(v) for v in (value if value is not None else attrs(node).get("axes", []))]


def unsqueeze(node: Any, consts: Consts, named: set[str]) -> Translated:
    axes = _node_axes(node, consts)
    return Translated("unsqueeze", {"axes": [_axis(v, "inserting") for v in axes]}, {}, _data(node, consts))


def squeeze(node: Any, consts: Consts, named: set[str]) -> Translated:
    axes = _node_axes(node, consts)
    if not axes:
        raise Unsupported("no axes (it could remove the batch axis)")
    return Translated("squeeze", {"axes": [_axis(v, "removing") for v in axes]}, {}, _data(node, consts))


def transpose(node: Any, consts: Consts, named: set[str]) -> Translated:
    perm = [int(v) for v in attrs(node).get("perm", [])]
    if not perm or perm[0] != 0:
        raise Unsupported(f"perm {perm or 'reversed'} moves the batch axis")
    return Translated("permute", {"axes": [v - 1 for v in perm[1:]]}, {}, _data(node, consts))


def _plain(op: str) -> Callable[[Any, Consts, set[str]], Translated]:
    return lambda node, consts, named: Translated(op, {}, {}, _data(node, consts))


def _alias(node: Any, consts: Consts, named: set[str]) -> Translated:
    return Translated("identity", {}, {}, _data(node, consts), alias=True)


TRANSLATIONS: dict[str, Callable[[Any, Consts, set[str]], Translated]] = {
    "Conv": conv, "ConvTranspose": conv_transpose, "BatchNormalization": batch_norm,
    "MaxPool": _pool("maxpool"), "AveragePool": _pool("avgpool"),
    "GlobalAveragePool": _plain("global_avgpool"), "GlobalMaxPool": _plain("global_maxpool"),
    "Gemm": gemm, "MatMul": matmul,
    "Add": _binary("add", "add_scalar"), "Mul": _binary("mul", "mul_scalar"), "Sub": _binary("sub", "add_scalar"),
    "Concat": concat, "Flatten": flatten, "Reshape": reshape, "LRN": lrn,
    "Relu": _plain("relu"), "Sigmoid": _plain("sigmoid"), "Tanh": _plain("tanh"), "Clip": clip,
    "HardSwish": _plain("hardswish"), "HardSigmoid": hard_sigmoid, "Mish": _plain("mish"), "Selu": _plain("selu"),
    "LeakyRelu": leaky_relu, "Gelu": gelu, "Softmax": softmax("softmax"), "LogSoftmax": softmax("log_softmax"),
    "ReduceMean": _reduce("mean"), "ReduceMax": _reduce("max"), "ReduceSum": _reduce("sum"),
    "Dropout": dropout, "Identity": _alias,
    "Slice": slice_, "Pad": pad, "Unsqueeze": unsqueeze, "Squeeze": squeeze, "Transpose": transpose,
}


def translate(node: Any, consts: Consts, named: set[str]) -> Translated:
    """The node as an archc layer; raises :class:`Unsupported` for an op type or setting archc cannot express."""
    rule = TRANSLATIONS.get(node.op_type)
    if rule is None or (node.domain not in ("", "ai.onnx")):
        raise Unsupported(f"op type {node.domain + '.' if node.domain else ''}{node.op_type} is not supported")
    return rule(node, consts, named)
