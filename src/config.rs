//! Settings: the original tool's flags, a TOML config file holding the same settings, and the
//! defaults that follow from the machine (cores, free memory) and `--low_memory`.
//!
//! In: [`Flags`] and [`PlaylistFlags`] (parsed by clap in `main`) and the config file. Out: a
//! resolved [`Config`], and from it the settings of what it builds: the pipeline's
//! [`Options`] ([`Config::pipeline_options`]) and the playlist [`playlist::Flags`]
//! ([`Config::playlists`], the `[playlists]` section over [`playlist::Flags::default`]).
//! Flags win over the file; the file wins over defaults. The file is `--config PATH`, else
//! `$XDG_CONFIG_HOME/playlista/config.toml` (`~/.config/...`), else
//! `/etc/playlista/config.toml` (the box), whichever exists first. Its keys are the flags'
//! long names in snake case, e.g. `library = "/srv/music"`, `workers = 2`,
//! `memory_limit = "512MB"`, `low_memory = true`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use crate::analysis::Mode;
use crate::embedding::Coverage;
use crate::lookups::settings::{LastFmSection, LookupsSection, MusicBrainzSection};
use crate::pipeline::worker::Limits;
use crate::pipeline::{Options, Progress, Work};
use crate::playlist::{self, Method};
use crate::store::Tuning;

/// The settings a config file may hold, and the matching flags. `None`/`false`: not given.
#[derive(Debug, Clone, Default, Deserialize, clap::Args)]
#[serde(deny_unknown_fields)]
// No argument group: the struct is flattened into several commands beside other Flags.
#[group(skip)]
pub struct Flags {
    /// The music folder (read only: playlista never writes, moves or renames music). The
    /// config file may list several: `library = ["/a", "/b"]`.
    #[arg(long, value_name = "DIR")]
    #[serde(default, deserialize_with = "one_or_many")]
    pub library: Vec<PathBuf>,
    /// Where playlists are written (default: the data dir's `playlists/`).
    #[arg(long = "output_dir", alias = "output-dir", value_name = "DIR")]
    pub output_dir: Option<PathBuf>,
    /// Where the database lives: DIR/playlista.db (default: $XDG_DATA_HOME/playlista).
    #[arg(long = "cache_dir", alias = "cache-dir", value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Analysis processes (default: from the cores and the free memory per --memory_limit).
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
    /// Results per database transaction (and per PERF line).
    #[arg(long = "batch_size", alias = "batch-size", value_name = "N")]
    pub batch_size: Option<usize>,
    /// Memory per worker, e.g. 512MB or 2GB: chooses the worker count and caps each worker's
    /// heap (a file that needs more fails alone).
    #[arg(long = "memory_limit", alias = "memory-limit", value_name = "SIZE")]
    pub memory_limit: Option<String>,
    /// One worker, the smallest buffers and a small database cache (for 1 GB boxes).
    #[arg(long = "low_memory", alias = "low-memory")]
    #[serde(default)]
    pub low_memory: bool,
    /// The original's fast feature set: no timbre, no MusiCNN embedding (about 5x faster).
    /// Without it, analysis is full mode, as in the original.
    #[arg(long = "fast_mode", alias = "fast-mode")]
    #[serde(default)]
    pub fast_mode: bool,
    /// Full mode: how much of each track the MusiCNN network hears: `sampled` (at most 12
    /// three-second patches spread over the track, fewer once their mean is stable: the
    /// default), a number of patches, or `full` (every patch: ~8x slower on a 4-minute track;
    /// the default's mean keeps a cosine of 0.983-1.0, median 0.995, to the all-patch mean on
    /// the corpus's real tracks).
    #[arg(
        long = "embedding_coverage",
        alias = "embedding-coverage",
        value_name = "sampled|full|N"
    )]
    pub embedding_coverage: Option<String>,
    /// Files above this size (MB) get a proportionally longer time limit.
    #[arg(
        long = "large_file_threshold",
        alias = "large-file-threshold",
        value_name = "MB"
    )]
    pub large_file_threshold: Option<u64>,
    /// Time limit for analysing one file of normal size, in seconds (retries get more).
    #[arg(long = "file_timeout", alias = "file-timeout", value_name = "SECONDS")]
    pub file_timeout: Option<f64>,
    /// Ignore stored results: analyse every file again (and skip cached look-ups).
    #[arg(long = "no_cache", alias = "no-cache")]
    #[serde(default)]
    pub no_cache: bool,
    /// error, warn, info, debug or trace.
    #[arg(long = "log_level", alias = "log-level", value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// `[server]` in the config file: how `playlista serve` listens and announces itself.
    #[arg(skip)]
    #[serde(default)]
    pub server: ServerSection,
    /// `[subsonic]` in the config file: the one account phone apps log in with.
    #[arg(skip)]
    #[serde(default)]
    pub subsonic: SubsonicSection,
    /// `[board]` in the config file: the box's GPIO pins and service limits (board/*.toml).
    #[arg(skip)]
    #[serde(default)]
    pub board: BoardSection,
    /// `[musicbrainz]` in the config file: on-line look-ups (off unless enabled).
    #[arg(skip)]
    #[serde(default)]
    pub musicbrainz: MusicBrainzSection,
    /// `[lastfm]` in the config file: on-line look-ups (on only with an API key).
    #[arg(skip)]
    #[serde(default)]
    pub lastfm: LastFmSection,
    /// `[lookups]` in the config file: how long answers are kept, time limits.
    #[arg(skip)]
    #[serde(default)]
    pub lookups: LookupsSection,
    /// `[playlists]` in the config file: the playlist settings' defaults (the flags win).
    #[arg(skip)]
    #[serde(default)]
    pub playlists: PlaylistFlags,
}

/// The playlist flags (the original's three, and ours), and the `[playlists]` section of the
/// config file (the same keys, without the per-run `seed`, `from`, `to` and `explain`).
/// `None`/`false`: not given. The defaults are [`playlist::Flags::default`]'s, and the help
/// text shows them from there.
#[derive(Debug, Clone, Default, Deserialize, clap::Args)]
#[serde(deny_unknown_fields)]
// No argument group: the struct is flattened into several commands beside other Flags.
#[group(skip)]
pub struct PlaylistFlags {
    #[arg(
        short = 'm',
        long = "playlist_method",
        alias = "playlist-method",
        value_enum,
        help = defaulted("How to make playlists", DEFAULTS.method.name())
    )]
    #[serde(default, deserialize_with = "method_name")]
    pub method: Option<Method>,
    #[arg(
        long = "num_playlists",
        alias = "num-playlists",
        value_name = "N",
        help = defaulted("Clusters for -m kmeans", DEFAULTS.num_playlists)
    )]
    pub num_playlists: Option<usize>,
    #[arg(
        long = "min_tracks_per_genre",
        alias = "min-tracks-per-genre",
        value_name = "N",
        help = defaulted(
            "Fewest tracks for a genre (or genre + decade) playlist of -m tags",
            DEFAULTS.min_tracks_per_genre
        )
    )]
    pub min_tracks_per_genre: Option<usize>,
    /// The song a -m radio starts from (a path in the library).
    #[arg(long, value_name = "FILE")]
    #[serde(skip)]
    pub seed: Option<PathBuf>,
    /// Where a -m path starts.
    #[arg(long, value_name = "FILE")]
    #[serde(skip)]
    pub from: Option<PathBuf>,
    /// Where a -m path ends.
    #[arg(long, value_name = "FILE")]
    #[serde(skip)]
    pub to: Option<PathBuf>,
    #[arg(
        long,
        value_name = "N",
        help = defaulted("Tracks in a radio, path or mix", DEFAULTS.length)
    )]
    pub length: Option<usize>,
    #[arg(
        long = "min_playlist_size",
        alias = "min-playlist-size",
        value_name = "N",
        help = defaulted("Playlists with fewer tracks are dropped", DEFAULTS.min_playlist_size)
    )]
    pub min_playlist_size: Option<usize>,
    #[arg(
        long = "mixed_below",
        alias = "mixed-below",
        value_name = "N",
        help = defaulted(
            "Playlists with fewer tracks go into Mixed_Collection",
            DEFAULTS.mixed_below
        )
    )]
    pub mixed_below: Option<usize>,
    #[arg(
        long = "max_playlist_size",
        alias = "max-playlist-size",
        value_name = "N",
        help = defaulted(
            "Longer playlists are split into _Part2, _Part3...",
            DEFAULTS.max_playlist_size
        )
    )]
    pub max_playlist_size: Option<usize>,
    /// Most tracks of one artist in a playlist (default: a quarter of it, at least 3).
    #[arg(long = "max_per_artist", alias = "max-per-artist", value_name = "N")]
    pub max_per_artist: Option<usize>,
    #[arg(
        long = "min_slot_minutes",
        alias = "min-slot-minutes",
        value_name = "MIN",
        help = defaulted(
            "Shortest time-of-day playlist (-m time), in minutes: a slot with less is filled \
             with the tracks nearest to its rules",
            DEFAULTS.min_slot_minutes
        )
    )]
    pub min_slot_minutes: Option<f64>,
    /// Print every track with the reason it is in its playlist.
    #[arg(long)]
    #[serde(skip)]
    pub explain: bool,
}

/// The playlist defaults, for the help text.
const DEFAULTS: playlist::Flags = playlist::Flags::DEFAULT;

/// A flag's help with its default, as clap's `default_value_t` would show it.
fn defaulted(help: &str, default: impl std::fmt::Display) -> String {
    format!("{help} [default: {default}]")
}

impl PlaylistFlags {
    /// These flags over `base`: what is given wins.
    pub fn over(&self, base: &playlist::Flags) -> playlist::Flags {
        playlist::Flags {
            method: self.method.unwrap_or(base.method),
            num_playlists: self.num_playlists.unwrap_or(base.num_playlists),
            min_tracks_per_genre: self
                .min_tracks_per_genre
                .unwrap_or(base.min_tracks_per_genre),
            seed: self.seed.clone().or_else(|| base.seed.clone()),
            from: self.from.clone().or_else(|| base.from.clone()),
            to: self.to.clone().or_else(|| base.to.clone()),
            length: self.length.unwrap_or(base.length),
            min_playlist_size: self.min_playlist_size.unwrap_or(base.min_playlist_size),
            mixed_below: self.mixed_below.unwrap_or(base.mixed_below),
            max_playlist_size: self.max_playlist_size.unwrap_or(base.max_playlist_size),
            max_per_artist: self.max_per_artist.or(base.max_per_artist),
            min_slot_minutes: self.min_slot_minutes.unwrap_or(base.min_slot_minutes),
            explain: self.explain || base.explain,
        }
    }
}

/// A method name in the config file, as on the command line (`method = "kmeans"`).
fn method_name<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Method>, D::Error> {
    use clap::ValueEnum;
    let name = String::deserialize(d)?;
    Method::from_str(&name, true)
        .map(Some)
        .map_err(|_| serde::de::Error::custom(format!("unknown playlist method {name:?}")))
}

/// `[server]`: settings of `playlista serve` (flags of `serve` win).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    /// `ADDR:PORT` to listen on (default `0.0.0.0:8420`).
    pub bind: Option<String>,
    /// The mDNS name: the box answers as `NAME.local` (default `playlista`).
    pub name: Option<String>,
    /// Minutes between full rescans of the library, for mounts that send no file events
    /// (NFS, SMB). 0 turns them off. Default 60.
    pub rescan_minutes: Option<u64>,
    /// Playlist methods the service keeps up to date (default all, time, kmeans, tags, mix).
    pub methods: Option<Vec<String>>,
    /// Most HTTP connections open at once (default 256).
    pub max_connections: Option<usize>,
    /// Host names the service answers to beside its IP addresses, `localhost`, `NAME` and
    /// `NAME.local` (e.g. a router's DNS name for the box). Any other Host gets 421.
    pub allowed_hosts: Option<Vec<String>>,
    /// Every route needs an account (the `[subsonic]` ones): a login page for the browser,
    /// HTTP Basic or a token for API clients, signed stream URLs in M3U8 files. Default off.
    #[serde(default)]
    pub private: bool,
}

/// `[subsonic]`: the accounts the Subsonic API accepts: `user` + `password`, and for a
/// household more in `accounts = [{ user = "…", password = "…" }, …]`. Each account has its
/// own stars, plays, queue and playlists; `read_only = true` makes one that may browse and
/// play but not write. No password, no access.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubsonicSection {
    pub user: Option<String>,
    pub password: Option<String>,
    #[serde(default)]
    pub accounts: Vec<AccountEntry>,
}

/// One entry of `[subsonic] accounts`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountEntry {
    pub user: String,
    pub password: String,
    #[serde(default)]
    pub read_only: bool,
}

impl SubsonicSection {
    /// Every account with a user and a non-empty password, `user`/`password` first; a user
    /// named twice keeps its first entry.
    pub fn accounts(&self) -> Vec<AccountEntry> {
        let first = match (&self.user, &self.password) {
            (Some(user), Some(password)) => Some(AccountEntry {
                user: user.clone(),
                password: password.clone(),
                read_only: false,
            }),
            _ => None,
        };
        let mut out: Vec<AccountEntry> = Vec::new();
        for a in first.into_iter().chain(self.accounts.iter().cloned()) {
            if !a.user.is_empty() && !a.password.is_empty() && !out.iter().any(|o| o.user == a.user)
            {
                out.push(a);
            }
        }
        out
    }
}

impl std::fmt::Debug for AccountEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountEntry")
            .field("user", &self.user)
            .field("password", &"***")
            .field("read_only", &self.read_only)
            .finish()
    }
}

impl std::fmt::Debug for SubsonicSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubsonicSection")
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("accounts", &self.accounts)
            .finish()
    }
}

/// `[board]`: the box's front panel (src/board) and what its installers read. The board
/// profiles in `board/*.toml` fill it; without pins there is no LED and no button.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoardSection {
    /// The profile's name, for people reading the file (`rpi4`, `generic-arm-1gb`, ...).
    pub profile: Option<String>,
    /// The GPIO chip: a path (`/dev/gpiochip0`) or a label (`pinctrl-bcm2711`); default the
    /// first chip.
    pub gpio_chip: Option<String>,
    /// Line offset of the status LED on that chip.
    pub led_pin: Option<u32>,
    /// The LED is lit by a low level.
    #[serde(default)]
    pub led_active_low: bool,
    /// Line offset of the rescan button (short press: rescan; long press: re-analyse all).
    pub button_pin: Option<u32>,
    /// The button pulls the line low when pressed (wired to ground, with a pull-up).
    #[serde(default)]
    pub button_active_low: bool,
    /// The service's memory ceiling (systemd `MemoryMax=`, e.g. `"768M"`): the .deb and
    /// Yocto installers write it into the unit; the program itself does not read it.
    pub memory_max: Option<String>,
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<PathBuf>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(PathBuf),
        Many(Vec<PathBuf>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(p) => vec![p],
        OneOrMany::Many(v) => v,
    })
}

/// Everything resolved: what a run uses.
#[derive(Debug, Clone)]
pub struct Config {
    pub library: Vec<PathBuf>,
    pub output_dir: PathBuf,
    pub cache_dir: PathBuf,
    pub workers: usize,
    /// How the worker count was chosen, for the log.
    pub workers_why: String,
    pub batch_size: usize,
    pub queue_depth: usize,
    pub low_memory: bool,
    /// Fast, or full with its embedding coverage.
    pub mode: Mode,
    pub no_cache: bool,
    pub large_file_bytes: u64,
    pub file_timeout: Duration,
    pub limits: Limits,
    pub tuning: Tuning,
    pub log_level: String,
    /// The config file that was read, if any.
    pub file: Option<PathBuf>,
    pub server: ServerSection,
    pub subsonic: SubsonicSection,
    pub board: BoardSection,
    pub musicbrainz: MusicBrainzSection,
    /// With the key from `LASTFM_API_KEY` when that is set (it wins over the file, as a flag
    /// would).
    pub lastfm: LastFmSection,
    pub lookups: LookupsSection,
    /// The playlist settings: `[playlists]` over the defaults (`main` lays the flags over
    /// these).
    pub playlists: playlist::Flags,
}

impl Config {
    pub fn db_path(&self) -> PathBuf {
        self.cache_dir.join("playlista.db")
    }

    /// What the on-line look-ups need of this config.
    pub fn lookup_settings(&self) -> crate::lookups::Settings {
        crate::lookups::Settings {
            db: self.db_path(),
            tuning: self.tuning,
            full_mode: self.mode != Mode::Fast,
            no_cache: self.no_cache,
            musicbrainz: self.musicbrainz.clone(),
            lastfm: self.lastfm.clone(),
            lookups: self.lookups.clone(),
        }
    }

    /// The pipeline's options for one run over the library (progress: [`Progress::auto`]).
    pub fn pipeline_options(&self, work: Work) -> Options {
        Options {
            roots: self.library.clone(),
            db: self.db_path(),
            work,
            // Retries run one at a time: a file that failed under load gets the machine to
            // itself.
            workers: if work == Work::Failed {
                1
            } else {
                self.workers
            },
            batch_size: self.batch_size,
            queue_depth: self.queue_depth,
            mode: self.mode,
            max_attempts: 3,
            file_timeout: self.file_timeout,
            large_file_bytes: self.large_file_bytes,
            limits: self.limits,
            tuning: self.tuning,
            progress: Progress::auto(),
        }
    }
}

/// Memory a worker is planned with when `--memory_limit` is not given: analysis itself needs
/// ~15 MB; the rest is head-room for the system and the NAS's own services.
const DEFAULT_WORKER_BUDGET: u64 = 128 << 20;
/// Default heap cap of one worker process: far above any real file's need, far below what a
/// hostile header can ask for.
const DEFAULT_WORKER_HEAP_CAP: u64 = 1 << 30;
/// Longest `--file_timeout` (a day): beyond it a stuck decoder is not a timeout any more,
/// and a huge value would overflow the deadline arithmetic.
const MAX_FILE_TIMEOUT: f64 = 86_400.0;

/// Longest `rescan_minutes` (a week) and most `max_connections`: beyond them the timer
/// arithmetic overflows or the box runs out of file descriptors long before.
const MAX_RESCAN_MINUTES: u64 = 7 * 24 * 60;
const MAX_CONNECTIONS: usize = 65_536;

/// The `[server]` numbers within their bounds.
fn check_server(server: &ServerSection) -> Result<()> {
    if server
        .rescan_minutes
        .is_some_and(|m| m > MAX_RESCAN_MINUTES)
    {
        bail!(
            "[server] rescan_minutes must be at most {MAX_RESCAN_MINUTES} (a week); 0 turns rescans off"
        );
    }
    if server
        .max_connections
        .is_some_and(|n| n == 0 || n > MAX_CONNECTIONS)
    {
        bail!("[server] max_connections must be from 1 to {MAX_CONNECTIONS}");
    }
    Ok(())
}

/// `--fast_mode` and `--embedding_coverage` as one [`Mode`].
pub fn analysis_mode(fast: bool, coverage: Option<&str>) -> Result<Mode> {
    if fast {
        return Ok(Mode::Fast);
    }
    let coverage = match coverage.map(str::trim) {
        None | Some("sampled") => Coverage::default(),
        Some("full" | "all") => Coverage::Full,
        Some(n) => match n.parse::<usize>() {
            Ok(n) if (1..=10_000).contains(&n) => Coverage::Sampled(n),
            _ => bail!("--embedding_coverage {n:?}: use sampled, full or a number of patches"),
        },
    };
    Ok(Mode::Full(coverage))
}

/// Parses `2GB`, `512MB`, `512M`, `1.5G`, `100000K` or a plain byte count.
pub fn parse_size(text: &str) -> Result<u64> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number
        .parse()
        .with_context(|| format!("not a size: {text:?} (try 512MB or 2GB)"))?;
    let scale = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1u64,
        "K" | "KB" | "KIB" => 1 << 10,
        "M" | "MB" | "MIB" => 1 << 20,
        "G" | "GB" | "GIB" => 1 << 30,
        "T" | "TB" | "TIB" => 1 << 40,
        _ => bail!("not a size: {text:?} (try 512MB or 2GB)"),
    };
    let bytes = value * scale as f64;
    if !(bytes.is_finite() && bytes >= (1 << 20) as f64) {
        bail!("{text:?} is too small for a worker (at least 1MB)");
    }
    Ok(bytes as u64)
}

/// The config file to read: the given one (must exist), else the first default that exists.
fn config_path(given: Option<&Path>) -> Result<Option<PathBuf>> {
    if let Some(p) = given {
        if !p.is_file() {
            bail!("config file {} does not exist", p.display());
        }
        return Ok(Some(p.to_path_buf()));
    }
    let xdg = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")));
    let candidates = xdg
        .map(|d| d.join("playlista/config.toml"))
        .into_iter()
        .chain([PathBuf::from("/etc/playlista/config.toml")]);
    Ok(candidates.into_iter().find(|p| p.is_file()))
}

fn data_dir() -> PathBuf {
    std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."))
        .join("playlista")
}

/// `MemAvailable` from /proc/meminfo, in bytes.
fn available_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Chooses the worker count: the flag, or as many as there are cores while three quarters of
/// the free memory covers one budget each; at least one.
fn choose_workers(flag: Option<usize>, low_memory: bool, budget: u64) -> (usize, String) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if low_memory {
        return (1, "--low_memory".into());
    }
    if let Some(n) = flag {
        return (n.max(1), "--workers".into());
    }
    match available_memory() {
        Some(free) => {
            let by_memory = (free / 4 * 3 / budget.max(1)) as usize;
            let n = cores.min(by_memory).max(1);
            (
                n,
                format!(
                    "{cores} cores, {} MB free, {} MB per worker",
                    free >> 20,
                    budget >> 20
                ),
            )
        }
        None => (cores, format!("{cores} cores")),
    }
}

/// Makes a path absolute without resolving symlinks (a linked library keeps its name).
fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// Resolves flags + config file + defaults.
pub fn resolve(flags: &Flags, config: Option<&Path>) -> Result<Config> {
    let file = config_path(config)?;
    let from_file: Flags = match &file {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read config file {}", p.display()))?;
            toml::from_str(&text).with_context(|| format!("in config file {}", p.display()))?
        }
        None => Flags::default(),
    };
    let library = if flags.library.is_empty() {
        from_file.library.clone()
    } else {
        flags.library.clone()
    };
    let memory_limit = flags
        .memory_limit
        .as_deref()
        .or(from_file.memory_limit.as_deref())
        .map(parse_size)
        .transpose()?;
    let low_memory = flags.low_memory || from_file.low_memory;
    let (workers, workers_why) = choose_workers(
        flags.workers.or(from_file.workers),
        low_memory,
        memory_limit.unwrap_or(DEFAULT_WORKER_BUDGET),
    );
    let batch_size = flags
        .batch_size
        .or(from_file.batch_size)
        .unwrap_or(if low_memory { 10 } else { 50 })
        .max(1);
    let cache_dir = flags
        .cache_dir
        .clone()
        .or(from_file.cache_dir.clone())
        .unwrap_or_else(data_dir);
    let output_dir = flags
        .output_dir
        .clone()
        .or(from_file.output_dir.clone())
        .unwrap_or_else(|| cache_dir.join("playlists"));
    let timeout = flags
        .file_timeout
        .or(from_file.file_timeout)
        .unwrap_or(120.0);
    if !(timeout.is_finite() && timeout > 0.0 && timeout <= MAX_FILE_TIMEOUT) {
        bail!("--file_timeout must be a number of seconds above 0 and at most {MAX_FILE_TIMEOUT}");
    }
    check_server(&from_file.server)?;
    let heap_cap = memory_limit.unwrap_or(if low_memory {
        256 << 20
    } else {
        DEFAULT_WORKER_HEAP_CAP
    });
    Ok(Config {
        library: library.iter().map(|p| absolute(p)).collect(),
        output_dir: absolute(&output_dir),
        cache_dir: absolute(&cache_dir),
        workers,
        workers_why,
        batch_size,
        queue_depth: if low_memory { 1 } else { 2 * workers },
        low_memory,
        mode: analysis_mode(
            flags.fast_mode || from_file.fast_mode,
            flags
                .embedding_coverage
                .as_deref()
                .or(from_file.embedding_coverage.as_deref()),
        )?,
        no_cache: flags.no_cache || from_file.no_cache,
        large_file_bytes: flags
            .large_file_threshold
            .or(from_file.large_file_threshold)
            .unwrap_or(50)
            .max(1)
            << 20,
        file_timeout: Duration::from_secs_f64(timeout),
        limits: Limits {
            memory_bytes: Some(heap_cap),
        },
        tuning: Tuning {
            cache_kib: if low_memory { 1024 } else { 8192 },
        },
        log_level: flags
            .log_level
            .clone()
            .or(from_file.log_level.clone())
            .unwrap_or_else(|| "info".into()),
        file,
        server: from_file.server.clone(),
        subsonic: from_file.subsonic.clone(),
        board: from_file.board.clone(),
        musicbrainz: from_file.musicbrainz.clone(),
        lastfm: LastFmSection {
            api_key: std::env::var("LASTFM_API_KEY")
                .ok()
                .filter(|k| !k.trim().is_empty())
                .or(from_file.lastfm.api_key.clone()),
            base_url: from_file.lastfm.base_url.clone(),
        },
        lookups: from_file.lookups.clone(),
        playlists: from_file.playlists.over(&playlist::Flags::DEFAULT),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_numbers_out_of_bounds_are_refused() {
        let server = |toml: &str| -> ServerSection { toml::from_str(toml).unwrap() };
        assert!(check_server(&server("rescan_minutes = 60\nmax_connections = 8")).is_ok());
        for bad in [
            "rescan_minutes = 100000000000000",
            "max_connections = 0",
            "max_connections = 10000000",
        ] {
            assert!(check_server(&server(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn sizes_parse_like_the_original_flag() {
        assert_eq!(parse_size("2GB").unwrap(), 2 << 30);
        assert_eq!(parse_size("512MB").unwrap(), 512 << 20);
        assert_eq!(parse_size("1.5G").unwrap(), 3 << 29);
        assert_eq!(parse_size(" 64 mb ").unwrap(), 64 << 20);
        assert!(parse_size("lots").is_err());
        assert!(parse_size("12XB").is_err());
        assert!(parse_size("10").is_err()); // 10 bytes: surely a mistake
    }

    #[test]
    fn flags_win_over_the_file_and_the_file_over_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.toml");
        std::fs::write(
            &file,
            "library = [\"/srv/a\", \"/srv/b\"]\nworkers = 3\nbatch_size = 7\nlow_memory = false\n\
             memory_limit = \"256MB\"\n",
        )
        .unwrap();
        let flags = Flags {
            workers: Some(2),
            ..Flags::default()
        };
        let c = resolve(&flags, Some(&file)).unwrap();
        assert_eq!(c.workers, 2);
        assert_eq!(c.batch_size, 7);
        assert_eq!(
            c.library,
            vec![PathBuf::from("/srv/a"), PathBuf::from("/srv/b")]
        );
        assert_eq!(c.limits.memory_bytes, Some(256 << 20));
        let low = resolve(
            &Flags {
                low_memory: true,
                ..Flags::default()
            },
            Some(&file),
        )
        .unwrap();
        assert_eq!((low.workers, low.queue_depth), (1, 1));
        assert!(low.tuning.cache_kib < c.tuning.cache_kib);
        std::fs::write(&file, "wrokers = 2\n").unwrap();
        let err = resolve(&Flags::default(), Some(&file)).unwrap_err();
        assert!(format!("{err:#}").contains("wrokers"), "{err:#}");
    }

    #[test]
    fn playlist_flags_win_over_the_playlists_section_and_it_over_the_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.toml");
        std::fs::write(
            &file,
            "[playlists]\nmethod = \"kmeans\"\nnum_playlists = 5\nmixed_below = 4\n",
        )
        .unwrap();
        let c = resolve(&Flags::default(), Some(&file)).unwrap();
        assert_eq!(c.playlists.method, Method::Kmeans);
        assert_eq!(c.playlists.num_playlists, 5);
        assert_eq!(c.playlists.length, playlist::Flags::DEFAULT.length);
        let given = PlaylistFlags {
            num_playlists: Some(3),
            explain: true,
            ..PlaylistFlags::default()
        };
        let flags = given.over(&c.playlists);
        assert_eq!(
            (
                flags.method,
                flags.num_playlists,
                flags.mixed_below,
                flags.explain
            ),
            (Method::Kmeans, 3, 4, true)
        );
        // Per-run flags have no place in the file.
        std::fs::write(&file, "[playlists]\nseed = \"/a.flac\"\n").unwrap();
        assert!(resolve(&Flags::default(), Some(&file)).is_err());
        std::fs::write(&file, "[playlists]\nmethod = \"nope\"\n").unwrap();
        let err = resolve(&Flags::default(), Some(&file)).unwrap_err();
        assert!(format!("{err:#}").contains("nope"), "{err:#}");
    }
}
