"""The per-layer summary as a table: rows a program can read (:func:`summarize`) and the formats people read.

One row per layer, or per folded scope at ``depth``; the columns are torchinfo's and more (kernel, output shape,
params, share of params, MACs, output memory, receptive field). ``batch`` scales MACs and memory (not params);
``dtype`` sets the bytes per element. :class:`Summary` renders as text, Markdown, CSV, LaTeX or HTML (and shows
itself as HTML in a notebook).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from archc.compiler import Compiled
from archc.emit.diagram.fold import folded_at, scope_caption
from archc.ir.graph import Graph, Node
from archc.ops.base import Cost
from archc.passes.costs import Totals
from archc.report.grid import Grid
from archc.report.precision import byte_size, element_bytes

MACS_COUNTED = "MACs count convolutions, linear layers and matrix products (attention's QK^T and AV included)"
"""What the MACs total holds, said under it: a transformer's attention matmuls are in it, element-wise work is not."""

COLUMNS: dict[str, str] = {
    "kernel": "Kernel",
    "shape": "Output shape",
    "params": "Params",
    "percent": "Param %",
    "macs": "MACs",
    "memory": "Output memory",
    "rf": "Receptive field",
}
"""Optional columns by the name ``--columns`` takes, with their headings; the layer path and op always come first."""

DEFAULT_COLUMNS = ("shape", "params", "macs", "rf")
_NUMERIC = {"params", "percent", "macs", "memory"}


@dataclass(frozen=True)
class SummaryRow:
    """One layer, or one folded scope standing for every layer inside it (``op`` is then the block's name)."""

    path: str
    op: str
    kernel: str
    output_shape: list[int] | None
    params: int
    macs: int
    output_bytes: int
    receptive_field: str


@dataclass
class Summary:
    """What ``archc summary`` shows, as data: rows, totals and the batch and dtype the figures are for."""

    name: str
    rows: list[SummaryRow]
    total: Totals
    batch: int | None
    dtype: str
    totals_lines: list[str] = field(default_factory=list)

    def shape_text(self, shape: list[int] | None) -> str:
        if shape is None:
            return "-"
        dims = [self.batch, *shape] if self.batch is not None else shape
        return "[" + ", ".join(str(d) for d in dims) + "]"

    def grid(self, columns: tuple[str, ...] = DEFAULT_COLUMNS) -> Grid:
        cells = {
            "kernel": lambda r: r.kernel or "-",
            "shape": lambda r: self.shape_text(r.output_shape),
            "params": lambda r: f"{r.params:,}",
            "percent": lambda r: f"{100 * r.params / self.total.params:.2f}%" if self.total.params else "-",
            "macs": lambda r: f"{r.macs:,}",
            "memory": lambda r: byte_size(r.output_bytes),
            "rf": lambda r: r.receptive_field,
        }
        header = ["Layer", "Op"] + [COLUMNS[c] for c in columns]
        rows = [[r.path, r.op] + [cells[c](r) for c in columns] for r in self.rows]
        numeric = {i + 2 for i, c in enumerate(columns) if c in _NUMERIC}
        return Grid(header, rows, numeric, self.totals_lines, caption=f"{self.name}: layers")

    def render(self, fmt: str = "text", columns: tuple[str, ...] = DEFAULT_COLUMNS) -> str:
        return self.grid(columns).render(fmt)

    def _repr_html_(self) -> str:
        return self.render("html", tuple(COLUMNS))


def summarize(c: Compiled, depth: int | None = None, batch: int | None = None, dtype: str = "fp32") -> Summary:
    """The summary of a compiled spec. ``depth`` folds scopes nested deeper than it (0: the model as one row);
    ``batch`` (None: per sample, shapes without the batch) multiplies MACs and memory; ``dtype`` sets the bytes of
    floating-point tensors (integer tensors, such as index buffers, keep their own)."""
    size = element_bytes(dtype)
    scale = batch or 1
    rows = [replace(r, macs=r.macs * scale, output_bytes=r.output_bytes * scale) for r in _rows(c, depth, size)]
    return Summary(c.graph.name, rows, c.costs.total, batch, dtype, totals_lines(c, batch, dtype))


def output_bytes(node: Node, element_size: int) -> int:
    """Bytes of one sample of ``node``'s output with floating-point elements of ``element_size`` bytes."""
    t = node.out_type
    if t is None:
        return 0
    return t.numel * element_size if t.dtype.startswith(("float", "bfloat")) else t.nbytes


def summary_text(c: Compiled, depth: int | None = None) -> str:
    """The plain table (no colour) with the default columns: what `archc summary` prints and what builds write."""
    return summarize(c, depth).render("text")


def kernel_text(node: Node) -> str:
    """The kernel of a windowed layer (``7x7``, ``3x1``), else empty."""
    k = getattr(node.params, "k", None)
    if k is None or node.out_type is None:
        return ""
    sizes = list(k) if isinstance(k, (list, tuple)) else [k] * max(1, node.out_type.rank - 1)
    return "x".join(str(s) for s in sizes)


def _rows(c: Compiled, depth: int | None, element_size: int) -> list[SummaryRow]:
    """Rows for one sample."""
    g = c.graph
    fields = c.receptive_fields()
    layers = [n for n in g.nodes() if not n.is_input]
    if depth == 0:
        outputs = [g.node(name) for name in g.outputs.values()]
        rf = fields.get(outputs[0].name) if len(outputs) == 1 else None
        shape = list(outputs[0].out_type.shape) if len(outputs) == 1 and outputs[0].out_type else None
        return [SummaryRow(g.name, "model", "", shape, c.costs.total.params, c.costs.total.macs,
                           sum(output_bytes(n, element_size) for n in layers), str(rf) if rf else "-")]
    rows: list[SummaryRow] = []
    folded_rows: dict[str, int] = {}  # folded scope -> its row's index
    folded_bytes: dict[str, int] = {}
    for n in layers:
        folded = None if depth is None else folded_at(g.scope_chain(n.scope), depth)  # no chain walk per layer
        if folded is None:
            cost: Cost = n.meta.get("cost", Cost())
            rf = fields.get(n.name)
            rows.append(SummaryRow(n.name, n.op, kernel_text(n), list(n.out_type.shape) if n.out_type else None,
                                   cost.params, cost.macs, output_bytes(n, element_size), str(rf) if rf else "-"))
            continue
        folded_bytes[folded] = folded_bytes.get(folded, 0) + output_bytes(n, element_size)
        if folded in folded_rows:
            continue
        folded_rows[folded] = len(rows)
        s = c.costs.by_scope.get(folded, Totals())
        last = _last_node(g, folded)
        rf = fields.get(last.name) if last else None
        rows.append(SummaryRow(folded, scope_caption(g.scopes[folded]), "",
                               list(last.out_type.shape) if last and last.out_type else None, s.params, s.macs, 0,
                               str(rf) if rf else "-"))
    for scope, at in folded_rows.items():
        rows[at] = replace(rows[at], output_bytes=folded_bytes[scope])
    return rows


def _last_node(g: Graph, scope: str) -> Node | None:
    last = None
    for n in g.nodes():
        if n.scope == scope or n.scope.startswith(scope + "."):
            last = n
    return last


def totals_lines(c: Compiled, batch: int | None = None, dtype: str = "fp32") -> list[str]:
    """The totals under the table; with a batch, MACs and activations are for the whole batch."""
    t = c.costs.total
    g = c.graph
    size = element_bytes(dtype)
    scale = batch or 1
    ins = ", ".join(f"{n} {g.node(n).out_type}" for n in g.inputs)
    outs = ", ".join(f"{k} {g.node(v).out_type}" for k, v in g.outputs.items())
    per = f"for a batch of {batch}" if batch is not None else "per sample"
    macs = t.macs * scale
    activations = sum(output_bytes(n, size) for n in g.nodes() if not n.is_input) * scale
    return [
        f"Model: {g.name}    inputs: {ins}    outputs: {outs}",
        f"Layers: {t.layers:,}",
        f"Parameters: {t.params:,} trainable, {t.buffers:,} in buffers "
        f"({_mib(size * (t.params + t.buffers))} as {dtype})",
        f"MACs: {macs:,} ({macs / 1e9:.2f} G; FLOPs = 2 x MACs = {2 * macs / 1e9:.2f} G)"
        + (f" {per}" if batch is not None else ""),
        MACS_COUNTED,
        f"Other element-wise ops: {t.elementwise * scale:,}",
        f"Activations: {_mib(activations)} {per} (all layer outputs, {dtype})",
    ]


def _mib(n: int) -> str:
    return f"{n / 2**20:.2f} MiB"
