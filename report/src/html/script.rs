//! The page's one script and what it reads: the Content-Security-Policy
//! that lets only this script run (by its hash), and the JSON data block,
//! written so that no text in the results can end it.

use std::fmt;

use minijinja::value::Object;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::Embedded;

/// The transcript browser.
pub(super) const SCRIPT: &str = include_str!("report.js");

/// The policy: nothing may be loaded, and only the page's own script runs.
pub(super) fn content_security_policy() -> String {
    format!(
        "default-src 'none'; script-src 'sha256-{}'; style-src 'unsafe-inline'; img-src data:; \
         base-uri 'none'; form-action 'none'",
        base64(&Sha256::digest(SCRIPT.as_bytes()))
    )
}

/// Standard base64, for the script's hash in the Content-Security-Policy.
pub(super) fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut o = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                o.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                o.push('=');
            }
        }
    }
    o
}

/// The data the page's script reads: `{"meta": …, "systems": […], "jobs": […]}`.
#[derive(Debug)]
pub(super) struct Data {
    pub meta: Value,
    pub systems: Value,
    /// Each kept result as compact JSON.
    pub jobs: Vec<String>,
    pub embedded: Embedded,
}

/// The data as the content of the page's `<script type="application/json">`
/// block. The templates' formatter writes it through `render` rather than
/// escaping it as HTML, since a script block's content is not HTML text.
#[derive(Debug)]
pub(super) struct DataBlock(pub Data);

impl Object for DataBlock {
    fn render(self: &std::sync::Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = &self.0;
        f.write_str("{\"meta\":")?;
        write_for_script(f, &d.meta.to_string())?;
        f.write_str(",\"systems\":")?;
        write_for_script(f, &d.systems.to_string())?;
        f.write_str(",\"jobs\":[")?;
        for (i, job) in d.jobs.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write_for_script(f, job)?;
        }
        f.write_str("]}")
    }
}

/// Writes JSON text so that it cannot end or open an HTML element, comment
/// or script inside a `<script>` block: `<`, `>`, `&`, U+2028 and U+2029 are
/// written as `\uXXXX` escapes, which mean the same inside JSON strings (and
/// serde_json writes them nowhere else).
fn write_for_script(out: &mut impl fmt::Write, json: &str) -> fmt::Result {
    let mut last = 0;
    for (i, c) in json.char_indices() {
        let esc = match c {
            '<' => "\\u003c",
            '>' => "\\u003e",
            '&' => "\\u0026",
            '\u{2028}' => "\\u2028",
            '\u{2029}' => "\\u2029",
            _ => continue,
        };
        out.write_str(&json[last..i])?;
        out.write_str(esc)?;
        last = i + c.len_utf8();
    }
    out.write_str(&json[last..])
}
