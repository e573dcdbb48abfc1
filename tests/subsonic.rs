//! The Subsonic API end to end: the server in-process on loopback ([`support::serve`]), over a
//! real database
//! analysed from a generated library whose WAV files carry RIFF INFO tags (two tagged albums,
//! one untagged folder, an `.lrc` file beside one song), plus, when the audio corpus is
//! there, its MP3 with embedded cover art.
//!
//! The `py-sonic` client library (`libsonic`) talks to it as an app would: ping, playlists,
//! a stream compared byte for byte with the file, similar songs, search and an album. Without
//! py-sonic (or the corpus) those parts skip with a printed reason, except under `CI=true`,
//! where they fail. The rest checks the protocol from Rust with the tests' HTTP/1.1 client:
//! XML against JSON, token and password auth, the errors 10, 40, 50 and 70, Range, form
//! posts, CORS as web clients preflight it, the extensions (sonicSimilarity's published
//! shape, songLyrics), the spec fields present when unknown, the artist/album/genre/scan
//! screens, the empty-by-design lists, and that malformed requests get answers, not a dead
//! server.
//! The fixture is built once per run; each test has a server of its own.

mod support;

use std::collections::HashMap;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::LazyLock;

use md5::{Digest, Md5};
use serde_json::Value;
use support::music::{corpus, run_ok};
use support::{Client, can_run};
const USER: &str = "anna";
const PASSWORD: &str = "s3cret & sesam";

/// The server in-process on a config file, stopped when dropped, with the Subsonic calls.
struct Server(support::Service);

impl Deref for Server {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.0
    }
}

impl Server {
    fn start(config: &Path) -> Server {
        Server(support::serve(&support::config_file(config)))
    }

    /// A call with the password in hex (`enc:`) and JSON answers; returns the response body.
    fn json(&self, method: &str, query: &str) -> Value {
        let r = self.get(&format!("/rest/{method}?{}&f=json&{query}", auth_hex()));
        assert_eq!(r.status, 200, "{method}: {}", r.text());
        r.json()["subsonic-response"].clone()
    }

    fn ok(&self, method: &str, query: &str) -> Value {
        let v = self.json(method, query);
        assert_eq!(v["status"], "ok", "{method}?{query}: {v}");
        v
    }

    fn error_code(&self, method: &str, query: &str) -> i64 {
        let v = self.json(method, query);
        assert_eq!(v["status"], "failed", "{method}?{query}: {v}");
        v["error"]["code"].as_i64().unwrap()
    }

    /// The same call answered in XML (the default format): the body, checked to be ok.
    fn xml(&self, method: &str, query: &str) -> String {
        let r = self.get(&format!("/rest/{method}?{}&{query}", auth_hex()));
        assert_eq!(r.status, 200);
        let text = r.text();
        assert!(text.contains(r#"status="ok""#), "{method}?{query}: {text}");
        text
    }
}

fn auth_hex() -> String {
    let hex: String = PASSWORD.bytes().map(|b| format!("{b:02x}")).collect();
    format!("u={USER}&p=enc:{hex}")
}

fn token(password: &str, salt: &str) -> String {
    let mut md5 = Md5::new();
    md5.update(password.as_bytes());
    md5.update(salt.as_bytes());
    md5.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Every `id` attribute of the `<NAME ` elements in an XML text.
fn xml_ids(xml: &str, element: &str) -> Vec<String> {
    xml.split(&format!("<{element} "))
        .skip(1)
        .filter_map(|e| {
            let e = &e[..e.find('>').unwrap_or(e.len())];
            let at = if e.starts_with("id=\"") {
                4
            } else {
                e.find(" id=\"")? + 5
            };
            Some(e[at..].split('"').next()?.to_string())
        })
        .collect()
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|x| x["id"].as_str().unwrap().to_string())
        .collect()
}

/// The fixture: library, database, playlists, two config files (with and without an
/// account).
struct Fixture {
    config: PathBuf,
    bare: PathBuf,
    files: HashMap<String, PathBuf>,
}

/// The fixture, built once per run under `CARGO_TARGET_TMPDIR` (only read by the tests).
fn fixture() -> &'static Fixture {
    static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("subsonic-fixture");
        let _ = std::fs::remove_dir_all(&dir);
        let corpus = corpus();
        let music = dir.join("music");
        let files = support::music::library(&music, corpus.as_deref());
        let common = format!(
            "library = {:?}\ncache_dir = {:?}\noutput_dir = {:?}\nworkers = 1\n",
            music,
            dir.join("state"),
            dir.join("playlists")
        );
        let config = dir.join("config.toml");
        std::fs::write(
            &config,
            format!("{common}\n[subsonic]\nuser = \"{USER}\"\npassword = \"{PASSWORD}\"\n"),
        )
        .unwrap();
        let bare = dir.join("bare.toml");
        std::fs::write(&bare, &common).unwrap();
        run_ok(&["-a"], &config);
        run_ok(
            &["-g", "--min_playlist_size", "1", "--mixed_below", "2"],
            &config,
        );
        Fixture {
            config,
            bare,
            files,
        }
    });
    &FIXTURE
}

/// A server with the account, and the id of every song by file name, found through
/// search3's "everything" query.
fn start() -> (Server, impl Fn(&str) -> String) {
    let server = Server::start(&fixture().config);
    let all = server.ok(
        "search3",
        "query=%22%22&songCount=500&artistCount=500&albumCount=500",
    );
    let songs = all["searchResult3"]["song"].as_array().unwrap().clone();
    assert_eq!(songs.len(), fixture().files.len(), "{all}");
    let id_of: HashMap<String, String> = songs
        .iter()
        .map(|s| {
            let path = s["path"].as_str().unwrap();
            assert!(!path.starts_with('/'), "an absolute path leaked: {path}");
            let name = path.rsplit('/').next().unwrap().to_string();
            (name, s["id"].as_str().unwrap().to_string())
        })
        .collect();
    (server, move |name: &str| id_of[name].clone())
}

#[test]
fn search_finds_every_song_by_its_relative_path() {
    let _ = start();
}

#[test]
fn browsing_follows_the_tags() {
    let (server, song_id) = start();
    check_browsing(&server, &song_id);
}

#[test]
fn xml_json_form_posts_and_auth() {
    let (server, song_id) = start();
    check_formats_and_auth(&server, &song_id);
}

#[test]
fn bad_requests_get_error_answers_and_the_server_lives() {
    let server = Server::start(&fixture().config);
    check_errors(&server);
    server.ok("ping", "");
}

#[test]
fn streams_downloads_and_cover_art() {
    let (server, song_id) = start();
    check_files(&server, &fixture().files, &song_id);
}

#[test]
fn similar_songs_and_sonic_paths() {
    let (server, song_id) = start();
    check_similarity(&server, &song_id);
}

#[test]
fn py_sonic_talks_to_it_as_an_app_would() {
    let server = Server::start(&fixture().config);
    check_py_sonic(&server, &fixture().files);
}

#[test]
fn without_an_account_every_call_is_refused() {
    // No account configured: every call, even ping with the right password, is error 40.
    let locked = Server::start(&fixture().bare);
    assert_eq!(locked.error_code("ping", ""), 40);
    assert_eq!(locked.error_code("getPlaylists", ""), 40);
    // A server with the account, on the same database, still answers.
    let server = Server::start(&fixture().config);
    server.ok("ping", "");
}

#[test]
fn password_guessing_is_slowed_per_address_and_the_owner_elsewhere_is_not() {
    use std::time::{Duration, Instant};
    let server = Server::start(&fixture().config);
    let guesser = server.from("127.0.0.2");
    let owner = server.from("127.0.0.3");
    let guess = |i: usize| {
        let r = guesser.get(&format!("/rest/ping?u={USER}&p=guess{i}&f=json"));
        assert_eq!(r.status, 200);
        r.json()["subsonic-response"]["error"]["code"].as_i64()
    };
    // 5 free guesses, then 50, 100, 200 ms and 250 ms for each further one.
    let started = Instant::now();
    for i in 0..20 {
        assert_eq!(guess(i), Some(40));
    }
    let guessing = started.elapsed();
    assert!(
        guessing >= Duration::from_secs(3),
        "20 guesses took {guessing:?}"
    );
    // While the guesser waits its turns, the owner on another device logs in at once.
    let guessing_on = std::thread::scope(|scope| {
        let more = scope.spawn(|| (20..30).map(guess).collect::<Vec<_>>());
        std::thread::sleep(Duration::from_millis(300));
        let asked = Instant::now();
        let r = owner.get(&format!("/rest/ping?{}&f=json", auth_hex()));
        let took = asked.elapsed();
        assert_eq!(r.json()["subsonic-response"]["status"], "ok");
        assert!(
            took < Duration::from_millis(500),
            "the owner waited {took:?}"
        );
        more.join().unwrap()
    });
    assert!(guessing_on.iter().all(|c| *c == Some(40)));
    let metrics = server.get("/metrics").text();
    let failures: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("playlista_login_failures_total "))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no failure counter in /metrics"));
    assert!(failures >= 30, "{failures} failures counted");
    // The right password from the guessing address still waits its turn, then clears it.
    let asked = Instant::now();
    let r = guesser.get(&format!("/rest/ping?{}&f=json", auth_hex()));
    assert_eq!(r.json()["subsonic-response"]["status"], "ok");
    assert!(
        asked.elapsed() >= Duration::from_millis(200),
        "{:?}",
        asked.elapsed()
    );
    let asked = Instant::now();
    assert_eq!(guess(99), Some(40));
    assert!(
        asked.elapsed() < Duration::from_millis(200),
        "{:?}",
        asked.elapsed()
    );
}

#[test]
fn web_clients_pass_cors_and_read_the_extensions_first() {
    let server = Server::start(&fixture().config);
    // The preflight Feishin's Electron window sends before a call with its own headers.
    let pre = server.request(
        "OPTIONS",
        "/rest/ping.view?u=anna&f=json",
        &[
            ("Origin", "http://localhost:4343"),
            ("Access-Control-Request-Method", "GET"),
            (
                "Access-Control-Request-Headers",
                "content-type, x-requested-with",
            ),
        ],
        b"",
    );
    assert_eq!(pre.status, 204, "{}", pre.text());
    assert_eq!(pre.header("access-control-allow-origin"), Some("*"));
    let methods = pre.header("access-control-allow-methods").unwrap();
    assert!(methods.contains("GET") && methods.contains("POST") && methods.contains("OPTIONS"));
    assert_eq!(
        pre.header("access-control-allow-headers"),
        Some("content-type, x-requested-with")
    );
    assert!(pre.header("access-control-max-age").is_some());
    assert!(pre.body.is_empty());
    // Without Access-Control-Request-Headers: a sane list.
    let bare = server.request("OPTIONS", "/rest/getAlbumList2", &[("Origin", "null")], b"");
    assert_eq!(bare.status, 204);
    assert!(
        bare.header("access-control-allow-headers")
            .unwrap()
            .contains("Content-Type")
    );

    // Every answer may be read from any origin: ok, failed, and files.
    let ok = server.get(&format!("/rest/ping?{}&f=json", auth_hex()));
    assert_eq!(ok.header("access-control-allow-origin"), Some("*"));
    let failed = server.get("/rest/ping?u=anna&p=wrong");
    assert!(failed.text().contains(r#"code="40""#));
    assert_eq!(failed.header("access-control-allow-origin"), Some("*"));

    // getOpenSubsonicExtensions needs no credentials, in JSON and XML; the others still do.
    let r = server.get("/rest/getOpenSubsonicExtensions?f=json");
    let v = r.json()["subsonic-response"].clone();
    assert_eq!(v["status"], "ok", "{v}");
    let names: Vec<&str> = v["openSubsonicExtensions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["formPost", "sonicSimilarity", "songLyrics"]);
    assert_eq!(
        v["openSubsonicExtensions"][2]["versions"],
        serde_json::json!([1])
    );
    let xml = server.get("/rest/getOpenSubsonicExtensions.view").text();
    assert!(
        xml.contains(r#"<openSubsonicExtensions name="songLyrics"><versions>1</versions>"#),
        "{xml}"
    );
    let r = server.get("/rest/getGenres?f=json");
    assert_eq!(r.json()["subsonic-response"]["error"]["code"], 10);
}

#[test]
fn every_spec_field_is_there_even_when_unknown() {
    let (server, song_id) = start();
    let tagged = server.ok("getSong", &format!("id={}", song_id("ada_4.wav")))["song"].clone();
    let loose = server.ok("getSong", &format!("id={}", song_id("loose_1.wav")))["song"].clone();
    for song in [&tagged, &loose] {
        for field in [
            "size",
            "bpm",
            "duration",
            "bitRate",
            "bitDepth",
            "samplingRate",
            "channelCount",
            "year",
            "genre",
            "track",
            "discNumber",
            "created",
            "comment",
            "sortName",
            "musicBrainzId",
            "displayArtist",
            "displayAlbumArtist",
            "displayComposer",
            "explicitStatus",
            "mediaType",
        ] {
            assert!(!song[field].is_null(), "{field} missing: {song}");
        }
        for list in [
            "genres",
            "artists",
            "albumArtists",
            "moods",
            "isrc",
            "contributors",
        ] {
            assert!(song[list].is_array(), "{list} not a list: {song}");
        }
        assert!(song["replayGain"].is_object(), "{song}");
        assert!(song["size"].as_u64().unwrap() > 1000);
        assert!(song["bitRate"].as_u64().unwrap() > 0);
        assert!(song["bpm"].as_u64().unwrap() > 0);
        assert_eq!(song["discNumber"], 0, "WAV INFO has no disc tag");
        assert_eq!(song["albumArtists"][0]["id"], song["artistId"]);
    }
    assert_eq!(
        tagged["genres"],
        serde_json::json!([{"name": "Electronic"}])
    );
    assert_eq!(tagged["artists"][0]["name"], "Ada Example");
    assert_eq!(tagged["track"], 1);
    assert_eq!(loose["year"], 0);
    assert_eq!(loose["genre"], "");
    assert_eq!(loose["track"], 0);
    assert_eq!(loose["genres"], serde_json::json!([]));
    // The gain from the measured loudness (ReplayGain 2's -18 LUFS reference).
    assert!(tagged["replayGain"]["trackGain"].is_number(), "{tagged}");

    // XML: the same fields as attributes, the lists as elements.
    let xml = server.xml("getSong", &format!("id={}", song_id("loose_1.wav")));
    for attr in [
        r#" year="0""#,
        r#" genre="""#,
        r#" track="0""#,
        r#" discNumber="0""#,
        r#" size=""#,
    ] {
        assert!(xml.contains(attr), "{attr}: {xml}");
    }
    assert!(
        xml.contains("<albumArtists id=\"ar-") && xml.contains("<replayGain"),
        "{xml}"
    );

    let album_id = tagged["albumId"].as_str().unwrap();
    let album = server.ok("getAlbum", &format!("id={album_id}"))["album"].clone();
    for field in [
        "year",
        "genre",
        "created",
        "musicBrainzId",
        "displayArtist",
        "sortName",
        "isCompilation",
        "explicitStatus",
        "version",
    ] {
        assert!(!album[field].is_null(), "{field} missing: {album}");
    }
    for list in [
        "genres",
        "artists",
        "releaseTypes",
        "moods",
        "recordLabels",
        "discTitles",
    ] {
        assert!(album[list].is_array(), "{list} not a list: {album}");
    }
    assert_eq!(album["originalReleaseDate"]["year"], 2021);
    assert_eq!(album["artists"][0]["name"], "Ada Example");
    let artist = server.ok(
        "getArtist",
        &format!("id={}", album["artistId"].as_str().unwrap()),
    );
    assert_eq!(
        artist["artist"]["roles"],
        serde_json::json!(["albumartist"])
    );
    assert_eq!(artist["artist"]["musicBrainzId"], "");
}

#[test]
fn artist_album_genre_and_scan_screens() {
    let (server, song_id) = start();
    let song = server.ok("getSong", &format!("id={}", song_id("ada_4.wav")))["song"].clone();
    let ada = song["artistId"].as_str().unwrap();
    let examples =
        server.ok("getSong", &format!("id={}", song_id("examples_1.wav")))["song"]["artistId"]
            .as_str()
            .unwrap()
            .to_string();

    // Similar artists from the sound: the other tagged artist, never itself, never the
    // unknown; by artist, album or song id; count honoured.
    for (method, element) in [
        ("getArtistInfo2", "artistInfo2"),
        ("getArtistInfo", "artistInfo"),
    ] {
        for id in [
            ada,
            song["albumId"].as_str().unwrap(),
            song["id"].as_str().unwrap(),
        ] {
            let info = server.ok(method, &format!("id={id}"))[element].clone();
            assert_eq!(info["biography"], "", "{info}");
            // (With the corpus, its MP3's artist is a third one.)
            let similar = ids(&info["similarArtist"]);
            assert!(
                similar.contains(&examples) && !similar.contains(&ada.to_string()),
                "{method}?id={id}: {info}"
            );
            assert!(similar.len() <= 2, "{info}");
        }
    }
    let none = server.ok("getArtistInfo2", &format!("id={ada}&count=0"));
    assert_eq!(none["artistInfo2"]["similarArtist"], serde_json::json!([]));
    let xml = server.xml(
        "getArtistInfo2",
        &format!("id={ada}&includeNotPresent=true"),
    );
    assert!(xml_ids(&xml, "similarArtist").contains(&examples), "{xml}");
    assert!(xml.contains("<biography></biography>"), "{xml}");

    let info = server.ok(
        "getAlbumInfo2",
        &format!("id={}", song["albumId"].as_str().unwrap()),
    );
    assert_eq!(info["albumInfo"]["notes"], "");
    assert!(
        info["albumInfo"]["musicBrainzId"].is_null(),
        "not known: left out"
    );
    server.ok(
        "getAlbumInfo",
        &format!("id={}", song["id"].as_str().unwrap()),
    );
    server.xml(
        "getAlbumInfo2",
        &format!("id={}", song["albumId"].as_str().unwrap()),
    );

    let page = |query: &str| ids(&server.ok("getSongsByGenre", query)["songsByGenre"]["song"]);
    let all = page("genre=Electronic&count=50");
    assert_eq!(all.len(), 8);
    assert_eq!(page("genre=Electronic&count=3"), all[..3]);
    assert_eq!(page("genre=Electronic&count=3&offset=6"), all[6..]);
    assert!(page("genre=Polka").is_empty());
    let xml = server.xml("getSongsByGenre", "genre=Electronic&count=2");
    assert_eq!(xml_ids(&xml, "song"), all[..2]);

    // The scan is the background analysis: none in an in-process server.
    let status = server.ok("getScanStatus", "")["scanStatus"].clone();
    assert_eq!(status["scanning"], false);
    assert_eq!(status["count"].as_u64(), Some(fixture().files.len() as u64));
    assert!(
        status["lastScan"].as_str().unwrap().ends_with('Z'),
        "{status}"
    );
    assert!(
        server
            .xml("getScanStatus", "")
            .contains(r#"<scanStatus scanning="false""#)
    );
    assert_eq!(server.error_code("startScan", ""), 0);

    for (method, query) in [
        ("getArtistInfo2", ""),
        ("getArtistInfo", ""),
        ("getAlbumInfo2", ""),
        ("getSongsByGenre", ""),
        ("getLyricsBySongId", ""),
    ] {
        assert_eq!(server.error_code(method, query), 10, "{method}?{query}");
    }
    for (method, query) in [
        ("getArtistInfo2", "id=ar-0000000000000000"),
        ("getArtistInfo", "id=987654"),
        ("getAlbumInfo2", "id=al-0000000000000000"),
        ("getAlbumInfo", "id=ar-zz"),
        ("getLyricsBySongId", "id=987654"),
    ] {
        assert_eq!(server.error_code(method, query), 70, "{method}?{query}");
    }
    assert_eq!(
        server.error_code("getSongsByGenre", "genre=Electronic&count=x"),
        0
    );
}

#[test]
fn lyrics_from_lrc_files_synced_and_as_text() {
    let (server, song_id) = start();
    let id = song_id("examples_4.wav");
    let list = server.ok("getLyricsBySongId", &format!("id={id}"))["lyricsList"].clone();
    let sets = list["structuredLyrics"].as_array().unwrap();
    assert_eq!(sets.len(), 1, "{list}");
    let l = &sets[0];
    assert_eq!(l["synced"], true);
    assert_eq!(l["lang"], "und");
    assert_eq!(l["offset"], 250);
    assert_eq!(l["displayTitle"], "Second Wind 1");
    assert_eq!(l["displayArtist"], "The Examples");
    assert_eq!(
        l["line"],
        serde_json::json!([
            {"start": 250, "value": "First line"},
            {"start": 1500, "value": "Second line"}
        ])
    );
    let xml = server.xml("getLyricsBySongId", &format!("id={id}"));
    assert!(
        xml.contains(r#"<line start="250">First line</line><line start="1500">Second line</line>"#),
        "{xml}"
    );
    // A song without lyrics: a valid empty list.
    let none = server.ok("getLyricsBySongId", &format!("id={}", song_id("ada_1.wav")));
    assert_eq!(
        none["lyricsList"]["structuredLyrics"],
        serde_json::json!([])
    );

    let text = server.ok("getLyrics", "artist=the+examples&title=SECOND+WIND+1")["lyrics"].clone();
    assert_eq!(text["value"], "First line\nSecond line");
    assert_eq!(text["artist"], "The Examples");
    assert_eq!(text["title"], "Second Wind 1");
    let xml = server.xml("getLyrics", "title=Second+Wind+1");
    assert!(xml.contains("First line&#10;Second line</lyrics>"), "{xml}");
    let missing = server.ok("getLyrics", "artist=Nobody&title=Nothing")["lyrics"].clone();
    assert_eq!(missing["value"], "");
    assert_eq!(server.ok("getLyrics", "")["lyrics"]["value"], "");
}

#[test]
fn empty_by_design_and_not_authorised() {
    let server = Server::start(&fixture().config);
    for (method, element, list) in [
        ("getPodcasts", "podcasts", "channel"),
        ("getNewestPodcasts", "newestPodcasts", "episode"),
        (
            "getInternetRadioStations",
            "internetRadioStations",
            "internetRadioStation",
        ),
        ("getShares", "shares", "share"),
        ("getChatMessages", "chatMessages", "chatMessage"),
        ("getVideos", "videos", "video"),
    ] {
        let v = server.ok(method, "");
        assert_eq!(v[element][list], serde_json::json!([]), "{method}: {v}");
        let xml = server.xml(method, "");
        assert!(
            xml.contains(&format!("<{element}></{element}>")),
            "{method}: {xml}"
        );
    }
    assert_eq!(server.error_code("getPodcasts", "id=7"), 70);
    assert_eq!(server.error_code("getPodcastEpisode", "id=7"), 70);
    assert_eq!(server.error_code("getPodcastEpisode", ""), 10);
    for (method, query) in [
        ("createShare", "id=1"),
        ("updateShare", "id=1"),
        ("deleteShare", "id=1"),
        (
            "createPodcastChannel",
            "url=http%3A%2F%2Fexample.org%2Ffeed",
        ),
        ("deletePodcastChannel", "id=1"),
        ("deletePodcastEpisode", "id=1"),
        ("downloadPodcastEpisode", "id=1"),
        ("refreshPodcasts", ""),
        ("createInternetRadioStation", "streamUrl=x&name=y"),
        ("updateInternetRadioStation", "id=1"),
        ("deleteInternetRadioStation", "id=1"),
        ("getUsers", ""),
        ("createUser", "username=bob&password=x&email=b%40x"),
        ("updateUser", "username=anna"),
        ("deleteUser", "username=anna"),
        ("changePassword", "username=anna&password=new"),
        ("jukeboxControl", "action=status"),
        ("addChatMessage", "message=hi"),
    ] {
        assert_eq!(server.error_code(method, query), 50, "{method}?{query}");
    }
    let xml = server
        .get(&format!("/rest/createShare.view?{}&id=1", auth_hex()))
        .text();
    assert!(xml.contains(r#"<error code="50""#), "{xml}");
    assert_eq!(server.error_code("noSuchMethod", ""), 0);
}

fn check_browsing(server: &Server, song_id: &dyn Fn(&str) -> String) {
    let artists = server.ok("getArtists", "");
    let index = artists["artists"]["index"].as_array().unwrap();
    let by_letter: HashMap<&str, Vec<&str>> = index
        .iter()
        .map(|i| {
            (
                i["name"].as_str().unwrap(),
                i["artist"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| a["name"].as_str().unwrap())
                    .collect(),
            )
        })
        .collect();
    assert_eq!(by_letter["A"], ["Ada Example"], "{artists}");
    assert_eq!(
        by_letter["E"],
        ["The Examples"],
        "articles are ignored: {artists}"
    );
    assert!(by_letter["U"].contains(&"Unknown Artist"), "{artists}");

    let found = server.ok("search3", "query=first+LIGHT");
    let albums = &found["searchResult3"]["album"];
    assert_eq!(albums.as_array().unwrap().len(), 1, "{found}");
    assert_eq!(albums[0]["name"], "First Light");
    assert_eq!(albums[0]["songCount"], 4);
    let album = server.ok(
        "getAlbum",
        &format!("id={}", albums[0]["id"].as_str().unwrap()),
    );
    let titles: Vec<&str> = album["album"]["song"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["title"].as_str().unwrap())
        .collect();
    assert_eq!(
        titles,
        [
            "First Light 1",
            "First Light 2",
            "First Light 3",
            "First Light 4"
        ],
        "track-number order, not file order"
    );
    let first = &album["album"]["song"][0];
    assert_eq!(first["id"].as_str().unwrap(), song_id("ada_4.wav"));
    assert_eq!(first["artist"], "Ada Example");
    assert_eq!(first["track"], 1);
    assert_eq!(first["year"], 2021);
    assert_eq!(first["suffix"], "wav");
    assert_eq!(first["contentType"], "audio/wav");
    assert_eq!(first["duration"], 6);
    assert!(first["bpm"].as_i64().unwrap() > 0, "{first}");

    let artist_id = albums[0]["artistId"].as_str().unwrap();
    let artist = server.ok("getArtist", &format!("id={artist_id}"));
    assert_eq!(artist["artist"]["album"][0]["name"], "First Light");

    // The untagged folder is one album of the unknown artist, named after the folder.
    let loose = server.ok("getSong", &format!("id={}", song_id("loose_0.wav")));
    assert_eq!(loose["song"]["album"], "loose");
    assert_eq!(loose["song"]["artist"], "Unknown Artist");
    assert_eq!(loose["song"]["title"], "loose_0");

    for kind in [
        "newest",
        "alphabeticalByName",
        "random",
        "alphabeticalByArtist",
    ] {
        let list = server.ok("getAlbumList2", &format!("type={kind}&size=2"));
        assert_eq!(
            list["albumList2"]["album"].as_array().unwrap().len(),
            2,
            "{kind}: {list}"
        );
    }
    let by_name = server.ok("getAlbumList2", "type=alphabeticalByName&size=50");
    let names: Vec<&str> = by_name["albumList2"]["album"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    let mut sorted = names.clone();
    sorted.sort_by_key(|n| n.to_lowercase());
    assert_eq!(names, sorted);
    assert!(names.contains(&"Second Wind"));
    let years = server.ok("getAlbumList2", "type=byYear&fromYear=2020&toYear=2022");
    assert_eq!(years["albumList2"]["album"].as_array().unwrap().len(), 2);

    let random = server.ok("getRandomSongs", "size=3");
    assert_eq!(random["randomSongs"]["song"].as_array().unwrap().len(), 3);
    let genre = server.ok("getRandomSongs", "size=50&genre=Electronic");
    assert_eq!(genre["randomSongs"]["song"].as_array().unwrap().len(), 8);

    let ext = server.ok("getOpenSubsonicExtensions", "");
    let names: Vec<&str> = ext["openSubsonicExtensions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"sonicSimilarity") && names.contains(&"formPost"));
    server.ok("getLicense", "");
    server.ok("getIndexes", "");
    assert_eq!(
        server.ok("getMusicFolders", "")["musicFolders"]["musicFolder"][0]["id"],
        1
    );
}

fn check_formats_and_auth(server: &Server, song_id: &dyn Fn(&str) -> String) {
    let lists = server.ok("getPlaylists", "");
    let playlists = lists["playlists"]["playlist"].as_array().unwrap();
    assert!(!playlists.is_empty(), "{lists}");
    let pid = playlists[0]["id"].as_str().unwrap().to_string();
    let json = server.ok("getPlaylist", &format!("id={pid}"));
    let json_ids = ids(&json["playlist"]["entry"]);
    assert_eq!(
        json_ids.len() as i64,
        json["playlist"]["songCount"].as_i64().unwrap()
    );

    // XML by default, the same content; salted token auth; the `.view` suffix.
    let salt = "x7Yq2";
    let t = token(PASSWORD, salt);
    let xml = server.get(&format!(
        "/rest/getPlaylist.view?u={USER}&t={t}&s={salt}&id={pid}"
    ));
    assert_eq!(xml.status, 200);
    assert!(xml.header("content-type").unwrap().starts_with("text/xml"));
    let text = xml.text();
    assert!(text.starts_with("<?xml"), "{text}");
    assert!(text.contains(r#"xmlns="http://subsonic.org/restapi""#));
    assert!(text.contains(r#"status="ok""#) && text.contains(r#"version="1.16.1""#));
    assert!(text.contains(r#"openSubsonic="true""#) && text.contains(r#"type="playlista""#));
    assert_eq!(xml_ids(&text, "entry"), json_ids);
    assert_eq!(xml_ids(&text, "playlist"), vec![pid.clone()]);

    // Same through a form POST (the formPost extension), plain password.
    let body = format!(
        "u={USER}&p={}&f=json&id={pid}",
        PASSWORD.replace(' ', "+").replace('&', "%26")
    );
    let posted = server.request(
        "POST",
        "/rest/getPlaylist",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        body.as_bytes(),
    );
    let posted: Value = serde_json::from_slice(&posted.body).unwrap();
    assert_eq!(
        ids(&posted["subsonic-response"]["playlist"]["entry"]),
        json_ids
    );

    // Wrong password, wrong token, wrong user: 40, in XML and JSON.
    let wrong = [
        format!("u={USER}&p=nope"),
        format!("u={USER}&t={}&s={salt}", token("nope", salt)),
        format!("u={USER}&t={t}&s=other"),
        format!("u=bob&t={t}&s={salt}"),
    ];
    for auth in &wrong {
        let r = server.get(&format!("/rest/ping?{auth}&f=json"));
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(v["subsonic-response"]["status"], "failed", "{auth}");
        assert_eq!(v["subsonic-response"]["error"]["code"], 40, "{auth}");
        let x = server
            .get(&format!("/rest/getSong?{auth}&id={}", song_id("ada_1.wav")))
            .text();
        assert!(x.contains(r#"<error code="40""#), "{x}");
    }
    // No credentials at all: a missing parameter.
    let r = server.get("/rest/ping?f=json");
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["subsonic-response"]["error"]["code"], 10, "{v}");
}

fn check_errors(server: &Server) {
    for (method, query) in [
        ("getAlbum", ""),
        ("getSong", ""),
        ("getPlaylist", ""),
        ("stream", ""),
        ("getCoverArt", ""),
        ("getSimilarSongs2", ""),
        ("findSonicPath", "startSongId=1"),
        ("getAlbumList2", ""),
        ("search3", ""),
    ] {
        assert_eq!(server.error_code(method, query), 10, "{method}?{query}");
    }
    for (method, query) in [
        ("getSong", "id=987654"),
        ("getSong", "id=al-0000000000000000"),
        ("getAlbum", "id=al-0000000000000000"),
        ("getAlbum", "id=42"),
        ("getArtist", "id=ar-zz"),
        ("getPlaylist", "id=987654"),
        ("getPlaylist", "id=abc"),
        ("stream", "id=987654"),
        ("download", "id=-1"),
        ("getCoverArt", "id=987654"),
        ("getSimilarSongs2", "id=987654"),
        ("getSonicSimilarTracks", "id=%FF%FE"),
    ] {
        assert_eq!(server.error_code(method, query), 70, "{method}?{query}");
    }
    // Malformed numbers, unknown methods and odd bytes get error answers, and the server lives.
    for (method, query) in [
        ("getAlbumList2", "type=newest&size=many"),
        ("getAlbumList2", "type=sideways"),
        ("getRandomSongs", "size=-3"),
        ("search3", "query=x&songCount=99999999999999999999999"),
        ("noSuchMethod", ""),
    ] {
        assert_eq!(server.error_code(method, query), 0, "{method}?{query}");
    }
    let odd = server.get(&format!(
        "/rest/search3?{}&f=json&query=%00%FF%3C%26",
        auth_hex()
    ));
    assert_eq!(odd.status, 200);
    let xml = server.get(&format!("/rest/search3?{}&query=%3C%22%26", auth_hex()));
    assert!(xml.text().contains(r#"status="ok""#));
}

fn check_files(
    server: &Server,
    files: &HashMap<String, PathBuf>,
    song_id: &dyn Fn(&str) -> String,
) {
    let name = "ada_2.wav";
    let original = std::fs::read(&files[name]).unwrap();
    let id = song_id(name);
    let whole = server.get(&format!("/rest/stream.view?{}&id={id}", auth_hex()));
    assert_eq!(whole.status, 200);
    assert_eq!(whole.header("content-type"), Some("audio/wav"));
    assert_eq!(whole.body, original);

    let part = server.get_with(
        &format!("/rest/stream?{}&id={id}", auth_hex()),
        &[("Range", "bytes=100-1123")],
    );
    assert_eq!(part.status, 206);
    assert_eq!(
        part.header("content-range").unwrap(),
        format!("bytes 100-1123/{}", original.len())
    );
    assert_eq!(part.body, original[100..1124]);

    let download = server.get(&format!("/rest/download?{}&id={id}", auth_hex()));
    assert_eq!(download.status, 200);
    assert!(
        download
            .header("content-disposition")
            .unwrap()
            .contains(name)
    );
    assert_eq!(download.body, original);

    let size = server.ok("getSong", &format!("id={id}"))["song"]["size"].clone();
    assert_eq!(size.as_u64(), Some(original.len() as u64));

    // A file without a picture: 70. The corpus MP3 with a 2.4 MB PNG: that picture.
    assert_eq!(server.error_code("getCoverArt", &format!("id={id}")), 70);
    let album_of = server.ok("getSong", &format!("id={id}"))["song"]["albumId"].clone();
    assert_eq!(
        server.error_code("getCoverArt", &format!("id={}", album_of.as_str().unwrap())),
        70
    );
    let why = (!files.contains_key("big_cover_art.mp3")).then(|| {
        "corpus not found: set PLAYLISTA_CORPUS to a folder built by shared/corpus/make-corpus"
            .to_string()
    });
    if can_run("embedded cover art", why) {
        let art = server.get(&format!(
            "/rest/getCoverArt?{}&id={}",
            auth_hex(),
            song_id("big_cover_art.mp3")
        ));
        assert_eq!(art.status, 200);
        assert_eq!(art.header("content-type"), Some("image/png"));
        assert!(art.body.starts_with(b"\x89PNG"));
        assert!(art.body.len() > 1_000_000, "{}", art.body.len());
        // By album id too.
        let song = server.ok("getSong", &format!("id={}", song_id("big_cover_art.mp3")));
        let by_album = server.get(&format!(
            "/rest/getCoverArt?{}&id={}",
            auth_hex(),
            song["song"]["albumId"].as_str().unwrap()
        ));
        assert_eq!(by_album.body, art.body);
    }
}

fn check_similarity(server: &Server, song_id: &dyn Fn(&str) -> String) {
    let seed = song_id("examples_3.wav");
    let similar = server.ok("getSimilarSongs2", &format!("id={seed}&count=5"));
    let similar = ids(&similar["similarSongs2"]["song"]);
    assert_eq!(similar.len(), 5);
    assert!(!similar.contains(&seed));

    let sonic = server.ok("getSonicSimilarTracks", &format!("id={seed}&count=4"));
    let matches = sonic["sonicMatch"].as_array().unwrap();
    assert_eq!(matches.len(), 4, "{sonic}");
    let similarity: Vec<f64> = matches
        .iter()
        .map(|m| m["similarity"].as_f64().unwrap())
        .collect();
    assert!(
        similarity.windows(2).all(|w| w[0] >= w[1]),
        "{similarity:?}"
    );
    assert!(
        similarity.iter().all(|d| (0.0..1.0).contains(d)),
        "{similarity:?}"
    );
    assert!(
        matches
            .iter()
            .all(|m| m["entry"]["id"] != seed.as_str() && m["entry"]["title"].is_string())
    );
    // In XML: <sonicMatch similarity="…"><entry id="…" …/></sonicMatch>, the same songs.
    let xml = server.xml("getSonicSimilarTracks", &format!("id={seed}&count=4"));
    assert_eq!(xml.matches("<sonicMatch similarity=").count(), 4, "{xml}");
    let json_ids: Vec<String> = matches
        .iter()
        .map(|m| m["entry"]["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(xml_ids(&xml, "entry"), json_ids);

    let to = song_id("loose_3.wav");
    let path = server.ok(
        "findSonicPath",
        &format!("startSongId={seed}&endSongId={to}&count=5"),
    );
    let steps = path["sonicMatch"].as_array().unwrap();
    assert_eq!(steps.len(), 5, "{path}");
    assert_eq!(steps[0]["entry"]["id"], seed.as_str());
    assert_eq!(steps[0]["similarity"], 1.0, "the start song is itself");
    assert_eq!(steps[4]["entry"]["id"], to.as_str());
    assert!(steps[4]["similarity"].as_f64().unwrap() < 1.0);
}

const PY_SONIC: &str = r#"
import json, sys
import libsonic

port, user, password, out = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
conn = libsonic.Connection('http://127.0.0.1', user, password, port=port)
r = {'ping': conn.ping()}
lists = conn.getPlaylists()['playlists']['playlist']
r['playlists'] = [[p['id'], p['name'], p['songCount']] for p in lists]
entries = conn.getPlaylist(lists[0]['id'])['playlist']['entry']
r['entries'] = [e['id'] for e in entries]
first = entries[0]
with open(out, 'wb') as f:
    f.write(conn.stream(first['id']).read())
r['streamed'] = first['path']
r['similar'] = [s['id'] for s in conn.getSimilarSongs2(first['id'], count=4)['similarSongs2']['song']]
found = conn.search3('second wind')['searchResult3']
r['search_albums'] = [a['name'] for a in found.get('album', [])]
r['search_songs'] = sorted(s['title'] for s in found.get('song', []))
album = conn.getAlbum(found['album'][0]['id'])['album']
r['album'] = [album['name'], album['artist'], [s['title'] for s in album['song']]]
try:
    libsonic.Connection('http://127.0.0.1', user, 'wrong', port=port).getPlaylists()
    r['wrong_password'] = 'accepted'
except libsonic.errors.CredentialError:
    r['wrong_password'] = 'CredentialError'
try:
    conn.getSong('987654')
    r['unknown_song'] = 'found'
except libsonic.errors.DataNotFoundError:
    r['unknown_song'] = 'DataNotFoundError'
print(json.dumps(r))
"#;

fn check_py_sonic(server: &Server, files: &HashMap<String, PathBuf>) {
    let probe = Command::new("python3")
        .args(["-c", "import libsonic"])
        .output();
    let why = match probe {
        Err(e) => Some(format!("python3 not runnable: {e}")),
        Ok(o) if !o.status.success() => Some(format!(
            "py-sonic missing (pip install py-sonic): {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Ok(_) => None,
    };
    if !can_run("py-sonic client", why) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let script = dir.join("client.py");
    std::fs::write(&script, PY_SONIC).unwrap();
    let streamed = dir.join("streamed.bin");
    let out = Command::new("python3")
        .arg(&script)
        .arg(server.port().to_string())
        .args([USER, PASSWORD])
        .arg(&streamed)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "py-sonic script failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["ping"], true, "{r}");
    assert!(!r["playlists"].as_array().unwrap().is_empty(), "{r}");
    assert_eq!(
        r["entries"].as_array().unwrap().len() as i64,
        r["playlists"][0][2].as_i64().unwrap(),
        "{r}"
    );
    let name = r["streamed"].as_str().unwrap().rsplit('/').next().unwrap();
    assert_eq!(
        std::fs::read(&streamed).unwrap(),
        std::fs::read(&files[name]).unwrap(),
        "streamed bytes differ from {name}"
    );
    assert_eq!(r["similar"].as_array().unwrap().len(), 4, "{r}");
    assert_eq!(r["search_albums"], serde_json::json!(["Second Wind"]));
    assert_eq!(
        r["search_songs"],
        serde_json::json!([
            "Second Wind 1",
            "Second Wind 2",
            "Second Wind 3",
            "Second Wind 4"
        ])
    );
    assert_eq!(r["album"][0], "Second Wind");
    assert_eq!(r["album"][1], "The Examples");
    assert_eq!(r["album"][2].as_array().unwrap().len(), 4);
    assert_eq!(r["wrong_password"], "CredentialError");
    assert_eq!(r["unknown_song"], "DataNotFoundError");
}

/// A writable copy of the fixture's database and playlists, with a second account (`ben`)
/// and a read-only one (`guest`): listening tests change what they find.
fn writable_copy() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let from = fixture().config.parent().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    for f in std::fs::read_dir(from.join("state")).unwrap() {
        let f = f.unwrap();
        if f.file_type().unwrap().is_file() {
            std::fs::copy(f.path(), state.join(f.file_name())).unwrap();
        }
    }
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "library = {:?}\ncache_dir = {:?}\noutput_dir = {:?}\nworkers = 1\n\n[subsonic]\n\
             user = \"{USER}\"\npassword = \"{PASSWORD}\"\naccounts = [\n  \
             {{ user = \"ben\", password = \"b\" }},\n  \
             {{ user = \"guest\", password = \"g\", read_only = true }},\n]\n",
            from.join("music"),
            state,
            dir.path().join("playlists")
        ),
    )
    .unwrap();
    (dir, config)
}

impl Server {
    /// A call as `user` with a plain password; the response body.
    fn as_user(&self, user: &str, password: &str, method: &str, query: &str) -> Value {
        let r = self.get(&format!(
            "/rest/{method}?u={user}&p={password}&f=json&{query}"
        ));
        assert_eq!(r.status, 200, "{method}: {}", r.text());
        r.json()["subsonic-response"].clone()
    }
}

fn similar_ids(server: &Server, seed: &str, count: usize) -> Vec<String> {
    let v = server.ok("getSimilarSongs2", &format!("id={seed}&count={count}"));
    ids(&v["similarSongs2"]["song"])
}

#[test]
fn listening_is_kept_per_account_survives_restarts_and_teaches_the_radio() {
    let (dir, config) = writable_copy();
    let server = Server(support::serve(&support::config_file(&config)));
    let song_id = {
        let all = server.ok("search3", "query=&songCount=500");
        let songs = all["searchResult3"]["song"].as_array().unwrap().clone();
        move |name: &str| {
            songs
                .iter()
                .find(|s| s["path"].as_str().unwrap().ends_with(name))
                .map(|s| s["id"].as_str().unwrap().to_string())
                .unwrap()
        }
    };
    let first = song_id("ada_4.wav");

    // Stars are per account; the read-only account may not write.
    server.ok("star", &format!("id={first}"));
    let starred = server.ok("getStarred2", "");
    assert_eq!(ids(&starred["starred2"]["song"]), vec![first.clone()]);
    assert!(starred["starred2"]["song"][0]["starred"].is_string());
    let ben = server.as_user("ben", "b", "getStarred2", "");
    assert_eq!(ben["starred2"]["song"], serde_json::json!([]), "{ben}");
    let guest = server.as_user("guest", "g", "star", &format!("id={first}"));
    assert_eq!(guest["error"]["code"], 50, "{guest}");

    // Plays fill the album lists; bad ratings and unknown songs change nothing.
    server.ok("scrobble", &format!("id={first}&submission=true"));
    let album = server.ok("getSong", &format!("id={first}"))["song"]["albumId"].clone();
    for kind in ["frequent", "recent"] {
        let list = server.ok("getAlbumList2", &format!("type={kind}"));
        assert_eq!(
            list["albumList2"]["album"][0]["id"], album,
            "{kind}: {list}"
        );
    }
    assert_eq!(
        server.error_code("setRating", &format!("id={first}&rating=6")),
        10
    );
    assert_eq!(server.error_code("scrobble", "id=999999"), 70);
    server.ok("setRating", &format!("id={first}&rating=5"));
    let song = server.ok("getSong", &format!("id={first}"));
    assert_eq!(song["song"]["userRating"], 5);
    assert_eq!(song["song"]["playCount"], 1);

    // The queue, a bookmark and an own playlist with markup in its name.
    let second = song_id("ada_3.wav");
    server.ok(
        "savePlayQueue",
        &format!("id={first}&id={second}&current={second}&position=1500"),
    );
    let q = server.ok("getPlayQueue", "");
    assert_eq!(
        ids(&q["playQueue"]["entry"]),
        vec![first.clone(), second.clone()]
    );
    assert_eq!(q["playQueue"]["current"], second.as_str());
    server.ok(
        "createBookmark",
        &format!("id={second}&position=42&comment=half"),
    );
    let b = server.ok("getBookmarks", "");
    assert_eq!(b["bookmarks"]["bookmark"][0]["position"], 42);
    let made = server.ok(
        "createPlaylist",
        &format!("name=%3Cb%3Ex%3C%2Fb%3E&songId={first}&songId={second}"),
    );
    let own = made["playlist"]["id"].as_str().unwrap().to_string();
    assert_eq!(made["playlist"]["name"], "<b>x</b>");
    let xml = server
        .get(&format!("/rest/getPlaylist?{}&id={own}", auth_hex()))
        .text();
    assert!(xml.contains("name=\"&lt;b&gt;x&lt;/b&gt;\""), "{xml}");
    server.ok(
        "updatePlaylist",
        &format!("playlistId={own}&songIndexToRemove=0"),
    );
    let generated = server.ok("getPlaylists", "")["playlists"]["playlist"][0]["id"].clone();
    let code = server.error_code(
        "deletePlaylist",
        &format!("id={}", generated.as_str().unwrap()),
    );
    assert_eq!(code, 50, "generated playlists are read-only");
    let m3u = dir.path().join("playlists/users/anna/<b>x<_b>.m3u8");
    assert!(m3u.is_file(), "{m3u:?}");

    // Five quick skips of the seed's nearest song move it out of its top five, not out of
    // the radio.
    let seed = song_id("examples_4.wav");
    let top = similar_ids(&server, &seed, 5)[0].clone();
    for _ in 0..5 {
        server.ok("scrobble", &format!("id={top}&submission=false"));
        server.ok("scrobble", &format!("id={seed}&submission=false"));
    }
    let after = similar_ids(&server, &seed, 5);
    assert!(!after.contains(&top), "{top} still in {after:?}");
    assert!(similar_ids(&server, &seed, 50).contains(&top));
    let now = server.ok("getNowPlaying", "");
    assert_eq!(ids(&now["nowPlaying"]["entry"]), vec![seed.clone()]);
    drop(server);

    // Re-analysis and a regeneration keep it all.
    run_ok(&["-a", "-f"], &config);
    run_ok(
        &["-g", "--min_playlist_size", "1", "--mixed_below", "2"],
        &config,
    );
    let server = Server(support::serve(&support::config_file(&config)));
    assert_eq!(
        ids(&server.ok("getStarred2", "")["starred2"]["song"]),
        vec![first.clone()]
    );
    let kept = server.ok("getPlaylist", &format!("id={own}"));
    assert_eq!(ids(&kept["playlist"]["entry"]), vec![second.clone()]);
    assert!(!similar_ids(&server, &seed, 5).contains(&top));
}
