//! The corpus benchmark: speed against decode-only, peak memory, and accuracy against truth.
//!
//! In: a corpus folder built by `shared/corpus/make-corpus` (its `synthetic/`, `edge/` and
//! `real/` folders and `truth.csv`). Out: a table per format and overall with
//! × realtime per core for the analysis (fast mode), for decode-only on the same files in the
//! same run, their ratio, the peak RSS of any one file, the same speed and memory for full mode
//! (timbre + MusiCNN embedding), and BPM / key accuracy on the rows with a truth.
//!
//! Speed is CPU time of this thread (`CLOCK_THREAD_CPUTIME_ID`), so a busy machine slows the
//! wall clock but not the figure. Each file is decoded once before timing (so both runs read
//! from the page cache) and timed `repeat` times; the median counts. Peak RSS per file comes
//! from resetting the kernel's high-water mark (`/proc/self/clear_refs`) before each file.
//!
//! [`library`] holds the whole-library table (`--pipeline`), [`playlists`] the playlist
//! quality and scale figures (`--playlists`), [`serve`] the HTTP load figures of
//! `playlista serve` (`--serve`).

pub mod formats;
pub mod library;
pub mod lighthouse;
pub mod playlists;
pub mod serve;

pub use library::pipeline_table;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::analysis::{Analysis, Analyzer, Mode};
use crate::embedding::Coverage;
use crate::features::key::KEY_NAMES;
use crate::features::{PitchClass, Scale};
use crate::usage;

/// One row of `truth.csv`, the columns we score against.
#[derive(Debug, Clone, Default)]
pub struct Truth {
    pub format: String,
    pub bpm: Option<f64>,
    pub bpm_alternatives: Vec<f64>,
    /// Pitch class 0..11 and mode.
    pub key: Option<(usize, bool)>,
    pub kind: String,
    /// The generator's style or the real set's source (tempo is scored per style).
    pub style: String,
    pub expected_ok: bool,
    pub lufs: Option<f64>,
    /// The original this file is an encoding of (the format set's `same_as` column).
    pub same_as: Option<String>,
}

pub fn read_truth(path: &Path) -> anyhow::Result<BTreeMap<String, Truth>> {
    let mut reader = csv::Reader::from_path(path)?;
    let headers = reader.headers()?.clone();
    let col = |name: &str| headers.iter().position(|h| h == name);
    let c_same = col("same_as");
    let (c_path, c_format, c_bpm, c_key, c_mode, c_kind, c_expect, c_alt, c_lufs, c_style) = (
        col("path"),
        col("format"),
        col("bpm"),
        col("key"),
        col("mode"),
        col("kind"),
        col("expected_outcome"),
        col("bpm_alternatives"),
        col("lufs_i"),
        col("style"),
    );
    let c_path = c_path.ok_or_else(|| anyhow::anyhow!("truth.csv has no path column"))?;
    let mut out = BTreeMap::new();
    for record in reader.records() {
        let record = record?;
        let get = |c: Option<usize>| {
            c.and_then(|i| record.get(i))
                .unwrap_or("")
                .trim()
                .to_string()
        };
        let num = |c: Option<usize>| get(c).parse::<f64>().ok();
        let key = pitch_class(&get(c_key)).map(|pc| (pc, get(c_mode) == "minor"));
        let alts = get(c_alt)
            .split('|')
            .filter_map(|s| s.trim().parse().ok())
            .collect();
        out.insert(
            get(Some(c_path)),
            Truth {
                format: get(c_format),
                bpm: num(c_bpm),
                bpm_alternatives: alts,
                key,
                kind: get(c_kind),
                style: get(c_style),
                expected_ok: get(c_expect) != "error",
                lufs: num(c_lufs),
                same_as: Some(get(c_same)).filter(|s| !s.is_empty()),
            },
        );
    }
    Ok(out)
}

/// "C#", "Db", "Eb" ... -> 0..11.
pub fn pitch_class(name: &str) -> Option<usize> {
    let mut chars = name.chars();
    let base = match chars.next()? {
        'C' => 0,
        'D' => 2,
        'E' => 4,
        'F' => 5,
        'G' => 7,
        'A' => 9,
        'B' => 11,
        _ => return None,
    };
    let shift: i32 = chars
        .map(|c| match c {
            '#' => 1,
            'b' => -1,
            _ => 0,
        })
        .sum();
    Some((base + shift).rem_euclid(12) as usize)
}

/// BPM accuracy as in the MIREX tempo task: within 4 %, or (Accuracy2) of a related octave.
pub fn bpm_hits(estimate: f64, truth: f64) -> (bool, bool) {
    let close = |t: f64| (estimate - t).abs() <= 0.04 * t;
    let acc1 = close(truth);
    let acc2 = acc1 || [2.0, 0.5, 3.0, 1.0 / 3.0].iter().any(|&m| close(truth * m));
    (acc1, acc2)
}

/// MIREX key score: 1 exact, 0.5 a fifth away (same mode), 0.3 relative, 0.2 parallel.
pub fn key_score(estimate: (usize, bool), truth: (usize, bool)) -> f64 {
    let ((e, em), (t, tm)) = (estimate, truth);
    if e == t && em == tm {
        1.0
    } else if em == tm && ((e + 12 - t) % 12 == 7 || (t + 12 - e) % 12 == 7) {
        0.5
    } else if em != tm && ((!tm && e == (t + 9) % 12) || (tm && e == (t + 3) % 12)) {
        0.3
    } else if e == t {
        0.2
    } else {
        0.0
    }
}

/// What the benchmark measured for one file.
#[derive(Debug, Clone)]
pub struct FileResult {
    pub rel_path: String,
    pub format: String,
    pub audio_s: f64,
    pub analysis_cpu_s: f64,
    pub decode_cpu_s: f64,
    pub peak_rss_kb: u64,
    /// Full mode (default embedding coverage).
    pub full_cpu_s: f64,
    pub full_peak_rss_kb: u64,
    /// Patches the network ran on in full mode.
    pub full_patches: u32,
    pub outcome: Result<Analysis, String>,
    pub truth: Option<Truth>,
}

/// The audio files of a corpus, in a stable order: its `synthetic/`, `edge/` and `real/`
/// folders, or every folder of a set without them (the format set, one folder per clip).
pub fn corpus_files(root: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut parts: Vec<String> = ["synthetic", "edge", "real"].map(String::from).to_vec();
    if !parts.iter().any(|p| root.join(p).is_dir()) {
        parts = std::fs::read_dir(root)
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_dir())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        parts.sort();
    }
    for part in &parts {
        let Ok(entries) = std::fs::read_dir(root.join(part)) else {
            continue;
        };
        let mut part_files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect();
        part_files.sort();
        files.extend(part_files);
    }
    files
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// What a corpus run measures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scope {
    /// Speed against decode-only (median of `repeat` runs), memory, full mode and accuracy.
    Everything { repeat: usize },
    /// One fast-mode analysis per file, for accuracy alone.
    Accuracy,
}

/// Runs the benchmark over `root`, reporting progress on stderr.
pub fn run(root: &Path, scope: Scope, filter: Option<&str>) -> anyhow::Result<Vec<FileResult>> {
    let repeat = match scope {
        Scope::Everything { repeat } => repeat.max(1),
        Scope::Accuracy => 1,
    };
    let timed = scope != Scope::Accuracy;
    let truth = read_truth(&root.join("truth.csv")).unwrap_or_default();
    let mut analyzer = Analyzer::new();
    let mut results = Vec::new();
    let files: Vec<PathBuf> = corpus_files(root)
        .into_iter()
        .filter(|p| filter.is_none_or(|f| p.to_string_lossy().contains(f)))
        .collect();
    anyhow::ensure!(!files.is_empty(), "no audio files under {}", root.display());
    for (i, path) in files.iter().enumerate() {
        let rel = path
            .strip_prefix(root)
            .unwrap_or(path)
            .to_string_lossy()
            .into_owned();
        let t = truth.get(&rel).cloned();
        eprint!("\r[{}/{}] {:60.60}", i + 1, files.len(), rel);
        let mut decode_times = Vec::new();
        let mut analysis_times = Vec::new();
        let mut outcome = Err(String::new());
        let mut peak = 0;
        if timed {
            // Warm the page cache so both timings read from memory.
            let _ = analyzer.decode_only(path);
        }
        // A file decoded through ffmpeg: its helpers' CPU and memory count too.
        for _ in 0..repeat {
            if timed {
                let t0 = usage::cpu_s(usage::Clock::Thread);
                let helper = analyzer
                    .decode_only(path)
                    .map(|(_, h)| h)
                    .unwrap_or_default();
                decode_times.push(usage::cpu_s(usage::Clock::Thread) - t0 + helper.cpu_s);
            }
            usage::reset_peak_rss();
            let t0 = usage::cpu_s(usage::Clock::Thread);
            outcome = analyzer.analyze(path).map_err(|e| e.to_string());
            let helper = outcome.as_ref().map(|a| a.helper).unwrap_or_default();
            analysis_times.push(usage::cpu_s(usage::Clock::Thread) - t0 + helper.cpu_s);
            peak = peak.max(usage::peak_rss_kb() + helper.peak_rss_kb);
        }
        let format = t
            .as_ref()
            .map(|t| t.format.clone())
            .filter(|f| !f.is_empty())
            .unwrap_or_else(|| {
                path.extension()
                    .map(|e| e.to_string_lossy().to_lowercase())
                    .unwrap_or_default()
            });
        results.push(FileResult {
            rel_path: rel,
            format,
            audio_s: outcome.as_ref().map(|a| a.record.duration_s).unwrap_or(0.0),
            analysis_cpu_s: median(analysis_times),
            decode_cpu_s: if timed { median(decode_times) } else { 0.0 },
            peak_rss_kb: peak,
            full_cpu_s: 0.0,
            full_peak_rss_kb: 0,
            full_patches: 0,
            outcome,
            truth: t,
        });
    }
    eprintln!();
    if !timed {
        return Ok(results);
    }
    // Full mode in a second pass, so that the fast figures above were taken without the
    // network loaded.
    // With the allocator settings of a full-mode worker (the fast pass above had a fast one's).
    crate::os::keep_freed_memory();
    let mut full = Analyzer::with_mode(Mode::Full(Coverage::default()))?;
    for (i, (path, r)) in files.iter().zip(&mut results).enumerate() {
        eprint!("\r[{}/{}] full {:55.55}", i + 1, files.len(), r.rel_path);
        let mut times = Vec::new();
        for _ in 0..repeat {
            usage::reset_peak_rss();
            let t0 = usage::cpu_s(usage::Clock::Thread);
            let (helper, patches) = full
                .analyze(path)
                .map(|a| (a.helper, a.patches))
                .unwrap_or_default();
            r.full_patches = patches;
            times.push(usage::cpu_s(usage::Clock::Thread) - t0 + helper.cpu_s);
            r.full_peak_rss_kb = r
                .full_peak_rss_kb
                .max(usage::peak_rss_kb() + helper.peak_rss_kb);
        }
        r.full_cpu_s = median(times);
    }
    eprintln!();
    Ok(results)
}

#[derive(Default)]
struct Group {
    files: usize,
    failed: usize,
    audio_s: f64,
    analysis_s: f64,
    decode_s: f64,
    peak_kb: u64,
    full_s: f64,
    full_peak_kb: u64,
    /// Patches the network ran per track in full mode: sum, min, max.
    patches: (u64, u32, u32),
}

impl Group {
    fn add(&mut self, r: &FileResult) {
        self.files += 1;
        self.failed += r.outcome.is_err() as usize;
        if r.outcome.is_ok() {
            self.audio_s += r.audio_s;
            self.analysis_s += r.analysis_cpu_s;
            self.decode_s += r.decode_cpu_s;
            self.full_s += r.full_cpu_s;
            let (sum, min, max) = self.patches;
            let p = r.full_patches;
            self.patches = if self.files - self.failed == 1 {
                (p as u64, p, p)
            } else {
                (sum + p as u64, min.min(p), max.max(p))
            };
        }
        self.peak_kb = self.peak_kb.max(r.peak_rss_kb);
        self.full_peak_kb = self.full_peak_kb.max(r.full_peak_rss_kb);
    }

    fn row(&self, name: &str) -> String {
        let xrt = |cpu: f64| if cpu > 0.0 { self.audio_s / cpu } else { 0.0 };
        format!(
            "{:<12} {:>5} {:>6} {:>9.1} {:>10.0} {:>10.0} {:>8.2} {:>9.1} {:>10.0} {:>9.1} {:>8.2} {:>12}\n",
            name,
            self.files,
            self.failed,
            self.audio_s / 60.0,
            xrt(self.analysis_s),
            xrt(self.decode_s),
            if self.decode_s > 0.0 {
                self.analysis_s / self.decode_s
            } else {
                0.0
            },
            self.peak_kb as f64 / 1024.0,
            xrt(self.full_s),
            self.full_peak_kb as f64 / 1024.0,
            if self.decode_s > 0.0 {
                self.full_s / self.decode_s
            } else {
                0.0
            },
            match (self.files - self.failed, self.patches) {
                (0, _) => String::from("-"),
                (n, (sum, min, max)) => format!("{:.1} {min}-{max}", sum as f64 / n as f64),
            }
        )
    }
}

/// Accuracy over a set of results.
#[derive(Debug, Default, Clone, Copy)]
pub struct Accuracy {
    pub bpm_n: usize,
    pub acc1: usize,
    pub acc1_alt: usize,
    pub acc2: usize,
    pub key_n: usize,
    pub key_exact: usize,
    pub key_mirex: f64,
}

pub fn accuracy<'a>(results: impl Iterator<Item = &'a FileResult>) -> Accuracy {
    let mut a = Accuracy::default();
    for r in results {
        let (Some(t), Ok(an)) = (&r.truth, &r.outcome) else {
            continue;
        };
        if let Some(tb) = t.bpm {
            a.bpm_n += 1;
            if let Some(b) = an.record.bpm {
                let (h1, h2) = bpm_hits(b, tb);
                a.acc1 += h1 as usize;
                a.acc2 += h2 as usize;
                a.acc1_alt +=
                    (h1 || t.bpm_alternatives.iter().any(|&alt| bpm_hits(b, alt).0)) as usize;
            }
        }
        if let Some(tk) = t.key {
            a.key_n += 1;
            let est = an
                .record
                .key
                .map(PitchClass::index)
                .zip(an.record.scale.map(Scale::is_minor));
            if let Some(e) = est {
                let s = key_score(e, tk);
                a.key_exact += (s == 1.0) as usize;
                a.key_mirex += s;
            }
        }
    }
    a
}

/// How a tempo estimate relates to the truth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TempoMiss {
    /// Within 4 % (Accuracy1).
    Right,
    /// Twice, half, three times or a third of it (forgiven by Accuracy2).
    Level,
    /// 3:2, 2:3, 4:3 or 3:4: a wrong reading of the meter, not forgiven by Accuracy2.
    ThreeTwo,
    Other,
    NoTempo,
}

pub fn tempo_miss(estimate: Option<f64>, truth: f64) -> TempoMiss {
    let Some(e) = estimate else {
        return TempoMiss::NoTempo;
    };
    let near = |m: f64| (e - truth * m).abs() <= 0.04 * truth * m;
    if near(1.0) {
        TempoMiss::Right
    } else if [2.0, 0.5, 3.0, 1.0 / 3.0].into_iter().any(near) {
        TempoMiss::Level
    } else if [1.5, 2.0 / 3.0, 4.0 / 3.0, 0.75].into_iter().any(near) {
        TempoMiss::ThreeTwo
    } else {
        TempoMiss::Other
    }
}

/// Tempo per kind and style: Accuracy1, Accuracy2 and what the misses were.
fn tempo_table(results: &[FileResult]) -> String {
    let mut rows: BTreeMap<(String, String), [usize; 5]> = BTreeMap::new();
    for r in results {
        let (Some(t), Ok(a)) = (&r.truth, &r.outcome) else {
            continue;
        };
        let Some(tb) = t.bpm else { continue };
        let miss = tempo_miss(a.record.bpm, tb) as usize;
        for key in [
            (t.kind.clone(), t.style.clone()),
            (t.kind.clone(), "(all)".to_string()),
        ] {
            rows.entry(key).or_default()[miss] += 1;
        }
    }
    let mut out =
        String::from("kind       style          n  Accuracy1 Accuracy2  level 3:2 other none\n");
    for ((kind, style), c) in &rows {
        let n: usize = c.iter().sum();
        let share = |x: usize| x as f64 / n as f64;
        let _ = writeln!(
            out,
            "{kind:<10} {style:<12} {n:>3}  {:>9.3} {:>9.3}  {:>5} {:>3} {:>5} {:>4}",
            share(c[0]),
            share(c[0] + c[1]),
            c[1],
            c[2],
            c[3],
            c[4]
        );
    }
    out + "(level: x2, x1/2, x3 or x1/3 of the truth; 3:2: x3/2, x2/3, x4/3 or x3/4)\n"
}

/// The report: per-format speed and memory (when timed), then accuracy, then the misses.
pub fn render(results: &[FileResult], scope: Scope) -> String {
    let mut out = String::new();
    if scope != Scope::Accuracy {
        out += &speed_table(results);
    }
    out += &accuracy_table(results);
    out += &agreement_table(results);
    out
}

/// For the format set: per format, how many files gave their WAV original's tempo (within
/// 4 %) and key. Empty for a corpus without a `same_as` column.
fn agreement_table(results: &[FileResult]) -> String {
    let by_path: BTreeMap<&str, &FileResult> =
        results.iter().map(|r| (r.rel_path.as_str(), r)).collect();
    let mut rows: BTreeMap<&str, [usize; 3]> = BTreeMap::new();
    for r in results {
        let Some(original) = r.truth.as_ref().and_then(|t| t.same_as.as_deref()) else {
            continue;
        };
        if original == r.rel_path {
            continue;
        }
        let row = rows.entry(r.format.as_str()).or_default();
        row[0] += 1;
        let (Ok(a), Some(Ok(o))) = (&r.outcome, by_path.get(original).map(|o| &o.outcome)) else {
            continue;
        };
        let (a, o) = (&a.record, &o.record);
        row[1] += a
            .bpm
            .zip(o.bpm)
            .is_some_and(|(x, y)| (x - y).abs() <= 0.04 * y) as usize;
        row[2] += (a.key.is_some() && a.key == o.key && a.scale == o.scale) as usize;
    }
    if rows.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "\nagreement with the WAV original (tempo within 4 %, same key and mode):\nformat          files  tempo  key\n",
    );
    for (format, [n, tempo, key]) in rows {
        let _ = writeln!(out, "{format:<15} {n:>5} {tempo:>6} {key:>4}");
    }
    out
}

fn speed_table(results: &[FileResult]) -> String {
    let mut out = String::new();
    let mut groups: BTreeMap<String, Group> = BTreeMap::new();
    let mut all = Group::default();
    for r in results {
        groups.entry(r.format.clone()).or_default().add(r);
        all.add(r);
    }
    out += "format       files failed audio_min analysis_xRT decode_xRT  a/d_cpu  peak_MB    full_xRT full_MB  f/d_cpu      patches\n";
    for (name, g) in &groups {
        out += &g.row(name);
    }
    out += &all.row("ALL");
    let mut real = Group::default();
    results
        .iter()
        .filter(|r| r.rel_path.starts_with("real/"))
        .for_each(|r| real.add(r));
    out += &real.row("real/");
    out += "(xRT = audio seconds per CPU second on one core; a/d_cpu = analysis CPU / decode-only CPU; peak_MB = max over files of the process peak RSS while analysing that file; full = full mode: timbre and the MusiCNN embedding, at most 12 patches a track; f/d_cpu = full-mode CPU / decode-only CPU; patches = the network's runs per track, mean and min-max)\n\n";
    out
}

fn accuracy_table(results: &[FileResult]) -> String {
    let mut out = String::new();
    for (label, kind) in [("synthetic", Some("synthetic")), ("all with truth", None)] {
        let a = accuracy(
            results
                .iter()
                .filter(|r| kind.is_none_or(|k| r.truth.as_ref().is_some_and(|t| t.kind == k))),
        );
        let pct = |x: usize, n: usize| if n == 0 { 0.0 } else { x as f64 / n as f64 };
        let _ = writeln!(
            out,
            "{label:<15} BPM n={:<3} Accuracy1 {:.3}  (with listed alternatives {:.3})  Accuracy2 {:.3}   key n={:<3} exact {:.3}  MIREX {:.3}",
            a.bpm_n,
            pct(a.acc1, a.bpm_n),
            pct(a.acc1_alt, a.bpm_n),
            pct(a.acc2, a.bpm_n),
            a.key_n,
            pct(a.key_exact, a.key_n),
            if a.key_n == 0 {
                0.0
            } else {
                a.key_mirex / a.key_n as f64
            },
        );
    }
    out += "\n";
    out += &tempo_table(results);
    let expected_mismatch: Vec<&FileResult> = results
        .iter()
        .filter(|r| {
            r.truth
                .as_ref()
                .is_some_and(|t| t.expected_ok != r.outcome.is_ok())
        })
        .collect();
    let _ = writeln!(
        out,
        "\nfiles whose outcome differs from truth.csv's expected_outcome: {}",
        expected_mismatch.len()
    );
    for r in expected_mismatch {
        let _ = writeln!(
            out,
            "  {}: {}",
            r.rel_path,
            r.outcome.as_ref().err().map(String::as_str).unwrap_or("ok")
        );
    }
    out += "\nmisses (file, truth -> estimate):\n";
    for r in results {
        let (Some(t), Ok(a)) = (&r.truth, &r.outcome) else {
            continue;
        };
        let f = &a.record;
        let bpm_miss = t
            .bpm
            .is_some_and(|tb| f.bpm.is_none_or(|b| !bpm_hits(b, tb).0));
        let est_key = f
            .key
            .map(PitchClass::index)
            .zip(f.scale.map(Scale::is_minor));
        let key_miss = t
            .key
            .is_some_and(|tk| est_key.is_none_or(|e| key_score(e, tk) < 1.0));
        if bpm_miss || key_miss {
            let key_name = |k: Option<(usize, bool)>| {
                k.map(|(pc, m)| format!("{}{}", KEY_NAMES[pc], if m { "m" } else { "" }))
                    .unwrap_or_else(|| "-".into())
            };
            let _ = writeln!(
                out,
                "  {:<40} bpm {:>6} -> {:>7}   key {:>4} -> {:<4}",
                r.rel_path,
                t.bpm.map(|b| format!("{b:.1}")).unwrap_or_default(),
                f.bpm
                    .map(|b| format!("{b:.2}"))
                    .unwrap_or_else(|| "-".into()),
                key_name(t.key),
                key_name(est_key),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scoring_rules() {
        assert_eq!(bpm_hits(121.0, 120.0), (true, true));
        assert_eq!(bpm_hits(240.0, 120.0), (false, true));
        assert_eq!(bpm_hits(40.5, 120.0), (false, true));
        assert_eq!(bpm_hits(150.0, 120.0), (false, false));
        let c = pitch_class("C").unwrap();
        let a = pitch_class("A").unwrap();
        let g = pitch_class("G").unwrap();
        assert_eq!(key_score((c, false), (c, false)), 1.0);
        assert_eq!(key_score((g, false), (c, false)), 0.5);
        assert_eq!(key_score((a, true), (c, false)), 0.3);
        assert_eq!(key_score((c, false), (a, true)), 0.3);
        assert_eq!(key_score((c, true), (c, false)), 0.2);
        assert_eq!(pitch_class("Eb"), pitch_class("D#"));
    }
}
