// playlista's page, the library: search as you type, artists, albums, genres and folders, an
// album in disc and track order, a track's page (its analysis in words and numbers, what it
// sounds like, the lists it is in, and what to do with it), and the builders (radio from a
// track, album or artist; a path A→B; a DJ mix; a list from words), whose lists play at once
// and save as the account's own playlist or as M3U8. Also registers the service worker that
// keeps the page's shell offline.
//
// Reads /api/v1/search, artists, albums, genres, folders, tracks/ID/about, radio, path, mix,
// words; covers from /api/v1/cover/ID. Uses app.js's el, api, renderList, playQueue, enqueue,
// ROUTES. Every text from the API goes into the page as text, never as markup.
"use strict";

const LIBRARY_PAGE = 60;
const SEARCH_DELAY_MS = 120;

// ---------- pieces ----------

// A cover picture that hides itself when the box has none.
function cover(url, size) {
  const img = el("img", { class: `cover${size === "big" ? " big" : ""}`, src: url, alt: "", loading: "lazy", width: size === "big" ? 96 : 48, height: size === "big" ? 96 : 48 });
  img.addEventListener("error", () => img.classList.add("missing"), { once: true });
  return img;
}

function albumCard(a) {
  const li = card(`#/album/${encodeURIComponent(a.id)}`, a.name,
    [a.artist, a.year, plural(a.track_count, "track", "tracks")].filter(Boolean).join(" · "));
  const main = li.querySelector(".card-main");
  main.classList.add("with-cover");
  main.prepend(cover(a.cover));
  return li;
}

function artistCard(a) {
  return card(`#/artist/${encodeURIComponent(a.id)}`, a.name, plural(a.album_count, "album", "albums"));
}

function genreCard(g) {
  return card(`#/genre/${encodeURIComponent(g.name)}`, g.name, plural(g.songs, "track", "tracks"));
}

function group(title, ...children) {
  const id = `g-${title.toLowerCase().replace(/\W+/g, "-")}-${Math.random().toString(36).slice(2, 7)}`;
  return el("section", { class: "group", "aria-labelledby": id }, el("h3", { id }, title), ...children);
}

// A list of tracks, playable from any row, as in a playlist.
function trackList(list) {
  const ol = el("ol", { class: "tracks" });
  list.tracks.forEach((t, i) => ol.append(trackRow(list, t, i)));
  return ol;
}

const sumDuration = (tracks) => tracks.reduce((s, t) => s + (t.duration_s || 0), 0);

// ---------- search ----------

let searchTimer = null;
let searchSeq = 0;

async function runSearch() {
  const q = $("search-input").value.trim();
  const seq = ++searchSeq;
  const out = $("search-results");
  if (!q) {
    out.replaceChildren();
    $("search-summary").textContent = "Type to search the whole library.";
    return;
  }
  const r = await api(`/api/v1/search?q=${encodeURIComponent(q)}&count=20`);
  if (seq !== searchSeq) return; // a newer query is on its way
  const n = r.tracks.length + r.albums.length + r.artists.length + r.genres.length;
  $("search-summary").textContent = n ? "" : `Nothing matches “${q}”.`;
  const parts = [];
  if (r.artists.length) parts.push(group("Artists", el("ul", { class: "cards" }, ...r.artists.map(artistCard))));
  if (r.albums.length) parts.push(group("Albums", el("ul", { class: "cards" }, ...r.albums.map(albumCard))));
  if (r.genres.length) parts.push(group("Genres", el("ul", { class: "cards" }, ...r.genres.map(genreCard))));
  if (r.tracks.length) {
    const list = { key: `search:${q}`, title: `Search: ${q}`, tracks: r.tracks };
    parts.push(group("Tracks", trackList(list)));
  }
  out.replaceChildren(...parts);
  markPlaying();
}

async function openSearch(q) {
  const input = $("search-input");
  if (q && input.value !== q) input.value = q;
  await runSearch();
  // Typing stays in the box.
  setTimeout(() => input.focus({ preventScroll: true }), 0);
}

$("search-input").addEventListener("input", () => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(() => {
    const q = $("search-input").value.trim();
    history.replaceState(null, "", q ? `#/search/${encodeURIComponent(q)}` : "#/search");
    runSearch().catch((e) => showError(`Cannot search (${e.message}).`));
  }, SEARCH_DELAY_MS);
});
$("search-form").addEventListener("submit", (ev) => ev.preventDefault());

// ---------- the library ----------

let libraryMore = null;

async function openLibrary(kind) {
  kind = kind || "albums";
  if (!["artists", "albums", "genres", "folders"].includes(kind)) throw new Error(`no ${kind} here`);
  if (kind === "folders") return openFolder(null);
  for (const a of document.querySelectorAll(".subtabs a")) {
    if (a.dataset.kind === kind) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  $("library-tools").hidden = kind !== "albums";
  const items = $("library-items");
  const more = $("library-more");
  more.hidden = true;
  libraryMore = null;
  if (kind === "albums") {
    const sort = $("album-sort").value;
    const ul = el("ul", { class: "cards" });
    let offset = 0;
    const page = async () => {
      const r = await api(`/api/v1/albums?sort=${sort}&offset=${offset}&count=${LIBRARY_PAGE}`);
      ul.append(...r.albums.map(albumCard));
      offset += r.albums.length;
      $("library-meta").textContent = plural(r.total, "album", "albums");
      more.hidden = offset >= r.total;
    };
    items.replaceChildren(ul);
    libraryMore = page;
    await page();
  } else if (kind === "artists") {
    const all = await api("/api/v1/artists");
    const ul = el("ul", { class: "cards" });
    let shownCount = 0;
    const page = async () => {
      ul.append(...all.slice(shownCount, shownCount + LIBRARY_PAGE * 5).map(artistCard));
      shownCount = Math.min(all.length, shownCount + LIBRARY_PAGE * 5);
      more.hidden = shownCount >= all.length;
    };
    $("library-meta").textContent = plural(all.length, "artist", "artists");
    items.replaceChildren(ul);
    libraryMore = page;
    await page();
  } else {
    const all = await api("/api/v1/genres");
    $("library-meta").textContent = plural(all.length, "genre", "genres");
    items.replaceChildren(el("ul", { class: "cards" }, ...all.map(genreCard)));
  }
}

$("library-more").addEventListener("click", () => {
  if (libraryMore) libraryMore().catch((e) => showError(`Cannot load more (${e.message}).`));
});
$("album-sort").addEventListener("change", () => openLibrary("albums").catch((e) => showError(e.message)));

async function openFolder(path) {
  for (const a of document.querySelectorAll(".subtabs a")) {
    if (a.dataset.kind === "folders") a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  $("library-tools").hidden = true;
  $("library-more").hidden = true;
  const r = await api(`/api/v1/folders${path ? `?path=${encodeURIComponent(path)}` : ""}`);
  const here = r.path === r.root ? "All folders" : r.path.slice(r.root.length).replace(/^\//, "");
  $("library-meta").textContent = here;
  const parts = [];
  if (r.parent) parts.push(el("a", { class: "back", href: r.parent === r.root ? "#/library/folders" : `#/folder/${encodeURIComponent(r.parent)}` }, "Up a folder"));
  if (r.folders.length) {
    parts.push(el("ul", { class: "cards" }, ...r.folders.map((f) =>
      card(`#/folder/${encodeURIComponent(f.path)}`, f.name, plural(f.tracks, "track", "tracks")))));
  }
  if (r.tracks.length) parts.push(trackList({ key: `folder:${r.path}`, title: here, tracks: r.tracks }));
  $("library-items").replaceChildren(...parts);
  markPlaying();
}

// An album: its tracks in disc and track order, playable as a list.
async function openAlbum(id) {
  const r = await api(`/api/v1/albums/${encodeURIComponent(id)}`);
  const a = r.album;
  const discs = new Set(r.tracks.map((t) => t.disc || 1));
  const tracks = r.tracks.map((t) => ({ ...t.track, why: discs.size > 1 && t.number ? `disc ${t.disc || 1}, track ${t.number}` : undefined }));
  renderList({
    key: `a${a.id}`,
    title: a.name,
    fileName: a.name,
    meta: [a.artist, a.year, plural(a.track_count, "track", "tracks"), length(a.duration_s)].filter(Boolean).join(" · "),
    rule: a.genre || "",
    tracks,
    m3u8: null,
    savable: true,
    radio: { album: a.id, name: a.name },
  });
}

// ---------- artist, genre and track pages ----------

function page(title, meta, coverUrl) {
  $("page-title").textContent = title;
  $("page-meta").textContent = meta;
  const img = $("page-cover");
  img.hidden = !coverUrl;
  img.classList.remove("missing");
  if (coverUrl) img.src = coverUrl;
  $("page-actions").replaceChildren();
  $("page-body").replaceChildren();
}

$("page-cover").addEventListener("error", () => $("page-cover").classList.add("missing"));

function action(label, handler, primary) {
  const b = el("button", { class: primary ? "primary" : "secondary", type: "button" }, label);
  b.addEventListener("click", handler);
  return b;
}

async function openArtist(id) {
  const r = await api(`/api/v1/artists/${encodeURIComponent(id)}`);
  page(r.artist.name, plural(r.artist.album_count, "album", "albums"), r.artist.cover);
  $("page-actions").append(action("Radio from this artist", () => buildRadio({ artist: r.artist.id }, r.artist.name), true));
  const body = [group("Albums", el("ul", { class: "cards" }, ...r.albums.map(albumCard)))];
  if (r.similar.length) body.push(group("Sounds like", el("ul", { class: "cards" }, ...r.similar.map(artistCard))));
  $("page-body").replaceChildren(...body);
}

async function openGenre(name) {
  const r = await api(`/api/v1/genres/${encodeURIComponent(name)}`);
  page(r.name, plural(r.albums.length, "album", "albums"), null);
  $("page-body").replaceChildren(el("ul", { class: "cards" }, ...r.albums.map(albumCard)));
}

const fixed = (v, digits) => (typeof v === "number" ? v.toFixed(digits) : "–");

async function openTrack(id) {
  const r = await api(`/api/v1/tracks/${encodeURIComponent(id)}/about`);
  const t = r.track;
  page(t.title || "Untitled", [t.artist, t.album, t.year].filter(Boolean).join(" · "), `/api/v1/cover/${encodeURIComponent(t.id)}`);
  const one = { key: `t${t.id}`, title: t.title, tracks: [t] };
  $("page-actions").append(
    action("Play", () => playQueue(one, 0), true),
    action("Radio from here", () => startRadio(t)),
    action("Path from here", () => pathEnd("from", t)),
    action("Path to here", () => pathEnd("to", t)),
    action("Add to queue", () => enqueue([t], t.title || "a track")),
  );
  if (account) $("page-actions").append(starButton(t));
  const w = r.words;
  const said = [
    w.tempo && `${w.tempo.toLowerCase()} tempo`,
    w.energy && `${w.energy.toLowerCase()} energy`,
    w.brightness && `${w.brightness.toLowerCase()} sound`,
    t.sounds_like && `sounds like ${t.sounds_like.join(", ")}`,
  ].filter(Boolean).join(", ");
  const n = r.numbers;
  const facts = [
    ["Tempo", typeof t.bpm === "number" ? `${fixed(t.bpm, 1)} BPM` : "–"],
    ["Key", keyName(t) || "–"],
    ["Loudness", typeof t.loudness_lufs === "number" ? `${fixed(t.loudness_lufs, 1)} LUFS` : "–"],
    ["Energy", fixed(n.energy, 2)],
    ["Danceability", fixed(n.danceability, 2)],
    ["Onsets", typeof n.onset_rate === "number" ? `${fixed(n.onset_rate, 1)} per second` : "–"],
    ["Brightness", typeof n.spectral_centroid === "number" ? `${Math.round(n.spectral_centroid)} Hz` : "–"],
    ["Length", clock(t.duration_s)],
    ["File", `${t.format}, ${n.sample_rate} Hz, ${n.channels} ch`],
  ];
  const dl = el("dl", { class: "facts" });
  for (const [k, v] of facts) dl.append(el("dt", {}, k), el("dd", {}, v));
  const body = [
    el("p", { class: "said" }, said ? `${said[0].toUpperCase()}${said.slice(1)}.` : "Not analysed in full yet."),
    dl,
    el("p", {}, el("a", { href: `#/album/${encodeURIComponent(r.album_id)}` }, "The album"), " · ",
      el("a", { href: `#/artist/${encodeURIComponent(r.artist_id)}` }, "The artist")),
  ];
  if (r.sounds_like.length) {
    const tracks = r.sounds_like.map((s) => ({ ...s.track, why: s.why }));
    body.push(group("Sounds like", trackList({ key: `near${t.id}`, title: `Like ${t.title}`, tracks })));
  }
  if (r.playlists.length) {
    body.push(group("In playlists", el("ul", { class: "cards" }, ...r.playlists.map((p) =>
      card(`#/playlist/${encodeURIComponent(p.id)}`, nice(p.name), p.why)))));
  }
  $("page-body").replaceChildren(...body);
}

// ---------- builders ----------

// The last built list, shown at #/built.
let built = null;

function showBuilt(r, title, extra) {
  built = {
    key: `built${Date.now()}`,
    title,
    fileName: r.name,
    meta: `${plural(r.tracks.length, "track", "tracks")} · ${length(sumDuration(r.tracks))}`,
    rule: r.rule,
    tracks: r.tracks,
    m3u8: null,
    savable: true,
    ...extra,
  };
  if (!built.tracks.length) throw new Error("the builder found no tracks");
  playQueue(built, 0);
  if (location.hash === "#/built") route();
  else location.hash = "#/built";
}

async function openBuilt() {
  if (!built) throw new Error("build a list first (Build)");
  renderList(built);
}

async function buildRadio(seed, name) {
  const [k, v] = Object.entries(seed)[0];
  const count = Number($("radio-count").value) || 25;
  try {
    showBuilt(await api(`/api/v1/radio?${k}=${encodeURIComponent(v)}&count=${count}`), `Radio: ${name}`);
  } catch (e) {
    showError(`Cannot build the radio (${e.message}).`);
  }
}

// An M3U8 of a built list, as a file URL the download link offers.
let m3u8Url = null;
function builtM3u8(list) {
  if (m3u8Url) URL.revokeObjectURL(m3u8Url);
  const lines = ["#EXTM3U", `#PLAYLIST:${String(list.title).replace(/[\r\n]/g, " ")}`];
  for (const t of list.tracks) {
    const who = [t.artist, t.title].filter(Boolean).join(" - ").replace(/[\r\n]/g, " ");
    lines.push(`#EXTINF:${Math.round(t.duration_s || 0)},${who}`, `${location.origin}${streamUrl(t)}`);
  }
  m3u8Url = URL.createObjectURL(new Blob([`${lines.join("\n")}\n`], { type: "audio/x-mpegurl" }));
  return m3u8Url;
}

$("save-list").addEventListener("click", async () => {
  if (!shown || !account) return;
  const name = prompt("Name of the playlist", shown.title);
  if (!name) return;
  try {
    await rest("createPlaylist", [["name", name], ...shown.tracks.map((t) => ["songId", t.id])]);
  } catch (e) {
    failed(`Cannot save ${name}`, e);
    return;
  }
  notify(`Saved ${name} with ${plural(shown.tracks.length, "track", "tracks")}.`);
  loadMine();
});

$("radio-from").addEventListener("click", () => {
  if (shown && shown.radio) buildRadio({ album: shown.radio.album }, shown.radio.name);
});

// A search box and a list of matches to pick from ("From", "To", a radio's seed).
function makePicker(div) {
  const name = div.dataset.name;
  const kinds = div.dataset.kinds.split(" ");
  const inputId = `pick-${div.closest("form").id}-${name}`;
  const input = el("input", { id: inputId, type: "search", autocomplete: "off", autocapitalize: "none", placeholder: "Type to find…" });
  const select = el("select", { id: `${inputId}-choice`, "aria-label": `${div.dataset.label}: the match`, required: true });
  div.append(el("label", { for: inputId }, div.dataset.label), input, select);
  let timer = null;
  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const q = input.value.trim();
      if (!q) return;
      try {
        const r = await api(`/api/v1/search?q=${encodeURIComponent(q)}&count=8`);
        const options = [];
        if (kinds.includes("tracks")) options.push(...r.tracks.map((t) => el("option", { value: `track:${t.id}` }, [t.title, t.artist].filter(Boolean).join(" — "))));
        if (kinds.includes("albums")) options.push(...r.albums.map((a) => el("option", { value: `album:${a.id}` }, `Album: ${a.name} — ${a.artist}`)));
        if (kinds.includes("artists")) options.push(...r.artists.map((a) => el("option", { value: `artist:${a.id}` }, `Artist: ${a.name}`)));
        select.replaceChildren(...options);
      } catch (e) {
        showError(`Cannot search (${e.message}).`);
      }
    }, SEARCH_DELAY_MS);
  });
  return {
    set(value, label) {
      select.replaceChildren(el("option", { value }, label));
      input.value = label;
    },
    get: () => select.value,
    label: () => (select.selectedOptions[0] ? select.selectedOptions[0].textContent : ""),
  };
}

const pickers = {};
for (const div of document.querySelectorAll(".picker")) pickers[`${div.closest("form").id}:${div.dataset.name}`] = makePicker(div);

// "Path from here" / "Path to here" on a track's page: fill the path builder.
function pathEnd(end, t) {
  pickers[`build-path:${end}`].set(`track:${t.id}`, [t.title, t.artist].filter(Boolean).join(" — "));
  notify(`The path will go ${end} ${t.title}.`);
  location.hash = "#/build";
}

$("build-radio").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const p = pickers["build-radio:seed"];
  const [kind, id] = p.get().split(/:(.*)/);
  if (id) buildRadio({ [kind]: id }, p.label());
});

$("build-path").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const from = pickers["build-path:from"].get().replace("track:", "");
  const to = pickers["build-path:to"].get().replace("track:", "");
  const n = Number($("path-length").value) || 12;
  try {
    showBuilt(await api(`/api/v1/path?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}&length=${n}`),
      `Path: ${pickers["build-path:from"].label()} → ${pickers["build-path:to"].label()}`);
  } catch (e) {
    showError(`Cannot build the path (${e.message}).`);
  }
});

$("build-mix").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const n = Number($("mix-length").value) || 20;
  const start = Number($("mix-start").value) / 100;
  const end = Number($("mix-end").value) / 100;
  try {
    showBuilt(await api(`/api/v1/mix?length=${n}&start=${start}&end=${end}`), "DJ mix");
  } catch (e) {
    showError(`Cannot build the mix (${e.message}).`);
  }
});

$("build-words").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const q = $("words-q").value.trim();
  const n = Number($("words-count").value) || 25;
  try {
    showBuilt(await api(`/api/v1/words?q=${encodeURIComponent(q)}&count=${n}`), `“${q}”`);
  } catch (e) {
    showError(`Cannot build a list for “${q}” (${e.message}).`);
  }
});

// ---------- routes, back, and the offline shell ----------

Object.assign(ROUTES, {
  search: { section: "search-view", what: "search", tab: "search", open: openSearch, keepFocus: true },
  library: { section: "library-view", what: "library", tab: "library", open: openLibrary },
  folder: { section: "library-view", what: "folder", tab: "library", open: openFolder },
  album: { section: "list-view", what: "album", tab: "library", open: openAlbum },
  artist: { section: "page-view", what: "artist", tab: "library", open: openArtist },
  genre: { section: "page-view", what: "genre", tab: "library", open: openGenre },
  track: { section: "page-view", what: "track", tab: "library", open: openTrack },
  build: { section: "build-view", what: "builder", tab: "build", open: async () => {} },
  built: { section: "list-view", what: "list", tab: "build", open: openBuilt },
});

// "Back" goes where the listener came from, like the phone's back button.
$("list-view").querySelector(".back").addEventListener("click", (ev) => {
  if (history.length > 1) {
    ev.preventDefault();
    history.back();
  }
});

if ("serviceWorker" in navigator) {
  navigator.serviceWorker.register("/sw.js").catch(() => {
    // private mode before signing in, or a browser that refuses: the page works without it
  });
}
