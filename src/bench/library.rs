//! The whole-library benchmark: the original tool's performance table, measured on our
//! pipeline (scanner, worker processes, SQLite writer) over a corpus, plus the cost of a
//! re-run over an unchanged 1,000-file library.
//!
//! In: the corpus folder. Out: a table: files/hour (normalised to 4-minute tracks, as the
//! original's claims), files/hour as counted, × realtime (wall clock, all workers) and peak
//! RSS (the writer process plus every worker's peak: what the run held at most).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::Result;

use crate::config::{self, Flags};
use crate::job::{self, Settings};
use crate::pipeline::{Progress, Report, Work};
use crate::synth::{self, SongSpec, WavFormat};
use crate::usage;

/// A row of the table: its name, the flags it runs with, the original's claim, and whether
/// it runs over half of the corpus.
struct Row {
    name: &'static str,
    flags: Flags,
    claimed: &'static str,
    /// Every other file of the corpus (in path order, so every part and format is in it):
    /// the one-worker full-mode rows, whose rates do not need the whole corpus and which
    /// would otherwise take most of the benchmark's time.
    half: bool,
}

fn rows() -> Vec<Row> {
    let base = Flags::default;
    vec![
        Row {
            name: "Default",
            flags: base(),
            claimed: "50-100 /h, 4-8 GB",
            half: false,
        },
        Row {
            name: "Fast Mode",
            flags: Flags {
                fast_mode: true,
                workers: Some(1),
                ..base()
            },
            claimed: "150-300 /h, 2-4 GB",
            half: false,
        },
        Row {
            name: "Fast + Parallel (2 workers)",
            flags: Flags {
                fast_mode: true,
                workers: Some(2),
                ..base()
            },
            claimed: "300-600 /h (8 workers), 6-12 GB",
            half: false,
        },
        Row {
            name: "Sequential",
            flags: Flags {
                workers: Some(1),
                ..base()
            },
            claimed: "20-40 /h, 1-2 GB",
            half: true,
        },
        Row {
            name: "Low Memory",
            flags: Flags {
                low_memory: true,
                ..base()
            },
            claimed: "30-60 /h, 1-3 GB",
            half: true,
        },
    ]
}

/// One measured run of the library job's analysis over `library` into a fresh database under
/// `state`.
pub(super) fn measure(library: &Path, state: &Path, flags: &Flags) -> Result<Report> {
    let flags = Flags {
        library: vec![library.to_path_buf()],
        cache_dir: Some(state.to_path_buf()),
        output_dir: Some(state.join("playlists")),
        ..flags.clone()
    };
    let config = config::resolve(&flags, None)?;
    let settings = Settings::analysis(Work::Changed, Progress::Quiet);
    usage::reset_peak_rss();
    let done = job::run(&config, &settings, &AtomicBool::new(false), &mut job::Quiet)?;
    done.analysis
        .ok_or_else(|| anyhow::anyhow!("the job ran no analysis"))
}

/// Every other file of the corpus, hard-linked (copied where links cannot be made) under
/// `dir` with its place in the corpus.
fn half_corpus(corpus: &Path, dir: &Path) -> Result<PathBuf> {
    for file in super::corpus_files(corpus).iter().step_by(2) {
        let relative = file.strip_prefix(corpus)?;
        let target = dir.join(relative);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        if std::fs::hard_link(file, &target).is_err() {
            std::fs::copy(file, &target)?;
        }
    }
    Ok(dir.to_path_buf())
}

pub(super) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// The table. With `keep_default`, the Default row's (first) run writes its database there
/// and leaves it, for the playlist benchmark to use instead of analysing the corpus again.
pub fn pipeline_table(corpus: &Path, repeat: usize, keep_default: Option<&Path>) -> Result<String> {
    let scratch = tempfile::Builder::new()
        .prefix("playlista-bench-")
        .tempdir()?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<28} {:>7} {:>12} {:>12} {:>9} {:>9}   original claimed",
        "mode", "workers", "files/h(4m)", "files/h", "x_realtime", "peak_MB"
    );
    let half = half_corpus(corpus, &scratch.path().join("half"))?;
    for (i, row) in rows().iter().enumerate() {
        let library = if row.half { half.as_path() } else { corpus };
        let mut runs = Vec::new();
        for r in 0..repeat.max(1) {
            let state = match keep_default {
                Some(kept) if i == 0 && r == 0 => kept.to_path_buf(),
                _ => scratch.path().join(format!("row{i}-{r}")),
            };
            let report = measure(library, &state, &row.flags)?;
            eprintln!("{}: {}", row.name, crate::report::report_text(&report));
            runs.push(report);
        }
        let wall = median(runs.iter().map(|r| r.wall_s).collect());
        let audio = median(runs.iter().map(|r| r.totals.audio_s).collect());
        let files = median(
            runs.iter()
                .map(|r| (r.totals.analyzed + r.totals.failed) as f64)
                .collect(),
        );
        let peak = runs.iter().map(|r| r.totals.peak_rss_kb).max().unwrap_or(0);
        let workers = config::resolve(&row.flags, None)?.workers;
        let _ = writeln!(
            out,
            "{:<28} {:>7} {:>12.0} {:>12.0} {:>9.0} {:>9.1}   {}",
            if row.half {
                format!("{} (half)", row.name)
            } else {
                row.name.to_string()
            },
            workers,
            audio / 240.0 * 3600.0 / wall,
            files * 3600.0 / wall,
            audio / wall,
            peak as f64 / 1024.0,
            row.claimed
        );
    }
    let _ = writeln!(
        out,
        "(files/h(4m): audio analysed / 4 minutes per wall-clock hour; x_realtime: audio seconds \
         per wall second, all workers; peak_MB: writer + all workers' peaks; median of {} run(s))",
        repeat.max(1)
    );

    // Re-run over an unchanged library of 1,000 files.
    let library = scratch.path().join("thousand");
    write_small_library(&library, 1000)?;
    let state = scratch.path().join("thousand-state");
    // Fast mode: what a re-run costs (scan, compare, nothing to analyse) does not depend on the
    // mode, and the first run is quicker.
    let fast = Flags {
        fast_mode: true,
        ..Flags::default()
    };
    let first = measure(&library, &state, &fast)?;
    let mut again = Vec::new();
    for _ in 0..repeat.max(1) {
        let t = Instant::now();
        let report = measure(&library, &state, &fast)?;
        anyhow::ensure!(
            report.totals.analyzed + report.totals.failed == 0,
            "the unchanged re-run analysed files again"
        );
        again.push(t.elapsed().as_secs_f64());
    }
    let _ = writeln!(
        out,
        "unchanged re-run, 1,000 files: {:.3} s (median of {}; first run analysed {} in {:.1} s)",
        median(again),
        repeat.max(1),
        first.totals.analyzed,
        first.wall_s
    );
    Ok(out)
}

/// `n` short distinct songs in 10 folders (each distinct, so no content is shared).
fn write_small_library(dir: &Path, n: usize) -> Result<()> {
    for i in 0..n {
        let path: PathBuf = dir
            .join(format!("album{:02}", i % 10))
            .join(format!("track{i:04}.wav"));
        if path.exists() {
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let spec = SongSpec {
            bpm: 60.0 + (i % 120) as f64,
            tonic: (i % 12) as u8,
            minor: i % 2 == 1,
            seconds: 1.0 + (i / 120) as f64 * 0.1,
        };
        synth::write_song(&path, &spec, 8_000, 1, WavFormat::Pcm16)?;
    }
    Ok(())
}
