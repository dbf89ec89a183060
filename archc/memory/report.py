"""A memory plan as text (the largest layers, then the totals) and as JSON (every figure in bytes, every layer)."""

from __future__ import annotations

import json
from typing import Any

from archc.memory.dtypes import size_text
from archc.memory.plan import OPTIMIZERS, MemoryPlan

TOP_LAYERS = 10
"""Layers listed in the text report."""


def plan_text(plan: MemoryPlan, budget: int | None = None, top: int = TOP_LAYERS) -> str:
    mode = f"training with {plan.optimizer}" if plan.optimizer else "inference"
    lines = [f"Model: {plan.model}    batch: {plan.batch}    dtype: {plan.dtype}    {mode}", ""]
    lines += _training_layers(plan, top) if plan.training else _inference_layers(plan, top)
    lines.append("")
    rows = [("Parameters", plan.weights.params, ""), ("Buffers", plan.weights.buffers, "")]
    if plan.training:
        saved = f"saved for backward: {size_text(plan.saved.per_sample)} per sample" + (
            f" + {size_text(plan.saved.fixed)}" if plan.saved.fixed else "")
        rows += [("Optimizer state", plan.optimizer_state, _optimizer_note(plan.optimizer or "sgd")),
                 ("Gradients", plan.gradients, "all of them, at the end of the backward pass"),
                 ("Activations", plan.activations, saved),
                 ("Step peak", plan.peak, f"gradients, saved tensors and transients at once, in the backward of "
                                          f"'{plan.peak_layer}'")]
    else:
        rows.append(("Activations", plan.activations, f"the peak, while '{plan.peak_layer}' runs"))
    rows.append(("Total", plan.total(), "parameters, buffers, optimizer state and the step peak" if plan.training
                 else ""))
    width = max(len(name) for name, _, _ in rows)
    for name, value, note in rows:
        lines.append(f"{name:<{width}}  {size_text(value):>11}  {value:>16,} B" + (f"  ({note})" if note else ""))
    if budget is not None:
        lines.append("")
        lines.append(fit_text(plan, budget))
    return "\n".join(lines) + "\n"


def fit_text(plan: MemoryPlan, budget: int) -> str:
    batch = plan.largest_batch(budget)
    what = "training" if plan.training else "inference"
    if batch == 0:
        return (f"Fit {size_text(budget)}: not even batch 1 ({what} at batch 1 needs {size_text(plan.total(1))}, "
                f"of which {size_text(plan.state_bytes)} whatever the batch)")
    return (f"Fit {size_text(budget)}: batch {batch:,} at most ({what} at batch {batch:,} needs "
            f"{size_text(plan.total(batch))}, at batch {batch + 1:,} {size_text(plan.total(batch + 1))})")


def _optimizer_note(optimizer: str) -> str:
    buffers = OPTIMIZERS[optimizer]
    if not buffers:
        return "plain SGD keeps none"
    per = "one buffer" if buffers == 1 else f"{buffers} buffers"
    counter = " and a step counter per tensor" if optimizer in ("adam", "adamw") else ""
    return f"{per} per parameter{counter}"


def _training_layers(plan: MemoryPlan, top: int) -> list[str]:
    layers = sorted(((plan.saved.layers[name].per_sample * plan.batch + plan.saved.layers[name].fixed, name)
                     for name in plan.layer_ops), key=lambda item: -item[0])
    rows = [(name, plan.layer_ops[name], ", ".join(plan.saved.layers[name].what), size_text(size))
            for size, name in layers[:top] if size]
    header = ("Layer", "Op", "Saves for backward", f"Bytes at batch {plan.batch}")
    return [f"Largest saved-for-backward layers ({len(rows)} of {len(plan.layer_ops)}):", *_table(header, rows, 3)]


def _alive(plan: MemoryPlan, name: str) -> int:
    return plan.inference.profile.alive(name, plan.batch)


def _inference_layers(plan: MemoryPlan, top: int) -> list[str]:
    order = sorted(plan.inference.live, key=lambda name: -_alive(plan, name))[:top]
    rows = [(name, plan.layer_ops[name], size_text(plan.inference.allocated[name] * plan.batch),
             size_text(_alive(plan, name))) for name in order]
    header = ("Layer", "Op", "Output", "Alive while it runs")
    return [f"Layers at the highest memory ({len(rows)} of {len(plan.layer_ops)}), batch {plan.batch}:",
            *_table(header, rows, 2)]


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]], sizes_from: int) -> list[str]:
    """Columns from ``sizes_from`` on hold sizes, aligned right."""
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(c.rjust(w) if i >= sizes_from else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

    return [line(header), "  ".join("-" * w for w in widths), *(line(row) for row in rows)]


def plan_json(plan: MemoryPlan, budget: int | None = None) -> dict[str, Any]:
    """Every figure in bytes; ``layers`` lists each computed layer in schedule order."""
    out: dict[str, Any] = {
        "model": plan.model, "batch": plan.batch, "dtype": plan.dtype,
        "mode": "train" if plan.training else "inference", "optimizer": plan.optimizer,
        "bytes": {"parameters": plan.weights.params, "buffers": plan.weights.buffers, "gradients": plan.gradients,
                  "optimizer_state": plan.optimizer_state, "activations": plan.activations,
                  "peak": plan.peak, "total": plan.total()},
        "peak_layer": plan.peak_layer,
        "saved_for_backward": {"per_sample": plan.saved.per_sample, "fixed": plan.saved.fixed},
        "inference_peak": {"per_sample": plan.inference.peak, "inputs_per_sample": plan.inference.inputs},
        "layers": [{"name": name, "op": op,
                    "saved_per_sample": plan.saved.layers[name].per_sample,
                    "saved_fixed": plan.saved.layers[name].fixed,
                    "saves": plan.saved.layers[name].what,
                    "output_per_sample": plan.inference.allocated[name],
                    "live_per_sample": plan.inference.live[name],
                    "scratch_fixed": plan.inference.fixed[name]} for name, op in plan.layer_ops.items()],
    }
    if budget is not None:
        out["fit"] = {"budget": budget, "batch": plan.largest_batch(budget)}
    return out


def plan_json_text(plan: MemoryPlan, budget: int | None = None) -> str:
    return json.dumps(plan_json(plan, budget), indent=1) + "\n"
