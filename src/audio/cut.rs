//! One track of a single-file album as a WAV file cut from the album on the fly: what the
//! server sends for such a track. 16-bit PCM WAV plays in browsers, VLC and Subsonic apps
//! alike, and its length is known before a sample is decoded, so byte ranges (seeking) work.
//!
//! In: the album's file, the track's span in seconds and its rate and channel count (as the
//! analysis measured them), and a byte range of the WAV. Out: that range's bytes, handed to
//! the caller one packet at a time. Decoding starts at the frame the range begins in (seeking
//! there when the container allows) and stops at the range's end, so memory stays one packet
//! and the time is that of the bytes asked for.

use std::path::Path;

use super::{ChunkSink, DecodeError, Decoder, StreamInfo};

/// Bytes before the samples.
const HEADER: u64 = 44;
/// Bytes handed over at a time.
const PIECE: usize = 64 << 10;

/// The WAV of one span of a file.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WavCut {
    rate: u32,
    channels: u16,
    /// The span's first frame in the file, and its length in frames.
    first: u64,
    frames: u64,
}

impl WavCut {
    /// The WAV of `[start_s, end_s)` of a stream at `rate` with `channels` channels.
    pub fn new(start_s: f64, end_s: f64, rate: u32, channels: u32) -> WavCut {
        let frame = |s: f64| (s.max(0.0) * rate as f64).round() as u64;
        let first = frame(start_s);
        WavCut {
            rate,
            channels: channels.clamp(1, super::MAX_CHANNELS as u32) as u16,
            first,
            frames: frame(end_s).saturating_sub(first),
        }
    }

    fn block(&self) -> u64 {
        self.channels as u64 * 2
    }

    /// The WAV's length in bytes.
    pub fn len(&self) -> u64 {
        HEADER + self.frames * self.block()
    }

    /// True when the span holds no samples.
    pub fn is_empty(&self) -> bool {
        self.frames == 0
    }

    fn header(&self) -> [u8; HEADER as usize] {
        let data = (self.frames * self.block()).min(u32::MAX as u64 - HEADER) as u32;
        let mut h = [0u8; HEADER as usize];
        let mut put = |at: usize, bytes: &[u8]| h[at..at + bytes.len()].copy_from_slice(bytes);
        put(0, b"RIFF");
        put(4, &(data + 36).to_le_bytes());
        put(8, b"WAVEfmt ");
        put(16, &16u32.to_le_bytes());
        put(20, &1u16.to_le_bytes());
        put(22, &self.channels.to_le_bytes());
        put(24, &self.rate.to_le_bytes());
        put(28, &(self.rate * self.block() as u32).to_le_bytes());
        put(32, &(self.block() as u16).to_le_bytes());
        put(34, &16u16.to_le_bytes());
        put(36, b"data");
        put(40, &data.to_le_bytes());
        h
    }

    /// Hands bytes `from..=to` of the WAV to `out`, which returns false to stop (the listener
    /// went away). Where the file holds less audio than the span (it shrank since the
    /// analysis), the rest is silence, so the length announced stays true.
    pub fn produce(
        &self,
        decoder: &mut Decoder,
        file: &Path,
        from: u64,
        to: u64,
        out: &mut dyn FnMut(&[u8]) -> bool,
    ) -> Result<(), DecodeError> {
        let to = to.min(self.len().saturating_sub(1));
        if from > to {
            return Ok(());
        }
        let mut sink = Pcm16 {
            cut: self,
            // Bytes of the WAV still to skip (the range may begin inside a frame) and to send.
            skip: 0,
            left: to - from + 1,
            piece: Vec::with_capacity(PIECE),
            out,
            gone: false,
        };
        if from < HEADER {
            let header = self.header();
            let end = (to + 1).min(HEADER);
            sink.push(&header[from as usize..end as usize]);
        }
        if sink.left > 0 {
            let byte = from.max(HEADER) - HEADER;
            let frame = byte / self.block();
            sink.skip = byte % self.block();
            decoder.decode_planes(file, self.first + frame, &mut sink)?;
            // Silence for audio the file no longer has.
            while sink.left > 0 && !sink.gone {
                let zeros = [0u8; 4096];
                let n = (sink.left as usize).min(zeros.len());
                sink.push(&zeros[..n]);
            }
        }
        sink.flush();
        Ok(())
    }
}

/// The sink that turns planes into the WAV's interleaved little-endian 16-bit samples.
struct Pcm16<'a> {
    cut: &'a WavCut,
    skip: u64,
    left: u64,
    piece: Vec<u8>,
    out: &'a mut dyn FnMut(&[u8]) -> bool,
    gone: bool,
}

impl Pcm16<'_> {
    fn push(&mut self, bytes: &[u8]) {
        let n = (bytes.len() as u64).min(self.left) as usize;
        self.piece.extend_from_slice(&bytes[..n]);
        self.left -= n as u64;
        if self.piece.len() >= PIECE {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if !self.piece.is_empty() && !self.gone {
            self.gone = !(self.out)(&self.piece);
        }
        self.piece.clear();
    }
}

impl ChunkSink for Pcm16<'_> {
    fn begin(&mut self, _info: &StreamInfo) {}

    fn chunk(&mut self, planes: &[&[f32]], _mono: &[f32]) {
        let n = planes.first().map_or(0, |p| p.len());
        let channels = self.cut.channels as usize;
        for i in 0..n {
            let mut frame = [0u8; 2 * super::MAX_CHANNELS];
            for c in 0..channels {
                // A stream with fewer planes than announced repeats its last one.
                let plane = planes.get(c).or(planes.last()).map_or(&[][..], |p| *p);
                let s = plane.get(i).copied().unwrap_or(0.0).clamp(-1.0, 1.0);
                let v = (s * 32767.0).round() as i16;
                frame[2 * c..2 * c + 2].copy_from_slice(&v.to_le_bytes());
            }
            let frame = &frame[..2 * channels];
            let skip = (self.skip as usize).min(frame.len());
            self.skip -= skip as u64;
            self.push(&frame[skip..]);
            if self.left == 0 || self.gone {
                return;
            }
        }
    }

    fn done(&self) -> bool {
        self.left == 0 || self.gone
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_span_cut_out_of_a_file_has_its_length_and_its_samples() {
        let dir = tempfile::tempdir().unwrap();
        let wav = dir.path().join("album.wav");
        // A stereo ramp: every frame's value says where it lies.
        let rate = 8_000;
        let ramp: Vec<f32> = (0..rate * 3)
            .map(|i| (i % 16_000) as f32 / 32_768.0)
            .collect();
        let stereo = crate::synth::interleave(&ramp, 2);
        crate::synth::write_wav(&wav, rate, 2, &stereo, crate::synth::WavFormat::Pcm16).unwrap();
        let cut = WavCut::new(1.0, 2.0, rate, 2);
        assert_eq!(cut.len(), 44 + 4 * 8_000);
        let mut decoder = Decoder::new();
        let mut read = |from: u64, to: u64| {
            let mut bytes = Vec::new();
            cut.produce(&mut decoder, &wav, from, to, &mut |b| {
                bytes.extend_from_slice(b);
                true
            })
            .unwrap();
            bytes
        };
        let bytes = read(0, cut.len() - 1);
        assert_eq!(bytes.len() as u64, cut.len());
        assert_eq!(&bytes[..4], b"RIFF");
        let sample = |at: usize| i16::from_le_bytes([bytes[44 + 4 * at], bytes[45 + 4 * at]]);
        assert_eq!(sample(0), 8_000);
        assert_eq!(sample(7_999), 15_999);
        // A range from the middle, starting inside a frame.
        assert_eq!(read(45 + 400, 44 + 800), bytes[45 + 400..=44 + 800]);

        // A listener that goes away after the first piece stops the decode.
        let whole = WavCut::new(0.0, 3.0, rate, 2);
        assert!(whole.len() > PIECE as u64);
        let mut calls = 0;
        whole
            .produce(&mut decoder, &wav, 0, whole.len() - 1, &mut |_| {
                calls += 1;
                false
            })
            .unwrap();
        assert_eq!(calls, 1);
    }
}
