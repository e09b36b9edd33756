//! Who may see the view: with a token, only requests that carry it, as
//! `Authorization: Bearer` (checked as the gRPC API checks it, in
//! constant time) or as the cookie the login form sets. The cookie holds a
//! hash of the token, not the token, so it never shows it; it is HttpOnly,
//! SameSite=Strict and sent to `/view` only. Without a token, everyone may.

use axum::http::{HeaderMap, header};
use candor_proto::auth::{Token, same};

/// The cookie's name.
const COOKIE: &str = "candor_view";
/// How long a browser keeps the cookie: 12 hours.
const COOKIE_MAX_AGE: u64 = 12 * 3600;
/// The largest login form read.
pub const MAX_FORM_BYTES: usize = 8 * 1024;

/// The token the view asks for, if any.
pub struct Auth(Option<Secret>);

struct Secret {
    token: Token,
    /// The cookie's value: a hash of the token.
    cookie: String,
}

impl Auth {
    /// Everyone may see the view.
    pub fn open() -> Auth {
        Auth(None)
    }

    /// Only who has `token` may.
    pub fn token(token: &Token) -> Auth {
        let cookie = token.digest("candor view cookie");
        Auth(Some(Secret {
            token: token.clone(),
            cookie,
        }))
    }

    pub fn required(&self) -> bool {
        self.0.is_some()
    }

    /// Whether the request carries the token or the login cookie.
    pub fn admits(&self, headers: &HeaderMap) -> bool {
        let Some(s) = &self.0 else { return true };
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if let Some(b) = bearer {
            return s.checks(b);
        }
        cookies(headers).any(|(name, value)| name == COOKIE && same(value.as_bytes(), s.cookie.as_bytes()))
    }

    /// The Set-Cookie header for a login with `presented`, if it is the token.
    pub fn login(&self, presented: &str) -> Option<String> {
        let s = self.0.as_ref()?;
        s.checks(presented).then(|| {
            format!(
                "{COOKIE}={}; Path=/view; HttpOnly; SameSite=Strict; Max-Age={COOKIE_MAX_AGE}",
                s.cookie
            )
        })
    }
}

impl Secret {
    /// Whether `presented` is the token.
    fn checks(&self, presented: &str) -> bool {
        self.token.matches(presented.as_bytes())
    }
}

/// The request's cookies as (name, value).
fn cookies(headers: &HeaderMap) -> impl Iterator<Item = (&str, &str)> {
    headers
        .get_all(header::COOKIE)
        .into_iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
}

/// Whether a form POST comes from a page of this server: as the browser
/// says (`Sec-Fetch-Site`), else by its Origin, when it names one, being the
/// host the request was sent to. Clients that are not browsers send neither.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let get = |h: &str| headers.get(h).and_then(|v| v.to_str().ok());
    if let Some(site) = get("sec-fetch-site") {
        return site == "same-origin";
    }
    match get("origin") {
        None | Some("null") => true,
        Some(origin) => {
            let origin_host = origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"));
            origin_host.is_some() && origin_host == get("host")
        }
    }
}

/// The login form's fields.
#[derive(Default)]
pub struct Form {
    pub token: String,
    pub next: String,
}

impl Form {
    /// Reads `application/x-www-form-urlencoded` text; unknown fields are ignored.
    pub fn parse(body: &[u8]) -> Form {
        let mut f = Form::default();
        for pair in body.split(|&b| b == b'&') {
            let (k, v) = match pair.iter().position(|&b| b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &[][..]),
            };
            match k {
                b"token" => f.token = decode(v),
                b"next" => f.next = decode(v),
                _ => {}
            }
        }
        f
    }
}

/// Percent-decodes a form value (`+` is a space); bad escapes stay as written.
fn decode(v: &[u8]) -> String {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        let escaped = (v[i] == b'%')
            .then(|| v.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| Some(hex(h[0])? << 4 | hex(h[1])?));
        match (v[i], escaped) {
            (_, Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b'+', None) => {
                out.push(b' ');
                i += 1;
            }
            (b, None) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Where a login goes on to: a view page, else the list.
pub fn safe_next(next: &str) -> &str {
    let ok = (next == "/view" || next.starts_with("/view/"))
        && next.len() <= 200
        && next.bytes().all(|b| b.is_ascii_alphanumeric() || b"/-_".contains(&b));
    if ok { next } else { "/view" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_decode_and_next_stays_in_the_view() {
        let f = Form::parse(b"token=a%2Bb+c%3D&next=%2Fview%2Fsweeps%2Fab12&x=1");
        assert_eq!(f.token, "a+b c=");
        assert_eq!(f.next, "/view/sweeps/ab12");
        assert_eq!(safe_next("/view/sweeps/ab12"), "/view/sweeps/ab12");
        for bad in [
            "//evil.example/view",
            "https://evil.example/",
            "/viewer",
            "/view/../x",
            "",
        ] {
            assert_eq!(safe_next(bad), "/view", "{bad}");
        }
        assert_eq!(Form::parse(b"token=%zz%4").token, "%zz%4");
    }

    #[test]
    fn logins_from_other_sites_are_refused() {
        let h = |pairs: &[(&'static str, &str)]| {
            let mut m = HeaderMap::new();
            for (k, v) in pairs {
                m.insert(*k, v.parse().unwrap());
            }
            m
        };
        assert!(same_origin(&h(&[])), "not a browser");
        assert!(same_origin(&h(&[
            ("sec-fetch-site", "same-origin"),
            ("origin", "null")
        ])));
        assert!(!same_origin(&h(&[("sec-fetch-site", "cross-site")])));
        assert!(same_origin(&h(&[
            ("origin", "http://127.0.0.1:80"),
            ("host", "127.0.0.1:80")
        ])));
        assert!(!same_origin(&h(&[
            ("origin", "http://evil.example"),
            ("host", "127.0.0.1:80")
        ])));
    }

    #[test]
    fn only_the_token_or_its_cookie_is_admitted() {
        let auth = Auth::token(&Token::new("s3cret"));
        let with = |k: header::HeaderName, v: &str| {
            let mut h = HeaderMap::new();
            h.insert(k, v.parse().unwrap());
            h
        };
        assert!(auth.admits(&with(header::AUTHORIZATION, "Bearer s3cret")));
        assert!(!auth.admits(&with(header::AUTHORIZATION, "Bearer s3cre")));
        assert!(!auth.admits(&HeaderMap::new()));
        let set = auth.login("s3cret").expect("the token logs in");
        assert!(!set.contains("s3cret"), "the cookie is not the token");
        assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Path=/view"));
        let value = set.split(';').next().unwrap();
        assert!(auth.admits(&with(header::COOKIE, &format!("other=1; {value}"))));
        assert!(!auth.admits(&with(header::COOKIE, "candor_view=00")));
        assert!(auth.login("wrong").is_none());
        assert!(Auth::open().admits(&HeaderMap::new()));
    }
}
