//! Bearer tokens. Every RPC carries `authorization: Bearer <token>`; the
//! server refuses any other with `Unauthenticated`. A token comes from the
//! `CANDOR_TOKEN` environment variable or from a file, and is never printed.

use std::fmt;
use std::path::Path;

use tonic::metadata::MetadataValue;
use tonic::service::Interceptor;
use tonic::{Request, Status};

/// Environment variable holding the token.
pub const TOKEN_ENV: &str = "CANDOR_TOKEN";
/// The longest token file read.
const MAX_TOKEN_BYTES: u64 = 4096;

/// A secret token. Its `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl Token {
    /// The token from `file` if given, else from `CANDOR_TOKEN`. Errors name
    /// the file or the variable, never the token.
    pub fn load(file: Option<&Path>) -> Result<Token, String> {
        let raw = match file {
            Some(p) => {
                let meta = std::fs::metadata(p).map_err(|e| format!("token file {}: {e}", p.display()))?;
                if meta.len() > MAX_TOKEN_BYTES {
                    return Err(format!(
                        "token file {} is larger than {MAX_TOKEN_BYTES} bytes",
                        p.display()
                    ));
                }
                std::fs::read_to_string(p).map_err(|e| format!("token file {}: {e}", p.display()))?
            }
            None => std::env::var(TOKEN_ENV).map_err(|_| format!("no token: set {TOKEN_ENV} or pass --token-file"))?,
        };
        let t = raw.trim();
        if t.is_empty() {
            return Err(match file {
                Some(p) => format!("token file {} is empty", p.display()),
                None => format!("{TOKEN_ENV} is empty"),
            });
        }
        if !t.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("the token must be printable ASCII without spaces".into());
        }
        Ok(Token(t.to_string()))
    }

    /// A one-way digest of the token under `domain` (hex): what a credential
    /// derived from it (the web view's cookie) holds instead of the token.
    pub fn digest(&self, domain: &str) -> String {
        candor_core::hash::hex(&candor_core::hash::parts(domain, &[self.0.as_bytes()]))
    }

    pub fn new(t: impl Into<String>) -> Token {
        Token(t.into())
    }

    /// Whether `presented` is the token, compared in constant time.
    pub fn matches(&self, presented: &[u8]) -> bool {
        same(self.0.as_bytes(), presented)
    }
}

/// Whether `a` and `b` are equal, in time independent of where they differ
/// (it depends on `a`'s length only).
pub fn same(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    for (i, x) in a.iter().enumerate() {
        diff |= x ^ b.get(i).copied().unwrap_or(0);
    }
    diff == 0
}

/// Server side: refuses requests without the right bearer token.
#[derive(Clone)]
pub struct Check(pub Token);

impl Interceptor for Check {
    fn call(&mut self, req: Request<()>) -> Result<Request<()>, Status> {
        let presented = req
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        match presented {
            Some(p) if self.0.matches(p.as_bytes()) => Ok(req),
            Some(_) => Err(Status::unauthenticated("wrong token")),
            None => Err(Status::unauthenticated("missing bearer token")),
        }
    }
}

/// Client side: adds the bearer token to every request.
#[derive(Clone)]
pub struct Attach(MetadataValue<tonic::metadata::Ascii>);

impl Attach {
    pub fn new(token: &Token) -> Attach {
        let mut v: MetadataValue<_> = format!("Bearer {}", token.0)
            .parse()
            .expect("tokens are checked to be printable ASCII");
        v.set_sensitive(true);
        Attach(v)
    }
}

impl Interceptor for Attach {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, Status> {
        req.metadata_mut().insert("authorization", self.0.clone());
        Ok(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(header: Option<&str>) -> Result<(), tonic::Code> {
        let mut req = Request::new(());
        if let Some(h) = header {
            req.metadata_mut().insert("authorization", h.parse().unwrap());
        }
        Check(Token::new("s3cret")).call(req).map(|_| ()).map_err(|s| s.code())
    }

    #[test]
    fn only_the_right_token_passes() {
        assert_eq!(check(Some("Bearer s3cret")), Ok(()));
        assert_eq!(check(Some("Bearer s3cre")), Err(tonic::Code::Unauthenticated));
        assert_eq!(check(Some("Bearer s3cret2")), Err(tonic::Code::Unauthenticated));
        assert_eq!(check(Some("s3cret")), Err(tonic::Code::Unauthenticated));
        assert_eq!(check(None), Err(tonic::Code::Unauthenticated));
    }

    #[test]
    fn a_token_with_256_more_bytes_is_refused() {
        // Lengths that differ by a multiple of 256 once compared equal when
        // the length difference was truncated to a byte.
        let longer = format!("Bearer s3cret{}", "x".repeat(256));
        assert_eq!(check(Some(&longer)), Err(tonic::Code::Unauthenticated));
        assert!(!same(b"ab", &[b'a', b'b', 0]));
    }

    #[test]
    fn the_token_never_shows_in_debug_output() {
        let t = Token::new("s3cret");
        assert!(!format!("{t:?}").contains("s3cret"));
    }
}
