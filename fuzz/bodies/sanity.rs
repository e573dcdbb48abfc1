//! The `sanity` target: [`check`], the length checks every file passes before symphonia sees
//! it (the analysis, `inspect` and the cover probe alike).
//!
//! In: fuzz bytes, taken as a whole file. Out: nothing, or a panic (the check's own or a
//! failed property):
//! - the verdict is deterministic, and a refusal says why in a line (under 512 bytes);
//! - a file that passes still passes when it is said to be longer (`file_len` only bounds
//!   what a length may claim);
//! - zero bytes in front of the file do not change the verdict: the check searches for the
//!   first marker as symphonia's probe does (unless an `ftyp` sits in the first four bytes,
//!   where the padding would complete its box header).
//!
//! Shared by `fuzz/fuzz_targets/sanity.rs` (libFuzzer) and `tests/fuzz.rs` (stable).

use playlista::audio::sanity::check;

/// Zero bytes put in front of the input.
const PAD: usize = 8;

pub fn run(data: &[u8]) {
    let len = data.len() as u64;
    let verdict = check(data, len);
    assert_eq!(verdict, check(data, len), "the same bytes, another verdict");
    if let Err(why) = &verdict {
        assert!(
            !why.is_empty() && why.len() < 512 && !why.contains('\n'),
            "refusal {why:?}"
        );
    } else {
        assert_eq!(
            check(data, u64::MAX),
            Ok(()),
            "refused once the file is longer"
        );
    }
    let ftyp_at_start = data.windows(4).take(4).any(|w| w == b"ftyp");
    // Within the probe's search window (1 MiB) with the padding.
    if !ftyp_at_start && data.len() + PAD < 1 << 20 {
        let mut padded = vec![0; PAD];
        padded.extend_from_slice(data);
        let at = len + PAD as u64;
        assert_eq!(
            check(&padded, at).is_ok(),
            check(data, at).is_ok(),
            "{PAD} zero bytes in front change the verdict"
        );
    }
}
