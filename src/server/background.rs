//! The service's own analysis: keeps the library analysed and the playlists current while the
//! server runs, at the lowest CPU and I/O priority so that streaming never stutters.
//!
//! In: the config (library folders, workers, methods) and wake-ups: file events (inotify,
//! debounced), a periodic rescan for mounts that send none (NFS, SMB), the stop flag. Out:
//! pipeline runs into the database, playlists regenerated (incrementally) after changes, the
//! server's catalog swapped, and [`Activity`] for `/api/v1/status`, `/metrics`, the page and
//! the status LED ([`Activity::led`]). The board's button asks for runs through [`Rescan`],
//! Subsonic's `startScan` through [`Activity::request_rescan`].
//!
//! Runs on one dedicated thread; the analysis workers are its child processes and inherit its
//! priority. While another analysis run holds the database (a `playlista -a` from cron), a
//! turn is skipped, not waited for: the next wake-up tries again. During a long first analysis the playlists are refreshed every few minutes, so a
//! new box shows something long before it has heard every song. When on-line look-ups are
//! enabled, a second thread (same priority) runs them after each analysis run
//! ([`crate::lookups`]); when they found something, the playlists are made again.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use clap::ValueEnum;
use serde::Serialize;

use super::metrics::gauge;
use super::{AppState, systemd};
use crate::board::{Indicator, State};
use crate::config::Config;
use crate::job;
use crate::pipeline::{self, Batch, Progress, Work};
use crate::playlist::{self, Generated, Method, space::Library};
use crate::report;
use crate::store::{Held, Status, Store, WhenBusy, now_s};

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
/// Least time between two reads of the live counts during a run.
const POLL: Duration = Duration::from_secs(2);
/// How often playlists are refreshed during a long run (and during long look-ups).
const REFRESH: Duration = Duration::from_secs(600);

/// What the background is doing, for the status page, `/metrics` and Subsonic's scan status,
/// and the way to ask it for a run (set when the background starts).
#[derive(Default)]
pub struct Activity {
    running: AtomicBool,
    runs: AtomicU64,
    state: Mutex<ActivityState>,
    rescan: OnceLock<Rescan>,
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

    /// Whether an analysis run is under way.
    pub fn scanning(&self) -> bool {
        self.running.load(Ordering::Relaxed)
    }

    /// Asks the background for a run of what changed (as the button's short press does);
    /// false when this process runs no background analysis (an in-process server).
    pub fn request_rescan(&self) -> bool {
        self.rescan
            .get()
            .map(|r| r.request(Work::Changed))
            .is_some()
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
    let _ = state.activity.rescan.set(Rescan(wake.clone()));
    let thread = std::thread::Builder::new()
        .name("background".into())
        .spawn(move || {
            // The lowest CPU and I/O priority, inherited by the worker processes it starts.
            crate::os::lower_thread_priority();
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

/// One run of the library job: analyse what `work` asks (none: no analysis), then regenerate
/// playlists if anything changed, look-ups found something (`looked`), or none exist.
fn update(
    state: &AppState,
    config: &Config,
    methods: &[Method],
    stop: &AtomicBool,
    work: Option<Work>,
    looked: bool,
) -> Result<()> {
    let activity = &state.activity;
    let settings = job::Settings {
        analyse: work.filter(|_| !config.library.is_empty()),
        // Every track's fast features first (and the playlists from them), then what full
        // mode adds, at this thread's idle priority like all of its work.
        tiers: true,
        retry: false,
        lookups: None,
        failed_list: false,
        playlists: job::Playlists::Keep {
            flags: playlist_flags(config, methods),
            looked,
            none_shown: state.catalog.get().playlists.is_empty(),
        },
        progress: Progress::Log,
        when_busy: WhenBusy::GiveUp,
    };
    let (batches, committed) = mpsc::channel();
    let report = std::thread::scope(|scope| {
        scope.spawn(move || watch_run(state, config, methods, &committed));
        let mut observer = Observer { activity, batches };
        job::run(config, &settings, stop, &mut observer)
    });
    // A run that failed before its end still counts as one.
    if activity.running.swap(false, Ordering::Relaxed) {
        activity.runs.fetch_add(1, Ordering::Relaxed);
    }
    let report = match report {
        Err(e) if e.downcast_ref::<Held>().is_some() => {
            tracing::info!("skipping this turn of the analysis: {e:#}; trying again at the next");
            return Ok(());
        }
        report => report?,
    };
    if stop.load(Ordering::Relaxed) {
        return Ok(());
    }
    if report.playlists {
        state.catalog.reload()?;
    } else {
        state.catalog.refresh_status()?;
    }
    systemd::notify(&format!("STATUS={}", status_line(&state.catalog.status())));
    Ok(())
}

/// The service's view of the job: [`Activity`] for the page, the LED and `/metrics`, and
/// each committed batch passed on to [`watch_run`].
struct Observer<'a> {
    activity: &'a Activity,
    batches: Sender<Batch>,
}

impl job::Observer for Observer<'_> {
    fn phase(&mut self, phase: job::Phase) {
        match phase {
            job::Phase::Analyse(_) => {
                self.activity.running.store(true, Ordering::Relaxed);
                self.activity.led.set(State::Analysing);
                self.activity.update(|s| {
                    s.phase = "scanning and analysing".into();
                    s.started_at = Some(now_s());
                    s.last_error = None;
                });
            }
            job::Phase::Playlists => self
                .activity
                .update(|s| s.phase = "making playlists".into()),
            job::Phase::Retry | job::Phase::Lookups => {}
        }
    }

    fn batch(&mut self, batch: &Batch) {
        let _ = self.batches.send(*batch);
    }

    fn analysed(&mut self, _: job::Phase, report: &pipeline::Report) {
        self.activity.running.store(false, Ordering::Relaxed);
        self.activity.runs.fetch_add(1, Ordering::Relaxed);
        self.activity.update(|s| {
            s.phase = "idle".into();
            s.last_finished_at = Some(now_s());
            s.last_summary = Some(report::report_text(report));
        });
    }

    fn generated(&mut self, _: &Library, flags: &playlist::Flags, g: &Generated) {
        tracing::info!(
            "{} playlist(s) by {} ({})",
            g.playlists.len(),
            flags.method.name(),
            if g.incremental { "updated" } else { "made" }
        );
    }
}

/// One line for systemd's STATUS.
fn status_line(s: &Status) -> String {
    format!(
        "{} tracks, {} analysed, {} failed, {} pending",
        s.tracks, s.analyzed, s.failed, s.pending
    )
}

/// During a run, after committed batches (until the job drops the sender): live counts at
/// most every [`POLL`], and fresh playlists every [`REFRESH`] when more tracks have been
/// analysed since the last ones.
fn watch_run(state: &AppState, config: &Config, methods: &[Method], committed: &Receiver<Batch>) {
    let mut last_refresh = Instant::now();
    let mut analysed_at_refresh = 0;
    let mut last_poll: Option<Instant> = None;
    while let Ok(batch) = committed.recv() {
        if last_poll.is_some_and(|t| t.elapsed() < POLL) {
            continue;
        }
        last_poll = Some(Instant::now());
        if state.catalog.refresh_status().is_err() {
            continue;
        }
        systemd::notify(&format!(
            "STATUS=analysing: {}",
            status_line(&state.catalog.status())
        ));
        if last_refresh.elapsed() >= REFRESH && batch.analyzed > analysed_at_refresh {
            let refreshed = Store::open(&config.db_path(), config.tuning)
                .and_then(|store| {
                    job::keep(
                        &store,
                        &config.output_dir,
                        &playlist_flags(config, methods),
                        &mut job::Quiet,
                    )
                })
                .and_then(|_| state.catalog.reload());
            if let Err(e) = refreshed {
                tracing::warn!("refreshing playlists during the run: {e:#}");
            }
            last_refresh = Instant::now();
            analysed_at_refresh = batch.analyzed;
        }
    }
}

/// The playlist settings of each method the service keeps current: `[playlists]` with the
/// method.
fn playlist_flags(config: &Config, methods: &[Method]) -> Vec<playlist::Flags> {
    methods
        .iter()
        .map(|&method| playlist::Flags {
            method,
            ..config.playlists.clone()
        })
        .collect()
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
    let settings = config.lookup_settings();
    if crate::lookups::enabled(&settings).is_empty() {
        return (go, None);
    }
    let thread = std::thread::Builder::new()
        .name("lookups".into())
        .spawn(move || {
            while go_rx.recv().is_ok() {
                while go_rx.try_recv().is_ok() {}
                while !stop.load(Ordering::Relaxed) {
                    let report = match crate::lookups::run(&settings, &stop, Some(REFRESH)) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rescan_is_asked_only_of_a_running_background() {
        let activity = Activity::default();
        assert!(!activity.request_rescan(), "no background: nothing to ask");
        let (wake, woken) = mpsc::channel();
        let _ = activity.rescan.set(Rescan(wake));
        assert!(activity.request_rescan());
        assert!(matches!(woken.try_recv(), Ok(Wake::Rescan(Work::Changed))));
        assert!(!activity.scanning());
    }
}
