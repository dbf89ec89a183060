"""The catalogue of error codes.

One entry per code: a title, what it means, an example of a spec line that triggers it and how to fix it.
``docs/errors.md`` is generated from this table (``python -m tools.docgen``) and a test keeps the two in step.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ErrorCode:
    code: str
    title: str
    meaning: str
    example: str
    fix: str


_CODES = [
    # --- reading the file -------------------------------------------------------------------------------------------
    ErrorCode("E001", "YAML syntax error", "The file is not well-formed YAML.",
              "body: [conv: {out: 64}", "Close the bracket or fix the indentation at the position shown."),
    ErrorCode("E002", "duplicate key", "A mapping names the same key twice; YAML loaders would silently keep the last.",
              "conv: {out: 64, out: 128}", "Keep one of the two keys."),
    ErrorCode("E003", "merge key refused", "`<<` merge keys are not part of YAML 1.2 and hide where values come from.",
              "conv: {<<: *base, out: 64}", "Write the keys out, or define a block with arguments."),
    ErrorCode("E004", "tag refused", "Only plain YAML values are accepted; tags such as `!!python/object` are refused.",
              "body: !!python/object/apply:os.system [ls]", "Remove the tag."),
    ErrorCode("E005", "input too large or too deep",
              "The file exceeds a size, nesting-depth or alias-expansion limit checked before it is processed.",
              "a: &a [*b, *b, *b, *b, *b, *b, *b, *b, *b]", "Shrink the file or raise the limit if you mean it."),
    ErrorCode("E006", "unreadable characters", "The file is not UTF-8 or contains control characters.",
              "conv: {out: 64}\\x00", "Save the file as UTF-8 text without control characters."),
    ErrorCode("E007", "non-scalar key", "Mapping keys must be plain strings.", "{[a, b]: 1}", "Use a string key."),
    # --- structure ----------------------------------------------------------------------------------------------------
    ErrorCode("E101", "unknown field", "A mapping has a key the schema does not define.",
              "conv: {out: 64, kernal: 3}", "Check the spelling; `archc ops conv` lists the fields."),
    ErrorCode("E102", "missing field", "A required field is absent.", "conv: {k: 3}", "Add the field (`out: 64`)."),
    ErrorCode("E103", "wrong type or value", "A field has a value of the wrong type or outside its range.",
              "conv: {out: yes, k: 3}", "Give a value of the expected type (`out: 64`)."),
    ErrorCode("E104", "unknown op or block", "A step names neither an op, a construct nor a block of this spec.",
              "- convolution: {out: 64}", "Use a name from `archc ops` or define the block under `blocks:`."),
    ErrorCode("E105", "malformed step", "A step must be an op name or a mapping with exactly one op name as key.",
              "- {conv: {out: 8}, relu: {}}", "Split it into two steps."),
    ErrorCode("E106", "bad block definition or call", "A block's arguments do not match its definition.",
              "- bottleneck: {widht: 64}", "Pass the arguments the block declares under `args:`."),
    ErrorCode("E107", "bad --set override", "A `--set` names an unknown param or gives a value of the wrong type.",
              "archc summary resnet50.yaml --set clases=10", "Use a param declared under `params:`."),
    ErrorCode("E108", "bad include", "An `include:` names a file that cannot be read or is no spec with `blocks:`, a "
                                     "file outside the including spec's directory tree, or one that includes the "
                                     "spec back (a cycle).",
              "include: [../shared.yaml]", "Include a spec file in the spec's directory or below it."),
    # --- references ---------------------------------------------------------------------------------------------------
    ErrorCode("E201", "unknown reference", "`from:` or `outputs:` names a step that does not exist in scope.",
              "add: {from: [conv1, conv_2]}", "Use one of the names suggested, or give the step an `id`."),
    ErrorCode("E202", "cycle", "The `from:` references form a loop; a network must be acyclic.",
              "a: {from: b} ... b: {from: a}", "Break the loop; the message lists every step on it."),
    ErrorCode("E203", "duplicate id", "Two steps in one scope have the same `id`.",
              "- conv: {id: c1}\n- conv: {id: c1}", "Rename one of them."),
    ErrorCode("E204", "wrong number of inputs", "An op received more or fewer inputs than it takes.",
              "relu: {from: [a, b]}", "Give the op as many inputs as it takes (`archc ops NAME`)."),
    ErrorCode("E206", "reserved name", "An id is an attribute name of PyTorch modules (`forward`, `training`, "
              "`keys`, ...), so it cannot name a layer in the generated module.", "conv: {id: forward, out: 8, k: 3}",
              "Choose another id."),
    ErrorCode("E205", "recursive block", "A block calls itself, directly or through other blocks.",
              "blocks: {b: {body: [b]}}", "Remove the recursion; use `stage` with `repeat` for repetition."),
    # --- shapes -------------------------------------------------------------------------------------------------------
    ErrorCode("E301", "shape mismatch", "Inputs of an element-wise merge (add, mul, sub) have different shapes.",
              "add of [256, 56, 56] and [64, 56, 56]", "Make both paths produce the same shape (e.g. a projection)."),
    ErrorCode("E302", "concat mismatch", "Inputs of a concat differ in a dimension other than the concat axis.",
              "concat of [64, 28, 28] and [64, 14, 14]", "Resample one path so the other dimensions agree."),
    ErrorCode("E303", "channels not divisible by groups", "Grouped convolution needs channels divisible by groups.",
              "conv: {out: 64, k: 3, groups: 3} on 32 channels", "Choose groups dividing both channel counts."),
    ErrorCode("E304", "window larger than input", "A kernel or pooling window does not fit the (padded) input.",
              "maxpool: {k: 3} on a 2x2 map", "Reduce the kernel or stride, or add padding."),
    ErrorCode("E305", "wrong rank", "An op received a tensor of a rank it does not accept.",
              "conv on a flat [512] tensor", "Reshape, or use `linear` on flat features."),
    ErrorCode("E306", "invalid shape", "An op's parameters do not fit its input's shape.",
              "reshape: {shape: [3, 5]} of 16 elements", "Check the op's parameters against the input shape."),
    ErrorCode("E307", "weight cannot be tied", "A layer's `tie:` names a layer that has no weight to share, or whose "
              "weight has another shape than the layer's own.",
              "linear: {id: lm_head, out: 1000, bias: false, tie: wte}   # wte: embedding {num: 50257, dim: 768}",
              "Tie to a layer whose weight has this layer's shape (a head [vocab, d] to the embedding [vocab, d])."),
    # --- expressions --------------------------------------------------------------------------------------------------
    ErrorCode("E401", "expression syntax", "A `${...}` expression does not parse.", "out: ${width *}",
              "Write a complete arithmetic expression."),
    ErrorCode("E402", "forbidden expression", "Only arithmetic, comparisons, conditionals and a few named functions "
              "are allowed in expressions; attributes, subscripts, imports and other calls are refused.",
              "out: ${__import__('os')}", "Use the operators and functions listed in docs/spec-language.md."),
    ErrorCode("E403", "unknown name in expression", "An expression refers to a name that is not a param or argument.",
              "out: ${widht * 4}", "Use a name declared under `params:` or the block's `args:`."),
    ErrorCode("E404", "expression failed", "Evaluating the expression failed (division by zero, too large a result).",
              "out: ${9**9**9}", "Change the expression so it yields a reasonable number."),
    # --- budgets ------------------------------------------------------------------------------------------------------
    ErrorCode("E501", "budget exceeded", "The model exceeds a size budget (layers, parameters, tensor elements or "
              "activation memory) checked before anything is allocated.", "stage: {block: b, repeat: 1000000000}",
              "Shrink the model, or raise the limit with `--limit NAME=VALUE` if you mean it."),
    ErrorCode("E502", "memory budget exceeded", "Building the PyTorch module, exporting it to ONNX and verifying the "
              "export would take more memory than `max_build_bytes` (default 4 GiB): the weights in every copy these "
              "steps hold, plus the activations of the verification batches in PyTorch and onnxruntime. Checked "
              "before anything is allocated; `check` and `summary` do not need this memory.",
              "inputs: {x: [1000, 1000, 1000]}", "Shrink the model or its input, or raise the limit with "
              "`--limit max_build_bytes=BYTES` (the message suggests a figure) if the machine has the memory."),
    ErrorCode("E503", "verification too costly", "Verifying the ONNX export runs every verification sample (batch 1, "
              "then batch 2) in PyTorch and in onnxruntime; its multiply-accumulates exceed `max_verify_macs` "
              "(default 2 T: minutes on two cores).", "conv: {out: 1024, k: 3, p: 1}  # at 224x224, "
              "three times", "Export without verification (`--no-verify`), or raise the limit with "
              "`--limit max_verify_macs=N`."),
    # --- importing a model from another format ------------------------------------------------------------------------
    ErrorCode("E601", "unsupported construct in an imported model",
              "The source model (cfg, prototxt, Ultralytics YAML, ONNX node or traced PyTorch call) uses a layer type, "
              "option or value archc cannot express; nothing is written.", "[reorg]\nstride=2",
              "Replace the construct in the source, or write that part of the spec by hand."),
    ErrorCode("E602", "malformed imported model",
              "The source model cannot be read: a syntax error, a missing required option, or a reference to a layer "
              "that does not exist.", "[route]\nlayers=-99", "Fix the source file at the position shown."),
    # --- warnings: the spec is valid (exit 0) but probably does not mean what it says ---------------------------------
    ErrorCode("W301", "linear on a spatial tensor", "`linear` acts on the last axis only: on a [C, H, W] feature map "
              "it maps each row's W values and keeps C and H, where a classifier head means to map all features. "
              "A warning: the command still succeeds.", "- conv: {out: 64, k: 3}\n- linear: {out: 10}",
              "Put `flatten` before the `linear` (after `global_avgpool` for one feature per channel); `reshape` or "
              "`permute` first if another axis is meant."),
]

CODES: dict[str, ErrorCode] = {c.code: c for c in _CODES}
