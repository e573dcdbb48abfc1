//! The `subsonic` target: a Subsonic request's parameters ([`Params::parse`], the query string
//! and a `formPost` body) and the credential check ([`authenticate`]) every `/rest/` call
//! passes, against two configured accounts.
//!
//! In: fuzz bytes read as `QUERY`, or `QUERY\0FORM`: the query string (lossily as UTF-8) and
//! the form body (any bytes). Out: nothing, or a panic naming the property that failed:
//! - a login succeeds exactly when [`expected`] says: `u` is an account's user and `p` its
//!   password (plain, or `enc:` and its hex), or `t` is the hex md5 of its password and a
//!   non-empty `s`; so a wrong or random secret never logs in, and a right one always does;
//! - a refusal is error 10 (missing), 40 (wrong) or 42 (`apiKey`), 42 exactly with `apiKey`;
//! - the query's values come before the form's, in order, and [`Params::get`] is the first;
//! - a JSONP callback is 1 to 64 of `[A-Za-z0-9_.$]`; a count stays within its maximum.
//!
//! Shared by `fuzz/fuzz_targets/subsonic.rs` (libFuzzer) and `tests/fuzz.rs` (stable).

use std::sync::LazyLock;

use axum::body::Bytes;
use md5::{Digest, Md5};
use playlista::server::Credentials;
use playlista::server::subsonic::protocol::{Format, Params, authenticate};

/// The configured accounts: a plain one and one whose password needs URL encoding.
static ACCOUNTS: LazyLock<[Credentials; 2]> = LazyLock::new(|| {
    let account = |user: &str, password: &str, read_only| Credentials {
        user: user.into(),
        password: password.into(),
        read_only,
    };
    [
        account("anna", "sesam", false),
        account("ben", "Öl & Brot=1%", true),
    ]
});

/// Names whose order across query and form is checked.
const NAMES: [&str; 8] = ["u", "p", "t", "s", "f", "id", "callback", "apiKey"];

pub fn run(data: &[u8]) {
    let (query, form) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], Some(Bytes::copy_from_slice(&data[i + 1..]))),
        None => (data, None),
    };
    let query = String::from_utf8_lossy(query);
    let params = Params::parse(Some(&query), form.as_ref());

    let from_query = Params::parse(Some(&query), None);
    let from_form = Params::parse(None, form.as_ref());
    for name in NAMES {
        let mut both = from_query.all(name);
        both.extend(from_form.all(name));
        assert_eq!(
            params.all(name),
            both,
            "{name}: query values, then form values"
        );
        assert_eq!(params.get(name), both.first().copied(), "{name}: the first");
    }

    let got = authenticate(&ACCOUNTS[..], &params);
    let want = expected(&params);
    match &got {
        Ok(account) => assert_eq!(
            Some(account.user.as_str()),
            want,
            "logged in as {} from {query:?} + {form:?}",
            account.user
        ),
        Err(e) => {
            assert_eq!(
                want, None,
                "refused ({}) from {query:?} + {form:?}",
                e.message
            );
            assert!(matches!(e.code, 10 | 40 | 42), "error {}", e.code);
            assert_eq!(
                e.code == 42,
                params.get("apiKey").is_some(),
                "error {}",
                e.code
            );
        }
    }

    if let Format::Jsonp(callback) = Format::of(&params) {
        assert!(
            (1..=64).contains(&callback.len())
                && callback
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.$".contains(&b)),
            "JSONP callback {callback:?}"
        );
    }
    if let Ok(n) = params.count("size", 10, 500) {
        assert!(n <= 500, "size {n}");
    }
    let _ = params.number::<i64>("offset", 0);
}

/// The user the request's credentials name, by the rules of the Subsonic API, or `None`.
fn expected(p: &Params) -> Option<&'static str> {
    if p.get("apiKey").is_some() {
        return None;
    }
    let user = p.get("u")?;
    let account = ACCOUNTS.iter().find(|a| a.user == user)?;
    let secret_ok = match (p.get("p"), p.get("t"), p.get("s")) {
        (Some(password), ..) => match password.strip_prefix("enc:") {
            Some(hex) => unhex(hex).is_some_and(|bytes| bytes == account.password.as_bytes()),
            None => password == account.password,
        },
        (None, Some(token), Some(salt)) if !salt.is_empty() => {
            let digest = Md5::new()
                .chain_update(account.password.as_bytes())
                .chain_update(salt.as_bytes())
                .finalize();
            unhex(token).is_some_and(|bytes| bytes[..] == digest[..])
        }
        _ => false,
    };
    secret_ok.then_some(account.user.as_str())
}

/// Hex digits, two per byte, either case.
fn unhex(hex: &str) -> Option<Vec<u8>> {
    let digit = |c: u8| char::from(c).to_digit(16);
    let bytes = hex.as_bytes();
    if bytes.len() % 2 != 0 {
        return None;
    }
    bytes
        .chunks(2)
        .map(|pair| Some((digit(pair[0])? * 16 + digit(pair[1])?) as u8))
        .collect()
}
