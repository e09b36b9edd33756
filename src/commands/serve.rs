//! The long-running services: `candor coordinator` and `candor worker`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use candor_coordinator::server::{Coordinator, ServeOptions, Settings, serve};
use candor_queue::Queue;
use candor_worker::metrics::Metrics as WorkerMetrics;
use candor_worker::remote::{RemoteOptions, run as run_worker};
use tokio::net::TcpListener;

use crate::client::{ClientArgs, redact, redis_url};
use crate::config::{ArchiveArgs, RedisArgs};
use crate::exit;
use crate::telemetry::{Endpoints, bind, serve_http};

#[derive(clap::Args)]
pub struct CoordinatorArgs {
    /// Address for the gRPC API (port 0 picks a free port).
    #[arg(long, env = "CANDOR_LISTEN", default_value = "127.0.0.1:7070")]
    listen: SocketAddr,
    /// Where the sweeps are kept (--redis is required).
    #[command(flatten)]
    redis: RedisArgs,
    /// Where the results are (workers write them there; reports and exports read them).
    #[command(flatten)]
    archive: ArchiveArgs,
    /// Days an ended sweep is kept (its Redis keys and archive parts) before it is deleted; 0 keeps
    /// sweeps until `candor delete`.
    #[arg(long, env = "CANDOR_RETENTION_DAYS", default_value_t = 0,
          value_parser = clap::value_parser!(u64).range(0..=36_500))]
    retention_days: u64,
    /// Seconds an archive part must be old before it may be collected as garbage (a part no
    /// result was recorded from: its worker died or lost its leases).
    #[arg(long, env = "CANDOR_ARCHIVE_GC_GRACE_SECS", default_value_t = 600,
          value_parser = clap::value_parser!(u64).range(1..=604_800))]
    gc_grace_secs: u64,
    /// Address for HTTP /metrics, /healthz, /readyz, /queue (the backlog as JSON, for autoscalers), /view (web view).
    #[arg(long, env = "CANDOR_HTTP")]
    http: Option<SocketAddr>,
    /// Read the bearer token clients and workers must present from this file instead of CANDOR_TOKEN.
    #[arg(long, env = "CANDOR_TOKEN_FILE", hide_env_values = true)]
    token_file: Option<PathBuf>,
    /// Serve TLS with this PEM certificate chain (needs --tls-key).
    #[arg(long, env = "CANDOR_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key for --tls-cert.
    #[arg(long, env = "CANDOR_TLS_KEY", requires = "tls_cert", hide_env_values = true)]
    tls_key: Option<PathBuf>,
    /// How long a lease lasts unless the worker renews it, in milliseconds.
    #[arg(long, env = "CANDOR_LEASE_TTL_MS", default_value_t = 30_000,
          value_parser = clap::value_parser!(u64).range(300..=3_600_000))]
    lease_ttl_ms: u64,
    /// Print the effective configuration (flags over CANDOR_* variables over defaults, secrets
    /// shown only as set or not) and exit.
    #[arg(long)]
    dump_config: bool,
}

#[derive(clap::Args)]
pub struct WorkerArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The coordinator's Redis, to record results in directly; without --redis results go
    /// through the coordinator.
    #[command(flatten)]
    redis: RedisArgs,
    /// Where to write results (with --redis; without it the coordinator writes them).
    #[command(flatten)]
    archive: ArchiveArgs,
    /// Jobs calling the models under test at once.
    #[arg(long, env = "CANDOR_CONCURRENCY", default_value_t = 32,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    concurrency: u32,
    /// Jobs calling their judges at once: the judge stage has slots of its own [default: --concurrency]
    #[arg(long, env = "CANDOR_JUDGE_CONCURRENCY", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    judge_concurrency: Option<u32>,
    /// Address for HTTP /metrics, /healthz and /readyz.
    #[arg(long, env = "CANDOR_HTTP")]
    http: Option<SocketAddr>,
    /// Seconds running jobs may take to finish after SIGTERM before they are handed back.
    #[arg(long, env = "CANDOR_GRACE_SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(0..=3600))]
    grace_secs: u64,
    /// Call the models even for requests the response cache (in Redis) has answered before.
    #[arg(long, env = "CANDOR_NO_CACHE")]
    no_cache: bool,
    /// Days a response stays in the response cache in Redis.
    #[arg(long, env = "CANDOR_CACHE_TTL_DAYS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=3650))]
    cache_ttl_days: u64,
    /// This worker's name in logs [default: host name and process id].
    #[arg(long, env = "CANDOR_WORKER_ID")]
    id: Option<String>,
    /// Print the effective configuration (flags over CANDOR_* variables over defaults, secrets
    /// shown only as set or not) and exit.
    #[arg(long)]
    dump_config: bool,
}

impl CoordinatorArgs {
    /// Whether only the configuration is to be printed.
    pub fn dump_config(&self) -> bool {
        self.dump_config
    }
}

impl WorkerArgs {
    /// Whether only the configuration is to be printed.
    pub fn dump_config(&self) -> bool {
        self.dump_config
    }

    /// Values `--dump-config` shows that no flag holds: the judge stage's
    /// slots default to --concurrency.
    pub fn effective(&self) -> Vec<(&'static str, String)> {
        vec![(
            "judge_concurrency",
            self.judge_concurrency.unwrap_or(self.concurrency).to_string(),
        )]
    }
}

/// Resolves on the first SIGINT or SIGTERM.
pub(crate) async fn signalled() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("signal handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// Connects to Redis (with the password from `password_file` or the
/// environment added to `url`), retrying while it is not up yet.
async fn connect_redis(url: &str, r: &RedisArgs) -> Result<Queue, String> {
    let (ca, password_file) = (r.ca.as_ref(), r.password_file.as_ref());
    let url = &redis_url(url, password_file.map(PathBuf::as_path))?;
    let shown = redact(url);
    let ca = match ca {
        Some(p) => Some(std::fs::read(p).map_err(|e| format!("--redis-ca {}: {e}", p.display()))?),
        None => None,
    };
    let mut wait = Duration::from_millis(100);
    loop {
        match Queue::connect(url, ca.clone()).await {
            Ok(q) => return Ok(q),
            Err(candor_queue::QueueError::Redis(e))
                if matches!(
                    e.kind(),
                    redis::ErrorKind::InvalidClientConfig | redis::ErrorKind::AuthenticationFailed
                ) =>
            {
                return Err(format!("--redis {shown}: {e}"));
            }
            Err(e) => {
                tracing::warn!(redis = %shown, error = %e, "cannot reach redis; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = signalled() => return Err("interrupted".into()),
                }
                wait = (wait * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// Makes sure the coordinator's archive and its Redis name each other (see
/// `candor_archive::Archive::identity`): the first coordinator names both;
/// an archive that names another Redis's results is refused.
async fn name_archive(q: &Queue, a: &candor_archive::Archive) -> Result<(), String> {
    let fail = |e: &dyn std::fmt::Display| format!("--archive {}: {e}", a.url());
    let mine = a.identity().await.map_err(|e| fail(&e))?;
    let theirs = q.archive_identity().await.map_err(|e| fail(&e))?;
    match (theirs, mine) {
        (Some(r), Some(m)) if r != m => Err(fail(&format_args!(
            "not the archive the sweeps in this Redis keep their results in (it is {m}, theirs {r}); \
             give every coordinator and worker the same --archive"
        ))),
        (Some(_), Some(_)) => Ok(()),
        (Some(r), None) => {
            tracing::warn!(archive = %a.url(), "the archive is new: results of sweeps recorded before are not in it");
            a.set_identity(&r).await.map_err(|e| fail(&e))
        }
        (None, mine) => {
            let id = mine.unwrap_or_else(candor_archive::part_name);
            let named = q.claim_archive_identity(&id).await.map_err(|e| fail(&e))?;
            a.set_identity(&named).await.map_err(|e| fail(&e))
        }
    }
}

/// A worker's archive must be its coordinator's: the identity in Redis.
async fn check_archive(q: &Queue, a: &candor_archive::Archive) -> Result<(), String> {
    let fail = |e: &dyn std::fmt::Display| format!("--archive {}: {e}", a.url());
    let Some(theirs) = q.archive_identity().await.map_err(|e| fail(&e))? else {
        tracing::warn!(archive = %a.url(), "no coordinator has named its archive in this Redis yet: cannot check --archive");
        return Ok(());
    };
    match a.identity().await.map_err(|e| fail(&e))? {
        Some(mine) if mine == theirs => Ok(()),
        _ => Err(fail(
            &"not the coordinator's archive (its identity differs from the one in Redis): \
             give the worker the coordinator's --archive (and the same volume or bucket)",
        )),
    }
}

/// A PEM certificate chain and its private key.
type TlsPair = (Vec<u8>, Vec<u8>);

/// What the coordinator serves with, once everything that bad input can
/// make fail has been read, bound and connected.
struct CoordinatorSetup {
    token: candor_proto::auth::Token,
    tls: Option<TlsPair>,
    listener: TcpListener,
    http: Option<TcpListener>,
    redis_url: String,
    co: Arc<Coordinator>,
}

pub async fn coordinator(a: CoordinatorArgs) -> i32 {
    let s = match set_up_coordinator(&a).await {
        Ok(s) => s,
        Err(e) => return bad(e),
    };
    let addr = s.listener.local_addr().expect("bound");
    let http_addr = s
        .http
        .map(|l| serve_endpoints(l, coordinator_endpoints(&s.co, &s.token)));
    eprintln!(
        "coordinator listening on {addr}{}{}; redis {}; archive {}",
        if tls_enabled(&a) { " (tls)" } else { "" },
        http_addr.map(|h| format!(", http on {h}")).unwrap_or_default(),
        redact(&s.redis_url),
        s.co.archive().url()
    );
    tracing::info!(%addr, redis = %redact(&s.redis_url), "coordinator started");
    let opts = ServeOptions {
        listener: s.listener,
        token: s.token,
        tls: s.tls,
    };
    match serve(s.co, opts, signalled()).await {
        Ok(()) => exit::OK,
        Err(e) => {
            eprintln!("error: {e}");
            exit::FAILURE
        }
    }
}

/// The token, the TLS files, both addresses bound, then Redis: in this
/// order, so the first thing wrong is the one reported.
async fn set_up_coordinator(a: &CoordinatorArgs) -> Result<CoordinatorSetup, String> {
    let token = candor_proto::auth::Token::load(a.token_file.as_deref())?;
    let tls = read_tls(a)?;
    let listener = bind(a.listen, "--listen").await?;
    let http = bind_http(a.http).await?;
    let Some(redis_url) = a.redis.url.clone() else {
        return Err("--redis (or CANDOR_REDIS_URL) is required: the coordinator keeps its sweeps in Redis".into());
    };
    let archive = a.archive.open()?;
    let queue = connect_redis(&redis_url, &a.redis).await?;
    name_archive(&queue, &archive).await?;
    let co = Coordinator::new(
        queue,
        Settings {
            lease_ttl: Duration::from_millis(a.lease_ttl_ms),
            archive,
            retention: (a.retention_days > 0).then(|| Duration::from_secs(a.retention_days * 86_400)),
            gc_grace: Duration::from_secs(a.gc_grace_secs),
        },
    );
    Ok(CoordinatorSetup {
        token,
        tls,
        listener,
        http,
        redis_url,
        co,
    })
}

/// The certificate chain and key of --tls-cert and --tls-key, when given.
fn read_tls(a: &CoordinatorArgs) -> Result<Option<TlsPair>, String> {
    match (&a.tls_cert, &a.tls_key) {
        (Some(c), Some(k)) => match (std::fs::read(c), std::fs::read(k)) {
            (Ok(c), Ok(k)) => Ok(Some((c, k))),
            (Err(e), _) => Err(format!("--tls-cert {}: {e}", c.display())),
            (_, Err(e)) => Err(format!("--tls-key {}: {e}", k.display())),
        },
        _ => Ok(None),
    }
}

fn tls_enabled(a: &CoordinatorArgs) -> bool {
    a.tls_cert.is_some()
}

/// Binds --http, when given.
async fn bind_http(addr: Option<SocketAddr>) -> Result<Option<TcpListener>, String> {
    match addr {
        Some(addr) => Ok(Some(bind(addr, "--http").await?)),
        None => Ok(None),
    }
}

/// Serves `endpoints` on `listener` in a task of its own; returns its address.
fn serve_endpoints(listener: TcpListener, endpoints: Endpoints) -> SocketAddr {
    let addr = listener.local_addr().expect("bound");
    tokio::spawn(serve_http(listener, endpoints));
    addr
}

/// The coordinator's /metrics and /queue read every sweep's state from
/// Redis at each request; it is ready while Redis answers. Its /view asks
/// for the token the gRPC API does.
fn coordinator_endpoints(co: &Arc<Coordinator>, token: &candor_proto::auth::Token) -> Endpoints {
    let (m, r, q) = (co.clone(), co.clone(), co.clone());
    Endpoints {
        metrics: Arc::new(move || {
            let co = m.clone();
            Box::pin(async move {
                let states = co.all_states().await.map_err(|e| format!("redis: {e}\n"))?;
                Ok(co.metrics.render(&states))
            })
        }),
        ready: Arc::new(move || {
            let co = r.clone();
            Box::pin(async move {
                co.queue()
                    .ping()
                    .await
                    .map(|()| "ready\n".into())
                    .map_err(|e| format!("redis: {e}\n"))
            })
        }),
        queue: Some(Arc::new(move || {
            let co = q.clone();
            Box::pin(async move {
                let states = co.all_states().await.map_err(|e| format!("redis: {e}\n"))?;
                Ok(candor_coordinator::metrics::queue_json(&states))
            })
        })),
        view: Some(candor_view::for_coordinator(co.clone(), token)),
    }
}

pub(crate) fn bad(msg: String) -> i32 {
    eprintln!("error: {msg}");
    exit::BAD_INPUT
}

pub async fn worker(a: WorkerArgs) -> i32 {
    let (opts, http) = match set_up_worker(&a).await {
        Ok(s) => s,
        Err(e) => return bad(e),
    };
    let metrics = Arc::new(WorkerMetrics::default());
    let http_addr = http.map(|l| serve_endpoints(l, worker_endpoints(&metrics)));
    eprintln!(
        "worker {}: coordinator {}, concurrency {}{}{}",
        opts.worker_id,
        a.client.coordinator,
        a.concurrency,
        a.redis
            .url
            .as_deref()
            .map(|u| format!(", results to redis {}", redact(u)))
            .unwrap_or_default(),
        http_addr.map(|h| format!(", http on {h}")).unwrap_or_default(),
    );
    match run_worker(opts, metrics, stop_on_signal()).await {
        Ok(()) => exit::OK,
        Err(e) => {
            eprintln!("error: {e}");
            exit::ACCESS
        }
    }
}

/// The token, the coordinator's address, --http bound, then Redis when
/// given: in this order, so the first thing wrong is the one reported.
async fn set_up_worker(a: &WorkerArgs) -> Result<(RemoteOptions, Option<TcpListener>), String> {
    let token = a.client.token().map_err(|f| f.1)?;
    let channel = a.client.channel().map_err(|f| f.1)?;
    let http = bind_http(a.http).await?;
    let (redis, archive) = match &a.redis.url {
        Some(url) => {
            let archive = a.archive.open()?;
            let queue = connect_redis(url, &a.redis).await?;
            check_archive(&queue, &archive).await?;
            (Some(queue), Some(archive))
        }
        None => (None, None),
    };
    let opts = RemoteOptions {
        channel,
        token,
        redis,
        archive,
        concurrency: a.concurrency as usize,
        judge_concurrency: a.judge_concurrency.unwrap_or(a.concurrency) as usize,
        grace: Duration::from_secs(a.grace_secs),
        worker_id: worker_id(a),
        cache: !a.no_cache,
        cache_ttl: Duration::from_secs(a.cache_ttl_days * 86_400),
    };
    Ok((opts, http))
}

/// --id, or the host name and process id.
fn worker_id(a: &WorkerArgs) -> String {
    a.id.clone().unwrap_or_else(|| {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "worker".into());
        format!("{host}-{}", std::process::id())
    })
}

/// The worker's /metrics is its registry; it is ready while its last lease
/// call reached the coordinator.
fn worker_endpoints(metrics: &Arc<WorkerMetrics>) -> Endpoints {
    let (m, r) = (metrics.clone(), metrics.clone());
    Endpoints {
        metrics: Arc::new(move || {
            let m = m.clone();
            Box::pin(async move { Ok(m.render()) })
        }),
        ready: Arc::new(move || {
            let r = r.clone();
            Box::pin(async move {
                if r.connected.load(std::sync::atomic::Ordering::Relaxed) {
                    Ok("ready\n".into())
                } else {
                    Err("not connected to the coordinator\n".into())
                }
            })
        }),
        queue: None,
        view: None,
    }
}

/// Turns true at the first SIGINT or SIGTERM, so the worker stops leasing
/// and drains; the second signal exits at once.
fn stop_on_signal() -> tokio::sync::watch::Receiver<bool> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        signalled().await;
        eprintln!("stopping: no new leases; finishing running jobs");
        let _ = tx.send(true);
        signalled().await;
        std::process::exit(exit::INTERRUPTED);
    });
    rx
}
