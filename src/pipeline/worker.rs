//! Analysis in a separate process, one per worker, so that nothing one file does can take the
//! run down.
//!
//! In: paths, one at a time. Out: a [`Reply`] per path: the [`Record`] at full precision, or a
//! failure with its [`FailKind`] and reason. The parent side ([`WorkerProcess`]) starts `playlista __worker`, sends
//! one JSON line per file and waits for one JSON line back, at most the file's time limit.
//! A child that aborts (a 4 GiB allocation refused, a stack overflow), is killed by a signal
//! or overruns its time limit is killed and replaced; the file is reported as failed with what
//! happened. The child side ([`serve`]) keeps one [`Analyzer`] for its whole life, so buffers
//! are allocated once per worker, as in a thread pool.
//!
//! The child is this very program, started through `/proc/self/exe`: that link names the
//! running executable even after an upgrade replaced or removed the file at its path, so a
//! running `serve` goes on starting workers that speak its own protocol and measure as it
//! does (a new binary at the old path would answer in another version's words). The child
//! says [`hello`] before anything else; a worker that cannot be started, dies before its
//! hello or greets in other words is [`Unstarted`]: nothing is learnt about the file, which
//! stays pending for the next run.
//!
//! Why processes and not threads: a thread cannot be stopped when a decoder loops, and an
//! allocation failure aborts the whole process; both were seen in fuzzing (see
//! `tests/fuzz_regressions`).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::analysis::{AnalysisError, Analyzer, FailKind, Mode, Part, Scope};
use crate::audio::ffmpeg::HelperUse;
use crate::features::Record;

/// The hidden subcommand that runs [`serve`].
pub const WORKER_COMMAND: &str = "__worker";
/// Environment variables that tell the child its heap cap and its [`Mode`].
pub const MEMORY_ENV: &str = "PLAYLISTA_WORKER_MEMORY";
pub const MODE_ENV: &str = "PLAYLISTA_WORKER_MODE";
/// The running executable, whatever happened to the file at its path since it started.
const THIS_PROGRAM: &str = "/proc/self/exe";
/// How long a new worker has to say [`hello`].
const HELLO_LIMIT: Duration = Duration::from_secs(30);

/// The child's first line: this playlista's version and analysis version. The parent starts
/// no work on a worker that says anything else.
fn hello() -> String {
    format!(
        "playlista worker {} analysis {}",
        env!("CARGO_PKG_VERSION"),
        crate::features::ANALYSIS_VERSION
    )
}

/// A worker that could not be started (the program missing, dead before its [`hello`], or
/// another version of it): the file was not analysed and stays as it was.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot start an analysis worker: {0}")]
pub struct Unstarted(pub String);

#[derive(Debug, Serialize, Deserialize)]
struct Request {
    path: String,
    #[serde(default)]
    scope: Scope,
}

/// What a worker measured in one file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Measured {
    /// A file that is one track.
    Track(Box<Record>),
    /// A single-file album with a CUE sheet: each of its tracks.
    Album(Vec<Part>),
}

/// What a worker answers for one file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reply {
    pub outcome: Result<Measured, Failure>,
    /// CPU time the child spent on this file.
    pub cpu_ms: f64,
    /// The child's peak resident memory so far.
    pub peak_rss_kb: u64,
}

/// Why a file could not be analysed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    pub kind: FailKind,
    pub reason: String,
}

impl Failure {
    fn new(kind: FailKind, reason: impl Into<String>) -> Failure {
        Failure {
            kind,
            reason: reason.into(),
        }
    }
}

/// Limits applied to each worker process.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Address-space-independent data limit (RLIMIT_DATA): heap and anonymous mappings, not
    /// the file mappings. `None`: no limit.
    pub memory_bytes: Option<u64>,
}

/// The child side: answers requests on stdin until it closes. Its heap cap and mode come
/// from [`MEMORY_ENV`] and [`MODE_ENV`].
pub fn serve() -> anyhow::Result<()> {
    die_with_parent();
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{}", hello())?;
        stdout.flush()?;
    }
    if let Some(bytes) = std::env::var(MEMORY_ENV).ok().and_then(|v| v.parse().ok()) {
        // RLIMIT_DATA counts brk and private anonymous mappings, not the read-only file
        // mappings the decoder reads through: a runaway allocation fails in this process.
        crate::os::limit_data(bytes);
    }
    let mode: Mode = match std::env::var(MODE_ENV) {
        Ok(text) => text.parse().map_err(anyhow::Error::msg)?,
        Err(_) => Mode::Fast,
    };
    if mode != Mode::Fast {
        crate::os::keep_freed_memory();
    }
    std::panic::set_hook(Box::new(|_| {})); // panics become the file's error, quietly
    let mut analyzer = Analyzer::with_mode(mode)?;
    let stdin = std::io::stdin().lock();
    let mut stdout = std::io::stdout().lock();
    for line in stdin.lines() {
        let line = line?;
        let request: Request = serde_json::from_str(&line)?;
        let path = Path::new(&request.path);
        let cpu = crate::usage::cpu_s(crate::usage::Clock::Process);
        analyzer.set_scope(request.scope);
        let (outcome, helper) = measure(&mut analyzer, path);
        let own_cpu_s = crate::usage::cpu_s(crate::usage::Clock::Process) - cpu;
        let reply = Reply {
            outcome,
            cpu_ms: (own_cpu_s + helper.cpu_s) * 1e3,
            // The helpers ran beside the worker: their peak adds to its own.
            peak_rss_kb: crate::usage::peak_rss_kb() + helper.peak_rss_kb,
        };
        serde_json::to_writer(&mut stdout, &reply)?;
        stdout.write_all(b"\n")?;
        stdout.flush()?;
    }
    Ok(())
}

/// Measures one file: its tracks when a CUE sheet makes it an album, else the file; with
/// what its ffmpeg helpers used.
fn measure(analyzer: &mut Analyzer, path: &Path) -> (Result<Measured, Failure>, HelperUse) {
    let failure = |e: AnalysisError| Failure::new(e.kind(), e.to_string());
    match crate::analysis::sheet_for(path) {
        Ok(Some(sheet)) => match analyzer.analyze_album(path, &sheet) {
            Ok(a) => (Ok(Measured::Album(a.parts)), a.helper),
            Err(e) => (Err(failure(e)), HelperUse::default()),
        },
        Ok(None) => match analyzer.analyze(path) {
            Ok(a) => (Ok(Measured::Track(Box::new(a.record))), a.helper),
            Err(e) => (Err(failure(e)), HelperUse::default()),
        },
        Err(e) => (Err(failure(e.into())), HelperUse::default()),
    }
}

/// The parent side of one worker process.
pub struct WorkerProcess {
    limits: Limits,
    mode: Mode,
    child: Option<Running>,
}

struct Running {
    child: Child,
    stdin: ChildStdin,
    replies: Receiver<std::io::Result<String>>,
}

impl WorkerProcess {
    pub fn new(limits: Limits, mode: Mode) -> WorkerProcess {
        WorkerProcess {
            limits,
            mode,
            child: None,
        }
    }

    /// Starts a worker from this running program (from its path when `/proc` is not there)
    /// and waits for its hello.
    fn start(&self) -> Result<Running, Unstarted> {
        match self.start_program(Path::new(THIS_PROGRAM)) {
            Err(Started::Spawn(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                let path = std::env::current_exe()
                    .map_err(|e| Unstarted(format!("cannot find this program: {e}")))?;
                self.start_program(&path)
            }
            started => started,
        }
        .map_err(|e| match e {
            Started::Spawn(e) => Unstarted(format!("cannot run this program: {e}")),
            Started::Greeting(what) => Unstarted(what),
        })
    }

    /// Starts `program __worker` and waits for its hello.
    fn start_program(&self, program: &Path) -> Result<Running, Started> {
        let mut running = self.spawn(program).map_err(Started::Spawn)?;
        let greeting = match running.replies.recv_timeout(HELLO_LIMIT) {
            Ok(Ok(line)) if line == hello() => return Ok(running),
            Ok(Ok(line)) => format!(
                "{} answered {:?}, not {:?} (replaced by another version? restart playlista)",
                program.display(),
                line.chars().take(80).collect::<String>(),
                hello()
            ),
            Ok(Err(e)) => format!("{} could not be heard: {e}", program.display()),
            Err(RecvTimeoutError::Timeout) => format!(
                "{} did not answer within {} s",
                program.display(),
                HELLO_LIMIT.as_secs()
            ),
            Err(RecvTimeoutError::Disconnected) => {
                let status = running.child.wait().map(|s| s.to_string());
                format!(
                    "{} ended before it started: {}",
                    program.display(),
                    status.unwrap_or_else(|e| e.to_string())
                )
            }
        };
        let _ = running.child.kill();
        let _ = running.child.wait();
        Err(Started::Greeting(greeting))
    }

    fn spawn(&self, program: &Path) -> std::io::Result<Running> {
        let mut cmd = Command::new(program);
        // `ps` shows `playlista __worker`, not `/proc/self/exe __worker`.
        cmd.arg0("playlista")
            .arg(WORKER_COMMAND)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            // Its own process group: Ctrl-C reaches the parent, which lets the child finish
            // its file instead of dying with it.
            .process_group(0);
        if let Some(bytes) = self.limits.memory_bytes {
            cmd.env(MEMORY_ENV, bytes.to_string());
        }
        cmd.env(MODE_ENV, self.mode.to_string());
        let mut child = cmd.spawn()?;
        let stdin = child.stdin.take().ok_or_else(|| broken("no stdin"))?;
        let stdout = child.stdout.take().ok_or_else(|| broken("no stdout"))?;
        let (tx, replies) = mpsc::channel();
        // A reader thread turns the blocking pipe into a channel that can be waited on with a
        // time limit; it ends when the child's stdout closes.
        std::thread::Builder::new()
            .name("worker-reader".into())
            .spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            })?;
        Ok(Running {
            child,
            stdin,
            replies,
        })
    }

    /// Analyses one file in the worker process (measuring `scope`), within `limit`; starts
    /// the process first if there is none (a failure to start is no verdict on the file:
    /// [`Unstarted`]).
    pub fn analyze(
        &mut self,
        path: &Path,
        scope: Scope,
        limit: Duration,
    ) -> Result<Reply, Unstarted> {
        if self.child.is_none() && path.to_str().is_some() {
            self.child = Some(self.start()?);
        }
        let started = Instant::now();
        Ok(match self.try_analyze(path, scope, limit) {
            Ok(reply) => reply,
            Err(failure) => {
                self.kill();
                Reply {
                    outcome: Err(failure),
                    cpu_ms: started.elapsed().as_secs_f64() * 1e3,
                    peak_rss_kb: 0,
                }
            }
        })
    }

    fn try_analyze(
        &mut self,
        path: &Path,
        scope: Scope,
        limit: Duration,
    ) -> Result<Reply, Failure> {
        let path_text = path
            .to_str()
            .ok_or_else(|| Failure::new(FailKind::Unsupported, "file name is not UTF-8"))?;
        let running = self
            .child
            .as_mut()
            .ok_or_else(|| Failure::new(FailKind::Crash, "no worker"))?;
        let mut line = serde_json::to_string(&Request {
            path: path_text.to_string(),
            scope,
        })
        .map_err(|e| Failure::new(FailKind::Crash, e.to_string()))?;
        line.push('\n');
        if let Err(e) = running.stdin.write_all(line.as_bytes()) {
            return Err(self.death(format!("worker gone before the file was sent: {e}")));
        }
        match running.replies.recv_timeout(limit) {
            Ok(Ok(text)) => serde_json::from_str(&text).map_err(|e| {
                Failure::new(FailKind::Crash, format!("unreadable worker reply: {e}"))
            }),
            Ok(Err(e)) => Err(self.death(format!("worker reply lost: {e}"))),
            Err(RecvTimeoutError::Timeout) => Err(Failure::new(
                FailKind::Timeout,
                format!(
                    "analysis took longer than the {} s limit for this file",
                    limit.as_secs()
                ),
            )),
            Err(RecvTimeoutError::Disconnected) => Err(self.death(String::new())),
        }
    }

    /// Explains a worker that stopped answering: the signal or exit code it died with.
    fn death(&mut self, context: String) -> Failure {
        let status = self.child.as_mut().and_then(|r| {
            // The pipe closed; the exit status follows within moments.
            for _ in 0..100 {
                if let Ok(Some(s)) = r.child.try_wait() {
                    return Some(s);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            None
        });
        use std::os::unix::process::ExitStatusExt;
        let what = match status.and_then(|s| s.signal()) {
            Some(libc::SIGABRT) => {
                "the analysis aborted (a memory request the system or --memory_limit refused, \
                 or a decoder failure)"
                    .to_string()
            }
            Some(libc::SIGKILL) => "the analysis was killed (out of memory?)".to_string(),
            Some(sig) => format!("the analysis crashed with signal {sig}"),
            None => match status.and_then(|s| s.code()) {
                Some(code) => format!("the worker exited with code {code}"),
                None => "the worker stopped answering".to_string(),
            },
        };
        let reason = if context.is_empty() {
            what
        } else {
            format!("{what}; {context}")
        };
        Failure::new(FailKind::Crash, reason)
    }

    fn kill(&mut self) {
        if let Some(mut r) = self.child.take() {
            let _ = r.child.kill();
            let _ = r.child.wait();
        }
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        if let Some(r) = self.child.take() {
            drop(r.stdin); // end of requests: the child exits by itself
            let mut child = r.child;
            let _ = child.wait();
        }
    }
}

/// Why [`WorkerProcess::start_program`] failed: the program could not be run at all, or it
/// did not say [`hello`].
enum Started {
    Spawn(std::io::Error),
    Greeting(String),
}

fn broken(what: &str) -> std::io::Error {
    std::io::Error::other(what.to_string())
}

/// A worker outliving a `kill -9`ed parent would analyse on for nobody.
fn die_with_parent() {
    crate::os::die_with_parent();
    // The parent may already be gone (re-parented to init): then stop now.
    if crate::os::parent_pid() == 1 {
        std::process::exit(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start(program: &str) -> Result<(), String> {
        let process = WorkerProcess::new(Limits { memory_bytes: None }, Mode::Fast);
        match process.start_program(Path::new(program)) {
            Ok(_) => Ok(()),
            Err(Started::Spawn(e)) => Err(format!("spawn: {e}")),
            Err(Started::Greeting(what)) => Err(what),
        }
    }

    #[test]
    fn a_worker_that_does_not_say_hello_is_not_started() {
        // A missing program fails the spawn; under qemu-user (the box's arm64 tests) the
        // emulator starts and exits 127 instead: not started either way.
        let gone = start("/no/such/playlista").unwrap_err();
        assert!(
            gone.starts_with("spawn: ") || gone.contains("ended before it started"),
            "{gone}"
        );
        let quiet = start("/bin/true").unwrap_err();
        assert!(quiet.contains("ended before it started"), "{quiet}");
        // Another program (or version) at the path answers something else.
        let other = start("/bin/echo").unwrap_err();
        assert!(
            other.contains("answered \"__worker\"") && other.contains("another version"),
            "{other}"
        );
    }
}
