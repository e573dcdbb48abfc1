//! Browsing and finding: music folders, artist indexes, artists, albums, directories, songs,
//! album lists, genres, search and random songs; and the element shapes they share (`Child`
//! for a song, `AlbumID3`, `ArtistID3`).
//!
//! In: a [`Ctx`] and the request's parameters. Out: response trees. No file is touched: size
//! and modification time (`size`, `created`) are the scan's; the listener's marks
//! (`starred`, `userRating`, `playCount`, `played`) and the lists made of them (`frequent`,
//! `recent`, `highest`, `starred`) come from [`super::marks`].

use std::path::Path;
use std::time::UNIX_EPOCH;

use super::Ctx;
use super::marks::{album_order, album_plays, with_item_marks, with_song_marks};
use super::protocol::{Error, Node, Params, iso8601};
use crate::server::index::{IGNORED_ARTICLES, sort_name};
use crate::server::stream::content_type;

/// Most items one list request may return.
pub const MAX_LIST: usize = 500;
/// The one music folder.
const FOLDER_ID: i64 = 1;

/// A path segment from a tag: no separators.
fn segment(name: &str) -> String {
    name.replace(['/', '\\'], "_")
}

/// ReplayGain 2.0's reference loudness: a track's gain is this minus its loudness.
const REPLAY_GAIN_REFERENCE_LUFS: f64 = -18.0;

/// `{id, name}`: an artist as the `artists`/`albumArtists` lists of songs and albums carry it.
fn artist_ref(x: &Ctx, a: usize) -> Node {
    let ar = &x.index().artists[a];
    Node::new()
        .attr("id", ar.id.as_str())
        .attr("name", ar.name.as_str())
}

/// `genres`: the one genre tag, as OpenSubsonic's list.
fn genre_list(genre: Option<&str>) -> Vec<Node> {
    genre
        .map(|g| Node::new().attr("name", g))
        .into_iter()
        .collect()
}

/// A song as the `Child` element. Every field OpenSubsonic defines that the box can know is
/// present, 0 or empty when unknown (clients read presence as support); `replayGain` holds
/// the track gain from the measured loudness.
pub fn song(x: &Ctx, i: usize) -> Node {
    let t = &x.catalog.lib.tracks[i];
    let m = &t.measured;
    let title = x.catalog.title(i);
    let tag_artist = m.tags.artist.as_deref();
    let format = t.served_format();
    let album = &x.index().albums[x.index().album_of[i]];
    let artist = &x.index().artists[album.artist];
    // A track cut from an album, or a file in a codec apps do not play, is sent as a WAV of
    // its own (named after its file, and its number); any other file as it is.
    let cut = t.sent_as_wav().map(|(start, end)| {
        let m = &t.measured;
        crate::audio::cut::WavCut::new(start, end, m.sample_rate, m.channels)
    });
    let path = Path::new(&t.path);
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .map(|n| {
            if cut.is_some() {
                format!("{}.wav", n.replace('#', " "))
            } else {
                n
            }
        })
        .unwrap_or_default();
    // As scanned: answers never wait on the disk (a sleeping HDD would stall every list).
    let size = cut.map_or(t.size, |c| c.len());
    let facts = Some((size, t.mtime_s())).filter(|&(size, _)| size > 0);
    let display_artist = tag_artist.unwrap_or(&artist.name);
    // The song's own artist when albums are filed under that name, else the album's.
    let song_artist = tag_artist
        .and_then(|name| x.index().artist_named(name))
        .unwrap_or(album.artist);
    let replay_gain = Node::new().opt(
        "trackGain",
        m.loudness_lufs
            .filter(|l| l.is_finite())
            .map(|l| ((REPLAY_GAIN_REFERENCE_LUFS - l) * 100.0).round() / 100.0),
    );
    let bit_rate = facts.and_then(|(size, _)| {
        (m.duration_s > 0.0).then(|| (size as f64 * 8.0 / m.duration_s / 1000.0).round() as i64)
    });
    let node = Node::new()
        .attr("id", t.id.to_string())
        .attr("parent", album.id.as_str())
        .attr("isDir", false)
        .attr("title", title)
        .attr("album", album.name.as_str())
        .attr("artist", display_artist)
        .attr("track", m.tags.track_number.unwrap_or(0))
        .attr("discNumber", m.tags.disc_number.unwrap_or(0))
        .attr("year", m.tags.year.unwrap_or(0))
        .attr("genre", m.tags.genre.as_deref().unwrap_or(""))
        .attr("coverArt", t.id.to_string())
        .attr("size", facts.map_or(0, |(size, _)| size))
        .attr("contentType", content_type(Path::new(&file_name)))
        .attr("suffix", format)
        .attr("duration", m.duration_s.round() as i64)
        .attr("bitRate", bit_rate.unwrap_or(0))
        .attr("bitDepth", 0u32)
        .attr("bpm", m.bpm.map_or(0, |b| b.round() as i64))
        .attr("samplingRate", m.sample_rate)
        .attr("channelCount", m.channels)
        .attr(
            "path",
            format!(
                "{}/{}/{file_name}",
                segment(&artist.name),
                segment(&album.name)
            ),
        )
        .attr("isVideo", false)
        .attr("type", "music")
        .attr("mediaType", "song")
        .attr("comment", "")
        .attr("sortName", "")
        .attr(
            "musicBrainzId",
            m.tags.musicbrainz_recording_id.as_deref().unwrap_or(""),
        )
        .values("isrc", m.tags.isrc.iter().map(Into::into).collect())
        .many("genres", genre_list(m.tags.genre.as_deref()))
        .many("artists", vec![artist_ref(x, song_artist)])
        .attr("displayArtist", display_artist)
        .many("albumArtists", vec![artist_ref(x, album.artist)])
        .attr("displayAlbumArtist", artist.name.as_str())
        .many("contributors", Vec::new())
        .attr("displayComposer", "")
        .values("moods", Vec::new())
        .one("replayGain", replay_gain)
        .attr("explicitStatus", "")
        .attr(
            "created",
            iso8601(facts.map_or(x.catalog.loaded_at, |(_, mtime)| mtime)),
        )
        .attr("albumId", album.id.as_str())
        .attr("artistId", artist.id.as_str());
    with_song_marks(node, x.marks().songs.get(&t.id))
}

pub(super) fn songs(x: &Ctx, tracks: impl IntoIterator<Item = usize>) -> Vec<Node> {
    tracks.into_iter().map(|i| song(x, i)).collect()
}

/// An album as `AlbumID3`, with the `Child` fields older clients read from album lists, and
/// the listener's marks.
pub fn album_node(x: &Ctx, a: usize) -> Node {
    let al = &x.index().albums[a];
    let ar = &x.index().artists[al.artist];
    let created = al
        .tracks
        .first()
        .map(|&i| x.catalog.lib.tracks[i].mtime_s())
        .filter(|&mtime| mtime > 0)
        .unwrap_or(x.catalog.loaded_at);
    let marks = x.marks();
    let (plays, last) = album_plays(x, &marks, a);
    let node = with_item_marks(Node::new(), marks.items.get(&al.id));
    drop(marks);
    node.attr("id", al.id.as_str())
        .attr("name", al.name.as_str())
        .attr("title", al.name.as_str())
        .attr("album", al.name.as_str())
        .attr("isDir", true)
        .attr("parent", ar.id.as_str())
        .attr("artist", ar.name.as_str())
        .attr("artistId", ar.id.as_str())
        .attr("coverArt", al.id.as_str())
        .attr("songCount", al.tracks.len())
        .attr("duration", al.duration_s.round() as i64)
        .attr("created", iso8601(created))
        // OpenSubsonic's fields, empty where the tags hold nothing.
        .attr("year", al.year.unwrap_or(0))
        .attr("genre", al.genre.as_deref().unwrap_or(""))
        .attr("version", "")
        .many("recordLabels", Vec::new())
        .attr("musicBrainzId", "")
        .many("genres", genre_list(al.genre.as_deref()))
        .many("artists", vec![artist_ref(x, al.artist)])
        .attr("displayArtist", ar.name.as_str())
        .values("releaseTypes", Vec::new())
        .values("moods", Vec::new())
        .attr("sortName", "")
        .one("originalReleaseDate", Node::new().opt("year", al.year))
        .one("releaseDate", Node::new().opt("year", al.year))
        .attr("isCompilation", false)
        .attr("explicitStatus", "")
        .many("discTitles", Vec::new())
        .attr("playCount", plays)
        .opt("played", last.map(iso8601))
}

pub fn artist_node(x: &Ctx, a: usize) -> Node {
    let ar = &x.index().artists[a];
    with_item_marks(Node::new(), x.marks().items.get(&ar.id))
        .attr("id", ar.id.as_str())
        .attr("name", ar.name.as_str())
        .attr("albumCount", ar.albums.len())
        .attr("coverArt", ar.id.as_str())
        // The albums are filed under it, hence its one role.
        .attr("musicBrainzId", "")
        .attr("sortName", "")
        .values("roles", vec!["albumartist".into()])
}

pub fn user(x: &Ctx, p: &Params) -> Result<Node, Error> {
    let name = x.account.user.as_str();
    if let Some(other) = p.get("username").filter(|u| *u != name) {
        return Err(if x.server.accounts.iter().any(|a| a.user == other) {
            Error::not_allowed("only your own account")
        } else {
            Error::not_found("User")
        });
    }
    let writes = !x.account.read_only;
    let mut node = Node::new().attr("username", name).attr("email", "");
    for (role, on) in [
        ("scrobblingEnabled", writes),
        ("adminRole", false),
        ("settingsRole", false),
        ("downloadRole", true),
        ("uploadRole", false),
        ("playlistRole", writes),
        ("coverArtRole", false),
        ("commentRole", writes),
        ("podcastRole", false),
        ("streamRole", true),
        ("jukeboxRole", false),
        ("shareRole", false),
        ("videoConversionRole", false),
    ] {
        node = node.attr(role, on);
    }
    Ok(Node::new().one("user", node.values("folder", vec![FOLDER_ID.into()])))
}

pub fn music_folders(x: &Ctx) -> Node {
    Node::new().one(
        "musicFolders",
        Node::new().many(
            "musicFolder",
            vec![
                Node::new()
                    .attr("id", FOLDER_ID)
                    .attr("name", x.server.name.as_str()),
            ],
        ),
    )
}

/// Artists under their initial (`#` for anything but a letter), articles ignored.
fn by_initial(x: &Ctx) -> Vec<Node> {
    let mut groups: Vec<(String, Vec<Node>)> = Vec::new();
    for (a, artist) in x.index().artists.iter().enumerate() {
        let initial = sort_name(&artist.name)
            .chars()
            .next()
            .filter(|c| c.is_alphabetic())
            .map_or_else(|| "#".to_string(), |c| c.to_uppercase().collect());
        let node = artist_node(x, a);
        match groups.iter_mut().find(|(name, _)| *name == initial) {
            Some((_, nodes)) => nodes.push(node),
            None => groups.push((initial, vec![node])),
        }
    }
    groups
        .into_iter()
        .map(|(name, nodes)| Node::new().attr("name", name).many("artist", nodes))
        .collect()
}

pub fn indexes(x: &Ctx) -> Node {
    Node::new().one(
        "indexes",
        Node::new()
            .attr("lastModified", x.catalog.loaded_at.saturating_mul(1000))
            .attr("ignoredArticles", IGNORED_ARTICLES)
            .many("index", by_initial(x)),
    )
}

pub fn artists(x: &Ctx) -> Node {
    Node::new().one(
        "artists",
        Node::new()
            .attr("ignoredArticles", IGNORED_ARTICLES)
            .many("index", by_initial(x)),
    )
}

fn artist_index(x: &Ctx, p: &Params) -> Result<usize, Error> {
    x.index()
        .artist(p.required("id")?)
        .ok_or_else(|| Error::not_found("Artist"))
}

fn album_index(x: &Ctx, p: &Params) -> Result<usize, Error> {
    x.index()
        .album(p.required("id")?)
        .ok_or_else(|| Error::not_found("Album"))
}

pub fn artist(x: &Ctx, p: &Params) -> Result<Node, Error> {
    let a = artist_index(x, p)?;
    let albums = x.index().artists[a]
        .albums
        .iter()
        .map(|&al| album_node(x, al))
        .collect();
    Ok(Node::new().one("artist", artist_node(x, a).many("album", albums)))
}

pub fn album(x: &Ctx, p: &Params) -> Result<Node, Error> {
    let a = album_index(x, p)?;
    let tracks = songs(x, x.index().albums[a].tracks.iter().copied());
    Ok(Node::new().one("album", album_node(x, a).many("song", tracks)))
}

/// The folder view older clients browse: an artist holds albums, an album holds songs.
pub fn music_directory(x: &Ctx, p: &Params) -> Result<Node, Error> {
    let id = p.required("id")?;
    if let Some(a) = x.index().artist(id) {
        let ar = &x.index().artists[a];
        let albums = ar.albums.iter().map(|&al| album_node(x, al)).collect();
        return Ok(Node::new().one(
            "directory",
            Node::new()
                .attr("id", ar.id.as_str())
                .attr("name", ar.name.as_str())
                .many("child", albums),
        ));
    }
    if let Some(a) = x.index().album(id) {
        let al = &x.index().albums[a];
        return Ok(Node::new().one(
            "directory",
            Node::new()
                .attr("id", al.id.as_str())
                .attr("parent", x.index().artists[al.artist].id.as_str())
                .attr("name", al.name.as_str())
                .many("child", songs(x, al.tracks.iter().copied())),
        ));
    }
    Err(Error::not_found("Directory"))
}

/// `getAlbumList2` (and `getAlbumList`): `random`, `newest`, `alphabeticalByName`,
/// `alphabeticalByArtist`, `byYear`, `byGenre`; the play-history lists are empty.
pub fn album_list(x: &Ctx, p: &Params, element: &'static str) -> Result<Node, Error> {
    let kind = p.required("type")?;
    let size = p.count("size", 10, MAX_LIST)?;
    let offset = p.number("offset", 0usize)?;
    let n = x.index().albums.len();
    let all = 0..n;
    let order: Vec<usize> = match kind {
        "random" => Rng::new().sample(n, size),
        "newest" => {
            let mut v: Vec<usize> = all.collect();
            v.sort_by_key(|&a| std::cmp::Reverse(x.index().albums[a].newest_track));
            v
        }
        "alphabeticalByName" => all.collect(),
        "alphabeticalByArtist" => {
            let mut v: Vec<usize> = all.collect();
            v.sort_by_key(|&a| x.index().albums[a].artist);
            v
        }
        "byYear" => {
            let from: u32 = p.number("fromYear", 0)?;
            let to: u32 = p.number("toYear", 9999)?;
            let (lo, hi) = (from.min(to), from.max(to));
            let mut v: Vec<usize> = all
                .filter(|&a| {
                    x.index().albums[a]
                        .year
                        .is_some_and(|y| (lo..=hi).contains(&y))
                })
                .collect();
            v.sort_by_key(|&a| x.index().albums[a].year);
            if from > to {
                v.reverse();
            }
            v
        }
        "byGenre" => {
            let genre = p.required("genre")?;
            all.filter(|&a| {
                x.index().albums[a]
                    .tracks
                    .iter()
                    .any(|&i| x.catalog.lib.tracks[i].measured.tags.genre.as_deref() == Some(genre))
            })
            .collect()
        }
        "frequent" | "recent" | "highest" | "starred" => album_order(x, kind),
        other => return Err(Error::generic(format!("Unknown album list type: {other}"))),
    };
    let albums = order
        .into_iter()
        .skip(if kind == "random" { 0 } else { offset })
        .take(size)
        .map(|a| album_node(x, a))
        .collect();
    Ok(Node::new().one(element, Node::new().many("album", albums)))
}

pub fn genres(x: &Ctx) -> Node {
    let genres = x
        .index()
        .genres
        .iter()
        .map(|g| {
            Node::new()
                .attr("songCount", g.songs)
                .attr("albumCount", g.albums)
                .text(g.name.as_str())
        })
        .collect();
    Node::new().one("genres", Node::new().many("genre", genres))
}

/// Words a search may have, and bytes a word may have.
const MAX_SEARCH_WORDS: usize = 16;
const MAX_SEARCH_WORD: usize = 128;

/// `search3` (and `search2`): every word of `query` must appear (case ignored) in an
/// artist's name, an album's name, or a song's title, artist, album or file name. An empty
/// query (or `""`, as some clients send to sync the library) matches everything, in album
/// order.
pub fn search(x: &Ctx, p: &Params, element: &'static str) -> Result<Node, Error> {
    let query = p.get("query").ok_or_else(|| Error::missing("query"))?;
    let words: Vec<String> = query
        .split_whitespace()
        .map(|w| w.trim_matches('"').to_lowercase())
        .filter(|w| !w.is_empty())
        .collect();
    // Each word is a scan of the library: a query of thousands of words would hold a
    // blocking thread for seconds.
    if words.len() > MAX_SEARCH_WORDS || words.iter().any(|w| w.len() > MAX_SEARCH_WORD) {
        return Err(Error::generic(format!(
            "a search takes at most {MAX_SEARCH_WORDS} words of {MAX_SEARCH_WORD} bytes"
        )));
    }
    let page = |kind: &str| -> Result<(usize, usize), Error> {
        Ok((
            p.count(&format!("{kind}Count"), 20, MAX_LIST)?,
            p.number(&format!("{kind}Offset"), 0usize)?,
        ))
    };
    let (artist_count, artist_offset) = page("artist")?;
    let (album_count, album_offset) = page("album")?;
    let (song_count, song_offset) = page("song")?;
    let ix = x.index();
    let artists = (0..ix.artists.len())
        .filter(|&a| ix.artist_matches(a, &words))
        .skip(artist_offset)
        .take(artist_count)
        .map(|a| artist_node(x, a))
        .collect();
    let albums = (0..ix.albums.len())
        .filter(|&a| ix.album_matches(a, &words))
        .skip(album_offset)
        .take(album_count)
        .map(|a| album_node(x, a))
        .collect();
    let tracks: Vec<usize> = ix
        .albums
        .iter()
        .flat_map(|a| a.tracks.iter().copied())
        .filter(|&i| ix.track_matches(&x.catalog.lib, i, &words))
        .skip(song_offset)
        .take(song_count)
        .collect();
    Ok(Node::new().one(
        element,
        Node::new()
            .many("artist", artists)
            .many("album", albums)
            .many("song", songs(x, tracks)),
    ))
}

/// `getRandomSongs`: `size` songs (10 by default), optionally of one `genre` and within
/// `fromYear`..`toYear`.
pub fn random_songs(x: &Ctx, p: &Params) -> Result<Node, Error> {
    let size = p.count("size", 10, MAX_LIST)?;
    let genre = p.get("genre").filter(|g| !g.is_empty());
    let from: Option<u32> = p
        .get("fromYear")
        .map(|_| p.number("fromYear", 0))
        .transpose()?;
    let to: Option<u32> = p.get("toYear").map(|_| p.number("toYear", 0)).transpose()?;
    let tracks = &x.catalog.lib.tracks;
    let fits = |i: usize| {
        let tags = &tracks[i].measured.tags;
        genre.is_none_or(|g| tags.genre.as_deref() == Some(g))
            && from.is_none_or(|f| tags.year.is_some_and(|y| y >= f))
            && to.is_none_or(|t| tags.year.is_some_and(|y| y <= t))
    };
    let chosen: Vec<usize> = if genre.is_none() && from.is_none() && to.is_none() {
        Rng::new().sample(tracks.len(), size)
    } else {
        let pool: Vec<usize> = (0..tracks.len()).filter(|&i| fits(i)).collect();
        Rng::new()
            .sample(pool.len(), size)
            .into_iter()
            .map(|k| pool[k])
            .collect()
    };
    Ok(Node::new().one("randomSongs", Node::new().many("song", songs(x, chosen))))
}

/// A small xorshift generator: random lists need variety, not cryptography.
struct Rng(u64);

impl Rng {
    fn new() -> Rng {
        static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Rng((nanos ^ call.wrapping_mul(0x9E37_79B9_7F4A_7C15)) | 1)
    }

    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n.max(1) as u64) as usize
    }

    /// `k` distinct numbers of `0..n` in random order (all of them if `k >= n`).
    fn sample(&mut self, n: usize, k: usize) -> Vec<usize> {
        let k = k.min(n);
        if k * 4 < n {
            // Few of many: draw and reject repeats, without a list of all n.
            let mut out: Vec<usize> = Vec::with_capacity(k);
            while out.len() < k {
                let i = self.below(n);
                if !out.contains(&i) {
                    out.push(i);
                }
            }
            return out;
        }
        let mut all: Vec<usize> = (0..n).collect();
        for j in 0..k {
            let pick = j + self.below(n - j);
            all.swap(j, pick);
        }
        all.truncate(k);
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_distinct_and_in_range() {
        let mut rng = Rng::new();
        for (n, k) in [(0, 5), (3, 10), (10, 10), (1000, 7), (100, 60)] {
            let mut s = rng.sample(n, k);
            assert_eq!(s.len(), k.min(n));
            assert!(s.iter().all(|&i| i < n));
            s.sort();
            s.dedup();
            assert_eq!(s.len(), k.min(n));
        }
    }
}
