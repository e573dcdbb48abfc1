//! Stored playlists (`playlists`, `playlist_tracks`): what [`crate::playlist`] stores and the
//! server reads back.

use anyhow::Result;
use rusqlite::{Transaction, TransactionBehavior, params};

use super::{Store, now_s};

/// A playlist to store: its tracks in order, each with the reason it is there.
#[derive(Debug, Clone, PartialEq)]
pub struct PlaylistRow<'a> {
    pub name: &'a str,
    pub rule: &'a str,
    /// The settings that made it: an update with other settings regenerates.
    pub settings: &'a str,
    /// `(track id, why)` in play order.
    pub tracks: Vec<(i64, &'a str)>,
}

/// A stored playlist as read back (tracks that were deleted are gone).
#[derive(Debug, Clone, PartialEq)]
pub struct SavedPlaylist {
    pub id: i64,
    pub method: String,
    pub name: String,
    pub rule: String,
    pub settings: String,
    /// Unix seconds of the last change.
    pub updated_at: i64,
    /// `(track id, why)` in play order.
    pub tracks: Vec<(i64, String)>,
}

impl Store {
    /// The stored playlists of `method`, in the order they were stored.
    pub fn saved_playlists(&self, method: &str) -> Result<Vec<SavedPlaylist>> {
        self.playlists_where(Some(method))
    }

    /// Every stored playlist of every method, by id (what the server shows).
    pub fn all_playlists(&self) -> Result<Vec<SavedPlaylist>> {
        self.playlists_where(None)
    }

    fn playlists_where(&self, method: Option<&str>) -> Result<Vec<SavedPlaylist>> {
        let mut stmt = self.conn.prepare(
            "SELECT p.id, p.method, p.name, p.rule, p.settings, p.updated_at, pt.track_id, pt.why
             FROM playlists p LEFT JOIN playlist_tracks pt ON pt.playlist_id = p.id
             WHERE ?1 IS NULL OR p.method = ?1 ORDER BY p.id, pt.position",
        )?;
        let mut rows = stmt.query([method])?;
        let mut out: Vec<SavedPlaylist> = Vec::new();
        while let Some(r) = rows.next()? {
            let id: i64 = r.get(0)?;
            if out.last().map(|p| p.id) != Some(id) {
                out.push(SavedPlaylist {
                    id,
                    method: r.get(1)?,
                    name: r.get(2)?,
                    rule: r.get(3)?,
                    settings: r.get(4)?,
                    updated_at: r.get(5)?,
                    tracks: Vec::new(),
                });
            }
            let track: Option<i64> = r.get(6)?;
            if let (Some(t), Some(p)) = (track, out.last_mut()) {
                p.tracks
                    .push((t, r.get::<_, Option<String>>(7)?.unwrap_or_default()));
            }
        }
        Ok(out)
    }

    /// Stores playlists of `method` in one transaction: each replaces the stored playlist of
    /// its name (keeping its creation time); with `replace_method`, the method's other
    /// playlists are deleted. Stored order (`id`) follows `lists` for new playlists. The
    /// transaction takes the write lock first (`BEGIN IMMEDIATE`), so a save that meets
    /// another writer waits for it (the busy timeout) instead of failing.
    pub fn save_playlists(
        &self,
        method: &str,
        lists: &[PlaylistRow<'_>],
        replace_method: bool,
    ) -> Result<()> {
        let tx = Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)?;
        let now = now_s();
        if replace_method {
            let names: std::collections::HashSet<&str> = lists.iter().map(|p| p.name).collect();
            let mut stmt = tx.prepare("SELECT id, name FROM playlists WHERE method = ?1")?;
            let stale: Vec<i64> = stmt
                .query_map([method], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
                })?
                .filter_map(|r| match r {
                    Ok((id, name)) if !names.contains(name.as_str()) => Some(Ok(id)),
                    Ok(_) => None,
                    Err(e) => Some(Err(e)),
                })
                .collect::<rusqlite::Result<_>>()?;
            drop(stmt);
            for id in stale {
                tx.execute("DELETE FROM playlists WHERE id = ?1", [id])?;
            }
        }
        {
            let mut upsert = tx.prepare(
                "INSERT INTO playlists (method, name, created_at, updated_at, rule, settings)
                 VALUES (?1, ?2, ?3, ?3, ?4, ?5)
                 ON CONFLICT (method, name) DO UPDATE SET
                     updated_at = excluded.updated_at, rule = excluded.rule,
                     settings = excluded.settings
                 RETURNING id",
            )?;
            let mut clear = tx.prepare("DELETE FROM playlist_tracks WHERE playlist_id = ?1")?;
            let mut place = tx.prepare(
                "INSERT INTO playlist_tracks (playlist_id, position, track_id, why)
                 VALUES (?1, ?2, ?3, ?4)",
            )?;
            for p in lists {
                let id: i64 = upsert
                    .query_row(params![method, p.name, now, p.rule, p.settings], |r| {
                        r.get(0)
                    })?;
                clear.execute([id])?;
                for (pos, (track, why)) in p.tracks.iter().enumerate() {
                    place.execute(params![id, pos as i64, track, why])?;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }
}
