//! What the `serve` tests share: a demo library with its database, the real server process on
//! loopback, and a small HTTP/1.1 client over a raw socket (so that tests see exactly what
//! went over the wire).
#![allow(dead_code)] // each test file uses a different part

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_playlista");

/// A demo library (24 generated songs, analysed, playlists made) in a temporary folder.
pub struct Demo {
    pub dir: tempfile::TempDir,
}

impl Demo {
    pub fn build() -> Demo {
        let dir = tempfile::tempdir().expect("temp dir");
        let out = Command::new(BIN)
            .args(["demo", "--dir"])
            .arg(dir.path())
            .output()
            .expect("run playlista demo");
        assert!(
            out.status.success(),
            "demo failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Demo { dir }
    }

    pub fn library(&self) -> PathBuf {
        self.dir.path().join("library")
    }

    pub fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub fn playlists(&self) -> PathBuf {
        self.dir.path().join("playlists")
    }

    /// `serve` arguments for this library (no mDNS, an ephemeral loopback port).
    pub fn serve_args(&self) -> Vec<String> {
        [
            "--library",
            &self.library().display().to_string(),
            "--cache_dir",
            &self.state().display().to_string(),
            "--output_dir",
            &self.playlists().display().to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }
}

/// A running `playlista serve`; killed when dropped.
pub struct Server {
    pub child: Child,
    pub port: u16,
    /// Every stderr line so far arrives here.
    log: mpsc::Receiver<String>,
    pub seen: Vec<String>,
}

impl Server {
    /// Starts `playlista serve --no-mdns --bind 127.0.0.1:0 ARGS` and waits until it listens.
    pub fn start(args: &[String]) -> Server {
        let mut command = Command::new(BIN);
        command
            .args(["serve", "--no-mdns", "--bind", "127.0.0.1:0"])
            .args(args);
        Server::spawn(command)
    }

    /// Starts a prepared command that runs `serve` and waits for its `serving http://` line.
    pub fn spawn(mut command: Command) -> Server {
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start playlista serve");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                eprintln!("[serve] {line}");
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut server = Server {
            child,
            port: 0,
            log: rx,
            seen: Vec::new(),
        };
        let line = server.wait_for_log("serving http://", Duration::from_secs(30));
        let addr = line
            .split("serving http://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .expect("address in the serving line");
        server.port = addr
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("port in the serving line");
        server
    }

    /// Waits for a stderr line containing `text` and returns it.
    pub fn wait_for_log(&mut self, text: &str, limit: Duration) -> String {
        if let Some(l) = self.seen.iter().find(|l| l.contains(text)) {
            return l.clone();
        }
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.log.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(text) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no log line with {text:?} within {limit:?}: {:#?}",
                    self.seen
                ),
            }
        }
    }

    pub fn get(&self, path: &str) -> Response {
        request(self.port, "GET", path, &[])
    }

    pub fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Response {
        request(self.port, "GET", path, headers)
    }

    /// GETs JSON, asserting a 200.
    pub fn json(&self, path: &str) -> serde_json::Value {
        let r = self.get(path);
        assert_eq!(r.status, 200, "GET {path}: {}", r.text());
        serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("GET {path}: {e}: {}", r.text()))
    }

    /// Sends SIGTERM and waits for the exit status (None if it did not exit in `limit`).
    pub fn terminate(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `f` every 200 ms until it returns Some, or panics after `limit` with `what`.
pub fn eventually<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// An HTTP response as received.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One HTTP/1.1 request with `Connection: close`; the body is read to the end (chunked
/// transfer decoded).
pub fn request(port: u16, method: &str, path: &str, headers: &[(&str, &str)]) -> Response {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).ok();
    let mut head = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        head.push_str(&format!("Host: 127.0.0.1:{port}\r\n"));
    }
    for (n, v) in headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).expect("send request");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read response");
    parse(&raw).unwrap_or_else(|| {
        panic!(
            "{method} {path}: not HTTP: {:?}",
            String::from_utf8_lossy(&raw)
        )
    })
}

/// Parses one response; None if it is not HTTP.
pub fn parse(raw: &[u8]) -> Option<Response> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    if headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"))
    {
        body = dechunk(&body)?;
    }
    Some(Response {
        status,
        headers,
        body,
    })
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

/// The file behind track `id`, from the database.
pub fn track_path(state: &Path, id: i64) -> PathBuf {
    let db = rusqlite::Connection::open(state.join("playlista.db")).expect("open db");
    let path: String = db
        .query_row("SELECT path FROM tracks WHERE id = ?1", [id], |r| r.get(0))
        .expect("track path");
    PathBuf::from(path)
}
