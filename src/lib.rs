//! playlista: turns a home music library into playlists, on a Raspberry Pi-class box.
//!
//! # Layout
//! Data flows down this list; a module uses the ones above it, never the reverse.
//! - [`dsp`]: numeric kernels (the vectorised dot product) shared by audio, features and the
//!   embedding; a leaf.
//! - [`audio`]: opens a file through a memory map and decodes it with symphonia into
//!   fixed-size chunks: native-rate planes and a mono down-mix at 22.05 kHz.
//! - [`metadata`]: container tags (ID3v2/v1, Vorbis comments, MP4 atoms); the MusicBrainz and
//!   Last.fm clients.
//! - [`features`]: the DSP; streaming accumulators for tempo, key, loudness, danceability,
//!   spectral shape. Knows nothing of files.
//! - [`embedding`]: full mode's MusiCNN embedding: log-mel patches from the analysis stream,
//!   the quantised network compiled into the binary and run by tract, 200-d mean + 50 tags.
//! - [`analysis`]: one path in, one [`analysis::Analysis`] out, with per-file error and panic
//!   isolation; one [`analysis::Analyzer`] per worker owns every buffer.
//! - [`report`]: how an analysis is shown to a person or a script (`inspect`), and a library
//!   run's summary and `--status` text (it uses `pipeline` and `store`'s types).
//! - [`library`]: walking the music folders; content fingerprints that follow moved files.
//! - [`store`]: the SQLite database: schema, migrations, batched writes, queries.
//! - [`pipeline`]: the whole-library run: scanner, bounded queue, worker processes, batch
//!   writer; resumable, interruptible, memory-aware.
//! - [`lookups`]: optional on-line look-ups (MusicBrainz, Last.fm) of analysed tracks after
//!   analysis, cached in the store; genres, years and weak BPMs filled from that cache.
//! - [`playlist`]: stored features into playlists (the original's methods, radio, paths, DJ
//!   mixes), incremental updates, M3U8 files.
//! - [`board`]: the box's status LED and rescan button on GPIO (embedded-hal traits, the
//!   kernel's GPIO character device); absent GPIO means no panel, never an error.
//! - [`server`]: `playlista serve`: HTTP (web page, JSON API, M3U8, streams, Subsonic,
//!   metrics), mDNS, and the background analysis that keeps the library current.
//! - [`config`]: flags, the TOML config file and machine-derived defaults, and the settings
//!   they make: the pipeline's options, the playlist flags (`[playlists]`).
//! - [`job`]: the library job (scan → analyse → retry → look-ups → `Failed_Files.m3u` →
//!   playlists) with a progress observer; run by `playlista`, `serve`, `demo` and `bench`.
//! - `bench` (cargo feature `bench`, on by default): the corpus benchmarks: per-file speed
//!   against decode-only, memory, accuracy; and the whole-library table.
//! - [`demo`]: a generated library with known answers, run through the whole job.
//! - [`synth`]: known-answer signals (click tracks, chords, sines) and a WAV writer, for the
//!   demo library and the tests.
//! - [`usage`]: this process's CPU time and peak memory, from the kernel.
//! - [`os`]: the libc calls beyond std (signals, priority, rlimits, CPU clocks), each a small
//!   safe function.

pub mod analysis;
pub mod audio;
#[cfg(feature = "bench")]
pub mod bench;
pub mod board;
pub mod config;
pub mod demo;
pub mod dsp;
pub mod embedding;
pub mod features;
pub mod job;
pub mod library;
pub mod lookups;
pub mod metadata;
pub mod os;
pub mod pipeline;
pub mod playlist;
pub mod report;
pub mod server;
pub mod store;
pub mod synth;
pub mod usage;
