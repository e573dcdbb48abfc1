//! The store on a real SQLite file in a temporary directory.

use std::path::PathBuf;

use super::*;
use crate::embedding::{EMBEDDING_DIM, N_TAGS};
use crate::features::{ANALYSIS_VERSION, PitchClass, Scale};
use crate::library::FileEntry;
use crate::tags::Tags;

const TUNING: Tuning = Tuning { cache_kib: 1024 };

fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("playlista.db"), TUNING).unwrap();
    (dir, store)
}

fn entry(path: &str) -> FileEntry {
    FileEntry {
        path: PathBuf::from(path),
        size: 1000,
        mtime_ns: 1,
        ..FileEntry::default()
    }
}

/// A full-mode record whose every real has more digits than any display rounding keeps.
fn record() -> Record {
    let mut r = Record {
        sample_rate: 44_100,
        channels: 2,
        codec: "flac".into(),
        key: Some(PitchClass::Fs),
        scale: Some(Scale::Minor),
        tags: Tags {
            artist: Some("Ann".into()),
            title: Some("Song".into()),
            year: Some(1994),
            disc_number: Some(2),
            musicbrainz_recording_id: Some("b1a9c0e9-d987-4042-ae91-78d6a3267d69".into()),
            isrc: Some("USRC17607839".into()),
            ..Tags::default()
        },
        embedding: Some((0..EMBEDDING_DIM).map(|i| i as f32 / 7.0).collect()),
        musicnn_tags: Some((0..N_TAGS).map(|i| i as f32 / 50.0).collect()),
        ..Record::default()
    };
    for (i, f) in FIELDS.iter().enumerate() {
        if f.kind == Kind::Real {
            (f.set)(&mut r, Value::Real(Some(i as f64 * 10.0 + 1.0 / 7.0)));
        }
    }
    r
}

#[test]
fn migrates_from_empty_to_the_current_version() {
    let (dir, store) = open();
    let version: i64 = store
        .conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version as usize, schema::version());
    // Every scalar of the record has its column.
    let mut stmt = store.conn.prepare("PRAGMA table_info(features)").unwrap();
    let columns: Vec<String> = stmt
        .query_map([], |r| r.get(1))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    for f in FIELDS {
        assert!(
            columns.iter().any(|c| c == f.name),
            "{}: {columns:?}",
            f.name
        );
    }
    drop(stmt);
    drop(store);
    // Opening again is a no-op; a reader accepts the file.
    Store::open(&dir.path().join("playlista.db"), TUNING).unwrap();
    Store::open_read(&dir.path().join("playlista.db"), TUNING).unwrap();
}

#[test]
fn a_newer_database_is_refused() {
    let (dir, store) = open();
    store
        .conn
        .pragma_update(None, "user_version", (schema::version() + 1) as i64)
        .unwrap();
    drop(store);
    let path = dir.path().join("playlista.db");
    let err = Store::open(&path, TUNING).err().unwrap().to_string();
    assert!(err.contains("newer than this playlista"), "{err}");
    assert!(Store::open_read(&path, TUNING).is_err());
}

#[test]
fn a_batch_reads_back_at_full_precision() {
    let (_dir, mut store) = open();
    let m = record();
    let batch = store.batch().unwrap();
    let id = batch
        .analyzed(&entry("/music/a.flac"), Some(42), &m, "full", 12.5)
        .unwrap();
    batch.copied(id, &entry("/music/b.flac"), 42).unwrap();
    batch.commit().unwrap();

    let tracks = store.analysed().unwrap();
    assert_eq!(tracks.len(), 2);
    let scalars_and_tags = Record {
        timbre: None,
        embedding: None,
        musicnn_tags: None,
        ..m.clone()
    };
    assert_eq!(
        (tracks[0].id, tracks[0].path.as_str()),
        (id, "/music/a.flac")
    );
    assert_eq!(tracks[0].measured, scalars_and_tags);
    assert_eq!(tracks[1].measured, scalars_and_tags, "the copy");

    let mut vectors = Vec::new();
    store
        .embeddings(|id, e, t| vectors.push((id, e.to_vec(), t.to_vec())))
        .unwrap();
    assert_eq!(vectors.len(), 2);
    assert_eq!(Some(&vectors[0].1), m.embedding.as_ref());
    assert_eq!(Some(&vectors[0].2), m.musicnn_tags.as_ref());
    assert_eq!(store.fingerprints().unwrap(), vec![(id, 42), (id + 1, 42)]);
}

#[test]
fn status_counts_and_fail_kinds_round_trip() {
    let (_dir, mut store) = open();
    let batch = store.batch().unwrap();
    batch
        .analyzed(&entry("/m/ok.flac"), None, &record(), "fast", 1.0)
        .unwrap();
    batch.pending(&entry("/m/later.mp3"), None).unwrap();
    for (i, kind) in FailKind::ALL.into_iter().enumerate() {
        batch
            .failed(&entry(&format!("/m/bad{i}.mp3")), None, kind, "why")
            .unwrap();
    }
    batch.commit().unwrap();

    let s = store.status().unwrap();
    let n = FailKind::ALL.len() as u64;
    assert_eq!(
        (s.tracks, s.analyzed, s.pending, s.failed, s.outdated),
        (2 + n, 1, 1, n, 0)
    );
    let mut kinds: Vec<FailKind> = s.failed_by_kind.iter().map(|(k, _)| *k).collect();
    kinds.sort_by_key(|k| k.name());
    let mut all = FailKind::ALL.to_vec();
    all.sort_by_key(|k| k.name());
    assert_eq!(kinds, all);
    let failures = store.failures().unwrap();
    assert_eq!(
        failures.iter().map(|f| f.1).collect::<Vec<_>>(),
        FailKind::ALL.to_vec()
    );
    assert_eq!(
        serde_json::to_value(s.failed_by_kind[0]).unwrap()[0],
        s.failed_by_kind[0].0.name()
    );

    let known = store.lookup("/m/bad0.mp3").unwrap().unwrap();
    assert_eq!((known.status, known.attempts), (TrackStatus::Failed, 1));
    let ok = store.lookup("/m/ok.flac").unwrap().unwrap();
    assert_eq!(ok.status, TrackStatus::Analyzed);
    assert_eq!(ok.analysis, Some((ANALYSIS_VERSION, "fast".to_string())));
    assert_eq!(store.retryable(3).unwrap().len(), FailKind::ALL.len());

    // A kind this playlista does not know reads as unknown.
    store
        .conn
        .execute(
            "UPDATE tracks SET fail_kind = 'odd' WHERE path = '/m/bad0.mp3'",
            [],
        )
        .unwrap();
    assert_eq!(store.failures().unwrap()[0].1, FailKind::Unknown);
}

#[test]
fn the_lookup_cache_keeps_answers_by_source_and_key() {
    let (_dir, mut store) = open();
    let (artist, title) = ("ÉLAN Ünder", "Ça Va BIEN");
    assert_eq!(
        store.sql_cache_key(artist, title).unwrap(),
        cache_key(artist, title)
    );
    let mut m = record();
    m.tags.artist = Some("ANN".into());
    m.tags.title = Some("song".into());
    let batch = store.batch().unwrap();
    batch
        .analyzed(&entry("/m/1.flac"), None, &record(), "fast", 1.0)
        .unwrap();
    batch
        .analyzed(&entry("/m/2.flac"), None, &m, "fast", 1.0)
        .unwrap();
    batch.commit().unwrap();
    let recordings = store.recordings().unwrap();
    assert_eq!(
        recordings.len(),
        1,
        "one recording in two copies: {recordings:?}"
    );
    assert_eq!(recordings[0].key, cache_key("Ann", "Song"));

    store
        .cache_answer("mb", &recordings[0].key, r#"{"outcome":"hit","year":1}"#)
        .unwrap();
    store
        .cache_answer("mb", "other", r#"{"outcome":"miss"}"#)
        .unwrap();
    store
        .cache_answer("fm", "other", r#"{"outcome":"hit"}"#)
        .unwrap();
    let all = store.cached("mb", None).unwrap();
    assert_eq!(all.len(), 2);
    let hits = store.cached("mb", Some("hit")).unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(
        (hits[0].key.as_str(), hits[0].outcome.as_deref()),
        (recordings[0].key.as_str(), Some("hit"))
    );
    assert!(hits[0].fetched_at > 0);
    // An answer replaces the one before.
    store
        .cache_answer("mb", "other", r#"{"outcome":"hit"}"#)
        .unwrap();
    assert_eq!(store.cached("mb", Some("hit")).unwrap().len(), 2);
}

#[test]
fn listening_data_survives_reanalysis_and_moves_and_goes_with_the_track() {
    let (_dir, mut store) = open();
    let m = record();
    let batch = store.batch().unwrap();
    let a = batch
        .analyzed(&entry("/music/a.flac"), Some(1), &m, "fast", 1.0)
        .unwrap();
    let b = batch
        .analyzed(&entry("/music/b.flac"), Some(2), &m, "fast", 1.0)
        .unwrap();
    batch.commit().unwrap();
    let mark = SongMark {
        starred_at: Some(100),
        rating: Some(4),
        plays: 3,
        last_played: Some(200),
        skips: 1,
        skip_after_s: Some(12.5),
    };
    let list = OwnPlaylist {
        id: 7,
        account: "anna".into(),
        name: "<b>Road</b> & trip".into(),
        comment: String::new(),
        public: true,
        created: 1,
        changed: 2,
        tracks: vec![b, a, b],
    };
    let failed = store
        .apply(&[
            Write::Song {
                account: "anna".into(),
                track: a,
                mark: mark.clone(),
            },
            Write::Song {
                account: "ben".into(),
                track: b,
                mark: SongMark {
                    plays: 1,
                    ..SongMark::default()
                },
            },
            Write::Item {
                account: "anna".into(),
                item: "al-00ff".into(),
                mark: ItemMark {
                    starred_at: Some(5),
                    rating: None,
                },
            },
            Write::SkippedAfter {
                account: "anna".into(),
                from: b,
                to: a,
                skips: 2,
            },
            Write::Queue {
                account: "anna".into(),
                queue: Some(PlayQueue {
                    current: Some(b),
                    position_ms: 1500,
                    changed: 9,
                    changed_by: "DSub".into(),
                    tracks: vec![a, b],
                }),
            },
            Write::Bookmark {
                account: "anna".into(),
                track: b,
                bookmark: Some(Bookmark {
                    position_ms: 10,
                    comment: "x".into(),
                    created: 1,
                    changed: 1,
                }),
            },
            Write::Playlist {
                id: 7,
                playlist: Some(list.clone()),
            },
            // A track that does not exist: this write alone fails.
            Write::Song {
                account: "anna".into(),
                track: 9999,
                mark: mark.clone(),
            },
        ])
        .unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].0, 7);

    // Re-analysis of a and a move of b keep their ids and so their rows.
    let batch = store.batch().unwrap();
    batch
        .analyzed(&entry("/music/a.flac"), Some(1), &m, "full", 1.0)
        .unwrap();
    batch.moved(b, &entry("/music/moved/b.flac")).unwrap();
    batch.commit().unwrap();
    let got = store.listened().unwrap();
    assert_eq!(got.songs.len(), 2);
    assert!(got.songs.contains(&("anna".into(), a, mark.clone())));
    assert_eq!(got.items.len(), 1);
    assert_eq!(got.skipped_after, vec![("anna".into(), b, a, 2)]);
    assert_eq!(got.queues[0].1.tracks, vec![a, b]);
    assert_eq!(got.bookmarks.len(), 1);
    assert_eq!(got.playlists, vec![list]);

    // Emptied marks delete their row; a deleted track takes its rows along.
    store
        .apply(&[Write::Song {
            account: "ben".into(),
            track: b,
            mark: SongMark::default(),
        }])
        .unwrap();
    let batch = store.batch().unwrap();
    batch.removed(a).unwrap();
    batch.commit().unwrap();
    let got = store.listened().unwrap();
    assert!(got.songs.is_empty(), "{:?}", got.songs);
    assert!(got.skipped_after.is_empty());
    assert_eq!(got.playlists[0].tracks, vec![b, b]);
    assert_eq!(got.bookmarks.len(), 1, "b's bookmark stays");
}

#[test]
fn processes_opening_a_new_database_at_once_migrate_it_once() {
    for _ in 0..8 {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("playlista.db");
        let barrier = std::sync::Barrier::new(4);
        std::thread::scope(|s| {
            let openers: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        barrier.wait();
                        Store::open(&db, TUNING).map(|_| ())
                    })
                })
                .collect();
            for opener in openers {
                opener
                    .join()
                    .unwrap()
                    .expect("every opener finds the schema made");
            }
        });
        let store = Store::open(&db, TUNING).unwrap();
        assert!(store.integrity_ok().unwrap());
    }
}

#[test]
fn a_playlist_save_waits_for_another_writer_instead_of_failing() {
    let (dir, store) = open();
    let db = dir.path().join("playlista.db");
    let list = PlaylistRow {
        name: "One",
        rule: "rule",
        settings: "",
        tracks: Vec::new(),
    };
    store
        .save_playlists("all", std::slice::from_ref(&list), true)
        .unwrap();
    std::thread::scope(|s| {
        let (holding, held) = std::sync::mpsc::channel();
        s.spawn(move || {
            let other = rusqlite::Connection::open(&db).unwrap();
            other.execute_batch("BEGIN IMMEDIATE").unwrap();
            other
                .execute("UPDATE playlists SET updated_at = updated_at + 1", [])
                .unwrap();
            holding.send(()).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(300));
            other.execute_batch("COMMIT").unwrap();
        });
        held.recv().unwrap();
        // Reads the method's playlists, then writes: a deferred transaction would read before
        // the other writer's commit and then fail to write ("database is locked").
        store
            .save_playlists("all", std::slice::from_ref(&list), true)
            .expect("the save waits for the other writer");
    });
    assert_eq!(store.saved_playlists("all").unwrap().len(), 1);
}
