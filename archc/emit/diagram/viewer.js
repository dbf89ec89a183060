"use strict";
// archc's interactive viewer. Each scope's picture (a "frame") was laid out by Graphviz on its own, its child scopes
// as single boxes. Drawing composes the frames of what is unfolded: an unfolded box grows to hold its frame and the
// rest of its parent's frame moves out of its way (see stretch): nothing comes to overlap and every edge stays
// attached to its boxes.
(() => {
  const D = JSON.parse(document.getElementById("archc-data").textContent);
  const MAIN = D.direction === "TB" || D.direction === "BT" ? 1 : 0;  // the rank axis: boxes grow along it freely
  const CROSS = 1 - MAIN;
  const PAD = 8, HEAD = 20, GAP = 12, LINE = 10, MARGIN = 12, ZOOM_STEP = 1.25, EPS = 0.01;
  const canvas = document.getElementById("canvas");
  const tip = document.getElementById("tip");
  const search = document.getElementById("search");
  const found = document.getElementById("found");
  const folded = new Set(D.folded);
  let zoom = 1, drawn = [], hit = "", matches = [], matchAt = -1, size = [0, 0];

  const ESC = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"};
  const esc = (s) => String(s).replace(/[&<>"']/g, (ch) => ESC[ch]);
  const num = (n) => n.toLocaleString("en-US");
  const itemId = (k, key) => k + ":" + key;

  function chain(scope) {  // the scope and its ancestors, outermost first
    const out = [];
    for (let s = scope; s; s = D.scopes[s][0]) out.unshift(s);
    return out;
  }

  // --- composing the frames ---------------------------------------------------------------------------------------
  function compose(path) {
    const f = D.frames[path];
    const nodes = f.items.map(([k, key, x, y, w, h, rows]) => ({k, key, c: [x, y], s: [w, h], rows, sub: null}));
    const edges = f.edges.map(([a, b, sc, p]) => {
      const pts = [];
      for (let i = 0; i < p.length; i += 2) pts.push([p[i], p[i + 1]]);
      return {a, b, sc, pts};
    });
    nodes.forEach((n, i) => {
      if (n.k !== "s" || folded.has(n.key) || D.sealed[n.key]) return;
      n.sub = compose(n.key);
      const wide = Math.max(n.sub.w + 2 * PAD, n.s[0], captionWidth(n.key));
      stretch(nodes, edges, i, [wide, Math.max(n.sub.h + HEAD + PAD, n.s[1])]);
    });
    return normalise(nodes, edges);
  }

  // Grow box i to `want`, its near side (top in TB) staying put. Across the rank axis, whatever lies wholly to one side
  // of the box moves aside, symmetrically, as far as something beside the box needs; along it, whatever lies wholly
  // past the box's far side moves on as far as the grown box needs. Boxes move rigidly and never closer to each
  // other, so nothing comes to overlap; an edge's ends move with their boxes, its inner points by the same rule.
  function stretch(nodes, edges, i, want) {
    const n = nodes[i];
    const lo = [n.c[0] - n.s[0] / 2, n.c[1] - n.s[1] / 2], hi = [n.c[0] + n.s[0] / 2, n.c[1] + n.s[1] / 2];
    const far = lo[MAIN] + want[MAIN];
    const span = (o, axis) => [o.c[axis] - o.s[axis] / 2, o.c[axis] + o.s[axis] / 2];
    const segments = (e, visit) => {  // a spline stays within its control points' hull
      for (let k = 1; k < e.pts.length; k++) {
        const p = e.pts[k - 1], q = e.pts[k];
        visit([Math.min(p[MAIN], q[MAIN]), Math.max(p[MAIN], q[MAIN])],
              [Math.min(p[CROSS], q[CROSS]), Math.max(p[CROSS], q[CROSS])]);
      }
    };
    const others = edges.filter((e) => e.a !== i && e.b !== i);
    // across: the room beside the box, within its band
    let roomLo = Infinity, roomHi = Infinity;
    const beside = ([a, b], [c0, c1]) => {
      if (b < lo[MAIN] || a > hi[MAIN]) return;
      if (c1 <= n.c[CROSS]) roomLo = Math.min(roomLo, lo[CROSS] - c1);
      else if (c0 >= n.c[CROSS]) roomHi = Math.min(roomHi, c0 - hi[CROSS]);
      else roomLo = roomHi = 0;
    };
    nodes.forEach((o, j) => { if (j !== i) beside(span(o, MAIN), span(o, CROSS)); });
    for (const e of others) segments(e, beside);
    const need = (want[CROSS] - n.s[CROSS]) / 2;
    const g = Math.max(0, need - (roomLo - GAP), need - (roomHi - GAP));
    const across = ([c0, c1]) => c1 <= lo[CROSS] + EPS ? -g : c0 >= hi[CROSS] - EPS ? g : 0;
    // along: the room past the far side, across the grown box's width
    const w0 = n.c[CROSS] - want[CROSS] / 2 - GAP, w1 = n.c[CROSS] + want[CROSS] / 2 + GAP;
    let room = Infinity;
    const past = ([a], [c0, c1]) => {
      const d = across([c0, c1]);
      if (a >= hi[MAIN] - EPS && c1 + d > w0 && c0 + d < w1) room = Math.min(room, a - hi[MAIN] - GAP);
    };
    nodes.forEach((o, j) => { if (j !== i) past(span(o, MAIN), span(o, CROSS)); });
    for (const e of others) for (const p of e.pts) past([p[MAIN]], [p[CROSS], p[CROSS]]);
    const extra = Math.max(0, want[MAIN] - n.s[MAIN] - room);
    const along = (a) => a >= hi[MAIN] - EPS ? extra : 0;
    const shift = (m, c0, c1) => { const d = [0, 0]; d[MAIN] = along(m); d[CROSS] = across([c0, c1]); return d; };
    const shifts = nodes.map((o, j) => j === i ? [0, 0] : shift(span(o, MAIN)[0], ...span(o, CROSS)));
    const half = want[CROSS] / 2;
    const grown = (p) => {  // a point on the box's own border, onto the grown box's: the far half follows the far side
      if (p[MAIN] > n.c[MAIN]) p[MAIN] = far - (hi[MAIN] - p[MAIN]);
      if (p[CROSS] >= hi[CROSS] - 1.5) p[CROSS] = n.c[CROSS] + half + (p[CROSS] - hi[CROSS]);
      else if (p[CROSS] <= lo[CROSS] + 1.5) p[CROSS] = n.c[CROSS] - half - (lo[CROSS] - p[CROSS]);
    };
    for (const e of edges) {
      const last = e.pts.length - 1, own = e.a === i ? e.pts[0] : e.b === i ? e.pts[last] : null;
      const leavesFar = own !== null && own[MAIN] > n.c[MAIN];
      e.pts.forEach((p, k) => {
        const end = k === 0 ? e.a : k === last ? e.b : -1;
        if (end === i) return grown(p);
        const d = end >= 0 ? shifts[end] : shift(p[MAIN], p[CROSS], p[CROSS]);
        p[0] += d[0];
        p[1] += d[1];
        if (own && end < 0 && Math.abs(p[CROSS] - n.c[CROSS]) < half && p[MAIN] > lo[MAIN] && p[MAIN] < far) {
          p[MAIN] = leavesFar ? far : lo[MAIN];  // a bend of the box's own edge, out of the grown box
        }
      });
    }
    nodes.forEach((o, j) => { o.c[0] += shifts[j][0]; o.c[1] += shifts[j][1]; });
    n.c[MAIN] = lo[MAIN] + want[MAIN] / 2;
    n.s = want.slice();
  }

  function normalise(nodes, edges) {
    const lo = [Infinity, Infinity], hi = [-Infinity, -Infinity];
    const take = (a, b, axis) => { lo[axis] = Math.min(lo[axis], a); hi[axis] = Math.max(hi[axis], b); };
    for (const n of nodes) for (const a of [0, 1]) take(n.c[a] - n.s[a] / 2, n.c[a] + n.s[a] / 2, a);
    for (const e of edges) for (const p of e.pts) for (const a of [0, 1]) take(p[a], p[a], a);
    for (const n of nodes) for (const a of [0, 1]) n.c[a] -= lo[a];
    for (const e of edges) for (const p of e.pts) for (const a of [0, 1]) p[a] -= lo[a];
    return {w: hi[0] - lo[0], h: hi[1] - lo[1], nodes, edges};
  }

  // --- drawing ----------------------------------------------------------------------------------------------------
  function rowsSvg(rows, cx, cy) {  // rows as Graphviz sized them: 10 points a line, 9 for the small grey ones
    const heights = rows.map(([, style]) => style === "m" ? LINE - 1 : LINE);
    let y = cy - heights.reduce((a, b) => a + b, 0) / 2;
    return rows.map(([text, style], r) => {
      y += heights[r];
      return `<text x="${cx.toFixed(1)}" y="${(y - 1.5).toFixed(1)}"${style ? ` class="${style}"` : ""}>` +
        `${esc(text)}</text>`;
    }).join("");
  }

  const measure = document.createElement("canvas").getContext("2d");
  measure.font = `bold 10px ${D.font.replace(/,/g, ", ")}`;
  const captionWidth = (path) => measure.measureText(`− ${path}  ${D.scopes[path][2]}`).width + 16;

  function paint(geo, ox, oy, level, out) {
    for (const e of geo.edges) {
      const p = e.pts.map((q) => `${(q[0] + ox).toFixed(1)},${(q[1] + oy).toFixed(1)}`);
      const curve = p.length >= 4 && (p.length - 1) % 3 === 0;
      out.push(`<path class="edge${e.sc ? " sc" : ""}" d="M${p[0]}${curve ? "C" : "L"}${p.slice(1).join(" ")}"/>`);
    }
    for (const n of geo.nodes) {
      const x = n.c[0] - n.s[0] / 2 + ox, y = n.c[1] - n.s[1] / 2 + oy, w = n.s[0], h = n.s[1];
      if (n.k === "i" || n.k === "o") {
        out.push(`<circle class="port" cx="${(x + w / 2).toFixed(1)}" cy="${(y + h / 2).toFixed(1)}" r="2.5"/>`);
        continue;
      }
      const i = drawn.push(n) - 1;
      const id = itemId(n.k, n.key);
      const mark = id === hit ? " hit" : "";
      const box = `x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${w.toFixed(1)}"`;
      if (n.sub) {
        const facts = D.scopes[n.key];
        out.push(`<g class="frame${mark}" data-i="${i}" data-path="${esc(n.key)}">` +
          `<rect class="box" ${box} height="${h.toFixed(1)}" rx="6" fill="${D.frame[level % 2]}"/>` +
          `<g class="cap" data-i="${i}"><rect ${box} height="${HEAD}" rx="6"/>` +
          `<text x="${(x + 8).toFixed(1)}" y="${(y + 14).toFixed(1)}"><tspan class="b">− ${esc(n.key)}</tspan>` +
          `  ${esc(facts[2])}</text></g>`);
        paint(n.sub, x + (w - n.sub.w) / 2, y + HEAD + (h - HEAD - PAD - n.sub.h) / 2, level + 1, out);
        out.push("</g>");
        continue;
      }
      let fill, border, cls = "node";
      if (n.k === "s") {
        [fill, border] = D.styles.block;
        cls += " fold";
      } else {
        const facts = D.layers[n.key];
        [fill, border] = D.styles[facts[7]] || D.other;
        if (facts[8].length) cls += " out";
      }
      const back = n.k === "s" ? `<rect class="back" x="${(x + 3).toFixed(1)}" y="${(y - 3).toFixed(1)}" ` +
        `width="${w.toFixed(1)}" height="${h.toFixed(1)}" fill="${fill}" stroke="${border}"/>` : "";
      out.push(`<g class="${cls}${mark}" data-i="${i}" data-path="${esc(n.key)}">${back}` +
        `<rect ${box} height="${h.toFixed(1)}" rx="${n.k === "s" ? 1 : 4}" fill="${fill}" stroke="${border}"/>` +
        `${rowsSvg(n.rows, x + w / 2, y + h / 2)}</g>`);
    }
  }

  function render() {
    const geo = compose("");
    drawn = [];
    const out = [];
    paint(geo, MARGIN, MARGIN, 0, out);
    size = [geo.w + 2 * MARGIN, geo.h + 2 * MARGIN];
    const marker = (id, colour) => `<marker id="${id}" viewBox="0 0 6 4.4" refX="0" refY="2.2" markerWidth="6" ` +
      `markerHeight="4.4" markerUnits="userSpaceOnUse" orient="auto"><path d="M0,0L6,2.2L0,4.4z" ` +
      `fill="${colour}"/></marker>`;
    canvas.innerHTML = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${size[0].toFixed(1)} ` +
      `${size[1].toFixed(1)}" width="${(size[0] * zoom).toFixed(0)}" height="${(size[1] * zoom).toFixed(0)}" ` +
      `font-family="${esc(D.font.replace(/,/g, ", "))}" font-size="10" text-anchor="middle">` +
      `<defs>${marker("ah", D.edge)}${marker("ah-sc", D.shortcut)}</defs><style>` +
      `.edge{fill:none;stroke:${D.edge};stroke-width:.9;marker-end:url(#ah)}` +
      `.edge.sc{stroke:${D.shortcut};stroke-dasharray:5 3;stroke-width:1.2;marker-end:url(#ah-sc)}` +
      `.port{fill:${D.edge}} .b{font-weight:bold} .m{font-size:9px;fill:#555} .i{font-style:italic}` +
      `.frame>rect.box{stroke:${D.frameBorder}} .cap rect{fill:${D.frameBorder};fill-opacity:.25;stroke:none}` +
      `.cap text{text-anchor:start} .out>rect{stroke-width:2.2} .fold>rect{stroke-width:1.6}</style>` +
      `${out.join("")}</svg>`;
  }

  function element(k, key) {
    const i = drawn.findIndex((n) => n.k === k && n.key === key);
    return i < 0 ? null : canvas.querySelector(`[data-i="${i}"]`);
  }

  // Fold or unfold a scope, keeping the clicked box where it was on the screen.
  function toggle(path, fold) {
    const before = element("s", path)?.getBoundingClientRect();
    if (fold) folded.add(path); else folded.delete(path);
    render();
    const after = element("s", path)?.getBoundingClientRect();
    if (before && after) {
      canvas.scrollLeft += after.left - before.left;
      canvas.scrollTop += after.top - before.top;
    }
  }

  // --- hover --------------------------------------------------------------------------------------------------------
  function tipRows(n) {
    if (n.k === "l") {
      const [, op, params, shape, count, macs, field, , outputs] = D.layers[n.key];
      const rows = [["Path", n.key], ["Op", op], ["Parameters", params || "–"], ["Output shape", shape],
                    ["Params", num(count), 1], ["MACs", num(macs), 1], ["Receptive field", field]];
      if (outputs.length) rows.push(["Model output", outputs.join(", ")]);
      return rows;
    }
    const [, kind, caption, layers, count, macs, shape, field] = D.scopes[n.key];
    const sealed = D.sealed[n.key];
    const hint = sealed ? `too large to unfold here: ${num(sealed[0])} boxes and ${num(sealed[1])} edges, more than ` +
      `Graphviz lays out in reasonable time (${num(D.budget[0])} boxes, ${num(D.budget[1])} edges)`
      : n.sub ? "click the caption to fold" : "click to unfold";
    return [["Path", n.key], ["Scope", `${kind}: ${caption}`], ["Layers", num(layers), 1], ["Output shape", shape],
            ["Params", num(count), 1], ["MACs", num(macs), 1], ["Receptive field", field], ["", hint]];
  }

  function showTip(n, ev) {
    tip.innerHTML = "<table>" + tipRows(n).map(([name, value, numeric]) =>
      `<tr><th>${esc(name)}</th><td${numeric ? ' class="num"' : ""}>${esc(value)}</td></tr>`).join("") + "</table>";
    tip.hidden = false;
    const box = tip.getBoundingClientRect();
    tip.style.left = `${Math.max(0, Math.min(ev.clientX + 14, innerWidth - box.width - 4))}px`;
    tip.style.top = `${Math.max(0, ev.clientY + 14 + box.height > innerHeight ? ev.clientY - box.height - 8
                                                                             : ev.clientY + 14)}px`;
  }

  function target(ev) {
    const el = ev.target.closest(".node, .cap");
    return el ? drawn[Number(el.dataset.i)] : null;
  }

  canvas.addEventListener("mousemove", (ev) => {
    const n = target(ev);
    if (n) showTip(n, ev); else tip.hidden = true;
  });
  canvas.addEventListener("mouseleave", () => { tip.hidden = true; });
  canvas.addEventListener("click", (ev) => {
    const n = target(ev);
    if (!n || n.k !== "s" || D.sealed[n.key]) return;
    tip.hidden = true;
    toggle(n.key, Boolean(n.sub));
  });

  // --- search -------------------------------------------------------------------------------------------------------
  const everything = [...Object.keys(D.layers).map((key) => ["l", key]), ...Object.keys(D.scopes).map((key) => ["s", key])];

  function find(query) {
    const q = query.trim().toLowerCase();
    const ranked = [[], [], []];
    if (q) {
      for (const [k, key] of everything) {
        const low = key.toLowerCase();
        if (low === q) ranked[0].push([k, key]);
        else if (low.startsWith(q)) ranked[1].push([k, key]);
        else if (low.includes(q)) ranked[2].push([k, key]);
      }
    }
    matches = ranked.flat();
    matchAt = -1;
    if (matches.length) step(1);
    else {
      found.textContent = q ? "no match" : "";
      if (hit) { hit = ""; render(); }
    }
    return matches.length;
  }

  function step(by) {
    if (!matches.length) return;
    matchAt = (matchAt + by + matches.length) % matches.length;
    let [k, key] = matches[matchAt];
    for (const s of chain(k === "l" ? D.layers[key][0] : D.scopes[key][0])) {
      if (D.sealed[s]) { [k, key] = ["s", s]; break; }  // inside a scope too large to unfold: show that scope
      folded.delete(s);
    }
    hit = itemId(k, key);
    render();
    element(k, key)?.scrollIntoView({block: "center", inline: "center"});
    found.textContent = `${matchAt + 1} of ${matches.length}`;
  }

  search.addEventListener("input", () => find(search.value));
  document.addEventListener("keydown", (ev) => {  // "/" jumps to the search box, as on most sites
    if (ev.key === "/" && document.activeElement !== search) { ev.preventDefault(); search.focus(); }
  });
  search.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter") { ev.preventDefault(); step(ev.shiftKey ? -1 : 1); }
    if (ev.key === "Escape") { search.value = ""; find(""); }
  });

  // --- toolbar ------------------------------------------------------------------------------------------------------
  function setZoom(z) {
    zoom = Math.min(8, Math.max(0.05, z));
    const svg = canvas.querySelector("svg");
    svg.setAttribute("width", (size[0] * zoom).toFixed(0));
    svg.setAttribute("height", (size[1] * zoom).toFixed(0));
  }

  document.getElementById("unfold-all").addEventListener("click", () => { folded.clear(); render(); });
  document.getElementById("fold-all").addEventListener("click", () => {
    for (const key of Object.keys(D.scopes)) folded.add(key);
    render();
  });
  document.getElementById("zoom-in").addEventListener("click", () => setZoom(zoom * ZOOM_STEP));
  document.getElementById("zoom-out").addEventListener("click", () => setZoom(zoom / ZOOM_STEP));
  document.getElementById("zoom-reset").addEventListener("click", () => setZoom(1));
  document.getElementById("zoom-fit").addEventListener("click", () => setZoom(canvas.clientWidth / size[0]));
  canvas.addEventListener("wheel", (ev) => {  // Ctrl + wheel (and a touchpad's pinch) zooms, as in map viewers
    if (!ev.ctrlKey) return;
    ev.preventDefault();
    setZoom(zoom * (ev.deltaY < 0 ? ZOOM_STEP : 1 / ZOOM_STEP));
  }, {passive: false});

  // --- heading ------------------------------------------------------------------------------------------------------
  document.getElementById("name").textContent = D.name;
  document.getElementById("facts").textContent = `${D.inputs} · ${D.facts}`;
  document.getElementById("doc").textContent = D.note ? `${D.doc} (${D.note})` : D.doc;
  const families = new Set(Object.values(D.layers).map((facts) => facts[7]));
  if (Object.keys(D.scopes).length) families.add("block");
  document.getElementById("legend").innerHTML = Object.entries(D.styles).filter(([fam]) => families.has(fam))
    .map(([, [fill, border, caption]]) =>
      `<span class="sw" style="background:${esc(fill)};border-color:${esc(border)}"></span>${esc(caption)}`)
    .join("") + ` <span class="sw" style="border:none;border-top:2px dashed ${esc(D.shortcut)};height:0"></span>` +
    "shortcut · click a folded scope to unfold it, its caption to fold it";

  render();
  if (location.hash.length > 1) {  // net.html#layer3.2.conv2 opens on that layer, found as by the search box
    search.value = decodeURIComponent(location.hash.slice(1));
    find(search.value);
  }
  // "ready" once the first drawing has been painted: the next frame after it
  requestAnimationFrame(() => setTimeout(() => {
    window.archcReady = performance.now();
    document.documentElement.dataset.ready = "1";
  }));
  window.archc = {
    find, step, render,
    fold: (path) => toggle(path, true),
    unfold: (path) => toggle(path, false),
    visible: () => canvas.querySelectorAll(".node").length,
    layout: () => compose(""),  // the composed geometry, for checks
    element: (path) => element("l", path) || element("s", path),
  };
})();
