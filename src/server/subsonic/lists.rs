//! Playlists and similarity: the stored playlists (read-only), `getSimilarSongs`/`2` (our
//! radio, [`flow::radio`]), and the OpenSubsonic `sonicSimilarity` extension:
//! `getSonicSimilarTracks` (nearest tracks in the feature space, by distance) and
//! `findSonicPath` ([`flow::path`]).
//!
//! In: a [`Ctx`] and parameters. Out: response trees. A `sonicMatch` is a song plus its
//! `distance`: the Euclidean distance in the weighted feature space divided by the largest
//! distance that space allows, so 0 is the same sound and 1 the farthest apart.

use super::Ctx;
use super::browse::song;
use super::own;
use super::protocol::{Error, Node, Params, iso8601};
use crate::playlist::flow;
use crate::playlist::space::{DIMS, WEIGHTS, dist2};
use crate::server::catalog::StoredList;

/// Most songs one similarity request may ask for.
const MAX_SONGS: usize = 500;

fn playlist_node(x: &Ctx, p: &StoredList) -> Node {
    let owner = x.server.name.as_str();
    let cover = p
        .tracks
        .first()
        .map(|&(i, _)| x.catalog.lib.tracks[i].id.to_string());
    Node::new()
        .attr("id", p.id.to_string())
        .attr("name", p.name.as_str())
        .attr("comment", p.rule.as_str())
        .attr("owner", owner)
        .attr("public", true)
        .attr("readonly", true)
        .attr("songCount", p.tracks.len())
        .attr("duration", p.duration_s.round() as i64)
        .attr("created", iso8601(p.updated_at))
        .attr("changed", iso8601(p.updated_at))
        .opt("coverArt", cover)
}

/// `getPlaylists`: the generated playlists (owned by the box, read-only), then the
/// listener's own and the others' public ones ([`own::visible`]).
pub fn playlists(x: &Ctx, p: &Params) -> Result<Node, Error> {
    if p.get("username").is_some_and(|u| u != x.account.user) {
        return Err(Error::not_allowed("only your own playlists"));
    }
    let mut lists: Vec<Node> = x
        .catalog
        .playlists
        .iter()
        .map(|p| playlist_node(x, p))
        .collect();
    lists.extend(own::visible(x));
    Ok(Node::new().one("playlists", Node::new().many("playlist", lists)))
}

pub fn playlist(x: &Ctx, params: &Params) -> Result<Node, Error> {
    let id = params.required("id")?;
    if let Some(answer) = own::playlist(x, id) {
        return answer;
    }
    let p = id
        .trim()
        .parse::<i64>()
        .ok()
        .and_then(|id| x.catalog.playlist(id))
        .ok_or_else(|| Error::not_found("Playlist"))?;
    let entries = p.tracks.iter().map(|&(i, _)| song(x, i)).collect();
    Ok(Node::new().one("playlist", playlist_node(x, p).many("entry", entries)))
}

/// The track a similarity request starts from: the song itself, or for an album or an
/// artist its most typical track (the one nearest the mean of its tracks' features).
fn seed(x: &Ctx, id: &str) -> Result<usize, Error> {
    let group: Vec<usize> = if let Some(a) = x.index().album(id) {
        x.index().albums[a].tracks.clone()
    } else if let Some(a) = x.index().artist(id) {
        x.index().artists[a]
            .albums
            .iter()
            .flat_map(|&al| x.index().albums[al].tracks.iter().copied())
            .collect()
    } else {
        return x.song(id);
    };
    let lib = &x.catalog.lib;
    let mut mean = [0f32; DIMS];
    for &i in &group {
        for (m, v) in mean.iter_mut().zip(lib.scaled[i]) {
            *m += v / group.len() as f32;
        }
    }
    group
        .into_iter()
        .min_by(|&a, &b| dist2(&lib.scaled[a], &mean).total_cmp(&dist2(&lib.scaled[b], &mean)))
        .ok_or_else(|| Error::not_found("Song"))
}

/// `getSimilarSongs` and `getSimilarSongs2`: a radio from the song (or the album's or
/// artist's most typical song), in smooth order, without the seed.
pub fn similar(x: &Ctx, p: &Params, element: &'static str) -> Result<Node, Error> {
    let start = seed(x, p.required("id")?)?;
    let count = p.count("count", 50, MAX_SONGS)?;
    let radio = flow::radio(&x.catalog.lib, start, count + 1, &x.taste());
    let tracks = radio
        .entries
        .iter()
        .filter(|e| e.track != start)
        .take(count)
        .map(|e| song(x, e.track))
        .collect();
    Ok(Node::new().one(element, Node::new().many("song", tracks)))
}

/// Distance between two tracks, 0..1.
fn distance(x: &Ctx, a: usize, b: usize) -> f64 {
    let largest: f32 = WEIGHTS.iter().map(|w| w * w).sum::<f32>().sqrt();
    let d = x.catalog.lib.dist2(a, b).sqrt() / largest;
    (f64::from(d.clamp(0.0, 1.0)) * 10_000.0).round() / 10_000.0
}

fn sonic_match(x: &Ctx, from: usize, i: usize) -> Node {
    song(x, i).attr("distance", distance(x, from, i))
}

pub fn sonic_similar(x: &Ctx, p: &Params) -> Result<Node, Error> {
    let start = seed(x, p.required("id")?)?;
    let count = p.count("count", 10, MAX_SONGS)?;
    let taste = x.taste();
    let radio = flow::radio(&x.catalog.lib, start, count + 1, &taste);
    let mut near: Vec<(f64, usize)> = radio
        .entries
        .iter()
        .filter(|e| e.track != start)
        .map(|e| (distance(x, start, e.track), e.track))
        .collect();
    near.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Nearest first, moved by what this listener skips and likes.
    let matches = taste
        .rerank(near.into_iter().map(|(_, i)| i).collect())
        .into_iter()
        .take(count)
        .map(|i| sonic_match(x, start, i))
        .collect();
    Ok(Node::new().one(
        "sonicSimilarTracksResult",
        Node::new().many("sonicMatch", matches),
    ))
}

pub fn sonic_path(x: &Ctx, p: &Params) -> Result<Node, Error> {
    let (from, to) = (p.required("startSongId")?, p.required("endSongId")?);
    let (from, to) = (x.song(from)?, x.song(to)?);
    if from == to {
        return Err(Error::generic(
            "startSongId and endSongId are the same song",
        ));
    }
    let count = p.count("count", 25, MAX_SONGS)?.max(2);
    let path = flow::path(&x.catalog.lib, from, to, count, &x.taste());
    let matches = path
        .entries
        .iter()
        .map(|e| sonic_match(x, from, e.track))
        .collect();
    Ok(Node::new().one(
        "findSonicPathResult",
        Node::new().many("sonicMatch", matches),
    ))
}
