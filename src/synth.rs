//! Known-answer audio: songs with a set tempo and key, sines at a set level, and a WAV writer.
//!
//! Used by `playlista demo` (a library to analyse on a machine with no music of its own) and
//! by the tests, which need signals whose right answers are known by construction.
//! Deterministic: noise comes from a fixed linear congruential generator.

use std::f64::consts::PI;
use std::io::{self, Write};
use std::path::Path;

/// What a generated song is made of; also its truth.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SongSpec {
    pub bpm: f64,
    /// 0 = C .. 11 = B.
    pub tonic: u8,
    pub minor: bool,
    pub seconds: f64,
}

struct Noise(u64);

impl Noise {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    }
}

fn midi_hz(note: f64) -> f64 {
    440.0 * 2f64.powf((note - 69.0) / 12.0)
}

/// A mono song: a rock beat (kick on 1 and 3, snare on 2 and 4), hi-hat on eighths, a bass and a chord
/// per bar following a cadence in the key (major I-V-vi-IV, minor i-iv-V-i).
pub fn song(spec: &SongSpec, rate: u32) -> Vec<f32> {
    let n = (spec.seconds * rate as f64) as usize;
    let mut out = vec![0.0f64; n];
    let beat = 60.0 / spec.bpm;
    let sr = rate as f64;
    let mut noise = Noise(0x5eed ^ (spec.bpm as u64) << 8 ^ spec.tonic as u64);
    // Drums.
    let mut b = 0usize;
    loop {
        let t0 = b as f64 * beat;
        if t0 >= spec.seconds {
            break;
        }
        let start = (t0 * sr) as usize;
        if b % 2 == 0 {
            for i in 0..((0.25 * sr) as usize).min(n.saturating_sub(start)) {
                let t = i as f64 / sr;
                let f = 50.0 + 90.0 * (-t * 30.0).exp();
                out[start + i] += 0.9 * (2.0 * PI * f * t).sin() * (-t * 12.0).exp();
            }
        } else {
            for i in 0..((0.15 * sr) as usize).min(n.saturating_sub(start)) {
                let t = i as f64 / sr;
                out[start + i] += 0.4 * noise.next() * (-t * 25.0).exp();
            }
        }
        for half in 0..2 {
            let hs = ((t0 + half as f64 * beat / 2.0) * sr) as usize;
            for i in 0..((0.04 * sr) as usize).min(n.saturating_sub(hs)) {
                let t = i as f64 / sr;
                // Differenced noise: a crude high-pass for a hat-like hiss.
                out[hs + i] += 0.15 * (noise.next() - noise.next()) * (-t * 90.0).exp();
            }
        }
        b += 1;
    }
    // Harmony: scale degrees (semitones from the tonic) of each chord root, and its quality.
    let progression: [(i32, bool); 4] = if spec.minor {
        [(0, true), (5, true), (7, false), (0, true)]
    } else {
        [(0, false), (7, false), (9, true), (5, false)]
    };
    let bar = 4.0 * beat;
    let tonic = 48.0 + spec.tonic as f64;
    let mut bar_index = 0usize;
    loop {
        let t0 = bar_index as f64 * bar;
        if t0 >= spec.seconds {
            break;
        }
        let (root, minor_chord) = progression[bar_index % 4];
        let third = if minor_chord { 3.0 } else { 4.0 };
        let root_note = tonic + root as f64;
        let notes = [
            root_note - 12.0,
            root_note + 12.0,
            root_note + 12.0 + third,
            root_note + 19.0,
        ];
        let start = (t0 * sr) as usize;
        let len = ((bar * sr) as usize).min(n.saturating_sub(start));
        for (j, &note) in notes.iter().enumerate() {
            let f = midi_hz(note);
            let amp = if j == 0 { 0.25 } else { 0.12 };
            for i in 0..len {
                let t = i as f64 / sr;
                let env = (-t * 1.5).exp() * (1.0 - (-t * 200.0).exp());
                let v = (2.0 * PI * f * t).sin()
                    + 0.4 * (4.0 * PI * f * t).sin()
                    + 0.2 * (6.0 * PI * f * t).sin();
                out[start + i] += amp * env * v;
            }
        }
        bar_index += 1;
    }
    let peak = out.iter().fold(0.0f64, |m, &v| m.max(v.abs())).max(1e-9);
    out.iter().map(|&v| (0.7 * v / peak) as f32).collect()
}

/// A sine at `dbfs` peak level.
pub fn sine(rate: u32, freq: f64, dbfs: f64, seconds: f64) -> Vec<f32> {
    let amp = 10f64.powf(dbfs / 20.0);
    (0..(seconds * rate as f64) as usize)
        .map(|i| (amp * (2.0 * PI * freq * i as f64 / rate as f64).sin()) as f32)
        .collect()
}

/// Sample encodings the WAV writer can produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WavFormat {
    Pcm16,
    Pcm24,
    Float32,
}

/// Writes interleaved samples (`channels` per frame) as a WAV file.
pub fn write_wav(
    path: &Path,
    rate: u32,
    channels: u16,
    interleaved: &[f32],
    format: WavFormat,
) -> io::Result<()> {
    let (bits, tag): (u16, u16) = match format {
        WavFormat::Pcm16 => (16, 1),
        WavFormat::Pcm24 => (24, 1),
        WavFormat::Float32 => (32, 3),
    };
    let block = channels * bits / 8;
    let data_len = (interleaved.len() * bits as usize / 8) as u32;
    let mut w = io::BufWriter::new(std::fs::File::create(path)?);
    w.write_all(b"RIFF")?;
    w.write_all(&(36 + data_len).to_le_bytes())?;
    w.write_all(b"WAVEfmt ")?;
    w.write_all(&16u32.to_le_bytes())?;
    w.write_all(&tag.to_le_bytes())?;
    w.write_all(&channels.to_le_bytes())?;
    w.write_all(&rate.to_le_bytes())?;
    w.write_all(&(rate * block as u32).to_le_bytes())?;
    w.write_all(&block.to_le_bytes())?;
    w.write_all(&bits.to_le_bytes())?;
    w.write_all(b"data")?;
    w.write_all(&data_len.to_le_bytes())?;
    for &s in interleaved {
        let s = s.clamp(-1.0, 1.0);
        match format {
            WavFormat::Pcm16 => w.write_all(&((s * 32767.0).round() as i16).to_le_bytes())?,
            WavFormat::Pcm24 => {
                w.write_all(&((s * 8_388_607.0).round() as i32).to_le_bytes()[..3])?
            }
            WavFormat::Float32 => w.write_all(&s.to_le_bytes())?,
        }
    }
    w.flush()
}

/// Generates `spec` at `rate` and writes it as a WAV file with `channels` identical channels.
pub fn write_song(
    path: &Path,
    spec: &SongSpec,
    rate: u32,
    channels: u16,
    format: WavFormat,
) -> io::Result<()> {
    let mono = song(spec, rate);
    write_wav(path, rate, channels, &interleave(&mono, channels), format)
}

/// Interleaves a mono signal into `channels` identical channels.
pub fn interleave(mono: &[f32], channels: u16) -> Vec<f32> {
    mono.iter()
        .flat_map(|&s| std::iter::repeat_n(s, channels as usize))
        .collect()
}
