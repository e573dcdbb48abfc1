//! Fuzzes the cover-art probe (`audio::cover`). The body and its properties are in
//! `fuzz/bodies/cover.rs`, shared with the stable runner `tests/fuzz.rs` (which CI runs).
//!
//! Run (from the repository root; needs `cargo install cargo-fuzz` and a nightly toolchain).
//! New inputs go to the first folder, a scratch one; the committed seeds are only read:
//!
//! ```text
//! CARGO_TARGET_DIR=fuzz/target cargo +nightly fuzz run cover fuzz/target/corpus-cover \
//!     fuzz/corpus/cover fuzz/corpus/sanity tests/fuzz_regressions \
//!     -- -max_len=131072 -malloc_limit_mb=64 -timeout=10 -max_total_time=600
//! ```
//!
//! Keep a finding as a seed (`fuzz/corpus/cover/regression_<what>`) once it is fixed: both
//! runners replay every seed first.

#![no_main]

#[path = "../bodies/cover.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));
