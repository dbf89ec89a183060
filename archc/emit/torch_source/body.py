"""What one generated class holds: its layers (or outlined sub-modules) in order, and the module tree they make.

A :class:`Body` is the emitter's view of one class: the model, or a block definition outlined as its own class. Its
items are layers of the graph or whole sub-modules (a block instance, a stage as ``nn.Sequential``), each with a
module constructor and a forward expression, named by its module path inside the class.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from archc.errors import Diagnostic, Pos, SpecError
from archc.ir.graph import Graph, Node
from archc.lower.reserved import RESERVED_MODULE_NAMES
from archc.ops.base import TorchCode
from archc.ops.registry import known_op

from .text import INDENT, attr_ok, fit, literal, module_ref, with_comment


class TorchEmitError(SpecError):
    """A layer path PyTorch cannot hold: a located diagnostic and exit code 1, like any invalid spec."""

    def __init__(self, graph: Graph, node: Node, code: str, message: str) -> None:
        super().__init__([Diagnostic(code, message, graph.file, node.pos, node.name)])


@dataclass
class Item:
    """One statement of ``forward`` and (with a module) one entry of the module tree."""

    name: str
    """Module path inside the class (``conv1``, ``downsample.0``, ``layer1``); also the key of its value."""
    label: str
    """Base of its variable name: the op (``relu``) or the outlined block (``bottleneck``)."""
    sources: list[str]
    """Item names or input keys feeding it, by port."""
    code: TorchCode
    node: Node
    """The graph node it stands for (an outlined sub-module: its output layer), for positions and messages."""
    overwritable: bool = False
    """Its output may be overwritten by a following in-place op (see ``Op.output_overwritable``)."""
    ctor: list[str] | None = None
    """A multi-line module constructor (a stage); None: ``code.module`` on one line."""
    guard: str = ""
    """Set on layers present only in some instances of a block: the constructor flag that builds them."""
    scope: str = ""
    """The graph scope it sits in, for section comments in the model's forward."""
    record: str = ""
    """Layer path recorded in trace mode."""
    pos: Pos | None = None
    """The spec position it comes from when not its node's (an outlined sub-module: where it is called)."""


@dataclass
class Body:
    """A class's forward: input keys with their argument names, items in a topological order, outputs."""

    inputs: list[tuple[str, str]]
    items: list[Item]
    outputs: dict[str, str]
    """Output name -> the item (or input key) producing it."""
    inputs_are_arguments: bool = True
    """Model inputs are never overwritten nor deleted; a block class's input is a local it may rebind."""
    guards: dict[str, str] = field(default_factory=dict)
    """Guard flag -> the top-level attribute that is None when the flag is false."""


def graph_items(graph: Graph, codes: dict[str, TorchCode]) -> list[Item]:
    """Every layer of ``graph`` as an item named by its full path (the unrolled form)."""
    items = []
    for node in graph.topological():
        if node.is_input:
            continue
        items.append(Item(node.name, node.op, graph.input_names(node.name), codes[node.name], node,
                          known_op(node.op).output_overwritable, scope=node.scope, record=node.name))
    return items


# --- the module tree --------------------------------------------------------------------------------------------------
Tree = dict[str, Any]
"""Path component -> :class:`Item` or a nested ``Tree`` (an ``nn.ModuleDict``)."""


def module_tree(graph: Graph, items: list[Item]) -> Tree:
    root: Tree = {}
    owners: dict[int, Item] = {}  # id(container) -> the first item placed inside it, for error messages
    for item in items:
        if item.code.module is None:
            continue
        *parents, last = item.name.split(".")
        level = root
        for part in parents:
            child = level.setdefault(part, {})
            if isinstance(child, Item):
                raise _clash(graph, item.node, child.node)
            owners.setdefault(id(child), item)
            level = child
        if last in level:  # a container made for earlier layers inside this one's path
            raise _clash(graph, owners.get(id(level[last]), item).node, item.node)
        level[last] = item
    _check_attribute_names(graph, root)
    return root


def _clash(graph: Graph, inner: Node, outer: Node) -> TorchEmitError:
    return TorchEmitError(graph, inner, "E203", f"PyTorch cannot nest this layer's module inside the {outer.op} "
                                               f"layer '{outer.name}' (a module is not a container); give one of the "
                                               "two steps a different id")


def _check_attribute_names(graph: Graph, tree: Tree) -> None:
    """`archc check` refuses these names already (E206, the same rule); this guards specs compiled some other way."""
    for key, child in tree.items():
        if key in RESERVED_MODULE_NAMES:
            node = child.node if isinstance(child, Item) else first_item(child).node
            raise TorchEmitError(graph, node, "E206", f"'{key}' is an attribute of PyTorch modules and cannot name a "
                                                      "layer; choose another id")
        if not isinstance(child, Item):
            _check_attribute_names(graph, child)


def first_item(tree: Tree) -> Item:
    for child in tree.values():
        return child if isinstance(child, Item) else first_item(child)
    raise AssertionError("empty container")


def init_lines(tree: Tree, comment: Any) -> list[str]:
    """``__init__``'s assignments (without indentation); ``comment(item)`` gives a line's provenance comment."""
    lines: list[str] = []
    for key, child in tree.items():
        if isinstance(child, Item) and child.code.state:
            lines.extend(_state_lines(state_line("self", key, child), comment(child)))
            continue
        value = _ctor(child, 0, comment)
        guard = child.guard if isinstance(child, Item) else first_item(child).guard
        if guard:
            value[-1] += f" if {guard} else None"
        if attr_ok(key):
            value[0] = f"self.{key} = {value[0]}"
        else:
            value[0] = f"self.add_module({literal(key)}, {value[0]}"
            value[-1] += ")"
        if len(value) == 1:
            value = fit(value[0], 2 * len(INDENT))
        if isinstance(child, Item):
            value = [*with_comment(value[0], comment(child), 2 * len(INDENT)), *value[1:]]
        lines.extend(value)
        if not isinstance(child, Item):
            for line, item in _nested_state(child, key):
                lines.extend(_state_lines(line, comment(item)))
    return lines


def _state_lines(line: str, text: str) -> list[str]:
    split = fit(line, 2 * len(INDENT))
    return [*with_comment(split[0], text, 2 * len(INDENT)), *split[1:]]


def state_line(owner: str, key: str, item: Item) -> str:
    """Registration of a `parameter` or `buffer` layer on ``owner`` (a module expression): a tensor is not a module,
    so it cannot sit in an ``nn.ModuleDict``'s constructor; buffers persist, as torchvision's do, unless torchvision
    computes the tensor in forward (Swin's shift mask): then it stays out of the ``state_dict``."""
    if item.code.state == "parameter":
        return f"{owner}.register_parameter({literal(key)}, nn.Parameter({item.code.module}))"
    if item.code.state == "nonpersistent_buffer":
        return f"{owner}.register_buffer({literal(key)}, {item.code.module}, persistent=False)"
    return f"{owner}.register_buffer({literal(key)}, {item.code.module})"


def _nested_state(tree: Tree, path: str) -> list[tuple[str, Item]]:
    """The registrations of the `parameter`/`buffer` layers inside the container at ``path``, after it is built."""
    lines: list[tuple[str, Item]] = []
    for key, child in tree.items():
        if isinstance(child, Item):
            if child.code.state:
                lines.append((state_line(module_ref(path), key, child), child))
        else:
            lines.extend(_nested_state(child, f"{path}.{key}"))
    return lines


def _ctor(child: Item | Tree, depth: int, comment: Any) -> list[str]:
    """Constructor lines, indented relative to the first; ``depth``: nesting below ``__init__``'s body."""
    if isinstance(child, Item):
        return list(child.ctor) if child.ctor else [child.code.module or ""]
    if all(isinstance(sub, Item) and sub.code.state for sub in child.values()):
        return ["nn.ModuleDict()"]  # holds only tensors, registered once it is built
    lines = ["nn.ModuleDict({"]
    for key, sub in child.items():
        if isinstance(sub, Item) and sub.code.state:
            continue  # registered on the container once it is built
        value = _ctor(sub, depth + 1, comment)
        value[0] = f"{literal(key)}: {value[0]}"
        value[-1] += ","
        if len(value) == 1:
            value = fit(value[0], len(INDENT) * (3 + depth))
        if isinstance(sub, Item):
            value = [*with_comment(value[0], comment(sub), len(INDENT) * (3 + depth)), *value[1:]]
        lines.extend(INDENT + line for line in value)
    lines.append("})")
    return lines
