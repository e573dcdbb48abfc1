//! The fuzz targets of `fuzz/` on the stable toolchain, as CI runs them: no nightly, no
//! cargo-fuzz, no coverage feedback, a few seconds each.
//!
//! For each target (its body and properties are in `fuzz/bodies/`, shared with the libFuzzer
//! target of the same name): every seed and regression input first, then a deterministic
//! mutation loop over them (bit flips, byte inserts and deletes, splices between inputs,
//! interesting numbers in binary and decimal, the target's own tokens, long runs) for
//! `PLAYLISTA_FUZZ_SECS` seconds (default 3) and at most the target's `per_second` inputs per
//! second of it (the count normally ends the loop first, so every machine runs the same
//! inputs). The PRNG starts from `PLAYLISTA_FUZZ_SEED` (hex; default [`DEFAULT_SEED`]),
//! printed with the count of inputs run.
//!
//! A failure is a panic in the body (its own or a failed property), a single allocation over
//! [`ALLOCATION_LIMIT`] (the counting allocator below; what `audio::sanity` exists to prevent),
//! or an input slower than [`SLOW`]. The input is written to `target/tmp/fuzz-failures/` and
//! its hex is in the message, with the seed and iteration that made it.

#[path = "../fuzz/bodies/cover.rs"]
mod cover;
#[path = "../fuzz/bodies/range.rs"]
mod range;
#[path = "../fuzz/bodies/sanity.rs"]
mod sanity;
#[path = "../fuzz/bodies/subsonic.rs"]
mod subsonic;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::{Cell, RefCell};
use std::io::Write as _;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const DEFAULT_SEED: u64 = 0x5EED_F022_2024_0016;
const DEFAULT_SECS: f64 = 3.0;
/// Largest single allocation one input may cause: inputs here are at most a few hundred KB,
/// and the decoder's largest buffers are a few MB.
const ALLOCATION_LIMIT: usize = 64 << 20;
const SLOW: Duration = Duration::from_secs(5);
/// Mutated inputs kept as material for later ones (no coverage says which are better).
const POOL_LIMIT: usize = 512;

/// One fuzz target as this runner drives it.
struct Target {
    name: &'static str,
    run: fn(&[u8]),
    /// Folders of inputs replayed first and mutated, relative to the repository.
    inputs: &'static [&'static str],
    max_len: usize,
    /// Mutated inputs per second of the budget, at most: about half of what the 2-core
    /// development box runs with the four targets at once, so that the count, not the
    /// clock, ends the loop.
    per_second: f64,
    /// Byte strings worth inserting: the format's markers and keywords.
    tokens: &'static [&'static [u8]],
}

#[test]
fn fuzz_range() {
    fuzz(&Target {
        name: "range",
        run: range::run,
        inputs: &["fuzz/corpus/range"],
        max_len: 256,
        per_second: 300_000.0,
        tokens: &[
            b"bytes=",
            b"-",
            b",",
            b"\n",
            b" ",
            b"\t",
            b"\xc2\xa0",
            b"\xe3\x80\x80",
        ],
    });
}

#[test]
fn fuzz_subsonic() {
    fuzz(&Target {
        name: "subsonic",
        run: subsonic::run,
        inputs: &["fuzz/corpus/subsonic"],
        max_len: 4096,
        per_second: 50_000.0,
        tokens: &[
            b"&",
            b"=",
            b"%",
            b"+",
            b"\0",
            b"u=anna",
            b"u=ben",
            b"p=",
            b"enc:",
            b"t=",
            b"s=",
            b"apiKey=",
            b"f=jsonp&callback=",
            b"%00",
            b"%ff",
            b"%C3%96",
            b"sesam",
        ],
    });
}

#[test]
fn fuzz_cover() {
    fuzz(&Target {
        name: "cover",
        run: cover::run,
        inputs: &[
            "fuzz/corpus/cover",
            "fuzz/corpus/sanity",
            "tests/fuzz_regressions",
        ],
        max_len: 128 << 10,
        per_second: 5_000.0,
        tokens: FILE_TOKENS,
    });
}

#[test]
fn fuzz_sanity() {
    fuzz(&Target {
        name: "sanity",
        run: sanity::run,
        inputs: &[
            "fuzz/corpus/sanity",
            "fuzz/corpus/cover",
            "tests/fuzz_regressions",
        ],
        max_len: 128 << 10,
        per_second: 80_000.0,
        tokens: FILE_TOKENS,
    });
}

/// The cover seeds reach what they are for: `NAME.picture.EXT` holds a picture the probe
/// finds, `NAME.none.EXT` none (fuzz/make_seeds.py writes them).
#[test]
fn cover_seeds_hold_what_their_names_say() {
    let mut pictures = 0;
    for (path, _) in inputs(&["fuzz/corpus/cover"]) {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let found = playlista::audio::cover::embedded(&path).is_some();
        match name.split('.').rev().nth(1) {
            Some("picture") => assert!(found, "no picture found in {name}"),
            Some("none") => assert!(!found, "a picture found in {name}"),
            _ => panic!("{name}: name it NAME.picture.EXT or NAME.none.EXT"),
        }
        pictures += usize::from(found);
    }
    assert!(pictures >= 5, "{pictures} seeds with a picture");
}

/// Container markers and the words inside their headers.
const FILE_TOKENS: &[&[u8]] = &[
    b"ID3\x03\x00\x00",
    b"ID3\x03\x00\x80",
    b"ID3\x03\x00\x40\x00\x00\x00\x00\x00\x00\x00\x0a",
    b"ID3\x04\x00\x10",
    b"APIC",
    b"TIT2",
    b"fLaC",
    b"\x84\x00\x00",
    b"OggS\x00\x02",
    b"OpusHead",
    b"OpusTags",
    b"\x03vorbis",
    b"METADATA_BLOCK_PICTURE=",
    b"ftyp",
    b"moov",
    b"stsz",
    b"stsc",
    b"stco",
    b"udta",
    b"meta",
    b"ilst",
    b"covr",
    b"data",
    b"RIFF",
    b"WAVE",
    b"\xff\xfb\x90\x00",
    b"\x89PNG\r\n\x1a\n",
    b"image/png\0",
    b"-->\0",
];

fn fuzz(t: &Target) {
    let mut pool: Vec<Vec<u8>> = Vec::new();
    for (path, bytes) in inputs(t.inputs) {
        execute(t, &bytes, &|| format!("input {}", path.display()));
        pool.push(bytes);
    }
    assert!(!pool.is_empty(), "{}: no seeds in {:?}", t.name, t.inputs);
    let replayed = pool.len();

    let seed = std::env::var("PLAYLISTA_FUZZ_SEED")
        .ok()
        .and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok())
        .unwrap_or(DEFAULT_SEED);
    let secs: f64 = std::env::var("PLAYLISTA_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_SECS);
    let budget = Duration::from_secs_f64(secs.max(0.0));
    let max_iterations = (secs.max(0.0) * t.per_second) as u64;
    let mut rng = Rng::new(seed ^ fnv1a(t.name.as_bytes()));
    let started = Instant::now();
    let mut iterations = 0;
    while iterations < max_iterations && started.elapsed() < budget {
        let mut input = pool[rng.below(pool.len())].clone();
        for _ in 0..1 + rng.below(4) {
            mutate(&mut rng, &mut input, &pool, t);
        }
        execute(t, &input, &|| {
            format!("iteration {iterations} of seed {seed:#x}")
        });
        if pool.len() < POOL_LIMIT && rng.below(32) == 0 {
            pool.push(input);
        }
        iterations += 1;
    }
    println!(
        "fuzz {}: {replayed} inputs replayed, {iterations} mutated in {:.1} s \
         (PLAYLISTA_FUZZ_SEED={seed:#x}, PLAYLISTA_FUZZ_SECS={secs})",
        t.name,
        started.elapsed().as_secs_f64()
    );
}

/// Every file in `dirs` (`.md` notes aside), sorted by path, so the replay is reproducible.
fn inputs(dirs: &[&str]) -> Vec<(PathBuf, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut paths: Vec<PathBuf> = dirs
        .iter()
        .flat_map(|dir| std::fs::read_dir(root.join(dir)).into_iter().flatten())
        .flatten()
        .map(|entry| entry.path())
        .filter(|p| p.is_file() && p.extension().is_none_or(|e| e != "md"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p, bytes)
        })
        .collect()
}

/// Runs one input; on a failure, keeps the input and fails the test.
fn execute(t: &Target, input: &[u8], what: &dyn Fn() -> String) {
    RUNNING.with(|r| *r.borrow_mut() = Some((t.name, input.to_vec())));
    LARGEST.with(|c| c.set(0));
    let started = Instant::now();
    let outcome = catch_unwind(AssertUnwindSafe(|| (t.run)(input)));
    let took = started.elapsed();
    let largest = LARGEST.with(Cell::get);
    RUNNING.with(|r| r.borrow_mut().take());
    let failure = match outcome {
        Err(payload) => {
            let message = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied())
                .unwrap_or("(not a string)");
            format!("panicked: {message}")
        }
        Ok(()) if largest > ALLOCATION_LIMIT => {
            format!("asked for {largest} bytes at once (limit {ALLOCATION_LIMIT})")
        }
        Ok(()) if took > SLOW => format!("took {took:?} (limit {SLOW:?})"),
        Ok(()) => return,
    };
    let kept = keep(t.name, input);
    let hex: String = input
        .iter()
        .take(4096)
        .map(|b| format!("{b:02x}"))
        .collect();
    let cut = if input.len() > 4096 { "…" } else { "" };
    panic!(
        "fuzz {}: {} {failure}\n{} bytes, {kept}\n(once fixed, copy it into fuzz/corpus/{}/ \
         as regression_WHAT)\nhex: {hex}{cut}",
        t.name,
        what(),
        input.len(),
        t.name
    );
}

/// Writes a failing input to `target/tmp/fuzz-failures/`; says where (or why not).
fn keep(target: &str, input: &[u8]) -> String {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz-failures");
    let file = dir.join(format!("{target}-{:016x}", fnv1a(input)));
    std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(&file, input))
        .map_or_else(
            |e| format!("not kept: {e}"),
            |()| format!("kept in {}", file.display()),
        )
}

/// Numbers at the edges of the integer types, for lengths, sizes and counts.
const INTERESTING: [u64; 10] = [
    0,
    1,
    0x7f,
    0xff,
    0x7fff,
    0xffff,
    0x7fff_ffff,
    0xffff_ffff,
    i64::MAX as u64,
    u64::MAX,
];

fn mutate(rng: &mut Rng, input: &mut Vec<u8>, pool: &[Vec<u8>], t: &Target) {
    let at = |rng: &mut Rng, input: &[u8]| rng.below(input.len() + 1);
    match rng.below(10) {
        // Flip one bit.
        0 if !input.is_empty() => {
            let i = rng.below(input.len());
            input[i] ^= 1 << rng.below(8);
        }
        // Set one byte.
        1 if !input.is_empty() => {
            let i = rng.below(input.len());
            let random = rng.next() as u8;
            input[i] = *rng.pick(&[0, 0xff, 0x7f, 0x80, b'0', b'9', random]);
        }
        // Insert a few random bytes.
        2 => {
            let i = at(rng, input);
            let bytes: Vec<u8> = (0..1 + rng.below(4)).map(|_| rng.next() as u8).collect();
            input.splice(i..i, bytes);
        }
        // Delete a range.
        3 if !input.is_empty() => {
            let i = rng.below(input.len());
            let longest = if rng.below(4) == 0 { 4096 } else { 8 };
            let n = 1 + rng.below((input.len() - i).min(longest));
            input.drain(i..i + n);
        }
        // A long run of one byte, or a chunk repeated.
        4 => {
            let i = at(rng, input);
            let run: Vec<u8> = if rng.below(2) == 0 || input.is_empty() {
                vec![*rng.pick(&[0, 0xff, b'a', b'0', b'&', b'=', b'%']); 1 + rng.below(4096)]
            } else {
                let from = rng.below(input.len());
                let len = 1 + rng.below((input.len() - from).min(64));
                input[from..from + len].repeat(2 + rng.below(64))
            };
            input.splice(i..i, run);
        }
        // Splice: this input's head, another's tail.
        5 => {
            let other = &pool[rng.below(pool.len())];
            let cut = at(rng, input);
            let from = rng.below(other.len() + 1);
            input.truncate(cut);
            input.extend_from_slice(&other[from..]);
        }
        // An interesting number in binary, over the bytes at a random place.
        6 if !input.is_empty() => {
            let n = *rng.pick(&INTERESTING);
            let width = *rng.pick(&[1, 2, 4, 8]);
            let bytes = if rng.below(2) == 0 {
                n.to_le_bytes()
            } else {
                (n << (64 - 8 * width)).to_be_bytes()
            };
            let i = rng.below(input.len());
            let end = (i + width).min(input.len());
            input[i..end].copy_from_slice(&bytes[..end - i]);
        }
        // An interesting number in decimal, or -1.
        7 => {
            let text = match rng.below(4) {
                0 => "-1".to_string(),
                1 => "18446744073709551616".to_string(),
                _ => rng.pick(&INTERESTING).to_string(),
            };
            let i = at(rng, input);
            input.splice(i..i, text.into_bytes());
        }
        // One of the target's tokens.
        8 => {
            let i = at(rng, input);
            input.splice(i..i, rng.pick(t.tokens).iter().copied());
        }
        // Cut short.
        _ => {
            let cut = at(rng, input);
            input.truncate(cut);
        }
    }
    input.truncate(t.max_len);
}

/// xorshift64*: small, fast, and the same sequence everywhere for a seed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform enough in `0..n`; `n` must not be 0.
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The system allocator, noting the largest single request of each thread.
struct Counting;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
    /// The target and input this thread runs (set by [`execute`]).
    static RUNNING: RefCell<Option<(&'static str, Vec<u8>)>> = const { RefCell::new(None) };
}

fn note(size: usize) {
    // `try_with`: a thread being torn down has no slot left; its allocations go unnoted.
    let _ = LARGEST.try_with(|c| c.set(c.get().max(size)));
    if size > ALLOCATION_LIMIT {
        // Kept now, once: where the system refuses, the process aborts before `execute` can
        // report. Writing it allocates, which is fine here: nothing is held yet.
        let running = RUNNING
            .try_with(|r| r.try_borrow_mut().ok().and_then(|mut r| r.take()))
            .ok()
            .flatten();
        if let Some((target, input)) = running {
            let kept = keep(target, &input);
            let _ = writeln!(
                std::io::stderr(),
                "fuzz {target}: an input asks for {size} bytes at once; {kept}"
            );
        }
    }
}

// SAFETY: every method passes its arguments on to `System` unchanged, so the `GlobalAlloc`
// contract holds as it does for `System`; noting a size neither allocates nor unwinds.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: the caller's guarantees for `layout` are `System.alloc`'s.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` through this allocator, with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: `ptr` came from `System` through this allocator, with `layout`; the caller's
        // guarantees for `new_size` are `System.realloc`'s.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;
