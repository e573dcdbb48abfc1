//! End-to-end tests of the whole-library run (`playlista -a` and friends): the real binary on
//! a temporary library of generated songs, a real SQLite file, real signals.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use playlista::synth::{self, SongSpec, WavFormat};
use rusqlite::Connection;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_playlista");

/// A library of `n` distinct songs of `seconds` each in two folders, plus a corrupt file.
fn library(dir: &Path, n: usize, seconds: f64) -> PathBuf {
    let lib = dir.join("music");
    for i in 0..n {
        let path = lib
            .join(if i % 2 == 0 { "Artist A" } else { "Artist B" })
            .join(format!("{i:02} song.wav"));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let spec = SongSpec {
            bpm: 80.0 + 3.0 * i as f64,
            tonic: (i % 12) as u8,
            minor: i % 2 == 1,
            seconds,
        };
        synth::write_song(&path, &spec, 22_050, 1, WavFormat::Pcm16).unwrap();
    }
    std::fs::write(
        lib.join("Artist A/broken.mp3"),
        b"ID3 this is not audio at all",
    )
    .unwrap();
    lib
}

/// Runs playlista with a library, a state folder and extra flags.
fn run(lib: &Path, state: &Path, extra: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--library")
        .arg(lib)
        .arg("--cache_dir")
        .arg(state)
        .arg("--output_dir")
        .arg(state.join("out"))
        .args(extra)
        .output()
        .expect("run playlista")
}

fn ok(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "exit {:?}: {err}", out.status);
    err
}

fn status(state: &Path) -> Value {
    let out = Command::new(BIN)
        .args(["--status", "--json", "--cache_dir"])
        .arg(state)
        .output()
        .unwrap();
    ok(&out);
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Every track's path, status, attempts and measured values, for comparing databases.
fn snapshot(db: &Path) -> BTreeMap<String, (String, i64, Option<f64>, Option<String>)> {
    let conn = Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT t.path, t.status, t.attempts, f.bpm, f.key FROM tracks t
             LEFT JOIN features f ON f.track_id = t.id",
        )
        .unwrap();
    stmt.query_map([], |r| {
        Ok((r.get(0)?, (r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
    })
    .unwrap()
    .map(|r| r.unwrap())
    .collect()
}

fn integrity_ok(db: &Path) -> bool {
    let conn = Connection::open(db).unwrap();
    conn.query_row("PRAGMA integrity_check", [], |r| r.get::<_, String>(0))
        .unwrap()
        == "ok"
}

#[test]
fn incremental_runs_keep_what_is_known_follow_moves_and_drop_deletions() {
    let dir = tempfile::tempdir().unwrap();
    let lib = library(dir.path(), 6, 12.0);
    let state = dir.path().join("state");
    let before: Vec<u8> = std::fs::read(lib.join("Artist A/00 song.wav")).unwrap();

    let err = ok(&run(&lib, &state, &["-a", "--workers", "2"]));
    assert!(err.contains("PERF batch"), "no PERF line: {err}");
    let s = status(&state);
    assert_eq!(
        (s["tracks"].as_u64(), s["analyzed"].as_u64()),
        (Some(7), Some(6))
    );
    assert_eq!(
        (s["failed"].as_u64(), s["pending"].as_u64()),
        (Some(1), Some(0))
    );
    let failed = std::fs::read_to_string(state.join("out/Failed_Files.m3u")).unwrap();
    assert!(failed.contains("broken.mp3"), "{failed}");

    // Unchanged: nothing analysed again, the failed file not retried.
    let err = ok(&run(&lib, &state, &["-a"]));
    assert!(err.contains("0 analysed, 0 failed, 7 unchanged"), "{err}");

    // A moved file keeps its analysis; a deleted one leaves; a changed one is measured again.
    let db = state.join("playlista.db");
    let old = snapshot(&db);
    std::fs::create_dir_all(lib.join("Moved")).unwrap();
    std::fs::rename(
        lib.join("Artist B/01 song.wav"),
        lib.join("Moved/renamed.wav"),
    )
    .unwrap();
    std::fs::remove_file(lib.join("Artist A/02 song.wav")).unwrap();
    synth::write_song(
        &lib.join("Artist B/03 song.wav"),
        &SongSpec {
            bpm: 150.0,
            tonic: 4,
            minor: false,
            seconds: 12.0,
        },
        22_050,
        1,
        WavFormat::Pcm16,
    )
    .unwrap();
    let err = ok(&run(&lib, &state, &["-a"]));
    assert!(err.contains("1 analysed"), "{err}");
    assert!(err.contains("1 moved/copied, 1 removed"), "{err}");
    let new = snapshot(&db);
    let moved = &new[lib.join("Moved/renamed.wav").to_str().unwrap()];
    assert_eq!(
        moved,
        &old[lib.join("Artist B/01 song.wav").to_str().unwrap()]
    );
    assert!(!new.contains_key(lib.join("Artist A/02 song.wav").to_str().unwrap()));
    let changed = &new[lib.join("Artist B/03 song.wav").to_str().unwrap()];
    assert!(
        changed.2.is_some_and(|b| (b - 150.0).abs() < 3.0),
        "{changed:?}"
    );

    // The library is read-only to playlista.
    assert_eq!(
        std::fs::read(lib.join("Artist A/00 song.wav")).unwrap(),
        before
    );
    assert!(lib.join("Artist A/broken.mp3").exists());
    assert!(integrity_ok(&db));
}

#[test]
fn a_missing_library_root_removes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let lib = library(dir.path(), 2, 6.0);
    let state = dir.path().join("state");
    ok(&run(&lib, &state, &["-a"]));
    let away = dir.path().join("unmounted");
    std::fs::rename(&lib, &away).unwrap();
    let err = ok(&run(&lib, &state, &["-a"]));
    assert!(err.contains("keeping its 3 stored tracks"), "{err}");
    assert_eq!(status(&state)["tracks"].as_u64(), Some(3));
}

/// Polls the database until `analyzed` rows are committed, up to a limit.
fn wait_for_analyzed(db: &Path, at_least: i64, limit: Duration) -> i64 {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Ok(conn) = Connection::open(db) {
            if let Ok(n) = conn.query_row(
                "SELECT count(*) FROM tracks WHERE status = 'analyzed'",
                [],
                |r| r.get::<_, i64>(0),
            ) {
                if n >= at_least {
                    return n;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("fewer than {at_least} analysed tracks after {limit:?}");
}

#[test]
fn kill_9_then_rerun_gives_the_same_database_as_an_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let lib = library(dir.path(), 24, 90.0);
    // Fast mode: resuming does not depend on the mode, and 24 full-mode files twice cost
    // a minute of CPU.
    let flags = ["-a", "--fast_mode", "--workers", "1", "--batch_size", "2"];

    let clean = dir.path().join("clean");
    ok(&run(&lib, &clean, &flags));

    let killed = dir.path().join("killed");
    let mut child = Command::new(BIN)
        .arg("--library")
        .arg(&lib)
        .arg("--cache_dir")
        .arg(&killed)
        .args(flags)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let done = wait_for_analyzed(&killed.join("playlista.db"), 2, Duration::from_secs(60));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(done < 24, "the run finished before it could be killed");
    let err = ok(&run(&lib, &killed, &flags));
    // Work committed before the kill is not redone.
    let again: u64 = err
        .split("done: ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(
        again <= 24 - done as u64,
        "{again} analysed again after {done}: {err}"
    );

    let (a, b) = (
        snapshot(&clean.join("playlista.db")),
        snapshot(&killed.join("playlista.db")),
    );
    assert_eq!(a, b);
    assert!(b.values().all(|(_, attempts, _, _)| *attempts == 1));
    assert!(integrity_ok(&killed.join("playlista.db")));
}

#[test]
fn ctrl_c_commits_the_batch_in_hand_and_a_rerun_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let lib = library(dir.path(), 8, 60.0);
    let state = dir.path().join("state");
    let child = Command::new(BIN)
        .arg("--library")
        .arg(&lib)
        .arg("--cache_dir")
        .arg(&state)
        .args(["-a", "--workers", "1", "--batch_size", "100"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_analyzed(&state.join("playlista.db"), 0, Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted"), "{err}");
    // The batch was far from full (100), yet what was analysed is committed.
    let s = status(&state);
    let analyzed = s["analyzed"].as_u64().unwrap();
    assert!((1..8).contains(&analyzed), "{s}");
    assert_eq!(s["last_run"]["interrupted"].as_bool(), Some(true), "{s}");
    ok(&run(&lib, &state, &["-a"]));
    assert_eq!(status(&state)["analyzed"].as_u64(), Some(8));
}

#[test]
fn slow_and_crashing_files_fail_alone_and_failed_retries_with_back_off() {
    let dir = tempfile::tempdir().unwrap();
    let lib = library(dir.path(), 3, 20.0);
    let state = dir.path().join("state");

    // A time limit no file can meet: each fails as a timeout, the run goes on.
    let err = ok(&run(&lib, &state, &["-a", "--file_timeout", "0.0005"]));
    assert!(err.contains("took longer than"), "{err}");
    let s = status(&state);
    assert_eq!(s["failed"].as_u64(), Some(4), "{s}");
    assert!(s["failed_by_kind"].to_string().contains("timeout"), "{s}");

    // --failed retries them (more time each attempt); with a sane limit they succeed.
    ok(&run(&lib, &state, &["--failed"]));
    let s = status(&state);
    assert_eq!(
        (s["analyzed"].as_u64(), s["failed"].as_u64()),
        (Some(3), Some(1))
    );
    // The broken file is retried at most 3 times in all.
    ok(&run(&lib, &state, &["--failed"]));
    let err = ok(&run(&lib, &state, &["--failed"]));
    assert!(err.contains("0 analysed, 0 failed"), "{err}");

    // A worker whose heap cap is too small dies on every file: each is recorded, none is lost.
    let state2 = dir.path().join("state2");
    let err = ok(&run(&lib, &state2, &["-a", "--memory_limit", "2MB"]));
    let s = status(&state2);
    assert_eq!(s["failed"].as_u64(), Some(4), "{s}\n{err}");
    assert!(s["failed_by_kind"].to_string().contains("crash"), "{s}");
}

/// Four columns of every analysed track, in path order (`COLS` selects them from `features
/// f JOIN tracks t`).
fn per_track<A, B, C, D>(db: &Path, cols: &str) -> Vec<(A, B, C, D)>
where
    A: rusqlite::types::FromSql,
    B: rusqlite::types::FromSql,
    C: rusqlite::types::FromSql,
    D: rusqlite::types::FromSql,
{
    let conn = Connection::open(db).unwrap();
    let sql =
        format!("SELECT {cols} FROM features f JOIN tracks t ON t.id = f.track_id ORDER BY t.path");
    let mut stmt = conn.prepare(&sql).unwrap();
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap();
    rows.map(Result::unwrap).collect()
}

/// `(attempts, bpm, key, loudness)` of a track: what a fast analysis measured, and how many
/// times the file was measured.
type FastFeatures = (i64, Option<f64>, Option<String>, Option<f64>);

fn fast_features(db: &Path) -> Vec<FastFeatures> {
    per_track(db, "t.attempts, f.bpm, f.key, f.loudness_lufs")
}

/// `(mode, embedding bytes, tag bytes, has timbre)` of every analysed track.
fn modes(db: &Path) -> Vec<(String, Option<i64>, Option<i64>, bool)> {
    per_track(
        db,
        "f.mode, length(f.embedding), length(f.musicnn_tags), f.timbre IS NOT NULL",
    )
}

#[test]
fn full_mode_is_the_default_and_adds_to_fast_rows_and_fast_mode_keeps_full_rows() {
    let dir = tempfile::tempdir().unwrap();
    let lib = library(dir.path(), 3, 8.0);
    let state = dir.path().join("state");
    let db = state.join("playlista.db");

    let err = ok(&run(&lib, &state, &["-a", "--fast_mode"]));
    assert!(err.contains("3 analysed"), "{err}");
    let fast = ("fast".to_string(), None, None, false);
    assert_eq!(modes(&db), vec![fast.clone(); 3]);
    let measured = fast_features(&db);
    assert!(
        measured.iter().all(|m| m.0 == 1 && m.1.is_some()),
        "{measured:?}"
    );

    // Full mode (the default) adds timbre and the embedding to the fast rows, which keep
    // their fast features as they were: the files are not measured for them again.
    let err = ok(&run(&lib, &state, &["-a"]));
    assert!(err.contains("3 analysed"), "{err}");
    let full = ("full".to_string(), Some(800), Some(200), true);
    assert_eq!(modes(&db), vec![full.clone(); 3]);
    assert_eq!(fast_features(&db), measured);
    // --status counts both tiers.
    let s = status(&state);
    assert_eq!(s["fast"]["tracks"], 3, "{s}");
    assert_eq!(s["full"]["tracks"], 3, "{s}");
    assert_eq!(s["full"]["left"], 0, "{s}");

    // In tiers, from nothing: every track fast first, then every one full.
    let tiered = dir.path().join("tiered");
    let err = ok(&run(&lib, &tiered, &["-a", "--tiers"]));
    let passes: Vec<&str> = err.lines().filter(|l| l.starts_with("done: ")).collect();
    assert_eq!(passes.len(), 2, "{err}");
    assert!(passes.iter().all(|l| l.contains("3 analysed")), "{err}");
    let tiered_db = tiered.join("playlista.db");
    assert_eq!(modes(&tiered_db), vec![full.clone(); 3]);
    let once = fast_features(&tiered_db);
    assert!(once.iter().all(|m| m.0 == 1), "{once:?}");

    // Fast mode is content with full rows: nothing to do.
    let err = ok(&run(&lib, &state, &["-a", "--fast_mode"]));
    assert!(err.contains("0 analysed"), "{err}");
    assert_eq!(modes(&db), vec![full; 3]);

    // A radio explains itself with the neighbours' MusiCNN tags.
    let seed = lib.join("Artist A/00 song.wav");
    let out = run(
        &lib,
        &state,
        &[
            "-g",
            "-m",
            "radio",
            "--explain",
            "--seed",
            seed.to_str().unwrap(),
        ],
    );
    ok(&out);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(" sound: "), "{text}");
}

#[test]
fn config_file_settings_apply_and_flags_win() {
    let dir = tempfile::tempdir().unwrap();
    let lib = library(dir.path(), 2, 6.0);
    let state = dir.path().join("from-config");
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "library = {:?}\ncache_dir = {:?}\nworkers = 1\nbatch_size = 1\nlog_level = \"warn\"\n",
            lib.to_str().unwrap(),
            state.to_str().unwrap()
        ),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["-a", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let err = ok(&out);
    assert!(!err.contains("PERF"), "log_level warn from the file: {err}");
    assert_eq!(status(&state)["analyzed"].as_u64(), Some(2));

    let out = Command::new(BIN)
        .args(["-a", "--log_level", "info", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let err = ok(&out);
    assert!(err.contains("1 worker(s)"), "{err}");
    assert!(err.contains("INFO"), "the flag wins: {err}");

    let out = Command::new(BIN)
        .args(["-a", "--memory_limit", "lots", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a size"));
}
