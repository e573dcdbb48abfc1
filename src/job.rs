//! The library job: scan and analyse, retry what failed, look up on-line, write
//! `Failed_Files.m3u`, make the playlists. The one place this workflow is written: `playlista`
//! (`-a`, `-u`, `-g`, `--failed`, `--pipeline`, `-f`), `serve`'s background, `demo` and
//! `bench --pipeline` each run it with their own [`Settings`] and [`Observer`].
//!
//! In: a resolved [`Config`], the [`Settings`] of this run, a stop flag, an [`Observer`].
//! Out: the database brought up to date, the look-up cache filled, `Failed_Files.m3u` and the
//! playlists written, a [`Report`]; the observer hears of each phase, each committed batch
//! and each result as it comes. The job prints nothing: what a person reads is the
//! observer's business.
//!
//! A job that analyses holds the database's [`RunLock`] from start to end: one analysis run
//! at a time per database. Another run's lock is waited for (the observer hears who holds
//! it) or, with [`WhenBusy::GiveUp`], ends the job with [`crate::store::Held`].
//!
//! The service runs it without look-ups (its look-ups run on a thread of their own between
//! runs, see `server::background`) and with [`Playlists::Keep`]; the demo runs the analysis
//! and the playlists as two jobs, with its truth table between them.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};

use crate::analysis::Mode;
use crate::board::Press;
use crate::config::Config;
use crate::pipeline::{self, Batch, Progress, Work};
use crate::playlist::{self, Generated, m3u, space::Library};
use crate::store::{Held, RunLock, Store, WhenBusy};

/// What one run of the job does.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The analysis pass and what it works on; `None`: no analysis.
    pub analyse: Option<Work>,
    /// In full mode, analyse in two tiers: the whole job in fast mode first (every track gets
    /// tempo, key, loudness, ... and the playlists are made from them), then again in full
    /// mode, which adds timbre and the embedding to the fast rows (see [`run`]).
    pub tiers: bool,
    /// After the analysis: retry the files that failed (one worker, more time each try).
    pub retry: bool,
    /// After the analysis: on-line look-ups for at most this long; `None`: none.
    pub lookups: Option<Duration>,
    /// Write `Failed_Files.m3u` into the output folder (or remove a stale one).
    pub failed_list: bool,
    /// Which playlists are made at the end, and when.
    pub playlists: Playlists,
    /// How the pipeline shows its progress.
    pub progress: Progress,
    /// When another analysis run holds the database: wait for it, or give up.
    pub when_busy: WhenBusy,
}

impl Settings {
    /// One analysis pass of `work` and nothing else (waiting for another run, if one holds
    /// the database).
    pub fn analysis(work: Work, progress: Progress) -> Settings {
        Settings {
            analyse: Some(work),
            tiers: false,
            retry: false,
            lookups: None,
            failed_list: false,
            playlists: Playlists::None,
            progress,
            when_busy: WhenBusy::Wait,
        }
    }
}

/// The playlist step.
#[derive(Debug, Clone)]
pub enum Playlists {
    None,
    /// Make these (one [`playlist::Flags`] each), whatever the analysis did.
    Make(Vec<playlist::Flags>),
    /// Keep these current, as the service does: made again (incrementally) only when the
    /// analysis changed something, look-ups found something (`looked`), or none are shown
    /// (`none_shown`) while tracks are analysed. Nothing is made from an empty library.
    Keep {
        flags: Vec<playlist::Flags>,
        looked: bool,
        none_shown: bool,
    },
}

/// A phase of the job, as it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// A pass of the analysis over the library.
    Analyse(Work),
    /// The retry of failed files.
    Retry,
    Lookups,
    Playlists,
}

/// Hears what the job does, as it happens. Every callback has a default that does nothing.
pub trait Observer {
    /// Another analysis run holds the database: the job waits for it (called once).
    fn waiting(&mut self, _held: &Held) {}
    /// A phase starts.
    fn phase(&mut self, _phase: Phase) {}
    /// The pipeline committed a batch (called on the pipeline's writer thread: keep it short).
    fn batch(&mut self, _batch: &Batch) {}
    /// An analysis pass (or the retry, `Phase::Retry`) finished.
    fn analysed(&mut self, _phase: Phase, _report: &pipeline::Report) {}
    /// After an analysis pass that was not interrupted: another pass, and of what (the box's
    /// button pressed meanwhile); `None`: go on.
    fn again(&mut self) -> Option<Work> {
        None
    }
    /// The look-ups finished.
    fn looked_up(&mut self, _report: &crate::lookups::Report) {}
    /// `Failed_Files.m3u` was written (`failed` > 0, at `path`) or removed.
    fn failed_list(&mut self, _failed: usize, _path: &Path) {}
    /// The playlists of one flags set were made.
    fn generated(&mut self, _lib: &Library, _flags: &playlist::Flags, _generated: &Generated) {}
}

/// An observer that hears nothing.
pub struct Quiet;

impl Observer for Quiet {}

/// What the job did.
#[derive(Debug, Default)]
pub struct Report {
    /// The last analysis pass.
    pub analysis: Option<pipeline::Report>,
    pub retry: Option<pipeline::Report>,
    /// `None` when no look-ups ran (none asked, none enabled, or stopped).
    pub lookups: Option<crate::lookups::Report>,
    /// Files listed in `Failed_Files.m3u`.
    pub failed: usize,
    /// The playlist step ran (the playlists may have changed).
    pub playlists: bool,
    /// The stop flag was set while the job waited for another run: it did nothing.
    pub stopped_waiting: bool,
}

impl Report {
    /// An analysis pass or the look-ups were cut short by the stop flag, or the job was
    /// stopped before it could start. (An interrupted retry leaves nothing half done that the
    /// next run would not redo either way.)
    pub fn interrupted(&self) -> bool {
        self.stopped_waiting
            || self.analysis.as_ref().is_some_and(|r| r.interrupted)
            || self.lookups.as_ref().is_some_and(|r| r.interrupted)
    }

    /// The analysis changed the database: files analysed, failed, removed, moved or copied.
    pub fn changed(&self) -> bool {
        self.analysis.as_ref().is_some_and(|r| {
            let t = &r.totals;
            t.analyzed + t.failed + t.removed + r.moved > 0
        })
    }
}

/// What a press of the box's button asks of the analysis: a rescan of what changed (short),
/// or everything again (long).
pub fn asked_by(press: Press) -> Work {
    match press {
        Press::Short => Work::Changed,
        Press::Long => Work::All,
    }
}

/// Runs the job. A set `stop` skips what is left, except `Failed_Files.m3u`, which always
/// matches the database.
///
/// With [`Settings::tiers`] in full mode it runs twice: in fast mode (the analysis as asked,
/// then the playlists; no retry, look-ups or `Failed_Files.m3u`), then in full mode over
/// what changed (the fast rows get what full mode adds; a fast row is never measured again
/// for its fast features), with the rest of the job. A run stopped in either tier resumes
/// in it: the database says which rows are fast and which full. The report is the full
/// tier's, or the fast tier's when that was interrupted.
pub fn run(
    config: &Config,
    settings: &Settings,
    stop: &AtomicBool,
    observer: &mut dyn Observer,
) -> Result<Report> {
    if !settings.tiers || config.mode == Mode::Fast || settings.analyse.is_none() {
        return run_once(config, settings, stop, observer);
    }
    let fast = Config {
        mode: Mode::Fast,
        ..config.clone()
    };
    let first = Settings {
        tiers: false,
        retry: false,
        lookups: None,
        failed_list: false,
        ..settings.clone()
    };
    let report = run_once(&fast, &first, stop, observer)?;
    if report.interrupted() || stop.load(Ordering::Relaxed) {
        return Ok(report);
    }
    let second = Settings {
        tiers: false,
        analyse: Some(Work::Changed),
        ..settings.clone()
    };
    let mut full = run_once(config, &second, stop, observer)?;
    full.playlists |= report.playlists;
    Ok(full)
}

fn run_once(
    config: &Config,
    settings: &Settings,
    stop: &AtomicBool,
    observer: &mut dyn Observer,
) -> Result<Report> {
    let stopped = || stop.load(Ordering::Relaxed);
    let mut report = Report::default();
    // Held to the end of the job; released when dropped.
    let _lock = if settings.analyse.is_some() || settings.retry {
        let lock = RunLock::take(&config.db_path(), settings.when_busy, stop, &mut |held| {
            observer.waiting(held)
        })?;
        if lock.is_none() {
            report.stopped_waiting = true;
            return Ok(report);
        }
        lock
    } else {
        None
    };
    let analyse = |work: Work, observer: &mut dyn Observer| {
        let mut options = config.pipeline_options(work);
        options.progress = settings.progress;
        pipeline::run(&options, stop, &mut |batch| observer.batch(batch))
    };
    if let Some(mut work) = settings.analyse {
        loop {
            observer.phase(Phase::Analyse(work));
            let pass = analyse(work, observer)?;
            observer.analysed(Phase::Analyse(work), &pass);
            let interrupted = pass.interrupted;
            report.analysis = Some(pass);
            if interrupted {
                break;
            }
            match observer.again() {
                Some(next) => work = next,
                None => break,
            }
        }
    }
    if settings.retry && !stopped() {
        observer.phase(Phase::Retry);
        let retry = analyse(Work::Failed, observer)?;
        observer.analysed(Phase::Retry, &retry);
        report.retry = Some(retry);
    }
    if let Some(budget) = settings.lookups.filter(|_| !stopped()) {
        observer.phase(Phase::Lookups);
        report.lookups = crate::lookups::run(&config.lookup_settings(), stop, Some(budget))?;
        if let Some(looked) = &report.lookups {
            observer.looked_up(looked);
        }
    }
    let mut store = None;
    if settings.failed_list {
        let opened = Store::open(&config.db_path(), config.tuning)?;
        let target = config.output_dir.join("Failed_Files.m3u");
        report.failed = write_failed_list(&opened, &target)?;
        observer.failed_list(report.failed, &target);
        store = Some(opened);
    }
    if matches!(settings.playlists, Playlists::None) || stopped() {
        return Ok(report);
    }
    let store = match store {
        Some(store) => store,
        None => Store::open(&config.db_path(), config.tuning)?,
    };
    match &settings.playlists {
        Playlists::None => {}
        Playlists::Make(flags) => {
            observer.phase(Phase::Playlists);
            let lib = playlist::load(&store)?;
            make(&store, &lib, &config.output_dir, flags, observer)?;
            report.playlists = true;
        }
        Playlists::Keep {
            flags,
            looked,
            none_shown,
        } => {
            if report.changed() || *looked || (*none_shown && store.status()?.analyzed > 0) {
                observer.phase(Phase::Playlists);
                keep(&store, &config.output_dir, flags, observer)?;
                report.playlists = true;
            }
        }
    }
    Ok(report)
}

/// The service's playlists, made (incrementally) from what is stored now: the playlist step
/// of [`Playlists::Keep`], also run by the service during a long analysis. Nothing is made
/// from an empty library.
pub fn keep(
    store: &Store,
    output_dir: &Path,
    flags: &[playlist::Flags],
    observer: &mut dyn Observer,
) -> Result<()> {
    let lib = playlist::load(store)?;
    if lib.is_empty() {
        return Ok(());
    }
    make(store, &lib, output_dir, flags, observer)
}

/// Makes the playlists of each flags set from `lib`.
fn make(
    store: &Store,
    lib: &Library,
    output_dir: &Path,
    flags: &[playlist::Flags],
    observer: &mut dyn Observer,
) -> Result<()> {
    for flags in flags {
        let generated = playlist::run(store, lib, output_dir, flags)?;
        observer.generated(lib, flags, &generated);
    }
    Ok(())
}

/// Writes `target` (`Failed_Files.m3u`: each failed file with its reason), or removes a stale
/// one when nothing failed. Returns how many files failed.
fn write_failed_list(store: &Store, target: &Path) -> Result<usize> {
    let failures = store.failures()?;
    if failures.is_empty() {
        match std::fs::remove_file(target) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("cannot remove {}", target.display()));
            }
            _ => return Ok(0),
        }
    }
    let mut text = String::from("#EXTM3U\n");
    for (path, kind, reason) in &failures {
        let _ = writeln!(text, "# {kind}: {}", m3u::one_line(reason));
        let _ = writeln!(text, "{}", m3u::one_line(path));
    }
    m3u::write_atomic(target, &text)?;
    Ok(failures.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_press_rescans_a_long_one_redoes_everything() {
        assert_eq!(asked_by(Press::Long), Work::All);
        assert_eq!(asked_by(Press::Short), Work::Changed);
    }
}
