//! Where a listener left off: the play queue (`savePlayQueue`, `getPlayQueue`) and bookmarks
//! (`createBookmark`, `deleteBookmark`, `getBookmarks`), per account.
//!
//! In: a [`Ctx`] and parameters. Out: response trees; changes are stored through
//! [`crate::server::listening`] before the answer. Songs deleted since are left out of the
//! answers; a comment is kept as given up to [`MAX_COMMENT`] characters.

use super::Ctx;
use super::browse::song;
use super::marks::MAX_IDS;
use super::protocol::{Error, Node, Params, iso8601};
use crate::server::listening::Account;
use crate::store::{Bookmark, PlayQueue, Write, now_s};

/// Longest bookmark comment kept, in characters.
pub const MAX_COMMENT: usize = 1000;
/// Most songs a saved queue holds.
const MAX_QUEUE: usize = 5000;

fn position_ms(p: &Params) -> Result<i64, Error> {
    Ok(p.number("position", 0i64)?.max(0))
}

/// `savePlayQueue`: `id` (repeatable, the queue in order; none clears it), `current`,
/// `position` (ms into `current`).
pub fn save_play_queue(x: &Ctx, p: &Params) -> Result<Node, Error> {
    x.may_write()?;
    let given = p.all("id");
    if given.len() > MAX_QUEUE {
        return Err(Error::generic(format!(
            "A queue holds at most {MAX_QUEUE} songs"
        )));
    }
    let mut tracks = Vec::with_capacity(given.len());
    for id in given {
        tracks.push(x.catalog.lib.tracks[x.song(id)?].id);
    }
    let current = match p.get("current").filter(|c| !c.is_empty()) {
        Some(c) => Some(x.catalog.lib.tracks[x.song(c)?].id),
        None => None,
    };
    let queue = (!tracks.is_empty()).then(|| PlayQueue {
        current: current.or(tracks.first().copied()),
        position_ms: position_ms(p).unwrap_or(0),
        changed: now_s(),
        changed_by: p.get("c").unwrap_or("").chars().take(64).collect(),
        tracks,
    });
    let user = x.account.user.as_str();
    x.server.listening.change(user, |a: &mut Account| {
        a.queue = queue.clone();
        Ok::<_, Error>((
            Node::new(),
            vec![Write::Queue {
                account: user.into(),
                queue,
            }],
        ))
    })
}

/// `getPlayQueue`: the saved queue (an empty one if none was saved).
pub fn play_queue(x: &Ctx) -> Node {
    let queue = x.marks().queue.clone();
    let user = x.account.user.as_str();
    let Some(q) = queue else {
        return Node::new().one(
            "playQueue",
            Node::new()
                .attr("username", user)
                .attr("changed", iso8601(x.catalog.loaded_at))
                .attr("changedBy", "")
                .attr("position", 0i64)
                .many("entry", Vec::new()),
        );
    };
    let entries = q
        .tracks
        .iter()
        .filter_map(|&id| x.catalog.track(id))
        .map(|i| song(x, i))
        .collect();
    Node::new().one(
        "playQueue",
        Node::new()
            .opt("current", q.current.map(|c| c.to_string()))
            .attr("position", q.position_ms)
            .attr("username", user)
            .attr("changed", iso8601(q.changed))
            .attr("changedBy", q.changed_by.as_str())
            .many("entry", entries),
    )
}

/// `createBookmark`: `id` (a song), `position` (ms), `comment`; replaces the song's bookmark.
pub fn create_bookmark(x: &Ctx, p: &Params) -> Result<Node, Error> {
    x.may_write()?;
    let track = x.catalog.lib.tracks[x.song(p.required("id")?)?].id;
    let position = position_ms(p)?;
    let comment: String = p
        .get("comment")
        .unwrap_or("")
        .chars()
        .take(MAX_COMMENT)
        .collect();
    let user = x.account.user.as_str();
    let now = now_s();
    x.server.listening.change(user, |a: &mut Account| {
        if !a.bookmarks.contains_key(&track) && a.bookmarks.len() >= MAX_IDS {
            return Err(Error::generic(format!(
                "At most {MAX_IDS} bookmarks: delete some first"
            )));
        }
        let created = a.bookmarks.get(&track).map_or(now, |b| b.created);
        let b = Bookmark {
            position_ms: position,
            comment,
            created,
            changed: now,
        };
        a.bookmarks.insert(track, b.clone());
        Ok((
            Node::new(),
            vec![Write::Bookmark {
                account: user.into(),
                track,
                bookmark: Some(b),
            }],
        ))
    })
}

pub fn delete_bookmark(x: &Ctx, p: &Params) -> Result<Node, Error> {
    x.may_write()?;
    let track = x.catalog.lib.tracks[x.song(p.required("id")?)?].id;
    let user = x.account.user.as_str();
    x.server.listening.change(user, |a: &mut Account| {
        if a.bookmarks.remove(&track).is_none() {
            return Err(Error::not_found("Bookmark"));
        }
        Ok((
            Node::new(),
            vec![Write::Bookmark {
                account: user.into(),
                track,
                bookmark: None,
            }],
        ))
    })
}

/// `getBookmarks`: the account's bookmarks, newest change first.
pub fn bookmarks(x: &Ctx) -> Node {
    let mut marks: Vec<(i64, Bookmark)> = x
        .marks()
        .bookmarks
        .iter()
        .map(|(&t, b)| (t, b.clone()))
        .collect();
    marks.sort_by_key(|(t, b)| (std::cmp::Reverse(b.changed), *t));
    let user = x.account.user.as_str();
    let nodes = marks
        .into_iter()
        .filter_map(|(t, b)| {
            let i = x.catalog.track(t)?;
            Some(
                Node::new()
                    .attr("position", b.position_ms)
                    .attr("username", user)
                    .attr("comment", b.comment)
                    .attr("created", iso8601(b.created))
                    .attr("changed", iso8601(b.changed))
                    .one("entry", song(x, i)),
            )
        })
        .collect();
    Node::new().one("bookmarks", Node::new().many("bookmark", nodes))
}
