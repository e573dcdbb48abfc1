//! The playlist benchmark: how well each method orders tracks, against a shuffle, on the
//! corpus; and how long every method takes on a 100,000-track library.
//!
//! In: the corpus folder. Out: a text table. Quality: the corpus is analysed into a temporary
//! database through the pipeline (as `bench --pipeline` does), then per method the number of
//! playlists and, for the partitions, the share of tracks left in `Mixed_Collection`; the
//! median |ΔBPM| between consecutive tracks ([`crate::playlist::vocab::tempo_flow`], the
//! measure the playlist tests hold `all`, `kmeans` and `mix` to) and the share of
//! Camelot-compatible key transitions, each beside the same figure for a seeded shuffle of the
//! same playlists, the tempo one also as a ratio; for `radio` also the
//! precision@5 of neighbours from the seed's source album among the corpus's `real/` tracks
//! (`<source>_<name>.ext`). Scale: 100,000 synthesised feature rows in a temporary database;
//! load, then every method generated, stored and written, timed, with the peak RSS.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Result;

use super::library::{measure, median};
use crate::config::Flags as ConfigFlags;
use crate::embedding::{EMBEDDING_DIM, N_TAGS};
use crate::features::{PitchClass, Record, Scale};
use crate::library::FileEntry;
use crate::playlist::rng::Rng;
use crate::playlist::space::Library;
use crate::playlist::update::part_of;
use crate::playlist::vocab::{MIXED, tempo_flow};
use crate::playlist::{self, Flags, Method, Playlist};
use crate::store::{Store, Tuning};
use crate::tags::Tags;
use crate::usage;

const PARTITIONS: [Method; 5] = [
    Method::All,
    Method::Time,
    Method::Kmeans,
    Method::Cache,
    Method::Tags,
];
const TUNING: Tuning = Tuning { cache_kib: 8192 };

/// Key figures over the transitions of some playlists.
#[derive(Default)]
struct Keys {
    pairs: usize,
    compatible: usize,
}

impl Keys {
    fn add(&mut self, lib: &Library, tracks: &[usize]) {
        for w in tracks.windows(2) {
            if let (Some(a), Some(b)) = (lib.camelot[w[0]], lib.camelot[w[1]]) {
                self.pairs += 1;
                self.compatible += a.compatible(b) as usize;
            }
        }
    }

    /// The share of Camelot-compatible transitions.
    fn share(&self) -> f64 {
        if self.pairs > 0 {
            self.compatible as f64 / self.pairs as f64
        } else {
            0.0
        }
    }
}

/// The source album of a corpus `real/` file: the name's prefix before the first `_`.
fn source(path: &str) -> Option<&str> {
    Path::new(path).file_name()?.to_str()?.split('_').next()
}

fn flags(method: Method) -> Flags {
    Flags {
        method,
        ..Flags::default()
    }
}

/// The quality table over an analysed corpus.
/// `real` and `real_dsp`: the corpus's real/ tracks with and without their sound.
fn quality(lib: &Library, real: &Library, real_dsp: &Library) -> Result<String> {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<8} {:>9} {:>7} {:>8}   {:>9} {:>8} {:>6}   {:>10} {:>8}   radio p@5 same album: with the embedding / DSP only (shuffle)",
        "method",
        "playlists",
        "tracks",
        "in Mixed",
        "med|ΔBPM|",
        "shuffle",
        "ratio",
        "camelot-ok",
        "shuffle",
    );
    let mut rng = Rng::new(7);
    let real_idx: Vec<usize> = (0..lib.len())
        .filter(|&i| lib.tracks[i].path.contains("/real/"))
        .collect();
    for method in PARTITIONS
        .into_iter()
        .chain([Method::Radio, Method::Path, Method::Mix])
    {
        let lists: Vec<Playlist> = match method {
            Method::Radio => real_idx
                .iter()
                .map(|&s| playlist::flow::radio(lib, s, 10, &Default::default()))
                .collect(),
            Method::Path => (0..real_idx.len().min(10))
                .map(|k| {
                    let (a, b) = (
                        real_idx[k],
                        real_idx[(k + real_idx.len() / 2) % real_idx.len()],
                    );
                    playlist::flow::path(lib, a, b, 10, &Default::default())
                })
                .collect(),
            _ => playlist::generate(lib, &flags(method))?,
        };
        let (step, shuffled_step) = tempo_flow(lib, &lists, &mut rng);
        let (mut ours, mut shuffled) = (Keys::default(), Keys::default());
        let (mut tracks, mut in_mixed) = (0, 0);
        for p in &lists {
            let mut order: Vec<usize> = p.entries.iter().map(|e| e.track).collect();
            tracks += order.len();
            if part_of(&p.name).0 == MIXED {
                in_mixed += order.len();
            }
            ours.add(lib, &order);
            rng.shuffle(&mut order);
            shuffled.add(lib, &order);
        }
        let mixed_share = if method.partitions() {
            format!("{:.0}%", 100.0 * in_mixed as f64 / tracks.max(1) as f64)
        } else {
            "-".to_string()
        };
        let figure = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}"));
        let ratio = match (step, shuffled_step) {
            (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
            _ => "-".to_string(),
        };
        let precision = if method == Method::Radio {
            let (with, seeds, random) = precision_at_5(real, &mut rng);
            let (dsp, _, _) = precision_at_5(real_dsp, &mut rng);
            format!("{with:.2} / {dsp:.2} ({random:.2}) over {seeds} seeds")
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "{:<8} {:>9} {:>7} {:>8}   {:>9} {:>8} {:>6}   {:>10.2} {:>8.2}   {}",
            method.name(),
            lists.len(),
            tracks,
            mixed_share,
            figure(step),
            figure(shuffled_step),
            ratio,
            ours.share(),
            shuffled.share(),
            precision
        );
    }
    let _ = writeln!(
        out,
        "(corpus: {} analysed tracks, {} of them real/; radio: a 10-track radio from every real/ \
         track; path: 10 paths between real/ tracks; in Mixed: share of the partition's tracks \
         in Mixed_Collection; med|ΔBPM|: median tempo step between consecutive tracks; shuffle: \
         the same playlists in a seeded random order; ratio: ours / shuffle, at most 0.5 for \
         the tempo-ordered all, kmeans and mix; camelot-ok: share of transitions with both keys \
         known that are Camelot-compatible)",
        lib.len(),
        real.len()
    );
    Ok(out)
}

/// Mean share of a radio's first five neighbours from the seed's album, over every real/ seed
/// with at least one album mate; the number of seeds; the share for five random other tracks.
fn precision_at_5(real: &Library, rng: &mut Rng) -> (f64, usize, f64) {
    let sources: Vec<Option<&str>> = real.tracks.iter().map(|t| source(&t.path)).collect();
    let (mut ours, mut random, mut seeds) = (0.0, 0.0, 0);
    for s in 0..real.len() {
        let mates = (0..real.len())
            .filter(|&j| j != s && sources[j] == sources[s])
            .count();
        if mates == 0 {
            continue;
        }
        seeds += 1;
        let p = playlist::flow::radio(real, s, 6, &Default::default());
        let hits = p.entries[1..]
            .iter()
            .filter(|e| sources[e.track] == sources[s])
            .count();
        ours += hits as f64 / 5.0;
        let mut others: Vec<usize> = (0..real.len()).filter(|&j| j != s).collect();
        rng.shuffle(&mut others);
        let hits = others
            .iter()
            .take(5)
            .filter(|&&j| sources[j] == sources[s])
            .count();
        random += hits as f64 / 5.0;
    }
    let n = seeds.max(1) as f64;
    (ours / n, seeds, random / n)
}

/// A synthetic embedding: the artist's own point (the same on every call) plus noise, so that
/// the sound space has the clusters a real library has.
fn sound_of(artist: usize, rng: &mut Rng) -> Vec<f32> {
    let mut centre = Rng::new(artist as u64);
    (0..EMBEDDING_DIM)
        .map(|_| (centre.unit() + 0.5 * rng.unit()) as f32)
        .collect()
}

/// `n` full-mode tracks with random features (a few without tempo), embeddings and tags,
/// written in batches.
pub(crate) fn synthesise(store: &mut Store, n: usize) -> Result<()> {
    const GENRES: [&str; 12] = [
        "Rock",
        "Pop",
        "Jazz",
        "Electronic",
        "Hip Hop",
        "Classical",
        "Folk",
        "Metal",
        "Soul",
        "Reggae",
        "Blues",
        "Ambient",
    ];
    let mut rng = Rng::new(42);
    let mut noise = Rng::new(43);
    let mut range = |lo: f64, hi: f64| lo + (hi - lo) * rng.unit();
    let mut i = 0;
    while i < n {
        let batch = store.batch()?;
        for _ in 0..10_000.min(n - i) {
            let artist = (range(0.0, 3000.0)) as usize;
            let key = range(0.0, 12.0) as usize;
            let m = Record {
                duration_s: range(120.0, 400.0),
                sample_rate: 44_100,
                channels: 2,
                codec: "flac".into(),
                bpm: (range(0.0, 1.0) > 0.03).then(|| range(60.0, 180.0)),
                bpm_confidence: Some(0.8),
                key: Some(PitchClass::from_index(key)),
                scale: Some(Scale::new(range(0.0, 1.0) < 0.4)),
                key_strength: Some(0.7),
                loudness_lufs: Some(range(-25.0, -6.0)),
                loudness_rms_db: Some(range(-28.0, -8.0)),
                danceability: Some(range(0.5, 1.4)),
                onset_rate: Some(range(1.0, 6.0)),
                zcr: Some(range(0.02, 0.15)),
                spectral_centroid: Some(range(500.0, 4000.0)),
                tags: Tags {
                    title: Some(format!("Track {i}")),
                    artist: Some(format!("Artist {artist}")),
                    album: Some(format!("Album {}", artist * 10 + i % 10)),
                    album_artist: None,
                    genre: Some(GENRES[artist % GENRES.len()].into()),
                    year: Some(1960 + (artist % 65) as u32),
                    track_number: Some((i % 12 + 1) as u32),
                    ..Tags::EMPTY
                },
                embedding: Some(sound_of(artist, &mut noise)),
                musicnn_tags: Some((0..N_TAGS).map(|_| noise.unit() as f32).collect()),
                ..Record::default()
            };
            let entry = FileEntry {
                path: PathBuf::from(format!("/bench/music/artist{artist:04}/track{i:06}.flac")),
                size: 1,
                mtime_ns: 1,
                ..FileEntry::default()
            };
            batch.analyzed(&entry, None, &m, "full", 1.0)?;
            i += 1;
        }
        batch.commit()?;
    }
    Ok(())
}

/// Every method over `n` synthesised tracks: times and peak RSS.
fn scale(scratch: &Path, n: usize) -> Result<String> {
    let mut out = String::new();
    let mut store = Store::open(&scratch.join("scale.db"), TUNING)?;
    let t = Instant::now();
    synthesise(&mut store, n)?;
    let _ = writeln!(
        out,
        "scale: {n} synthesised tracks written in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    usage::reset_peak_rss();
    let start = Instant::now();
    let cpu_start = usage::cpu_s(usage::Clock::Process);
    let lib = playlist::load(&store)?;
    let _ = writeln!(
        out,
        "  {:<8} {:>8.3} s",
        "load",
        start.elapsed().as_secs_f64()
    );
    let seed = PathBuf::from(&lib.tracks[0].path);
    let to = PathBuf::from(&lib.tracks[lib.len() / 2].path);
    let output = scratch.join("playlists");
    for method in PARTITIONS
        .into_iter()
        .chain([Method::Radio, Method::Path, Method::Mix])
    {
        let f = Flags {
            method,
            seed: Some(seed.clone()),
            from: Some(seed.clone()),
            to: Some(to.clone()),
            ..Flags::default()
        };
        let t = Instant::now();
        let g = playlist::run(&store, &lib, &output, &f)?;
        let tracks: usize = g.playlists.iter().map(|p| p.entries.len()).sum();
        let _ = writeln!(
            out,
            "  {:<8} {:>8.3} s  ({} playlists, {} places; generated, stored and written)",
            method.name(),
            t.elapsed().as_secs_f64(),
            g.playlists.len(),
            tracks
        );
    }
    let total = start.elapsed().as_secs_f64();
    let cpu = usage::cpu_s(usage::Clock::Process) - cpu_start;
    let peak = usage::peak_rss_kb();
    // A radio as the server would answer it: the library in memory, one seed.
    let mut answers = Vec::new();
    for k in 0..20 {
        let f = Flags {
            method: Method::Radio,
            seed: Some(PathBuf::from(&lib.tracks[k * (lib.len() / 20)].path)),
            ..Flags::default()
        };
        let t = Instant::now();
        playlist::generate(&lib, &f)?;
        answers.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let _ = writeln!(
        out,
        "  all methods: {total:.2} s wall, {cpu:.2} s CPU (budget < 10 s), peak RSS {:.1} MB \
         (budget < 200 MB); radio answer {:.1} ms median of 20 seeds (budget < 50 ms)",
        peak as f64 / 1024.0,
        median(answers)
    );
    Ok(out)
}

/// The tables. `analysed`: a state folder whose database already holds the corpus analysed
/// with the default flags (the pipeline benchmark's Default row); else the corpus is analysed.
pub fn table(corpus: &Path, analysed: Option<&Path>) -> Result<String> {
    let scratch = tempfile::Builder::new()
        .prefix("playlista-bench-")
        .tempdir()?;
    let state = match analysed {
        Some(state) => state.to_path_buf(),
        None => {
            let state = scratch.path().join("corpus-state");
            let report = measure(corpus, &state, &ConfigFlags::default())?;
            eprintln!("corpus analysed: {}", crate::report::report_text(&report));
            state
        }
    };
    let store = Store::open(&state.join("playlista.db"), TUNING)?;
    let lib = playlist::load(&store)?;
    let real_tracks: Vec<_> = store
        .analysed()?
        .into_iter()
        .filter(|t| t.path.contains("/real/"))
        .collect();
    let fingerprints = store.fingerprints()?;
    let real = Library::with_sound(
        real_tracks.clone(),
        &fingerprints,
        &playlist::sound::load(&store)?,
    );
    let real_dsp = Library::new(real_tracks, &fingerprints);
    let mut out = quality(&lib, &real, &real_dsp)?;
    out.push_str(&scale(scratch.path(), 100_000)?);
    Ok(out)
}
