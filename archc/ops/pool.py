"""Pooling: max and average windows, global average, adaptive average."""

from __future__ import annotations

from math import prod
from typing import Any, ClassVar

from pydantic import Field

from archc.errors import Problem
from archc.ir.types import TensorType
from archc.ops.base import Cost, Op, OpParams, TorchCode, Window, expect_rank, per_dim, py_tuple, window_out
from archc.ops.fields import NonNegOrList, SizeOrList
from archc.ops.reduce import reduce_node
from archc.ops.registry import register


class PoolParams(OpParams):
    k: SizeOrList = Field(description="Window size.")
    s: SizeOrList | None = Field(None, description="Stride; defaults to the window size.")
    p: NonNegOrList = Field(0, description="Implicit padding on both sides (at most half the window).")
    ceil_mode: bool = Field(False, description="Round the output size up, as Caffe did.")


class _Pool(Op):
    family = "pool"
    output_overwritable = True
    Params = PoolParams
    torch_name = ""
    onnx_name = ""

    def geometry(self, p: PoolParams, x: TensorType) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
        n = x.rank - 1
        k = per_dim(p.k, n, "k")
        s = per_dim(p.s, n, "s") if p.s is not None else k
        pad = per_dim(p.p, n, "p")
        for ki, pi in zip(k, pad):
            if pi * 2 > ki:
                raise Problem("E306", f"padding {pi} is more than half the window {ki}")
        return k, s, pad

    def infer(self, p: PoolParams, inputs: list[TensorType]) -> TensorType:
        x = inputs[0]
        expect_rank(self.name, x, (2, 3, 4))
        k, s, pad = self.geometry(p, x)
        spatial = tuple(window_out(n, ki, si, pi, pi, 1, p.ceil_mode, what="window")
                        for n, ki, si, pi in zip(x.spatial, k, s, pad))
        return x.with_shape((x.channels, *spatial))

    def cost(self, p: PoolParams, inputs: list[TensorType], out: TensorType) -> Cost:
        k, _, _ = self.geometry(p, inputs[0])
        return Cost(elementwise=out.numel * prod(k), connections=out.numel * prod(k))

    def window(self, p: PoolParams, inputs: list[TensorType], out: TensorType) -> Window:
        return Window(*self.geometry(p, inputs[0]))

    def label(self, p: PoolParams, out: TensorType | None) -> str:
        k = p.k if isinstance(p.k, int) else "x".join(map(str, p.k))
        s = p.s if p.s is not None else p.k
        return f"{k}/{s if isinstance(s, int) else 'x'.join(map(str, s))}" + (", ceil" if p.ceil_mode else "")

    def torch(self, p: PoolParams, inputs: list[TensorType], out: TensorType) -> TorchCode:
        x = inputs[0]
        k, s, pad = self.geometry(p, x)
        args = [f"kernel_size={py_tuple(k)}", f"stride={py_tuple(s)}"]
        if any(pad):
            args.append(f"padding={py_tuple(pad)}")
        if p.ceil_mode:
            args.append("ceil_mode=True")
        args.extend(self.extra_torch_args(p))
        return TorchCode(f"nn.{self.torch_name}{x.rank - 1}d({', '.join(args)})", "{m}({0})")

    def extra_torch_args(self, p: PoolParams) -> list[str]:
        return []

    def onnx(self, b: Any, p: PoolParams, inputs: list[str], in_types: list[TensorType], out: TensorType,
             weights: dict[str, Any]) -> str:
        k, s, pad = self.geometry(p, in_types[0])
        ceil_mode, end_pads = self.onnx_ceil_mode(b, p, in_types[0])
        attrs: dict[str, Any] = {"kernel_shape": list(k), "strides": list(s), "pads": [*pad, *end_pads],
                                 "ceil_mode": ceil_mode}
        attrs.update(self.extra_onnx_attrs(p))
        if end_pads != list(pad) and "count_include_pad" in attrs:  # windows past the input: count the elements
            attrs["count_include_pad"] = 0  # inside only, as PyTorch does (pads_past_input_ok)
        return b.node(self.onnx_name, [inputs[0]], **attrs)

    def extra_onnx_attrs(self, p: PoolParams) -> dict[str, Any]:
        return {}

    def onnx_ceil_mode(self, b: Any, p: PoolParams, x: TensorType) -> tuple[int, list[int]]:
        """ONNX's ``ceil_mode`` and end padding for PyTorch's ceil rule, which ONNX's lacks: "the last window starts
        inside the input or left padding".

        onnxruntime computes PyTorch's windows either way, but ONNX shape inference counts one window too many where
        that rule drops one. There the floor count is the same, so a fixed size uses floor mode; a size that follows
        the input keeps ceil mode (its declared dimension is unknown, so nothing disagrees). Where one axis gains a
        window and another loses one, floor mode with extra end padding on the first gives PyTorch's windows.
        """
        k, s, pad = self.geometry(p, x)
        if not p.ceil_mode:
            return 0, list(pad)
        if any(d is None for d in b.in_dims[0][1:]):
            return 1, list(pad)
        grows, drops = False, False
        torch_sizes = []
        for n, ki, si, pi in zip(x.spatial, k, s, pad, strict=True):
            floor = window_out(n, ki, si, pi, pi, 1, False, what="window")
            torch_ceil = window_out(n, ki, si, pi, pi, 1, True, what="window")
            onnx_ceil = -(-(n + 2 * pi - ki) // si) + 1
            grows |= torch_ceil > floor
            drops |= onnx_ceil > torch_ceil
            torch_sizes.append(torch_ceil)
        if not (grows and drops):
            return int(grows), list(pad)
        # floor((n + pi + end - k) / s) + 1 == PyTorch's count, with the smallest such end padding
        end_pads = [max(pi, (m - 1) * si + ki - n - pi) for n, m, ki, si, pi in zip(x.spatial, torch_sizes, k, s, pad,
                                                                                    strict=True)]
        if not self.pads_past_input_ok(p, pad) or any(e >= ki for e, ki in zip(end_pads, k, strict=True)):
            raise b.refuse("ceil_mode adds a window along one axis and PyTorch's rule drops one along another; "
                           "ONNX cannot express both (give explicit padding instead of ceil_mode)")
        return 0, end_pads

    def pads_past_input_ok(self, p: PoolParams, pad: tuple[int, ...]) -> bool:
        """Whether windows running past the input may be written as end padding the pooling ignores."""
        return True


@register
class MaxPool(_Pool):
    name = "maxpool"
    summary = "Max pooling over a sliding window."
    example = "maxpool: {k: 3, s: 2, p: 1}"
    torch_name = "MaxPool"
    onnx_name = "MaxPool"


class AvgPoolParams(PoolParams):
    count_include_pad: bool = Field(True, description="Count padded zeros in the average (PyTorch's default).")


@register
class AvgPool(_Pool):
    name = "avgpool"
    Params = AvgPoolParams
    summary = "Average pooling over a sliding window."
    example = "avgpool: {k: 2, s: 2}"
    torch_name = "AvgPool"
    onnx_name = "AveragePool"

    def infer(self, p: PoolParams, inputs: list[TensorType]) -> TensorType:
        x = inputs[0]
        if x.rank == 4:  # PyTorch's AvgPool3d checks the window against the input before padding it
            k, _, _ = self.geometry(p, x)
            if any(n < ki for n, ki in zip(x.spatial, k)):
                raise Problem("E304", f"3-D average pooling needs the window {list(k)} to fit the input without its "
                                      f"padding (PyTorch's AvgPool3d refuses it otherwise); found {x}")
        return super().infer(p, inputs)

    def extra_torch_args(self, p: PoolParams) -> list[str]:
        return [] if getattr(p, "count_include_pad", True) else ["count_include_pad=False"]

    def extra_onnx_attrs(self, p: PoolParams) -> dict[str, Any]:
        return {"count_include_pad": int(getattr(p, "count_include_pad", True))}

    def pads_past_input_ok(self, p: PoolParams, pad: tuple[int, ...]) -> bool:
        # PyTorch divides by the window's elements inside the padded input; ONNX's count_include_pad=0 by those inside
        # the input: the same when nothing is padded or padded zeros are not counted
        return not any(pad) or not getattr(p, "count_include_pad", True)


class GlobalPoolParams(OpParams):
    keepdims: bool = Field(True, description="Keep the pooled spatial axes as size 1 ([C, 1, 1]); false gives [C].")


class GlobalPool(Op):
    """Shape, cost and receptive-field rules shared by the global poolings; subclasses say how to reduce."""

    family = "pool"
    Params = GlobalPoolParams
    torch_reduce = ""
    """Forward expression with `{dims}` and `{keep}` placeholders."""

    def infer(self, p: GlobalPoolParams, inputs: list[TensorType]) -> TensorType:
        x = inputs[0]
        expect_rank(self.name, x, (2, 3, 4))
        return x.with_shape((x.channels, *(1,) * (x.rank - 1)) if p.keepdims else (x.channels,))

    def cost(self, p: GlobalPoolParams, inputs: list[TensorType], out: TensorType) -> Cost:
        return Cost(elementwise=inputs[0].numel)

    def window(self, p: GlobalPoolParams, inputs: list[TensorType], out: TensorType) -> Window:
        spatial = inputs[0].spatial
        return Window(spatial, spatial, (0,) * len(spatial))

    def torch(self, p: GlobalPoolParams, inputs: list[TensorType], out: TensorType) -> TorchCode:
        dims = tuple(range(2, inputs[0].rank + 1))
        keep = ", keepdim=True" if p.keepdims else ""
        return TorchCode(None, self.torch_reduce.format(dims=dims, keep=keep))


@register
class GlobalAvgPool(GlobalPool):
    name = "global_avgpool"
    output_overwritable = True
    summary = "Average over all spatial positions (global average pooling)."
    example = "global_avgpool"
    torch_reduce = "{{0}}.mean({dims}{keep})"

    def onnx(self, b: Any, p: GlobalPoolParams, inputs: list[str], in_types: list[TensorType], out: TensorType,
             weights: dict[str, Any]) -> str:
        if p.keepdims:
            return b.node("GlobalAveragePool", [inputs[0]])
        axes = list(range(2, in_types[0].rank + 1))
        return b.node("ReduceMean", [inputs[0], b.const_int64(axes)], keepdims=0)


class AdaptivePoolParams(OpParams):
    size: SizeOrList = Field(description="Output spatial size, e.g. `7` or `[6, 6]`.")


class AdaptivePool(Op):
    """Pooling to a fixed output size (PyTorch's adaptive pooling): shared by the average and max variants."""

    family = "pool"
    Params = AdaptivePoolParams
    torch_name: ClassVar[str] = ""
    onnx_pool: ClassVar[str] = ""
    onnx_global: ClassVar[str] = ""
    onnx_reduce: ClassVar[str] = ""

    def infer(self, p: AdaptivePoolParams, inputs: list[TensorType]) -> TensorType:
        x = inputs[0]
        expect_rank(self.name, x, (2, 3, 4))
        return x.with_shape((x.channels, *per_dim(p.size, x.rank - 1, "size")))

    def cost(self, p: AdaptivePoolParams, inputs: list[TensorType], out: TensorType) -> Cost:
        return Cost(elementwise=max(inputs[0].numel, out.numel))

    def window(self, p: AdaptivePoolParams, inputs: list[TensorType], out: TensorType) -> Window:
        # the largest adaptive window: ceil((i+1)*n/m) - floor(i*n/m) at most ceil(n/m) + 1
        k = tuple(-(-n // m) + (1 if n % m else 0) for n, m in zip(inputs[0].spatial, out.spatial, strict=True))
        s = tuple(max(1, n // m) for n, m in zip(inputs[0].spatial, out.spatial, strict=True))
        return Window(k, s, (0,) * len(k))

    def label(self, p: AdaptivePoolParams, out: TensorType | None) -> str:
        return "to " + ("x".join(map(str, out.spatial)) if out is not None else str(p.size))

    def torch(self, p: AdaptivePoolParams, inputs: list[TensorType], out: TensorType) -> TorchCode:
        return TorchCode(f"nn.{self.torch_name}{inputs[0].rank - 1}d({py_tuple(out.spatial)})", "{m}({0})")

    def onnx(self, b: Any, p: AdaptivePoolParams, inputs: list[str], in_types: list[TensorType], out: TensorType,
             weights: dict[str, Any]) -> str:
        """Exact at any size: one pooling over the axes the output divides, cell-by-cell reductions over the rest.

        PyTorch's cell i covers input positions floor(i * n / m) to ceil((i + 1) * n / m), so windows overlap or
        vary in length when m does not divide n; max and mean over a rectangle are separable, so reducing one axis at
        a time is exact. Windows that follow a dynamic input size cannot be fixed in a graph, so a dynamic axis is
        accepted only when pooled to 1 (a plain reduction).
        """
        sizes, cells, dyn = in_types[0].spatial, out.spatial, b.in_dims[0][1:]
        for m, d in zip(cells, dyn, strict=True):
            if d is None and m != 1:
                raise b.refuse(f"{self.name} to {m} along an axis whose size follows the input (dynamic height "
                               "and width): its windows depend on that size, which no fixed ONNX graph can follow; "
                               "export with --dynamic batch")
        if all(m == 1 for m in cells):
            return b.node(self.onnx_global, [inputs[0]])
        y = inputs[0]
        kernel = [n // m if d is not None and n % m == 0 else 1 for n, m, d in zip(sizes, cells, dyn, strict=True)]
        if any(k > 1 for k in kernel):
            y = b.node(self.onnx_pool, [y], kernel_shape=kernel, strides=kernel)
        whole_axes = [i + 2 for i, d in enumerate(dyn) if d is None]
        if whole_axes:
            y = reduce_node(b, self.onnx_reduce, y, whole_axes, True)
        for i, (n, m, d) in enumerate(zip(sizes, cells, dyn, strict=True)):
            if d is None or n % m == 0:
                continue
            axis = b.const_int64([i + 2])
            parts = [reduce_node(b, self.onnx_reduce, b.node("Slice", [y, b.const_int64([j * n // m]),
                                                                         b.const_int64([-(-(j + 1) * n // m)]), axis]),
                                 [i + 2], True)
                     for j in range(m)]
            y = b.node("Concat", parts, axis=i + 2)
        return y


@register
class AdaptiveAvgPool(AdaptivePool):
    name = "adaptive_avgpool"
    summary = "Average pooling to a fixed output size; windows may overlap when the size does not divide the input."
    example = "adaptive_avgpool: {size: 7}"
    torch_name = "AdaptiveAvgPool"
    onnx_pool, onnx_global, onnx_reduce = "AveragePool", "GlobalAveragePool", "ReduceMean"
