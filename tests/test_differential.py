"""Differential testing: random valid networks, archc's inferred shapes against PyTorch, PyTorch against onnxruntime.

Hypothesis builds spec YAML text step by step while tracking the current shape, so nearly every configuration is
valid: convolutions (groups, depthwise, dilation, strides, `same`/`valid`/explicit and per-axis padding, 1-D to 3-D),
pooling (ceil mode, padding, adaptive, global), normalisations, activations, transposed convolutions, resampling and
channel plumbing, `residual` and `branches` constructs, merges by `from:` (add, mul, sub, concat), then a classifier
after `flatten`.

For every example: the spec compiles; the generated PyTorch module (trace build) produces, at every node, exactly
the shape archc inferred; and the ONNX model archc emits, run in onnxruntime, matches the PyTorch module (with random
batch-norm statistics, so folding is exercised) within rtol 1e-4.

Set ARCHC_DIFF_SAVE=path to write each failing spec there: the last one written is the shrunk example, to be kept
in ``tests/differential_regressions/`` (replayed by :func:`test_differential_regressions`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

from archc.compiler import Compiled, compile_text  # noqa: E402
from archc.emit.onnx_export import export_onnx  # noqa: E402
from archc.emit.torch_module import load_source  # noqa: E402
from archc.emit.torch_source import default_class_name, torch_source  # noqa: E402
from archc.errors import SpecError, UsageError  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:Using padding=.same. with even kernel:UserWarning")
REGRESSIONS = Path(__file__).resolve().parent / "differential_regressions"
MAX_LAYERS = 30
MAX_CHANNELS = 32
MAX_SIZE = 40
MAX_FEATURES = 2048
RTOL = 1e-4
BATCH = 2
ACTIVATIONS = ["relu", "relu6", "gelu", "silu", "sigmoid", "tanh", "elu", "leaky_relu", "hardswish", "hardsigmoid",
               "mish", "selu", "prelu", "identity", "dropout", "dropout2d"]

Shape = tuple[int, ...]
Step = Any
"""A step as YAML data: ``"relu"`` or ``{"conv": {...}}``."""


# --- the generator ----------------------------------------------------------------------------------------------------
def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def _pool_out(n: int, k: int, s: int, p: int, ceil: bool) -> int:
    """PyTorch's pooling output size (a last window must start inside the input or its left padding)."""
    if not ceil:
        return (n + 2 * p - k) // s + 1
    out = -(-(n + 2 * p - k) // s) + 1
    return out - 1 if (out - 1) * s >= n + p else out


class Gen:
    """Draws steps for a shape; ``layers`` counts the layers made so far (an upper bound on the budget)."""

    def __init__(self, draw: st.DrawFn) -> None:
        self.draw = draw
        self.layers = 0
        self.ids = 0

    def pick(self, options: list[Any]) -> Any:
        return self.draw(st.sampled_from(options))

    def num(self, lo: int, hi: int) -> int:
        return self.draw(st.integers(lo, max(lo, hi)))

    def coin(self, p: float = 0.5) -> bool:
        return self.draw(st.integers(0, 999)) < p * 1000

    def fresh(self) -> str:
        self.ids += 1
        return f"s{self.ids}"

    # --- single ops ---------------------------------------------------------------------------------------------------
    def conv(self, shape: Shape, *, keep: bool = False, out: int | None = None, stride: bool = True) -> tuple[Step,
                                                                                                              Shape]:
        """A convolution; ``keep``: odd kernel with centred padding, so the size is (n - 1) // s + 1."""
        self.layers += 1
        c, sp = shape[0], shape[1:]
        per_axis = len(sp) > 1 and not keep and self.coin(0.2)
        ks = [self.pick([1, 3] if keep else [1, 2, 3, 4, 5]) for _ in sp] if per_axis else \
            [self.pick([1, 3, 5] if keep else [1, 2, 3, 4, 5])] * len(sp)
        d = 1 if max(ks) == 1 else self.pick([1, 1, 1, 2])
        s = self.pick([1, 1, 2] if keep else [1, 1, 2, 3]) if stride else 1
        if keep:
            pads: list[int] | str = [d * (k - 1) // 2 for k in ks]
        else:
            mode = self.pick(["int", "int", "same", "valid"])
            if (mode == "same" and s == 1) or mode == "valid":
                pads = mode
            elif per_axis:
                pads = [self.num(0, d * (k - 1) // 2 + 1) for k in ks]
            else:  # one padding for every axis
                pads = [self.num(0, d * (ks[0] - 1) // 2 + 1)] * len(sp)
        padding = [0] * len(sp) if pads == "valid" else pads
        if padding != "same":  # shrink the kernel where the window would not fit
            ks = [k if d * (k - 1) + 1 <= n + 2 * p else 1 for k, n, p in zip(ks, sp, padding, strict=True)]
            if not per_axis and len(set(ks)) > 1:  # one kernel size for every axis: it must fit them all
                ks = [1] * len(sp)
        params: dict[str, Any] = {"k": ks if per_axis else ks[0]}
        kind = "plain" if out is not None and self.coin(0.6) else self.pick(["plain", "plain", "groups", "depthwise"])
        if kind == "depthwise" and out is None:
            mult = self.pick([1, 1, 2])
            params["depthwise"] = True
            if mult > 1:
                params["out"] = c * mult
            cout = c * mult
        else:
            gs = [g for g in _divisors(c) if out is None or out % g == 0]
            g = self.pick(gs) if kind != "plain" else 1
            cout = out if out is not None else g * self.num(1, max(1, MAX_CHANNELS // (2 * g)))
            params["out"] = cout
            if g > 1:
                params["groups"] = g
        if s != 1:
            params["s"] = s
        if pads == "same" or pads == "valid":
            params["p"] = pads
        elif any(pads):
            params["p"] = pads if per_axis else pads[0]
        if d != 1:
            params["d"] = d
        if self.coin(0.3):
            params["bias"] = False
        if pads == "same":
            size = sp
        else:
            size = tuple((n + 2 * p - d * (k - 1) - 1) // s + 1 for n, p, k in zip(sp, padding, ks, strict=True))
        return {"conv": params}, (cout, *size)

    def pool(self, shape: Shape) -> tuple[Step, Shape]:
        self.layers += 1
        c, sp = shape[0], shape[1:]
        op = self.pick(["maxpool", "avgpool"])
        k = self.num(1, min(3, min(sp)))
        s = self.pick([None, 1, 2])
        p = self.num(0, k // 2)
        ceil = self.coin(0.3)
        params: dict[str, Any] = {"k": k}
        if s is not None:
            params["s"] = s
        if p:
            params["p"] = p
        if ceil:
            params["ceil_mode"] = True
        if op == "avgpool" and self.coin(0.3):
            params["count_include_pad"] = False
        stride = s if s is not None else k
        return {op: params}, (c, *(_pool_out(n, k, stride, p, ceil) for n in sp))

    def norm(self, shape: Shape) -> tuple[Step, Shape]:
        self.layers += 1
        c = shape[0]
        options = ["bn", "layernorm"] + (["group_norm", "lrn"] if len(shape) > 1 else [])
        if max(shape[1:], default=1) > 1:  # instance norm needs more than one position per channel
            options.append("instance_norm")
        op = self.pick(options)
        if op == "group_norm":
            return {"group_norm": {"groups": self.pick(_divisors(c))}}, shape
        if op == "layernorm":
            return ({"layernorm": {"dims": self.num(1, len(shape))}} if self.coin() else "layernorm"), shape
        if op == "instance_norm":
            return {"instance_norm": {"affine": self.coin()}}, shape
        if op == "lrn":
            return {"lrn": {"size": self.pick([1, 2, 3, 5])}}, shape
        return "bn", shape

    def activation(self, shape: Shape) -> tuple[Step, Shape]:
        self.layers += 1
        op = self.pick(ACTIVATIONS if len(shape) > 1 else [a for a in ACTIVATIONS if a != "dropout2d"])
        if op == "leaky_relu":
            return {"leaky_relu": {"slope": self.pick([0.01, 0.2])}}, shape
        if op == "elu":
            return {"elu": {"alpha": self.pick([1.0, 0.5])}}, shape
        if op == "gelu" and self.coin(0.3):
            return {"gelu": {"approximate": "tanh"}}, shape
        if op in ("dropout", "dropout2d"):
            return {op: {"p": 0.3}}, shape
        if op == "prelu" and self.coin(0.3):
            return {"prelu": {"shared": True}}, shape
        return op, shape

    def plumbing(self, shape: Shape) -> tuple[Step, Shape]:
        """Resampling and channel plumbing; falls back to an activation when nothing fits the shape."""
        c, sp = shape[0], shape[1:]
        options = ["zeropad", "adaptive"]
        if max(sp) * 2 <= MAX_SIZE:
            options += ["upsample", "conv_transpose"]
        if len(sp) == 2 and c % 4 == 0:
            options.append("pixel_shuffle")
        if c > 1:
            options.append("channel_shuffle")
        op = self.pick(options)
        self.layers += 1
        if op == "zeropad":
            p = self.num(1, 2)
            return {"zeropad": {"p": p}}, (c, *(n + 2 * p for n in sp))
        if op == "adaptive":
            size = [self.num(1, n) for n in sp]
            return {self.pick(["adaptive_avgpool", "adaptive_maxpool"]): {"size": size}}, (c, *size)
        if op == "upsample":
            modes = ["nearest", {1: "linear", 2: "bilinear", 3: "trilinear"}[len(sp)]]
            mode = self.pick(modes)
            params: dict[str, Any] = {"scale": 2, "mode": mode}
            if mode != "nearest" and self.coin(0.3):
                params["align_corners"] = True
            return {"upsample": params}, (c, *(2 * n for n in sp))
        if op == "conv_transpose":
            k, s, d = self.num(1, 4), self.pick([1, 2]), self.pick([1, 1, 2])
            p = self.num(0, d * (k - 1) // 2)
            extra = self.num(0, s - 1)  # PyTorch allows up to max(s, d) - 1; onnxruntime below s (the xfail fixture)
            g = self.pick(_divisors(c))
            cout = g * self.num(1, 3)
            params = {"out": cout, "k": k, "s": s}
            params.update({key: v for key, v in (("p", p), ("d", d), ("output_padding", extra), ("groups", g)) if v != (
                1 if key in ("d", "groups") else 0)})
            return {"conv_transpose": params}, (cout, *((n - 1) * s - 2 * p + d * (k - 1) + extra + 1 for n in sp))
        if op == "pixel_shuffle":
            return {"pixel_shuffle": {"r": 2}}, (c // 4, *(2 * n for n in sp))
        return {"channel_shuffle": {"groups": self.pick([g for g in _divisors(c) if g > 1])}}, shape

    # --- constructs ---------------------------------------------------------------------------------------------------
    def residual(self, shape: Shape) -> tuple[Step, Shape]:
        merge = self.pick(["add", "add", "concat"])
        body: list[Step] = []
        cur = shape
        for i in range(self.num(1, 3)):
            kind = self.pick(["conv", "conv", "norm", "act"])
            if kind == "conv":
                step, cur = self.conv(cur, keep=True, stride=merge == "add" and i == 0)
            elif kind == "norm":
                step, cur = self.norm(cur)
            else:
                step, cur = self.activation(cur)
            body.append(step)
        spec: dict[str, Any] = {"body": body}
        if merge == "concat":
            spec["merge"] = "concat"
            out = (shape[0] + cur[0], *cur[1:])
        else:
            if cur != shape:  # default shortcut ids: anonymous residuals in one scope once collided (a fixture)
                spec["shortcut"] = self.pick(["projection", {"kind": "projection", "bn": False}])
                self.layers += 2
            out = cur
        self.layers += 1
        return {"residual": spec}, out

    def branches(self, shape: Shape) -> tuple[Step, Shape]:
        merge = self.pick(["concat", "concat", "add", "mul"])
        width = self.num(1, 12)
        paths: list[Any] = []
        channels = 0
        for _ in range(self.num(2, 3)):
            path: list[Step] = []
            cur = shape
            for _ in range(self.num(0, 1)):
                if self.coin():  # AvgPool3d wants the window to fit before padding
                    op = self.pick(["maxpool", "avgpool"] if len(cur) < 4 or min(cur[1:]) >= 3 else ["maxpool"])
                    path.append({op: {"k": 3, "s": 1, "p": 1}})
                    self.layers += 1
                else:
                    step, cur = self.activation(cur)
                    path.append(step)
            step, cur = self.conv(cur, keep=True, stride=False, out=None if merge == "concat" else width)
            path.append(step)
            channels += cur[0]
            paths.append(path if len(path) > 1 or self.coin() else path[0])
        self.layers += 1
        spec: dict[str, Any] = {"paths": paths}
        if merge != "concat":
            spec["merge"] = merge
            return {"branches": spec}, (width, *shape[1:])
        return {"branches": spec}, (channels, *shape[1:])


@st.composite
def specs(draw: st.DrawFn) -> str:
    """Spec YAML text for a random valid network."""
    g = Gen(draw)
    rank = g.pick([1, 2, 2, 2, 3])
    sizes = {1: (6, 32), 2: (5, 20), 3: (4, 8)}[rank]
    shape: Shape = (g.num(1, 8), *(g.num(*sizes) for _ in range(rank)))
    start = shape
    body: list[Step] = []
    taps: dict[str, Shape] = {}
    last_id: str | None = None
    steps = g.num(1, 14)
    for _ in range(3 * steps):  # attempts: a step that does not fit is skipped
        if len(body) >= steps or g.layers >= MAX_LAYERS - 6:
            break
        kind = g.pick(["conv", "conv", "pool", "norm", "act", "plumbing", "residual", "branches", "merge"])
        if kind == "merge":
            same = [t for t, s in taps.items() if s == shape and t != last_id]
            cat = [t for t, s in taps.items() if s[1:] == shape[1:] and t != last_id]
            if last_id is None or not (same or cat):
                continue
            if same and g.coin(0.7):
                op, tap = g.pick(["add", "mul", "sub"]), g.pick(same)
                step, new = {op: {"from": [tap, last_id]}}, shape
            else:
                tap = g.pick(cat)
                step, new = {"concat": {"from": [tap, last_id]}}, (taps[tap][0] + shape[0], *shape[1:])
            g.layers += 1
        elif kind == "conv":
            step, new = g.conv(shape)
        elif kind == "pool":
            step, new = g.pool(shape)
        elif kind == "norm":
            step, new = g.norm(shape)
        elif kind == "act":
            step, new = g.activation(shape)
        elif kind == "plumbing":
            step, new = g.plumbing(shape)
        elif kind == "residual":
            step, new = g.residual(shape)
        else:
            step, new = g.branches(shape)
        if new[0] > MAX_CHANNELS * 2 or max(new[1:]) > MAX_SIZE:
            continue  # too big to run quickly; draw another step
        last_id = None
        if g.coin(0.6):
            ident = g.fresh()
            last_id = ident
            step = {step: {"id": ident}} if isinstance(step, str) else {k: {**v, "id": ident} for k, v in step.items()}
            taps[ident] = new
        body.append(step)
        shape = new
    _classifier(g, shape, body)
    spec = {"name": "random_net", "inputs": {"x": list(start)}, "body": body}
    return yaml.safe_dump(spec, sort_keys=False, default_flow_style=None, width=200)


def _classifier(g: Gen, shape: Shape, body: list[Step]) -> None:
    """Global pooling or flatten, then fully connected layers."""
    features = int(np.prod(shape))
    if len(shape) > 1 and (features > MAX_FEATURES or g.coin(0.3)):
        body.append(g.pick(["global_avgpool", "global_maxpool"]))
        g.layers += 1
        features = shape[0]
    if len(shape) > 1:
        body.append("flatten")
    vec: Shape = (features,)
    for _ in range(g.num(1, 3)):
        kind = g.pick(["linear", "linear", "act", "norm", "residual"])
        if kind == "linear":
            width = g.num(1, 32)
            body.append({"linear": {"out": width, **({"bias": False} if g.coin(0.2) else {})}})
            vec = (width,)
        elif kind == "act":
            body.append(g.activation(vec)[0])
        elif kind == "norm":
            body.append(g.norm(vec)[0])
        else:
            body.append({"residual": {"body": [{"linear": {"out": vec[0]}}, "relu"]}})
        g.layers += 1
    if g.coin(0.4):
        body.append(g.pick(["softmax", "log_softmax"]))


# --- the oracle -------------------------------------------------------------------------------------------------------
def _randomise_statistics(module: Any, seed: int) -> None:
    """Batch-norm statistics and affine terms away from their identity defaults, so folding them into convolutions
    changes the numbers; biases too."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, value in module.state_dict().items():
            if not value.is_floating_point():
                continue
            leaf = name.rsplit(".", 1)[-1]
            if leaf == "running_var":
                value.copy_(torch.rand(value.shape, generator=gen) + 0.5)
            elif leaf in ("running_mean", "bias"):
                value.copy_(torch.randn(value.shape, generator=gen) * 0.2)
            elif leaf == "weight" and value.dim() == 1:
                value.copy_(torch.rand(value.shape, generator=gen) + 0.5)


def check_spec(text: str, *, in_hypothesis: bool = True) -> None:
    """The three-way check on one spec; raises AssertionError naming the first disagreement."""
    if in_hypothesis:
        note(text)
    try:
        _check(text)
    except BaseException:
        save = os.environ.get("ARCHC_DIFF_SAVE")
        if save:  # overwritten by every failure: the last one is Hypothesis's shrunk example
            Path(save).write_text(text)
        raise


def _check(text: str) -> None:
    compiled = compile_text(text, "random_net.yaml")
    graph = compiled.graph
    expected = {n.name: n.out_type.shape for n in graph.nodes()}
    class_name = default_class_name(graph.name)
    torch.manual_seed(0)
    traced = load_source(torch_source(compiled, class_name, trace=True), class_name, graph.name)().eval()
    _randomise_statistics(traced, 1)
    module = load_source(torch_source(compiled, class_name), class_name, graph.name)().eval()
    module.load_state_dict(traced.state_dict(), strict=True)

    feeds = _inputs(compiled)
    shapes: dict[str, tuple[int, ...]] = {}

    def record(path: str, value: Any) -> None:
        assert value.shape[0] == BATCH, f"{path}: the batch axis was lost"
        shapes[path] = tuple(value.shape[1:])

    with torch.no_grad():
        traced(*[torch.from_numpy(v) for v in feeds.values()], _archc_record=record)
        want = module(*[torch.from_numpy(v) for v in feeds.values()])
    wrong = {k: (expected[k], shapes.get(k)) for k in expected if shapes.get(k) != expected[k]}
    assert not wrong, f"archc's shapes differ from PyTorch's (node: (archc, torch)): {wrong}"
    assert set(shapes) == set(expected)

    try:
        model = export_onnx(compiled, module.state_dict())
    except UsageError as exc:  # a declared limit of the ONNX emitter (ceil-mode pooling that ONNX cannot express)
        assert "ONNX cannot express" in str(exc), exc
        return
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    (got,) = session.run(list(graph.outputs), feeds)
    want_np = want.numpy()
    assert got.shape == want_np.shape
    scale = float(np.abs(want_np).max()) if want_np.size else 0.0
    np.testing.assert_allclose(got, want_np, rtol=RTOL, atol=1e-5 + RTOL * scale,
                               err_msg="onnxruntime disagrees with PyTorch")


def _inputs(compiled: Compiled) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    g = compiled.graph
    return {name: rng.standard_normal((BATCH, *g.node(name).out_type.shape)).astype(np.float32)
            for name in g.inputs}


def _fails(text: str) -> bool:
    try:
        check_spec(text, in_hypothesis=False)
    except Exception:  # a disagreement, a refusal, or onnxruntime failing to run the model
        return True
    return False


# --- the tests --------------------------------------------------------------------------------------------------------
COMMON = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
          "print_blob": True}


@settings(max_examples=60, derandomize=True, **COMMON)
@given(specs())
def test_random_networks(text: str) -> None:
    check_spec(text)


@pytest.mark.slow
@settings(max_examples=2000, **COMMON)
@given(specs())
def test_random_networks_many(text: str) -> None:
    check_spec(text)


@pytest.mark.parametrize("path", sorted(REGRESSIONS.glob("*.yaml")), ids=lambda p: p.stem)
def test_differential_regressions(path: Path) -> None:
    """Shrunk failures found by the generator, each fixed: they must keep passing. A fixture whose first line is
    ``# expect-error: CODE`` is a spec archc used to accept and PyTorch refused; archc must now refuse it. One whose
    first line is ``# xfail: REASON`` is a known bug not fixed yet."""
    text = path.read_text()
    first = text.split("\n", 1)[0]
    if first.startswith("# xfail: "):  # a known bug, reported and not fixed yet; strict: passing means it was fixed
        pytest.xfail(first.split(": ", 1)[1]) if _fails(text) else pytest.fail("fixed: remove the xfail line")
    if first.startswith("# expect-error: "):
        with pytest.raises(SpecError) as info:
            compile_text(text, path.name)
        assert [d.code for d in info.value.diagnostics] == [first.split(": ", 1)[1].strip()]
        return
    check_spec(text, in_hypothesis=False)
