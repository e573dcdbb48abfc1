//! What listeners do, per account (schema step 5): stars and ratings of songs, albums and
//! artists, plays and skips, the skipped transitions, the play queue, bookmarks and the
//! account's own playlists.
//!
//! In: [`Write`]s, each the whole new state of one row (so applying one twice changes
//! nothing). Out: everything stored ([`Listened`]), read once when the server starts; the
//! server keeps it in memory and is the only writer. These tables are apart from the
//! analysis: re-analysis and playlist regeneration never touch them, a moved file keeps its
//! track id and so its rows, a deleted track takes its rows with it (`ON DELETE CASCADE`).

use anyhow::Result;
use rusqlite::{TransactionBehavior, params};

use super::Store;

/// A song's marks for one account.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SongMark {
    /// Unix seconds.
    pub starred_at: Option<i64>,
    /// 1..=5.
    pub rating: Option<u8>,
    pub plays: u32,
    /// Unix seconds of the last completed play.
    pub last_played: Option<i64>,
    pub skips: u32,
    /// Mean seconds into the song at which it was skipped.
    pub skip_after_s: Option<f64>,
}

impl SongMark {
    /// Nothing kept: the row can go.
    pub fn is_empty(&self) -> bool {
        *self == SongMark::default()
    }
}

/// An album's or an artist's marks for one account.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ItemMark {
    pub starred_at: Option<i64>,
    pub rating: Option<u8>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlayQueue {
    pub current: Option<i64>,
    pub position_ms: i64,
    /// Unix seconds.
    pub changed: i64,
    /// The client that saved it.
    pub changed_by: String,
    pub tracks: Vec<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Bookmark {
    pub position_ms: i64,
    pub comment: String,
    pub created: i64,
    pub changed: i64,
}

/// A playlist a listener made (the generated ones are in `playlists`).
#[derive(Debug, Clone, PartialEq)]
pub struct OwnPlaylist {
    pub id: i64,
    pub account: String,
    pub name: String,
    pub comment: String,
    pub public: bool,
    pub created: i64,
    pub changed: i64,
    /// Track ids in play order.
    pub tracks: Vec<i64>,
}

/// One row's new state (`None`: the row goes).
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    Song {
        account: String,
        track: i64,
        mark: SongMark,
    },
    Item {
        account: String,
        item: String,
        mark: ItemMark,
    },
    SkippedAfter {
        account: String,
        from: i64,
        to: i64,
        skips: u32,
    },
    Queue {
        account: String,
        queue: Option<PlayQueue>,
    },
    Bookmark {
        account: String,
        track: i64,
        bookmark: Option<Bookmark>,
    },
    Playlist {
        id: i64,
        playlist: Option<OwnPlaylist>,
    },
}

/// Everything stored, as rows.
#[derive(Debug, Default)]
pub struct Listened {
    pub songs: Vec<(String, i64, SongMark)>,
    pub items: Vec<(String, String, ItemMark)>,
    /// `(account, from track, to track, skips)`.
    pub skipped_after: Vec<(String, i64, i64, u32)>,
    pub queues: Vec<(String, PlayQueue)>,
    pub bookmarks: Vec<(String, i64, Bookmark)>,
    /// By id.
    pub playlists: Vec<OwnPlaylist>,
}

fn rating(v: Option<i64>) -> Option<u8> {
    v.and_then(|r| u8::try_from(r).ok())
        .filter(|r| (1..=5).contains(r))
}

/// Track ids as stored in one text column: `1,2,3`.
fn ids_text(ids: &[i64]) -> String {
    ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
}

fn ids_of(text: &str) -> Vec<i64> {
    text.split(',').filter_map(|t| t.parse().ok()).collect()
}

impl Store {
    /// Every stored row of what listeners did.
    pub fn listened(&self) -> Result<Listened> {
        let mut out = Listened::default();
        let mut stmt = self.conn.prepare(
            "SELECT account, track_id, starred_at, rating, plays, last_played, skips,
                    skip_after_s FROM song_marks",
        )?;
        out.songs = stmt
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    SongMark {
                        starred_at: r.get(2)?,
                        rating: rating(r.get(3)?),
                        plays: r.get(4)?,
                        last_played: r.get(5)?,
                        skips: r.get(6)?,
                        skip_after_s: r.get(7)?,
                    },
                ))
            })?
            .collect::<rusqlite::Result<_>>()?;
        let mut stmt = self
            .conn
            .prepare("SELECT account, item, starred_at, rating FROM item_marks")?;
        out.items = stmt
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    ItemMark {
                        starred_at: r.get(2)?,
                        rating: rating(r.get(3)?),
                    },
                ))
            })?
            .collect::<rusqlite::Result<_>>()?;
        let mut stmt = self
            .conn
            .prepare("SELECT account, from_track, to_track, skips FROM skipped_after")?;
        out.skipped_after = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let mut stmt = self.conn.prepare(
            "SELECT account, current, position_ms, changed, changed_by, tracks FROM play_queues",
        )?;
        out.queues = stmt
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    PlayQueue {
                        current: r.get(1)?,
                        position_ms: r.get(2)?,
                        changed: r.get(3)?,
                        changed_by: r.get(4)?,
                        tracks: ids_of(&r.get::<_, String>(5)?),
                    },
                ))
            })?
            .collect::<rusqlite::Result<_>>()?;
        let mut stmt = self.conn.prepare(
            "SELECT account, track_id, position_ms, comment, created, changed FROM bookmarks",
        )?;
        out.bookmarks = stmt
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    Bookmark {
                        position_ms: r.get(2)?,
                        comment: r.get(3)?,
                        created: r.get(4)?,
                        changed: r.get(5)?,
                    },
                ))
            })?
            .collect::<rusqlite::Result<_>>()?;
        let mut stmt = self.conn.prepare(
            "SELECT p.id, p.account, p.name, p.comment, p.public, p.created, p.changed,
                    group_concat(t.track_id, ',')
             FROM own_playlists p
             LEFT JOIN (SELECT * FROM own_playlist_tracks ORDER BY playlist_id, position) t
               ON t.playlist_id = p.id
             GROUP BY p.id ORDER BY p.id",
        )?;
        out.playlists = stmt
            .query_map([], |r| {
                Ok(OwnPlaylist {
                    id: r.get(0)?,
                    account: r.get(1)?,
                    name: r.get(2)?,
                    comment: r.get(3)?,
                    public: r.get(4)?,
                    created: r.get(5)?,
                    changed: r.get(6)?,
                    tracks: ids_of(&r.get::<_, Option<String>>(7)?.unwrap_or_default()),
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(out)
    }

    /// Applies `writes` in one transaction, each in a savepoint of its own: a write that
    /// fails (its track was deleted meanwhile) is rolled back alone and reported as
    /// `(index, error)`; the others commit. The transaction takes the write lock first
    /// (`BEGIN IMMEDIATE`): another writer is waited for, never met half-way.
    pub fn apply(&mut self, writes: &[Write]) -> Result<Vec<(usize, String)>> {
        let mut tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut failed = Vec::new();
        for (i, w) in writes.iter().enumerate() {
            let sp = tx.savepoint()?;
            match apply_one(&sp, w) {
                Ok(()) => sp.commit()?,
                Err(e) => {
                    failed.push((i, e.to_string()));
                    drop(sp); // rolls back this write only
                }
            }
        }
        tx.commit()?;
        Ok(failed)
    }
}

fn apply_one(c: &rusqlite::Connection, w: &Write) -> rusqlite::Result<()> {
    match w {
        Write::Song {
            account,
            track,
            mark,
        } if mark.is_empty() => {
            c.execute(
                "DELETE FROM song_marks WHERE account = ?1 AND track_id = ?2",
                params![account, track],
            )?;
        }
        Write::Song {
            account,
            track,
            mark,
        } => {
            c.execute(
                "INSERT OR REPLACE INTO song_marks (account, track_id, starred_at, rating, plays,
                     last_played, skips, skip_after_s) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    account,
                    track,
                    mark.starred_at,
                    mark.rating,
                    mark.plays,
                    mark.last_played,
                    mark.skips,
                    mark.skip_after_s
                ],
            )?;
        }
        Write::Item {
            account,
            item,
            mark,
        } => {
            if *mark == ItemMark::default() {
                c.execute(
                    "DELETE FROM item_marks WHERE account = ?1 AND item = ?2",
                    params![account, item],
                )?;
            } else {
                c.execute(
                    "INSERT OR REPLACE INTO item_marks (account, item, starred_at, rating)
                     VALUES (?1, ?2, ?3, ?4)",
                    params![account, item, mark.starred_at, mark.rating],
                )?;
            }
        }
        Write::SkippedAfter {
            account,
            from,
            to,
            skips,
        } => {
            c.execute(
                "INSERT OR REPLACE INTO skipped_after (account, from_track, to_track, skips)
                 VALUES (?1, ?2, ?3, ?4)",
                params![account, from, to, skips],
            )?;
        }
        Write::Queue { account, queue } => {
            c.execute("DELETE FROM play_queues WHERE account = ?1", [account])?;
            if let Some(q) = queue {
                c.execute(
                    "INSERT INTO play_queues (account, current, position_ms, changed, changed_by,
                         tracks) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![
                        account,
                        q.current,
                        q.position_ms,
                        q.changed,
                        q.changed_by,
                        ids_text(&q.tracks)
                    ],
                )?;
            }
        }
        Write::Bookmark {
            account,
            track,
            bookmark,
        } => {
            c.execute(
                "DELETE FROM bookmarks WHERE account = ?1 AND track_id = ?2",
                params![account, track],
            )?;
            if let Some(b) = bookmark {
                c.execute(
                    "INSERT INTO bookmarks (account, track_id, position_ms, comment, created,
                         changed) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![
                        account,
                        track,
                        b.position_ms,
                        b.comment,
                        b.created,
                        b.changed
                    ],
                )?;
            }
        }
        Write::Playlist { id, playlist } => {
            c.execute("DELETE FROM own_playlists WHERE id = ?1", [id])?;
            if let Some(p) = playlist {
                c.execute(
                    "INSERT INTO own_playlists (id, account, name, comment, public, created,
                         changed) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![
                        id, p.account, p.name, p.comment, p.public, p.created, p.changed
                    ],
                )?;
                // A track deleted since the request is left out, not the whole list.
                let mut insert = c.prepare_cached(
                    "INSERT INTO own_playlist_tracks (playlist_id, position, track_id)
                     SELECT ?1, ?2, ?3 WHERE EXISTS (SELECT 1 FROM tracks WHERE id = ?3)",
                )?;
                for (pos, track) in p.tracks.iter().enumerate() {
                    insert.execute(params![id, pos as i64, track])?;
                }
            }
        }
    }
    Ok(())
}
