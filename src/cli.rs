//! The glue of the `playlista` command's library workflow: signals, turning a [`Config`] into
//! pipeline [`Options`], and the text a person reads (`--status`, the end-of-run summary,
//! `Failed_Files.m3u`).
//!
//! In: a resolved [`Config`], a [`Status`] or a [`Report`]. Out: options, text, one file in
//! the output folder. The parsing of flags itself stays in `main.rs`.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result};

use crate::config::Config;
use crate::pipeline::{Options, Progress, Report, Work};
use crate::store::{Status, Store};

/// Ctrl-C or SIGTERM (a service stop) sets the returned flag: the run finishes the files in
/// hand, commits and exits. A second one exits at once.
pub fn stop_on_signals() -> &'static AtomicBool {
    crate::os::stop_on_signals()
}

pub fn pipeline_options(config: &Config, work: Work) -> Options {
    Options {
        roots: config.library.clone(),
        db: config.db_path(),
        work,
        // Retries run one at a time: a file that failed under load gets the machine to itself.
        workers: if work == Work::Failed {
            1
        } else {
            config.workers
        },
        batch_size: config.batch_size,
        queue_depth: config.queue_depth,
        mode: config.mode,
        max_attempts: 3,
        file_timeout: config.file_timeout,
        large_file_bytes: config.large_file_bytes,
        limits: config.limits,
        tuning: config.tuning,
        progress: Progress::auto(),
    }
}

/// One paragraph at the end of a run.
pub fn report_text(r: &Report) -> String {
    let t = &r.totals;
    let done = t.analyzed + t.failed;
    let mut s = format!(
        "{}: {} analysed, {} failed, {} unchanged, {} moved/copied, {} removed in {:.1} s",
        if r.interrupted {
            "interrupted (committed work is kept; run again to continue)"
        } else {
            "done"
        },
        t.analyzed,
        t.failed,
        t.kept,
        r.moved,
        t.removed,
        r.wall_s
    );
    if done > 0 && r.wall_s > 0.0 {
        let _ = write!(
            s,
            "; {:.0} files/hour, {:.0}x realtime, peak memory {:.1} MB",
            done as f64 * 3600.0 / r.wall_s,
            t.audio_s / r.wall_s,
            t.peak_rss_kb as f64 / 1024.0
        );
    }
    if r.walk_issues > 0 {
        let _ = write!(
            s,
            "; {} unreadable folder(s) or link(s) skipped",
            r.walk_issues
        );
    }
    s
}

pub fn status_text(s: &Status, db: &Path) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "database   {}", db.display());
    let _ = writeln!(
        out,
        "tracks     {}  (analysed {}, failed {}, pending {}{}); {:.1} hours of audio; {} playlists",
        s.tracks,
        s.analyzed,
        s.failed,
        s.pending,
        if s.outdated > 0 {
            format!(", {} from an older analysis version", s.outdated)
        } else {
            String::new()
        },
        s.audio_hours,
        s.playlists
    );
    for (kind, n) in &s.failed_by_kind {
        let _ = writeln!(out, "failed     {n:>6}  {kind}");
    }
    for (format, n, analyzed, failed) in &s.by_format {
        let _ = writeln!(
            out,
            "format     {:<6} {n:>6} tracks, {analyzed} analysed, {failed} failed",
            if format.is_empty() { "(none)" } else { format }
        );
    }
    match &s.last_run {
        Some(r) => {
            let _ = writeln!(
                out,
                "last run   {} ({} workers): {} analysed, {} failed, {} unchanged, {} removed in \
                 {:.1} s, {:.0} files/hour, peak memory {:.1} MB{}",
                r.mode,
                r.workers,
                r.analyzed,
                r.failed,
                r.kept,
                r.removed,
                r.wall_s,
                r.files_per_hour,
                r.peak_rss_kb as f64 / 1024.0,
                match (r.interrupted, r.finished_at) {
                    (_, None) => ", still running or killed",
                    (true, _) => ", interrupted",
                    _ => "",
                }
            );
        }
        None => {
            let _ = writeln!(out, "last run   none yet: run playlista -a --library DIR");
        }
    }
    out
}

/// Writes `Failed_Files.m3u` (each failed file with its reason) into `output_dir`, or removes
/// a stale one when nothing failed. Returns how many files failed.
pub fn write_failed_list(store: &Store, output_dir: &Path) -> Result<usize> {
    let failures = store.failures()?;
    let target = output_dir.join("Failed_Files.m3u");
    if failures.is_empty() {
        match std::fs::remove_file(&target) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("cannot remove {}", target.display()))
            }
            _ => return Ok(0),
        }
    }
    let mut text = String::from("#EXTM3U\n");
    for (path, kind, reason) in &failures {
        let _ = writeln!(text, "# {kind}: {}", reason.replace('\n', " "));
        let _ = writeln!(text, "{path}");
    }
    crate::playlist::m3u::write_atomic(&target, &text)?;
    Ok(failures.len())
}
