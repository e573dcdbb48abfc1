//! The user's music folders, read-only: which audio files exist, and a content fingerprint
//! for each. Nothing here ever writes, moves or renames anything in the library.
//!
//! In: one or more root folders. Out: [`FileEntry`]s (path, size, mtime) in a deterministic
//! depth-first order, interleaved with [`WalkIssue`]s for whatever could not be read; and
//! [`fingerprint`], which lets the store recognise a file after a move or rename; [`entry`]
//! re-reads the facts of one known path without a walk.
//!
//! Walk rules: hidden entries (name starts with `.`) are skipped, as is every folder holding a
//! `.notmusic` file (whole subtree). Roots themselves are never skipped as hidden. Symlinks to
//! files and folders are followed. Each folder is walked at most once, keyed by
//! `(st_dev, st_ino)`: a link back to a folder that is still being walked (an ancestor) yields a
//! "symlink loop" issue; a second path to a folder already finished is skipped silently. Files
//! are not de-duplicated: a symlinked file shows up under its own path too. Memory: one sorted
//! name list per open folder (depth x width), plus 16 bytes per folder seen.

use std::collections::{HashSet, VecDeque};
use std::ffi::OsString;
use std::fs::{self, File, FileType, Metadata};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

/// One audio file found in the library.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileEntry {
    pub path: PathBuf,
    pub size: u64,
    pub mtime_ns: i64,
    /// The device and inode of the file (of a symlink's target): the server streams a file
    /// only while they still match ([`crate::server::stream`]).
    pub dev: u64,
    pub inode: u64,
    /// The file's folder holds a `.cue` file: worth asking [`crate::cue::sheet_beside`]
    /// whether a sheet makes this file an album.
    pub sheet_nearby: bool,
}

/// Something the walk could not read (an unreadable folder, a broken symlink, a symlink loop);
/// the walk goes on.
#[derive(Debug, Clone)]
pub struct WalkIssue {
    pub path: PathBuf,
    pub reason: String,
}

/// A folder being walked: its identity and the names not yet visited, sorted by bytes.
struct Frame {
    dir: PathBuf,
    key: (u64, u64),
    /// `None` when `readdir` could not tell the type; such entries are always `stat`ed.
    entries: std::vec::IntoIter<(OsString, Option<FileType>)>,
    /// The folder holds a `.cue` file.
    has_sheet: bool,
}

/// Depth-first walk over one or more roots, yielding audio files in a deterministic order
/// (entries sorted by file name bytes within a folder).
pub struct Walker {
    roots: VecDeque<PathBuf>,
    stack: Vec<Frame>,
    /// `(st_dev, st_ino)` of every folder entered so far, across all roots.
    visited: HashSet<(u64, u64)>,
}

impl Walker {
    pub fn new(roots: &[PathBuf]) -> Walker {
        Walker {
            roots: roots.iter().cloned().collect(),
            stack: Vec::new(),
            visited: HashSet::new(),
        }
    }

    /// Looks at one path (a root, or a name from an open folder): yields a file or an issue,
    /// or pushes a folder onto the stack and yields nothing.
    fn visit(&mut self, path: PathBuf, is_root: bool) -> Option<Result<FileEntry, WalkIssue>> {
        let md = match fs::metadata(&path) {
            Ok(md) => md,
            Err(err) => return Some(Err(stat_issue(path, &err, is_root))),
        };
        if md.is_dir() {
            return self.enter(path, &md);
        }
        if !md.is_file() || !is_audio_path(&path) {
            return None; // fifos, sockets, devices, non-audio files
        }
        let mut entry = file_entry(path, &md);
        // The top frame is the file's folder (a root file has none of its own).
        entry.sheet_nearby = !is_root && self.stack.last().is_some_and(|f| f.has_sheet);
        Some(Ok(entry))
    }

    /// Lists a folder and pushes it, unless it was seen before or holds `.notmusic`.
    fn enter(&mut self, dir: PathBuf, md: &Metadata) -> Option<Result<FileEntry, WalkIssue>> {
        let key = (md.dev(), md.ino());
        if let Some(ancestor) = self.stack.iter().find(|f| f.key == key) {
            let reason = format!("symlink loop: leads back to {}", ancestor.dir.display());
            return Some(Err(WalkIssue { path: dir, reason }));
        }
        if !self.visited.insert(key) {
            return None; // a second path to a folder already walked: skipped silently
        }
        let mut entries = Vec::new();
        let listing = fs::read_dir(&dir).and_then(|rd| {
            for entry in rd {
                let entry = entry?;
                entries.push((entry.file_name(), entry.file_type().ok()));
            }
            Ok(())
        });
        if let Err(err) = listing {
            let reason = format!("cannot read folder: {err}");
            return Some(Err(WalkIssue { path: dir, reason }));
        }
        if entries.iter().any(|(name, _)| name == ".notmusic") {
            return None; // the whole subtree is skipped
        }
        entries.retain(|(name, _)| !name.as_bytes().starts_with(b"."));
        entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        let has_sheet = entries.iter().any(|(name, _)| is_sheet(name));
        let entries = entries.into_iter();
        self.stack.push(Frame {
            dir,
            key,
            entries,
            has_sheet,
        });
        None
    }
}

/// The [`FileEntry`] for one known path (symlinks followed), without a walk: e.g. to re-queue
/// a file that failed before. Errors if the path is gone or is not a regular file.
pub fn entry(path: &Path) -> io::Result<FileEntry> {
    let md = fs::metadata(path)?;
    if !md.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    let mut entry = file_entry(path.to_path_buf(), &md);
    entry.sheet_nearby = path.parent().is_some_and(|dir| {
        fs::read_dir(dir).is_ok_and(|rd| rd.flatten().any(|e| is_sheet(&e.file_name())))
    });
    Ok(entry)
}

/// A `.cue` file's name.
fn is_sheet(name: &std::ffi::OsStr) -> bool {
    Path::new(name)
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("cue"))
}

/// Size, mtime, device and inode from `md`, which must be the metadata of the target, not of
/// a symlink.
fn file_entry(path: PathBuf, md: &Metadata) -> FileEntry {
    FileEntry {
        path,
        size: md.len(),
        mtime_ns: mtime_ns(md),
        dev: md.dev(),
        inode: md.ino(),
        sheet_nearby: false,
    }
}

/// The modification time in nanoseconds since the epoch (saturating: mtimes are outside data).
pub fn mtime_ns(md: &Metadata) -> i64 {
    md.mtime()
        .saturating_mul(1_000_000_000)
        .saturating_add(md.mtime_nsec())
}

/// Why `stat` failed, in words: a dangling or looping symlink, a missing root, or the OS error.
fn stat_issue(path: PathBuf, err: &io::Error, is_root: bool) -> WalkIssue {
    let is_link = fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink());
    let reason = if is_link && err.raw_os_error() == Some(libc::ELOOP) {
        format!("symlink loop: {err}")
    } else if is_link {
        format!("broken symlink: {err}")
    } else if is_root && err.kind() == io::ErrorKind::NotFound {
        "root does not exist".to_string()
    } else {
        format!("cannot read: {err}")
    };
    WalkIssue { path, reason }
}

impl Iterator for Walker {
    type Item = Result<FileEntry, WalkIssue>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let (path, is_root) = match self.stack.last_mut() {
                Some(frame) => match frame.entries.next() {
                    // Plain non-audio files need no stat; anything that may be (or point to)
                    // a folder or an audio file does.
                    Some((name, Some(ft))) if ft.is_file() && !is_audio_path(Path::new(&name)) => {
                        continue;
                    }
                    Some((name, _)) => (frame.dir.join(name), false),
                    None => {
                        self.stack.pop();
                        continue;
                    }
                },
                None => (self.roots.pop_front()?, true),
            };
            if let Some(item) = self.visit(path, is_root) {
                return Some(item);
            }
        }
    }
}

/// True for the extensions playlista tries to analyse (case-insensitive): the formats it
/// decodes itself, those it decodes through ffmpeg (wma asf wv ape mpc tta ac3), and DSD (dsf
/// dff). A file that turns out to be something else is recorded as failed with its reason
/// instead of silently ignored.
pub fn is_audio_path(path: &Path) -> bool {
    const EXTS: &[&str] = &[
        "mp3", "mp2", "mp1", "mpa", "flac", "ogg", "oga", "opus", "spx", "wav", "wave", "aif",
        "aiff", "aifc", "m4a", "mp4", "m4b", "aac", "adts", "caf", "mka", "mkv", "webm", "wma",
        "asf", "wv", "ape", "mpc", "tta", "ac3", "dsf", "dff",
    ];
    let Some(ext) = path.extension().and_then(|e| e.to_str()) else {
        return false;
    };
    EXTS.iter().any(|known| known.eq_ignore_ascii_case(ext))
}

/// The path of track `number` of the single-file album at `file` (a CUE sheet's track): the
/// file's path, `#` and the number in two digits (`Album.flac#03`). No file has such a name
/// that the walk would take for audio (its extension would be `flac#03`), so the two never
/// meet.
pub fn part_path(file: &str, number: u32) -> String {
    format!("{file}#{number:02}")
}

/// The album file and track number of a [`part_path`]; `None` for the path of a whole file.
pub fn split_part(path: &str) -> Option<(&str, u32)> {
    let (file, number) = path.rsplit_once('#')?;
    if number.len() > 3 || !is_audio_path(Path::new(file)) {
        return None;
    }
    // parse() alone would take "+3".
    let number = number
        .bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| number.parse().ok())??;
    Some((file, number))
}

/// Bytes hashed from each of the start, middle and end of a large file.
const CHUNK: u64 = 64 * 1024;

/// A content fingerprint that survives moves/renames: xxh3-64 over the file size (little-endian
/// u64) followed by up to 64 KiB from the start, 64 KiB from the middle and 64 KiB from the end
/// of the file (for files <= 192 KiB just the whole file). Reads with positioned reads, no
/// full-file reads, no mmap. Returns the u64 as i64 (bit-cast) so it stores in SQLite INTEGER.
pub fn fingerprint(path: &Path) -> io::Result<i64> {
    let file = File::open(path)?;
    let size = file.metadata()?.len();
    // One buffer: the size, then the sampled bytes back to back; hashed in one call.
    let sampled = size.min(3 * CHUNK) as usize;
    let mut buf = vec![0u8; 8 + sampled];
    buf[..8].copy_from_slice(&size.to_le_bytes());
    if size <= 3 * CHUNK {
        file.read_exact_at(&mut buf[8..], 0)?;
    } else {
        let offsets = [0, size / 2 - CHUNK / 2, size - CHUNK];
        for (chunk, offset) in buf[8..].chunks_exact_mut(CHUNK as usize).zip(offsets) {
            file.read_exact_at(chunk, offset)?;
        }
    }
    Ok(xxhash_rust::xxh3::xxh3_64(&buf) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt, symlink};

    /// A temp folder holding the space-separated relative `files`, one byte (7) each.
    fn tree(files: &str) -> tempfile::TempDir {
        let tmp = tempfile::tempdir().expect("tempdir");
        for rel in files.split_whitespace() {
            let path = tmp.path().join(rel);
            fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            fs::write(&path, [7u8]).expect("write");
        }
        tmp
    }

    /// Walks `roots`: the yielded paths relative to `base` joined by spaces, and the issues.
    fn walk(base: &Path, roots: &[PathBuf]) -> (String, Vec<WalkIssue>) {
        let (mut files, mut issues) = (Vec::new(), Vec::new());
        for item in Walker::new(roots) {
            match item {
                Ok(f) => files.push(f.path.display().to_string()),
                Err(issue) => issues.push(issue),
            }
        }
        (
            files.join(" ").replace(&format!("{}/", base.display()), ""),
            issues,
        )
    }

    /// Asserts that `issues` is exactly one issue, about `path`, whose reason starts `reason`.
    fn one_issue(issues: &[WalkIssue], path: &Path, reason: &str) {
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert_eq!(issues[0].path, path);
        assert!(issues[0].reason.starts_with(reason), "{issues:?}");
    }

    #[test]
    fn order_is_sorted_depth_first() {
        // Created out of order; the temp root's own name is hidden (.tmpXXX): roots are exempt.
        let tmp = tree("c.ogg b/z.flac b/c/x.wav a.mp3 B.mp3 b/a.mp3 b0.mp3");
        let r = tmp.path();
        let (files, issues) = walk(r, &[r.to_path_buf()]);
        assert!(issues.is_empty(), "{issues:?}");
        assert_eq!(files, "B.mp3 a.mp3 b/a.mp3 b/c/x.wav b/z.flac b0.mp3 c.ogg");
        let first = Walker::new(&[r.to_path_buf()]).next();
        let first = first.expect("an item").expect("a file");
        let md = fs::metadata(r.join("B.mp3")).expect("stat");
        let ns = md.mtime() * 1_000_000_000 + md.mtime_nsec();
        assert_eq!((first.size, first.mtime_ns), (1, ns));
        assert_eq!(entry(&r.join("B.mp3")).expect("entry"), first);
        assert!(entry(&r.join("b")).is_err() && entry(&r.join("gone.mp3")).is_err());
    }

    #[test]
    fn hidden_and_notmusic_are_skipped() {
        let tmp = tree(".hidden/x.mp3 .y.mp3 skip/.notmusic skip/x.mp3 skip/deep/y.mp3 keep.mp3");
        assert_eq!(walk(tmp.path(), &[tmp.path().to_path_buf()]).0, "keep.mp3");
    }

    #[test]
    fn only_audio_extensions_any_case() {
        let tmp = tree("song.MP3 notes.txt cover.jpg noext a.Flac x.opus mp3 .mp3");
        let files = walk(tmp.path(), &[tmp.path().to_path_buf()]).0;
        assert_eq!(files, "a.Flac song.MP3 x.opus");
        assert!(is_audio_path(Path::new("/m/a.AIFC")) && !is_audio_path(Path::new("/m/wav")));
    }

    #[test]
    fn symlink_loop_terminates_and_second_paths_are_skipped() {
        let tmp = tree("a.mp3 d/b.mp3");
        let r = tmp.path();
        symlink("..", r.join("d/link")).expect("symlink"); // loop back to the root
        symlink("d", r.join("zalias")).expect("symlink"); // second path, skipped silently
        symlink("d/b.mp3", r.join("linked.mp3")).expect("symlink"); // file links are followed
        let (files, issues) = walk(r, &[r.to_path_buf()]);
        assert_eq!(files, "a.mp3 d/b.mp3 linked.mp3");
        one_issue(&issues, &r.join("d/link"), "symlink loop");
        // Size comes from the target (1 byte), not the link itself (7 bytes of "d/b.mp3").
        let linked = Walker::new(&[r.join("linked.mp3")]).next();
        assert_eq!(linked.expect("an item").expect("a file").size, 1);
    }

    #[test]
    fn broken_symlink_and_missing_root_are_issues() {
        let tmp = tree("ok/a.mp3");
        let r = tmp.path();
        symlink("nowhere.mp3", r.join("ok/dead.mp3")).expect("symlink");
        let (files, issues) = walk(r, &[r.join("missing"), r.join("ok")]);
        assert_eq!(files, "ok/a.mp3"); // the walk went on after both issues
        one_issue(&issues[..1], &r.join("missing"), "root does not exist");
        one_issue(&issues[1..], &r.join("ok/dead.mp3"), "broken symlink");
    }

    #[test]
    fn unreadable_folder_is_an_issue() {
        let tmp = tree("a.mp3 locked/x.mp3 z.mp3");
        let r = tmp.path().to_path_buf();
        let chmod = |p: &Path, mode| fs::set_permissions(p, fs::Permissions::from_mode(mode));
        chmod(&r, 0o755).expect("chmod");
        chmod(&r.join("locked"), 0o000).expect("chmod");
        // SAFETY: geteuid has no preconditions.
        let result = if unsafe { libc::geteuid() } != 0 {
            Some(walk(&r, std::slice::from_ref(&r)))
        } else {
            // Root ignores mode bits. On Linux the filesystem uid is per thread: walk from a
            // thread that gave it up (which also drops CAP_DAC_OVERRIDE for that thread only).
            let root = r.clone();
            let unprivileged = std::thread::spawn(move || {
                #[cfg(target_os = "linux")]
                // SAFETY: changes only this short-lived thread's fsuid; the 2nd call reads it back.
                if unsafe { [libc::setfsuid(65534), libc::setfsuid(65534)] } == [0, 65534] {
                    return Some(walk(&root, std::slice::from_ref(&root)));
                }
                None
            });
            unprivileged.join().expect("walk thread")
        };
        chmod(&r.join("locked"), 0o755).expect("chmod back, so the temp dir can be removed");
        let Some((files, issues)) = result else {
            eprintln!("skipped unreadable-folder check: running as root and cannot drop fsuid");
            return;
        };
        assert_eq!(files, "a.mp3 z.mp3");
        one_issue(&issues, &r.join("locked"), "cannot read folder");
    }

    #[test]
    fn fingerprint_follows_content_not_name() {
        let tmp = tree("empty.mp3 tiny.mp3 sub/tiny2.ogg");
        let r = tmp.path();
        let fp = |p: &Path| fingerprint(p).expect("fingerprint");
        let xxh3 = |bytes: &[u8]| xxhash_rust::xxh3::xxh3_64(bytes) as i64;
        let (len, k) = (5 * CHUNK as usize + 123, CHUNK as usize);
        let data: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
        let (orig, moved) = (r.join("orig.flac"), r.join("sub/renamed.mp3"));
        fs::write(&orig, &data).expect("write");
        fs::copy(&orig, &moved).expect("copy");
        assert_eq!(fp(&orig), fp(&moved));

        // The exact layout is stored in the database, so pin it: size, start, middle, end.
        let mid = len / 2 - k / 2;
        let want = [
            &(len as u64).to_le_bytes()[..],
            &data[..k],
            &data[mid..mid + k],
            &data[len - k..],
        ];
        assert_eq!(fp(&orig), xxh3(&want.concat()));

        let mut changed = data.clone();
        changed[len / 2] ^= 1; // one byte inside the middle chunk
        fs::write(&moved, &changed).expect("write");
        assert_ne!(fp(&orig), fp(&moved));
        fs::write(&moved, &data[..len - 1]).expect("write"); // one byte shorter
        assert_ne!(fp(&orig), fp(&moved));

        fs::write(r.join("empty.mp3"), b"").expect("truncate");
        assert_eq!(fp(&r.join("empty.mp3")), xxh3(&0u64.to_le_bytes()));
        assert_eq!(fp(&r.join("tiny.mp3")), xxh3(&[1, 0, 0, 0, 0, 0, 0, 0, 7]));
        assert_eq!(fp(&r.join("tiny.mp3")), fp(&r.join("sub/tiny2.ogg")));
        assert!(fingerprint(&r.join("absent.mp3")).is_err());
    }
}
