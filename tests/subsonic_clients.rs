//! The real Subsonic client libraries against the real server, in-process on loopback
//! ([`support::serve`]) over a database analysed from the tests' tagged library
//! ([`support::music`]), with two accounts in the config:
//!
//! - `tests/clients/opensonic_check.py`: py-opensonic, a strict OpenSubsonic client (typed
//!   answers; Python warnings are errors): every endpoint of issue 15 in XML and JSON, the
//!   apps' login and sync sequences, listening data per account, the learning radio.
//! - `tests/clients/subsonic_api_check.mjs`: the npm `subsonic-api` client under Node, in its
//!   GET and form-POST modes, with a web client's CORS preflight.
//!
//! (py-sonic, the third client, is in tests/subsonic.rs.) Each script prints one line per
//! check and exits non-zero on any failure; its output is shown. Without python3 and
//! py-opensonic, or node and `tests/clients/node_modules` (`npm ci --prefix tests/clients`),
//! those tests skip with a reason, and fail under `CI=true`. Then, from Rust: a playlist
//! made through the API, and a star, survive re-analysis (`playlista -f`) and a playlist
//! regeneration. The library is analysed once per run; each test has a copy of the database
//! and a server of its own, since they all write listening data.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::LazyLock;

use serde_json::Value;
use support::music::{library, run_ok};
use support::{Service, can_run};

/// The two accounts of the household (user, password).
const ACCOUNTS: [(&str, &str); 2] = [("anna", "s3cret & sesam"), ("ben", "ben's pass 2")];

fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients")
}

/// The library, analysed once, with its playlists made (only read by the tests).
struct Fixture {
    music: PathBuf,
    state: PathBuf,
    playlists: PathBuf,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("subsonic-clients-fixture");
        let _ = std::fs::remove_dir_all(&dir);
        let music = dir.join("music");
        library(&music, None);
        let fixture = Fixture {
            music,
            state: dir.join("state"),
            playlists: dir.join("playlists"),
        };
        let config = dir.join("config.toml");
        write_config(&config, &fixture.music, &fixture.state, &fixture.playlists);
        run_ok(&["-a"], &config);
        run_ok(
            &["-g", "--min_playlist_size", "1", "--mixed_below", "2"],
            &config,
        );
        fixture
    });
    &FIXTURE
}

/// The config: the library, where state and playlists go, and [`ACCOUNTS`].
fn write_config(file: &Path, music: &Path, state: &Path, playlists: &Path) {
    let [(user, password), (user2, password2)] = ACCOUNTS;
    let text = format!(
        "library = {music:?}\ncache_dir = {state:?}\noutput_dir = {playlists:?}\nworkers = 1\n\n\
         [server]\nrescan_minutes = 0\n\n\
         [subsonic]\nuser = {user:?}\npassword = {password:?}\n\
         accounts = [{{ user = {user2:?}, password = {password2:?} }}]\n"
    );
    std::fs::write(file, text).unwrap();
}

/// A private copy of the fixture's database and playlists, with its own config file.
struct Private {
    dir: tempfile::TempDir,
}

impl Private {
    fn new() -> Private {
        let f = fixture();
        let dir = tempfile::tempdir().unwrap();
        for (from, to) in [(&f.state, "state"), (&f.playlists, "playlists")] {
            let to = dir.path().join(to);
            std::fs::create_dir_all(&to).unwrap();
            for entry in std::fs::read_dir(from).unwrap() {
                let entry = entry.unwrap();
                if entry.file_type().unwrap().is_file() {
                    std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
                }
            }
        }
        let p = Private { dir };
        write_config(
            &p.config(),
            &f.music,
            &p.dir.path().join("state"),
            &p.dir.path().join("playlists"),
        );
        p
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("config.toml")
    }

    fn serve(&self) -> Service {
        support::serve(&support::config_file(&self.config()))
    }
}

/// Why `program args` cannot run (not found, or fails), if it cannot.
fn missing(program: &str, args: &[&str], hint: &str) -> Option<String> {
    match Command::new(program).args(args).output() {
        Err(e) => Some(format!("{program} not runnable: {e}")),
        Ok(o) if !o.status.success() => Some(format!(
            "{hint}: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Ok(_) => None,
    }
}

/// Runs a check script (`command` then base URL, users and passwords) against a fresh
/// server on a private database; fails with its output unless it exits 0.
fn run_checks(what: &str, mut command: Command) {
    let private = Private::new();
    let server = private.serve();
    let [(user, password), (user2, password2)] = ACCOUNTS;
    let out = command
        .arg(server.url(""))
        .args([user, password, user2, password2])
        .current_dir(clients_dir())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{what}:\n{stdout}{stderr}");
    let failures = stdout.lines().filter(|l| l.starts_with("FAIL ")).count();
    assert!(
        out.status.success(),
        "{what}: exit {:?}, {failures} checks failed (their FAIL lines are above)",
        out.status.code()
    );
    assert!(stdout.lines().any(|l| l.starts_with("ok ")), "no check ran");
    server.assert_healthy();
}

#[test]
fn py_opensonic_with_warnings_as_errors() {
    let why = missing(
        "python3",
        &["-W", "error", "-c", "import libopensonic"],
        "py-opensonic missing (pip install py-opensonic)",
    );
    if !can_run("py-opensonic client", why) {
        return;
    }
    let mut python = Command::new("python3");
    python.args(["-W", "error", "opensonic_check.py"]);
    run_checks("py-opensonic", python);
}

#[test]
fn npm_subsonic_api() {
    let why = missing("node", &["--version"], "node does not run").or_else(|| {
        let installed = clients_dir().join("node_modules/subsonic-api/package.json");
        (!installed.is_file()).then(|| {
            format!(
                "{} missing: npm ci --prefix tests/clients",
                installed.display()
            )
        })
    });
    if !can_run("npm subsonic-api client", why) {
        return;
    }
    let mut node = Command::new("node");
    node.arg("subsonic_api_check.mjs");
    run_checks("subsonic-api", node);
}

/// `/rest/METHOD?…&f=json` as the first account; the response, which must be `ok`.
fn call(server: &Service, method: &str, query: &str) -> Value {
    let (user, password) = ACCOUNTS[0];
    let p: String = password.bytes().map(|b| format!("{b:02x}")).collect();
    let r = server.get(&format!("/rest/{method}?u={user}&p=enc:{p}&f=json&{query}"));
    assert_eq!(r.status, 200, "{method}: {}", r.text());
    let v = r.json()["subsonic-response"].clone();
    assert_eq!(v["status"], "ok", "{method}?{query}: {v}");
    v
}

/// The titles of an own playlist named `name`, and the starred songs' titles.
fn kept(server: &Service, name: &str) -> (Vec<String>, Vec<String>) {
    let titles = |list: &Value| -> Vec<String> {
        list.as_array()
            .map(|l| {
                l.iter()
                    .map(|s| s["title"].as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    let lists = call(server, "getPlaylists", "");
    let id = lists["playlists"]["playlist"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no playlist {name:?}: {lists}"))["id"]
        .as_str()
        .unwrap()
        .to_string();
    let playlist = call(server, "getPlaylist", &format!("id={id}"));
    let starred = call(server, "getStarred2", "");
    (
        titles(&playlist["playlist"]["entry"]),
        titles(&starred["starred2"]["song"]),
    )
}

#[test]
fn api_playlists_and_stars_survive_reanalysis_and_regeneration() {
    let private = Private::new();
    let name = "made on the phone";
    let before = {
        let server = private.serve();
        let all = call(&server, "search3", "query=%22%22&songCount=500");
        let id = |title: &str| {
            all["searchResult3"]["song"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["title"] == title)
                .unwrap_or_else(|| panic!("no song {title}: {all}"))["id"]
                .as_str()
                .unwrap()
                .to_string()
        };
        let songs = [id("Second Wind 3"), id("First Light 1"), id("loose_2")];
        call(
            &server,
            "createPlaylist",
            &format!(
                "name=made+on+the+phone&songId={}&songId={}&songId={}",
                songs[0], songs[1], songs[2]
            ),
        );
        call(&server, "star", &format!("id={}", songs[1]));
        kept(&server, name)
    };
    assert_eq!(
        before,
        (
            vec![
                "Second Wind 3".into(),
                "First Light 1".into(),
                "loose_2".into()
            ],
            vec!["First Light 1".into()]
        )
    );
    run_ok(&["-f"], &private.config());
    run_ok(
        &["-g", "--min_playlist_size", "1", "--mixed_below", "2"],
        &private.config(),
    );
    let server = private.serve();
    assert_eq!(kept(&server, name), before, "lost by -f and -g");
}
