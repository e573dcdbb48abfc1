//! The Subsonic wire protocol: request parameters, authentication, errors, and the response
//! tree rendered as XML (the default) or JSON (`f=json`, `f=jsonp`).
//!
//! In: a request's query string and form body. Out: [`Params`], the outcome of
//! [`authenticate`], and an HTTP response for a [`Node`] tree or an [`Error`].
//!
//! One tree serves both formats, as the API defines them: a node's attributes are XML
//! attributes and JSON fields; a child given with [`Node::one`] is an XML element and a JSON
//! object; children given with [`Node::many`] are repeated XML elements and one JSON array
//! (also when there are none or one); [`Node::element`] is an XML element with text and a
//! JSON field; [`Node::text`] is XML text and the JSON field `value`.
//! Errors are HTTP 200 with `status="failed"` and an `error` element, as the API specifies.

use axum::body::Bytes;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use md5::{Digest, Md5};
use std::fmt::Write as _;

use crate::server::Credentials;

/// The Subsonic API version these answers follow.
pub const API_VERSION: &str = "1.16.1";
/// `type` in every response: the server's name.
pub const SERVER_TYPE: &str = "playlista";

/// A scalar: an attribute value or a list item.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Str(String),
    Int(i64),
    Num(f64),
    Bool(bool),
}

impl From<&str> for Val {
    fn from(v: &str) -> Val {
        Val::Str(v.to_string())
    }
}
impl From<String> for Val {
    fn from(v: String) -> Val {
        Val::Str(v)
    }
}
impl From<&String> for Val {
    fn from(v: &String) -> Val {
        Val::Str(v.clone())
    }
}
impl From<i64> for Val {
    fn from(v: i64) -> Val {
        Val::Int(v)
    }
}
impl From<u32> for Val {
    fn from(v: u32) -> Val {
        Val::Int(v.into())
    }
}
impl From<u64> for Val {
    fn from(v: u64) -> Val {
        Val::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}
impl From<usize> for Val {
    fn from(v: usize) -> Val {
        Val::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}
impl From<f64> for Val {
    fn from(v: f64) -> Val {
        Val::Num(v)
    }
}
impl From<bool> for Val {
    fn from(v: bool) -> Val {
        Val::Bool(v)
    }
}

impl Val {
    fn text(&self) -> String {
        match self {
            Val::Str(s) => s.clone(),
            Val::Int(i) => i.to_string(),
            Val::Num(n) if n.is_finite() => n.to_string(),
            Val::Num(_) => "0".into(),
            Val::Bool(b) => b.to_string(),
        }
    }

    fn write_json(&self, out: &mut String) {
        match self {
            Val::Str(s) => json_string(s, out),
            Val::Int(i) => {
                let _ = write!(out, "{i}");
            }
            // A whole number keeps its `.0`, so a client reading a float gets one.
            Val::Num(n) if n.is_finite() && n.fract() == 0.0 && n.abs() < 1e15 => {
                let _ = write!(out, "{n:.1}");
            }
            Val::Num(n) if n.is_finite() => {
                let _ = write!(out, "{n}");
            }
            Val::Num(_) => out.push('0'),
            Val::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        }
    }
}

/// `s` as a JSON string.
fn json_string(s: &str, out: &mut String) {
    out.push('"');
    // Runs that need no escape are copied whole (the escaped bytes are all ASCII, so every
    // cut falls on a character boundary).
    let mut plain = 0;
    for (i, b) in s.bytes().enumerate() {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            b if b < 0x20 => "",
            _ => continue,
        };
        out.push_str(&s[plain..i]);
        if escape.is_empty() {
            let _ = write!(out, "\\u{b:04x}");
        } else {
            out.push_str(escape);
        }
        plain = i + 1;
    }
    out.push_str(&s[plain..]);
    out.push('"');
}

/// Children under one name.
#[derive(Debug, Clone, PartialEq)]
enum Kids {
    One(Node),
    Many(Vec<Node>),
    Values(Vec<Val>),
    Text(Val),
}

/// One element of a response.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Node {
    attrs: Vec<(&'static str, Val)>,
    kids: Vec<(&'static str, Kids)>,
    text: Option<String>,
}

impl Node {
    pub fn new() -> Node {
        Node::default()
    }

    /// Sets an attribute (again: the last value counts, so no answer repeats a name).
    pub fn attr(mut self, name: &'static str, value: impl Into<Val>) -> Node {
        let value = value.into();
        // Lengths first: most names differ in length, and this runs for every attribute.
        match self
            .attrs
            .iter_mut()
            .find(|(k, _)| k.len() == name.len() && *k == name)
        {
            Some(slot) => slot.1 = value,
            None => self.attrs.push((name, value)),
        }
        self
    }

    /// An attribute that is left out when there is no value.
    pub fn opt<V: Into<Val>>(self, name: &'static str, value: Option<V>) -> Node {
        match value {
            Some(v) => self.attr(name, v),
            None => self,
        }
    }

    pub fn one(mut self, name: &'static str, child: Node) -> Node {
        self.kids.push((name, Kids::One(child)));
        self
    }

    pub fn many(mut self, name: &'static str, children: Vec<Node>) -> Node {
        self.kids.push((name, Kids::Many(children)));
        self
    }

    /// Scalars as repeated elements with text (`<versions>1</versions>`) or a JSON array.
    pub fn values(mut self, name: &'static str, values: Vec<Val>) -> Node {
        self.kids.push((name, Kids::Values(values)));
        self
    }

    /// A scalar as an XML element with text (`<biography>…</biography>`) and a plain JSON
    /// field: how the API gives the texts of artist and album info.
    pub fn element(mut self, name: &'static str, value: impl Into<Val>) -> Node {
        self.kids.push((name, Kids::Text(value.into())));
        self
    }

    pub fn text(mut self, text: impl Into<String>) -> Node {
        self.text = Some(text.into());
        self
    }

    fn xml(&self, name: &str, out: &mut String) {
        out.push('<');
        out.push_str(name);
        for (k, v) in &self.attrs {
            out.push(' ');
            out.push_str(k);
            out.push_str("=\"");
            escape_xml(&v.text(), out);
            out.push('"');
        }
        if self.kids.is_empty() && self.text.is_none() {
            out.push_str("/>");
            return;
        }
        out.push('>');
        if let Some(t) = &self.text {
            escape_xml(t, out);
        }
        for (k, kids) in &self.kids {
            match kids {
                Kids::One(n) => n.xml(k, out),
                Kids::Many(ns) => ns.iter().for_each(|n| n.xml(k, out)),
                Kids::Values(vs) => vs.iter().for_each(|v| text_element(k, v, out)),
                Kids::Text(v) => text_element(k, v, out),
            }
        }
        out.push_str("</");
        out.push_str(name);
        out.push('>');
    }

    /// The node as a JSON object, written straight into `out` (no tree of JSON values: a
    /// list of 500 songs is one pass).
    fn write_json(&self, out: &mut String) {
        out.push('{');
        let mut first = true;
        let mut key = |k: &str, out: &mut String| {
            if !first {
                out.push(',');
            }
            first = false;
            json_string(k, out);
            out.push(':');
        };
        for (k, v) in &self.attrs {
            key(k, out);
            v.write_json(out);
        }
        if let Some(t) = &self.text {
            key("value", out);
            json_string(t, out);
        }
        for (k, kids) in &self.kids {
            key(k, out);
            match kids {
                Kids::One(n) => n.write_json(out),
                Kids::Many(ns) => {
                    out.push('[');
                    for (i, n) in ns.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        n.write_json(out);
                    }
                    out.push(']');
                }
                Kids::Values(vs) => {
                    out.push('[');
                    for (i, v) in vs.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        v.write_json(out);
                    }
                    out.push(']');
                }
                Kids::Text(v) => v.write_json(out),
            }
        }
        out.push('}');
    }
}

/// `<name>value</name>`.
fn text_element(name: &str, value: &Val, out: &mut String) {
    out.push('<');
    out.push_str(name);
    out.push('>');
    escape_xml(&value.text(), out);
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

/// Text as XML attribute or element content: markup escaped, and the control characters that
/// XML 1.0 cannot carry at all (a tag may hold anything) dropped.
fn escape_xml(text: &str, out: &mut String) {
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
}

/// A Subsonic error: its code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub code: u32,
    pub message: String,
}

impl Error {
    pub fn generic(message: impl Into<String>) -> Error {
        Error {
            code: 0,
            message: message.into(),
        }
    }

    pub fn missing(param: &str) -> Error {
        Error {
            code: 10,
            message: format!("Required parameter is missing: {param}"),
        }
    }

    pub fn wrong_credentials() -> Error {
        Error {
            code: 40,
            message: "Wrong username or password".into(),
        }
    }

    /// Error 40 without a check: the address guessed too often ([`crate::server::logins`]).
    pub fn too_many_logins(wait: std::time::Duration) -> Error {
        Error {
            code: 40,
            message: format!(
                "Too many wrong logins from this address: try again in {} s",
                wait.as_secs() + 1
            ),
        }
    }

    pub fn not_allowed(why: impl Into<String>) -> Error {
        Error {
            code: 50,
            message: format!("Not authorized: {}", why.into()),
        }
    }

    pub fn not_found(what: &str) -> Error {
        Error {
            code: 70,
            message: format!("{what} not found"),
        }
    }
}

impl From<crate::server::listening::Refused> for Error {
    fn from(r: crate::server::listening::Refused) -> Error {
        use crate::server::listening::Refused;
        Error::generic(match r {
            Refused::Busy => "Too many changes at once: try again".to_string(),
            Refused::NotSaved(why) => format!("Not saved: {why}"),
        })
    }
}

/// How the client wants answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    Xml,
    Json,
    /// JSON wrapped in a call of this (checked) function name.
    Jsonp(String),
}

impl Format {
    pub fn of(p: &Params) -> Format {
        match p.get("f") {
            Some("json") => Format::Json,
            Some("jsonp") => match p.get("callback") {
                Some(cb)
                    if !cb.is_empty()
                        && cb.len() <= 64
                        && cb
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"_.$".contains(&b)) =>
                {
                    Format::Jsonp(cb.to_string())
                }
                _ => Format::Json,
            },
            _ => Format::Xml,
        }
    }

    /// A successful answer: `body`'s children inside `subsonic-response`.
    pub fn ok(&self, body: Node) -> Response {
        self.render("ok", body)
    }

    pub fn error(&self, e: &Error) -> Response {
        let body = Node::new().one(
            "error",
            Node::new()
                .attr("code", i64::from(e.code))
                .attr("message", e.message.as_str()),
        );
        self.render("failed", body)
    }

    fn render(&self, status: &str, body: Node) -> Response {
        let mut top = Node::new()
            .attr("status", status)
            .attr("version", API_VERSION)
            .attr("type", SERVER_TYPE)
            .attr("serverVersion", env!("CARGO_PKG_VERSION"))
            .attr("openSubsonic", true);
        top.kids = body.kids;
        let (content_type, text) = match self {
            Format::Xml => {
                let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
                top.attrs
                    .insert(0, ("xmlns", Val::from("http://subsonic.org/restapi")));
                top.xml("subsonic-response", &mut out);
                ("text/xml; charset=utf-8", out)
            }
            Format::Json | Format::Jsonp(_) => {
                let mut json = String::with_capacity(4096);
                json.push_str("{\"subsonic-response\":");
                top.write_json(&mut json);
                json.push('}');
                match self {
                    Format::Jsonp(cb) => (
                        "application/javascript; charset=utf-8",
                        format!("{cb}({json});"),
                    ),
                    _ => ("application/json; charset=utf-8", json),
                }
            }
        };
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
            text,
        )
            .into_response()
    }
}

/// The parameters of one request: the query string, then a form body (`formPost`); a name may
/// repeat.
#[derive(Debug, Clone, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn parse(query: Option<&str>, form: Option<&Bytes>) -> Params {
        let mut all: Vec<(String, String)> = query
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default();
        if let Some(body) = form {
            all.extend(form_urlencoded::parse(body).into_owned());
        }
        Params(all)
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name`, in order (`id=1&id=2`).
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn required(&self, name: &str) -> Result<&str, Error> {
        self.get(name)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| Error::missing(name))
    }

    /// A number, `default` when absent; a value that is not one is an error.
    pub fn number<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T, Error> {
        match self.get(name).map(str::trim) {
            None | Some("") => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| Error::generic(format!("Parameter {name}: not a number: {v}"))),
        }
    }

    /// A count the client asks for, within `1..=max` (0 stays 0: "none of these").
    pub fn count(&self, name: &str, default: usize, max: usize) -> Result<usize, Error> {
        Ok(self.number(name, default)?.min(max))
    }
}

/// Checks `u` with `p` (plain or `enc:` hex) or `t` + `s` (md5 of password and salt, hex)
/// against the configured accounts; the account it names. Without accounts every request
/// is refused with 40.
pub fn authenticate<'a>(accounts: &'a [Credentials], p: &Params) -> Result<&'a Credentials, Error> {
    if p.get("apiKey").is_some() {
        return Err(Error {
            code: 42,
            message: "API key authentication is not supported: use u with t and s".into(),
        });
    }
    let user = p.required("u")?;
    // Every account is compared, so that timing does not tell which users exist.
    let mut found = None;
    for account in accounts {
        if check(account, user, p)? {
            found = Some(account);
        }
    }
    found.ok_or_else(Error::wrong_credentials)
}

/// The account `user` and `password` name, for logins outside Subsonic (private mode's
/// page and HTTP Basic); every account is compared, as in [`authenticate`].
pub fn login<'a>(
    accounts: &'a [Credentials],
    user: &str,
    password: &str,
) -> Option<&'a Credentials> {
    let mut found = None;
    for account in accounts {
        let user_ok = same(user.as_bytes(), account.user.as_bytes());
        let password_ok = same(password.as_bytes(), account.password.as_bytes());
        if user_ok & password_ok {
            found = Some(account);
        }
    }
    found
}

/// Whether `user` and the request's secret are `account`'s.
fn check(account: &Credentials, user: &str, p: &Params) -> Result<bool, Error> {
    let secret_ok = if let Some(password) = p.get("p") {
        let given = match password.strip_prefix("enc:") {
            Some(hex) => decode_hex(hex).ok_or_else(Error::wrong_credentials)?,
            None => password.as_bytes().to_vec(),
        };
        same(&given, account.password.as_bytes())
    } else if let Some(token) = p.get("t") {
        let salt = p.required("s")?;
        let mut md5 = Md5::new();
        md5.update(account.password.as_bytes());
        md5.update(salt.as_bytes());
        let expected: String = md5.finalize().iter().map(|b| format!("{b:02x}")).collect();
        same(token.to_ascii_lowercase().as_bytes(), expected.as_bytes())
    } else {
        return Err(Error::missing("p, or t and s"));
    };
    // Both compared before deciding, so that timing does not tell which one was wrong.
    let user_ok = same(user.as_bytes(), account.user.as_bytes());
    Ok(user_ok & secret_ok)
}

/// Equality whose time depends only on the lengths.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Bytes from hex digits (`enc:` passwords, private mode's keys and signatures); `None` for
/// an odd length or a character that is not a hex digit.
pub fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if hex.len() % 2 != 0 {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Unix seconds as ISO 8601 in UTC (`2024-05-01T12:00:00Z`), the API's date format.
pub fn iso8601(unix_s: i64) -> String {
    let days = unix_s.div_euclid(86_400);
    let secs = unix_s.rem_euclid(86_400);
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn params(q: &str) -> Params {
        Params::parse(Some(q), None)
    }

    fn account() -> Credentials {
        Credentials {
            user: "anna".into(),
            password: "sesam".into(),
            read_only: false,
        }
    }

    fn auth(a: &Credentials, p: &Params) -> Result<(), Error> {
        authenticate(std::slice::from_ref(a), p).map(|_| ())
    }

    #[test]
    fn each_account_logs_in_as_itself() {
        let ben = Credentials {
            user: "ben".into(),
            password: "other".into(),
            read_only: true,
        };
        let both = [account(), ben];
        assert_eq!(
            authenticate(&both, &params("u=ben&p=other")).map(|a| a.user.as_str()),
            Ok("ben")
        );
        assert_eq!(
            authenticate(&both, &params("u=anna&p=sesam")).map(|a| a.user.as_str()),
            Ok("anna")
        );
        assert_eq!(
            authenticate(&both, &params("u=ben&p=sesam")).map(|_| ()),
            Err(Error::wrong_credentials())
        );
    }

    #[test]
    fn query_and_form_both_count() {
        let body = Bytes::from_static(b"id=7&u=x%20y");
        let p = Params::parse(Some("f=json&id=3"), Some(&body));
        assert_eq!(p.get("id"), Some("3"));
        assert_eq!(p.get("u"), Some("x y"));
        assert_eq!(p.required("nope"), Err(Error::missing("nope")));
        assert_eq!(p.number("id", 0i64), Ok(3));
        assert!(params("size=ten").number("size", 10usize).is_err());
        assert_eq!(params("size=9999").count("size", 10, 500), Ok(500));
    }

    #[test]
    fn token_plain_and_hex_passwords() {
        let a = account();
        // printf 'sesamc19b2d' | md5sum
        let real = "cad639914b9d812018d4937ba66435e3";
        let wrong = "cad639914b9d812018d4937ba66435e4";
        assert!(auth(&a, &params(&format!("u=anna&t={real}&s=c19b2d"))).is_ok());
        let upper = real.to_uppercase();
        assert!(auth(&a, &params(&format!("u=anna&t={upper}&s=c19b2d"))).is_ok());
        assert_eq!(
            auth(&a, &params(&format!("u=anna&t={wrong}&s=c19b2d"))),
            Err(Error::wrong_credentials())
        );
        assert_eq!(
            auth(&a, &params(&format!("u=anna&t={real}&s=other"))),
            Err(Error::wrong_credentials())
        );
        assert!(auth(&a, &params("u=anna&p=sesam")).is_ok());
        assert!(auth(&a, &params("u=anna&p=enc:736573616D")).is_ok());
        assert_eq!(
            auth(&a, &params("u=anna&p=enc:73657")),
            Err(Error::wrong_credentials())
        );
        assert_eq!(
            auth(&a, &params("u=bob&p=sesam")),
            Err(Error::wrong_credentials())
        );
        assert_eq!(auth(&a, &params("u=anna&t=abc")), Err(Error::missing("s")));
        assert_eq!(auth(&a, &params("p=sesam")), Err(Error::missing("u")));
        assert_eq!(
            authenticate(&[], &params("u=anna&p=sesam")).map(|_| ()),
            Err(Error::wrong_credentials())
        );
        assert_eq!(auth(&a, &params("apiKey=k")).map_err(|e| e.code), Err(42));
    }

    #[test]
    fn one_tree_two_formats() {
        let body = Node::new().one(
            "playlists",
            Node::new().many(
                "playlist",
                vec![
                    Node::new()
                        .attr("id", "1")
                        .attr("name", "Rock & <Roll> \"x\"\u{1}")
                        .attr("songCount", 3i64)
                        .attr("public", true),
                ],
            ),
        );
        let xml = Format::Xml.ok(body.clone());
        let json = Format::Json.ok(body);
        assert_eq!(
            xml.headers()[header::CONTENT_TYPE],
            "text/xml; charset=utf-8"
        );
        assert_eq!(
            json.headers()[header::CONTENT_TYPE],
            "application/json; charset=utf-8"
        );
        let mut out = String::new();
        Node::new()
            .attr("name", "Rock & <Roll> \"x\"\u{1}")
            .xml("p", &mut out);
        assert_eq!(out, r#"<p name="Rock &amp; &lt;Roll&gt; &quot;x&quot;"/>"#);
        let mut text = String::new();
        Node::new()
            .attr("name", "a \"b\" \\ \n\u{1}é")
            .attr("similarity", 1.0)
            .attr("distance", 0.25)
            .attr("name", "twice: the last counts")
            .many("playlist", vec![Node::new().attr("songCount", 3i64)])
            .many("empty", vec![])
            .values("versions", vec![Val::Int(1), Val::Bool(true)])
            .element("notes", "")
            .one("genre", Node::new().text("Jazz"))
            .write_json(&mut text);
        let v: Value = serde_json::from_str(&text).expect(&text);
        assert_eq!(
            v,
            serde_json::json!({"name": "twice: the last counts", "similarity": 1.0,
                "distance": 0.25, "playlist": [{"songCount": 3}], "empty": [],
                "versions": [1, true], "notes": "", "genre": {"value": "Jazz"}})
        );
        assert!(text.contains("\"similarity\":1.0"), "{text}");
        let mut escaped = String::new();
        json_string("a \"b\" \\ \n\u{1}é", &mut escaped);
        assert_eq!(
            serde_json::from_str::<String>(&escaped).unwrap(),
            "a \"b\" \\ \n\u{1}é"
        );
        let mut out = String::new();
        Node::new()
            .values("versions", vec![Val::Int(1), Val::Int(2)])
            .one("genre", Node::new().attr("songCount", 2i64).text("Jazz"))
            .element("notes", "a < b")
            .xml("e", &mut out);
        assert_eq!(
            out,
            r#"<e><versions>1</versions><versions>2</versions><genre songCount="2">Jazz</genre><notes>a &lt; b</notes></e>"#
        );
    }

    #[test]
    fn jsonp_needs_a_plain_callback_name() {
        assert_eq!(
            Format::of(&params("f=jsonp&callback=cb_1")),
            Format::Jsonp("cb_1".into())
        );
        assert_eq!(
            Format::of(&params("f=jsonp&callback=alert(1)")),
            Format::Json
        );
        assert_eq!(Format::of(&params("f=xml")), Format::Xml);
    }

    #[test]
    fn dates_in_utc() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(iso8601(1_714_564_800), "2024-05-01T12:00:00Z");
    }
}
