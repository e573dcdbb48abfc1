//! Artists and albums of one catalog snapshot, as Subsonic browses them, built once per
//! snapshot (on the first Subsonic request after a reload) and kept beside it.
//!
//! In: the snapshot's tracks and their tags. Out: [`Index`]: artists and albums sorted by
//! name, each track's album, genres, what search matches against, and (built on first use)
//! each artist's mean position in the feature space, for similar artists.
//!
//! Grouping: a track's artist is its album artist, else its artist, else "Unknown Artist"; its
//! album is its album tag under that artist, else its folder's name (so untagged files still
//! browse as one album per folder). Ids are hashes of those names (`ar-…`, `al-…`; a folder
//! album also hashes its folder), so they stay the same across snapshots and restarts while
//! the tags do; song ids are the track ids, which never look like these.

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::playlist::space::{DIMS, Library, dist2};

pub const UNKNOWN_ARTIST: &str = "Unknown Artist";
/// Leading words left out when sorting and indexing artist names.
pub const IGNORED_ARTICLES: &str = "The El La Los Las Le Les";

pub struct Artist {
    pub id: String,
    pub name: String,
    /// Indices into [`Index::albums`], by name.
    pub albums: Vec<usize>,
    /// Lower case, for search.
    lower: String,
}

pub struct Album {
    pub id: String,
    pub name: String,
    /// Index into [`Index::artists`].
    pub artist: usize,
    /// Track indices in play order (disc, track number, then file name).
    pub tracks: Vec<usize>,
    pub year: Option<u32>,
    pub genre: Option<String>,
    pub duration_s: f64,
    /// The highest track id: ids grow as files are added, so this orders "newest".
    pub newest_track: i64,
    lower: String,
}

pub struct Genre {
    pub name: String,
    pub songs: usize,
    pub albums: usize,
}

pub struct Index {
    /// By name, articles ignored.
    pub artists: Vec<Artist>,
    /// By name, then artist.
    pub albums: Vec<Album>,
    /// Per track index, its album's index.
    pub album_of: Vec<usize>,
    pub genres: Vec<Genre>,
    artist_by_key: HashMap<u64, usize>,
    album_by_key: HashMap<u64, usize>,
    /// Per track: lower-case title, artists, album and file name; built by the first search.
    search: OnceLock<Vec<String>>,
    /// Per artist, the mean of its tracks' scaled feature vectors; built by the first request
    /// for similar artists.
    centroids: OnceLock<Vec<[f32; DIMS]>>,
}

fn hash(parts: &[&[u8]]) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    for p in parts {
        h.update(p);
        h.update(&[0]);
    }
    h.digest()
}

fn tag(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// The name without a leading ignored article, lower case: what artists sort by.
pub fn sort_name(name: &str) -> String {
    let lower = name.trim().to_lowercase();
    for article in IGNORED_ARTICLES.split(' ') {
        let a = article.to_lowercase();
        if let Some(rest) = lower.strip_prefix(&a) {
            if rest.starts_with(' ') && !rest.trim().is_empty() {
                return rest.trim_start().to_string();
            }
        }
    }
    lower
}

impl Index {
    pub fn build(lib: &Library) -> Index {
        struct Group {
            key: u64,
            artist_key: u64,
            name: String,
            tracks: Vec<usize>,
        }
        let mut artist_names: HashMap<u64, String> = HashMap::new();
        let mut groups: Vec<Group> = Vec::new();
        let mut group_of_key: HashMap<u64, usize> = HashMap::new();
        // Tag texts as written, so that lower-casing and hashing happen once per distinct text.
        let mut artist_key_of: HashMap<&str, u64> = HashMap::new();
        let mut group_of_text: HashMap<(u64, bool, &str), usize> = HashMap::new();
        let mut group_of_track = Vec::with_capacity(lib.len());
        for (i, t) in lib.tracks.iter().enumerate() {
            let tags = &t.measured.tags;
            let artist = tag(&tags.album_artist)
                .or(tag(&tags.artist))
                .unwrap_or(UNKNOWN_ARTIST);
            let artist_key = *artist_key_of.entry(artist).or_insert_with(|| {
                let key = hash(&[artist.to_lowercase().as_bytes()]);
                artist_names
                    .entry(key)
                    .or_insert_with(|| artist.to_string());
                key
            });
            let album = tag(&tags.album);
            let folder = t.path.rsplit_once('/').map_or("", |(dir, _)| dir);
            let text = (artist_key, album.is_some(), album.unwrap_or(folder));
            let g = match group_of_text.get(&text) {
                Some(&g) => g,
                None => {
                    let (key, name) = match album {
                        Some(album) => (
                            hash(&[
                                &artist_key.to_le_bytes(),
                                b"tag",
                                album.to_lowercase().as_bytes(),
                            ]),
                            album,
                        ),
                        None => (
                            hash(&[&artist_key.to_le_bytes(), b"dir", folder.as_bytes()]),
                            match folder.rsplit('/').next() {
                                Some(name) if !name.is_empty() => name,
                                _ => "Unknown Album",
                            },
                        ),
                    };
                    let g = *group_of_key.entry(key).or_insert_with(|| {
                        groups.push(Group {
                            key,
                            artist_key,
                            name: name.to_string(),
                            tracks: Vec::new(),
                        });
                        groups.len() - 1
                    });
                    group_of_text.insert(text, g);
                    g
                }
            };
            groups[g].tracks.push(i);
            group_of_track.push(g);
        }

        // Artists by sort name; their position is their index.
        let mut artist_keys: Vec<(String, u64)> = artist_names
            .iter()
            .map(|(&k, name)| (sort_name(name), k))
            .collect();
        artist_keys.sort();
        let artist_by_key: HashMap<u64, usize> = artist_keys
            .iter()
            .enumerate()
            .map(|(pos, &(_, k))| (k, pos))
            .collect();
        let mut artists: Vec<Artist> = artist_keys
            .iter()
            .map(|(_, k)| {
                let name = artist_names.remove(k).unwrap_or_default();
                Artist {
                    id: format!("ar-{k:016x}"),
                    lower: name.to_lowercase(),
                    name,
                    albums: Vec::new(),
                }
            })
            .collect();

        // Albums by name, then artist.
        let mut order: Vec<usize> = (0..groups.len()).collect();
        let album_sort: Vec<String> = groups.iter().map(|g| g.name.to_lowercase()).collect();
        let artist_of: Vec<usize> = groups
            .iter()
            .map(|g| artist_by_key[&g.artist_key])
            .collect();
        order.sort_by(|&a, &b| {
            album_sort[a]
                .cmp(&album_sort[b])
                .then(artist_of[a].cmp(&artist_of[b]))
        });
        let mut position = vec![0usize; groups.len()];
        for (pos, &g) in order.iter().enumerate() {
            position[g] = pos;
        }
        let album_by_key = order
            .iter()
            .enumerate()
            .map(|(pos, &g)| (groups[g].key, pos))
            .collect();
        let mut albums: Vec<Album> = Vec::with_capacity(groups.len());
        for &g in &order {
            let group = &mut groups[g];
            let mut tracks = std::mem::take(&mut group.tracks);
            tracks.sort_by(|&a, &b| {
                // An untagged disc is the first; an untagged track goes after the numbered.
                let number = |i: usize| {
                    let tags = &lib.tracks[i].measured.tags;
                    (
                        tags.disc_number.unwrap_or(0),
                        tags.track_number.unwrap_or(u32::MAX),
                    )
                };
                number(a)
                    .cmp(&number(b))
                    .then_with(|| lib.tracks[a].path.cmp(&lib.tracks[b].path))
            });
            let artist = artist_of[g];
            artists[artist].albums.push(albums.len());
            albums.push(Album {
                id: format!("al-{:016x}", group.key),
                lower: album_sort[g].clone(),
                name: std::mem::take(&mut group.name),
                artist,
                year: tracks
                    .iter()
                    .find_map(|&i| lib.tracks[i].measured.tags.year),
                genre: tracks
                    .iter()
                    .find_map(|&i| lib.tracks[i].measured.tags.genre.clone()),
                duration_s: tracks
                    .iter()
                    .map(|&i| lib.tracks[i].measured.duration_s)
                    .sum(),
                newest_track: tracks.iter().map(|&i| lib.tracks[i].id).max().unwrap_or(0),
                tracks,
            });
        }
        let album_of = group_of_track.iter().map(|&g| position[g]).collect();

        let mut genres: HashMap<&str, (usize, usize)> = HashMap::new();
        for a in &albums {
            let mut seen: Vec<&str> = Vec::new();
            for &i in &a.tracks {
                if let Some(g) = tag(&lib.tracks[i].measured.tags.genre) {
                    let e = genres.entry(g).or_default();
                    e.0 += 1;
                    if !seen.contains(&g) {
                        seen.push(g);
                        e.1 += 1;
                    }
                }
            }
        }
        let mut genres: Vec<Genre> = genres
            .into_iter()
            .map(|(name, (songs, albums))| Genre {
                name: name.to_string(),
                songs,
                albums,
            })
            .collect();
        genres.sort_by_key(|g| g.name.to_lowercase());

        Index {
            artists,
            albums,
            album_of,
            genres,
            artist_by_key,
            album_by_key,
            search: OnceLock::new(),
            centroids: OnceLock::new(),
        }
    }

    pub fn artist(&self, id: &str) -> Option<usize> {
        let key = u64::from_str_radix(id.strip_prefix("ar-")?, 16).ok()?;
        self.artist_by_key.get(&key).copied()
    }

    pub fn album(&self, id: &str) -> Option<usize> {
        let key = u64::from_str_radix(id.strip_prefix("al-")?, 16).ok()?;
        self.album_by_key.get(&key).copied()
    }

    /// The artist of this name (case and surrounding space ignored), if albums are filed
    /// under it.
    pub fn artist_named(&self, name: &str) -> Option<usize> {
        let key = hash(&[name.trim().to_lowercase().as_bytes()]);
        self.artist_by_key.get(&key).copied()
    }

    /// Up to `count` artists whose music sits nearest artist `a`'s in the feature space of
    /// `lib` (the library this index was built from), nearest first: the distance between
    /// the means of their tracks' scaled vectors. Neither `a` nor the unknown artist (a mix
    /// of whatever is untagged) is among them.
    pub fn similar_artists(&self, lib: &Library, a: usize, count: usize) -> Vec<usize> {
        let centroids = self.centroids.get_or_init(|| {
            self.artists
                .iter()
                .map(|artist| {
                    let mut mean = [0f32; DIMS];
                    let tracks = artist.albums.iter().flat_map(|&al| &self.albums[al].tracks);
                    let n = tracks.clone().count().max(1) as f32;
                    for &i in tracks {
                        for (m, v) in mean.iter_mut().zip(&lib.scaled[i]) {
                            *m += v / n;
                        }
                    }
                    mean
                })
                .collect()
        });
        let Some(from) = centroids.get(a) else {
            return Vec::new();
        };
        let mut near: Vec<(f32, usize)> = centroids
            .iter()
            .enumerate()
            .filter(|&(b, _)| b != a && self.artists[b].name != UNKNOWN_ARTIST)
            .map(|(b, c)| (dist2(from, c), b))
            .collect();
        near.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
        near.into_iter().take(count).map(|(_, b)| b).collect()
    }

    /// Whether track `i` of `lib` (the library this index was built from) matches every word
    /// of `words` (lower case) in its title, artist, album artist, album or file name.
    pub fn track_matches(&self, lib: &Library, i: usize, words: &[String]) -> bool {
        if words.is_empty() {
            return true;
        }
        let search = self.search.get_or_init(|| {
            lib.tracks
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    let tags = &t.measured.tags;
                    let album = &self.albums[self.album_of[i]];
                    let file = t.path.rsplit('/').next().unwrap_or("");
                    let mut text = String::with_capacity(96);
                    for part in [
                        tag(&tags.title).unwrap_or(""),
                        tag(&tags.artist).unwrap_or(""),
                        &self.artists[album.artist].name,
                        &album.name,
                        file,
                    ] {
                        text.extend(part.chars().flat_map(char::to_lowercase));
                        text.push('\n');
                    }
                    text
                })
                .collect()
        });
        search
            .get(i)
            .is_some_and(|text| words.iter().all(|w| text.contains(w.as_str())))
    }

    pub fn artist_matches(&self, a: usize, words: &[String]) -> bool {
        words
            .iter()
            .all(|w| self.artists[a].lower.contains(w.as_str()))
    }

    pub fn album_matches(&self, a: usize, words: &[String]) -> bool {
        words
            .iter()
            .all(|w| self.albums[a].lower.contains(w.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::playlist::space::tests_support::stored;

    fn track(
        id: i64,
        path: &str,
        artist: Option<&str>,
        album: Option<&str>,
        n: Option<u32>,
    ) -> crate::store::StoredTrack {
        let mut t = stored(id, Some(100.0), "C", false, 0.5);
        t.path = path.into();
        t.measured.tags.artist = artist.map(str::to_string);
        t.measured.tags.album = album.map(str::to_string);
        t.measured.tags.track_number = n;
        t.measured.tags.genre = Some("Jazz".into());
        t
    }

    fn index() -> (Library, Index) {
        let lib = Library::new(
            vec![
                track(
                    1,
                    "/m/b/2.flac",
                    Some("The Beatles"),
                    Some("Help!"),
                    Some(2),
                ),
                track(
                    2,
                    "/m/b/1.flac",
                    Some("the beatles "),
                    Some("help!"),
                    Some(1),
                ),
                track(3, "/m/x/a.mp3", None, None, None),
                track(4, "/m/x/b.mp3", None, None, None),
                track(5, "/m/y/c.mp3", None, None, None),
                track(6, "/m/z/d.mp3", Some("ABBA"), None, None),
                track(7, "/m/z/e.mp3", Some("Beatles"), Some("Help!"), None),
            ],
            &[],
        );
        let ix = Index::build(&lib);
        (lib, ix)
    }

    #[test]
    fn groups_by_artist_and_album_else_folder() {
        let (_, ix) = index();
        let names: Vec<&str> = ix.artists.iter().map(|a| a.name.as_str()).collect();
        // ABBA, Beatles and The Beatles (both sort as "beatles"), Unknown Artist.
        assert_eq!(names.len(), 4, "{names:?}");
        assert_eq!(names[0], "ABBA");
        assert_eq!(*names.last().unwrap(), UNKNOWN_ARTIST);
        let help = ix.album_of[0];
        assert_eq!(
            ix.album_of[1], help,
            "tags differing in case and space are one album"
        );
        assert_eq!(ix.albums[help].tracks, vec![1, 0], "in track-number order");
        assert_ne!(
            ix.album_of[6], help,
            "another artist's Help! is another album"
        );
        assert_eq!(ix.album_of[2], ix.album_of[3], "one folder, one album");
        assert_ne!(ix.album_of[2], ix.album_of[4]);
        let x = &ix.albums[ix.album_of[2]];
        assert_eq!(x.name, "x");
        assert_eq!(ix.artists[x.artist].name, UNKNOWN_ARTIST);
        assert_eq!(ix.artists[x.artist].albums.len(), 2);
        assert_eq!(ix.albums[ix.album_of[5]].name, "z");
        assert_eq!(ix.genres.len(), 1);
        assert_eq!((ix.genres[0].songs, ix.genres[0].albums), (7, 5));
    }

    #[test]
    fn ids_are_stable_and_resolve() {
        let (lib, a) = index();
        let b = Index::build(&lib);
        for (x, y) in a.albums.iter().zip(&b.albums) {
            assert_eq!(x.id, y.id);
            assert!(x.id.starts_with("al-"));
        }
        for (pos, artist) in a.artists.iter().enumerate() {
            assert_eq!(a.artist(&artist.id), Some(pos));
            assert_eq!(a.album(&artist.id), None);
        }
        for (pos, album) in a.albums.iter().enumerate() {
            assert_eq!(a.album(&album.id), Some(pos));
        }
        for bad in ["", "al-", "al-zz", "ar-ffffffffffffffffff", "12", "al-0"] {
            assert_eq!(a.album(bad), None, "{bad}");
            assert_eq!(a.artist(bad), None, "{bad}");
        }
    }

    #[test]
    fn search_needs_every_word() {
        let (lib, ix) = index();
        let words = |q: &str| {
            q.split_whitespace()
                .map(str::to_lowercase)
                .collect::<Vec<_>>()
        };
        assert!(ix.track_matches(&lib, 0, &words("BEATLES help")));
        assert!(!ix.track_matches(&lib, 0, &words("beatles abba")));
        assert!(ix.track_matches(&lib, 2, &words("a.mp3")));
        assert!(ix.artist_matches(0, &words("ab")));
    }

    #[test]
    fn discs_then_tracks() {
        let mut tracks = Vec::new();
        for (id, disc, n) in [
            (1, Some(2), 1),
            (2, Some(1), 2),
            (3, Some(1), 1),
            (4, None, 3),
        ] {
            let mut t = track(
                id,
                &format!("/m/s/{id}.flac"),
                Some("A"),
                Some("Set"),
                Some(n),
            );
            t.measured.tags.disc_number = disc;
            tracks.push(t);
        }
        let lib = Library::new(tracks, &[]);
        let ix = Index::build(&lib);
        let ids: Vec<i64> = ix.albums[0]
            .tracks
            .iter()
            .map(|&i| lib.tracks[i].id)
            .collect();
        assert_eq!(ids, [4, 3, 2, 1]);
    }

    #[test]
    fn similar_artists_are_the_nearest_in_sound() {
        let mut tracks = Vec::new();
        for (id, artist, bpm) in [
            (1, "Slow", 80.0),
            (2, "Slow", 84.0),
            (3, "Slower", 78.0),
            (4, "Fast", 170.0),
            (5, "Middle", 120.0),
        ] {
            let mut t = stored(id, Some(bpm), "C", false, 0.5);
            t.path = format!("/m/{id}.flac");
            t.measured.tags.artist = Some(artist.into());
            tracks.push(t);
        }
        tracks.push(stored(6, Some(81.0), "C", false, 0.5));
        let lib = Library::new(tracks, &[]);
        let ix = Index::build(&lib);
        let slow = ix.artist_named(" slow").unwrap();
        let names: Vec<&str> = ix
            .similar_artists(&lib, slow, 10)
            .into_iter()
            .map(|a| ix.artists[a].name.as_str())
            .collect();
        assert_eq!(
            names,
            ["Slower", "Middle", "Fast"],
            "nearest first, no unknown"
        );
        assert_eq!(ix.similar_artists(&lib, slow, 1).len(), 1);
        assert_eq!(ix.similar_artists(&lib, 99, 5), Vec::<usize>::new());
        assert_eq!(ix.artist_named("nobody"), None);
    }

    #[test]
    fn articles_are_ignored_when_sorting() {
        assert_eq!(sort_name("The Beatles"), "beatles");
        assert_eq!(sort_name("The"), "the");
        assert_eq!(sort_name("Theatre"), "theatre");
        assert_eq!(sort_name("Los Lobos"), "lobos");
    }
}
