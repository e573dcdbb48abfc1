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
use crate::features::record::{self, FIELDS, Record, Value};
use crate::features::timbre::Timbre;
use crate::pipeline::Report;
use crate::store::Status;
use crate::tags::Tags;

/// One line of `playlista inspect --json`: `path`, `ok`, `error`, then every field of
/// [`FIELDS`] in order at display precision (all `null` for a failed file), `tags`, in full mode
/// the timbre keys (`mfcc`, `mfcc_cov`, `chroma`, `spectral_contrast`, `spectral_flatness`,
/// `spectral_rolloff`), `embedding` (the 200-d MusiCNN mean) and `musicnn_tags` (tag name →
/// probability, in the network's order).
#[derive(Debug)]
pub struct InspectLine<'a> {
    path: String,
    outcome: Result<&'a Analysis, String>,
}

/// What is serialised: the borrowed parts in their published order.
#[derive(Serialize)]
struct Line<'a> {
    path: &'a str,
    ok: bool,
    error: Option<&'a str>,
    #[serde(flatten)]
    fields: Shown<'a>,
    tags: &'a Tags,
    #[serde(flatten)]
    timbre: Option<&'a Timbre>,
    #[serde(skip_serializing_if = "Option::is_none")]
    embedding: Option<&'a [f32]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    musicnn_tags: Option<TagProbabilities<'a>>,
}

/// Every scalar of the record as shown, or `null`s without one.
struct Shown<'a>(Option<&'a Record>);

impl Serialize for Shown<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(FIELDS.len()))?;
        for f in FIELDS {
            let value = self.0.map_or(Value::Real(None), |r| f.shown(r));
            map.serialize_entry(f.name, &value)?;
        }
        map.end()
    }
}

/// The 50 MusiCNN tag probabilities as a JSON object, in the network's order.
#[derive(Debug, Clone, Copy)]
pub struct TagProbabilities<'a>(pub &'a [f32; N_TAGS]);

impl Serialize for TagProbabilities<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(N_TAGS))?;
        for (name, &p) in TAG_NAMES.iter().zip(self.0) {
            map.serialize_entry(name, &record::round(Some(p as f64), 4))?;
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

impl<'a> InspectLine<'a> {
    pub fn new(path: &Path, result: &'a Result<Analysis, AnalysisError>) -> Self {
        InspectLine {
            path: path.to_string_lossy().into_owned(),
            outcome: result.as_ref().map_err(|e| e.to_string()),
        }
    }

    fn record(&self) -> Option<&'a Record> {
        self.outcome.as_ref().ok().map(|a| &a.record)
    }

    fn line(&self) -> Line<'_> {
        let record = self.record();
        Line {
            path: &self.path,
            ok: self.outcome.is_ok(),
            error: self.outcome.as_ref().err().map(String::as_str),
            fields: Shown(record),
            tags: record.map_or(&NO_TAGS, |r| &r.tags),
            timbre: record.and_then(|r| r.timbre.as_deref()),
            embedding: record.and_then(|r| r.embedding.as_deref()),
            musicnn_tags: record
                .and_then(|r| r.musicnn_tags.as_deref())
                .and_then(|t| t.try_into().ok())
                .map(TagProbabilities),
        }
    }

    pub fn to_json(&self) -> String {
        // Serialising plain fields and strings cannot fail.
        serde_json::to_string(&self.line())
            .unwrap_or_else(|e| format!("{{\"ok\":false,\"error\":\"{e}\"}}"))
    }

    /// A few lines for a person at a terminal.
    pub fn to_text(&self) -> String {
        let r = match &self.outcome {
            Ok(a) => &a.record,
            Err(e) => return format!("{}\n  FAILED: {e}\n", self.path),
        };
        // The value as `inspect --json` shows it, then with `digits` places and its unit.
        let opt = |name: &str, digits: usize| match record::field(name).map(|f| f.shown(r)) {
            Some(Value::Real(Some(x))) => {
                let unit = record::field(name).map_or("", |f| f.unit);
                let sep = if unit.is_empty() || unit.starts_with('/') {
                    ""
                } else {
                    " "
                };
                format!("{x:.digits$}{sep}{unit}")
            }
            _ => "-".to_string(),
        };
        let mut out = format!("{}\n", self.path);
        out += &format!(
            "  {} {} Hz, {} ch, {}\n",
            r.codec,
            r.sample_rate,
            r.channels,
            opt("duration_s", 1)
        );
        out += &format!(
            "  tempo {} (confidence {})   key {} {} (strength {})\n",
            opt("bpm", 1),
            opt("bpm_confidence", 2),
            r.key.map_or("-", |k| k.name()),
            r.scale.map_or("", |s| s.name()),
            opt("key_strength", 2)
        );
        out += &format!(
            "  loudness {} / RMS {}   danceability {}   onsets {}\n",
            opt("loudness_lufs", 1),
            opt("loudness_rms_db", 1),
            opt("danceability", 2),
            opt("onset_rate", 2)
        );
        out += &format!(
            "  centroid {}   zcr {}\n",
            opt("spectral_centroid", 0),
            opt("zcr", 4)
        );
        let line = self.line();
        if let Some(t) = line.timbre {
            out += &format!(
                "  timbre: flatness {:.3}   rolloff {:.0} Hz   mfcc[1..4] {:.1} {:.1} {:.1}\n",
                t.spectral_flatness, t.spectral_rolloff, t.mfcc[1], t.mfcc[2], t.mfcc[3]
            );
        }
        if let Some(p) = line.musicnn_tags {
            let top: Vec<String> = p
                .top(5)
                .iter()
                .map(|(name, prob)| format!("{name} {prob:.2}"))
                .collect();
            out += &format!("  sounds like: {}\n", top.join(", "));
        }
        let t = &r.tags;
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

/// "40 s", "12 min", "3.5 h": a time left, roughly.
fn duration_words(secs: f64) -> String {
    if secs < 90.0 {
        format!("{secs:.0} s")
    } else if secs < 5400.0 {
        format!("{:.0} min", secs / 60.0)
    } else {
        format!("{:.1} h", secs / 3600.0)
    }
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
    let tier = |name: &str, t: &crate::store::Tier| {
        let left = match t.seconds_left {
            Some(secs) if t.left > 0 => format!(" (about {} left)", duration_words(secs)),
            _ => String::new(),
        };
        format!("{name}: {} tracks, {} to go{left}", t.tracks, t.left)
    };
    let _ = write!(out, "tiers      {}", tier("fast", &s.fast));
    if let Some(full) = &s.full {
        let _ = write!(out, "; {}", tier("full (timbre, embedding)", full));
    }
    out.push('\n');
    for (kind, n) in &s.failed_by_kind {
        let _ = writeln!(out, "failed     {n:>6}  {kind}");
    }
    if s.albums > 0 {
        let _ = writeln!(
            out,
            "cue        {} tracks from {} single-file albums (CUE sheets)",
            s.album_tracks, s.albums
        );
    }
    if s.through_ffmpeg + s.need_ffmpeg > 0 {
        let _ = writeln!(
            out,
            "ffmpeg     {} tracks decoded through ffmpeg; {} files need it (not installed)",
            s.through_ffmpeg, s.need_ffmpeg
        );
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
