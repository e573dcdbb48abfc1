//! When a file that failed for a passing reason is tried again by itself: a worker that
//! crashed (memory refused while the box was busy) or ran out of time under load may well
//! succeed another day, so a crash or a timeout is retried by later runs, spaced out, a few
//! times at most. Other failures (not audio, damaged audio, unreadable) wait for the file to
//! change, or for `--failed`.
//!
//! In: a failed track's kind, attempts so far and last attempt, and the time now. Out: whether
//! the scanner queues it again ([`due`]).

use std::time::Duration;

use crate::analysis::FailKind;

/// Attempts in all (the first included) after which a crash or a timeout is left alone.
pub const MAX_ATTEMPTS: u32 = 5;
/// The wait after the first failure; it doubles with each attempt after that.
const FIRST_WAIT: Duration = Duration::from_secs(3600);
/// The longest wait between two attempts.
const LONGEST_WAIT: Duration = Duration::from_secs(7 * 24 * 3600);

/// The least time between attempt `attempts` (1 for the first) and the next one:
/// 1 h × 2^(attempts - 1), at most a week.
pub fn wait_after(attempts: u32) -> Duration {
    let doublings = attempts.saturating_sub(1).min(16);
    (FIRST_WAIT * (1 << doublings)).min(LONGEST_WAIT)
}

/// Whether a file that failed `attempts` times, the last at `last_attempt` (Unix seconds),
/// with `kind`, is tried again by a run at `now`.
pub fn due(kind: FailKind, attempts: u32, last_attempt: Option<i64>, now: i64) -> bool {
    if !matches!(kind, FailKind::Crash | FailKind::Timeout) || attempts >= MAX_ATTEMPTS {
        return false;
    }
    let wait = i64::try_from(wait_after(attempts).as_secs()).unwrap_or(i64::MAX);
    last_attempt.is_none_or(|at| now.saturating_sub(at) >= wait)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3600;

    #[test]
    fn the_wait_doubles_from_an_hour_up_to_a_week() {
        let hours: Vec<u64> = (1..=5).map(|a| wait_after(a).as_secs() / 3600).collect();
        assert_eq!(hours, [1, 2, 4, 8, 16]);
        assert_eq!(wait_after(0), FIRST_WAIT);
        assert_eq!(wait_after(9), LONGEST_WAIT, "2^8 h is past a week");
        assert_eq!(wait_after(u32::MAX), LONGEST_WAIT);
    }

    #[test]
    fn crashes_and_timeouts_come_back_when_due_a_few_times_at_most() {
        let at = 1_700_000_000;
        for kind in [FailKind::Crash, FailKind::Timeout] {
            assert!(
                !due(kind, 1, Some(at), at + HOUR - 1),
                "not within the hour"
            );
            assert!(due(kind, 1, Some(at), at + HOUR));
            assert!(!due(kind, 3, Some(at), at + 3 * HOUR));
            assert!(due(kind, 3, Some(at), at + 4 * HOUR));
            assert!(due(kind, 4, Some(at), at + 8 * HOUR));
            assert!(
                !due(kind, MAX_ATTEMPTS, Some(at), at + 365 * 24 * HOUR),
                "{MAX_ATTEMPTS} attempts: left alone"
            );
            assert!(due(kind, 1, None, at), "never tried: due");
            assert!(!due(kind, 1, Some(at + HOUR), at), "a clock set back waits");
        }
        for kind in [
            FailKind::Io,
            FailKind::Unsupported,
            FailKind::Corrupt,
            FailKind::Unknown,
        ] {
            assert!(!due(kind, 1, Some(at), at + 365 * 24 * HOUR), "{kind:?}");
        }
    }
}
