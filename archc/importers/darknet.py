"""Darknet ``.cfg`` files in: each section becomes the archc layers that compute what darknet computes.

Shapes are tracked as darknet tracks them (``l.out_c``, ``l.out_h``, ``l.out_w``), so a reference or size that darknet
would reject is refused here at its line, and the layers that depend on the input size (pooling padding, flattening
before ``[connected]``) are written for the size the ``[net]`` section gives. Ids are darknet's layer indices prefixed
by the layer kind (``conv0``, ``bn0``, ``leaky0``, ``route83``), the numbers darknet prints when it loads a network.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from archc.importers.darknet_cfg import Section, parse_cfg
from archc.importers.flat import FlatGraph, FlatLayer
from archc.importers.problems import Refusal, SourceProblems, window_floor
from archc.importers.reading import read_source_text, spec_name

Shape = tuple[int, ...]

# darknet activation name -> (archc op, its params); "linear" is none
ACTIVATIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "leaky": ("leaky_relu", {"slope": 0.1}),
    "relu": ("relu", {}),
    "logistic": ("sigmoid", {}),
    "mish": ("mish", {}),
    "swish": ("silu", {}),
    "tanh": ("tanh", {}),
    "elu": ("elu", {}),
    "selu": ("selu", {}),
}
# darknet's batch norm: cuDNN's epsilon 1e-5 (the CPU path adds 1e-6 to the standard deviation instead) and running
# statistics updated as .99 * old + .01 * new, PyTorch's momentum 0.01
BN_PARAMS: dict[str, Any] = {"momentum": 0.01}
# options that change what a layer computes and that archc cannot follow (darknet forks add more)
UNSUPPORTED_OPTIONS = {
    "convolutional": {"binary", "xnor", "dilation", "stride_x", "stride_y", "antialiasing", "share_index", "deform",
                      "assisted_excitation"},
    "shortcut": {"weights_type", "weights_normalization"},
    "maxpool": {"stride_x", "stride_y", "maxpool_depth", "antialiasing"},
}
ACTIVATED = {"convolutional", "connected", "shortcut"}
IGNORED = {"cost": "the training loss [cost]", "detection": "the training loss [detection]"}


class _Importer:
    def __init__(self, path: Path, problems: SourceProblems) -> None:
        self.origin_file = path.name
        self.problems = problems
        self.layers: list[FlatLayer] = []
        self.index: list[tuple[str, Shape] | None] = []  # darknet layer index -> (archc id, shape); None: refused
        self.input: tuple[str, Shape] = ("image", ())
        self.heads: list[str] = []
        self.notes: list[str] = []

    # --- helpers ----------------------------------------------------------------------------------------------------
    def add(self, layer_id: str, op: str, params: dict[str, Any], inputs: list[str], section: Section,
            note: str = "") -> str:
        self.layers.append(FlatLayer(layer_id, op, params, inputs, f"{self.origin_file}:{section.line}", note))
        return layer_id

    def previous(self, section: Section) -> tuple[str, Shape]:
        if not self.index:
            return self.input
        return self.lookup(len(self.index) - 1, section, "the previous layer")

    def lookup(self, index: int, section: Section, what: str) -> tuple[str, Shape]:
        if not 0 <= index < len(self.index):
            raise Refusal("E602", f"[{section.kind}] refers to layer {index} ({what}), which does not exist: this is "
                                  f"layer {len(self.index)}", section.line)
        entry = self.index[index]
        if entry is None:
            raise _Skipped
        return entry

    def references(self, section: Section, key: str) -> list[tuple[str, Shape]]:
        """The layers an option names (negative: counted back from this one), all checked before any is looked up."""
        here = len(self.index)
        values = section.integers(key)
        targets = [here + value if value < 0 else value for value in values]
        option = section.options[key]
        for target in targets:
            if target >= here:
                raise Refusal("E602", f"[{section.kind}] {key}={option.value} refers to layer {target}, which is not "
                                      f"before this layer ({here})", option.line, option.col)
            if target < 0:
                raise Refusal("E602", f"[{section.kind}] {key}={option.value} refers to layer {target}, which does not "
                                      f"exist: this is layer {here}", option.line, option.col)
        return [self.lookup(target, section, f"{key}={value}") for value, target in zip(values, targets, strict=True)]

    def checked(self, section: Section, key: str) -> None:
        """References checked first so that a refused input layer does not hide a mistake here."""
        with contextlib.suppress(_Skipped):
            self.references(section, key)

    def activation(self, section: Section, i: int, x: str, default: str) -> str:
        name = section.text("activation", default)
        if name == "linear":
            return x
        op, params = ACTIVATIONS[name]
        return self.add(f"{name}{i}", op, dict(params), [x], section)

    def refuse_options(self, section: Section) -> None:
        """What the section says that archc cannot follow, whatever its inputs are."""
        option = section.options.get("activation")
        if option is not None and section.kind in ACTIVATED and option.value not in ("linear", *ACTIVATIONS):
            raise Refusal("E601", f"darknet activation {option.value!r} has no archc op (supported: linear, "
                                  f"{', '.join(ACTIVATIONS)})", option.line, option.col)
        for key in sorted(UNSUPPORTED_OPTIONS.get(section.kind, set()) & section.options.keys()):
            option = section.options[key]
            if key == "dilation" and option.value == "1":
                continue
            raise Refusal("E601", f"[{section.kind}] option {key}={option.value} is not supported", option.line)

    # --- sections ---------------------------------------------------------------------------------------------------
    def convolutional(self, section: Section, i: int) -> tuple[str, Shape]:
        x, shape = self.previous(section)
        c, h, w = self.spatial(shape, section)
        filters = section.integer("filters", 1)
        size = section.integer("size", 1)
        stride = section.integer("stride", 1)
        groups = section.integer("groups", 1)
        padding = size // 2 if section.integer("pad", 0) else section.integer("padding", 0)
        if filters < 1 or size < 1 or stride < 1 or groups < 1 or padding < 0:
            raise Refusal("E602", f"[convolutional] needs positive filters, size, stride and groups (found "
                                  f"filters={filters} size={size} stride={stride} groups={groups})", section.line)
        if c % groups or filters % groups:
            raise Refusal("E602", f"[convolutional] groups={groups} must divide the input channels ({c}) and the "
                                  f"filters ({filters})", section.line)
        out_h, out_w = window_floor(h, size, stride, 2 * padding), window_floor(w, size, stride, 2 * padding)
        if out_h < 1 or out_w < 1:
            raise Refusal("E602", f"[convolutional] size={size} does not fit the {h}x{w} input (padding {padding})",
                          section.line)
        bn = bool(section.integer("batch_normalize", 0))
        params: dict[str, Any] = {"out": filters, "k": size}
        if stride != 1:
            params["s"] = stride
        if padding:
            params["p"] = padding
        if groups != 1:
            params["groups"] = groups
        if bn:
            params["bias"] = False  # darknet's biases are the batch norm's shift then
        y = self.add(f"conv{i}", "conv", params, [x], section)
        if bn:
            y = self.add(f"bn{i}", "bn", dict(BN_PARAMS), [y], section)
        return self.activation(section, i, y, "logistic"), (filters, out_h, out_w)

    def connected(self, section: Section, i: int) -> tuple[str, Shape]:
        x, shape = self.previous(section)
        if len(shape) > 1:
            x = self.add(f"flatten{i}", "flatten", {}, [x], section)
        out = section.integer("output", 1)
        if out < 1:
            raise Refusal("E602", f"[connected] output={out} must be positive", section.line)
        bn = bool(section.integer("batch_normalize", 0))
        y = self.add(f"fc{i}", "linear", {"out": out, **({"bias": False} if bn else {})}, [x], section)
        if bn:
            y = self.add(f"bn{i}", "bn", dict(BN_PARAMS), [y], section)
        return self.activation(section, i, y, "logistic"), (out,)

    def maxpool(self, section: Section, i: int) -> tuple[str, Shape]:
        x, shape = self.previous(section)
        c, h, w = self.spatial(shape, section)
        stride = section.integer("stride", 1)
        size = section.integer("size", stride)  # parse_maxpool's default size is the stride
        pad_total = section.integer("padding", size - 1)
        if size < 1 or stride < 1 or pad_total < 0:
            raise Refusal("E602", f"[maxpool] needs positive size and stride (found size={size} stride={stride})",
                          section.line)
        out_h, out_w = window_floor(h, size, stride, pad_total), window_floor(w, size, stride, pad_total)
        if out_h < 1 or out_w < 1:
            raise Refusal("E602", f"[maxpool] size={size} does not fit the {h}x{w} input", section.line)
        return self.darknet_window(section, i, x, (h, w), (out_h, out_w), size, stride, pad_total), (c, out_h, out_w)

    def darknet_window(self, section: Section, i: int, x: str, size: tuple[int, int], out: tuple[int, int], k: int,
                       s: int, pad_total: int) -> str:
        """Darknet pads ``pad_total // 2`` before and the rest after, ignoring padded positions (PyTorch's -inf): with
        an even total that is symmetric padding; with an odd one the extra position at the end, where a window
        reaches it, is reached by ceil mode when the stride is at least 2, and at stride 1 by padding both sides and
        dropping the first row and column."""
        before = pad_total // 2
        params: dict[str, Any] = {"k": k, "s": s}
        if pad_total % 2 == 0:
            if before:
                params["p"] = before
            return self.add(f"maxpool{i}", "maxpool", params, [x], section)
        if before:
            params["p"] = before
        if all(window_floor(n, k, s, 2 * before) == o for n, o in zip(size, out, strict=True)):
            return self.add(f"maxpool{i}", "maxpool", params, [x], section)  # the extra end padding is never reached
        ceil = [window_floor(n, k, s, 2 * before + s - 1) for n in size]
        if s > 1 and all(c == o and (o - 1) * s < n + before for c, o, n in zip(ceil, out, size, strict=True)):
            return self.add(f"maxpool{i}", "maxpool", {**params, "ceil_mode": True}, [x], section)
        if s == 1 and 2 * (before + 1) <= k:
            params["p"] = before + 1
            y = self.add(f"maxpool{i}", "maxpool", params, [x], section,
                         note="darknet pads only after: windows shifted by one row and column, the first dropped")
            y = self.add(f"maxpool{i}_rows", "slice", {"axis": 1, "start": 1}, [y], section)
            return self.add(f"maxpool{i}_cols", "slice", {"axis": 2, "start": 1}, [y], section)
        raise Refusal("E601", f"[maxpool] size={k} stride={s} padding={pad_total} pads one side more than the other "
                              "in a way archc's maxpool cannot express", section.line)

    def avgpool(self, section: Section, i: int) -> tuple[str, Shape]:
        x, shape = self.previous(section)
        c, _, _ = self.spatial(shape, section)
        return self.add(f"avgpool{i}", "global_avgpool", {}, [x], section), (c, 1, 1)

    def route(self, section: Section, i: int) -> tuple[str, Shape]:
        sources = self.references(section, "layers")
        if not sources:
            raise Refusal("E602", "[route] needs at least one layer in layers=", section.line)
        spatial = {shape[1:] for _, shape in sources}
        if len(spatial) > 1 or any(len(shape) != 3 for _, shape in sources):
            found = ", ".join(f"{'x'.join(map(str, shape))}" for _, shape in sources)
            raise Refusal("E602", f"[route] joins layers of different sizes ({found}); darknet concatenates channels "
                                  "of equal height and width", section.line)
        channels = sum(shape[0] for _, shape in sources)
        _, h, w = sources[0][1]
        if len(sources) == 1:
            y = sources[0][0]
        else:
            y = self.add(f"route{i}", "concat", {}, [name for name, _ in sources], section)
        groups, group_id = section.integer("groups", 1), section.integer("group_id", 0)
        if groups != 1:  # AlexeyAB's channel split (YOLOv4-tiny): take one of `groups` equal parts
            if groups < 1 or channels % groups or not 0 <= group_id < groups:
                raise Refusal("E602", f"[route] groups={groups} group_id={group_id} does not split {channels} "
                                      "channels", section.line)
            part = channels // groups
            y = self.add(f"route{i}_group", "slice", {"axis": 0, "start": group_id * part,
                                                      "end": (group_id + 1) * part}, [y], section)
            channels = part
        return y, (channels, h, w)

    def shortcut(self, section: Section, i: int) -> tuple[str, Shape]:
        if "from" not in section.options:
            raise Refusal("E602", "[shortcut] needs the option from=", section.line)
        if len(section.integers("from")) != 1:
            option = section.options["from"]
            raise Refusal("E601", "[shortcut] with several from= layers is not supported", option.line, option.col)
        for key in ("alpha", "beta"):
            if section.number(key, 1.0) != 1.0:
                raise Refusal("E601", f"[shortcut] {key}={section.options[key].value} (a weighted sum) is not "
                                      "supported", section.options[key].line)
        self.checked(section, "from")
        x, shape = self.previous(section)
        [(other, other_shape)] = self.references(section, "from")
        if len(other_shape) != 3 or len(shape) != 3:
            if other_shape != shape:
                raise Refusal("E602", f"[shortcut] adds layers of different shapes ({_shown(other_shape)} and "
                                      f"{_shown(shape)})", section.line)
        elif other_shape != shape:
            other = self.fitted_shortcut(section, i, other, other_shape, shape)
        y = self.add(f"shortcut{i}", "add", {}, [x, other], section)
        return self.activation(section, i, y, "linear"), shape

    def fitted_shortcut(self, section: Section, i: int, x: str, have: Shape, want: Shape) -> str:
        """Darknet adds a layer of another shape by taking every stride-th position of a larger one and adding only
        the channels both have (shortcut_cpu): here a strided slice, then the channels cut or padded with zeros."""
        (c1, h1, w1), (c2, h2, w2) = have, want
        stride = w1 // w2 if w2 else 0
        if h1 < h2 or w1 < w2 or h1 // h2 != stride or stride < 1:
            raise Refusal("E601", f"[shortcut] from a {_shown(have)} layer into a {_shown(want)} one: darknet "
                                  "spreads the smaller layer over the larger, which archc cannot express",
                          section.line)
        if stride > 1 or h1 != h2 or w1 != w2:
            x = self.add(f"shortcut{i}_rows", "slice", {"axis": 1, "end": h2 * stride, "step": stride}, [x], section,
                         note="darknet's shortcut from a larger layer: every stride-th position")
            x = self.add(f"shortcut{i}_cols", "slice", {"axis": 2, "end": w2 * stride, "step": stride}, [x], section)
        if c1 > c2:
            x = self.add(f"shortcut{i}_channels", "slice", {"axis": 0, "end": c2}, [x], section,
                         note="darknet's shortcut adds only the channels both layers have")
        elif c1 < c2:
            x = self.add(f"shortcut{i}_pad", "zeropad", {"p": [0, c2 - c1], "axes": [0]}, [x], section,
                         note="darknet's shortcut adds only the channels both layers have: the rest pass through")
        return x

    def upsample(self, section: Section, i: int) -> tuple[str, Shape]:
        stride = section.integer("stride", 2)
        if stride < 1:
            raise Refusal("E601", f"[upsample] stride={stride} (downsampling) is not supported", section.line)
        if section.number("scale", 1.0) != 1.0:
            raise Refusal("E601", "[upsample] scale= (multiplying the output) is not supported",
                          section.options["scale"].line)
        x, shape = self.previous(section)
        c, h, w = self.spatial(shape, section)
        return self.add(f"upsample{i}", "upsample", {"mode": "nearest", "scale": stride}, [x], section), \
            (c, h * stride, w * stride)

    def yolo(self, section: Section, i: int) -> tuple[str, Shape]:
        x, shape = self.previous(section)
        c, _, _ = self.spatial(shape, section)
        classes = section.integer("classes", 20)
        if section.kind == "yolo":
            anchors = len(section.integers("mask")) if "mask" in section.options else section.integer("num", 1)
            expected = anchors * (classes + 5)
        else:  # [region], YOLOv2
            anchors = section.integer("num", 1)
            expected = anchors * (classes + section.integer("coords", 4) + 1)
        if c != expected:
            raise Refusal("E602", f"[{section.kind}] expects {expected} input channels ({anchors} anchors x "
                                  f"({classes} classes + box and objectness)); the layer before gives {c}",
                          section.line)
        self.heads.append(x)
        return x, shape

    def softmax(self, section: Section, i: int) -> tuple[str, Shape]:
        x, shape = self.previous(section)
        if section.integer("groups", 1) != 1:
            raise Refusal("E601", "[softmax] groups= other than 1 is not supported", section.options["groups"].line)
        if section.number("temperature", 1.0) != 1.0:
            raise Refusal("E601", "[softmax] temperature= is not supported", section.options["temperature"].line)
        if len(shape) == 3 and shape[1:] != (1, 1):  # darknet takes the softmax of the whole flattened input
            x = self.add(f"flatten{i}", "flatten", {}, [x], section)
            shape = (shape[0] * shape[1] * shape[2],)
        return self.add(f"softmax{i}", "softmax", {}, [x], section), shape

    def dropout(self, section: Section, i: int) -> tuple[str, Shape]:
        x, shape = self.previous(section)
        p = section.number("probability", 0.5)
        if not 0.0 <= p < 1.0:
            raise Refusal("E602", f"[dropout] probability={p} must be in [0, 1)", section.line)
        return self.add(f"dropout{i}", "dropout", {"p": p}, [x], section), shape

    def crop(self, section: Section, i: int) -> tuple[str, Shape]:
        """At inference darknet's crop takes the centre and maps [0, 1] to [-1, 1] (unless noadjust=1)."""
        x, shape = self.previous(section)
        c, h, w = self.spatial(shape, section)
        ch, cw = section.integer("crop_height", 1), section.integer("crop_width", 1)
        if not (0 < ch <= h and 0 < cw <= w):
            raise Refusal("E602", f"[crop] {ch}x{cw} does not fit the {h}x{w} input", section.line)
        top, left = (h - ch) // 2, (w - cw) // 2
        y = self.add(f"crop{i}", "slice", {"axis": 1, "start": top, "end": top + ch}, [x], section,
                     note="darknet's [crop] at inference: the centre, scaled from [0, 1] to [-1, 1]")
        y = self.add(f"crop{i}_cols", "slice", {"axis": 2, "start": left, "end": left + cw}, [y], section)
        if not section.integer("noadjust", 0):
            y = self.add(f"crop{i}_scale", "mul_scalar", {"value": 2.0}, [y], section)
            y = self.add(f"crop{i}_shift", "add_scalar", {"value": -1.0}, [y], section)
        return y, (c, ch, cw)

    def spatial(self, shape: Shape, section: Section) -> tuple[int, int, int]:
        if len(shape) != 3:
            raise Refusal("E601", f"[{section.kind}] after a layer with a flat output ({shape[0]} values) is not "
                                  "supported", section.line)
        return shape[0], shape[1], shape[2]


def _shown(shape: Shape) -> str:
    return "x".join(map(str, shape))


class _Skipped(Exception):
    """A layer whose input was refused: nothing more to say about it."""


def read_darknet(path: Path) -> FlatGraph:
    """The layers of a Darknet ``.cfg`` file (refusals raised together as :class:`ImportFailure`)."""
    text = read_source_text(path)
    problems = SourceProblems(str(path))
    sections = parse_cfg(text, problems)
    problems.raise_if_any()
    if not sections or sections[0].kind not in ("net", "network"):
        problems.malformed("a darknet cfg starts with a [net] section (input size and channels)",
                           sections[0].line if sections else 1)
        problems.raise_if_any()
    net = sections[0]
    importer = _Importer(path, problems)
    try:
        inputs = {"image": [net.integer("channels", 0), net.integer("height", 0), net.integer("width", 0)]}
    except Refusal as refusal:
        problems.error(refusal.code, refusal.message, refusal.line, refusal.col)
        problems.raise_if_any()
        raise AssertionError("unreachable") from None
    if min(inputs["image"]) < 1:
        problems.malformed("[net] needs positive channels=, height= and width=", net.line)
        problems.raise_if_any()
    importer.input = ("image", tuple(inputs["image"]))
    for section in sections[1:]:
        _translate(importer, section)
    problems.raise_if_any()
    outputs = importer.heads or [entry[0] for entry in importer.index[-1:] if entry is not None]
    name = spec_name(path.stem)
    return FlatGraph(name=name, doc=f"Imported from the Darknet cfg {path.name}.", inputs=inputs,
                     layers=importer.layers, outputs=outputs, notes=importer.notes)


ALIASES = {"conv": "convolutional", "max": "maxpool", "avg": "avgpool"}
"""Darknet's parser accepts these short section names too."""


def _translate(importer: _Importer, section: Section) -> None:
    section.kind = ALIASES.get(section.kind, section.kind)
    index = len(importer.index)  # darknet's number for this layer
    handlers = {
        "convolutional": importer.convolutional, "connected": importer.connected, "maxpool": importer.maxpool,
        "avgpool": importer.avgpool,
        "route": importer.route, "shortcut": importer.shortcut, "upsample": importer.upsample,
        "yolo": importer.yolo, "region": importer.yolo, "softmax": importer.softmax, "dropout": importer.dropout,
        "crop": importer.crop,
    }
    if section.kind in IGNORED:
        importer.notes.append(f"{IGNORED[section.kind]} (line {section.line}) is not part of the network: left out")
        importer.index.append(importer.index[-1] if importer.index else importer.input)
        return
    handler = handlers.get(section.kind)
    try:
        if handler is None:
            raise Refusal("E601", f"darknet layer [{section.kind}] is not supported", section.line)
        importer.refuse_options(section)
        importer.index.append(handler(section, index))
        return
    except Refusal as refusal:
        importer.problems.error(refusal.code, refusal.message, refusal.line, refusal.col)
    except _Skipped:
        pass
    importer.index.append(None)
