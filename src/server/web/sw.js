// playlista's service worker: keeps the page's shell (the page, its scripts, style, icon and
// manifest, of this version) so the app opens from the home screen even when the box is
// away; the music and the API always come from the box. A new version of the box is a new
// cache name ({{v}} is the hash of the page's files), and the old cache is dropped.
"use strict";

const CACHE = "playlista-{{v}}";
const SHELL = [
  "/",
  "/static/app.js?v={{v}}",
  "/static/browse.js?v={{v}}",
  "/static/map.js?v={{v}}",
  "/static/style.css?v={{v}}",
  "/static/icon.svg?v={{v}}",
  "/static/manifest.webmanifest?v={{v}}",
];

self.addEventListener("install", (ev) => {
  ev.waitUntil(caches.open(CACHE).then((c) => c.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (ev) => {
  ev.waitUntil(caches.keys()
    .then((names) => Promise.all(names.filter((n) => n.startsWith("playlista-") && n !== CACHE).map((n) => caches.delete(n))))
    .then(() => self.clients.claim()));
});

self.addEventListener("fetch", (ev) => {
  const url = new URL(ev.request.url);
  if (ev.request.method !== "GET" || url.origin !== self.location.origin) return;
  if (ev.request.mode === "navigate") {
    // The page from the box when it answers (it may be newer), else the kept one.
    ev.respondWith(fetch(ev.request).catch(() => caches.match("/")));
  } else if (url.pathname.startsWith("/static/")) {
    ev.respondWith(caches.match(ev.request).then((hit) => hit || fetch(ev.request)));
  }
  // Everything else (the API, streams, covers) goes to the box untouched.
});
