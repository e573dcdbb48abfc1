//! Request counters and latency histograms, and `/metrics` in the Prometheus text format.
//!
//! In: every request's route class, status and duration (from the middleware in
//! [`super::router`]); the catalog's counts and the background analysis' state. Out: the
//! `/metrics` page. Lock-free: atomics only.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 10] = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1.0, 5.0];

/// Which part of the service a request went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Api,
    M3u,
    Stream,
    Subsonic,
    Web,
    Other,
}

const ROUTES: [Route; 6] = [
    Route::Api,
    Route::M3u,
    Route::Stream,
    Route::Subsonic,
    Route::Web,
    Route::Other,
];

impl Route {
    pub fn of(path: &str) -> Route {
        if path.starts_with("/api/") {
            Route::Api
        } else if path.starts_with("/playlists/") {
            Route::M3u
        } else if path.starts_with("/stream/") {
            Route::Stream
        } else if path.starts_with("/rest/") {
            Route::Subsonic
        } else if path == "/" || path.starts_with("/static/") {
            Route::Web
        } else {
            Route::Other
        }
    }

    fn label(self) -> &'static str {
        match self {
            Route::Api => "api",
            Route::M3u => "m3u8",
            Route::Stream => "stream",
            Route::Subsonic => "subsonic",
            Route::Web => "web",
            Route::Other => "other",
        }
    }
}

/// Counts of one route class.
#[derive(Default)]
struct RouteStats {
    /// By status class: 2xx, 3xx, 4xx, 5xx.
    by_class: [AtomicU64; 4],
    /// Cumulative counts per bucket, plus the total (`+Inf`) last.
    buckets: [AtomicU64; BUCKETS.len() + 1],
    /// Sum of durations in microseconds.
    sum_us: AtomicU64,
}

#[derive(Default)]
pub struct Metrics {
    routes: [RouteStats; ROUTES.len()],
    pub in_flight: AtomicU64,
}

impl Metrics {
    pub fn record(&self, route: Route, status: u16, took: Duration) {
        let Some(i) = ROUTES.iter().position(|&r| r == route) else {
            return;
        };
        let r = &self.routes[i];
        let class = (status / 100).clamp(2, 5) as usize - 2;
        r.by_class[class].fetch_add(1, Ordering::Relaxed);
        let s = took.as_secs_f64();
        for (b, bound) in BUCKETS.iter().enumerate() {
            if s <= *bound {
                r.buckets[b].fetch_add(1, Ordering::Relaxed);
            }
        }
        r.buckets[BUCKETS.len()].fetch_add(1, Ordering::Relaxed);
        r.sum_us
            .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
    }

    /// The request part of `/metrics`.
    pub fn render(&self, out: &mut String) {
        out.push_str(
            "# HELP playlista_http_requests_total HTTP requests by route and status class.\n",
        );
        out.push_str("# TYPE playlista_http_requests_total counter\n");
        for (route, r) in ROUTES.iter().zip(&self.routes) {
            for (c, n) in r.by_class.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "playlista_http_requests_total{{route=\"{}\",status=\"{}xx\"}} {}",
                    route.label(),
                    c + 2,
                    n.load(Ordering::Relaxed)
                );
            }
        }
        out.push_str("# HELP playlista_http_request_duration_seconds Time to the response head.\n");
        out.push_str("# TYPE playlista_http_request_duration_seconds histogram\n");
        for (route, r) in ROUTES.iter().zip(&self.routes) {
            let label = route.label();
            for (b, bound) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "playlista_http_request_duration_seconds_bucket{{route=\"{label}\",le=\"{bound}\"}} {}",
                    r.buckets[b].load(Ordering::Relaxed)
                );
            }
            let total = r.buckets[BUCKETS.len()].load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "playlista_http_request_duration_seconds_bucket{{route=\"{label}\",le=\"+Inf\"}} {total}\n\
                 playlista_http_request_duration_seconds_sum{{route=\"{label}\"}} {}\n\
                 playlista_http_request_duration_seconds_count{{route=\"{label}\"}} {total}",
                r.sum_us.load(Ordering::Relaxed) as f64 / 1e6
            );
        }
        gauge(
            out,
            "playlista_http_in_flight",
            "Requests being answered.",
            self.in_flight.load(Ordering::Relaxed) as f64,
        );
    }
}

/// One gauge with its help and type lines.
pub fn gauge(out: &mut String, name: &str, help: &str, value: f64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
    );
}

/// One Prometheus counter, with its HELP and TYPE lines.
pub fn counter(out: &mut String, name: &str, help: &str, value: u64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_classes_counted() {
        let m = Metrics::default();
        m.record(Route::Api, 200, Duration::from_micros(1500));
        m.record(Route::Api, 404, Duration::from_millis(30));
        let mut out = String::new();
        m.render(&mut out);
        assert!(out.contains("route=\"api\",status=\"2xx\"} 1"), "{out}");
        assert!(out.contains("route=\"api\",status=\"4xx\"} 1"), "{out}");
        assert!(out.contains("route=\"api\",le=\"0.001\"} 0"), "{out}");
        assert!(out.contains("route=\"api\",le=\"0.002\"} 1"), "{out}");
        assert!(out.contains("route=\"api\",le=\"0.05\"} 2"), "{out}");
        assert!(out.contains("_count{route=\"api\"} 2"), "{out}");
    }
}
