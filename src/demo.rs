//! `playlista demo`: the whole job on a library nobody has to own.
//!
//! In: a folder (default: under the temp dir) and the mode (full unless `--fast_mode`). Out:
//! a generated library of short songs with known tempo and key (varied sample rate, channels
//! and sample format), analysed through the same pipeline and database as a real library, and
//! a table of what was found against the truth, then the playlists made from it (the
//! original's `all` and `kmeans`, a radio from one song and a DJ mix), written under
//! DIR/playlists. Both steps are the library job's ([`crate::job`]), with the truth table
//! between them. Re-running reuses the files and the database: only what changed is redone.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use anyhow::Result;

use crate::config::{self, Flags};
use crate::features::key::KEY_NAMES;
use crate::job::{self, Playlists, Settings};
use crate::pipeline::{Progress, Work};
use crate::playlist::{self, Generated, Method, space::Library};
use crate::store::Store;
use crate::synth::{self, SongSpec, WavFormat};

/// Tempos of the demo songs, slow to fast; each gets a key, a scale and a file format.
const TEMPOS: [f64; 24] = [
    64.0, 72.0, 78.0, 84.0, 90.0, 95.0, 100.0, 104.0, 108.0, 112.0, 116.0, 120.0, 124.0, 126.0,
    128.0, 132.0, 136.0, 140.0, 145.0, 150.0, 155.0, 160.0, 165.0, 172.0,
];
const FORMATS: [(u32, u16, WavFormat); 4] = [
    (44_100, 2, WavFormat::Pcm16),
    (48_000, 2, WavFormat::Pcm24),
    (22_050, 1, WavFormat::Pcm16),
    (32_000, 2, WavFormat::Float32),
];
const SECONDS: f64 = 20.0;

/// One demo song and where it is.
struct Song {
    spec: SongSpec,
    path: PathBuf,
}

fn songs(library: &Path) -> Vec<Song> {
    TEMPOS
        .iter()
        .enumerate()
        .map(|(i, &bpm)| {
            // Walk the circle of fifths so neighbours in tempo are far apart in key.
            let tonic = ((i * 7) % 12) as u8;
            let minor = i % 3 == 1;
            let (rate, channels, _) = FORMATS[i % FORMATS.len()];
            let name = format!(
                "{:03}bpm_{}_{}_{}k_{}ch.wav",
                bpm as u32,
                KEY_NAMES[tonic as usize].replace('#', "s"),
                if minor { "minor" } else { "major" },
                rate / 1000,
                channels
            );
            let genre = if bpm < 100.0 { "slow" } else { "fast" };
            Song {
                spec: SongSpec {
                    bpm,
                    tonic,
                    minor,
                    seconds: SECONDS,
                },
                path: library.join(genre).join(name),
            }
        })
        .collect()
}

pub fn run(dir: Option<PathBuf>, fast_mode: bool) -> Result<()> {
    let dir = dir.unwrap_or_else(|| std::env::temp_dir().join("playlista-demo"));
    let library = dir.join("library");
    let songs = songs(&library);
    println!(
        "demo library: {} ({} songs)",
        library.display(),
        songs.len()
    );
    for (i, song) in songs.iter().enumerate() {
        if !song.path.exists() {
            if let Some(parent) = song.path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            let (rate, channels, format) = FORMATS[i % FORMATS.len()];
            synth::write_song(&song.path, &song.spec, rate, channels, format)?;
        }
    }

    let flags = Flags {
        library: vec![library.clone()],
        cache_dir: Some(dir.join("state")),
        output_dir: Some(dir.join("playlists")),
        fast_mode,
        ..Flags::default()
    };
    let config = config::resolve(&flags, None)?;
    let analysis = Settings::analysis(Work::Changed, Progress::Quiet);
    let stop = AtomicBool::new(false);
    job::run(&config, &analysis, &stop, &mut Shown)?;

    let store = Store::open(&config.db_path(), config.tuning)?;
    print!("{}", truth_table(&store, &songs)?);
    drop(store);

    // The playlists: the original's default method, clusters, a radio from the 120 BPM song
    // and a DJ mix. 24 songs in 12 keys put one or two songs in each `all` bucket, so the size
    // rules are scaled down to show them at work (buckets of one go to Mixed_Collection).
    let seed = songs
        .iter()
        .find(|s| s.spec.bpm == 120.0)
        .map(|s| s.path.clone());
    let methods =
        [Method::All, Method::Kmeans, Method::Radio, Method::Mix].map(|method| playlist::Flags {
            method,
            seed: seed.clone(),
            length: 8,
            num_playlists: 4,
            min_playlist_size: 1,
            mixed_below: 2,
            ..playlist::Flags::DEFAULT
        });
    let playlists = Settings {
        analyse: None,
        playlists: Playlists::Make(Vec::from(methods)),
        ..analysis
    };
    job::run(&config, &playlists, &stop, &mut Shown)?;
    Ok(())
}

/// What the demo shows of the job: the analysis summary and each method's playlists.
struct Shown;

impl job::Observer for Shown {
    fn analysed(&mut self, _: job::Phase, report: &crate::pipeline::Report) {
        println!("analysis: {}", crate::report::report_text(report));
    }

    fn generated(&mut self, lib: &Library, _: &playlist::Flags, generated: &Generated) {
        print!("{}", playlist::summary_text(lib, generated, false, 3));
    }
}

/// What was measured beside what was generated, with a tick where they agree.
fn truth_table(store: &Store, songs: &[Song]) -> Result<String> {
    let stored = store.analysed()?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<36} {:>8} {:>9}   {:>8} {:>8}  {:>6}",
        "file", "true BPM", "measured", "true key", "measured", "LUFS"
    );
    let (mut bpm_right, mut key_right) = (0, 0);
    for song in songs {
        let Some(track) = song
            .path
            .to_str()
            .and_then(|p| stored.iter().find(|t| t.path == p))
        else {
            continue;
        };
        let m = &track.measured;
        let mode = if song.spec.minor { "minor" } else { "major" };
        let true_key = KEY_NAMES[song.spec.tonic as usize];
        let key_ok =
            m.key.map(|k| k.name()) == Some(true_key) && m.scale.map(|s| s.name()) == Some(mode);
        let bpm_ok = m
            .bpm
            .is_some_and(|b| (b - song.spec.bpm).abs() <= 0.04 * song.spec.bpm);
        bpm_right += bpm_ok as usize;
        key_right += key_ok as usize;
        let name = song
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{:<36} {:>8.1} {:>9} {} {:>8} {:>8} {} {:>6}",
            name,
            song.spec.bpm,
            m.bpm.map_or("-".into(), |b| format!("{b:.1}")),
            if bpm_ok { "✓" } else { "✗" },
            format!("{true_key} {}", &mode[..3]),
            format!(
                "{} {}",
                m.key.map_or("-", |k| k.name()),
                m.scale.map_or("", |s| &s.name()[..3])
            ),
            if key_ok { "✓" } else { "✗" },
            m.loudness_lufs.map_or("-".into(), |l| format!("{l:.1}")),
        );
    }
    let _ = writeln!(
        out,
        "tempo right {bpm_right}/{n}, key right {key_right}/{n}",
        n = songs.len()
    );
    Ok(out)
}
