"""PyTorch source emission: a typed graph becomes readable, standalone Python, written the way a person would.

Modelled on torch.fx's code generator (``__init__`` builds the module tree, ``forward`` is straight-line code with no
interpretation of the graph at call time), and on torchvision's layout: one ``nn.Module`` class per block definition
(:mod:`.outline`, :mod:`.unify`), whose constructor takes the block's arguments, a stage as an ``nn.Sequential`` of
block instances (:mod:`.sequential`), the model's constructor taking the spec's params (:mod:`.params`). Module paths
are the layer paths, so ``state_dict`` keys are the spec's (``layer1.0.conv1.weight``: torchvision's). Each
statement carries the spec line it comes from as a comment.

Text from the spec reaches the source in three forms only: layer paths and input names (input names restricted to
``[A-Za-z0-9_]``; a layer name may hold any character but ``.``, reached through ``getattr``/``add_module`` and
quoted with ``repr`` where it is not an identifier), numbers inside module
constructors, and free text (docs, labels, param values) in docstrings and comments, escaped so it cannot end them.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any

from archc import __version__
from archc.compiler import Compiled
from archc.errors import Pos
from archc.ir.graph import Node
from archc.ops.base import TorchCode
from archc.ops.registry import get_op
from archc.text_escape import python_comment, python_docstring

from .body import Body, Item, TorchEmitError, graph_items, init_lines, module_tree
from .forward import Forward
from .outline import Outliner
from .params import ModelParams, model_params
from .text import INDENT, LINE, RESERVED, attr_ok, camel_case, literal, module_ref, with_comment, wrap
from .unify import NO_DEFAULT, ClassPlan

__all__ = ["TorchEmitError", "default_class_name", "module_ref", "torch_source"]

_USES_FUNCTIONAL = re.compile(r"(?<![\w.])F\.")


def torch_source(compiled: Compiled, class_name: str | None = None, *, trace: bool = False,
                 follow_params: bool = True) -> str:
    """Standalone Python source of an ``nn.Module`` for ``compiled``.

    With ``follow_params=False`` the model's constructor takes no params (the spec's values are fixed in it): that
    skips the extra compiles which find the constructor numbers a param reaches (:mod:`.params`), for a module built
    in memory from a spec already compiled with its params.

    With ``trace=True``, ``forward`` takes a keyword argument ``_archc_record(path, tensor)`` and calls it after every
    layer (and for every input); used by tests to compare runtime shapes with the inferred ones. A traced module is
    unrolled (one statement per layer, no block classes) so that every layer can be recorded.
    """
    graph = compiled.graph
    name = class_name if class_name is not None else default_class_name(graph.name)
    if not name.isidentifier() or name in RESERVED:
        raise ValueError(f"class name {name!r} is not a usable Python identifier")
    codes = _torch_codes(compiled)
    plans: list[ClassPlan] = []
    outputs = dict(graph.outputs)
    if trace:
        items = graph_items(graph, codes)
    else:
        outliner = Outliner(compiled, codes, name)
        items = outliner.model_items()
        plans = outliner.plans
        outputs = outliner.outputs
    params = model_params(compiled, items) if follow_params and not trace else ModelParams()
    writer = _Writer(compiled, trace)
    texts = [writer.block_class(plan) for plan in plans]
    texts.append(writer.model_class(name, items, outputs, params))
    every = [item.code for item in items] + [item.code for plan in plans for item in plan.items]
    imports = []
    if any(item.ctor and item.ctor[0].startswith("nn.Sequential(OrderedDict") for item in items) or any(
            item.ctor and item.ctor[0].startswith("nn.Sequential(OrderedDict") for p in plans for item in p.items):
        imports += ["from collections import OrderedDict", ""]
    imports.append("import torch")
    if any(_USES_FUNCTIONAL.search(" ".join([code.call, code.module or "", *(e for _, e in code.steps)]))
           for code in every):
        imports.append("import torch.nn.functional as F")
    imports.append("from torch import nn")
    text = "\n\n\n".join(texts)
    return "\n".join([_header(compiled, name), "", *imports, "", "", text]) + "\n"


def default_class_name(spec_name: str) -> str:
    """CamelCase of the spec name: ``resnet50`` -> ``Resnet50``, ``vgg16_bn`` -> ``Vgg16Bn``."""
    return camel_case(spec_name)


def _torch_codes(compiled: Compiled) -> dict[str, TorchCode]:
    """Each layer's PyTorch code, dead layers included (their modules are built), from the schedule's input types."""
    in_types = compiled.schedule().in_types()
    codes: dict[str, TorchCode] = {}
    for node in compiled.graph.nodes():
        if node.is_input:
            continue
        op = get_op(node.op)
        assert op is not None and node.out_type is not None, f"{node.name}: untyped or unknown op reached the emitter"
        codes[node.name] = op.torch(node.params, in_types[node.name], node.out_type)
    return codes


class _Writer:
    """Class texts: the block classes and the model class."""

    def __init__(self, compiled: Compiled, trace: bool) -> None:
        self.compiled = compiled
        self.graph = compiled.graph
        self.trace = trace
        self.file = python_comment(Path(self.graph.file).name)  # goes into comments and one-line docstrings

    def comment(self, item: Item) -> str:
        return self._at(item.pos or item.node.pos)

    def _at(self, pos: Pos) -> str:
        """``resnet50.yaml:17``; a library or included block's layer names its own file (the file name only)."""
        # a spec given as text has no file a reader could open: its positions would be noise
        if not pos.line or self.trace or self.graph.file.startswith("<"):
            return ""
        return f"{python_comment(Path(pos.file).name) if pos.file else self.file}:{pos.line}"

    def block_class(self, plan: ClassPlan) -> str:
        spec = self.compiled.header.blocks[plan.block]
        at = self._at(self.compiled.block_pos(plan.block))
        doc = python_comment(spec.doc.strip()) if spec.doc.strip() else f"The block '{plan.block}'"
        where = f" ({at})" if at else ""
        docline = f'{INDENT}"""{doc.rstrip(".")}{where}."""'
        if len(docline) > LINE:
            docline = f'{INDENT}"""{plan.block}{where}: {doc}'[: LINE - 6].rstrip() + '..."""'
        body = Body([("<in>", "x")], plan.items, {"out": plan.output}, inputs_are_arguments=False,
                    guards=plan.guards)
        types = {name: _annotation([v[name] for v in plan.values.values()]) for name, _ in plan.params}
        params = [f"{n}: {types[n]}" + ("" if d is NO_DEFAULT else f" = {d!r}") for n, d in plan.params]
        return "\n".join([
            f"class {plan.name}(nn.Module):",
            docline,
            "",
            *_def("__init__", params, "None"),
            f"{INDENT * 2}super().__init__()",
            *_indent(init_lines(module_tree(self.graph, plan.items), self.comment), 2),
            "",
            *self._forward(body, "torch.Tensor"),
        ])

    def model_class(self, name: str, items: list[Item], outputs: dict[str, str], params: ModelParams) -> str:
        graph = self.graph
        body = Body([(key, key) for key in graph.inputs], items, outputs)
        head = [f"class {name}(nn.Module):",
                f'{INDENT}"""{python_comment(graph.name)}: {len(graph) - len(graph.inputs)} layers, '
                f'{self.compiled.costs.total.params:,} parameters."""', ""]
        n = len(graph.outputs)
        returns = "torch.Tensor" if n == 1 else f"tuple[{', '.join(['torch.Tensor'] * n)}]"
        return "\n".join([
            *head,
            *_def("__init__", params.signature, "None"),
            f"{INDENT * 2}super().__init__()",
            *_indent(params.checks, 2),
            *_indent(init_lines(module_tree(graph, items), self.comment), 2),
            *_indent(self._ties(), 2),
            "",
            *self._forward(body, returns),
        ])

    def _ties(self) -> list[str]:
        """`tie:` as PyTorch ties modules: the owner's parameter assigned to the tied layer, one tensor under both
        state_dict keys (paths from the model, through ``get_submodule`` where a part is no attribute name)."""
        lines = []
        for node in self.graph.nodes():
            owner = getattr(node.params, "tie", None)
            if owner:
                line = f"{_submodule(node.name)}.weight = {_submodule(owner)}.weight"
                where = self._at(node.pos)
                lines.extend(with_comment(line, f"tied: one tensor, two state_dict keys{'; ' + where if where else ''}",
                                          2 * len(INDENT)))
        return lines

    def _forward(self, body: Body, returns: str) -> list[str]:
        writer = Forward(body, self.trace, self.comment, self._sections if body.inputs_are_arguments else None)
        statements, skipped = writer.statements()
        pad = INDENT * 2
        lines = [*_def("forward", writer.signature().split(", ")[1:], returns)]
        if body.inputs_are_arguments:
            lines += self._docstring(writer.args, pad)
        if skipped:
            lines.append(f"{pad}# {skipped} layer{'s' if skipped != 1 else ''} with no path to an output "
                         "(not computed; their modules exist for the state_dict)")
        lines += [pad + line if line else "" for line in statements]
        return lines

    def _sections(self, item: Item, seen: set[str]) -> list[str]:
        """A comment where the model's forward enters a scope (group, stage, unrolled block instance)."""
        lines = []
        for path in self.graph.scope_chain(item.scope):
            if path in seen:
                continue
            seen.add(path)
            scope = self.graph.scopes[path]
            label = scope.label if scope.label and scope.label != path.rsplit(".", 1)[-1] else ""
            text = f"# {python_comment(path)} ({scope.kind})" + (f": {python_comment(label)[:80]}" if label else "")
            lines.extend(["", text] if "." not in path else [text])
        return lines

    def _docstring(self, args: list[str], pad: str) -> list[str]:
        g = self.graph
        ins = ", ".join(f"{a} {_batched(g.node(n))}" for a, n in zip(args, g.inputs, strict=True))
        outs = ", ".join(f"{name} {_batched(g.node(src))}" for name, src in g.outputs.items())
        one = f'{pad}"""Inputs {ins}; returns {outs}."""'
        if len(one) <= LINE:
            return [one]
        width = LINE - len(pad)
        return [f'{pad}"""Inputs and outputs (N is the batch).', "",
                *(pad + line for line in textwrap.wrap(f"Inputs: {ins}.", width)),
                *(pad + line for line in textwrap.wrap(f"Returns: {outs}.", width)), f'{pad}"""']


def _def(name: str, params: list[str], returns: str) -> list[str]:
    one = f"{INDENT}def {name}({', '.join(['self', *params])}) -> {returns}:"
    if len(one) <= LINE:
        return [one]
    return [f"{INDENT}def {name}(", *(f"{INDENT * 2}{p}," for p in ["self", *params]), f"{INDENT}) -> {returns}:"]


def _submodule(path: str) -> str:
    if all(attr_ok(part) for part in path.split(".")):
        return module_ref(path)
    return f"self.get_submodule({literal(path)})"


def _indent(lines: list[str], depth: int) -> list[str]:
    return [INDENT * depth + line if line else "" for line in lines]


def _annotation(values: list[Any]) -> str:
    names = []
    for value in values:
        if isinstance(value, bool):
            text = "bool"
        elif isinstance(value, tuple):
            text = "tuple[int, ...]" if all(isinstance(v, int) for v in value) else "tuple"
        else:
            text = type(value).__name__
        if text not in names:
            names.append(text)
    if names == ["int", "float"] or names == ["float", "int"]:
        return "float"
    return " | ".join(names) or "object"


def _batched(node: Node) -> str:
    t = node.out_type
    assert t is not None
    return "[" + ", ".join(["N", *map(str, t.shape)]) + "]" + ("" if t.dtype == "float32" else f" {t.dtype}")


# --- text -------------------------------------------------------------------------------------------------------------
def _header(compiled: Compiled, class_name: str) -> str:
    g = compiled.graph
    total = compiled.costs.total
    lines = [f"{g.name}: the PyTorch module {class_name}.", ""]
    if g.doc.strip():
        lines += [*wrap(g.doc), ""]
    if compiled.params:
        lines += wrap("Params: " + ", ".join(f"{k}={v!r}" for k, v in compiled.params.items()))
    outputs = ", ".join(f"{name} {_batched(g.node(src))} from {src}" for name, src in g.outputs.items())
    lines += [
        *wrap("Inputs: " + ", ".join(f"{n} {_batched(g.node(n))}" for n in g.inputs)),
        *wrap("Outputs: " + outputs),
        f"Size: {len(g) - len(g.inputs)} layers, {total.params:,} parameters, {total.macs:,} MACs per sample",
        "",
        f"Generated by archc {__version__} from {Path(g.file).name}; edit the spec and regenerate rather than this "
        "file.",
    ]
    return '"""' + "\n".join(python_docstring(line) for line in lines) + '\n"""'
