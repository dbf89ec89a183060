"""PyTorch source emission: a typed graph becomes readable, standalone Python defining one ``nn.Module`` subclass.

Modelled on torch.fx's code generator: ``__init__`` builds the module tree and ``forward`` is straight-line code, one
statement per layer in topological order, with no interpretation of the graph at call time. A layer whose op has a
module constructor (``Op.torch(...).module``) lives at its layer path; intermediate path components are
``nn.ModuleDict`` containers, so ``state_dict`` keys are the layer paths (``layer1.0.conv1.weight``: torchvision's).

Variable names: a value takes over the name of an input that dies at its statement (the oldest such name, so the main
trunk keeps ``x``); otherwise it is called ``x`` when that name is free, else by the shortest tail of its layer path
that no live value uses (``conv1``, then ``layer1_0_conv1``). Values that die without being taken over are released
with ``del``, as torch.fx frees dead values, so peak memory is what the data flow needs. A layer whose forward is its
input unchanged (``identity``) shares its input's variable. Layers with no path to an output are not computed.

Text from the spec reaches the source in three forms only: layer paths and input names (restricted to
``[A-Za-z0-9_.]`` by the spec schema, still quoted with ``repr`` where they are strings), numbers inside module
constructors, and free text (docs, labels, param values) in docstrings and comments, escaped so it cannot end them.
"""

from __future__ import annotations

import builtins
import keyword
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import networkx as nx

from archc import __version__
from archc.compiler import Compiled
from archc.errors import Diagnostic, SpecError
from archc.ir.graph import Graph, Node
from archc.lower.reserved import RESERVED_MODULE_NAMES
from archc.ops.base import TorchCode
from archc.ops.registry import get_op, known_op

INDENT = "    "
RECORD = "_archc_record"
"""The shape-recording callback taken by ``forward`` in trace mode."""
_CHAIN = "x"
# names a variable must not take: the module's own, keywords, and builtins an op's forward expression may call
_RESERVED = frozenset({"self", "torch", "nn", "F", RECORD, *keyword.kwlist, *keyword.softkwlist, *dir(builtins)})
_SAFE_LITERAL = re.compile(r"[A-Za-z0-9_.]*")
_USES_FUNCTIONAL = re.compile(r"(?<![\w.])F\.")
_LINE = 120
_DOC_WIDTH = 116


class TorchEmitError(SpecError):
    """A layer path PyTorch cannot hold: a located diagnostic and exit code 1, like any invalid spec."""

    def __init__(self, graph: Graph, node: Node, code: str, message: str) -> None:
        super().__init__([Diagnostic(code, message, graph.file, node.pos, node.name)])


# --- entry ------------------------------------------------------------------------------------------------------------
def torch_source(compiled: Compiled, class_name: str | None = None, *, trace: bool = False) -> str:
    """Standalone Python source of an ``nn.Module`` for ``compiled``.

    With ``trace=True``, ``forward`` takes a keyword argument ``_archc_record(path, tensor)`` and calls it after every
    layer (and for every input); used by tests to compare runtime shapes with the inferred ones.
    """
    graph = compiled.graph
    name = class_name if class_name is not None else default_class_name(graph.name)
    if not name.isidentifier() or name in _RESERVED:
        raise ValueError(f"class name {name!r} is not a usable Python identifier")
    codes = _torch_codes(graph)
    tree = _module_tree(graph, codes)
    body = [
        f"class {name}(nn.Module):",
        f'{INDENT}"""{_one_line(graph.name)}: {len(graph) - len(graph.inputs)} layers, '
        f'{compiled.costs.total.params:,} parameters."""',
        "",
        f"{INDENT}def __init__(self) -> None:",
        f"{INDENT * 2}super().__init__()",
        *_init_lines(tree),
        "",
        *_Forward(graph, codes, trace).lines(),
    ]
    text = "\n".join(body)
    imports = ["import torch"]
    if any(_USES_FUNCTIONAL.search(code.call) or _USES_FUNCTIONAL.search(code.module or "") for code in codes.values()):
        imports.append("import torch.nn.functional as F")
    imports.append("from torch import nn")
    return "\n".join([_header(compiled, name), "", *imports, "", "", text]) + "\n"


def default_class_name(spec_name: str) -> str:
    """CamelCase of the spec name: ``resnet50`` -> ``Resnet50``, ``vgg16_bn`` -> ``Vgg16Bn``."""
    parts = [p for p in re.split(r"[^A-Za-z0-9]+", spec_name) if p]
    camel = "".join(p[:1].upper() + p[1:] for p in parts)
    if not camel or not camel[0].isalpha():
        camel = "Model" + camel
    return camel + "Model" if camel in _RESERVED else camel


def _torch_codes(graph: Graph) -> dict[str, TorchCode]:
    codes: dict[str, TorchCode] = {}
    for node in graph.nodes():
        if node.is_input:
            continue
        op = get_op(node.op)
        assert op is not None and node.out_type is not None, f"{node.name}: untyped or unknown op reached the emitter"
        in_types = [t for t in (n.out_type for n in graph.inputs_of(node.name)) if t is not None]
        codes[node.name] = op.torch(node.params, in_types, node.out_type)
    return codes


# --- the module tree --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Leaf:
    node: Node
    ctor: str


Tree = dict[str, Any]
"""Path component -> :class:`_Leaf` or a nested ``Tree`` (an ``nn.ModuleDict``)."""


def _module_tree(graph: Graph, codes: dict[str, TorchCode]) -> Tree:
    root: Tree = {}
    owners: dict[int, Node] = {}  # id(container) -> the first node placed inside it, for error messages
    for node in graph.nodes():
        code = codes.get(node.name)
        if code is None or code.module is None:
            continue
        *parents, last = node.name.split(".")
        level = root
        for part in parents:
            child = level.setdefault(part, {})
            if isinstance(child, _Leaf):
                raise _clash(graph, node, child.node)
            owners.setdefault(id(child), node)
            level = child
        if last in level:  # a container made for earlier layers inside this one's path
            raise _clash(graph, owners.get(id(level[last]), node), node)
        level[last] = _Leaf(node, code.module)
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
            node = child.node if isinstance(child, _Leaf) else _first_leaf(child).node
            raise TorchEmitError(graph, node, "E206", f"'{key}' is an attribute of PyTorch modules and cannot name a "
                                                      "layer; choose another id")
        if not isinstance(child, _Leaf):
            _check_attribute_names(graph, child)


def _first_leaf(tree: Tree) -> _Leaf:
    for child in tree.values():
        return child if isinstance(child, _Leaf) else _first_leaf(child)
    raise AssertionError("empty container")


def _init_lines(tree: Tree) -> list[str]:
    lines: list[str] = []
    pad = INDENT * 2
    for key, child in tree.items():
        if isinstance(child, _Leaf):
            value = [child.ctor]
        else:
            value = ["nn.ModuleDict({", *_dict_lines(child, 1), "})"]
        if _attr_ok(key):
            value[0] = f"self.{key} = {value[0]}"
        else:
            value[0] = f"self.add_module({_literal(key)}, {value[0]}"
            value[-1] += ")"
        lines.extend(pad + line for line in value)
    return lines


def _dict_lines(tree: Tree, depth: int) -> list[str]:
    pad = INDENT * depth
    lines: list[str] = []
    for key, child in tree.items():
        if isinstance(child, _Leaf):
            lines.append(f"{pad}{_literal(key)}: {child.ctor},")
        else:
            lines.append(f"{pad}{_literal(key)}: nn.ModuleDict({{")
            lines.extend(_dict_lines(child, depth + 1))
            lines.append(f"{pad}}}),")
    return lines


def module_ref(path: str) -> str:
    """Python expression for the module at ``path`` inside ``self``: ``self.layer1["0"].conv1``."""
    head, *rest = path.split(".")
    ref = f"self.{head}" if _attr_ok(head) else f"getattr(self, {_literal(head)})"
    for part in rest:
        ref += f".{part}" if _attr_ok(part) else f"[{_literal(part)}]"
    return ref


def _attr_ok(name: str) -> bool:
    # `self.__x` inside a class body is name-mangled to `self._Model__x`: such names go through strings
    return name.isidentifier() and not keyword.iskeyword(name) and not name.startswith("__")


def _literal(text: str) -> str:
    """A string literal, double-quoted when that needs no escaping, else ``repr``."""
    return f'"{text}"' if _SAFE_LITERAL.fullmatch(text) else repr(text)


# --- forward ----------------------------------------------------------------------------------------------------------
class _Forward:
    """Writes ``forward``: one statement per computed layer, with the variable-name allocator."""

    def __init__(self, graph: Graph, codes: dict[str, TorchCode], trace: bool) -> None:
        self.graph = graph
        self.codes = codes
        self.trace = trace
        self.var: dict[str, str] = {}
        """Node (an alias root) -> the variable holding its value."""
        self.root: dict[str, str] = {}
        """Node -> the node whose value it is (itself unless it is an alias)."""
        self.aliases: set[str] = set()
        self.live: set[str] = set()
        self.age: dict[str, int] = {}
        """Variable name -> when its current value stream began (the oldest dying input's name is taken over)."""
        self.clock = 0
        self.issued: set[str] = set()
        self.args = self._arg_names()

    def _arg_names(self) -> list[str]:
        args: list[str] = []
        for name in self.graph.inputs:
            base = name if name.isidentifier() else f"input_{name}"
            base = base + "_" if base in _RESERVED else base
            arg = self._unique(base)
            self.issued.add(arg)
            self.var[name] = arg
            args.append(arg)
        return args

    def _unique(self, base: str) -> str:
        candidate, k = base, 1
        while candidate in self.issued or candidate in self.live or candidate in _RESERVED:
            k += 1
            candidate = f"{base}_{k}"
        return candidate

    def _fresh_name(self, node: Node) -> str:
        """``x`` when free, else the shortest tail of the layer path that is no live variable's name."""
        for name in (_CHAIN, *_path_names(node)):
            if name not in self.live and name not in self.args and name not in _RESERVED:
                return name
        name = self._unique(f"{node.op}_{node.name.replace('.', '_')}")
        self.issued.add(name)
        return name

    def lines(self) -> list[str]:
        graph = self.graph
        computed = self._computed()
        order = [n for n in graph.topological() if not n.is_input and n.name in computed]
        self._find_aliases(order)
        last_use = self._last_uses(order)
        pad = INDENT * 2
        out = [f"{INDENT}def forward({self._signature()}) -> {self._return_type()}:", *self._docstring(pad)]
        skipped = len(graph) - len(graph.inputs) - len(order)
        if skipped:
            out.append(f"{pad}# {skipped} layer{'s' if skipped != 1 else ''} with no path to an output "
                       "(not computed; their modules exist for the state_dict)")
        if self.trace:
            out.extend(f"{pad}{RECORD}({_literal(n)}, {self.var[n]})" for n in graph.inputs)
        seen_scopes: set[str] = set()
        start = len(out)
        for i, node in enumerate(order):
            statement = self._statement(node, i, last_use)
            if statement:
                body = [*self._scope_comments(node, seen_scopes), *statement]
                out.extend(pad + line if line else "" for line in body)
        if out[start:start + 1] == [""]:  # no blank line right under the docstring
            del out[start]
        out.extend(pad + line for line in self._return())
        return out

    def _computed(self) -> set[str]:
        if self.trace:
            return set(self.graph.nx.nodes)
        needed = set(self.graph.outputs.values())
        for name in list(needed):
            needed |= nx.ancestors(self.graph.nx, name)
        return needed

    def _find_aliases(self, order: list[Node]) -> None:
        """Layers whose forward is their input unchanged (identity, an empty squeeze) share its variable."""
        self.root = {name: name for name in self.graph.inputs}
        for node in order:
            code = self.codes[node.name]
            if code.module is None and code.call == "{0}":
                self.aliases.add(node.name)
                self.root[node.name] = self.root[self.graph.input_names(node.name)[0]]
            else:
                self.root[node.name] = node.name

    def _last_uses(self, order: list[Node]) -> dict[str, float]:
        """Value (alias root) -> index of the last statement reading it; outputs live to the end."""
        last: dict[str, float] = {}
        for i, node in enumerate(order):
            if node.name in self.aliases:
                if self.trace:  # its record reads the shared value here
                    last[self.root[node.name]] = i
                continue
            last.setdefault(node.name, i)  # unused (trace mode only): dead right after its own statement
            for src in self.graph.input_names(node.name):
                last[self.root[src]] = i
        for src in self.graph.outputs.values():
            last[self.root[src]] = float("inf")
        return last

    def _signature(self) -> str:
        params = ["self", *(f"{a}: torch.Tensor" for a in self.args)]
        if self.trace:
            params += ["*", RECORD]
        return ", ".join(params)

    def _return_type(self) -> str:
        n = len(self.graph.outputs)
        return "torch.Tensor" if n == 1 else f"tuple[{', '.join(['torch.Tensor'] * n)}]"

    def _docstring(self, pad: str) -> list[str]:
        g = self.graph
        ins = ", ".join(f"{a} {_batched(g.node(n))}" for a, n in zip(self.args, g.inputs, strict=True))
        outs = ", ".join(f"{name} {_batched(g.node(src))}" for name, src in g.outputs.items())
        one = f'{pad}"""Inputs {ins}; returns {outs}."""'
        if len(one) <= _LINE:
            return [one]
        width = _LINE - len(pad)
        return [f'{pad}"""Inputs and outputs (N is the batch).', "",
                *(pad + line for line in textwrap.wrap(f"Inputs: {ins}.", width)),
                *(pad + line for line in textwrap.wrap(f"Returns: {outs}.", width)), f'{pad}"""']

    def _scope_comments(self, node: Node, seen: set[str]) -> list[str]:
        lines = []
        for path in self.graph.scope_chain(node.scope):
            if path in seen:
                continue
            seen.add(path)
            scope = self.graph.scopes[path]
            label = scope.label if scope.label and scope.label != path.rsplit(".", 1)[-1] else ""
            text = f"# {path} ({scope.kind})" + (f": {_one_line(label)[:80]}" if label else "")
            lines.extend(["", text] if "." not in path else [text])
        return lines

    def _statement(self, node: Node, i: int, last_use: dict[str, float]) -> list[str]:
        sources = [self.root[s] for s in self.graph.input_names(node.name)]
        dying = [s for s in dict.fromkeys(sources) if last_use[s] == i and not self.graph.node(s).is_input]
        if node.name in self.aliases:
            lines = [f"{RECORD}({_literal(node.name)}, {self.var[sources[0]]})"] if self.trace else []
            freed = [self.var[s] for s in dying]
        else:
            code = self.codes[node.name]
            form = code.inplace if code.inplace is not None and self._may_overwrite(sources, dying) else code.call
            call = form.format(*(self.var[s] for s in sources), m=module_ref(node.name))
            if dying:
                target = min((self.var[s] for s in dying), key=lambda v: self.age[v])
            else:
                target = self._fresh_name(node)
                self.clock += 1
                self.age[target] = self.clock
                self.live.add(target)
            self.var[node.name] = target
            lines = [f"{target} = {call}"]
            if self.trace:
                lines.append(f"{RECORD}({_literal(node.name)}, {target})")
            freed = [self.var[s] for s in dying if self.var[s] != target]
            if last_use[node.name] == i:  # computed for the trace only
                freed.append(target)
        for name in freed:
            self.live.discard(name)
        if freed:
            lines.append(f"del {', '.join(freed)}")
        return lines

    def _may_overwrite(self, sources: list[str], dying: list[str]) -> bool:
        """Whether a layer may use its in-place form: its first input is read by nothing after it (not an output, not
        a model input, not its own other inputs) and comes from an op whose output autograd does not keep (traces keep
        every value)."""
        if self.trace or sources[0] not in dying or sources[0] in sources[1:]:
            return False
        return known_op(self.graph.node(sources[0]).op).output_overwritable

    def _return(self) -> list[str]:
        values = [self.var[self.root[src]] for src in self.graph.outputs.values()]
        if len(values) == 1:
            return [f"return {values[0]}"]
        return [f"# outputs in the spec's order: {', '.join(self.graph.outputs)}", f"return {', '.join(values)}"]


def _path_names(node: Node) -> list[str]:
    """Candidate variable names from the layer path, shortest first: ``conv1``, ``0_conv1`` (skipped: not an
    identifier), ``layer1_0_conv1``; anonymous steps (numeric names) say their op: ``relu``, ``relu_2``, ..."""
    parts = node.name.split(".")
    tails = ["_".join(parts[-k:]) for k in range(1, len(parts) + 1)]
    if parts[-1].isdigit():
        tails = [node.op, *(f"{node.op}_{t}" for t in tails)]
    return [t for t in tails if t.isidentifier()]


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
        lines += [*_wrap(g.doc), ""]
    if compiled.params:
        lines += _wrap("Params: " + ", ".join(f"{k}={v!r}" for k, v in compiled.params.items()))
    outputs = ", ".join(f"{name} {_batched(g.node(src))} from {src}" for name, src in g.outputs.items())
    lines += [
        *_wrap("Inputs: " + ", ".join(f"{n} {_batched(g.node(n))}" for n in g.inputs)),
        *_wrap("Outputs: " + outputs),
        f"Size: {len(g) - len(g.inputs)} layers, {total.params:,} parameters, {total.macs:,} MACs per sample",
        "",
        f"Generated by archc {__version__} from {Path(g.file).name}; edit the spec and regenerate rather than this "
        "file.",
    ]
    return '"""' + "\n".join(_doc_escape(line) for line in lines) + '\n"""'


def _wrap(text: str) -> list[str]:
    lines: list[str] = []
    for paragraph in text.strip().splitlines():
        wrapped = textwrap.wrap(paragraph, _DOC_WIDTH, break_long_words=False, break_on_hyphens=False)
        lines.extend(wrapped or [""])
    return lines


def _doc_escape(text: str) -> str:
    """Text inside a triple-quoted docstring: backslashes, control characters and triple quotes escaped."""
    out = []
    for ch in text.rstrip():
        if ch == "\\":
            out.append("\\\\")
        elif not ch.isprintable():
            out.append(ch.encode("unicode_escape").decode("ascii"))
        else:
            out.append(ch)
    return "".join(out).replace('"""', '\\"\\"\\"')


def _one_line(text: str) -> str:
    """Text for a comment or a one-line docstring: control characters (newlines) and quotes cannot escape it."""
    return _doc_escape(text).replace('"', "'")
