"""The spec's document model: the top level, block definitions and the structural constructs.

Op steps are validated against each op's own ``Params`` model at lowering time, after ``${...}`` expressions have
been evaluated, so a block body can be a template. Everything here is strict (``channels: yes`` is an error, not 1),
refuses unknown keys and is frozen.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

Identifier = Annotated[str, Field(pattern=r"^[A-Za-z0-9_]+$", max_length=64,
                                  description="A name: letters, digits and underscores.")]


def _not_reserved(name: str) -> str:
    from archc.lower.reserved import RESERVED_MODULE_NAMES  # archc.lower imports this module

    if name in RESERVED_MODULE_NAMES:  # the Reporter turns this error type into E206
        raise PydanticCustomError("reserved_name", "'{name}' is an attribute of PyTorch modules and cannot name a "
                                                   "layer; choose another name", {"name": name})
    return name


LAYER_NAME_PATTERN = r"^[^.\x00-\x1f\x7f]+$"
"""What PyTorch allows in a module name (anything but `.`), control characters excepted: RegNet's `block1-0`."""
LayerName = Annotated[str, Field(pattern=LAYER_NAME_PATTERN, max_length=64,
                                 description="A layer name: any characters but `.` (like a PyTorch module name).")]
ModuleName = Annotated[LayerName, AfterValidator(_not_reserved)]
"""A name that becomes a component of layer paths, so of the generated module's attributes."""

Ref = Annotated[str, Field(pattern=r"^[^.\x00-\x1f\x7f]+(\.[^.\x00-\x1f\x7f]+)*$", max_length=256,
                           description="A step id, a model input, an unnamed step's index, or a dotted path of them "
                                       "into a named construct (`features.3`).")]
IndexRef = Annotated[int, Field(ge=0, description="An unnamed step's index in this scope (`from: 3`).")]
Refs = Annotated[Ref | IndexRef | list[Ref | IndexRef],
                 Field(description="Where the step takes its input(s) from; default: the previous step's output.")]
Condition = Annotated[bool | str, Field(description="Include the step only when true (usually a `${...}` expression).")]
DType = Literal["float32", "float16", "bfloat16", "float64", "int64", "int32", "uint8", "bool"]
Dim = Annotated[int, Field(ge=1, le=1_000_000)]
DIM_EXPRESSION_PATTERN = r"^\$[A-Za-z_{(]"
DimExpression = Annotated[str, Field(pattern=DIM_EXPRESSION_PATTERN, description="A size from the params: `$size`.")]
Shape = Annotated[list[Dim | DimExpression], Field(
    min_length=1, max_length=5, description="Shape without the batch, e.g. [3, 224, 224] or [3, $size, $size].")]


def _not_an_op_or_construct(name: str) -> str:
    # lowering would let a block named `conv` silently replace the op, and never call one named `stage`
    from archc.ops.registry import get_op

    if get_op(name) is not None or name in CONSTRUCTS:
        kind = "construct" if name in CONSTRUCTS else "built-in op"
        raise ValueError(f"'{name}' is the name of a {kind}; a block needs a name of its own (a step `{name}:` "
                         f"means the {kind})")
    return name


BlockName = Annotated[Identifier, AfterValidator(_not_an_op_or_construct)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, populate_by_name=True)


class InputSpec(Strict):
    shape: Shape
    dtype: DType = Field("float32", description="Element type (`int64` for embedding indices).")
    doc: str = Field("", description="What the input holds.")


class BlockSpec(Strict):
    doc: str = Field("", description="What the block is, for readers and the reference.")
    args: dict[Identifier, Any] = Field(
        default_factory=dict,
        description="Arguments: `name: default`, or `name: int|float|str|bool|list` for a required argument.",
    )
    let: dict[Identifier, Any] = Field(
        default_factory=dict,
        description="Block-local values, evaluated in order after the arguments: `hidden: $in_channels * $expand`.")
    body: list[Any] = Field(min_length=1, description="The block's steps; the first takes the block's input.")


class SpecHeader(Strict):
    """The top level of a spec file."""

    name: Identifier = Field(description="Model name; also the generated PyTorch class name.")
    doc: str = Field("", description="One paragraph: what the network is and where it comes from.")
    inputs: dict[Identifier, Shape | InputSpec] = Field(
        min_length=1, description="Named model inputs: `image: [3, 224, 224]` or `{shape: ..., dtype: ...}`.")
    outputs: list[Ref] | dict[Identifier, Ref] | None = Field(
        None, description="Named results: a list of step ids or `{name: step}`; default: the last step.")
    params: dict[Identifier, Any] = Field(
        default_factory=dict, description="Model-level values used in `${...}` expressions; `--set k=v` overrides.")
    blocks: dict[BlockName, BlockSpec] = Field(
        default_factory=dict, description="Reusable parameterised blocks, named apart from every op and construct.")
    include: list[str] = Field(
        default_factory=list, description="Spec files whose `blocks:` this spec may call (paths relative to this "
                                          "file, inside its directory tree); its own blocks replace theirs.")
    body: list[Any] = Field(min_length=1, description="The network's steps, in order.")


# --- constructs -------------------------------------------------------------------------------------------------------
class StepCommon(Strict):
    id: LayerName | None = Field(None, description="Name of the step: its layer path component and reference name.")
    from_: Refs | None = Field(None, alias="from", description="Input(s); default: the previous step's output.")
    if_: Condition = Field(True, alias="if", description="Include the step only when this is true.")


ShortcutKind = Literal["identity", "projection", "zero_pad", "none"]


class ShortcutSpec(Strict):
    kind: ShortcutKind = Field("projection", description="identity, projection (1x1 conv + bn when shapes differ), "
                                                         "zero_pad (subsample + zero channels), or none.")
    id: ModuleName = Field("shortcut", description="Name of the shortcut's scope (torchvision: `downsample`).")
    bn: bool = Field(True, description="Follow a projection's 1x1 convolution with batch norm.")
    body: list[Any] | None = Field(None, description="Explicit shortcut steps instead of a kind.")


class ResidualSpec(StepCommon):
    body: list[Any] = Field(min_length=1, description="The residual branch.")
    shortcut: ShortcutKind | ShortcutSpec | list[Any] = Field(
        "identity", description="The shortcut: a kind, `{kind, id, bn}`, or a list of steps.")
    merge: Literal["add", "concat"] = Field("add", description="`add` (ResNet) or `concat` (DenseNet: shortcut first).")


class BranchesSpec(StepCommon):
    paths: list[Any] | dict[ModuleName, Any] = Field(
        min_length=1, description="Parallel paths from the same input: a list, or named paths (scopes). A path is a "
                                  "list of steps or a single step.")
    merge: Literal["concat", "add", "mul"] = Field("concat", description="How the paths' outputs are merged.")
    axis: int = Field(0, ge=-5, le=4, description="Concat axis (0 = channels).")


class StageSpec(StepCommon):
    block: Identifier | None = Field(None, description="Block called for every copy.")
    body: list[Any] | None = Field(None, description="Steps repeated for every copy, instead of a block.")
    repeat: int = Field(ge=0, le=1_000_000_000, description="Number of copies.")
    args: dict[Identifier, Any] = Field(default_factory=dict, description="Block arguments for every copy.")
    first: dict[Identifier, Any] = Field(default_factory=dict, description="Argument overrides for the first copy.")
    prefix: LayerName | Literal[""] = Field("", description="Copy names are prefix + index (`denselayer`).")
    start: int = Field(0, ge=0, le=1_000_000, description="Index of the first copy (1 for `denselayer1`).")


class GroupSpec(StepCommon):
    body: list[Any] = Field(min_length=1, description="Steps of the group.")
    label: str = Field("", description="Caption for the diagram cluster; default: the id.")


PartAxis = Annotated[int, Field(ge=-5, le=4, description="Axis cut (0 = channels, -1 the last axis).")]


class ChunkSpec(StepCommon):
    chunks: int = Field(ge=1, le=1_000_000, description="Number of parts: equal sizes ceil(n / chunks), the last one "
                                                        "smaller when they do not divide n (torch.chunk).")
    axis: PartAxis = 0


class SplitSpec(StepCommon):
    sizes: list[Annotated[int, Field(ge=1, le=1_000_000)]] = Field(
        min_length=1, max_length=1024, description="Size of each part, in order; they sum to the axis's length.")
    axis: PartAxis = 0


CONSTRUCTS: dict[str, type[StepCommon]] = {
    "residual": ResidualSpec,
    "branches": BranchesSpec,
    "stage": StageSpec,
    "group": GroupSpec,
    "chunk": ChunkSpec,
    "split": SplitSpec,
}
COMMON_KEYS = ("id", "from", "if")
