//! The M3U8 writer.
//!
//! In: playlists and the folder for one method. Out: `<dir>/<Name>.m3u8` in extended M3U
//! (`#EXTM3U`, `#EXTINF:<seconds>,Artist - Title`, then the track's path relative to the
//! playlist file), each written atomically (a temporary file renamed over the old one). The
//! files of a partition method that are no longer generated are removed. Also the one place
//! that writes any playlist file ([`write_atomic`]: the generated playlists, the listeners'
//! own under `users/`, `Failed_Files.m3u`), and the one way text becomes a line of one
//! ([`one_line`]).

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result};

use super::space::Library;
use super::{Playlist, display_name};

/// Writes `text` to `target` so that a reader sees the old file or the new one, never half
/// a file, and a power cut leaves one of the two: a temporary file in the same folder, named
/// for this process and write (two writers never share one), synced, renamed over `target`,
/// then the folder synced (best-effort). On any failure the temporary file is removed and
/// `target` is as it was.
pub fn write_atomic(target: &Path, text: &str) -> Result<()> {
    static WRITES: AtomicU64 = AtomicU64::new(0);
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        WRITES.fetch_add(1, Ordering::Relaxed)
    ));
    let written = std::fs::File::create_new(&tmp)
        .and_then(|mut file| {
            file.write_all(text.as_bytes())?;
            file.sync_all()
        })
        .with_context(|| format!("cannot write {}", tmp.display()))
        .and_then(|()| {
            std::fs::rename(&tmp, target)
                .with_context(|| format!("cannot write {}", target.display()))
        });
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    } else if let Ok(folder) = std::fs::File::open(dir) {
        let _ = folder.sync_all();
    }
    written
}

/// `text` fit for one line of a playlist file: line breaks (`\r`, `\n`) become spaces, so a
/// name, a title or a reason can never start a line of its own.
pub fn one_line(text: &str) -> Cow<'_, str> {
    if text.contains(['\r', '\n']) {
        Cow::Owned(text.replace(['\r', '\n'], " "))
    } else {
        Cow::Borrowed(text)
    }
}

/// `to` as seen from the folder `from` (both absolute): `../../a/b.flac`.
pub fn relative(from: &Path, to: &Path) -> PathBuf {
    // The common case, both plain UTF-8 paths without `.` or `..`: compare text (this runs
    // once per line of every playlist).
    if let (Some(f), Some(t)) = (from.to_str(), to.to_str()) {
        if f.starts_with('/') && t.starts_with('/') && !f.contains("/.") && !t.contains("/.") {
            let f = f.trim_end_matches('/');
            // The longest common prefix that ends at a component boundary.
            let mut common = 0;
            for (i, (a, b)) in f.bytes().zip(t.bytes()).enumerate() {
                if a != b {
                    break;
                }
                if a == b'/' {
                    common = i;
                }
            }
            if f.len() <= t.len() && t.as_bytes().get(f.len()) == Some(&b'/') && t.starts_with(f) {
                common = f.len();
            }
            let ups = f[common..].matches('/').count();
            let mut out = String::with_capacity(ups * 3 + t.len() - common);
            for _ in 0..ups {
                out.push_str("../");
            }
            out.push_str(&t[common + 1..]);
            return PathBuf::from(out);
        }
    }
    relative_components(from, to)
}

fn relative_components(from: &Path, to: &Path) -> PathBuf {
    let f: Vec<Component> = from.components().collect();
    let t: Vec<Component> = to.components().collect();
    let common = f.iter().zip(&t).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in common..f.len() {
        out.push("..");
    }
    for c in &t[common..] {
        out.push(c.as_os_str());
    }
    out
}

/// A file name for a playlist name: path separators and control characters become `_`.
pub fn file_name(name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| {
            if c == '/' || c == '\\' || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    let clean = clean.trim_start_matches('.');
    format!("{}.m3u8", if clean.is_empty() { "playlist" } else { clean })
}

/// The text of one playlist written in `dir`.
pub fn render(lib: &Library, p: &Playlist, dir: &Path) -> String {
    let mut text = String::from("#EXTM3U\n");
    let _ = writeln!(text, "#PLAYLIST:{}", one_line(&p.name));
    for e in &p.entries {
        let t = &lib.tracks[e.track];
        let _ = writeln!(
            text,
            "#EXTINF:{},{}",
            t.measured.duration_s.round() as i64,
            one_line(&display_name(lib, e.track))
        );
        // A track of a single-file album: the album's file, with the span for players that
        // read VLC's options (VLC, and players following it).
        if let Some((start, end)) = t.span {
            let _ = writeln!(text, "#EXTVLCOPT:start-time={start:.3}");
            let _ = writeln!(text, "#EXTVLCOPT:stop-time={end:.3}");
        }
        let path = relative(dir, Path::new(t.file()));
        let _ = writeln!(text, "{}", one_line(&path.to_string_lossy()));
    }
    text
}

/// Writes every playlist into `dir`; with `remove_stale`, `.m3u8` files there that were not
/// written now are removed. Returns the files written.
pub fn write_all(
    dir: &Path,
    lib: &Library,
    lists: &[Playlist],
    remove_stale: bool,
) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut written = Vec::with_capacity(lists.len());
    for p in lists {
        let target = dir.join(file_name(&p.name));
        write_atomic(&target, &render(lib, p, dir))?;
        written.push(target);
    }
    if remove_stale {
        let keep: HashSet<&Path> = written.iter().map(PathBuf::as_path).collect();
        for entry in
            std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?
        {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "m3u8") && !keep.contains(path.as_path()) {
                std::fs::remove_file(&path)
                    .with_context(|| format!("cannot remove {}", path.display()))?;
            }
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::playlist::space::tests_support::stored;

    #[test]
    fn relative_paths_climb_out_of_the_playlist_folder() {
        assert_eq!(
            relative(
                Path::new("/data/playlists/all"),
                Path::new("/music/a/b.flac")
            ),
            PathBuf::from("../../../music/a/b.flac")
        );
        assert_eq!(
            relative(Path::new("/music/playlists"), Path::new("/music/a/b.flac")),
            PathBuf::from("../a/b.flac")
        );
        assert_eq!(
            relative(
                Path::new("/music/play"),
                Path::new("/music/playlist/x.flac")
            ),
            PathBuf::from("../playlist/x.flac")
        );
        assert_eq!(
            relative(Path::new("/music"), Path::new("/music/x.flac")),
            PathBuf::from("x.flac")
        );
        // The text fast path and the component walk agree.
        for (f, t) in [
            ("/a/b/c", "/a/x/y.flac"),
            ("/a/b", "/a/b/c/d.flac"),
            ("/", "/m/x.flac"),
            ("/data/pl/all", "/data/pl/allx/t.flac"),
        ] {
            assert_eq!(
                relative(Path::new(f), Path::new(t)),
                relative_components(Path::new(f), Path::new(t)),
                "{f} {t}"
            );
        }
        assert_eq!(file_name("Rock/Pop_1990s"), "Rock_Pop_1990s.m3u8");
    }

    #[test]
    fn an_atomic_write_leaves_the_file_or_nothing_and_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("list.m3u8");
        write_atomic(&target, "one\n").unwrap();
        write_atomic(&target, "two\n").unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "two\n");
        // A folder where the file should go: the rename fails, the temporary file goes.
        let blocked = dir.path().join("blocked.m3u8");
        std::fs::create_dir(&blocked).unwrap();
        std::fs::write(blocked.join("inside"), "x").unwrap();
        assert!(write_atomic(&blocked, "three\n").is_err());
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            names.iter().all(|n| !n.ends_with(".tmp")),
            "a temporary file was left: {names:?}"
        );
    }

    #[test]
    fn a_track_of_an_album_is_its_file_with_its_span() {
        let mut part = stored(1, Some(100.0), "C", false, 1.0);
        part.path = "/music/a/Album.flac#02".into();
        part.span = Some((181.5, 402.25));
        let lib = Library::new(vec![part], &[]);
        let mut p = Playlist::new("Album", "rule");
        p.push(0, "");
        let text = render(&lib, &p, Path::new("/music/playlists"));
        assert!(
            text.ends_with(
                "#EXTVLCOPT:start-time=181.500\n#EXTVLCOPT:stop-time=402.250\n../a/Album.flac\n"
            ),
            "{text}"
        );
        assert!(text.contains(",Album #02\n"), "{text}");
    }

    #[test]
    fn line_breaks_in_names_and_titles_never_start_a_line() {
        assert_eq!(one_line("plain"), "plain");
        assert_eq!(one_line("a\r\n#EXTINF:1,b\rc"), "a  #EXTINF:1,b c");
        let dir = tempfile::tempdir().unwrap();
        let mut tagged = stored(1, Some(100.0), "C", false, 1.0);
        tagged.measured.tags.artist = Some("Ann\r".into());
        tagged.measured.tags.title = Some("Song\n/etc/passwd".into());
        let lib = Library::new(vec![tagged], &[]);
        let mut p = Playlist::new("Evil\r\nName", "rule");
        p.push(0, "");
        let text = render(&lib, &p, dir.path());
        assert!(!text.contains('\r'), "{text:?}");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text:?}");
        assert_eq!(lines[1], "#PLAYLIST:Evil  Name");
        assert_eq!(lines[2], "#EXTINF:200,Ann  - Song /etc/passwd");
    }

    #[test]
    fn writes_extended_m3u_and_removes_stale_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut tagged = stored(1, Some(100.0), "C", false, 1.0);
        tagged.measured.tags.artist = Some("Ann".into());
        tagged.measured.tags.title = Some("Song".into());
        let lib = Library::new(vec![tagged, stored(2, Some(100.0), "C", false, 1.0)], &[]);
        let mut p = Playlist::new("Test", "rule");
        p.push(0, "");
        p.push(1, "");
        std::fs::write(dir.path().join("Old.m3u8"), "stale").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "keep").unwrap();
        let written = write_all(dir.path(), &lib, &[p], true).unwrap();
        assert_eq!(written, vec![dir.path().join("Test.m3u8")]);
        let text = std::fs::read_to_string(&written[0]).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "#EXTM3U");
        assert_eq!(lines[2], "#EXTINF:200,Ann - Song");
        assert!(
            lines[3].ends_with("music/t001.flac") && lines[3].starts_with(".."),
            "{}",
            lines[3]
        );
        assert_eq!(lines[4], "#EXTINF:200,t002");
        assert!(!dir.path().join("Old.m3u8").exists());
        assert!(dir.path().join("notes.txt").exists());
    }
}
