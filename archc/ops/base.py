"""What an op is: one class carries its schema, shape rule, cost rule, emission and diagram style.

An op is a subclass of :class:`Op` registered with :func:`register`. Its ``Params`` pydantic model is the YAML schema
of its step (and the source of the JSON Schema and the language reference); ``infer`` is its shape rule; ``cost`` its
parameter and MAC count; ``window`` its receptive-field footprint; ``torch_module``/``torch_call`` its PyTorch code;
``onnx`` its ONNX nodes. Emission methods receive plain values only, so this module never imports torch or onnx.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict

from archc.errors import Problem
from archc.ir.types import TensorType
from archc.ops.saved import NOTHING, Extra, Saved, View

if TYPE_CHECKING:
    from archc.emit.onnx_builder import OnnxBuilder


class OpParams(BaseModel):
    """Base of every op's parameter model: strict types, unknown keys refused, immutable."""

    # no inf or nan in any float field, even one declared as a plain ``float`` (fields.Float32 also bounds the range)
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, defer_build=True, allow_inf_nan=False)


class NoParams(OpParams):
    """An op that takes no parameters."""


@dataclass(frozen=True)
class Cost:
    """What one layer costs for batch 1."""

    params: int = 0
    """Trainable parameters."""
    buffers: int = 0
    """Non-trainable state such as batch-norm running statistics."""
    macs: int = 0
    """Multiply-accumulates of convolution and linear layers and of matrix products between activations, attention's
    QK^T and AV included (torchvision's GFLOPS convention)."""
    elementwise: int = 0
    """Other arithmetic (normalisation, activation, pooling, merges), reported apart from MACs."""
    connections: int = 0
    """Connections in the LeNet paper's sense: weights used per output element, summed over outputs."""


@dataclass(frozen=True)
class Window:
    """A sliding window per spatial dimension, for receptive-field arithmetic.

    Up-sampling layers have a stride below 1 (``Fraction(1, 2)`` for a factor of 2): each output position moves by
    half an input position, and ``kernel`` counts the input positions one output position reads.
    """

    kernel: tuple[int, ...]
    """Effective (dilated) kernel extent, in input positions."""
    stride: tuple[int | Fraction, ...]
    padding: tuple[int | Fraction, ...]
    """Where the first output's window starts, as padding before the first input element (top/left)."""


@dataclass(frozen=True)
class TorchCode:
    """PyTorch code for one layer: an optional module constructor, the forward expression and the statements it
    needs first."""

    module: str | None
    """Source of the ``nn.Module`` constructor, e.g. ``nn.Conv2d(3, 64, kernel_size=3)``; None when stateless."""
    call: str
    """Forward expression; ``{m}`` stands for the module reference and ``{0}``, ``{1}``... for the inputs."""
    inplace: str | None = None
    """The forward expression overwriting its first input (``torch.relu_({0})``, ``{0}.add_({1})``), used when
    nothing reads that input again and its producer allows it (:attr:`Op.output_overwritable`): no new tensor is
    allocated."""
    state: str | None = None
    """``parameter``, ``buffer`` or ``nonpersistent_buffer``: ``module`` is a tensor expression registered under the
    layer's name on the module holding it (``nn.Parameter``, a persistent buffer, or a buffer kept out of the
    ``state_dict``), and ``{m}`` reads it; None: ``module`` is a module."""
    steps: tuple[tuple[str, str], ...] = ()
    """Statements run before ``call``, for a composite too long for one expression: (temporary, expression) pairs in
    order, each expression written like ``call`` and free to read the temporaries bound before it as ``{name}``
    (``call`` reads them all). The emitter names each temporary (unique in the forward, after the hint ``name``) and
    deletes them after the layer's statement."""


class Op:
    """Base class of ops. Subclasses set the class attributes and override the rules they need."""

    name: ClassVar[str]
    family: ClassVar[str]
    """Diagram colour, docs section and module: a key of :data:`archc.ops.families.FAMILIES`."""
    Params: ClassVar[type[OpParams]] = NoParams
    summary: ClassVar[str] = ""
    example: ClassVar[str] = ""
    min_inputs: ClassVar[int] = 1
    max_inputs: ClassVar[int | None] = 1
    label_fields: ClassVar[tuple[str, ...]] = ()
    """Parameters shown in diagram labels."""
    held_inputs: ClassVar[bool] = False
    """Every input is a tensor the model holds, used as stored (a `parameter` without `batch_axis`, a `buffer`):
    lowering refuses activations (E305). The output has a batch axis of size 1."""
    ordered_inputs: ClassVar[bool] = False
    """The order of the inputs is the layout of the output (concat's channels), so diagrams number the input edges."""
    output_overwritable: ClassVar[bool] = False
    """The op's output is a new tensor (not a view of its input) that autograd does not keep for the backward pass,
    so a following in-place op may overwrite it (torchvision's ``ReLU(inplace=True)`` after conv and batch norm)."""
    norm_fold_axis: ClassVar[int | None] = None
    """A following per-channel norm (:attr:`foldable_norm`) folds into this op's ``weight`` and ``bias`` at inference:
    the weight's axis of output channels within a group (0 for conv's [out, in / groups, *k], 1 for transposed conv's
    [in, out / groups, *k]); None: nothing folds into it (archc/passes/fold.py)."""
    foldable_norm: ClassVar[bool] = False
    """At inference the op is ``x * scale + shift`` per channel from ``running_mean``/``running_var`` (and ``weight``/
    ``bias`` when affine) with ``eps``: it folds into a producer with :attr:`norm_fold_axis`."""

    # --- analysis -----------------------------------------------------------------------------------------------------
    def uses_input(self, p: Any) -> bool:
        """Whether the step reads its input (the previous step's output by default); False for a tensor the model
        holds (a `parameter` or `buffer` step), which then takes none."""
        return True

    def infer(self, p: Any, inputs: list[TensorType]) -> TensorType:
        """Shape rule. Default: same type as the single input."""
        return inputs[0]

    def cost(self, p: Any, inputs: list[TensorType], out: TensorType) -> Cost:
        """Cost rule. Default: one element-wise operation per output element, no parameters."""
        return Cost(elementwise=out.numel)

    def window(self, p: Any, inputs: list[TensorType], out: TensorType) -> Window | None:
        """Receptive-field footprint; None for ops that act point-wise in space."""
        return None

    # --- memory (archc/memory/) ---------------------------------------------------------------------------------------
    def saved_for_backward(self, p: Any, inputs: list[TensorType], out: TensorType) -> Saved:
        """What autograd keeps of the layer for the backward pass of its PyTorch code, in training mode. Default:
        every input, what a computing op whose derivative reads its operands keeps."""
        return Saved(inputs=tuple(range(len(inputs))))

    def inference_scratch(self, p: Any, inputs: list[TensorType], out: TensorType) -> tuple[Extra, ...]:
        """Tensors the layer's PyTorch code allocates beside its output at inference and frees when it returns (CPU
        max pooling's indices). Default: none."""
        return ()

    def output_view(self, p: Any, inputs: list[TensorType], out: TensorType, training: bool) -> View | None:
        """How the PyTorch output shares its first input's storage (:data:`archc.ops.saved.View`); None: it is a new
        tensor. ``training``: in training mode (dropout is the identity only at inference)."""
        return None

    def parameter_sizes(self, p: Any, inputs: list[TensorType], out: TensorType) -> tuple[int, ...]:
        """Elements of each parameter tensor of the layer's PyTorch module, as allocated (an optimizer keeps state per
        tensor; a masked weight is allocated whole). Default: one tensor of the layer's parameters, or none."""
        params = self.cost(p, inputs, out).params
        return (params,) if params else ()

    # --- emission -----------------------------------------------------------------------------------------------------
    def torch(self, p: Any, inputs: list[TensorType], out: TensorType) -> TorchCode:
        raise NotImplementedError(f"op {self.name!r} has no PyTorch emission")

    def onnx(self, b: OnnxBuilder, p: Any, inputs: list[str], in_types: list[TensorType], out: TensorType,
             weights: dict[str, Any]) -> str:
        raise NotImplementedError(f"op {self.name!r} has no ONNX emission")

    def label(self, p: Any, out: TensorType | None) -> str:
        """Key attributes for diagram labels, e.g. ``7x7/2, 64``."""
        parts = []
        fields = type(p).model_fields
        for f in self.label_fields:
            value = getattr(p, f, None)
            if value is None or value is False or (f in fields and value == fields[f].default):
                continue  # defaults say nothing in a diagram
            parts.append(f"{f}={_fmt(value)}")
        return ", ".join(parts)


class Plumbing(Op):
    """An op of the tensor family that moves data without computing: it costs nothing."""

    family = "tensor"

    def cost(self, p: Any, inputs: list[TensorType], out: TensorType) -> Cost:
        return Cost()

    def saved_for_backward(self, p: Any, inputs: list[TensorType], out: TensorType) -> Saved:
        return NOTHING  # moving data: the gradient moves back the same way, reading no tensor


def _fmt(value: object) -> str:
    if isinstance(value, (list, tuple)):
        return "x".join(str(v) for v in value)
    return str(value)


# --- helpers shared by shape rules ------------------------------------------------------------------------------------
_RANK_LAYOUT = {1: "[C]", 2: "[C, L]", 3: "[C, H, W]", 4: "[C, D, H, W]"}


def expect_rank(op: str, t: TensorType, ranks: tuple[int, ...], what: str = "input") -> None:
    if t.rank not in ranks:
        layouts = [_RANK_LAYOUT.get(r, f"rank {r}") for r in ranks]
        want = " or ".join([", ".join(layouts[:-1]), layouts[-1]] if len(layouts) > 1 else layouts)
        raise Problem("E305", f"{op} expects its {what} as {want} (batch implicit); found {t} (rank {t.rank})")


def norm_axis(op: str, axis: int, x: TensorType) -> int:
    """A spec axis (batch excluded) of ``x`` in 0..rank-1; negative axes count from the end."""
    if not -x.rank <= axis < x.rank:
        raise Problem("E306", f"{op} axis {axis} is out of range for {x} (rank {x.rank})")
    return axis % x.rank


def norm_axes(op: str, axes: list[int], x: TensorType) -> list[int]:
    out = [norm_axis(op, a, x) for a in axes]
    if len(set(out)) != len(out):
        raise Problem("E306", f"{op} axes {axes} name the same axis twice")
    return out


def check_groups(groups: int, cin: int, cout: int) -> None:
    """Channel groups of a convolution-like layer divide its input and output channels."""
    if cin % groups or cout % groups:
        raise Problem("E303", f"groups={groups} expects input and output channels divisible by {groups}; "
                              f"found {cin} input and {cout} output channels")


def whole_input(x: TensorType) -> Window:
    """The window of a layer whose every output reads every spatial position of ``x`` (global pooling)."""
    return Window(x.spatial, x.spatial, (0,) * len(x.spatial))


def per_dim(value: int | list[int] | tuple[int, ...], n: int, field: str) -> tuple[int, ...]:
    """Expand an int or a list to one value per spatial dimension."""
    if isinstance(value, int):
        return (value,) * n
    if len(value) != n:
        raise Problem("E306", f"{field} has {len(value)} values {list(value)} but the input has {n} spatial "
                              f"dimension{'s' if n != 1 else ''}")
    return tuple(value)


def window_out(size: int, kernel: int, stride: int, pad_before: int, pad_after: int, dilation: int = 1,
               ceil_mode: bool = False, *, what: str = "kernel") -> int:
    """Output length of a sliding window (PyTorch's formula, including its ceil-mode rule)."""
    eff = dilation * (kernel - 1) + 1
    span = size + pad_before + pad_after - eff
    if ceil_mode:
        # PyTorch: round up, but the last window must start inside the input or the left padding
        n = -(-span // stride) + 1
        if (n - 1) * stride >= size + pad_before:
            n -= 1
        if n >= 1:
            return n
    if span < 0:
        dilated = f" (dilation {dilation})" if dilation != 1 else ""
        padded = size + pad_before + pad_after
        raise Problem("E304", f"{what} {eff}{dilated} does not fit: expected at most the padded input size {padded} "
                              f"({size} + padding {pad_before}+{pad_after}), found {eff}")
    return span // stride + 1


def weight_and_bias(params: int, bias: int) -> tuple[int, ...]:
    """Parameter tensor sizes of a layer holding ``params`` elements, ``bias`` of them in a bias tensor (0: none)."""
    return (params - bias, bias) if bias else (params,)


# --- helpers shared by PyTorch emission -------------------------------------------------------------------------------
def per_channel_view(x: TensorType) -> str:
    """`.view(-1, 1, 1)`: a [C] vector broadcast over ``x`` (batch excluded) in PyTorch."""
    return f".view(-1{', 1' * (x.rank - 1)})"


def py_tuple(values: tuple[int, ...]) -> str:
    """Integers as compact Python source: one int when all are equal, else a tuple."""
    if len(set(values)) == 1:
        return str(values[0])
    return "(" + ", ".join(str(v) for v in values) + ")"


def conv_ctor(cls: str, cin: int, cout: int, kernel: tuple[int, ...],
              options: Sequence[tuple[str, tuple[int, ...] | str, int]], groups: int, bias: bool) -> str:
    """A convolution-like module's constructor source: ``options`` are (keyword, per-axis values, PyTorch's default),
    written only where they differ from it, as are ``groups`` and ``bias``; a string value is source, always
    written."""
    args = [str(cin), str(cout), f"kernel_size={py_tuple(kernel)}"]
    for name, values, default in options:
        if isinstance(values, str):
            args.append(f"{name}={values}")
        elif any(v != default for v in values):
            args.append(f"{name}={py_tuple(values)}")
    if groups != 1:
        args.append(f"groups={groups}")
    if not bias:
        args.append("bias=False")
    return f"{cls}({', '.join(args)})"
