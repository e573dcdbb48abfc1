//! Fuzzes the HTTP `Range` parser (`server::stream::parse_range`). The body and its
//! properties are in `fuzz/bodies/range.rs`, shared with the stable runner `tests/fuzz.rs`
//! (which CI runs).
//!
//! Run (from the repository root; needs `cargo install cargo-fuzz` and a nightly toolchain).
//! New inputs go to the first folder, a scratch one; the committed seeds are only read:
//!
//! ```text
//! CARGO_TARGET_DIR=fuzz/target cargo +nightly fuzz run range fuzz/target/corpus-range \
//!     fuzz/corpus/range -- -max_len=256 -max_total_time=600
//! ```
//!
//! Keep a finding as a seed (`fuzz/corpus/range/regression_<what>`) once it is fixed: both
//! runners replay every seed first.

#![no_main]

#[path = "../bodies/range.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));
