//! A music file mapped into memory and read as a stream, with flat resident memory and no
//! SIGBUS death when the file shrinks under us.
//!
//! In: a path. Out: a [`MappedSource`] that implements `Read + Seek` and symphonia's
//! `MediaSource`, plus [`MappedSource::tail`] for formats (ID3v1) that keep data at the end.
//!
//! Two promises are kept here:
//! - **Memory.** The mapping is advised sequential, and every few MiB the pages behind the read
//!   cursor are dropped (`MADV_DONTNEED`), so a two-hour FLAC keeps only a few MiB mapped in,
//!   the same as a three-minute MP3. Dropped pages of a file mapping are re-read from the page
//!   cache if a demuxer seeks back, so dropping is always correct, never lossy.
//! - **Truncation.** On a NAS people rewrite files while we read them. Touching a mapped page
//!   that now lies past the end of the file raises SIGBUS, which by default kills the process.
//!   See [`guard`] for the defence: the fault is turned into an `io::Error` for that file alone.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use memmap2::{Advice, Mmap, UncheckedAdvice};

/// The message of the error a read returns after the file shrank under the mapping.
pub const TRUNCATED: &str = "the file was truncated while it was being read";

/// How far the cursor may run ahead of the last release before pages behind it are dropped.
const RELEASE_STEP: usize = 1 << 20;

/// A read-only mapping of one file, read front to back.
pub struct MappedSource {
    map: Option<Mmap>,
    pos: usize,
    released: usize,
    slot: Option<guard::Slot>,
    /// Four bytes shown in place of the file's own at an offset: a header repair (see
    /// [`MappedSource::repair_riff_size`]). The file itself is never written.
    overlay: Option<(usize, [u8; 4])>,
}

impl MappedSource {
    /// Maps `path`. An empty file gets no mapping (mmap of length 0 is an error) and reads as EOF.
    pub fn open(path: &Path) -> io::Result<Self> {
        Self::map(&File::open(path)?)
    }

    /// Maps a file opened by the caller (the server opens with its own checks first).
    pub fn map(file: &File) -> io::Result<Self> {
        let len = file.metadata()?.len();
        if len == 0 {
            return Ok(MappedSource {
                map: None,
                pos: 0,
                released: 0,
                slot: None,
                overlay: None,
            });
        }
        guard::install();
        // SAFETY: the mapping is read-only and private to this struct. The one hazard of a file
        // mapping, another process truncating the file so that a page no longer has backing
        // store, is handled by `guard`: the range is registered below before any byte is read,
        // and a fault inside it maps a zero page and flags the slot instead of killing us.
        // Every read checks the flag after copying, so zero-filled bytes never escape as data.
        let map = unsafe { Mmap::map(file)? };
        // Advice is only a hint; failing to give it costs speed, not correctness.
        let _ = map.advise(Advice::Sequential);
        let slot = guard::Slot::register(map.as_ptr() as usize, map.len())
            .ok_or_else(|| io::Error::other("too many files open at once for the fault guard"))?;
        Ok(MappedSource {
            map: Some(map),
            pos: 0,
            released: 0,
            slot: Some(slot),
            overlay: None,
        })
    }

    /// The whole file as mapped. Reading it directly is safe against truncation (the guard
    /// turns the fault into zeros and flags the source, so the next `read` fails).
    pub fn contents(&self) -> &[u8] {
        self.mapped()
    }

    fn mapped(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&[])
    }

    fn len(&self) -> usize {
        self.mapped().len()
    }

    /// Copies `out.len()` bytes from `offset` (fewer at the end), failing if the file was
    /// truncated under the mapping.
    fn copy_at(&self, offset: usize, out: &mut [u8]) -> io::Result<usize> {
        let bytes = self.mapped();
        let n = out.len().min(bytes.len().saturating_sub(offset));
        if n == 0 {
            return Ok(0);
        }
        out[..n].copy_from_slice(&bytes[offset..offset + n]);
        if let Some((at, patch)) = self.overlay {
            for (i, &b) in patch.iter().enumerate() {
                if let Some(dst) = (at + i)
                    .checked_sub(offset)
                    .and_then(|j| out[..n].get_mut(j))
                {
                    *dst = b;
                }
            }
        }
        if self.slot.as_ref().is_some_and(guard::Slot::faulted) {
            return Err(io::Error::other(TRUNCATED));
        }
        Ok(n)
    }

    /// WAV files from streaming writers or careless editors often declare a RIFF size smaller
    /// than the data they hold; players ignore it, symphonia refuses the file. When the
    /// declared size is short of the file, show the demuxer the file's real size instead.
    pub fn repair_riff_size(&mut self) {
        let mut head = [0u8; 12];
        if self.copy_at(0, &mut head).ok() != Some(12)
            || &head[..4] != b"RIFF"
            || &head[8..] != b"WAVE"
        {
            return;
        }
        let declared = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as usize;
        let actual = (self.len() - 8).min(u32::MAX as usize);
        if declared < actual {
            self.overlay = Some((4, (actual as u32).to_le_bytes()));
        }
    }

    /// The last `n` bytes of the file (fewer if it is shorter), copied into `out`.
    pub fn tail(&self, out: &mut [u8]) -> io::Result<usize> {
        let start = self.len().saturating_sub(out.len());
        self.copy_at(start, out)
    }

    /// Drops the pages well behind the cursor from this process's resident set.
    fn release_behind(&mut self) {
        let Some(map) = self.map.as_ref() else { return };
        let keep_from = self.pos.saturating_sub(RELEASE_STEP / 2);
        if keep_from < self.released + RELEASE_STEP {
            return;
        }
        let page = guard::page_size();
        let start = self.released / page * page;
        let end = keep_from / page * page;
        if end > start {
            // SAFETY: MADV_DONTNEED on a read-only shared file mapping only unmaps the pages
            // from our page tables; a later access faults them back in from the page cache with
            // the same contents, so no reference into the mapping can observe a change.
            let _ = unsafe {
                map.unchecked_advise_range(UncheckedAdvice::DontNeed, start, end - start)
            };
            self.released = end;
        }
    }
}

impl Read for MappedSource {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.copy_at(self.pos, buf)?;
        self.pos += n;
        self.release_behind();
        Ok(n)
    }
}

impl Seek for MappedSource {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let len = self.len() as i128;
        let target = match to {
            SeekFrom::Start(p) => p as i128,
            SeekFrom::End(d) => len + d as i128,
            SeekFrom::Current(d) => self.pos as i128 + d as i128,
        };
        if target < 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before start of file",
            ));
        }
        self.pos = usize::try_from(target).unwrap_or(usize::MAX);
        if self.pos < self.released {
            // A seek back: pages before this will fault back in on demand.
            self.released = self.pos;
        }
        Ok(self.pos as u64)
    }
}

impl symphonia::core::io::MediaSource for MappedSource {
    fn is_seekable(&self) -> bool {
        true
    }

    fn byte_len(&self) -> Option<u64> {
        Some(self.len() as u64)
    }
}

pub mod guard {
    //! The SIGBUS defence for file mappings.
    //!
    //! Choice: a process-wide SIGBUS handler plus a fixed table of registered mappings.
    //! Alternatives were weighed: `read(2)` into a buffer instead of mapping (safe, but the
    //! issue asks for memmap2, and pread costs a copy per block anyway); re-checking the file
    //! size before every read (racy: the file can shrink between the check and the copy);
    //! `MAP_POPULATE` (keeps the whole file resident, the opposite of what we want).
    //! The handler is async-signal-safe: it only reads atomics and calls `mmap(2)`, a raw
    //! system call. When the faulting address lies inside a registered mapping, it maps an
    //! anonymous zero page over that page (`MAP_FIXED`) and sets the slot's flag; the faulting
    //! copy then completes, and the reader turns the flag into an error. A fault anywhere else
    //! is not ours: the previous disposition is restored and the fault re-raised.

    use std::sync::Once;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    const SLOTS: usize = 256;

    struct Entry {
        start: AtomicUsize,
        len: AtomicUsize,
        faulted: AtomicBool,
    }

    #[allow(clippy::declare_interior_mutable_const)]
    const EMPTY: Entry = Entry {
        start: AtomicUsize::new(0),
        len: AtomicUsize::new(0),
        faulted: AtomicBool::new(false),
    };
    static TABLE: [Entry; SLOTS] = [EMPTY; SLOTS];
    static PAGE: AtomicUsize = AtomicUsize::new(4096);
    static INSTALL: Once = Once::new();

    pub(crate) fn page_size() -> usize {
        PAGE.load(Ordering::Relaxed)
    }

    /// Installs the handler once per process.
    pub fn install() {
        INSTALL.call_once(|| {
            // SAFETY: sysconf has no preconditions.
            let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
            if page > 0 {
                PAGE.store(page as usize, Ordering::Relaxed);
            }
            // SAFETY: a zeroed sigaction is a valid "no flags, empty mask" value; the handler
            // has the SA_SIGINFO signature and only does async-signal-safe work.
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = on_sigbus as *const () as usize;
                action.sa_flags = libc::SA_SIGINFO | libc::SA_NODEFER;
                libc::sigemptyset(&mut action.sa_mask);
                libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut());
            }
        });
    }

    extern "C" fn on_sigbus(sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
        // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers.
        let addr = unsafe { (*info).si_addr() } as usize;
        for entry in TABLE.iter() {
            let start = entry.start.load(Ordering::Acquire);
            let len = entry.len.load(Ordering::Acquire);
            if start != 0 && addr >= start && addr < start + len {
                let page = page_size();
                let base = addr / page * page;
                entry.faulted.store(true, Ordering::Release);
                // SAFETY: `base` is a page inside a mapping we own and are reading; replacing it
                // with a private zero page only changes what the pending copy reads, and the
                // reader discards that copy because `faulted` is set first.
                let ok = unsafe {
                    libc::mmap(
                        base as *mut libc::c_void,
                        page,
                        libc::PROT_READ,
                        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                        -1,
                        0,
                    )
                };
                if ok != libc::MAP_FAILED {
                    return;
                }
                break;
            }
        }
        // Not one of ours (or we could not patch it): fall back to the default action.
        // SAFETY: signal() and raise() are async-signal-safe.
        unsafe {
            libc::signal(sig, libc::SIG_DFL);
            libc::raise(sig);
        }
    }

    /// One registered mapping; unregisters itself on drop.
    pub struct Slot(usize);

    impl Slot {
        pub fn register(start: usize, len: usize) -> Option<Slot> {
            for (i, entry) in TABLE.iter().enumerate() {
                if entry
                    .start
                    .compare_exchange(0, usize::MAX, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
                {
                    entry.faulted.store(false, Ordering::Release);
                    entry.len.store(len, Ordering::Release);
                    entry.start.store(start, Ordering::Release);
                    return Some(Slot(i));
                }
            }
            None
        }

        pub fn faulted(&self) -> bool {
            TABLE[self.0].faulted.load(Ordering::Acquire)
        }
    }

    impl Drop for Slot {
        fn drop(&mut self) {
            let entry = &TABLE[self.0];
            entry.len.store(0, Ordering::Release);
            entry.start.store(0, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn reads_whole_file_and_seeks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.bin");
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let mut src = MappedSource::open(&path).unwrap();
        let mut out = Vec::new();
        src.read_to_end(&mut out).unwrap();
        assert_eq!(out, data);
        src.seek(SeekFrom::End(-10)).unwrap();
        let mut tail = [0u8; 10];
        src.read_exact(&mut tail).unwrap();
        assert_eq!(&tail, &data[data.len() - 10..]);
        let mut t = [0u8; 4];
        assert_eq!(src.tail(&mut t).unwrap(), 4);
        assert_eq!(&t, &data[data.len() - 4..]);
    }

    #[test]
    fn short_riff_size_is_repaired_in_the_view_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("short.wav");
        let mut data = b"RIFF\x10\x00\x00\x00WAVE".to_vec();
        data.extend(std::iter::repeat_n(0u8, 100));
        std::fs::write(&path, &data).unwrap();
        let mut src = MappedSource::open(&path).unwrap();
        src.repair_riff_size();
        let mut out = Vec::new();
        src.read_to_end(&mut out).unwrap();
        assert_eq!(u32::from_le_bytes([out[4], out[5], out[6], out[7]]), 104);
        assert_eq!(&out[8..], &data[8..]);
        assert_eq!(std::fs::read(&path).unwrap(), data, "the file is untouched");
    }

    #[test]
    fn empty_file_reads_as_eof() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty");
        std::fs::write(&path, b"").unwrap();
        let mut src = MappedSource::open(&path).unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(src.read(&mut buf).unwrap(), 0);
    }

    /// Regression for the NAS case: a file truncated while mapped must give an error, not
    /// kill the process with SIGBUS.
    #[test]
    fn truncated_while_mapped_is_an_error_not_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shrinks.bin");
        let mut f = File::create(&path).unwrap();
        f.write_all(&vec![7u8; 1 << 20]).unwrap();
        f.sync_all().unwrap();
        let mut src = MappedSource::open(&path).unwrap();
        let mut buf = vec![0u8; 4096];
        src.read_exact(&mut buf).unwrap();
        assert!(buf.iter().all(|&b| b == 7));
        // Another writer truncates the file to 8 KiB under our mapping.
        f.set_len(8192).unwrap();
        src.seek(SeekFrom::Start(512 * 1024)).unwrap();
        let err = src.read(&mut buf).unwrap_err();
        assert_eq!(err.to_string(), TRUNCATED);
    }
}
