//! The service's own analysis: keeps the library analysed and the playlists current while the
//! server runs, at the lowest CPU and I/O priority so that streaming never stutters.
//!
//! In: the config (library folders, workers, methods) and wake-ups: file events (inotify,
//! debounced), a periodic rescan for mounts that send none (NFS, SMB), the stop flag. Out:
//! pipeline runs into the database, playlists regenerated (incrementally) after changes, the
//! server's catalog swapped, and [`Activity`] for `/api/v1/status`, `/metrics`, the page and
//! the status LED ([`Activity::led`]). The board's button asks for runs through [`Rescan`].
//!
//! Runs on one dedicated thread; the analysis workers are its child processes and inherit its
//! priority. During a long first analysis the playlists are refreshed every few minutes, so a
//! new box shows something long before it has heard every song. When on-line look-ups are
//! enabled, a second thread (same priority) runs them after each analysis run
//! ([`crate::lookups`]); when they found something, the playlists are made again.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use clap::ValueEnum;
use serde::Serialize;

use super::metrics::gauge;
use super::{systemd, AppState};
use crate::board::{Indicator, State};
use crate::cli;
use crate::config::Config;
use crate::pipeline::{self, Progress, Work};
use crate::playlist::{self, Method};
use crate::store::{now_s, Status, Store};

/// Methods kept up to date when the config names none.
pub const DEFAULT_METHODS: [Method; 5] = [
    Method::All,
    Method::Time,
    Method::Kmeans,
    Method::Tags,
    Method::Mix,
];
/// Quiet time after the last file event before a run starts (copying an album takes a while).
const DEBOUNCE: Duration = Duration::from_secs(5);
/// A steady stream of events still starts a run after this long.
const DEBOUNCE_CAP: Duration = Duration::from_secs(120);
/// How often the live counts are read during a run.
const POLL: Duration = Duration::from_secs(2);
/// How often playlists are refreshed during a long run (and during long look-ups).
const REFRESH: Duration = Duration::from_secs(600);

/// What the background is doing, for the status page and `/metrics`.
#[derive(Default)]
pub struct Activity {
    running: AtomicBool,
    runs: AtomicU64,
    state: Mutex<ActivityState>,
    /// What the status LED shows: analysing during a run, serving between runs, error after
    /// a failed run (src/board drives the pin).
    pub led: Indicator,
}

#[derive(Default, Clone, Serialize)]
struct ActivityState {
    /// `idle`, `scanning and analysing`, `making playlists`, `stopped`.
    phase: String,
    started_at: Option<i64>,
    last_finished_at: Option<i64>,
    last_summary: Option<String>,
    last_error: Option<String>,
}

impl Activity {
    fn update(&self, f: impl FnOnce(&mut ActivityState)) {
        match self.state.lock() {
            Ok(mut s) => f(&mut s),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }

    fn snapshot(&self) -> ActivityState {
        match self.state.lock() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The JSON of `/api/v1/status`'s `analysis`.
    pub fn view(&self) -> serde_json::Value {
        let s = self.snapshot();
        let mut v = serde_json::to_value(&s).unwrap_or_default();
        v["running"] = self.running.load(Ordering::Relaxed).into();
        v["runs"] = self.runs.load(Ordering::Relaxed).into();
        if s.phase.is_empty() {
            v["phase"] = "starting".into();
        }
        v
    }

    pub fn render(&self, out: &mut String, status: &Status) {
        let running = self.running.load(Ordering::Relaxed);
        gauge(
            out,
            "playlista_analysis_running",
            "1 while the background analysis runs.",
            running as u8 as f64,
        );
        gauge(
            out,
            "playlista_analysis_queue",
            "Files waiting for analysis in the current run.",
            if running { status.pending as f64 } else { 0.0 },
        );
        let _ = writeln!(
            out,
            "# HELP playlista_analysis_runs_total Background runs finished.\n\
             # TYPE playlista_analysis_runs_total counter\n\
             playlista_analysis_runs_total {}",
            self.runs.load(Ordering::Relaxed)
        );
    }
}

enum Wake {
    Changed,
    /// A run now, without debouncing (the board's button).
    Rescan(Work),
    /// Look-ups found genres, years or BPMs: playlists may change.
    Looked,
    Stop,
}

/// Asks the background for a run now: what changed, or (`Work::All`) everything again.
#[derive(Clone)]
pub struct Rescan(Sender<Wake>);

impl Rescan {
    pub fn request(&self, work: Work) {
        let _ = self.0.send(Wake::Rescan(work));
    }
}

/// The running background thread.
pub struct Handle {
    thread: Option<JoinHandle<()>>,
    wake: Sender<Wake>,
}

impl Handle {
    pub fn rescanner(&self) -> Rescan {
        Rescan(self.wake.clone())
    }

    /// Asks the thread to stop (the current batch is committed) and waits for it.
    pub fn stop(mut self) {
        let _ = self.wake.send(Wake::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The playlist methods the service keeps current.
pub fn methods(config: &Config) -> Result<Vec<Method>> {
    let Some(names) = &config.server.methods else {
        return Ok(DEFAULT_METHODS.to_vec());
    };
    names
        .iter()
        .map(|n| match Method::from_str(n, true) {
            Ok(m) if m.partitions() || m == Method::Mix => Ok(m),
            Ok(_) => {
                bail!("[server] methods: {n} needs a seed; the service makes radios on request")
            }
            Err(_) => bail!(
                "[server] methods: unknown method {n:?} (all, time, kmeans, cache, tags, mix)"
            ),
        })
        .collect()
}

/// Starts the background thread (it begins with a run: the library may have changed while
/// the server was down).
pub fn spawn(
    state: AppState,
    config: Config,
    methods: Vec<Method>,
    stop: Arc<AtomicBool>,
) -> Result<Handle> {
    let (wake, wake_rx) = mpsc::channel();
    let events = wake.clone();
    let thread = std::thread::Builder::new()
        .name("background".into())
        .spawn(move || {
            lower_priority();
            // Held for the thread's life: dropping it ends the file events.
            let _watcher = watch(&config.library, events.clone());
            let (go, lookups) = spawn_lookups(&config, stop.clone(), events);
            background(&state, &config, &methods, &stop, &wake_rx, &go);
            drop(go);
            if let Some(t) = lookups {
                let _ = t.join();
            }
            state.activity.update(|s| s.phase = "stopped".into());
        })?;
    Ok(Handle {
        thread: Some(thread),
        wake,
    })
}

fn background(
    state: &AppState,
    config: &Config,
    methods: &[Method],
    stop: &AtomicBool,
    wake: &Receiver<Wake>,
    lookups: &Sender<()>,
) {
    let rescan = Duration::from_secs(60 * config.server.rescan_minutes.unwrap_or(60));
    // What the next run analyses; None when woken by look-ups only (playlists again, no
    // analysis run).
    let mut work = Some(Work::Changed);
    let mut looked = false;
    loop {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        if let Err(e) = update(state, config, methods, stop, work, looked) {
            tracing::error!("background analysis: {e:#}");
            state
                .activity
                .update(|s| s.last_error = Some(format!("{e:#}")));
            state.activity.led.set(State::Error);
        } else {
            state.activity.led.set(State::Serving);
        }
        state.activity.update(|s| s.phase = "idle".into());
        if work.is_some() {
            let _ = lookups.send(());
        }
        (work, looked) = (Some(Work::Changed), false);
        let first = if rescan.is_zero() {
            wake.recv().map_err(|_| RecvTimeoutError::Disconnected)
        } else {
            wake.recv_timeout(rescan)
        };
        match first {
            Ok(Wake::Changed) => match debounce(wake, &mut looked) {
                Some(asked) => work = Some(asked),
                None => return,
            },
            Ok(Wake::Rescan(asked)) => work = Some(asked),
            Ok(Wake::Looked) => (work, looked) = (None, true),
            Ok(Wake::Stop) | Err(RecvTimeoutError::Disconnected) => return,
            Err(RecvTimeoutError::Timeout) => {}
        }
    }
}

/// Waits until the file events have been quiet for [`DEBOUNCE`] (or a button press), and
/// says what to run; None when asked to stop. Look-up news meanwhile sets `looked`.
fn debounce(wake: &Receiver<Wake>, looked: &mut bool) -> Option<Work> {
    let started = Instant::now();
    loop {
        match wake.recv_timeout(DEBOUNCE) {
            Ok(Wake::Looked) => *looked = true,
            Ok(Wake::Changed) if started.elapsed() < DEBOUNCE_CAP => continue,
            Ok(Wake::Changed) | Err(RecvTimeoutError::Timeout) => return Some(Work::Changed),
            Ok(Wake::Rescan(asked)) => return Some(asked),
            Ok(Wake::Stop) | Err(RecvTimeoutError::Disconnected) => return None,
        }
    }
}

/// One run: analyse what `work` asks (none: no analysis), then regenerate playlists if
/// anything changed, look-ups found something (`looked`), or none exist.
fn update(
    state: &AppState,
    config: &Config,
    methods: &[Method],
    stop: &AtomicBool,
    work: Option<Work>,
    looked: bool,
) -> Result<()> {
    let activity = &state.activity;
    let mut changed = looked;
    let work = work.filter(|_| !config.library.is_empty());
    if let Some(work) = work {
        activity.running.store(true, Ordering::Relaxed);
        activity.led.set(State::Analysing);
        activity.update(|s| {
            s.phase = "scanning and analysing".into();
            s.started_at = Some(now_s());
            s.last_error = None;
        });
        let mut opts = cli::pipeline_options(config, work);
        opts.progress = Progress::Log;
        let done = AtomicBool::new(false);
        let report = std::thread::scope(|scope| {
            scope.spawn(|| watch_run(state, config, methods, &done));
            let r = pipeline::run(&opts, stop);
            done.store(true, Ordering::Relaxed);
            r
        });
        activity.running.store(false, Ordering::Relaxed);
        activity.runs.fetch_add(1, Ordering::Relaxed);
        let report = report?;
        let t = &report.totals;
        changed |= t.analyzed + t.failed + t.removed + report.moved > 0;
        activity.update(|s| {
            s.phase = "idle".into();
            s.last_finished_at = Some(now_s());
            s.last_summary = Some(cli::report_text(&report));
        });
    }
    if stop.load(Ordering::Relaxed) {
        return Ok(());
    }
    let store = Store::open(&config.db_path(), config.tuning)?;
    let missing = state.catalog.get().playlists.is_empty() && store.status()?.analyzed > 0;
    if changed || missing {
        activity.update(|s| s.phase = "making playlists".into());
        generate(&store, config, methods)?;
        drop(store);
        state.catalog.reload()?;
    } else {
        state.catalog.refresh_status()?;
    }
    systemd::notify(&format!("STATUS={}", status_line(&state.catalog.status())));
    Ok(())
}

/// One line for systemd's STATUS.
fn status_line(s: &Status) -> String {
    format!(
        "{} tracks, {} analysed, {} failed, {} pending",
        s.tracks, s.analyzed, s.failed, s.pending
    )
}

/// During a run: live counts every [`POLL`], and fresh playlists every [`REFRESH`] when
/// more tracks have been analysed since the last ones.
fn watch_run(state: &AppState, config: &Config, methods: &[Method], done: &AtomicBool) {
    let mut last_refresh = Instant::now();
    let mut analysed_at_refresh = state.catalog.status().analyzed;
    let mut last_poll = Instant::now();
    while !done.load(Ordering::Relaxed) {
        // Short naps: a run that ends at once (nothing changed) must not wait a whole POLL.
        std::thread::sleep(Duration::from_millis(50));
        if last_poll.elapsed() < POLL {
            continue;
        }
        last_poll = Instant::now();
        if state.catalog.refresh_status().is_err() {
            continue;
        }
        let status = state.catalog.status();
        systemd::notify(&format!("STATUS=analysing: {}", status_line(&status)));
        let analysed = status.analyzed;
        if last_refresh.elapsed() >= REFRESH && analysed > analysed_at_refresh {
            let refreshed = Store::open(&config.db_path(), config.tuning)
                .and_then(|store| generate(&store, config, methods))
                .and_then(|_| state.catalog.reload());
            if let Err(e) = refreshed {
                tracing::warn!("refreshing playlists during the run: {e:#}");
            }
            last_refresh = Instant::now();
            analysed_at_refresh = analysed;
        }
    }
}

/// Generates (incrementally) every configured method.
fn generate(store: &Store, config: &Config, methods: &[Method]) -> Result<()> {
    let lib = playlist::load(store)?;
    if lib.is_empty() {
        return Ok(());
    }
    for &method in methods {
        let flags = playlist::Flags {
            method,
            ..playlist::Flags::default()
        };
        let g = playlist::run(store, &lib, &config.output_dir, &flags)?;
        tracing::info!(
            "{} playlist(s) by {} ({})",
            g.playlists.len(),
            method.name(),
            if g.incremental { "updated" } else { "made" }
        );
    }
    Ok(())
}

/// Starts the look-up thread when a service is enabled: after each analysis run (a message on
/// the returned sender) it looks up what is due, in rounds of [`REFRESH`], and wakes the
/// background with [`Wake::Looked`] after a round that found something. It ends when the
/// sender is dropped or `stop` is set.
fn spawn_lookups(
    config: &Config,
    stop: Arc<AtomicBool>,
    wake: Sender<Wake>,
) -> (Sender<()>, Option<JoinHandle<()>>) {
    let (go, go_rx) = mpsc::channel::<()>();
    if crate::lookups::enabled(config).is_empty() {
        return (go, None);
    }
    let config = config.clone();
    let thread = std::thread::Builder::new()
        .name("lookups".into())
        .spawn(move || {
            while go_rx.recv().is_ok() {
                while go_rx.try_recv().is_ok() {}
                while !stop.load(Ordering::Relaxed) {
                    let report = match crate::lookups::run(&config, &stop, Some(REFRESH)) {
                        Ok(Some(r)) => r,
                        Ok(None) => break,
                        Err(e) => {
                            tracing::warn!("look-ups: {e:#}");
                            break;
                        }
                    };
                    if report.asked > 0 {
                        tracing::info!("{}", report.text());
                    }
                    if report.found > 0 {
                        let _ = wake.send(Wake::Looked);
                    }
                    // Another round only while there is work and a service answers.
                    if report.left == 0 || report.asked == 0 {
                        break;
                    }
                }
            }
        });
    match thread {
        Ok(t) => (go, Some(t)),
        Err(e) => {
            tracing::warn!("no look-ups: cannot start their thread: {e}");
            (go, None)
        }
    }
}

/// Watches the library folders; every event wakes the background. None when the kernel
/// refuses (e.g. too many folders for the inotify limit): the periodic rescan still runs.
fn watch(roots: &[PathBuf], wake: Sender<Wake>) -> Option<notify::RecommendedWatcher> {
    use notify::{Event, EventKind, RecursiveMode, Watcher};
    if roots.is_empty() {
        return None;
    }
    let handler = move |event: notify::Result<Event>| {
        if let Ok(e) = event {
            if !matches!(e.kind, EventKind::Access(_)) {
                let _ = wake.send(Wake::Changed);
            }
        }
    };
    let mut watcher = match notify::recommended_watcher(handler) {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!("no file events ({e}); relying on periodic rescans");
            return None;
        }
    };
    for root in roots {
        if let Err(e) = watcher.watch(root, RecursiveMode::Recursive) {
            tracing::warn!(
                "no file events for {} ({e}); relying on periodic rescans",
                root.display()
            );
        }
    }
    Some(watcher)
}

/// The lowest CPU priority and the idle I/O class for this thread and the worker processes
/// it starts (both are inherited on Linux).
fn lower_priority() {
    // SAFETY: plain syscalls on the calling thread; failures only leave the priority as is.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        if libc::setpriority(libc::PRIO_PROCESS, tid, 19) != 0 {
            tracing::debug!("setpriority failed: {}", std::io::Error::last_os_error());
        }
        // ioprio_set(IOPRIO_WHO_PROCESS, tid, IOPRIO_CLASS_IDLE << 13).
        const IOPRIO_WHO_PROCESS: libc::c_long = 1;
        const IOPRIO_CLASS_IDLE: libc::c_long = 3;
        if libc::syscall(
            libc::SYS_ioprio_set,
            IOPRIO_WHO_PROCESS,
            tid as libc::c_long,
            IOPRIO_CLASS_IDLE << 13,
        ) != 0
        {
            tracing::debug!("ioprio_set failed: {}", std::io::Error::last_os_error());
        }
    }
}
