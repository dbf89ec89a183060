"""Ultralytics model YAML files in (``yolov8.yaml``): the rows ``[from, repeats, module, args]`` of ``backbone`` and
``head`` resolved as Ultralytics' ``parse_model`` resolves them, for one compound scale.

``scales: {n: [depth, width, max_channels], ...}`` picks the scale (the first when none is asked for, as Ultralytics
does, with a note); repeats become ``max(round(n * depth), 1)`` and output channels
``ceil(min(c2, max_channels) * width / 8) * 8`` (``make_divisible``), except a module whose channels equal ``nc``.
Each module is written by :mod:`archc.importers.ultralytics_modules` under its module path without the model's own
``model.`` prefix (``2.m.0.cv1.conv``): the names of a checkpoint's ``state_dict``, for a writer that keeps them.
"""

from __future__ import annotations

import ast
import math
from pathlib import Path
from typing import Any

from archc.errors import SpecError, UsageError
from archc.importers.flat import FlatGraph, ImportFailure
from archc.importers.problems import Refusal, SourceProblems
from archc.importers.reading import spec_name
from archc.importers.ultralytics_modules import ModuleWriter, Tensor
from archc.limits import DEFAULT_LIMITS
from archc.yaml_loader import LoadedDoc, load_yaml_file

INPUT_SIZE = 640  # Ultralytics' default image size, at which it reports GFLOPs
CHANNEL_MODULES = {"Conv", "C2f", "C3", "SPPF", "Bottleneck"}  # the first argument is the output channels, scaled
REPEATED_INSIDE = {"C2f", "C3"}  # their repeats are an argument (bottlenecks inside), not copies of the module
SUPPORTED = CHANNEL_MODULES | {"Concat", "nn.Upsample", "Detect"}
ACTIVATIONS = {"nn.SiLU()": ("silu", {}), "nn.ReLU()": ("relu", {}), "nn.Hardswish()": ("hardswish", {}),
               "nn.LeakyReLU(0.1)": ("leaky_relu", {"slope": 0.1})}


def read_ultralytics(path: Path, scale: str | None = None) -> FlatGraph:
    """The layers of an Ultralytics model YAML at one scale (refusals raised together as :class:`ImportFailure`;
    a scale the file does not define is a usage error)."""
    try:
        doc = load_yaml_file(path)
    except SpecError as exc:  # YAML syntax, duplicate keys, tags: already located in the file
        raise ImportFailure(list(exc.diagnostics)) from None
    problems = SourceProblems(doc.file)
    data = doc.data
    if not isinstance(data, dict) or not isinstance(data.get("backbone"), list) or \
            not isinstance(data.get("head", []), list):
        problems.malformed("an Ultralytics model YAML has `backbone:` (and `head:`) lists of [from, repeats, module, "
                           "args] rows", 1)
        problems.raise_if_any()
    notes: list[str] = []
    depth, width, max_channels, chosen = _scale(data, doc, scale, notes, problems)
    nc = data.get("nc", 80)
    if not isinstance(nc, int) or isinstance(nc, bool) or nc < 1:
        problems.malformed(f"nc: {nc!r} must be a positive number of classes", doc.pos(("nc",)).line,
                           doc.pos(("nc",)).col)
    writer = ModuleWriter(origin="")
    act = data.get("activation")
    if act is not None:
        if act not in ACTIVATIONS:
            pos = doc.pos(("activation",))
            problems.unsupported(f"activation {act!r} is not supported (supported: {', '.join(ACTIVATIONS)})",
                                 pos.line, pos.col)
        else:
            writer.act = ACTIVATIONS[act]
    problems.raise_if_any()
    channels = data.get("ch", 3)
    image = Tensor("image", (channels, INPUT_SIZE, INPUT_SIZE))
    rows = [("backbone", i, row) for i, row in enumerate(data["backbone"])] + \
        [("head", i, row) for i, row in enumerate(data.get("head", []))]
    built: list[Tensor | None] = []
    outputs: list[str] = []
    context = {"nc": nc}
    for index, (section, position, row) in enumerate(rows):
        where = (section, position)
        writer.origin = f"{path.name}:{doc.pos(where).line}"
        try:
            built.append(_row(writer, doc, where, index, row, built, image, depth, width, max_channels, context,
                              outputs))
        except Refusal as refusal:
            problems.error(refusal.code, refusal.message, refusal.line, refusal.col)
            built.append(None)
        except _Skipped:
            built.append(None)
    problems.raise_if_any()
    if not outputs and built and built[-1] is not None:
        outputs = [built[-1].id]
    label = f" at scale {chosen}" if chosen else ""
    return FlatGraph(name=spec_name(f"{path.stem}{chosen or ''}"),
                     doc=f"Imported from the Ultralytics model YAML {path.name}{label}, at {INPUT_SIZE}x{INPUT_SIZE}.",
                     inputs={"image": list(image.shape)}, layers=writer.layers, outputs=outputs, notes=notes,
                     kinds=dict(writer.kinds))


def _scale(data: dict[str, Any], doc: LoadedDoc, scale: str | None, notes: list[str],
           problems: SourceProblems) -> tuple[float, float, float, str | None]:
    scales = data.get("scales")
    if not scales:
        if scale is not None:
            raise UsageError(f"--scale {scale}: {doc.file} defines no scales")
        depth, width = data.get("depth_multiple", 1.0), data.get("width_multiple", 1.0)
        return float(depth), float(width), math.inf, None
    if not isinstance(scales, dict) or not all(isinstance(v, list) and len(v) == 3 and
                                               all(isinstance(x, (int, float)) for x in v) for v in scales.values()):
        pos = doc.pos(("scales",))
        problems.malformed("scales: expected a mapping of name: [depth, width, max_channels]", pos.line, pos.col)
        problems.raise_if_any()
    if scale is None:
        scale = next(iter(scales))
        notes.append(f"no scale asked for: the first, {scale!r}, as Ultralytics assumes (scales: "
                     f"{', '.join(map(str, scales))})")
    elif scale not in scales:
        raise UsageError(f"--scale {scale}: {doc.file} defines the scales {', '.join(map(str, scales))}")
    depth, width, max_channels = scales[scale]
    return float(depth), float(width), float(max_channels), str(scale)


class _Skipped(Exception):
    """A row reading a refused row: nothing more to say about it."""


def _row(writer: ModuleWriter, doc: LoadedDoc, where: tuple[str, int], index: int, row: Any,
         built: list[Tensor | None], image: Tensor, depth: float, width: float, max_channels: float,
         context: dict[str, Any], outputs: list[str]) -> Tensor:
    def at(*more: int) -> tuple[int, int]:
        pos = doc.pos((*where, *more))
        return pos.line, pos.col

    if not (isinstance(row, list) and len(row) == 4 and isinstance(row[2], str) and isinstance(row[3], list)):
        raise Refusal("E602", "a row is [from, repeats, module, args]", *at())
    source, repeats, module, raw_args = row
    if module not in SUPPORTED:
        raise Refusal("E601", f"Ultralytics module {module!r} is not supported (supported: "
                              f"{', '.join(sorted(SUPPORTED))})", *at(2))
    if not isinstance(repeats, int) or isinstance(repeats, bool) or repeats < 1:
        raise Refusal("E602", f"repeats {repeats!r} must be a positive integer", *at(1))
    args = [_argument(a, context, at(3, j)) for j, a in enumerate(raw_args)]

    def read_inputs() -> list[Tensor]:  # after the row's own checks, so a refused input does not hide them
        return _inputs(source, index, built, image, at(0))

    n = max(round(repeats * depth), 1) if repeats > 1 else repeats
    if n > DEFAULT_LIMITS.max_layers // 8:  # each copy is several layers: refuse before building any
        raise Refusal("E601", f"repeats {repeats} make {n} copies, more layers than archc's limit max_layers "
                              f"({DEFAULT_LIMITS.max_layers:,})", *at(1))
    path = f"{index}"
    if module in CHANNEL_MODULES:
        if not args or not isinstance(args[0], int):
            raise Refusal("E602", f"{module} needs its output channels as the first argument", *at(3))
        c2 = args[0]
        if c2 != context["nc"]:
            c2 = math.ceil(min(c2, max_channels) * width / 8) * 8
        x = _single(read_inputs(), module, at(0))
        if module in REPEATED_INSIDE:
            shortcut = bool(args[1]) if len(args) > 1 else module == "C3"
            return (writer.c2f if module == "C2f" else writer.c3)(path, x, c2, n, shortcut)
        known = {"Bottleneck": "c2, shortcut", "SPPF": "c2, k"}.get(module, "c2, k, s")
        if len(args) > known.count(",") + 1:
            raise Refusal("E601", f"{module} with arguments beyond ({known}) (padding, groups, dilation, expansion) "
                                  "is not supported", *at(3, known.count(",") + 1))
        for copy in range(n):  # n > 1: an nn.Sequential of n copies, the first taking the row's input channels
            where = path if n == 1 else f"{path}.{copy}"
            if module == "SPPF":
                x = writer.sppf(where, x, c2, _int_arg(args, 1, 5, at(3, 1)))
            elif module == "Bottleneck":
                x = writer.bottleneck(where, x, c2, bool(args[1]) if len(args) > 1 else True)
            else:
                x = writer.conv(where, x, c2, _int_arg(args, 1, 1, at(3, 1)), _int_arg(args, 2, 1, at(3, 2)))
        return x
    if n != 1:
        raise Refusal("E601", f"{module} repeated {n} times is not supported", *at(1))
    if module == "Concat":
        inputs = read_inputs()
        if (args or [1])[0] != 1 or len(inputs) < 2:
            raise Refusal("E601", "Concat other than of several rows along the channels (dimension 1) is not "
                                  "supported", *at(3))
        sizes = {t.shape[1:] for t in inputs}
        if len(sizes) > 1:
            raise Refusal("E602", f"Concat joins rows of different sizes ({', '.join(_shown(t) for t in inputs)})",
                          *at(0))
        shape = (sum(t.shape[0] for t in inputs), *inputs[0].shape[1:])
        return writer.add(f"{path}.cat", "concat", {}, inputs, shape)  # a digit-only id would read as an index
    if module == "nn.Upsample":
        size, factor, mode = (args + [None, None, "nearest"][len(args):])[:3]
        if size is not None or not isinstance(factor, int) or mode != "nearest":
            raise Refusal("E601", "nn.Upsample other than by an integer scale_factor in mode 'nearest' is not "
                                  "supported", *at(3))
        x = _single(read_inputs(), module, at(0))
        c, h, w = x.shape
        return writer.add(f"{path}.upsample", "upsample", {"mode": "nearest", "scale": factor}, [x],
                          (c, h * factor, w * factor))
    # Detect
    nc = args[0] if args else context["nc"]
    if not isinstance(nc, int) or len(args) > 1:
        raise Refusal("E601", "Detect takes only the number of classes here", *at(3))
    levels, dfl = writer.detect(path, read_inputs(), nc)
    outputs.extend([*(t.id for t in levels), dfl.id])
    return levels[-1]


def _argument(value: Any, context: dict[str, Any], where: tuple[int, int]) -> Any:
    """An argument as parse_model reads it: a string naming `nc` is its value; other strings are Python literals
    (`None`, `'nearest'`) where they parse as one."""
    if isinstance(value, str):
        if value in context:
            return context[value]
        try:
            return ast.literal_eval(value)
        except (ValueError, SyntaxError):
            return value
    return value


def _inputs(source: Any, index: int, built: list[Tensor | None], image: Tensor,
            where: tuple[int, int]) -> list[Tensor]:
    refs = source if isinstance(source, list) else [source]
    out = []
    for ref in refs:
        if not isinstance(ref, int) or isinstance(ref, bool):
            raise Refusal("E602", f"from: {ref!r} must be a row index (negative: counted back)", *where)
        target = index + ref if ref < 0 else ref
        if index == 0 and ref == -1:
            out.append(image)
            continue
        if not 0 <= target < index:
            raise Refusal("E602", f"from: {ref} refers to row {target}, which is not before this row ({index})",
                          *where)
        tensor = built[target]
        if tensor is None:
            raise _Skipped
        out.append(tensor)
    return out


def _single(inputs: list[Tensor], module: str, where: tuple[int, int]) -> Tensor:
    if len(inputs) != 1:
        raise Refusal("E602", f"{module} takes one input row; from: names {len(inputs)}", *where)
    return inputs[0]


def _int_arg(args: list[Any], i: int, default: int, where: tuple[int, int]) -> int:
    if len(args) <= i:
        return default
    value = args[i]
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise Refusal("E601", f"argument {value!r}: a positive integer is expected here", *where)
    return value


def _shown(t: Tensor) -> str:
    return "x".join(map(str, t.shape))
