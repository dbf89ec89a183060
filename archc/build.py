"""Build and export orchestration for Python users and the command line: a spec in, artifacts as bytes out.

Producing and writing are separate steps, so a failure while producing writes nothing::

    from archc import build
    artifacts = build.build_artifacts("specs/resnet50.yaml", params={"classes": 10})
    build.write_build("out/resnet50", artifacts, force=True)

Fresh weights are drawn from :data:`WEIGHT_SEED`, so one spec always gives the same bytes. Verification (onnxruntime
against PyTorch) is on by default everywhere. Importing this module is cheap; torch and onnx load when a function
that needs them runs.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archc import __version__
from archc.errors import Diagnostic, UsageError
from archc.limits import DEFAULT_LIMITS, Limits

if TYPE_CHECKING:
    from archc.compiler import Compiled

WEIGHT_SEED = 0
"""Fresh weights are drawn from this seed, so one spec always gives the same ONNX bytes."""
BUILD_FILES = ("summary.txt", "summary.json", "model.py", "model.onnx", "diagram.svg")
MANIFEST = "manifest.json"
"""Written last into every build: the spec's hash, the archc version, and each file's sha256 and size."""
MAX_PROTO_BYTES = 2**31 - 1
"""A single ONNX file (one protobuf message) holds at most this many bytes."""

Step = Callable[[str], None]
"""Told the name of each step as it starts (a progress display)."""


@dataclass(frozen=True)
class Artifacts:
    """A build's files by name (``manifest.json`` included) and the lines to report (totals, verification)."""

    files: dict[str, bytes]
    report: list[str]
    warnings: list[Diagnostic] = field(default_factory=list)
    """The spec's W-code diagnostics (printed by `archc build` on stderr; the files are written all the same)."""


@dataclass(frozen=True)
class OnnxArtifact:
    """An exported, checked (and, when asked, verified) ONNX model: its file as pieces (archc/emit/onnx_file.py),
    large weights still the arrays they were, so that writing it never holds the whole file in memory."""

    file: Any
    """The :class:`archc.emit.onnx_file.OnnxFile`."""
    opset: int
    ir_version: int
    nodes: int
    initializers: int
    verify: Any = None
    """The :class:`archc.emit.onnx_verify.VerifyReport`, when verified."""

    @property
    def data(self) -> bytes:
        """The file's bytes, made on each call."""
        return self.file.to_bytes()

    def describe(self, path: str | os.PathLike[str]) -> str:
        text = (f"{path}: opset {self.opset}, IR {self.ir_version}, {self.nodes} nodes, "
                f"{self.initializers} initializers, {self.file.size:,} bytes")
        if self.verify is not None:
            text += f"; {verification_line(self.verify)}"
        return text


def verification_line(report: Any) -> str:
    cases = ", ".join(dict.fromkeys(d.case for d in report.diffs))
    return (f"onnxruntime matches PyTorch ({cases}): max abs diff {report.max_abs:.2e}, "
            f"max rel diff {report.max_rel:.2e}")


@contextlib.contextmanager
def fixed_seed() -> Iterator[None]:
    """PyTorch's global generator seeded with :data:`WEIGHT_SEED` inside, and restored after."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(WEIGHT_SEED)
        yield


def as_limits(limits: Limits | Mapping[str, int] | None) -> Limits:
    """``limits`` as a :class:`Limits`: the defaults, with a mapping's entries overriding them."""
    if limits is None:
        return DEFAULT_LIMITS
    if isinstance(limits, Limits):
        return limits
    try:
        return DEFAULT_LIMITS.with_overrides(dict(limits))
    except KeyError as exc:
        raise UsageError(str(exc.args[0])) from None
    except ValueError as exc:  # a value out of range
        raise UsageError(str(exc)) from None


def override_texts(params: Mapping[str, Any] | None) -> dict[str, str]:
    """Param overrides as ``--set`` text, which the compiler reads back with YAML 1.2 core rules."""
    out: dict[str, str] = {}
    for key, value in (params or {}).items():
        if isinstance(value, bool):
            out[key] = "true" if value else "false"
        elif isinstance(value, float):
            out[key] = repr(value)
        elif isinstance(value, (int, str)):
            out[key] = str(value)
        else:
            raise TypeError(f"param {key}: overrides are numbers, booleans or strings; found {type(value).__name__}")
    return out


def compile_spec(spec: str | os.PathLike[str], params: Mapping[str, Any] | None = None,
                 limits: Limits | Mapping[str, int] | None = None) -> tuple[Compiled, bytes]:
    """Compile a spec file (``-`` reads standard input); returns the result and the spec's bytes, read once."""
    from archc.compiler import compile_text
    from archc.yaml_loader import read_spec

    resolved = as_limits(limits)
    data, shown = read_spec(spec, resolved)
    return compile_text(data, shown, override_texts(params), resolved), data


# --- ONNX -------------------------------------------------------------------------------------------------------------
def onnx_artifact(compiled: Compiled, *, weights_path: str | os.PathLike[str] | None = None,
                  opset: int | None = None, dynamic: str = "batch", fold_bn: bool = True, verify: bool = True,
                  module: Any = None) -> OnnxArtifact:
    """Export ``compiled`` to ONNX, check it and, with ``verify``, compare it with PyTorch in onnxruntime.

    Weights: ``module``'s, else a ``weights_path`` state_dict file's, else a fresh module's drawn from
    :data:`WEIGHT_SEED`. Raises :class:`archc.emit.onnx_verify.VerificationError` when the two disagree.
    """
    return _export(compiled, weights_path, opset, dynamic, fold_bn, verify, module).checked()


def write_onnx(compiled: Compiled, path: str | os.PathLike[str], *, force: bool = False,
               **options: Any) -> OnnxArtifact:
    """:func:`onnx_artifact` written atomically to ``path``; on any failure nothing is written.

    The model is checked (and verified) once its bytes are in the unnamed new file, before it takes its name: an
    unverified model's weights are released by then, so ONNX's checks, which parse the model several times over, do
    not run beside them (a 70,000-layer model's checks take 300 MiB)."""
    from archc.io import check_target, write_atomic

    target = check_target(path, force=force)
    exported = _export(compiled, **options)
    done: list[OnnxArtifact] = []
    write_atomic(target, exported.file.chunks, force=force,
                 before_commit=lambda: done.append(exported.checked(written=target)))
    return done[0]


@dataclass
class _Exported:
    """An exported model not yet checked: the protobuf without its large weights' data, and the file's pieces."""

    compiled: Compiled
    model: Any
    file: Any
    opset: int
    dynamic: str
    module: Any
    """The PyTorch module to verify against; None for no verification."""

    def checked(self, written: Path | None = None) -> OnnxArtifact:
        """Check (and verify) the model; with ``written``, the path the file is being written to, the arrays of its
        large weights are released as soon as nothing needs them and its bytes are read from there after."""
        from archc.emit.onnx_verify import check_model, verify_model

        model, self.model = self.model, None
        ir_version, nodes, initializers = model.ir_version, len(model.graph.node), len(model.graph.initializer)
        if written is not None and self.module is None:
            self.file.release(written)
        check_model(model, self.file.deferred, consume=True)  # made weightless in place: no copy of its nodes
        del model
        report = None
        if self.module is not None:
            report = verify_model(self.file.to_bytes(), self.compiled, self.module, dynamic=self.dynamic)
            if written is not None:
                self.file.release(written)
        return OnnxArtifact(self.file, self.opset, ir_version, nodes, initializers, report)


def _export(compiled: Compiled, weights_path: str | os.PathLike[str] | None = None, opset: int | None = None,
            dynamic: str = "batch", fold_bn: bool = True, verify: bool = True, module: Any = None) -> _Exported:
    from archc.passes.resources import check_resources

    check_resources(compiled, verify=verify, dynamic=dynamic)  # the whole export's budget, before torch or onnx load
    from archc.emit.onnx_export import check_opset, load_weights, parse_dynamic
    from archc.emit.onnx_file import export_file

    opset = check_opset(opset)
    parse_dynamic(dynamic)
    own_module = module is None
    if own_module:
        module = _reference_module(compiled, load_weights(weights_path) if weights_path is not None else None)
    state = module.state_dict()
    if own_module and not verify:
        module = None  # nothing else reads it: its weights, released as they are exported, are then held once
    # the model's large weights stay arrays beside it, written into the file from there: never twice in memory
    model, file = export_file(compiled, state, opset=opset, dynamic=dynamic, fold_bn=fold_bn, release=module is None)
    del state
    if file.size > MAX_PROTO_BYTES:
        raise UsageError(f"the model is {file.size:,} bytes; a single ONNX file holds at most 2 GiB")
    return _Exported(compiled, model, file, opset, dynamic, module if verify else None)


def _reference_module(compiled: Compiled, state: dict[str, Any] | None) -> Any:
    from archc.emit.torch_module import build_module

    with fixed_seed():
        module = build_module(compiled)
    if state is not None:
        try:
            module.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise UsageError(f"the weights do not fit the spec: {exc}") from None
    return module.eval()


# --- the build set ----------------------------------------------------------------------------------------------------
def build_artifacts(spec: str | os.PathLike[str], *, params: Mapping[str, Any] | None = None,
                    limits: Limits | Mapping[str, int] | None = None, verify: bool = True,
                    step: Step | None = None) -> Artifacts:
    """Every build file as bytes, produced in memory: summary.txt, summary.json, model.py, model.onnx (its weights
    those of model.py's class initialised from :data:`WEIGHT_SEED`), diagram.svg and manifest.json."""
    announce = step or (lambda _: None)
    announce("compiling")
    compiled, spec_bytes = compile_spec(spec, params, limits)
    from archc.emit.summary import summary_json_text
    from archc.report.layer_table import summary_text, totals_lines

    files: dict[str, bytes] = {
        "summary.txt": summary_text(compiled).encode(),
        "summary.json": summary_json_text(compiled).encode(),  # the same text as `archc summary --json`
    }
    announce("generating PyTorch")
    from archc.passes.resources import check_resources

    check_resources(compiled, verify=verify)  # module, export and verification, before torch or onnx load
    from archc.emit.torch_module import load_source
    from archc.emit.torch_source import default_class_name, torch_source

    source = torch_source(compiled)
    files["model.py"] = source.encode()
    with fixed_seed():
        module = load_source(source, default_class_name(compiled.graph.name), compiled.graph.name)().eval()
    announce("emitting ONNX" + (" and verifying it in onnxruntime" if verify else ""))
    onnx = onnx_artifact(compiled, module=module, verify=verify)
    files["model.onnx"] = onnx.data
    report = totals_lines(compiled)
    if onnx.verify is not None:
        report.append(f"ONNX verified: {verification_line(onnx.verify)}")
    announce("drawing")
    from archc.emit.diagram import render, to_dot

    files["diagram.svg"] = render(to_dot(compiled), "svg")
    files[MANIFEST] = manifest(spec, spec_bytes, params, files)
    return Artifacts(files, report, compiled.warnings)


def manifest(spec: str | os.PathLike[str], spec_bytes: bytes, params: Mapping[str, Any] | None,
             files: Mapping[str, bytes]) -> bytes:
    """The manifest's bytes: deterministic (no time, no absolute path), so one spec gives one manifest."""
    shown = "<stdin>" if os.fspath(spec) == "-" else Path(spec).name
    content = {
        "archc": __version__,
        "spec": {"name": shown, "sha256": hashlib.sha256(spec_bytes).hexdigest(), "params": override_texts(params)},
        "files": {name: {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
                  for name, data in sorted(files.items())},
    }
    return (json.dumps(content, indent=1) + "\n").encode()


def check_build_target(outdir: str | os.PathLike[str], *, force: bool = False) -> Path:
    """Refuse an OUTDIR :func:`write_build` would refuse, before any work is done."""
    from archc.outdir import check_outdir

    return check_outdir(outdir, (*BUILD_FILES, MANIFEST), force=force)


def write_build(outdir: str | os.PathLike[str], artifacts: Artifacts, *, force: bool = False) -> list[Path]:
    """Write the build into ``outdir`` as a unit (see :mod:`archc.outdir`); returns the files' paths."""
    from archc.outdir import replace_directory

    return replace_directory(outdir, artifacts.files, force=force)
