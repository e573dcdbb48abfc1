//! The format set: the same clips in every codec and container a library holds, so that each
//! format's speed, memory and answers can be set against the WAV original's.
//!
//! In: WAV originals (44.1 kHz, 16-bit stereo) with their tempo and key. Out: a folder with one
//! sub-folder per clip holding the original and its encodings ([`ENCODINGS`] through ffmpeg,
//! DSF and DFF through [`crate::audio::dsd::encode`], since nothing here writes DSD), each
//! tagged with the clip's title, artist and album, and a `truth.csv` whose `same_as` column
//! names the original each file is compared with. `playlista bench CORPUS --formats DIR` builds
//! it from the corpus's synthetic clips and benchmarks it; `tests/formats.rs` builds it from
//! generated songs.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::audio::{ChunkSink, Decoder, StreamInfo};
use crate::tags::Tags;

/// One encoding ffmpeg writes: the name of its `format` column, the file extension, the
/// encoder arguments.
pub struct Encoding {
    pub format: &'static str,
    pub ext: &'static str,
    pub args: &'static [&'static str],
}

/// Every encoding in the set besides the WAV original and DSD.
pub const ENCODINGS: &[Encoding] = &[
    Encoding {
        format: "opus",
        ext: "opus",
        args: &["-c:a", "libopus", "-b:a", "128k"],
    },
    Encoding {
        format: "opus_ogg",
        ext: "ogg",
        args: &["-c:a", "libopus", "-b:a", "96k"],
    },
    Encoding {
        format: "opus_webm",
        ext: "webm",
        args: &["-c:a", "libopus", "-b:a", "128k"],
    },
    Encoding {
        format: "alac",
        ext: "m4a",
        args: &["-c:a", "alac"],
    },
    Encoding {
        format: "alac_caf",
        ext: "caf",
        args: &["-c:a", "alac"],
    },
    Encoding {
        format: "aiff",
        ext: "aiff",
        args: &["-c:a", "pcm_s16be", "-write_id3v2", "1"],
    },
    Encoding {
        format: "flac_mka",
        ext: "mka",
        args: &["-c:a", "flac"],
    },
    Encoding {
        format: "mp2",
        ext: "mp2",
        args: &["-c:a", "mp2", "-b:a", "256k"],
    },
    Encoding {
        format: "wavpack",
        ext: "wv",
        args: &["-c:a", "wavpack"],
    },
    Encoding {
        format: "wma2",
        ext: "wma",
        args: &["-c:a", "wmav2", "-b:a", "192k"],
    },
    Encoding {
        format: "wma1",
        ext: "asf",
        args: &["-c:a", "wmav1", "-b:a", "192k", "-f", "asf"],
    },
];

/// A clip the set is made from.
#[derive(Debug, Clone)]
pub struct Original {
    /// A 44.1 kHz stereo WAV file.
    pub wav: PathBuf,
    /// The folder and file stem in the set.
    pub name: String,
    pub bpm: f64,
    /// Pitch class 0..11 and minor.
    pub key: (usize, bool),
}

/// Builds the set under `out` (created; files already there are rebuilt) and writes its
/// `truth.csv`. Needs ffmpeg with libopus.
pub fn build(originals: &[Original], out: &Path) -> Result<()> {
    std::fs::create_dir_all(out)?;
    let mut truth = String::from("path,format,bpm,key,mode,kind,expected_outcome,same_as,title\n");
    for o in originals {
        let dir = out.join(&o.name);
        std::fs::create_dir_all(&dir)?;
        let wav = dir.join(format!("{}.wav", o.name));
        std::fs::copy(&o.wav, &wav).with_context(|| format!("copying {}", o.wav.display()))?;
        let title = format!("{} title", o.name);
        let original = format!("{}/{}.wav", o.name, o.name);
        let mut row = |file: &str, format: &str| {
            let (tonic, minor) = o.key;
            let _ = writeln!(
                truth,
                "{}/{file},{format},{},{},{},format,ok,{original},{title}",
                o.name,
                o.bpm,
                crate::features::key::KEY_NAMES[tonic],
                if minor { "minor" } else { "major" },
            );
        };
        row(&format!("{}.wav", o.name), "wav");
        for e in ENCODINGS {
            let file = format!("{}.{}", o.name, e.ext);
            encode(&wav, &dir.join(&file), e.args, &title)?;
            row(&file, e.format);
        }
        let (planes, rate) = read_planes(&wav)?;
        let refs: Vec<&[f32]> = planes.iter().map(Vec::as_slice).collect();
        let tags = Tags {
            title: Some(title.clone()),
            artist: Some("playlista".into()),
            album: Some("format set".into()),
            ..Tags::default()
        };
        for (ext, dsd_rate) in [("dsf", 2_822_400), ("dff", 5_644_800)] {
            let file = format!("{}.{ext}", o.name);
            let path = dir.join(&file);
            if ext == "dsf" {
                crate::audio::dsd::encode::write_dsf(&path, &refs, rate, dsd_rate, &tags)?;
            } else {
                crate::audio::dsd::encode::write_dff(&path, &refs, rate, dsd_rate, &tags)?;
            }
            row(
                &file,
                if dsd_rate == 2_822_400 {
                    "dsd64_dsf"
                } else {
                    "dsd128_dff"
                },
            );
        }
    }
    std::fs::write(out.join("truth.csv"), truth)?;
    Ok(())
}

/// Encodes `wav` to `out` with ffmpeg, tagged.
fn encode(wav: &Path, out: &Path, args: &[&str], title: &str) -> Result<()> {
    let status = Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-v", "error", "-y", "-i"])
        .arg(wav)
        .args(args)
        .args(["-metadata", &format!("title={title}")])
        .args([
            "-metadata",
            "artist=playlista",
            "-metadata",
            "album=format set",
        ])
        .arg(out)
        .status()
        .context("running ffmpeg (is it installed?)")?;
    if !status.success() {
        bail!("ffmpeg could not write {}", out.display());
    }
    Ok(())
}

/// Converts any file ffmpeg reads to a 44.1 kHz stereo 16-bit WAV (the corpus's clips are
/// MP3, Vorbis, FLAC, ...).
pub fn to_wav(source: &Path, wav: &Path) -> Result<()> {
    encode(
        source,
        wav,
        &[
            "-ar",
            "44100",
            "-ac",
            "2",
            "-c:a",
            "pcm_s16le",
            "-map_metadata",
            "-1",
        ],
        "original",
    )
}

/// The whole file's samples at its own rate, one Vec per channel (the clips are short).
fn read_planes(path: &Path) -> Result<(Vec<Vec<f32>>, u32)> {
    struct Collect {
        planes: Vec<Vec<f32>>,
        rate: u32,
    }
    impl ChunkSink for Collect {
        fn begin(&mut self, info: &StreamInfo) {
            self.rate = info.sample_rate;
            self.planes = vec![Vec::new(); info.channels];
        }
        fn chunk(&mut self, planes: &[&[f32]], _mono: &[f32]) {
            for (all, p) in self.planes.iter_mut().zip(planes) {
                all.extend_from_slice(p);
            }
        }
    }
    let mut sink = Collect {
        planes: Vec::new(),
        rate: 0,
    };
    Decoder::new().decode(path, &mut sink)?;
    Ok((sink.planes, sink.rate))
}

/// Clips taken from a corpus: lossless synthetic ones with a tempo and key, distinct keys
/// (three: 16 encodings each, full mode included, is about a minute and a half of CPU).
const FROM_CORPUS: usize = 3;

/// Builds the set in `out` from the corpus's synthetic clips, unless `out` already holds one
/// (its `truth.csv`): a bench re-run reuses it.
pub fn from_corpus(corpus: &Path, out: &Path) -> Result<()> {
    if out.join("truth.csv").is_file() {
        return Ok(());
    }
    let truth = super::read_truth(&corpus.join("truth.csv"))?;
    let mut keys = std::collections::HashSet::new();
    let mut originals = Vec::new();
    let work = out.join(".originals");
    std::fs::create_dir_all(&work)?;
    for (rel, t) in &truth {
        let lossless = matches!(t.format.as_str(), "wav" | "flac");
        let (Some(bpm), Some(key)) = (t.bpm, t.key) else {
            continue;
        };
        if t.kind != "synthetic" || !t.expected_ok || !lossless || !keys.insert(key) {
            continue;
        }
        let name = format!("clip{}", originals.len() + 1);
        let wav = work.join(format!("{name}.wav"));
        to_wav(&corpus.join(rel), &wav)?;
        originals.push(Original {
            wav,
            name,
            bpm,
            key,
        });
        if originals.len() == FROM_CORPUS {
            break;
        }
    }
    if originals.is_empty() {
        bail!(
            "{} has no lossless synthetic clips with a tempo and key",
            corpus.display()
        );
    }
    build(&originals, out)?;
    std::fs::remove_dir_all(&work)?;
    Ok(())
}
