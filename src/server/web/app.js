// playlista's page, the core: the box's status, its playlists by method, a list of tracks,
// the views and their routes, and a player that plays a queue with an <audio> element (kept
// across reloads, the next track preloaded, on the lock screen through the Media Session).
// browse.js adds search, the library, a track's page and the builders; map.js the map.
// Signed in with the Subsonic account, it also shows and sets stars and keeps the account's
// own playlists (create, add, remove, rename, delete).
//
// Reads the JSON API (/api/v1/status, /api/v1/playlists, /api/v1/playlists/ID,
// /api/v1/tracks/ID/similar); plays /stream/ID; with an account, talks to /rest/ as any
// Subsonic client does (getStarred2, star, unstar, getPlaylists, getPlaylist, createPlaylist,
// updatePlaylist, deletePlaylist). Views follow the URL hash (#/, #/playlist/ID, #/radio/ID,
// #/starred, #/mine/ID) so the phone's back button works. Every text from the API, playlist
// names included, goes into the page through textContent or createTextNode, never as markup.
"use strict";

const STATUS_BUSY_MS = 3000; // status refresh while the box analyses
const STATUS_IDLE_MS = 30000; // and while it rests (to notice a new run)
const RADIO_LENGTH = 25;
const GROUP_CARDS = 12; // playlists shown per method before "Show all"

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
  star: ["M12 3.5l2.6 5.3 5.9.9-4.3 4.1 1 5.8-5.2-2.7-5.2 2.7 1-5.8-4.3-4.1 5.9-.9z"],
  remove: ["M7 7l10 10M17 7L7 17"],
  more: ["M5 12h.1M12 12h.1M19 12h.1"],
  queue: ["M4 6h12M4 12h12M4 18h7M17 15v6M14 18h6"],
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

// A card of the home page: a link that opens a view, then any extra buttons.
function card(href, name, meta, ...extra) {
  return el("li", { class: "card" },
    el("a", { class: "card-main", href },
      el("span", { class: "card-name" }, name),
      el("span", { class: "card-meta" }, meta),
      icon("chevron")),
    ...extra);
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

// What was just done ("Added 3 tracks to Road trip"), read out by screen readers; a new view
// clears it.
function notify(message) {
  $("notice").textContent = message;
}

// Back to the home view, telling what happened once it shows.
function goHome(message) {
  if (location.hash === "#/") {
    notify(message);
    return;
  }
  window.addEventListener("hashchange", () => notify(message), { once: true });
  location.hash = "#/";
}

// ---------- the account and the Subsonic API ----------

const ACCOUNT_KEY = "playlista.account";
const CLIENT = "playlista-web";
const API_VERSION = "1.16.1";

// {user, password} of the signed-in account, kept in localStorage, or null.
let account = loadAccount();

function loadAccount() {
  try {
    const a = JSON.parse(localStorage.getItem(ACCOUNT_KEY) || "null");
    if (a && typeof a.user === "string" && typeof a.password === "string") return a;
  } catch (_) {
    // storage off (private mode) or not ours: signed out
  }
  return null;
}

function storeAccount(a) {
  try {
    if (a) localStorage.setItem(ACCOUNT_KEY, JSON.stringify(a));
    else localStorage.removeItem(ACCOUNT_KEY);
  } catch (_) {
    // storage off: signed in for this visit only
  }
}

// MD5 (RFC 1321) of bytes, as lowercase hex. Subsonic's token auth is t = md5(password +
// salt) with a fresh salt on every call: the password itself never goes over the wire (the
// page is plain HTTP on the home network), and a token seen once is tied to its salt. The
// other way, p=enc:HEX, is the password merely hex-coded in every request. MD5 is weak, but it
// is what the protocol asks for, and no browser offers it.
const MD5_SHIFT = [7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21];
const MD5_K = Array.from({ length: 64 }, (_, i) => Math.floor(Math.abs(Math.sin(i + 1)) * 2 ** 32));

function md5(bytes) {
  const blocks = ((bytes.length + 8) >> 6) + 1; // the bytes, 0x80, then the 64-bit length
  const w = new Uint32Array(blocks * 16);
  bytes.forEach((b, i) => { w[i >> 2] |= b << ((i % 4) * 8); });
  w[bytes.length >> 2] |= 0x80 << ((bytes.length % 4) * 8);
  w[blocks * 16 - 2] = bytes.length * 8;
  w[blocks * 16 - 1] = Math.floor(bytes.length / 2 ** 29);
  const h = [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476];
  for (let at = 0; at < w.length; at += 16) {
    let [a, b, c, d] = h;
    for (let i = 0; i < 64; i++) {
      const round = i >> 4;
      const [f, g] = [
        [(b & c) | (~b & d), i],
        [(d & b) | (~d & c), (5 * i + 1) % 16],
        [b ^ c ^ d, (3 * i + 5) % 16],
        [c ^ (b | ~d), (7 * i) % 16],
      ][round];
      const s = MD5_SHIFT[round * 4 + (i % 4)];
      const x = (a + f + MD5_K[i] + w[at + g]) | 0;
      [a, d, c] = [d, c, b];
      b = (b + ((x << s) | (x >>> (32 - s)))) | 0;
    }
    [a, b, c, d].forEach((v, i) => { h[i] = (h[i] + v) | 0; });
  }
  return h.map((v) => [0, 8, 16, 24].map((s) => ((v >>> s) & 255).toString(16).padStart(2, "0")).join("")).join("");
}

function randomHex(bytes) {
  return [...crypto.getRandomValues(new Uint8Array(bytes))]
    .map((b) => b.toString(16).padStart(2, "0")).join("");
}

class SubsonicError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

// One Subsonic call: params are [name, value] pairs (a name may repeat: songIdToAdd). Sent as
// a form POST (the formPost extension) so that tokens and long lists of ids stay out of URLs
// and logs. Answers the "subsonic-response" object; a failed call throws a SubsonicError with
// the Subsonic code (40: wrong user or password).
async function rest(method, params = [], who = account) {
  const salt = randomHex(8);
  const body = new URLSearchParams([
    ["u", who.user],
    ["t", md5(new TextEncoder().encode(who.password + salt))],
    ["s", salt],
    ["v", API_VERSION],
    ["c", CLIENT],
    ["f", "json"],
    ...params.map(([k, v]) => [k, String(v)]),
  ]);
  let answer = null;
  let status = "no answer";
  try {
    const response = await fetch(`/rest/${method}`, {
      method: "POST", body, headers: { Accept: "application/json" },
    });
    status = response.status;
    answer = (await response.json())["subsonic-response"];
  } catch (_) {
    // no answer, or not JSON: reported below
  }
  if (!answer) throw new SubsonicError(0, `${method}: ${status}`);
  if (answer.status !== "ok") {
    const e = answer.error || {};
    throw new SubsonicError(e.code, `${method}: ${e.message || "failed"}`);
  }
  return answer;
}

// JSON answers hold lists as arrays; an older server may send one item bare or leave it out.
const asList = (v) => (Array.isArray(v) ? v : v ? [v] : []);

// A Subsonic song as the page's track.
function fromChild(c) {
  return {
    id: String(c.id),
    title: c.title,
    artist: c.artist,
    album: c.album,
    duration_s: c.duration,
    format: c.suffix,
    bpm: c.bpm > 0 ? c.bpm : undefined,
  };
}

// The account's own playlists: owned by it and writable. The box's generated playlists are
// `readonly` (and have numeric ids; own ones are "u" + a number).
const ownPlaylist = (p) => p.owner === account.user && !p.readonly;

// Song id → track, from getStarred2; and the own playlists from getPlaylists.
let starred = new Map();
let mine = [];

// A call failed: wrong credentials sign out, anything else is shown.
function failed(what, e) {
  if (e.code === 40) signOut("Signed out: the box no longer accepts this user name and password.");
  else showError(`${what} (${e.message}).`);
}

async function loadMine() {
  if (!account) return;
  try {
    const [s, p] = await Promise.all([rest("getStarred2"), rest("getPlaylists")]);
    setStarred(s);
    mine = asList((p.playlists || {}).playlist).filter(ownPlaylist);
  } catch (e) {
    failed("Cannot load your stars and playlists", e);
    return;
  }
  renderMine();
  refreshStars();
}

function setStarred(answer) {
  starred = new Map(asList((answer.starred2 || {}).song).map((c) => [String(c.id), fromChild(c)]));
}

function renderAccount() {
  const name = $("account-name");
  name.textContent = account ? account.user : "";
  name.hidden = !account;
  $("sign-out").hidden = !account;
  $("sign-in-open").hidden = Boolean(account);
  $("sign-in").hidden = true;
  $("sign-in-open").setAttribute("aria-expanded", "false");
  $("mine").hidden = !account;
}

$("sign-in-open").addEventListener("click", () => {
  const form = $("sign-in");
  form.hidden = !form.hidden;
  $("sign-in-open").setAttribute("aria-expanded", String(!form.hidden));
  if (!form.hidden) $("user").focus();
});

$("sign-in").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const who = { user: $("user").value.trim(), password: $("password").value };
  const error = $("sign-in-error");
  error.hidden = true;
  try {
    await rest("ping", [], who);
  } catch (e) {
    error.textContent = e.code === 40
      ? "Wrong user name or password (or the box has no Subsonic account set up)."
      : `The box does not answer (${e.message}).`;
    error.hidden = false;
    return;
  }
  account = who;
  storeAccount(who);
  $("password").value = "";
  renderAccount();
  notify(`Signed in as ${who.user}.`);
  await loadMine();
  if (shown) renderList(shown);
  $("sign-out").focus();
});

function signOut(message) {
  account = null;
  storeAccount(null);
  starred = new Map();
  mine = [];
  renderAccount();
  const view = parseRoute(location.hash);
  if (view && (view.kind === "mine" || view.kind === "starred")) {
    shown = null;
    $("tracks").replaceChildren();
    goHome(message);
    return;
  }
  if (shown) renderList(shown);
  notify(message);
}

$("sign-out").addEventListener("click", () => {
  signOut("Signed out.");
  $("sign-in-open").focus();
});

// ---------- stars ----------

function starButton(t) {
  const id = String(t.id);
  const button = el("button", {
    class: "icon star", type: "button", "data-star": id, "aria-pressed": String(starred.has(id)),
    "aria-label": `Star ${t.title || "this track"}`, title: "Star",
  }, icon("star"));
  button.addEventListener("click", async () => {
    const on = !starred.has(id);
    button.disabled = true;
    try {
      await rest(on ? "star" : "unstar", [["id", id]]);
      if (on) starred.set(id, t);
      else starred.delete(id);
    } catch (e) {
      failed(`Cannot ${on ? "star" : "unstar"} ${t.title || "this track"}`, e);
    }
    button.disabled = false;
    refreshStars();
    renderMine();
  });
  return button;
}

// Every star on the page shows the account's stars.
function refreshStars() {
  for (const b of document.querySelectorAll("[data-star]")) {
    b.setAttribute("aria-pressed", String(starred.has(b.dataset.star)));
  }
}

// ---------- home: the account's stars and playlists ----------

function renderMine() {
  $("starred-card").replaceChildren(
    card("#/starred", "Starred tracks", plural(starred.size, "track", "tracks")));
  const cards = $("mine-cards");
  cards.replaceChildren(...mine.map((p) => card(`#/mine/${encodeURIComponent(p.id)}`, p.name,
    `${plural(p.songCount || 0, "track", "tracks")} · ${length(p.duration)}`)));
  cards.hidden = mine.length === 0;
  $("mine-empty").hidden = mine.length > 0;
  renderAddForm();
}

$("new-list").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const input = $("new-name");
  const name = input.value;
  try {
    await rest("createPlaylist", [["name", name]]);
  } catch (e) {
    failed(`Cannot create the playlist ${name}`, e);
    return;
  }
  input.value = "";
  notify(`Created ${name}.`);
  await loadMine();
});

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
  // The two tiers: every track's tempo and key first, then timbre and the embedding.
  const tiers = st.library || {};
  const tier = (t, what) => {
    if (!t || !t.left) return;
    const left = t.seconds_left ? `, about ${length(t.seconds_left)} left` : "";
    details.push(`${what}: ${num(t.tracks)} of ${num(t.tracks + t.left)}${left}`);
  };
  tier(tiers.fast, "tempo and key");
  tier(tiers.full, "sound and similarity");
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
    const all = groups.get(method);
    // A big library has hundreds of lists per method: the first few, then all on request.
    const more = all.length > GROUP_CARDS
      ? el("button", { class: "secondary wide", type: "button" }, `Show all ${num(all.length)}`) : null;
    const addCards = (lists) => {
      for (const p of lists) {
        const download = el("a", {
          class: "icon",
          href: m3u8(p.id),
          download: `${p.name}.m3u8`,
          "aria-label": `Download ${nice(p.name)} as M3U8`,
          title: "Download M3U8",
        }, icon("download"));
        cards.append(card(`#/playlist/${encodeURIComponent(p.id)}`, nice(p.name),
          `${plural(p.track_count, "track", "tracks")} · ${length(p.duration_s)}`, download));
      }
    };
    addCards(all.slice(0, GROUP_CARDS));
    if (more) {
      more.addEventListener("click", () => {
        addCards(all.slice(GROUP_CARDS));
        more.remove();
      });
    }
    out.append(el("section", { class: "group", "aria-labelledby": headingId },
      el("h2", { id: headingId }, title),
      hint ? el("p", { class: "hint" }, hint) : null,
      cards, more));
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

// What the track view shows: {key, title, meta, rule, tracks, m3u8, own}, own the Subsonic
// playlist when it is one of the account's.
let shown = null;

function renderList(list) {
  shown = list;
  $("list-title").replaceChildren(breakable(list.title));
  $("list-meta").textContent = list.meta;
  $("list-rule").textContent = list.rule || "";
  $("list-rule").hidden = !list.rule;
  const download = $("download");
  const m3u = list.m3u8 || (list.savable ? builtM3u8(list) : null);
  download.hidden = !m3u;
  if (m3u) {
    download.href = m3u;
    download.setAttribute("download", `${list.fileName}.m3u8`);
    download.setAttribute("aria-label", `Download ${list.title} as M3U8`);
  }
  $("save-list").hidden = !(account && list.savable);
  $("radio-from").hidden = !list.radio;
  $("own-tools").hidden = !list.own;
  if (list.own) $("rename-name").value = list.own.name;
  renderAddForm();
  const ol = $("tracks");
  ol.replaceChildren();
  list.tracks.forEach((t, i) => ol.append(trackRow(list, t, i)));
  markPlaying();
}

// "Add to [playlist] [Playing] [All]": to any own playlist but the one shown.
function renderAddForm() {
  const targets = account && shown ? mine.filter((p) => !shown.own || p.id !== shown.own.id) : [];
  const select = $("add-to");
  const chosen = select.value;
  select.replaceChildren(...targets.map((p) => el("option", { value: p.id }, p.name)));
  if (targets.some((p) => p.id === chosen)) select.value = chosen;
  $("add-form").hidden = targets.length === 0;
  $("add-playing").disabled = !queue;
}

async function addTracks(tracks) {
  const id = $("add-to").value;
  const target = mine.find((p) => p.id === id);
  if (!target || tracks.length === 0) return;
  try {
    await rest("updatePlaylist", [["playlistId", id], ...tracks.map((t) => ["songIdToAdd", t.id])]);
  } catch (e) {
    failed(`Cannot add to ${target.name}`, e);
    return;
  }
  notify(`Added ${plural(tracks.length, "track", "tracks")} to ${target.name}.`);
  loadMine();
}

$("add-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  if (shown) addTracks(shown.tracks);
});
$("add-playing").addEventListener("click", () => {
  if (queue) addTracks([playing()]);
});

$("rename-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const p = shown && shown.own;
  if (!p) return;
  const name = $("rename-name").value;
  try {
    await rest("updatePlaylist", [["playlistId", p.id], ["name", name]]);
  } catch (e) {
    failed(`Cannot rename ${p.name}`, e);
    return;
  }
  notify(`Renamed to ${name}.`);
  await Promise.all([openMine(p.id), loadMine()]);
});

$("delete-list").addEventListener("click", async () => {
  const p = shown && shown.own;
  if (!p || !confirm(`Delete the playlist ${p.name}? Its tracks stay in the library.`)) return;
  try {
    await rest("deletePlaylist", [["id", p.id]]);
  } catch (e) {
    failed(`Cannot delete ${p.name}`, e);
    return;
  }
  goHome(`Deleted ${p.name}.`);
  loadMine();
});

function trackRow(list, t, i) {
  // The button's name is what it shows, after a hidden "Play" (a name that matches the label
  // is what voice control expects).
  const play = el("button", { class: "track-main", type: "button" },
    el("span", { class: "sr-only" }, "Play "),
    el("span", { class: "num", "aria-hidden": "true" }, String(i + 1)),
    el("span", { class: "track-text" },
      el("span", { class: "track-title" }, breakable(t.title || "Untitled")),
      el("span", { class: "track-facts" }, trackFacts(t) || t.format || "")),
    el("span", { class: "track-time" }, clock(t.duration_s)));
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
  row.append(el("a", {
    class: "icon", href: `#/track/${encodeURIComponent(t.id)}`, "aria-label": `About ${name}`,
    title: "About this track",
  }, icon("more")));
  if (account) row.append(starButton(t));
  if (list.own) row.append(removeButton(list.own, t, i));
  if (why) row.append(why);
  return row;
}

// Removes entry i (songIndexToRemove counts from 0, so a track that is there twice loses
// only this one).
function removeButton(p, t, i) {
  const button = el("button", {
    class: "icon", type: "button", "aria-label": `Remove ${t.title || "this track"} from ${p.name}`,
    title: "Remove from this playlist",
  }, icon("remove"));
  button.addEventListener("click", async () => {
    try {
      await rest("updatePlaylist", [["playlistId", p.id], ["songIndexToRemove", i]]);
    } catch (e) {
      failed(`Cannot remove ${t.title || "this track"}`, e);
      return;
    }
    notify(`Removed ${t.title || "a track"} from ${p.name}.`);
    await Promise.all([openMine(p.id), loadMine()]);
  });
  return button;
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

// One of the account's playlists, through Subsonic.
async function openMine(id) {
  const p = (await rest("getPlaylist", [["id", id]])).playlist || {};
  const tracks = asList(p.entry).map(fromChild);
  renderList({
    key: `m${p.id}`,
    title: p.name || "",
    meta: `${plural(tracks.length, "track", "tracks")} · ${length(p.duration)}`,
    rule: p.comment,
    tracks,
    m3u8: null,
    own: p,
  });
}

// The account's starred songs, asked for afresh (another phone may have starred some).
async function openStarred() {
  setStarred(await rest("getStarred2"));
  const tracks = [...starred.values()];
  renderList({
    key: "starred",
    title: "Starred tracks",
    meta: `${plural(tracks.length, "track", "tracks")} · ${length(tracks.reduce((s, t) => s + (t.duration_s || 0), 0))}`,
    rule: null,
    tracks,
    m3u8: null,
  });
  renderMine();
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

// What plays: {list, index}, the list as shown by renderList. Kept in localStorage (the
// tracks' shown fields, the index and the position), so a reload or a new visit carries on.
let queue = null;
const QUEUE_KEY = "playlista.queue";
const KEPT = ["id", "title", "artist", "album", "duration_s", "bpm", "key", "scale", "camelot", "format", "sounds_like", "why"];
// The next track, fetched while this one plays, so the change is instant.
const preload = new Audio();
preload.preload = "auto";
preload.muted = true;

function streamUrl(t) {
  return `/stream/${encodeURIComponent(t.id)}`;
}

function saveQueue() {
  if (!queue) return;
  const keep = (t) => Object.fromEntries(KEPT.filter((k) => t[k] !== undefined).map((k) => [k, t[k]]));
  try {
    localStorage.setItem(QUEUE_KEY, JSON.stringify({
      list: { key: queue.list.key, title: queue.list.title, tracks: queue.list.tracks.map(keep) },
      index: queue.index,
      time: audio.currentTime || 0,
    }));
  } catch (_) {
    // storage off or full: the queue lasts this visit
  }
}

// The saved queue, ready to play from where it was (not playing: browsers want a tap first).
function restoreQueue() {
  let saved = null;
  try {
    saved = JSON.parse(localStorage.getItem(QUEUE_KEY) || "null");
  } catch (_) {
    return;
  }
  const tracks = saved && saved.list && Array.isArray(saved.list.tracks)
    ? saved.list.tracks.filter((t) => t && Number.isSafeInteger(Number(t.id))) : [];
  if (!tracks.length) return;
  const index = Math.min(Math.max(0, Number(saved.index) | 0), tracks.length - 1);
  queue = { list: { key: String(saved.list.key), title: String(saved.list.title || "Queue"), tracks }, index };
  showPlayer();
  audio.preload = "metadata";
  audio.src = streamUrl(playing());
  const time = Number(saved.time) || 0;
  if (time > 0) audio.addEventListener("loadedmetadata", () => { audio.currentTime = time; }, { once: true });
  showNow();
}

function playQueue(list, index) {
  queue = { list, index };
  playCurrent();
}

const playing = () => queue.list.tracks[queue.index];

function showPlayer() {
  $("player").hidden = false;
  document.body.classList.add("with-player");
}

function playCurrent() {
  const t = playing();
  showPlayer();
  audio.src = streamUrl(t);
  audio.play().catch((e) => {
    if (e.name !== "AbortError" && e.name !== "NotAllowedError") showError(`Cannot play ${t.title}: ${e.message}`);
  });
  showNow();
  markPlaying();
  renderAddForm();
  saveQueue();
}

// Tracks at the end of the queue (a queue of their own when nothing plays).
function enqueue(tracks, what) {
  if (!tracks.length) return;
  if (!queue) {
    playQueue({ key: "queue", title: "Queue", tracks: [...tracks] }, 0);
  } else {
    queue.list = { key: "queue", title: "Queue", tracks: [...queue.list.tracks, ...tracks] };
    showNow();
    markPlaying();
    saveQueue();
  }
  notify(`Added ${what} to the queue.`);
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
      artwork: [
        { src: `/api/v1/cover/${encodeURIComponent(t.id)}`, sizes: "512x512" },
        { src: "/static/icon.svg", sizes: "any", type: "image/svg+xml" },
      ],
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

let savedAt = 0;
audio.addEventListener("ended", next);
audio.addEventListener("error", () => {
  if (!queue || !audio.getAttribute("src")) return;
  const t = playing();
  showError(`Cannot play ${t.title || "this track"} (${t.format || "unknown format"}) in this browser; skipped.`);
  next();
});
audio.addEventListener("playing", () => showError(""));
audio.addEventListener("canplaythrough", () => {
  const after = queue && queue.list.tracks[queue.index + 1];
  const url = after ? streamUrl(after) : "";
  if (after && preload.getAttribute("src") !== url) preload.src = url;
});
audio.addEventListener("pause", saveQueue);
audio.addEventListener("timeupdate", () => {
  if (Date.now() - savedAt > 5000) {
    savedAt = Date.now();
    saveQueue();
  }
  if ("mediaSession" in navigator && navigator.mediaSession.setPositionState && audio.duration > 0) {
    try {
      navigator.mediaSession.setPositionState({
        duration: audio.duration, position: Math.min(audio.currentTime, audio.duration), playbackRate: audio.playbackRate,
      });
    } catch (_) {
      // a duration the browser does not take (live, NaN)
    }
  }
});
window.addEventListener("pagehide", saveQueue);
$("next").addEventListener("click", next);
$("prev").addEventListener("click", previous);
$("play-all").addEventListener("click", () => {
  if (shown && shown.tracks.length) playQueue(shown, 0);
});
$("queue-all").addEventListener("click", () => {
  if (shown && shown.tracks.length) enqueue(shown.tracks, plural(shown.tracks.length, "track", "tracks"));
});

if ("mediaSession" in navigator) {
  const actions = {
    previoustrack: previous,
    nexttrack: next,
    play: () => audio.play(),
    pause: () => audio.pause(),
    seekto: (d) => { audio.currentTime = d.seekTime; },
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

const SECTIONS = ["home-view", "list-view", "search-view", "library-view", "page-view", "build-view", "map-view"];

// Every view: its section, what it shows (for errors), how it opens (browse.js and map.js
// add theirs), whether it needs the account.
const ROUTES = {
  home: { section: "home-view", what: "home", tab: "home", open: async () => {} },
  playlist: { section: "list-view", what: "playlist", tab: "home", open: (id) => openPlaylist(id) },
  radio: { section: "list-view", what: "radio", tab: "home", open: (id) => openRadio(id, String(radioToPlay) === id) },
  mine: { section: "list-view", what: "playlist", tab: "home", open: (id) => openMine(id), account: true },
  starred: { section: "list-view", what: "list", tab: "home", open: () => openStarred(), account: true },
};

// The view a hash names: {kind, id} ("#/album/al-12" is album, "al-12"); home when unknown.
function parseRoute(hash) {
  const m = hash.match(/^#\/([a-z]+)(?:\/(.*))?$/);
  if (!m || !ROUTES[m[1]]) return { kind: "home", id: null };
  try {
    return { kind: m[1], id: m[2] === undefined ? null : decodeURIComponent(m[2]) };
  } catch (_) {
    return { kind: "home", id: null };
  }
}

function showSection(id) {
  for (const s of SECTIONS) $(s).hidden = s !== id;
}

async function route() {
  const view = parseRoute(location.hash);
  const r = ROUTES[view.kind];
  const before = SECTIONS.find((s) => !$(s).hidden);
  showError("");
  notify("");
  for (const a of document.querySelectorAll(".tabs a")) {
    if (a.dataset.tab === r.tab) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  if (before === "home-view") homeScroll = window.scrollY;
  if (r.account && !account) {
    showError(`Sign in to see this ${r.what}.`);
    return;
  }
  try {
    await r.open(view.id);
  } catch (e) {
    if (e.code === 40) failed("", e);
    else showError(`Cannot open this ${r.what} (${e.message}).`);
    return;
  } finally {
    radioToPlay = null;
  }
  showSection(r.section);
  if (view.kind === "home") {
    window.scrollTo(0, homeScroll);
    if (before && before !== "home-view") $("home-title").focus({ preventScroll: true });
    return;
  }
  window.scrollTo(0, 0);
  if (!r.keepFocus) {
    const heading = $(r.section).querySelector("h2[tabindex]");
    if (heading) heading.focus({ preventScroll: true });
  }
}

window.addEventListener("hashchange", route);

renderAccount();
refreshStatus();
loadMine();
restoreQueue();
loadPlaylists().then(route);
