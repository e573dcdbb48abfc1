//! Hostile input against the server on loopback: 1,000 malformed, abusive and
//! borderline requests over raw TCP (so that invalid HTTP can be sent), then checks that the
//! server is alive, answered nothing with a 5xx, never leaked a file outside the library and
//! still answers; and that a flood of idle connections past `[server] max_connections` neither
//! locks new clients out forever nor stops the server.
//!
//! The server runs in-process ([`support::serve`], the service's own `open` and `serve`) on the
//! shared demo library with no background analysis: the only files this process may open
//! while under attack are the library's songs (and the server's database).

mod support;

use std::collections::{BTreeMap, HashSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::{Client, Conn, demo};

/// How many hostile requests the main test sends.
const REQUESTS: usize = 1000;
/// The server's header read timeout (`src/server/listener.rs`).
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// The tell-tale of /etc/passwd in a body.
const PASSWD: &[u8] = b"root:x:0:0";

/// What a case may answer.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Want {
    /// This status exactly.
    Is(u16),
    /// Some 4xx.
    Client,
    /// A Subsonic error: the API answers errors with HTTP 200 and `status="failed"`.
    SubsonicError,
    /// A 4xx, or the connection closed without an answer (the server gave up on the bytes).
    ClientOrClosed,
    /// 2xx or 4xx or closed: fuzz, where a mutation may leave the request valid.
    Handled,
    /// Nothing is read: the client leaves half-way.
    Abandon,
}

struct Case {
    name: String,
    /// Requests written at once on one connection (pipelining when several).
    raw: Vec<u8>,
    /// One expectation per response on the connection.
    want: Vec<Want>,
    /// Bytes no response body may contain.
    forbid: Vec<Vec<u8>>,
    /// Write one byte at a time (a slow but complete client).
    trickle: bool,
}

fn case(name: &str, raw: impl Into<Vec<u8>>, want: Want) -> Case {
    Case {
        name: name.to_string(),
        raw: raw.into(),
        want: vec![want],
        forbid: Vec::new(),
        trickle: false,
    }
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").into_bytes()
}

fn get_with(path: &str, headers: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n{headers}\r\n").into_bytes()
}

/// The hand-written cases; `track` is a real track id, `list` a real playlist id.
fn cases(track: i64, list: i64) -> Vec<Case> {
    use Want::*;
    let mut v = Vec::new();
    // Bad ids.
    for (path, want) in [
        ("/api/v1/tracks/-1", Is(404)),
        ("/api/v1/tracks/0", Is(404)),
        ("/api/v1/tracks/99999999999999999999", Is(400)),
        ("/api/v1/tracks/-9223372036854775809", Is(400)),
        ("/api/v1/tracks/1.5", Is(400)),
        ("/api/v1/tracks/1e3", Is(400)),
        ("/api/v1/tracks/0x10", Is(400)),
        ("/api/v1/tracks/%20", Is(400)),
        ("/api/v1/tracks/", Is(404)),
        ("/api/v1/tracks/-1/similar", Is(404)),
        ("/api/v1/tracks/abc/similar", Is(400)),
        ("/api/v1/playlists/abc", Is(400)),
        ("/api/v1/playlists/-9223372036854775808", Is(404)),
        ("/api/v1/playlists/9223372036854775808", Is(400)),
        ("/api/v1/playlists/%ff%fe", Is(400)),
        ("/stream/0", Is(404)),
        ("/stream/-1", Is(404)),
        ("/stream/abc", Is(400)),
        ("/stream/99999999999999999999", Is(400)),
        ("/playlists/abc.m3u8", Is(404)),
        ("/playlists/1.m3u", Is(404)),
        ("/playlists/.m3u8", Is(404)),
        ("/playlists/99999999999999999999.m3u8", Is(404)),
        ("/playlists/-5.m3u8", Is(404)),
        ("/api/v1/path?from=1", Is(400)),
        ("/api/v1/path?from=a&to=b", Is(400)),
        ("/api/v1/path", Is(400)),
    ] {
        v.push(case(path, get(path), want));
    }
    let similar = format!("/api/v1/tracks/{track}/similar");
    for (query, want) in [
        ("count=-1", Is(400)),
        ("count=abc", Is(400)),
        ("count=99999999999999999999999", Is(400)),
        ("count=5&count=6", Is(400)),
        // Valid: the count is clamped to 1..500.
        ("count=0", Is(200)),
        ("count=1000000", Is(200)),
    ] {
        let path = format!("{similar}?{query}");
        v.push(case(&path, get(&path), want));
    }
    for (path, want) in [
        (format!("/api/v1/path?from={track}&to={track}"), Is(400)),
        (format!("/api/v1/path?from={track}&to=99999999"), Is(404)),
        (
            format!("/api/v1/path?from={track}&to={track}&length=x"),
            Is(400),
        ),
    ] {
        v.push(case(&path, get(&path), want));
    }
    // Traversal, plain and encoded: never a file, never a 2xx.
    for path in [
        "/stream/..%2f..%2fetc%2fpasswd",
        "/stream/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/stream/../../etc/passwd",
        "/stream/1/../../../../etc/passwd",
        "/static/../../etc/passwd",
        "/playlists/../../x.m3u8",
        "/playlists/..%2f..%2fetc%2fpasswd.m3u8",
        "/playlists/%2e%2e%2f%2e%2e%2fx.m3u8",
        "/api/v1/../../../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "//etc/passwd",
        "/..%5c..%5cetc%5cpasswd",
        "/rest/stream.view?id=../../../../etc/passwd&u=a&p=b",
        "/rest/download?id=%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/api/v1/tracks/..%2f..%2fetc%2fpasswd",
        "/metrics/../../etc/passwd",
    ] {
        let want = if path.starts_with("/rest/") {
            SubsonicError
        } else {
            Client
        };
        let mut c = case(path, get(path), want);
        c.forbid.push(PASSWD.to_vec());
        v.push(c);
    }
    for (name, raw) in [
        (
            "absolute-form traversal",
            b"GET http://evil/../../etc/passwd HTTP/1.1\r\nHost: evil\r\n\r\n".to_vec(),
        ),
        (
            "file: URI",
            b"GET file:///etc/passwd HTTP/1.1\r\nHost: localhost\r\n\r\n".to_vec(),
        ),
        (
            "backslashes",
            b"GET /..\\..\\etc\\passwd HTTP/1.1\r\nHost: localhost\r\n\r\n".to_vec(),
        ),
    ] {
        let mut c = case(name, raw, ClientOrClosed);
        c.forbid.push(PASSWD.to_vec());
        v.push(c);
    }
    // Huge and numerous headers. 64 KB fits hyper's 400 KB head buffer: a valid request.
    let big = |n: usize| "a".repeat(n);
    v.push(case(
        "64 KB header (valid)",
        get_with("/api/v1/status", &format!("X-Big: {}\r\n", big(64 << 10))),
        Is(200),
    ));
    v.push(case(
        "1 MB header",
        get_with("/api/v1/status", &format!("X-Big: {}\r\n", big(1 << 20))),
        ClientOrClosed,
    ));
    v.push(case(
        "1 MB header name",
        get_with("/api/v1/status", &format!("{}: 1\r\n", big(1 << 20))),
        ClientOrClosed,
    ));
    let many = |n: usize| {
        (0..n)
            .map(|i| format!("X-{i}: {i}\r\n"))
            .collect::<String>()
    };
    v.push(case(
        "5000 headers",
        get_with("/api/v1/status", &many(5000)),
        ClientOrClosed,
    ));
    v.push(case(
        "101 headers",
        get_with("/api/v1/status", &many(101)),
        Is(431),
    ));
    v.push(case(
        "90 headers (valid)",
        get_with("/api/v1/status", &many(90)),
        Is(200),
    ));
    // Range, broken and hostile, on a real file.
    let stream = format!("/stream/{track}");
    let multi: Vec<String> = (0..1000)
        .map(|i| format!("{}-{}", 2 * i, 2 * i + 1))
        .collect();
    for (range, want) in [
        ("bytes=abc".to_string(), Is(416)),
        ("bytes=5-1".into(), Is(416)),
        ("bytes=999999999999-".into(), Is(416)),
        ("bytes=-0".into(), Is(416)),
        ("bytes=-".into(), Is(416)),
        ("bytes=--1".into(), Is(416)),
        ("bytes=1-2-3".into(), Is(416)),
        ("bytes=-99999999999999999999999".into(), Is(416)),
        (
            "bytes=18446744073709551615-18446744073709551615".into(),
            Is(416),
        ),
        ("items=0-1".into(), Is(416)),
        ("bytes=0-1,2-3".into(), Is(416)),
        (format!("bytes={}", multi.join(",")), Is(416)),
        (format!("bytes=0-{}", "9".repeat(5000)), Is(416)),
        // Valid ranges: the start of the file, the last byte.
        ("bytes=0-0".into(), Is(206)),
        ("bytes=-1".into(), Is(206)),
        ("bytes=0-99999999999".into(), Is(206)),
    ] {
        let name = format!("Range {}", &range[..range.len().min(40)]);
        v.push(case(
            &name,
            get_with(&stream, &format!("Range: {range}\r\n")),
            want,
        ));
    }
    v.push(case(
        "Range on an unknown track",
        get_with("/stream/987654321", "Range: bytes=0-1\r\n"),
        Is(404),
    ));
    v.push(case(
        "Range with a NUL",
        get_with(&stream, "Range: bytes=0-1\0\r\n"),
        Is(400),
    ));
    // Huge query strings: the URI limit (64 KB) answers 414; beyond the head buffer, 431.
    v.push(case(
        "100 KB query",
        get(&format!("/api/v1/status?{}", "a=b&".repeat(25_000))),
        Is(414),
    ));
    v.push(case(
        "800 KB query",
        get(&format!("/api/v1/status?{}", "a=b&".repeat(200_000))),
        ClientOrClosed,
    ));
    v.push(case(
        "32 KB query (valid, ignored)",
        get(&format!("/api/v1/status?{}", "a=b&".repeat(8_000))),
        Is(200),
    ));
    v.push(case(
        "32 KB count",
        get(&format!("{similar}?count={}", "9".repeat(32_000))),
        Is(400),
    ));
    // Invalid UTF-8 and NUL bytes.
    for (name, raw) in [
        (
            "raw 0xff in path",
            b"GET /api/v1/tracks/\xff\xfe HTTP/1.1\r\nHost: localhost\r\n\r\n".to_vec(),
        ),
        (
            "raw overlong UTF-8",
            b"GET /stream/\xc0\xaf HTTP/1.1\r\nHost: localhost\r\n\r\n".to_vec(),
        ),
        (
            "raw 0xff in m3u8",
            b"GET /playlists/\xff.m3u8 HTTP/1.1\r\nHost: localhost\r\n\r\n".to_vec(),
        ),
        (
            "NUL in path",
            b"GET /api/v1/st\0atus HTTP/1.1\r\nHost: localhost\r\n\r\n".to_vec(),
        ),
        (
            "NUL after path",
            b"GET /api/v1/status\0 HTTP/1.1\r\nHost: localhost\r\n\r\n".to_vec(),
        ),
        (
            "NUL in header",
            b"GET /api/v1/status HTTP/1.1\r\nHost: localhost\r\nX-A: a\0b\r\n\r\n".to_vec(),
        ),
        (
            "NUL in header name",
            b"GET /api/v1/status HTTP/1.1\r\nHost: localhost\r\nX\0A: b\r\n\r\n".to_vec(),
        ),
        ("NULs only", b"\0\0\0\0\0\0\0\0\r\n\r\n".to_vec()),
        ("0xff only", vec![0xff; 4096]),
        (
            "header without colon",
            b"GET /api/v1/status HTTP/1.1\r\nHost x\r\n\r\n".to_vec(),
        ),
        (
            "obs-fold header",
            b"GET /api/v1/status HTTP/1.1\r\nHost: localhost\r\nX-A: a\r\n  b\r\n\r\n".to_vec(),
        ),
        (
            "space before colon",
            b"GET /api/v1/status HTTP/1.1\r\nHost : x\r\n\r\n".to_vec(),
        ),
    ] {
        v.push(case(name, raw, ClientOrClosed));
    }
    v.push(case(
        "percent-encoded invalid UTF-8",
        get("/playlists/%ff%fe.m3u8"),
        Client,
    ));
    // Bad methods and versions.
    for (name, raw, want) in [
        (
            "unknown method",
            b"FOO /api/v1/status HTTP/1.1\r\nHost: localhost\r\n\r\n".to_vec(),
            Is(405),
        ),
        (
            "lower-case get",
            b"get /api/v1/status HTTP/1.1\r\nHost: localhost\r\n\r\n".to_vec(),
            Is(405),
        ),
        (
            "DELETE a playlist",
            b"DELETE /api/v1/playlists/1 HTTP/1.1\r\nHost: localhost\r\n\r\n".to_vec(),
            Is(405),
        ),
        (
            "PUT a stream",
            b"PUT /stream/1 HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\n\r\nabc".to_vec(),
            Is(405),
        ),
        (
            "POST the list",
            b"POST /api/v1/playlists HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\n\r\n{}"
                .to_vec(),
            Is(405),
        ),
        (
            "TRACE",
            b"TRACE /api/v1/status HTTP/1.1\r\nHost: localhost\r\n\r\n".to_vec(),
            Is(405),
        ),
        (
            "CONNECT",
            b"CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n".to_vec(),
            Client,
        ),
        (
            "OPTIONS *",
            b"OPTIONS * HTTP/1.1\r\nHost: localhost\r\n\r\n".to_vec(),
            Client,
        ),
        (
            "space in method",
            b"GE T /api/v1/status HTTP/1.1\r\nHost: localhost\r\n\r\n".to_vec(),
            ClientOrClosed,
        ),
        (
            "control in method",
            b"G\x01T /api/v1/status HTTP/1.1\r\nHost: localhost\r\n\r\n".to_vec(),
            ClientOrClosed,
        ),
        (
            "10 KB method",
            [b"A".repeat(10_000), b" / HTTP/1.1\r\n\r\n".to_vec()].concat(),
            ClientOrClosed,
        ),
        (
            "HTTP/2.0 line",
            b"GET /api/v1/status HTTP/2.0\r\n\r\n".to_vec(),
            ClientOrClosed,
        ),
        (
            "HTTP/1.2",
            b"GET /api/v1/status HTTP/1.2\r\n\r\n".to_vec(),
            ClientOrClosed,
        ),
        (
            "HTTP/0.9",
            b"GET /api/v1/status\r\n\r\n".to_vec(),
            ClientOrClosed,
        ),
        (
            "h2 preface",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec(),
            ClientOrClosed,
        ),
        (
            "no version",
            b"GET /api/v1/status HTTPS/1.1\r\n\r\n".to_vec(),
            ClientOrClosed,
        ),
        (
            "TLS hello",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n".to_vec(),
            ClientOrClosed,
        ),
        ("empty lines", b"\r\n\r\n\r\n\r\n".to_vec(), ClientOrClosed),
    ] {
        v.push(case(name, raw, want));
    }
    // Bodies and their lengths.
    for (name, raw, want) in [
        // A GET may carry a body; the handler does not read it. Valid.
        ("GET with a 100 GB Content-Length", get_with("/api/v1/status", "Content-Length: 99999999999\r\n"), Is(200)),
        ("POST with a 100 GB Content-Length", b"POST /api/v1/status HTTP/1.1\r\nHost: localhost\r\nContent-Length: 99999999999\r\n\r\nabc".to_vec(), Is(405)),
        ("POST a Subsonic call with a 100 GB body", b"POST /rest/ping.view HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 99999999999\r\n\r\nu=a".to_vec(), Handled),
        ("Content-Length overflow", get_with("/api/v1/status", "Content-Length: 99999999999999999999999\r\n"), Is(400)),
        ("negative Content-Length", get_with("/api/v1/status", "Content-Length: -1\r\n"), Is(400)),
        ("two Content-Lengths", get_with("/api/v1/status", "Content-Length: 5\r\nContent-Length: 6\r\n"), Is(400)),
        ("Content-Length and chunked", get_with("/api/v1/status", "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n"), Handled),
        ("Transfer-Encoding gzip", get_with("/api/v1/status", "Transfer-Encoding: gzip\r\n"), Is(400)),
        ("bad chunk size", [get_with("/api/v1/status", "Transfer-Encoding: chunked\r\n"), b"zz\r\nabc\r\n0\r\n\r\n".to_vec()].concat(), Handled),
        ("Expect 100-continue", get_with("/api/v1/status", "Expect: 100-continue\r\nContent-Length: 10\r\n"), Is(200)),
    ] {
        v.push(case(name, raw, want));
    }
    // HTTP/1.0 and pipelining (valid).
    v.push(case(
        "HTTP/1.0 without Host",
        b"GET /api/v1/status HTTP/1.0\r\n\r\n".to_vec(),
        Is(200),
    ));
    // RFC 9112 lets a server accept bare LF line ends; hyper does.
    v.push(case(
        "bare LF line ends",
        b"GET /api/v1/status HTTP/1.1\nHost: localhost\n\n".to_vec(),
        Is(200),
    ));
    v.push(case(
        "HTTP/1.0 keep-alive",
        b"GET /api/v1/playlists HTTP/1.0\r\nConnection: keep-alive\r\n\r\n".to_vec(),
        Is(200),
    ));
    v.push(case(
        "HEAD a stream",
        format!("HEAD {stream} HTTP/1.1\r\nHost: localhost\r\n\r\n"),
        Is(200),
    ));
    v.push(Case {
        name: "3 pipelined".into(),
        raw: [
            get("/api/v1/status"),
            get(&format!("/api/v1/playlists/{list}")),
            get("/api/v1/tracks/-1"),
        ]
        .concat(),
        want: vec![Is(200), Is(200), Is(404)],
        forbid: Vec::new(),
        trickle: false,
    });
    v.push(Case {
        name: "50 pipelined, then garbage".into(),
        raw: [
            get("/api/v1/status").repeat(50),
            b"\0garbage\r\n\r\n".to_vec(),
        ]
        .concat(),
        want: [vec![Is(200); 50], vec![ClientOrClosed]].concat(),
        forbid: Vec::new(),
        trickle: false,
    });
    v.push(Case {
        name: "one byte at a time (valid, slow)".into(),
        raw: get(&format!("/playlists/{list}.m3u8")),
        want: vec![Is(200)],
        forbid: Vec::new(),
        trickle: true,
    });
    // Bogus Host headers: never verbatim in the M3U8's URLs.
    let m3u8 = format!("/playlists/{list}.m3u8");
    for host in [
        "evil.example/\"><script>alert(1)</script>",
        "a b c",
        "127.0.0.1:80@evil.example",
        "evil.example/x?y=",
        "%0d%0aX-Injected:1",
        "evil.example#frag",
        "évil.example",
        "evil\x7f.example",
        "'; DROP TABLE tracks; --",
        &"h".repeat(300),
        "evil.example\\..\\",
    ] {
        let raw = [
            format!("GET {m3u8} HTTP/1.1\r\nHost: ").into_bytes(),
            host.as_bytes().to_vec(),
            b"\r\n\r\n".to_vec(),
        ]
        .concat();
        let mut c = case(
            &format!("Host {}", &host[..host.len().min(30)]),
            raw,
            Handled,
        );
        c.forbid.push(host.as_bytes().to_vec());
        v.push(c);
    }
    // DNS rebinding: a name the box does not go by is refused on every route; its own names,
    // addresses and `[server] allowed_hosts` pass.
    let stream = format!("/stream/{track}");
    for path in [
        "/",
        "/api/v1/status",
        &stream,
        "/rest/ping",
        &m3u8,
        "/metrics",
    ] {
        for host in [
            "evil.example",
            "playlista.evil.example",
            "127.0.0.1.nip.io",
            "nas",
        ] {
            let raw = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n");
            v.push(case(&format!("{path} for Host {host}"), raw, Is(421)));
        }
        let raw = format!("GET http://evil.example{path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
        v.push(case(
            &format!("{path} absolute-form to another host"),
            raw,
            Is(421),
        ));
    }
    for host in [
        "127.0.0.1:8420",
        "[::1]:8420",
        "localhost",
        "PLAYLISTA.local.",
        "playlista:8420",
        "music.home.arpa",
    ] {
        let raw = format!("GET /api/v1/status HTTP/1.1\r\nHost: {host}\r\n\r\n");
        v.push(case(&format!("status for Host {host}"), raw, Is(200)));
    }
    v.push(case(
        "two Host headers",
        format!("GET {m3u8} HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
        Handled,
    ));
    v.push(case(
        "empty Host",
        format!("GET {m3u8} HTTP/1.1\r\nHost:\r\n\r\n"),
        Is(200),
    ));
    // Slow and partial requests: the client leaves half-way.
    for raw in [
        b"".as_slice(),
        b"G",
        b"GET /api/v1/st",
        b"GET /api/v1/status HTTP/1.1\r\nHost: localhost\r\n",
        b"POST /rest/ping.view HTTP/1.1\r\nContent-Length: 100\r\n\r\nu=",
        b"GET /stream/1 HTTP/1.1\r\nRange: bytes=0-",
    ] {
        v.push(case(
            &format!("abandon {:?}", String::from_utf8_lossy(raw)),
            raw.to_vec(),
            Abandon,
        ));
    }
    v
}

/// A tiny deterministic PRNG for the fuzz cases.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Valid requests mangled at random (bytes flipped, inserted, dropped, repeated).
fn fuzz(n: usize, track: i64, list: i64) -> Vec<Case> {
    let seeds = [
        get("/api/v1/status"),
        get(&format!("/api/v1/tracks/{track}")),
        get(&format!("/api/v1/tracks/{track}/similar?count=5")),
        get(&format!("/api/v1/playlists/{list}")),
        get(&format!("/playlists/{list}.m3u8")),
        get_with(&format!("/stream/{track}"), "Range: bytes=10-20\r\n"),
        get(&format!("/api/v1/path?from={track}&to={track}")),
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    (0..n)
        .map(|i| {
            let mut raw = seeds[i % seeds.len()].clone();
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(raw.len());
                match rng.below(4) {
                    0 => raw[at] = rng.next() as u8,
                    1 => {
                        let bytes: Vec<u8> =
                            (0..1 + rng.below(16)).map(|_| rng.next() as u8).collect();
                        raw.splice(at..at, bytes);
                    }
                    2 => {
                        let end = (at + 1 + rng.below(8)).min(raw.len());
                        raw.drain(at..end);
                    }
                    _ => {
                        let end = (at + 1 + rng.below(8)).min(raw.len());
                        let span = raw[at..end].repeat(1 + rng.below(64));
                        raw.splice(at..at, span);
                    }
                }
            }
            // A complete head, so that the server answers instead of waiting for more.
            raw.extend_from_slice(b"\r\n\r\n");
            let mut c = case(&format!("fuzz {i}"), raw, Want::Handled);
            c.forbid.push(PASSWD.to_vec());
            c
        })
        .collect()
}

/// Runs one case; a description of what went wrong, if anything.
fn run(addr: SocketAddr, c: &Case) -> Result<Vec<Option<u16>>, String> {
    let mut conn = Conn::open(addr);
    if c.trickle {
        for b in &c.raw {
            conn.stream
                .write_all(std::slice::from_ref(b))
                .map_err(|e| format!("{}: write: {e}", c.name))?;
            std::thread::sleep(Duration::from_millis(2));
        }
    } else {
        let _ = conn.stream.write_all(&c.raw);
    }
    if c.want == [Want::Abandon] {
        return Ok(vec![None]);
    }
    let head_only = c.raw.starts_with(b"HEAD ");
    let mut seen = Vec::new();
    for want in &c.want {
        let reply = conn.response(head_only);
        let status = reply.as_ref().map(|r| r.status);
        seen.push(status);
        let ok = match (want, status) {
            (_, Some(s)) if s >= 500 => false,
            (Want::Is(w), Some(s)) => *w == s,
            (Want::Client, Some(s)) | (Want::ClientOrClosed, Some(s)) => (400..500).contains(&s),
            (Want::SubsonicError, Some(200)) => reply
                .as_ref()
                .is_some_and(|r| contains(&r.body, b"status=\"failed\"")),
            (Want::ClientOrClosed, None) | (Want::Handled, None) => true,
            (Want::Handled, Some(s)) => (200..300).contains(&s) || (400..500).contains(&s),
            _ => false,
        };
        if !ok {
            return Err(format!("{}: wanted {want:?}, got {status:?}", c.name));
        }
        if let Some(r) = &reply {
            if let Some(bad) = c.forbid.iter().find(|f| contains(&r.body, f)) {
                return Err(format!(
                    "{}: the body holds {:?}",
                    c.name,
                    String::from_utf8_lossy(bad)
                ));
            }
        }
        if status.is_none() {
            break;
        }
    }
    Ok(seen)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// Every file descriptor of `pid` that names a path, with its target.
fn open_paths(pid: u32) -> Vec<(String, PathBuf)> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let e = e.ok()?;
        let target = std::fs::read_link(e.path()).ok()?;
        target
            .is_absolute()
            .then(|| (e.file_name().to_string_lossy().into_owned(), target))
    })
    .collect()
}

fn json(client: &Client, path: &str) -> serde_json::Value {
    let reply = client
        .exchange(&get(path))
        .unwrap_or_else(|| panic!("no answer to {path}"));
    assert_eq!(reply.status, 200, "{path}");
    reply.json()
}

#[test]
fn a_thousand_hostile_requests_get_4xx_and_leave_the_server_serving() {
    let server = support::serve(
        &demo().config("[server]\nrescan_minutes = 0\nallowed_hosts = [\"music.home.arpa\"]\n"),
    );
    let addr = server.addr;
    let lists = json(&server, "/api/v1/playlists");
    let list = lists[0]["id"].as_i64().unwrap();
    let tracks = json(&server, &format!("/api/v1/playlists/{list}"));
    let track = tracks["tracks"][0]["id"].as_i64().unwrap();

    let mut all = cases(track, list);
    let fixed = all.len();
    assert!(fixed < REQUESTS / 2, "{fixed} hand-written cases");
    all.extend(fuzz(REQUESTS - fixed, track, list));
    let requests: usize = all.iter().map(|c| c.want.len()).sum();
    assert!(requests >= REQUESTS);

    // Any file the server opens while under attack must be the library's or its own state.
    // (The server is in this process: the sampler's own look at /proc is not the server's.)
    let library = demo().library();
    let state = demo().state();
    let baseline: HashSet<(String, PathBuf)> = open_paths(std::process::id()).into_iter().collect();
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (done, pid) = (done.clone(), std::process::id());
        std::thread::spawn(move || {
            let (mut outside, mut samples, mut songs) = (BTreeMap::new(), 0usize, 0usize);
            while !done.load(Ordering::Relaxed) {
                for (fd, path) in open_paths(pid) {
                    if path.starts_with(&library) {
                        songs += 1;
                    } else if !(path.starts_with(&state)
                        || path.starts_with("/dev")
                        || path.starts_with(format!("/proc/{pid}/fd"))
                        || baseline.contains(&(fd.clone(), path.clone())))
                    {
                        outside.insert(path, fd);
                    }
                }
                samples += 1;
                std::thread::sleep(Duration::from_millis(1));
            }
            (outside, samples, songs)
        })
    };

    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    let statuses = Mutex::new(BTreeMap::<String, usize>::new());
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(c) = all.get(i) else { break };
                    match run(addr, c) {
                        Ok(seen) => {
                            let mut st = statuses.lock().unwrap();
                            for s in seen {
                                let key = s.map_or("no answer".into(), |s| s.to_string());
                                *st.entry(key).or_default() += 1;
                            }
                        }
                        Err(e) => failures.lock().unwrap().push(e),
                    }
                }
            });
        }
    });
    done.store(true, Ordering::Relaxed);
    let (outside, samples, songs) = sampler.join().unwrap();

    let failures = failures.into_inner().unwrap();
    let statuses = statuses.into_inner().unwrap();
    println!("{requests} requests ({fixed} hand-written cases); answers: {statuses:?}");
    println!("fd samples: {samples}, song files seen open: {songs}");
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        !statuses.keys().any(|k| k.starts_with('5')),
        "5xx answers: {statuses:?}"
    );
    assert!(
        outside.is_empty(),
        "files opened outside the library: {outside:?}"
    );
    assert!(samples > 10, "the fd sampler hardly ran");
    server.assert_healthy();
    // The accounting saw the attack too, and the server still serves real content.
    let metrics = server.exchange(&get("/metrics")).unwrap();
    assert_eq!(metrics.status, 200);
    let reply = server
        .exchange(&get(&format!("/playlists/{list}.m3u8")))
        .unwrap();
    assert_eq!(reply.status, 200);
    assert!(reply.body.starts_with(b"#EXTM3U"));
}

/// Reads until EOF or a reset: true when the server closed the connection within `limit`.
fn closed_by_server(s: &mut TcpStream, limit: Duration) -> bool {
    s.set_read_timeout(Some(limit)).unwrap();
    let mut chunk = [0u8; 64 << 10];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) => return e.kind() == std::io::ErrorKind::ConnectionReset,
        }
    }
}

#[test]
fn idle_connections_past_the_cap_neither_lock_clients_out_nor_stop_the_server() {
    let server =
        support::serve(&demo().config("[server]\nrescan_minutes = 0\nmax_connections = 8\n"));
    let addr = server.addr;
    let status = b"GET /api/v1/status HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let from = |ip: &str| Some(ip.parse::<std::net::IpAddr>().unwrap());

    // One device opens 20 idle connections: it may hold 8 (max_connections); the others are
    // turned away at once instead of waiting in the backlog.
    let mut idle: Vec<Conn> = (0..20).map(|_| Conn::open(addr)).collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut refused = 0;
    for c in idle.iter_mut() {
        c.stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        refused += usize::from(c.response(false).is_some_and(|r| r.status == 503));
    }
    assert_eq!(refused, 12, "one address holds max_connections, no more");
    // Another device still gets in, through the slots kept beyond the cap.
    let mut other = Conn::open_from(addr, from("127.0.0.2"));
    other.stream.write_all(status).unwrap();
    assert_eq!(other.response(false).map(|r| r.status), Some(200));
    drop(other);

    // Every slot held (8 by the first device, the kept ones by two more): a third waits in
    // the kernel's backlog until one leaves.
    let more: Vec<Conn> = (0..2)
        .map(|_| Conn::open_from(addr, from("127.0.0.3")))
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut waiting = Conn::open_from(addr, from("127.0.0.4"));
    waiting
        .stream
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    waiting.stream.write_all(status).unwrap();
    assert!(
        waiting.response(false).is_none(),
        "answered while every slot was held: the cap does not hold"
    );
    drop(more);
    waiting
        .stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let reply = waiting
        .response(false)
        .expect("no answer after two idle ones closed");
    assert_eq!(reply.status, 200);
    drop(waiting);

    // Idle connections that never leave are dropped by the server after the header timeout:
    // the first device is served again within about that long.
    let started = Instant::now();
    let served = support::eventually(HEADER_TIMEOUT * 3, "the idle connections closed", || {
        let mut late = Conn::open(addr);
        late.stream.write_all(status).ok()?;
        let reply = late.response(false)?;
        if reply.status == 503 {
            std::thread::sleep(Duration::from_millis(250));
            return None;
        }
        Some(reply.status)
    });
    assert_eq!(served, 200);
    let waited = started.elapsed();
    assert!(
        waited > HEADER_TIMEOUT / 2 && waited < HEADER_TIMEOUT + Duration::from_secs(5),
        "served after {waited:?}: the slots were not all held, or held too long"
    );
    // The server closed them (EOF or a reset), not the client.
    for c in idle.iter_mut() {
        assert!(
            closed_by_server(&mut c.stream, Duration::from_secs(5)),
            "an idle connection is still open"
        );
    }
    server.assert_healthy();
}

/// A connection from `from` that asks for `path` and then reads nothing, with a small
/// receive window so that the server's writes stall at once.
fn stalled_reader(addr: SocketAddr, from: &str, path: &str) -> TcpStream {
    use socket2::{Domain, SockAddr, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let ip: std::net::IpAddr = from.parse().unwrap();
    socket
        .bind(&SockAddr::from(SocketAddr::new(ip, 0)))
        .unwrap();
    socket.connect(&SockAddr::from(addr)).unwrap();
    let mut stream: TcpStream = socket.into();
    let head = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream
}

#[test]
fn stalled_stream_readers_leave_the_page_and_api_room_and_are_closed() {
    let server =
        support::serve(&demo().config("[server]\nrescan_minutes = 0\nmax_connections = 8\n"));
    let addr = server.addr;
    // The biggest song, so that its stream outlasts every socket buffer.
    let state = demo().state();
    let db = rusqlite::Connection::open(state.join("playlista.db")).unwrap();
    let (track, size): (i64, i64) = db
        .query_row(
            "SELECT id, size FROM tracks WHERE status = 'analyzed' ORDER BY size DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert!(size > 1 << 20, "the demo's biggest song has {size} bytes");
    let path = format!("/stream/{track}");

    // max_connections readers from four devices, then as many again from one of them.
    let ips = ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"];
    let mut stalled: Vec<TcpStream> = (0..8)
        .map(|i| stalled_reader(addr, ips[i % 4], &path))
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let mut turned_away: Vec<TcpStream> = (0..4)
        .map(|_| stalled_reader(addr, "127.0.0.2", &path))
        .collect();
    for s in turned_away.iter_mut() {
        assert!(
            closed_by_server(s, Duration::from_secs(3)),
            "a stream past the slots was not refused at once"
        );
    }

    // The page and the API answer at once, to a new device and to the stalled ones.
    for ip in ["127.0.0.9", "127.0.0.2"] {
        let started = Instant::now();
        let r = server.from(ip).get("/api/v1/status");
        assert_eq!(r.status, 200);
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "status took {:?} from {ip} with every stream slot stalled",
            started.elapsed()
        );
        assert_eq!(server.from(ip).get("/").status, 200);
    }

    // A reader that never reads is closed once writes made no progress for the stall
    // timeout (30 s): reading afterwards gives what was in flight, then the end, well short
    // of the file. (Reading before would let the server go on.) Its slot is free again.
    std::thread::sleep(Duration::from_secs(34));
    for s in stalled.iter_mut() {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let (mut got, mut chunk) = (0usize, [0u8; 64 << 10]);
        let ended = loop {
            match s.read(&mut chunk) {
                Ok(0) => break true,
                Ok(n) => got += n,
                Err(e) => break e.kind() == std::io::ErrorKind::ConnectionReset,
            }
        };
        assert!(
            ended && (got as i64) < size,
            "a stalled reader was not closed ({got} of {size} bytes, ended: {ended})"
        );
    }
    let r = server
        .from("127.0.0.2")
        .get_with(&path, &[("Range", "bytes=0-99")]);
    assert_eq!(r.status, 206, "a stream slot was not given back");
    server.assert_healthy();
}

#[test]
fn private_mode_needs_an_account_everywhere_and_signs_its_stream_urls() {
    let config = demo().config(
        "[server]\nrescan_minutes = 0\nprivate = true\n\
         [subsonic]\nuser = \"ann\"\npassword = \"s3cret\"\n",
    );
    let server = support::serve(&config);
    let basic = ("Authorization", "Basic YW5uOnMzY3JldA=="); // ann:s3cret
    let lists = server.get_with("/api/v1/playlists", &[basic]);
    assert_eq!(lists.status, 200);
    let list = lists.json()[0]["id"].as_i64().unwrap();
    let track = server
        .get_with(&format!("/api/v1/playlists/{list}"), &[basic])
        .json()["tracks"][0]["id"]
        .as_i64()
        .unwrap();

    // Without credentials (or with wrong ones) nothing is served; a browser is sent to the
    // login page.
    let routes = [
        "/".to_string(),
        "/static/app.js".into(),
        "/api/v1/status".into(),
        "/api/v1/playlists".into(),
        format!("/api/v1/playlists/{list}"),
        format!("/api/v1/tracks/{track}"),
        format!("/api/v1/tracks/{track}/similar"),
        format!("/playlists/{list}.m3u8"),
        format!("/stream/{track}"),
        "/metrics".into(),
        "/rest/ping.view".into(),
        "/rest/getOpenSubsonicExtensions".into(),
    ];
    let wrong = ("Authorization", "Basic YW5uOndyb25n"); // ann:wrong
    for route in &routes {
        for headers in [
            &[][..],
            &[wrong][..],
            &[("Cookie", "playlista_session=x.1.00")][..],
        ] {
            let r = server.get_with(route, headers);
            assert!(
                r.status == 401 || r.status == 403,
                "{route} {headers:?}: {}",
                r.status
            );
            assert!(!r.text().contains("\"tracks\""), "{route} leaked tracks");
        }
    }
    let page = server.get_with("/", &[("Accept", "text/html")]);
    assert_eq!(page.status, 303);
    assert_eq!(page.header("location"), Some("/login?next=%2F"));

    // The login page signs in with a form and a cookie; a wrong password gets the form again.
    let form = server.get("/login?next=/api/v1/status");
    assert_eq!(form.status, 200);
    assert!(form.text().contains("name=\"password\""));
    let post = |body: &str| {
        server.request(
            "POST",
            "/login",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            body.as_bytes(),
        )
    };
    assert_eq!(post("user=ann&password=nope&next=/").status, 401);
    let signed_in = post("user=ann&password=s3cret&next=/api/v1/status");
    assert_eq!(signed_in.status, 303);
    assert_eq!(signed_in.header("location"), Some("/api/v1/status"));
    let cookie = signed_in.header("set-cookie").unwrap().to_string();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    let session = cookie.split(';').next().unwrap().to_string();
    for route in &routes[..10] {
        let r = server.get_with(route, &[("Cookie", &session)]);
        assert!(r.status == 200, "{route} with a session: {}", r.status);
    }
    // Away from this box after signing in: never.
    let away = post("user=ann&password=s3cret&next=//evil.example/");
    assert_eq!(away.header("location"), Some("/"));

    // API clients: HTTP Basic, or the token POST /login answers in JSON.
    assert_eq!(server.get_with("/api/v1/status", &[basic]).status, 200);
    let token = server.request(
        "POST",
        "/login",
        &[
            ("Content-Type", "application/json"),
            ("Accept", "application/json"),
        ],
        br#"{"user": "ann", "password": "s3cret"}"#,
    );
    assert_eq!(token.status, 200);
    let bearer = format!("Bearer {}", token.json()["token"].as_str().unwrap());
    assert_eq!(
        server
            .get_with("/api/v1/status", &[("Authorization", &bearer)])
            .status,
        200
    );
    // Subsonic checks its own credentials, as apps send them.
    let ping = server.get("/rest/ping.view?u=ann&p=s3cret&v=1.16.1&c=t&f=json");
    assert_eq!(ping.status, 200);
    assert_eq!(ping.json()["subsonic-response"]["status"], "ok");

    // The M3U8 carries signed stream URLs that play with no credentials, with Range.
    let m3u = server.get_with(&format!("/playlists/{list}.m3u8"), &[basic]);
    assert_eq!(m3u.status, 200);
    let urls: Vec<String> = m3u
        .text()
        .lines()
        .filter(|l| l.starts_with("http://"))
        .map(str::to_string)
        .collect();
    assert!(!urls.is_empty());
    let file = std::fs::read(support::track_path(&demo().state(), track)).unwrap();
    for url in &urls {
        let target = &url[url.find("/stream/").unwrap()..];
        assert!(
            target.contains("?exp=") && target.contains("&sig="),
            "{url}"
        );
        let r = server.get_with(target, &[("Range", "bytes=0-99")]);
        assert_eq!(r.status, 206, "{target}");
    }
    let own = urls
        .iter()
        .map(|u| &u[u.find("/stream/").unwrap()..])
        .find(|t| t.starts_with(&format!("/stream/{track}?")))
        .expect("the list's first track in its M3U8");
    let whole = server.get(own);
    assert_eq!(whole.status, 200);
    assert_eq!(whole.body, file, "the signed URL played another file");
    // Tampered (another track, another expiry, a changed signature) or expired: 403.
    let other = own.replacen(
        &format!("/stream/{track}?"),
        &format!("/stream/{}?", track + 1),
        1,
    );
    let later = own.replace("exp=", "exp=9");
    let flipped = match own.strip_suffix('0') {
        Some(rest) => format!("{rest}1"),
        None => format!("{}0", &own[..own.len() - 1]),
    };
    let keys = playlista::server::private::Keys::load(&demo().state()).unwrap();
    let expired = format!(
        "/stream/{track}?{}",
        keys.signed_query_until(&format!("/stream/{track}"), 1_000_000)
    );
    for bad in [other, later, flipped, expired] {
        assert_eq!(server.get(&bad).status, 403, "{bad}");
    }
    assert_eq!(server.get_with("/api/v1/status", &[basic]).status, 200);
}
