//! One analysis run at a time per database: an advisory lock (`flock`) on the file `DB.lock`
//! beside the database, held by every analysis run (`playlista -a` and friends, `serve`'s
//! background run, the demo, the benchmark) for its whole length. The holder writes its pid
//! and start time into the file, so that another run can say whom it waits for.
//!
//! In: the database's path, what to do when another run holds the lock ([`WhenBusy`]), a
//! stop flag. Out: a [`RunLock`] (released when dropped, and by the kernel when the process
//! dies however it dies), or [`Held`] naming the holder. The lock file is written in place
//! and never grows after its first write, so taking the lock on a full disk fails only when
//! the file is new (with the full disk named, see [`super::fault`]).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::{fault, now_s};

/// What a run does when another run holds the lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenBusy {
    /// Wait until it is released.
    Wait,
    /// Give up at once with [`Held`].
    GiveUp,
}

/// The run that holds the lock, as written in the lock file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Holder {
    pub pid: u32,
    /// Unix seconds.
    pub started_at: i64,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the analysis run of pid {}", self.pid)?;
        match crate::os::local_time(self.started_at) {
            Some(at) => write!(f, " (started at {at})"),
            None => Ok(()),
        }
    }
}

/// Another run holds the lock (and [`WhenBusy::GiveUp`] was asked).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{} is analysing into {}", self.who(), .db.display())]
pub struct Held {
    /// None when the holder has not written itself down yet (or died a moment ago).
    pub holder: Option<Holder>,
    pub db: PathBuf,
}

impl Held {
    /// The holder in words; "another analysis run" when it is not known.
    pub fn who(&self) -> String {
        self.holder
            .map_or_else(|| "another analysis run".to_string(), |h| h.to_string())
    }
}

/// Bytes the holder record takes: written in place, padded with spaces.
const RECORD: usize = 64;
/// How often a waiting run tries the lock again.
const POLL: Duration = Duration::from_millis(100);
/// How long a run that found the lock held waits for the holder to write itself down before
/// it speaks of "another analysis run".
const NAMING: Duration = Duration::from_secs(1);

/// The analysis lock of one database, held until dropped.
#[derive(Debug)]
pub struct RunLock {
    file: File,
}

impl RunLock {
    /// The lock file of the database `db`: `playlista.db.lock` beside `playlista.db`.
    pub fn path(db: &Path) -> PathBuf {
        let mut name = db.file_name().unwrap_or_default().to_os_string();
        name.push(".lock");
        db.with_file_name(name)
    }

    /// Takes the lock of `db`. When another run holds it: [`WhenBusy::GiveUp`] fails with
    /// [`Held`]; [`WhenBusy::Wait`] tells `waiting` once who holds it, then waits until it is
    /// free, or until `stop` is set (then `Ok(None)`).
    pub fn take(
        db: &Path,
        when_busy: WhenBusy,
        stop: &AtomicBool,
        waiting: &mut dyn FnMut(&Held),
    ) -> Result<Option<RunLock>> {
        Self::take_inner(db, when_busy, stop, waiting).map_err(|e| fault::explain(e, db))
    }

    fn take_inner(
        db: &Path,
        when_busy: WhenBusy,
        stop: &AtomicBool,
        waiting: &mut dyn FnMut(&Held),
    ) -> Result<Option<RunLock>> {
        super::create_folder(db)?;
        let path = Self::path(db);
        let opened = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path);
        // Another user's lock file (a run as root made it): it locks all the same, read-only;
        // this run just cannot write its name in it.
        let (file, writable) = match opened {
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                (File::open(&path), false)
            }
            opened => (opened, true),
        };
        let file = file.with_context(|| format!("cannot open the lock file {}", path.display()))?;
        let locked = |file: &File| {
            crate::os::try_lock(file).with_context(|| format!("cannot lock {}", path.display()))
        };
        let busy_since = Instant::now();
        let mut told = false;
        while !locked(&file)? {
            let holder = read_holder(&file);
            let known = holder.is_some() || busy_since.elapsed() >= NAMING;
            if known && when_busy == WhenBusy::GiveUp {
                return Err(Held {
                    holder,
                    db: db.to_path_buf(),
                }
                .into());
            }
            if known && !told {
                waiting(&Held {
                    holder,
                    db: db.to_path_buf(),
                });
                told = true;
            }
            if stop.load(Ordering::Relaxed) {
                return Ok(None);
            }
            std::thread::sleep(POLL);
        }
        if writable {
            let record = format!("{} {}", std::process::id(), now_s());
            write_record(&file, &record)
                .with_context(|| format!("cannot write the lock file {}", path.display()))?;
        }
        Ok(Some(RunLock { file }))
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // Blanked before it is released, so nobody is named after it has gone. Best-effort:
        // a stale record names a pid that no longer exists, which readers ignore.
        let _ = write_record(&self.file, "");
    }
}

/// Writes `text` at the start of the lock file, padded with spaces to [`RECORD`] bytes.
fn write_record(file: &File, text: &str) -> std::io::Result<()> {
    let mut record = [b' '; RECORD];
    let n = text.len().min(RECORD - 1);
    record[..n].copy_from_slice(&text.as_bytes()[..n]);
    record[RECORD - 1] = b'\n';
    file.write_all_at(&record, 0)
}

/// The holder written in the lock file, if it is there and alive.
fn read_holder(file: &File) -> Option<Holder> {
    let mut record = [0u8; RECORD];
    let n = file.read_at(&mut record, 0).ok()?;
    let text = std::str::from_utf8(&record[..n]).ok()?;
    let mut words = text.split_whitespace();
    let holder = Holder {
        pid: words.next()?.parse().ok()?,
        started_at: words.next()?.parse().ok()?,
    };
    crate::os::process_exists(holder.pid).then_some(holder)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn never(_: &Held) {
        panic!("nobody holds the lock");
    }

    #[test]
    fn one_holder_at_a_time_and_the_next_one_is_told_who() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("state/playlista.db");
        let stop = AtomicBool::new(false);
        let first = RunLock::take(&db, WhenBusy::Wait, &stop, &mut never)
            .unwrap()
            .unwrap();
        assert_eq!(
            RunLock::path(&db),
            dir.path().join("state/playlista.db.lock")
        );

        // This process holds it: a second taker is told so, or waits.
        let err = RunLock::take(&db, WhenBusy::GiveUp, &stop, &mut never).unwrap_err();
        let held = err.downcast_ref::<Held>().expect("Held");
        let holder = held.holder.expect("the holder is named");
        assert_eq!(holder.pid, std::process::id());
        assert!((holder.started_at - now_s()).abs() < 60);
        assert!(
            err.to_string().starts_with(&format!(
                "the analysis run of pid {} (started at ",
                std::process::id()
            )),
            "{err}"
        );
        let released = std::thread::scope(|s| {
            let waiter = s.spawn(|| {
                let mut told = Vec::new();
                let lock = RunLock::take(&db, WhenBusy::Wait, &stop, &mut |h| {
                    told.push(h.holder);
                });
                (lock.unwrap().is_some(), told)
            });
            std::thread::sleep(Duration::from_millis(300));
            drop(first);
            waiter.join().unwrap()
        });
        assert_eq!(
            released,
            (true, vec![Some(holder)]),
            "told once, then taken"
        );

        // Released: the record is blank and the lock free.
        let lock = RunLock::take(&db, WhenBusy::GiveUp, &stop, &mut never).unwrap();
        assert!(lock.is_some());
    }

    #[test]
    fn a_stop_ends_the_wait() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("playlista.db");
        let stop = AtomicBool::new(false);
        let _held = RunLock::take(&db, WhenBusy::Wait, &stop, &mut never).unwrap();
        stop.store(true, Ordering::Relaxed);
        let mut told = 0;
        let lock = RunLock::take(&db, WhenBusy::Wait, &stop, &mut |_| told += 1).unwrap();
        assert!(lock.is_none());
        assert_eq!(told, 1);
    }

    #[test]
    fn a_stale_or_blank_record_names_nobody() {
        let dir = tempfile::tempdir().unwrap();
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.path().join("x.lock"))
            .unwrap();
        write_record(&file, "").unwrap();
        assert_eq!(read_holder(&file), None);
        // pid_t is 32-bit: u32::MAX - 1 is no process.
        write_record(&file, &format!("{} 1700000000", u32::MAX - 1)).unwrap();
        assert_eq!(read_holder(&file), None);
        write_record(&file, &format!("{} 1700000000", std::process::id())).unwrap();
        assert_eq!(
            read_holder(&file),
            Some(Holder {
                pid: std::process::id(),
                started_at: 1_700_000_000
            })
        );
        let unknown = Held {
            holder: None,
            db: PathBuf::from("/x/playlista.db"),
        };
        assert_eq!(
            unknown.to_string(),
            "another analysis run is analysing into /x/playlista.db"
        );
    }
}
