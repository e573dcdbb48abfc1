//! Playlists: turning stored features into playlists, keeping them stable across updates, and
//! writing them out.
//!
//! In: the analysed tracks of the [`Store`] and the playlist [`Flags`]. Out: playlists stored
//! in the database (method, name, rule, generation time, ordered tracks with the reason each is
//! there) and written as extended M3U8 into `<output_dir>/<method>/<Name>.m3u8`.
//!
//! - [`space`]: the scaled feature space, the Camelot wheel, and resolving a typed path.
//! - [`sound`]: the MusiCNN embedding's dimensions of that space, and each track's top tags.
//! - [`buckets`]: the original's rule methods `all`, `time`, `cache`, `tags`; `all` coarsens a
//!   bucket too small for a list (key split dropped first, then brightness, then energy).
//! - [`kmeans`]: the original's `kmeans`.
//! - [`flow`]: ordered lists: `radio` from a seed, `path` from A to B, a DJ `mix`.
//! - [`finishing`]: size rules (drop, merge into `Mixed_Collection`, split) and the rules
//!   every playlist keeps (no duplicate recordings, per-artist cap, no artist twice in a row).
//! - [`taste`]: a listener's skips, plays and stars nudging `radio` and `path`, boundedly.
//! - [`update`]: incremental updates that keep names and order.
//! - [`vocab`]: the words and orderings the rule methods share (tempo/energy/brightness words,
//!   `Mixed_Collection`, the tempo order, the tempo steps every ordered list is measured by);
//!   [`rng`]: the deterministic generator. Both are leaves below the methods, so no two
//!   methods import each other.
//! - [`m3u`]: the M3U8 writer.

pub mod buckets;
pub mod finishing;
pub mod flow;
pub mod kmeans;
pub mod m3u;
pub mod rng;
pub mod sound;
pub mod space;
pub mod taste;
pub mod update;
pub mod vocab;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::store::{PlaylistRow, Store};
use space::Library;

/// How playlists are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Method {
    /// Buckets of tempo, energy, key and brightness (the original's default).
    All,
    /// Time-of-day slots, each with feature rules and a minimum length.
    Time,
    /// k-means++ clusters on scaled, weighted features, named from their medians.
    Kmeans,
    /// Coarse bins of tempo, energy and mood, similar bins merged.
    Cache,
    /// Genre and decade from the tags.
    Tags,
    /// The nearest tracks to --seed, ordered for smooth flow.
    Radio,
    /// Tracks moving step by step from --from to --to.
    Path,
    /// A DJ set: compatible keys, small tempo steps, energy (and tempo with it) rising then
    /// falling.
    Mix,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::All => "all",
            Method::Time => "time",
            Method::Kmeans => "kmeans",
            Method::Cache => "cache",
            Method::Tags => "tags",
            Method::Radio => "radio",
            Method::Path => "path",
            Method::Mix => "mix",
        }
    }

    /// Methods that partition the library into a set of playlists (regenerated as a whole,
    /// updated incrementally); the others make one playlist per request.
    pub fn partitions(self) -> bool {
        !matches!(self, Method::Radio | Method::Path | Method::Mix)
    }
}

/// The playlist settings (the original's three flags, and ours): [`Flags::DEFAULT`], with the
/// config file's `[playlists]` and the command line's flags laid over it (see
/// [`crate::config::PlaylistFlags`]).
#[derive(Debug, Clone)]
pub struct Flags {
    /// How to make playlists.
    pub method: Method,
    /// Clusters for -m kmeans.
    pub num_playlists: usize,
    /// Fewest tracks for a genre (or genre + decade) playlist of -m tags.
    pub min_tracks_per_genre: usize,
    /// The song a -m radio starts from (a path in the library).
    pub seed: Option<PathBuf>,
    /// Where a -m path starts.
    pub from: Option<PathBuf>,
    /// Where a -m path ends.
    pub to: Option<PathBuf>,
    /// Tracks in a radio, path or mix.
    pub length: usize,
    /// Playlists with fewer tracks are dropped.
    pub min_playlist_size: usize,
    /// Playlists with fewer tracks go into Mixed_Collection (-m all first coarsens a bucket
    /// this small, -m cache merges it into a similar bin).
    pub mixed_below: usize,
    /// Longer playlists are split into _Part2, _Part3...
    pub max_playlist_size: usize,
    /// Most tracks of one artist in a playlist (default: a quarter of it, at least 3).
    pub max_per_artist: Option<usize>,
    /// Shortest time-of-day playlist (-m time), in minutes: a slot with less is filled with
    /// the tracks nearest to its rules.
    pub min_slot_minutes: f64,
    /// Print every track with the reason it is in its playlist.
    pub explain: bool,
}

impl Flags {
    /// The defaults: the one place they are written.
    pub const DEFAULT: Flags = Flags {
        method: Method::All,
        num_playlists: 8,
        min_tracks_per_genre: 10,
        seed: None,
        from: None,
        to: None,
        length: 25,
        min_playlist_size: 3,
        mixed_below: 10,
        max_playlist_size: 500,
        max_per_artist: None,
        min_slot_minutes: 60.0,
        explain: false,
    };
}

impl Default for Flags {
    fn default() -> Flags {
        Flags::DEFAULT
    }
}

impl Flags {
    /// The settings that shape a partition: when they change, an update regenerates instead
    /// of appending.
    pub fn settings_text(&self) -> String {
        let m = self.method;
        let mut s = format!(
            "{} sizes={}/{}/{} cap={:?}",
            m.name(),
            self.min_playlist_size,
            self.mixed_below,
            self.max_playlist_size,
            self.max_per_artist
        );
        match m {
            Method::Kmeans => {
                let _ = write!(s, " k={}", self.num_playlists);
            }
            Method::Tags => {
                let _ = write!(s, " min_genre={}", self.min_tracks_per_genre);
            }
            Method::Time => {
                let _ = write!(s, " min_slot={}", self.min_slot_minutes);
            }
            _ => {
                let _ = write!(s, " length={}", self.length);
            }
        }
        s
    }
}

/// One track's place in a playlist and the reason for it.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Index into [`Library::tracks`].
    pub track: usize,
    pub why: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Playlist {
    pub name: String,
    /// The rule that made it, in words.
    pub rule: String,
    pub entries: Vec<Entry>,
}

impl Playlist {
    pub fn new(name: impl Into<String>, rule: impl Into<String>) -> Playlist {
        Playlist {
            name: name.into(),
            rule: rule.into(),
            entries: Vec::new(),
        }
    }

    pub fn push(&mut self, track: usize, why: impl Into<String>) {
        self.entries.push(Entry {
            track,
            why: why.into(),
        });
    }
}

/// Makes the playlists of `flags.method` from the library (no database, no files).
pub fn generate(lib: &Library, flags: &Flags) -> Result<Vec<Playlist>> {
    let lists = match flags.method {
        // A bucket that would be poured into Mixed_Collection (or dropped) coarsens instead.
        Method::All => finishing::finish(
            lib,
            buckets::all(lib, flags.mixed_below.max(flags.min_playlist_size)),
            flags,
            false,
        ),
        Method::Time => {
            finishing::finish(lib, buckets::time(lib, flags.min_slot_minutes), flags, true)
        }
        Method::Kmeans => finishing::finish(
            lib,
            kmeans::clusters(lib, flags.num_playlists),
            flags,
            false,
        ),
        Method::Cache => {
            finishing::finish(lib, buckets::cache(lib, flags.mixed_below), flags, false)
        }
        Method::Tags => finishing::finish(
            lib,
            buckets::tags(lib, flags.min_tracks_per_genre),
            flags,
            false,
        ),
        Method::Radio => {
            let seed = find(lib, flags.seed.as_deref(), "--seed")?;
            vec![flow::radio(
                lib,
                seed,
                flags.length,
                &taste::Taste::default(),
            )]
        }
        Method::Path => {
            let from = find(lib, flags.from.as_deref(), "--from")?;
            let to = find(lib, flags.to.as_deref(), "--to")?;
            vec![flow::path(
                lib,
                from,
                to,
                flags.length,
                &taste::Taste::default(),
            )]
        }
        Method::Mix => vec![flow::mix(lib, flags.length, None)],
    };
    let keep_ends = flags.method == Method::Path;
    Ok(lists
        .into_iter()
        .map(|mut p| {
            finishing::tidy(lib, &mut p, flags.max_per_artist, keep_ends);
            p
        })
        .filter(|p| !p.entries.is_empty())
        .collect())
}

fn find(lib: &Library, path: Option<&Path>, flag: &str) -> Result<usize> {
    let path = path.with_context(|| format!("this method needs {flag} FILE"))?;
    lib.find(path).map_err(|e| anyhow::anyhow!("{flag}: {e}"))
}

/// What one generation did.
pub struct Generated {
    pub method: Method,
    pub playlists: Vec<Playlist>,
    /// Kept the stored playlists' names and order and appended new tracks.
    pub incremental: bool,
    /// Where the M3U8 files are.
    pub dir: PathBuf,
}

/// The analysed library from the store, ready for [`run`] (load once, run many methods);
/// genres, years and weak BPMs filled from the look-up cache.
pub fn load(store: &Store) -> Result<Library> {
    let mut tracks = store.analysed()?;
    crate::lookups::fill_from_cache(store, &mut tracks)?;
    Ok(Library::with_sound(
        tracks,
        &store.fingerprints()?,
        &sound::load(store)?,
    ))
}

/// Generates (or updates) the playlists of `flags.method`, stores them and writes them into
/// `output_dir/<method>/`.
pub fn run(store: &Store, lib: &Library, output_dir: &Path, flags: &Flags) -> Result<Generated> {
    let fresh = generate(lib, flags)?;
    let method = flags.method;
    let settings = flags.settings_text();
    let saved = if method.partitions() {
        store.saved_playlists(method.name())?
    } else {
        Vec::new()
    };
    let incremental = !saved.is_empty() && saved.iter().all(|p| p.settings == settings);
    let playlists = if incremental {
        update::merge(
            lib,
            &saved,
            fresh,
            flags.min_playlist_size,
            flags.max_playlist_size,
        )
    } else {
        fresh
    };
    let rows: Vec<PlaylistRow> = playlists
        .iter()
        .map(|p| PlaylistRow {
            name: &p.name,
            rule: &p.rule,
            settings: &settings,
            tracks: p
                .entries
                .iter()
                .map(|e| (lib.tracks[e.track].id, e.why.as_str()))
                .collect(),
        })
        .collect();
    store.save_playlists(method.name(), &rows, method.partitions())?;
    let dir = output_dir.join(method.name());
    m3u::write_all(&dir, lib, &playlists, method.partitions())?;
    Ok(Generated {
        method,
        playlists,
        incremental,
        dir,
    })
}

/// How a track is shown: `Artist - Title`, else the file name without extension.
pub fn display_name(lib: &Library, track: usize) -> String {
    let t = &lib.tracks[track];
    match (&t.measured.tags.artist, &t.measured.tags.title) {
        (Some(a), Some(ti)) => format!("{a} - {ti}"),
        (None, Some(ti)) => ti.clone(),
        _ => {
            let stem = Path::new(t.file())
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| t.path.clone());
            // A track of an album with no title in its sheet: the album file and its number.
            match crate::library::split_part(&t.path) {
                Some((_, number)) => format!("{stem} #{number:02}"),
                None => stem,
            }
        }
    }
}

/// A compact listing: per playlist its name, size, length and first tracks; with `explain`
/// every track and why it is there.
pub fn summary_text(lib: &Library, g: &Generated, explain: bool, first: usize) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} playlist(s) by {}{} in {}",
        g.playlists.len(),
        g.method.name(),
        if g.incremental {
            " (updated: names and order kept)"
        } else {
            ""
        },
        g.dir.display()
    );
    for p in &g.playlists {
        let minutes: f64 = p
            .entries
            .iter()
            .map(|e| lib.tracks[e.track].measured.duration_s)
            .sum::<f64>()
            / 60.0;
        let _ = writeln!(
            out,
            "  {:<40} {:>5} tracks {:>7.1} min",
            p.name,
            p.entries.len(),
            minutes
        );
        let shown = if explain { p.entries.len() } else { first };
        for (i, e) in p.entries.iter().take(shown).enumerate() {
            let _ = write!(out, "    {:>3}. {}", i + 1, display_name(lib, e.track));
            if explain {
                let _ = write!(out, "  — {}", e.why);
            }
            out.push('\n');
        }
        if p.entries.len() > shown {
            let _ = writeln!(out, "         … {} more", p.entries.len() - shown);
        }
    }
    out
}

/// The same as JSON: per playlist its name, rule and tracks, each with `path`, `title` (as
/// shown in the M3U8) and `why`.
pub fn summary_json(lib: &Library, g: &Generated) -> serde_json::Value {
    serde_json::json!({
        "method": g.method.name(),
        "dir": g.dir,
        "incremental": g.incremental,
        "playlists": g.playlists.iter().map(|p| serde_json::json!({
            "name": p.name,
            "rule": p.rule,
            "tracks": p.entries.iter().map(|e| serde_json::json!({
                "path": lib.tracks[e.track].path,
                "title": display_name(lib, e.track),
                "why": e.why,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::library::FileEntry;
    use crate::playlist::space::tests_support::stored;
    use crate::store::Tuning;
    use std::collections::HashMap;

    fn add(store: &mut Store, ids: &[i64]) -> Vec<i64> {
        let b = store.batch().unwrap();
        let out = ids
            .iter()
            .map(|&i| {
                // Two kinds: slow chill C major, and fast intense A minor; later tracks are a
                // little slower, so a fresh run would put them first.
                let t = if i % 2 == 0 {
                    stored(i, Some(75.0 - i as f64 * 0.1), "C", false, 0.5)
                } else {
                    stored(i, Some(155.0 - i as f64 * 0.1), "A", true, 1.5)
                };
                let entry = FileEntry {
                    path: PathBuf::from(&t.path),
                    size: 1,
                    mtime_ns: 1,
                    ..FileEntry::default()
                };
                b.analyzed(&entry, None, &t.measured, "fast", 1.0).unwrap()
            })
            .collect();
        b.commit().unwrap();
        out
    }

    fn saved_ids(store: &Store) -> Vec<(String, Vec<i64>)> {
        store
            .saved_playlists("all")
            .unwrap()
            .into_iter()
            .map(|p| (p.name, p.tracks.into_iter().map(|t| t.0).collect()))
            .collect()
    }

    /// Track `i`'s words under `all` (tempo, energy, key and mode, brightness), each with what
    /// a reason that stands on it says; `None` without a tempo. Written out here, apart from
    /// `buckets`, so that the tests check the method against an independent reading.
    fn words(lib: &Library, i: usize) -> Option<[(String, String); 4]> {
        let m = &lib.tracks[i].measured;
        let (bpm, d, k, s, c) = (
            m.bpm?,
            m.danceability?,
            m.key?,
            m.scale?,
            m.spectral_centroid?,
        );
        let mode = if s.is_minor() { "Minor" } else { "Major" };
        let word = |w: &str| (w.to_string(), format!("→ {w}"));
        Some([
            word(vocab::tempo_word(bpm)),
            word(vocab::energy_word(d)),
            (
                format!("{}_{mode}", k.name()),
                format!("key {} {}", k.name(), s.name()),
            ),
            word(vocab::brightness_word(c)),
        ])
    }

    /// The words `keep` keeps, as a name.
    fn named(words: &[(String, String); 4], keep: &[bool; 4]) -> String {
        words
            .iter()
            .zip(keep)
            .filter(|(_, k)| **k)
            .map(|(w, _)| w.0.as_str())
            .collect::<Vec<_>>()
            .join("_")
    }

    /// Checks that every track of `all`'s lists is there for what the list's name says: the
    /// name is the track's tempo word with some of its energy, key and brightness words, in
    /// the order they are dropped, and the reason states each of those and no other.
    fn assert_all_names_are_true(lib: &Library, lists: &[Playlist]) {
        const KEEPS: [[bool; 4]; 4] = [
            [true, true, true, true],
            [true, true, false, true],
            [true, true, false, false],
            [true, false, false, false],
        ];
        for p in lists {
            // A list over --max_playlist_size goes on in `_PartN`.
            let name = update::part_of(&p.name).0;
            for e in &p.entries {
                let (list, why) = if name == vocab::MIXED {
                    let Some(rest) = e.why.strip_prefix("from ") else {
                        panic!("{}: {}", p.name, e.why)
                    };
                    let Some((list, why)) = rest.split_once(" (too small alone): ") else {
                        panic!("{}: {}", p.name, e.why)
                    };
                    (list, why)
                } else {
                    (name, e.why.as_str())
                };
                let Some(words) = words(lib, e.track) else {
                    panic!("track {} lacks a feature", e.track)
                };
                let Some(keep) = KEEPS.iter().find(|k| named(&words, k) == list) else {
                    panic!("{list} is not a name of track {}: {why}", e.track)
                };
                for ((_, said), k) in words.iter().zip(keep) {
                    assert_eq!(why.contains(said.as_str()), *k, "{list}: {why}");
                }
            }
        }
    }

    fn share_in_mixed(lists: &[Playlist]) -> f64 {
        let (mut mixed, mut all) = (0, 0);
        for p in lists {
            all += p.entries.len();
            if p.name == vocab::MIXED {
                mixed += p.entries.len();
            }
        }
        mixed as f64 / all.max(1) as f64
    }

    #[test]
    fn all_on_a_small_mixed_library_makes_tempo_and_energy_lists_not_one_mixed_collection() {
        for seed in 1..=4 {
            let lib = space::tests_support::mixed(93, seed);
            let lists = generate(&lib, &Flags::default()).unwrap();
            let names: Vec<(&str, usize)> = lists
                .iter()
                .map(|p| (p.name.as_str(), p.entries.len()))
                .collect();
            let own = lists.iter().filter(|p| p.name != vocab::MIXED).count();
            assert!(own >= 3, "{names:?}");
            assert!(share_in_mixed(&lists) < 0.5, "{names:?}");
            let placed: usize = lists.iter().map(|p| p.entries.len()).sum();
            let with_tempo = (0..lib.len()).filter(|&i| lib.bpm(i).is_some()).count();
            assert!(
                placed * 10 >= with_tempo * 9,
                "{placed} of {with_tempo}: {names:?}"
            );
            assert_all_names_are_true(&lib, &lists);
        }
    }

    #[test]
    fn all_on_a_large_library_keeps_every_fine_bucket_big_enough() {
        let lib = space::tests_support::mixed(20_000, 2);
        let flags = Flags::default();
        let lists = generate(&lib, &flags).unwrap();
        assert_all_names_are_true(&lib, &lists);
        let home: HashMap<usize, &str> = lists
            .iter()
            .flat_map(|p| p.entries.iter().map(|e| (e.track, p.name.as_str())))
            .collect();
        let fine: Vec<Option<String>> = (0..lib.len())
            .map(|i| Some(named(&words(&lib, i)?, &[true; 4])))
            .collect();
        let mut size: HashMap<&str, usize> = HashMap::new();
        for f in fine.iter().flatten() {
            *size.entry(f).or_default() += 1;
        }
        let mut kept = 0;
        for (i, f) in fine.iter().enumerate() {
            let Some(f) = f else { continue };
            if size[f.as_str()] >= flags.mixed_below {
                assert_eq!(home.get(&i).copied(), Some(f.as_str()), "track {i}");
                kept += 1;
            } else {
                assert_ne!(home.get(&i).copied(), Some(f.as_str()), "track {i}");
            }
        }
        // Most of a library this size is in full-name lists, the rest in coarser ones.
        assert!(kept * 10 >= lib.len() * 8, "{kept} of {}", lib.len());
        assert!(share_in_mixed(&lists) < 0.01);
    }

    #[test]
    fn tempo_ordered_methods_step_at_most_half_a_shuffles_step() {
        // Several small libraries (where a mix wanders most), and larger ones.
        let libraries = (1..=8)
            .map(|seed| (93, seed))
            .chain([(600, 1), (600, 2), (2000, 1)]);
        for (n, seed) in libraries {
            let lib = space::tests_support::mixed(n, seed);
            for method in [Method::All, Method::Kmeans, Method::Mix] {
                let flags = Flags {
                    method,
                    ..Flags::default()
                };
                let lists = generate(&lib, &flags).unwrap();
                let (ours, shuffled) = vocab::tempo_flow(&lib, &lists, &mut rng::Rng::new(7));
                let (Some(ours), Some(shuffled)) = (ours, shuffled) else {
                    panic!("{} on {n} tracks: no tempo steps", method.name())
                };
                assert!(
                    ours <= shuffled / 2.0,
                    "{} on {n} tracks: median step {ours:.1} BPM, shuffled {shuffled:.1}",
                    method.name()
                );
            }
        }
    }

    #[test]
    fn generation_is_stored_and_an_update_appends_and_drops_deleted_tracks() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("db"), Tuning { cache_kib: 1024 }).unwrap();
        let first = add(&mut store, &(1..=8).collect::<Vec<_>>());
        let out = dir.path().join("playlists");
        let flags = Flags {
            mixed_below: 3,
            ..Flags::default()
        };
        let g = run(&store, &load(&store).unwrap(), &out, &flags).unwrap();
        assert!(!g.incremental);
        let before = saved_ids(&store);
        assert_eq!(before.len(), 2, "{before:?}");
        assert!(
            out.join("all")
                .join(format!("{}.m3u8", before[0].0))
                .exists()
        );
        // Track 2 leaves the library; tracks 9 and 10 arrive.
        {
            let b = store.batch().unwrap();
            b.removed(first[1]).unwrap();
            b.commit().unwrap();
        }
        let new = add(&mut store, &[9, 10]);
        let g = run(&store, &load(&store).unwrap(), &out, &flags).unwrap();
        assert!(g.incremental);
        let after = saved_ids(&store);
        let expect: Vec<(String, Vec<i64>)> = before
            .iter()
            .map(|(name, ids)| {
                let mut ids: Vec<i64> = ids.iter().copied().filter(|&i| i != first[1]).collect();
                // 10 is slow (even), 9 fast: each joins its kind, at the end (not in tempo
                // order, which would reshuffle the list).
                let joins = if name.starts_with("Slow") {
                    new[1]
                } else {
                    new[0]
                };
                ids.push(joins);
                (name.clone(), ids)
            })
            .collect();
        assert_eq!(after, expect);
        // Other settings regenerate instead.
        let other = Flags {
            mixed_below: 2,
            ..Flags::default()
        };
        assert!(
            !run(&store, &load(&store).unwrap(), &out, &other)
                .unwrap()
                .incremental
        );
    }
}
