//! Incremental updates: when the method and its settings are unchanged, the stored playlists
//! keep their names and order; removed tracks leave; new tracks are appended to the playlist
//! they fit.
//!
//! In: the library, the stored playlists of the method and a fresh generation. Out: the
//! playlists to store. A new track fits the stored playlist of the same name as its fresh
//! playlist, else the stored playlist that holds most of its fresh playlist's other tracks;
//! tracks of a fresh playlist that matches nothing stored form a new playlist if there are
//! enough of them. A playlist that grows past `--max_playlist_size` hands its newest tracks on
//! to its next `_PartN`.

use std::collections::{HashMap, HashSet};

use super::space::{Library, Recordings};
use super::{Entry, Playlist};
use crate::store::SavedPlaylist;

pub fn merge(
    lib: &Library,
    saved: &[SavedPlaylist],
    fresh: Vec<Playlist>,
    min_playlist_size: usize,
    max_playlist_size: usize,
) -> Vec<Playlist> {
    let index: HashMap<i64, usize> = lib
        .tracks
        .iter()
        .enumerate()
        .map(|(i, t)| (t.id, i))
        .collect();
    // The stored playlists, without tracks that are no longer analysed.
    let mut lists: Vec<Playlist> = saved
        .iter()
        .map(|s| Playlist {
            name: s.name.clone(),
            rule: s.rule.clone(),
            entries: s
                .tracks
                .iter()
                .filter_map(|(id, why)| {
                    Some(Entry {
                        track: *index.get(id)?,
                        why: why.clone(),
                    })
                })
                .collect(),
        })
        .collect();
    // Where each known track is, and which stored playlist has each name.
    let mut home: HashMap<usize, usize> = HashMap::new();
    for (l, p) in lists.iter().enumerate() {
        for e in &p.entries {
            home.entry(e.track).or_insert(l);
        }
    }
    let known: HashSet<usize> = home.keys().copied().collect();
    let by_name: HashMap<String, usize> = lists
        .iter()
        .enumerate()
        .map(|(l, p)| (p.name.clone(), l))
        .collect();
    for f in fresh {
        let (old, new): (Vec<Entry>, Vec<Entry>) = f
            .entries
            .into_iter()
            .partition(|e| known.contains(&e.track));
        if new.is_empty() {
            continue;
        }
        let target = by_name.get(&f.name).copied().or_else(|| {
            let mut votes: HashMap<usize, usize> = HashMap::new();
            for e in &old {
                if let Some(&l) = home.get(&e.track) {
                    *votes.entry(l).or_default() += 1;
                }
            }
            votes
                .into_iter()
                .max_by_key(|&(l, n)| (n, std::cmp::Reverse(l)))
                .map(|(l, _)| l)
        });
        match target {
            Some(l) => {
                let present: HashSet<usize> = lists[l].entries.iter().map(|e| e.track).collect();
                let mut recordings = Recordings::default();
                for e in &lists[l].entries {
                    recordings.insert(lib, e.track);
                }
                lists[l]
                    .entries
                    .extend(new.into_iter().filter(|e| {
                        !present.contains(&e.track) && recordings.insert(lib, e.track)
                    }));
            }
            None if new.len() >= min_playlist_size => lists.push(Playlist {
                name: f.name,
                rule: f.rule,
                entries: new,
            }),
            None => {}
        }
    }
    lists.retain(|p| !p.entries.is_empty());
    overflow(&mut lists, max_playlist_size.max(1));
    lists
}

/// `(base, n)` of a name ending in `_PartN`, else `(name, 1)`.
pub fn part_of(name: &str) -> (&str, usize) {
    name.rsplit_once("_Part")
        .and_then(|(base, n)| Some((base, n.parse().ok()?)))
        .unwrap_or((name, 1))
}

/// A playlist that grew past `max` hands its newest tracks on to its next `_PartN`.
fn overflow(lists: &mut Vec<Playlist>, max: usize) {
    let mut i = 0;
    while i < lists.len() {
        if lists[i].entries.len() > max {
            let tail = lists[i].entries.split_off(max);
            let (base, part) = part_of(&lists[i].name);
            let next = format!("{base}_Part{}", part + 1);
            match lists.iter().position(|p| p.name == next) {
                Some(j) => lists[j].entries.extend(tail),
                None => {
                    let rule = lists[i].rule.clone();
                    lists.push(Playlist {
                        name: next,
                        rule,
                        entries: tail,
                    });
                }
            }
        }
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::playlist::space::tests_support::stored;
    use crate::playlist::{Flags, buckets};

    fn saved_from(lib: &Library, lists: &[Playlist]) -> Vec<SavedPlaylist> {
        lists
            .iter()
            .enumerate()
            .map(|(i, p)| SavedPlaylist {
                id: i as i64 + 1,
                method: "all".into(),
                name: p.name.clone(),
                rule: p.rule.clone(),
                settings: Flags::default().settings_text(),
                updated_at: 0,
                tracks: p
                    .entries
                    .iter()
                    .map(|e| (lib.tracks[e.track].id, e.why.clone()))
                    .collect(),
            })
            .collect()
    }

    fn ids(lib: &Library, p: &Playlist) -> Vec<i64> {
        p.entries.iter().map(|e| lib.tracks[e.track].id).collect()
    }

    #[test]
    fn update_keeps_names_and_order_appends_new_and_drops_removed() {
        let slow = |id| stored(id, Some(70.0 + id as f64 / 10.0), "C", false, 0.5);
        let fast = |id| stored(id, Some(150.0 - id as f64 / 10.0), "A", true, 2.0);
        let lib1 = Library::new(
            vec![slow(1), slow(2), slow(3), fast(4), fast(5), fast(6)],
            &[],
        );
        let first = buckets::all(&lib1, 3);
        // Pretend the user's order differs from what a fresh run would give.
        let mut stored_lists = first.clone();
        stored_lists[0].entries.reverse();
        let saved = saved_from(&lib1, &stored_lists);
        // Track 2 is deleted; 7 (slow) and 8 (fast) and a brand-new kind (9, 10, 11) arrive.
        let mid = |id| stored(id, Some(110.0), "D", false, 0.8);
        let lib2 = Library::new(
            vec![
                slow(1),
                slow(3),
                fast(4),
                fast(5),
                fast(6),
                slow(7),
                fast(8),
                mid(9),
                mid(10),
                mid(11),
            ],
            &[],
        );
        let merged = merge(&lib2, &saved, buckets::all(&lib2, 3), 3, 500);
        assert_eq!(merged.len(), 3);
        assert_eq!(merged[0].name, stored_lists[0].name);
        assert_eq!(ids(&lib2, &merged[0]), vec![3, 1, 7]);
        assert_eq!(merged[1].name, stored_lists[1].name);
        // Fast tracks sort by descending id in a fresh run (higher id, lower tempo): the
        // stored order 6, 5, 4 stays, 8 is appended.
        assert_eq!(ids(&lib2, &merged[1]), vec![6, 5, 4, 8]);
        assert_eq!(merged[2].name, "Upbeat_Groovy_D_Major_Bright");
        assert_eq!(ids(&lib2, &merged[2]), vec![9, 10, 11]);

        // With room for three per playlist, the grown lists hand their newest on to _Part2.
        let merged = merge(&lib2, &saved, buckets::all(&lib2, 3), 3, 3);
        let sizes: Vec<(&str, Vec<i64>)> = merged
            .iter()
            .map(|p| (p.name.as_str(), ids(&lib2, p)))
            .collect();
        assert_eq!(sizes[1].1, vec![6, 5, 4]);
        assert!(
            sizes.contains(&("VeryFast_Intense_A_Minor_Bright_Part2", vec![8])),
            "{sizes:?}"
        );
        assert_eq!(part_of("TimeSlot_Night_Part2"), ("TimeSlot_Night", 2));
        assert_eq!(part_of("Night_Party"), ("Night_Party", 1));
    }
}
