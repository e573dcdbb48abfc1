//! End-to-end tests of the on-line look-ups: the real binary, the real MusicBrainz and Last.fm
//! clients, a real SQLite file, and a local HTTP server on 127.0.0.1 that answers as the two
//! services do (their documented JSON, from `tests/fixtures/lookups/`) and records when each
//! request came. Nothing here reaches the internet: the base URLs in the config file point
//! at the local server (or at a closed local port, for "offline").

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use playlista::synth::{self, SongSpec, WavFormat};
use serde_json::Value;

mod support;

const BIN: &str = env!("CARGO_BIN_EXE_playlista");

/// `(artist, title, rhythmic)`: a rhythmic song has a clear beat; the other is silence, with
/// no beat to measure, so its BPM may come from a look-up.
const SONGS: [(&str, &str, bool); 8] = [
    ("The Quiet Quartet", "Night Walk", true),
    ("Granite Road", "Highway Song", true),
    ("Pulse Unit", "Neon Steps", true),
    ("Low Tide", "Tide Pools", false),
    ("Hold Music Trio", "Busy Signal", true),
    ("Slow Poke", "Slow Answer", true),
    ("Broken Box", "Server Error", true),
    ("Static Noise", "Garbled", true),
];

/// A WAV file with a RIFF INFO list (IART artist, INAM title) before its data.
fn tagged_song(path: &Path, i: usize, artist: &str, title: &str, rhythmic: bool) {
    let rate = 22_050;
    let mono = if rhythmic {
        synth::song(
            &SongSpec {
                bpm: 90.0 + 10.0 * i as f64,
                tonic: (i % 12) as u8,
                minor: false,
                seconds: 6.0,
            },
            rate,
        )
    } else {
        vec![0.0; 6 * rate as usize]
    };
    synth::write_wav(path, rate, 1, &mono, WavFormat::Pcm16).unwrap();
    let wav = std::fs::read(path).unwrap();
    let mut info = b"INFO".to_vec();
    for (id, text) in [(b"IART", artist), (b"INAM", title)] {
        let mut value = text.as_bytes().to_vec();
        value.push(0);
        if value.len() % 2 == 1 {
            value.push(0);
        }
        info.extend_from_slice(id);
        info.extend_from_slice(&(value.len() as u32).to_le_bytes());
        info.extend_from_slice(&value);
    }
    // RIFF header (12) + "fmt " chunk (8 + 16): the list goes right after it.
    let mut out = wav[..36].to_vec();
    out.extend_from_slice(b"LIST");
    out.extend_from_slice(&(info.len() as u32).to_le_bytes());
    out.extend_from_slice(&info);
    out.extend_from_slice(&wav[36..]);
    let riff_len = (out.len() - 8) as u32;
    out[4..8].copy_from_slice(&riff_len.to_le_bytes());
    std::fs::write(path, out).unwrap();
}

fn library(dir: &Path, songs: &[(&str, &str, bool)]) -> PathBuf {
    let lib = dir.join("music");
    std::fs::create_dir_all(&lib).unwrap();
    for (i, (artist, title, rhythmic)) in songs.iter().enumerate() {
        tagged_song(
            &lib.join(format!("{i:02} {title}.wav")),
            i,
            artist,
            title,
            *rhythmic,
        );
    }
    lib
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/lookups")
            .join(name),
    )
    .unwrap()
}

/// One request the fake services saw.
#[derive(Debug, Clone)]
struct Seen {
    at: Instant,
    /// `mb-search`, `mb-recording`, `lastfm`.
    kind: &'static str,
    /// The searched title, the recording id, or `method artist/track`.
    what: String,
    status: u16,
    user_agent: String,
}

#[derive(Clone, Default)]
struct Fake {
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Fake {
    fn record(&self, kind: &'static str, what: String, status: u16, ua: &str) {
        self.seen.lock().unwrap().push(Seen {
            at: Instant::now(),
            kind,
            what,
            status,
            user_agent: ua.to_string(),
        });
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn count(&self, kind: &str, what: &str) -> usize {
        self.seen()
            .iter()
            .filter(|s| s.kind == kind && s.what == what)
            .count()
    }
}

fn json(status: StatusCode, body: String) -> Response {
    (status, [("content-type", "application/json")], body).into_response()
}

fn ua(headers: &axum::http::HeaderMap) -> String {
    headers
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

/// `recording:"TITLE" AND artist:"..."` -> TITLE.
fn searched_title(query: &str) -> String {
    query
        .strip_prefix("recording:\"")
        .and_then(|rest| rest.split('"').next())
        .unwrap_or("")
        .to_string()
}

async fn mb_search(
    State(fake): State<Fake>,
    headers: axum::http::HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let title = searched_title(q.get("query").map_or("", String::as_str));
    let busy_before = fake.count("mb-search", "Busy Signal");
    let (status, body) = match title.as_str() {
        "Night Walk" => (200, fixture("mb-search-night-walk.json")),
        "Highway Song" => (200, fixture("mb-search-highway-song.json")),
        // Refused once with the service's "slow down", then answered.
        "Busy Signal" if busy_before == 0 => (503, String::new()),
        "Busy Signal" => (200, fixture("mb-search-night-walk.json")),
        "Slow Answer" => (200, fixture("mb-search-empty.json")),
        "Server Error" => (500, "{\"error\": \"Internal Server Error\"}".into()),
        "Garbled" => (
            200,
            "{\"created\": \"2026-11-27\", \"recordings\": [".into(),
        ),
        _ => (200, fixture("mb-search-empty.json")),
    };
    let slow = title == "Slow Answer";
    fake.record("mb-search", title, status, &ua(&headers));
    if slow {
        // Far past the client's 1 s time limit.
        tokio::time::sleep(Duration::from_secs(4)).await;
    }
    json(StatusCode::from_u16(status).unwrap(), body)
}

async fn mb_recording(
    State(fake): State<Fake>,
    headers: axum::http::HeaderMap,
    UrlPath(id): UrlPath<String>,
) -> Response {
    let (status, body) = match id.as_str() {
        "5a0c2a55-4e5f-4c36-9a5e-0d1b7a3c1e01" => (200, fixture("mb-recording-night-walk.json")),
        "3e2d1c0b-a9f8-4e7d-8c6b-5a4f3e2d1c0b" => (200, fixture("mb-recording-highway-song.json")),
        _ => (404, fixture("mb-error-not-found.json")),
    };
    fake.record("mb-recording", id, status, &ua(&headers));
    json(StatusCode::from_u16(status).unwrap(), body)
}

async fn lastfm(
    State(fake): State<Fake>,
    headers: axum::http::HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let get = |k: &str| q.get(k).map_or("", String::as_str);
    let method = get("method");
    let body = if get("api_key") != "test-key" || get("format") != "json" {
        "{\"error\": 10, \"message\": \"Invalid API key\"}".to_string()
    } else {
        match (method, get("artist"), get("track")) {
            ("track.getInfo", "Pulse Unit", "Neon Steps") => {
                fixture("lastfm-track-neon-steps.json")
            }
            ("track.getInfo", "Low Tide", "Tide Pools") => fixture("lastfm-track-no-tags.json"),
            ("artist.getTopTags", "Low Tide", _) => fixture("lastfm-artist-toptags.json"),
            _ => fixture("lastfm-error-not-found.json"),
        }
    };
    let what = format!("{method} {}/{}", get("artist"), get("track"));
    fake.record("lastfm", what, 200, &ua(&headers));
    json(StatusCode::OK, body)
}

/// Starts the fake services on 127.0.0.1 (their own runtime on a thread); returns the port.
fn start(fake: Fake) -> u16 {
    let app = Router::new()
        .route("/ws/2/recording", get(mb_search))
        .route("/ws/2/recording/{id}", get(mb_recording))
        .route("/2.0/", get(lastfm))
        .with_state(fake);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    port
}

fn config(dir: &Path, port: u16) -> PathBuf {
    let file = dir.join("config.toml");
    std::fs::write(
        &file,
        format!(
            "[musicbrainz]\nenabled = true\nbase_url = \"http://127.0.0.1:{port}/ws/2\"\n\
             contact = \"mailto:tests@playlista.invalid\"\n\n\
             [lastfm]\napi_key = \"test-key\"\nbase_url = \"http://127.0.0.1:{port}/2.0/\"\n\n\
             [lookups]\ntimeout_seconds = 1\n"
        ),
    )
    .unwrap();
    file
}

fn playlista(dir: &Path, args: &[&str]) -> Output {
    command(dir, args).output().expect("run playlista")
}

/// `playlista ARGS` on the folders in `dir`, its config file, two workers and no proxy.
fn command(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .arg("--config")
        .arg(dir.join("config.toml"))
        .arg("--library")
        .arg(dir.join("music"))
        .arg("--cache_dir")
        .arg(dir.join("state"))
        .arg("--output_dir")
        .arg(dir.join("playlists"))
        .arg("--workers")
        .arg("2");
    for var in [
        "LASTFM_API_KEY",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

fn ok(out: &Output) -> (String, String) {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "status {:?}\nstdout {stdout}\nstderr {stderr}",
        out.status
    );
    (stdout, stderr)
}

fn status(dir: &Path) -> Value {
    let (stdout, _) = ok(&playlista(dir, &["--status", "--json"]));
    serde_json::from_str(&stdout).unwrap()
}

fn lookups(status: &Value) -> [u64; 4] {
    let l = &status["lookups"];
    ["hits", "misses", "errors", "pending"].map(|k| l[k].as_u64().unwrap())
}

/// The titles in a playlist file of `method`.
fn titles(dir: &Path, method: &str, name: &str) -> Vec<String> {
    let file = dir
        .join("playlists")
        .join(method)
        .join(format!("{name}.m3u8"));
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let mut out: Vec<String> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let stem = Path::new(l).file_stem().unwrap().to_string_lossy();
            stem[3..].to_string()
        })
        .collect();
    out.sort();
    out
}

#[test]
fn lookups_fill_the_cache_politely_and_tags_playlists_use_it() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    library(dir, &SONGS);
    let fake = Fake::default();
    let port = start(fake.clone());
    config(dir, port);

    // Before any run: nothing asked; every song pending with each of the two services.
    let started = Instant::now();
    let (_, stderr) = ok(&playlista(dir, &["-a"]));
    let first_run = started.elapsed();
    assert!(
        stderr.contains("look-ups: 16 in"),
        "{stderr}\n{:#?}",
        fake.seen()
    );
    let s = status(dir);
    assert_eq!(s["analyzed"], 8, "{s}");
    assert_eq!(s["failed"], 0, "{s}");
    // MusicBrainz: 3 found (one after a 503), 2 unknown, 3 failed (time-out, 500, garbled).
    // Last.fm: 2 found (one by the artist's tags), 6 unknown.
    assert_eq!(lookups(&s), [5, 8, 3, 0], "{s}");
    assert_eq!(
        s["lookups"]["services"],
        serde_json::json!(["musicbrainz", "lastfm"])
    );

    let seen = fake.seen();
    let mb: Vec<&Seen> = seen.iter().filter(|s| s.kind.starts_with("mb")).collect();
    // 2 + 2 + 1 + 1 + (503 + 2) + 1 + 1 + 1.
    assert_eq!(mb.len(), 12, "{seen:#?}");
    let gaps: Vec<Duration> = mb.windows(2).map(|w| w[1].at - w[0].at).collect();
    let shortest = gaps.iter().min().unwrap();
    assert!(*shortest >= Duration::from_secs(1), "{gaps:?}");
    let busy: Vec<u16> = mb
        .iter()
        .filter(|s| s.what == "Busy Signal")
        .map(|s| s.status)
        .collect();
    assert_eq!(busy, vec![503, 200], "the 503 was retried");
    assert!(
        mb.iter().all(|s| s.user_agent
            == format!(
                "playlista/{} ( mailto:tests@playlista.invalid )",
                env!("CARGO_PKG_VERSION")
            )),
        "{:?}",
        mb[0].user_agent
    );
    let lastfm: Vec<&Seen> = seen.iter().filter(|s| s.kind == "lastfm").collect();
    // track.getInfo for each song, artist.getTopTags for the 7 without track tags.
    assert_eq!(lastfm.len(), 15, "{lastfm:#?}");
    eprintln!(
        "first run {:.1} s; {} MusicBrainz requests, shortest gap {:.3} s; {} Last.fm requests",
        first_run.as_secs_f64(),
        mb.len(),
        shortest.as_secs_f64(),
        lastfm.len()
    );

    // Playlists by genre and decade, from the cache (no genre or year is in the files).
    let (stdout, _) = ok(&playlista(
        dir,
        &[
            "-g",
            "-m",
            "tags",
            "--min_tracks_per_genre",
            "1",
            "--min_playlist_size",
            "1",
            "--mixed_below",
            "1",
        ],
    ));
    assert!(stdout.contains("Jazz_1990s"), "{stdout}");
    assert_eq!(
        titles(dir, "tags", "Jazz_1990s"),
        vec!["Busy Signal", "Night Walk"]
    );
    assert_eq!(titles(dir, "tags", "Rock_1970s"), vec!["Highway Song"]);
    assert_eq!(titles(dir, "tags", "Electronic"), vec!["Neon Steps"]);
    assert_eq!(titles(dir, "tags", "Ambient"), vec!["Tide Pools"]);
    assert_eq!(
        titles(dir, "tags", "Unknown_Genre"),
        vec!["Garbled", "Server Error", "Slow Answer"]
    );

    // The BPM fallback: the song without a measured tempo takes Last.fm's "72 bpm"; the others
    // keep theirs.
    let (stdout, _) = ok(&playlista(
        dir,
        &[
            "-g",
            "-m",
            "all",
            "--json",
            "--min_playlist_size",
            "1",
            "--mixed_below",
            "1",
        ],
    ));
    let all: Value = serde_json::from_str(&stdout).unwrap();
    let why_of = |title: &str| -> String {
        all["playlists"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|p| p["tracks"].as_array().unwrap().iter())
            .find(|t| t["path"].as_str().unwrap().contains(title))
            .map(|t| t["why"].as_str().unwrap().to_string())
            .unwrap_or_default()
    };
    assert!(why_of("Tide Pools").contains("tempo 72 BPM"), "{all}");
    assert!(why_of("Night Walk").contains("tempo 90 BPM"), "{all}");

    // Fast mode looks nothing up.
    let before = fake.seen().len();
    let (_, stderr) = ok(&playlista(dir, &["-a", "--fast_mode"]));
    assert!(!stderr.contains("look-ups:"), "{stderr}");
    assert_eq!(fake.seen().len(), before);

    // A second run: cached answers (found or not) make no request; the three failures are
    // asked again, and fail again.
    let (_, stderr) = ok(&playlista(dir, &["-a"]));
    assert!(stderr.contains("look-ups: 3 in"), "{stderr}");
    let again: Vec<String> = fake.seen()[before..]
        .iter()
        .map(|s| format!("{} {}", s.kind, s.what))
        .collect();
    assert_eq!(
        again,
        vec![
            "mb-search Slow Answer",
            "mb-search Server Error",
            "mb-search Garbled"
        ]
    );
    assert_eq!(lookups(&status(dir)), [5, 8, 3, 0]);
}

#[test]
fn offline_services_cost_nothing_and_leave_the_tracks_pending() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    library(dir, &SONGS[..3]);
    // A port nobody listens on: connection refused, as with no network.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    config(dir, port);
    let (_, stderr) = ok(&playlista(dir, &["-a"]));
    let line = stderr
        .lines()
        .find(|l| l.starts_with("look-ups:"))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(line.starts_with("look-ups: 0 in"), "{line}");
    assert!(line.contains("6 left for the next run"), "{line}");
    assert!(line.contains("musicbrainz not asked further"), "{line}");
    assert!(line.contains("lastfm not asked further"), "{line}");
    let seconds: f64 = line["look-ups: 0 in ".len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(seconds < 1.0, "{line}");
    let s = status(dir);
    assert_eq!(s["analyzed"], 3, "{s}");
    assert_eq!(lookups(&s), [0, 0, 0, 6], "{s}");

    // Look-ups off (no [musicbrainz] enabled, no key): nothing pending, nothing asked.
    std::fs::write(dir.join("config.toml"), "[musicbrainz]\nenabled = false\n").unwrap();
    let (stdout, _) = ok(&playlista(dir, &["--status"]));
    assert!(stdout.contains("look-ups   off: 0 found"), "{stdout}");
    assert_eq!(lookups(&status(dir)), [0, 0, 0, 0]);
}

/// Process-level: the look-ups run in a real `serve`'s background, which only the binary has.
#[test]
fn serve_looks_up_in_the_background_and_shows_what_it_found() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    library(dir, &SONGS[..2]);
    let fake = Fake::default();
    let port = start(fake.clone());
    config(dir, port);
    let serve = command(dir, &["serve", "--no-mdns", "--bind", "127.0.0.1:0"]);
    let mut server = support::Process::serve(serve);
    // The page answers at once, whatever the look-ups are doing.
    assert_eq!(server.get("/api/v1/status").status, 200);
    server.wait_for_log("look-ups: 4 in", Duration::from_secs(60));
    // Found genres and years reach the catalog once the playlists are made again.
    let genres = support::eventually(Duration::from_secs(30), "looked-up genres", || {
        let mut got: Vec<(String, u64)> = (1..=2)
            .map(|id| server.json(&format!("/api/v1/tracks/{id}")))
            .filter_map(|t| Some((t["genre"].as_str()?.to_string(), t["year"].as_u64()?)))
            .collect();
        got.sort();
        (got.len() == 2).then_some(got)
    });
    assert_eq!(
        genres,
        vec![("Jazz".to_string(), 1994), ("Rock".to_string(), 1975)]
    );
    let status = server.terminate(Duration::from_secs(20)).expect("stops");
    assert!(status.success(), "{status:?}");
    assert_eq!(
        fake.seen()
            .iter()
            .filter(|s| s.kind.starts_with("mb"))
            .count(),
        4
    );
}

#[test]
fn ctrl_c_stops_the_look_ups_and_leaves_the_rest_pending() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    library(dir, &SONGS[..4]);
    let fake = Fake::default();
    let port = start(fake.clone());
    config(dir, port);
    let mut cmd = Command::new(BIN);
    cmd.args(["-a", "--workers", "2", "--config"])
        .arg(dir.join("config.toml"))
        .arg("--library")
        .arg(dir.join("music"))
        .arg("--cache_dir")
        .arg(dir.join("state"))
        .env_remove("LASTFM_API_KEY")
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    // Two MusicBrainz requests in (the first song's search and recording): interrupt.
    support::eventually(Duration::from_secs(30), "look-ups under way", || {
        (fake
            .seen()
            .iter()
            .filter(|s| s.kind.starts_with("mb"))
            .count()
            >= 2)
            .then_some(())
    });
    // SAFETY: kill(2) on our own child's pid.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let interrupted = Instant::now();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(interrupted.elapsed() < Duration::from_secs(3), "{stderr}");
    let s = status(dir);
    assert_eq!(s["analyzed"], 4, "{s}");
    let [hits, misses, errors, pending] = lookups(&s);
    assert_eq!(errors, 0, "{s}");
    assert_eq!(hits + misses + pending, 8, "{s}");
    assert!(hits >= 1 && pending >= 4, "{s}");
}
