"""One translation per supported Caffe layer type: the archc layer(s) it becomes and the shape Caffe gives its top."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from archc.importers.caffe_params import LayerParams
from archc.importers.caffe_state import Blob, CaffeState, Shape, conv_out, pooled, set_top
from archc.importers.problems import Refusal, window_floor

Bottoms = list[tuple[str, Blob]]
MERGED_NOTE = ("each Caffe BatchNorm layer followed by a Scale layer with a bias is one `bn`: the Scale's scale and "
               "shift are PyTorch's affine batch norm")
Translation = Callable[[CaffeState, LayerParams, Bottoms, list[str]], None]


def _counts(params: LayerParams, bottoms: Bottoms, tops: list[str], n_bottoms: int | None, n_tops: int = 1) -> None:
    kind = params.text("type")
    if n_bottoms is not None and len(bottoms) != n_bottoms:
        raise Refusal("E602", f"{kind} layer {params.name!r} needs {n_bottoms} bottom blob(s); found {len(bottoms)}",
                      params.message.line, params.message.col)
    if len(tops) != n_tops:
        raise Refusal("E601" if tops else "E602", f"{kind} layer {params.name!r} with {len(tops)} top blobs is not "
                                                  f"supported (expected {n_tops})", params.message.line,
                      params.message.col)


def _image(params: LayerParams, shape: Shape) -> tuple[int, int, int]:
    if len(shape) != 3:
        raise Refusal("E601", f"{params.text('type')} layer {params.name!r} on a {len(shape)}-D blob "
                              f"({list(shape)}) is not supported: only [C, H, W] images", params.message.line,
                      params.message.col)
    return shape[0], shape[1], shape[2]


def _pair(p: LayerParams, key: str, default: int, repeated: bool) -> tuple[int, int]:
    """Caffe's (h, w) from ``key_h``/``key_w``, else ``key`` (repeated for convolutions: one value or h and w)."""
    if p.has(f"{key}_h") or p.has(f"{key}_w"):
        return p.integer(f"{key}_h", default), p.integer(f"{key}_w", default)
    values = p.integers(key) if repeated else ([p.integer(key, default)] if p.has(key) else [])
    if not values:
        return default, default
    if len(values) == 1:
        return values[0], values[0]
    if len(values) == 2:
        return values[0], values[1]
    raise Refusal("E601", f"{p.owner}.{key} with {len(values)} values (a {len(values)}-D window) is not supported",
                  *p.where(key))


def _archc(pair: tuple[int, int]) -> int | list[int]:
    return pair[0] if pair[0] == pair[1] else list(pair)


def convolution(state: CaffeState, params: LayerParams, bottoms: Bottoms, tops: list[str]) -> None:
    _counts(params, bottoms, tops, 1)
    deconvolution = params.text("type") == "Deconvolution"
    p = params.sub("convolution_param")
    (_, blob), = bottoms
    c, h, w = _image(params, blob.shape)
    out = p.integer("num_output", 0)
    if out < 1:
        raise Refusal("E602", f"layer {params.name!r} needs a positive convolution_param.num_output",
                      *p.where("num_output"))
    if p.integer("axis", 1) != 1:
        raise Refusal("E601", "convolution_param.axis other than 1 is not supported", *p.where("axis"))
    k, s, pad, d = _pair(p, "kernel", 0, False) if p.has("kernel_h") else _pair(p, "kernel_size", 0, True), \
        _pair(p, "stride", 1, True), _pair(p, "pad", 0, True), _pair(p, "dilation", 1, True)
    groups = p.integer("group", 1)
    if min(k) < 1 or min(s) < 1 or min(d) < 1 or min(pad) < 0 or groups < 1:
        raise Refusal("E602", f"layer {params.name!r} needs a positive kernel size, stride, dilation and group",
                      params.message.line, params.message.col)
    if c % groups or out % groups:
        raise Refusal("E602", f"layer {params.name!r}: group {groups} must divide the input channels ({c}) and "
                              f"num_output ({out})", *p.where("group"))
    spec: dict[str, Any] = {"out": out, "k": _archc(k)}
    for key, value, default in (("s", s, 1), ("p", pad, 0), ("d", d, 1)):
        if value != (default, default):
            spec[key] = _archc(value)
    if groups != 1:
        spec["groups"] = groups
    if not p.boolean("bias_term", True):
        spec["bias"] = False
    if deconvolution:
        size = tuple(s_ * (n - 1) + d_ * (k_ - 1) + 1 - 2 * p_ for n, k_, s_, p_, d_ in zip((h, w), k, s, pad, d))
        op = "conv_transpose"
    else:
        size = tuple(conv_out(n, k_, s_, p_, d_) for n, k_, s_, p_, d_ in zip((h, w), k, s, pad, d))
        op = "conv"
    if min(size) < 1:
        raise Refusal("E602", f"layer {params.name!r}: the kernel does not fit the {h}x{w} input",
                      params.message.line, params.message.col)
    y = state.add(params.name, op, spec, [blob.producer], params.message.line)
    set_top(state, tops[0], y, (out, *size))


def pooling(state: CaffeState, params: LayerParams, bottoms: Bottoms, tops: list[str]) -> None:
    _counts(params, bottoms, tops, 1)
    p = params.sub("pooling_param")
    kind = p.enum("pool", "MAX", {"MAX": "max", "AVE": "avg", "0": "max", "1": "avg"})
    (_, blob), = bottoms
    c, h, w = _image(params, blob.shape)
    if p.boolean("global_pooling", False):
        y = state.add(params.name, f"global_{kind}pool", {}, [blob.producer], params.message.line)
        set_top(state, tops[0], y, (c, 1, 1))
        return
    k, s, pad = _pair(p, "kernel", 0, False) if p.has("kernel_h") else _pair(p, "kernel_size", 0, False), \
        _pair(p, "stride", 1, False), _pair(p, "pad", 0, False)
    if min(k) < 1 or min(s) < 1:
        raise Refusal("E602", f"layer {params.name!r} needs pooling_param.kernel_size (or global_pooling)",
                      params.message.line, params.message.col)
    if any(2 * p_ > k_ for p_, k_ in zip(pad, k)):
        raise Refusal("E601", f"layer {params.name!r}: padding more than half the window is not supported",
                      *p.where("pad"))
    size = tuple(pooled(n, k_, s_, p_) for n, k_, s_, p_ in zip((h, w), k, s, pad))
    floor = tuple(window_floor(n, k_, s_, 2 * p_) for n, k_, s_, p_ in zip((h, w), k, s, pad))
    torch_ceil = tuple(o - 1 if (o - 1) * s_ >= n + p_ else o for o, n, s_, p_ in zip(size, (h, w), s, pad))
    spec: dict[str, Any] = {"k": _archc(k)}
    if s != k:
        spec["s"] = _archc(s)
    if pad != (0, 0):
        spec["p"] = _archc(pad)
    if size != floor:  # Caffe rounds up; PyTorch's ceil mode does the same except a last window in the padding
        if torch_ceil != size:
            raise Refusal("E601", f"layer {params.name!r}: Caffe's rounding gives a last window outside the input "
                                  "that PyTorch's ceil mode drops", params.message.line, params.message.col)
        spec["ceil_mode"] = True
    y = state.add(params.name, f"{kind}pool", spec, [blob.producer], params.message.line)
    set_top(state, tops[0], y, (c, *size))


def lrn(state: CaffeState, params: LayerParams, bottoms: Bottoms, tops: list[str]) -> None:
    _counts(params, bottoms, tops, 1)
    p = params.sub("lrn_param")
    p.enum("norm_region", "ACROSS_CHANNELS", {"ACROSS_CHANNELS": "across", "0": "across"})
    (_, blob), = bottoms
    spec = {"size": p.integer("local_size", 5), "alpha": p.number("alpha", 1.0), "beta": p.number("beta", 0.75),
            "k": p.number("k", 1.0)}
    y = state.add(params.name, "lrn", spec, [blob.producer], params.message.line)
    set_top(state, tops[0], y, blob.shape)


def relu(state: CaffeState, params: LayerParams, bottoms: Bottoms, tops: list[str]) -> None:
    _counts(params, bottoms, tops, 1)
    slope = params.sub("relu_param").number("negative_slope", 0.0)
    (_, blob), = bottoms
    op, spec = ("leaky_relu", {"slope": slope}) if slope else ("relu", {})
    set_top(state, tops[0], state.add(params.name, op, spec, [blob.producer], params.message.line), blob.shape)


def batch_norm(state: CaffeState, params: LayerParams, bottoms: Bottoms, tops: list[str]) -> None:
    _counts(params, bottoms, tops, 1)
    p = params.sub("batch_norm_param")
    (_, blob), = bottoms
    spec: dict[str, Any] = {"affine": False}  # Caffe's BatchNorm has no scale and shift: a Scale layer adds them
    eps = p.number("eps", 1e-5)
    if eps != 1e-5:
        spec["eps"] = eps
    y = state.add(params.name, "bn", spec, [blob.producer], params.message.line)
    set_top(state, tops[0], y, blob.shape, bn=state.layers[-1])


def scale(state: CaffeState, params: LayerParams, bottoms: Bottoms, tops: list[str]) -> None:
    _counts(params, bottoms, tops, 1)
    p = params.sub("scale_param")
    if p.integer("axis", 1) != 1 or p.integer("num_axes", 1) != 1:
        raise Refusal("E601", "scale_param.axis and num_axes other than 1 are not supported",
                      params.message.line, params.message.col)
    (_, blob), = bottoms
    bias = p.boolean("bias_term", False)
    bn = blob.bn
    if bn is not None and bias and bn.id == blob.producer:  # Caffe's BatchNorm + Scale is PyTorch's affine BatchNorm
        del bn.params["affine"]
        if MERGED_NOTE not in state.notes:
            state.notes.append(MERGED_NOTE)
        set_top(state, tops[0], bn.id, blob.shape)
        return
    y = state.add(params.name, "scale", {} if bias else {"bias": False}, [blob.producer], params.message.line)
    set_top(state, tops[0], y, blob.shape)


def eltwise(state: CaffeState, params: LayerParams, bottoms: Bottoms, tops: list[str]) -> None:
    _counts(params, bottoms, tops, None)
    p = params.sub("eltwise_param")
    operation = p.enum("operation", "SUM", {"SUM": "add", "PROD": "mul", "MAX": "maximum", "1": "add", "0": "mul",
                                            "2": "maximum"})
    if len(bottoms) < 2:
        raise Refusal("E602", f"Eltwise layer {params.name!r} needs at least two bottom blobs", params.message.line,
                      params.message.col)
    shapes = {blob.shape for _, blob in bottoms}
    if len(shapes) > 1:
        raise Refusal("E602", f"Eltwise layer {params.name!r} combines blobs of different shapes "
                              f"({', '.join(str(list(b.shape)) for _, b in bottoms)})", params.message.line,
                      params.message.col)
    coeffs = p.numbers("coeff")
    if coeffs and operation == "add" and coeffs == [1.0, -1.0]:
        operation = "sub"
    elif coeffs and (operation != "add" or len(coeffs) != len(bottoms) or any(c != 1.0 for c in coeffs)):
        raise Refusal("E601", f"eltwise_param.coeff {coeffs} (a weighted sum) is not supported", *p.where("coeff"))
    y = state.add(params.name, operation, {}, [blob.producer for _, blob in bottoms], params.message.line)
    set_top(state, tops[0], y, bottoms[0][1].shape)


def concat(state: CaffeState, params: LayerParams, bottoms: Bottoms, tops: list[str]) -> None:
    _counts(params, bottoms, tops, None)
    p = params.sub("concat_param")
    rank = len(bottoms[0][1].shape) + 1 if bottoms else 4
    axis = p.integer("axis", p.integer("concat_dim", 1))
    axis = axis + rank if axis < 0 else axis
    if not 1 <= axis < rank:
        raise Refusal("E601", f"Concat along axis {axis} (the batch, or past the blob's axes) is not supported",
                      *p.where("axis"))
    shapes = [blob.shape for _, blob in bottoms]
    if not shapes or any(len(s) != rank - 1 or s[:axis - 1] + s[axis:] != shapes[0][:axis - 1] + shapes[0][axis:]
                         for s in shapes):
        raise Refusal("E602", f"Concat layer {params.name!r} joins blobs whose other axes differ "
                              f"({', '.join(str(list(s)) for s in shapes)})", params.message.line, params.message.col)
    spec = {} if axis == 1 else {"axis": axis - 1}
    y = state.add(params.name, "concat", spec, [blob.producer for _, blob in bottoms], params.message.line)
    shape = list(shapes[0])
    shape[axis - 1] = sum(s[axis - 1] for s in shapes)
    set_top(state, tops[0], y, tuple(shape))


def inner_product(state: CaffeState, params: LayerParams, bottoms: Bottoms, tops: list[str]) -> None:
    _counts(params, bottoms, tops, 1)
    p = params.sub("inner_product_param")
    out = p.integer("num_output", 0)
    if out < 1:
        raise Refusal("E602", f"layer {params.name!r} needs a positive inner_product_param.num_output",
                      *p.where("num_output"))
    if p.integer("axis", 1) != 1:
        raise Refusal("E601", "inner_product_param.axis other than 1 is not supported", *p.where("axis"))
    (_, blob), = bottoms
    x = blob.producer
    if len(blob.shape) > 1:  # Caffe flattens everything after the batch axis
        x = state.add(f"{params.name}_flatten", "flatten", {}, [x], params.message.line)
    spec: dict[str, Any] = {"out": out}
    if not p.boolean("bias_term", True):
        spec["bias"] = False
    set_top(state, tops[0], state.add(params.name, "linear", spec, [x], params.message.line), (out,))


def dropout(state: CaffeState, params: LayerParams, bottoms: Bottoms, tops: list[str]) -> None:
    _counts(params, bottoms, tops, 1)
    ratio = params.sub("dropout_param").number("dropout_ratio", 0.5)
    if not 0.0 <= ratio < 1.0:
        raise Refusal("E602", f"dropout_ratio {ratio} must be in [0, 1)", params.message.line, params.message.col)
    (_, blob), = bottoms
    set_top(state, tops[0], state.add(params.name, "dropout", {"p": ratio}, [blob.producer], params.message.line),
            blob.shape)


def softmax(state: CaffeState, params: LayerParams, bottoms: Bottoms, tops: list[str]) -> None:
    _counts(params, bottoms, tops, 1)
    p = params.sub("softmax_param")
    (_, blob), = bottoms
    axis = p.integer("axis", 1)
    axis = axis + len(blob.shape) + 1 if axis < 0 else axis
    if not 1 <= axis <= len(blob.shape):
        raise Refusal("E601", f"Softmax along axis {axis} is not supported", *p.where("axis"))
    spec = {} if axis == 1 else {"axis": axis - 1}
    set_top(state, tops[0], state.add(params.name, "softmax", spec, [blob.producer], params.message.line), blob.shape)


def simple(op: str) -> Translation:
    def translate(state: CaffeState, params: LayerParams, bottoms: Bottoms, tops: list[str]) -> None:
        _counts(params, bottoms, tops, 1)
        (_, blob), = bottoms
        spec: dict[str, Any] = {}
        if op == "elu":
            spec["alpha"] = params.sub("elu_param").number("alpha", 1.0)
        if op == "prelu" and params.sub("prelu_param").boolean("channel_shared", False):
            spec["shared"] = True
        shape = (blob.shape[0] * _product(blob.shape[1:]),) if op == "flatten" else blob.shape
        if op == "flatten":
            p = params.sub("flatten_param")
            if p.integer("axis", 1) != 1 or p.integer("end_axis", -1) != -1:
                raise Refusal("E601", "Flatten other than all axes after the batch is not supported",
                              params.message.line, params.message.col)
        set_top(state, tops[0], state.add(params.name, op, spec, [blob.producer], params.message.line), shape)
    return translate


def _product(values: tuple[int, ...]) -> int:
    out = 1
    for v in values:
        out *= v
    return out


def input_layer(state: CaffeState, params: LayerParams, bottoms: Bottoms, tops: list[str]) -> None:
    _counts(params, bottoms, tops, 0, len(tops) or 1)
    shapes = [s for s in params.sub("input_param").message.all("shape")]
    if len(shapes) not in (1, len(tops)):
        raise Refusal("E602", f"Input layer {params.name!r} has {len(tops)} tops and {len(shapes)} shapes",
                      params.message.line, params.message.col)
    for i, top in enumerate(tops):
        shape = shapes[min(i, len(shapes) - 1)]
        dims = [LayerParams.int_value(v) for v in shape.all("dim")] if hasattr(shape, "all") else []
        line, col = params.where("top", top)
        state.declare_input(top, dims, line, col)


def split(state: CaffeState, params: LayerParams, bottoms: Bottoms, tops: list[str]) -> None:
    _counts(params, bottoms, tops, 1, len(tops) or 1)
    (_, blob), = bottoms
    for top in tops:  # every top is the bottom itself
        set_top(state, top, blob.producer, blob.shape)


TRANSLATIONS: dict[str, Translation] = {
    "Input": input_layer, "Convolution": convolution, "Deconvolution": convolution, "Pooling": pooling, "LRN": lrn,
    "ReLU": relu, "BatchNorm": batch_norm, "Scale": scale, "Eltwise": eltwise, "Concat": concat,
    "InnerProduct": inner_product, "Dropout": dropout, "Softmax": softmax, "Split": split,
    "Sigmoid": simple("sigmoid"), "TanH": simple("tanh"), "ELU": simple("elu"), "PReLU": simple("prelu"),
    "Flatten": simple("flatten"),
}
