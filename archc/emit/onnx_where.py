"""``archc where``: the spec position an ONNX node came from, read from the metadata archc writes on every node.

An error from onnxruntime names a node (``layer1.0.conv2``, ``layer1.0/Add``); each node archc emits carries its layer
path and ``file:line:col`` (:data:`archc.emit.onnx_builder.SOURCE_KEY`), so the node leads back to the YAML line.
"""

from __future__ import annotations

import difflib
import os

from archc.emit.onnx_builder import LAYER_KEY, SOURCE_KEY
from archc.errors import UsageError
from archc.extras import emit_extra
from archc.text_escape import terminal_line

with emit_extra():
    import onnx
    from google.protobuf.message import DecodeError


def where(path: str | os.PathLike[str], name: str) -> str:
    """``file:line:col: layer.path`` for the node ``name`` of the ONNX file (a node name, a layer path or the name of
    a value a node produces); :class:`UsageError` when there is no such node or it carries no position."""
    try:
        model = onnx.load(os.fspath(path), load_external_data=False)
    except (OSError, DecodeError, ValueError) as exc:
        raise UsageError(f"cannot read {os.fspath(path)} as ONNX: {exc}") from None
    nodes = list(model.graph.node)
    found = (next((n for n in nodes if n.name == name), None)
             or next((n for n in nodes if _meta(n).get(LAYER_KEY) == name), None)
             or next((n for n in nodes if name in n.output), None))
    if found is None:
        names = [n.name for n in nodes]
        close = difflib.get_close_matches(name, names, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise UsageError(f"{os.fspath(path)} has no node named '{name}'{hint}")
    meta = _meta(found)
    if SOURCE_KEY not in meta:
        raise UsageError(f"node '{found.name}' carries no spec position (it was not written by archc's exporter, or "
                         "it joins layers, like an output's Identity)")
    # the metadata holds the file name and path as they are: a line break in either must not split the printed line
    return terminal_line(f"{meta[SOURCE_KEY]}: {meta.get(LAYER_KEY, found.name)}")


def _meta(node: onnx.NodeProto) -> dict[str, str]:
    return {entry.key: entry.value for entry in node.metadata_props}
