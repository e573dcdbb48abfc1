//! The measurement record: every value one analysis produces, declared once.
//!
//! [`Record`] holds the values at full precision, with typed key ([`PitchClass`]) and mode
//! ([`Scale`]). [`FIELDS`] describes each scalar once (JSON key and SQL column, unit, display
//! rounding, kind, accessors); `inspect --json` ([`crate::report`]) and the store's statements
//! ([`crate::store`]) are built from it, so a new scalar is one field here and one row there.
//! The vectors (timbre, embedding, tag probabilities) and the file's tags are not scalars and
//! are handled by name where they are used. Rounding is for display only ([`Field::shown`]):
//! the worker protocol and the database keep what was measured.

use serde::{Deserialize, Serialize};

use super::key::KEY_NAMES;
use super::timbre::Timbre;
use crate::tags::Tags;

/// Bumped whenever a change to decoding or features alters any stored value: stored rows
/// from an older version are analysed again.
pub const ANALYSIS_VERSION: i64 = 2;

/// The tonic of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PitchClass {
    C,
    #[serde(rename = "C#")]
    Cs,
    D,
    Eb,
    E,
    F,
    #[serde(rename = "F#")]
    Fs,
    G,
    Ab,
    A,
    Bb,
    B,
}

impl PitchClass {
    pub const ALL: [PitchClass; 12] = [
        PitchClass::C,
        PitchClass::Cs,
        PitchClass::D,
        PitchClass::Eb,
        PitchClass::E,
        PitchClass::F,
        PitchClass::Fs,
        PitchClass::G,
        PitchClass::Ab,
        PitchClass::A,
        PitchClass::Bb,
        PitchClass::B,
    ];

    /// Semitones above C.
    pub fn index(self) -> usize {
        self as usize
    }

    /// `index % 12` semitones above C.
    pub fn from_index(index: usize) -> PitchClass {
        Self::ALL[index % 12]
    }

    /// `C C# D Eb E F F# G Ab A Bb B`: as shown and stored.
    pub fn name(self) -> &'static str {
        KEY_NAMES[self.index()]
    }

    pub fn from_name(name: &str) -> Option<PitchClass> {
        KEY_NAMES
            .iter()
            .position(|k| *k == name)
            .map(Self::from_index)
    }
}

/// The mode of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scale {
    Major,
    Minor,
}

impl Scale {
    pub fn new(minor: bool) -> Scale {
        if minor { Scale::Minor } else { Scale::Major }
    }

    pub fn is_minor(self) -> bool {
        self == Scale::Minor
    }

    /// `major` or `minor`: as shown and stored.
    pub fn name(self) -> &'static str {
        match self {
            Scale::Major => "major",
            Scale::Minor => "minor",
        }
    }

    pub fn from_name(name: &str) -> Option<Scale> {
        match name {
            "major" => Some(Scale::Major),
            "minor" => Some(Scale::Minor),
            _ => None,
        }
    }
}

/// What one analysis measured, at full precision: as sent from a worker process to the
/// writer, stored, and read back. `None` means "not meaningful for this audio" (silence has
/// no tempo, a one-second clip no key), never "failed".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub duration_s: f64,
    pub sample_rate: u32,
    pub channels: u32,
    pub codec: String,
    pub bpm: Option<f64>,
    /// How sure the tempo is, 0..1: the chosen reading's share against the other metrical
    /// levels, times how strongly the onsets repeat at it (low for rubato and beatless audio).
    pub bpm_confidence: Option<f64>,
    /// The tempo reading that came second (usually another metrical level: half, double, 3:2).
    pub bpm_alternative: Option<f64>,
    pub key: Option<PitchClass>,
    pub scale: Option<Scale>,
    /// Correlation with the best key profile, -1..1.
    pub key_strength: Option<f64>,
    pub loudness_lufs: Option<f64>,
    pub loudness_rms_db: Option<f64>,
    /// 0..~3, Essentia's scale.
    pub danceability: Option<f64>,
    /// Onsets per second.
    pub onset_rate: Option<f64>,
    /// Sign changes per sample at 22.05 kHz.
    pub zcr: Option<f64>,
    pub spectral_centroid: Option<f64>,
    /// The file's own tags (not a measurement, but they travel with it).
    pub tags: Tags,
    /// Full mode only, and `None` for a silent track. Boxed: 1.7 KB inline would triple the
    /// size of every stored track in memory. Not read back with the scalars (see
    /// `Store::embeddings` for the vectors).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timbre: Option<Box<Timbre>>,
    /// Full mode only: [`crate::embedding::EMBEDDING_DIM`] values, the mean over the patches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedding: Option<Vec<f32>>,
    /// Full mode only: [`crate::embedding::N_TAGS`] probabilities, in the network's order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub musicnn_tags: Option<Vec<f32>>,
}

/// How a scalar is held: decides its SQL type and how it is read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Real,
    Integer,
    Text,
}

impl Kind {
    /// The SQLite column type.
    pub fn sql_type(self) -> &'static str {
        match self {
            Kind::Real => "REAL",
            Kind::Integer => "INTEGER",
            Kind::Text => "TEXT",
        }
    }
}

/// One scalar's value, borrowed from a [`Record`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    Real(Option<f64>),
    Integer(Option<i64>),
    Text(Option<&'a str>),
}

impl<'a> Value<'a> {
    pub fn real(self) -> Option<f64> {
        match self {
            Value::Real(v) => v,
            _ => None,
        }
    }

    pub fn integer(self) -> Option<i64> {
        match self {
            Value::Integer(v) => v,
            _ => None,
        }
    }

    pub fn text(self) -> Option<&'a str> {
        match self {
            Value::Text(v) => v,
            _ => None,
        }
    }
}

impl Serialize for Value<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match *self {
            Value::Real(v) => v.serialize(s),
            Value::Integer(v) => v.serialize(s),
            Value::Text(v) => v.serialize(s),
        }
    }
}

/// The declaration of one scalar of [`Record`].
pub struct Field {
    /// The `inspect --json` key and the `features` column.
    pub name: &'static str,
    /// For people; empty for a ratio or a name.
    pub unit: &'static str,
    /// Decimal places shown (reals only); more digits than this are noise.
    pub digits: Option<i32>,
    pub kind: Kind,
    pub get: fn(&Record) -> Value<'_>,
    /// Sets the field from a stored value; a value of the wrong kind or an unknown name
    /// leaves the field empty.
    pub set: fn(&mut Record, Value<'_>),
}

impl std::fmt::Debug for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Field").field("name", &self.name).finish()
    }
}

impl Field {
    /// The value as shown: reals rounded to [`Field::digits`], non-finite ones empty.
    pub fn shown<'a>(&self, record: &'a Record) -> Value<'a> {
        match ((self.get)(record), self.digits) {
            (Value::Real(v), Some(digits)) => Value::Real(round(v, digits)),
            (Value::Real(v), None) => Value::Real(v.filter(|x| x.is_finite())),
            (v, _) => v,
        }
    }
}

/// Rounds for display: `digits` decimal places; non-finite values become `None`.
pub fn round(v: Option<f64>, digits: i32) -> Option<f64> {
    let scale = 10f64.powi(digits);
    v.filter(|x| x.is_finite())
        .map(|x| (x * scale).round() / scale)
}

/// An optional real: `real!(name, unit, digits)`.
macro_rules! real {
    ($name:ident, $unit:expr, $digits:expr) => {
        Field {
            name: stringify!($name),
            unit: $unit,
            digits: Some($digits),
            kind: Kind::Real,
            get: |r| Value::Real(r.$name),
            set: |r, v| r.$name = v.real(),
        }
    };
}

/// Every scalar of [`Record`], in `inspect --json` order. Append new ones: the store adds
/// their columns by itself (nullable: rows measured before read back as `None`).
pub static FIELDS: &[Field] = &[
    Field {
        name: "duration_s",
        unit: "s",
        digits: Some(3),
        kind: Kind::Real,
        get: |r| Value::Real(Some(r.duration_s)),
        set: |r, v| r.duration_s = v.real().unwrap_or(0.0),
    },
    Field {
        name: "sample_rate",
        unit: "Hz",
        digits: None,
        kind: Kind::Integer,
        get: |r| Value::Integer(Some(r.sample_rate.into())),
        set: |r, v| r.sample_rate = v.integer().and_then(|x| x.try_into().ok()).unwrap_or(0),
    },
    Field {
        name: "channels",
        unit: "",
        digits: None,
        kind: Kind::Integer,
        get: |r| Value::Integer(Some(r.channels.into())),
        set: |r, v| r.channels = v.integer().and_then(|x| x.try_into().ok()).unwrap_or(0),
    },
    Field {
        name: "codec",
        unit: "",
        digits: None,
        kind: Kind::Text,
        get: |r| Value::Text(Some(&r.codec)),
        set: |r, v| r.codec = v.text().unwrap_or("").to_string(),
    },
    real!(bpm, "BPM", 2),
    real!(bpm_confidence, "", 3),
    Field {
        name: "key",
        unit: "",
        digits: None,
        kind: Kind::Text,
        get: |r| Value::Text(r.key.map(PitchClass::name)),
        set: |r, v| r.key = v.text().and_then(PitchClass::from_name),
    },
    Field {
        name: "scale",
        unit: "",
        digits: None,
        kind: Kind::Text,
        get: |r| Value::Text(r.scale.map(Scale::name)),
        set: |r, v| r.scale = v.text().and_then(Scale::from_name),
    },
    real!(key_strength, "", 3),
    real!(loudness_lufs, "LUFS", 2),
    real!(loudness_rms_db, "dBFS", 2),
    real!(danceability, "", 3),
    real!(onset_rate, "/s", 3),
    real!(zcr, "", 4),
    real!(spectral_centroid, "Hz", 1),
    real!(bpm_alternative, "BPM", 2),
];

/// The declaration named `name`, if there is one.
pub fn field(name: &str) -> Option<&'static Field> {
    FIELDS.iter().find(|f| f.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_every_field_round_trips() {
        let names: std::collections::HashSet<_> = FIELDS.iter().map(|f| f.name).collect();
        assert_eq!(names.len(), FIELDS.len());
        let mut full = Record {
            sample_rate: 44_100,
            channels: 2,
            codec: "flac".into(),
            key: Some(PitchClass::Fs),
            scale: Some(Scale::Minor),
            ..Record::default()
        };
        for (i, f) in FIELDS.iter().enumerate() {
            if f.kind == Kind::Real {
                (f.set)(&mut full, Value::Real(Some(i as f64 + 0.123_456_789)));
            }
        }
        assert!(full.bpm.is_some() && full.spectral_centroid.is_some());
        let mut copy = Record::default();
        for f in FIELDS {
            (f.set)(&mut copy, (f.get)(&full));
        }
        assert_eq!(copy, full);
    }

    #[test]
    fn keys_and_scales_keep_their_names() {
        for (i, name) in KEY_NAMES.iter().enumerate() {
            let pc = PitchClass::from_index(i);
            assert_eq!((pc.index(), pc.name()), (i, *name));
            assert_eq!(PitchClass::from_name(name), Some(pc));
            assert_eq!(serde_json::to_string(&pc).unwrap(), format!("\"{name}\""));
        }
        assert_eq!(PitchClass::from_name("H"), None);
        assert_eq!(Scale::from_name("minor"), Some(Scale::Minor));
        assert_eq!(serde_json::to_string(&Scale::Major).unwrap(), "\"major\"");
    }

    #[test]
    fn only_display_rounds() {
        let r = Record {
            bpm: Some(120.126),
            zcr: Some(f64::NAN),
            ..Record::default()
        };
        let bpm = field("bpm").unwrap();
        assert_eq!(bpm.shown(&r), Value::Real(Some(120.13)));
        assert_eq!((bpm.get)(&r), Value::Real(Some(120.126)));
        assert_eq!(field("zcr").unwrap().shown(&r), Value::Real(None));
    }

    /// Regression: without serde_json's `float_roundtrip`, about one value in nine came back
    /// from a worker one ULP off.
    #[test]
    fn the_worker_protocol_keeps_every_bit() {
        let mut x: u64 = 0x1234_5678_9abc_def1;
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let v = (x >> 11) as f64 / (1u64 << 53) as f64 * 4000.0 - 100.0;
            let r = Record {
                bpm: Some(v),
                duration_s: v,
                ..Record::default()
            };
            let back: Record = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
            assert_eq!(back.bpm.map(f64::to_bits), Some(v.to_bits()));
            assert_eq!(back.duration_s.to_bits(), v.to_bits());
        }
    }
}
