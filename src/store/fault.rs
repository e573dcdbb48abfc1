//! What a failed database operation means to a person: SQLite's result codes, and the OS
//! errors under the files beside the database, turned into the cause in words, with the
//! folder and the database named.
//!
//! In: an error from opening or writing the store (a [`rusqlite::Error`] or an
//! [`std::io::Error`] anywhere in its `anyhow` chain) and the database's path. Out: the same
//! error with the cause put in front (`no space left on device under /var/lib/playlista
//! (database /var/lib/playlista/playlista.db): database or disk is full`), or the error as it
//! was when nothing is recognised. A disk I/O error is told apart from a full disk by the
//! folder's free space (`statvfs`): SQLite reports a full disk met while mapping its shared
//! memory file as an I/O error.

use std::path::Path;

use rusqlite::ErrorCode;

/// Free space under which an I/O error is taken for a full disk: less than a database write
/// needs with its journal.
const NEARLY_FULL: u64 = 1 << 20;

/// Why a database operation failed, as a person would put it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cause {
    Full,
    DiskIo,
    ReadOnly,
    Corrupt,
    CannotOpen,
    Busy,
    /// A constraint or a trigger refused the change.
    Refused,
}

impl Cause {
    fn words(self) -> &'static str {
        match self {
            Cause::Full => "no space left on device",
            Cause::DiskIo => "disk input/output error (a failing disk or a lost mount?)",
            Cause::ReadOnly => {
                "the database cannot be written (a read-only mount, or files playlista may not \
                 write)"
            }
            Cause::Corrupt => {
                "the database is damaged (restore a backup, or move it away to analyse the \
                 library again)"
            }
            Cause::CannotOpen => "the database cannot be opened (may playlista use the folder?)",
            Cause::Busy => "the database stayed locked by another process",
            Cause::Refused => "the database refused the change",
        }
    }
}

/// The error with its cause, folder and database put in front (once: an error already
/// explained is returned as it is).
pub fn explain(err: anyhow::Error, db: &Path) -> anyhow::Error {
    if err.downcast_ref::<Explained>().is_some() {
        return err;
    }
    let dir = db
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    match cause(&err, || crate::os::free_bytes(dir)) {
        Some(cause) => err.context(Explained(format!(
            "{} under {} (database {})",
            cause.words(),
            dir.display(),
            db.display()
        ))),
        None => err,
    }
}

/// The words [`explain`] puts in front (a type of its own, so that they go in only once).
#[derive(Debug)]
struct Explained(String);

impl std::fmt::Display for Explained {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The cause of the first SQLite or OS error in the chain; `free` tells the folder's free
/// bytes, asked only for an I/O error.
fn cause(err: &anyhow::Error, free: impl Fn() -> Option<u64>) -> Option<Cause> {
    let nearly_full = || free().is_some_and(|bytes| bytes < NEARLY_FULL);
    err.chain().find_map(|e| {
        if let Some(sqlite) = e.downcast_ref::<rusqlite::Error>() {
            return sqlite
                .sqlite_error_code()
                .and_then(|code| sqlite_cause(code, nearly_full));
        }
        e.downcast_ref::<std::io::Error>()
            .and_then(|io| os_cause(io, nearly_full))
    })
}

/// A SQLite result code as a cause.
fn sqlite_cause(code: ErrorCode, nearly_full: impl Fn() -> bool) -> Option<Cause> {
    Some(match code {
        ErrorCode::DiskFull => Cause::Full,
        // Every SQLITE_IOERR_* (write, fsync, the shared memory map...).
        ErrorCode::SystemIoFailure if nearly_full() => Cause::Full,
        ErrorCode::SystemIoFailure => Cause::DiskIo,
        ErrorCode::ReadOnly => Cause::ReadOnly,
        ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase => Cause::Corrupt,
        ErrorCode::CannotOpen if nearly_full() => Cause::Full,
        ErrorCode::CannotOpen => Cause::CannotOpen,
        ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => Cause::Busy,
        ErrorCode::ConstraintViolation => Cause::Refused,
        _ => return None,
    })
}

/// An OS error met on the files beside the database (the folder, the lock file) as a cause.
fn os_cause(err: &std::io::Error, nearly_full: impl Fn() -> bool) -> Option<Cause> {
    Some(match err.raw_os_error()? {
        libc::ENOSPC | libc::EDQUOT => Cause::Full,
        libc::EIO if nearly_full() => Cause::Full,
        libc::EIO => Cause::DiskIo,
        libc::EROFS | libc::EACCES | libc::EPERM => Cause::ReadOnly,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::ffi;

    /// A SQLite failure with this extended result code, as rusqlite reports it.
    fn sqlite(extended: i32, message: &str) -> anyhow::Error {
        anyhow::Error::new(rusqlite::Error::SqliteFailure(
            ffi::Error::new(extended),
            Some(message.to_string()),
        ))
    }

    fn words(err: anyhow::Error, free: Option<u64>) -> Option<Cause> {
        cause(&err.context("a batch of the analysis"), || free)
    }

    #[test]
    fn sqlite_codes_become_causes() {
        let roomy = Some(10 << 30);
        assert_eq!(
            words(sqlite(ffi::SQLITE_FULL, "database or disk is full"), roomy),
            Some(Cause::Full)
        );
        // A failed write on a disk with room is the disk's fault; the shared memory map
        // failing on a full disk is the full disk.
        assert_eq!(
            words(sqlite(ffi::SQLITE_IOERR_WRITE, "disk I/O error"), roomy),
            Some(Cause::DiskIo)
        );
        assert_eq!(
            words(sqlite(ffi::SQLITE_IOERR_SHMMAP, "disk I/O error"), Some(0)),
            Some(Cause::Full)
        );
        assert_eq!(
            words(sqlite(ffi::SQLITE_IOERR_FSYNC, "disk I/O error"), None),
            Some(Cause::DiskIo),
            "no statvfs answer: not called full"
        );
        for code in [ffi::SQLITE_READONLY, ffi::SQLITE_READONLY_DBMOVED] {
            assert_eq!(
                words(sqlite(code, "readonly"), roomy),
                Some(Cause::ReadOnly)
            );
        }
        for code in [ffi::SQLITE_CORRUPT, ffi::SQLITE_NOTADB] {
            assert_eq!(
                words(sqlite(code, "malformed"), roomy),
                Some(Cause::Corrupt)
            );
        }
        assert_eq!(
            words(sqlite(ffi::SQLITE_CONSTRAINT_TRIGGER, "simulated"), roomy),
            Some(Cause::Refused)
        );
        assert_eq!(
            words(sqlite(ffi::SQLITE_ERROR, "no such table"), roomy),
            None
        );
        assert_eq!(words(anyhow::anyhow!("not SQLite"), Some(0)), None);
    }

    #[test]
    fn os_errors_beside_the_database_become_causes() {
        let os = |errno| anyhow::Error::new(std::io::Error::from_raw_os_error(errno));
        assert_eq!(words(os(libc::ENOSPC), None), Some(Cause::Full));
        assert_eq!(words(os(libc::EROFS), None), Some(Cause::ReadOnly));
        assert_eq!(words(os(libc::EIO), Some(0)), Some(Cause::Full));
        assert_eq!(words(os(libc::EIO), Some(10 << 30)), Some(Cause::DiskIo));
        assert_eq!(words(os(libc::ENOENT), None), None);
    }

    #[test]
    fn the_message_names_the_cause_the_folder_and_the_database_once() {
        let db = Path::new("/var/lib/playlista/playlista.db");
        let err = explain(sqlite(ffi::SQLITE_FULL, "database or disk is full"), db);
        let err = explain(err.context("the analysis stopped"), db);
        let text = format!("{err:#}");
        assert!(
            text.starts_with(
                "the analysis stopped: no space left on device under /var/lib/playlista \
                 (database /var/lib/playlista/playlista.db): database or disk is full"
            ),
            "{text}"
        );
        assert_eq!(text.matches("no space left").count(), 1, "{text}");
        let plain = explain(anyhow::anyhow!("something else"), db);
        assert_eq!(format!("{plain:#}"), "something else");
    }
}
