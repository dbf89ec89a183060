"""`include:` the blocks of other spec files: paths relative to the including file, confined to the directory tree
of the top spec, cycles refused; an included block's diagnostics point at its own file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from archc.errors import ArchcError, SpecError
from archc.limits import Limits
from archc.spec.model import BlockSpec, SpecHeader
from archc.spec.report import Reporter
from archc.yaml_loader import LoadedDoc, load_yaml_file


class _Includer:
    def __init__(self, root: Path, report: Reporter, limits: Limits) -> None:
        self.root = root
        self.report = report
        self.limits = limits
        self.blocks: dict[str, tuple[BlockSpec, LoadedDoc]] = {}

    def visit(self, names: list[str], base: Path, reporter: Reporter, chain: tuple[Path, ...]) -> None:
        """The files ``names`` (written in the file reported by ``reporter``, in directory ``base``), in order."""
        shown_dir = os.path.dirname(reporter.doc.file)  # included files are shown as the including one is
        for i, name in enumerate(names):
            where = ("include", i)
            path = Path(os.path.realpath(base / name))
            if path != self.root and self.root not in path.parents:
                reporter.error("E108", f"'{name}' is outside the spec's directory tree ({self.root}); include files "
                                       "in it or below it", where)
                continue
            if path in chain:
                cycle = " -> ".join(p.name for p in (*chain[chain.index(path):], path))
                reporter.error("E108", f"'{name}' includes itself: {cycle}", where)
                continue
            try:
                doc = load_yaml_file(path, self.limits, display_name=os.path.normpath(os.path.join(shown_dir, name)))
            except SpecError as exc:  # a YAML error inside the included file, located there
                self.report.diagnostics.extend(exc.diagnostics)
                continue
            except ArchcError as exc:
                reporter.error("E108", f"cannot include '{name}': {exc}", where)
                continue
            self.take(doc, path, chain)

    def take(self, doc: LoadedDoc, path: Path, chain: tuple[Path, ...]) -> None:
        data = doc.data if isinstance(doc.data, dict) else {}
        reporter = Reporter(doc)
        includes = data.get("include", [])
        if isinstance(includes, list) and all(isinstance(n, str) for n in includes):
            self.visit(includes, path.parent, reporter, (*chain, path))
        blocks = data.get("blocks")
        if not isinstance(blocks, dict):
            reporter.error("E108", "an included file is a spec whose `blocks:` are taken; this one has none", ())
        else:
            for name, raw in blocks.items():
                spec = reporter.validate(BlockSpec, raw, ("blocks", name))
                if spec is not None:
                    self.blocks[name] = (spec, doc)  # a later file's block replaces an earlier one's
        self.report.diagnostics.extend(reporter.diagnostics)


def with_includes(header: SpecHeader, file: str, report: Reporter, limits: Limits) -> tuple[SpecHeader, dict[str, Any]]:
    """``header`` with the blocks of its included files that its own do not replace, and the document of each."""
    if not header.include:
        return header, {}
    spec_path = Path(os.path.realpath(file)) if os.path.exists(file) else Path(os.path.realpath(Path.cwd() / "spec"))
    includer = _Includer(spec_path.parent, report, limits)
    includer.visit(header.include, spec_path.parent, report, (spec_path,))
    extra = {name: entry for name, entry in includer.blocks.items() if name not in header.blocks}
    blocks = {**{name: spec for name, (spec, _) in extra.items()}, **header.blocks}
    return header.model_copy(update={"blocks": blocks}), {name: doc for name, (_, doc) in extra.items()}
