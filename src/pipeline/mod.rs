//! The whole-library run: scanner → bounded queue → worker processes → one batch writer.
//!
//! In: [`Options`] (library roots, database, workers, batch size, limits), a stop flag
//! (Ctrl-C) and a callback for each committed batch. Out: the database brought up to date with
//! the library, a [`Batch`] after each commit, and a [`Report`].
//!
//! - The scanner ([`scan`]) walks the library, asks the store what it knows of each file and
//!   decides: unchanged (kept), moved or copied (the analysis follows the content
//!   fingerprint), or work. Work goes into a bounded queue: when workers fall behind, the
//!   scanner waits (back-pressure), so memory does not grow with the library.
//! - Workers are threads, each driving one analysis process ([`worker`]): a file that panics,
//!   aborts, crashes or overruns its time limit costs only itself.
//! - The writer (the calling thread) is the only database writer. It applies everything in
//!   batches of `batch_size` results, one transaction each (and at least every few seconds),
//!   so `kill -9` loses at most one batch, and a re-run redoes nothing that was committed.
//! - Stop (Ctrl-C): the scanner stops, workers finish the file in hand, the writer commits
//!   what arrived and the run is recorded as interrupted.
//! - A batch that cannot be written (a full disk, an I/O error, a read-only or damaged
//!   database, a trigger that refuses) stops the run at once: the scanner and the workers
//!   stop (a worker finishes the file in hand), the batches committed before stay, and the
//!   error says what happened and where ([`crate::store::explain`]).
//! - A worker that cannot be started ([`worker::Unstarted`]) stops that worker; the files it
//!   would have taken stay pending, and the run ends with an error that says so.
//! - A file that failed by a crash or a timeout is tried again by later runs, spaced out
//!   ([`retry`]).

mod retry;
pub mod worker;

use std::collections::HashSet;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::analysis::{Mode, Scope};
use crate::features::ANALYSIS_VERSION;
use crate::library::{self, FileEntry, Walker};
use crate::store::{RunTotals, Store, TrackStatus, Tuning, now_s, path_text};
use worker::{Limits, Measured, Reply, WorkerProcess};

/// Which files a run works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    /// New and changed files, files left pending by an interrupted run, and files analysed
    /// by an older analysis version.
    Changed,
    /// Every file, whatever is stored.
    All,
    /// Only files that failed before, fewer than `max_attempts` times.
    Failed,
}

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// A progress bar on the terminal.
    Bar,
    /// A `PERF` log line per batch.
    Log,
    Quiet,
}

impl Progress {
    /// A bar when stderr is a terminal, log lines otherwise.
    pub fn auto() -> Progress {
        if std::io::stderr().is_terminal() {
            Progress::Bar
        } else {
            Progress::Log
        }
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    pub roots: Vec<PathBuf>,
    pub db: PathBuf,
    pub work: Work,
    pub workers: usize,
    pub batch_size: usize,
    /// Files waiting for a worker, at most.
    pub queue_depth: usize,
    /// Fast (the original's fast set) or full (timbre and the embedding too).
    pub mode: Mode,
    pub max_attempts: u32,
    /// Time limit for one file up to `large_file_bytes`; larger files get proportionally more,
    /// and each retry doubles it.
    pub file_timeout: Duration,
    pub large_file_bytes: u64,
    pub limits: Limits,
    pub tuning: Tuning,
    pub progress: Progress,
}

impl Options {
    /// The time limit for one file.
    fn limit_for(&self, job: &Job) -> Duration {
        let size_factor = (job.entry.size as f64 / self.large_file_bytes.max(1) as f64).max(1.0);
        let retry_factor = 2f64.powi(job.attempts.min(6) as i32);
        self.file_timeout.mul_f64(size_factor * retry_factor)
    }
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub totals: RunTotals,
    /// Files found that needed analysis.
    pub queued: u64,
    /// Files whose analysis followed them to a new path, or was shared with a copy.
    pub moved: u64,
    /// Folders or links the walk could not read.
    pub walk_issues: u64,
    pub wall_s: f64,
    pub interrupted: bool,
}

/// What a run has committed so far, after each batch (for the caller's live progress).
#[derive(Debug, Clone, Copy, Default)]
pub struct Batch {
    /// Files analysed in this run so far.
    pub analyzed: u64,
    /// Files that failed in this run so far.
    pub failed: u64,
    /// Files queued for analysis so far (the scanner may still be finding more).
    pub queued: u64,
    /// The scanner has finished: `queued` is the run's total.
    pub scan_done: bool,
}

/// One file for a worker.
#[derive(Debug, Clone)]
struct Job {
    entry: FileEntry,
    /// Everything, or only what full mode adds to a fast row ([`Scope::FullAdds`]).
    scope: Scope,
    fingerprint: Option<i64>,
    /// Earlier attempts (retries get more time).
    attempts: u32,
    /// The CUE sheet beside the file at the scan (its path and modification time): stored
    /// with the album's rows, so that editing the sheet brings the album back.
    sheet: Option<Sheet>,
}

/// A sheet's path and modification time, as [`Known::sheet`] holds them.
type Sheet = (String, Option<i64>);

/// The CUE sheet beside `file`, if one names it.
fn sheet_beside(file: &Path) -> Option<Sheet> {
    let sheet = crate::cue::sheet_beside(file)?;
    let mtime = std::fs::metadata(&sheet)
        .ok()
        .map(|md| library::mtime_ns(&md));
    Some((path_text(&sheet).ok()?.to_string(), mtime))
}

/// Everything that reaches the writer.
enum Note {
    Pending(FileEntry, Option<i64>),
    /// The track's file moved, or its device and inode changed: the row takes the new facts.
    Moved(i64, FileEntry),
    Copied(i64, FileEntry, i64),
    Removed(i64),
    Done(Box<(Job, Reply)>),
    /// A worker could not be started (why); it took no more work.
    Unstarted(String),
}

/// Why the scanner and the workers stop early: the caller's stop flag (Ctrl-C, a service
/// stop), or a batch the writer could not write.
struct Halt<'a> {
    asked: &'a AtomicBool,
    write_failed: AtomicBool,
}

impl Halt<'_> {
    fn now(&self) -> bool {
        self.asked.load(Ordering::Relaxed) || self.write_failed.load(Ordering::Relaxed)
    }
}

/// Longest time a received change waits before it is committed.
const FLUSH_EVERY: Duration = Duration::from_secs(5);

/// Runs the pipeline to completion or until `stop` is set; `on_batch` hears of each committed
/// batch, on the calling thread (the writer: keep it short). An error from the database names
/// its cause and folder.
pub fn run(opts: &Options, stop: &AtomicBool, on_batch: &mut dyn FnMut(&Batch)) -> Result<Report> {
    run_writer(opts, stop, on_batch).map_err(|e| crate::store::explain(e, &opts.db))
}

fn run_writer(
    opts: &Options,
    stop: &AtomicBool,
    on_batch: &mut dyn FnMut(&Batch),
) -> Result<Report> {
    let started = Instant::now();
    let mut store = Store::open(&opts.db, opts.tuning)?;
    let run_id = store.start_run(&run_label(opts), opts.workers as u32)?;

    let (job_tx, job_rx) = mpsc::sync_channel::<Job>(opts.queue_depth.max(1));
    let (note_tx, note_rx) = mpsc::channel::<Note>();
    let counters = Arc::new(Counters::default());
    let job_rx = Arc::new(Mutex::new(job_rx));
    let halt = Halt {
        asked: stop,
        write_failed: AtomicBool::new(false),
    };

    let (mut report, unstarted) = std::thread::scope(|s| -> Result<(Report, Option<String>)> {
        let halt = &halt;
        let scanner = {
            let note_tx = note_tx.clone();
            let counters = counters.clone();
            s.spawn(move || scan(opts, halt, job_tx, note_tx, &counters))
        };
        for i in 0..opts.workers.max(1) {
            let job_rx = job_rx.clone();
            let note_tx = note_tx.clone();
            std::thread::Builder::new()
                .name(format!("worker-{i}"))
                .spawn_scoped(s, move || work(opts, halt, &job_rx, &note_tx))?;
        }
        // Only workers may hold the queue's receiving end: when they have all stopped, a
        // scanner blocked on a full queue gets an error instead of waiting forever.
        drop(job_rx);
        drop(note_tx);
        // The writer owns the notes' receiving end: when it fails, the workers' next result
        // finds nobody to take it, and they stop with the scanner.
        let written = write(&mut store, opts, note_rx, &counters, started, on_batch);
        if written.is_err() {
            halt.write_failed.store(true, Ordering::Relaxed);
        }
        let scanned = scanner
            .join()
            .map_err(|_| anyhow::anyhow!("the library scanner crashed"))?;
        let (totals, unstarted) = written?;
        let (walk_issues, moved) = scanned?;
        let report = Report {
            totals,
            queued: counters.queued.load(Ordering::Relaxed),
            moved,
            walk_issues,
            ..Report::default()
        };
        Ok((report, unstarted))
    })?;

    report.wall_s = started.elapsed().as_secs_f64();
    report.interrupted = stop.load(Ordering::Relaxed);
    report.totals.peak_rss_kb += crate::usage::peak_rss_kb();
    let batch = store.batch()?;
    batch.finish_run(run_id, &report.totals, report.wall_s, report.interrupted)?;
    batch.commit()?;
    if let Some(why) = unstarted {
        let done = report.totals.analyzed + report.totals.failed;
        anyhow::bail!(
            "{why}; {} file(s) were not analysed and stay pending for the next run",
            report.queued.saturating_sub(done)
        );
    }
    Ok(report)
}

fn run_label(opts: &Options) -> String {
    let work = match opts.work {
        Work::Changed => "update",
        Work::All => "force",
        Work::Failed => "failed",
    };
    format!("{work} {}", opts.mode.name())
}

#[derive(Default)]
struct Counters {
    queued: AtomicU64,
    kept: AtomicU64,
    scan_done: AtomicBool,
}

/// The scanner: walks the library (or, for [`Work::Failed`], the failed tracks), queues work,
/// tells the writer about moves, copies and removals. Returns `(walk issues, moved)`.
fn scan(
    opts: &Options,
    halt: &Halt,
    jobs: SyncSender<Job>,
    notes: Sender<Note>,
    counters: &Counters,
) -> Result<(u64, u64)> {
    let result = scan_inner(opts, halt, &jobs, &notes, counters);
    counters.scan_done.store(true, Ordering::Relaxed);
    result
}

fn scan_inner(
    opts: &Options,
    halt: &Halt,
    jobs: &SyncSender<Job>,
    notes: &Sender<Note>,
    counters: &Counters,
) -> Result<(u64, u64)> {
    let store = Store::open_read(&opts.db, opts.tuning)?;
    let queue = |job: Job| {
        counters.queued.fetch_add(1, Ordering::Relaxed);
        // Blocks while the queue is full: back-pressure. An error means the workers are gone
        // (stopping): nothing more to do.
        jobs.send(job).is_ok()
    };

    if opts.work == Work::Failed {
        let mut queued = HashSet::new();
        for (path, attempts) in store.retryable(opts.max_attempts)? {
            if halt.now() {
                break;
            }
            // A failed track of an album: its file is analysed again.
            let file = library::split_part(&path).map_or(path.as_str(), |(file, _)| file);
            if !queued.insert(file.to_string()) {
                continue;
            }
            let Ok(entry) = library::entry(Path::new(file)) else {
                continue; // gone: the next full scan removes it
            };
            let job = Job {
                sheet: sheet_beside(&entry.path),
                scope: Scope::Everything,
                entry,
                fingerprint: None,
                attempts,
            };
            if !queue(job) {
                break;
            }
        }
        return Ok((0, 0));
    }

    // Tracks stored before this run; ones the writer adds meanwhile are never pruned.
    let last_known_id = store.last_track_id()?;
    let now = now_s();
    let mut seen: HashSet<i64> = HashSet::new();
    let mut followed: HashSet<i64> = HashSet::new();
    let mut walk_issues = 0u64;
    let mut found_per_root = vec![0u64; opts.roots.len()];
    for (root_index, root) in opts.roots.iter().enumerate() {
        for item in Walker::new(std::slice::from_ref(root)) {
            if halt.now() {
                return Ok((walk_issues, followed.len() as u64));
            }
            let entry = match item {
                Ok(entry) => entry,
                Err(issue) => {
                    walk_issues += 1;
                    tracing::warn!("skipped {}: {}", issue.path.display(), issue.reason);
                    continue;
                }
            };
            found_per_root[root_index] += 1;
            let Ok(path) = path_text(&entry.path) else {
                walk_issues += 1;
                tracing::warn!("skipped {}: file name is not UTF-8", entry.path.display());
                continue;
            };
            let known = store.lookup(path)?;
            let sheet = entry
                .sheet_nearby
                .then(|| sheet_beside(&entry.path))
                .flatten();
            if let Some(k) = &known {
                seen.insert(k.id);
                seen.extend(k.parts.iter().map(|(id, _)| *id));
                // A sheet added, edited or removed beside the file (one inside it changes
                // with the file).
                let sheet_changed = match (&sheet, &k.sheet) {
                    (Some(now), Some(then)) => now != then,
                    (Some(_), None) => true,
                    (None, Some((then, _))) => !then.is_empty(),
                    (None, None) => false,
                };
                let unchanged =
                    k.size == entry.size && k.mtime_ns == entry.mtime_ns && !sheet_changed;
                let current = k
                    .analysis
                    .as_ref()
                    .is_some_and(|(version, _)| *version >= ANALYSIS_VERSION);
                // A fast row in a full run gets what full mode adds, not its fast features
                // again (unless that failed, until a retry is due).
                let adds = opts.mode != Mode::Fast
                    && k.analysis.as_ref().is_some_and(|(_, mode)| mode != "full");
                let wanted = match k.status {
                    _ if !unchanged || opts.work == Work::All => Some(Scope::Everything),
                    TrackStatus::Analyzed if !current => Some(Scope::Everything),
                    TrackStatus::Analyzed if adds => match store.adds_failure(k.id)? {
                        Some((kind, last_attempt))
                            if !retry::due(kind, k.attempts, last_attempt, now) =>
                        {
                            None
                        }
                        _ => Some(Scope::FullAdds),
                    },
                    TrackStatus::Analyzed => None,
                    TrackStatus::Pending => Some(Scope::Everything),
                    // Unchanged: `--failed` retries it, and a crash or a timeout is tried
                    // again by itself when due.
                    TrackStatus::Failed => {
                        let (kind, last_attempt) = store.last_failure(k.id)?;
                        retry::due(kind, k.attempts, last_attempt, now).then_some(Scope::Everything)
                    }
                };
                let Some(scope) = wanted else {
                    counters.kept.fetch_add(1, Ordering::Relaxed);
                    // Same size and mtime, another inode (restored from a backup, or a row
                    // from before inodes were kept): the row takes the file's facts, or the
                    // server would refuse to stream it.
                    if k.identity != Some((entry.dev, entry.inode)) {
                        for (id, part) in &k.parts {
                            let path = PathBuf::from(part);
                            let _ = notes.send(Note::Moved(
                                *id,
                                FileEntry {
                                    path,
                                    ..entry.clone()
                                },
                            ));
                        }
                        if k.parts.is_empty() {
                            let _ = notes.send(Note::Moved(k.id, entry));
                        }
                    }
                    continue;
                };
                let attempts = if unchanged { k.attempts } else { 0 };
                if !unchanged {
                    let _ = notes.send(Note::Pending(entry.clone(), None));
                }
                let fingerprint = None; // kept from the stored row
                if !queue(Job {
                    entry,
                    scope,
                    fingerprint,
                    attempts,
                    sheet,
                }) {
                    return Ok((walk_issues, followed.len() as u64)); // see below
                }
                continue;
            }
            // A path never seen: maybe a file that moved, or a copy of one analysed.
            let fingerprint = library::fingerprint(&entry.path).ok();
            // An album's analysis stays with its sheet: a new album file is analysed.
            if let (Some(fp), true) = (fingerprint, opts.work != Work::All && sheet.is_none()) {
                let mut twins = store.analyzed_with_fingerprint(fp)?;
                twins.retain(|(_, p)| library::split_part(p).is_none());
                let gone = twins
                    .iter()
                    .find(|(id, p)| !followed.contains(id) && !Path::new(p).exists());
                if let Some((id, old)) = gone {
                    tracing::info!("moved: {old} -> {path}");
                    followed.insert(*id);
                    seen.insert(*id);
                    let _ = notes.send(Note::Moved(*id, entry));
                    continue;
                }
                if let Some((id, _)) = twins.first() {
                    followed.insert(*id);
                    let _ = notes.send(Note::Copied(*id, entry, fp));
                    continue;
                }
            }
            let _ = notes.send(Note::Pending(entry.clone(), fingerprint));
            if !queue(Job {
                entry,
                scope: Scope::Everything,
                fingerprint,
                attempts: 0,
                sheet,
            }) {
                // No worker takes work any more (stopped, or none could be started): the
                // walk ends here, and files it did not reach must not be taken for gone.
                return Ok((walk_issues, followed.len() as u64));
            }
        }
    }
    counters.scan_done.store(true, Ordering::Relaxed);

    // Files gone from the library leave it. A folder that could not be read this time, or a
    // library root that is missing or empty (an unmounted disk), removes nothing it holds.
    for (root, found) in opts.roots.iter().zip(found_per_root) {
        let Ok(root_text) = path_text(root) else {
            continue;
        };
        let stored = store.paths_under(root_text)?;
        if found == 0 && !stored.is_empty() {
            tracing::warn!(
                "{} is missing or holds no music; keeping its {} stored tracks (is the disk mounted?)",
                root.display(),
                stored.len()
            );
            continue;
        }
        for (id, path) in stored {
            if id > last_known_id || seen.contains(&id) || followed.contains(&id) {
                continue;
            }
            let file = library::split_part(&path).map_or(path.as_str(), |(file, _)| file);
            let gone = matches!(std::fs::metadata(file), Err(e) if e.kind() == std::io::ErrorKind::NotFound);
            if walk_issues == 0 || gone {
                let _ = notes.send(Note::Removed(id));
            }
        }
    }
    Ok((walk_issues, followed.len() as u64))
}

/// One worker thread: takes jobs until the queue closes, the run halts, or its process
/// cannot be started.
fn work(opts: &Options, halt: &Halt, jobs: &Mutex<Receiver<Job>>, notes: &Sender<Note>) {
    let mut process = WorkerProcess::new(opts.limits, opts.mode);
    loop {
        if halt.now() {
            return;
        }
        let job = match jobs.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        if halt.now() {
            return; // taken but not started: it stays pending for the next run
        }
        let reply = match process.analyze(&job.entry.path, job.scope, opts.limit_for(&job)) {
            Ok(reply) => reply,
            Err(unstarted) => {
                // Not analysed: the file stays as it was (pending) for the next run.
                let _ = notes.send(Note::Unstarted(unstarted.to_string()));
                return;
            }
        };
        tracing::debug!(
            "worker finished {} ({:.0} ms CPU)",
            job.entry.path.display(),
            reply.cpu_ms
        );
        if notes.send(Note::Done(Box::new((job, reply)))).is_err() {
            return;
        }
    }
}

/// The writer: applies notes in batches, one transaction each, and reports progress. Stops
/// at the first batch it cannot write. Returns the totals and why a worker could not be
/// started, if one could not.
fn write(
    store: &mut Store,
    opts: &Options,
    notes: Receiver<Note>,
    counters: &Counters,
    started: Instant,
    on_batch: &mut dyn FnMut(&Batch),
) -> Result<(RunTotals, Option<String>)> {
    let mut totals = RunTotals::default();
    let mut unstarted = None;
    let mut worker_peak_kb = 0u64;
    let mut pending: Vec<Note> = Vec::with_capacity(opts.batch_size * 2);
    let mut done_in_batch = 0usize;
    let mut oldest: Option<Instant> = None;
    let mut batch_no = 0u64;
    let bar = progress_bar(opts.progress);
    let mut last_batch = Instant::now();
    loop {
        let wait = oldest.map_or(FLUSH_EVERY, |t| FLUSH_EVERY.saturating_sub(t.elapsed()));
        let (flush, finished) = match notes.recv_timeout(wait) {
            Ok(Note::Unstarted(why)) => {
                tracing::warn!("{why}");
                unstarted.get_or_insert(why);
                (false, false)
            }
            Ok(note) => {
                if let Note::Done(done) = &note {
                    let reply = &done.1;
                    done_in_batch += 1;
                    worker_peak_kb = worker_peak_kb.max(reply.peak_rss_kb);
                    if let Some(bar) = &bar {
                        bar.set_length(counters.queued.load(Ordering::Relaxed));
                        bar.inc(1);
                    }
                }
                pending.push(note);
                oldest.get_or_insert_with(Instant::now);
                (
                    done_in_batch >= opts.batch_size || pending.len() >= 4 * opts.batch_size,
                    false,
                )
            }
            Err(RecvTimeoutError::Timeout) => (true, false),
            Err(RecvTimeoutError::Disconnected) => (true, true),
        };
        if flush && !pending.is_empty() {
            let before = (totals.analyzed, totals.failed);
            apply(store, opts, &mut pending, &mut totals)?;
            batch_no += 1;
            totals.peak_rss_kb = worker_peak_kb * opts.workers as u64;
            let done = totals.analyzed + totals.failed;
            let queued = counters.queued.load(Ordering::Relaxed);
            on_batch(&Batch {
                analyzed: totals.analyzed,
                failed: totals.failed,
                queued,
                scan_done: counters.scan_done.load(Ordering::Relaxed),
            });
            let elapsed = started.elapsed().as_secs_f64();
            if let Some(bar) = &bar {
                bar.set_message(format!(
                    "{:.0} files/h, {} failed",
                    done as f64 * 3600.0 / elapsed.max(1e-3),
                    totals.failed
                ));
            } else if opts.progress == Progress::Log && done > before.0 + before.1 {
                let in_batch = done - before.0 - before.1;
                tracing::info!(
                    "PERF batch {batch_no}: {in_batch} files ({} failed) in {:.1} s; total {done}/{queued}{}, \
                     {:.0} files/hour; elapsed {elapsed:.1} s; memory {:.1} MB (writer {:.1} MB, worker peak {:.1} MB)",
                    totals.failed - before.1,
                    last_batch.elapsed().as_secs_f64(),
                    if counters.scan_done.load(Ordering::Relaxed) {
                        ""
                    } else {
                        "+"
                    },
                    done as f64 * 3600.0 / elapsed.max(1e-3),
                    (crate::usage::peak_rss_kb() + totals.peak_rss_kb) as f64 / 1024.0,
                    crate::usage::peak_rss_kb() as f64 / 1024.0,
                    worker_peak_kb as f64 / 1024.0,
                );
                last_batch = Instant::now();
            }
            done_in_batch = 0;
            oldest = None;
        }
        if finished {
            break;
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    totals.kept = counters.kept.load(Ordering::Relaxed);
    totals.files = totals.analyzed + totals.failed + totals.kept;
    Ok((totals, unstarted))
}

/// Applies one batch of notes in one transaction.
fn apply(
    store: &mut Store,
    opts: &Options,
    notes: &mut Vec<Note>,
    totals: &mut RunTotals,
) -> Result<()> {
    let batch = store.batch()?;
    for note in notes.drain(..) {
        match note {
            Note::Pending(entry, fp) => batch.pending(&entry, fp)?,
            Note::Moved(id, entry) => batch.moved(id, &entry)?,
            Note::Copied(from, entry, fp) => batch.copied(from, &entry, fp)?,
            Note::Removed(id) => {
                batch.removed(id)?;
                totals.removed += 1;
            }
            Note::Done(done) if done.0.scope == Scope::FullAdds => {
                let (job, reply) = &*done;
                let file = path_text(&job.entry.path)?;
                match &reply.outcome {
                    Ok(Measured::Track(m)) => {
                        if batch.full_adds(file, m, reply.cpu_ms)? {
                            totals.analyzed += 1;
                            totals.audio_s += m.duration_s;
                        }
                    }
                    Ok(Measured::Album(parts)) => {
                        let cpu_ms = reply.cpu_ms / parts.len().max(1) as f64;
                        for part in parts {
                            let path = library::part_path(file, part.number);
                            if batch.full_adds(&path, &part.record, cpu_ms)? {
                                totals.analyzed += 1;
                                totals.audio_s += part.record.duration_s;
                            }
                        }
                    }
                    Err(f) => {
                        tracing::warn!(
                            "full mode's measures failed: {}: {}",
                            job.entry.path.display(),
                            f.reason
                        );
                        batch.full_adds_failed(file, f.kind, &f.reason)?;
                        totals.failed += 1;
                    }
                }
            }
            Note::Done(done) => {
                let (job, reply) = &*done;
                let file = path_text(&job.entry.path)?;
                match &reply.outcome {
                    Ok(Measured::Track(m)) => {
                        let mode = opts.mode.name();
                        let id =
                            batch.analyzed(&job.entry, job.fingerprint, m, mode, reply.cpu_ms)?;
                        batch.cue(id, None, None)?;
                        batch.forget_other_rows(file, &[file.to_string()])?;
                        totals.analyzed += 1;
                        totals.audio_s += m.duration_s;
                    }
                    Ok(Measured::Album(parts)) => {
                        let sheet = job
                            .sheet
                            .as_ref()
                            .map_or(("", None), |(p, m)| (p.as_str(), *m));
                        let mut kept = Vec::with_capacity(parts.len());
                        for part in parts {
                            let path = library::part_path(file, part.number);
                            let entry = FileEntry {
                                path: PathBuf::from(&path),
                                ..job.entry.clone()
                            };
                            let cpu_ms = reply.cpu_ms / parts.len() as f64;
                            let (m, mode) = (&part.record, opts.mode.name());
                            let id = batch.analyzed(&entry, job.fingerprint, m, mode, cpu_ms)?;
                            batch.cue(id, Some(sheet), Some((part.start_s, part.end_s)))?;
                            kept.push(path);
                            totals.analyzed += 1;
                            totals.audio_s += m.duration_s;
                        }
                        batch.forget_other_rows(file, &kept)?;
                    }
                    Err(f) => {
                        tracing::warn!("failed: {}: {}", job.entry.path.display(), f.reason);
                        let id = batch.failed(&job.entry, job.fingerprint, f.kind, &f.reason)?;
                        let sheet = job.sheet.as_ref().map(|(p, m)| (p.as_str(), *m));
                        batch.cue(id, sheet, None)?;
                        batch.forget_other_rows(file, &[file.to_string()])?;
                        totals.failed += 1;
                    }
                }
            }
            // Kept out of batches by the writer.
            Note::Unstarted(_) => {}
        }
    }
    batch.commit()
}

fn progress_bar(progress: Progress) -> Option<indicatif::ProgressBar> {
    if progress != Progress::Bar {
        return None;
    }
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{bar:30}] {pos}/{len} files, {msg}, ETA {eta}",
        )
        .ok()?
        .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(500));
    Some(bar)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::{self, SongSpec, WavFormat};

    /// In a unit test `/proc/self/exe` is the test binary: a program that is not this
    /// playlista's worker, as a binary replaced by another version would be.
    #[test]
    fn files_no_worker_could_take_stay_pending_not_failed() {
        let dir = tempfile::tempdir().unwrap();
        let music = dir.path().join("music");
        std::fs::create_dir(&music).unwrap();
        for i in 0..2 {
            let spec = SongSpec {
                bpm: 100.0 + 10.0 * i as f64,
                tonic: i as u8,
                minor: false,
                seconds: 2.0,
            };
            let path = music.join(format!("{i}.wav"));
            synth::write_song(&path, &spec, 22_050, 1, WavFormat::Pcm16).unwrap();
        }
        let opts = Options {
            roots: vec![music],
            db: dir.path().join("playlista.db"),
            work: Work::Changed,
            workers: 1,
            batch_size: 10,
            queue_depth: 4,
            mode: Mode::Fast,
            max_attempts: 3,
            file_timeout: Duration::from_secs(60),
            large_file_bytes: 50 << 20,
            limits: Limits { memory_bytes: None },
            tuning: Tuning { cache_kib: 1024 },
            progress: Progress::Quiet,
        };
        for _ in 0..2 {
            let err = run(&opts, &AtomicBool::new(false), &mut |_| {}).unwrap_err();
            let text = format!("{err:#}");
            assert!(
                text.starts_with("cannot start an analysis worker: ")
                    && text.ends_with("were not analysed and stay pending for the next run"),
                "{text}"
            );
            let status = Store::open(&opts.db, opts.tuning)
                .unwrap()
                .status()
                .unwrap();
            assert_eq!((status.pending, status.failed), (2, 0), "{status:?}");
        }
    }
}
