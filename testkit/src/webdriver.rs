//! A headless Chromium driven over W3C WebDriver, for tests that click
//! through a page as a user does: Debian's `chromedriver` on a free
//! loopback port, spoken to with the few commands a test needs (navigate,
//! find by CSS, click, type, read text, switch frames), over plain HTTP/1.1
//! on `std::net`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::{Sandbox, eventually, free_port};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
/// The key WebDriver names an element by in JSON.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
/// How long one WebDriver command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// A WebDriver error: its code (`no such element`, `stale element
/// reference`, …) and message.
#[derive(Debug, Clone)]
pub struct WdError {
    pub error: String,
    pub message: String,
}

/// A headless Chromium session; the browser and its driver stop when dropped.
pub struct Browser {
    driver: Child,
    port: u16,
    session: String,
}

/// An element of the current page (or frame).
pub struct Element<'a> {
    browser: &'a Browser,
    id: String,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium whose profile is in `sb`.
    pub fn start(sb: &Sandbox) -> Browser {
        for (path, package) in [(CHROMEDRIVER, "chromium-driver"), (CHROMIUM, "chromium")] {
            assert!(
                Path::new(path).exists(),
                "{path} is missing: install the Debian package `{package}` (scripts/check installs it), \
                 then run this test again"
            );
        }
        let port = free_port();
        let log = sb.join("chromedriver.log");
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let mut b = Browser {
            driver,
            port,
            session: String::new(),
        };
        eventually(Duration::from_secs(20), "chromedriver to answer", || {
            b.call("GET", "/status", None)
                .is_ok_and(|v| v["ready"].as_bool() == Some(true))
        });
        let profile = sb.join("chromium-profile");
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    "--disable-background-networking", "--disable-extensions", "--disable-dev-shm-usage",
                    "--window-size=1280,1000", format!("--user-data-dir={}", profile.display()),
                ],
            },
        }}});
        let v = b
            .call("POST", "/session", Some(caps))
            .unwrap_or_else(|e| panic!("chromedriver cannot start Chromium: {e:?} (see {})", log.display()));
        b.session = v["sessionId"].as_str().expect("a session id").to_string();
        b
    }

    /// Opens `url` and waits for its document to load.
    pub fn goto(&self, url: &str) {
        self.session_call("POST", "/url", json!({ "url": url }));
    }

    /// The current page's address.
    pub fn url(&self) -> String {
        self.session_call("GET", "/url", Value::Null)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The current page's (or frame's) HTML as the browser serializes it now.
    pub fn source(&self) -> String {
        self.session_call("GET", "/source", Value::Null)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The first element matching `css`, if any.
    pub fn find(&self, css: &str) -> Option<Element<'_>> {
        let body = json!({ "using": "css selector", "value": css });
        match self.call("POST", &self.path("/element"), Some(body)) {
            Ok(v) => Some(self.element(&v)),
            Err(e) if e.error == "no such element" => None,
            Err(e) => panic!("find {css}: {e:?}"),
        }
    }

    /// Every element matching `css`.
    pub fn find_all(&self, css: &str) -> Vec<Element<'_>> {
        let body = json!({ "using": "css selector", "value": css });
        let v = self.session_call("POST", "/elements", body);
        v.as_array()
            .map(|a| a.iter().map(|e| self.element(e)).collect())
            .unwrap_or_default()
    }

    /// The element matching `css`, waiting up to `limit` for it to appear.
    pub fn wait_for(&self, css: &str, limit: Duration) -> Element<'_> {
        let mut found = None;
        eventually(limit, &format!("`{css}`"), || {
            found = self.find(css);
            found.is_some()
        });
        found.expect("eventually returns once found")
    }

    /// The text of the first element matching `css`, if there is one now.
    pub fn text_of(&self, css: &str) -> Option<String> {
        self.find(css)?.try_text().ok()
    }

    /// Switches into the frame `frame` of the current page, or back to the
    /// top-level page with None.
    pub fn frame(&self, frame: Option<&Element<'_>>) {
        let id = frame.map_or(Value::Null, |e| json!({ ELEMENT: e.id }));
        self.session_call("POST", "/frame", json!({ "id": id }));
    }

    /// Runs `script` (a function body) in the page and answers what it returns.
    pub fn script(&self, script: &str) -> Value {
        self.session_call("POST", "/execute/sync", json!({ "script": script, "args": [] }))
    }

    fn element(&self, v: &Value) -> Element<'_> {
        Element {
            browser: self,
            id: v[ELEMENT].as_str().expect("an element reference").to_string(),
        }
    }

    fn path(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    fn session_call(&self, method: &str, rest: &str, body: Value) -> Value {
        let body = (!body.is_null()).then_some(body);
        self.call(method, &self.path(rest), body)
            .unwrap_or_else(|e| panic!("{method} {rest}: {e:?}"))
    }

    /// One WebDriver command: its `value`, or its error.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, WdError> {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let (status, text) = request(self.port, method, path, &body).map_err(|e| WdError {
            error: "io".into(),
            message: e.to_string(),
        })?;
        let v: Value = serde_json::from_str(&text).map_err(|e| WdError {
            error: "bad response".into(),
            message: format!("{e}: {text}"),
        })?;
        let value = v.get("value").cloned().unwrap_or(Value::Null);
        match value.get("error").and_then(Value::as_str) {
            Some(error) if status >= 400 => Err(WdError {
                error: error.to_string(),
                message: value["message"].as_str().unwrap_or_default().to_string(),
            }),
            _ => Ok(value),
        }
    }
}

impl Element<'_> {
    pub fn click(&self) {
        self.browser
            .session_call("POST", &format!("/element/{}/click", self.id), json!({}));
    }

    /// Types `text` into the element.
    pub fn type_text(&self, text: &str) {
        let path = format!("/element/{}/value", self.id);
        self.browser.session_call("POST", &path, json!({ "text": text }));
    }

    /// The element's rendered text.
    pub fn text(&self) -> String {
        self.try_text().unwrap_or_else(|e| panic!("element text: {e:?}"))
    }

    /// The element's rendered text, or why not (a page that changed under it).
    pub fn try_text(&self) -> Result<String, WdError> {
        let path = self.browser.path(&format!("/element/{}/text", self.id));
        self.browser
            .call("GET", &path, None)
            .map(|v| v.as_str().unwrap_or_default().to_string())
    }

    /// The element's attribute `name`, if it has one.
    pub fn attribute(&self, name: &str) -> Option<String> {
        let v = self
            .browser
            .session_call("GET", &format!("/element/{}/attribute/{name}", self.id), Value::Null);
        v.as_str().map(str::to_string)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.call("DELETE", &self.path(""), None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// One HTTP/1.1 request to 127.0.0.1:`port`: (status, body). The body is
/// read by its length (chromedriver keeps the connection open).
fn request(port: u16, method: &str, path: &str, body: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(COMMAND_TIMEOUT))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    let mut raw = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    let head_end = loop {
        if let Some(at) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = s.read(&mut buf)?;
        if n == 0 {
            return Err(bad("closed before the headers ended"));
        }
        raw.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).to_ascii_lowercase();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| bad("no status"))?;
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok());
    let chunked = head.contains("transfer-encoding: chunked");
    let mut body = raw.split_off(head_end);
    loop {
        let complete = match length {
            Some(n) => body.len() >= n,
            None if chunked => dechunk(&body).is_some(),
            None => false,
        };
        if complete {
            break;
        }
        let n = s.read(&mut buf)?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&buf[..n]);
    }
    if chunked {
        body = dechunk(&body).ok_or_else(|| bad("bad chunked body"))?;
    } else if let Some(n) = length {
        body.truncate(n);
    }
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// A chunked body's content, once it is whole.
fn dechunk(mut b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = b.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&b[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        b = &b[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(b.get(..size)?);
        b = b.get(size + 2..)?;
    }
}
