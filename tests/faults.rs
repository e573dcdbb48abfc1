//! Faults met by real runs of the real binary, on real SQLite files: two analysis runs at
//! once on one database (the lock: the second waits, `--no-wait` exits 75 naming the holder),
//! a write the database refuses and a disk that fills (the run stops within a batch, keeps
//! what it committed, says why and where), a disk full from the start, and a running `serve`
//! (its background skips a turn while another run holds the database, and new files are still
//! analysed after the binary was replaced under it).
//!
//! The disk tests mount a small tmpfs in a mount namespace of their own (root, `unshare`,
//! `nsenter`); without those they skip, and under `CI=true` they fail. The runs use fast mode
//! and one worker: what is tested is the pipeline around the analysis.

mod support;

use std::io::{BufRead, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::LazyLock;
use std::time::Duration;

use playlista::synth::{self, SongSpec, WavFormat};
use rusqlite::Connection;
use support::{BIN, Process, can_run, eventually};

/// Results per batch in the fault tests: small, so that "within one batch" is sharp.
const BATCH: usize = 2;

/// Writes songs `first..first + n` of `seconds` each into `music/`.
fn add_songs(music: &Path, first: usize, n: usize, seconds: f64) {
    std::fs::create_dir_all(music).expect("music folder");
    for i in first..first + n {
        let spec = SongSpec {
            bpm: 70.0 + 2.5 * i as f64,
            tonic: (i % 12) as u8,
            minor: i % 3 == 0,
            seconds,
        };
        synth::write_song(
            &music.join(format!("{i:02} song.wav")),
            &spec,
            22_050,
            1,
            WavFormat::Pcm16,
        )
        .expect("write a song");
    }
}

/// The library the fault tests only read: 24 songs, built once per test binary.
fn shared_library() -> &'static Path {
    static LIBRARY: LazyLock<PathBuf> = LazyLock::new(|| {
        let music = Path::new(env!("CARGO_TARGET_TMPDIR")).join("faults-library");
        let _ = std::fs::remove_dir_all(&music);
        add_songs(&music, 0, 24, 20.0);
        music
    });
    &LIBRARY
}

/// `cmd` (the binary, or `nsenter ... BIN`) with `ARGS --library LIB --cache_dir STATE
/// --output_dir STATE/playlists --fast_mode --workers 1`.
fn playlista(mut cmd: Command, lib: &Path, state: &Path, args: &[&str]) -> Command {
    cmd.args(args)
        .arg("--library")
        .arg(lib)
        .arg("--cache_dir")
        .arg(state)
        .arg("--output_dir")
        .arg(state.join("playlists"))
        .args(["--fast_mode", "--workers", "1"]);
    cmd
}

/// [`playlista`] run by the binary itself.
fn run(lib: &Path, state: &Path, args: &[&str]) -> Command {
    playlista(Command::new(BIN), lib, state, args)
}

fn query(db: &Path, sql: &str) -> i64 {
    let conn = Connection::open(db).expect("open the database");
    conn.query_row(sql, [], |r| r.get::<_, Option<i64>>(0))
        .expect(sql)
        .unwrap_or(0)
}

fn integrity(db: &Path) -> String {
    let conn = Connection::open(db).expect("open the database");
    conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity_check")
}

/// Files a run's workers finished (its `--log_level debug` lines).
fn finished(log: &[String]) -> usize {
    log.iter().filter(|l| l.contains("worker finished")).count()
}

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn two_runs_at_once_analyse_each_file_once_and_no_wait_names_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let music = dir.path().join("music");
    add_songs(&music, 0, 6, 10.0);
    let state = dir.path().join("state");
    let db = state.join("playlista.db");

    // Two runs started together on a database that does not exist yet.
    let both: Vec<Child> = (0..2)
        .map(|_| {
            run(&music, &state, &["-a"])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in both {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr_of(&out));
    }
    assert_eq!(
        query(&db, "SELECT count(*) FROM tracks WHERE status = 'analyzed'"),
        6
    );
    assert_eq!(
        query(&db, "SELECT sum(attempts) FROM tracks"),
        6,
        "analysed once each"
    );
    assert_eq!(query(&db, "SELECT sum(analyzed) FROM runs"), 6);
    assert_eq!(query(&db, "SELECT count(*) FROM runs"), 2);

    // A run that holds the lock while it waits for the database (a write transaction held
    // here), new songs for it, and two more runs: one waits, one does not.
    add_songs(&music, 6, 2, 10.0);
    let conn = Connection::open(&db).unwrap();
    conn.execute_batch("BEGIN IMMEDIATE").unwrap();
    let mut holder = Process::spawn(run(&music, &state, &["-a"]), false);
    let pid = holder.pid();
    let lock_file = state.join("playlista.db.lock");
    eventually(Duration::from_secs(10), "the first run's lock", || {
        let text = std::fs::read_to_string(&lock_file).ok()?;
        (text.split_whitespace().next() == Some(&pid.to_string())).then_some(())
    });
    let mut waiter = Process::spawn(run(&music, &state, &["-a"]), false);
    let told = format!("waiting for the analysis run of pid {pid} (started at ");
    waiter.wait_for_log(&told, Duration::from_secs(10));
    let out = run(&music, &state, &["-a", "--no-wait"]).output().unwrap();
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(75), "{err}");
    assert!(
        err.contains(&format!("the analysis run of pid {pid} (started at "))
            && err.contains("not waiting (--no-wait)"),
        "{err}"
    );
    conn.execute_batch("COMMIT").unwrap();

    for p in [&mut holder, &mut waiter] {
        let status = p.wait_exit(Duration::from_secs(60)).expect("the run ends");
        p.drain(Duration::from_millis(200));
        assert!(status.success(), "{:#?}", p.seen);
    }
    assert!(
        waiter.seen.iter().any(|l| l.contains("done: 0 analysed")),
        "the second run found nothing to do: {:#?}",
        waiter.seen
    );
    assert_eq!(
        query(&db, "SELECT sum(attempts) FROM tracks"),
        8,
        "analysed once each"
    );
    assert_eq!(query(&db, "SELECT sum(analyzed) FROM runs"), 8);
    assert_eq!(integrity(&db), "ok");
}

#[test]
fn a_write_the_database_refuses_stops_the_run_within_a_batch() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let db = state.join("playlista.db");
    let lib = shared_library();
    // The schema, then a trigger that refuses every analysis after the first batch's.
    let out = Command::new(BIN)
        .args(["--status", "--cache_dir"])
        .arg(&state)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    Connection::open(&db)
        .unwrap()
        .execute_batch(&format!(
            "CREATE TRIGGER simulated_fault BEFORE INSERT ON features
             WHEN (SELECT count(*) FROM features) >= {BATCH}
             BEGIN SELECT RAISE(ABORT, 'simulated'); END;"
        ))
        .unwrap();

    let batch = BATCH.to_string();
    let args = ["-a", "--batch_size", &batch, "--log_level", "debug"];
    let out = run(lib, &state, &args).output().unwrap();
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    let cause = format!(
        "the database refused the change under {} (database {}): simulated",
        state.display(),
        db.display()
    );
    assert!(err.contains(&cause), "{err}");
    let log: Vec<String> = err.lines().map(str::to_string).collect();
    assert_stopped_within_a_batch(&log, &db, 24);
}

/// After a run stopped by a failed write: the first batch is kept, the database is sound, and
/// the workers finished at most the failed batch and the file in hand after the kept ones.
fn assert_stopped_within_a_batch(log: &[String], db: &Path, files: usize) {
    assert_eq!(integrity(db), "ok");
    let kept = query(db, "SELECT count(*) FROM tracks WHERE status = 'analyzed'") as usize;
    assert!(kept >= BATCH, "the first batch is kept: {kept}");
    let done = finished(log);
    // The failed batch, the worker's file in hand, and one it may finish while the writer
    // fails.
    assert!(
        done <= kept + BATCH + 2 && done < files,
        "{done} files analysed, {kept} kept, of {files}: the run went on after the failure"
    );
}

#[test]
fn crashes_are_tried_again_by_later_runs_when_due() {
    let dir = tempfile::tempdir().unwrap();
    let music = dir.path().join("music");
    add_songs(&music, 0, 2, 5.0);
    let state = dir.path().join("state");
    let db = state.join("playlista.db");
    // A heap cap no worker can live with: every file fails as a crash.
    let out = run(&music, &state, &["-a", "--memory_limit", "2MB"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let crashed = "SELECT count(*) FROM tracks WHERE fail_kind = 'crash' AND attempts = 1";
    assert_eq!(query(&db, crashed), 2);

    // Not due within the hour; due once an hour has passed (the clock moved back here).
    let out = run(&music, &state, &["-a"]).output().unwrap();
    assert!(
        stderr_of(&out).contains("done: 0 analysed, 0 failed, 2 unchanged"),
        "{}",
        stderr_of(&out)
    );
    let first = music.join("00 song.wav");
    Connection::open(&db)
        .unwrap()
        .execute(
            "UPDATE tracks SET last_attempt = last_attempt - 3600 WHERE path = ?1",
            [first.to_str().unwrap()],
        )
        .unwrap();
    let out = run(&music, &state, &["-a"]).output().unwrap();
    let err = stderr_of(&out);
    assert!(
        err.contains("done: 1 analysed, 0 failed, 1 unchanged"),
        "{err}"
    );
    assert_eq!(
        query(
            &db,
            "SELECT count(*) FROM tracks WHERE status = 'analyzed' AND attempts = 2"
        ),
        1
    );
    assert_eq!(query(&db, crashed), 1, "the other one waits for its hour");
}

/// A tmpfs of `size` mounted on `dir` in a mount namespace held by a process of its own; gone
/// (with everything in it) when dropped. Runs go in with `nsenter`; the test reaches the
/// files through `/proc/PID/root`.
struct Tmpfs {
    holder: Child,
    dir: PathBuf,
}

impl Tmpfs {
    /// None (the test skips, printing why) when this machine cannot mount one.
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            can_run("tmpfs tests", Some("mounting a tmpfs needs root".into()));
            return None;
        }
        std::fs::create_dir_all(dir).unwrap();
        let spawned = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg(r#"mount -t tmpfs -o "size=$1" tmpfs "$2" && echo mounted && read _"#)
            .args(["sh", size])
            .arg(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let mut holder = match spawned {
            Ok(child) => child,
            Err(e) => {
                can_run("tmpfs tests", Some(format!("cannot run unshare: {e}")));
                return None;
            }
        };
        let mut line = String::new();
        let stdout = holder.stdout.take().expect("stdout");
        let _ = BufReader::new(stdout).read_line(&mut line);
        if line.trim() != "mounted" {
            let _ = holder.kill();
            let out = holder.wait_with_output().expect("unshare's output");
            can_run(
                "tmpfs tests",
                Some(format!("cannot mount a tmpfs: {}", stderr_of(&out).trim())),
            );
            return None;
        }
        Some(Tmpfs {
            holder,
            dir: dir.to_path_buf(),
        })
    }

    /// `path` (under the mount) as this process reaches it.
    fn inside(&self, path: &Path) -> PathBuf {
        let relative = path.strip_prefix("/").expect("an absolute path");
        Path::new(&format!("/proc/{}/root", self.holder.id())).join(relative)
    }

    /// A command run in the namespace: `nsenter` execs playlista there (same pid).
    fn nsenter(&self) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--mount=/proc/{}/ns/mnt", self.holder.id()))
            .arg("--")
            .arg(BIN);
        cmd
    }

    /// Fills the tmpfs to the last byte.
    fn fill(&self) {
        let mut file = std::fs::File::create(self.inside(&self.dir.join("fill"))).unwrap();
        for size in [64 << 10, 4 << 10] {
            let block = vec![0u8; size];
            while file.write_all(&block).is_ok() {}
        }
    }

    fn empty(&self) {
        std::fs::remove_file(self.inside(&self.dir.join("fill"))).unwrap();
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Its stdin closes: `read` returns, the last process of the namespace ends, the
        // tmpfs goes with it.
        drop(self.holder.stdin.take());
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

#[test]
fn a_disk_that_fills_stops_the_run_within_a_batch_and_a_full_disk_at_start_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let Some(disk) = Tmpfs::mount(&state, "1m") else {
        return;
    };
    let lib = shared_library();
    let db = state.join("playlista.db");
    let full = format!(
        "no space left on device under {} (database {})",
        state.display(),
        db.display()
    );

    // The disk fills after the first batch: the run is frozen meanwhile (SIGSTOP), so the
    // fill lands while it has most of the library ahead.
    let batch = BATCH.to_string();
    let args = ["-a", "--batch_size", &batch, "--log_level", "debug"];
    let mut running = Process::spawn(playlista(disk.nsenter(), lib, &state, &args), false);
    running.wait_for_log("PERF batch ", Duration::from_secs(30));
    let pid = running.pid() as libc::pid_t;
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    disk.fill();
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(pid, libc::SIGCONT) };
    let status = running
        .wait_exit(Duration::from_secs(60))
        .expect("the run stops");
    running.drain(Duration::from_millis(200));
    assert_eq!(status.code(), Some(2), "{:#?}", running.seen);
    assert!(
        running.seen.iter().any(|l| l.contains(&full)),
        "no {full:?} in {:#?}",
        running.seen
    );
    // The database as the disk holds it, copied out of the namespace.
    let copy = dir.path().join("copy");
    std::fs::create_dir(&copy).unwrap();
    for name in ["playlista.db", "playlista.db-wal"] {
        let from = disk.inside(&state.join(name));
        if from.exists() {
            std::fs::copy(&from, copy.join(name)).unwrap();
        }
    }
    assert_stopped_within_a_batch(&running.seen, &copy.join("playlista.db"), 24);

    // Full at start, the database closed cleanly before (no shared-memory file yet: SQLite
    // meets the full disk mapping it), and a new database on the full disk.
    disk.empty();
    let out = disk
        .nsenter()
        .args(["--status", "--cache_dir"])
        .arg(&state)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    disk.fill();
    let out = playlista(disk.nsenter(), lib, &state, &["-a"])
        .output()
        .unwrap();
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(&full), "{err}");

    let fresh = state.join("fresh");
    let out = playlista(disk.nsenter(), lib, &fresh, &["-a"])
        .output()
        .unwrap();
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "no space left on device under {} (database {})",
            fresh.display(),
            fresh.join("playlista.db").display()
        )),
        "{err}"
    );
}

#[test]
fn serve_skips_a_turn_while_another_run_analyses_and_a_replaced_binary_still_analyses() {
    let dir = tempfile::tempdir().unwrap();
    let music = dir.path().join("music");
    add_songs(&music, 0, 1, 8.0);
    let state = dir.path().join("state");
    let db = state.join("playlista.db");
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let installed = bin.join("playlista");
    std::fs::copy(BIN, &installed).unwrap();
    // A Subsonic account, for startScan: a turn of the background at once, no debouncing.
    let config = dir.path().join("config.toml");
    std::fs::write(&config, "[subsonic]\nuser = \"u\"\npassword = \"p\"\n").unwrap();

    let mut command = Command::new(&installed);
    command
        .args(["serve", "--no-mdns", "--bind", "127.0.0.1:0", "--fast_mode"])
        .arg("--config")
        .arg(&config)
        .arg("--library")
        .arg(&music)
        .arg("--cache_dir")
        .arg(&state)
        .arg("--output_dir")
        .arg(dir.path().join("playlists"));
    let mut server = Process::serve(command);
    let status_of = |name: &str| -> Option<(String, String)> {
        let conn = Connection::open(&db).ok()?;
        conn.query_row(
            "SELECT status, coalesce(fail_reason, '') FROM tracks WHERE path = ?1",
            [music.join(name).to_str()?],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .ok()
    };
    let analysed = |name: &str| {
        eventually(Duration::from_secs(60), name, || match status_of(name) {
            Some((status, why)) if status == "failed" => panic!("{name} failed: {why}"),
            Some((status, _)) if status == "analyzed" => Some(()),
            _ => None,
        })
    };
    let rescan = |server: &Process| {
        let r = server.get("/rest/startScan?u=u&p=p&f=json");
        assert_eq!(r.status, 200, "{}", r.text());
    };
    analysed("00 song.wav");

    // Another analysis run (this test, holding the lock as a run does) has the database: the
    // background's turn is skipped and says whose run it waits for.
    let lock = std::fs::File::options()
        .read(true)
        .write(true)
        .open(state.join("playlista.db.lock"))
        .unwrap();
    // Taken once the background's own turn (its playlists after the first run) is over.
    eventually(Duration::from_secs(30), "the lock between turns", || {
        use std::os::fd::AsRawFd;
        // SAFETY: flock on a descriptor this test owns.
        let locked = unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        (locked == 0).then_some(())
    });
    let me = std::process::id();
    let record = format!("{me} {}", playlista::store::now_s());
    std::os::unix::fs::FileExt::write_all_at(&lock, format!("{record:63}\n").as_bytes(), 0)
        .unwrap();
    rescan(&server);
    server.wait_for_log(
        &format!("skipping this turn of the analysis: the analysis run of pid {me} (started at "),
        Duration::from_secs(30),
    );
    drop(lock);

    // An upgrade: a new file at the path, the old one deleted under the running process.
    let new = bin.join("playlista.new");
    std::fs::copy(BIN, &new).unwrap();
    std::fs::rename(&new, &installed).unwrap();
    let exe = std::fs::read_link(format!("/proc/{}/exe", server.pid())).unwrap();
    assert!(
        exe.to_string_lossy().ends_with(" (deleted)"),
        "the running binary was not replaced: {}",
        exe.display()
    );
    add_songs(&music, 1, 1, 8.0);
    rescan(&server);
    analysed("01 song.wav");
    assert_eq!(
        query(
            &db,
            "SELECT count(*) FROM tracks WHERE status != 'analyzed'"
        ),
        0
    );
    assert_eq!(query(&db, "SELECT sum(attempts) FROM tracks"), 2);
}
