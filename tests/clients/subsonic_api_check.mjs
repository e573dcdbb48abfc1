// The server through the npm `subsonic-api` client (the library web players such as
// Feishin-likes build on), in its GET mode and its form-POST mode, as a browser would call
// it: every endpoint of issue 15 in JSON through the client's own method (its parameter
// names and list encoding), the CORS preflight a web client sends first, and what a
// listener does, per account.
//
// Usage: node subsonic_api_check.mjs BASE_URL USER PASSWORD USER2 PASSWORD2, on the tests'
// library (tests/support/music.rs) with empty listening data. Prints `ok NAME` or
// `FAIL NAME: reason` per check; exits 1 if any failed. Run by tests/subsonic_clients.rs.

import { SubsonicAPI } from "subsonic-api";

const [url, user, password, user2, password2] = process.argv.slice(2);
const client = (username, pw, post) =>
  new SubsonicAPI({ url, auth: { username, password: pw }, post });
const get = client(user, password, false);
const post = client(user, password, true);
const other = client(user2, password2, false);

const failed = [];
async function check(name, fn) {
  try {
    await fn();
    console.log(`ok ${name}`);
  } catch (e) {
    failed.push(name);
    console.log(`FAIL ${name}: ${e?.message ?? e}`);
  }
}
function assert(cond, what) {
  if (!cond) throw new Error(typeof what === "string" ? what : JSON.stringify(what));
}
/** The answer, which must be `ok`. */
async function ok(promise, what) {
  const r = await promise;
  assert(r?.status === "ok", `${what}: ${JSON.stringify(r)}`);
  return r;
}
const list = (x) => (x === undefined ? [] : Array.isArray(x) ? x : [x]);

const all = await ok(
  get.search3({ query: "", songCount: 500, albumCount: 500, artistCount: 500 }),
  "search3",
);
const songs = Object.fromEntries(list(all.searchResult3.song).map((s) => [s.title, s.id]));
const albums = Object.fromEntries(list(all.searchResult3.album).map((a) => [a.name, a.id]));
const artists = Object.fromEntries(list(all.searchResult3.artist).map((a) => [a.name, a.id]));
const [A1, A2, A3] = [1, 2, 3].map((k) => songs[`First Light ${k}`]);
const [B1, B2, B3] = [1, 2, 3].map((k) => songs[`Second Wind ${k}`]);
const AL_A = albums["First Light"];
const AR_A = artists["Ada Example"];

await check("feishin: CORS preflight", async () => {
  const origin = "http://localhost:4343";
  const r = await fetch(`${url}/rest/getAlbumList2.view`, {
    method: "OPTIONS",
    headers: {
      Origin: origin,
      "Access-Control-Request-Method": "GET",
      "Access-Control-Request-Headers": "content-type",
    },
  });
  assert(r.status === 200 || r.status === 204, `status ${r.status}`);
  const allow = r.headers.get("access-control-allow-origin");
  assert(allow === "*" || allow === origin, `allow-origin ${allow}`);
  const headers = (r.headers.get("access-control-allow-headers") ?? "").toLowerCase();
  assert(headers === "*" || headers.includes("content-type"), `allow-headers ${headers}`);
});

// Every endpoint through the client's own method, in GET and in form-POST mode.
const endpoints = {
  ping: (c) => c.ping(),
  getLicense: (c) => c.getLicense(),
  getOpenSubsonicExtensions: (c) => c.getOpenSubsonicExtensions(),
  getUser: (c) => c.getUser({ username: user }),
  getMusicFolders: (c) => c.getMusicFolders(),
  getIndexes: (c) => c.getIndexes(),
  getArtists: (c) => c.getArtists(),
  getArtist: (c) => c.getArtist({ id: AR_A }),
  getAlbum: (c) => c.getAlbum({ id: AL_A }),
  getSong: (c) => c.getSong({ id: A1 }),
  getMusicDirectory: (c) => c.getMusicDirectory({ id: AL_A }),
  getGenres: (c) => c.getGenres(),
  search2: (c) => c.search2({ query: "light" }),
  getRandomSongs: (c) => c.getRandomSongs({ size: 3 }),
  getAlbumList: (c) => c.getAlbumList({ type: "newest" }),
  getAlbumList2: (c) => c.getAlbumList2({ type: "frequent" }),
  getPlaylists: (c) => c.getPlaylists(),
  getSimilarSongs2: (c) => c.getSimilarSongs2({ id: A1, count: 3 }),
  getSonicSimilarTracks: (c) => c.customJSON("getSonicSimilarTracks", { id: A1, count: 3 }),
  findSonicPath: (c) =>
    c.customJSON("findSonicPath", { startSongId: A1, endSongId: B3, count: 4 }),
  getTopSongs: (c) => c.getTopSongs({ artist: "Ada Example" }),
  getArtistInfo: (c) => c.getArtistInfo({ id: AR_A }),
  getArtistInfo2: (c) => c.getArtistInfo2({ id: AR_A }),
  getAlbumInfo: (c) => c.getAlbumInfo({ id: AL_A }),
  getAlbumInfo2: (c) => c.getAlbumInfo2({ id: AL_A }),
  getSongsByGenre: (c) => c.getSongsByGenre({ genre: "Electronic" }),
  getScanStatus: (c) => c.getScanStatus(),
  getLyrics: (c) => c.getLyrics({ artist: "The Examples", title: "Second Wind 1" }),
  getLyricsBySongId: (c) => c.getLyricsBySongId({ id: B1 }),
  getNowPlaying: (c) => c.getNowPlaying(),
  getStarred: (c) => c.getStarred(),
  getStarred2: (c) => c.getStarred2(),
  getPlayQueue: (c) => c.getPlayQueue(),
  getBookmarks: (c) => c.getBookmarks(),
  getPodcasts: (c) => c.getPodcasts(),
  getNewestPodcasts: (c) => c.getNewestPodcasts(),
  getInternetRadioStations: (c) => c.getInternetRadioStations(),
  getShares: (c) => c.getShares(),
  getChatMessages: (c) => c.getChatMessages(),
};
for (const [name, call] of Object.entries(endpoints)) {
  await check(`${name} (GET and POST)`, async () => {
    await ok(call(get), `${name} GET`);
    await ok(call(post), `${name} POST`);
  });
}

await check("star/unstar song, album, artist -> getStarred2", async () => {
  await ok(post.star({ id: [A1, B1], albumId: AL_A, artistId: AR_A }), "star");
  const s = (await ok(get.getStarred2(), "getStarred2")).starred2;
  assert(list(s.song).map((x) => x.id).sort().join() === [A1, B1].sort().join(), s);
  assert(list(s.album).map((x) => x.id).join() === AL_A, s);
  assert(list(s.artist).map((x) => x.id).join() === AR_A, s);
  await ok(post.unstar({ id: B1, albumId: AL_A, artistId: AR_A }), "unstar");
  const t = (await ok(get.getStarred2(), "getStarred2")).starred2;
  assert(list(t.song).map((x) => x.id).join() === A1 && !list(t.album).length, t);
});

await check("the other account has its own stars", async () => {
  const s = (await ok(other.getStarred2(), "getStarred2")).starred2;
  assert(!list(s.song).length, s);
});

await check("scrobble -> getAlbumList2 frequent/recent", async () => {
  await ok(post.scrobble({ id: B2, submission: true }), "scrobble");
  for (const type of ["frequent", "recent"]) {
    const l = list((await ok(get.getAlbumList2({ type }), type)).albumList2.album);
    assert(l[0]?.name === "Second Wind", `${type}: ${JSON.stringify(l)}`);
    const theirs = (await ok(other.getAlbumList2({ type }), type)).albumList2.album;
    assert(!list(theirs).length, `${type} shown to the other account`);
  }
});

await check("setRating 5, and 6 is error 10", async () => {
  await ok(get.setRating({ id: A2, rating: 5 }), "setRating");
  assert((await ok(get.getSong({ id: A2 }), "getSong")).song.userRating === 5, "no rating");
  const bad = await get.setRating({ id: A2, rating: 6 });
  assert(bad.status === "failed" && bad.error.code === 10, bad);
});

await check("savePlayQueue -> getPlayQueue", async () => {
  await ok(post.savePlayQueue({ id: [A3, B3], current: B3, position: 4200 }), "save");
  const q = (await ok(get.getPlayQueue(), "getPlayQueue")).playQueue;
  assert(list(q?.entry).map((e) => e.id).join() === [A3, B3].join(), q);
  assert(q.current === B3 && q.position === 4200, q);
  const theirs = (await ok(other.getPlayQueue(), "other")).playQueue;
  assert(!list(theirs?.entry).length, `queue shared: ${JSON.stringify(theirs)}`);
});

await check("bookmarks create/get/delete", async () => {
  await ok(post.createBookmark({ id: A3, position: 777, comment: "x & <y>" }), "create");
  const b = list((await ok(get.getBookmarks(), "get")).bookmarks.bookmark);
  assert(b.length === 1 && b[0].entry.id === A3 && b[0].position === 777, b);
  assert(b[0].comment === "x & <y>", b);
  await ok(get.deleteBookmark({ id: A3 }), "delete");
  assert(!list((await ok(get.getBookmarks(), "get")).bookmarks.bookmark).length, "kept");
});

await check("createPlaylist/updatePlaylist/deletePlaylist", async () => {
  const made = await ok(post.createPlaylist({ name: "npm & co", songId: [A1, A2] }), "create");
  const id = made.playlist.id;
  assert(list(made.playlist.entry).map((e) => e.id).join() === [A1, A2].join(), made);
  await ok(
    post.updatePlaylist({ playlistId: id, songIdToAdd: [B1], songIndexToRemove: [1] }),
    "update",
  );
  const p = (await ok(get.getPlaylist({ id }), "get")).playlist;
  assert(p.name === "npm & co" && list(p.entry).map((e) => e.id).join() === [A1, B1].join(), p);
  const theirs = list((await ok(other.getPlaylists(), "other")).playlists.playlist);
  assert(!theirs.some((x) => x.id === id), "shown to the other account");
  await ok(get.deletePlaylist({ id }), "delete");
  const gone = await get.getPlaylist({ id });
  assert(gone.status === "failed" && gone.error.code === 70, gone);
});

await check("getSonicSimilarTracks: sonicMatch of {entry, similarity}", async () => {
  const r = await ok(get.customJSON("getSonicSimilarTracks", { id: B3, count: 4 }), "sonic");
  const m = list(r.sonicMatch);
  assert(m.length === 4, r);
  assert(m.every((x) => x.entry?.id && x.similarity >= 0 && x.similarity <= 1), m);
});

console.log(failed.length ? `${failed.length} failed: ${failed.join(", ")}` : "all checks passed");
process.exit(failed.length ? 1 : 0);
