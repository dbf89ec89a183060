"""The op contract: every registered op, in at least three configurations, through a one-op spec.

For each case: the inferred shape is the hand-written one and PyTorch's; archc's parameter count is the PyTorch
module's (LeNet's partially connected `conv_table` counts connected weights only, by design); the layer's MACs equal
a hand formula written next to the case; and the ONNX export passes the checker and ONNX shape inference, runs in
onnxruntime and agrees with PyTorch to 1e-4 of the output's magnitude at batch 1 and batch 2. The op under test is
the step with `id: t`; other steps only feed it.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from archc.compiler import Compiled, compile_text
from archc.errors import UsageError
from archc.ops.registry import all_ops

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

from op_cases import CASES, Case, randomise  # noqa: E402

from archc.emit.onnx_export import export_onnx  # noqa: E402
from archc.emit.onnx_verify import check_model, verify_model  # noqa: E402
from archc.emit.torch_module import build_module  # noqa: E402

RTOL = 1e-4
ATOL = 1e-6


def feeds(compiled: Compiled, batch: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for name in compiled.graph.inputs:
        t = compiled.graph.node(name).out_type
        shape = (batch, *t.shape)
        if t.dtype.startswith("int"):
            out[name] = rng.integers(0, 10, shape).astype(t.dtype)
        else:
            out[name] = rng.standard_normal(shape).astype(np.float32)
    return out


def close(got: np.ndarray, want: np.ndarray) -> tuple[bool, float]:
    scale = float(np.abs(want).max()) if want.size else 0.0
    err = float(np.abs(got.astype(np.float64) - want.astype(np.float64)).max()) if want.size else 0.0
    return got.shape == want.shape and err <= ATOL + RTOL * scale, err / scale if scale else err


@pytest.mark.parametrize("case", CASES, ids=[f"{c.op}-{i}" for i, c in enumerate(CASES)])
def test_op_contract(case: Case) -> None:
    compiled = compile_text(case.text, f"<{case.op}>")
    node = compiled.graph.node("t")
    assert node.op == case.op
    assert node.out_type.shape == case.shape, f"inferred {node.out_type.shape}, expected {case.shape}"

    module = build_module(compiled).eval()
    seed = len(case.label)
    randomise(module, seed)
    torch_params = {name: p.numel() for name, p in module.named_parameters()}
    mine = sum(n for name, n in torch_params.items() if name == "t" or name.startswith("t."))
    cost = node.meta["cost"]
    assert cost.params == (case.params if case.params is not None else mine)
    if case.params is None:
        assert compiled.costs.total.params == sum(torch_params.values())
    assert cost.macs == case.macs

    model = export_onnx(compiled, module.state_dict(), dynamic="batch")
    check_model(model)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    for batch in (1, 2):
        inputs = feeds(compiled, batch, seed + batch)
        with torch.no_grad():
            want = module(*(torch.from_numpy(inputs[n]) for n in compiled.graph.inputs)).numpy()
        shape = (1 if case.unit_batch else batch, *case.shape) if case.batched else case.shape
        assert want.shape == shape, f"PyTorch gives {want.shape}, archc infers {case.shape}"
        (got,) = sess.run(None, inputs)
        ok, rel = close(got, want)
        assert ok, f"batch {batch}: ONNX differs from PyTorch by {rel:.2e} (relative)"


@pytest.mark.parametrize("case", CASES, ids=[f"{c.op}-{i}" for i, c in enumerate(CASES)])
def test_op_exports_with_dynamic_size_or_refuses_clearly(case: Case) -> None:
    """With dynamic height and width an op either follows the input size in both emissions or is refused."""
    compiled = compile_text(case.text, f"<{case.op}>")
    module = build_module(compiled).eval()
    randomise(module, 3)
    try:
        model = export_onnx(compiled, module.state_dict(), dynamic="batch,hw")
    except UsageError as exc:
        assert "export with --dynamic batch" in str(exc)
        return
    check_model(model)
    report = verify_model(model.SerializeToString(), compiled, module, dynamic="batch,hw")
    assert report.ok, report.diffs


def test_every_op_has_three_cases() -> None:
    counts = Counter(c.op for c in CASES)
    missing = {name: counts[name] for name in all_ops() if counts[name] < 3}
    assert not missing, f"ops with fewer than three contract cases: {missing}"
    assert set(counts) <= set(all_ops()), set(counts) - set(all_ops())


def test_mac_formulas_cover_the_conv_family() -> None:
    """Every op that does convolution- or linear-like work has its MACs checked against a non-zero formula."""
    assert {c.op for c in CASES if c.macs} == {"conv", "conv_transpose", "deform_conv", "conv_table", "gated_conv",
                                               "linear", "matmul", "multihead_attention",
                                               "scaled_dot_product_attention"}
