//! Playlists and similarity: the generated playlists (read-only) beside the listeners' own
//! ([`own`]), `getSimilarSongs`/`2` (our radio, [`flow::radio`], with what this listener
//! taught it), and the OpenSubsonic `sonicSimilarity` extension:
//! `getSonicSimilarTracks` (nearest tracks in the feature space, by distance) and
//! `findSonicPath` ([`flow::path`]).
//!
//! In: a [`Ctx`] and parameters. Out: response trees. The sonic answers are the published
//! shape: a top-level `sonicMatch` list, each `{entry: Child, similarity}`, the similarity
//! 0..1 from the distance in the weighted feature space (1.0 the same song; see
//! [`similarity`]).

use super::Ctx;
use super::browse::song;
use super::own;
use super::protocol::{Error, Node, Params, iso8601};
use crate::playlist::flow;
use crate::playlist::sound::SOUND_WEIGHT;
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

/// How alike two tracks sound, 0..1: 1 less their Euclidean distance in the weighted feature
/// space over the largest distance that space allows (the DSP features' weights; with sounds,
/// twice the sound's root mean squared length too), so 1.0 is the same song and 0.0 the
/// farthest apart; four decimals.
fn similarity(x: &Ctx, a: usize, b: usize) -> f64 {
    let lib = &x.catalog.lib;
    let sound = if lib.sound.iter().any(Option::is_some) {
        (2.0 * SOUND_WEIGHT).powi(2)
    } else {
        0.0
    };
    let largest = (WEIGHTS.iter().map(|w| w * w).sum::<f32>() + sound).sqrt();
    let d = lib.dist2(a, b).sqrt() / largest;
    ((1.0 - f64::from(d.clamp(0.0, 1.0))) * 10_000.0).round() / 10_000.0
}

/// The published answer: a top-level `sonicMatch` list of `{entry: Child, similarity}`.
fn sonic_matches(x: &Ctx, matches: impl IntoIterator<Item = (usize, f64)>) -> Node {
    let matches = matches
        .into_iter()
        .map(|(i, similarity)| {
            Node::new()
                .attr("similarity", similarity)
                .one("entry", song(x, i))
        })
        .collect();
    Node::new().many("sonicMatch", matches)
}

/// `getSonicSimilarTracks`: the radio's candidates, most similar first, without the seed.
pub fn sonic_similar(x: &Ctx, p: &Params) -> Result<Node, Error> {
    let start = seed(x, p.required("id")?)?;
    let count = p.count("count", 10, MAX_SONGS)?;
    let taste = x.taste();
    let radio = flow::radio(&x.catalog.lib, start, count + 1, &taste);
    let mut near: Vec<(usize, f64)> = radio
        .entries
        .iter()
        .filter(|e| e.track != start)
        .map(|e| (e.track, similarity(x, start, e.track)))
        .collect();
    near.sort_by(|a, b| b.1.total_cmp(&a.1));
    // Which tracks make the count learns from this listener (a track they skip sinks out);
    // the answer stays most similar first, as the extension says.
    let mut chosen: Vec<usize> = taste.rerank(near.iter().map(|&(i, _)| i).collect());
    chosen.truncate(count);
    near.retain(|(i, _)| chosen.contains(i));
    Ok(sonic_matches(x, near))
}

/// `findSonicPath`: from the start song to the end song, each step's similarity to the start.
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
    Ok(sonic_matches(
        x,
        path.entries
            .iter()
            .map(|e| (e.track, similarity(x, from, e.track))),
    ))
}
