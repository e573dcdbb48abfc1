// playlista's page: the box's status, its playlists by method, a playlist's tracks, and a
// player that plays a list in order (or a radio from one track) with an <audio> element.
//
// Reads the JSON API only (/api/v1/status, /api/v1/playlists, /api/v1/playlists/ID,
// /api/v1/tracks/ID/similar); plays /stream/ID. Views follow the URL hash (#/, #/playlist/ID,
// #/radio/ID) so the phone's back button works. Every text from the API goes into the page
// through textContent or createTextNode, never as markup.
"use strict";

const STATUS_BUSY_MS = 3000; // status refresh while the box analyses
const STATUS_IDLE_MS = 30000; // and while it rests (to notice a new run)
const RADIO_LENGTH = 25;

const $ = (id) => document.getElementById(id);
const audio = $("audio");

// ---------- building the page safely ----------

// el("li", {class: "x", "aria-label": name}, child, "text", ...): strings become text nodes.
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    node.append(typeof c === "string" ? document.createTextNode(c) : c);
  }
  return node;
}

// File names used as titles ("warzone_track23_blast_zone.mp3") may wrap after "_" and before
// ".", not anywhere.
function breakable(text) {
  const out = document.createDocumentFragment();
  String(text).split(/(?<=_)|(?=\.)/).forEach((part, i) => {
    if (i) out.append(document.createElement("wbr"));
    out.append(part);
  });
  return out;
}

// Icons are fixed path data from this file, drawn with createElementNS.
const ICONS = {
  radio: ["M12 10.2a1.8 1.8 0 1 1 0 3.6a1.8 1.8 0 1 1 0-3.6z", "M8.1 8.1a5.5 5.5 0 0 0 0 7.8M15.9 8.1a5.5 5.5 0 0 1 0 7.8M5.3 5.3a9.5 9.5 0 0 0 0 13.4M18.7 5.3a9.5 9.5 0 0 1 0 13.4"],
  why: ["M12 3.5a8.5 8.5 0 1 1 0 17a8.5 8.5 0 1 1 0-17z", "M12 11v5.5M12 7.6v.1"],
  download: ["M12 4v11m-5-5 5 5 5-5M5 20h14"],
  chevron: ["M9 5l7 7-7 7"],
};

function icon(name) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  for (const d of ICONS[name]) {
    const p = document.createElementNS(ns, "path");
    p.setAttribute("d", d);
    svg.append(p);
  }
  return svg;
}

// ---------- formatting ----------

const numberFormat = new Intl.NumberFormat();
const num = (n) => numberFormat.format(n);
const plural = (n, one, many) => `${num(n)} ${n === 1 ? one : many}`;

// Playlist names are file names: show words, not underscores.
const nice = (name) => String(name).replace(/_/g, " ");

function clock(seconds) {
  const s = Math.max(0, Math.round(Number(seconds) || 0));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

function length(seconds) {
  const m = Math.round((Number(seconds) || 0) / 60);
  if (m < 1) return `${Math.round(Number(seconds) || 0)} s`;
  if (m < 60) return `${m} min`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, "0")} min`;
}

// Facts wrap between each other, never inside one ("70 BPM", "C major (8B)"): no-break spaces.
function keyName(t) {
  if (!t.key) return null;
  const k = t.scale ? `${t.key}\u00a0${t.scale}` : t.key;
  return t.camelot ? `${k}\u00a0(${t.camelot})` : k;
}

function trackFacts(t) {
  return [
    t.artist,
    typeof t.bpm === "number" ? `${Math.round(t.bpm)}\u00a0BPM` : null,
    keyName(t),
    Array.isArray(t.sounds_like) ? t.sounds_like.join(", ") : null,
  ].filter(Boolean).join(" · ");
}

// ---------- the API ----------

async function api(path) {
  const response = await fetch(path, { headers: { Accept: "application/json" } });
  let body = null;
  try {
    body = await response.json();
  } catch (_) {
    // not JSON: reported below by status
  }
  if (!response.ok) {
    const why = body && typeof body.error === "string" ? body.error : response.statusText;
    throw new Error(`${path}: ${response.status} ${why}`);
  }
  return body;
}

function showError(message) {
  const p = $("error");
  p.textContent = message;
  p.hidden = !message;
}

// ---------- status ----------

let lastSnapshot = null;
let statusTimer = null;

function renderStatus(st) {
  const a = st.analysis || {};
  const running = Boolean(a.running);
  const lib = (running && a.live) || st.library || {};
  const total = lib.tracks || 0;
  const done = lib.analyzed || 0;
  const failed = lib.failed || 0;

  $("box-name").textContent = st.name || "playlista";
  document.title = st.name ? `${st.name} · playlista` : "playlista";

  let line;
  if (running) {
    line = `Analysing: ${num(done)} of ${plural(total, "track", "tracks")}`;
  } else if (total === 0) {
    line = "No music found yet";
  } else if (done + failed < total) {
    line = `${num(done)} of ${plural(total, "track", "tracks")} analysed, ${num(total - done - failed)} waiting`;
  } else {
    line = `${plural(done, "track", "tracks")} · ${length((lib.audio_hours || 0) * 3600)} of music`;
  }
  $("status-line").textContent = line;

  const bar = $("status-progress");
  bar.hidden = !running;
  bar.max = Math.max(total, 1);
  bar.value = Math.min(done + failed, bar.max);

  const details = [];
  if (running && a.phase) details.push(a.phase);
  if (failed) details.push(`${plural(failed, "file", "files")} could not be read`);
  if (a.last_error) details.push(`last run failed: ${a.last_error}`);
  const detail = $("status-detail");
  detail.textContent = details.join(" · ");
  detail.hidden = details.length === 0;
  return running;
}

async function refreshStatus() {
  clearTimeout(statusTimer);
  let running = false;
  try {
    const st = await api("/api/v1/status");
    running = renderStatus(st);
    if (lastSnapshot !== null && st.snapshot_at !== lastSnapshot) loadPlaylists();
    lastSnapshot = st.snapshot_at;
  } catch (e) {
    $("status-line").textContent = "The box does not answer";
  }
  statusTimer = setTimeout(refreshStatus, running ? STATUS_BUSY_MS : STATUS_IDLE_MS);
}

document.addEventListener("visibilitychange", () => {
  if (document.hidden) clearTimeout(statusTimer);
  else refreshStatus();
});

// ---------- home: playlists by method ----------

const METHODS = [
  ["mix", "DJ mixes", "Compatible keys, small tempo steps, energy up then down"],
  ["time", "Times of day", "A mood for each part of the day"],
  ["kmeans", "Sounds alike", "Tracks grouped by how they sound"],
  ["tags", "Genres and decades", "From the files' tags"],
  ["all", "Tempo and energy", "Buckets of tempo, energy, key and brightness"],
  ["cache", "Moods", "Bins of tempo, energy and mood"],
  ["radio", "Radios", "Tracks near one track"],
  ["path", "Paths", "From one track to another, step by step"],
];

function renderPlaylists(lists) {
  const groups = new Map();
  for (const p of lists) {
    if (!groups.has(p.method)) groups.set(p.method, []);
    groups.get(p.method).push(p);
  }
  const known = METHODS.map((m) => m[0]);
  const order = [
    ...METHODS.filter(([m]) => groups.has(m)),
    ...[...groups.keys()].filter((m) => !known.includes(m)).sort().map((m) => [m, m, ""]),
  ];
  const out = $("groups");
  out.replaceChildren();
  if (lists.length === 0) {
    out.append(el("p", { class: "empty" },
      "No playlists yet. They appear here once the box has analysed some music."));
    return;
  }
  for (const [method, title, hint] of order) {
    const headingId = `group-${method}`;
    const cards = el("ul", { class: "cards" });
    for (const p of groups.get(method)) {
      const open = el("a", { class: "card-main", href: `#/playlist/${encodeURIComponent(p.id)}` },
        el("span", { class: "card-name" }, nice(p.name)),
        el("span", { class: "card-meta" },
          `${plural(p.track_count, "track", "tracks")} · ${length(p.duration_s)}`),
        icon("chevron"));
      const download = el("a", {
        class: "icon",
        href: m3u8(p.id),
        download: `${p.name}.m3u8`,
        "aria-label": `Download ${nice(p.name)} as M3U8`,
        title: "Download M3U8",
      }, icon("download"));
      cards.append(el("li", { class: "card" }, open, download));
    }
    out.append(el("section", { class: "group", "aria-labelledby": headingId },
      el("h2", { id: headingId }, title),
      hint ? el("p", { class: "hint" }, hint) : null,
      cards));
  }
}

const m3u8 = (id) => `/playlists/${encodeURIComponent(id)}.m3u8`;

async function loadPlaylists() {
  try {
    renderPlaylists(await api("/api/v1/playlists"));
  } catch (e) {
    showError(`Cannot load the playlists (${e.message}).`);
  }
}

// ---------- a list of tracks (a playlist or a radio) ----------

// What the track view shows: {key, title, meta, rule, tracks, m3u8}.
let shown = null;

function renderList(list) {
  shown = list;
  $("list-title").replaceChildren(breakable(list.title));
  $("list-meta").textContent = list.meta;
  $("list-rule").textContent = list.rule || "";
  $("list-rule").hidden = !list.rule;
  const download = $("download");
  download.hidden = !list.m3u8;
  if (list.m3u8) {
    download.href = list.m3u8;
    download.setAttribute("download", `${list.fileName}.m3u8`);
    download.setAttribute("aria-label", `Download ${list.title} as M3U8`);
  }
  const ol = $("tracks");
  ol.replaceChildren();
  list.tracks.forEach((t, i) => ol.append(trackRow(list, t, i)));
  markPlaying();
}

function trackRow(list, t, i) {
  const play = el("button", { class: "track-main", type: "button" },
    el("span", { class: "num", "aria-hidden": "true" }, String(i + 1)),
    el("span", { class: "track-text" },
      el("span", { class: "track-title" }, breakable(t.title || "Untitled")),
      el("span", { class: "track-facts" }, trackFacts(t) || t.format || "")),
    el("span", { class: "track-time" }, clock(t.duration_s)));
  play.setAttribute("aria-label", `Play ${t.title || "Untitled"}${t.artist ? ` by ${t.artist}` : ""}`);
  play.addEventListener("click", () => playQueue(list, i));

  const row = el("li", { class: "track" }, play);
  const name = t.title || "this track";
  let why = null;
  if (t.why) {
    const whyId = `why-${list.key}-${i}`;
    why = el("p", { class: "why-text", id: whyId, hidden: true }, t.why);
    const toggle = el("button", {
      class: "icon", type: "button", "aria-expanded": "false", "aria-controls": whyId,
      "aria-label": `Why ${name} is here`, title: "Why is it here?",
    }, icon("why"));
    toggle.addEventListener("click", () => {
      const open = why.hidden;
      why.hidden = !open;
      toggle.setAttribute("aria-expanded", String(open));
    });
    row.append(toggle);
  }
  const radio = el("button", {
    class: "icon", type: "button", "aria-label": `Radio from ${name}`, title: "Radio from this track",
  }, icon("radio"));
  radio.addEventListener("click", () => startRadio(t));
  row.append(radio);
  if (why) row.append(why);
  return row;
}

async function openPlaylist(id) {
  const p = await api(`/api/v1/playlists/${encodeURIComponent(id)}`);
  renderList({
    key: `p${p.id}`,
    title: nice(p.name),
    fileName: p.name,
    meta: `${plural(p.track_count, "track", "tracks")} · ${length(p.duration_s)}`,
    rule: p.rule,
    tracks: p.tracks || [],
    m3u8: m3u8(p.id),
  });
}

// A radio's list: the seed first, then its neighbours.
async function openRadio(id, play) {
  const r = await api(`/api/v1/tracks/${encodeURIComponent(id)}/similar?count=${RADIO_LENGTH}`);
  const tracks = [r.seed, ...(r.tracks || [])];
  const list = {
    key: `r${r.seed.id}`,
    title: `Radio: ${r.seed.title || "Untitled"}`,
    meta: `${plural(tracks.length, "track", "tracks")} like this one · ${length(tracks.reduce((s, t) => s + (t.duration_s || 0), 0))}`,
    rule: "Nearest tracks in tempo, key and sound, ordered to flow.",
    tracks,
    m3u8: null,
  };
  renderList(list);
  if (play) {
    // Keep the seed playing if it is what is playing already.
    const current = queue && playing();
    const keep = current && current.id === r.seed.id && !audio.paused;
    if (keep) {
      queue = { list, index: 0 };
      showNow();
      markPlaying();
    } else {
      playQueue(list, 0);
    }
  }
}

// ---------- the player ----------

// What plays: {list, index}, the list as shown by renderList.
let queue = null;

function streamUrl(t) {
  return `/stream/${encodeURIComponent(t.id)}`;
}

function playQueue(list, index) {
  queue = { list, index };
  playCurrent();
}

const playing = () => queue.list.tracks[queue.index];

function playCurrent() {
  const t = playing();
  $("player").hidden = false;
  document.body.classList.add("with-player");
  audio.src = streamUrl(t);
  audio.play().catch((e) => {
    if (e.name !== "AbortError") showError(`Cannot play ${t.title}: ${e.message}`);
  });
  showNow();
  markPlaying();
}

function showNow() {
  const t = playing();
  $("now-title").textContent = t.title || "Untitled";
  $("now-sub").textContent = [t.artist, `${queue.index + 1} of ${queue.list.tracks.length} in ${queue.list.title}`]
    .filter(Boolean).join(" · ");
  $("next").disabled = queue.index >= queue.list.tracks.length - 1;
  if ("mediaSession" in navigator && "MediaMetadata" in window) {
    navigator.mediaSession.metadata = new MediaMetadata({
      title: t.title || "Untitled",
      artist: t.artist || "",
      album: t.album || queue.list.title,
      artwork: [{ src: "/static/icon.svg", sizes: "any", type: "image/svg+xml" }],
    });
  }
}

function markPlaying() {
  const rows = $("tracks").children;
  const here = queue && shown && queue.list.key === shown.key;
  for (let i = 0; i < rows.length; i++) {
    const on = here && i === queue.index;
    rows[i].classList.toggle("playing", on);
    const button = rows[i].querySelector(".track-main");
    if (on) button.setAttribute("aria-current", "true");
    else button.removeAttribute("aria-current");
  }
}

function next() {
  if (!queue || queue.index >= queue.list.tracks.length - 1) return;
  queue.index += 1;
  playCurrent();
}

function previous() {
  if (!queue) return;
  // Like every player: back to the start of this track first, then the one before.
  if (audio.currentTime > 3 || queue.index === 0) {
    audio.currentTime = 0;
    return;
  }
  queue.index -= 1;
  playCurrent();
}

audio.addEventListener("ended", next);
audio.addEventListener("error", () => {
  if (!queue || !audio.getAttribute("src")) return;
  const t = playing();
  showError(`Cannot play ${t.title || "this track"} (${t.format || "unknown format"}) in this browser; skipped.`);
  next();
});
audio.addEventListener("playing", () => showError(""));
$("next").addEventListener("click", next);
$("prev").addEventListener("click", previous);
$("play-all").addEventListener("click", () => {
  if (shown && shown.tracks.length) playQueue(shown, 0);
});

if ("mediaSession" in navigator) {
  const actions = {
    previoustrack: previous,
    nexttrack: next,
    play: () => audio.play(),
    pause: () => audio.pause(),
  };
  for (const [action, handler] of Object.entries(actions)) {
    try {
      navigator.mediaSession.setActionHandler(action, handler);
    } catch (_) {
      // this browser does not offer the action
    }
  }
}

// ---------- views ----------

let homeScroll = 0;
let radioToPlay = null;

function startRadio(t) {
  radioToPlay = t.id;
  location.hash = `#/radio/${encodeURIComponent(t.id)}`;
}

async function route() {
  const m = location.hash.match(/^#\/(playlist|radio)\/(-?\d+)$/);
  const home = $("home-view");
  const detail = $("list-view");
  showError("");
  if (!m) {
    const back = !detail.hidden;
    detail.hidden = true;
    home.hidden = false;
    window.scrollTo(0, homeScroll);
    if (back) $("home-title").focus({ preventScroll: true });
    return;
  }
  if (!home.hidden) homeScroll = window.scrollY;
  const [, kind, id] = m;
  try {
    if (kind === "playlist") await openPlaylist(id);
    else await openRadio(id, radioToPlay === Number(id));
  } catch (e) {
    showError(`Cannot open this ${kind} (${e.message}).`);
    return;
  } finally {
    radioToPlay = null;
  }
  home.hidden = true;
  detail.hidden = false;
  window.scrollTo(0, 0);
  $("list-title").focus({ preventScroll: true });
}

window.addEventListener("hashchange", route);

refreshStatus();
loadPlaylists().then(route);
