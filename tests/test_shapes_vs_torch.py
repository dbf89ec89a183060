"""Shape rules against PyTorch's real output shapes on random configurations (hypothesis).

Where archc accepts a configuration, torch must produce exactly the inferred shape; where archc refuses it with a
shape error, torch must refuse it too (or produce an empty tensor, which archc refuses on purpose).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from archc.errors import Problem
from archc.ir.types import TensorType
from archc.ops.registry import get_op

torch = pytest.importorskip("torch")
F = torch.nn.functional


def _infer(op: str, params: dict, shape: tuple[int, ...]) -> tuple[int, ...] | None:
    o = get_op(op)
    assert o is not None
    try:
        return o.infer(o.Params.model_validate(params), [TensorType(shape)]).shape
    except Problem:
        return None


def _torch_shape(fn, x_shape: tuple[int, ...]) -> tuple[int, ...] | None:
    try:
        y = fn(torch.zeros((1, *x_shape)))
    except RuntimeError:
        return None
    shape = tuple(y.shape[1:])
    return None if 0 in shape else shape


@settings(max_examples=150, deadline=None)
@given(
    rank=st.sampled_from([1, 2]), cin_g=st.integers(1, 4), cout_g=st.integers(1, 4), groups=st.integers(1, 3),
    k=st.lists(st.integers(1, 5), min_size=2, max_size=2), s=st.lists(st.integers(1, 3), min_size=2, max_size=2),
    p=st.lists(st.integers(0, 3), min_size=2, max_size=2), d=st.lists(st.integers(1, 3), min_size=2, max_size=2),
    size=st.lists(st.integers(1, 12), min_size=2, max_size=2),
)
def test_conv_matches_torch(rank, cin_g, cout_g, groups, k, s, p, d, size) -> None:
    cin, cout = cin_g * groups, cout_g * groups
    k, s, p, d, size = k[:rank], s[:rank], p[:rank], d[:rank], size[:rank]
    shape = (cin, *size)
    ours = _infer("conv", {"out": cout, "k": k, "s": s, "p": p, "d": d, "groups": groups}, shape)
    conv = F.conv1d if rank == 1 else F.conv2d
    w = torch.zeros((cout, cin // groups, *k))
    theirs = _torch_shape(lambda x: conv(x, w, None, s, p, d, groups), shape)
    assert ours == theirs


@settings(max_examples=150, deadline=None)
@given(
    op=st.sampled_from(["maxpool", "avgpool"]), k=st.lists(st.integers(1, 5), min_size=2, max_size=2),
    s=st.lists(st.integers(1, 4), min_size=2, max_size=2), p=st.lists(st.integers(0, 2), min_size=2, max_size=2),
    ceil=st.booleans(), size=st.lists(st.integers(1, 14), min_size=2, max_size=2),
)
def test_pool_matches_torch(op, k, s, p, ceil, size) -> None:
    shape = (3, *size)
    ours = _infer(op, {"k": k, "s": s, "p": p, "ceil_mode": ceil}, shape)
    if any(2 * pi > ki for pi, ki in zip(p, k)):
        assert ours is None  # torch raises too ("pad should be at most half of effective kernel size")
        return
    fn = F.max_pool2d if op == "maxpool" else F.avg_pool2d
    theirs = _torch_shape(lambda x: fn(x, k, s, p, ceil_mode=ceil), shape)
    assert ours == theirs


@settings(max_examples=60, deadline=None)
@given(size=st.lists(st.integers(1, 20), min_size=2, max_size=2), out=st.lists(st.integers(1, 8), min_size=2,
                                                                             max_size=2))
def test_adaptive_pool_matches_torch(size, out) -> None:
    shape = (2, *size)
    ours = _infer("adaptive_avgpool", {"size": out}, shape)
    theirs = _torch_shape(lambda x: F.adaptive_avg_pool2d(x, out), shape)
    assert ours == theirs
