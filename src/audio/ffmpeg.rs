//! The fallback decoder for formats no Rust decoder here reads (WMA, WavPack, Monkey's Audio,
//! Musepack, TTA, and codecs such as AC-3 inside containers symphonia opens): an installed
//! `ffmpeg` decodes the file to raw 32-bit float samples on a pipe, read one packet at a time.
//!
//! In: a path and the format's name (from [`fallback_format`] or the codec symphonia could not
//! make). Out: a [`FfmpegPipe`], a [`PlanarSource`] with the stream's facts and tags (read
//! first by `ffprobe`), and at the end the helpers' CPU time and peak memory, which count
//! against the file like the worker's own.
//!
//! Bounds: the children run inside the analysis worker and inherit its data limit; they die
//! with it (a worker killed for its time limit takes them along); one packet of samples is in
//! this process at a time; what they print on stderr is kept to its last few lines.
//! [`FFMPEG_ENV`] names another ffmpeg binary (its `ffprobe` beside it), or `off` to act as if
//! none were installed; without one, such files fail with "needs ffmpeg for FORMAT".

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::thread::JoinHandle;

use super::{DecodeError, MAX_CHANNELS, PlanarSource, Speaker, StreamInfo};
use crate::tags::Tags;

/// Environment variable naming the ffmpeg binary to use, or `off`.
pub const FFMPEG_ENV: &str = "PLAYLISTA_FFMPEG";

/// The prefix of the codec name of every track decoded through ffmpeg (`ffmpeg:wmav2`):
/// `--status` counts them by it.
pub const CODEC_PREFIX: &str = "ffmpeg:";

/// Frames per packet read from the pipe.
const PACKET_FRAMES: usize = 4096;
/// Bytes of ffmpeg's stderr kept for the failure reason.
const STDERR_KEPT: usize = 2048;

/// The format of a file symphonia does not open, by its first bytes, when ffmpeg can decode
/// it; `None` for anything else (garbage stays "not a supported audio file", without a child
/// process per broken file).
pub fn fallback_format(head: &[u8]) -> Option<&'static str> {
    // Monkey's Audio and Musepack files sometimes start with an ID3v2 tag.
    let head = skip_id3v2(head);
    const ASF: [u8; 16] = [
        0x30, 0x26, 0xB2, 0x75, 0x8E, 0x66, 0xCF, 0x11, 0xA6, 0xD9, 0x00, 0xAA, 0x00, 0x62, 0xCE,
        0x6C,
    ];
    if head.starts_with(&ASF) {
        Some("WMA")
    } else if head.starts_with(b"wvpk") {
        Some("WavPack")
    } else if head.starts_with(b"MAC ") {
        Some("Monkey's Audio")
    } else if head.starts_with(b"MPCK") || head.starts_with(b"MP+") {
        Some("Musepack")
    } else if head.starts_with(b"TTA1") {
        Some("TTA")
    } else if head.starts_with(&[0x0B, 0x77]) {
        Some("AC-3")
    } else {
        None
    }
}

fn skip_id3v2(head: &[u8]) -> &[u8] {
    if head.len() < 10 || &head[..3] != b"ID3" {
        return head;
    }
    let size = head[6..10]
        .iter()
        .fold(0usize, |n, &b| (n << 7) | (b & 0x7F) as usize)
        + 10;
    head.get(size..).unwrap_or(&[])
}

/// The ffmpeg binary to run, if one is installed (and not turned off).
pub fn binary() -> Option<PathBuf> {
    match std::env::var_os(FFMPEG_ENV) {
        Some(v) if v == "off" => None,
        Some(v) => Some(PathBuf::from(v)).filter(|p| p.is_file()),
        None => find_in_path("ffmpeg"),
    }
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// `ffprobe` beside the ffmpeg binary (or on the PATH).
fn probe_binary(ffmpeg: &Path) -> Option<PathBuf> {
    let beside = ffmpeg.with_file_name("ffprobe");
    if beside.is_file() {
        Some(beside)
    } else {
        find_in_path("ffprobe")
    }
}

/// A file being decoded by an ffmpeg child.
pub struct FfmpegPipe {
    child: Child,
    stdout: ChildStdout,
    stderr: Option<JoinHandle<String>>,
    info: StreamInfo,
    tags: Tags,
    /// One packet of interleaved little-endian f32 bytes.
    bytes: Vec<u8>,
    /// Bytes of a partial frame carried over to the next read.
    carry: usize,
    /// Packets read, and the largest anonymous memory of the child seen so far (KiB).
    packets: u64,
    dirty_kb: u64,
    probe_cpu_s: f64,
}

/// What the helpers cost, for the worker's accounting.
#[derive(Debug, Clone, Copy, Default)]
pub struct HelperUse {
    /// ffprobe's and ffmpeg's CPU time.
    pub cpu_s: f64,
    /// ffmpeg's largest anonymous (dirty) memory seen while decoding, sampled from
    /// `/proc/PID/smaps_rollup`: what it adds to the machine's memory. Its resident size is
    /// ~40 MB more: the pages of its ~200 shared libraries, file pages the kernel drops under
    /// pressure and shares with every other ffmpeg.
    pub peak_rss_kb: u64,
}

/// Packets between two samples of ffmpeg's memory (~6 s of audio at 44.1 kHz).
const SAMPLE_EVERY: u64 = 64;

/// The anonymous memory of process `pid` (Private_Dirty + Shared_Dirty), in KiB.
fn dirty_kb(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = text.lines().find(|l| l.starts_with(name))?;
        line.split_whitespace().nth(1)?.parse().ok()
    };
    Some(field("Private_Dirty:")? + field("Shared_Dirty:").unwrap_or(0))
}

impl FfmpegPipe {
    /// Probes `path` with ffprobe and starts ffmpeg on it. `format` names the format in the
    /// errors ("needs ffmpeg for WMA").
    pub fn open(path: &Path, format: &str) -> Result<FfmpegPipe, DecodeError> {
        let ffmpeg = binary().ok_or_else(|| DecodeError::NeedsFfmpeg(format.to_string()))?;
        let ffprobe =
            probe_binary(&ffmpeg).ok_or_else(|| DecodeError::NeedsFfmpeg(format.to_string()))?;
        let (probe, probe_cpu_s) = probe(&ffprobe, path)?;
        let stream = probe
            .streams
            .first()
            .ok_or_else(|| DecodeError::Codec(format!("{format}: ffprobe found no audio")))?;
        let sample_rate: u32 = stream
            .sample_rate
            .as_deref()
            .and_then(|r| r.parse().ok())
            .ok_or_else(|| DecodeError::Codec(format!("{format}: no sample rate")))?;
        if !(4_000..=768_000).contains(&sample_rate) {
            return Err(DecodeError::SampleRate(sample_rate));
        }
        let source_channels = stream.channels.unwrap_or(0) as usize;
        if source_channels == 0 {
            return Err(DecodeError::Channels(0));
        }
        // More than 7.1 is folded to stereo by ffmpeg rather than refused.
        let channels = if source_channels > MAX_CHANNELS {
            2
        } else {
            source_channels
        };
        let mut tags = Tags::default();
        for (k, v) in stream.tags.iter().chain(probe.format.tags.iter()) {
            tags.merge_named(k, v);
        }
        let mut layout = heapless::Vec::new();
        for c in 0..channels {
            // ffmpeg's own order for 5.1/7.1: FL FR FC LFE then the surrounds.
            let speaker = match (channels, c) {
                (6 | 8, 3) => Speaker::Lfe,
                (6 | 8, 4..) => Speaker::Surround,
                _ => Speaker::Front,
            };
            let _ = layout.push(speaker);
        }
        let codec_name = stream.codec_name.clone().unwrap_or_else(|| format.into());
        let info = StreamInfo {
            sample_rate,
            channels,
            codec: format!("{CODEC_PREFIX}{codec_name}"),
            layout,
        };

        let mut cmd = Command::new(&ffmpeg);
        cmd.args(["-nostdin", "-hide_banner", "-v", "error", "-i"])
            .arg(path)
            .args(["-map", "0:a:0", "-vn", "-sn", "-dn"])
            .args(["-ac", &channels.to_string()])
            .args(["-f", "f32le", "-acodec", "pcm_f32le", "pipe:1"]);
        let mut child = spawn(&mut cmd, true).map_err(DecodeError::Open)?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| DecodeError::Read(std::io::Error::other("ffmpeg has no stdout")))?;
        let stderr = child.stderr.take().map(|mut err| {
            std::thread::spawn(move || {
                let mut kept = Vec::new();
                let mut buf = [0u8; 1024];
                while let Ok(n) = err.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    kept.extend_from_slice(&buf[..n]);
                    if kept.len() > STDERR_KEPT {
                        kept.drain(..kept.len() - STDERR_KEPT);
                    }
                }
                String::from_utf8_lossy(&kept).into_owned()
            })
        });
        Ok(FfmpegPipe {
            child,
            stdout,
            stderr,
            info,
            tags,
            bytes: vec![0; PACKET_FRAMES * channels * 4],
            carry: 0,
            packets: 0,
            dirty_kb: 0,
            probe_cpu_s,
        })
    }

    /// Waits for ffmpeg and says what both helpers cost; an ffmpeg that failed names why.
    pub fn finish(mut self) -> Result<HelperUse, DecodeError> {
        drop(self.stdout);
        let (status, cpu_s) = wait(&mut self.child);
        let said = self
            .stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        let total = HelperUse {
            cpu_s: cpu_s + self.probe_cpu_s,
            peak_rss_kb: self.dirty_kb,
        };
        match status {
            Some(0) => Ok(total),
            _ => Err(DecodeError::Corrupt(
                0,
                format!("ffmpeg: {}", last_line(&said)),
            )),
        }
    }
}

impl PlanarSource for FfmpegPipe {
    fn info(&self) -> &StreamInfo {
        &self.info
    }

    fn tags(&mut self) -> Tags {
        std::mem::take(&mut self.tags)
    }

    fn next_packet(&mut self, planes: &mut [Vec<f32>]) -> Result<usize, DecodeError> {
        if self.packets % SAMPLE_EVERY == 0 {
            if let Some(kb) = dirty_kb(self.child.id()) {
                self.dirty_kb = self.dirty_kb.max(kb);
            }
        }
        self.packets += 1;
        let frame_bytes = self.info.channels * 4;
        // Fill the packet (or what is left of the stream): a read returns what the pipe holds.
        let mut filled = self.carry;
        while filled < self.bytes.len() {
            match self.stdout.read(&mut self.bytes[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(DecodeError::Read(e)),
            }
        }
        let frames = filled / frame_bytes;
        for plane in planes.iter_mut().take(self.info.channels) {
            plane.clear();
        }
        for frame in self.bytes[..frames * frame_bytes].chunks_exact(frame_bytes) {
            for (c, sample) in frame.chunks_exact(4).enumerate() {
                planes[c].push(f32::from_le_bytes([
                    sample[0], sample[1], sample[2], sample[3],
                ]));
            }
        }
        self.carry = filled - frames * frame_bytes;
        self.bytes.copy_within(frames * frame_bytes..filled, 0);
        Ok(frames)
    }
}

/// The picture attached to a file ffmpeg reads (WMA's WM/Picture, WavPack's and Monkey's
/// Audio's APEv2 cover): its bytes as stored, at most [`super::MAX_PICTURE_BYTES`]; `None`
/// without ffmpeg or a picture.
pub fn picture(path: &Path) -> Option<Vec<u8>> {
    let ffmpeg = binary()?;
    let mut cmd = Command::new(ffmpeg);
    cmd.args(["-nostdin", "-hide_banner", "-v", "quiet", "-i"])
        .arg(path)
        .args([
            "-an",
            "-map",
            "0:v:0",
            "-c",
            "copy",
            "-f",
            "image2pipe",
            "pipe:1",
        ]);
    let mut child = spawn(&mut cmd, false).ok()?;
    let mut out = Vec::new();
    let limit = super::MAX_PICTURE_BYTES as u64 + 1;
    let read = child.stdout.take()?.take(limit).read_to_end(&mut out);
    let whole = read.is_ok() && out.len() as u64 <= super::MAX_PICTURE_BYTES as u64;
    if !whole {
        let _ = child.kill(); // a picture too large to serve: not read to its end
    }
    let (status, _) = wait(&mut child);
    (status == Some(0) && whole && !out.is_empty()).then_some(out)
}

/// The part of ffprobe's JSON we read.
#[derive(Debug, Default, serde::Deserialize)]
struct Probe {
    #[serde(default)]
    streams: Vec<ProbeStream>,
    #[serde(default)]
    format: ProbeFormat,
}

#[derive(Debug, Default, serde::Deserialize)]
struct ProbeStream {
    codec_name: Option<String>,
    sample_rate: Option<String>,
    channels: Option<u32>,
    #[serde(default)]
    tags: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Default, serde::Deserialize)]
struct ProbeFormat {
    #[serde(default)]
    tags: std::collections::BTreeMap<String, String>,
}

/// Largest ffprobe answer read (tags included).
const PROBE_LIMIT: u64 = 1 << 20;

fn probe(ffprobe: &Path, path: &Path) -> Result<(Probe, f64), DecodeError> {
    let mut cmd = Command::new(ffprobe);
    cmd.args(["-v", "error", "-of", "json", "-select_streams", "a:0"])
        .args([
            "-show_entries",
            "stream=codec_name,sample_rate,channels:stream_tags:format_tags",
        ])
        .arg(path);
    let mut child = spawn(&mut cmd, false).map_err(DecodeError::Open)?;
    let mut out = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        stdout
            .take(PROBE_LIMIT)
            .read_to_end(&mut out)
            .map_err(DecodeError::Read)?;
    }
    let (status, cpu_s) = wait(&mut child);
    if status != Some(0) {
        return Err(DecodeError::Format(
            "ffprobe could not read it as audio".into(),
        ));
    }
    let probe: Probe = serde_json::from_slice(&out)
        .map_err(|e| DecodeError::Format(format!("ffprobe answered oddly: {e}")))?;
    Ok((probe, cpu_s))
}

/// Starts a helper that dies with this process (a worker killed for its time limit takes its
/// helpers along).
fn spawn(cmd: &mut Command, keep_stderr: bool) -> std::io::Result<Child> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(if keep_stderr {
            Stdio::piped()
        } else {
            Stdio::null()
        });
    // SAFETY: the closure runs in the child between fork and exec and calls only prctl,
    // which is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            crate::os::die_with_parent();
            Ok(())
        });
    }
    cmd.spawn()
}

/// Reaps `child`: its exit code (None: killed by a signal) and the CPU seconds it used.
fn wait(child: &mut Child) -> (Option<i32>, f64) {
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain data we own; wait4 writes into it and `status`.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our own unreaped child; Child does not wait on drop.
    let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    if rc != pid {
        return (child.wait().ok().and_then(|s| s.code()), 0.0);
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    (code, secs(usage.ru_utime) + secs(usage.ru_stime))
}

fn last_line(said: &str) -> String {
    said.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(|l| l.trim().to_string())
        .unwrap_or_else(|| "it stopped without saying why".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_told_by_their_first_bytes() {
        assert_eq!(fallback_format(b"wvpk\x00\x00"), Some("WavPack"));
        assert_eq!(fallback_format(b"MAC \x96\x0f"), Some("Monkey's Audio"));
        assert_eq!(fallback_format(b"MPCK"), Some("Musepack"));
        let mut id3 = b"ID3\x04\x00\x00\x00\x00\x00\x02xxMAC ".to_vec();
        id3.extend_from_slice(&[0; 8]);
        assert_eq!(fallback_format(&id3), Some("Monkey's Audio"));
        assert_eq!(fallback_format(b"RIFF\x00\x00\x00\x00WAVE"), None);
        assert_eq!(fallback_format(b"garbage garbage"), None);
        assert_eq!(fallback_format(b"ID3\x04\x00\x00\x7f\x7f\x7f\x7f"), None);
    }
}
