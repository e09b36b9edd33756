//! The view's pages: small HTML shells that the script (`view.js`) fills
//! from the JSON API, writing what it fetches as text only. The one value
//! written into the HTML here (a sweep id, a path) is checked and escaped.

/// The pages' script, served at `/view/static/view.js`.
pub const SCRIPT: &str = include_str!("view.js");
/// The pages' style, served at `/view/static/view.css`.
pub const STYLE: &str = include_str!("view.css");

/// Escapes text for HTML (element text and quoted attributes).
fn escape(s: &str) -> String {
    candor_report::html::esc(s).into_owned()
}

fn shell(title: &str, body_attrs: &str, main: &str, script: bool) -> String {
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="same-origin">
<title>{title}</title>
<link rel="stylesheet" href="/view/static/view.css">
</head>
<body {body_attrs}>
<header class="top"><a href="/view">candor</a> <span class="muted">live view · read-only</span></header>
<main>
{main}
</main>
{script}</body>
</html>
"#,
        title = escape(title),
        script = if script {
            "<script src=\"/view/static/view.js\"></script>\n"
        } else {
            ""
        }
    )
}

/// `/view`: the sweeps.
pub fn list() -> String {
    let main = r#"<h1>Sweeps</h1>
<p id="status" class="muted" role="status">loading…</p>
<table id="sweeps">
<thead><tr><th>sweep</th><th>id</th><th>state</th><th>run</th><th>created</th><th>progress</th><th class="num">done</th><th class="num">failed</th><th class="num">cost</th></tr></thead>
<tbody></tbody>
</table>
<p id="empty" class="muted" hidden>No sweeps yet.</p>"#;
    shell("candor · sweeps", r#"data-page="list""#, main, true)
}

/// `/view/sweeps/ID`: one sweep's progress and report.
pub fn sweep(id: &str) -> String {
    let main = r#"<p><a href="/view">← all sweeps</a></p>
<h1 id="name">…</h1>
<p id="status" class="muted" role="status">loading…</p>
<dl id="summary">
<dt>state</dt><dd id="state">…</dd>
<dt>run</dt><dd id="label">–</dd>
<dt>created</dt><dd id="created">–</dd>
<dt>done</dt><dd><span id="done">0</span> / <span id="total">0</span> <progress id="bar" max="1" value="0"></progress></dd>
<dt>in flight</dt><dd id="in-flight">–</dd>
<dt>failed</dt><dd id="failed">0</dd>
<dt>cost</dt><dd id="cost">–</dd>
</dl>
<p id="reason" class="warn" hidden></p>
<h2>Progress by model × condition</h2>
<table id="cells">
<thead><tr><th>model</th><th>condition</th><th>progress</th><th class="num">done</th><th class="num">total</th><th class="num">failed</th></tr></thead>
<tbody></tbody>
</table>
<section id="failures" hidden>
<h2>Failures</h2>
<ul></ul>
</section>
<section id="report">
<h2>Report</h2>
<p id="report-note" class="muted">The report appears here as soon as there is one.</p>
<iframe id="report-frame" title="report" hidden></iframe>
</section>"#;
    let attrs = format!(r#"data-page="sweep" data-id="{}""#, escape(id));
    shell(&format!("candor · sweep {id}"), &attrs, main, true)
}

/// The login form; `next` is where it goes on to (a checked view path).
pub fn login(next: &str, wrong: bool) -> String {
    let note = if wrong {
        r#"<p id="login-error" class="warn" role="alert">That is not the token. Try again.</p>"#
    } else {
        ""
    };
    let main = format!(
        r#"<h1>Log in</h1>
<p>This view shows the sweeps of a coordinator that asks for a token: the one its clients and workers use (CANDOR_TOKEN or --token-file).</p>
{note}
<form method="post" action="/view/login" id="login">
<input type="hidden" name="next" value="{next}">
<label for="token">Token</label>
<input type="password" id="token" name="token" autocomplete="current-password" required autofocus>
<button type="submit" id="login-button">Log in</button>
</form>"#,
        next = escape(next)
    );
    shell("candor · log in", r#"data-page="login""#, &main, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_load_nothing_from_other_hosts_and_escape_what_they_write() {
        for page in [list(), sweep("ab12"), login("/view/sweeps/ab12", true)] {
            for attr in ["src=", "href=", "action="] {
                for (at, _) in page.match_indices(attr) {
                    let value = &page[at + attr.len()..];
                    assert!(value.starts_with("\"/view"), "{attr} outside /view: {}", &value[..40]);
                }
            }
        }
        assert!(login("\"><script>", false).contains("&quot;&gt;&lt;script&gt;"));
        assert!(
            !SCRIPT.contains("innerHTML") && !SCRIPT.contains("://"),
            "view.js writes text only, to this server"
        );
    }
}
