//! The Host allowlist: a page on the LAN answers only to the names the box goes by, so that
//! a web site a listener visits cannot read it through DNS rebinding (its name resolving to
//! the box's address) and M3U8 files never carry a stranger's host in their URLs.
//!
//! In: every request's `Host` (and the authority of an absolute-form target). Accepted:
//! IP literals (v4, `[v6]`), `localhost`, the configured name, `NAME.local` (and `NAME-2.local`,
//! the name mDNS falls back to when `NAME` is taken on a link) and the entries
//! of `[server] allowed_hosts`, case-insensitive, with an optional trailing dot and port.
//! Out: the request passed on, or `421 Misdirected Request`. A request with no Host at all
//! (HTTP/1.0), or an empty one, is passed: a browser always sends one, so a rebinding page cannot omit it.

use std::net::{Ipv4Addr, Ipv6Addr};

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;

/// Whether `host` (a Host header value: name or address, optional `:port`) names this box,
/// called `name` on mDNS, or one of `extra` (`[server] allowed_hosts`).
pub fn host_allowed(host: &str, name: &str, extra: &[String]) -> bool {
    let host = host.trim();
    if host.is_empty() {
        // `Host:` with nothing: allowed for a target without authority, and no browser sends it.
        return true;
    }
    let Some(bare) = without_port(host) else {
        return false;
    };
    if let Some(v6) = bare.strip_prefix('[').and_then(|b| b.strip_suffix(']')) {
        // A zone (`fe80::1%25eth0`) names the interface, not another host.
        let addr = v6.split_once('%').map_or(v6, |(a, _)| a);
        return addr.parse::<Ipv6Addr>().is_ok();
    }
    if bare.parse::<Ipv4Addr>().is_ok() {
        return true;
    }
    let bare = normal(bare);
    if bare.is_empty() {
        return false;
    }
    let name = normal(name);
    bare == "localhost"
        || bare == name
        || bare
            .strip_suffix(".local")
            .is_some_and(|label| mdns_label(label, &name))
        || extra.iter().any(|e| normal(e) == bare)
}

/// `label` is `name`, or `name-N`, the name mDNS picks when `name` is taken on a link.
fn mdns_label(label: &str, name: &str) -> bool {
    label == name
        || label
            .strip_prefix(name)
            .and_then(|rest| rest.strip_prefix('-'))
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// `host` without its `:port` (digits only), or `None` when what follows the host is not a
/// port. A bracketed v6 literal keeps its brackets.
fn without_port(host: &str) -> Option<&str> {
    let (bare, port) = if host.starts_with('[') {
        host.split_at(host.find(']')? + 1)
    } else {
        host.split_at(host.find(':').unwrap_or(host.len()))
    };
    let port_ok = match port.strip_prefix(':') {
        Some(digits) => {
            (1..=5).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
        }
        None => port.is_empty(),
    };
    port_ok.then_some(bare)
}

/// Lower case, without the trailing dot of a fully qualified name.
fn normal(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// Middleware: `421` for a request that names a host this box does not go by.
pub async fn check_host(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let named = req
        .uri()
        .authority()
        .map(|a| a.as_str().rsplit('@').next().unwrap_or_default().to_owned())
        .into_iter()
        .chain(
            req.headers()
                .get_all(header::HOST)
                .iter()
                .map(|h| h.to_str().unwrap_or("\u{0}").to_owned()),
        )
        .find(|h| !host_allowed(h, &s.name, &s.allowed_hosts));
    match named {
        None => next.run(req).await,
        Some(host) => {
            tracing::debug!("refused a request for host {host:?}");
            (
                StatusCode::MISDIRECTED_REQUEST,
                "this box answers only to its own names and addresses \
                 (add others to [server] allowed_hosts)\n",
            )
                .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::host_allowed;

    fn ok(host: &str) -> bool {
        host_allowed(
            host,
            "Playlista",
            &["music.home.arpa".into(), "nas.".into()],
        )
    }

    #[test]
    fn own_names_and_addresses_pass() {
        for h in [
            "playlista",
            "PLAYLISTA.local",
            "playlista.local.",
            "playlista.local:8420",
            "playlista-2.local",
            "localhost",
            "localhost:1",
            "127.0.0.1",
            "192.168.1.20:8420",
            "[::1]",
            "[::1]:8420",
            "[fe80::1%25eth0]:8420",
            "music.home.arpa",
            "Music.Home.Arpa.:80",
            "nas",
            "",
        ] {
            assert!(ok(h), "{h} should pass");
        }
    }

    #[test]
    fn other_names_are_refused() {
        for h in [
            "evil.example",
            "playlista.example",
            "playlista.local.evil.example",
            "xplaylista.local",
            "playlista-.local",
            "playlista-2x.local",
            "playlista-2",
            "localhost.evil.example",
            "127.0.0.1.nip.io",
            "1.2.3.4:port",
            "1.2.3.4:",
            "1.2.3.4:123456",
            "::1",
            "[::1",
            "[evil]",
            "[::1]x",
            "a:1:2",
            ".local",
        ] {
            assert!(!ok(h), "{h:?} should be refused");
        }
    }
}
