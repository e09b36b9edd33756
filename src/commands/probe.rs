//! `candor probe [URL]`: a health check for containers whose image has no
//! shell or curl. GETs the URL over plain HTTP on loopback or any host and
//! exits 0 on a 2xx answer.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::exit;

#[derive(clap::Args)]
pub struct ProbeArgs {
    /// http://HOST:PORT/PATH to GET [default: http://127.0.0.1:<port of CANDOR_HTTP>/healthz]
    url: Option<String>,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=300))]
    timeout_secs: u64,
}

/// The largest answer read (the status line is all that matters).
const MAX_ANSWER_BYTES: u64 = 64 * 1024;

fn default_url() -> Result<String, String> {
    let http = std::env::var("CANDOR_HTTP")
        .map_err(|_| "give a URL, or set CANDOR_HTTP to the service's HTTP address".to_string())?;
    let addr: SocketAddr = http
        .parse()
        .map_err(|_| format!("CANDOR_HTTP `{http}` is not an address such as 0.0.0.0:9090"))?;
    Ok(format!("http://127.0.0.1:{}/healthz", addr.port()))
}

/// Splits http://HOST:PORT/PATH into (HOST:PORT, /PATH).
fn split(url: &str) -> Result<(String, String), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{url}: only http:// URLs can be probed"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() || authority.contains('@') {
        return Err(format!("{url}: expected http://HOST:PORT/PATH"));
    }
    let authority = if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    Ok((authority, path.to_string()))
}

async fn get(authority: &str, path: &str) -> Result<String, String> {
    let mut s = tokio::net::TcpStream::connect(authority)
        .await
        .map_err(|e| format!("cannot connect to {authority}: {e}"))?;
    let host = authority.rsplit_once(':').map_or(authority, |(h, _)| h);
    let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nUser-Agent: candor-probe\r\n\r\n");
    s.write_all(req.as_bytes()).await.map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    s.take(MAX_ANSWER_BYTES)
        .read_to_end(&mut buf)
        .await
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&buf);
    let status = text.lines().next().unwrap_or_default().to_string();
    let code: u16 = status
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("not an HTTP answer: `{status}`"))?;
    if (200..300).contains(&code) {
        Ok(status)
    } else {
        let body = text.split("\r\n\r\n").nth(1).unwrap_or_default().trim();
        Err(format!("{status}: {body}"))
    }
}

pub async fn probe(a: ProbeArgs) -> i32 {
    let url = match a.url.map_or_else(default_url, Ok) {
        Ok(u) => u,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::BAD_INPUT;
        }
    };
    let (authority, path) = match split(&url) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::BAD_INPUT;
        }
    };
    match tokio::time::timeout(Duration::from_secs(a.timeout_secs), get(&authority, &path)).await {
        Ok(Ok(status)) => {
            println!("{url}: {status}");
            exit::OK
        }
        Ok(Err(e)) => {
            eprintln!("error: {url}: {e}");
            exit::FAILURE
        }
        Err(_) => {
            eprintln!("error: {url}: no answer within {} s", a.timeout_secs);
            exit::UNAVAILABLE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn urls_split_into_authority_and_path() {
        assert_eq!(
            split("http://127.0.0.1:9090/readyz").unwrap(),
            ("127.0.0.1:9090".into(), "/readyz".into())
        );
        assert_eq!(split("http://sim:8089").unwrap(), ("sim:8089".into(), "/".into()));
        assert_eq!(
            split("http://localhost/x").unwrap(),
            ("localhost:80".into(), "/x".into())
        );
        assert!(split("https://h/x").unwrap_err().contains("only http://"));
        assert!(split("http:///x").is_err());
    }
}
