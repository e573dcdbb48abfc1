//! CUE sheets: a single-file album (one audio file with a `.cue` sheet beside it, or a FLAC
//! file with an embedded CUESHEET block) turned into its tracks. Pure parsing and checking:
//! nothing here decodes audio, and nothing writes.
//!
//! In: a sheet's bytes ([`Sheet::parse`]); an audio file's path ([`sheet_beside`] finds the
//! sheet that names it, [`read_sheet`] reads and checks that sheet); or the cues symphonia read
//! from a FLAC file's CUESHEET block ([`from_flac_cues`]). Out: a [`Sheet`] (the album's tags
//! and its tracks, each starting at a [`Timestamp`] in CD frames), and, given the decoded
//! stream's rate and length, each track's [`Span`] in sample frames ([`Sheet::spans`]); or a
//! [`CueError`] that says what is wrong and on which line.
//!
//! Rules, as real rips are written (EAC, XLD, foobar2000, CUETools):
//! - Text: a UTF-8 or UTF-16 (LE/BE) byte order mark is honoured; BOM-less bytes that are valid
//!   UTF-8 are taken as such, anything else is Windows-1252 (Latin-1 with cp1252's 0x80–0x9F).
//!   Lines end in `\n`, `\r\n` (or, in old Mac sheets with no `\n` at all, `\r`).
//! - Commands are case-insensitive; arguments are quoted or bare. PERFORMER and TITLE before the
//!   first TRACK are the album's, after it the track's; REM GENRE, DATE (year) and DISCNUMBER
//!   are read; ISRC is the track's; everything else (SONGWRITER, CATALOG, FLAGS, PREGAP,
//!   POSTGAP, CDTEXTFILE, other REMs, unknown commands) is ignored.
//! - A track runs from its INDEX 01 to the next track's INDEX 01: the pregap (INDEX 00) belongs
//!   to the previous track, as CD players and foobar2000 split. Audio before track 1's INDEX 01
//!   (a hidden track or a pregap) is in no track.
//! - Only AUDIO tracks are kept; data tracks (MODE1/2352 ...) are skipped, not errors.
//! - One sheet, one file: a sheet naming several FILEs lists files that are tracks of their own
//!   and is [`CueError::MultipleFiles`] (checked before anything else, so callers can pass over
//!   such sheets silently).
//! - Errors: no FILE, no TRACK, a time that is not MM:SS:FF (seconds below 60, frames below 75),
//!   a track without INDEX 01, INDEX 01 times not strictly increasing, track numbers repeated or
//!   not increasing or above 99, an INDEX before any TRACK, malformed TRACK/INDEX/FILE lines.
//! - Bounds: [`read_sheet`] and [`sheet_beside`] read at most 1 MiB; a sheet holds one FILE and
//!   at most 99 tracks; repeated tags overwrite rather than accumulate. No input panics.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use symphonia::core::formats::Cue;
use symphonia::core::meta::{StandardTagKey, Value};

/// The largest sheet [`read_sheet`] and [`sheet_beside`] read: 1 MiB (real sheets are a few KB).
const MAX_SHEET_BYTES: u64 = 1 << 20;

/// CD frames ("sectors") per second: the unit of a sheet's MM:SS:FF times.
const FRAMES_PER_SECOND: u64 = 75;

/// The highest track number a sheet may hold (the CD format's limit).
const MAX_TRACK: u32 = 99;

/// FLAC's lead-out track numbers: 170 in CD-DA cuesheets, 255 in others.
const FLAC_LEAD_OUTS: [u32; 2] = [170, 255];

/// A time in the sheet's unit: CD frames, 75 per second (written MM:SS:FF).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// The time in seconds.
    pub fn seconds(self) -> f64 {
        self.0 as f64 / FRAMES_PER_SECOND as f64
    }

    /// The sample frame of a stream at `sample_rate` this time falls on, rounded to the nearest
    /// (exact for the CD's 44.1 kHz: 588 samples per CD frame, and for 48/96 kHz).
    pub fn frame_at(self, sample_rate: u32) -> u64 {
        let scaled =
            u128::from(self.0) * u128::from(sample_rate) + u128::from(FRAMES_PER_SECOND / 2);
        u64::try_from(scaled / u128::from(FRAMES_PER_SECOND)).unwrap_or(u64::MAX)
    }

    /// The time of sample frame `frame` of a stream at `sample_rate` (not 0), rounded to the
    /// nearest CD frame if `round` or down otherwise.
    fn of_frame(frame: u64, sample_rate: u32, round: bool) -> Timestamp {
        let rate = u128::from(sample_rate.max(1));
        let half = if round { rate / 2 } else { 0 };
        let cd = (u128::from(frame) * u128::from(FRAMES_PER_SECOND) + half) / rate;
        Timestamp(u64::try_from(cd).unwrap_or(u64::MAX))
    }

    /// Reads `MM:SS:FF`; the error says what is wrong with it.
    fn parse(text: &str) -> Result<Timestamp, &'static str> {
        const FORMAT: &str = "MM:SS:FF, in numbers";
        let mut parts = text.split(':');
        let (Some(mm), Some(ss), Some(ff), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(FORMAT);
        };
        let number = |part: &str| -> Option<u64> {
            // Nine digits of minutes is 1900 years: anything longer is not a time.
            if part.is_empty() || part.len() > 9 || !part.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            part.parse().ok()
        };
        let (Some(mm), Some(ss), Some(ff)) = (number(mm), number(ss), number(ff)) else {
            return Err(FORMAT);
        };
        if ss >= 60 {
            return Err("seconds run to 59");
        }
        if ff >= FRAMES_PER_SECOND {
            return Err("frames run to 74");
        }
        Ok(Timestamp((mm * 60 + ss) * FRAMES_PER_SECOND + ff))
    }
}

impl fmt::Display for Timestamp {
    /// `MM:SS:FF`, as a sheet writes it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seconds = self.0 / FRAMES_PER_SECOND;
        let frames = self.0 % FRAMES_PER_SECOND;
        write!(f, "{:02}:{:02}:{:02}", seconds / 60, seconds % 60, frames)
    }
}

/// One track of an album: its number, where it starts in the file, and the sheet's tags for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CueTrack {
    /// The track number as written (1 to 99 in a text sheet).
    pub number: u32,
    /// Its INDEX 01: the track runs from here to the next track's start.
    pub start: Timestamp,
    pub title: Option<String>,
    pub performer: Option<String>,
    pub isrc: Option<String>,
}

/// A parsed and checked sheet: the album's tags and its audio tracks, in order, with strictly
/// increasing starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sheet {
    /// The FILE line's name as written (it may carry a folder, or name the `.wav` the album was
    /// ripped to); empty for a FLAC file's embedded cuesheet.
    pub file: String,
    /// The album's PERFORMER.
    pub performer: Option<String>,
    /// The album's TITLE.
    pub title: Option<String>,
    /// REM GENRE.
    pub genre: Option<String>,
    /// The year of REM DATE (`1995`, `1995/03/12`, `1995-03-12`).
    pub year: Option<u32>,
    /// REM DISCNUMBER (`2`, `2/3`).
    pub disc: Option<u32>,
    /// The audio tracks, at least one; data tracks are left out.
    pub tracks: Vec<CueTrack>,
}

/// One track's stretch of the decoded stream, in sample frames: `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// The track number.
    pub number: u32,
    pub start: u64,
    /// `None`: to the end of the stream (the last track, when the stream's length is unknown).
    pub end: Option<u64>,
}

/// Where a problem is: a line of a text sheet, or a FLAC file's embedded cuesheet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// A line of a text sheet, counted from 1.
    Line(usize),
    /// A FLAC file's CUESHEET block.
    Flac,
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place::Line(line) => write!(f, "cue sheet line {line}"),
            Place::Flac => f.write_str("FLAC cuesheet"),
        }
    }
}

/// Why a sheet could not be read or used; each message says what is wrong and where.
#[derive(Debug, thiserror::Error)]
pub enum CueError {
    #[error("cannot read cue sheet: {0}")]
    Io(#[from] io::Error),
    #[error("cue sheet is {:.1} MB, not a sheet", *.size as f64 / 1e6)]
    TooLarge { size: u64 },
    /// The sheet's FILE is neither the audio file nor, by its stem, a stand-in for it.
    #[error(
        "cue sheet names FILE \"{file}\", which is not beside it (the audio file is \"{audio}\")"
    )]
    NotBeside { file: String, audio: String },
    /// Several files, one per track: not a single-file album. Callers may skip such sheets
    /// silently.
    #[error(
        "cue sheet line {line}: a second FILE \"{second}\" (after \"{first}\"): the sheet lists \
         files that are tracks of their own"
    )]
    MultipleFiles {
        line: usize,
        first: String,
        second: String,
    },
    #[error("cue sheet has no FILE")]
    NoFile,
    /// No AUDIO track (`data_tracks`: how many others were skipped).
    #[error(
        "cue sheet has no TRACK{}",
        if *.data_tracks > 0 { format!(" of type AUDIO, only data tracks ({})", .data_tracks) } else { String::new() }
    )]
    NoTrack { data_tracks: usize },
    #[error("cue sheet line {line}: INDEX {index} {time} is not a time ({why})")]
    BadTime {
        line: usize,
        index: String,
        time: String,
        why: &'static str,
    },
    /// A TRACK, INDEX or FILE line that cannot be read, or a second INDEX 01 in one track.
    #[error("cue sheet line {line}: {what}")]
    Malformed { line: usize, what: String },
    #[error("cue sheet line {line}: TRACK {number:02} appears twice")]
    DuplicateTrack { line: usize, number: u32 },
    #[error(
        "cue sheet line {line}: TRACK {number:02} comes after track {previous:02}: track numbers \
         must increase"
    )]
    TrackOrder {
        line: usize,
        number: u32,
        previous: u32,
    },
    #[error("cue sheet line {line}: TRACK {number}: a sheet holds at most 99 tracks")]
    TooManyTracks { line: usize, number: u32 },
    #[error("cue sheet line {line}: INDEX before any TRACK")]
    IndexBeforeTrack { line: usize },
    /// A track (at its TRACK line) without an INDEX 01.
    #[error("{at}: track {number} has no INDEX 01")]
    NoIndex01 { at: Place, number: u32 },
    /// A track's INDEX 01 (the place) at or before the previous track's.
    #[error(
        "{at}: track {number} starts at {start}, {} track {previous} ({previous_start})",
        if .start == .previous_start { "as does" } else { "before" }
    )]
    Overlap {
        at: Place,
        number: u32,
        start: Timestamp,
        previous: u32,
        previous_start: Timestamp,
    },
    /// A track starting at or after the end of the decoded audio ([`Sheet::spans`]).
    #[error(
        "cue sheet: track {number} starts at {start}, {} the end of the audio ({end})",
        if .start > .end { "after" } else { "at" }
    )]
    PastEnd {
        number: u32,
        start: Timestamp,
        end: Timestamp,
    },
}

impl Sheet {
    /// Parses and checks a sheet's bytes (any size: bound them before, as [`read_sheet`] does).
    pub fn parse(bytes: &[u8]) -> Result<Sheet, CueError> {
        let text = decode(bytes);
        // Several FILEs first: such a sheet is passed over, whatever else is wrong with it.
        let mut first: Option<String> = None;
        for (line, file) in file_lines(&text) {
            let file = file?;
            match &first {
                None => first = Some(file),
                Some(first) if *first != file => {
                    return Err(CueError::MultipleFiles {
                        line,
                        first: first.clone(),
                        second: file,
                    });
                }
                Some(_) => {}
            }
        }
        let file = first.ok_or(CueError::NoFile)?;
        let mut parser = Parser::default();
        for (index, line) in lines(&text).enumerate() {
            parser.line(index + 1, line)?;
        }
        parser.finish(file)
    }

    /// Each track's `[start, end)` in sample frames of the decoded stream at `sample_rate`: from
    /// its start to the next track's; the last track ends at `total_frames` (the decoded length)
    /// or, when that is unknown, at the end of the stream (`None`). Errors when a track starts
    /// at or after the end of the audio.
    pub fn spans(
        &self,
        sample_rate: u32,
        total_frames: Option<u64>,
    ) -> Result<Vec<Span>, CueError> {
        let starts: Vec<u64> = self
            .tracks
            .iter()
            .map(|track| track.start.frame_at(sample_rate))
            .collect();
        let mut spans = Vec::with_capacity(self.tracks.len());
        for (i, (track, &start)) in self.tracks.iter().zip(&starts).enumerate() {
            if let Some(total) = total_frames.filter(|&total| start >= total) {
                return Err(CueError::PastEnd {
                    number: track.number,
                    start: track.start,
                    end: Timestamp::of_frame(total, sample_rate, false),
                });
            }
            let end = starts.get(i + 1).copied().or(total_frames);
            spans.push(Span {
                number: track.number,
                start,
                end,
            });
        }
        Ok(spans)
    }
}

/// The sheet beside an audio file that names it, if there is one: `<stem>.cue` or
/// `<file name>.cue` in the same folder (names compared case-insensitively, so `.CUE` too),
/// whose FILE line names this file (see [`read_sheet`] for how). Returns the sheet's path; read
/// it with [`read_sheet`], which also says what is wrong with it.
pub fn sheet_beside(audio: &Path) -> Option<PathBuf> {
    let name = audio.file_name()?.to_string_lossy();
    let stem = audio.file_stem()?.to_string_lossy();
    let wanted = [
        format!("{stem}.cue").to_lowercase(),
        format!("{name}.cue").to_lowercase(),
    ];
    let folder = match audio.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let mut candidates: Vec<PathBuf> = fs::read_dir(folder)
        .ok()?
        .filter_map(|entry| entry.ok())
        .filter(|entry| wanted.contains(&entry.file_name().to_string_lossy().to_lowercase()))
        .map(|entry| entry.path())
        .collect();
    candidates.sort();
    candidates.into_iter().find(|sheet| {
        read_bounded(sheet).is_ok_and(|bytes| {
            file_lines(&decode(&bytes)).any(|(_, file)| file.is_ok_and(|file| names(&file, audio)))
        })
    })
}

/// Reads the sheet at `path` (at most 1 MiB), parses it, and checks that its FILE names the
/// audio file `audio`: the same file name, compared case-insensitively and without any folder
/// the FILE line carries; or, as players accept, the same stem with another extension (sheets
/// often name the `.wav` an album was ripped to, beside a `.flac`), unless the file it names is
/// there itself.
pub fn read_sheet(path: &Path, audio: &Path) -> Result<Sheet, CueError> {
    let sheet = Sheet::parse(&read_bounded(path)?)?;
    if !names(&sheet.file, audio) {
        return Err(CueError::NotBeside {
            file: sheet.file,
            audio: audio
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_default(),
        });
    }
    Ok(sheet)
}

/// The sheet of a FLAC file's embedded CUESHEET block, from the cues symphonia 0.5.5 read
/// (`FormatReader::cues()`), for a stream at `sample_rate`. `None` when it holds fewer than two
/// tracks (a one-track cuesheet is just the file) or the rate is 0.
///
/// How symphonia fills the cues (symphonia-utils-xiph `flac/metadata.rs`): one [`Cue`] per
/// CUESHEET track, in the block's order, lead-out included; `index` is the track number,
/// `start_ts` the track's offset in samples (per channel) from the start of the stream, which
/// FLAC defines as the track's first index point (INDEX 00 when there is a pregap); `points`
/// are the track's index points with offsets in samples relative to `start_ts` (the first is
/// 0), but their index numbers are dropped; the one tag is the ISRC (empty when unset); the
/// data-track flag is dropped too. So here:
/// - the lead-out (number 170, or 255 outside CD-DA; it has no index points) is left out;
/// - a track starts at `start_ts` plus its INDEX 01 offset, taken as the second point when
///   there are two or more (INDEX 00, then 01: the usual pregap) and the only point otherwise.
///   A track with INDEX 01 and 02 but no 00 (rare) is therefore split at its INDEX 02;
/// - a track with no index points is [`CueError::NoIndex01`]; starts must strictly increase;
/// - starts are rounded to the nearest CD frame (exact for CD-DA's multiples of 588 samples at
///   44.1 kHz);
/// - titles and performers come from TrackTitle/Artist tags if a reader supplies them (FLAC's
///   do not), the ISRC from a non-empty IdentIsrc tag; album tags are left to the file's own
///   tags; data tracks cannot be told apart and are kept.
pub fn from_flac_cues(cues: &[Cue], sample_rate: u32) -> Result<Option<Sheet>, CueError> {
    if sample_rate == 0 {
        return Ok(None);
    }
    let mut tracks: Vec<CueTrack> = Vec::new();
    for cue in cues {
        let offset = match cue.points.as_slice() {
            [] if FLAC_LEAD_OUTS.contains(&cue.index) => continue,
            [] => {
                return Err(CueError::NoIndex01 {
                    at: Place::Flac,
                    number: cue.index,
                });
            }
            [only] => only.start_offset_ts,
            [_, second, ..] => second.start_offset_ts,
        };
        let start = Timestamp::of_frame(cue.start_ts.saturating_add(offset), sample_rate, true);
        if let Some(previous) = tracks.last().filter(|previous| start <= previous.start) {
            return Err(CueError::Overlap {
                at: Place::Flac,
                number: cue.index,
                start,
                previous: previous.number,
                previous_start: previous.start,
            });
        }
        let tag = |key: StandardTagKey| {
            cue.tags.iter().find_map(|tag| match &tag.value {
                Value::String(value) if tag.std_key == Some(key) => non_empty(value),
                _ => None,
            })
        };
        tracks.push(CueTrack {
            number: cue.index,
            start,
            title: tag(StandardTagKey::TrackTitle),
            performer: tag(StandardTagKey::Artist),
            isrc: tag(StandardTagKey::IdentIsrc),
        });
    }
    if tracks.len() < 2 {
        return Ok(None);
    }
    Ok(Some(Sheet {
        file: String::new(),
        performer: None,
        title: None,
        genre: None,
        year: None,
        disc: None,
        tracks,
    }))
}

/// The track being read: an AUDIO track's number, TRACK line and what has been read of it, or
/// a data track whose lines are skipped.
enum Open {
    Audio {
        line: usize,
        track: CueTrack,
        has_start: bool,
    },
    Data,
}

/// The state of [`Sheet::parse`]'s pass over the lines after the FILE check.
#[derive(Default)]
struct Parser {
    performer: Option<String>,
    title: Option<String>,
    genre: Option<String>,
    year: Option<u32>,
    disc: Option<u32>,
    tracks: Vec<CueTrack>,
    open: Option<Open>,
    /// The last TRACK number read, audio or data.
    last_number: Option<u32>,
    data_tracks: usize,
}

impl Parser {
    /// Reads one line (`line` counts from 1).
    fn line(&mut self, line: usize, text: &str) -> Result<(), CueError> {
        let (command, rest) = split_word(text);
        match command.to_ascii_uppercase().as_str() {
            "REM" if self.open.is_none() => {
                let (key, rest) = split_word(rest);
                let value = unquote(rest);
                match key.to_ascii_uppercase().as_str() {
                    "GENRE" => self.genre = non_empty(value),
                    "DATE" => self.year = leading_number(value, 4).filter(|&y| y >= 1000),
                    "DISCNUMBER" => self.disc = leading_number(value, 3).filter(|&d| d > 0),
                    _ => {}
                }
            }
            "PERFORMER" => {
                let value = non_empty(unquote(rest));
                match &mut self.open {
                    None => self.performer = value,
                    Some(Open::Audio { track, .. }) => track.performer = value,
                    Some(Open::Data) => {}
                }
            }
            "TITLE" => {
                let value = non_empty(unquote(rest));
                match &mut self.open {
                    None => self.title = value,
                    Some(Open::Audio { track, .. }) => track.title = value,
                    Some(Open::Data) => {}
                }
            }
            "ISRC" => {
                if let Some(Open::Audio { track, .. }) = &mut self.open {
                    track.isrc = non_empty(unquote(rest));
                }
            }
            "TRACK" => self.track(line, rest)?,
            "INDEX" => self.index(line, rest)?,
            _ => {}
        }
        Ok(())
    }

    /// A TRACK line: closes the open track, opens this one.
    fn track(&mut self, line: usize, rest: &str) -> Result<(), CueError> {
        let (number_text, rest) = split_word(rest);
        let (kind, _) = split_word(rest);
        let number = parse_number(number_text).ok_or_else(|| CueError::Malformed {
            line,
            what: format!("TRACK {number_text}: \"{number_text}\" is not a track number"),
        })?;
        if number == 0 {
            return Err(CueError::Malformed {
                line,
                what: format!("TRACK {number_text}: track numbers start at 1"),
            });
        }
        if number > MAX_TRACK {
            return Err(CueError::TooManyTracks { line, number });
        }
        match self.last_number {
            Some(previous) if previous == number => {
                return Err(CueError::DuplicateTrack { line, number });
            }
            Some(previous) if previous > number => {
                return Err(CueError::TrackOrder {
                    line,
                    number,
                    previous,
                });
            }
            _ => {}
        }
        self.last_number = Some(number);
        self.close()?;
        // No type is taken as AUDIO; anything else (MODE1/2352, CDG ...) is a data track.
        self.open = Some(if kind.is_empty() || kind.eq_ignore_ascii_case("AUDIO") {
            Open::Audio {
                line,
                track: CueTrack {
                    number,
                    start: Timestamp(0),
                    title: None,
                    performer: None,
                    isrc: None,
                },
                has_start: false,
            }
        } else {
            self.data_tracks += 1;
            Open::Data
        });
        Ok(())
    }

    /// An INDEX line: checks its time; INDEX 01 is the open track's start.
    fn index(&mut self, line: usize, rest: &str) -> Result<(), CueError> {
        let (number_text, rest) = split_word(rest);
        let (time_text, _) = split_word(rest);
        let Some(number) = parse_number(number_text).filter(|&n| n <= 99) else {
            return Err(CueError::Malformed {
                line,
                what: format!(
                    "INDEX {number_text}: \"{number_text}\" is not an index number (00 to 99)"
                ),
            });
        };
        let time = Timestamp::parse(time_text).map_err(|why| CueError::BadTime {
            line,
            index: number_text.to_owned(),
            time: time_text.to_owned(),
            why,
        })?;
        let (track, has_start) = match &mut self.open {
            None => return Err(CueError::IndexBeforeTrack { line }),
            Some(Open::Data) => return Ok(()),
            Some(Open::Audio {
                track, has_start, ..
            }) => (track, has_start),
        };
        if number != 1 {
            return Ok(());
        }
        if *has_start {
            return Err(CueError::Malformed {
                line,
                what: format!("a second INDEX 01 for track {}", track.number),
            });
        }
        if let Some(previous) = self.tracks.last().filter(|previous| time <= previous.start) {
            return Err(CueError::Overlap {
                at: Place::Line(line),
                number: track.number,
                start: time,
                previous: previous.number,
                previous_start: previous.start,
            });
        }
        track.start = time;
        *has_start = true;
        Ok(())
    }

    /// Closes the open track: an audio track needs its INDEX 01.
    fn close(&mut self) -> Result<(), CueError> {
        match self.open.take() {
            Some(Open::Audio {
                line,
                track,
                has_start,
            }) => {
                if !has_start {
                    return Err(CueError::NoIndex01 {
                        at: Place::Line(line),
                        number: track.number,
                    });
                }
                self.tracks.push(track);
            }
            Some(Open::Data) | None => {}
        }
        Ok(())
    }

    /// The sheet, after the last line.
    fn finish(mut self, file: String) -> Result<Sheet, CueError> {
        self.close()?;
        if self.tracks.is_empty() {
            return Err(CueError::NoTrack {
                data_tracks: self.data_tracks,
            });
        }
        Ok(Sheet {
            file,
            performer: self.performer,
            title: self.title,
            genre: self.genre,
            year: self.year,
            disc: self.disc,
            tracks: self.tracks,
        })
    }
}

/// The file at `path`, if it is a regular file of at most [`MAX_SHEET_BYTES`].
fn read_bounded(path: &Path) -> Result<Vec<u8>, CueError> {
    let meta = fs::metadata(path)?;
    if !meta.is_file() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a regular file").into());
    }
    if meta.len() > MAX_SHEET_BYTES {
        return Err(CueError::TooLarge { size: meta.len() });
    }
    let mut bytes = Vec::new();
    File::open(path)?
        .take(MAX_SHEET_BYTES + 1)
        .read_to_end(&mut bytes)?;
    let size = bytes.len() as u64;
    if size > MAX_SHEET_BYTES {
        // It grew since the metadata was read.
        return Err(CueError::TooLarge { size });
    }
    Ok(bytes)
}

/// Whether a sheet's FILE `file` names the audio file `audio` (see [`read_sheet`]).
fn names(file: &str, audio: &Path) -> bool {
    // The name without any folder, written with either separator.
    let base = file.rsplit(['/', '\\']).next().unwrap_or(file);
    let (Some(name), Some(stem)) = (audio.file_name(), audio.file_stem()) else {
        return false;
    };
    let base_lower = base.to_lowercase();
    if base_lower == name.to_string_lossy().to_lowercase() {
        return true;
    }
    let base_stem = base_lower
        .rsplit_once('.')
        .map_or(base_lower.as_str(), |(stem, _)| stem);
    base_stem == stem.to_string_lossy().to_lowercase() && !audio.with_file_name(base).exists()
}

/// The sheet's text: BOM-marked UTF-8 or UTF-16, else UTF-8 if valid, else Windows-1252.
fn decode(bytes: &[u8]) -> String {
    if let Some(rest) = bytes.strip_prefix(&[0xFF, 0xFE]) {
        return utf16(rest, u16::from_le_bytes);
    }
    if let Some(rest) = bytes.strip_prefix(&[0xFE, 0xFF]) {
        return utf16(rest, u16::from_be_bytes);
    }
    let bytes = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_owned(),
        Err(_) => bytes.iter().map(|&b| cp1252(b)).collect(),
    }
}

/// UTF-16 in the byte order `unit` reads; a dangling byte and unpaired surrogates become U+FFFD.
fn utf16(bytes: &[u8], unit: fn([u8; 2]) -> u16) -> String {
    let mut text: String =
        char::decode_utf16(bytes.chunks_exact(2).map(|pair| unit([pair[0], pair[1]])))
            .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
            .collect();
    if bytes.len() % 2 == 1 {
        text.push(char::REPLACEMENT_CHARACTER);
    }
    text
}

/// One Windows-1252 byte as a char: Latin-1, with cp1252's letters and punctuation at
/// 0x80–0x9F (its five unassigned bytes stay the C1 controls, as browsers decode them).
fn cp1252(byte: u8) -> char {
    const HIGH: [char; 32] = [
        '€', '\u{81}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{8D}', 'Ž',
        '\u{8F}', '\u{90}', '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\u{9D}',
        'ž', 'Ÿ',
    ];
    match byte {
        0x80..=0x9F => HIGH[usize::from(byte - 0x80)],
        _ => char::from(byte),
    }
}

/// The text's lines without their ends: `\n` or `\r\n`, or `\r` alone when there is no `\n`.
fn lines(text: &str) -> impl Iterator<Item = &str> {
    let end = if text.contains('\n') { '\n' } else { '\r' };
    text.split(end)
        .map(|line| line.strip_suffix('\r').unwrap_or(line))
}

/// Each FILE line's line number (from 1) and file name, or why the name cannot be read.
fn file_lines(text: &str) -> impl Iterator<Item = (usize, Result<String, CueError>)> {
    lines(text).enumerate().filter_map(|(index, line)| {
        let (command, rest) = split_word(line);
        if !command.eq_ignore_ascii_case("FILE") {
            return None;
        }
        let line = index + 1;
        let name = file_name(rest).ok_or_else(|| CueError::Malformed {
            line,
            what: "FILE without a file name".to_owned(),
        });
        Some((line, name))
    })
}

/// The name of `FILE "name" TYPE` (quoted) or `FILE name TYPE` (bare: the last word is the type
/// when there are two or more).
fn file_name(rest: &str) -> Option<String> {
    let rest = rest.trim();
    let name = if rest.starts_with('"') {
        unquote(rest)
    } else {
        rest.rsplit_once(char::is_whitespace)
            .map_or(rest, |(name, _)| name)
            .trim_end()
    };
    non_empty(name)
}

/// The first word of `text` (leading whitespace skipped; a quoted word is taken without its
/// quotes) and the rest after it, leading whitespace skipped.
fn split_word(text: &str) -> (&str, &str) {
    let text = text.trim_start();
    let (word, rest) = match text.strip_prefix('"') {
        Some(quoted) => quoted.split_once('"').unwrap_or((quoted, "")),
        None => text.split_once(char::is_whitespace).unwrap_or((text, "")),
    };
    (word, rest.trim_start())
}

/// An argument that runs to the end of the line: `"quoted"` (up to the last quote, so stray
/// inner quotes survive) or bare, trimmed.
fn unquote(rest: &str) -> &str {
    let rest = rest.trim();
    match rest.strip_prefix('"') {
        Some(quoted) => quoted.rsplit_once('"').map_or(quoted, |(inner, _)| inner),
        None => rest,
    }
}

/// A tag's value, trimmed; `None` when empty.
fn non_empty(value: &str) -> Option<String> {
    let value = value.trim();
    (!value.is_empty()).then(|| value.to_owned())
}

/// A whole-word number of at most nine digits (TRACK and INDEX numbers: `01`, `7`).
fn parse_number(text: &str) -> Option<u32> {
    if text.is_empty() || text.len() > 9 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// The number the text starts with, when it has 1 to `max_digits` digits (`1995/03/12` →
/// 1995 with 4; `2/3` → 2).
fn leading_number(text: &str, max_digits: usize) -> Option<u32> {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || digits > max_digits {
        return None;
    }
    text.get(..digits)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use symphonia::core::formats::CuePoint;
    use symphonia::core::meta::Tag;

    /// A typical EAC sheet: album tags, a comment, three tracks with pregaps (INDEX 00).
    const EAC: &str = r#"REM GENRE "Hard Rock"
REM DATE 1980
REM DISCID 2B0A9E04
REM COMMENT "ExactAudioCopy v1.6"
PERFORMER "Motörhead"
TITLE "Ace of Spades"
FILE "Motörhead - Ace of Spades.wav" WAVE
  TRACK 01 AUDIO
    TITLE "Ace of Spades"
    PERFORMER "Motörhead"
    ISRC GBAJE8000001
    INDEX 01 00:00:00
  TRACK 02 AUDIO
    TITLE "Love Me Like a Reptile"
    PERFORMER "Motörhead"
    INDEX 00 02:48:12
    INDEX 01 02:50:00
  TRACK 03 AUDIO
    TITLE "Shoot You in the Back"
    PERFORMER "Motörhead"
    INDEX 00 06:11:40
    INDEX 01 06:13:37
"#;

    fn parse(text: &str) -> Result<Sheet, CueError> {
        Sheet::parse(text.as_bytes())
    }

    /// `text` with its `line`th line (from 1) replaced by `with`.
    fn replace_line(text: &str, line: usize, with: &str) -> String {
        let mut lines: Vec<&str> = text.lines().collect();
        lines[line - 1] = with;
        lines.join("\n")
    }

    #[test]
    fn eac_sheet_parses_into_tracks_and_spans() {
        let sheet = parse(EAC).unwrap();
        assert_eq!(sheet.file, "Motörhead - Ace of Spades.wav");
        assert_eq!(sheet.performer.as_deref(), Some("Motörhead"));
        assert_eq!(sheet.title.as_deref(), Some("Ace of Spades"));
        assert_eq!(sheet.genre.as_deref(), Some("Hard Rock"));
        assert_eq!(sheet.year, Some(1980));
        assert_eq!(sheet.disc, None);
        let numbers: Vec<u32> = sheet.tracks.iter().map(|t| t.number).collect();
        assert_eq!(numbers, [1, 2, 3]);
        assert_eq!(
            sheet.tracks[1].title.as_deref(),
            Some("Love Me Like a Reptile")
        );
        assert_eq!(sheet.tracks[0].isrc.as_deref(), Some("GBAJE8000001"));
        assert_eq!(sheet.tracks[1].isrc, None);
        // INDEX 01, not INDEX 00.
        assert_eq!(sheet.tracks[1].start, Timestamp((2 * 60 + 50) * 75));
        assert_eq!(sheet.tracks[2].start, Timestamp((6 * 60 + 13) * 75 + 37));

        let spans = sheet.spans(44_100, None).unwrap();
        assert_eq!(
            spans,
            [
                Span {
                    number: 1,
                    start: 0,
                    end: Some(170 * 44_100)
                },
                Span {
                    number: 2,
                    start: 170 * 44_100,
                    end: Some(16_471_056)
                },
                // 06:13:37 = 373 s + 37/75 s: (373 * 75 + 37) * 588 samples.
                Span {
                    number: 3,
                    start: 16_471_056,
                    end: None
                },
            ]
        );
        let total = 20 * 60 * 44_100;
        let spans = sheet.spans(44_100, Some(total)).unwrap();
        assert_eq!(spans[2].end, Some(total));
    }

    #[test]
    fn timestamps_convert_to_seconds_and_frames() {
        let t = Timestamp::parse("01:30:37").unwrap();
        assert_eq!(t, Timestamp(90 * 75 + 37));
        assert!((t.seconds() - 90.493_333).abs() < 1e-5);
        assert_eq!(t.frame_at(44_100), 3_990_756);
        assert_eq!(t.frame_at(48_000), 4_343_680);
        assert_eq!(t.to_string(), "01:30:37");
        // Long files: minutes past 99.
        assert_eq!(
            Timestamp::parse("120:00:00").unwrap().to_string(),
            "120:00:00"
        );
        assert_eq!(Timestamp::parse("03:61:00"), Err("seconds run to 59"));
        assert_eq!(Timestamp::parse("03:01:75"), Err("frames run to 74"));
        for bad in [
            "",
            "1:2",
            "1:2:3:4",
            "a:00:00",
            "-1:00:00",
            "1:+2:00",
            "99999999999:00:00",
        ] {
            assert!(Timestamp::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Timestamp::of_frame(3_990_756, 44_100, true), t);
        assert_eq!(
            Timestamp::of_frame(3_990_755, 44_100, false),
            Timestamp(t.0 - 1)
        );
    }

    #[test]
    fn latin1_utf8_bom_utf16_and_crlf_decode() {
        // Windows-1252: ö is 0xF6, and 0x92 is cp1252's right quote.
        let mut latin1 = b"PERFORMER \"Mot\xF6rhead\"\r\nTITLE \"Don\x92t\"\r\n".to_vec();
        latin1.extend_from_slice(b"FILE \"a.wav\" WAVE\r\n  TRACK 01 AUDIO\r\n");
        latin1.extend_from_slice(b"    INDEX 01 00:00:00\r\n");
        let sheet = Sheet::parse(&latin1).unwrap();
        assert_eq!(sheet.performer.as_deref(), Some("Motörhead"));
        assert_eq!(sheet.title.as_deref(), Some("Don’t"));
        assert_eq!(sheet.file, "a.wav");

        let crlf = EAC.replace('\n', "\r\n");
        let mut bom = vec![0xEF, 0xBB, 0xBF];
        bom.extend_from_slice(crlf.as_bytes());
        assert_eq!(Sheet::parse(&bom).unwrap(), parse(EAC).unwrap());

        for (bom, unit) in [
            ([0xFF, 0xFE], u16::to_le_bytes as fn(u16) -> [u8; 2]),
            ([0xFE, 0xFF], u16::to_be_bytes),
        ] {
            let mut bytes = bom.to_vec();
            bytes.extend(EAC.encode_utf16().flat_map(unit));
            assert_eq!(Sheet::parse(&bytes).unwrap(), parse(EAC).unwrap());
        }

        let mac = EAC.replace('\n', "\r");
        assert_eq!(parse(&mac).unwrap(), parse(EAC).unwrap());
    }

    #[test]
    fn lenient_forms_are_read() {
        let sheet = parse(
            "performer Bare Name\nrem date 1995/03/12\nREM DISCNUMBER 2/3\n\
             FILE My Album.flac FLAC\n\ttrack 1 audio\n\ttitle \"Say \"Hi\"\"\n\tindex 1 0:0:0\n\
             TRACK 02 AUDIO\nINDEX 01 00:10:00\nFLAGS DCP\nPREGAP 00:02:00\nSONGWRITER x\n\
             CATALOG 0000000000000\nUNKNOWN stuff\n",
        )
        .unwrap();
        assert_eq!(sheet.performer.as_deref(), Some("Bare Name"));
        assert_eq!(sheet.year, Some(1995));
        assert_eq!(sheet.disc, Some(2));
        assert_eq!(sheet.file, "My Album.flac");
        assert_eq!(sheet.tracks[0].title.as_deref(), Some("Say \"Hi\""));
        assert_eq!(sheet.tracks[1].start, Timestamp(750));
    }

    #[test]
    fn data_track_is_skipped() {
        let sheet = parse(
            "FILE \"a.bin\" BINARY\nTRACK 01 AUDIO\nINDEX 01 00:00:00\nTRACK 02 AUDIO\n\
             INDEX 01 03:00:00\nTRACK 03 MODE1/2352\nTITLE data\nINDEX 01 05:00:00\n",
        )
        .unwrap();
        let numbers: Vec<u32> = sheet.tracks.iter().map(|t| t.number).collect();
        assert_eq!(numbers, [1, 2]);
        let err =
            parse("FILE \"a.bin\" BINARY\nTRACK 01 MODE1/2352\nINDEX 01 00:00:00\n").unwrap_err();
        assert!(matches!(err, CueError::NoTrack { data_tracks: 1 }), "{err}");
    }

    #[test]
    fn each_error_names_its_line() {
        let cases: [(String, &str); 11] = [
            (
                replace_line(EAC, 22, "    INDEX 01 03:61:00"),
                "cue sheet line 22: INDEX 01 03:61:00 is not a time (seconds run to 59)",
            ),
            (
                replace_line(EAC, 22, "    INDEX 01 03:01:80"),
                "cue sheet line 22: INDEX 01 03:01:80 is not a time (frames run to 74)",
            ),
            (
                replace_line(EAC, 21, "    INDEX 00 xx:00:00"),
                "cue sheet line 21: INDEX 00 xx:00:00 is not a time (MM:SS:FF, in numbers)",
            ),
            (
                replace_line(EAC, 22, "    INDEX 01 02:40:00"),
                "cue sheet line 22: track 3 starts at 02:40:00, before track 2 (02:50:00)",
            ),
            (
                replace_line(EAC, 22, "    INDEX 01 02:50:00"),
                "cue sheet line 22: track 3 starts at 02:50:00, as does track 2 (02:50:00)",
            ),
            (
                replace_line(EAC, 18, "  TRACK 02 AUDIO"),
                "cue sheet line 18: TRACK 02 appears twice",
            ),
            (
                replace_line(EAC, 18, "  TRACK 01 AUDIO"),
                "cue sheet line 18: TRACK 01 comes after track 02: track numbers must increase",
            ),
            (
                replace_line(EAC, 18, "  TRACK 100 AUDIO"),
                "cue sheet line 18: TRACK 100: a sheet holds at most 99 tracks",
            ),
            (
                replace_line(EAC, 1, "INDEX 01 00:00:00"),
                "cue sheet line 1: INDEX before any TRACK",
            ),
            (
                replace_line(EAC, 17, "    INDEX 02 02:50:00"),
                "cue sheet line 13: track 2 has no INDEX 01",
            ),
            (
                replace_line(EAC, 8, "  TRACK x1 AUDIO"),
                "cue sheet line 8: TRACK x1: \"x1\" is not a track number",
            ),
        ];
        for (text, message) in cases {
            let err = parse(&text).unwrap_err();
            assert_eq!(err.to_string(), message);
        }
        // No TRACK, no FILE, and a last track without INDEX 01.
        let head: String = EAC.lines().take(7).map(|l| format!("{l}\n")).collect();
        assert_eq!(
            parse(&head).unwrap_err().to_string(),
            "cue sheet has no TRACK"
        );
        let no_file = replace_line(EAC, 7, "");
        assert_eq!(
            parse(&no_file).unwrap_err().to_string(),
            "cue sheet has no FILE"
        );
        assert!(matches!(
            parse(&replace_line(EAC, 22, "")).unwrap_err(),
            CueError::NoIndex01 {
                at: Place::Line(18),
                number: 3
            }
        ));
        assert!(matches!(
            parse(&replace_line(EAC, 11, "INDEX 01 00:00:00")).unwrap_err(),
            CueError::Malformed { line: 12, .. }
        ));
    }

    #[test]
    fn several_files_are_their_own_tracks() {
        let text = "FILE \"01.flac\" WAVE\nTRACK 01 AUDIO\nINDEX 01 00:00:00\n\
                    FILE \"02.flac\" WAVE\nTRACK 02 AUDIO\nINDEX 01 00:00:00\n";
        let err = parse(text).unwrap_err();
        assert!(
            matches!(&err, CueError::MultipleFiles { line: 4, first, second }
                if first == "01.flac" && second == "02.flac"),
            "{err}"
        );
        // The same file named twice is still one file.
        let same = "FILE \"a.flac\" WAVE\nTRACK 01 AUDIO\nINDEX 01 00:00:00\n\
                    FILE \"a.flac\" WAVE\nTRACK 02 AUDIO\nINDEX 01 01:00:00\n";
        assert_eq!(parse(same).unwrap().tracks.len(), 2);
    }

    #[test]
    fn spans_end_at_the_audio_and_refuse_tracks_past_it() {
        let sheet = parse(EAC).unwrap();
        let err = sheet.spans(44_100, Some(6 * 60 * 44_100)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cue sheet: track 3 starts at 06:13:37, after the end of the audio (06:00:00)"
        );
        let at_end = sheet.tracks[2].start.frame_at(44_100);
        let err = sheet.spans(44_100, Some(at_end)).unwrap_err();
        assert!(
            err.to_string()
                .contains(", at the end of the audio (06:13:37)"),
            "{err}"
        );
        assert!(sheet.spans(44_100, Some(at_end + 1)).is_ok());
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let words: [&[u8]; 14] = [
            b"FILE \"a.wav\" WAVE\n",
            b"TRACK ",
            b"INDEX ",
            b"01",
            b"99",
            b"AUDIO\n",
            b"00:00:00\n",
            b"\"",
            b"\r\n",
            b"\xFF",
            b"\xFE",
            b"REM DATE ",
            b"99999999999999:99:99",
            b" ",
        ];
        for _ in 0..2000 {
            let mut bytes = Vec::new();
            for _ in 0..(seed % 40) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                bytes.extend_from_slice(words[(seed % words.len() as u64) as usize]);
            }
            if let Ok(sheet) = Sheet::parse(&bytes) {
                let _ = sheet.spans(44_100, Some(1000));
                let _ = sheet.spans(0, None);
            }
        }
    }

    /// Writes `files` (name, contents) into a fresh temp folder.
    fn folder(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        for (name, contents) in files {
            fs::write(dir.path().join(name), contents).expect("write");
        }
        dir
    }

    const WAV_SHEET: &str = "FILE \"Album.wav\" WAVE\nTRACK 01 AUDIO\nINDEX 01 00:00:00\n";

    #[test]
    fn sheet_beside_finds_the_sheet_naming_the_file() {
        for sheet_name in ["Album.cue", "Album.flac.cue", "Album.CUE", "album.Cue"] {
            let dir = folder(&[("Album.flac", ""), (sheet_name, WAV_SHEET)]);
            let audio = dir.path().join("Album.flac");
            assert_eq!(sheet_beside(&audio), Some(dir.path().join(sheet_name)));
            let sheet = read_sheet(&dir.path().join(sheet_name), &audio).unwrap();
            assert_eq!(sheet.file, "Album.wav");
        }
        // A FILE with a Windows folder and other case.
        let dir = folder(&[
            ("Album.flac", ""),
            (
                "Album.cue",
                "FILE \"C:\\Rips\\ALBUM.FLAC\" WAVE\nTRACK 1\nINDEX 01 00:00:00\n",
            ),
        ]);
        assert!(sheet_beside(&dir.path().join("Album.flac")).is_some());
    }

    #[test]
    fn sheet_beside_ignores_sheets_for_other_files() {
        let other = "FILE \"Other.flac\" WAVE\nTRACK 01 AUDIO\nINDEX 01 00:00:00\n";
        let dir = folder(&[
            ("Album.flac", ""),
            ("Album.cue", other),
            ("Unrelated.cue", WAV_SHEET),
        ]);
        let audio = dir.path().join("Album.flac");
        assert_eq!(sheet_beside(&audio), None);
        let err = read_sheet(&dir.path().join("Album.cue"), &audio).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cue sheet names FILE \"Other.flac\", which is not beside it (the audio file is \
             \"Album.flac\")"
        );
        // The sheet names a .wav that is there itself: it is that file's sheet.
        let dir = folder(&[
            ("Album.flac", ""),
            ("Album.wav", ""),
            ("Album.cue", WAV_SHEET),
        ]);
        assert_eq!(sheet_beside(&dir.path().join("Album.flac")), None);
        assert_eq!(
            sheet_beside(&dir.path().join("Album.wav")),
            Some(dir.path().join("Album.cue"))
        );
        // No sheet at all.
        let dir = folder(&[("Album.flac", "")]);
        assert_eq!(sheet_beside(&dir.path().join("Album.flac")), None);
    }

    #[test]
    fn read_sheet_refuses_big_files() {
        let big = "REM COMMENT padding\n".repeat(160_000);
        let dir = folder(&[("Album.flac", ""), ("Album.cue", &big)]);
        let err = read_sheet(
            &dir.path().join("Album.cue"),
            &dir.path().join("Album.flac"),
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "cue sheet is 3.2 MB, not a sheet");
        assert_eq!(sheet_beside(&dir.path().join("Album.flac")), None);
    }

    fn cue(index: u32, start_ts: u64, points: &[u64], tags: Vec<Tag>) -> Cue {
        Cue {
            index,
            start_ts,
            tags,
            points: points
                .iter()
                .map(|&start_offset_ts| CuePoint {
                    start_offset_ts,
                    tags: Vec::new(),
                })
                .collect(),
        }
    }

    #[test]
    fn flac_cues_map_to_tracks() {
        let isrc = |value: &str| {
            vec![Tag::new(
                Some(StandardTagKey::IdentIsrc),
                "ISRC",
                Value::from(value),
            )]
        };
        // As symphonia reads a CD-DA cuesheet: track 2 has a pregap (INDEX 00, then 01 at
        // +65856 samples), the lead-out has no points.
        let cues = [
            cue(1, 0, &[0], isrc("GBAJE8000001")),
            cue(2, 132_300, &[0, 65_856], isrc("")),
            cue(3, 308_700, &[0], isrc("")),
            cue(170, 441_000, &[], isrc("")),
        ];
        let sheet = from_flac_cues(&cues, 44_100).unwrap().unwrap();
        let starts: Vec<(u32, u64)> = sheet.tracks.iter().map(|t| (t.number, t.start.0)).collect();
        assert_eq!(
            starts,
            [(1, 0), (2, (132_300 + 65_856) / 588), (3, 308_700 / 588)]
        );
        assert_eq!(sheet.tracks[0].isrc.as_deref(), Some("GBAJE8000001"));
        assert_eq!(sheet.tracks[1].isrc, None);
        assert_eq!(sheet.file, "");
        let spans = sheet.spans(44_100, Some(441_000)).unwrap();
        assert_eq!(spans[1].start, 132_300 + 65_856);
        assert_eq!(spans[2].end, Some(441_000));

        // One track and the lead-out: just the file.
        assert_eq!(from_flac_cues(&cues[2..], 44_100).unwrap(), None);
        assert_eq!(from_flac_cues(&[], 44_100).unwrap(), None);
        let err = from_flac_cues(&[cues[1].clone(), cues[0].clone()], 44_100).unwrap_err();
        assert_eq!(
            err.to_string(),
            "FLAC cuesheet: track 1 starts at 00:00:00, before track 2 (00:04:37)"
        );
        let err =
            from_flac_cues(&[cues[0].clone(), cue(2, 588, &[], Vec::new())], 44_100).unwrap_err();
        assert_eq!(err.to_string(), "FLAC cuesheet: track 2 has no INDEX 01");
    }

    /// Encodes a WAV with `flac --cuesheet` and reads the cues back through symphonia.
    #[test]
    fn flac_cuesheet_through_symphonia() {
        use symphonia::core::formats::FormatOptions;
        use symphonia::core::io::MediaSourceStream;
        use symphonia::core::meta::MetadataOptions;
        use symphonia::core::probe::Hint;

        let dir = tempfile::tempdir().expect("tempdir");
        let wav = dir.path().join("Album.wav");
        let rate = 44_100;
        let samples = vec![0.0f32; 2 * 10 * rate as usize];
        crate::synth::write_wav(&wav, rate, 2, &samples, crate::synth::WavFormat::Pcm16)
            .expect("wav");
        let cue_path = dir.path().join("Album.cue");
        fs::write(
            &cue_path,
            "FILE \"Album.wav\" WAVE\n  TRACK 01 AUDIO\n    INDEX 01 00:00:00\n\
             \x20 TRACK 02 AUDIO\n    INDEX 00 00:03:00\n    INDEX 01 00:04:37\n\
             \x20 TRACK 03 AUDIO\n    INDEX 01 00:07:00\n",
        )
        .expect("cue");
        let flac = dir.path().join("Album.flac");
        let mut cuesheet = std::ffi::OsString::from("--cuesheet=");
        cuesheet.push(&cue_path);
        let status = std::process::Command::new("flac")
            .args(["-s", "-f"])
            .arg(&cuesheet)
            .arg(&wav)
            .arg("-o")
            .arg(&flac)
            .status();
        match status {
            Ok(status) if status.success() => {}
            Ok(status) => panic!("flac --cuesheet failed: {status}"),
            Err(err) => {
                println!("skipped: cannot run the flac encoder ({err})");
                return;
            }
        }
        let source =
            MediaSourceStream::new(Box::new(File::open(&flac).unwrap()), Default::default());
        let mut hint = Hint::new();
        hint.with_extension("flac");
        let probed = symphonia::default::get_probe()
            .format(
                &hint,
                source,
                &FormatOptions::default(),
                &MetadataOptions::default(),
            )
            .unwrap();
        let sheet = from_flac_cues(probed.format.cues(), rate).unwrap().unwrap();
        let text = read_sheet(&cue_path, &wav).unwrap();
        assert_eq!(sheet.tracks, text.tracks);
        let spans = sheet.spans(rate, Some(10 * u64::from(rate))).unwrap();
        let starts: Vec<u64> = spans.iter().map(|s| s.start).collect();
        assert_eq!(starts, [0, (4 * 75 + 37) * 588, 7 * 44_100]);
    }
}
