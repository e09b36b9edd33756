//! report.html as headless Chromium renders it.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::{Sandbox, stderr, stdout};

const CHROMIUM: &str = "/usr/bin/chromium";

/// The page's DOM after its scripts ran, as headless Chromium serializes it.
pub fn rendered_dom(sb: &Sandbox, page: &Path) -> String {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: run scripts/check, which installs Chromium (Debian package `chromium`), \
         then run this test again"
    );
    let profile = sb.join("chromium-profile");
    let out = Command::new(CHROMIUM)
        .args([
            "--headless=new",
            "--disable-gpu",
            "--no-sandbox",
            "--no-first-run",
            "--disable-extensions",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .output()
        .expect("chromium runs");
    assert!(out.status.success(), "chromium failed: {}", stderr(&out));
    stdout(&out)
}

/// The failure banner of a rendered report.html (its `<div>`), or None.
pub fn failure_banner(dom: &str) -> Option<String> {
    let at = dom.find("id=\"failure-banner\"")?;
    let start = dom[..at].rfind("<div")?;
    let end = start + dom[start..].find("</div>")?;
    Some(dom[start..end].to_string())
}
