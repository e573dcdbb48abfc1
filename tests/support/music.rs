//! The small tagged library the Subsonic tests analyse (tests/subsonic.rs,
//! tests/subsonic_clients.rs): generated WAV files with RIFF INFO tags, one `.lrc` sidecar,
//! and, when the audio corpus is there, its MP3 with embedded cover art; and the CLI run that
//! analyses it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use playlista::synth::{self, SongSpec, WavFormat};

/// A WAV with a RIFF INFO list (title, artist, album, track, genre, year) before its data.
pub fn tagged_wav(path: &Path, spec: &SongSpec, tags: &[(&[u8; 4], &str)]) {
    synth::write_song(path, spec, 22_050, 1, WavFormat::Pcm16).unwrap();
    if tags.is_empty() {
        return;
    }
    let wav = std::fs::read(path).unwrap();
    let mut info = b"INFO".to_vec();
    for (id, value) in tags {
        let mut v = value.as_bytes().to_vec();
        if v.len() % 2 == 1 {
            v.push(b' '); // chunks are padded to even length; the reader trims the space
        }
        info.extend_from_slice(*id);
        info.extend_from_slice(&(v.len() as u32).to_le_bytes());
        info.extend_from_slice(&v);
    }
    // Walk the chunks after "RIFF....WAVE" to the data chunk; the list goes right before it.
    let mut at = 12;
    while &wav[at..at + 4] != b"data" {
        let len = u32::from_le_bytes(wav[at + 4..at + 8].try_into().unwrap()) as usize;
        at += 8 + len + len % 2;
    }
    let mut out = wav[..at].to_vec();
    out.extend_from_slice(b"LIST");
    out.extend_from_slice(&(info.len() as u32).to_le_bytes());
    out.extend_from_slice(&info);
    out.extend_from_slice(&wav[at..]);
    let riff = (out.len() - 8) as u32;
    out[4..8].copy_from_slice(&riff.to_le_bytes());
    std::fs::write(path, out).unwrap();
}

/// The library: `First Light` by Ada Example (4 songs, numbered out of file order),
/// `Second Wind` by The Examples (4, the first with synced lyrics in `examples_4.lrc`), both
/// genre Electronic from 2021, and 4 untagged songs in `loose/`. Returns song file name ->
/// path.
pub fn library(music: &Path, corpus: Option<&Path>) -> HashMap<String, PathBuf> {
    let mut files = HashMap::new();
    let albums = [
        (
            "Ada Example",
            "First Light",
            "ada",
            [70.0, 90.0, 110.0, 130.0],
        ),
        (
            "The Examples",
            "Second Wind",
            "examples",
            [80.0, 100.0, 120.0, 140.0],
        ),
    ];
    for (a, (artist, album, dir, tempos)) in albums.iter().enumerate() {
        for (k, &bpm) in tempos.iter().enumerate() {
            // Files named in reverse track order: the album must follow the track numbers.
            let name = format!("{dir}_{}.wav", 4 - k);
            let path = music.join(dir).join(&name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            let spec = SongSpec {
                bpm,
                tonic: (k * 5 % 12) as u8,
                minor: a == 1,
                seconds: 6.0,
            };
            let title = format!("{album} {}", k + 1);
            let track = (k + 1).to_string();
            tagged_wav(
                &path,
                &spec,
                &[
                    (b"INAM", &title),
                    (b"IART", artist),
                    (b"IPRD", album),
                    (b"IPRT", &track),
                    (b"IGNR", "Electronic"),
                    (b"ICRD", "2021"),
                ],
            );
            files.insert(name, path);
        }
    }
    // Synced lyrics beside "Second Wind 1" (examples_4.wav), as players write them: a
    // header, an offset, lines out of order, a word timing.
    std::fs::write(
        music.join("examples").join("examples_4.lrc"),
        "[ti:Second Wind 1]\n[offset:+250]\n[00:01.50]Second line\n[00:00.25]First <00:00.50>line\n",
    )
    .unwrap();
    for (k, bpm) in [95.0, 105.0, 125.0, 150.0].into_iter().enumerate() {
        let name = format!("loose_{k}.wav");
        let path = music.join("loose").join(&name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let spec = SongSpec {
            bpm,
            tonic: (k * 3) as u8,
            minor: false,
            seconds: 6.0,
        };
        tagged_wav(&path, &spec, &[]);
        files.insert(name, path);
    }
    if let Some(corpus) = corpus {
        let path = music.join("art").join("big_cover_art.mp3");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::copy(corpus.join("edge/big_cover_art.mp3"), &path).unwrap();
        files.insert("big_cover_art.mp3".into(), path);
    }
    files
}

/// The audio corpus (`PLAYLISTA_CORPUS`), when it has the cover-art MP3.
pub fn corpus() -> Option<PathBuf> {
    std::env::var_os("PLAYLISTA_CORPUS")
        .map(PathBuf::from)
        .filter(|d| d.join("edge/big_cover_art.mp3").is_file())
}

/// `playlista ARGS --config CONFIG`, which must succeed.
pub fn run_ok(args: &[&str], config: &Path) {
    let out = Command::new(super::BIN)
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
