//! Listeners' own playlists: `createPlaylist`, `updatePlaylist`, `deletePlaylist`, and their
//! part of `getPlaylists`/`getPlaylist`. Ids are `u` + a number, so they never meet the
//! generated playlists' numeric ids; those stay read-only (error 50).
//!
//! In: a [`Ctx`] and parameters. Out: response trees; the change stored through
//! [`crate::server::listening`], then the account's lists written as M3U8 under
//! `<output_dir>/users/<account>/` (that folder holds exactly them). A name and a comment are
//! kept as given, capped in length; everything that shows them escapes them.

use std::path::PathBuf;

use super::Ctx;
use super::browse::song;
use super::protocol::{Error, Node, Params, iso8601};
use crate::playlist::{Playlist, m3u};
use crate::server::listening::Playlists;
use crate::store::{OwnPlaylist, Write, now_s};

/// Longest name and comment kept, in characters.
const MAX_NAME: usize = 200;
const MAX_COMMENT: usize = 2000;
/// Most songs in one playlist, and most playlists of one account.
const MAX_SONGS: usize = 10_000;
const MAX_LISTS: usize = 1000;

/// The id of own playlist `n`.
pub fn id_text(n: i64) -> String {
    format!("u{n}")
}

/// The number in an own playlist's id, if `id` is one.
fn own_id(id: &str) -> Option<i64> {
    id.trim().strip_prefix('u')?.parse().ok()
}

fn node(x: &Ctx, p: &OwnPlaylist) -> Node {
    let tracks: Vec<usize> = p
        .tracks
        .iter()
        .filter_map(|&t| x.catalog.track(t))
        .collect();
    let duration: f64 = tracks
        .iter()
        .map(|&i| x.catalog.lib.tracks[i].measured.duration_s)
        .sum();
    Node::new()
        .attr("id", id_text(p.id))
        .attr("name", p.name.as_str())
        .attr("comment", p.comment.as_str())
        .attr("owner", p.account.as_str())
        .attr("public", p.public)
        .attr("readonly", p.account != x.account.user)
        .attr("songCount", tracks.len())
        .attr("duration", duration.round() as i64)
        .attr("created", iso8601(p.created))
        .attr("changed", iso8601(p.changed))
        .opt(
            "coverArt",
            tracks
                .first()
                .map(|&i| x.catalog.lib.tracks[i].id.to_string()),
        )
}

fn with_entries(x: &Ctx, p: &OwnPlaylist) -> Node {
    let entries = p
        .tracks
        .iter()
        .filter_map(|&t| x.catalog.track(t))
        .map(|i| song(x, i))
        .collect();
    node(x, p).many("entry", entries)
}

/// The own playlists `x`'s account sees: its own, then the others' public ones.
pub fn visible(x: &Ctx) -> Vec<Node> {
    let all = x.server.listening.playlists();
    let user = x.account.user.as_str();
    let mut mine: Vec<&OwnPlaylist> = all.lists.values().filter(|p| p.account == user).collect();
    mine.extend(all.lists.values().filter(|p| p.account != user && p.public));
    mine.into_iter().map(|p| node(x, p)).collect()
}

/// `getPlaylist` of an own playlist id (`None`: not such an id).
pub fn playlist(x: &Ctx, id: &str) -> Option<Result<Node, Error>> {
    let n = own_id(id)?;
    let all = x.server.listening.playlists();
    Some(
        all.lists
            .get(&n)
            .filter(|p| p.account == x.account.user || p.public)
            .map(|p| Node::new().one("playlist", with_entries(x, p)))
            .ok_or_else(|| Error::not_found("Playlist")),
    )
}

fn capped(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// Track ids of the songs `ids` name (error 70 for one that is unknown).
fn songs_of(x: &Ctx, ids: Vec<&str>) -> Result<Vec<i64>, Error> {
    if ids.len() > MAX_SONGS {
        return Err(Error::generic(format!(
            "A playlist holds at most {MAX_SONGS} songs"
        )));
    }
    ids.into_iter()
        .map(|id| Ok(x.catalog.lib.tracks[x.song(id)?].id))
        .collect()
}

/// The own playlist `id` names, for changing by `x`'s account: 70 if there is none, 50 if it
/// is generated or another account's.
fn editable(x: &Ctx, all: &Playlists, id: &str) -> Result<i64, Error> {
    let Some(n) = own_id(id) else {
        return Err(
            if id
                .trim()
                .parse::<i64>()
                .ok()
                .and_then(|n| x.catalog.playlist(n))
                .is_some()
            {
                Error::not_allowed("generated playlists are read-only")
            } else {
                Error::not_found("Playlist")
            },
        );
    };
    match all.lists.get(&n) {
        None => Err(Error::not_found("Playlist")),
        Some(p) if p.account != x.account.user => {
            Err(Error::not_allowed("another listener's playlist"))
        }
        Some(_) => Ok(n),
    }
}

fn put(all: &Playlists, n: i64) -> Write {
    Write::Playlist {
        id: n,
        playlist: all.lists.get(&n).cloned(),
    }
}

/// `createPlaylist`: `name` and `songId` (repeatable) for a new playlist, or `playlistId` to
/// replace an own playlist's songs. Answers the playlist.
pub fn create(x: &Ctx, p: &Params) -> Result<Node, Error> {
    x.may_write()?;
    let songs = songs_of(x, p.all("songId"))?;
    let existing = p.get("playlistId").filter(|v| !v.is_empty());
    let name = match existing {
        Some(_) => p.get("name").map(|n| capped(n, MAX_NAME)),
        None => Some(capped(p.required("name")?, MAX_NAME)),
    };
    let user = x.account.user.clone();
    let n = x.server.listening.change_playlists(|all: &mut Playlists| {
        let now = now_s();
        let n = match existing {
            Some(id) => {
                let n = editable(x, all, id)?;
                if let Some(p) = all.lists.get_mut(&n) {
                    p.tracks = songs;
                    p.changed = now;
                    if let Some(name) = name {
                        p.name = name;
                    }
                }
                n
            }
            None => {
                if all.lists.values().filter(|p| p.account == user).count() >= MAX_LISTS {
                    return Err(Error::generic(format!(
                        "At most {MAX_LISTS} playlists per account"
                    )));
                }
                let n = all.next_id();
                all.lists.insert(
                    n,
                    OwnPlaylist {
                        id: n,
                        account: user.clone(),
                        name: name.unwrap_or_default(),
                        comment: String::new(),
                        public: false,
                        created: now,
                        changed: now,
                        tracks: songs,
                    },
                );
                n
            }
        };
        Ok((n, vec![put(all, n)]))
    })?;
    write_m3u(x);
    let all = x.server.listening.playlists();
    let p = all
        .lists
        .get(&n)
        .ok_or_else(|| Error::not_found("Playlist"))?;
    Ok(Node::new().one("playlist", with_entries(x, p)))
}

/// `updatePlaylist`: `playlistId`; `name`, `comment`, `public`; `songIndexToRemove`
/// (repeatable, positions before any change) and `songIdToAdd` (repeatable, appended).
pub fn update(x: &Ctx, p: &Params) -> Result<Node, Error> {
    x.may_write()?;
    let id = p.required("playlistId")?;
    let add = songs_of(x, p.all("songIdToAdd"))?;
    let mut remove: Vec<usize> = Vec::new();
    for r in p.all("songIndexToRemove") {
        remove.push(
            r.trim()
                .parse()
                .map_err(|_| Error::generic(format!("songIndexToRemove: not a number: {r}")))?,
        );
    }
    let public = match p.get("public") {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(v) => return Err(Error::generic(format!("public: true or false, not {v}"))),
    };
    x.server.listening.change_playlists(|all: &mut Playlists| {
        let n = editable(x, all, id)?;
        let Some(list) = all.lists.get_mut(&n) else {
            return Err(Error::not_found("Playlist"));
        };
        if remove.iter().any(|&r| r >= list.tracks.len()) {
            return Err(Error::not_found("Playlist entry"));
        }
        if list.tracks.len() - remove.len().min(list.tracks.len()) + add.len() > MAX_SONGS {
            return Err(Error::generic(format!(
                "A playlist holds at most {MAX_SONGS} songs"
            )));
        }
        let mut k = 0;
        list.tracks.retain(|_| {
            k += 1;
            !remove.contains(&(k - 1))
        });
        list.tracks.extend(add);
        if let Some(name) = p.get("name") {
            list.name = capped(name, MAX_NAME);
        }
        if let Some(comment) = p.get("comment") {
            list.comment = capped(comment, MAX_COMMENT);
        }
        if let Some(public) = public {
            list.public = public;
        }
        list.changed = now_s();
        Ok::<_, Error>(((), vec![put(all, n)]))
    })?;
    write_m3u(x);
    Ok(Node::new())
}

/// `deletePlaylist`: `id`, an own playlist.
pub fn delete(x: &Ctx, p: &Params) -> Result<Node, Error> {
    x.may_write()?;
    let id = p.required("id")?;
    x.server.listening.change_playlists(|all: &mut Playlists| {
        let n = editable(x, all, id)?;
        all.lists.remove(&n);
        Ok::<_, Error>(((), vec![put(all, n)]))
    })?;
    write_m3u(x);
    Ok(Node::new())
}

/// The folder of an account's M3U8 files.
pub fn m3u_dir(x: &Ctx) -> PathBuf {
    let account = m3u::file_name(&x.account.user);
    let account = account.strip_suffix(".m3u8").unwrap_or(&account);
    x.server.output_dir.join("users").join(account)
}

/// Writes the account's playlists as M3U8 (a failure is logged: the database has them).
fn write_m3u(x: &Ctx) {
    let lists: Vec<Playlist> = {
        let all = x.server.listening.playlists();
        all.lists
            .values()
            .filter(|p| p.account == x.account.user)
            .map(|p| {
                let mut list = Playlist::new(p.name.clone(), p.comment.clone());
                for i in p.tracks.iter().filter_map(|&t| x.catalog.track(t)) {
                    list.push(i, "");
                }
                list
            })
            .collect()
    };
    let dir = m3u_dir(x);
    if let Err(e) = m3u::write_all(&dir, &x.catalog.lib, &lists, true) {
        tracing::warn!("cannot write the playlists of {}: {e:#}", x.account.user);
    }
}
