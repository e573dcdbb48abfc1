//! End-to-end tests of the web page of `playlista serve`: the server in-process
//! ([`support::serve`]) on loopback over a copy of the shared demo database, checked with plain
//! HTTP (content types, security headers, caching, no way out of `/static/`) and with headless Chromium (the DOM once the scripts ran holds what
//! the API returned, escaped; a phone-sized screenshot is a real page, not a blank one).
//!
//! Chromium (Debian package `chromium`) missing: the browser test skips with a printed reason,
//! except under `CI=true`, where it fails. Chromium is kept off the network: every host name but
//! 127.0.0.1 fails to resolve, and background services, sync and updates are off.

mod support;

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Demo, Response, Service, demo};

/// A playlist name that is markup: the page must show it as text.
const HOSTILE: &str = "<b id=\"x\">Tom's & \"Jerry\"</b><img src=\"x\">";

/// A copy of the demo database with one playlist renamed to [`HOSTILE`], made once per run.
static RENAMED: LazyLock<Demo> = LazyLock::new(|| {
    let copy = demo().copy();
    let db = rusqlite::Connection::open(copy.state().join("playlista.db")).expect("db");
    let renamed = db
        .execute(
            "UPDATE playlists SET name = ?1 WHERE id = (SELECT max(id) FROM playlists)",
            [HOSTILE],
        )
        .expect("rename a playlist");
    assert_eq!(renamed, 1, "the demo made no playlist");
    copy
});

/// The server in-process on [`RENAMED`], stopped on drop.
fn start() -> Service {
    support::serve(&RENAMED.config(""))
}

/// The security headers every page and asset carries.
fn assert_secure(what: &str, r: &Response) {
    let csp = r.header("content-security-policy").unwrap_or_default();
    for part in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(part), "{what}: CSP {csp:?} lacks {part:?}");
    }
    for loose in [
        "unsafe-inline",
        "unsafe-eval",
        "http:",
        "https:",
        "*",
        "data:",
    ] {
        assert!(!csp.contains(loose), "{what}: CSP {csp:?} allows {loose:?}");
    }
    assert_eq!(
        r.header("x-content-type-options"),
        Some("nosniff"),
        "{what}"
    );
    assert!(
        !r.header("referrer-policy").unwrap_or_default().is_empty(),
        "{what}: no Referrer-Policy"
    );
}

/// The `/static/...` URLs the page names, in order.
fn asset_urls(html: &str) -> Vec<String> {
    html.split("\"/static/")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(|u| format!("/static/{u}"))
        .collect()
}

#[test]
fn page_and_assets_have_types_security_headers_and_caching() {
    let s = start();

    let page = s.get("/");
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_secure("/", &page);
    assert_eq!(page.header("cache-control"), Some("no-cache"));
    let html = page.text();
    assert!(html.starts_with("<!doctype html>"), "{html:.80}");
    assert!(
        !html.contains("{{"),
        "an unfilled template mark in the page"
    );
    let etag = page.header("etag").unwrap_or_default().to_string();
    assert!(etag.len() > 2 && etag.starts_with('"'), "ETag {etag:?}");
    let again = s.get_with("/", &[("If-None-Match", &etag)]);
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    let head = s.request("HEAD", "/", &[], b"");
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty(), "HEAD answered with a body");

    let urls = asset_urls(&html);
    let want = [
        ("/static/app.js?v=", "text/javascript; charset=utf-8"),
        ("/static/browse.js?v=", "text/javascript; charset=utf-8"),
        ("/static/map.js?v=", "text/javascript; charset=utf-8"),
        ("/static/style.css?v=", "text/css; charset=utf-8"),
        ("/static/icon.svg?v=", "image/svg+xml"),
        (
            "/static/manifest.webmanifest?v=",
            "application/manifest+json",
        ),
    ];
    for (prefix, content_type) in want {
        let url = urls
            .iter()
            .find(|u| u.starts_with(prefix))
            .unwrap_or_else(|| panic!("the page names no {prefix}: {urls:?}"));
        let r = s.get(url);
        assert_eq!(r.status, 200, "{url}");
        assert_eq!(r.header("content-type"), Some(content_type), "{url}");
        assert_secure(url, &r);
        assert!(
            r.header("cache-control")
                .unwrap_or_default()
                .contains("immutable"),
            "{url}: a versioned asset should be cached for good, got {:?}",
            r.header("cache-control")
        );
        assert!(!r.body.is_empty(), "{url}: empty");
        // Unversioned (or an old version): revalidated, and a matching ETag gives 304.
        let bare = url.split('?').next().unwrap_or_default();
        for stale in [bare.to_string(), format!("{bare}?v=0")] {
            let r = s.get(&stale);
            assert_eq!(r.status, 200, "{stale}");
            assert_eq!(r.header("cache-control"), Some("no-cache"), "{stale}");
            let etag = r.header("etag").unwrap_or_default().to_string();
            let cached = s.get_with(&stale, &[("If-None-Match", &etag)]);
            assert_eq!(cached.status, 304, "{stale} with its ETag");
        }
    }

    // The scripts never write API text as markup.
    for script in [
        "/static/app.js",
        "/static/browse.js",
        "/static/map.js",
        "/sw.js",
    ] {
        let js = s.get(script).text();
        for sink in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
        ] {
            assert!(!js.contains(sink), "{script} uses {sink}");
        }
    }
    // The service worker: at the root (its scope), of this version, revalidated.
    let worker = s.get("/sw.js");
    assert_eq!(worker.status, 200);
    assert_eq!(
        worker.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(worker.header("cache-control"), Some("no-cache"));
    let worker = worker.text();
    assert!(!worker.contains("{{"), "an unfilled mark in the worker");
    for url in &urls {
        assert!(
            worker.contains(url.as_str()),
            "the worker does not keep {url}"
        );
    }
    let manifest = s.get("/static/manifest.webmanifest").json();
    for icon in manifest["icons"].as_array().expect("manifest icons") {
        let src = icon["src"].as_str().expect("icon src");
        assert_eq!(s.get(src).status, 200, "manifest icon {src}");
    }

    // /static/ is a table of names, not a folder: nothing else answers, nothing leaks.
    for path in [
        "/static/",
        "/static",
        "/static/nope.js",
        "/static/APP.JS",
        "/static/app.js/",
        "/static/web.rs",
        "/static/index.html",
        "/static/../Cargo.toml",
        "/static/../../../../etc/passwd",
        "/static/..%2FCargo.toml",
        "/static/%2e%2e%2f%2e%2e%2fCargo.toml",
        "/static//etc/passwd",
        "/static/./app.js",
        "/index.html/../Cargo.toml",
    ] {
        let r = s.get(path);
        assert!(
            r.status == 404 || r.status == 400,
            "{path}: {} {}",
            r.status,
            r.text()
        );
        let body = r.text();
        assert!(
            !body.contains("[package]") && !body.contains("root:") && !body.contains("<li>"),
            "{path} leaked: {body:.200}"
        );
    }
}

/// Chromium's binary, or None (skip) with the reason printed; missing under CI=true fails.
fn chromium() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("chromium"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        let reason = "chromium is not installed (Debian: apt-get install chromium)";
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("CI=true and {reason}");
        }
        eprintln!("skipping the browser test: {reason}");
    }
    found
}

/// Headless Chromium that talks to nothing but loopback: every host name but 127.0.0.1 fails
/// to resolve, and updates, sync, metrics, crash reports and pings are off.
const QUIET_CHROMIUM: [&str; 17] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-breakpad",
    "--disable-domain-reliability",
    "--metrics-recording-only",
    "--no-pings",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
    "--hide-scrollbars",
    "--mute-audio",
    "--disable-extensions",
];

/// Runs headless Chromium on `url` with `extra` flags, off the network, and returns stdout.
fn browse(chromium: &Path, work: &Path, url: &str, extra: &[&str]) -> String {
    let profile = tempfile::tempdir_in(work).expect("profile dir");
    let out_path = work.join("chromium.out");
    let err_path = work.join("chromium.err");
    let mut child = Command::new(chromium)
        .args(QUIET_CHROMIUM)
        .args(["--virtual-time-budget=10000", "--window-size=390,844"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(File::create(&out_path).expect("stdout file"))
        .stderr(File::create(&err_path).expect("stderr file"))
        .spawn()
        .expect("start chromium");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for chromium") {
            break status;
        }
        if started.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish {url} within 120 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    assert!(status.success(), "chromium failed on {url}: {stderr}");
    std::fs::read_to_string(&out_path).expect("chromium stdout")
}

/// Text as an HTML serializer writes it inside an element.
fn as_html_text(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\u{a0}', "&nbsp;")
}

/// The DOM once the scripts ran, with the line-break hints the page adds to file names
/// taken out, so titles read as the API wrote them.
fn dom(chromium: &Path, work: &Path, url: &str) -> String {
    browse(chromium, work, url, &["--dump-dom"]).replace("<wbr>", "")
}

#[test]
fn chromium_renders_the_api_escaped_and_a_real_screenshot() {
    let Some(chromium) = chromium() else { return };
    let s = start();
    let work = tempfile::tempdir().expect("work dir");
    let work = work.path();

    let lists = s.get("/api/v1/playlists").json();
    let lists = lists.as_array().expect("playlists").clone();
    assert!(lists.len() >= 3, "the demo made {} playlists", lists.len());
    assert!(
        lists.iter().any(|p| p["name"] == HOSTILE),
        "the renamed playlist is not served: {lists:?}"
    );

    // Home: every playlist, as text (the page shows underscores as spaces).
    let home = dom(&chromium, work, &s.url("/"));
    for p in &lists {
        let name = p["name"].as_str().expect("name").replace('_', " ");
        assert!(
            home.contains(&as_html_text(&name)),
            "the page does not show playlist {name:?}"
        );
        let m3u8 = format!("href=\"/playlists/{}.m3u8\"", p["id"]);
        assert!(home.contains(&m3u8), "no download link {m3u8}");
    }
    assert!(
        !home.contains("<b id=\"x\">") && !home.contains("<img src=\"x\""),
        "a playlist name became markup"
    );
    assert!(
        home.contains("id=\"status-line\">24 tracks"),
        "no library status on the page"
    );

    // One playlist: its tracks in order, each with its play, why and radio buttons.
    let p = &lists[1];
    let detail = s.get(&format!("/api/v1/playlists/{}", p["id"])).json();
    let tracks = detail["tracks"].as_array().expect("tracks");
    let page = dom(&chromium, work, &s.url(&format!("/#/playlist/{}", p["id"])));
    let mut at = 0;
    for t in tracks {
        let title = as_html_text(t["title"].as_str().expect("title"));
        let found = page[at..]
            .find(&title)
            .unwrap_or_else(|| panic!("track {title:?} missing or out of order"));
        at += found + title.len();
    }
    assert_eq!(
        page.matches("class=\"track\"").count(),
        tracks.len(),
        "one row per track"
    );
    assert_eq!(
        page.matches("aria-label=\"Radio from ").count(),
        tracks.len()
    );
    assert!(page.contains("class=\"why-text\""), "no reasons");

    // A radio from the first track starts with it.
    let seed = &tracks[0];
    let radio = dom(&chromium, work, &s.url(&format!("/#/radio/{}", seed["id"])));
    let seed_title = as_html_text(seed["title"].as_str().expect("title"));
    assert!(
        radio.contains(&format!("Radio: {seed_title}")),
        "the radio view does not name its seed"
    );

    // A phone-sized screenshot that shows a page.
    let shot = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/serve-screenshot.png");
    let _ = std::fs::remove_file(&shot);
    browse(
        &chromium,
        work,
        &s.url("/"),
        &[&format!("--screenshot={}", shot.display())],
    );
    assert_real_page(&shot, (390, 844));
}

/// The PNG at `shot` is `size` pixels and shows a page: text is anti-aliased into many shades,
/// and cards and headings cover a good part of it.
fn assert_real_page(shot: &Path, size: (u32, u32)) {
    let decoder = png::Decoder::new(BufReader::new(File::open(shot).expect("screenshot")));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut pixels = vec![0; reader.output_buffer_size().expect("PNG size")];
    let info = reader.next_frame(&mut pixels).expect("PNG pixels");
    assert_eq!((info.width, info.height), size, "screenshot size");
    let channels = info.color_type.samples();
    assert!(channels >= 3, "colour type {:?}", info.color_type);
    let mut counts: HashMap<[u8; 3], usize> = HashMap::new();
    for px in pixels[..info.buffer_size()].chunks(channels) {
        *counts.entry([px[0], px[1], px[2]]).or_default() += 1;
    }
    let total = (info.width * info.height) as usize;
    let background = counts.values().copied().max().unwrap_or(0);
    let ink = 1.0 - background as f64 / total as f64;
    println!(
        "screenshot {}: {} colours, {:.0}% not background",
        shot.display(),
        counts.len(),
        ink * 100.0
    );
    assert!(
        counts.len() > 64,
        "{}: {} colours: a blank page",
        shot.display(),
        counts.len()
    );
    assert!(
        ink > 0.10,
        "{}: only {:.1}% of the page is not background",
        shot.display(),
        ink * 100.0
    );
}

/// Chromium driven over the DevTools protocol on a pipe (fds 3 and 4 of the browser,
/// NUL-terminated JSON), so the test can click through the page as a person would.
struct Devtools {
    child: Child,
    to_browser: File,
    from_browser: BufReader<File>,
    session: String,
    next_id: u64,
    _profile: tempfile::TempDir,
}

impl Devtools {
    /// Opens `url` in a phone-sized viewport of `width` × `height` CSS pixels.
    fn open(chromium: &Path, work: &Path, url: &str, width: u32, height: u32) -> Devtools {
        use std::os::fd::{FromRawFd, RawFd};
        use std::os::unix::process::CommandExt;

        fn pipe() -> (RawFd, RawFd) {
            let mut fds = [0; 2];
            // SAFETY: fds is a valid two-int buffer for pipe2.
            let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
            assert_eq!(rc, 0, "pipe2: {}", std::io::Error::last_os_error());
            (fds[0], fds[1])
        }
        let (browser_reads, we_write) = pipe();
        let (we_read, browser_writes) = pipe();
        let profile = tempfile::tempdir_in(work).expect("profile dir");
        let mut cmd = Command::new(chromium);
        cmd.args(QUIET_CHROMIUM)
            .args([
                "--remote-debugging-pipe",
                "--autoplay-policy=no-user-gesture-required",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: between fork and exec only async-signal-safe calls (fcntl, dup2) on fds
        // this process owns; the high copies keep 3 and 4 from overwriting each other.
        unsafe {
            cmd.pre_exec(move || {
                let r = libc::fcntl(browser_reads, libc::F_DUPFD, 10);
                let w = libc::fcntl(browser_writes, libc::F_DUPFD, 10);
                if r < 0 || w < 0 || libc::dup2(r, 3) < 0 || libc::dup2(w, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("start chromium");
        // SAFETY: each fd came from pipe2 above and is owned here exactly once.
        let (to_browser, from_browser) = unsafe {
            drop(File::from_raw_fd(browser_reads));
            drop(File::from_raw_fd(browser_writes));
            (File::from_raw_fd(we_write), File::from_raw_fd(we_read))
        };
        let mut d = Devtools {
            child,
            to_browser,
            from_browser: BufReader::new(from_browser),
            session: String::new(),
            next_id: 0,
            _profile: profile,
        };
        let targets = d.call("Target.getTargets", serde_json::json!({}));
        let page = targets["targetInfos"]
            .as_array()
            .and_then(|ts| ts.iter().find(|t| t["type"] == "page"))
            .and_then(|t| t["targetId"].as_str())
            .expect("a page target")
            .to_string();
        let attached = d.call(
            "Target.attachToTarget",
            serde_json::json!({ "targetId": page, "flatten": true }),
        );
        d.session = attached["sessionId"].as_str().expect("session").to_string();
        d.call(
            "Emulation.setDeviceMetricsOverride",
            serde_json::json!({
                "width": width, "height": height, "deviceScaleFactor": 2, "mobile": true,
            }),
        );
        // Answers once the page's document is committed, so scripts run in it.
        d.call("Page.navigate", serde_json::json!({ "url": url }));
        d
    }

    /// One command; events and other answers on the way are skipped.
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = serde_json::json!({ "id": id, "method": method, "params": params });
        if !self.session.is_empty() {
            msg["sessionId"] = self.session.clone().into();
        }
        let mut bytes = serde_json::to_vec(&msg).expect("JSON");
        bytes.push(0);
        self.to_browser
            .write_all(&bytes)
            .expect("write to chromium");
        loop {
            let mut raw = Vec::new();
            let n = self
                .from_browser
                .read_until(0, &mut raw)
                .expect("read from chromium");
            assert!(n > 0, "chromium closed the pipe during {method}");
            raw.pop();
            let reply: Value = serde_json::from_slice(&raw).expect("JSON from chromium");
            if reply["id"] == id {
                assert!(reply["error"].is_null(), "{method}: {}", reply["error"]);
                return reply["result"].clone();
            }
        }
    }

    /// One command to the browser itself rather than the page.
    fn call_browser(&mut self, method: &str, params: Value) -> Value {
        let session = std::mem::take(&mut self.session);
        let reply = self.call(method, params);
        self.session = session;
        reply
    }

    /// Saves what the viewport shows as a PNG.
    fn screenshot(&mut self, path: &Path) {
        use base64::Engine as _;
        let shot = self.call(
            "Page.captureScreenshot",
            serde_json::json!({ "format": "png" }),
        );
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().expect("screenshot data"))
            .expect("base64 PNG");
        std::fs::write(path, png).expect("write the screenshot");
    }

    /// Runs an async function body in the page and returns its JSON result.
    fn run(&mut self, body: &str) -> Value {
        let expression = format!("(async () => {{ {PAGE_HELPERS}\n{body} }})()");
        let r = self.call(
            "Runtime.evaluate",
            serde_json::json!({
                "expression": expression,
                "awaitPromise": true,
                "returnByValue": true,
                "timeout": 60000,
            }),
        );
        if let Some(e) = r.get("exceptionDetails") {
            panic!("in the page: {}", e["exception"]["description"]);
        }
        r["result"]["value"].clone()
    }
}

impl Drop for Devtools {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `wait(() => cond)` polls for up to 20 s; `src()` is what the player plays (looked up on
/// each call: after a navigation the script may start before the page's body is parsed).
const PAGE_HELPERS: &str = r##"
const wait = async (cond, what) => {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > 20000) throw new Error("waited 20 s for " + what);
    await new Promise((r) => setTimeout(r, 50));
  }
};
const audio = document.getElementById("audio");
const src = () => document.getElementById("audio").getAttribute("src");
const rows = () => [...document.querySelectorAll("#tracks > li")];
"##;

#[test]
fn chromium_plays_a_playlist_in_order_and_a_radio_at_360_px() {
    let Some(chromium) = chromium() else { return };
    let s = start();
    let lists = s.get("/api/v1/playlists").json();
    let list = lists
        .as_array()
        .and_then(|ls| ls.iter().find(|p| p["track_count"].as_u64() >= Some(4)))
        .expect("a playlist of 4 tracks or more")
        .clone();
    let detail = s.get(&format!("/api/v1/playlists/{}", list["id"])).json();
    let stream = |i: usize| format!("/stream/{}", detail["tracks"][i]["id"]);

    let work = tempfile::tempdir().expect("work dir");
    let mut page = Devtools::open(&chromium, work.path(), &s.url("/"), 360, 740);

    // At 360 px nothing sticks out sideways and every control is a comfortable tap.
    let layout = page.run(
        r##"await wait(() => document.querySelector(".card-main"), "the playlists");
        const small = [...document.querySelectorAll("button, a")]
          .filter((e) => e.offsetParent !== null)
          .map((e) => [e.getAttribute("aria-label") || e.textContent.trim(), e.getBoundingClientRect()])
          .filter(([, r]) => r.height < 44 || r.width < 44)
          .map(([name, r]) => `${name}: ${Math.round(r.width)}x${Math.round(r.height)}`);
        return { viewport: window.innerWidth, width: document.documentElement.scrollWidth, small };"##,
    );
    assert_eq!(layout["viewport"], 360, "{layout}");
    assert!(layout["width"].as_u64() <= Some(360), "{layout}");
    assert_eq!(layout["small"], serde_json::json!([]), "small tap targets");

    // Tap the first track: it plays; at its end the second follows; next, previous.
    let played = page.run(&format!(
        r##"location.hash = "#/playlist/{id}";
        await wait(() => rows().length === {count}, "the tracks");
        rows()[0].querySelector(".track-main").click();
        await wait(() => !audio.paused && audio.currentTime > 0.2, "the first track to play");
        const first = src();
        audio.currentTime = audio.duration - 0.3;
        await wait(() => src() !== first && audio.currentTime > 0.1, "the next track after the end");
        const afterEnd = src();
        const highlighted = rows().findIndex((r) => r.classList.contains("playing"));
        document.getElementById("next").click();
        const afterNext = src();
        document.getElementById("prev").click();
        const afterPrev = src();
        const why = rows()[1].querySelector("[aria-expanded]");
        why.click();
        const whyOpen = why.getAttribute("aria-expanded") === "true"
          && !document.getElementById(why.getAttribute("aria-controls")).hidden;
        return {{ first, afterEnd, highlighted, afterNext, afterPrev, whyOpen,
          now: document.getElementById("now-title").textContent }};"##,
        id = list["id"],
        count = detail["tracks"].as_array().map_or(0, Vec::len),
    ));
    assert_eq!(played["first"], stream(0).as_str(), "{played}");
    assert_eq!(played["afterEnd"], stream(1).as_str(), "{played}");
    assert_eq!(played["highlighted"], 1, "{played}");
    assert_eq!(played["afterNext"], stream(2).as_str(), "{played}");
    assert_eq!(played["afterPrev"], stream(1).as_str(), "{played}");
    assert_eq!(played["whyOpen"], true, "{played}");
    assert_eq!(played["now"], detail["tracks"][1]["title"], "{played}");

    // The radio button of the third track: a radio from it, which starts with it.
    let seed = &detail["tracks"][2];
    let radio = page.run(&format!(
        r##"rows()[2].querySelector('[aria-label^="Radio from"]').click();
        await wait(() => location.hash === "#/radio/{seed}" && src() === "/stream/{seed}"
          && rows().length > 1, "the radio");
        await wait(() => !audio.paused && audio.currentTime > 0.2, "the radio to play");
        return {{ title: document.getElementById("list-title").textContent,
          rows: rows().length, highlighted: rows().findIndex((r) => r.classList.contains("playing")) }};"##,
        seed = seed["id"],
    ));
    let similar = s
        .get(&format!("/api/v1/tracks/{}/similar?count=25", seed["id"]))
        .json();
    let expected_rows = 1 + similar["tracks"].as_array().map_or(0, Vec::len);
    assert_eq!(
        radio["title"],
        format!("Radio: {}", seed["title"].as_str().unwrap_or_default()).as_str()
    );
    assert_eq!(radio["rows"], expected_rows, "{radio}");
    assert_eq!(radio["highlighted"], 0, "{radio}");
}

/// The Subsonic account the page signs in with; not ASCII, so the page's MD5 must hash UTF-8.
const USER: &str = "ann";
const PASSWORD: &str = "pässwörd 1";
/// An own playlist's name that is markup.
const OWN_NAME: &str = "<b>x</b> & \"mine\"";

/// `p=enc:HEX` of [`PASSWORD`], for asking the server what the page stored.
fn rest(s: &Service, method: &str, query: &str) -> Value {
    let hex: String = PASSWORD.bytes().map(|b| format!("{b:02x}")).collect();
    let r = s
        .get(&format!(
            "/rest/{method}?u={USER}&p=enc:{hex}&v=1.16.1&c=test&f=json&{query}"
        ))
        .json();
    let answer = r["subsonic-response"].clone();
    assert_eq!(answer["status"], "ok", "{method}: {r}");
    answer
}

#[test]
fn chromium_signs_in_stars_a_track_and_makes_a_playlist_named_as_text() {
    let Some(chromium) = chromium() else { return };
    // Its own copy of the database: this test writes stars and a playlist.
    let copy = demo().copy();
    let s = support::serve(&copy.config(&format!(
        "[subsonic]\nuser = \"{USER}\"\npassword = \"{PASSWORD}\"\n"
    )));
    let lists = s.get("/api/v1/playlists").json();
    let list = lists
        .as_array()
        .and_then(|ls| ls.iter().find(|p| p["track_count"].as_u64() >= Some(2)))
        .expect("a playlist of 2 tracks or more")
        .clone();
    let detail = s.get(&format!("/api/v1/playlists/{}", list["id"])).json();
    let tracks = detail["tracks"].as_array().expect("tracks").clone();
    let work = tempfile::tempdir().expect("work dir");
    let url = s.url(&format!("/#/playlist/{}", list["id"]));
    let mut page = Devtools::open(&chromium, work.path(), &url, 360, 740);

    // Sign in on a playlist, star its first track, see it in Starred; make a playlist whose
    // name is markup and add the playlist's tracks to it.
    let seen = page.run(&format!(
        r##"const $ = (id) => document.getElementById(id);
        await wait(() => rows().length === {count}, "the tracks");
        const starsSignedOut = document.querySelectorAll("[data-star]").length;
        $("sign-in-open").click();
        $("user").value = {user};
        $("password").value = {password};
        $("sign-in").requestSubmit();
        await wait(() => rows()[0].querySelector("[data-star]"), "stars once signed in");
        const star = rows()[0].querySelector("[data-star]");
        star.click();
        await wait(() => star.getAttribute("aria-pressed") === "true", "the star to be set");
        location.hash = "#/starred";
        await wait(() => $("list-title").textContent === "Starred tracks", "the starred list");
        const starred = rows().map((r) => r.querySelector(".track-title").textContent);
        location.hash = "#/";
        await wait(() => !$("home-view").hidden, "home");
        $("new-name").value = {name};
        $("new-list").requestSubmit();
        await wait(() => document.querySelector("#mine-cards .card-name"), "the new playlist");
        const cardName = document.querySelector("#mine-cards .card-name").textContent;
        const markup = document.querySelector("#mine b, #add-to b") !== null;
        location.hash = "#/playlist/{id}";
        await wait(() => !$("add-form").hidden && rows().length === {count}, "the add form");
        const options = Array.from($("add-to").options).map((o) => o.textContent);
        $("add-form").requestSubmit();
        await wait(() => $("notice").textContent.startsWith("Added"), "the tracks to be added");
        document.querySelector("#mine-cards .card-main").click();
        await wait(() => $("list-title").textContent === {name} && rows().length === {count},
          "the own playlist with its tracks");
        return {{ starsSignedOut, starred, cardName, markup,
          options, stored: localStorage.getItem("playlista.account") }};"##,
        count = tracks.len(),
        id = list["id"],
        user = serde_json::to_string(USER).expect("JSON"),
        password = serde_json::to_string(PASSWORD).expect("JSON"),
        name = serde_json::to_string(OWN_NAME).expect("JSON"),
    ));
    assert_eq!(
        seen["starsSignedOut"], 0,
        "stars without an account: {seen}"
    );
    assert_eq!(
        seen["starred"],
        serde_json::json!([tracks[0]["title"]]),
        "{seen}"
    );
    assert_eq!(seen["cardName"], OWN_NAME, "{seen}");
    assert_eq!(
        seen["markup"], false,
        "a playlist name became markup: {seen}"
    );
    // A select drops markup when parsing, so the name must be there as text, not as a <b>.
    assert!(
        seen["options"]
            .as_array()
            .is_some_and(|o| o.iter().any(|t| t == OWN_NAME)),
        "the add-to choice shows the name as written: {seen}"
    );
    assert!(
        seen["stored"].as_str().unwrap_or_default().contains(USER),
        "{seen}"
    );

    // The server kept what the page did, for this account.
    let stars = rest(&s, "getStarred2", "");
    let ids: Vec<&Value> = stars["starred2"]["song"]
        .as_array()
        .map_or(vec![], |v| v.iter().map(|s| &s["id"]).collect());
    let first = Value::from(tracks[0]["id"].to_string());
    assert_eq!(ids, vec![&first], "{stars}");
    let own = rest(&s, "getPlaylists", "");
    let own = own["playlists"]["playlist"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == OWN_NAME))
        .unwrap_or_else(|| panic!("no playlist {OWN_NAME:?}: {own}"))
        .clone();
    assert_eq!(own["songCount"], tracks.len(), "{own}");

    // Signing out forgets the account and takes the stars off the rows.
    let out = page.run(
        r##"document.getElementById("sign-out").click();
        return { stars: document.querySelectorAll("[data-star]").length,
          stored: localStorage.getItem("playlista.account"), home: location.hash };"##,
    );
    assert_eq!(
        out,
        serde_json::json!({ "stars": 0, "stored": null, "home": "#/" })
    );
}

/// The library API the page reads: search, albums, a track's page, the builders and the map,
/// and what a bad request gets.
#[test]
fn library_api_searches_browses_builds_and_maps() {
    let s = start();
    let status = s.get("/api/v1/status").json();
    let analysed = status["library"]["analyzed"]
        .as_u64()
        .expect("analysed count") as usize;

    // A title's words find it first; every word must match.
    let albums = s.get("/api/v1/albums?count=500").json();
    let album = &albums["albums"][0];
    let detail = s
        .get(&format!(
            "/api/v1/albums/{}",
            album["id"].as_str().unwrap_or_default()
        ))
        .json();
    let tracks = detail["tracks"].as_array().expect("album tracks");
    assert_eq!(
        tracks.len() as u64,
        album["track_count"].as_u64().unwrap_or(0)
    );
    let title = tracks[1]["track"]["title"].as_str().expect("title");
    let words = title.replace('_', " ");
    let found = s
        .get(&format!("/api/v1/search?q={}", words.replace(' ', "+")))
        .json();
    assert_eq!(found["tracks"][0]["title"], title, "{found}");
    let none = s
        .get(&format!(
            "/api/v1/search?q={}+zzzz",
            words.replace(' ', "+")
        ))
        .json();
    assert_eq!(none["tracks"], serde_json::json!([]), "{none}");
    // An album plays in disc, track, then file order (the demo has no track numbers).
    let stems: Vec<String> = tracks
        .iter()
        .map(|t| t["track"]["title"].as_str().unwrap_or_default().to_string())
        .collect();
    let mut sorted = stems.clone();
    sorted.sort();
    assert_eq!(stems, sorted);

    // A track's page: numbers, words, neighbours and the lists it is in.
    let id = &tracks[0]["track"]["id"];
    let about = s.get(&format!("/api/v1/tracks/{id}/about")).json();
    assert!(about["numbers"]["bpm"].as_f64().is_some(), "{about}");
    assert!(about["words"]["tempo"].as_str().is_some(), "{about}");
    assert_eq!(
        about["sounds_like"].as_array().map(Vec::len),
        Some(5),
        "{about}"
    );
    assert_eq!(about["album_id"], album["id"]);

    // Builders: a radio from an album starts with its most typical track; a mix rises.
    let radio = s
        .get(&format!(
            "/api/v1/radio?album={}&count=10",
            album["id"].as_str().unwrap_or_default()
        ))
        .json();
    assert_eq!(
        radio["tracks"].as_array().map(Vec::len),
        Some(10),
        "{radio}"
    );
    let seed = radio["tracks"][0]["id"].as_i64().expect("seed");
    assert!(
        tracks.iter().any(|t| t["track"]["id"] == seed),
        "the seed is the album's"
    );
    let mix = s.get("/api/v1/mix?length=8&start=0&end=1").json();
    let mix = mix["tracks"].as_array().expect("mix tracks");
    assert_eq!(mix.len(), 8);
    let words = s.get("/api/v1/words?q=electronic&count=5").json();
    assert!(
        !words["tracks"].as_array().expect("tracks").is_empty(),
        "{words}"
    );

    // The map: one point per analysed track, with the demo's ids.
    let map = s.get("/api/v1/map");
    assert_eq!(map.header("content-type"), Some("application/octet-stream"));
    assert_eq!(&map.body[..8], b"PLMAP1\0\0");
    let n = u32::from_le_bytes(map.body[8..12].try_into().expect("count")) as usize;
    assert_eq!(n, analysed);

    // Music without a picture gets the page's neutral stand-in, not a broken image.
    let cover = s.get(&format!("/api/v1/cover/{id}"));
    assert_eq!(cover.status, 200);
    assert_eq!(cover.header("content-type"), Some("image/svg+xml"));
    assert_eq!(cover.header("x-content-type-options"), Some("nosniff"));

    // Bad requests: 4xx with a reason, never a panic.
    let many = vec!["a"; 17].join("+");
    for (path, status) in [
        (format!("/api/v1/search?q={many}"), 400),
        ("/api/v1/search".into(), 400),
        ("/api/v1/albums/al-nothere".into(), 404),
        ("/api/v1/albums?sort=sideways".into(), 400),
        ("/api/v1/artists/ar-0".into(), 404),
        ("/api/v1/genres/nope".into(), 404),
        ("/api/v1/folders?path=/etc".into(), 404),
        ("/api/v1/folders?path=../../..".into(), 404),
        ("/api/v1/radio".into(), 400),
        ("/api/v1/radio?track=1&album=al-1".into(), 400),
        ("/api/v1/mix?start=2".into(), 400),
        ("/api/v1/words?q=".into(), 400),
        ("/api/v1/tracks/999999/about".into(), 404),
        ("/api/v1/cover/999999".into(), 404),
    ] {
        let r = s.get(&path);
        assert_eq!(r.status, status, "{path}: {}", r.text());
        assert!(r.json()["error"].as_str().is_some(), "{path}: no reason");
    }
    s.assert_healthy();
}

/// The page as a player for the whole library, clicked through as a person would at 390 px:
/// search, an album, a track's page, the builders (played and saved), the map, the queue
/// across a reload, the lock screen's metadata, the manifest and the offline shell; with a
/// screenshot of each view in target/.
#[test]
fn chromium_searches_browses_builds_maps_and_keeps_the_queue() {
    let Some(chromium) = chromium() else { return };
    // Its own copy: this test saves a playlist.
    let copy = demo().copy();
    let s = support::serve(&copy.config(&format!(
        "[subsonic]\nuser = \"{USER}\"\npassword = \"{PASSWORD}\"\n"
    )));
    let album = s.get("/api/v1/albums").json()["albums"][0].clone();
    let detail = s
        .get(&format!(
            "/api/v1/albums/{}",
            album["id"].as_str().unwrap_or_default()
        ))
        .json();
    let titles: Vec<Value> = detail["tracks"]
        .as_array()
        .expect("album tracks")
        .iter()
        .map(|t| t["track"]["title"].clone())
        .collect();
    let target = detail["tracks"][2]["track"].clone();
    let other = detail["tracks"][5]["track"].clone();
    let work = tempfile::tempdir().expect("work dir");
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    let mut page = Devtools::open(&chromium, work.path(), &s.url("/"), 390, 844);
    let downloads = work.path().join("downloads");
    page.call_browser(
        "Browser.setDownloadBehavior",
        serde_json::json!({ "behavior": "allow", "downloadPath": downloads }),
    );
    let shoot = |page: &mut Devtools, view: &str| {
        let path = shots.join(format!("web-{view}.png"));
        page.screenshot(&path);
        assert_real_page(&path, (780, 1688));
    };
    page.run(r##"await wait(() => document.querySelector(".card-main"), "the playlists");"##);
    shoot(&mut page, "home");

    // Search as you type: the title's words find the track.
    let query = target["title"]
        .as_str()
        .unwrap_or_default()
        .replace('_', " ");
    let found = page.run(&format!(
        r##"location.hash = "#/search";
        await wait(() => !document.getElementById("search-view").hidden, "the search view");
        const input = document.getElementById("search-input");
        input.value = {query};
        input.dispatchEvent(new Event("input"));
        await wait(() => document.querySelector("#search-results .track-title"), "results");
        return [...document.querySelectorAll("#search-results .track-title")].map((t) => t.textContent);"##,
        query = serde_json::to_string(&query).expect("JSON"),
    ));
    assert_eq!(found[0], target["title"], "{found}");
    shoot(&mut page, "search");

    // An album opens in track order.
    let shown = page.run(&format!(
        r##"location.hash = "#/album/{id}";
        await wait(() => rows().length === {count}, "the album's tracks");
        return rows().map((r) => r.querySelector(".track-title").textContent);"##,
        id = album["id"].as_str().unwrap_or_default(),
        count = titles.len(),
    ));
    assert_eq!(shown, Value::from(titles.clone()));
    shoot(&mut page, "album");

    // A track's page says its analysis in words and numbers.
    let about = page.run(&format!(
        r##"location.hash = "#/track/{id}";
        await wait(() => document.getElementById("page-title").textContent === {title}, "the track page");
        await wait(() => document.querySelector("#page-body .facts"), "the facts");
        return {{ facts: document.querySelector("#page-body .facts").textContent,
          said: document.querySelector("#page-body .said").textContent }};"##,
        id = target["id"],
        title = target["title"],
    ));
    let facts = about["facts"].as_str().unwrap_or_default();
    assert!(
        facts.contains("BPM") && facts.contains(target["camelot"].as_str().unwrap_or("?")),
        "{about}"
    );
    assert!(
        about["said"].as_str().unwrap_or_default().contains("tempo"),
        "{about}"
    );
    shoot(&mut page, "track");
    page.run(
        r##"location.hash = "#/build";
        await wait(() => !document.getElementById("build-view").hidden, "the builders");
        window.scrollTo(0, 0);"##,
    );
    shoot(&mut page, "build");
    page.run(&format!(
        r##"history.back();
        await wait(() => document.getElementById("page-title").textContent === {title}
          && !document.getElementById("page-view").hidden, "the track page again");"##,
        title = target["title"],
    ));

    // Builders: a path from the track page's "Path from here" to another track plays at once;
    // a mix plays and saves as the account's playlist; its M3U8 lists every stream.
    let built = page.run(&format!(
        r##"[...document.querySelectorAll("#page-actions button")].find((b) => b.textContent === "Path from here").click();
        await wait(() => !document.getElementById("build-view").hidden, "the builders");
        pickers["build-path:to"].set("track:{to}", "the other");
        document.getElementById("path-length").value = 6;
        document.getElementById("build-path").requestSubmit();
        await wait(() => location.hash === "#/built" && rows().length === 6, "the path");
        await wait(() => !audio.paused && audio.currentTime > 0.1, "the path to play");
        const path = {{ first: src(), last: rows()[5].querySelector(".track-title").textContent }};
        location.hash = "#/build";
        await wait(() => !document.getElementById("build-view").hidden, "the builders again");
        pickers["build-radio:seed"].set("album:{album}", "the album");
        document.getElementById("radio-count").value = 5;
        document.getElementById("build-radio").requestSubmit();
        await wait(() => location.hash === "#/built" && rows().length === 5, "the album's radio");
        await wait(() => !audio.paused && audio.currentTime > 0.1, "the radio to play");
        const radio = {{ title: document.getElementById("list-title").textContent, first: src() }};
        location.hash = "#/build";
        await wait(() => !document.getElementById("build-view").hidden, "the builders again");
        document.getElementById("mix-length").value = 8;
        document.getElementById("build-mix").requestSubmit();
        await wait(() => location.hash === "#/built" && rows().length === 8, "the mix");
        await wait(() => !audio.paused && audio.currentTime > 0.1, "the mix to play");
        document.getElementById("download").click();
        return {{ path, radio, mixFirst: src(), file: document.getElementById("download").getAttribute("download") }};"##,
        to = other["id"],
        album = album["id"].as_str().unwrap_or_default(),
    ));
    assert_eq!(
        built["path"]["first"],
        format!("/stream/{}", target["id"]).as_str(),
        "{built}"
    );
    assert_eq!(built["path"]["last"], other["title"], "{built}");
    // The album's radio starts from one of its tracks.
    let album_streams: Vec<String> = detail["tracks"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| format!("/stream/{}", t["track"]["id"]))
        .collect();
    assert!(
        album_streams
            .iter()
            .any(|s| built["radio"]["first"] == s.as_str()),
        "{built}"
    );
    assert_eq!(built["radio"]["title"], "Radio: the album", "{built}");
    // The M3U8 the download link gives: every stream of the mix, by absolute URL.
    let file = downloads.join(built["file"].as_str().unwrap_or("none"));
    let m3u = support::eventually(Duration::from_secs(20), "the M3U8 download", || {
        std::fs::read_to_string(&file)
            .ok()
            .filter(|t| t.ends_with('\n'))
    });
    assert!(m3u.starts_with("#EXTM3U\n"), "{m3u}");
    let streams = m3u
        .lines()
        .filter(|l| l.starts_with(&s.url("/stream/")))
        .count();
    assert_eq!(streams, 8, "{m3u}");
    shoot(&mut page, "built");

    // Signed in, the built mix saves as the account's own playlist.
    let saved = page.run(&format!(
        r##"const $ = (id) => document.getElementById(id);
        $("sign-in-open").click();
        $("user").value = {user};
        $("password").value = {password};
        $("sign-in").requestSubmit();
        await wait(() => !$("save-list").hidden, "the save button once signed in");
        window.prompt = () => "Saved mix";
        $("save-list").click();
        await wait(() => $("notice").textContent.startsWith("Saved"), "the save");
        return $("notice").textContent;"##,
        user = serde_json::to_string(USER).expect("JSON"),
        password = serde_json::to_string(PASSWORD).expect("JSON"),
    ));
    assert!(
        saved.as_str().unwrap_or_default().contains("8 tracks"),
        "{saved}"
    );
    let own = rest(&s, "getPlaylists", "");
    let mine = own["playlists"]["playlist"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == "Saved mix"))
        .unwrap_or_else(|| panic!("no saved mix: {own}"))
        .clone();
    assert_eq!(mine["songCount"], 8, "{mine}");

    // The map draws every track; a tap on a lone point plays it.
    let analysed = s.get("/api/v1/status").json()["library"]["analyzed"].clone();
    shoot(&mut page, "build-saved");
    let map = page.run(
        r##"location.hash = "#/map";
        await wait(() => mapState.data && mapState.drawn === mapState.data.n, "every point drawn");
        const d = mapState.data;
        const canvas = document.getElementById("map-canvas");
        const ratio = window.devicePixelRatio || 1;
        const screen = [...Array(d.n).keys()].map((i) => toScreen(canvas, d.x[i], d.y[i]));
        const lone = screen.findIndex(([x, y], i) => screen.every(([a, b], j) =>
          i === j || Math.hypot(a - x, b - y) > 40 * ratio));
        const r = canvas.getBoundingClientRect();
        const [x, y] = screen[lone];
        const at = { clientX: r.left + x / ratio, clientY: r.top + y / ratio, pointerId: 1, bubbles: true };
        canvas.dispatchEvent(new PointerEvent("pointerdown", at));
        canvas.dispatchEvent(new PointerEvent("pointerup", at));
        const want = `/stream/${d.ids[lone]}`;
        await wait(() => src() === want && !audio.paused, "the tapped point to play");
        return { n: d.n, drawn: mapState.drawn, lone, played: src(), want };"##,
    );
    assert_eq!(map["n"], analysed, "{map}");
    assert!(map["lone"].as_i64() >= Some(0), "no lone point: {map}");
    assert_eq!(map["played"], map["want"], "{map}");
    shoot(&mut page, "map");

    // Lock screen: the Media Session names what plays; the queue (a radio, at its third
    // track) survives a reload.
    let before = page.run(&format!(
        r##"location.hash = "#/radio/{id}";
        await wait(() => rows().length > 3, "the radio");
        rows()[2].querySelector(".track-main").click();
        await wait(() => !audio.paused && audio.currentTime > 0.3, "the third track to play");
        audio.pause();
        const m = navigator.mediaSession.metadata;
        return {{ title: m.title, artwork: m.artwork[0].src, playing: playing().title,
          ids: queue.list.tracks.map((t) => t.id), index: queue.index }};"##,
        id = target["id"],
    ));
    assert_eq!(before["title"], before["playing"], "{before}");
    assert!(
        before["artwork"]
            .as_str()
            .unwrap_or_default()
            .contains("/api/v1/cover/"),
        "{before}"
    );
    page.call(
        "Page.navigate",
        serde_json::json!({ "url": s.url("/?again#/") }),
    );
    let after = page.run(
        r##"await wait(() => typeof queue !== "undefined" && queue && document.readyState === "complete", "the queue restored");
        return { ids: queue.list.tracks.map((t) => t.id), index: queue.index,
          now: document.getElementById("now-title").textContent, src: src(),
          shown: !document.getElementById("player").hidden };"##,
    );
    assert_eq!(after["ids"], before["ids"], "{after}");
    assert_eq!(after["index"], 2, "{after}");
    assert_eq!(after["now"], before["playing"], "{after}");
    assert_eq!(after["shown"], true, "{after}");

    // Installable: the manifest parses, the service worker registers and keeps the shell.
    let install = page.run(
        r##"const link = document.querySelector('link[rel="manifest"]').href;
        const manifest = await (await fetch(link)).json();
        const reg = await navigator.serviceWorker.ready;
        await wait(() => reg.active, "the worker to be active");
        const shell = await caches.match("/");
        return { display: manifest.display, start: manifest.start_url, icons: manifest.icons.length,
          worker: reg.active.scriptURL, shell: shell ? shell.status : null };"##,
    );
    assert_eq!(install["display"], "standalone", "{install}");
    assert_eq!(install["start"], "/", "{install}");
    assert!(install["icons"].as_u64() >= Some(1), "{install}");
    assert!(
        install["worker"]
            .as_str()
            .unwrap_or_default()
            .ends_with("/sw.js"),
        "{install}"
    );
    assert_eq!(install["shell"], 200, "{install}");
}
