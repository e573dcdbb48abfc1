//! Every format a player plays, through the CLI and the server as a user meets them.
//!
//! - The format set ([`playlista::bench::formats`]) built from two generated songs: Opus
//!   (`.opus`, in Ogg, in WebM), ALAC (MP4, CAF), AIFF, FLAC in Matroska, MP2, WavPack, WMA
//!   v1/v2, DSF and DFF, each analysed by `playlista -a` with its WAV original's tempo and key
//!   and (where the container carries them) its tags; the ffmpeg ones counted by `--status`,
//!   and refused with "needs ffmpeg for FORMAT" when ffmpeg is turned off; what players cannot
//!   read (DSD, WMA, ...) streamed as a WAV, the rest as it is.
//! - A 60-minute Opus file analysed within the fast-mode memory budget (one worker's peak).
//! - Single-file albums: three songs of different tempos in one FLAC with a `.cue` beside it,
//!   the same with the sheet inside the FLAC (`flac --cuesheet`), and an album whose sheet's
//!   tracks overlap. The first two become three tracks each with their own tempos, entries
//!   in `--status`, the JSON API and Subsonic; a stream of track 2 is a WAV of track 2's
//!   length and tempo; the broken album fails alone.
//!
//! Needs ffmpeg with libopus and the `flac` tool: without them the tests skip with a printed
//! reason, except under `CI=true`, where they fail.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::LazyLock;

use playlista::bench::formats::{self, Original};
use playlista::synth::{self, SongSpec, WavFormat};
use support::can_run;

/// Why a tool the tests need cannot run, if it cannot.
fn missing(tool: &str, arg: &str) -> Option<String> {
    match Command::new(tool).arg(arg).output() {
        Ok(out) if out.status.success() => None,
        _ => Some(format!("{tool} is not installed")),
    }
}

fn have_ffmpeg(what: &str) -> bool {
    let why = missing("ffmpeg", "-version").or_else(|| {
        let out = Command::new("ffmpeg")
            .args(["-hide_banner", "-encoders"])
            .output();
        let listed = out.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("libopus"));
        (!listed).then(|| "ffmpeg has no libopus encoder".to_string())
    });
    can_run(what, why)
}

fn dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("formats-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `playlista ARGS`, with `env` set.
fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(support::BIN);
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// Analyses `library` into `state` in fast mode; returns `--status`'s text.
fn analyse(library: &Path, state: &Path, workers: &str) -> String {
    let (library, state) = (library.to_str().unwrap(), state.to_str().unwrap());
    let common = ["--library", library, "--cache_dir", state];
    let out = run(
        &[&["-a", "--fast_mode", "--workers", workers][..], &common].concat(),
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status = run(&[&["--status"][..], &common].concat(), &[]);
    String::from_utf8_lossy(&status.stdout).into_owned()
}

/// One track as stored.
#[derive(Debug, Clone)]
struct Row {
    id: i64,
    path: String,
    status: String,
    reason: Option<String>,
    title: Option<String>,
    bpm: Option<f64>,
    key: Option<String>,
    scale: Option<String>,
    duration_s: Option<f64>,
}

fn rows(state: &Path) -> Vec<Row> {
    let db = rusqlite::Connection::open(state.join("playlista.db")).unwrap();
    let mut stmt = db
        .prepare(
            "SELECT t.path, t.status, t.fail_reason, t.title, f.bpm, f.key, f.scale, f.duration_s,
                    t.id
             FROM tracks t LEFT JOIN features f ON f.track_id = t.id ORDER BY t.path",
        )
        .unwrap();
    stmt.query_map([], |r| {
        Ok(Row {
            path: r.get(0)?,
            status: r.get(1)?,
            reason: r.get(2)?,
            title: r.get(3)?,
            bpm: r.get(4)?,
            key: r.get(5)?,
            scale: r.get(6)?,
            duration_s: r.get(7)?,
            id: r.get(8)?,
        })
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

fn song(path: &Path, bpm: f64, tonic: u8, minor: bool, seconds: f64) {
    let spec = SongSpec {
        bpm,
        tonic,
        minor,
        seconds,
    };
    synth::write_song(path, &spec, 44_100, 2, WavFormat::Pcm16).unwrap();
}

/// The format set from two songs, built once per run; `None` without ffmpeg.
fn format_set() -> Option<&'static Path> {
    static SET: LazyLock<PathBuf> = LazyLock::new(|| {
        let dir = dir("set");
        let originals: Vec<Original> = [(96.0, 2, false), (132.0, 9, true)]
            .into_iter()
            .enumerate()
            .map(|(i, (bpm, tonic, minor))| {
                let wav = dir.join(format!("original{i}.wav"));
                song(&wav, bpm, tonic, minor, 30.0);
                Original {
                    wav,
                    name: format!("clip{}", i + 1),
                    bpm,
                    key: (tonic as usize, minor),
                }
            })
            .collect();
        let set = dir.join("set");
        formats::build(&originals, &set).unwrap();
        for o in &originals {
            std::fs::remove_file(&o.wav).unwrap();
        }
        set
    });
    have_ffmpeg("format set").then(|| SET.as_path())
}

#[test]
fn every_format_is_measured_like_its_wav_original() {
    let Some(set) = format_set() else { return };
    let state = dir("set-state");
    let status = analyse(set, &state, "2");
    let rows = rows(&state);
    let formats_per_clip = 1 + formats::ENCODINGS.len() + 2;
    assert_eq!(rows.len(), 2 * formats_per_clip, "{rows:#?}");
    let mut differ = Vec::new();
    for r in &rows {
        assert_eq!(r.status, "analyzed", "{r:?}");
        let clip = Path::new(&r.path).parent().unwrap();
        let name = clip.file_name().unwrap().to_str().unwrap();
        let wav = clip.join(format!("{name}.wav"));
        let original = rows.iter().find(|o| Path::new(&o.path) == wav).unwrap();
        let (bpm, wav_bpm) = (r.bpm.unwrap(), original.bpm.unwrap());
        if (bpm - wav_bpm).abs() > 0.04 * wav_bpm
            || (&r.key, &r.scale) != (&original.key, &original.scale)
        {
            differ.push(format!(
                "{}: {bpm:.1} {:?} {:?}, the WAV {wav_bpm:.1} {:?} {:?}",
                r.path, r.key, r.scale, original.key, original.scale
            ));
        }
        assert!(
            (r.duration_s.unwrap() - 30.0).abs() < 0.1,
            "{}: {:?} s",
            r.path,
            r.duration_s
        );
        // Tags: every container but a bare MPEG stream (ffmpeg writes none there), Matroska
        // (whose tags symphonia does not read) and the WAV original (untagged).
        let ext = r.path.rsplit('.').next().unwrap();
        if !["mp2", "mka", "webm", "wav"].contains(&ext) {
            assert_eq!(
                r.title.as_deref(),
                Some(&*format!("{name} title")),
                "{}",
                r.path
            );
        }
    }
    assert!(differ.is_empty(), "{differ:#?}");
    // WavPack, WMA v1 and v2 go through ffmpeg.
    assert!(
        status.contains("ffmpeg     6 tracks decoded through ffmpeg; 0 files need it"),
        "{status}"
    );

    // What players cannot read is streamed as a WAV decoded on the fly; the rest as it is.
    let config = state.join("config.toml");
    let toml = format!("library = {set:?}\ncache_dir = {state:?}\noutput_dir = {state:?}\n");
    std::fs::write(&config, toml).unwrap();
    let server = support::serve(&support::config_file(&config));
    let row = |file: &str| rows.iter().find(|r| r.path.ends_with(file)).unwrap();
    // The measured length at the decoded rate (88.2 kHz for DSD), 16-bit stereo, after the
    // 44-byte header.
    for (file, rate) in [("clip1/clip1.dsf", 88_200.0), ("clip2/clip2.wma", 44_100.0)] {
        let r = row(file);
        let sent = server.get(&format!("/stream/{}", r.id));
        assert_eq!(sent.header("content-type"), Some("audio/wav"), "{file}");
        let frames = (r.duration_s.unwrap() * rate).round() as usize;
        assert_eq!(sent.body.len(), 44 + frames * 4, "{file}");
        assert_eq!(&sent.body[..4], b"RIFF");
    }
    let opus = server.get(&format!("/stream/{}", row("clip1/clip1.opus").id));
    assert_eq!(opus.header("content-type"), Some("audio/ogg"));
    let file = std::fs::read(set.join("clip1/clip1.opus")).unwrap();
    assert_eq!(opus.body, file);
}

#[test]
fn without_ffmpeg_its_formats_fail_with_a_reason_and_the_rest_still_decode() {
    let Some(set) = format_set() else { return };
    let clip = set.join("clip1");
    let files = ["clip1.wma", "clip1.wv", "clip1.opus", "clip1.dsf"].map(|f| clip.join(f));
    let mut args = vec!["inspect"];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    let out = run(&args, &[(playlista::audio::ffmpeg::FFMPEG_ENV, "off")]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("needs ffmpeg for WMA (not installed)"),
        "{text}"
    );
    assert!(
        text.contains("needs ffmpeg for WavPack (not installed)"),
        "{text}"
    );
    assert!(
        text.contains("2 of 4 files could not be analysed"),
        "{text}"
    );
}

#[test]
fn a_sixty_minute_opus_file_stays_within_the_memory_budget() {
    if !have_ffmpeg("60-minute Opus") {
        return;
    }
    let dir = dir("long");
    let music = dir.join("music");
    std::fs::create_dir_all(&music).unwrap();
    let long = music.join("long.opus");
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-f", "lavfi", "-i"])
        .arg("sine=frequency=220:sample_rate=48000:duration=3600")
        .args([
            "-ac",
            "2",
            "-c:a",
            "libopus",
            "-b:a",
            "24k",
            "-compression_level",
            "0",
        ])
        .arg(&long)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let state = dir.join("state");
    analyse(&music, &state, "1");
    let rows = rows(&state);
    assert_eq!(rows.len(), 1);
    assert!(
        (rows[0].duration_s.unwrap() - 3600.0).abs() < 1.0,
        "{rows:?}"
    );
    let db = rusqlite::Connection::open(state.join("playlista.db")).unwrap();
    let peak_kb: i64 = db
        .query_row(
            "SELECT peak_rss_kb FROM runs ORDER BY id DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    // The fast-mode budget for one file, whatever its format and length.
    assert!(
        peak_kb > 0 && peak_kb <= 48 * 1024,
        "worker peak {peak_kb} KiB"
    );
}

/// Three songs of different tempos and keys, 20 s each, as one 44.1 kHz stereo WAV.
fn album_wav(path: &Path) -> [(f64, &'static str); 3] {
    let truth = [(90.0, 0u8, "C"), (120.0, 7, "G"), (150.0, 2, "D")];
    let mut all = Vec::new();
    for (bpm, tonic, _) in truth {
        let spec = SongSpec {
            bpm,
            tonic,
            minor: false,
            seconds: 20.0,
        };
        all.extend(synth::interleave(&synth::song(&spec, 44_100), 2));
    }
    synth::write_wav(path, 44_100, 2, &all, WavFormat::Pcm16).unwrap();
    truth.map(|(bpm, _, key)| (bpm, key))
}

const SHEET: &str = r#"REM GENRE "Test Pop"
REM DATE 2021
PERFORMER "The Sheet Band"
TITLE "Sheet Album"
FILE "Album.wav" WAVE
  TRACK 01 AUDIO
    TITLE "First Song"
    INDEX 01 00:00:00
  TRACK 02 AUDIO
    TITLE "Second Song"
    PERFORMER "A Guest"
    INDEX 00 00:19:00
    INDEX 01 00:20:00
  TRACK 03 AUDIO
    TITLE "Third Song"
    INDEX 01 00:40:00
"#;

fn flac(args: &[&str]) {
    let out = Command::new("flac")
        .args(["--silent", "--force"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "flac {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn single_file_albums_become_their_tracks_everywhere() {
    if !can_run("CUE albums", missing("flac", "--version")) {
        return;
    }
    let dir = dir("albums");
    let music = dir.join("music");
    for sub in ["sheet", "embedded", "broken"] {
        std::fs::create_dir_all(music.join(sub)).unwrap();
    }
    let wav = dir.join("Album.wav");
    let truth = album_wav(&wav);
    let wav = wav.to_str().unwrap();
    // A FLAC with its sheet beside it (the sheet names the WAV it was ripped to).
    flac(&[wav, "-o", music.join("sheet/Album.flac").to_str().unwrap()]);
    std::fs::write(music.join("sheet/Album.cue"), SHEET).unwrap();
    // The same sheet inside a FLAC.
    let sheet = dir.join("Album.cue");
    std::fs::write(&sheet, SHEET).unwrap();
    let cuesheet = format!("--cuesheet={}", sheet.display());
    flac(&[
        &cuesheet,
        wav,
        "-o",
        music.join("embedded/Embedded.flac").to_str().unwrap(),
    ]);
    // A sheet whose third track starts before the second.
    flac(&[
        wav,
        "-o",
        music.join("broken/Broken.flac").to_str().unwrap(),
    ]);
    let broken = SHEET
        .replace("00:40:00", "00:19:30")
        .replace("Album.wav", "Broken.flac");
    std::fs::write(music.join("broken/Broken.cue"), broken).unwrap();

    let state = dir.join("state");
    let status = analyse(&music, &state, "2");
    let rows = rows(&state);
    assert_eq!(rows.len(), 7, "{rows:#?}");
    let failed: Vec<&Row> = rows.iter().filter(|r| r.status == "failed").collect();
    assert_eq!(failed.len(), 1, "{rows:#?}");
    assert!(failed[0].path.ends_with("broken/Broken.flac"), "{failed:?}");
    let reason = failed[0].reason.as_deref().unwrap();
    assert!(
        reason.contains("track 3 starts at 00:19:30, before track 2"),
        "{reason}"
    );
    for album in ["sheet/Album.flac", "embedded/Embedded.flac"] {
        for (n, (bpm, key)) in truth.iter().enumerate() {
            let path = music.join(format!("{album}#{:02}", n + 1));
            let r = rows
                .iter()
                .find(|r| Path::new(&r.path) == path)
                .unwrap_or_else(|| panic!("no {}: {rows:#?}", path.display()));
            let got = r.bpm.unwrap();
            assert!(
                (got - bpm).abs() <= 0.04 * bpm,
                "{}: {got} for {bpm}",
                r.path
            );
            assert_eq!(r.key.as_deref(), Some(*key), "{}", r.path);
            assert!((r.duration_s.unwrap() - 20.0).abs() < 0.05, "{r:?}");
        }
    }
    let title = |p: &str| {
        rows.iter()
            .find(|r| r.path.ends_with(p))
            .unwrap()
            .title
            .clone()
    };
    assert_eq!(title("sheet/Album.flac#02").as_deref(), Some("Second Song"));
    // FLAC's own cuesheet block carries no titles.
    assert_eq!(title("embedded/Embedded.flac#02"), None);
    assert!(
        status.contains("cue        6 tracks from 2 single-file albums"),
        "{status}"
    );

    // The server: the API and Subsonic list the tracks; track 2 streams as itself.
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!(
            "library = {music:?}\ncache_dir = {state:?}\noutput_dir = {:?}\n\
             [subsonic]\nuser = \"u\"\npassword = \"p\"\n",
            dir.join("playlists")
        ),
    )
    .unwrap();
    let server = support::serve(&support::config_file(&config));
    let api = server.json("/api/v1/status");
    assert_eq!(api["library"]["tracks"], 7, "{api}");
    assert_eq!(api["library"]["album_tracks"], 6, "{api}");
    let found = server.get("/rest/search3?u=u&p=p&v=1.16.1&c=t&f=json&query=Second%20Song");
    let found = found.json()["subsonic-response"]["searchResult3"]["song"].clone();
    let song = &found[0];
    assert_eq!(song["title"], "Second Song", "{found}");
    assert_eq!(song["artist"], "A Guest", "{found}");
    assert_eq!(song["track"], 2, "{found}");
    assert_eq!(song["suffix"], "wav", "{found}");
    assert_eq!(song["duration"], 20, "{found}");
    let id = song["id"].as_str().unwrap();
    let track = server.json(&format!("/api/v1/tracks/{id}"));
    assert_eq!(track["title"], "Second Song", "{track}");
    assert_eq!(track["album"], "Sheet Album", "{track}");
    assert_eq!(track["format"], "wav", "{track}");
    assert!(
        (track["bpm"].as_f64().unwrap() - 120.0).abs() <= 4.8,
        "{track}"
    );
    let stream = server.get(&format!("/rest/stream?u=u&p=p&v=1.16.1&c=t&id={id}"));
    assert_eq!(stream.status, 200);
    assert_eq!(stream.header("content-type"), Some("audio/wav"));
    assert_eq!(stream.body.len(), 44 + 20 * 44_100 * 4);
    assert_eq!(song["size"], stream.body.len(), "{found}");
    let cut = dir.join("track2.wav");
    std::fs::write(&cut, &stream.body).unwrap();
    let analysis = playlista::analysis::Analyzer::new().analyze(&cut).unwrap();
    let bpm = analysis.record.bpm.unwrap();
    assert!((bpm - 120.0).abs() <= 4.8, "track 2 streamed at {bpm} BPM");
    assert!((analysis.record.duration_s - 20.0).abs() < 1e-6);
    // A range from its middle.
    let part = server.get_with(
        &format!("/rest/stream?u=u&p=p&v=1.16.1&c=t&id={id}"),
        &[("Range", "bytes=1000000-1000099")],
    );
    assert_eq!(part.status, 206);
    assert_eq!(part.body, stream.body[1_000_000..1_000_100]);
    server.assert_healthy();
}
