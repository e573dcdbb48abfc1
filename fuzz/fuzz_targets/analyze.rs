//! Fuzzes the whole analysis path: container probe + demux + decode (symphonia), down-mix,
//! resampling and every feature accumulator, exactly as a worker runs them.
//!
//! `Analyzer::analyze` takes a path (the file is memory-mapped), so each input is written to
//! one temporary file per process and analysed twice: once without an extension (the probe
//! sniffs the bytes alone) and once with `.mp3`/`.flac`/`.ogg`/`.wav`/`.m4a`, chosen by the first
//! byte, since symphonia uses the extension as a probe hint. One `Analyzer` lives for the whole
//! process, as one does per worker, so state carried between files is exercised too.
//!
//! The analyzer turns panics into errors with `catch_unwind`, but libfuzzer-sys installs a panic
//! hook that aborts before unwinding, so here any panic (caught or not in production) is reported
//! as a crash, next to the aborts, hangs, stack overflows and memory blow-ups that would kill a
//! worker. Reproduce with the release CLI (`playlista inspect --json FILE`) to tell them apart.
//!
//! Run (from the repository root; needs `cargo install cargo-fuzz` and a nightly toolchain):
//!
//! ```text
//! CARGO_TARGET_DIR=fuzz/target cargo +nightly fuzz run analyze -- \
//!     -rss_limit_mb=512 -timeout=30 -max_len=262144 -max_total_time=600
//! ```
//!
//! By default cargo-fuzz adds `-Cdebug-assertions`, so integer overflows inside symphonia panic
//! here although release builds wrap silently; add `-O` to fuzz with release arithmetic. libFuzzer
//! stops at the first finding; to keep going, add `-fork=1 -ignore_crashes=1 -ignore_ooms=1
//! -ignore_timeouts=1` (still one worker process).
//!
//! Seeds go in `fuzz/corpus/analyze/` (git-ignored): small real files of each format.
//! Reproduce a finding with `cargo +nightly fuzz run analyze fuzz/artifacts/analyze/<file>`.
//! Inputs that once failed are kept in `tests/fuzz_regressions/`.

#![no_main]

use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use libfuzzer_sys::fuzz_target;
use playlista::analysis::Analyzer;

const EXTENSIONS: [&str; 5] = ["mp3", "flac", "ogg", "wav", "m4a"];

struct State {
    analyzer: Analyzer,
    plain: PathBuf,
    hinted: Vec<PathBuf>,
}

fn state() -> &'static Mutex<State> {
    static STATE: OnceLock<Mutex<State>> = OnceLock::new();
    STATE.get_or_init(|| {
        let base = std::env::temp_dir().join(format!("playlista-fuzz-{}", std::process::id()));
        Mutex::new(State {
            analyzer: Analyzer::new(),
            plain: base.with_extension("bin"),
            hinted: EXTENSIONS.iter().map(|e| base.with_extension(e)).collect(),
        })
    })
}

fn analyze_bytes(analyzer: &mut Analyzer, path: &std::path::Path, data: &[u8]) {
    std::fs::write(path, data).expect("write fuzz input to a temporary file");
    let _ = analyzer.analyze(path);
    let _ = std::fs::remove_file(path);
}

fuzz_target!(|data: &[u8]| {
    let mut guard = state().lock().unwrap_or_else(|e| e.into_inner());
    let State { analyzer, plain, hinted } = &mut *guard;
    // No hint: the probe decides from the bytes alone.
    analyze_bytes(analyzer, plain, data);
    // With a hint, so every demuxer is reached even when the bytes alone would not pick it.
    let ext = data.first().map_or(0, |&b| b as usize % EXTENSIONS.len());
    analyze_bytes(analyzer, &hinted[ext], data);
});
