//! End-to-end tests of playlist generation: the real binary, a temporary library of generated
//! songs, a real database, and the M3U8 files it writes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use playlista::synth::{self, SongSpec, WavFormat};

const BIN: &str = env!("CARGO_BIN_EXE_playlista");

/// Twelve short songs: four tempos × three keys, in two folders.
fn library(root: &Path) -> Vec<PathBuf> {
    let mut paths = Vec::new();
    for (i, bpm) in [80.0, 100.0, 120.0, 140.0].into_iter().enumerate() {
        for (j, tonic) in [0u8, 7, 9].into_iter().enumerate() {
            let path = root
                .join(if i < 2 { "slow" } else { "fast" })
                .join(format!("song_{}_{tonic}.wav", bpm as u32));
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            let spec = SongSpec {
                bpm,
                tonic,
                minor: j == 2,
                seconds: 6.0,
            };
            synth::write_song(&path, &spec, 22_050, 1, WavFormat::Pcm16).unwrap();
            paths.push(path);
        }
    }
    paths
}

fn playlista(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .arg("--library")
        .arg(dir.join("music"))
        .arg("--cache_dir")
        .arg(dir.join("state"))
        .arg("--output_dir")
        .arg(dir.join("playlists"))
        .arg("--workers")
        .arg("1")
        .current_dir(dir)
        .output()
        .expect("run playlista")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "status {:?}\nstdout {}\nstderr {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every path line of an M3U8 file, resolved against the file's folder.
fn entries(m3u: &Path) -> Vec<PathBuf> {
    let text = std::fs::read_to_string(m3u).unwrap();
    assert!(text.starts_with("#EXTM3U\n"), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (k, line) in lines.iter().enumerate() {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        assert!(!Path::new(line).is_absolute(), "absolute path {line}");
        assert!(
            lines[k - 1].starts_with("#EXTINF:6,song_"),
            "{}",
            lines[k - 1]
        );
        out.push(m3u.parent().unwrap().join(line));
    }
    out
}

fn m3u_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "m3u8"))
        .collect();
    files.sort();
    files
}

#[test]
fn analyse_then_generate_writes_playlists_whose_paths_resolve() {
    let dir = tempfile::tempdir().unwrap();
    let songs = library(&dir.path().join("music"));
    ok(&playlista(dir.path(), &["-a"]));
    // Twelve songs in many buckets: shrink the size rules so lists exist.
    let text = ok(&playlista(
        dir.path(),
        &["-g", "--min_playlist_size", "1", "--mixed_below", "2"],
    ));
    assert!(text.contains("by all"), "{text}");
    let files = m3u_files(&dir.path().join("playlists/all"));
    assert!(!files.is_empty());
    let mut listed = Vec::new();
    for f in &files {
        for p in entries(f) {
            let real = std::fs::canonicalize(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            listed.push(real);
        }
    }
    listed.sort();
    let mut expected: Vec<PathBuf> = songs
        .iter()
        .map(|s| std::fs::canonicalize(s).unwrap())
        .collect();
    expected.sort();
    // Every song has a tempo, so every song is in exactly one `all` playlist.
    assert_eq!(listed, expected);

    // kmeans with the original's default sizes: 12 songs, clusters under 10 go to
    // Mixed_Collection, and the old method's files are left alone.
    ok(&playlista(
        dir.path(),
        &["-g", "-m", "kmeans", "--num_playlists", "3"],
    ));
    let kmeans = m3u_files(&dir.path().join("playlists/kmeans"));
    assert!(!kmeans.is_empty());
    assert_eq!(m3u_files(&dir.path().join("playlists/all")), files);
}

#[test]
fn radio_from_a_relative_seed_and_a_clear_error_for_a_bad_one() {
    let dir = tempfile::tempdir().unwrap();
    library(&dir.path().join("music"));
    ok(&playlista(dir.path(), &["-a"]));
    // The seed as a user types it: relative to the working directory.
    let radio = |output: &str| {
        let seed = "music/fast/song_120_0.wav";
        let args = ["-g", "-m", "radio", "--seed", seed, "--length", "5", output];
        ok(&playlista(dir.path(), &args))
    };
    let text = radio("--explain");
    assert!(text.contains("Radio_song_120_0"), "{text}");
    assert!(text.contains("neighbour 1 of the seed"), "{text}");
    // The reasons as JSON.
    let out = radio("--json");
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON object");
    let tracks = v["playlists"][0]["tracks"].as_array().expect("tracks");
    assert_eq!(tracks.len(), 5);
    assert_eq!(tracks[0]["why"], "the seed");
    assert!(
        tracks[1]["why"].as_str().is_some_and(|w| w.contains("key")),
        "{v}"
    );
    let radio = m3u_files(&dir.path().join("playlists/radio"));
    assert_eq!(radio.len(), 1);
    let tracks = entries(&radio[0]);
    assert_eq!(tracks.len(), 5);
    assert!(
        tracks[0].ends_with("fast/song_120_0.wav"),
        "{:?}",
        tracks[0]
    );
    for t in &tracks {
        assert!(t.exists(), "{}", t.display());
    }

    // A file outside the library, and one that does not exist.
    let stray = dir.path().join("stray.wav");
    std::fs::copy(&tracks[0], &stray).unwrap();
    for bad in ["stray.wav", "music/nope.wav"] {
        let out = playlista(dir.path(), &["-g", "-m", "radio", "--seed", bad]);
        assert_eq!(out.status.code(), Some(2), "{bad}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--seed") && err.contains(bad), "{err}");
    }
    let out = playlista(dir.path(), &["-g", "-m", "radio"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs --seed FILE"));
}

#[test]
fn path_and_mix_are_written() {
    let dir = tempfile::tempdir().unwrap();
    library(&dir.path().join("music"));
    ok(&playlista(dir.path(), &["-a"]));
    ok(&playlista(
        dir.path(),
        &[
            "-g",
            "-m",
            "path",
            "--from",
            "music/slow/song_80_0.wav",
            "--to",
            "music/fast/song_140_9.wav",
            "--length",
            "6",
        ],
    ));
    let path = m3u_files(&dir.path().join("playlists/path"));
    assert_eq!(path.len(), 1);
    let tracks = entries(&path[0]);
    assert_eq!(tracks.len(), 6);
    assert!(tracks[0].ends_with("slow/song_80_0.wav"));
    assert!(tracks[5].ends_with("fast/song_140_9.wav"));
    ok(&playlista(
        dir.path(),
        &["-g", "-m", "mix", "--length", "10"],
    ));
    let mix = m3u_files(&dir.path().join("playlists/mix"));
    assert_eq!(mix.len(), 1);
    assert_eq!(entries(&mix[0]).len(), 10);
}
