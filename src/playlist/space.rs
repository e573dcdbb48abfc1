//! The feature space every playlist method works in.
//!
//! In: the analysed tracks from [`crate::store::Store::analysed`], their content fingerprints
//! and, for full-mode tracks, their [`Sound`]. Out: a [`Library`]: per track a min-max-scaled,
//! weighted feature vector (bpm, spectral centroid, danceability, loudness, onset rate,
//! zero-crossing rate, then the [`SOUND_DIMS`] embedding coordinates), its key on the Camelot
//! wheel, an energy figure, its top MusiCNN tags, and the identity used to spot the same
//! recording twice.
//! Also resolves a path as a user types it (`--seed`, `--from`, `--to`) to a track.

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::path::Path;

use super::sound::{SOUND_DIMS, Sound};
use crate::features::{PitchClass, Scale};
use crate::store::StoredTrack;

/// DSP features in the scaled vector.
pub const FEATURE_DIMS: usize = 6;
/// Dimensions of the scaled feature vector: the DSP features, then the sound.
pub const DIMS: usize = FEATURE_DIMS + SOUND_DIMS;
/// Where the sound's coordinates sit in the vector.
pub const SOUND_RANGE: std::ops::Range<usize> = FEATURE_DIMS..DIMS;
/// Weights of bpm, centroid, danceability, loudness, onset rate and zcr in distances: tempo
/// and groove carry most of what a listener hears as "the same kind of song". (The sound
/// carries its own weight, [`super::sound::SOUND_WEIGHT`].)
pub const WEIGHTS: [f32; FEATURE_DIMS] = [2.0, 1.0, 1.5, 1.0, 1.0, 0.5];

/// A key on the Camelot wheel: `number` 1..=12, `minor` for the A ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Camelot {
    pub number: u8,
    pub minor: bool,
}

impl Camelot {
    /// From a pitch class (0 = C) and mode.
    pub fn new(tonic: u8, minor: bool) -> Camelot {
        // A minor shares its number with its relative major (three semitones up).
        let major = if minor { (tonic + 3) % 12 } else { tonic % 12 };
        // Each step of the wheel is a fifth (7 semitones); C major is 8B.
        let number = ((major as u32 * 7 + 7) % 12 + 1) as u8;
        Camelot { number, minor }
    }

    /// Of a measured key, when both its tonic and its mode are known.
    pub fn of(key: Option<PitchClass>, scale: Option<Scale>) -> Option<Camelot> {
        Some(Camelot::new(key?.index() as u8, scale?.is_minor()))
    }

    /// A DJ can mix from `self` into `other`: the same key, its relative major/minor, or one
    /// step round the wheel in the same ring.
    pub fn compatible(self, other: Camelot) -> bool {
        if self.minor == other.minor {
            let d = (self.number as i32 - other.number as i32).rem_euclid(12);
            d == 0 || d == 1 || d == 11
        } else {
            self.number == other.number
        }
    }
}

impl std::fmt::Display for Camelot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}", self.number, if self.minor { 'A' } else { 'B' })
    }
}

/// The analysed library, ready for the playlist methods. Index `i` of every vector is the
/// same track.
pub struct Library {
    pub tracks: Vec<StoredTrack>,
    /// Scaled, weighted features; a missing measurement sits at the middle of its range, a
    /// missing sound (fast mode) at the library's mean sound.
    pub scaled: Vec<[f32; DIMS]>,
    /// The MusiCNN top tags, full-mode tracks only.
    pub sound: Vec<Option<Sound>>,
    pub camelot: Vec<Option<Camelot>>,
    /// 0..1: danceability and loudness, scaled over the library and averaged.
    pub energy: Vec<f32>,
    /// Who made the recording, if tagged: one number per artist name (case and surrounding
    /// space ignored), so comparing and counting artists costs no string work.
    pub artist: Vec<Option<u32>>,
    /// What identifies the recording: its content fingerprint and its artist + title.
    pub recording: Vec<Recording>,
}

/// One key that says "the same recording".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordingId {
    /// The same content (a copy of the file).
    Fingerprint(i64),
    /// A hash of the lower-cased artist and title (the same song in another file or format).
    Named(u64),
}

/// The keys of one track: two tracks are the same recording when any key matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Recording {
    pub fingerprint: Option<i64>,
    pub named: Option<u64>,
}

impl Recording {
    fn keys(self) -> impl Iterator<Item = RecordingId> {
        self.fingerprint
            .map(RecordingId::Fingerprint)
            .into_iter()
            .chain(self.named.map(RecordingId::Named))
    }
}

/// The recordings a playlist already holds.
#[derive(Default)]
pub struct Recordings(HashSet<RecordingId>);

impl Recordings {
    /// Track `i`'s recording is already in.
    pub fn contains(&self, lib: &Library, i: usize) -> bool {
        lib.recording[i].keys().any(|k| self.0.contains(&k))
    }

    /// Adds track `i`'s recording; false if it was already in.
    pub fn insert(&mut self, lib: &Library, i: usize) -> bool {
        let fresh = !self.contains(lib, i);
        self.0.extend(lib.recording[i].keys());
        fresh
    }
}

fn raw(t: &StoredTrack) -> [Option<f64>; FEATURE_DIMS] {
    let m = &t.measured;
    [
        m.bpm,
        m.spectral_centroid,
        m.danceability,
        m.loudness_lufs,
        m.onset_rate,
        m.zcr,
    ]
}

impl Library {
    /// Without sound (a fast-mode library). `fingerprints`: `(track id, fingerprint)` for
    /// tracks that have one.
    pub fn new(tracks: Vec<StoredTrack>, fingerprints: &[(i64, i64)]) -> Library {
        Self::with_sound(tracks, fingerprints, &HashMap::new())
    }

    /// `sounds`: by track id, from [`super::sound::load`].
    pub fn with_sound(
        tracks: Vec<StoredTrack>,
        fingerprints: &[(i64, i64)],
        sounds: &HashMap<i64, Sound>,
    ) -> Library {
        let mut lo = [f64::INFINITY; FEATURE_DIMS];
        let mut hi = [f64::NEG_INFINITY; FEATURE_DIMS];
        for t in &tracks {
            for (d, v) in raw(t).iter().enumerate() {
                if let Some(v) = v.filter(|v| v.is_finite()) {
                    lo[d] = lo[d].min(v);
                    hi[d] = hi[d].max(v);
                }
            }
        }
        let scale = |d: usize, v: Option<f64>| -> f32 {
            match v.filter(|v| v.is_finite()) {
                Some(v) if hi[d] > lo[d] => ((v - lo[d]) / (hi[d] - lo[d])) as f32,
                _ => 0.5,
            }
        };
        let fp: HashMap<i64, i64> = fingerprints.iter().copied().collect();
        let mut artists: HashMap<String, u32> = HashMap::new();
        let n = tracks.len();
        let mut lib = Library {
            scaled: Vec::with_capacity(n),
            sound: Vec::with_capacity(n),
            camelot: Vec::with_capacity(n),
            energy: Vec::with_capacity(n),
            artist: Vec::with_capacity(n),
            recording: Vec::with_capacity(n),
            tracks: Vec::new(),
        };
        for t in &tracks {
            let r = raw(t);
            let mut v = [0f32; DIMS];
            for d in 0..FEATURE_DIMS {
                v[d] = scale(d, r[d]) * WEIGHTS[d];
            }
            let sound = sounds.get(&t.id).copied();
            if let Some(s) = &sound {
                v[SOUND_RANGE].copy_from_slice(&s.coords);
            }
            lib.scaled.push(v);
            lib.sound.push(sound);
            lib.energy.push((scale(2, r[2]) + scale(3, r[3])) / 2.0);
            let m = &t.measured;
            lib.camelot.push(Camelot::of(m.key, m.scale));
            let clean = |s: &Option<String>| {
                s.as_deref()
                    .map(|a| a.trim().to_lowercase())
                    .filter(|a| !a.is_empty())
            };
            let artist = clean(&m.tags.artist);
            let named = match (&artist, clean(&m.tags.title)) {
                (Some(a), Some(title)) => {
                    let mut h = std::hash::DefaultHasher::new();
                    a.hash(&mut h);
                    title.hash(&mut h);
                    Some(h.finish())
                }
                _ => None,
            };
            lib.recording.push(Recording {
                fingerprint: fp.get(&t.id).copied(),
                named,
            });
            lib.artist.push(artist.map(|a| {
                let next = artists.len() as u32;
                *artists.entry(a).or_insert(next)
            }));
        }
        lib.tracks = tracks;
        lib
    }

    pub fn len(&self) -> usize {
        self.tracks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tracks.is_empty()
    }

    /// Squared distance in the scaled feature space.
    pub fn dist2(&self, a: usize, b: usize) -> f32 {
        dist2(&self.scaled[a], &self.scaled[b])
    }

    pub fn bpm(&self, i: usize) -> Option<f64> {
        self.tracks[i].measured.bpm
    }

    /// The track at `path` as a user typed it (relative to the working directory or
    /// absolute), or a message saying why there is none.
    pub fn find(&self, path: &Path) -> Result<usize, String> {
        let absolute = std::path::absolute(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let canonical = std::fs::canonicalize(path).ok();
        // Stored paths are UTF-8 text: compare text, not path components (100,000 tracks).
        let wanted: Vec<&str> = [Some(absolute.as_path()), canonical.as_deref()]
            .into_iter()
            .flatten()
            .filter_map(Path::to_str)
            .collect();
        self.tracks
            .iter()
            .position(|t| wanted.contains(&t.path.as_str()))
            .ok_or_else(|| {
                if path.exists() {
                    format!(
                        "{} is not an analysed track of the library (run playlista -a first, or \
                         see Failed_Files.m3u)",
                        path.display()
                    )
                } else {
                    format!("{}: no such file", path.display())
                }
            })
    }
}

pub fn dist2(a: &[f32; DIMS], b: &[f32; DIMS]) -> f32 {
    let mut s = 0.0;
    for d in 0..DIMS {
        let x = a[d] - b[d];
        s += x * x;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn camelot_numbers_match_the_wheel() {
        // C major 8B, A minor 8A, G major 9B, E minor 9A, B major 1B, Ab minor 1A, F major 7B.
        assert_eq!(Camelot::new(0, false).to_string(), "8B");
        assert_eq!(Camelot::new(9, true).to_string(), "8A");
        assert_eq!(Camelot::new(7, false).to_string(), "9B");
        assert_eq!(Camelot::new(4, true).to_string(), "9A");
        assert_eq!(Camelot::new(11, false).to_string(), "1B");
        assert_eq!(Camelot::new(8, true).to_string(), "1A");
        assert_eq!(Camelot::new(5, false).to_string(), "7B");
        assert_eq!(
            Camelot::of(Some(PitchClass::Eb), Some(Scale::Minor)),
            Some(Camelot::new(3, true))
        );
        assert_eq!(Camelot::of(Some(PitchClass::Eb), None), None);
    }

    #[test]
    fn camelot_compatibility() {
        let c = Camelot::new(0, false); // 8B
        assert!(c.compatible(Camelot::new(0, false))); // same
        assert!(c.compatible(Camelot::new(9, true))); // A minor 8A
        assert!(c.compatible(Camelot::new(7, false))); // G 9B
        assert!(c.compatible(Camelot::new(5, false))); // F 7B
        assert!(!c.compatible(Camelot::new(2, false))); // D 10B
        assert!(!c.compatible(Camelot::new(4, true))); // E minor 9A
        assert!(!c.compatible(Camelot::new(1, false))); // Db 3B
        // Across the 12 -> 1 seam: E major 12B and B major 1B.
        assert!(Camelot::new(4, false).compatible(Camelot::new(11, false)));
    }
}

/// Hand-made libraries for the tests of every playlist method.
#[cfg(test)]
pub mod tests_support {
    use super::*;
    use crate::features::Record;

    /// A track with these features (the others in the middle of the range).
    pub fn stored(id: i64, bpm: Option<f64>, key: &str, minor: bool, dance: f64) -> StoredTrack {
        StoredTrack {
            id,
            path: format!("/music/t{id:03}.flac"),
            size: 5_000_000,
            mtime_ns: 1_700_000_000_000_000_000,
            identity: None,
            span: None,
            measured: Record {
                duration_s: 200.0,
                sample_rate: 44_100,
                channels: 2,
                codec: "flac".into(),
                bpm,
                bpm_confidence: Some(0.9),
                key: PitchClass::from_name(key),
                scale: Some(Scale::new(minor)),
                key_strength: Some(0.8),
                loudness_lufs: Some(-12.0),
                loudness_rms_db: Some(-14.0),
                danceability: Some(dance),
                onset_rate: Some(3.0),
                zcr: Some(0.05),
                spectral_centroid: Some(2000.0),
                ..Record::default()
            },
        }
    }

    /// `n` tracks of a mixed library, drawn from `seed`: tempo 60..180 BPM (one in thirty
    /// without), any key and mode, danceability 0.5..1.4, centroid 500..4,000 Hz, the other
    /// features over their ranges, three tracks per artist on average.
    pub fn mixed(n: usize, seed: u64) -> Library {
        let mut rng = crate::playlist::rng::Rng::new(seed);
        let mut range = |lo: f64, hi: f64| lo + (hi - lo) * rng.unit();
        let tracks = (0..n)
            .map(|i| {
                let bpm = (range(0.0, 30.0) >= 1.0).then(|| range(60.0, 180.0));
                let mut t = stored(i as i64 + 1, bpm, "C", false, range(0.5, 1.4));
                let m = &mut t.measured;
                m.key = Some(PitchClass::from_index(range(0.0, 12.0) as usize));
                m.scale = Some(Scale::new(range(0.0, 1.0) < 0.4));
                m.spectral_centroid = Some(range(500.0, 4000.0));
                m.loudness_lufs = Some(range(-25.0, -6.0));
                m.onset_rate = Some(range(1.0, 6.0));
                m.zcr = Some(range(0.02, 0.15));
                m.tags.artist = Some(format!("Artist {}", range(0.0, n as f64 / 3.0) as usize));
                m.tags.title = Some(format!("Track {i}"));
                t
            })
            .collect();
        Library::new(tracks, &[])
    }

    /// Tracks by artist and title, with an optional content fingerprint.
    pub fn library(tracks: &[(&str, &str, Option<i64>)]) -> Library {
        let mut fps = Vec::new();
        let stored = tracks
            .iter()
            .enumerate()
            .map(|(i, (artist, title, fp))| {
                let mut t = stored(i as i64 + 1, Some(100.0 + i as f64), "C", false, 1.0);
                t.measured.tags.artist = Some(artist.to_string());
                t.measured.tags.title = Some(title.to_string());
                if let Some(f) = fp {
                    fps.push((t.id, *f));
                }
                t
            })
            .collect();
        Library::new(stored, &fps)
    }
}
