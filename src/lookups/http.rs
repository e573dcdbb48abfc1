//! The HTTP side of the on-line look-ups: one polite, patient, bounded client per service.
//!
//! In: a base URL, the service's minimum gap between requests, a time limit, the stop flag.
//! Out: a response body, or a [`Failure`] that says what the caller should do about it.
//!
//! - Requests are spaced at least `gap` apart, start to start (MusicBrainz allows one per
//!   second per client), across threads sharing the client.
//! - 503 (MusicBrainz's "slow down") and 429 are retried after 1, 2, 4 s, or the
//!   `Retry-After` the service names (at most 30 s); the stop flag ends the wait.
//! - Every request has a time limit; connecting has a shorter one, and a failure to connect
//!   or resolve is [`Failure::Offline`]: the caller stops asking that service for a while
//!   instead of waiting out one time limit per track.
//!
//! Built on ureq with rustls (ring) and the webpki roots compiled in: nothing from the system
//! (no OpenSSL, no CA store) is needed at run time, and it cross-compiles with a plain C cross
//! compiler.

use std::io::ErrorKind;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Largest answer read (a recording with hundreds of releases is well under 1 MB).
const MAX_BODY: u64 = 4 << 20;
/// Retries of a 503/429 answer.
const RETRIES: u32 = 3;
/// Longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

/// Why a request gave no usable answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// No connection (refused, unreachable, name not resolved): the network or the service is
    /// down. Nothing is recorded; the track is asked again later.
    #[error("cannot reach the service: {0}")]
    Offline(String),
    /// The service refuses us as a client (bad API key, blocked User-Agent): stop asking it.
    #[error("the service refuses this client: {0}")]
    Refused(String),
    /// The answer took longer than the time limit.
    #[error("no answer within {0} s")]
    Timeout(u64),
    /// An error status, after any retries.
    #[error("HTTP {0}")]
    Status(u16),
    /// An answer that is not what the service documents.
    #[error("malformed answer: {0}")]
    Malformed(String),
    /// Stopped (Ctrl-C, SIGTERM) while waiting.
    #[error("stopped")]
    Stopped,
}

/// A response: its status and body text (error statuses included: some services explain
/// themselves in the body).
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

impl Answer {
    /// The body as JSON.
    pub fn json(&self) -> Result<serde_json::Value, Failure> {
        serde_json::from_str(&self.body).map_err(|e| Failure::Malformed(e.to_string()))
    }
}

pub struct Client {
    agent: ureq::Agent,
    timeout: Duration,
    gap: Duration,
    /// When the next request may start.
    next: Mutex<Instant>,
}

/// `playlista/VERSION ( contact )`, as MusicBrainz asks of every client.
pub fn user_agent(contact: &str) -> String {
    format!("playlista/{} ( {contact} )", env!("CARGO_PKG_VERSION"))
}

impl Client {
    pub fn new(user_agent: &str, timeout: Duration, gap: Duration) -> Client {
        let config = ureq::Agent::config_builder()
            .user_agent(user_agent)
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .timeout_connect(Some(timeout.min(Duration::from_secs(5))))
            .timeout_resolve(Some(timeout.min(Duration::from_secs(5))))
            .max_redirects(3)
            .build();
        Client {
            agent: config.new_agent(),
            timeout,
            gap,
            next: Mutex::new(Instant::now()),
        }
    }

    /// GET `url` with `query`, spaced and retried as the module says.
    pub fn get(
        &self,
        url: &str,
        query: &[(&str, &str)],
        stop: &AtomicBool,
    ) -> Result<Answer, Failure> {
        let mut attempt = 0;
        loop {
            self.wait_turn(stop)?;
            let result = self
                .agent
                .get(url)
                .header("Accept", "application/json")
                .query_pairs(query.iter().copied())
                .call();
            let mut response = match result {
                Ok(r) => r,
                Err(e) => return Err(self.classify(e)),
            };
            let status = response.status().as_u16();
            if matches!(status, 429 | 503) && attempt < RETRIES {
                let wait = response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(|s| Duration::from_secs(s).min(MAX_RETRY_AFTER))
                    .unwrap_or(Duration::from_secs(1 << attempt));
                tracing::debug!("{url}: HTTP {status}, retrying in {wait:?}");
                attempt += 1;
                pause(wait, stop)?;
                continue;
            }
            let body = response
                .body_mut()
                .with_config()
                .limit(MAX_BODY)
                .read_to_string()
                .map_err(|e| self.classify(e))?;
            return Ok(Answer { status, body });
        }
    }

    /// Sleeps until this client may send again and books the next slot.
    fn wait_turn(&self, stop: &AtomicBool) -> Result<(), Failure> {
        let slot = {
            let mut next = match self.next.lock() {
                Ok(n) => n,
                Err(poisoned) => poisoned.into_inner(),
            };
            let slot = (*next).max(Instant::now());
            *next = slot + self.gap;
            slot
        };
        pause(slot.saturating_duration_since(Instant::now()), stop)
    }

    fn classify(&self, e: ureq::Error) -> Failure {
        use ureq::Error as E;
        match e {
            E::Timeout(ureq::Timeout::Connect | ureq::Timeout::Resolve) => {
                Failure::Offline("connecting timed out".into())
            }
            E::Timeout(_) => Failure::Timeout(self.timeout.as_secs().max(1)),
            E::HostNotFound => Failure::Offline("host not found".into()),
            E::ConnectionFailed => Failure::Offline("connection failed".into()),
            E::Io(io) => match io.kind() {
                ErrorKind::ConnectionRefused
                | ErrorKind::HostUnreachable
                | ErrorKind::NetworkUnreachable
                | ErrorKind::NetworkDown
                | ErrorKind::AddrNotAvailable => Failure::Offline(io.to_string()),
                ErrorKind::TimedOut | ErrorKind::WouldBlock => {
                    Failure::Timeout(self.timeout.as_secs().max(1))
                }
                _ => Failure::Malformed(format!("connection broke: {io}")),
            },
            E::Tls(reason) => Failure::Offline(format!("TLS: {reason}")),
            E::BodyExceedsLimit(_) => Failure::Malformed("answer too large".into()),
            other => Failure::Malformed(other.to_string()),
        }
    }
}

/// Sleeps `d` in short steps, ending early with [`Failure::Stopped`] when `stop` is set.
fn pause(d: Duration, stop: &AtomicBool) -> Result<(), Failure> {
    let until = Instant::now() + d;
    loop {
        if stop.load(Ordering::Relaxed) {
            return Err(Failure::Stopped);
        }
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        std::thread::sleep(left.min(Duration::from_millis(100)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    /// A one-connection-per-request server on loopback answering from `replies` in order;
    /// returns its base URL and the arrival times.
    fn serve(replies: Vec<&'static str>) -> (String, std::sync::mpsc::Receiver<Instant>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for reply in replies {
                let (mut s, _) = listener.accept().unwrap();
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf);
                let _ = tx.send(Instant::now());
                let _ = s.write_all(reply.as_bytes());
            }
        });
        (url, rx)
    }

    const OK: &str = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}";
    const BUSY: &str =
        "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

    #[test]
    fn requests_are_spaced_and_503_is_retried() {
        let (url, arrivals) = serve(vec![BUSY, OK, OK]);
        let client = Client::new("t", Duration::from_secs(5), Duration::from_millis(300));
        let stop = AtomicBool::new(false);
        let a = client.get(&url, &[("q", "a b")], &stop).unwrap();
        assert_eq!((a.status, a.body.as_str()), (200, "{}"));
        client.get(&url, &[], &stop).unwrap();
        let t: Vec<Instant> = arrivals.iter().take(3).collect();
        // The retry waits 1 s; the next request only the gap.
        assert!(
            t[1] - t[0] >= Duration::from_millis(990),
            "{:?}",
            t[1] - t[0]
        );
        assert!(
            t[2] - t[1] >= Duration::from_millis(290),
            "{:?}",
            t[2] - t[1]
        );
    }

    #[test]
    fn a_closed_port_is_offline_at_once() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let client = Client::new("t", Duration::from_secs(5), Duration::ZERO);
        let started = Instant::now();
        let e = client
            .get(
                &format!("http://127.0.0.1:{port}/"),
                &[],
                &AtomicBool::new(false),
            )
            .unwrap_err();
        assert!(matches!(e, Failure::Offline(_)), "{e:?}");
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}
