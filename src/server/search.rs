//! Search as you type (`/api/v1/search?q=`): one word index per catalog snapshot over tracks,
//! albums and artists, built by the first search after a reload and kept beside the snapshot.
//!
//! In: the snapshot's tags (title, artist, album artist, album, genre, year), the file name
//! and the MusiCNN top tags of full-mode tracks ("chillout", "female vocalists"); a query.
//! Out: ranked indices of tracks, albums and artists, and the genres whose name matches.
//!
//! Text is cut into lower-case words (letters and digits). A query word matches every indexed
//! word it begins ("chill" matches "chill" and "chillout"), so results come while typing; a
//! document must match every query word. A document's score sums, per query word, the best
//! weight of a field it matched in ([`Field`]: a title outweighs a tag), a whole word counting
//! more than a prefix. Ties keep library order (album, then disc and track).
//!
//! Cost: the words are one sorted vocabulary, so a query word is a binary search for its
//! range and a walk of the postings in it, added into one score per document: linear in the
//! matches, not in the library's text (100k tracks: see `bench --serve`).

use std::collections::HashMap;

use super::index::Index;
use crate::playlist::space::Library;

/// Where a word was found, and what that weighs.
#[derive(Clone, Copy)]
#[repr(u8)]
enum Field {
    Title = 0,
    Artist,
    Album,
    Genre,
    Year,
    Tag,
    File,
}

/// Weight of a whole-word match per field; a prefix match counts [`PREFIX`] of it.
const WEIGHT: [f32; 7] = [8.0, 6.0, 4.0, 3.0, 3.0, 2.5, 1.0];
const PREFIX: f32 = 0.6;
/// Most words a query may have, and the longest word, in bytes.
const MAX_WORDS: usize = 16;
const MAX_WORD: usize = 128;

/// One kind of document (tracks, albums or artists): a sorted vocabulary and, per word, the
/// documents holding it with the field, packed as `doc << 3 | field`.
#[derive(Default)]
struct Postings {
    words: Vec<Box<str>>,
    docs: Vec<Vec<u32>>,
    len: usize,
}

/// Lower-case words of `text`.
pub fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
}

/// The words of a query, or why it is too long: each word is a walk of the postings, so a
/// query of thousands of words would hold a computing slot for seconds.
pub fn query_words(text: &str) -> Result<Vec<String>, String> {
    let words: Vec<String> = words(text).collect();
    if words.len() > MAX_WORDS || words.iter().any(|w| w.len() > MAX_WORD) {
        return Err(format!(
            "a query takes at most {MAX_WORDS} words of {MAX_WORD} bytes"
        ));
    }
    Ok(words)
}

impl Postings {
    fn build(entries: impl Iterator<Item = (u32, Field, String)>, len: usize) -> Postings {
        let mut map: HashMap<String, Vec<u32>> = HashMap::new();
        for (doc, field, text) in entries {
            for w in words(&text) {
                let list = map.entry(w).or_default();
                let packed = doc << 3 | field as u32;
                if list.last() != Some(&packed) {
                    list.push(packed);
                }
            }
        }
        let mut pairs: Vec<(String, Vec<u32>)> = map.into_iter().collect();
        pairs.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let (words, docs) = pairs
            .into_iter()
            .map(|(w, d)| (w.into_boxed_str(), d))
            .unzip();
        Postings { words, docs, len }
    }

    /// Documents matching every word, best first, at most `count`.
    fn find(&self, query: &[String], count: usize) -> Vec<usize> {
        if query.is_empty() || self.len == 0 {
            return Vec::new();
        }
        let mut total = vec![0f32; self.len];
        let mut this = vec![0f32; self.len];
        for (n, q) in query.iter().enumerate() {
            this.fill(0.0);
            let start = self.words.partition_point(|w| w.as_ref() < q.as_str());
            for (w, docs) in self.words[start..].iter().zip(&self.docs[start..]) {
                if !w.starts_with(q.as_str()) {
                    break;
                }
                let whole = if w.len() == q.len() { 1.0 } else { PREFIX };
                for &packed in docs {
                    let (doc, field) = ((packed >> 3) as usize, (packed & 7) as usize);
                    let score = WEIGHT[field] * whole;
                    if score > this[doc] {
                        this[doc] = score;
                    }
                }
            }
            for (t, s) in total.iter_mut().zip(&this) {
                *t = if *s == 0.0 || (n > 0 && *t == 0.0) {
                    0.0
                } else {
                    *t + s
                };
            }
        }
        let mut hits: Vec<(f32, usize)> = total
            .iter()
            .enumerate()
            .filter(|&(_, &s)| s > 0.0)
            .map(|(d, &s)| (s, d))
            .collect();
        let keep = count.min(hits.len());
        if keep == 0 {
            return Vec::new();
        }
        let by_rank = |a: &(f32, usize), b: &(f32, usize)| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1));
        if keep < hits.len() {
            hits.select_nth_unstable_by(keep - 1, by_rank);
            hits.truncate(keep);
        }
        hits.sort_unstable_by(by_rank);
        hits.into_iter().map(|(_, d)| d).collect()
    }
}

/// The word index of one snapshot. Track documents are numbered in album order (so ties
/// list an album's tracks as it plays); [`Search::tracks`] maps them back.
pub struct Search {
    tracks: Postings,
    /// Document number → track index.
    track_of: Vec<usize>,
    albums: Postings,
    artists: Postings,
}

/// What a query found, as indices into the library and [`Index`].
pub struct Found {
    pub tracks: Vec<usize>,
    pub albums: Vec<usize>,
    pub artists: Vec<usize>,
    pub genres: Vec<usize>,
}

impl Search {
    pub fn build(lib: &Library, ix: &Index) -> Search {
        let track_of: Vec<usize> = ix
            .albums
            .iter()
            .flat_map(|a| a.tracks.iter().copied())
            .collect();
        let mut entries = Vec::with_capacity(track_of.len() * 8);
        for (doc, &i) in track_of.iter().enumerate() {
            let doc = doc as u32;
            let t = &lib.tracks[i];
            let tags = &t.measured.tags;
            let album = &ix.albums[ix.album_of[i]];
            let mut add = |field, text: Option<&str>| {
                if let Some(text) = text {
                    entries.push((doc, field, text.to_string()));
                }
            };
            add(Field::Title, tags.title.as_deref());
            add(Field::Artist, tags.artist.as_deref());
            add(Field::Artist, Some(&ix.artists[album.artist].name));
            add(Field::Album, Some(&album.name));
            add(Field::Genre, tags.genre.as_deref());
            add(Field::Year, tags.year.map(|y| y.to_string()).as_deref());
            add(Field::File, Some(t.file().rsplit('/').next().unwrap_or("")));
            if let Some(sound) = &lib.sound[i] {
                for tag in sound.tag_names() {
                    add(Field::Tag, Some(tag));
                }
            }
        }
        let tracks = Postings::build(entries.into_iter(), track_of.len());
        let albums = Postings::build(
            ix.albums.iter().enumerate().flat_map(|(a, album)| {
                let doc = a as u32;
                [
                    (doc, Field::Album, album.name.clone()),
                    (doc, Field::Artist, ix.artists[album.artist].name.clone()),
                    (doc, Field::Genre, album.genre.clone().unwrap_or_default()),
                    (
                        doc,
                        Field::Year,
                        album.year.map(|y| y.to_string()).unwrap_or_default(),
                    ),
                ]
            }),
            ix.albums.len(),
        );
        let artists = Postings::build(
            ix.artists
                .iter()
                .enumerate()
                .map(|(a, artist)| (a as u32, Field::Artist, artist.name.clone())),
            ix.artists.len(),
        );
        Search {
            tracks,
            track_of,
            albums,
            artists,
        }
    }

    /// Up to `count` of each kind for `query` (already cut by [`words`]).
    pub fn find(&self, ix: &Index, query: &[String], count: usize) -> Found {
        let genres = ix
            .genres
            .iter()
            .enumerate()
            .filter(|(_, g)| {
                let names: Vec<String> = words(&g.name).collect();
                !query.is_empty()
                    && query
                        .iter()
                        .all(|q| names.iter().any(|n| n.starts_with(q.as_str())))
            })
            .map(|(g, _)| g)
            .take(count)
            .collect();
        Found {
            tracks: self
                .tracks
                .find(query, count)
                .into_iter()
                .map(|d| self.track_of[d])
                .collect(),
            albums: self.albums.find(query, count),
            artists: self.artists.find(query, count),
            genres,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::playlist::space::tests_support::stored;

    fn library() -> Library {
        let mut tracks = Vec::new();
        for (id, title, artist, album, genre) in [
            (1, "Blue Monday", "New Order", "Power", "Electronic"),
            (2, "Blue in Green", "Miles Davis", "Kind of Blue", "Jazz"),
            (3, "So What", "Miles Davis", "Kind of Blue", "Jazz"),
            (4, "Bluebird", "Other", "Birds", "Folk"),
        ] {
            let mut t = stored(id, Some(100.0), "C", false, 0.5);
            t.path = format!("/m/{album}/{id}.flac");
            t.measured.tags.title = Some(title.into());
            t.measured.tags.artist = Some(artist.into());
            t.measured.tags.album = Some(album.into());
            t.measured.tags.genre = Some(genre.into());
            t.measured.tags.year = Some(1959);
            tracks.push(t);
        }
        Library::new(tracks, &[])
    }

    fn titles(lib: &Library, found: &[usize]) -> Vec<String> {
        found
            .iter()
            .map(|&i| {
                lib.tracks[i]
                    .measured
                    .tags
                    .title
                    .clone()
                    .unwrap_or_default()
            })
            .collect()
    }

    #[test]
    fn every_word_must_match_and_whole_words_in_titles_rank_first() {
        let lib = library();
        let ix = Index::build(&lib);
        let s = Search::build(&lib, &ix);
        let q = |text: &str| words(text).collect::<Vec<_>>();
        // "blue": whole word in two titles (album order), then a title prefix ("Bluebird":
        // 8 x 0.6), then a track whose album only says it (4).
        assert_eq!(
            titles(&lib, &s.find(&ix, &q("blue"), 10).tracks),
            ["Blue in Green", "Blue Monday", "Bluebird", "So What"]
        );
        assert_eq!(
            titles(&lib, &s.find(&ix, &q("blue mil"), 10).tracks),
            ["Blue in Green", "So What"]
        );
        assert_eq!(
            titles(&lib, &s.find(&ix, &q("JAZZ what"), 10).tracks),
            ["So What"]
        );
        assert!(s.find(&ix, &q("blue zzz"), 10).tracks.is_empty());
        assert_eq!(s.find(&ix, &q("blue"), 2).tracks.len(), 2);
        let miles = s.find(&ix, &q("mil"), 10);
        assert_eq!(miles.artists.len(), 1);
        assert_eq!(ix.artists[miles.artists[0]].name, "Miles Davis");
        assert_eq!(miles.albums.len(), 1);
        let jazz = s.find(&ix, &q("jaz"), 10);
        assert_eq!(jazz.genres.len(), 1);
        assert_eq!(ix.genres[jazz.genres[0]].name, "Jazz");
        assert!(s.find(&ix, &[], 10).tracks.is_empty());
    }
}
