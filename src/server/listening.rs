//! What listeners do, per account: stars, ratings, plays, skips, the play queue, bookmarks and
//! own playlists, kept in memory and written behind to SQLite by one writer thread.
//!
//! In: changes from the Subsonic endpoints ([`Listening::change`],
//! [`Listening::change_playlists`]), the rows stored by earlier runs. Out: the current state
//! for answers ([`Listening::account`], [`Listening::playlists`]) and [`Taste`], what the
//! radio learns for one listener.
//!
//! Reads never wait for the disk: they take a short read lock on the account's state. A change
//! takes the account's write lock, changes the state, queues the changed rows (whole rows, so
//! order is all that matters, and they are queued under the lock) and then waits, without the
//! lock, for the writer to commit them: a client told "ok" finds its change after a restart.
//! The writer takes everything queued into one transaction, so a burst of scrobbles is a few
//! commits. At most [`MAX_PENDING`] changes wait at once; beyond that a change is refused
//! (busy) before it touches anything, so a flood of writes is bounded and reads go on.
//!
//! Skips: a song started (scrobble `submission=false`) and followed by another start before it
//! was submitted, within half its length or four minutes (when a play would count, as
//! Last.fm counts them), was skipped; so was the step from the song before it.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{RwLock, RwLockReadGuard};
use std::time::Duration;

use anyhow::{Context, Result};

use crate::playlist::taste::{Nudge, Taste};
use crate::store::{
    Bookmark, ItemMark, Listened, OwnPlaylist, PlayQueue, SongMark, Store, Tuning, Write,
};

/// Most changes waiting for the writer at once.
pub const MAX_PENDING: usize = 1024;
/// How long a change waits for its commit before the client is told it failed.
const COMMIT_WAIT: Duration = Duration::from_secs(10);
/// A start this long (or half the song) after the previous one is not a skip of it.
const PLAY_COUNTS_AFTER_S: f64 = 240.0;

/// One account's state.
#[derive(Debug, Default)]
pub struct Account {
    /// By track id.
    pub songs: HashMap<i64, SongMark>,
    /// By album (`al-…`) or artist (`ar-…`) id.
    pub items: HashMap<String, ItemMark>,
    /// `(from, to)` track ids: how often `to` was skipped right after `from`.
    pub skipped_after: HashMap<(i64, i64), u32>,
    pub queue: Option<PlayQueue>,
    /// By track id.
    pub bookmarks: HashMap<i64, Bookmark>,
    /// The song last started, for `getNowPlaying` and skip detection.
    pub playing: Option<Playing>,
}

#[derive(Debug, Clone)]
pub struct Playing {
    pub track: i64,
    /// Unix seconds.
    pub started: i64,
    pub client: String,
    /// Submitted as played since it started.
    pub submitted: bool,
    /// The song started before it.
    pub previous: Option<i64>,
}

/// The own playlists of every account.
#[derive(Debug, Default)]
pub struct Playlists {
    pub lists: BTreeMap<i64, OwnPlaylist>,
    next_id: i64,
}

impl Playlists {
    /// A fresh id for a new playlist.
    pub fn next_id(&mut self) -> i64 {
        self.next_id += 1;
        self.next_id
    }
}

/// Why a change was not made.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// Too many changes wait already.
    Busy,
    /// Not stored (the database failed); the message says why.
    NotSaved(String),
}

type Job = (Vec<Write>, mpsc::Sender<std::result::Result<(), String>>);

pub struct Listening {
    accounts: HashMap<String, RwLock<Account>>,
    /// What an account that is not configured reads.
    nobody: RwLock<Account>,
    playlists: RwLock<Playlists>,
    writer: mpsc::Sender<Job>,
    pending: std::sync::Arc<AtomicUsize>,
}

impl Listening {
    /// Loads what `accounts` did from the database at `db` and starts the writer.
    pub fn open(db: &Path, tuning: Tuning, accounts: &[&str]) -> Result<Listening> {
        let mut store = Store::open(db, tuning)?;
        let stored = store.listened().context("cannot read the listening data")?;
        let (accounts, playlists) = assemble(stored, accounts);
        let (writer, jobs) = mpsc::channel::<Job>();
        let pending = std::sync::Arc::new(AtomicUsize::new(0));
        let done = pending.clone();
        std::thread::Builder::new()
            .name("playlista-listening".into())
            .spawn(move || {
                while let Ok(first) = jobs.recv() {
                    let mut batch = vec![first];
                    batch.extend(jobs.try_iter().take(MAX_PENDING));
                    let writes: Vec<Write> =
                        batch.iter().flat_map(|(w, _)| w.iter().cloned()).collect();
                    let outcome = store.apply(&writes).map_err(|e| format!("{e:#}"));
                    if let Ok(failed) = &outcome {
                        for (i, why) in failed {
                            tracing::warn!("listening data not stored ({why}): {:?}", writes[*i]);
                        }
                    }
                    for (_, reply) in &batch {
                        let _ = reply.send(outcome.as_ref().map(|_| ()).map_err(Clone::clone));
                    }
                    done.fetch_sub(batch.len(), Ordering::Relaxed);
                }
            })?;
        Ok(Listening {
            accounts,
            nobody: RwLock::default(),
            playlists: RwLock::new(playlists),
            writer,
            pending,
        })
    }

    /// The state of `account`, for reading (empty for one that is not configured).
    pub fn account(&self, account: &str) -> RwLockReadGuard<'_, Account> {
        self.accounts
            .get(account)
            .unwrap_or(&self.nobody)
            .read()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// The configured accounts' names.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.accounts.keys().map(String::as_str)
    }

    pub fn playlists(&self) -> RwLockReadGuard<'_, Playlists> {
        self.playlists.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Changes `account`'s state with `f`, which returns the rows it changed (or an answer
    /// that changes nothing, `Err`), and waits until they are stored.
    pub fn change<T, E: From<Refused>>(
        &self,
        account: &str,
        f: impl FnOnce(&mut Account) -> std::result::Result<(T, Vec<Write>), E>,
    ) -> std::result::Result<T, E> {
        let state = self
            .accounts
            .get(account)
            .ok_or(Refused::NotSaved(format!("no account {account}")))?;
        self.write(state, f)
    }

    /// The same for the own playlists.
    pub fn change_playlists<T, E: From<Refused>>(
        &self,
        f: impl FnOnce(&mut Playlists) -> std::result::Result<(T, Vec<Write>), E>,
    ) -> std::result::Result<T, E> {
        self.write(&self.playlists, f)
    }

    fn write<S, T, E: From<Refused>>(
        &self,
        state: &RwLock<S>,
        f: impl FnOnce(&mut S) -> std::result::Result<(T, Vec<Write>), E>,
    ) -> std::result::Result<T, E> {
        if self.pending.fetch_add(1, Ordering::Relaxed) >= MAX_PENDING {
            self.pending.fetch_sub(1, Ordering::Relaxed);
            return Err(Refused::Busy.into());
        }
        let (reply, committed) = mpsc::channel();
        let queued = {
            let mut s = state.write().unwrap_or_else(|e| e.into_inner());
            match f(&mut s) {
                Ok((answer, writes)) if writes.is_empty() => Err(Ok(answer)),
                Ok((answer, writes)) => match self.writer.send((writes, reply)) {
                    Ok(()) => Ok(answer),
                    Err(_) => Err(Err(Refused::NotSaved("the writer stopped".into()).into())),
                },
                Err(e) => Err(Err(e)),
            }
        };
        let answer = match queued {
            Ok(answer) => answer,
            Err(now) => {
                self.pending.fetch_sub(1, Ordering::Relaxed);
                return now;
            }
        };
        match committed.recv_timeout(COMMIT_WAIT) {
            Ok(Ok(())) => Ok(answer),
            Ok(Err(why)) => Err(Refused::NotSaved(why).into()),
            Err(_) => Err(Refused::NotSaved("the database did not answer in time".into()).into()),
        }
    }
}

/// The stored rows as per-account state; rows of accounts no longer configured stay in the
/// database, unread.
fn assemble(stored: Listened, names: &[&str]) -> (HashMap<String, RwLock<Account>>, Playlists) {
    let mut accounts: HashMap<String, Account> = names
        .iter()
        .map(|n| (n.to_string(), Account::default()))
        .collect();
    for (account, track, mark) in stored.songs {
        if let Some(a) = accounts.get_mut(&account) {
            a.songs.insert(track, mark);
        }
    }
    for (account, item, mark) in stored.items {
        if let Some(a) = accounts.get_mut(&account) {
            a.items.insert(item, mark);
        }
    }
    for (account, from, to, skips) in stored.skipped_after {
        if let Some(a) = accounts.get_mut(&account) {
            a.skipped_after.insert((from, to), skips);
        }
    }
    for (account, queue) in stored.queues {
        if let Some(a) = accounts.get_mut(&account) {
            a.queue = Some(queue);
        }
    }
    for (account, track, bookmark) in stored.bookmarks {
        if let Some(a) = accounts.get_mut(&account) {
            a.bookmarks.insert(track, bookmark);
        }
    }
    let next_id = stored.playlists.iter().map(|p| p.id).max().unwrap_or(0);
    let playlists = Playlists {
        lists: stored.playlists.into_iter().map(|p| (p.id, p)).collect(),
        next_id,
    };
    (
        accounts
            .into_iter()
            .map(|(k, v)| (k, RwLock::new(v)))
            .collect(),
        playlists,
    )
}

impl Account {
    /// A song's marks, changed by `f`; the row to store.
    pub fn mark_song(&mut self, account: &str, track: i64, f: impl FnOnce(&mut SongMark)) -> Write {
        let mark = self.songs.entry(track).or_default();
        f(mark);
        let mark = mark.clone();
        if mark.is_empty() {
            self.songs.remove(&track);
        }
        Write::Song {
            account: account.into(),
            track,
            mark,
        }
    }

    pub fn mark_item(&mut self, account: &str, item: &str, f: impl FnOnce(&mut ItemMark)) -> Write {
        let mark = self.items.entry(item.to_string()).or_default();
        f(mark);
        let mark = mark.clone();
        if mark == ItemMark::default() {
            self.items.remove(item);
        }
        Write::Item {
            account: account.into(),
            item: item.into(),
            mark,
        }
    }

    /// `track` (`duration_s` long) started at `at` on `client`: the rows a skip of the song
    /// playing before it changes (none if it was not skipped).
    pub fn started(
        &mut self,
        account: &str,
        track: i64,
        at: i64,
        client: &str,
        duration_of: impl Fn(i64) -> Option<f64>,
    ) -> Vec<Write> {
        let mut writes = Vec::new();
        let before = self.playing.take();
        if let Some(p) = &before {
            let elapsed = (at - p.started) as f64;
            let counts_after = duration_of(p.track)
                .map_or(PLAY_COUNTS_AFTER_S, |d| (d / 2.0).min(PLAY_COUNTS_AFTER_S));
            if p.track != track && !p.submitted && (0.0..counts_after).contains(&elapsed) {
                writes.push(self.mark_song(account, p.track, |m| {
                    let n = f64::from(m.skips);
                    m.skip_after_s = Some(
                        m.skip_after_s
                            .map_or(elapsed, |s| (s * n + elapsed) / (n + 1.0)),
                    );
                    m.skips += 1;
                }));
                if let Some(from) = p.previous {
                    let skips = self.skipped_after.entry((from, p.track)).or_default();
                    *skips += 1;
                    writes.push(Write::SkippedAfter {
                        account: account.into(),
                        from,
                        to: p.track,
                        skips: *skips,
                    });
                }
            }
        }
        let same = before.as_ref().filter(|p| p.track == track);
        self.playing = Some(Playing {
            track,
            started: same.map_or(at, |p| p.started),
            client: client.to_string(),
            submitted: same.is_some_and(|p| p.submitted),
            previous: match same {
                Some(p) => p.previous,
                None => before.map(|p| p.track),
            },
        });
        writes
    }

    /// `track` was played to the end (submitted) at `at`.
    pub fn played(&mut self, account: &str, track: i64, at: i64) -> Write {
        if let Some(p) = self.playing.as_mut().filter(|p| p.track == track) {
            p.submitted = true;
        }
        self.mark_song(account, track, |m| {
            m.plays += 1;
            m.last_played = Some(m.last_played.map_or(at, |l| l.max(at)));
        })
    }

    /// What the radio learns from this listener: per track id, how far it moves and why.
    pub fn taste(&self) -> Taste<i64> {
        let mut taste = Taste::default();
        for (&track, m) in &self.songs {
            if let Some(nudge) = Nudge::of(
                m.skips,
                m.skip_after_s,
                m.plays,
                m.starred_at.is_some(),
                m.rating,
            ) {
                taste.tracks.insert(track, nudge);
            }
        }
        taste.after = self.skipped_after.clone();
        taste
    }
}
