//! The `playlista` command line. Thin: parses flags, calls the library, prints, sets the exit
//! code. Everything it does is reachable from the library for tests.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use playlista::analysis::{Analyzer, Mode};
use playlista::pipeline::{self, Work};
use playlista::report::{self, InspectLine};
use playlista::store::{Held, Store, WhenBusy};
use playlista::{board, config, job, playlist};

#[derive(Parser)]
#[command(
    name = "playlista",
    version,
    about = "Turns a music library into playlists",
    long_about = "Turns a music library into playlists.\n\n\
        With no mode flag: analyse what changed in the library, then update the playlists (-u).\n\
        Settings come from flags, then the config file (--config, else \
        $XDG_CONFIG_HOME/playlista/config.toml, else /etc/playlista/config.toml).",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    modes: Modes,
    #[command(flatten)]
    settings: config::Flags,
    #[command(flatten)]
    playlists: config::PlaylistFlags,
    /// The config file (TOML; keys are the long flag names).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// With --status: one JSON object; when playlists are generated: the playlists as one
    /// JSON object, every track with the reason it is there.
    #[arg(long)]
    json: bool,
    /// When another analysis run uses the database: say which and exit with 75 (EX_TEMPFAIL)
    /// instead of waiting for it.
    #[arg(long = "no-wait", alias = "no_wait")]
    no_wait: bool,
}

/// The exit code when another run holds the database and `--no-wait` was given (sysexits.h
/// EX_TEMPFAIL: try again later).
const EXIT_BUSY: u8 = 75;

/// The original tool's modes.
#[derive(clap::Args, Debug, Default)]
struct Modes {
    /// Analyse new and changed files (incremental; resumes an interrupted run).
    #[arg(short = 'a', long)]
    analyze: bool,
    /// Only generate playlists from what is stored.
    #[arg(short = 'g', long = "generate_only", alias = "generate-only")]
    generate_only: bool,
    /// Analyse what changed, then update the playlists.
    #[arg(short = 'u', long)]
    update: bool,
    /// Retry files that failed (each retry gets twice the time limit; at most 3 attempts).
    #[arg(long)]
    failed: bool,
    /// Analyse every file again, whatever is stored.
    #[arg(short = 'f', long)]
    force: bool,
    /// Analyse, then retry what failed, then generate playlists.
    #[arg(long)]
    pipeline: bool,
    /// In full mode, analyse in two tiers: every track in fast mode first (and the
    /// playlists from that), then timbre and the embedding added to each (what `serve` does).
    #[arg(long)]
    tiers: bool,
    /// Show what the database holds: tracks, analysed, failed by reason, pending, by format,
    /// and the last run's throughput.
    #[arg(long)]
    status: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Analyse audio files and print what was measured (one JSON object per line with --json).
    Inspect {
        /// One JSON object per file per line.
        #[arg(long)]
        json: bool,
        /// Full mode: timbre (mfcc, chroma, spectral_contrast, spectral_flatness,
        /// spectral_rolloff) and the MusiCNN embedding with its 50 tag probabilities.
        #[arg(long)]
        full: bool,
        /// With --full: sampled (default), full or a number of patches.
        #[arg(
            long = "embedding_coverage",
            alias = "embedding-coverage",
            value_name = "sampled|full|N",
            requires = "full"
        )]
        embedding_coverage: Option<String>,
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    #[cfg(feature = "bench")]
    /// Benchmark over a corpus built by make-corpus: per-file analysis speed, memory and
    /// accuracy, or with --pipeline the whole-library table (files/hour, x realtime, peak RSS).
    Bench {
        /// The corpus folder (holds synthetic/, edge/, real/ and truth.csv).
        #[arg(required_unless_present = "serve")]
        corpus: Option<PathBuf>,
        /// Timed runs per file (or per pipeline row); the median counts.
        #[arg(long, default_value_t = 1)]
        repeat: usize,
        /// Only files whose path contains this text.
        #[arg(long)]
        only: Option<String>,
        /// The whole-library benchmark: the original's performance table, measured.
        #[arg(long)]
        pipeline: bool,
        /// The playlist benchmark: each method's ordering against a shuffle on the corpus,
        /// and every method's time and memory on 100,000 synthesised tracks (with
        /// --pipeline: on the Default row's database, not a second analysis).
        #[arg(long)]
        playlists: bool,
        /// The server load benchmark (needs wrk, takes no corpus): `playlista serve` on
        /// 100,000 synthesised tracks at 100 connections; requests/s, p50/p99, errors, RSS.
        #[arg(long, conflicts_with_all = ["pipeline", "playlists", "corpus"])]
        serve: bool,
        /// Accuracy only: one fast-mode analysis per file, no speed or memory passes.
        #[arg(long, conflicts_with_all = ["pipeline", "playlists", "serve", "repeat"])]
        accuracy: bool,
        /// The format set: builds in DIR (once; needs ffmpeg) the corpus's clips in every
        /// codec and container playlista reads, then benchmarks DIR with a row per format and
        /// each format's agreement with the WAV original.
        #[arg(long, value_name = "DIR", conflicts_with_all = ["pipeline", "playlists", "serve"])]
        formats: Option<PathBuf>,
    },
    /// Build a small library of generated songs with known tempo and key, analyse it as a
    /// library and show what was found.
    Demo {
        /// Where to write the demo library and its database (default: under the temp dir).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Fast mode only (no timbre, no embedding): the quick demo on a slow box.
        #[arg(long = "fast_mode", alias = "fast-mode")]
        fast_mode: bool,
    },
    /// Serve the playlists on the LAN: web page, JSON API, M3U8, streams, Subsonic for phone
    /// apps, announced over mDNS; keeps the library analysed in the background.
    Serve {
        /// Where to listen (default from [server] bind, else 0.0.0.0:8420).
        #[arg(long, value_name = "ADDR:PORT")]
        bind: Option<std::net::SocketAddr>,
        /// Do not announce over mDNS.
        #[arg(long = "no-mdns", alias = "no_mdns")]
        no_mdns: bool,
        /// The mDNS name: the box answers as NAME.local (default from [server] name, else
        /// playlista).
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        settings: Box<config::Flags>,
        /// The config file (TOML; [server] and [subsonic] sections).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// (internal) an analysis worker process: JSON requests on stdin, replies on stdout.
    #[command(name = "__worker", hide = true)]
    Worker,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Inspect {
            json,
            full,
            embedding_coverage,
            files,
        }) => config::analysis_mode(!full, embedding_coverage.as_deref())
            .and_then(|mode| inspect(&files, json, mode)),
        #[cfg(feature = "bench")]
        Some(Command::Bench {
            corpus,
            repeat,
            only,
            pipeline,
            playlists,
            serve,
            accuracy,
            formats,
        }) => bench(
            corpus.as_deref(),
            repeat,
            only.as_deref(),
            (pipeline, playlists, serve, accuracy),
            formats.as_deref(),
        ),
        Some(Command::Demo { dir, fast_mode }) => {
            playlista::demo::run(dir, fast_mode).map(|_| ExitCode::SUCCESS)
        }
        Some(Command::Serve {
            bind,
            no_mdns,
            name,
            settings,
            config,
        }) => serve(
            &settings,
            config.as_deref(),
            playlista::server::Options {
                bind,
                name,
                no_mdns,
            },
        ),
        Some(Command::Worker) => pipeline::worker::serve().map(|_| ExitCode::SUCCESS),
        None => library_run(
            &cli.modes,
            &cli.settings,
            &cli.playlists,
            cli.config.as_deref(),
            cli.json,
            cli.no_wait,
        ),
    };
    match result {
        Ok(code) => code,
        Err(e) if e.downcast_ref::<Held>().is_some() => {
            eprintln!("playlista: {e:#}; not waiting (--no-wait)");
            ExitCode::from(EXIT_BUSY)
        }
        Err(e) => {
            eprintln!("playlista: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// The original tool's workflow over the whole library.
fn library_run(
    modes: &Modes,
    flags: &config::Flags,
    playlist_flags: &config::PlaylistFlags,
    config_file: Option<&Path>,
    json: bool,
    no_wait: bool,
) -> anyhow::Result<ExitCode> {
    let config = config::resolve(flags, config_file)?;
    init_logging(&config.log_level)?;
    if modes.status {
        let store = Store::open(&config.db_path(), config.tuning)?;
        let mut status = store.status()?;
        let full = config.mode != Mode::Fast || status.full.as_ref().is_some_and(|t| t.tracks > 0);
        status.plan(config.workers, full);
        let lookups = playlista::lookups::counts(&store, &config.lookup_settings())?;
        if json {
            let mut status = serde_json::to_value(&status)?;
            status["lookups"] = serde_json::to_value(&lookups)?;
            println!("{status}");
        } else {
            print!("{}", report::status_text(&status, &config.db_path()));
            print!("{}", playlista::lookups::counts_text(&lookups));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let any_mode = modes.analyze
        || modes.generate_only
        || modes.update
        || modes.failed
        || modes.force
        || modes.pipeline;
    let analyze = modes.analyze || modes.update || modes.force || modes.pipeline || !any_mode;
    let retry = modes.failed || modes.pipeline;
    let generate = modes.generate_only || modes.update || modes.pipeline || !any_mode;
    let stop = playlista::os::stop_on_signals();
    if analyze || retry {
        if config.library.is_empty() {
            anyhow::bail!(
                "no music library given: use --library DIR or set library = \"DIR\" in the \
                 config file"
            );
        }
        tracing::info!(
            "library {}; database {}; {} worker(s) ({}); batches of {}",
            config
                .library
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            config.db_path().display(),
            config.workers,
            config.workers_why,
            config.batch_size
        );
    }
    // The box's LED blinks while this runs (off when it ends); a button press during the
    // analysis asks for one more pass (a long press: everything again).
    let (pressed, presses) = std::sync::mpsc::channel();
    let led = board::Indicator::new(board::State::Analysing);
    let _panel = (analyze || retry)
        .then(|| {
            board::start(&config.board, led, move |p| {
                let _ = pressed.send(p);
            })
        })
        .flatten();
    let settings = job::Settings {
        analyse: analyze.then_some(if modes.force || config.no_cache {
            Work::All
        } else {
            Work::Changed
        }),
        tiers: modes.tiers,
        retry,
        // After the analysis committed; bounded, so a big new library waits for later runs.
        lookups: (analyze || retry)
            .then(|| playlista::lookups::cli_budget(&config.lookup_settings())),
        failed_list: true,
        playlists: if generate {
            job::Playlists::Make(vec![playlist_flags.over(&config.playlists)])
        } else {
            job::Playlists::None
        },
        progress: pipeline::Progress::auto(),
        when_busy: if no_wait {
            WhenBusy::GiveUp
        } else {
            WhenBusy::Wait
        },
    };
    let mut printer = Printer { presses, json };
    let report = job::run(&config, &settings, stop, &mut printer)?;
    Ok(if report.interrupted() {
        ExitCode::from(130)
    } else {
        ExitCode::SUCCESS
    })
}

/// What the library workflow tells a person (or, with `--json`, a script) as it goes.
struct Printer {
    presses: std::sync::mpsc::Receiver<board::Press>,
    json: bool,
}

impl job::Observer for Printer {
    fn waiting(&mut self, held: &Held) {
        eprintln!("waiting for {} to finish", held.who());
    }

    fn analysed(&mut self, phase: job::Phase, report: &pipeline::Report) {
        if phase == job::Phase::Retry {
            eprintln!("retry of failed files: {}", report::report_text(report));
        } else {
            eprintln!("{}", report::report_text(report));
        }
    }

    fn again(&mut self) -> Option<Work> {
        self.presses.try_iter().last().map(job::asked_by)
    }

    fn looked_up(&mut self, report: &playlista::lookups::Report) {
        if report.asked + report.left > 0 {
            eprintln!("{}", report.text());
        }
    }

    fn failed_list(&mut self, failed: usize, path: &Path) {
        if failed > 0 {
            eprintln!(
                "{failed} file(s) could not be analysed: see {}",
                path.display()
            );
        }
    }

    fn generated(
        &mut self,
        lib: &playlist::space::Library,
        flags: &playlist::Flags,
        generated: &playlist::Generated,
    ) {
        if self.json {
            println!("{}", playlist::summary_json(lib, generated));
        } else {
            print!(
                "{}",
                playlist::summary_text(lib, generated, flags.explain, 3)
            );
        }
    }
}

fn serve(
    flags: &config::Flags,
    config_file: Option<&Path>,
    opts: playlista::server::Options,
) -> anyhow::Result<ExitCode> {
    let config = config::resolve(flags, config_file)?;
    init_logging(&config.log_level)?;
    playlista::server::run(config, opts)?;
    Ok(ExitCode::SUCCESS)
}

fn init_logging(level: &str) -> anyhow::Result<()> {
    let level: tracing::Level = level.parse().map_err(|_| {
        anyhow::anyhow!("--log_level {level:?}: use error, warn, info, debug or trace")
    })?;
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
    Ok(())
}

fn inspect(files: &[PathBuf], json: bool, mode: Mode) -> anyhow::Result<ExitCode> {
    quiet_panics();
    if mode != Mode::Fast {
        playlista::os::keep_freed_memory();
    }
    let mut analyzer = Analyzer::with_mode(mode)?;
    let mut failed = 0;
    for path in files {
        let result = analyzer.analyze(path);
        failed += result.is_err() as usize;
        let line = InspectLine::new(path, &result);
        if json {
            println!("{}", line.to_json());
        } else {
            print!("{}", line.to_text());
        }
    }
    if failed > 0 {
        if !json {
            eprintln!("{failed} of {} files could not be analysed", files.len());
        }
        Ok(ExitCode::FAILURE)
    } else {
        Ok(ExitCode::SUCCESS)
    }
}

#[cfg(feature = "bench")]
fn bench(
    corpus: Option<&Path>,
    repeat: usize,
    only: Option<&str>,
    (pipeline, playlists, serve, accuracy): (bool, bool, bool, bool),
    formats: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    if serve {
        print!("{}", playlista::bench::serve::table()?);
        return Ok(ExitCode::SUCCESS);
    }
    let corpus = corpus.ok_or_else(|| anyhow::anyhow!("bench needs the corpus folder"))?;
    quiet_panics();
    if pipeline || playlists {
        // Both: the playlist tables use the pipeline's Default-row database (the same
        // analysis) instead of analysing the corpus a second time.
        let kept = tempfile::Builder::new()
            .prefix("playlista-bench-")
            .tempdir()?;
        let analysed = pipeline.then(|| kept.path().join("default-row"));
        if pipeline {
            print!(
                "{}",
                playlista::bench::pipeline_table(corpus, repeat, analysed.as_deref())?
            );
        }
        if playlists {
            print!(
                "{}",
                playlista::bench::playlists::table(corpus, analysed.as_deref())?
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let scope = if accuracy {
        playlista::bench::Scope::Accuracy
    } else {
        playlista::bench::Scope::Everything { repeat }
    };
    let corpus = match formats {
        Some(dir) => {
            playlista::bench::formats::from_corpus(corpus, dir)?;
            dir
        }
        None => corpus,
    };
    let results = playlista::bench::run(corpus, scope, only)?;
    print!("{}", playlista::bench::render(&results, scope));
    Ok(ExitCode::SUCCESS)
}

/// A panic inside one file's analysis is caught and reported as that file's error; the
/// default hook would also spray a backtrace notice over the output.
fn quiet_panics() {
    std::panic::set_hook(Box::new(|info| {
        eprintln!("playlista: internal error: {info}");
    }));
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// clap's own consistency checks (unique ids and groups, ...), which release builds skip
    /// at run time: a debug build panics at start when one fails.
    #[test]
    fn the_command_line_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
