//! mDNS end to end: the real `playlista serve` announces inside a network namespace and
//! Python `zeroconf` browses from another namespace across a veth pair, as a phone would.
//!
//! Nothing here speaks mDNS in the machine's own namespace: every server, browser and HTTP
//! client runs under `ip netns exec` in namespaces made for one test (named with the pid)
//! and deleted by a guard, even when the test fails. The interfaces live only inside them.
//!
//! Needs root, `ip` (iproute2) and Python `zeroconf`; without them the tests skip with a
//! printed reason, except under `CI=true`, where they fail.
//!
//! Process-level by necessity: the server must run inside a namespace, so it is the real
//! binary (on the shared demo's library, each with its own copy of the database); the
//! processes and their logs are [`support::Process`].

mod support;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{BIN, Demo, Process, demo};

/// Browses service types on one interface address (or "all") and prints one JSON line per
/// event: `browsing` once ready, then `added` / `updated` (resolved: server, port,
/// addresses, txt) and `removed`. Exits after a bounded time in any case.
const BROWSE_PY: &str = r#"
import json, sys, threading, time
from zeroconf import IPVersion, ServiceBrowser, ServiceStateChange, Zeroconf
where, types = sys.argv[1], sys.argv[2:]
if where == "all":
    zc = Zeroconf(ip_version=IPVersion.V4Only)
else:
    zc = Zeroconf(interfaces=[where], ip_version=IPVersion.V4Only)
lock = threading.Lock()
def say(**kw):
    with lock:
        print(json.dumps(kw), flush=True)
def handler(zeroconf, service_type, name, state_change):
    if state_change is ServiceStateChange.Removed:
        say(event="removed", type=service_type, name=name)
        return
    info = zeroconf.get_service_info(service_type, name, timeout=3000)
    if info is None:
        say(event="unresolved", type=service_type, name=name)
        return
    txt = {k.decode(): (v.decode() if v is not None else None) for k, v in info.properties.items()}
    say(event=state_change.name.lower(), type=service_type, name=name, server=info.server,
        port=info.port, addresses=sorted(info.parsed_addresses()), txt=txt)
browsers = [ServiceBrowser(zc, t, handlers=[handler]) for t in types]
say(event="browsing")
time.sleep(120)
zc.close()
"#;

/// Prints the body of an HTTP GET, failing on any error status.
const FETCH_PY: &str = r#"
import sys, urllib.request
print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())
"#;

const PLAYLISTA: &str = "_playlista._tcp.local.";
const HTTP: &str = "_http._tcp.local.";

/// Why these tests cannot run here, if they cannot.
fn missing_tool() -> Option<String> {
    // SAFETY: a plain syscall without arguments.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root (network namespaces need it)".into());
    }
    let ok = |cmd: &mut Command| {
        cmd.stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !ok(Command::new("ip").arg("-V")) {
        return Some("no `ip` (apt-get install iproute2)".into());
    }
    if !ok(Command::new("python3").args(["-c", "import zeroconf"])) {
        return Some("no Python zeroconf (pip install zeroconf)".into());
    }
    None
}

/// True when the test can run; otherwise prints why and returns false, or panics in CI.
fn can_run(test: &str) -> bool {
    let Some(why) = missing_tool() else {
        return true;
    };
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test}: {why}, and CI=true requires this test to run");
    }
    // Straight to stderr, past the harness's capture, so the skip shows in every run.
    let _ = writeln!(std::io::stderr(), "SKIP {test}: {why}");
    false
}

fn run(cmd: &str, args: &[&str]) {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Network namespaces made for one test, deleted (with their interfaces) on drop.
struct Namespaces(Vec<String>);

impl Namespaces {
    /// One namespace per role, named `pl-ROLE-TAG-PID`, each with `lo` up.
    fn new(tag: &str, roles: &[&str]) -> Namespaces {
        let mut made = Namespaces(Vec::new());
        for role in roles {
            let name = format!("pl-{role}-{tag}-{}", std::process::id());
            // A namespace left by a killed earlier run with the same pid would fail `add`.
            let _ = Command::new("ip").args(["netns", "del", &name]).output();
            run("ip", &["netns", "add", &name]);
            made.0.push(name.clone());
            run("ip", &["-n", &name, "link", "set", "lo", "up"]);
        }
        made
    }

    fn name(&self, i: usize) -> &str {
        &self.0[i]
    }

    /// A veth pair between namespaces `a` and `b`, named inside them, with `addr_a` and
    /// `addr_b` (CIDR), both ends up.
    fn link(&self, a: usize, if_a: &str, addr_a: &str, b: usize, if_b: &str, addr_b: &str) {
        let (na, nb) = (self.name(a), self.name(b));
        run(
            "ip",
            &[
                "-n", na, "link", "add", if_a, "type", "veth", "peer", "name", if_b, "netns", nb,
            ],
        );
        run("ip", &["-n", na, "addr", "add", addr_a, "dev", if_a]);
        run("ip", &["-n", nb, "addr", "add", addr_b, "dev", if_b]);
        run("ip", &["-n", na, "link", "set", if_a, "up"]);
        run("ip", &["-n", nb, "link", "set", if_b, "up"]);
    }

    /// `program args` inside namespace `i`.
    fn command(&self, i: usize, program: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", self.name(i), program])
            .args(args);
        cmd
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for name in &self.0 {
            let _ = Command::new("ip").args(["netns", "del", name]).output();
        }
    }
}

/// A running `serve` in namespace `ns`, with its own copy of the demo database.
struct Served {
    proc: Process,
    port: u16,
    /// The instance id it announces.
    id: String,
    _demo: Demo,
}

fn serve(nets: &Namespaces, ns: usize, name: &str) -> Served {
    let copy = demo().copy();
    let state = copy.state();
    let library = copy.library();
    let playlists = copy.playlists();
    let args = [
        "serve",
        "--bind",
        "0.0.0.0:0",
        "--name",
        name,
        "--library",
        library.to_str().expect("utf-8 path"),
        "--cache_dir",
        state.to_str().expect("utf-8 path"),
        "--output_dir",
        playlists.to_str().expect("utf-8 path"),
    ];
    let proc = Process::serve(nets.command(ns, BIN, &args));
    let port = proc.port();
    let id = std::fs::read_to_string(state.join("instance-id"))
        .expect("instance-id")
        .trim()
        .to_string();
    Served {
        proc,
        port,
        id,
        _demo: copy,
    }
}

impl Served {
    /// Waits for a log line containing `text`.
    fn wait_log(&mut self, text: &str, timeout: Duration) {
        self.proc.wait_for_log(text, timeout);
    }

    fn log(&self) -> String {
        self.proc.seen.join("\n")
    }

    /// SIGTERM, then a clean exit within `timeout`.
    fn stop(&mut self, timeout: Duration) {
        self.proc.signal_term();
        let status = self.proc.wait_exit(timeout);
        // The rest of the log, for the messages below.
        self.proc.drain(Duration::from_millis(200));
        assert!(
            status.is_some_and(|s| s.success()),
            "server did not stop cleanly within {timeout:?} ({status:?}):\n{}",
            self.log()
        );
    }
}

/// A zeroconf browser in namespace `ns` on `where` ("all" or one address).
fn browse(nets: &Namespaces, ns: usize, where_: &str, types: &[&str]) -> Process {
    let mut args = vec!["-c", BROWSE_PY, where_];
    args.extend_from_slice(types);
    let mut proc = Process::spawn(nets.command(ns, "python3", &args), true);
    let ready = proc.wait_for(Duration::from_secs(20), |l| {
        l.contains("\"browsing\"").then_some(())
    });
    assert!(ready.is_some(), "browser did not start: {:?}", proc.seen);
    proc
}

/// A browser event of kind `event` for `ty` that `want` accepts: one already seen (events
/// of different services arrive in any order), else the next one within `timeout`.
fn event(
    browser: &mut Process,
    timeout: Duration,
    event: &str,
    ty: &str,
    want: impl Fn(&Value) -> bool,
) -> Option<Value> {
    browser.wait_for(timeout, |l| {
        let v: Value = serde_json::from_str(l).ok()?;
        (v["event"] == event && v["type"] == ty && want(&v)).then_some(v)
    })
}

fn addresses(v: &Value) -> Vec<&str> {
    v["addresses"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

#[test]
fn a_phone_finds_the_box_on_the_lan_only_and_sees_it_leave() {
    if !can_run("a_phone_finds_the_box_on_the_lan_only_and_sees_it_leave") {
        return;
    }
    const SRV: usize = 0;
    const PHONE: usize = 1;
    let nets = Namespaces::new("lan", &["srv", "phone"]);
    // The LAN, and a link whose server end is named like Docker's bridge: a phone behind
    // it must not hear of the box.
    nets.link(SRV, "eth0", "10.77.1.1/24", PHONE, "eth0", "10.77.1.2/24");
    nets.link(
        SRV,
        "docker0",
        "10.78.1.1/24",
        PHONE,
        "eth1",
        "10.78.1.2/24",
    );
    let mut browser = browse(&nets, PHONE, "all", &[PLAYLISTA, HTTP]);

    demo();
    let started = Instant::now();
    let name = "living-room";
    let mut server = serve(&nets, SRV, name);
    let found = event(
        &mut browser,
        Duration::from_secs(20),
        "added",
        PLAYLISTA,
        |_| true,
    )
    .unwrap_or_else(|| {
        panic!(
            "{PLAYLISTA} not resolved; browser: {:?}\nserver:\n{}",
            browser.seen,
            server.log()
        )
    });
    eprintln!(
        "resolved {PLAYLISTA} {:.2} s after the server started",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(found["name"], format!("{name}.{PLAYLISTA}"));
    assert_eq!(found["server"], format!("{name}.local."));
    assert_eq!(found["port"], server.port);
    // Only the LAN address: not loopback, not the docker0 link.
    assert_eq!(addresses(&found), ["10.77.1.1"], "{found}");
    let txt = found["txt"].as_object().expect("txt");
    assert_eq!(txt.len(), 4, "{found}");
    assert_eq!(txt["path"], "/");
    assert_eq!(txt["api"], "/api/v1");
    assert_eq!(txt["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(txt["id"], server.id.as_str());

    let web = event(&mut browser, Duration::from_secs(10), "added", HTTP, |_| {
        true
    })
    .unwrap_or_else(|| panic!("{HTTP} not resolved; browser: {:?}", browser.seen));
    assert_eq!(web["server"], format!("{name}.local."));
    assert_eq!(web["port"], server.port);
    assert_eq!(addresses(&web), ["10.77.1.1"], "{web}");
    assert_eq!(web["txt"], serde_json::json!({"path": "/"}));

    // The phone reaches the API at the address and port it resolved.
    let url = format!(
        "http://{}:{}{}/status",
        addresses(&found)[0],
        found["port"],
        txt["api"].as_str().unwrap_or_default()
    );
    let out = nets
        .command(PHONE, "python3", &["-c", FETCH_PY, &url])
        .output()
        .expect("fetch");
    assert!(
        out.status.success(),
        "GET {url} from the phone: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status: Value = serde_json::from_slice(&out.stdout).expect("status JSON");
    assert_eq!(status["name"], name);
    assert_eq!(status["id"], server.id.as_str());
    assert_eq!(status["library"]["tracks"], 24);

    // A link that appears later gets the announcement too (the daemon checks the
    // addresses every 5 s); a browser on that link only resolves the box there.
    nets.link(SRV, "eth2", "10.79.1.1/24", PHONE, "eth2", "10.79.1.2/24");
    let linked = Instant::now();
    let mut late = browse(&nets, PHONE, "10.79.1.2", &[PLAYLISTA]);
    // (Its socket hears the other links too, so it may first resolve the box elsewhere.)
    let there = late.wait_for(Duration::from_secs(20), |l| {
        let v: Value = serde_json::from_str(l).ok()?;
        (v["event"] == "added" || v["event"] == "updated")
            .then_some(())
            .filter(|_| addresses(&v).contains(&"10.79.1.1"))
    });
    assert!(
        there.is_some(),
        "not announced on the new link; browser: {:?}\nserver:\n{}",
        late.seen,
        server.log()
    );
    eprintln!(
        "resolved on the new link {:.2} s after it came up",
        linked.elapsed().as_secs_f64()
    );
    server.wait_log(&format!("({name}.local.:eth2)"), Duration::from_secs(1));
    drop(late);

    // SIGTERM: the goodbye removes both services at once. The records' TTLs are 120 s and
    // more, so a removal within seconds can only come from the goodbye.
    let stopping = Instant::now();
    server.stop(Duration::from_secs(10));
    for ty in [PLAYLISTA, HTTP] {
        let gone = event(&mut browser, Duration::from_secs(6), "removed", ty, |v| {
            v["name"] == format!("{name}.{ty}")
        });
        assert!(
            gone.is_some(),
            "{ty} not removed after SIGTERM; browser: {:?}\nserver:\n{}",
            browser.seen,
            server.log()
        );
    }
    eprintln!(
        "removed {:.2} s after SIGTERM",
        stopping.elapsed().as_secs_f64()
    );
    server.wait_log("goodbye sent", Duration::from_secs(1));
    let leaks: Vec<_> = server
        .proc
        .seen
        .iter()
        .filter(|l| l.contains("docker0"))
        .collect();
    assert!(leaks.is_empty(), "mDNS used docker0: {leaks:?}");
}

#[test]
fn with_only_loopback_it_warns_and_keeps_serving() {
    if !can_run("with_only_loopback_it_warns_and_keeps_serving") {
        return;
    }
    let nets = Namespaces::new("lo", &["srv"]);
    let mut server = serve(&nets, 0, "playlista");
    server.wait_log("mDNS: no LAN address", Duration::from_secs(10));
    let url = format!("http://127.0.0.1:{}/api/v1/status", server.port);
    let out = nets
        .command(0, "python3", &["-c", FETCH_PY, &url])
        .output()
        .expect("fetch");
    assert!(
        out.status.success(),
        "GET {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status: Value = serde_json::from_slice(&out.stdout).expect("status JSON");
    assert_eq!(status["name"], "playlista");
    server.stop(Duration::from_secs(10));
}

#[test]
fn a_taken_name_is_renamed_and_logged() {
    if !can_run("a_taken_name_is_renamed_and_logged") {
        return;
    }
    const SRV: usize = 0;
    const OTHER: usize = 1;
    let nets = Namespaces::new("dup", &["srv", "other"]);
    nets.link(SRV, "eth0", "10.77.2.1/24", OTHER, "eth0", "10.77.2.2/24");
    let name = "kitchen";
    // Another box already answers as kitchen.local on the LAN.
    let mut first = serve(&nets, OTHER, name);
    first.wait_log("mDNS: announced", Duration::from_secs(10));
    let mut browser = browse(&nets, OTHER, "10.77.2.2", &[PLAYLISTA]);

    let mut second = serve(&nets, SRV, name);
    second.wait_log(
        &format!("{name}.local. is taken on eth0; announcing as {name}-2.local."),
        Duration::from_secs(10),
    );
    let renamed = event(
        &mut browser,
        Duration::from_secs(15),
        "added",
        PLAYLISTA,
        |v| v["port"] == second.port,
    )
    .unwrap_or_else(|| panic!("second box not resolved; browser: {:?}", browser.seen));
    assert_eq!(renamed["server"], format!("{name}-2.local."));
    assert_eq!(renamed["name"], format!("{name} (2).{PLAYLISTA}"));
    assert_eq!(addresses(&renamed), ["10.77.2.1"], "{renamed}");
    assert_eq!(renamed["txt"]["id"], second.id.as_str());
    second.stop(Duration::from_secs(10));
    first.stop(Duration::from_secs(10));
}

#[test]
fn a_bad_name_is_refused_before_anything_starts() {
    // No network at all: the name is checked first.
    let out = Command::new(BIN)
        .args(["serve", "--no-mdns", "--name", "my_box"])
        .output()
        .expect("run playlista");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("invalid name \"my_box\"") && err.contains("1 to 63 letters"),
        "{err}"
    );
}
