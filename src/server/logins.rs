//! Back-off on password guessing, per client address: a few wrong logins are free, then each
//! check from that address waits its turn, the turns growing apart with every further failure,
//! so that one device can try a handful of passwords a second at most however many
//! connections it opens, while the owner on another device logs in at once.
//!
//! In: the client's address before a login is checked ([`Logins::turn`]) and the outcome
//! after ([`Logins::failed`], [`Logins::succeeded`]). Out: the wait, or a refusal when the
//! address's queue is already [`MAX_QUEUE`] long; the failure counter for `/metrics`.
//! IPv6 addresses count per /64 (one household's prefix), so rotating through a prefix does
//! not reset the count. An address's record is forgotten after [`FORGET`] without failures.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Wrong logins an address may make before its checks are spaced out.
pub const FREE_FAILURES: u32 = 5;
/// Spacing after the first failure past the free ones; doubled by each further one…
const FIRST_DELAY: Duration = Duration::from_millis(50);
/// …up to this.
pub const MAX_DELAY: Duration = Duration::from_millis(250);
/// Longest wait a check may be given; past it the login is refused unchecked.
pub const MAX_QUEUE: Duration = Duration::from_secs(30);
/// An address with no failure for this long starts afresh.
const FORGET: Duration = Duration::from_secs(15 * 60);
/// Addresses remembered at most (a LAN has a few dozen; past this the oldest are dropped).
const MAX_ADDRESSES: usize = 4096;

#[derive(Default)]
pub struct Logins {
    by_address: Mutex<HashMap<IpAddr, Record>>,
    /// Wrong logins since start, for `/metrics`.
    pub failures: AtomicU64,
    /// Logins refused unchecked because the address's queue was full.
    pub refused: AtomicU64,
}

#[derive(Clone, Copy)]
struct Record {
    failures: u32,
    /// When the next check from this address may run.
    next: Instant,
    last_failure: Instant,
}

/// What [`Logins::turn`] decided.
#[derive(Debug, PartialEq)]
pub enum Turn {
    /// Check now (after waiting, if the address has failed too often).
    Check,
    /// Too many checks already queued for this address: refuse without checking.
    Refuse(Duration),
}

impl Logins {
    /// Waits until a login from `ip` may be checked.
    pub async fn turn(&self, ip: IpAddr) -> Turn {
        match self.reserve(ip, Instant::now()) {
            Ok(at) => {
                tokio::time::sleep_until(at.into()).await;
                Turn::Check
            }
            Err(wait) => Turn::Refuse(wait),
        }
    }

    /// When a check from `ip` asked for at `now` may run (its turn is taken), or how long
    /// the address's queue already is when that is past [`MAX_QUEUE`].
    fn reserve(&self, ip: IpAddr, now: Instant) -> Result<Instant, Duration> {
        let mut map = self.lock();
        let Some(r) = map.get_mut(&key(ip)) else {
            return Ok(now);
        };
        let delay = if now - r.last_failure > FORGET {
            Duration::ZERO
        } else {
            delay(r.failures)
        };
        if delay.is_zero() {
            return Ok(now);
        }
        let at = r.next.max(now);
        if at - now > MAX_QUEUE {
            self.refused.fetch_add(1, Ordering::Relaxed);
            return Err(at - now);
        }
        r.next = at + delay;
        Ok(at)
    }

    /// A wrong login from `ip`.
    pub fn failed(&self, ip: IpAddr) {
        self.failed_at(ip, Instant::now());
    }

    fn failed_at(&self, ip: IpAddr, now: Instant) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        let mut map = self.lock();
        if map.len() >= MAX_ADDRESSES && !map.contains_key(&key(ip)) {
            map.retain(|_, r| now - r.last_failure < FORGET);
            if map.len() >= MAX_ADDRESSES
                && let Some(oldest) = map.iter().min_by_key(|(_, r)| r.last_failure)
            {
                let oldest = *oldest.0;
                map.remove(&oldest);
            }
        }
        let r = map.entry(key(ip)).or_insert(Record {
            failures: 0,
            next: now,
            last_failure: now,
        });
        if now - r.last_failure > FORGET {
            r.failures = 0;
        }
        r.failures = r.failures.saturating_add(1);
        r.last_failure = now;
    }

    /// A right login from `ip`: its count starts afresh.
    pub fn succeeded(&self, ip: IpAddr) {
        self.lock().remove(&key(ip));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Record>> {
        self.by_address
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Spacing between checks after `failures` wrong logins.
fn delay(failures: u32) -> Duration {
    match failures.checked_sub(FREE_FAILURES) {
        None => Duration::ZERO,
        Some(past) => FIRST_DELAY.saturating_mul(1 << past.min(16)).min(MAX_DELAY),
    }
}

/// The address a record is kept under: v4 as is, v6 by its /64 (v4-mapped as v4).
fn key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_start_after_the_free_failures_and_grow_to_the_cap() {
        assert_eq!(delay(0), Duration::ZERO);
        assert_eq!(delay(FREE_FAILURES - 1), Duration::ZERO);
        assert_eq!(delay(FREE_FAILURES), FIRST_DELAY);
        assert_eq!(delay(FREE_FAILURES + 1), FIRST_DELAY * 2);
        assert_eq!(delay(FREE_FAILURES + 40), MAX_DELAY);
        assert_eq!(delay(u32::MAX), MAX_DELAY);
    }

    #[test]
    fn v6_counts_per_prefix_and_mapped_v4_as_v4() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(key(a), key(b));
        assert_ne!(key(a), key(c));
        let mapped: IpAddr = "::ffff:192.168.1.9".parse().unwrap();
        assert_eq!(key(mapped), "192.168.1.9".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn checks_from_a_guessing_address_are_spaced_and_others_are_not() {
        let logins = Logins::default();
        let guesser: IpAddr = "127.0.0.2".parse().unwrap();
        let owner: IpAddr = "127.0.0.3".parse().unwrap();
        // A client that sends its next guess as soon as the last one is answered.
        let start = Instant::now();
        let mut now = start;
        for _ in 0..FREE_FAILURES + 20 {
            now = logins.reserve(guesser, now).unwrap();
            logins.failed_at(guesser, now);
        }
        // 50, 100, 200 ms, then the cap for the rest.
        assert!(now - start >= MAX_DELAY * 17, "{:?}", now - start);
        assert_eq!(logins.reserve(owner, now), Ok(now));
        assert_eq!(logins.failures.load(Ordering::Relaxed), 25);
        logins.succeeded(guesser);
        assert_eq!(logins.reserve(guesser, now), Ok(now));
    }

    #[test]
    fn concurrent_checks_queue_and_a_full_queue_is_refused_unchecked() {
        let logins = Logins::default();
        let ip: IpAddr = "10.0.0.7".parse().unwrap();
        let now = Instant::now();
        for _ in 0..FREE_FAILURES + 10 {
            logins.failed_at(ip, now);
        }
        // Many connections asking at the same instant each get the next turn…
        let turns = (MAX_QUEUE.as_millis() / MAX_DELAY.as_millis()) as usize;
        let mut last = now;
        for i in 0..=turns {
            let at = logins.reserve(ip, now).unwrap();
            assert_eq!(at - now, MAX_DELAY * i as u32);
            last = at;
        }
        assert_eq!(last - now, MAX_QUEUE);
        // …and past the queue's length they are refused without a check.
        assert!(logins.reserve(ip, now).is_err());
        assert_eq!(logins.refused.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn an_address_is_forgotten_after_a_quiet_while() {
        let logins = Logins::default();
        let ip: IpAddr = "10.0.0.8".parse().unwrap();
        let now = Instant::now();
        for _ in 0..FREE_FAILURES + 3 {
            logins.failed_at(ip, now);
        }
        let later = now + FORGET + Duration::from_secs(1);
        logins.failed_at(ip, later);
        assert_eq!(logins.reserve(ip, later), Ok(later));
    }
}
