//! Fuzzes the Subsonic parameters and credential check (`server::subsonic::protocol`). The
//! body and its properties are in `fuzz/bodies/subsonic.rs`, shared with the stable runner
//! `tests/fuzz.rs` (which CI runs).
//!
//! Run (from the repository root; needs `cargo install cargo-fuzz` and a nightly toolchain).
//! New inputs go to the first folder, a scratch one; the committed seeds are only read:
//!
//! ```text
//! CARGO_TARGET_DIR=fuzz/target cargo +nightly fuzz run subsonic fuzz/target/corpus-subsonic \
//!     fuzz/corpus/subsonic -- -max_len=4096 -max_total_time=600
//! ```
//!
//! Keep a finding as a seed (`fuzz/corpus/subsonic/regression_<what>`) once it is fixed: both
//! runners replay every seed first.

#![no_main]

#[path = "../bodies/subsonic.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));
