//! Connecting to a coordinator: URL, TLS and the bearer token.

use std::path::{Path, PathBuf};

use candor_proto::auth::{Attach, Token};
use candor_proto::v1::sweeps_client::SweepsClient;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

use crate::exit::{self, Coded};

#[derive(clap::Args, Clone)]
pub struct ClientArgs {
    /// The coordinator's URL (http://HOST:PORT, or https:// for TLS).
    #[arg(long, env = "CANDOR_COORDINATOR", hide_env_values = true, value_hint = clap::ValueHint::Url)]
    pub coordinator: String,
    /// Read the bearer token from this file instead of the CANDOR_TOKEN environment variable.
    #[arg(long, env = "CANDOR_TOKEN_FILE", hide_env_values = true)]
    pub token_file: Option<PathBuf>,
    /// A PEM CA certificate to trust for an https:// coordinator (default: the public web roots).
    #[arg(long, env = "CANDOR_TLS_CA", hide_env_values = true)]
    pub tls_ca: Option<PathBuf>,
}

/// A failure to connect, with the exit code it maps to.
pub struct Fail(pub i32, pub String);

/// The coordinator flags of a command that needs a coordinator only for
/// some of its arguments (a sweep id rather than a local file).
#[derive(clap::Args, Clone, Debug)]
pub struct MaybeClientArgs {
    /// The coordinator, for a sweep id (http://HOST:PORT or https://).
    #[arg(long, env = "CANDOR_COORDINATOR", hide_env_values = true, value_hint = clap::ValueHint::Url)]
    pub coordinator: Option<String>,
    /// Read the coordinator's bearer token from this file instead of CANDOR_TOKEN.
    #[arg(long, env = "CANDOR_TOKEN_FILE", hide_env_values = true)]
    pub token_file: Option<PathBuf>,
    /// A PEM CA certificate to trust for an https:// coordinator.
    #[arg(long, env = "CANDOR_TLS_CA", hide_env_values = true)]
    pub tls_ca: Option<PathBuf>,
}

impl MaybeClientArgs {
    /// The client flags, or `missing` as the error when no coordinator was given.
    pub fn client(&self, missing: impl FnOnce() -> String) -> Result<ClientArgs, Fail> {
        let Some(url) = &self.coordinator else {
            return Err(Fail(exit::BAD_INPUT, missing()));
        };
        Ok(ClientArgs {
            coordinator: url.clone(),
            token_file: self.token_file.clone(),
            tls_ca: self.tls_ca.clone(),
        })
    }
}

impl ClientArgs {
    pub fn token(&self) -> Result<Token, Fail> {
        Token::load(self.token_file.as_deref()).map_err(|e| Fail(exit::BAD_INPUT, e))
    }

    /// A channel that connects on first use and reconnects after failures.
    pub fn channel(&self) -> Result<Channel, Fail> {
        let url = self.coordinator.trim().to_string();
        let bad = |m: String| Fail(exit::BAD_INPUT, format!("--coordinator {url}: {m}"));
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(bad("must start with http:// or https://".into()));
        }
        let mut ep = Endpoint::from_shared(url.clone())
            .map_err(|e| bad(e.to_string()))?
            .connect_timeout(std::time::Duration::from_secs(5))
            .http2_keep_alive_interval(std::time::Duration::from_secs(20))
            .keep_alive_while_idle(true);
        if url.starts_with("https://") {
            let mut tls = ClientTlsConfig::new().with_webpki_roots();
            if let Some(ca) = &self.tls_ca {
                let pem =
                    std::fs::read(ca).map_err(|e| Fail(exit::BAD_INPUT, format!("--tls-ca {}: {e}", ca.display())))?;
                tls = tls.ca_certificate(Certificate::from_pem(pem));
            }
            ep = ep.tls_config(tls).map_err(|e| bad(e.to_string()))?;
        }
        Ok(ep.connect_lazy())
    }

    pub fn sweeps(&self) -> Result<SweepsClient<InterceptedService<Channel, Attach>>, Fail> {
        let token = self.token()?;
        Ok(SweepsClient::with_interceptor(self.channel()?, Attach::new(&token))
            .max_decoding_message_size(512 * 1024 * 1024)
            .max_encoding_message_size(512 * 1024 * 1024))
    }
}

/// The exit code and message for a failed RPC.
pub fn rpc_failure(what: &str, s: &tonic::Status) -> Fail {
    use tonic::Code;
    let code = s.exit_code();
    let msg = match s.code() {
        Code::Unauthenticated => format!("{what}: the coordinator refused the token ({})", s.message()),
        Code::Unavailable => format!("{what}: the coordinator is unavailable: {}", s.message()),
        _ => format!("{what}: {}", s.message()),
    };
    Fail(code, msg)
}

/// The Redis URL with the password from `file`, or else from the
/// CANDOR_REDIS_PASSWORD environment variable, added to it (percent-encoded).
/// With neither, the URL is used as given.
pub fn redis_url(url: &str, file: Option<&Path>) -> Result<String, String> {
    let password = match file {
        Some(p) => Some(read_secret(p).map_err(|e| format!("--redis-password-file: {e}"))?),
        None => std::env::var("CANDOR_REDIS_PASSWORD").ok().filter(|p| !p.is_empty()),
    };
    let Some(password) = password else {
        return Ok(url.to_string());
    };
    let shown = redact(url);
    let Some(s) = url.find("://") else {
        return Err(format!("--redis {shown}: not a redis:// or rediss:// URL"));
    };
    let rest = &url[s + 3..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    if rest[..authority_end].contains('@') {
        return Err(format!(
            "--redis {shown}: the URL carries a password already; give it once (in the URL or in CANDOR_REDIS_PASSWORD / --redis-password-file)"
        ));
    }
    let mut encoded = String::with_capacity(password.len());
    for b in password.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    Ok(format!("{}://:{encoded}@{rest}", &url[..s]))
}

/// A secret from a file: at most 64 KiB, one trailing newline dropped.
fn read_secret(p: &Path) -> Result<String, String> {
    let text = candor_core::spec::read_limited(p, 64 * 1024, "password file")?;
    let text = text.strip_suffix('\n').unwrap_or(&text);
    let text = text.strip_suffix('\r').unwrap_or(text);
    if text.is_empty() {
        return Err("empty".into());
    }
    Ok(text.to_string())
}

/// A Redis URL with any password hidden, for messages.
pub fn redact(url: &str) -> String {
    candor_core::redact::credentials(url)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_password_file_is_added_to_the_url_encoded() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("pw");
        std::fs::write(&f, "p@ss:w/rd\n").unwrap();
        assert_eq!(
            super::redis_url("redis://10.0.0.1:6379/0", Some(&f)).unwrap(),
            "redis://:p%40ss%3Aw%2Frd@10.0.0.1:6379/0"
        );
        assert_eq!(
            super::redis_url("rediss://h:6380", Some(&f)).unwrap(),
            "rediss://:p%40ss%3Aw%2Frd@h:6380"
        );
        let twice = super::redis_url("redis://:x@h:6379", Some(&f)).unwrap_err();
        assert!(twice.contains("password already") && !twice.contains("p@ss"), "{twice}");
        std::fs::write(&f, "").unwrap();
        assert!(super::redis_url("redis://h", Some(&f)).unwrap_err().contains("empty"));
    }
}
