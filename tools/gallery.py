"""The model zoo gallery: ``docs/zoo.md``, a diagram per spec in ``docs/zoo/`` and a screenshot of the interactive
viewer (``docs/zoo/viewer.png``, taken in headless Chromium), generated from ``specs/``.

``python -m tools.gallery [ROOT]`` rewrites both (``--check`` only reports whether they are current). The Markdown is
a pure function of the specs, so a test keeps it in step. The SVGs depend on the Graphviz version too, so each one
carries the SHA-256 of the DOT text it was drawn from: a diagram whose DOT is unchanged is neither redrawn nor
rewritten, and another Graphviz version causes no churn. The screenshot likewise carries the fingerprint of the page
it shows (its content and code, not its layout or pixels).
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import re
import struct
import sys
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from archc.compiler import Compiled, compile_file
from archc.emit.diagram import render, to_dot
from archc.emit.diagram.html import plan_viewer, viewer_html
from archc.errors import SpecError, UsageError
from archc.io import write_atomic
from archc.ir.graph import Node
from archc.ops.registry import get_op

MARKDOWN = Path("docs/zoo.md")
DIAGRAMS = Path("docs/zoo")
SPECS = Path("specs")
_DOT_HASH = re.compile(rb"<!-- archc-dot-sha256: ([0-9a-f]{64}) -->")
VIEWER_SPEC = "resnet50"
VIEWER_SHOT = DIAGRAMS / "viewer.png"
"""A screenshot of the interactive viewer (``archc draw SPEC -o net.html``) of :data:`VIEWER_SPEC`."""
VIEWER_FOUND = "layer2.0.conv2"
"""The layer the screenshot's search finds and hovers."""
_SHOT_KEY = b"archc-viewer-sha256"
_ABBREVIATIONS = frozenset({"al", "e.g", "i.e", "cf", "vs", "Fig", "Figs", "No", "approx"})


@dataclass(frozen=True)
class Entry:
    """What the gallery shows of one spec."""

    name: str
    spec: Path
    """The spec file, relative to the root."""
    compiled: Compiled

    @property
    def history(self) -> str:
        return history_line(self.compiled.header.doc or "")

    @property
    def inputs(self) -> str:
        g = self.compiled.graph
        parts = []
        for name in g.inputs:
            t = g.node(name).out_type
            assert t is not None
            parts.append(f"{name} {'x'.join(map(str, t.shape))}" + ("" if t.dtype == "float32" else f" {t.dtype}"))
        return ", ".join(parts)

    @property
    def last_spatial(self) -> Node | None:
        """The layer that makes the deepest feature map's receptive field: the last output with more than one
        position (global pooling and what follows it are not maps), traced back through point-wise layers
        (activations, norms) to the convolution, pooling or merge that produced it."""
        g = self.compiled.graph
        fields = self.compiled.receptive_fields()
        last = None
        for n in g.nodes():
            t = n.out_type
            if not n.is_input and t is not None and t.rank >= 2 and fields.get(n.name) is not None \
                    and any(d > 1 for d in t.spatial):
                last = n
        while last is not None and not self._makes_field(last):
            sources = g.input_names(last.name)
            before = g.node(sources[0]) if len(sources) == 1 else None
            if before is None or before.is_input or fields.get(before.name) != fields[last.name]:
                break
            last = before
        return last

    def _makes_field(self, n: Node) -> bool:
        op = get_op(n.op)
        if op is None or op.family == "merge":
            return True
        ins = [i.out_type for i in self.compiled.graph.inputs_of(n.name) if i.out_type is not None]
        return n.out_type is not None and op.window(n.params, ins, n.out_type) is not None


def entries(root: str | os.PathLike[str]) -> list[Entry]:
    """Every spec under ``root/specs``, compiled, sorted by file name."""
    base = Path(root)
    paths = sorted((base / SPECS).glob("*.yaml"))
    if not paths:
        raise UsageError(f"no specs found in {base / SPECS}")
    return [Entry(p.stem, p.relative_to(base), compile_file(p)) for p in paths]


# --- text -------------------------------------------------------------------------------------------------------------
def _top_level(text: str) -> Iterator[tuple[int, str]]:
    """(index, character) of the characters outside brackets, double quotes and `code`."""
    depth, quoted, code = 0, False, False
    for i, ch in enumerate(text):
        if ch == "`":
            code = not code
        elif code:
            continue
        elif ch == '"':
            quoted = not quoted
        elif ch in "([":
            depth += 1
        elif ch in ")]":
            depth = max(0, depth - 1)
        elif depth == 0 and not quoted:
            yield i, ch


def first_sentence(doc: str) -> str:
    """The doc's first sentence: up to the first top-level full stop that ends a word other than an abbreviation
    ("et al. 2014" does not end one) and is followed by a space and a capital, or by nothing."""
    text = " ".join(doc.split())
    for i, ch in _top_level(text):
        if ch != ".":
            continue
        rest = text[i + 1:]
        word = text[:i].rsplit(" ", 1)[-1]
        ends = rest == "" or (rest.startswith(" ") and rest[1:2].isupper())
        if ends and word not in _ABBREVIATIONS and not (len(word) == 1 and word.isupper()):
            return text[:i + 1]
    return text


def history_line(doc: str) -> str:
    """The first sentence, cut before a top-level colon that opens the architecture's details: what the network
    is and where it comes from."""
    sentence = first_sentence(doc)
    colon = next((i for i, ch in _top_level(sentence) if ch == ":"), None)
    if colon is not None:
        return sentence[:colon].rstrip() + "."
    return sentence if sentence.endswith(".") else sentence + "."


def gmacs(macs: int) -> str:
    """Billions of MACs: two decimals, or three significant digits where two decimals would show 0.00."""
    g = macs / 1e9
    if macs == 0 or g >= 0.005:
        return f"{g:.2f}"
    return f"{g:.{2 - math.floor(math.log10(float(f'{g:.3g}')))}f}"


def gallery_markdown(root: str | os.PathLike[str] = ".") -> str:
    """``docs/zoo.md`` for the specs under ``root``: a summary table, then a section per spec."""
    return _markdown(entries(root))


def _markdown(zoo: list[Entry]) -> str:
    out = ["# Model zoo", "",
           f"Generated from `specs/` by `python -m tools.gallery`; do not edit by hand (`tests/test_gallery.py` "
           f"checks that it is current). {len(zoo)} specs; every total is pinned by `tests/test_zoo.py` (the "
           "modern networks by `tests/test_zoo_modern.py`) against torchvision or the paper. Parameters are "
           "trainable ones; MACs are the multiply-accumulates of convolution and linear layers and of matrix "
           "products (attention's QK^T and AV) for one sample "
           "(torchvision's GFLOPS convention; FLOPs = 2 x MACs). "
           "See [the spec language](spec-language.md) and [the op reference](ops.md).", "",
           f"Each diagram below is static; `archc draw SPEC -o net.html` writes an interactive one, in one file: "
           f"[{VIEWER_SPEC}'s]({VIEWER_SHOT.relative_to('docs').as_posix()}) with `layer2` unfolded, a search for "
           f"`{VIEWER_FOUND}` and the pointer on it.", "",
           "| model | parameters | GMACs | layers | input |", "|---|---:|---:|---:|---|"]
    for e in zoo:
        t = e.compiled.costs.total
        out.append(f"| [{e.name}](#{e.name}) | {t.params:,} | {gmacs(t.macs)} | {t.layers:,} | {e.inputs} |")
    out.append("")
    for e in zoo:
        out += _section(e)
    return "\n".join(out)


def _section(e: Entry) -> list[str]:
    t = e.compiled.costs.total
    last = e.last_spatial
    if last is None:
        field = "none (no spatial axes)"
    else:
        field = f"{e.compiled.receptive_fields()[last.name]} at `{last.name}` ({last.op})"
    spec = e.spec.as_posix()
    return [f"## {e.name}", "", e.history, "",
            f"- **Input**: {e.inputs}",
            f"- **Parameters**: {t.params:,}",
            f"- **MACs**: {t.macs:,} ({gmacs(t.macs)} G)",
            f"- **Layers**: {t.layers:,}",
            f"- **Receptive field** of the last spatial layer: {field}",
            f"- **Spec**: [`{spec}`](../{spec})", "",
            f"[![{e.name}](zoo/{e.name}.svg)](zoo/{e.name}.svg)", ""]


# --- diagrams ---------------------------------------------------------------------------------------------------------
def diagram_dot(compiled: Compiled) -> str:
    """The gallery's diagram of a spec: the default layout, folding repeated blocks in large graphs."""
    return to_dot(compiled)


def dot_hash(dot: str) -> str:
    return hashlib.sha256(dot.encode()).hexdigest()


def svg_dot_hash(svg: bytes) -> str | None:
    """The DOT hash a gallery SVG was drawn from, or None for an SVG without one."""
    match = _DOT_HASH.search(svg)
    return match.group(1).decode() if match else None


def stamped_svg(dot: str) -> bytes:
    """The SVG Graphviz draws for ``dot``, with the DOT's hash in a comment before the ``<svg`` element."""
    svg = render(dot, "svg")
    at = svg.find(b"<svg")
    if at < 0:
        raise UsageError("Graphviz returned no <svg> element")
    return svg[:at] + f"<!-- archc-dot-sha256: {dot_hash(dot)} -->\n".encode() + svg[at:]


def stale_diagrams(root: str | os.PathLike[str], zoo: list[Entry] | None = None) -> list[str]:
    """Names of specs whose SVG is missing or was drawn from another DOT text."""
    base = Path(root)
    stale = []
    for e in zoo if zoo is not None else entries(root):
        path = base / DIAGRAMS / f"{e.name}.svg"
        if not path.is_file() or svg_dot_hash(path.read_bytes()) != dot_hash(diagram_dot(e.compiled)):
            stale.append(e.name)
    return stale


def write_gallery(root: str | os.PathLike[str] = ".", *, force: bool = False) -> list[Path]:
    """Bring ``docs/zoo.md`` and ``docs/zoo/*.svg`` up to date; returns the files written. Only files whose content
    changes are written (``force`` redraws every diagram); SVGs of specs that no longer exist are removed."""
    base = Path(root)
    zoo = entries(base)
    written: list[Path] = []
    redraw = {e.name for e in zoo} if force else set(stale_diagrams(base, zoo))
    for e in zoo:
        if e.name in redraw:
            path = base / DIAGRAMS / f"{e.name}.svg"
            if _write_if_changed(path, stamped_svg(diagram_dot(e.compiled))):
                written.append(path)
    names = {e.name for e in zoo}
    for old in sorted((base / DIAGRAMS).glob("*.svg")):
        if old.stem not in names:
            old.unlink()
            written.append(old)
    if _write_if_changed(base / MARKDOWN, _markdown(zoo).encode()):
        written.append(base / MARKDOWN)
    from tools.figures import write_figures  # the paper figures (docs/figures.md) are drawn with the zoo

    written += write_figures(base, force=force)
    shot = write_viewer_shot(base, force=force)
    if shot is not None:
        written.append(shot)
    return written


# --- the viewer's screenshot -----------------------------------------------------------------------------------------
def viewer_fingerprint(root: str | os.PathLike[str]) -> str:
    """What the screenshot shows, hashed: the page's content and code, not Graphviz's layout or Chromium's pixels."""
    return plan_viewer(compile_file(Path(root) / SPECS / f"{VIEWER_SPEC}.yaml")).fingerprint()


def png_stamp(png: bytes) -> str | None:
    """The fingerprint a gallery PNG carries in its ``tEXt`` chunk, or None."""
    at = 8
    while at + 8 <= len(png):
        length, kind = struct.unpack(">I4s", png[at:at + 8])
        body = png[at + 8:at + 8 + length]
        if kind == b"tEXt" and body.startswith(_SHOT_KEY + b"\0"):
            return body[len(_SHOT_KEY) + 1:].decode("ascii", errors="replace")
        at += 12 + length
    return None


def stamped_png(png: bytes, fingerprint: str) -> bytes:
    """``png`` with a ``tEXt`` chunk holding the fingerprint, right after the header chunk."""
    body = _SHOT_KEY + b"\0" + fingerprint.encode("ascii")
    chunk = struct.pack(">I", len(body)) + b"tEXt" + body + struct.pack(">I", zlib.crc32(b"tEXt" + body))
    header_end = 8 + 12 + struct.unpack(">I", png[8:12])[0]
    return png[:header_end] + chunk + png[header_end:]


def viewer_shot_stale(root: str | os.PathLike[str]) -> bool:
    """The screenshot is missing or shows another page (never, for a gallery without :data:`VIEWER_SPEC`)."""
    path = Path(root) / VIEWER_SHOT
    if not (Path(root) / SPECS / f"{VIEWER_SPEC}.yaml").is_file():
        return False
    return not path.is_file() or png_stamp(path.read_bytes()) != viewer_fingerprint(root)


def shoot_viewer(root: str | os.PathLike[str]) -> bytes | None:
    """The screenshot, taken in headless Chromium (None when no Chromium is installed): the stage ``layer2`` and
    its first block unfolded, :data:`VIEWER_FOUND` found by the search box and hovered."""
    from tests.cdp import Browser, find_chromium  # the test suite's DevTools driver; only this tool needs it here

    exe = find_chromium()
    if exe is None:
        return None
    base = Path(root)
    with tempfile.TemporaryDirectory() as tmp, Browser(exe, Path(tmp) / "profile", width=1100, height=720) as b:
        page_file = Path(tmp) / f"{VIEWER_SPEC}.html"
        page_file.write_text(viewer_html(compile_file(base / SPECS / f"{VIEWER_SPEC}.yaml")), encoding="utf-8")
        page = b.page()
        page.goto(page_file.as_uri(), ready="window.archcReady !== undefined")
        page.evaluate("archc.unfold('layer2'), archc.unfold('layer2.0'), document.getElementById('search').focus()")
        page.type_text(VIEWER_FOUND)
        x, y = page.evaluate("(() => { const r = document.querySelector('.hit').getBoundingClientRect(); "
                             "return [r.x + r.width / 2, r.y + r.height / 2]; })()")
        page.mouse("mouseMoved", x, y)
        if page.errors():
            raise UsageError(f"the viewer reported errors: {page.errors()}")
        return stamped_png(page.screenshot(), viewer_fingerprint(root))


def write_viewer_shot(root: str | os.PathLike[str] = ".", *, force: bool = False) -> Path | None:
    """Retake the screenshot if its page changed (or ``force``); the path written, or None when nothing was (current,
    or no Chromium: :func:`viewer_shot_stale` still says so)."""
    if not (Path(root) / SPECS / f"{VIEWER_SPEC}.yaml").is_file() or (not force and not viewer_shot_stale(root)):
        return None
    png = shoot_viewer(root)
    if png is None:
        return None
    write_atomic(Path(root) / VIEWER_SHOT, png, force=True)
    return Path(root) / VIEWER_SHOT


def _write_if_changed(path: Path, data: bytes) -> bool:
    if path.is_file() and path.read_bytes() == data:
        return False
    write_atomic(path, data, force=True)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.gallery", description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", default=".", help="the checkout holding specs/ and docs/ (default: .)")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if anything is out of date")
    parser.add_argument("--force", action="store_true", help="redraw every diagram")
    args = parser.parse_args(argv)
    try:
        if args.check:
            zoo = entries(args.root)
            stale = stale_diagrams(args.root, zoo)
            md = Path(args.root) / MARKDOWN
            if not md.is_file() or md.read_text(encoding="utf-8") != _markdown(zoo):
                stale.append(str(MARKDOWN))
            from tools.figures import FIGURES, stale_figures

            stale += [f"{FIGURES / name}.svg" for name in stale_figures(args.root)]
            if viewer_shot_stale(args.root):
                stale.append(str(VIEWER_SHOT))
            for name in stale:
                print(f"out of date: {name}")
            return 1 if stale else 0
        for path in write_gallery(args.root, force=args.force):
            print(f"{'removed' if not path.exists() else 'wrote'} {path}")
        if viewer_shot_stale(args.root):
            print(f"tools.gallery: note: no Chromium found: {VIEWER_SHOT} is out of date", file=sys.stderr)
    except (SpecError, UsageError) as exc:
        print(f"tools.gallery: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
