// playlista's page, the map: every analysed track as a point of /api/v1/map (one binary
// answer: ids, x, y, genre, top tag and tempo as columns), drawn into one canvas image per
// frame, so 100k points stay smooth. Drag and pinch (or arrow keys, + and −, the wheel) to
// move and zoom (Enter plays the point nearest the middle); tap a point to hear it (then radio,
// its page); "Path: pick two" builds a path between two tapped points; the list a list view
// sent here ("On the map"), else the queue, is drawn as its route.
//
// Uses app.js's el, api, $, playQueue, queue, startRadio and browse.js's showBuilt.
"use strict";

const MAP_MAGIC = "PLMAP1";
// Colours a point can take (genre or tag index modulo their number; the last for "other").
const PALETTE = [
  [0x1b, 0x9e, 0x77], [0xd9, 0x5f, 0x02], [0x75, 0x70, 0xb3], [0xe7, 0x29, 0x8a],
  [0x66, 0xa6, 0x1e], [0xe6, 0xab, 0x02], [0xa6, 0x76, 0x1d], [0x1f, 0x78, 0xb4],
  [0xb1, 0x59, 0x28], [0x6a, 0x3d, 0x9a], [0x33, 0xa0, 0x2c], [0xfb, 0x9a, 0x99],
  [0x88, 0x88, 0x88],
];
const TAP_RADIUS_PX = 18;
const GRID = 128;

// What the page knows of the map: the columns, the view, the grid for taps, what is drawn.
const mapState = {
  data: null, // {n, ids, x, y, genre, tag, bpm, legend, byId, grid}
  snapshot: null,
  view: { cx: 0.5, cy: 0.5, scale: 0.92 }, // centre in map units (0..1) and zoom
  selected: -1,
  route: null, // the list drawn, from a list's "On the map" (asked), else the queue's
  asked: null,
  pathFrom: -1,
  picking: false,
  drawn: 0,
  frame: 0,
};

async function loadMap() {
  const response = await fetch("/api/v1/map");
  if (!response.ok) throw new Error(`/api/v1/map: ${response.status}`);
  const buf = await response.arrayBuffer();
  const head = new DataView(buf);
  const magic = new TextDecoder().decode(new Uint8Array(buf, 0, 6));
  if (magic !== MAP_MAGIC) throw new Error("not a map answer");
  const n = head.getUint32(8, true);
  const l = head.getUint32(12, true);
  const legend = JSON.parse(new TextDecoder().decode(new Uint8Array(buf, 16, l)));
  let at = 16 + l;
  const ids = new Uint32Array(buf, at, n); at += 4 * n;
  const xs = new Uint16Array(buf.slice(at, at + 2 * n)); at += 2 * n;
  const ys = new Uint16Array(buf.slice(at, at + 2 * n)); at += 2 * n;
  const genre = new Uint8Array(buf, at, n); at += n;
  const tag = new Uint8Array(buf, at, n); at += n;
  const bpm = new Uint8Array(buf, at, n);
  const x = new Float32Array(n);
  const y = new Float32Array(n);
  const byId = new Map();
  // A grid of point lists over the map, for finding the point under a finger.
  const cells = Array.from({ length: GRID * GRID }, () => []);
  for (let i = 0; i < n; i++) {
    x[i] = xs[i] / 65535;
    y[i] = 1 - ys[i] / 65535;
    byId.set(ids[i], i);
    cells[Math.min(GRID - 1, (y[i] * GRID) | 0) * GRID + Math.min(GRID - 1, (x[i] * GRID) | 0)].push(i);
  }
  mapState.data = { n, ids, x, y, genre, tag, bpm, legend, byId, cells };
  // Untagged libraries are coloured by their sound.
  if (!legend.genres.length && $("map-colour").value === "genre") $("map-colour").value = "tag";
  mapState.selected = -1;
  renderLegend();
}

// Each point's colour as a canvas pixel (ABGR), for one way of colouring, made once.
function pixelColours(d, by) {
  const abgr = ([r, g, b]) => (0xff000000 | (b << 16) | (g << 8) | r) >>> 0;
  const tempo = (b) => {
    if (!b) return PALETTE[12];
    const t = Math.min(1, Math.max(0, (b - 60) / 120)); // 60 BPM blue → 180 BPM red
    return [Math.round(40 + 215 * t), Math.round(90 + 60 * (1 - Math.abs(t - 0.5) * 2)), Math.round(255 - 215 * t)];
  };
  const table = by === "tempo"
    ? Array.from({ length: 256 }, (_, b) => abgr(tempo(b)))
    : Array.from({ length: 256 }, (_, v) => abgr(v === 255 ? PALETTE[12] : PALETTE[v % 12]));
  const column = by === "tempo" ? d.bpm : by === "tag" ? d.tag : d.genre;
  const out = new Uint32Array(d.n);
  for (let i = 0; i < d.n; i++) out[i] = table[column[i]];
  return out;
}

function renderLegend() {
  const d = mapState.data;
  const by = $("map-colour").value;
  const ul = $("map-legend");
  ul.replaceChildren();
  if (!d) return;
  const swatch = (rgb) => {
    const span = el("span", { class: "swatch", "aria-hidden": "true" });
    span.style.backgroundColor = `rgb(${rgb.join(",")})`; // CSSOM: allowed by the page's CSP
    return span;
  };
  if (by === "tempo") {
    ul.append(el("li", {}, "Blue: slow (60 BPM) · red: fast (180 BPM) · grey: no tempo"));
    return;
  }
  const names = by === "tag" ? d.legend.tags : d.legend.genres;
  const used = new Set();
  for (let i = 0; i < d.n; i++) used.add(by === "tag" ? d.tag[i] : d.genre[i]);
  for (const v of [...used].filter((v) => v !== 255).sort((a, b) => a - b).slice(0, 12)) {
    ul.append(el("li", {}, swatch(PALETTE[v % 12]), names[v]));
  }
  if (used.has(255)) ul.append(el("li", {}, swatch(PALETTE[12]), by === "tag" ? "no sound tags (fast mode)" : "other genres"));
}

// Map units (0..1) to canvas pixels and back.
function toScreen(canvas, mx, my) {
  const v = mapState.view;
  const size = Math.min(canvas.width, canvas.height) * v.scale;
  return [(mx - v.cx) * size + canvas.width / 2, (my - v.cy) * size + canvas.height / 2];
}

function toMap(canvas, px, py) {
  const v = mapState.view;
  const size = Math.min(canvas.width, canvas.height) * v.scale;
  return [(px - canvas.width / 2) / size + v.cx, (py - canvas.height / 2) / size + v.cy];
}

function sizeCanvas() {
  const canvas = $("map-canvas");
  const ratio = window.devicePixelRatio || 1;
  const w = Math.round(canvas.clientWidth * ratio);
  const h = Math.round(canvas.clientHeight * ratio);
  if (canvas.width !== w || canvas.height !== h) {
    canvas.width = w;
    canvas.height = h;
  }
}

function drawMap() {
  mapState.frame = 0;
  const canvas = $("map-canvas");
  const d = mapState.data;
  if (!d || $("map-view").hidden) return;
  sizeCanvas();
  const ctx = canvas.getContext("2d");
  const w = canvas.width;
  const h = canvas.height;
  const image = ctx.createImageData(w, h);
  const px = new Uint32Array(image.data.buffer);
  const dark = matchMedia("(prefers-color-scheme: dark)").matches;
  px.fill(dark ? 0xff251e1b : 0xffffffff); // ABGR: the page's surface colour
  const by = $("map-colour").value;
  if (!d.colours || d.colouredBy !== by) {
    d.colours = pixelColours(d, by);
    d.colouredBy = by;
  }
  const colours = d.colours;
  // Points are bigger when there are few of them and as the map zooms in.
  const base = Math.min(6, Math.max(2, 5 * Math.sqrt(2000 / Math.max(d.n, 1))));
  const dot = Math.max(1, Math.round((window.devicePixelRatio || 1) * Math.min(12, base * Math.sqrt(mapState.view.scale))));
  let drawn = 0;
  const v = mapState.view;
  const size = Math.min(w, h) * v.scale;
  const ox = w / 2 - v.cx * size - dot / 2;
  const oy = h / 2 - v.cy * size - dot / 2;
  for (let i = 0; i < d.n; i++) {
    const x0 = (d.x[i] * size + ox) | 0;
    const y0 = (d.y[i] * size + oy) | 0;
    if (x0 < 0 || y0 < 0 || x0 >= w - dot || y0 >= h - dot) continue;
    const c = colours[i];
    for (let yy = 0; yy < dot; yy++) {
      const row = (y0 + yy) * w + x0;
      for (let xx = 0; xx < dot; xx++) px[row + xx] = c;
    }
    drawn++;
  }
  ctx.putImageData(image, 0, 0);
  mapState.drawn = drawn;
  drawRoute(ctx, canvas);
  if (document.activeElement === canvas) {
    // Where Enter plays from.
    const r = 8 * (window.devicePixelRatio || 1);
    ctx.beginPath();
    ctx.moveTo(w / 2 - r, h / 2);
    ctx.lineTo(w / 2 + r, h / 2);
    ctx.moveTo(w / 2, h / 2 - r);
    ctx.lineTo(w / 2, h / 2 + r);
    ctx.lineWidth = 2;
    ctx.strokeStyle = dark ? "#eceef2" : "#1a1b1e";
    ctx.stroke();
  }
  for (const [i, colour] of [[mapState.pathFrom, "#d95f02"], [mapState.selected, "#0a6b4d"]]) {
    if (i < 0) continue;
    const [sx, sy] = toScreen(canvas, d.x[i], d.y[i]);
    ctx.beginPath();
    ctx.arc(sx, sy, 9 * (window.devicePixelRatio || 1), 0, 2 * Math.PI);
    ctx.lineWidth = 3 * (window.devicePixelRatio || 1);
    ctx.strokeStyle = colour;
    ctx.stroke();
  }
}

// A list's route over the map: the one "On the map" was asked for, else the queue's.
function drawRoute(ctx, canvas) {
  const d = mapState.data;
  const list = mapState.route || (queue && queue.list);
  if (!list) return;
  const points = list.tracks.map((t) => d.byId.get(Number(t.id))).filter((i) => i !== undefined);
  if (points.length < 2) return;
  ctx.beginPath();
  points.forEach((i, k) => {
    const [sx, sy] = toScreen(canvas, d.x[i], d.y[i]);
    if (k === 0) ctx.moveTo(sx, sy);
    else ctx.lineTo(sx, sy);
  });
  ctx.lineWidth = 2 * (window.devicePixelRatio || 1);
  ctx.strokeStyle = "rgba(10, 107, 77, 0.85)";
  ctx.stroke();
}

function redraw() {
  if (!mapState.frame) mapState.frame = requestAnimationFrame(drawMap);
}

// The point nearest a canvas pixel, within the tap radius, or -1.
function pointAt(px, py) {
  const d = mapState.data;
  const canvas = $("map-canvas");
  const [mx, my] = toMap(canvas, px, py);
  const reach = (TAP_RADIUS_PX * (window.devicePixelRatio || 1)) / (Math.min(canvas.width, canvas.height) * mapState.view.scale);
  let best = -1;
  let bestDist = reach * reach;
  const c0 = Math.max(0, ((mx - reach) * GRID) | 0);
  const c1 = Math.min(GRID - 1, ((mx + reach) * GRID) | 0);
  const r0 = Math.max(0, ((my - reach) * GRID) | 0);
  const r1 = Math.min(GRID - 1, ((my + reach) * GRID) | 0);
  for (let r = r0; r <= r1; r++) {
    for (let c = c0; c <= c1; c++) {
      for (const i of d.cells[r * GRID + c]) {
        const dd = (d.x[i] - mx) ** 2 + (d.y[i] - my) ** 2;
        if (dd <= bestDist) {
          bestDist = dd;
          best = i;
        }
      }
    }
  }
  return best;
}

// A tapped point: play it (or, picking a path, take it as an end).
async function tapPoint(i) {
  const d = mapState.data;
  const id = d.ids[i];
  if (mapState.picking) {
    if (mapState.pathFrom < 0) {
      mapState.pathFrom = i;
      $("map-info").textContent = "Now tap where the path should end.";
      redraw();
      return;
    }
    const from = d.ids[mapState.pathFrom];
    mapState.pathFrom = -1;
    setPicking(false);
    if (from === id) return;
    try {
      showBuilt(await api(`/api/v1/path?from=${from}&to=${id}&length=12`), "Path on the map", { fromMap: true });
    } catch (e) {
      showError(`Cannot build the path (${e.message}).`);
    }
    return;
  }
  mapState.selected = i;
  redraw();
  const t = await api(`/api/v1/tracks/${id}`);
  playQueue({ key: `map${id}`, title: "Map", tracks: [t] }, 0);
  $("map-info").textContent = [t.title || "Untitled", t.artist, typeof t.bpm === "number" ? `${Math.round(t.bpm)} BPM` : null, keyName(t)]
    .filter(Boolean).join(" · ");
  const radio = el("button", { class: "secondary", type: "button" }, "Radio from here");
  radio.addEventListener("click", () => startRadio(t));
  $("map-actions").replaceChildren(radio,
    el("a", { class: "secondary", href: `#/track/${encodeURIComponent(t.id)}` }, "About"));
}

function setPicking(on) {
  mapState.picking = on;
  $("map-path").setAttribute("aria-pressed", String(on));
  if (on) $("map-info").textContent = "Tap where the path should start.";
}

$("map-path").addEventListener("click", () => {
  mapState.pathFrom = -1;
  setPicking(!mapState.picking);
  redraw();
});
$("on-map").addEventListener("click", () => {
  mapState.asked = shown;
});
$("map-colour").addEventListener("change", () => {
  renderLegend();
  redraw();
});

// Fingers, mouse and keys.
(() => {
  const canvas = $("map-canvas");
  const pointers = new Map();
  let pinch = null;
  let tap = null;
  const ratio = () => window.devicePixelRatio || 1;
  const local = (ev) => {
    const r = canvas.getBoundingClientRect();
    return [(ev.clientX - r.left) * ratio(), (ev.clientY - r.top) * ratio()];
  };
  const zoomAt = (px, py, factor) => {
    const [mx, my] = toMap(canvas, px, py);
    const v = mapState.view;
    v.scale = Math.min(400, Math.max(0.5, v.scale * factor));
    const [nx, ny] = toMap(canvas, px, py);
    v.cx += mx - nx;
    v.cy += my - ny;
    redraw();
  };
  canvas.addEventListener("pointerdown", (ev) => {
    canvas.setPointerCapture(ev.pointerId);
    pointers.set(ev.pointerId, local(ev));
    tap = pointers.size === 1 ? { at: local(ev), time: Date.now() } : null;
    if (pointers.size === 2) {
      const [a, b] = [...pointers.values()];
      pinch = { dist: Math.hypot(a[0] - b[0], a[1] - b[1]) };
    }
  });
  canvas.addEventListener("pointermove", (ev) => {
    if (!pointers.has(ev.pointerId)) return;
    const before = pointers.get(ev.pointerId);
    const now = local(ev);
    pointers.set(ev.pointerId, now);
    if (pointers.size === 2 && pinch) {
      const [a, b] = [...pointers.values()];
      const dist = Math.hypot(a[0] - b[0], a[1] - b[1]);
      if (pinch.dist > 0) zoomAt((a[0] + b[0]) / 2, (a[1] + b[1]) / 2, dist / pinch.dist);
      pinch.dist = dist;
      return;
    }
    if (tap && Math.hypot(now[0] - tap.at[0], now[1] - tap.at[1]) > 8 * ratio()) tap = null;
    const size = Math.min(canvas.width, canvas.height) * mapState.view.scale;
    mapState.view.cx -= (now[0] - before[0]) / size;
    mapState.view.cy -= (now[1] - before[1]) / size;
    redraw();
  });
  const up = (ev) => {
    pointers.delete(ev.pointerId);
    if (pointers.size < 2) pinch = null;
    if (tap && ev.type === "pointerup" && Date.now() - tap.time < 600 && mapState.data) {
      const i = pointAt(tap.at[0], tap.at[1]);
      if (i >= 0) tapPoint(i).catch((e) => showError(`Cannot play this point (${e.message}).`));
    }
    tap = null;
  };
  canvas.addEventListener("pointerup", up);
  canvas.addEventListener("pointercancel", up);
  canvas.addEventListener("wheel", (ev) => {
    ev.preventDefault();
    const [px, py] = local(ev);
    zoomAt(px, py, Math.exp(-ev.deltaY / 300));
  }, { passive: false });
  canvas.addEventListener("keydown", (ev) => {
    const step = 0.1 / mapState.view.scale;
    const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
    if (moves[ev.key]) {
      mapState.view.cx += moves[ev.key][0];
      mapState.view.cy += moves[ev.key][1];
      redraw();
    } else if (ev.key === "+" || ev.key === "=") {
      zoomAt(canvas.width / 2, canvas.height / 2, 1.25);
    } else if (ev.key === "-") {
      zoomAt(canvas.width / 2, canvas.height / 2, 0.8);
    } else if ((ev.key === "Enter" || ev.key === " ") && mapState.data) {
      // The keyboard's tap: the point nearest the middle of the view.
      const d = mapState.data;
      let best = -1;
      let bestDist = Infinity;
      for (let i = 0; i < d.n; i++) {
        const dd = (d.x[i] - mapState.view.cx) ** 2 + (d.y[i] - mapState.view.cy) ** 2;
        if (dd < bestDist) {
          bestDist = dd;
          best = i;
        }
      }
      if (best >= 0) tapPoint(best).catch((e) => showError(`Cannot play this point (${e.message}).`));
    } else {
      return;
    }
    ev.preventDefault();
  });
  window.addEventListener("resize", redraw);
  canvas.addEventListener("focus", redraw);
  canvas.addEventListener("blur", redraw);
  audio.addEventListener("play", redraw);
})();

// The view shows at once; the points follow (100k of them are ~0.8 MB to fetch).
async function openMap() {
  mapState.route = mapState.asked;
  mapState.asked = null;
  const shown = () => {
    const d = mapState.data;
    $("map-canvas").setAttribute("aria-label", `Map of the library: ${plural(d.n, "track", "tracks")}; tap a point to play it`);
    if (mapState.selected < 0) $("map-info").textContent = d.n ? "" : "No analysed tracks yet.";
    redraw();
  };
  if (mapState.data && mapState.snapshot === lastSnapshot) {
    setTimeout(shown, 0);
    return;
  }
  $("map-info").textContent = "Loading the map…";
  const snapshot = lastSnapshot;
  loadMap().then(() => {
    mapState.snapshot = snapshot;
    shown();
  }).catch((e) => showError(`Cannot load the map (${e.message}).`));
}

ROUTES.map = { section: "map-view", what: "map", tab: "map", open: openMap };
