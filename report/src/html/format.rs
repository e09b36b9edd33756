//! How the page writes numbers and text: the templates' filters and
//! functions (see `templates`), and the escaping of everything they write.

use std::borrow::Cow;

/// Text for HTML (element content or a quoted attribute): the characters
/// that could end either, or start an entity, as references.
pub fn esc(s: &str) -> Cow<'_, str> {
    if !s.contains(['&', '<', '>', '"', '\'']) {
        return Cow::Borrowed(s);
    }
    let mut o = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    Cow::Owned(o)
}

/// A rate in percent: `30.0%`.
pub(super) fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

/// An interval in percent: `[24.1, 36.6]`.
pub(super) fn ci(lo: f64, hi: f64) -> String {
    format!("[{:.1}, {:.1}]", lo * 100.0, hi * 100.0)
}

/// A difference in percentage points: `+12.3`.
pub(super) fn pts(x: f64) -> String {
    format!("{:+.1}", x * 100.0)
}

/// An interval in percentage points: `[+1.2, +9.8]`.
pub(super) fn ci_pts(lo: f64, hi: f64) -> String {
    format!("[{}, {}]", pts(lo), pts(hi))
}

/// 12345 → "12,345".
pub(super) fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut o = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            o.push(',');
        }
        o.push(c);
    }
    o
}

/// US dollars, to the cent, or to a hundredth of a cent below one.
pub(super) fn usd(x: f64) -> String {
    if x != 0.0 && x.abs() < 0.01 {
        format!("${x:.4}")
    } else {
        format!("${x:.2}")
    }
}

/// A number with `digits` decimals, for coordinates.
pub(super) fn fixed(x: f64, digits: usize) -> String {
    format!("{x:.digits$}")
}

/// At most `max` characters, with an ellipsis when cut.
pub(super) fn clip(s: &str, max: usize) -> Cow<'_, str> {
    if s.chars().count() <= max {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(s.chars().take(max.saturating_sub(1)).chain(['…']).collect())
    }
}
