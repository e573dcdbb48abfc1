//! Opening library files for a request (a stream, cover art, lyrics): the server opens only
//! what the analysis saw, so a file swapped after its scan for a symlink to a secret, a FIFO
//! or another file is refused instead of served.
//!
//! In: the library folders (`library` in the config) and a track as the catalog holds it
//! (path, size, mtime, device, inode), or a sidecar's path. Out: an open regular file and its
//! metadata, or [`Refused`] saying why. A track is opened by its resolved path, which must lie
//! under a library folder, with `O_NOFOLLOW | O_NONBLOCK` (a symlink swapped in at the last
//! moment fails, a FIFO never blocks the thread), must be a regular file (`fstat`), and must
//! still have the size, mtime, device and inode of its scan (device and inode once a scan has
//! recorded them). A refused track asks the background for a rescan, which brings the row up
//! to date with what the file now is.

use std::fs::{File, Metadata, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::store::StoredTrack;

/// Why a file was not opened.
#[derive(Debug)]
pub enum Refused {
    /// It cannot be opened now (gone, unreadable, a disk unmounted).
    Unreadable(io::Error),
    /// It is not what the scan saw: outside the library, not a regular file, or another file.
    Changed(&'static str),
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Unreadable(e) => write!(f, "not readable: {e}"),
            Refused::Changed(why) => write!(f, "changed since its scan: {why}"),
        }
    }
}

/// Opens track `t`'s file if it is still the file its scan saw.
pub fn open_track(roots: &[PathBuf], t: &StoredTrack) -> Result<(File, Metadata), Refused> {
    let (file, md) = open_in_library(roots, Path::new(t.file()))?;
    if md.len() != t.size || crate::library::mtime_ns(&md) != t.mtime_ns {
        return Err(Refused::Changed("another size or modification time"));
    }
    if t.identity.is_some_and(|id| id != (md.dev(), md.ino())) {
        return Err(Refused::Changed("another file (device or inode)"));
    }
    Ok((file, md))
}

/// Opens a regular file under one of `roots` (a track's, or a sidecar such as its `.lrc`)
/// without following a last-moment symlink or blocking on a FIFO.
pub fn open_in_library(roots: &[PathBuf], path: &Path) -> Result<(File, Metadata), Refused> {
    let real = std::fs::canonicalize(path).map_err(Refused::Unreadable)?;
    let inside = roots
        .iter()
        .filter_map(|r| std::fs::canonicalize(r).ok())
        .any(|root| real.starts_with(root));
    if !inside {
        return Err(Refused::Changed("outside the library folders"));
    }
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(&real)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => Refused::Changed("a symlink"),
            _ => Refused::Unreadable(e),
        })?;
    let md = file.metadata().map_err(Refused::Unreadable)?;
    if !md.is_file() {
        return Err(Refused::Changed("not a regular file"));
    }
    Ok((file, md))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::playlist::space::tests_support::stored;

    /// A library folder with one file, and the track row its scan would make.
    fn scanned() -> (tempfile::TempDir, Vec<PathBuf>, StoredTrack) {
        let dir = tempfile::tempdir().unwrap();
        let lib = dir.path().join("music");
        std::fs::create_dir(&lib).unwrap();
        let song = lib.join("a.mp3");
        std::fs::write(&song, b"song bytes").unwrap();
        let entry = crate::library::entry(&song).unwrap();
        let mut t = stored(1, Some(120.0), "C", false, 0.5);
        t.path = song.to_string_lossy().into_owned();
        t.size = entry.size;
        t.mtime_ns = entry.mtime_ns;
        t.identity = Some((entry.dev, entry.inode));
        (dir, vec![lib], t)
    }

    #[test]
    fn the_scanned_file_opens() {
        let (_dir, roots, t) = scanned();
        let (_, md) = open_track(&roots, &t).expect("opens");
        assert_eq!(md.len(), 10);
    }

    #[test]
    fn swaps_are_refused() {
        let (dir, roots, t) = scanned();
        let song = Path::new(&t.path);
        let secret = dir.path().join("secret");
        std::fs::write(&secret, b"0123456789").unwrap();
        let changed = |t: &StoredTrack| matches!(open_track(&roots, t), Err(Refused::Changed(_)));

        // Another file of the same size and mtime renamed over it: another inode (made
        // while the first still exists, so the number cannot be reused).
        let other = song.with_extension("tmp");
        std::fs::write(&other, b"other song").unwrap();
        std::fs::rename(&other, song).unwrap();
        let md = std::fs::metadata(song).unwrap();
        let mut same_facts = t.clone();
        same_facts.mtime_ns = crate::library::mtime_ns(&md);
        assert!(changed(&same_facts));

        // A symlink to a file outside the library.
        std::fs::remove_file(song).unwrap();
        std::os::unix::fs::symlink(&secret, song).unwrap();
        assert!(changed(&t));

        // A FIFO: refused at once, never blocking.
        std::fs::remove_file(song).unwrap();
        let c = std::ffi::CString::new(t.path.as_str()).unwrap();
        // SAFETY: a valid NUL-terminated path; mkfifo only creates a node.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert!(changed(&t));

        // Gone.
        std::fs::remove_file(song).unwrap();
        assert!(matches!(
            open_track(&roots, &t),
            Err(Refused::Unreadable(_))
        ));
    }

    #[test]
    fn sidecars_outside_the_library_are_refused() {
        let (dir, roots, _) = scanned();
        let outside = dir.path().join("x.lrc");
        std::fs::write(&outside, b"[00:01.00]la").unwrap();
        assert!(matches!(
            open_in_library(&roots, &outside),
            Err(Refused::Changed(_))
        ));
        assert!(open_in_library(&roots, &roots[0].join("a.mp3")).is_ok());
    }
}
