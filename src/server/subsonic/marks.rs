//! What a listener does and the lists made of it: `star`/`unstar` (songs, albums, artists),
//! `setRating`, `scrobble` (now playing, plays, skips), `getStarred`/`getStarred2`,
//! `getNowPlaying`, `getTopSongs`, the album lists `frequent`, `recent`, `highest` and
//! `starred`, and the `starred`/`userRating`/`playCount`/`played` attributes every song,
//! album and artist shows.
//!
//! In: a [`Ctx`] (the asking account) and parameters. Out: response trees; changes go through
//! [`crate::server::listening`] (stored before the answer). Every id is checked against the
//! snapshot first: an unknown one is error 70 and nothing is stored.

use std::cmp::Reverse;
use std::collections::HashMap;

use super::Ctx;
use super::browse::{album_node, artist_node, song};
use super::protocol::{Error, Node, Params, iso8601};
use crate::server::listening::Account;
use crate::store::{ItemMark, SongMark, Write, now_s};

/// Most ids one request may name.
pub const MAX_IDS: usize = 1000;

/// The marks of a song for one listener, as attributes.
pub fn with_song_marks(node: Node, mark: Option<&SongMark>) -> Node {
    let Some(m) = mark else {
        return node.attr("playCount", 0i64);
    };
    node.opt("starred", m.starred_at.map(iso8601))
        .opt("userRating", m.rating.map(i64::from))
        .attr("playCount", i64::from(m.plays))
        .opt("played", m.last_played.map(iso8601))
}

/// The marks of an album or artist, and for an album the plays of its songs.
pub fn with_item_marks(node: Node, mark: Option<&ItemMark>) -> Node {
    let Some(m) = mark else { return node };
    node.opt("starred", m.starred_at.map(iso8601))
        .opt("userRating", m.rating.map(i64::from))
}

/// Plays and last play of album `a`'s songs.
pub fn album_plays(x: &Ctx, marks: &Account, a: usize) -> (u64, Option<i64>) {
    let mut plays = 0u64;
    let mut last = None;
    for &i in &x.index().albums[a].tracks {
        if let Some(m) = marks.songs.get(&x.catalog.lib.tracks[i].id) {
            plays += u64::from(m.plays);
            last = last.max(m.last_played);
        }
    }
    (plays, last)
}

/// What `id` names: a song (its track id) or an album or artist (their ids), or error 70.
enum Target {
    Song(i64),
    Item(String),
}

fn target(x: &Ctx, id: &str) -> Result<Target, Error> {
    let id = id.trim();
    if x.index().album(id).is_some() || x.index().artist(id).is_some() {
        return Ok(Target::Item(id.to_string()));
    }
    let i = x.song(id)?;
    Ok(Target::Song(x.catalog.lib.tracks[i].id))
}

/// The values of `name`, at most [`MAX_IDS`].
fn ids<'p>(p: &'p Params, name: &str) -> Result<Vec<&'p str>, Error> {
    let all = p.all(name);
    if all.len() > MAX_IDS {
        return Err(Error::generic(format!(
            "Too many {name} values: at most {MAX_IDS}"
        )));
    }
    Ok(all)
}

/// `star` and `unstar`: `id` (songs, or albums and artists by their ids), `albumId`,
/// `artistId`, each repeatable.
pub fn star(x: &Ctx, p: &Params, on: bool) -> Result<Node, Error> {
    x.may_write()?;
    let mut targets = Vec::new();
    for id in ids(p, "id")? {
        targets.push(target(x, id)?);
    }
    for id in ids(p, "albumId")? {
        x.index()
            .album(id.trim())
            .ok_or_else(|| Error::not_found("Album"))?;
        targets.push(Target::Item(id.trim().to_string()));
    }
    for id in ids(p, "artistId")? {
        x.index()
            .artist(id.trim())
            .ok_or_else(|| Error::not_found("Artist"))?;
        targets.push(Target::Item(id.trim().to_string()));
    }
    if targets.is_empty() {
        return Err(Error::missing("id, albumId or artistId"));
    }
    let user = x.account.user.as_str();
    let now = now_s();
    x.server.listening.change(user, |a: &mut Account| {
        let writes: Vec<Write> = targets
            .iter()
            .map(|t| match t {
                Target::Song(track) => a.mark_song(user, *track, |m| {
                    m.starred_at = on.then(|| m.starred_at.unwrap_or(now));
                }),
                Target::Item(item) => a.mark_item(user, item, |m| {
                    m.starred_at = on.then(|| m.starred_at.unwrap_or(now));
                }),
            })
            .collect();
        Ok::<_, Error>((Node::new(), writes))
    })
}

/// `setRating`: `id` (song, album or artist), `rating` 0 (none) to 5.
pub fn set_rating(x: &Ctx, p: &Params) -> Result<Node, Error> {
    x.may_write()?;
    let t = target(x, p.required("id")?)?;
    let rating: i64 = p.number("rating", -1)?;
    if !(0..=5).contains(&rating) || p.get("rating").is_none() {
        return Err(Error {
            code: 10,
            message: "Parameter rating: a number from 0 to 5 is required".into(),
        });
    }
    let rating = u8::try_from(rating).ok().filter(|&r| r > 0);
    let user = x.account.user.as_str();
    x.server.listening.change(user, |a: &mut Account| {
        let w = match &t {
            Target::Song(track) => a.mark_song(user, *track, |m| m.rating = rating),
            Target::Item(item) => a.mark_item(user, item, |m| m.rating = rating),
        };
        Ok::<_, Error>((Node::new(), vec![w]))
    })
}

/// `scrobble`: `id` (repeatable) with `time` (ms, one per id, default now) and `submission`
/// (default true: played; false: started now, which may make the song before it a skip).
pub fn scrobble(x: &Ctx, p: &Params) -> Result<Node, Error> {
    x.may_write()?;
    let given = ids(p, "id")?;
    if given.is_empty() {
        return Err(Error::missing("id"));
    }
    let mut tracks = Vec::with_capacity(given.len());
    for id in given {
        tracks.push(x.catalog.lib.tracks[x.song(id)?].id);
    }
    let times = p.all("time");
    let now = now_s();
    let mut at = Vec::with_capacity(tracks.len());
    for k in 0..tracks.len() {
        at.push(match times.get(k).map(|t| t.trim().parse::<i64>()) {
            None => now,
            // A time from the future is the client's clock: taken as now.
            Some(Ok(ms)) => (ms / 1000).min(now),
            Some(Err(_)) => return Err(Error::generic("Parameter time: not a number")),
        });
    }
    let submission = !matches!(p.get("submission"), Some("false" | "0"));
    let client = p
        .get("c")
        .unwrap_or("")
        .chars()
        .take(64)
        .collect::<String>();
    let user = x.account.user.as_str();
    let catalog = x.catalog;
    let duration = |id: i64| {
        catalog
            .track(id)
            .map(|i| catalog.lib.tracks[i].measured.duration_s)
    };
    x.server.listening.change(user, |a: &mut Account| {
        let mut writes = Vec::new();
        for (&track, &when) in tracks.iter().zip(&at) {
            if submission {
                writes.push(a.played(user, track, when));
            } else {
                writes.extend(a.started(user, track, now, &client, duration));
            }
        }
        Ok::<_, Error>((Node::new(), writes))
    })
}

/// `getStarred` and `getStarred2`: the account's starred artists, albums and songs, newest
/// first.
pub fn starred(x: &Ctx, element: &'static str) -> Result<Node, Error> {
    let marks = x.marks();
    let ix = x.index();
    let mut artists: Vec<(i64, usize)> = Vec::new();
    let mut albums: Vec<(i64, usize)> = Vec::new();
    for (item, m) in &marks.items {
        let Some(at) = m.starred_at else { continue };
        if let Some(a) = ix.artist(item) {
            artists.push((at, a));
        } else if let Some(a) = ix.album(item) {
            albums.push((at, a));
        }
    }
    let mut songs: Vec<(i64, usize)> = marks
        .songs
        .iter()
        .filter_map(|(id, m)| Some((m.starred_at?, x.catalog.track(*id)?)))
        .collect();
    for list in [&mut artists, &mut albums, &mut songs] {
        list.sort_by_key(|&(at, i)| (Reverse(at), i));
    }
    drop(marks);
    let artist_nodes = artists.iter().map(|&(_, a)| artist_node(x, a)).collect();
    let album_nodes = albums.iter().map(|&(_, a)| album_node(x, a)).collect();
    let song_nodes = songs.iter().map(|&(_, i)| song(x, i)).collect();
    Ok(Node::new().one(
        element,
        Node::new()
            .many("artist", artist_nodes)
            .many("album", album_nodes)
            .many("song", song_nodes),
    ))
}

/// The album lists made of what was kept: `frequent` (most played), `recent` (last played),
/// `highest` (rated, then by their songs' mean rating), `starred` (newest star first). Albums
/// nobody played, rated or starred are not in them. Walks the listener's marks, not the
/// library.
pub fn album_order(x: &Ctx, kind: &str) -> Vec<usize> {
    #[derive(Default)]
    struct Sums {
        plays: i64,
        last: i64,
        rating_sum: i64,
        rated: i64,
    }
    let marks = x.marks();
    let ix = x.index();
    let mut per_album: HashMap<usize, Sums> = HashMap::new();
    for (id, m) in &marks.songs {
        let Some(i) = x.catalog.track(*id) else {
            continue;
        };
        let s = per_album.entry(ix.album_of[i]).or_default();
        s.plays += i64::from(m.plays);
        s.last = s.last.max(m.last_played.unwrap_or(0));
        if let Some(r) = m.rating {
            s.rating_sum += i64::from(r);
            s.rated += 1;
        }
    }
    let item = |a: usize| marks.items.get(&ix.albums[a].id);
    let mut keyed: Vec<(i64, i64, usize)> = match kind {
        "frequent" => per_album
            .iter()
            .filter(|(_, s)| s.plays > 0)
            .map(|(&a, s)| (s.plays, s.last, a))
            .collect(),
        "recent" => per_album
            .iter()
            .filter(|(_, s)| s.last > 0)
            .map(|(&a, s)| (s.last, 0, a))
            .collect(),
        "highest" => {
            let rated_albums = marks
                .items
                .iter()
                .filter(|(_, m)| m.rating.is_some())
                .filter_map(|(id, _)| ix.album(id));
            let mut albums: Vec<usize> = per_album
                .iter()
                .filter(|(_, s)| s.rated > 0)
                .map(|(&a, _)| a)
                .chain(rated_albums)
                .collect();
            albums.sort_unstable();
            albums.dedup();
            albums
                .into_iter()
                .map(|a| {
                    let own = item(a).and_then(|m| m.rating).map_or(0, i64::from);
                    let songs = per_album
                        .get(&a)
                        .filter(|s| s.rated > 0)
                        .map_or(0, |s| s.rating_sum * 1000 / s.rated);
                    (own, songs, a)
                })
                .collect()
        }
        _ => marks
            .items
            .iter()
            .filter_map(|(id, m)| Some((m.starred_at?, 0, ix.album(id)?)))
            .collect(),
    };
    keyed.sort_by_key(|&(k1, k2, a)| (Reverse(k1), Reverse(k2), a));
    keyed.into_iter().map(|(_, _, a)| a).collect()
}

/// `getNowPlaying`: what each account started in the last song length (plus a minute).
pub fn now_playing(x: &Ctx) -> Node {
    let now = now_s();
    let mut entries = Vec::new();
    for user in x.server.listening.names() {
        let Some(p) = x.server.listening.account(user).playing.clone() else {
            continue;
        };
        let Some(i) = x.catalog.track(p.track) else {
            continue;
        };
        let length = x.catalog.lib.tracks[i].measured.duration_s as i64;
        if now - p.started > length + 60 {
            continue;
        }
        entries.push(
            song(x, i)
                .attr("username", user)
                .attr("minutesAgo", (now - p.started).max(0) / 60)
                .attr("playerId", 0i64)
                .attr("playerName", p.client.as_str()),
        );
    }
    Node::new().one("nowPlaying", Node::new().many("entry", entries))
}

/// `getTopSongs`: `artist` (a name) and `count` (50): their songs this listener played,
/// starred or rated most, then the rest in album order.
pub fn top_songs(x: &Ctx, p: &Params) -> Result<Node, Error> {
    let name = p.required("artist")?.trim().to_lowercase();
    let count = p.count("count", 50, super::browse::MAX_LIST)?;
    let ix = x.index();
    let mut tracks: Vec<usize> = ix
        .artists
        .iter()
        .filter(|a| a.name.to_lowercase() == name)
        .flat_map(|a| {
            a.albums
                .iter()
                .flat_map(|&al| ix.albums[al].tracks.iter().copied())
        })
        .collect();
    {
        let marks = x.marks();
        let score = |i: usize| {
            marks.songs.get(&x.catalog.lib.tracks[i].id).map_or(0, |m| {
                i64::from(m.plays) * 2
                    + if m.starred_at.is_some() { 5 } else { 0 }
                    + m.rating.map_or(0, |r| i64::from(r) - 3)
                    - i64::from(m.skips)
            })
        };
        // A stable sort: equal scores keep album and track order.
        tracks.sort_by_key(|&i| Reverse(score(i)));
    }
    let songs = tracks.into_iter().take(count).map(|i| song(x, i)).collect();
    Ok(Node::new().one("topSongs", Node::new().many("song", songs)))
}
