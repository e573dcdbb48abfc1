//! playlista: turns a home music library into playlists, on a Raspberry Pi-class box.
//!
//! # Layout
//! Data flows down this list; a module uses the ones above it, never the reverse.
//! - [`audio`]: opens a file through a memory map and decodes it with symphonia into
//!   fixed-size chunks: native-rate planes and a mono down-mix at 22.05 kHz.
//! - [`metadata`]: container tags (ID3v2/v1, Vorbis comments, MP4 atoms).
//! - [`features`]: the DSP; streaming accumulators for tempo, key, loudness, danceability,
//!   spectral shape. Knows nothing of files.
//! - [`analysis`]: one path in, one [`analysis::Analysis`] out, with per-file error and panic
//!   isolation; one [`analysis::Analyzer`] per worker owns every buffer.
//! - [`report`]: how an analysis is shown to a person or a script (`inspect`).
//! - [`bench`]: the corpus benchmark: speed against decode-only, memory, accuracy.
//! - [`synth`]: known-answer signals (click tracks, chords, sines) and a WAV writer, for the
//!   demo library and the tests.

pub mod analysis;
pub mod audio;
pub mod bench;
pub mod features;
pub mod metadata;
pub mod report;
pub mod synth;
