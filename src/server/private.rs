//! Private mode (`[server] private = true`): every route needs an account, so that nobody on
//! the LAN without a password can list, read or play the library.
//!
//! In: every request, the Subsonic accounts and a secret key kept beside the database
//! (`session-key`, made once, mode 0600). Out: the request passed on, or refused:
//! - a browser asking for a page is sent to `/login`, a form that checks an account (with the
//!   per-address back-off of [`super::logins`]) and sets a session cookie (`HttpOnly`,
//!   `SameSite=Strict`, 30 days; changing the account's password ends its sessions);
//! - an API client may send `Authorization: Basic` with an account, or `Bearer` with the
//!   token `POST /login` answers when asked for JSON;
//! - `/rest/*` checks its own Subsonic credentials; a call with none at all is refused here;
//! - M3U8 files carry signed stream URLs (`?exp=…&sig=…`, HMAC-SHA256 over the path and the
//!   expiry, valid for a week or more), so VLC and TVs play them without a password prompt;
//!   a tampered or expired signature is 403.
//!
//! Anything else without credentials is 401 (`WWW-Authenticate: Basic`). The login page's
//! stylesheet and icon are the only files served to everyone.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{Context, Result};
use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use ring::hmac;

use super::logins::Turn;
use super::subsonic::protocol::{self, decode_hex};
use super::{AppState, Credentials, Server};
use crate::store::now_s;

/// How long a session lasts.
const SESSION_S: i64 = 30 * 24 * 3600;
/// How long a signed URL lasts at least; expiries are rounded up to the next day, so an M3U8
/// rendered once serves a whole day.
const SIGNED_URL_S: i64 = 7 * 24 * 3600;
const DAY_S: i64 = 24 * 3600;
const COOKIE: &str = "playlista_session";
/// The files the login page needs (no library data in them).
const PUBLIC: [&str; 2] = ["/static/style.css", "/static/icon.svg"];
/// Longest login form accepted.
const MAX_FORM: usize = 4 << 10;

/// The secret that signs sessions and URLs.
pub struct Keys {
    key: hmac::Key,
}

impl Keys {
    /// The key kept in `dir/session-key`, made on first use.
    pub fn load(dir: &Path) -> Result<Keys> {
        let file = dir.join("session-key");
        let secret = match std::fs::read_to_string(&file) {
            Ok(text) if text.trim().len() == 64 => decode_hex(text.trim()),
            _ => None,
        };
        let secret = match secret {
            Some(s) => s,
            None => {
                let mut bytes = [0u8; 32];
                std::fs::File::open("/dev/urandom")
                    .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
                    .context("cannot read /dev/urandom")?;
                let mut out = std::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(0o600)
                    .open(&file)
                    .with_context(|| format!("cannot write {}", file.display()))?;
                writeln!(out, "{}", hex(&bytes))
                    .with_context(|| format!("cannot write {}", file.display()))?;
                bytes.to_vec()
            }
        };
        Ok(Keys {
            key: hmac::Key::new(hmac::HMAC_SHA256, &secret),
        })
    }

    fn sign(&self, parts: &[&[u8]]) -> hmac::Tag {
        hmac::sign(&self.key, &message(parts))
    }

    /// Whether `tag_hex` is the signature of `parts` (compared in constant time by ring).
    fn verify(&self, parts: &[&[u8]], tag_hex: &str) -> bool {
        decode_hex(tag_hex)
            .is_some_and(|tag| hmac::verify(&self.key, &message(parts), &tag).is_ok())
    }

    /// A session token for `account`, valid until `expires` (Unix seconds).
    pub fn session(&self, account: &Credentials, expires: i64) -> String {
        let exp = expires.to_string();
        let tag = self.sign(&[
            b"session",
            account.user.as_bytes(),
            account.password.as_bytes(),
            exp.as_bytes(),
        ]);
        format!(
            "{}.{exp}.{}",
            hex(account.user.as_bytes()),
            hex(tag.as_ref())
        )
    }

    /// The account a session token names, if it is genuine, unexpired and the account's
    /// password has not changed since.
    pub fn account_of<'a>(
        &self,
        accounts: &'a [Credentials],
        token: &str,
    ) -> Option<&'a Credentials> {
        let mut parts = token.trim().splitn(3, '.');
        let (user, exp, tag) = (parts.next()?, parts.next()?, parts.next()?);
        let user = String::from_utf8(decode_hex(user)?).ok()?;
        let expires: i64 = exp.parse().ok()?;
        if expires < now_s() {
            return None;
        }
        let account = accounts.iter().find(|a| a.user == user)?;
        self.verify(
            &[
                b"session",
                account.user.as_bytes(),
                account.password.as_bytes(),
                exp.as_bytes(),
            ],
            tag,
        )
        .then_some(account)
    }

    /// `exp=…&sig=…` for `path`, valid for at least [`SIGNED_URL_S`].
    pub fn signed_query(&self, path: &str) -> String {
        self.signed_query_until(path, signed_url_expiry())
    }

    /// `exp=…&sig=…` for `path`, valid until `exp` (Unix seconds).
    pub fn signed_query_until(&self, path: &str, exp: i64) -> String {
        let exp = exp.to_string();
        let tag = self.sign(&[b"url", path.as_bytes(), exp.as_bytes()]);
        format!("exp={exp}&sig={}", hex(tag.as_ref()))
    }

    /// What a query's signature says of `path`: `None` when it carries none.
    fn check_signed(&self, path: &str, query: &str) -> Option<bool> {
        let (mut exp, mut sig) = (None, None);
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            match k.as_ref() {
                "exp" => exp = Some(v.into_owned()),
                "sig" => sig = Some(v.into_owned()),
                _ => {}
            }
        }
        let sig = sig?;
        let Some(exp) = exp else {
            return Some(false);
        };
        let fresh = exp.parse::<i64>().is_ok_and(|e| e >= now_s());
        Some(fresh && self.verify(&[b"url", path.as_bytes(), exp.as_bytes()], &sig))
    }
}

/// When URLs signed now expire: at least [`SIGNED_URL_S`] from now, on a day boundary (the
/// same for a whole day, so an M3U8 rendered once serves that day).
pub fn signed_url_expiry() -> i64 {
    (now_s() + SIGNED_URL_S).div_euclid(DAY_S) * DAY_S + DAY_S
}

/// The signed text of `parts`: each one preceded by its length, so that no two lists of
/// parts sign alike.
fn message(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(parts.iter().map(|p| p.len() + 8).sum());
    for p in parts {
        out.extend_from_slice(&(p.len() as u64).to_le_bytes());
        out.extend_from_slice(p);
    }
    out
}

/// `/login` (the form, and its POST) and `/logout`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
}

/// Middleware: in private mode, refuses a request that carries no valid credentials.
pub async fn require(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let Some(keys) = &s.private else {
        return next.run(req).await;
    };
    let path = req.uri().path();
    if path == "/login" || path == "/logout" || PUBLIC.contains(&path) {
        return next.run(req).await;
    }
    if let Some(valid) = req.uri().query().and_then(|q| keys.check_signed(path, q)) {
        return if valid {
            next.run(req).await
        } else {
            (
                StatusCode::FORBIDDEN,
                "this link's signature is wrong or has expired\n",
            )
                .into_response()
        };
    }
    if path.starts_with("/rest/") && subsonic_credentials(&req) {
        return next.run(req).await;
    }
    let ip = peer(&req);
    match credentials(&s, keys, req.headers(), ip).await {
        Granted::Yes => next.run(req).await,
        Granted::No => refuse(&req),
        Granted::Wait(response) => response,
    }
}

enum Granted {
    Yes,
    No,
    /// Too many wrong passwords from this address: the answer to send.
    Wait(Response),
}

/// Whether a Subsonic call names an account (its own handler checks the secret).
fn subsonic_credentials(req: &Request) -> bool {
    let in_query = req
        .uri()
        .query()
        .is_some_and(|q| form_urlencoded::parse(q.as_bytes()).any(|(k, _)| k == "u"));
    let form = req.method() == Method::POST
        && says(
            req.headers(),
            header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        );
    in_query || form
}

/// The session cookie, a Bearer token or HTTP Basic.
async fn credentials(s: &Server, keys: &Keys, headers: &HeaderMap, ip: IpAddr) -> Granted {
    if let Some(token) = cookie(headers, COOKIE) {
        if keys.account_of(&s.accounts, token).is_some() {
            return Granted::Yes;
        }
    }
    let Some(auth) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return Granted::No;
    };
    if let Some(token) = auth.strip_prefix("Bearer ") {
        return match keys.account_of(&s.accounts, token) {
            Some(_) => Granted::Yes,
            None => Granted::No,
        };
    }
    let Some((user, password)) = auth.strip_prefix("Basic ").and_then(basic) else {
        return Granted::No;
    };
    match checked_login(s, ip, &user, &password).await {
        Ok(Some(_)) => Granted::Yes,
        Ok(None) => Granted::No,
        Err(wait) => Granted::Wait(wait),
    }
}

/// Checks a password login from `ip` in its turn ([`super::logins`]); `Err` is the answer
/// when the address must wait.
async fn checked_login<'a>(
    s: &'a Server,
    ip: IpAddr,
    user: &str,
    password: &str,
) -> Result<Option<&'a Credentials>, Response> {
    if let Turn::Refuse(wait) = s.logins.turn(ip).await {
        return Err((
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, wait.as_secs().max(1).to_string())],
            "too many wrong passwords from this address; try again later\n",
        )
            .into_response());
    }
    let account = protocol::login(&s.accounts, user, password);
    match account {
        Some(_) => s.logins.succeeded(ip),
        None => s.logins.failed(ip),
    }
    Ok(account)
}

fn peer(req: &Request) -> IpAddr {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip())
}

/// No credentials: a browser asking for a page goes to the login form, anything else gets
/// 401 with a Basic challenge (players such as VLC then ask for the password).
fn refuse(req: &Request) -> Response {
    let wants_page =
        req.method() == Method::GET && says(req.headers(), header::ACCEPT, "text/html");
    if wants_page {
        let next = req
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string();
        let mut to = String::from("/login?next=");
        to.extend(form_urlencoded::byte_serialize(next.as_bytes()));
        return (StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response();
    }
    (
        StatusCode::UNAUTHORIZED,
        [(
            header::WWW_AUTHENTICATE,
            "Basic realm=\"playlista\", charset=\"UTF-8\"",
        )],
        "this box is private: sign in with an account\n",
    )
        .into_response()
}

/// Whether header `name` mentions `what` (a media type in `Accept` or `Content-Type`).
fn says(headers: &HeaderMap, name: header::HeaderName, what: &str) -> bool {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains(what))
}

/// `user:password` from a Basic credential.
fn basic(encoded: &str) -> Option<(String, String)> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// The value of cookie `name`.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Where to go after signing in: a path of this box only.
fn local_target(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.into(),
        _ => "/".into(),
    }
}

async fn login_page(State(s): State<AppState>, req: Request) -> Response {
    let next = req.uri().query().and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "next")
            .map(|(_, v)| v.into_owned())
    });
    page(&s, StatusCode::OK, &local_target(next.as_deref()), "")
}

/// `POST /login` (a form, or JSON `{user, password}`): a session cookie and a redirect, or
/// `{token, expires}` for a client that asked for JSON.
async fn login(State(s): State<AppState>, req: Request) -> Response {
    let Some(keys) = &s.private else {
        return (
            StatusCode::NOT_FOUND,
            "private mode is off: nothing to sign in to\n",
        )
            .into_response();
    };
    let ip = peer(&req);
    let wants_json = says(req.headers(), header::ACCEPT, "application/json");
    let is_json = says(req.headers(), header::CONTENT_TYPE, "application/json");
    let Ok(body) = axum::body::to_bytes(req.into_body(), MAX_FORM).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "the form is too long\n").into_response();
    };
    let (mut user, mut password, mut next) = (String::new(), String::new(), None);
    if is_json {
        #[derive(serde::Deserialize)]
        struct Asked {
            user: String,
            password: String,
        }
        let Ok(asked) = serde_json::from_slice::<Asked>(&body) else {
            return (
                StatusCode::BAD_REQUEST,
                "expected {\"user\": …, \"password\": …}\n",
            )
                .into_response();
        };
        (user, password) = (asked.user, asked.password);
    } else {
        for (k, v) in form_urlencoded::parse(&body) {
            match k.as_ref() {
                "user" => user = v.into_owned(),
                "password" => password = v.into_owned(),
                "next" => next = Some(v.into_owned()),
                _ => {}
            }
        }
    }
    let next = local_target(next.as_deref());
    let account = match checked_login(&s, ip, &user, &password).await {
        Ok(Some(a)) => a,
        Ok(None) if wants_json || is_json => {
            return (StatusCode::UNAUTHORIZED, "wrong user or password\n").into_response();
        }
        Ok(None) => {
            return page(
                &s,
                StatusCode::UNAUTHORIZED,
                &next,
                "Wrong user or password.",
            );
        }
        Err(wait) => return wait,
    };
    let expires = now_s() + SESSION_S;
    let token = keys.session(account, expires);
    if wants_json || is_json {
        return axum::Json(serde_json::json!({ "token": token, "expires": expires }))
            .into_response();
    }
    let cookie =
        format!("{COOKIE}={token}; Path=/; Max-Age={SESSION_S}; HttpOnly; SameSite=Strict");
    (
        StatusCode::SEE_OTHER,
        [(header::SET_COOKIE, cookie), (header::LOCATION, next)],
    )
        .into_response()
}

/// `POST /logout`: the session cookie removed.
async fn logout() -> Response {
    (
        StatusCode::SEE_OTHER,
        [
            (
                header::SET_COOKIE,
                format!("{COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict"),
            ),
            (header::LOCATION, "/login".to_string()),
        ],
    )
        .into_response()
}

/// The login form, with the page's own stylesheet and security headers.
fn page(s: &Server, status: StatusCode, next: &str, message: &str) -> Response {
    let mut html = String::with_capacity(1024);
    let _ = write!(
        html,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Sign in · {name}</title>\
         <link rel=\"icon\" href=\"/static/icon.svg\">\
         <link rel=\"stylesheet\" href=\"/static/style.css\"></head>\
         <body><main class=\"login\"><h1>{name}</h1>\
         <form method=\"post\" action=\"/login\">\
         <input type=\"hidden\" name=\"next\" value=\"{next}\">\
         <label>User <input name=\"user\" autocomplete=\"username\" required></label>\
         <label>Password <input name=\"password\" type=\"password\" \
         autocomplete=\"current-password\" required></label>\
         <button type=\"submit\">Sign in</button>\
         <p role=\"alert\">{message}</p></form></main></body></html>\n",
        name = escape(&s.name),
        next = escape(next),
        message = escape(message),
    );
    let mut response = Response::new(Body::from(html));
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    for (name, value) in super::web::security_headers() {
        h.insert(name, HeaderValue::from_static(value));
    }
    // The one form this box has posts to itself.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(super::web::LOGIN_CSP),
    );
    response
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> (tempfile::TempDir, Keys) {
        let dir = tempfile::tempdir().unwrap();
        let keys = Keys::load(dir.path()).unwrap();
        (dir, keys)
    }

    fn account(user: &str, password: &str) -> Credentials {
        Credentials {
            user: user.into(),
            password: password.into(),
            read_only: false,
        }
    }

    #[test]
    fn the_key_is_kept_private_and_reused() {
        let (dir, keys) = keys();
        let file = dir.path().join("session-key");
        let mode = std::os::unix::fs::PermissionsExt::mode(&file.metadata().unwrap().permissions());
        assert_eq!(mode & 0o777, 0o600);
        let again = Keys::load(dir.path()).unwrap();
        let q = keys.signed_query("/stream/1");
        assert_eq!(again.check_signed("/stream/1", &q), Some(true));
    }

    #[test]
    fn sessions_name_their_account_until_they_expire_or_the_password_changes() {
        let (_dir, keys) = keys();
        let accounts = [account("ann", "pw1"), account("bob", "pw2")];
        let token = keys.session(&accounts[1], now_s() + 60);
        assert_eq!(
            keys.account_of(&accounts, &token).map(|a| a.user.as_str()),
            Some("bob")
        );
        // Another user's name on the same signature, a flipped signature, an expired one.
        let forged = format!("{}{}", hex(b"ann"), &token[token.find('.').unwrap()..]);
        assert!(keys.account_of(&accounts, &forged).is_none());
        let mut flipped = token.clone().into_bytes();
        let last = flipped.len() - 1;
        flipped[last] = if flipped[last] == b'0' { b'1' } else { b'0' };
        assert!(
            keys.account_of(&accounts, std::str::from_utf8(&flipped).unwrap())
                .is_none()
        );
        let old = keys.session(&accounts[1], now_s() - 1);
        assert!(keys.account_of(&accounts, &old).is_none());
        let changed = [account("ann", "pw1"), account("bob", "new")];
        assert!(keys.account_of(&changed, &token).is_none());
        for junk in ["", "...", "zz.1.2", "626f62.x.00", "626f62.99999999999.zz"] {
            assert!(keys.account_of(&accounts, junk).is_none(), "{junk}");
        }
    }

    #[test]
    fn signed_urls_hold_for_their_path_until_they_expire() {
        let (_dir, keys) = keys();
        let q = keys.signed_query("/stream/7");
        assert_eq!(keys.check_signed("/stream/7", &q), Some(true));
        assert_eq!(keys.check_signed("/stream/8", &q), Some(false));
        assert_eq!(keys.check_signed("/stream/7", "a=1"), None);
        assert_eq!(keys.check_signed("/stream/7", "sig=00"), Some(false));
        let expired = keys.signed_query_until("/stream/7", now_s() - 10);
        assert_eq!(keys.check_signed("/stream/7", &expired), Some(false));
        let later = q.replace("exp=", "exp=1");
        assert_eq!(keys.check_signed("/stream/7", &later), Some(false));
    }

    #[test]
    fn logins_go_back_to_this_box_only() {
        assert_eq!(
            local_target(Some("/playlists/1.m3u8?x=1")),
            "/playlists/1.m3u8?x=1"
        );
        for away in [
            "//evil.example/",
            "https://evil.example/",
            "/\\evil.example",
            "",
        ] {
            assert_eq!(local_target(Some(away)), "/", "{away}");
        }
        assert_eq!(basic("YW5uOnB3OjE="), Some(("ann".into(), "pw:1".into())));
        assert_eq!(basic("%%%"), None);
    }
}
