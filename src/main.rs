//! The `playlista` command line. Thin: parses flags, calls the library, prints, sets the exit
//! code. Everything it does is reachable from the library for tests.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use playlista::analysis::Analyzer;
use playlista::features::key::KEY_NAMES;
use playlista::report::InspectLine;
use playlista::synth::{self, SongSpec, WavFormat};

#[derive(Parser)]
#[command(
    name = "playlista",
    version,
    about = "Turns a music library into playlists"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Analyse audio files and print what was measured (one JSON object per line with --json).
    Inspect {
        /// One JSON object per file per line.
        #[arg(long)]
        json: bool,
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Benchmark analysis speed, memory and accuracy over a corpus built by make-corpus.
    Bench {
        /// The corpus folder (holds synthetic/, edge/, real/ and truth.csv).
        corpus: PathBuf,
        /// Timed runs per file; the median counts.
        #[arg(long, default_value_t = 1)]
        repeat: usize,
        /// Only files whose path contains this text.
        #[arg(long)]
        only: Option<String>,
    },
    /// Build a small library of generated songs with known tempo and key, and analyse it.
    Demo {
        /// Where to write the demo library (default: a folder under the system temp dir).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Inspect { json, files } => Ok(inspect(&files, json)),
        Command::Bench {
            corpus,
            repeat,
            only,
        } => bench(&corpus, repeat, only.as_deref()),
        Command::Demo { dir } => demo(dir),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("playlista: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn inspect(files: &[PathBuf], json: bool) -> ExitCode {
    quiet_panics();
    let mut analyzer = Analyzer::new();
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
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn bench(corpus: &Path, repeat: usize, only: Option<&str>) -> anyhow::Result<ExitCode> {
    quiet_panics();
    let results = playlista::bench::run(corpus, repeat, only)?;
    print!("{}", playlista::bench::render(&results));
    Ok(ExitCode::SUCCESS)
}

/// The demo library: varied tempo, key, rate, channels and sample format.
const DEMO: [(SongSpec, u32, u16, WavFormat); 6] = [
    (
        SongSpec {
            bpm: 72.0,
            tonic: 2,
            minor: true,
            seconds: 24.0,
        },
        44_100,
        2,
        WavFormat::Pcm16,
    ),
    (
        SongSpec {
            bpm: 95.0,
            tonic: 7,
            minor: false,
            seconds: 24.0,
        },
        48_000,
        2,
        WavFormat::Pcm24,
    ),
    (
        SongSpec {
            bpm: 110.0,
            tonic: 9,
            minor: true,
            seconds: 24.0,
        },
        22_050,
        1,
        WavFormat::Pcm16,
    ),
    (
        SongSpec {
            bpm: 124.0,
            tonic: 0,
            minor: false,
            seconds: 24.0,
        },
        44_100,
        2,
        WavFormat::Float32,
    ),
    (
        SongSpec {
            bpm: 140.0,
            tonic: 4,
            minor: true,
            seconds: 24.0,
        },
        96_000,
        2,
        WavFormat::Pcm24,
    ),
    (
        SongSpec {
            bpm: 165.0,
            tonic: 10,
            minor: false,
            seconds: 24.0,
        },
        32_000,
        1,
        WavFormat::Pcm16,
    ),
];

fn demo(dir: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let dir = dir.unwrap_or_else(|| std::env::temp_dir().join("playlista-demo"));
    std::fs::create_dir_all(&dir)?;
    println!("demo library: {}", dir.display());
    let mut analyzer = Analyzer::new();
    let mut right = (0, 0);
    println!(
        "{:<34} {:>9} {:>9}   {:>9} {:>9}  {:>6}",
        "file", "true BPM", "measured", "true key", "measured", "LUFS"
    );
    for (spec, rate, channels, format) in DEMO {
        let mode = if spec.minor { "minor" } else { "major" };
        let name = format!(
            "{:03}bpm_{}_{}_{}k_{}ch.wav",
            spec.bpm as u32,
            KEY_NAMES[spec.tonic as usize].replace('#', "s"),
            mode,
            rate / 1000,
            channels
        );
        let path = dir.join(&name);
        if !path.exists() {
            synth::write_song(&path, &spec, rate, channels, format)?;
        }
        let a = analyzer.analyze(&path)?;
        let f = &a.features;
        let key_ok = f.key == Some(KEY_NAMES[spec.tonic as usize]) && f.scale == Some(mode);
        let bpm_ok = f
            .bpm
            .is_some_and(|b| (b - spec.bpm).abs() <= 0.04 * spec.bpm);
        right.0 += bpm_ok as usize;
        right.1 += key_ok as usize;
        println!(
            "{:<34} {:>9.1} {:>9} {} {:>9} {:>9} {} {:>6}",
            name,
            spec.bpm,
            f.bpm.map(|b| format!("{b:.1}")).unwrap_or("-".into()),
            if bpm_ok { "✓" } else { "✗" },
            format!("{} {}", KEY_NAMES[spec.tonic as usize], &mode[..3]),
            format!(
                "{} {}",
                f.key.unwrap_or("-"),
                f.scale.map(|s| &s[..3]).unwrap_or("")
            ),
            if key_ok { "✓" } else { "✗" },
            f.loudness_lufs
                .map(|l| format!("{l:.1}"))
                .unwrap_or("-".into()),
        );
    }
    println!(
        "tempo right {}/{}, key right {}/{}",
        right.0,
        DEMO.len(),
        right.1,
        DEMO.len()
    );
    println!("try: playlista inspect --json {}/*.wav", dir.display());
    Ok(ExitCode::SUCCESS)
}

/// A panic inside one file's analysis is caught and reported as that file's error; the
/// default hook would also spray a backtrace notice over the output.
fn quiet_panics() {
    std::panic::set_hook(Box::new(|info| {
        eprintln!("playlista: internal error: {info}");
    }));
}
