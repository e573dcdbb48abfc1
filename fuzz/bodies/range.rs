//! The `range` target: [`parse_range`], the `Range` header of `/stream/{id}` and of the
//! Subsonic `stream`/`download`.
//!
//! In: fuzz bytes read as `SIZE\nHEADER`: the file's size in decimal on the first line (1000
//! when it is not a number), then the header value (lossily as UTF-8; any `&str` may come).
//! Out: nothing, or a panic naming the property that failed:
//! - no header asks for the whole file;
//! - a part lies within the file, its start at or before its end;
//! - the answer is the one [`reference`] gives, a plain reading of the policy `parse_range`
//!   documents;
//! - the `Content-Range` the server sends for a part, asked again as a `Range`, is that part.
//!
//! Shared by `fuzz/fuzz_targets/range.rs` (libFuzzer) and `tests/fuzz.rs` (stable).

use playlista::server::stream::{ByteRange, RangeAsk, parse_range};

pub fn run(data: &[u8]) {
    let (size, header) = split(data);
    assert_eq!(parse_range(None, size), RangeAsk::Whole);
    let ask = parse_range(Some(&header), size);
    assert_eq!(
        ask,
        reference(&header, size),
        "size {size}, Range {header:?}"
    );
    if let RangeAsk::Part(ByteRange { start, end }) = ask {
        assert!(start <= end && end < size, "{start}-{end} of {size} bytes");
        let again = parse_range(Some(&format!("bytes={start}-{end}")), size);
        assert_eq!(
            again, ask,
            "bytes={start}-{end} asked again, of {size} bytes"
        );
    }
}

fn split(data: &[u8]) -> (u64, String) {
    let (first, rest) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&[][..], data),
    };
    let size = std::str::from_utf8(first)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1000);
    (size, String::from_utf8_lossy(rest).into_owned())
}

/// One range after `bytes=`, whitespace around the value and around each number aside: one
/// `-`, no `,`, digits on either side or both; `a-b` and `a-` need `a` within the file (`b`
/// is cut to it), `-n` is the last `n > 0` bytes of a file that has some.
fn reference(header: &str, size: u64) -> RangeAsk {
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return RangeAsk::Unsatisfiable;
    };
    let sides: Vec<&str> = spec.split('-').collect();
    if spec.contains(',') || sides.len() != 2 {
        return RangeAsk::Unsatisfiable;
    }
    // Ok(None): no number; Err: not a decimal u64.
    let decimal = |s: &str| -> Result<Option<u64>, ()> {
        let s = s.trim();
        if s.is_empty() {
            return Ok(None);
        }
        s.bytes()
            .try_fold(0u64, |n, c| {
                let digit = c.checked_sub(b'0').filter(|d| *d < 10)?;
                n.checked_mul(10)?.checked_add(u64::from(digit))
            })
            .map(Some)
            .ok_or(())
    };
    let last = size.checked_sub(1);
    let part = match (decimal(sides[0]), decimal(sides[1]), last) {
        (Ok(None), Ok(Some(n)), Some(last)) if n > 0 => Some((size - n.min(size), last)),
        (Ok(Some(a)), Ok(None), Some(last)) if a <= last => Some((a, last)),
        (Ok(Some(a)), Ok(Some(b)), Some(last)) if a <= b && a <= last => Some((a, b.min(last))),
        _ => None,
    };
    part.map_or(RangeAsk::Unsatisfiable, |(start, end)| {
        RangeAsk::Part(ByteRange { start, end })
    })
}
