//! playlista: turns a home music library into playlists, on a Raspberry Pi-class box.
//!
//! # Layout
//! Data flows down this list: a module uses only modules above it (checked against the
//! imports; the leaves first).
//! - [`dsp`]: numeric kernels (the vectorised dot product) shared by audio, features and the
//!   embedding. Leaf.
//! - [`tags`]: a container's own tags (ID3v2/v1, Vorbis comments, MP4 atoms, RIFF INFO)
//!   normalised to one small struct. Leaf.
//! - [`os`]: the libc calls beyond std (signals, priority, rlimits, CPU clocks, file locks,
//!   free disk space, local time), each a small safe function. Leaf; [`usage`] (this
//!   process's CPU time and peak memory) stands on it.
//! - [`library`]: walking the music folders; content fingerprints that follow moved files.
//!   Leaf.
//! - [`synth`]: known-answer signals (click tracks, chords, sines) and a WAV writer, for the
//!   demo library and the tests. Leaf.
//! - [`audio`]: opens a file through a memory map ([`audio::open`], for the decoder and cover
//!   art alike) and decodes it with symphonia into fixed-size chunks: native-rate planes and
//!   a mono down-mix at 22.05 kHz.
//! - [`features`]: the DSP, streaming accumulators for tempo, key, loudness, danceability,
//!   spectral shape and timbre, and the one measurement record ([`features::Record`], its
//!   descriptor table [`features::record::FIELDS`] and [`features::ANALYSIS_VERSION`]).
//!   Knows nothing of files.
//! - [`embedding`]: full mode's MusiCNN embedding: log-mel patches from the analysis stream,
//!   the quantised network compiled into the binary and run by tract, 200-d mean + 50 tags.
//! - [`analysis`]: one path in, one [`analysis::Analysis`] out, with per-file error and panic
//!   isolation and typed failure kinds; one [`analysis::Analyzer`] per worker owns every
//!   buffer.
//! - [`store`]: the SQLite database, split by job: schema and migrations (feature columns
//!   follow the record's table), tracks, batch writes, playlists, the look-up cache, the
//!   one-analysis-at-a-time lock beside the file, and what a failed open or write means in
//!   words. The only module that writes SQL.
//! - [`pipeline`]: one pass over the library: scanner, bounded queue, worker processes, batch
//!   writer; resumable, interruptible, memory-aware; reports each committed batch.
//! - [`report`]: how an analysis is shown to a person or a script (`inspect`), and a pass's
//!   summary and `--status` text.
//! - [`lookups`]: optional on-line look-ups (MusicBrainz, Last.fm clients over one HTTP
//!   client) of analysed tracks after analysis, cached through the store; genres, years and
//!   weak BPMs filled from that cache. Takes its own [`lookups::Settings`].
//! - [`playlist`]: stored features into playlists (the original's methods, radio, paths, DJ
//!   mixes), incremental updates, M3U8 files.
//! - [`config`]: flags, the TOML config file and machine-derived defaults, and the settings
//!   they make: the pipeline's options, the look-ups' settings, the playlist flags
//!   (`[playlists]`).
//! - [`board`]: the box's status LED and rescan button on GPIO (embedded-hal traits, the
//!   kernel's GPIO character device); absent GPIO means no panel, never an error. Knows
//!   presses, not what they ask for.
//! - [`job`]: the library job (scan → analyse → retry → look-ups → `Failed_Files.m3u` →
//!   playlists) with a progress observer; run by `playlista`, `serve`, `demo` and `bench`.
//! - [`server`]: `playlista serve`: `server::serve(listener, state, shutdown)` (HTTP: web
//!   page, JSON API, M3U8, streams, Subsonic, metrics), and `server::run`, which adds the
//!   runtime, signals, mDNS, the board and the background job that keeps the library current.
//! - [`demo`]: a generated library with known answers, run through the whole job.
//! - `bench` (cargo feature `bench`, on by default, left out of the box's build): the corpus
//!   benchmarks (per-file speed against decode-only, memory, accuracy), the whole-library
//!   table, the playlist and server benchmarks.

pub mod analysis;
pub mod audio;
#[cfg(feature = "bench")]
pub mod bench;
pub mod board;
pub mod config;
pub mod cue;
pub mod demo;
pub mod dsp;
pub mod embedding;
pub mod features;
pub mod job;
pub mod library;
pub mod lookups;
pub mod os;
pub mod pipeline;
pub mod playlist;
pub mod report;
pub mod server;
pub mod store;
pub mod synth;
pub mod tags;
pub mod usage;
