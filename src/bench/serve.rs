//! The server load benchmark (`bench --serve`): the service's router and listener on a 100,000-track
//! database, driven by `wrk` from another process at 100 connections.
//!
//! In: nothing but `wrk` on the PATH. Out: a text table, one row per endpoint: requests/s,
//! p50 and p99 latency, errors (non-2xx/3xx answers and socket errors), the server's RSS after
//! the run; before it, the size and CPU cost of the gzip copies of the big cached answers
//! (playlist JSON and M3U8 rows are asked with `Accept-Encoding: gzip`, as phones ask); then the RSS before, after warm-up and at the end, and each budget (p99 < 20 ms for
//! playlist JSON and M3U8, no errors, RSS flat = less than 10 % growth after warm-up) judged.
//! `Err` when the bench cannot run or the server dies; a missed budget is printed, not an
//! error. The similar-tracks run has `/api/v1/status` asked beside it, to show whether the
//! radio computations starve cheap requests.
//!
//! The page's rows: search as typed and pages of 500 albums, from [`PAGE_CONNECTIONS`]
//! connections (p99 < 50 ms), and the map's binary answer at 100 (cached per snapshot, gzip;
//! no budget: it is fetched once per visit); then Lighthouse's scores of the page on this
//! server ([`super::lighthouse`]).
//!
//! The Subsonic rows (`/rest/`, as phone apps call it, one account) come after listening was
//! recorded through the API (stars, plays, and skips of each radio seed's top song, so that
//! the learning radio has something to apply): album lists, `search3`, `getStarred2`,
//! `getTopSongs` (p99 < 50 ms), `getSimilarSongs2` (p99 < 100 ms), and browsing while a
//! player scrobbles at 100/s. A Subsonic answer with `"status":"failed"` counts as an error.
//!
//! The database is the playlist benchmark's ([`super::playlists::synthesise`]) with the
//! playlists the service keeps by default ([`crate::server::background::DEFAULT_METHODS`]),
//! made by [`playlist::run`] as the service makes them. The server is the service's own
//! [`server::serve`] in this process on `127.0.0.1:0` (no background analysis competes) and
//! the RSS is this process's, read from `/proc/self/status` after the database is built and
//! dropped. wrk's closed loop keeps
//! 100 requests in flight, so by Little's law the mean latency is 100 / (requests/s): a p99
//! under 20 ms needs well over 5,000 requests/s on whatever cores wrk leaves the server.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};

use crate::playlist::{self, Flags};
use crate::server::background::DEFAULT_METHODS;
use crate::server::{self, rendered};
use crate::store::{Store, Tuning};

const TRACKS: usize = 100_000;
/// The track count of "a big playlist": the stored one closest to it is served.
const BIG_PLAYLIST: usize = 500;
/// Seeds the similar-tracks run cycles through, so that it measures radio, not one answer.
const SEEDS: usize = 1000;
const CONNECTIONS: usize = 100;
/// Web pages searching and listing albums at once: a household's phones, each answer
/// computed (not cached), so the p99 is what one person typing waits.
const PAGE_CONNECTIONS: usize = 4;
/// Connections asking for `/api/v1/status` while the similar-tracks run loads the server.
const STATUS_CONNECTIONS: usize = 5;
/// Per endpoint: 5 s at these rates is thousands of requests (the p99 is well sampled) and
/// keeps the runs within CI's budget.
const RUN: Duration = Duration::from_secs(5);
const WARM_UP: Duration = Duration::from_secs(2);
const P99_BUDGET_MS: f64 = 20.0;
/// p99 budgets of the Subsonic lists (album lists, search, starred, top songs) and of
/// similar songs (a radio over the whole library, with the listener's skips applied).
const LIST_BUDGET_MS: f64 = 50.0;
const SIMILAR_BUDGET_MS: f64 = 100.0;
/// The Subsonic account of the bench, and how its calls authenticate.
const USER: &str = "bench";
const PASSWORD: &str = "bench";
/// Radio seeds whose top similar song is skipped five times before the runs; songs starred
/// and played.
const SKIPPED_SEEDS: usize = 100;
const STARS: usize = 300;
const PLAYS: usize = 500;
/// Scrobbles per second during the browsing run, from this many connections, each pausing
/// `connections / rate` between requests.
const SCROBBLE_RATE: usize = 100;
const SCROBBLE_CONNECTIONS: usize = 10;
/// Largest RSS growth after warm-up still called flat.
const RSS_GROWTH: f64 = 0.10;
const TUNING: Tuning = Tuning { cache_kib: 8192 };

/// One endpoint under load: what the table calls it, the paths wrk cycles through, the
/// connections it keeps busy, the p99 budget that applies (ms), whether wrk sends
/// `Accept-Encoding: gzip`, whether answers are Subsonic ones (a `"status":"failed"` body is
/// an error) and the pause of each connection between requests (ms; 0: closed loop).
struct Target {
    label: String,
    paths: Vec<String>,
    connections: usize,
    budget: Option<f64>,
    gzip: bool,
    subsonic: bool,
    delay_ms: u64,
}

impl Target {
    /// The budget rows are the cached playlist answers, asked for gzip as phones and
    /// browsers do.
    fn new(label: String, paths: Vec<String>, budget: bool) -> Target {
        Target {
            label,
            paths,
            connections: CONNECTIONS,
            budget: budget.then_some(P99_BUDGET_MS),
            gzip: budget,
            subsonic: false,
            delay_ms: 0,
        }
    }

    /// Subsonic calls (paths made by [`rest`]) within `budget_ms`.
    fn subsonic(label: String, paths: Vec<String>, budget_ms: f64) -> Target {
        Target {
            label,
            paths,
            connections: CONNECTIONS,
            budget: Some(budget_ms),
            gzip: false,
            subsonic: true,
            delay_ms: 0,
        }
    }
}

/// The path of Subsonic call `method?query` as the bench's account, JSON answers.
fn rest(method: &str, query: &str) -> String {
    format!("/rest/{method}?u={USER}&p={PASSWORD}&v=1.16.1&c=bench&f=json&{query}")
}

/// What wrk measured on one target.
struct Run {
    requests: u64,
    seconds: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
}

/// The server in this process ([`server::Running`], the service's own router and listener
/// on a runtime of its own with as many workers as `serve` has), stopped when dropped, so
/// that no error path leaves it running.
struct InProcess(server::Running);

impl InProcess {
    /// Serves the state in `dir` on `127.0.0.1:0` with the config `serve` would read.
    fn start(dir: &Path) -> Result<InProcess> {
        let file = dir.join("config.toml");
        std::fs::write(
            &file,
            format!(
                "[server]\nrescan_minutes = 0\n\n[subsonic]\nuser = {USER:?}\n\
                 password = {PASSWORD:?}\n"
            ),
        )?;
        let flags = crate::config::Flags {
            cache_dir: Some(dir.join("state")),
            output_dir: Some(dir.join("playlists")),
            ..Default::default()
        };
        let config = crate::config::resolve(&flags, Some(&file))?;
        let listen = server::Listen {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            name: "playlista".into(),
        };
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get().min(4));
        Ok(InProcess(server::Running::start(
            &config, &listen, threads,
        )?))
    }

    fn addr(&self) -> SocketAddr {
        self.0.addr()
    }

    /// `(VmRSS, VmHWM)` in KiB, of this process (the server and the bench's few buffers).
    fn rss_kb(&self) -> Result<(u64, u64)> {
        let status = std::fs::read_to_string("/proc/self/status")?;
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| anyhow!("no {name} in /proc/self/status"))
        };
        Ok((field("VmRSS:")?, field("VmHWM:")?))
    }

    fn alive(&self) -> Result<()> {
        anyhow::ensure!(self.0.serving(), "the server stopped during the benchmark");
        Ok(())
    }
}

/// One GET over HTTP/1.0 with `Accept-Encoding: gzip` if `gzip`; the status, whether the
/// answer is gzipped, and the body as sent.
fn get(addr: SocketAddr, path: &str, gzip: bool) -> Result<(u16, bool, Vec<u8>)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let accept = if gzip {
        "Accept-Encoding: gzip\r\n"
    } else {
        ""
    };
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n{accept}\r\n")?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let head_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| anyhow!("GET {path}: no complete response"))?;
    let head = std::str::from_utf8(&raw[..head_end])?.to_ascii_lowercase();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| anyhow!("GET {path}: no status"))?;
    let gzipped = head.contains("\r\ncontent-encoding: gzip");
    Ok((status, gzipped, raw.split_off(head_end + 4)))
}

fn get_json(addr: SocketAddr, path: &str) -> Result<serde_json::Value> {
    let (status, _, body) = get(addr, path, false)?;
    anyhow::ensure!(status == 200, "GET {path}: {status}");
    Ok(serde_json::from_slice(&body)?)
}

/// Subsonic call `method?query` as the bench's account: the answer, or the Subsonic error.
fn call(addr: SocketAddr, method: &str, query: &str) -> Result<serde_json::Value> {
    let v = get_json(addr, &rest(method, query))?;
    let answer = &v["subsonic-response"];
    anyhow::ensure!(answer["status"] == "ok", "{method}: {}", answer["error"]);
    Ok(answer.clone())
}

/// Records the account's listening through the API, as a phone would: [`STARS`] stars and
/// [`PLAYS`] plays over the seeds, and for each of [`SKIPPED_SEEDS`] seeds its top similar
/// song started and at once replaced by another, five times (skips). Calls that fail are
/// counted (with the first message of each method), not fatal: they count as errors in the
/// verdict. The line that says what was recorded, and the failed calls.
fn listen(addr: SocketAddr, seeds: &[i64]) -> Result<(String, usize)> {
    let (mut calls, mut failed) = (0, std::collections::BTreeMap::<&str, String>::new());
    let mut failures = 0;
    let mut note = |method: &'static str, query: String| -> Option<serde_json::Value> {
        calls += 1;
        call(addr, method, &query)
            .map_err(|e| {
                failures += 1;
                failed.entry(method).or_insert_with(|| e.to_string())
            })
            .ok()
    };
    for id in seeds.iter().cycle().take(STARS) {
        note("star", format!("id={id}"));
    }
    for id in seeds.iter().rev().cycle().take(PLAYS) {
        note("scrobble", format!("id={id}&submission=true"));
    }
    for (k, seed) in seeds.iter().take(SKIPPED_SEEDS).enumerate() {
        let top = note("getSimilarSongs2", format!("id={seed}&count=5")).and_then(|v| {
            v["similarSongs2"]["song"][0]["id"]
                .as_str()
                .map(str::to_string)
        });
        let Some(top) = top else { continue };
        let next = seeds[(k + SKIPPED_SEEDS) % seeds.len()];
        for _ in 0..5 {
            note("scrobble", format!("id={top}&submission=false"));
            note("scrobble", format!("id={next}&submission=false"));
        }
    }
    let errors: Vec<String> = failed.into_values().collect();
    let line = format!(
        "listening recorded through the API first: {STARS} stars, {PLAYS} plays, five skips \
         of the top similar song of {SKIPPED_SEEDS} seeds ({calls} calls{})",
        if errors.is_empty() {
            String::new()
        } else {
            format!("; {failures} FAILED: {}", errors.join("; "))
        }
    );
    Ok((line, failures))
}

/// What the endpoints are asked for.
struct Picks {
    /// The stored playlist closest to [`BIG_PLAYLIST`] tracks, and its size.
    big: (i64, usize),
    /// Every playlist of at least 80 % of that size: together far more than the server's
    /// rendered-body cache holds, so cycling through them measures rendering.
    bigs: Vec<i64>,
    seeds: Vec<i64>,
}

/// The database: synthesised tracks and the service's default playlists.
fn build(dir: &Path) -> Result<Picks> {
    let state = dir.join("state");
    std::fs::create_dir_all(&state)?;
    let mut store = Store::open(&state.join("playlista.db"), TUNING)?;
    super::playlists::synthesise(&mut store, TRACKS)?;
    let lib = playlist::load(&store)?;
    for method in DEFAULT_METHODS {
        let flags = Flags {
            method,
            ..Flags::default()
        };
        playlist::run(&store, &lib, &dir.join("playlists"), &flags)?;
    }
    let stored = store.all_playlists()?;
    let big = stored
        .iter()
        .min_by_key(|p| p.tracks.len().abs_diff(BIG_PLAYLIST))
        .ok_or_else(|| anyhow!("no playlists were made"))?;
    let bigs = stored
        .iter()
        .filter(|p| p.tracks.len() * 5 >= big.tracks.len() * 4)
        .map(|p| p.id)
        .collect();
    let step = (lib.len() / SEEDS).max(1);
    Ok(Picks {
        big: (big.id, big.tracks.len()),
        bigs,
        seeds: lib.tracks.iter().step_by(step).map(|t| t.id).collect(),
    })
}

/// What gzip does to the answer at `path`: `(plain KB, gzip KB, ms to compress)`, the time
/// the best of a few runs of the server's own [`rendered::gzip`] on the plain body. Checks
/// that the server sends that copy to a client asking for gzip.
fn compression(addr: SocketAddr, path: &str) -> Result<(f64, f64, f64)> {
    let (_, _, plain) = get(addr, path, false)?;
    let (status, gzipped, sent) = get(addr, path, true)?;
    anyhow::ensure!(
        status == 200 && gzipped,
        "GET {path} with Accept-Encoding: gzip: {status}, not gzipped"
    );
    let mut decoded = Vec::new();
    flate2::read::GzDecoder::new(&sent[..]).read_to_end(&mut decoded)?;
    anyhow::ensure!(
        decoded == plain,
        "GET {path}: the gzip copy is another body"
    );
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let t = Instant::now();
        let z = rendered::gzip(&plain).ok_or_else(|| anyhow!("gzip failed"))?;
        best = best.min(t.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(z.len() == sent.len(), "GET {path}: another gzip level?");
    }
    Ok((
        plain.len() as f64 / 1024.0,
        sent.len() as f64 / 1024.0,
        best,
    ))
}

/// The wrk script of `target`: cycles through its paths, with `Accept-Encoding: gzip` if
/// asked, pausing between requests if asked, counting Subsonic `failed` answers if they are
/// Subsonic ones (each thread counts in its own Lua state; `done` adds them up), and prints
/// one machine-readable line at the end.
fn script(target: &Target) -> String {
    let list: Vec<String> = target.paths.iter().map(|p| format!("{p:?}")).collect();
    let headers = if target.gzip {
        r#"{ ["Accept-Encoding"] = "gzip" }"#
    } else {
        "nil"
    };
    let delay = if target.delay_ms > 0 {
        format!("delay = function() return {} end\n", target.delay_ms)
    } else {
        String::new()
    };
    // Only Subsonic targets hand bodies to Lua: it costs wrk time on the other rows.
    let response = if target.subsonic {
        "response = function(status, headers, body)\n  \
         if string.find(body, '\"status\":\"failed\"', 1, true) then failed = failed + 1 end\n\
         end\n"
    } else {
        ""
    };
    format!(
        r#"local paths = {{ {} }}
local headers = {headers}
local i = 0
failed = 0
local threads = {{}}
setup = function(thread) table.insert(threads, thread) end
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i % #paths) + 1], headers)
end
{delay}{response}done = function(s, latency, requests)
  local e = s.errors
  local f = 0
  for _, t in ipairs(threads) do f = f + (t:get("failed") or 0) end
  io.write(string.format("RESULT %.0f %.0f %.0f %.0f %.0f\n", s.requests, s.duration,
    latency:percentile(50), latency:percentile(99),
    e.status + e.connect + e.read + e.write + e.timeout + f))
end
"#,
        list.join(", ")
    )
}

/// Runs wrk against every target of `group` at once for `length`.
fn drive(addr: SocketAddr, scratch: &Path, group: &[Target], length: Duration) -> Result<Vec<Run>> {
    let mut children = Vec::new();
    for (k, target) in group.iter().enumerate() {
        let script_path = scratch.join(format!("bench-{k}.lua"));
        std::fs::write(&script_path, script(target))?;
        let threads = target.connections.min(2).to_string();
        let child = Command::new("wrk")
            .args(["-t", &threads, "-c", &target.connections.to_string(), "-d"])
            .arg(format!("{}s", length.as_secs().max(1)))
            .args(["--timeout", "5s", "-s"])
            .arg(&script_path)
            .arg(format!("http://{addr}/"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot run wrk (apt-get install wrk)")?;
        children.push(child);
    }
    children
        .into_iter()
        .map(|child| parse(child.wait_with_output()?))
        .collect()
}

/// wrk's `RESULT` line (see [`script`]).
fn parse(out: std::process::Output) -> Result<Run> {
    let text = String::from_utf8_lossy(&out.stdout);
    anyhow::ensure!(
        out.status.success(),
        "wrk failed: {}{}",
        text,
        String::from_utf8_lossy(&out.stderr)
    );
    let numbers: Vec<f64> = text
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .ok_or_else(|| anyhow!("wrk printed no RESULT line: {text}"))?
        .split_whitespace()
        .filter_map(|n| n.parse().ok())
        .collect();
    let [requests, duration_us, p50_us, p99_us, errors] = numbers[..] else {
        bail!("wrk's RESULT line is malformed: {text}");
    };
    Ok(Run {
        requests: requests as u64,
        seconds: duration_us / 1e6,
        p50_ms: p50_us / 1000.0,
        p99_ms: p99_us / 1000.0,
        errors: errors as u64,
    })
}

fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

/// Builds the database, starts the server, loads each endpoint and reports.
pub fn table() -> Result<String> {
    which_wrk()?;
    let scratch = tempfile::Builder::new()
        .prefix("playlista-bench-serve-")
        .tempdir()?;
    let dir = scratch.path();
    let t = Instant::now();
    let picks = build(dir)?;
    let (big, big_len) = picks.big;
    let built_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let server = InProcess::start(dir)?;
    let ready_s = t.elapsed().as_secs_f64();
    let lists = get_json(server.addr(), "/api/v1/playlists")?;
    let playlists = lists.as_array().map_or(0, Vec::len);
    let served = get_json(server.addr(), &format!("/api/v1/playlists/{big}"))?;
    let served_len = served["tracks"].as_array().map_or(0, Vec::len);
    anyhow::ensure!(
        served_len == big_len,
        "playlist {big} has {big_len} tracks stored but {served_len} served"
    );
    let gz_lists = compression(server.addr(), "/api/v1/playlists")?;
    let gz_big = compression(server.addr(), &format!("/api/v1/playlists/{big}"))?;
    let gz_m3u8 = compression(server.addr(), &format!("/playlists/{big}.m3u8"))?;
    let (listened, listen_errors) = listen(server.addr(), &picks.seeds)?;
    let album_lists: Vec<String> = [
        "newest",
        "frequent",
        "recent",
        "starred",
        "highest",
        "alphabeticalByName",
        "random",
    ]
    .iter()
    .flat_map(|t| (0..10).map(move |page| format!("type={t}&size=50&offset={}", page * 50)))
    .map(|q| rest("getAlbumList2", &q))
    .collect();
    let searches: Vec<String> = (0..200)
        .map(|k| {
            let q = format!(
                "query=Artist+{}&songCount=50&albumCount=20&artistCount=20",
                k * 7
            );
            rest("search3", &q)
        })
        .collect();
    let browsing: Vec<String> = album_lists.iter().chain(&searches).cloned().collect();
    // The page's search as a person types: names, titles, a genre and year, two letters.
    let typed: Vec<String> = (0..200)
        .map(|k| match k % 4 {
            0 => format!("artist {}", k * 7),
            1 => format!("track {}", k * 491),
            2 => format!(
                "{} {}",
                ["rock", "jazz", "folk", "soul"][k % 16 / 4],
                1960 + k % 65
            ),
            _ => ["ar", "al", "tr", "ro", "ja"][k % 5].to_string(),
        })
        .map(|q| format!("/api/v1/search?q={}&count=20", q.replace(' ', "+")))
        .collect();
    let album_pages: Vec<String> = ["name", "newest", "year", "artist"]
        .iter()
        .flat_map(|sort| {
            (0..10).map(move |p| format!("/api/v1/albums?sort={sort}&count=500&offset={}", p * 500))
        })
        .collect();
    // Each group runs at once; the last shows what a cheap request waits while every core
    // computes radios.
    let groups = [
        vec![Target::new(
            format!("GET /api/v1/playlists ({playlists} lists)"),
            vec!["/api/v1/playlists".into()],
            true,
        )],
        vec![Target::new(
            format!("GET /api/v1/playlists/{{id}} ({big_len} tr)"),
            vec![format!("/api/v1/playlists/{big}")],
            true,
        )],
        vec![Target::new(
            format!("  same, cycling {} big lists", picks.bigs.len()),
            picks
                .bigs
                .iter()
                .map(|id| format!("/api/v1/playlists/{id}"))
                .collect(),
            true,
        )],
        vec![Target::new(
            format!("GET /playlists/{{id}}.m3u8 ({big_len} tr)"),
            vec![format!("/playlists/{big}.m3u8")],
            true,
        )],
        vec![
            Target::new(
                format!(
                    "GET /api/v1/tracks/{{id}}/similar ({} seeds)*",
                    picks.seeds.len()
                ),
                picks
                    .seeds
                    .iter()
                    .map(|id| format!("/api/v1/tracks/{id}/similar"))
                    .collect(),
                false,
            ),
            Target {
                label: format!("  GET /api/v1/status meanwhile ({STATUS_CONNECTIONS} conn)*"),
                paths: vec!["/api/v1/status".into()],
                connections: STATUS_CONNECTIONS,
                budget: None,
                gzip: false,
                subsonic: false,
                delay_ms: 0,
            },
        ],
        vec![Target {
            budget: Some(LIST_BUDGET_MS),
            connections: PAGE_CONNECTIONS,
            ..Target::new(
                format!(
                    "GET /api/v1/search?q= ({} typed, {PAGE_CONNECTIONS} conn)",
                    typed.len()
                ),
                typed,
                false,
            )
        }],
        vec![Target {
            budget: None,
            ..Target::new(
                format!("GET /api/v1/map ({TRACKS} points, gzip)"),
                vec!["/api/v1/map".into()],
                true,
            )
        }],
        vec![Target {
            budget: Some(LIST_BUDGET_MS),
            connections: PAGE_CONNECTIONS,
            ..Target::new(
                format!(
                    "GET /api/v1/albums?count=500 ({} pages, {PAGE_CONNECTIONS} conn)",
                    album_pages.len()
                ),
                album_pages,
                true,
            )
        }],
        vec![Target::subsonic(
            format!("Subsonic getAlbumList2 ({} lists)", album_lists.len()),
            album_lists,
            LIST_BUDGET_MS,
        )],
        vec![Target::subsonic(
            format!("Subsonic search3 ({} queries)", searches.len()),
            searches,
            LIST_BUDGET_MS,
        )],
        vec![Target::subsonic(
            format!("Subsonic getStarred2 ({STARS} songs)"),
            vec![rest("getStarred2", "")],
            LIST_BUDGET_MS,
        )],
        vec![Target::subsonic(
            "Subsonic getTopSongs (200 artists)".into(),
            (0..200)
                .map(|k| rest("getTopSongs", &format!("artist=Artist+{}&count=50", k * 13)))
                .collect(),
            LIST_BUDGET_MS,
        )],
        vec![Target::subsonic(
            format!(
                "Subsonic getSimilarSongs2, learning on ({} seeds)",
                picks.seeds.len()
            ),
            picks
                .seeds
                .iter()
                .map(|id| rest("getSimilarSongs2", &format!("id={id}&count=50")))
                .collect(),
            SIMILAR_BUDGET_MS,
        )],
        vec![
            Target::subsonic(
                "Subsonic browsing: album lists + search3".into(),
                browsing,
                LIST_BUDGET_MS,
            ),
            Target {
                label: format!("  scrobble meanwhile (paced to {SCROBBLE_RATE}/s at most)"),
                paths: picks
                    .seeds
                    .iter()
                    .map(|id| rest("scrobble", &format!("id={id}&submission=true")))
                    .collect(),
                connections: SCROBBLE_CONNECTIONS,
                delay_ms: (SCROBBLE_CONNECTIONS * 1000 / SCROBBLE_RATE) as u64,
                ..Target::subsonic(String::new(), Vec::new(), LIST_BUDGET_MS)
            },
        ],
    ];

    let (start_rss, _) = server.rss_kb()?;
    for group in &groups {
        drive(server.addr(), dir, group, WARM_UP)?;
    }
    server.alive()?;
    let (warm_rss, _) = server.rss_kb()?;

    let mut out = String::new();
    let _ = writeln!(
        out,
        "serve: {TRACKS} tracks, {playlists} playlists (database built in {built_s:.1} s, \
         server ready in {ready_s:.1} s); wrk, {CONNECTIONS} connections, {} s per endpoint",
        RUN.as_secs()
    );
    let _ = writeln!(out, "{listened}");
    let _ = writeln!(
        out,
        "gzip copies (made once per body when first asked, level {}): list {:.0} -> {:.0} KB \
         in {:.2} ms, playlist {:.0} -> {:.0} KB in {:.2} ms, M3U8 {:.0} -> {:.0} KB in {:.2} ms",
        rendered::GZIP_LEVEL,
        gz_lists.0,
        gz_lists.1,
        gz_lists.2,
        gz_big.0,
        gz_big.1,
        gz_big.2,
        gz_m3u8.0,
        gz_m3u8.1,
        gz_m3u8.2
    );
    let _ = writeln!(
        out,
        "{:<50} {:>8} {:>8} {:>8} {:>7} {:>8}",
        "endpoint", "req/s", "p50 ms", "p99 ms", "errors", "RSS MB"
    );
    // The worst p99 under each budget, in the order the budgets first appear.
    let mut worst: Vec<(f64, f64)> = Vec::new();
    let mut errors = listen_errors as u64;
    for group in &groups {
        let runs = drive(server.addr(), dir, group, RUN)?;
        server.alive()?;
        let (rss, _) = server.rss_kb()?;
        for (target, run) in group.iter().zip(runs) {
            if let Some(budget) = target.budget {
                match worst.iter_mut().find(|(b, _)| *b == budget) {
                    Some((_, w)) => *w = w.max(run.p99_ms),
                    None => worst.push((budget, run.p99_ms)),
                }
            }
            errors += run.errors;
            let _ = writeln!(
                out,
                "{:<50} {:>8.0} {:>8.2} {:>8.2} {:>7} {:>8.1}",
                target.label,
                run.requests as f64 / run.seconds.max(1e-9),
                run.p50_ms,
                run.p99_ms,
                run.errors,
                mb(rss)
            );
        }
    }
    // Lighthouse last: its browser would spoil the wrk rows' figures.
    let lighthouse = super::lighthouse::table(server.addr(), dir)?;
    let status = get(server.addr(), "/api/v1/status", false)?.0;
    anyhow::ensure!(
        status == 200,
        "after the load /api/v1/status answers {status}"
    );
    let (end_rss, peak) = server.rss_kb()?;
    let growth = end_rss as f64 / warm_rss.max(1) as f64 - 1.0;
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    let _ = writeln!(
        out,
        "RSS: {:.1} MB idle, {:.1} MB after warm-up, {:.1} MB at the end ({:+.1} %), peak {:.1} MB",
        mb(start_rss),
        mb(warm_rss),
        mb(end_rss),
        growth * 100.0,
        mb(peak)
    );
    let _ = writeln!(
        out,
        "(playlist JSON and M3U8 are asked with Accept-Encoding: gzip, as phones and browsers \
         ask, and answered with the cached gzip copy. * not in a p99 budget: each similar \
         request computes a radio over the whole library, and status is asked at the same time. \
         Budgets: {P99_BUDGET_MS} ms for playlist JSON and M3U8, {LIST_BUDGET_MS} ms for the \
         Subsonic lists and scrobbles, {SIMILAR_BUDGET_MS} ms for Subsonic similar songs; a \
         Subsonic \"failed\" answer is an error. With {CONNECTIONS} requests always in flight \
         the mean latency is {CONNECTIONS} / (req/s).)"
    );
    out.push_str(&lighthouse);
    let p99s: Vec<String> = worst
        .iter()
        .map(|(budget, w)| {
            format!(
                "p99 < {budget} ms {} (worst {w:.2} ms)",
                verdict(w < budget)
            )
        })
        .collect();
    let _ = writeln!(
        out,
        "budgets: {}; no errors {} ({errors}); RSS flat (< {:.0} % after warm-up) {}",
        p99s.join(", "),
        verdict(errors == 0),
        RSS_GROWTH * 100.0,
        verdict(growth < RSS_GROWTH)
    );
    Ok(out)
}

/// A clear message instead of a spawn error when wrk is missing.
fn which_wrk() -> Result<()> {
    let found = std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .any(|d| d.join("wrk").is_file());
    anyhow::ensure!(
        found,
        "bench --serve needs wrk on the PATH (apt-get install wrk)"
    );
    Ok(())
}
