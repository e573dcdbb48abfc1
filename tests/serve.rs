//! `playlista serve` end to end over a real database: the JSON API's shapes, M3U8 that
//! plays, Range streams, metrics and gzip from the server in-process on the shared demo
//! ([`support::serve`]); the config's name from the same config code. Process-level, because
//! only the real binary shows them: the background analysis that builds what is missing,
//! runs when Subsonic's `startScan` asks and follows new and deleted files, systemd's READY/STOPPING and SIGTERM (the smoke test of
//! the binary), and the exit code of a refused config.

mod support;

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use playlista::synth::{self, SongSpec, WavFormat};
use serde_json::Value;
use support::{Process, demo, eventually, track_path};

/// What every track in an answer has.
const TRACK_KEYS: &[&str] = &["id", "title", "artist", "duration_s", "bpm", "key", "scale"];

fn keys(v: &Value, want: &[&str], what: &str) {
    for k in want {
        assert!(v.get(k).is_some(), "{what} lacks {k:?}: {v}");
    }
}

#[test]
fn api_answers_in_the_documented_shapes() {
    let server = support::serve(&demo().config(""));

    let lists = server.json("/api/v1/playlists");
    let lists = lists.as_array().expect("an array of playlists");
    assert!(lists.len() >= 3, "{lists:?}");
    let mut total = 0;
    for p in lists {
        keys(
            p,
            &["id", "name", "track_count", "method"],
            "playlist summary",
        );
        let id = p["id"].as_i64().unwrap();
        let full = server.json(&format!("/api/v1/playlists/{id}"));
        keys(&full, &["id", "name", "tracks"], "playlist");
        assert_eq!(full["name"], p["name"]);
        let tracks = full["tracks"].as_array().unwrap();
        assert_eq!(tracks.len() as u64, p["track_count"].as_u64().unwrap());
        for t in tracks {
            keys(t, &[TRACK_KEYS, &["why"]].concat(), "track");
            assert!(t["duration_s"].as_f64().unwrap() > 19.0, "{t}");
        }
        total += tracks.len();
    }
    assert!(total >= 24, "every demo song is in some playlist");

    // A track, its radio (the seed not among its neighbours) and a path between two tracks,
    // from the longest list.
    let longest = lists
        .iter()
        .max_by_key(|p| p["track_count"].as_u64())
        .and_then(|p| p["id"].as_i64())
        .expect("a playlist");
    let all = server.json(&format!("/api/v1/playlists/{longest}"));
    let first = all["tracks"][0]["id"].as_i64().unwrap();
    let last = all["tracks"][5]["id"].as_i64().unwrap();
    let t = server.json(&format!("/api/v1/tracks/{first}"));
    assert_eq!(t["id"].as_i64(), Some(first));
    let similar = server.json(&format!("/api/v1/tracks/{first}/similar?count=5"));
    let near = similar["tracks"].as_array().unwrap();
    assert_eq!(near.len(), 5);
    assert!(near.iter().all(|n| n["id"].as_i64() != Some(first)));
    keys(
        &near[0],
        &[TRACK_KEYS, &["sounds_like"]].concat(),
        "similar",
    );
    // The demo is analysed in full mode: every track says what it sounds like.
    assert_eq!(near[0]["sounds_like"].as_array().map(Vec::len), Some(3));
    let path = server.json(&format!("/api/v1/path?from={first}&to={last}&length=6"));
    let steps = path["tracks"].as_array().unwrap();
    assert_eq!(steps.first().unwrap()["id"].as_i64(), Some(first));
    assert_eq!(steps.last().unwrap()["id"].as_i64(), Some(last));

    // Unknown ids are 404 with a reason, malformed ones 400.
    for (path, code) in [
        ("/api/v1/playlists/999999", 404),
        ("/api/v1/tracks/999999", 404),
        ("/api/v1/tracks/999999/similar", 404),
        ("/api/v1/playlists/abc", 400),
        ("/api/v1/path?from=1", 400),
        ("/playlists/1.txt", 404),
        ("/stream/999999", 404),
        ("/no/such/page", 404),
    ] {
        let r = server.get(path);
        assert_eq!(r.status, code, "GET {path}: {}", r.text());
    }

    let status = server.json("/api/v1/status");
    assert_eq!(status["library"]["analyzed"].as_u64(), Some(24), "{status}");
    assert_eq!(status["playlists"].as_u64(), Some(lists.len() as u64));
}

#[test]
fn m3u8_lists_stream_urls_that_play_with_ranges() {
    let server = support::serve(&demo().config(""));
    let m3u = server.get("/playlists/1.m3u8");
    assert_eq!(m3u.status, 200);
    assert!(m3u.header("content-type").unwrap().contains("mpegurl"));
    let text = m3u.text();
    assert!(text.starts_with("#EXTM3U\n"), "{text}");
    let urls: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    let infos = text.lines().filter(|l| l.starts_with("#EXTINF:")).count();
    let count = server.json("/api/v1/playlists/1")["track_count"]
        .as_u64()
        .unwrap();
    assert_eq!(urls.len() as u64, count);
    assert_eq!(infos as u64, count);
    let prefix = server.url("/stream/");
    assert!(urls.iter().all(|u| u.starts_with(&prefix)), "{urls:?}");

    // The first URL plays: the whole file, byte for byte.
    let id: i64 = urls[0].strip_prefix(&prefix).unwrap().parse().unwrap();
    let file = std::fs::read(track_path(&demo().state(), id)).unwrap();
    let whole = server.get(&format!("/stream/{id}"));
    assert_eq!(whole.status, 200);
    assert_eq!(whole.header("content-type"), Some("audio/wav"));
    assert_eq!(whole.header("accept-ranges"), Some("bytes"));
    assert_eq!(whole.body, file);

    // Seeking: a middle range, an open range, a suffix, and past the end.
    let size = file.len();
    let r = server.get_with(&format!("/stream/{id}"), &[("Range", "bytes=100-199")]);
    assert_eq!(r.status, 206);
    assert_eq!(
        r.header("content-range"),
        Some(format!("bytes 100-199/{size}").as_str())
    );
    assert_eq!(r.body, &file[100..200]);
    let r = server.get_with(&format!("/stream/{id}"), &[("Range", "bytes=1000-")]);
    assert_eq!(r.status, 206);
    assert_eq!(r.body, &file[1000..]);
    let r = server.get_with(&format!("/stream/{id}"), &[("Range", "bytes=-16")]);
    assert_eq!(r.body, &file[size - 16..]);
    let r = server.get_with(
        &format!("/stream/{id}"),
        &[("Range", &format!("bytes={size}-"))],
    );
    assert_eq!(r.status, 416);
    assert_eq!(
        r.header("content-range"),
        Some(format!("bytes */{size}").as_str())
    );

    // A hostile Host header is refused, and never echoed into an answer.
    let m = server.get_with("/playlists/1.m3u8", &[("Host", "evil\"><script>")]);
    assert_eq!(m.status, 421);
    assert!(!m.text().contains("evil"), "{}", m.text());

    // Metrics saw these requests.
    let metrics = server.get("/metrics").text();
    assert!(
        metrics.contains("playlista_tracks_analyzed 24"),
        "{metrics}"
    );
    assert!(
        metrics.contains("playlista_http_requests_total{route=\"stream\",status=\"2xx\"} 4"),
        "{metrics}"
    );
    assert!(
        metrics.contains("route=\"stream\",status=\"4xx\"} 1"),
        "{metrics}"
    );
}

#[test]
fn cached_answers_are_gzipped_only_for_clients_that_accept_it() {
    use std::io::Read as _;

    let server = support::serve(&demo().config(""));
    let id = server.json("/api/v1/playlists")[0]["id"].as_i64().unwrap();
    for path in [
        "/api/v1/playlists".to_string(),
        format!("/api/v1/playlists/{id}"),
        format!("/playlists/{id}.m3u8"),
    ] {
        let plain = server.get(&path);
        assert_eq!(plain.status, 200, "{path}: {}", plain.text());
        assert_eq!(plain.header("content-encoding"), None, "{path}");
        let z = server.get_with(&path, &[("Accept-Encoding", "gzip, deflate, br")]);
        assert_eq!(z.status, 200, "{path}");
        assert_eq!(z.header("content-encoding"), Some("gzip"), "{path}");
        assert_eq!(z.header("vary"), Some("accept-encoding"), "{path}");
        assert_eq!(z.header("content-type"), plain.header("content-type"));
        assert_eq!(
            z.header("content-disposition"),
            plain.header("content-disposition")
        );
        assert!(z.body.len() < plain.body.len(), "{path}: not smaller");
        let mut decoded = Vec::new();
        flate2::read::GzDecoder::new(&z.body[..])
            .read_to_end(&mut decoded)
            .unwrap_or_else(|e| panic!("{path}: not gzip: {e}"));
        assert_eq!(decoded, plain.body, "{path}: gzip decodes to another body");
        for refused in ["gzip;q=0", "identity", "*;q=0"] {
            let r = server.get_with(&path, &[("Accept-Encoding", refused)]);
            assert_eq!(r.header("content-encoding"), None, "{path} {refused}");
            assert_eq!(r.body, plain.body, "{path} {refused}");
        }
    }
    // Audio is already compressed: streams are sent as they are.
    let track = server.json(&format!("/api/v1/playlists/{id}"))["tracks"][0]["id"]
        .as_i64()
        .unwrap();
    let stream = server.get_with(&format!("/stream/{track}"), &[("Accept-Encoding", "gzip")]);
    assert_eq!(stream.status, 200);
    assert_eq!(stream.header("content-encoding"), None);
}

fn write_song(dir: &std::path::Path, name: &str, bpm: f64, tonic: u8) {
    let spec = SongSpec {
        bpm,
        tonic,
        minor: false,
        seconds: 12.0,
    };
    synth::write_song(&dir.join(name), &spec, 22_050, 1, WavFormat::Pcm16).unwrap();
}

fn analyzed(server: &Process) -> u64 {
    server.json("/api/v1/status")["library"]["analyzed"]
        .as_u64()
        .unwrap_or(0)
}

#[test]
fn serve_builds_what_is_missing_follows_the_library_and_stops_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    let lib = dir.path().join("music");
    std::fs::create_dir_all(&lib).unwrap();
    for i in 0..6 {
        write_song(&lib, &format!("{i}.wav"), 90.0 + 8.0 * i as f64, i as u8);
    }
    let state = dir.path().join("state");
    // A Subsonic account, for startScan.
    let config = dir.path().join("config.toml");
    std::fs::write(&config, "[subsonic]\nuser = \"u\"\npassword = \"p\"\n").unwrap();
    let args: Vec<String> = [
        "--config",
        config.to_str().unwrap(),
        "--library",
        lib.to_str().unwrap(),
        "--cache_dir",
        state.to_str().unwrap(),
        "--workers",
        "1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // systemd's notify socket: READY once serving, STOPPING on SIGTERM.
    let notify_path = dir.path().join("notify");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    notify
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut command = std::process::Command::new(support::BIN);
    command
        .args(["serve", "--no-mdns", "--bind", "127.0.0.1:0"])
        .args(&args)
        .env("NOTIFY_SOCKET", &notify_path);
    let mut server = Process::serve(command);
    let ready = notified(&notify, "READY=1");
    assert!(
        ready.starts_with("READY=1\nSTATUS=serving on 127.0.0.1:"),
        "{ready:?}"
    );

    // An empty database: it serves at once, then analyses and makes playlists by itself.
    eventually(Duration::from_secs(60), "the first analysis", || {
        (analyzed(&server) == 6 && !server.json("/api/v1/playlists").as_array()?.is_empty())
            .then_some(())
    });
    assert!(
        state.join("playlists/all").is_dir(),
        "M3U8 files are written too"
    );

    // Subsonic's startScan asks the background for a run; the scan status follows it.
    let runs = |server: &Process| server.json("/api/v1/status")["analysis"]["runs"].as_u64();
    let before = runs(&server).unwrap();
    let started = server.json("/rest/startScan?u=u&p=p&f=json");
    assert_eq!(
        started["subsonic-response"]["scanStatus"]["scanning"], true,
        "{started}"
    );
    eventually(Duration::from_secs(60), "the asked-for run", || {
        let status = server.json("/rest/getScanStatus?u=u&p=p&f=json");
        let status = &status["subsonic-response"]["scanStatus"];
        (runs(&server)? > before && status["scanning"] == false && status["count"] == 6)
            .then_some(())
    });

    // A new file is noticed (file events, debounced) and analysed; a deleted one leaves.
    write_song(&lib, "new.wav", 128.0, 7);
    eventually(Duration::from_secs(60), "the new file", || {
        (analyzed(&server) == 7).then_some(())
    });
    std::fs::remove_file(lib.join("0.wav")).unwrap();
    eventually(Duration::from_secs(60), "the deleted file to leave", || {
        let s = server.json("/api/v1/status");
        (s["library"]["tracks"].as_u64() == Some(6)).then_some(())
    });
    let in_lists: usize = server
        .json("/api/v1/playlists")
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["track_count"].as_u64().unwrap() as usize)
        .sum();
    assert!(in_lists > 0);

    // Files swapped after their analysis are not served: one for a symlink to a secret
    // outside the library, one for a FIFO (which must not hang a thread), one for another
    // file of the same size renamed over it. Each is a 404 at once.
    let id_of = |name: &str| -> i64 {
        let db = rusqlite::Connection::open(state.join("playlista.db")).unwrap();
        let path = lib.join(name).to_string_lossy().into_owned();
        db.query_row("SELECT id FROM tracks WHERE path = ?1", [path], |r| {
            r.get(0)
        })
        .unwrap()
    };
    let (linked, piped, renamed) = (id_of("1.wav"), id_of("2.wav"), id_of("3.wav"));
    for id in [linked, piped, renamed] {
        assert_eq!(server.get(&format!("/stream/{id}")).status, 200);
    }
    let secret = dir.path().join("secret.wav");
    std::fs::write(&secret, b"the owner's secret").unwrap();
    std::fs::remove_file(lib.join("1.wav")).unwrap();
    std::os::unix::fs::symlink(&secret, lib.join("1.wav")).unwrap();
    std::fs::remove_file(lib.join("2.wav")).unwrap();
    let fifo = std::ffi::CString::new(lib.join("2.wav").to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path; mkfifo only creates a node.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    let same_size = std::fs::read(lib.join("3.wav")).unwrap();
    std::fs::write(lib.join("other.tmp"), &same_size).unwrap();
    std::fs::rename(lib.join("other.tmp"), lib.join("3.wav")).unwrap();
    for id in [linked, piped, renamed] {
        let started = std::time::Instant::now();
        let r = server.get(&format!("/stream/{id}"));
        assert_eq!(r.status, 404, "track {id} after its file was swapped");
        assert!(!r.text().contains("secret"));
        assert!(started.elapsed() < Duration::from_secs(2));
    }
    server.json("/api/v1/status");

    // SIGTERM: a clean exit within 5 s.
    let asked = std::time::Instant::now();
    let status = server
        .terminate(Duration::from_secs(20))
        .expect("serve exits after SIGTERM");
    assert!(status.success(), "{status:?}");
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "serve took {:?} to stop",
        asked.elapsed()
    );
    server.wait_for_log("stopped", Duration::from_secs(1));
    notified(&notify, "STOPPING=1\n");
}

/// The next datagram on systemd's notify socket that starts with `prefix` (the background
/// sends STATUS lines in between); panics after the socket's read timeout.
fn notified(socket: &UnixDatagram, prefix: &str) -> String {
    let mut buf = [0u8; 512];
    loop {
        let n = socket
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("no {prefix:?} from serve: {e}"));
        let message = String::from_utf8_lossy(&buf[..n]).into_owned();
        if message.starts_with(prefix) {
            return message;
        }
    }
}

#[test]
fn the_config_names_the_server() {
    let config = demo().config(
        "[server]\nbind = \"127.0.0.1:0\"\nname = \"kitchen\"\nrescan_minutes = 0\n\
         methods = [\"all\", \"kmeans\"]\n",
    );
    let server = support::serve(&config);
    assert_eq!(server.json("/api/v1/status")["name"], "kitchen");
}

/// Process-level: the exit code of `serve` with a config it refuses.
#[test]
fn unknown_config_keys_and_seeded_methods_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, "[server]\nbindd = \"127.0.0.1:0\"\n").unwrap();
    let out = std::process::Command::new(support::BIN)
        .args(["serve", "--no-mdns", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bindd"), "{err}");

    std::fs::write(&config, "[server]\nmethods = [\"radio\"]\n").unwrap();
    let out = std::process::Command::new(support::BIN)
        .args(["serve", "--no-mdns", "--bind", "127.0.0.1:0", "--config"])
        .arg(&config)
        .args(demo().serve_args())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("methods"));
}
