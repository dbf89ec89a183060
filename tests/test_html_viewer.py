"""The interactive viewer (`archc draw SPEC -o net.html`): its data and page, then the page in a real headless
Chromium driven over the DevTools protocol (tests/cdp.py): no console error and no request but the file itself,
hover, folding by click, search, DenseNet-201's time to first drawing, and a screenshot."""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from archc.compiler import compile_file
from archc.emit.diagram.html import frames_of, plan_viewer, viewer_data, viewer_html, wants_viewer
from archc.emit.diagram.view import LayoutBudget
from archc.errors import UsageError
from tests.cdp import Browser, Page, find_chromium
from tests.cli_runner import run

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
READY = "window.archcReady !== undefined"
READY_BOUND_MS = 2500.0
"""Generous for a loaded CI machine; bench/README.md has the measured figure (well under 1 s)."""

HOSTILE = """name: tiny
doc: "</script><script>window.pwned = 1</script><!-- <img src=x onerror=alert(1)> & \\u2028"
inputs: {x: [3, 8, 8]}
body:
  - conv: {id: "a</script>b", out: 4, k: 3}
  - group: {id: "g<img src=x onerror=alert(1)>", body: [relu, {conv: {id: "c&amp;", out: 4, k: 1}}]}
"""


def page_data(html: str) -> dict:
    scripts = re.findall(r'<script type="application/json" id="archc-data">(.*?)</script>', html, re.S)
    assert len(scripts) == 1
    return json.loads(scripts[0])


# --- the data ---------------------------------------------------------------------------------------------------------
def test_resnet50_frames_and_numbers() -> None:
    c = compile_file(SPECS / "resnet50.yaml")
    data = viewer_data(c)
    root = [(k, key) for k, key, *_ in data["frames"][""]["items"]]
    assert root == [("l", "image"), ("l", "conv1"), ("l", "bn1"), ("l", "2"), ("l", "maxpool"), ("s", "layer1"),
                    ("s", "layer2"), ("s", "layer3"), ("s", "layer4"), ("l", "avgpool"), ("l", "9"), ("l", "fc")]
    # a block's frame: its layers and its shortcut scope in source order, a port for its input and one for its output
    block = [(k, key) for k, key, *_ in data["frames"]["layer1.0"]["items"]]
    assert block == [("l", "layer1.0.conv1"), ("l", "layer1.0.bn1"), ("l", "layer1.0.0.2"), ("l", "layer1.0.conv2"),
                     ("l", "layer1.0.bn2"), ("l", "layer1.0.0.5"), ("l", "layer1.0.conv3"), ("l", "layer1.0.bn3"),
                     ("s", "layer1.0.downsample"), ("l", "layer1.0.0"), ("l", "layer1.0.1"), ("i", "maxpool"),
                     ("o", "layer1.0.1")]
    edges = [tuple(e[:3]) for e in data["frames"]["layer1.0"]["edges"]]
    assert edges == [(11, 0, 0), (0, 1, 0), (1, 2, 0), (2, 3, 0), (3, 4, 0), (4, 5, 0), (5, 6, 0), (6, 7, 0),
                     (11, 8, 1), (7, 9, 0), (8, 9, 1), (9, 10, 0), (10, 12, 0)]  # the shortcut's two dashed
    assert data["layers"]["layer1.0.conv2"] == ["layer1.0", "conv", "out=64, k=3, p=1, bias=False", "[64, 56, 56]",
                                                36_864, 115_605_504, "19 (stride 4)", "conv", []]
    assert data["layers"]["fc"][8] == ["output"]
    layer1 = c.costs.by_scope["layer1"]
    assert (layer1.params, layer1.macs) == (215_808, 667_942_912)
    assert data["scopes"]["layer1"] == ["", "stage", "bottleneck x 3", layer1.layers, 215_808, 667_942_912,
                                        "[256, 56, 56]", "35 (stride 4)"]
    # the stages start folded, and what is inside them too (unfolding shows one level more)
    assert data["folded"] == sorted(c.graph.scopes)
    # the edge into layer2 carries both its main path and its shortcut's input: drawn solid, not dashed
    items = {key: i for i, (_, key, *_) in enumerate(data["frames"][""]["items"])}
    top = {(a, b): shortcut for a, b, shortcut, _ in data["frames"][""]["edges"]}
    assert top[(items["layer1"], items["layer2"])] == 0


def test_fold_and_depth_choose_what_starts_folded() -> None:
    c = compile_file(SPECS / "resnet50.yaml")
    assert plan_viewer(c, fold=False).data["folded"] == []
    blocks = sorted(p for p, s in c.graph.scopes.items() if s.kind in ("block", "shortcut"))
    assert len(blocks) == 20 and plan_viewer(c, depth=2).data["folded"] == blocks  # and what is inside them
    small = compile_file(SPECS / "resnet18.yaml")  # 69 layers: nothing folds by default, as in the SVG
    assert plan_viewer(small).data["folded"] == []
    assert plan_viewer(small, fold=True).data["folded"] == sorted(small.graph.scopes)


SMALL_BUDGET = LayoutBudget(nodes=20, edges=100)


def test_a_scope_beyond_the_layout_budget_stays_folded() -> None:
    data = viewer_data(compile_file(SPECS / "vgg16.yaml"), budget=SMALL_BUDGET)
    assert data["sealed"] == {"features": [33, 32]}  # 31 layers and two ports: not laid out, never unfolded
    assert sorted(data["frames"]) == ["", "classifier"] and "features" in data["folded"]
    assert data["frames"][""]["items"][1][:2] == ["s", "features"]


def test_a_top_level_beyond_the_layout_budget_is_refused() -> None:
    with pytest.raises(UsageError) as caught:
        viewer_data(compile_file(SPECS / "mlp.yaml"), budget=LayoutBudget(nodes=5, edges=100))
    assert str(caught.value) == ("the top level holds 8 nodes and 7 edges, more than Graphviz lays out in reasonable "
                                 "time (5 nodes, 100 edges); group its steps into `group`s or `stage`s")


def test_every_edge_is_drawn_once_per_frame_and_ports_balance() -> None:
    c = compile_file(SPECS / "googlenet.yaml")
    frames = frames_of(c.graph)
    assert set(frames) == {"", *c.graph.scopes}
    layers = [key for f in frames.values() for key in f.items if key[0] == "l"]
    assert len(layers) == len(set(layers)) == len(c.graph)  # every layer in exactly one frame
    f = frames["inception3a"]
    ports = [key for key in f.items if key[0] in "io"]
    assert ports == [("i", "maxpool2"), ("o", "inception3a.0")]
    # the one input feeds the four branches (three blocks and a path), which meet in the concat, which leaves
    assert list(f.edges) == [(5, 0), (5, 1), (5, 2), (5, 3), (0, 4), (1, 4), (2, 4), (3, 4), (4, 6)]
    assert [key for key in f.items][:4] == [("s", f"inception3a.branch{i}") for i in range(1, 5)]


def test_the_page_is_self_contained_and_escapes_hostile_names(tmp_path: Path) -> None:
    spec = tmp_path / "hostile.yaml"
    spec.write_text(HOSTILE, encoding="utf-8")
    html = viewer_html(compile_file(spec))
    assert html.count("</script>") == 2  # the data's and the code's: no name closes either
    assert "<!--" not in html and "<img" not in html
    assert not re.search(r'(src|href)\s*=\s*["\']?(https?:|//)', html)  # nothing fetched: no CDN, no font
    data = page_data(html)
    # white space (the line separator too) closed up, as in the static diagram's title
    assert data["doc"] == "</script><script>window.pwned = 1</script><!-- <img src=x onerror=alert(1)> &"
    assert set(data["layers"]) == {"x", "a</script>b", "g<img src=x onerror=alert(1)>.0",
                                   "g<img src=x onerror=alert(1)>.c&amp;"}
    assert "default-src 'none'" in html  # the page's own policy forbids any request


def test_densenet201_page_size() -> None:
    html = viewer_html(compile_file(SPECS / "densenet201.yaml"))
    data = page_data(html)
    assert len(data["layers"]) == 708 and len(data["frames"]) == 107  # 707 layers and the input; 106 scopes
    assert len(html.encode()) < 500_000  # measured 316 KB


def test_draw_writes_the_viewer(tmp_path: Path) -> None:
    out = tmp_path / "net.html"
    result = run("draw", str(SPECS / "resnet18.yaml"), "-o", str(out))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"wrote {out}\n"
    assert page_data(out.read_text(encoding="utf-8"))["name"] == "resnet18"
    other = tmp_path / "net.page"
    assert run("draw", str(SPECS / "resnet18.yaml"), "-o", str(other), "--format", "html").exit_code == 0
    assert other.read_bytes() == out.read_bytes()  # deterministic


def test_draw_writes_no_viewer_for_a_spec_with_errors(tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text("name: bad\ninputs: {x: [3, 8, 8]}\nbody:\n  - conv: {id: c, out: 4, k: 9}\n", encoding="utf-8")
    out = tmp_path / "bad.html"
    result = run("draw", str(spec), "-o", str(out))
    assert result.exit_code == 1
    assert result.stderr.startswith(f"{spec}:4:5: E304: c: kernel 9 does not fit")
    assert not out.exists()


def test_wants_viewer() -> None:
    assert wants_viewer("a.html", None) and wants_viewer("a.HTM", None) and wants_viewer("a.svg", "html")
    assert not wants_viewer("a.html", "svg") and not wants_viewer("a.svg", None)


# --- in Chromium ------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    exe = find_chromium()
    if exe is None:
        pytest.skip("chromium is not installed (the test command installs Debian's chromium on CI)")
    with Browser(exe, tmp_path_factory.mktemp("profile")) as b:
        yield b


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pages")
    for name in ("resnet50", "densenet201"):
        (out / f"{name}.html").write_text(viewer_html(compile_file(SPECS / f"{name}.yaml")), encoding="utf-8")
    return out


def open_page(browser: Browser, path: Path) -> Page:
    page = browser.page()
    page.goto(path.as_uri(), ready=READY)
    return page


def centre(page: Page, path: str, part: str = "") -> tuple[float, float]:
    """The on-screen centre of the drawn node (or of the caption bar of the unfolded scope) for ``path``."""
    x, y = page.evaluate(f"""(() => {{
        let el = archc.element({json.dumps(path)});
        el = {json.dumps(part)} ? el.querySelector({json.dumps(part)}) : el;
        el.scrollIntoView({{block: "center", inline: "center"}});
        const r = el.getBoundingClientRect();
        return [r.x + r.width / 2, r.y + r.height / 2];
    }})()""")
    return x, y


def visible_paths(page: Page) -> list[str]:
    return page.evaluate("[...document.querySelectorAll('.node')].map((e) => e.dataset.path)")


def clean(page: Page, path: Path) -> None:
    assert page.errors() == []
    assert page.requests() == [path.as_uri()]
    assert page.failed_requests() == []


def test_resnet50_loads_clean_and_unfolds_a_stage_by_click(browser: Browser, pages: Path) -> None:
    path = pages / "resnet50.html"
    page = open_page(browser, path)
    before = visible_paths(page)
    assert before == ["image", "conv1", "bn1", "2", "maxpool", "layer1", "layer2", "layer3", "layer4", "avgpool",
                      "9", "fc"]
    page.click(*centre(page, "layer1"))
    after = visible_paths(page)
    assert len(after) == len(before) + 2  # the stage's node gives way to its three blocks
    assert [p for p in after if p.startswith("layer1")] == ["layer1.0", "layer1.1", "layer1.2"]
    page.click(*centre(page, "layer1.0"))
    inside = [p for p in visible_paths(page) if p.startswith("layer1.0")]
    assert inside == ["layer1.0.conv1", "layer1.0.bn1", "layer1.0.0.2", "layer1.0.conv2", "layer1.0.bn2",
                      "layer1.0.0.5", "layer1.0.conv3", "layer1.0.bn3", "layer1.0.downsample", "layer1.0.0",
                      "layer1.0.1"]
    page.click(*centre(page, "layer1", ".cap"))  # the caption bar folds it back
    assert visible_paths(page) == before
    clean(page, path)


def test_hover_shows_a_layers_numbers(browser: Browser, pages: Path) -> None:
    page = open_page(browser, pages / "resnet50.html")
    page.evaluate("archc.unfold('layer1'), archc.unfold('layer1.0')")
    page.mouse("mouseMoved", *centre(page, "layer1.0.conv2"))
    tip = page.evaluate("document.getElementById('tip').hidden ? null : document.getElementById('tip').innerText")
    rows = [line.split("\t") for line in tip.strip().split("\n")]
    assert rows == [["Path", "layer1.0.conv2"], ["Op", "conv"], ["Parameters", "out=64, k=3, p=1, bias=False"],
                    ["Output shape", "[64, 56, 56]"], ["Params", "36,864"], ["MACs", "115,605,504"],
                    ["Receptive field", "19 (stride 4)"]]
    page.mouse("mouseMoved", *centre(page, "layer3"))
    tip = page.evaluate("document.getElementById('tip').innerText")
    assert "Scope\tstage: bottleneck x 6" in tip and "Params\t7,098,368" in tip and "MACs\t1,464,336,384" in tip


def test_search_unfolds_highlights_and_scrolls_to_a_layer(browser: Browser, pages: Path) -> None:
    page = open_page(browser, pages / "densenet201.html")
    page.evaluate("document.getElementById('search').focus()")
    page.type_text("denselayer40.conv2")
    assert page.evaluate("document.getElementById('found').textContent") == "1 of 1"
    hit = page.evaluate("""(() => {
        const el = document.querySelector('.hit'), r = el.getBoundingClientRect(),
              c = document.getElementById('canvas').getBoundingClientRect();
        return [el.dataset.path, r.top >= c.top && r.bottom <= c.bottom && r.left >= c.left && r.right <= c.right];
    })()""")
    assert hit == ["features.denseblock3.denselayer40.conv2", True]
    shown = visible_paths(page)
    assert "features.denseblock3.denselayer39" in shown and "features.denseblock3" not in shown
    page.press("Enter")  # the only match again
    assert page.evaluate("document.getElementById('found').textContent") == "1 of 1"
    page.evaluate("document.getElementById('search').value = 'no such layer'; "
                  "document.getElementById('search').dispatchEvent(new Event('input'))")
    assert page.evaluate("document.getElementById('found').textContent") == "no match"
    assert page.errors() == []


def test_a_sealed_scope_does_not_unfold_and_search_shows_it(browser: Browser, tmp_path: Path) -> None:
    path = tmp_path / "vgg16.html"
    path.write_text(viewer_html(compile_file(SPECS / "vgg16.yaml"), fold=False, budget=SMALL_BUDGET),
                    encoding="utf-8")
    page = open_page(browser, path)
    before = visible_paths(page)
    assert "features" in before and "classifier.0" in before
    page.click(*centre(page, "features"))
    assert visible_paths(page) == before
    tip = page.evaluate("document.getElementById('tip').innerText")
    assert "too large to unfold here: 33 boxes and 32 edges, more than Graphviz lays out" in tip
    page.evaluate("document.getElementById('unfold-all').click()")
    assert visible_paths(page) == before
    assert page.evaluate("archc.find('features.10'), document.querySelector('.hit').dataset.path") == "features"
    clean(page, path)


def test_a_link_to_a_layer_opens_on_it(browser: Browser, pages: Path) -> None:
    page = browser.page()
    page.goto((pages / "resnet50.html").as_uri() + "#layer4.2.conv3", ready=READY)
    assert page.evaluate("[document.querySelector('.hit').dataset.path, "
                         "document.getElementById('search').value]") == ["layer4.2.conv3", "layer4.2.conv3"]
    page.evaluate("document.getElementById('search').focus()")
    page.send("Input.dispatchKeyEvent", {"type": "keyDown", "key": "Escape", "code": "Escape",
                                         "windowsVirtualKeyCode": 27})
    assert page.evaluate("document.querySelector('.hit') === null && document.getElementById('search').value") == ""
    page.evaluate("document.getElementById('search').blur()")
    page.send("Input.dispatchKeyEvent", {"type": "keyDown", "key": "/", "code": "Slash", "text": "/"})
    assert page.evaluate("document.activeElement.id") == "search"
    assert page.errors() == []


def test_densenet201_draws_within_the_bound_and_unfolds_whole(browser: Browser, pages: Path) -> None:
    path = pages / "densenet201.html"
    page = open_page(browser, path)
    ready = page.evaluate("window.archcReady")  # ms from the start of navigation to the first drawing painted
    assert 0 < ready < READY_BOUND_MS
    assert len(visible_paths(page)) == 26
    page.evaluate("document.getElementById('unfold-all').click()")
    assert len(visible_paths(page)) == 708
    clean(page, path)


OVERLAPS = """(() => {
    const boxes = (sel) => [...document.querySelectorAll(sel)].map((e) => [e, e.getBoundingClientRect()]);
    const nodes = boxes('.node > rect:last-of-type'), frames = boxes('.frame > rect.box');
    const meet = (a, b) => a.left < b.right - 0.5 && b.left < a.right - 0.5 && a.top < b.bottom - 0.5 &&
                           b.top < a.bottom - 0.5;
    const within = (a, b) => a.left >= b.left - 0.5 && a.right <= b.right + 0.5 && a.top >= b.top - 0.5 &&
                             a.bottom <= b.bottom + 0.5;
    const bad = [];
    for (let i = 0; i < nodes.length; i++) {
        for (let j = i + 1; j < nodes.length; j++) if (meet(nodes[i][1], nodes[j][1])) bad.push([i, j]);
    }
    for (const [f, fr] of frames) {
        for (const [n, nr] of [...nodes, ...frames]) {
            if (n === f || n.parentNode.contains(f)) continue;
            if (f.parentNode.contains(n) ? !within(nr, fr) : meet(nr, fr)) bad.push([f.parentNode.dataset.path]);
        }
    }
    return bad.length;
})()"""
"""Pairs of drawn boxes that overlap, and boxes inside an unfolded scope that stick out of it."""

DETACHED = """(() => {
    const bad = [];
    const depth = (p, n) => {  // how far a point lies outside box n (negative: inside)
        const lo = [n.c[0] - n.s[0] / 2, n.c[1] - n.s[1] / 2], hi = [n.c[0] + n.s[0] / 2, n.c[1] + n.s[1] / 2];
        const out = Math.hypot(Math.max(lo[0] - p[0], 0, p[0] - hi[0]), Math.max(lo[1] - p[1], 0, p[1] - hi[1]));
        return out > 0 ? out : -Math.min(p[0] - lo[0], hi[0] - p[0], p[1] - lo[1], hi[1] - p[1]);
    };
    const walk = (geo) => {
        for (const e of geo.edges) {
            const tail = depth(e.pts[0], geo.nodes[e.a]), head = depth(e.pts[e.pts.length - 1], geo.nodes[e.b]);
            if (tail > 1 || tail < -2 || head > 8 || head < -2) bad.push([geo.nodes[e.a].key, geo.nodes[e.b].key]);
        }
        for (const n of geo.nodes) if (n.sub) walk(n.sub);
    };
    walk(archc.layout());
    return bad;
})()"""
"""Edges whose tail is not on its box's border, or whose head is not within an arrowhead of it."""


@pytest.mark.parametrize("name", ["googlenet", "densenet201", "inception_v3"])
def test_unfolding_never_overlaps_boxes_or_detaches_edges(browser: Browser, tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.html"
    path.write_text(viewer_html(compile_file(SPECS / f"{name}.yaml")), encoding="utf-8")
    page = open_page(browser, path)
    assert (page.evaluate(OVERLAPS), page.evaluate(DETACHED)) == (0, [])
    page.evaluate("document.getElementById('unfold-all').click()")  # every branch beside every other grown
    assert (page.evaluate(OVERLAPS), page.evaluate(DETACHED)) == (0, [])
    # the check sees an overlap: one box moved onto another
    page.evaluate("""(() => {
        const [a, b] = [...document.querySelectorAll('.node > rect:last-of-type')];
        b.setAttribute('x', a.getAttribute('x'));
        b.setAttribute('y', a.getAttribute('y'));
    })()""")
    assert page.evaluate(OVERLAPS) >= 1
    assert page.errors() == []


def test_hostile_names_run_no_script_in_the_browser(browser: Browser, tmp_path: Path) -> None:
    spec = tmp_path / "hostile.yaml"
    spec.write_text(HOSTILE, encoding="utf-8")
    path = tmp_path / "hostile.html"
    path.write_text(viewer_html(compile_file(spec)), encoding="utf-8")
    page = open_page(browser, path)
    page.evaluate("document.getElementById('unfold-all').click()")
    assert page.evaluate("window.pwned === undefined && document.querySelectorAll('img').length === 0")
    assert visible_paths(page) == ["x", "a</script>b", "g<img src=x onerror=alert(1)>.0",
                                   "g<img src=x onerror=alert(1)>.c&amp;"]
    clean(page, path)


def test_zoom(browser: Browser, pages: Path) -> None:
    page = open_page(browser, pages / "resnet50.html")
    width = "Number(document.querySelector('#canvas svg').getAttribute('width'))"
    natural = page.evaluate(width)
    page.evaluate("document.getElementById('zoom-in').click(), document.getElementById('zoom-in').click()")
    assert page.evaluate(width) == round(natural * 1.25 * 1.25)
    page.evaluate("document.getElementById('unfold-all').click()")  # a new drawing keeps the zoom
    assert page.evaluate(width) == round(page.evaluate("archc.layout().w + 24") * 1.25 * 1.25)
    unfolded = page.evaluate("document.getElementById('zoom-reset').click(), " + width)
    room = page.evaluate("document.getElementById('canvas').clientWidth")
    page.evaluate("document.getElementById('zoom-fit').click()")
    fitted = page.evaluate(width)
    assert fitted == room  # the window's width
    x, y = centre(page, "conv1")
    page.send("Input.dispatchMouseEvent", {"type": "mouseWheel", "x": x, "y": y, "deltaX": 0, "deltaY": 100,
                                           "modifiers": 2})  # Ctrl + wheel down: out
    assert page.evaluate(width) == round(fitted / 1.25)
    assert unfolded > natural
    assert page.errors() == []


def test_screenshot(browser: Browser, pages: Path, tmp_path: Path) -> None:
    page = open_page(browser, pages / "resnet50.html")
    png = page.screenshot()
    (tmp_path / "resnet50.png").write_bytes(png)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", png[16:24]) == (1280, 900)
