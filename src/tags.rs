//! Container tags, normalised.
//!
//! In: symphonia metadata revisions (ID3v2, Vorbis comments, MP4 atoms, RIFF INFO) and the last
//! 128 bytes of the file (ID3v1, which symphonia does not read). Out: [`Tags`], the seven fields
//! playlists use, the disc number (Subsonic albums sort by disc, then track), and the two
//! identifiers the on-line look-ups ask by (MusicBrainz recording id, ISRC). Earlier sources
//! win: the first value seen for a field is kept.

use serde::{Deserialize, Serialize};
use symphonia::core::meta::{MetadataRevision, StandardTagKey};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tags {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artist: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub album: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub album_artist: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub genre: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub year: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub track_number: Option<u32>,
    /// The disc of a set ("2/3" -> 2): ID3 TPOS, Vorbis DISCNUMBER, MP4 disk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disc_number: Option<u32>,
    /// The MusicBrainz recording id (a UUID), as taggers like Picard write it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub musicbrainz_recording_id: Option<String>,
    /// The recording's ISRC (12 characters, e.g. `USRC17607839`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isrc: Option<String>,
}

impl Tags {
    /// No tags at all (usable in a `static`).
    pub const EMPTY: Tags = Tags {
        title: None,
        artist: None,
        album: None,
        album_artist: None,
        genre: None,
        year: None,
        track_number: None,
        disc_number: None,
        musicbrainz_recording_id: None,
        isrc: None,
    };

    pub fn merge_revision(&mut self, rev: &MetadataRevision) {
        for tag in rev.tags() {
            if let Some(key) = tag.std_key {
                self.merge_standard(key, &tag.value.to_string());
            }
        }
    }

    /// One tag by its name as ffmpeg, APEv2 and ASF write it (`title`, `album_artist`,
    /// `Album Artist`, `WM/AlbumArtist`, `track`, `date`, ...; case ignored). Unknown names
    /// are ignored.
    pub fn merge_named(&mut self, name: &str, value: &str) {
        let name = name.trim().to_ascii_lowercase();
        let name = name.strip_prefix("wm/").unwrap_or(&name);
        let key = match name.replace([' ', '_'], "").as_str() {
            "title" => StandardTagKey::TrackTitle,
            "artist" | "author" => StandardTagKey::Artist,
            "album" | "albumtitle" => StandardTagKey::Album,
            "albumartist" => StandardTagKey::AlbumArtist,
            "genre" => StandardTagKey::Genre,
            "date" | "year" => StandardTagKey::Date,
            "track" | "tracknumber" => StandardTagKey::TrackNumber,
            "disc" | "discnumber" | "partofset" => StandardTagKey::DiscNumber,
            "musicbrainztrackid" | "musicbrainz/trackid" => StandardTagKey::MusicBrainzRecordingId,
            "isrc" => StandardTagKey::IdentIsrc,
            _ => return,
        };
        self.merge_standard(key, value);
    }

    fn merge_standard(&mut self, key: StandardTagKey, value: &str) {
        // RIFF INFO strings keep their NUL terminator (and padding) in symphonia.
        let value = value.trim_matches(|c: char| c.is_whitespace() || c == '\0');
        if value.is_empty() {
            return;
        }
        match key {
            StandardTagKey::TrackTitle => set(&mut self.title, value),
            StandardTagKey::Artist => set(&mut self.artist, value),
            StandardTagKey::Album => set(&mut self.album, value),
            StandardTagKey::AlbumArtist => set(&mut self.album_artist, value),
            StandardTagKey::Genre => set(&mut self.genre, &clean_genre(value)),
            StandardTagKey::Date | StandardTagKey::ReleaseDate | StandardTagKey::OriginalDate
                if self.year.is_none() =>
            {
                self.year = parse_year(value);
            }
            StandardTagKey::TrackNumber if self.track_number.is_none() => {
                self.track_number = parse_leading_number(value);
            }
            StandardTagKey::DiscNumber if self.disc_number.is_none() => {
                self.disc_number = parse_leading_number(value);
            }
            StandardTagKey::MusicBrainzRecordingId if is_uuid(value) => {
                set(
                    &mut self.musicbrainz_recording_id,
                    &value.to_ascii_lowercase(),
                );
            }
            StandardTagKey::IdentIsrc => {
                let isrc: String = value.chars().filter(|c| *c != '-').collect();
                if is_isrc(&isrc) {
                    set(&mut self.isrc, &isrc.to_ascii_uppercase());
                }
            }
            _ => {}
        }
    }

    /// Fills the fields still empty from `other` (a second tag of the same file).
    pub fn merge_missing(&mut self, other: Tags) {
        let Tags {
            title,
            artist,
            album,
            album_artist,
            genre,
            year,
            track_number,
            disc_number,
            musicbrainz_recording_id,
            isrc,
        } = other;
        self.title = self.title.take().or(title);
        self.artist = self.artist.take().or(artist);
        self.album = self.album.take().or(album);
        self.album_artist = self.album_artist.take().or(album_artist);
        self.genre = self.genre.take().or(genre);
        self.year = self.year.or(year);
        self.track_number = self.track_number.or(track_number);
        self.disc_number = self.disc_number.or(disc_number);
        self.musicbrainz_recording_id = self
            .musicbrainz_recording_id
            .take()
            .or(musicbrainz_recording_id);
        self.isrc = self.isrc.take().or(isrc);
    }

    /// Reads an ID3v1 tag from the last 128 bytes of a file, if there is one.
    pub fn merge_id3v1(&mut self, block: &[u8; 128]) {
        if &block[..3] != b"TAG" {
            return;
        }
        let field = |range: std::ops::Range<usize>| -> Option<String> {
            let raw = &block[range];
            let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
            // ID3v1 is Latin-1: every byte maps to the code point of the same value.
            let s: String = raw[..end].iter().map(|&b| b as char).collect();
            let s = s.trim().to_string();
            (!s.is_empty()).then_some(s)
        };
        if let Some(v) = field(3..33) {
            set(&mut self.title, &v);
        }
        if let Some(v) = field(33..63) {
            set(&mut self.artist, &v);
        }
        if let Some(v) = field(63..93) {
            set(&mut self.album, &v);
        }
        if self.year.is_none() {
            self.year = field(93..97).and_then(|y| parse_year(&y));
        }
        // ID3v1.1: a zero byte at 125 and a track number at 126.
        if self.track_number.is_none() && block[125] == 0 && block[126] != 0 {
            self.track_number = Some(block[126] as u32);
        }
        if let Some(name) = ID3V1_GENRES.get(block[127] as usize) {
            set(&mut self.genre, name);
        }
    }
}

fn set(slot: &mut Option<String>, value: &str) {
    if slot.is_none() && !value.is_empty() {
        *slot = Some(value.to_string());
    }
}

/// ID3v2 writes genres as "(17)", "(17)Rock" or "Rock"; keep the words.
fn clean_genre(value: &str) -> String {
    let v = value.trim();
    if let Some(rest) = v.strip_prefix('(') {
        if let Some((num, tail)) = rest.split_once(')') {
            if !tail.trim().is_empty() {
                return tail.trim().to_string();
            }
            if let Some(name) = num.parse::<usize>().ok().and_then(|n| ID3V1_GENRES.get(n)) {
                return name.to_string();
            }
        }
    }
    v.to_string()
}

/// The first run of four digits that makes a plausible year ("2004-05-01", "c. 1998").
fn parse_year(value: &str) -> Option<u32> {
    let bytes = value.as_bytes();
    bytes.windows(4).enumerate().find_map(|(i, w)| {
        let digits = w.iter().all(u8::is_ascii_digit);
        let bounded = i == 0 || !bytes[i - 1].is_ascii_digit();
        let after = bytes.get(i + 4).is_none_or(|b| !b.is_ascii_digit());
        if digits && bounded && after {
            let y: u32 = std::str::from_utf8(w).ok()?.parse().ok()?;
            (1000..=2999).contains(&y).then_some(y)
        } else {
            None
        }
    })
}

/// `8-4-4-4-12` hex digits: anything else would only make a bad request.
fn is_uuid(value: &str) -> bool {
    let groups: Vec<&str> = value.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Country (2 letters), registrant (3 alphanumerics), year and designation (7 digits).
fn is_isrc(value: &str) -> bool {
    let b = value.as_bytes();
    b.len() == 12
        && b[..2].iter().all(u8::is_ascii_alphabetic)
        && b[2..5].iter().all(u8::is_ascii_alphanumeric)
        && b[5..].iter().all(u8::is_ascii_digit)
}

/// "3/12" -> 3.
fn parse_leading_number(value: &str) -> Option<u32> {
    let digits: String = value
        .trim()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok().filter(|&n| n > 0)
}

/// The ID3v1 genre list (0-79, the original set, plus Winamp's common extensions to 125).
const ID3V1_GENRES: &[&str] = &[
    "Blues",
    "Classic Rock",
    "Country",
    "Dance",
    "Disco",
    "Funk",
    "Grunge",
    "Hip-Hop",
    "Jazz",
    "Metal",
    "New Age",
    "Oldies",
    "Other",
    "Pop",
    "R&B",
    "Rap",
    "Reggae",
    "Rock",
    "Techno",
    "Industrial",
    "Alternative",
    "Ska",
    "Death Metal",
    "Pranks",
    "Soundtrack",
    "Euro-Techno",
    "Ambient",
    "Trip-Hop",
    "Vocal",
    "Jazz+Funk",
    "Fusion",
    "Trance",
    "Classical",
    "Instrumental",
    "Acid",
    "House",
    "Game",
    "Sound Clip",
    "Gospel",
    "Noise",
    "AlternRock",
    "Bass",
    "Soul",
    "Punk",
    "Space",
    "Meditative",
    "Instrumental Pop",
    "Instrumental Rock",
    "Ethnic",
    "Gothic",
    "Darkwave",
    "Techno-Industrial",
    "Electronic",
    "Pop-Folk",
    "Eurodance",
    "Dream",
    "Southern Rock",
    "Comedy",
    "Cult",
    "Gangsta",
    "Top 40",
    "Christian Rap",
    "Pop/Funk",
    "Jungle",
    "Native American",
    "Cabaret",
    "New Wave",
    "Psychedelic",
    "Rave",
    "Showtunes",
    "Trailer",
    "Lo-Fi",
    "Tribal",
    "Acid Punk",
    "Acid Jazz",
    "Polka",
    "Retro",
    "Musical",
    "Rock & Roll",
    "Hard Rock",
    "Folk",
    "Folk-Rock",
    "National Folk",
    "Swing",
    "Fast Fusion",
    "Bebop",
    "Latin",
    "Revival",
    "Celtic",
    "Bluegrass",
    "Avantgarde",
    "Gothic Rock",
    "Progressive Rock",
    "Psychedelic Rock",
    "Symphonic Rock",
    "Slow Rock",
    "Big Band",
    "Chorus",
    "Easy Listening",
    "Acoustic",
    "Humour",
    "Speech",
    "Chanson",
    "Opera",
    "Chamber Music",
    "Sonata",
    "Symphony",
    "Booty Bass",
    "Primus",
    "Porn Groove",
    "Satire",
    "Slow Jam",
    "Club",
    "Tango",
    "Samba",
    "Folklore",
    "Ballad",
    "Power Ballad",
    "Rhythmic Soul",
    "Freestyle",
    "Duet",
    "Punk Rock",
    "Drum Solo",
    "A capella",
    "Euro-House",
    "Dance Hall",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn years_and_numbers() {
        assert_eq!(parse_year("2004-05-01"), Some(2004));
        assert_eq!(parse_year("c. 1998"), Some(1998));
        assert_eq!(parse_year("12345"), None);
        assert_eq!(parse_leading_number("3/12"), Some(3));
        assert_eq!(parse_leading_number("x"), None);
    }

    #[test]
    fn identifiers_are_checked_before_they_are_kept() {
        assert!(is_uuid("b1a9c0e9-d987-4042-ae91-78d6a3267d69"));
        assert!(!is_uuid("b1a9c0e9-d987-4042-ae91-78d6a3267d6"));
        assert!(!is_uuid("not-a-uuid"));
        assert!(is_isrc("USRC17607839"));
        assert!(!is_isrc("USRC1760783"));
        assert!(!is_isrc("12RC17607839"));
    }

    #[test]
    fn id3v2_numeric_genres() {
        assert_eq!(clean_genre("(17)"), "Rock");
        assert_eq!(clean_genre("(17)Rock & Roll"), "Rock & Roll");
        assert_eq!(clean_genre("Jazz"), "Jazz");
    }

    #[test]
    fn disc_numbers_from_any_container() {
        use symphonia::core::meta::{MetadataBuilder, Tag, Value as TagValue};
        let mut b = MetadataBuilder::new();
        // ID3 TPOS as text ("2/3"), then an MP4 disk atom as a number: the first one wins.
        b.add_tag(Tag::new(
            Some(StandardTagKey::DiscNumber),
            "TPOS",
            TagValue::from("2/3"),
        ));
        b.add_tag(Tag::new(
            Some(StandardTagKey::DiscNumber),
            "",
            TagValue::from(5u8),
        ));
        let mut t = Tags::default();
        t.merge_revision(&b.metadata());
        assert_eq!(t.disc_number, Some(2));
        let mut b = MetadataBuilder::new();
        b.add_tag(Tag::new(
            Some(StandardTagKey::DiscNumber),
            "DISCNUMBER",
            TagValue::from("0"),
        ));
        b.add_tag(Tag::new(
            Some(StandardTagKey::TrackNumber),
            "TRACKNUMBER",
            TagValue::from("7"),
        ));
        let mut t = Tags::default();
        t.merge_revision(&b.metadata());
        assert_eq!((t.disc_number, t.track_number), (None, Some(7)));
    }

    #[test]
    fn id3v1_block() {
        let mut b = [0u8; 128];
        b[..3].copy_from_slice(b"TAG");
        b[3..8].copy_from_slice(b"Title");
        b[33..39].copy_from_slice(b"Artist");
        b[93..97].copy_from_slice(b"1999");
        b[126] = 7;
        b[127] = 8;
        let mut t = Tags::default();
        t.merge_id3v1(&b);
        assert_eq!(t.title.as_deref(), Some("Title"));
        assert_eq!(t.artist.as_deref(), Some("Artist"));
        assert_eq!(t.year, Some(1999));
        assert_eq!(t.track_number, Some(7));
        assert_eq!(t.genre.as_deref(), Some("Jazz"));
        assert_eq!(t.album, None);
    }
}
