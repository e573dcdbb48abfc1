//! The original's rule methods: `all` (tempo, energy, key, brightness buckets, coarsened
//! bucket by bucket where a library is too small for them), `time` (time-of-day slots),
//! `cache` (coarse bins merged when similar) and `tags` (genre and decade).
//!
//! In: a [`Library`]. Out: raw playlists in name order, each ordered by tempo, for
//! [`super::finishing::finish`].

use std::collections::BTreeMap;

use super::Playlist;
use super::space::Library;
use super::vocab::{MIXED, brightness_word, by_tempo, energy_word, tempo_word};
use crate::features::Scale;

fn into_lists(lib: &Library, map: BTreeMap<String, Playlist>) -> Vec<Playlist> {
    map.into_values()
        .map(|mut p| {
            by_tempo(lib, &mut p);
            p
        })
        .collect()
}

/// The levels of `all`, finest first: which parts of a track's name (tempo, energy, key and
/// mode, brightness) each keeps, and the rule of its lists in words. The key split goes first,
/// then brightness, then energy; the tempo word always stays.
const LEVELS: [([bool; 4], &str); 4] = [
    (
        [true, true, true, true],
        "tempo, energy, key and brightness buckets",
    ),
    (
        [true, true, false, true],
        "tempo, energy and brightness buckets, of tracks too few for a key split",
    ),
    (
        [true, true, false, false],
        "tempo and energy buckets, of tracks too few for a brightness split",
    ),
    (
        [true, false, false, false],
        "tempo buckets, of tracks too few for an energy split",
    ),
];

/// One part of a track's `all` name: the word, and the measurement behind it in words.
struct Part {
    word: String,
    why: String,
}

/// One track's name parts for `all`, in name order (tempo, energy, key and mode, brightness);
/// a part it has no measurement for is `None`. No tempo, no parts.
fn all_parts(lib: &Library, i: usize) -> Option<[Option<Part>; 4]> {
    let m = &lib.tracks[i].measured;
    let bpm = m.bpm?;
    let part = |word: &str, why: String| {
        Some(Part {
            word: word.to_string(),
            why,
        })
    };
    let key = match (m.key, m.scale) {
        (Some(k), Some(s)) => {
            let mode = if s.is_minor() { "Minor" } else { "Major" };
            part(
                &format!("{}_{mode}", k.name()),
                format!("key {} {}", k.name(), s.name()),
            )
        }
        _ => None,
    };
    Some([
        part(
            tempo_word(bpm),
            format!("tempo {bpm:.0} BPM → {}", tempo_word(bpm)),
        ),
        m.danceability.and_then(|d| {
            part(
                energy_word(d),
                format!("danceability {d:.2} → {}", energy_word(d)),
            )
        }),
        key,
        m.spectral_centroid.and_then(|c| {
            part(
                brightness_word(c),
                format!("centroid {c:.0} Hz → {}", brightness_word(c)),
            )
        }),
    ])
}

/// The parts a level keeps.
fn kept(parts: &[Option<Part>; 4], keep: [bool; 4]) -> impl Iterator<Item = &Part> {
    parts
        .iter()
        .zip(keep)
        .filter_map(|(p, k)| p.as_ref().filter(|_| k))
}

/// `all`: `{Tempo}_{Energy}_{Key}_{Major|Minor}_{Bright|Warm}`; tracks without a tempo are
/// left out, missing parts are left out of the name. A bucket under `small` tracks coarsens,
/// bucket by bucket: its tracks join their bucket without the key
/// (`{Tempo}_{Energy}_{Bright|Warm}`), if that is too small too their bucket without the
/// brightness (`{Tempo}_{Energy}`), then their tempo word alone; what is still too small there
/// is left for [`super::finishing::finish`] to pour into `Mixed_Collection`. So a large library
/// keeps its fine buckets and a small one gets tempo and energy lists. A coarser bucket of the
/// same name as a kept finer one (a track without a key) joins it.
pub fn all(lib: &Library, small: usize) -> Vec<Playlist> {
    let tracks: Vec<(usize, [Option<Part>; 4])> = (0..lib.len())
        .filter_map(|i| Some((i, all_parts(lib, i)?)))
        .collect();
    let mut lists: BTreeMap<String, Playlist> = BTreeMap::new();
    let mut pending: Vec<usize> = (0..tracks.len()).collect();
    // Each coarsened track's own bucket and its size, for its reason.
    let mut finest: Vec<Option<(String, usize)>> = vec![None; tracks.len()];
    for (level, (keep, rule)) in LEVELS.into_iter().enumerate() {
        let last = level + 1 == LEVELS.len();
        let mut groups: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for &t in &pending {
            let name: Vec<&str> = kept(&tracks[t].1, keep).map(|p| p.word.as_str()).collect();
            groups.entry(name.join("_")).or_default().push(t);
        }
        pending.clear();
        for (name, members) in groups {
            if !(last || members.len() >= small || lists.contains_key(&name)) {
                if level == 0 {
                    for &t in &members {
                        finest[t] = Some((name.clone(), members.len()));
                    }
                }
                pending.extend(members);
                continue;
            }
            let p = lists
                .entry(name.clone())
                .or_insert_with(|| Playlist::new(name, rule));
            for t in members {
                let (i, parts) = &tracks[t];
                let mut why = kept(parts, keep)
                    .map(|p| p.why.as_str())
                    .collect::<Vec<_>>()
                    .join("; ");
                if let Some((fine, n)) = &finest[t] {
                    why.push_str(&format!(
                        "; too few alike for {fine} ({n} track{}, a list needs {small})",
                        if *n == 1 { "" } else { "s" }
                    ));
                }
                p.push(*i, why);
            }
        }
    }
    into_lists(lib, lists)
}

/// A time-of-day slot: which tempos and energies suit it.
pub struct Slot {
    pub name: &'static str,
    pub hours: &'static str,
    pub bpm: (f64, f64),
    pub dance: (f64, f64),
}

pub const SLOTS: [Slot; 7] = [
    Slot {
        name: "Early_Morning",
        hours: "5-8",
        bpm: (60.0, 100.0),
        dance: (0.0, 0.75),
    },
    Slot {
        name: "Morning",
        hours: "8-11",
        bpm: (90.0, 120.0),
        dance: (0.6, 0.9),
    },
    Slot {
        name: "Midday",
        hours: "11-14",
        bpm: (100.0, 130.0),
        dance: (0.7, 1.2),
    },
    Slot {
        name: "Afternoon",
        hours: "14-17",
        bpm: (110.0, 140.0),
        dance: (0.75, 3.0),
    },
    Slot {
        name: "Evening",
        hours: "17-20",
        bpm: (95.0, 125.0),
        dance: (0.65, 1.0),
    },
    Slot {
        name: "Night",
        hours: "20-23",
        bpm: (118.0, 200.0),
        dance: (0.8, 3.0),
    },
    Slot {
        name: "Late_Night",
        hours: "23-5",
        bpm: (0.0, 100.0),
        dance: (0.0, 0.7),
    },
];

impl Slot {
    fn rule(&self) -> String {
        format!(
            "{} ({}h): {:.0}-{:.0} BPM, danceability {:.1}-{:.1}",
            self.name, self.hours, self.bpm.0, self.bpm.1, self.dance.0, self.dance.1
        )
    }

    /// How far a track is from the middle of the slot's rule (0 at the centre, 1 at an edge).
    fn distance(&self, bpm: f64, dance: f64) -> f64 {
        let centre =
            |(lo, hi): (f64, f64), v: f64| ((v - (lo + hi) / 2.0) / ((hi - lo) / 2.0)).abs();
        centre(self.bpm, bpm).max(centre(self.dance, dance))
    }
}

/// `time`: a playlist per slot of the tracks its rule accepts; a slot shorter than
/// `min_minutes` is filled with the nearest other tracks. Named `TimeSlot_<slot>`; finishing
/// adds `_PartN`. A track may suit more than one slot.
pub fn time(lib: &Library, min_minutes: f64) -> Vec<Playlist> {
    let with_bpm: Vec<(usize, f64, f64)> = lib
        .tracks
        .iter()
        .enumerate()
        .filter_map(|(i, t)| Some((i, t.measured.bpm?, t.measured.danceability.unwrap_or(0.75))))
        .collect();
    let mut out = Vec::new();
    for slot in &SLOTS {
        let mut p = Playlist::new(format!("TimeSlot_{}", slot.name), slot.rule());
        let mut seconds = 0.0;
        let mut others = Vec::new();
        for &(i, bpm, dance) in &with_bpm {
            let d = slot.distance(bpm, dance);
            if d <= 1.0 {
                seconds += lib.tracks[i].measured.duration_s;
                p.push(
                    i,
                    format!(
                        "{}: {bpm:.0} BPM, danceability {dance:.2} fit its rule",
                        slot.name
                    ),
                );
            } else {
                others.push((d, i));
            }
        }
        if seconds < min_minutes * 60.0 {
            others.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            for (d, i) in others {
                if seconds >= min_minutes * 60.0 {
                    break;
                }
                seconds += lib.tracks[i].measured.duration_s;
                p.push(
                    i,
                    format!(
                        "fills {} to its minimum length: nearest outside its rule ({:.1}× its width)",
                        slot.name, d
                    ),
                );
            }
        }
        by_tempo(lib, &mut p);
        out.push(p);
    }
    out
}

/// `cache`'s coarse bin of a track: tempo (0 slow, 1 mid, 2 fast), energy (0 low, 1 high),
/// mood (0 sad: minor, 1 happy: major, 2 unknown).
fn coarse(lib: &Library, i: usize) -> Option<[u8; 3]> {
    let m = &lib.tracks[i].measured;
    let bpm = m.bpm?;
    let tempo = (bpm >= 90.0) as u8 + (bpm >= 120.0) as u8;
    let energy = (m.danceability.unwrap_or(0.75) >= 0.75) as u8;
    let mood = match m.scale {
        Some(Scale::Minor) => 0,
        Some(Scale::Major) => 1,
        None => 2,
    };
    Some([tempo, energy, mood])
}

fn coarse_name(b: [u8; 3]) -> String {
    format!(
        "{}_{}_{}",
        ["Slow", "Mid", "Fast"][b[0] as usize],
        ["Low", "High"][b[1] as usize],
        ["Sad", "Happy", "Neutral"][b[2] as usize]
    )
}

/// How unlike two bins are: tempo steps weigh most, then energy, then mood.
fn bin_distance(a: [u8; 3], b: [u8; 3]) -> u32 {
    3 * a[0].abs_diff(b[0]) as u32 + 2 * a[1].abs_diff(b[1]) as u32 + (a[2] != b[2]) as u32
}

/// `cache`: coarse bins `{Slow|Mid|Fast}_{Low|High}_{Sad|Happy|Neutral}`; a bin under `small`
/// tracks joins the most similar other bin (the larger on a tie), until none is small.
pub fn cache(lib: &Library, small: usize) -> Vec<Playlist> {
    let mut bins: BTreeMap<[u8; 3], Playlist> = BTreeMap::new();
    for i in 0..lib.len() {
        if let Some(b) = coarse(lib, i) {
            bins.entry(b)
                .or_insert_with(|| {
                    Playlist::new(coarse_name(b), "coarse tempo, energy and mood bins")
                })
                .push(i, format!("bin {}", coarse_name(b)));
        }
    }
    while let Some((&from, _)) = bins
        .iter()
        .filter(|(_, p)| p.entries.len() < small)
        .min_by_key(|(k, p)| (p.entries.len(), **k))
    {
        let Some((&into, _)) = bins
            .iter()
            .filter(|(k, _)| **k != from)
            .min_by_key(|(k, p)| {
                (
                    bin_distance(from, **k),
                    std::cmp::Reverse(p.entries.len()),
                    **k,
                )
            })
        else {
            break;
        };
        let Some(moved) = bins.remove(&from) else {
            break;
        };
        if let Some(target) = bins.get_mut(&into) {
            let target_name = target.name.clone();
            target
                .entries
                .extend(moved.entries.into_iter().map(|mut e| {
                    e.why = format!("{}; merged into similar {target_name}", e.why);
                    e
                }));
        }
    }
    let map = bins.into_values().map(|p| (p.name.clone(), p)).collect();
    into_lists(lib, map)
}

/// A playlist-name-safe word: letters and digits, runs of anything else as one `_`.
pub fn name_word(s: &str) -> String {
    let mut out = String::new();
    for w in s
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        if !out.is_empty() {
            out.push('_');
        }
        let mut chars = w.chars();
        if let Some(c) = chars.next() {
            out.extend(c.to_uppercase());
            out.extend(chars.flat_map(|c| c.to_lowercase()));
        }
    }
    out
}

/// `tags`: `{Genre}_{Decade}s` from the file tags; a genre + decade under `min_tracks` is
/// folded into its genre; the tracks of a genre with fewer than `min_tracks` in all go into
/// `Mixed_Collection`.
pub fn tags(lib: &Library, min_tracks: usize) -> Vec<Playlist> {
    let mut groups: BTreeMap<(String, Option<u32>), Vec<usize>> = BTreeMap::new();
    for (i, t) in lib.tracks.iter().enumerate() {
        let genre = t
            .measured
            .tags
            .genre
            .as_deref()
            .and_then(|g| g.split([';', '/', ',']).next())
            .map(name_word)
            .filter(|g| !g.is_empty())
            .unwrap_or_else(|| "Unknown_Genre".to_string());
        let decade = t
            .measured
            .tags
            .year
            .filter(|y| (1000..3000).contains(y))
            .map(|y| y / 10 * 10);
        groups.entry((genre, decade)).or_default().push(i);
    }
    let mut genre_total: BTreeMap<String, usize> = BTreeMap::new();
    for ((genre, _), tracks) in &groups {
        *genre_total.entry(genre.clone()).or_default() += tracks.len();
    }
    let mut lists: BTreeMap<String, Playlist> = BTreeMap::new();
    let mut genre_only: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for ((genre, decade), tracks) in groups {
        match decade {
            Some(d) if tracks.len() >= min_tracks => {
                let name = format!("{genre}_{d}s");
                let mut p = Playlist::new(&name, "genre and decade from the tags");
                for i in tracks {
                    p.push(i, format!("genre {genre}, released in the {d}s"));
                }
                lists.insert(name, p);
            }
            _ => genre_only.entry(genre).or_default().extend(tracks),
        }
    }
    for (genre, tracks) in genre_only {
        let enough = genre_total.get(&genre).copied().unwrap_or(0) >= min_tracks;
        let name = if enough {
            genre.clone()
        } else {
            MIXED.to_string()
        };
        let p = lists
            .entry(name.clone())
            .or_insert_with(|| Playlist::new(&name, "genre from the tags"));
        for i in tracks {
            p.push(
                i,
                if enough {
                    format!("genre {genre}")
                } else {
                    format!("genre {genre} has fewer than {min_tracks} tracks")
                },
            );
        }
    }
    into_lists(lib, lists)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::playlist::space::tests_support::stored;

    /// Each list's name and length, in order.
    fn sizes(lists: &[Playlist]) -> Vec<(&str, usize)> {
        lists
            .iter()
            .map(|p| (p.name.as_str(), p.entries.len()))
            .collect()
    }

    fn names(lists: &[Playlist]) -> Vec<(&str, Vec<i64>)> {
        lists
            .iter()
            .map(|p| {
                (
                    p.name.as_str(),
                    p.entries.iter().map(|e| e.track as i64 + 1).collect(),
                )
            })
            .collect()
    }

    #[test]
    fn all_names_buckets_like_the_original_and_skips_missing_tempo() {
        let mut bright = stored(1, Some(118.0), "A", true, 1.0);
        bright.measured.spectral_centroid = Some(3100.0);
        let mut warm = stored(2, Some(70.0), "Eb", false, 0.5);
        warm.measured.spectral_centroid = Some(900.0);
        let mut twin = stored(3, Some(112.0), "A", true, 0.95);
        twin.measured.spectral_centroid = Some(2500.0);
        let no_tempo = stored(4, None, "C", false, 1.0);
        let fast = stored(5, Some(150.0), "F#", false, 2.2);
        let lib = Library::new(vec![bright, warm, twin, no_tempo, fast], &[]);
        let lists = all(&lib, 0);
        assert_eq!(
            names(&lists),
            vec![
                ("Slow_Chill_Eb_Major_Warm", vec![2]),
                // Ordered by tempo: 112 before 118.
                ("Upbeat_Energetic_A_Minor_Bright", vec![3, 1]),
                ("VeryFast_Intense_F#_Major_Bright", vec![5]),
            ]
        );
        assert!(lists[1].entries[1].why.contains("tempo 118 BPM → Upbeat"));
    }

    #[test]
    fn all_coarsens_each_too_small_bucket_key_first_then_brightness_then_energy() {
        let track = |id: i64, bpm: f64, key: &str, dance: f64, centroid: f64| {
            let mut t = stored(id, Some(bpm), key, false, dance);
            t.measured.spectral_centroid = Some(centroid);
            t
        };
        let keys = ["C", "D", "E", "F", "G"];
        let mut tracks = Vec::new();
        let mut id = 0;
        let mut add = |n: usize, f: &dyn Fn(i64, usize) -> crate::store::StoredTrack| {
            for k in 0..n {
                id += 1;
                tracks.push(f(id, k));
            }
        };
        // Ten alike: a fine bucket big enough to stay.
        add(10, &|id, _| {
            let mut t = track(id, 110.0, "A", 1.0, 2000.0);
            t.measured.scale = Some(Scale::Minor);
            t
        });
        // Ten without a key: Upbeat_Energetic_Bright from the start; two of the same tempo,
        // energy and brightness in keys of their own join them.
        add(10, &|id, _| track(id, 110.0, "", 1.0, 2000.0));
        add(2, &|id, k| track(id, 112.0, keys[k], 1.0, 2000.0));
        // Ten warm ones in five keys: together without the key.
        add(10, &|id, k| track(id, 115.0, keys[k % 5], 1.0, 900.0));
        // Five warm and five bright in five keys: together without key and brightness.
        add(10, &|id, k| {
            track(
                id,
                100.0,
                keys[k % 5],
                0.8,
                if k < 5 { 900.0 } else { 2000.0 },
            )
        });
        // Four slow ones of two energies: only the tempo word is left (finishing pours it
        // into Mixed_Collection).
        add(4, &|id, k| track(id, 70.0, "C", [0.5, 0.7][k % 2], 900.0));
        let lib = Library::new(tracks, &[]);
        let lists = all(&lib, 10);
        let sizes = sizes(&lists);
        assert_eq!(
            sizes,
            vec![
                ("Medium_Groovy", 10),
                ("Slow", 4),
                ("Upbeat_Energetic_A_Minor_Bright", 10),
                ("Upbeat_Energetic_Bright", 12),
                ("Upbeat_Energetic_Warm", 10),
            ]
        );
        // Each reason names what the list stands on, and nothing it does not.
        let why = |name: &str, track: usize| {
            lists
                .iter()
                .find(|p| p.name == name)
                .and_then(|p| p.entries.iter().find(|e| e.track == track))
                .map(|e| e.why.clone())
                .unwrap_or_default()
        };
        assert_eq!(
            why("Upbeat_Energetic_Bright", 20),
            "tempo 112 BPM → Upbeat; danceability 1.00 → Energetic; centroid 2000 Hz → Bright; \
             too few alike for Upbeat_Energetic_C_Major_Bright (1 track, a list needs 10)"
        );
        let medium = why("Medium_Groovy", 32);
        assert!(
            medium.starts_with("tempo 100 BPM → Medium; danceability 0.80 → Groovy; too few"),
            "{medium}"
        );
        assert!(!medium.contains("centroid") && !medium.contains("key "));
        // With a threshold of one track nothing coarsens.
        let fine = all(&lib, 1);
        assert_eq!(fine.len(), 1 + 1 + 2 + 5 + 10 + 2, "{:?}", names(&fine));
        assert!(
            fine.iter()
                .flat_map(|p| &p.entries)
                .all(|e| !e.why.contains("too few"))
        );
    }

    #[test]
    fn lists_climb_in_tempo_and_prefer_compatible_keys_nearby() {
        // Sorted by tempo: C (8B), F# (2B), G (9B), C# (3B): one compatible step in three.
        let lib = Library::new(
            vec![
                stored(1, Some(100.0), "C", false, 1.0),
                stored(2, Some(101.0), "F#", false, 1.0),
                stored(3, Some(102.0), "G", false, 1.0),
                stored(4, Some(103.0), "C#", false, 1.0),
                stored(5, Some(160.0), "C", false, 1.0),
            ],
            &[],
        );
        let mut p = Playlist::new("x", "");
        for i in [4, 3, 2, 1, 0] {
            p.push(i, "");
        }
        by_tempo(&lib, &mut p);
        let order: Vec<usize> = p.entries.iter().map(|e| e.track).collect();
        // C then G (compatible, 2 BPM); the far faster track stays last.
        assert_eq!(order, vec![0, 2, 1, 3, 4]);
    }

    #[test]
    fn time_slots_follow_their_rules_and_fill_to_the_minimum() {
        let lib = Library::new(
            vec![
                stored(1, Some(128.0), "C", false, 2.0), // Night, Afternoon
                stored(2, Some(70.0), "C", false, 0.5),  // Early_Morning, Late_Night
                stored(3, Some(105.0), "C", false, 1.2), // Morning, Midday, Evening...
            ],
            &[],
        );
        let no_fill = time(&lib, 0.0);
        let night = no_fill.iter().find(|p| p.name == "TimeSlot_Night");
        assert_eq!(night.map(|p| p.entries.len()), Some(1));
        assert_eq!(night.map(|p| p.entries[0].track), Some(0));
        let late = no_fill.iter().find(|p| p.name == "TimeSlot_Late_Night");
        assert_eq!(late.map(|p| p.entries[0].track), Some(1));
        // Each track is 200 s: a 6-minute minimum needs two tracks in every slot.
        for p in time(&lib, 6.0) {
            assert!(p.entries.len() >= 2, "{} {:?}", p.name, p.entries);
        }
    }

    #[test]
    fn cache_merges_small_bins_into_the_most_similar() {
        let mut tracks: Vec<_> = (1..=12)
            .map(|i| stored(i, Some(125.0), "C", false, 1.5))
            .collect();
        // One fast, high-energy minor track: its nearest bin is fast, high, major.
        tracks.push(stored(13, Some(130.0), "A", true, 1.5));
        // Twelve slow low major tracks stay apart.
        tracks.extend((14..=25).map(|i| stored(i, Some(70.0), "C", false, 0.5)));
        let lib = Library::new(tracks, &[]);
        let lists = cache(&lib, 10);
        let sizes = sizes(&lists);
        assert_eq!(sizes, vec![("Fast_High_Happy", 13), ("Slow_Low_Happy", 12)]);
    }

    #[test]
    fn tags_group_by_genre_and_decade_with_a_minimum() {
        let mut tracks = Vec::new();
        for i in 0..6 {
            let mut t = stored(i + 1, Some(100.0), "C", false, 1.0);
            t.measured.tags.genre = Some("hip hop".into());
            t.measured.tags.year = Some(if i < 4 { 1994 } else { 2003 });
            tracks.push(t);
        }
        let mut odd = stored(7, Some(100.0), "C", false, 1.0);
        odd.measured.tags.genre = Some("Polka".into());
        tracks.push(odd);
        let lib = Library::new(tracks, &[]);
        let lists = tags(&lib, 3);
        let sizes = sizes(&lists);
        // 2003 has two tracks: folded into the genre; Polka alone goes to Mixed_Collection.
        assert_eq!(
            sizes,
            vec![
                ("Hip_Hop", 2),
                ("Hip_Hop_1990s", 4),
                ("Mixed_Collection", 1)
            ]
        );
    }
}
