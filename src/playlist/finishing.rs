//! Finishing: the rules every playlist leaves by.
//!
//! In: raw playlists from a method. Out: the same, finished. [`finish`] applies the
//! original's size rules to a partition (drop lists under `--min_playlist_size`, pour lists
//! under `--mixed_below` into `Mixed_Collection`, split lists over `--max_playlist_size` into
//! `_Part2`, `_Part3`...). [`tidy`] applies ours to any playlist: no recording twice (same
//! fingerprint, or same artist and title), at most `--max_per_artist` tracks of one artist,
//! and no artist twice in a row where another order avoids it.

use std::collections::HashMap;

use super::space::{Library, Recordings};
use super::vocab::{MIXED, by_tempo};
use super::{Flags, Playlist};

/// The size rules over a partition. `number_parts`: name every part `_PartN` (time slots;
/// not `Mixed_Collection`), else the first part keeps the plain name.
pub fn finish(
    lib: &Library,
    lists: Vec<Playlist>,
    flags: &Flags,
    number_parts: bool,
) -> Vec<Playlist> {
    let mut kept = Vec::new();
    let mut mixed = Playlist::new(MIXED, "small playlists merged");
    for p in lists {
        if p.entries.len() < flags.min_playlist_size {
            continue;
        }
        if p.entries.len() < flags.mixed_below || p.name == MIXED {
            let from = p.name;
            mixed.entries.extend(p.entries.into_iter().map(|mut e| {
                if from != MIXED {
                    e.why = format!("from {from} (too small alone): {}", e.why);
                }
                e
            }));
        } else {
            kept.push(p);
        }
    }
    if mixed.entries.len() >= flags.min_playlist_size {
        by_tempo(lib, &mut mixed);
        kept.push(mixed);
    }
    let max = flags.max_playlist_size.max(1);
    let mut out = Vec::with_capacity(kept.len());
    for p in kept {
        let number_parts = number_parts && p.name != MIXED;
        if p.entries.len() <= max && !number_parts {
            out.push(p);
            continue;
        }
        let Playlist {
            name,
            rule,
            entries,
        } = p;
        let mut rest = entries;
        let mut part = 1;
        loop {
            let tail = rest.split_off(rest.len().min(max));
            let part_name = if number_parts {
                format!("{name}_Part{part}")
            } else if part == 1 {
                name.clone()
            } else {
                format!("{name}_Part{part}")
            };
            out.push(Playlist {
                name: part_name,
                rule: rule.clone(),
                entries: rest,
            });
            if tail.is_empty() {
                break;
            }
            rest = tail;
            part += 1;
        }
    }
    out
}

/// The most tracks one artist may have in a playlist of `len`.
pub fn artist_cap(len: usize, max_per_artist: Option<usize>) -> usize {
    max_per_artist.unwrap_or((len / 4).max(3)).max(1)
}

/// No duplicate recordings, the per-artist cap, and no artist twice in a row where
/// avoidable. `keep_ends`: the first and last track stay where they are (a path's A and B).
pub fn tidy(lib: &Library, p: &mut Playlist, max_per_artist: Option<usize>, keep_ends: bool) {
    let n = p.entries.len();
    if n == 0 {
        return;
    }
    let cap = artist_cap(n, max_per_artist);
    let last = p.entries[n - 1].track;
    let first = p.entries[0].track;
    let mut seen = Recordings::default();
    let mut per_artist: HashMap<u32, usize> = HashMap::new();
    if keep_ends {
        seen.insert(lib, last);
        if let Some(a) = lib.artist[last] {
            per_artist.insert(a, 1);
        }
    }
    let mut i = 0;
    p.entries.retain(|e| {
        i += 1;
        let end = keep_ends && (i == 1 || i == n);
        if end && e.track == last {
            return true;
        }
        if !(seen.insert(lib, e.track) || end && e.track == first) {
            return false;
        }
        if let Some(a) = lib.artist[e.track] {
            let c = per_artist.entry(a).or_insert(0);
            if *c >= cap && !end {
                return false;
            }
            *c += 1;
        }
        true
    });
    space_artists(lib, p, keep_ends);
}

/// Moves the next track by someone else forward whenever an artist would play twice in a row.
fn space_artists(lib: &Library, p: &mut Playlist, keep_ends: bool) {
    let n = p.entries.len();
    let movable_end = if keep_ends { n.saturating_sub(1) } else { n };
    for i in 1..movable_end {
        let prev = lib.artist[p.entries[i - 1].track];
        if prev.is_none() || lib.artist[p.entries[i].track] != prev {
            continue;
        }
        if let Some(j) = (i + 1..movable_end).find(|&j| lib.artist[p.entries[j].track] != prev) {
            p.entries[i..=j].rotate_right(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::playlist::space::tests_support::library;

    fn list(name: &str, tracks: std::ops::Range<usize>) -> Playlist {
        let mut p = Playlist::new(name, "test");
        for t in tracks {
            p.push(t, "because");
        }
        p
    }

    fn names(lists: &[Playlist]) -> Vec<(String, usize)> {
        lists
            .iter()
            .map(|p| (p.name.clone(), p.entries.len()))
            .collect()
    }

    #[test]
    fn size_rules_drop_merge_and_split() {
        let lib = crate::playlist::space::tests_support::library(&[("a", "b", None); 70]);
        let flags = Flags {
            max_playlist_size: 20,
            ..Flags::default()
        };
        let lists = vec![
            list("Tiny", 0..2),     // dropped
            list("Small_A", 2..7),  // 5 -> mixed
            list("Small_B", 7..13), // 6 -> mixed
            list("Good", 13..25),   // 12 kept
            list("Huge", 25..70),   // 45 -> 20 + 20 + 5
        ];
        let out = finish(&lib, lists, &flags, false);
        assert_eq!(
            names(&out),
            vec![
                ("Good".to_string(), 12),
                ("Huge".to_string(), 20),
                ("Huge_Part2".to_string(), 20),
                ("Huge_Part3".to_string(), 5),
                ("Mixed_Collection".to_string(), 11),
            ]
        );
        let mixed = out.iter().find(|p| p.name == MIXED).map(|p| &p.entries);
        assert!(mixed.is_some_and(|m| m[0].why.starts_with("from Small_A")));
        // Time slots number every part.
        let out = finish(
            &lib,
            vec![list("TimeSlot_Night", 0..25), list("TimeSlot_Noon", 25..30)],
            &flags,
            true,
        );
        assert_eq!(
            names(&out),
            vec![
                ("TimeSlot_Night_Part1".to_string(), 20),
                ("TimeSlot_Night_Part2".to_string(), 5),
                ("Mixed_Collection".to_string(), 5)
            ]
        );
    }

    #[test]
    fn tidy_removes_duplicates_caps_artists_and_spaces_them() {
        // Tracks 0..8: artists a a a a b b c c; track 7 is the same recording as track 6.
        let lib = library(&[
            ("a", "one", None),
            ("a", "two", None),
            ("a", "three", None),
            ("a", "four", None),
            ("b", "one", None),
            ("b", "two", None),
            ("c", "one", Some(42)),
            ("c", "one again", Some(42)),
        ]);
        let mut p = list("x", 0..8);
        tidy(&lib, &mut p, Some(3), false);
        let order: Vec<usize> = p.entries.iter().map(|e| e.track).collect();
        // "a" capped at 3 (track 3 dropped), duplicate 7 dropped.
        assert_eq!(order.len(), 6);
        assert!(!order.contains(&3) && !order.contains(&7));
        for w in order.windows(2) {
            assert_ne!(lib.artist[w[0]], lib.artist[w[1]], "{order:?}");
        }
    }

    #[test]
    fn the_same_song_in_two_files_counts_once() {
        // Different content (flac and mp3 of one song), same artist and title; and a copy.
        let lib = library(&[
            ("Ann", "Song", Some(1)),
            ("ann ", "song", Some(2)),
            ("Bob", "Other", Some(1)),
            ("Bob", "Third", Some(3)),
        ]);
        let mut p = list("x", 0..4);
        tidy(&lib, &mut p, None, false);
        let order: Vec<usize> = p.entries.iter().map(|e| e.track).collect();
        assert_eq!(order, vec![0, 3]);
    }

    #[test]
    fn tidy_keeps_path_ends() {
        let lib = library(&[
            ("a", "1", None),
            ("a", "2", None),
            ("b", "3", None),
            ("a", "4", None),
        ]);
        let mut p = list("x", 0..4);
        tidy(&lib, &mut p, Some(1), true);
        let order: Vec<usize> = p.entries.iter().map(|e| e.track).collect();
        assert_eq!(order.first(), Some(&0));
        assert_eq!(order.last(), Some(&3));
    }
}
