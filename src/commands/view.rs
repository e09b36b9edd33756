//! `candor view`: the live web view (see `view`) of local runs, the out
//! dirs given or every run under `--runs`, served on loopback until
//! interrupted. A run in progress shows its counts as `candor run` writes
//! them (`progress.json`); one that ended shows its report.html.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::exit;
use candor_view::{Auth, Runs, Source, router};

#[derive(clap::Args)]
pub struct ViewArgs {
    /// Out dirs of local runs to show (`candor run --out`) [default: every run under --runs]
    #[arg(value_name = "DIR")]
    dirs: Vec<PathBuf>,
    /// Where local runs write their out dirs (`candor run`'s default is under runs/) [default: runs, when no DIR is given]
    #[arg(long, value_name = "DIR")]
    runs: Option<PathBuf>,
    /// Address to serve the view on (port 0 picks a free one); an address other than loopback needs --token-file.
    #[arg(long, default_value = "127.0.0.1:8070")]
    listen: SocketAddr,
    /// Ask for the token in this file (or in CANDOR_TOKEN) before showing anything.
    #[arg(long, value_name = "FILE", env = "CANDOR_TOKEN_FILE")]
    token_file: Option<PathBuf>,
}

pub async fn view(a: ViewArgs) -> i32 {
    match serve(a).await {
        Ok(()) => exit::OK,
        Err(e) => {
            eprintln!("error: {e}");
            exit::BAD_INPUT
        }
    }
}

async fn serve(a: ViewArgs) -> Result<(), String> {
    for d in &a.dirs {
        if !d.is_dir() {
            return Err(format!(
                "{}: not a directory (give the out dirs of local runs)",
                d.display()
            ));
        }
    }
    let root = match (&a.runs, a.dirs.is_empty()) {
        (Some(r), _) => Some(r.clone()),
        (None, true) => Some(PathBuf::from("runs")),
        (None, false) => None,
    };
    let token_set = std::env::var_os(candor_proto::auth::TOKEN_ENV).is_some();
    let auth = match &a.token_file {
        Some(f) => Auth::token(&candor_proto::auth::Token::load(Some(f)).map_err(|e| format!("--token-file: {e}"))?),
        None if token_set => Auth::token(&candor_proto::auth::Token::load(None)?),
        None if !a.listen.ip().is_loopback() => {
            return Err(format!(
                "--listen {}: not a loopback address; give --token-file (or CANDOR_TOKEN) so the view \
                 asks for a token, or listen on 127.0.0.1",
                a.listen
            ));
        }
        None => Auth::open(),
    };
    let listener = crate::telemetry::bind(a.listen, "--listen").await?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("--listen {}: {e}", a.listen))?;
    let shown = match (&root, a.dirs.len()) {
        (Some(r), 0) => format!("the runs under {}", r.display()),
        (Some(r), n) => format!("{n} out dirs and the runs under {}", r.display()),
        (None, n) => format!("{n} out dirs"),
    };
    eprintln!("candor view: {shown}; read-only; interrupt to stop");
    println!("http://{addr}/view");
    let app = router(Source::Local(Runs::new(a.dirs, root)), auth);
    axum::serve(listener, app)
        .with_graceful_shutdown(interrupted())
        .await
        .map_err(|e| format!("--listen {addr}: {e}"))
}

/// Resolves on the first SIGINT or SIGTERM.
async fn interrupted() {
    let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
