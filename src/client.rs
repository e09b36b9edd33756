//! Connecting to a coordinator: URL, TLS and the bearer token.

use std::path::PathBuf;

use candor_proto::auth::{Attach, Token};
use candor_proto::v1::sweeps_client::SweepsClient;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

use crate::exit;

#[derive(clap::Args, Clone)]
pub struct ClientArgs {
    /// The coordinator's URL (http://HOST:PORT, or https:// for TLS).
    #[arg(long, env = "CANDOR_COORDINATOR", hide_env_values = true)]
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
    let code = match s.code() {
        Code::InvalidArgument => exit::BAD_INPUT,
        Code::Unauthenticated | Code::PermissionDenied => exit::ACCESS,
        Code::NotFound => exit::NOT_FOUND,
        Code::Unavailable => exit::UNAVAILABLE,
        _ => exit::FAILURE,
    };
    let msg = match s.code() {
        Code::Unauthenticated => format!("{what}: the coordinator refused the token ({})", s.message()),
        Code::Unavailable => format!("{what}: the coordinator is unavailable: {}", s.message()),
        _ => format!("{what}: {}", s.message()),
    };
    Fail(code, msg)
}

/// A Redis URL with any password hidden, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***@{}", &url[..s], &url[at + 1..]),
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_hidden() {
        assert_eq!(
            super::redact("redis://:hunter2@10.0.0.1:6379/0"),
            "redis://***@10.0.0.1:6379/0"
        );
        assert_eq!(super::redact("rediss://u:p@h"), "rediss://***@h");
        assert_eq!(super::redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
    }
}
