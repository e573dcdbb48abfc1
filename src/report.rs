//! How results are shown. One file's analysis: a JSON object per line for scripts, a short
//! block of text for people; the JSON keys are a published interface (checked from outside):
//! keep them. A library run: the end-of-run paragraph ([`report_text`]) and `--status`
//! ([`status_text`]).

use std::fmt::Write as _;
use std::path::Path;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use crate::analysis::{Analysis, AnalysisError};
use crate::embedding::{N_TAGS, TAG_NAMES};
use crate::features::timbre::Timbre;
use crate::metadata::tags::Tags;
use crate::pipeline::Report;
use crate::store::Status;

/// One line of `playlista inspect --json`.
#[derive(Debug, Serialize)]
pub struct InspectLine<'a> {
    pub path: String,
    pub ok: bool,
    pub error: Option<String>,
    pub duration_s: Option<f64>,
    pub sample_rate: Option<u32>,
    pub channels: Option<usize>,
    pub codec: Option<&'a str>,
    pub bpm: Option<f64>,
    pub bpm_confidence: Option<f64>,
    pub key: Option<&'static str>,
    pub scale: Option<&'static str>,
    pub key_strength: Option<f64>,
    pub loudness_lufs: Option<f64>,
    pub loudness_rms_db: Option<f64>,
    pub danceability: Option<f64>,
    pub onset_rate: Option<f64>,
    pub zcr: Option<f64>,
    pub spectral_centroid: Option<f64>,
    pub tags: &'a Tags,
    /// Full mode: the keys `mfcc`, `mfcc_cov`, `chroma`, `spectral_contrast`,
    /// `spectral_flatness`, `spectral_rolloff`; absent in fast mode.
    #[serde(flatten)]
    pub timbre: Option<&'a Timbre>,
    /// Full mode: the 200-d MusiCNN embedding (mean over the patches run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub embedding: Option<&'a [f32]>,
    /// Full mode: tag name → probability, in the network's order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub musicnn_tags: Option<TagProbabilities<'a>>,
}

/// The 50 MusiCNN tag probabilities as a JSON object, in the network's order.
#[derive(Debug, Clone, Copy)]
pub struct TagProbabilities<'a>(pub &'a [f32; N_TAGS]);

impl Serialize for TagProbabilities<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(N_TAGS))?;
        for (name, &p) in TAG_NAMES.iter().zip(self.0) {
            map.serialize_entry(name, &r(Some(p as f64), 4))?;
        }
        map.end()
    }
}

impl TagProbabilities<'_> {
    /// The `n` most probable tags, most probable first.
    pub fn top(&self, n: usize) -> Vec<(&'static str, f32)> {
        let mut all: Vec<(&'static str, f32)> = TAG_NAMES
            .iter()
            .copied()
            .zip(self.0.iter().copied())
            .collect();
        all.sort_by(|a, b| b.1.total_cmp(&a.1));
        all.truncate(n);
        all
    }
}

static NO_TAGS: Tags = Tags::EMPTY;

/// Rounds for display and storage: more digits than this are noise.
fn r(v: Option<f64>, digits: i32) -> Option<f64> {
    let scale = 10f64.powi(digits);
    v.filter(|x| x.is_finite())
        .map(|x| (x * scale).round() / scale)
}

impl<'a> InspectLine<'a> {
    pub fn new(path: &Path, result: &'a Result<Analysis, AnalysisError>) -> Self {
        let path = path.to_string_lossy().into_owned();
        match result {
            Ok(a) => {
                let f = &a.features;
                InspectLine {
                    path,
                    ok: true,
                    error: None,
                    duration_s: r(Some(f.duration_s), 3),
                    sample_rate: Some(a.info.sample_rate),
                    channels: Some(a.info.channels),
                    codec: Some(&a.info.codec),
                    bpm: r(f.bpm, 2),
                    bpm_confidence: r(f.bpm_confidence, 3),
                    key: f.key,
                    scale: f.scale,
                    key_strength: r(f.key_strength, 3),
                    loudness_lufs: r(f.loudness_lufs, 2),
                    loudness_rms_db: r(f.loudness_rms_db, 2),
                    danceability: r(f.danceability, 3),
                    onset_rate: r(f.onset_rate, 3),
                    zcr: r(f.zcr, 4),
                    spectral_centroid: r(f.spectral_centroid, 1),
                    tags: &a.tags,
                    timbre: f.timbre.as_ref(),
                    embedding: a.embedding.as_ref().map(|e| &e.mean[..]),
                    musicnn_tags: a.embedding.as_ref().map(|e| TagProbabilities(&e.tags)),
                }
            }
            Err(e) => InspectLine {
                path,
                ok: false,
                error: Some(e.to_string()),
                duration_s: None,
                sample_rate: None,
                channels: None,
                codec: None,
                bpm: None,
                bpm_confidence: None,
                key: None,
                scale: None,
                key_strength: None,
                loudness_lufs: None,
                loudness_rms_db: None,
                danceability: None,
                onset_rate: None,
                zcr: None,
                spectral_centroid: None,
                tags: &NO_TAGS,
                timbre: None,
                embedding: None,
                musicnn_tags: None,
            },
        }
    }

    pub fn to_json(&self) -> String {
        // Serialising plain fields and strings cannot fail.
        serde_json::to_string(self)
            .unwrap_or_else(|e| format!("{{\"ok\":false,\"error\":\"{e}\"}}"))
    }

    /// A few lines for a person at a terminal.
    pub fn to_text(&self) -> String {
        if !self.ok {
            return format!(
                "{}\n  FAILED: {}\n",
                self.path,
                self.error.as_deref().unwrap_or("?")
            );
        }
        let opt = |v: Option<f64>, unit: &str, digits: usize| match v {
            Some(x) => format!("{x:.digits$}{unit}"),
            None => "-".to_string(),
        };
        let mut out = format!("{}\n", self.path);
        out += &format!(
            "  {} {} Hz, {} ch, {}\n",
            self.codec.unwrap_or("?"),
            self.sample_rate.unwrap_or(0),
            self.channels.unwrap_or(0),
            opt(self.duration_s, " s", 1)
        );
        out += &format!(
            "  tempo {} (confidence {})   key {} {} (strength {})\n",
            opt(self.bpm, " BPM", 1),
            opt(self.bpm_confidence, "", 2),
            self.key.unwrap_or("-"),
            self.scale.unwrap_or(""),
            opt(self.key_strength, "", 2)
        );
        out += &format!(
            "  loudness {} / RMS {}   danceability {}   onsets {}\n",
            opt(self.loudness_lufs, " LUFS", 1),
            opt(self.loudness_rms_db, " dBFS", 1),
            opt(self.danceability, "", 2),
            opt(self.onset_rate, "/s", 2)
        );
        out += &format!(
            "  centroid {}   zcr {}\n",
            opt(self.spectral_centroid, " Hz", 0),
            opt(self.zcr, "", 4)
        );
        if let Some(t) = self.timbre {
            out += &format!(
                "  timbre: flatness {:.3}   rolloff {:.0} Hz   mfcc[1..4] {:.1} {:.1} {:.1}\n",
                t.spectral_flatness, t.spectral_rolloff, t.mfcc[1], t.mfcc[2], t.mfcc[3]
            );
        }
        if let Some(p) = self.musicnn_tags {
            let top: Vec<String> = p
                .top(5)
                .iter()
                .map(|(name, prob)| format!("{name} {prob:.2}"))
                .collect();
            out += &format!("  sounds like: {}\n", top.join(", "));
        }
        let t = self.tags;
        if t != &NO_TAGS {
            let show = |v: &Option<String>| v.as_deref().unwrap_or("-").to_string();
            out += &format!(
                "  tags: {} - {} ({})",
                show(&t.artist),
                show(&t.title),
                show(&t.album)
            );
            if let Some(y) = t.year {
                out += &format!(" {y}");
            }
            if let Some(g) = &t.genre {
                out += &format!(" [{g}]");
            }
            out += "\n";
        }
        out
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

/// What `playlista --status` prints: the database, its tracks by state, reason and format,
/// and the last run.
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
