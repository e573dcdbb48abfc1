//! The test service every server test shares: the demo library (built once per test binary),
//! the server in-process on `127.0.0.1:0` ([`serve`], stopped when dropped), the real binary
//! as a child process for what only a process shows (signals, exit codes, systemd, mDNS in a
//! namespace, the background analysis of a real `serve`), and one HTTP/1.1 client over a raw
//! socket, so that tests see exactly what went over the wire (and can send what is not HTTP).
//! [`music`]: the tagged library the Subsonic tests analyse. [`can_run`]: the skip that CI
//! turns into a failure.
#![allow(dead_code)] // each test file uses a different part

pub mod music;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{LazyLock, Once, mpsc};
use std::time::{Duration, Instant};

use playlista::config::{self, Config, Flags};
use playlista::server::{Listen, Options, Running};

pub const BIN: &str = env!("CARGO_BIN_EXE_playlista");

/// A demo library (24 generated songs, analysed, playlists made): its folders.
pub struct Demo {
    root: PathBuf,
    library: PathBuf,
    /// Set on a private copy: removed with it.
    _temp: Option<tempfile::TempDir>,
}

/// The demo, built once per test binary under `CARGO_TARGET_TMPDIR` (`playlista demo`). Its
/// library and database are only read; a test that changes the database works on
/// [`Demo::copy`].
pub fn demo() -> &'static Demo {
    static DEMO: LazyLock<Demo> = LazyLock::new(|| {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("demo-{}", env!("CARGO_CRATE_NAME")));
        let _ = std::fs::remove_dir_all(&root);
        let out = Command::new(BIN)
            .args(["demo", "--dir"])
            .arg(&root)
            .output()
            .expect("run playlista demo");
        assert!(
            out.status.success(),
            "demo failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Demo {
            library: root.join("library"),
            root,
            _temp: None,
        }
    });
    &DEMO
}

impl Demo {
    /// A private copy of the database (and the rest of the state) in a temporary folder; the
    /// library stays the shared one, which the database names.
    pub fn copy(&self) -> Demo {
        let temp = tempfile::tempdir().expect("temp dir");
        let state = temp.path().join("state");
        std::fs::create_dir(&state).expect("state dir");
        for entry in std::fs::read_dir(self.state()).expect("demo state") {
            let entry = entry.expect("entry");
            if entry.file_type().is_ok_and(|t| t.is_file()) {
                match std::fs::copy(entry.path(), state.join(entry.file_name())) {
                    // Another test's config file (see [`Demo::config`]), gone again.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    r => {
                        r.expect("copy state");
                    }
                }
            }
        }
        Demo {
            root: temp.path().to_path_buf(),
            library: self.library.clone(),
            _temp: Some(temp),
        }
    }

    /// The folder that holds `state/`, `playlists/` (and, when not a copy, `library/`).
    pub fn dir(&self) -> &Path {
        &self.root
    }

    pub fn library(&self) -> PathBuf {
        self.library.clone()
    }

    pub fn state(&self) -> PathBuf {
        self.root.join("state")
    }

    pub fn playlists(&self) -> PathBuf {
        self.root.join("playlists")
    }

    /// `serve` arguments for this library and database.
    pub fn serve_args(&self) -> Vec<String> {
        [
            "--library".to_string(),
            self.library().display().to_string(),
            "--cache_dir".to_string(),
            self.state().display().to_string(),
            "--output_dir".to_string(),
            self.playlists().display().to_string(),
        ]
        .into()
    }

    /// The config `serve --config FILE --cache_dir STATE --output_dir PLAYLISTS` resolves,
    /// FILE holding `toml` (a moment in the state folder: the only place besides the library
    /// where the hostile test lets the server's process open files).
    pub fn config(&self, toml: &str) -> Config {
        let file = tempfile::NamedTempFile::new_in(self.state()).expect("config file");
        std::fs::write(file.path(), toml).expect("write config");
        let flags = Flags {
            library: vec![self.library()],
            cache_dir: Some(self.state()),
            output_dir: Some(self.playlists()),
            ..Flags::default()
        };
        config::resolve(&flags, Some(file.path())).expect("config")
    }
}

/// The config `serve --config FILE` resolves.
pub fn config_file(file: &Path) -> Config {
    config::resolve(&Flags::default(), Some(file)).expect("config")
}

/// Under CI (`CI=true`) a test whose tools are missing fails instead of skipping.
pub fn in_ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// True when `what` can run (`why` is None); otherwise prints why and returns false, or
/// panics under CI.
pub fn can_run(what: &str, why: Option<String>) -> bool {
    match why {
        None => true,
        Some(why) if in_ci() => panic!("{what}: {why}, and CI=true requires it to run"),
        Some(why) => {
            // Straight to stderr, past the harness's capture, so the skip shows in every run.
            let _ = writeln!(std::io::stderr(), "SKIPPED {what}: {why}");
            false
        }
    }
}

/// Panics on the server's own threads since the test binary started.
static PANICS: AtomicUsize = AtomicUsize::new(0);

/// The server in this process: the service's router and listener ([`playlista::server`]'s
/// `open` and `serve`) on `127.0.0.1:0` with `config`, no mDNS and no background analysis.
/// Stopped when dropped.
pub fn serve(config: &Config) -> Service {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if std::thread::current().name() == Some(Running::THREAD) {
                PANICS.fetch_add(1, Ordering::Relaxed);
            }
            previous(info);
        }));
    });
    let opts = Options {
        bind: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        name: None,
        no_mdns: true,
    };
    let listen = Listen::resolve(config, &opts).expect("the config's address and name");
    let running = Running::start(config, &listen, 2).expect("start the server");
    let client = Client {
        addr: running.addr(),
        from: None,
    };
    Service { running, client }
}

/// A server started by [`serve`].
pub struct Service {
    running: Running,
    client: Client,
}

impl Service {
    /// Still serving, answering `/api/v1/status` with 200, and no panic on its threads.
    pub fn assert_healthy(&self) {
        assert!(self.running.serving(), "the server stopped");
        let reply = self.get("/api/v1/status");
        assert_eq!(reply.status, 200);
        assert_eq!(
            PANICS.load(Ordering::Relaxed),
            0,
            "a panic on the server's threads"
        );
    }
}

impl Deref for Service {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}

/// A child process (the real binary, or a tool) whose output lines are collected; killed
/// when dropped.
pub struct Process {
    pub child: Child,
    lines: mpsc::Receiver<String>,
    /// Every line read so far.
    pub seen: Vec<String>,
    /// Set by [`Process::serve`]: where it listens.
    client: Client,
}

impl Process {
    /// Starts `cmd`, collecting its stderr (a server's log), or its stdout when `stdout`.
    pub fn spawn(mut cmd: Command, stdout: bool) -> Process {
        cmd.stdin(Stdio::null());
        if stdout {
            cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
        } else {
            cmd.stdout(Stdio::null()).stderr(Stdio::piped());
        }
        let mut child = cmd.spawn().expect("spawn");
        let pipe: Box<dyn Read + Send> = if stdout {
            Box::new(child.stdout.take().expect("stdout"))
        } else {
            Box::new(child.stderr.take().expect("stderr"))
        };
        let (tx, lines) = mpsc::channel();
        // Reads to the end, so that the child never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if !stdout {
                    eprintln!("[serve] {line}");
                }
                let _ = tx.send(line);
            }
        });
        Process {
            child,
            lines,
            seen: Vec::new(),
            client: Client {
                addr: SocketAddr::from(([127, 0, 0, 1], 0)),
                from: None,
            },
        }
    }

    /// Starts a prepared command that runs `serve` and waits for its `serving http://ADDR/`
    /// line; the client then talks to that port on loopback.
    pub fn serve(command: Command) -> Process {
        let mut p = Process::spawn(command, false);
        let port = p.wait_for(Duration::from_secs(60), |l| {
            let addr = l.split("serving http://").nth(1)?.split('/').next()?;
            addr.rsplit(':').next()?.parse::<u16>().ok()
        });
        let Some(port) = port else {
            panic!("no `serving` line from the server: {:#?}", p.seen);
        };
        p.client.addr = SocketAddr::from(([127, 0, 0, 1], port));
        p
    }

    /// `playlista serve --no-mdns --bind 127.0.0.1:0 ARGS`, once it listens.
    pub fn serve_args(args: &[String]) -> Process {
        let mut command = Command::new(BIN);
        command
            .args(["serve", "--no-mdns", "--bind", "127.0.0.1:0"])
            .args(args);
        Process::serve(command)
    }

    /// The first line `want` accepts, among those seen or the next ones within `limit`.
    pub fn wait_for<T>(
        &mut self,
        limit: Duration,
        mut want: impl FnMut(&str) -> Option<T>,
    ) -> Option<T> {
        if let Some(found) = self.seen.iter().find_map(|l| want(l)) {
            return Some(found);
        }
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let line = self.lines.recv_timeout(left).ok()?;
            let found = want(&line);
            self.seen.push(line);
            if found.is_some() {
                return found;
            }
        }
    }

    /// Waits for a line containing `text` and returns it; panics after `limit`.
    pub fn wait_for_log(&mut self, text: &str, limit: Duration) -> String {
        self.wait_for(limit, |l| l.contains(text).then(|| l.to_string()))
            .unwrap_or_else(|| panic!("no line with {text:?} within {limit:?}: {:#?}", self.seen))
    }

    /// The lines that arrive within `limit` (the rest of a log after an exit).
    pub fn drain(&mut self, limit: Duration) {
        while let Ok(line) = self.lines.recv_timeout(limit) {
            self.seen.push(line);
        }
    }

    /// Sends SIGTERM.
    pub fn signal_term(&self) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
    }

    /// Waits for the exit status (None if it did not exit in `limit`).
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Sends SIGTERM and waits for the exit status (None if it did not exit in `limit`).
    pub fn terminate(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        self.signal_term();
        self.wait_exit(limit)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Deref for Process {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}

impl Drop for Process {
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

/// The HTTP client: one request per connection (`Connection: close`, read to the end), or
/// a [`Conn`] for keep-alive, pipelining and bytes that are not HTTP.
#[derive(Clone, Copy)]
pub struct Client {
    pub addr: SocketAddr,
    /// The local address connections come from (`127.0.0.2`: another device); None: any.
    pub from: Option<std::net::IpAddr>,
}

impl Client {
    /// This client as another device on the LAN would be: connecting from `ip` (a loopback
    /// address such as 127.0.0.2).
    pub fn from(&self, ip: &str) -> Client {
        Client {
            from: Some(ip.parse().expect("an IP address")),
            ..*self
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn get(&self, path: &str) -> Response {
        self.request("GET", path, &[], b"")
    }

    pub fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Response {
        self.request("GET", path, headers, b"")
    }

    /// GETs JSON, asserting a 200.
    pub fn json(&self, path: &str) -> serde_json::Value {
        let r = self.get(path);
        assert_eq!(r.status, 200, "GET {path}: {}", r.text());
        r.json()
    }

    /// One request on a fresh connection, the target sent exactly as given (no normalising),
    /// with `Connection: close`, a Host header unless `headers` has one, and a
    /// Content-Length when there is a body. The response is read to the end of the
    /// connection: a HEAD answer with a body would show.
    pub fn request(
        &self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        let mut head = format!("{method} {target} HTTP/1.1\r\nConnection: close\r\n");
        if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
            head.push_str(&format!("Host: {}\r\n", self.addr));
        }
        if !body.is_empty() {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        for (n, v) in headers {
            head.push_str(&format!("{n}: {v}\r\n"));
        }
        head.push_str("\r\n");
        let mut c = Conn::open_from(self.addr, self.from);
        c.stream.write_all(head.as_bytes()).expect("send request");
        c.stream.write_all(body).expect("send body");
        while c.fill() {}
        let raw = std::mem::take(&mut c.buf);
        match parse(&raw, Framing::ToEnd) {
            Some((r, _)) => r,
            None => panic!(
                "{method} {target}: not HTTP: {:?}",
                String::from_utf8_lossy(&raw)
            ),
        }
    }

    /// Sends `raw` on a fresh connection and reads one response.
    pub fn exchange(&self, raw: &[u8]) -> Option<Response> {
        let mut c = Conn::open_from(self.addr, self.from);
        // The server may answer (431, 400) and close before a huge request is all written.
        let _ = c.stream.write_all(raw);
        c.response(raw.starts_with(b"HEAD "))
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

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON: {e}: {}", self.text()))
    }
}

/// A connection and what has been read from it but not yet used.
pub struct Conn {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    pub fn open(addr: SocketAddr) -> Conn {
        Conn::open_from(addr, None)
    }

    /// A connection to `addr` from the local address `from` (any port).
    pub fn open_from(addr: SocketAddr, from: Option<std::net::IpAddr>) -> Conn {
        let stream = match from {
            None => TcpStream::connect(addr).expect("connect"),
            Some(ip) => {
                use socket2::{Domain, SockAddr, Socket, Type};
                let socket =
                    Socket::new(Domain::for_address(addr), Type::STREAM, None).expect("socket");
                socket
                    .bind(&SockAddr::from(SocketAddr::new(ip, 0)))
                    .unwrap_or_else(|e| panic!("bind {ip}: {e}"));
                socket
                    .connect(&SockAddr::from(addr))
                    .unwrap_or_else(|e| panic!("connect from {ip}: {e}"));
                socket.into()
            }
        };
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("read timeout");
        Conn {
            stream,
            buf: Vec::new(),
        }
    }

    /// Reads more bytes; false at EOF, on a reset or a timeout.
    fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 64 << 10];
        match self.stream.read(&mut chunk) {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    /// The next complete response (1xx skipped); None when the server closed without one.
    /// `head_only`: the request was HEAD, so a Content-Length announces no body.
    pub fn response(&mut self, head_only: bool) -> Option<Response> {
        let mut eof = false;
        loop {
            let framing = if head_only {
                Framing::Head
            } else {
                Framing::Framed { eof }
            };
            match parse(&self.buf, framing) {
                Some((r, used)) => {
                    self.buf.drain(..used);
                    if !(100..200).contains(&r.status) {
                        return Some(r);
                    }
                }
                None if eof => return None,
                None => eof = !self.fill(),
            }
        }
    }
}

/// Where a response's body ends.
#[derive(Clone, Copy)]
enum Framing {
    /// The answer to HEAD: a Content-Length announces no body.
    Head,
    /// As its headers say; `eof`: nothing more will arrive, so a body without a length
    /// ends here.
    Framed { eof: bool },
    /// Everything after the head (dechunked), whatever the headers say: the connection was
    /// read to its end.
    ToEnd,
}

/// The first response in `raw` and the bytes it took; None while it is incomplete (or not
/// HTTP).
fn parse(raw: &[u8], framing: Framing) -> Option<(Response, usize)> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&raw[..end - 4]);
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let header = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v);
    let rest = &raw[end..];
    let chunked = header("transfer-encoding").is_some_and(|t| t.contains("chunked"));
    let (body, used) = match framing {
        Framing::ToEnd if chunked => dechunk(rest)?,
        Framing::ToEnd => (rest.to_vec(), rest.len()),
        Framing::Head => (Vec::new(), 0),
        Framing::Framed { .. } if status == 204 || status == 304 || status < 200 => (Vec::new(), 0),
        Framing::Framed { .. } if header("content-length").is_some() => {
            let len: usize = header("content-length")?.parse().ok()?;
            (rest.get(..len)?.to_vec(), len)
        }
        Framing::Framed { .. } if chunked => dechunk(rest)?,
        Framing::Framed { eof: true } => (rest.to_vec(), rest.len()),
        Framing::Framed { eof: false } => return None,
    };
    Some((
        Response {
            status,
            headers,
            body,
        },
        end + used,
    ))
}

/// A chunked body and the bytes it took; None while incomplete.
fn dechunk(mut data: &[u8]) -> Option<(Vec<u8>, usize)> {
    let total = data.len();
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
        if size == 0 {
            return Some((out, total - data.len()));
        }
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
