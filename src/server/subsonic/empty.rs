//! What a music library box has none of: podcasts, internet radio stations, shares, chat and
//! videos (nor avatars). Their lists answer validly and empty, so that the apps' settings and sync screens
//! show "nothing here" instead of an error; an id asked for is error 70; the writes to them,
//! and user administration (the accounts live in the config file) and jukebox control, are
//! error 50, "not authorised", which apps show as a permission, not as a broken server.
//!
//! In: a method name and its parameters. Out: `None` for a method this module does not know
//! (the dispatcher's "unknown method"), else the answer.

use super::protocol::{Error, Node, Params};

/// Methods that change what this box does not keep, or that need an administrator.
const NOT_AUTHORISED: [&str; 18] = [
    "createShare",
    "updateShare",
    "deleteShare",
    "createPodcastChannel",
    "deletePodcastChannel",
    "deletePodcastEpisode",
    "downloadPodcastEpisode",
    "refreshPodcasts",
    "createInternetRadioStation",
    "updateInternetRadioStation",
    "deleteInternetRadioStation",
    "getUsers",
    "createUser",
    "updateUser",
    "deleteUser",
    "changePassword",
    "jukeboxControl",
    "addChatMessage",
];

/// An empty list of `item` inside `element`.
fn none(element: &'static str, item: &'static str) -> Node {
    Node::new().one(element, Node::new().many(item, Vec::new()))
}

pub fn answer(method: &str, p: &Params) -> Option<Result<Node, Error>> {
    if NOT_AUTHORISED.contains(&method) {
        return Some(Err(Error::not_allowed(format!(
            "{method}: this server keeps no users, shares, podcasts, radio stations or chat, \
             and has no jukebox"
        ))));
    }
    Some(match method {
        // One channel asked for by id: there is none.
        "getPodcasts" if p.get("id").is_some_and(|id| !id.is_empty()) => {
            Err(Error::not_found("Podcast channel"))
        }
        "getPodcasts" => Ok(none("podcasts", "channel")),
        "getNewestPodcasts" => Ok(none("newestPodcasts", "episode")),
        "getPodcastEpisode" => p
            .required("id")
            .and(Err(Error::not_found("Podcast episode"))),
        "getInternetRadioStations" => Ok(none("internetRadioStations", "internetRadioStation")),
        "getShares" => Ok(none("shares", "share")),
        "getChatMessages" => Ok(none("chatMessages", "chatMessage")),
        "getVideos" => Ok(none("videos", "video")),
        "getVideoInfo" => p.required("id").and(Err(Error::not_found("Video"))),
        "getAvatar" => p.required("username").and(Err(Error::not_found("Avatar"))),
        _ => return None,
    })
}
