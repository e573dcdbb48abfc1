//! End-to-end tests of the `playlista` binary: real files in, real output parsed.
//!
//! Generated files (known tempo, key and level) run everywhere. The corpus tests need the
//! corpus built by `shared/corpus/make-corpus`, found through `PLAYLISTA_CORPUS`; without it
//! they skip with a printed reason, except under `CI=true`, where a missing corpus fails.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use playlista::synth::{self, SongSpec, WavFormat};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_playlista");

/// The published key set of `inspect --json`, exactly.
const KEYS: [&str; 19] = [
    "path",
    "ok",
    "error",
    "duration_s",
    "sample_rate",
    "channels",
    "codec",
    "bpm",
    "bpm_confidence",
    "key",
    "scale",
    "key_strength",
    "loudness_lufs",
    "loudness_rms_db",
    "danceability",
    "onset_rate",
    "zcr",
    "spectral_centroid",
    "tags",
];

/// What full mode adds to the published keys.
const FULL_KEYS: [&str; 8] = [
    "mfcc",
    "mfcc_cov",
    "chroma",
    "spectral_contrast",
    "spectral_flatness",
    "spectral_rolloff",
    "embedding",
    "musicnn_tags",
];

fn inspect(files: &[&Path]) -> (Output, Vec<Value>) {
    inspect_with(&[], files)
}

/// `inspect --json` with extra flags.
fn inspect_with(flags: &[&str], files: &[&Path]) -> (Output, Vec<Value>) {
    let out = Command::new(BIN)
        .arg("inspect")
        .arg("--json")
        .args(flags)
        .args(files)
        .output()
        .expect("run playlista");
    let lines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect();
    (out, lines)
}

fn write_song(
    dir: &Path,
    name: &str,
    spec: SongSpec,
    rate: u32,
    channels: u16,
    fmt: WavFormat,
) -> PathBuf {
    let path = dir.join(name);
    synth::write_song(&path, &spec, rate, channels, fmt).unwrap();
    path
}

#[test]
fn inspect_json_has_exactly_the_published_keys_and_right_answers() {
    let dir = tempfile::tempdir().unwrap();
    let spec = SongSpec {
        bpm: 120.0,
        tonic: 9,
        minor: true,
        seconds: 20.0,
    };
    let path = write_song(
        dir.path(),
        "a_minor_120.wav",
        spec,
        44_100,
        2,
        WavFormat::Pcm24,
    );
    let (out, lines) = inspect(&[&path]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(lines.len(), 1);
    let obj = lines[0].as_object().unwrap();
    let keys: BTreeSet<&str> = obj.keys().map(String::as_str).collect();
    // The published keys stay; a scalar appended to the record's table adds its own.
    let declared = playlista::features::record::FIELDS.iter().map(|f| f.name);
    assert_eq!(keys, KEYS.iter().copied().chain(declared).collect());
    let v = &lines[0];
    assert_eq!(v["ok"], true);
    assert_eq!(v["error"], Value::Null);
    assert_eq!(v["sample_rate"], 44_100);
    assert_eq!(v["channels"], 2);
    assert_eq!(v["codec"], "pcm_s24le");
    assert!((v["duration_s"].as_f64().unwrap() - 20.0).abs() < 0.01);
    let bpm = v["bpm"].as_f64().unwrap();
    assert!((bpm - 120.0).abs() <= 0.04 * 120.0, "bpm {bpm}");
    assert_eq!(
        (v["key"].as_str(), v["scale"].as_str()),
        (Some("A"), Some("minor"))
    );
    for k in [
        "bpm_confidence",
        "key_strength",
        "loudness_lufs",
        "loudness_rms_db",
        "danceability",
        "onset_rate",
        "zcr",
        "spectral_centroid",
    ] {
        assert!(v[k].as_f64().is_some_and(f64::is_finite), "{k} = {}", v[k]);
    }
    assert!(v["tags"].is_object());
}

fn numbers(v: &Value, len: usize) -> Vec<f64> {
    let list = v.as_array().unwrap_or_else(|| panic!("not a list: {v}"));
    assert_eq!(list.len(), len, "{v}");
    list.iter()
        .map(|x| {
            x.as_f64()
                .filter(|x| x.is_finite())
                .expect("a finite number")
        })
        .collect()
}

#[test]
fn inspect_full_adds_timbre_and_the_musicnn_embedding_and_keeps_the_fast_answers() {
    let dir = tempfile::tempdir().unwrap();
    let spec = SongSpec {
        bpm: 128.0,
        tonic: 2,
        minor: false,
        seconds: 25.0,
    };
    let path = write_song(dir.path(), "d_major.wav", spec, 44_100, 2, WavFormat::Pcm16);
    let (out, fast) = inspect(&[&path]);
    assert!(out.status.success());
    let (out, full) = inspect_with(&["--full"], &[&path]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = &full[0];
    let keys: BTreeSet<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    let declared = playlista::features::record::FIELDS.iter().map(|f| f.name);
    assert_eq!(
        keys,
        KEYS.iter()
            .chain(&FULL_KEYS)
            .copied()
            .chain(declared)
            .collect()
    );
    // Full mode measures more, never differently.
    for k in KEYS {
        assert_eq!(v[k], fast[0][k], "{k}");
    }

    let mfcc = numbers(&v["mfcc"], 13);
    assert!(mfcc.iter().any(|&c| c != 0.0));
    let chroma = numbers(&v["chroma"], 12);
    let top = chroma.iter().cloned().fold(f64::MIN, f64::max);
    assert!((top - 1.0).abs() < 1e-9, "chroma peaks at 1: {chroma:?}");
    // D major: D (2) is among the strongest pitch classes, C# and Eb are not.
    assert!(chroma[2] > chroma[1] && chroma[2] > chroma[3], "{chroma:?}");
    numbers(&v["spectral_contrast"]["contrast"], 7);
    numbers(&v["spectral_contrast"]["valley"], 7);
    let flatness = v["spectral_flatness"].as_f64().unwrap();
    assert!(flatness > 0.0 && flatness <= 1.0, "{flatness}");
    let rolloff = v["spectral_rolloff"].as_f64().unwrap();
    assert!(rolloff > 0.0 && rolloff <= 11_025.0, "{rolloff}");

    let embedding = numbers(&v["embedding"], 200);
    let mean = embedding.iter().sum::<f64>() / 200.0;
    assert!(embedding.iter().any(|&e| (e - mean).abs() > 1e-3));
    let tags = v["musicnn_tags"].as_object().unwrap();
    assert_eq!(tags.len(), 50);
    // In the network's order (serde_json's map sorts, so read the text).
    assert!(String::from_utf8_lossy(&out.stdout).contains(r#""musicnn_tags":{"rock":"#));
    assert!(tags.contains_key("female vocalists") && tags.contains_key("House"));
    assert!(
        tags.values()
            .all(|p| p.as_f64().is_some_and(|p| (0.0..=1.0).contains(&p)))
    );

    // The default (sampled, stopping once the mean is stable) stays close to every patch's
    // mean: the fidelity bound the patch rule was chosen by.
    let (_, all) = inspect_with(&["--full", "--embedding_coverage", "full"], &[&path]);
    let every = numbers(&all[0]["embedding"], 200);
    let dot: f64 = every.iter().zip(&embedding).map(|(a, b)| a * b).sum();
    let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
    let cosine = dot / (norm(&every) * norm(&embedding));
    assert!(cosine >= 0.98, "cosine {cosine} to the all-patch mean");

    let out = Command::new(BIN)
        .args(["inspect", "--full", "--embedding_coverage", "most"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--embedding_coverage"));
}

#[test]
fn a_bad_file_is_reported_and_the_next_one_still_analysed() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("notes.mp3");
    std::fs::write(&bad, "this is not audio\n".repeat(100)).unwrap();
    let empty = dir.path().join("empty.flac");
    std::fs::write(&empty, b"").unwrap();
    let good = write_song(
        dir.path(),
        "good.wav",
        SongSpec {
            bpm: 100.0,
            tonic: 0,
            minor: false,
            seconds: 10.0,
        },
        22_050,
        1,
        WavFormat::Pcm16,
    );
    let (out, lines) = inspect(&[&bad, &empty, &good]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "non-zero exit when a file failed"
    );
    assert_eq!(lines.len(), 3);
    for failed in &lines[..2] {
        assert_eq!(failed["ok"], false);
        let reason = failed["error"].as_str().unwrap();
        assert!(
            !reason.is_empty() && !reason.contains('\n'),
            "one-line reason: {reason:?}"
        );
        assert_eq!(failed["bpm"], Value::Null);
    }
    assert_eq!(lines[2]["ok"], true);
}

#[test]
fn ebu_1khz_sine_at_minus_23_dbfs_reads_minus_23_lufs_through_a_wav_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sine.wav");
    let s = synth::sine(48_000, 1000.0, -23.0, 20.0);
    synth::write_wav(
        &path,
        48_000,
        2,
        &synth::interleave(&s, 2),
        WavFormat::Float32,
    )
    .unwrap();
    let (_, lines) = inspect(&[&path]);
    let lufs = lines[0]["loudness_lufs"].as_f64().unwrap();
    assert!((lufs + 23.0).abs() <= 0.1, "{lufs}");
}

#[test]
fn silence_is_ok_with_no_tempo_key_or_loudness() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("silence.wav");
    synth::write_wav(
        &path,
        44_100,
        2,
        &vec![0.0; 44_100 * 2 * 10],
        WavFormat::Pcm16,
    )
    .unwrap();
    let (out, lines) = inspect(&[&path]);
    assert!(out.status.success());
    let v = &lines[0];
    assert_eq!(v["ok"], true);
    for k in [
        "bpm",
        "bpm_confidence",
        "key",
        "scale",
        "key_strength",
        "loudness_lufs",
        "loudness_rms_db",
        "danceability",
    ] {
        assert_eq!(v[k], Value::Null, "{k}");
    }
}

#[test]
fn demo_builds_its_library_and_analyses_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["demo", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let wavs = ["slow", "fast"]
        .iter()
        .map(|d| {
            std::fs::read_dir(dir.path().join("library").join(d))
                .unwrap()
                .count()
        })
        .sum::<usize>();
    assert_eq!(wavs, 24);
    assert!(dir.path().join("state/playlista.db").is_file());
    let summary = text
        .lines()
        .find(|l| l.starts_with("tempo right"))
        .expect("summary line");
    // Most of the demo must be right, or the demo is no demo.
    let right: Vec<usize> = summary
        .split_whitespace()
        .filter_map(|w| w.split('/').next()?.parse().ok())
        .collect();
    assert!(
        right.len() == 2 && right[0] >= 16 && right[1] >= 20,
        "{summary}"
    );
}

/// Where the corpus is, or why the corpus tests cannot run.
fn corpus() -> Option<PathBuf> {
    let dir = std::env::var_os("PLAYLISTA_CORPUS").map(PathBuf::from);
    match dir {
        Some(d) if d.join("truth.csv").is_file() => Some(d),
        _ => {
            let why = "corpus not found: set PLAYLISTA_CORPUS to a folder built by shared/corpus/make-corpus";
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("{why}");
            }
            eprintln!("SKIPPED: {why}");
            None
        }
    }
}

/// Runs `inspect --json` on one file, killing it after `limit`.
fn inspect_with_limit(path: &Path, limit: Duration) -> Option<Value> {
    let mut child = Command::new(BIN)
        .args(["inspect", "--json"])
        .arg(path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(
                status.code().is_some(),
                "{} killed by a signal: {status}",
                path.display()
            );
            let out = child.wait_with_output().unwrap();
            let line = String::from_utf8_lossy(&out.stdout)
                .lines()
                .next()?
                .to_string();
            return serde_json::from_str(&line).ok();
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("{} took longer than {limit:?}", path.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn every_edge_file_is_ok_or_a_clean_error_as_truth_says() {
    let Some(root) = corpus() else { return };
    let truth = playlista::bench::read_truth(&root.join("truth.csv")).unwrap();
    let mut checked = 0;
    for (rel, t) in truth.iter().filter(|(_, t)| t.kind == "edge") {
        let v = inspect_with_limit(&root.join(rel), Duration::from_secs(30))
            .unwrap_or_else(|| panic!("{rel}: no JSON line"));
        let ok = v["ok"].as_bool().unwrap();
        // truth.csv expects a decoder without Opus; playlista decodes it (libopus).
        let expected = t.expected_ok || t.format == "ogg_opus";
        assert_eq!(ok, expected, "{rel}: {}", v["error"]);
        if !ok {
            assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{rel}");
        }
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} edge files in truth.csv");
}

#[test]
fn same_track_in_two_formats_gets_the_same_answers() {
    let Some(root) = corpus() else { return };
    for (a, b) in [
        ("real/pushover_electro.ogg", "real/pushover_electro.wav"),
        (
            "real/wesnoth_northerners.ogg",
            "real/wesnoth_northerners.flac",
        ),
    ] {
        let (_, lines) = inspect(&[&root.join(a), &root.join(b)]);
        let (x, y) = (&lines[0], &lines[1]);
        assert_eq!(x["ok"], true);
        assert_eq!(y["ok"], true);
        let close = |k: &str, tol: f64| {
            let (p, q) = (x[k].as_f64(), y[k].as_f64());
            assert!(
                p.zip(q).is_some_and(|(p, q)| (p - q).abs() <= tol),
                "{a} vs {b}: {k} {p:?} vs {q:?}"
            );
        };
        close("bpm", 1.0);
        close("loudness_lufs", 0.5);
        close("duration_s", 0.5);
        assert_eq!(x["key"], y["key"], "{a} vs {b}");
    }
}

/// Inputs the fuzzer found (tests/fuzz_regressions/README.md says what each broke). They run
/// under a 1 GiB address-space limit, as on a small box: a decoder that asks for 4 GiB then
/// aborts the process instead of quietly overcommitting, and this test sees the signal.
#[test]
fn fuzz_regressions_give_clean_results() {
    use std::os::unix::process::CommandExt;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap().flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "md") {
            continue;
        }
        let mut cmd = Command::new(BIN);
        cmd.args(["inspect", "--json"]).arg(&path);
        // SAFETY: setrlimit is async-signal-safe and touches only the child being spawned.
        unsafe {
            cmd.pre_exec(|| {
                let limit = libc::rlimit {
                    rlim_cur: 1 << 30,
                    rlim_max: 1 << 30,
                };
                if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.code().is_some(),
            "{}: killed by {}",
            path.display(),
            out.status
        );
        let line = String::from_utf8_lossy(&out.stdout);
        let v: Value = serde_json::from_str(line.trim())
            .unwrap_or_else(|e| panic!("{}: {e}: {line}", path.display()));
        assert!(v["ok"].is_boolean(), "{}", path.display());
        checked += 1;
    }
    assert!(checked >= 4);
}

#[test]
fn tags_come_from_id3_vorbis_comments_and_mp4_atoms() {
    let Some(root) = corpus() else { return };
    let synthetic: Vec<PathBuf> = playlista::bench::corpus_files(&root)
        .into_iter()
        .filter(|p| p.starts_with(root.join("synthetic")))
        .collect();
    for ext in ["mp3", "ogg", "m4a", "flac"] {
        let path = synthetic
            .iter()
            .find(|p| p.extension().is_some_and(|e| e == ext))
            .unwrap_or_else(|| panic!("no .{ext} in the corpus"));
        let (_, lines) = inspect(&[path]);
        let stem = path.file_stem().unwrap().to_string_lossy();
        let title = lines[0]["tags"]["title"]
            .as_str()
            .unwrap_or_else(|| panic!("{}: no title", path.display()));
        assert!(
            stem.starts_with(title),
            "{}: title {title:?}",
            path.display()
        );
        assert!(lines[0]["tags"]["artist"].is_string(), "{}", path.display());
    }
}
