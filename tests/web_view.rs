//! The live web view as a user sees it, in headless Chromium driven over
//! WebDriver: the coordinator's (behind its token: the login form, then the
//! list, then a running sweep whose counts move until its report shows) and
//! `candor view`'s of local runs (one running, one that ended).

mod common;

use std::io::{Read, Write};
use std::process::{Child, Stdio};
use std::time::Duration;

use common::*;

const LIMIT: Duration = Duration::from_secs(120);

/// A sweep of 1 model × 2 conditions × 12 queries × 4 seeds = 96 jobs whose
/// model answers each call after `latency_ms`: about 10 s at 2 jobs at once.
fn slow_sweep(sb: &Sandbox, name: &str, latency_ms: u64) -> u64 {
    sb.file("data.csv", &dataset(12));
    sb.file(
        &format!("{name}.yaml"),
        &sim_spec(latency_ms, 4).replace("name: small", &format!("name: {name}")),
    );
    96
}

/// A child process killed when the test ends, however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// GET `path` on loopback `port` with `headers`: (status, body).
fn get(port: u16, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let extra: String = headers.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n{extra}\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let code = text.split(' ').nth(1).unwrap().parse().unwrap();
    (
        code,
        text.split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default(),
    )
}

/// The number in the element `css`, when there is one now.
fn number(b: &Browser, css: &str) -> Option<u64> {
    b.text_of(css)?.trim().parse().ok()
}

/// Reads the done count while the sweep runs, then sees it grow.
fn counts_move(b: &Browser, total: u64) {
    eventually(LIMIT, "a first count", || number(b, "#done").is_some_and(|d| d > 0));
    let first = number(b, "#done").unwrap();
    assert!(
        first < total,
        "the sweep ended before the test saw it run ({first} of {total})"
    );
    assert_eq!(b.text_of("#state").as_deref(), Some("running"));
    eventually(LIMIT, "the done count to grow", || {
        number(b, "#done").is_some_and(|d| d > first)
    });
}

/// Waits for the sweep to end done, then checks its cells and its report frame.
fn ends_with_report(b: &Browser, name: &str, total: u64) {
    eventually(LIMIT, "the sweep to end", || {
        b.text_of("#state").as_deref() == Some("done")
    });
    eventually(LIMIT, "the final count", || number(b, "#done") == Some(total));
    let cells: u64 = b
        .find_all("#cells tbody tr td:nth-child(4)")
        .iter()
        .map(|td| td.text().parse::<u64>().unwrap())
        .sum();
    assert_eq!(cells, total, "the model × condition rows add up to the sweep");
    assert_eq!(b.find_all("#cells tbody tr").len(), 2, "1 model × 2 conditions");
    eventually(LIMIT, "the report frame", || {
        b.find("#report-frame").is_some_and(|f| f.attribute("hidden").is_none())
    });
    b.frame(Some(&b.find("#report-frame").unwrap()));
    eventually(LIMIT, "the report page in the frame", || {
        b.text_of("h1").as_deref() == Some(name) && b.find_all("[data-bar]").len() == 2
    });
    b.frame(None);
}

/// Every address the page's markup names is on this server.
fn loads_nothing_from_elsewhere(html: &str) {
    for attr in ["src=\"", "href=\"", "action=\""] {
        for (at, _) in html.match_indices(attr) {
            let value = &html[at + attr.len()..];
            assert!(
                value.starts_with('/') || value.starts_with('#'),
                "{attr}{}",
                &value[..60.min(value.len())]
            );
        }
    }
}

#[test]
fn a_coordinator_sweep_is_seen_running_behind_the_token_until_its_report_shows() {
    let mut c = Cluster::start(false, 5_000);
    let total = slow_sweep(&c.sb, "watched", 150);
    // No worker yet: the sweep waits until the browser is on its page.
    let id = c.submit("watched.yaml");

    // Without the token: no data, from the API or the pages.
    for (headers, what) in [
        (vec![], "no credentials"),
        (vec![("Authorization", "Bearer wrong-token")], "a wrong token"),
        (vec![("Cookie", "candor_view=0123")], "a made-up cookie"),
    ] {
        let paths = [
            "/view".to_string(),
            format!("/view/sweeps/{id}"),
            "/view/api/sweeps".to_string(),
            format!("/view/api/sweeps/{id}"),
            format!("/view/sweeps/{id}/report"),
        ];
        for path in paths {
            let (code, body) = get(c.http, &path, &headers);
            assert_eq!(code, 401, "{path} with {what}: {body}");
            assert!(!body.contains("watched"), "{path} with {what} shows data: {body}");
        }
    }
    let bearer = format!("Bearer {TOKEN}");
    let (code, body) = get(c.http, "/view/api/sweeps", &[("Authorization", &bearer)]);
    assert_eq!(code, 200, "{body}");
    assert!(body.contains(&id), "the bearer token reads the list: {body}");

    let b = Browser::start(&c.sb);
    b.goto(&format!("http://127.0.0.1:{}/view", c.http));
    b.wait_for("#token", LIMIT).type_text("not-the-token");
    b.find("#login-button").unwrap().click();
    b.wait_for("#login-error", LIMIT);
    assert!(!b.source().contains(&id), "a failed login shows no sweep");

    b.wait_for("#token", LIMIT).type_text(TOKEN);
    b.find("#login-button").unwrap().click();
    let link = format!("tr[data-id=\"{id}\"] a.open");
    eventually(LIMIT, "the sweep in the list", || {
        b.text_of(&link).as_deref() == Some("watched")
    });
    assert_eq!(b.script("return document.cookie;"), "", "the login cookie is HttpOnly");
    loads_nothing_from_elsewhere(&b.source());
    b.find(&link).unwrap().click();
    eventually(LIMIT, "the sweep's page", || {
        b.url().ends_with(&format!("/view/sweeps/{id}"))
    });
    eventually(LIMIT, "the sweep's counts", || number(&b, "#total") == Some(total));
    assert_eq!(number(&b, "#done"), Some(0));

    c.add_worker(2, None);
    counts_move(&b, total);
    ends_with_report(&b, "watched", total);
    loads_nothing_from_elsewhere(&b.source());
    assert!(
        !b.source().contains(TOKEN) && !b.url().contains(TOKEN),
        "the token is not in the page"
    );
    let (code, body) = get(c.http, &format!("/view/api/sweeps/{id}"), &[("Authorization", &bearer)]);
    assert_eq!(code, 200, "{body}");
    assert!(
        body.contains(&format!("\"jobs_done\":{total}")) && !body.contains(TOKEN),
        "{body}"
    );
    assert!(
        !c.log_text("coordinator.log").contains(TOKEN),
        "the token is not logged"
    );
}

#[test]
fn candor_view_shows_a_local_run_moving_and_one_that_ended() {
    let sb = Sandbox::new();
    let total = slow_sweep(&sb, "ended", 0);
    let o = sb.candor(&["run", "ended.yaml", "--store", "store", "--quiet"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let ended = sb.json("runs/ended/report.json")["sweep"]["id"]
        .as_str()
        .unwrap()
        .to_string();

    let log = std::fs::File::create(sb.join("view.out")).unwrap();
    let _view = Killed(
        sb.cmd(&["view", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::from(log))
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut url = String::new();
    eventually(LIMIT, "candor view to print its address", || {
        url = std::fs::read_to_string(sb.join("view.out"))
            .unwrap_or_default()
            .trim()
            .to_string();
        url.starts_with("http://127.0.0.1:") && url.ends_with("/view")
    });
    let b = Browser::start(&sb);
    b.goto(&url);
    let link = |id: &str| format!("tr[data-id=\"{id}\"] a.open");
    eventually(LIMIT, "the ended run in the list", || {
        b.text_of(&link(&ended)).as_deref() == Some("ended")
    });

    // A run that starts while the list is open shows up in it.
    slow_sweep(&sb, "going", 150);
    let _run = Killed(sb.spawn(&["run", "going.yaml", "--store", "store", "--quiet", "--concurrency", "2"]));
    eventually(LIMIT, "the running run's progress file", || {
        sb.join("runs/going/progress.json").exists()
    });
    let going = sb.json("runs/going/progress.json")["sweep_id"]
        .as_str()
        .unwrap()
        .to_string();
    eventually(LIMIT, "the running run in the list", || {
        b.text_of(&link(&going)).as_deref() == Some("going")
    });
    loads_nothing_from_elsewhere(&b.source());
    b.find(&link(&going)).unwrap().click();
    eventually(LIMIT, "the running run's page", || {
        b.url().ends_with(&format!("/view/sweeps/{going}"))
    });
    counts_move(&b, total);
    let note = b.text_of("#report-note").unwrap_or_default();
    assert!(note.contains("when the run ends"), "{note}");
    ends_with_report(&b, "going", total);

    b.find("a[href=\"/view\"]").unwrap().click();
    b.wait_for(&link(&ended), LIMIT).click();
    eventually(LIMIT, "the ended run's page", || {
        b.url().ends_with(&format!("/view/sweeps/{ended}"))
    });
    ends_with_report(&b, "ended", total);

    let p = sb.json("runs/going/progress.json");
    assert_eq!(
        (p["state"].as_str(), p["jobs_done"].as_u64()),
        (Some("done"), Some(total)),
        "{p}"
    );

    // Run again on the same store: every result is resumed, and counted per cell.
    let o = sb.candor(&["run", "ended.yaml", "--store", "store", "--quiet"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let p = sb.json("runs/ended/progress.json");
    let per_cell: Vec<u64> = p["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["done"].as_u64().unwrap())
        .collect();
    assert_eq!(per_cell, vec![total / 2, total / 2], "{p}");
    assert_eq!(p["jobs_done"].as_u64(), Some(total), "{p}");
}

#[test]
fn candor_view_refuses_what_it_cannot_serve_safely() {
    let sb = Sandbox::new();
    let o = sb.candor(&["view", "--listen", "0.0.0.0:0"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("--listen") && stderr(&o).contains("--token-file"),
        "{}",
        stderr(&o)
    );
    let o = sb.candor(&["view", "no-such-dir"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("no-such-dir"), "{}", stderr(&o));
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let o = sb.candor(&["view", "--listen", &addr]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains(&format!("--listen {addr}")), "{}", stderr(&o));
}
