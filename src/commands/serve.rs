//! The long-running services: `candor coordinator` and `candor worker`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use candor_coordinator::server::{Coordinator, ServeOptions, Settings, serve};
use candor_queue::Queue;
use candor_worker::metrics::Metrics as WorkerMetrics;
use candor_worker::remote::{RemoteOptions, run as run_worker};

use crate::client::{ClientArgs, redact, redis_url};
use crate::exit;
use crate::telemetry::{Endpoints, bind, serve_http};

#[derive(clap::Args)]
pub struct CoordinatorArgs {
    /// Address for the gRPC API (port 0 picks a free port).
    #[arg(long, env = "CANDOR_LISTEN", default_value = "127.0.0.1:7070")]
    listen: SocketAddr,
    /// Redis URL: redis://HOST:PORT or rediss:// for TLS; may carry a password. Prefer the
    /// CANDOR_REDIS_URL environment variable when it does.
    #[arg(long, env = "CANDOR_REDIS_URL", hide_env_values = true)]
    redis: String,
    /// A PEM CA certificate to trust for a rediss:// Redis (default: the public web roots).
    #[arg(long, env = "CANDOR_REDIS_CA")]
    redis_ca: Option<PathBuf>,
    /// Read the Redis password from this file (or from the CANDOR_REDIS_PASSWORD environment
    /// variable); it is added to the Redis URL.
    #[arg(long, env = "CANDOR_REDIS_PASSWORD_FILE", hide_env_values = true)]
    redis_password_file: Option<PathBuf>,
    /// Address for HTTP /metrics, /healthz, /readyz and /queue (the backlog as JSON, for autoscalers).
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
    /// Redis URL to record results in directly (as the coordinator's); without it results go
    /// through the coordinator. Prefer the CANDOR_REDIS_URL environment variable.
    #[arg(long, env = "CANDOR_REDIS_URL", hide_env_values = true)]
    redis: Option<String>,
    /// A PEM CA certificate to trust for a rediss:// Redis (default: the public web roots).
    #[arg(long, env = "CANDOR_REDIS_CA")]
    redis_ca: Option<PathBuf>,
    /// Read the Redis password from this file (or from the CANDOR_REDIS_PASSWORD environment
    /// variable); it is added to the Redis URL.
    #[arg(long, env = "CANDOR_REDIS_PASSWORD_FILE", hide_env_values = true)]
    redis_password_file: Option<PathBuf>,
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

/// `KEY=value` lines of an effective configuration, in the environment's
/// terms, so they can be compared with what a deployment sets.
struct Dump(String);

impl Dump {
    fn new() -> Self {
        Dump(String::new())
    }

    fn set(&mut self, key: &str, value: impl std::fmt::Display) -> &mut Self {
        use std::fmt::Write as _;
        let _ = writeln!(self.0, "{key}={value}");
        self
    }

    fn opt<T: std::fmt::Display>(&mut self, key: &str, value: Option<T>) -> &mut Self {
        match value {
            Some(v) => self.set(key, v),
            None => self.set(key, "(unset)"),
        }
    }

    fn path(&mut self, key: &str, value: Option<&PathBuf>) -> &mut Self {
        self.opt(key, value.map(|p| p.display().to_string()))
    }

    /// A secret: whether it is set, never its value.
    fn secret(&mut self, key: &str) -> &mut Self {
        let set = std::env::var_os(key).is_some_and(|v| !v.is_empty());
        self.set(key, if set { "(set)" } else { "(unset)" })
    }

    fn print(&self) -> i32 {
        print!("{}", self.0);
        exit::OK
    }
}

fn dump_redis(d: &mut Dump, url: Option<&str>, ca: Option<&PathBuf>, password_file: Option<&PathBuf>) {
    d.opt("CANDOR_REDIS_URL", url.map(redact))
        .path("CANDOR_REDIS_CA", ca)
        .path("CANDOR_REDIS_PASSWORD_FILE", password_file)
        .secret("CANDOR_REDIS_PASSWORD");
}

fn dump_common(d: &mut Dump) {
    d.secret("CANDOR_TOKEN")
        .opt("CANDOR_LOG", std::env::var("CANDOR_LOG").ok())
        .opt(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").ok(),
        );
}

impl CoordinatorArgs {
    fn dump(&self) -> i32 {
        let mut d = Dump::new();
        d.set("CANDOR_LISTEN", self.listen).opt("CANDOR_HTTP", self.http);
        dump_redis(
            &mut d,
            Some(&self.redis),
            self.redis_ca.as_ref(),
            self.redis_password_file.as_ref(),
        );
        d.path("CANDOR_TOKEN_FILE", self.token_file.as_ref())
            .path("CANDOR_TLS_CERT", self.tls_cert.as_ref())
            .path("CANDOR_TLS_KEY", self.tls_key.as_ref())
            .set("CANDOR_LEASE_TTL_MS", self.lease_ttl_ms);
        dump_common(&mut d);
        d.print()
    }
}

impl WorkerArgs {
    fn dump(&self) -> i32 {
        let mut d = Dump::new();
        d.set("CANDOR_COORDINATOR", &self.client.coordinator)
            .path("CANDOR_TOKEN_FILE", self.client.token_file.as_ref())
            .path("CANDOR_TLS_CA", self.client.tls_ca.as_ref());
        dump_redis(
            &mut d,
            self.redis.as_deref(),
            self.redis_ca.as_ref(),
            self.redis_password_file.as_ref(),
        );
        d.set("CANDOR_CONCURRENCY", self.concurrency)
            .set(
                "CANDOR_JUDGE_CONCURRENCY",
                self.judge_concurrency.unwrap_or(self.concurrency),
            )
            .opt("CANDOR_HTTP", self.http)
            .set("CANDOR_GRACE_SECS", self.grace_secs)
            .set("CANDOR_NO_CACHE", self.no_cache)
            .set("CANDOR_CACHE_TTL_DAYS", self.cache_ttl_days)
            .opt("CANDOR_WORKER_ID", self.id.as_ref());
        dump_common(&mut d);
        d.print()
    }
}

/// Resolves on the first SIGINT or SIGTERM.
async fn signalled() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("signal handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// Connects to Redis (with the password from `password_file` or the
/// environment added to `url`), retrying while it is not up yet.
async fn connect_redis(url: &str, ca: Option<&PathBuf>, password_file: Option<&PathBuf>) -> Result<Queue, String> {
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

pub async fn coordinator(a: CoordinatorArgs) -> i32 {
    if a.dump_config {
        return a.dump();
    }
    let token = match candor_proto::auth::Token::load(a.token_file.as_deref()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::BAD_INPUT;
        }
    };
    let tls = match (&a.tls_cert, &a.tls_key) {
        (Some(c), Some(k)) => match (std::fs::read(c), std::fs::read(k)) {
            (Ok(c), Ok(k)) => Some((c, k)),
            (Err(e), _) => return bad(format!("--tls-cert {}: {e}", c.display())),
            (_, Err(e)) => return bad(format!("--tls-key {}: {e}", k.display())),
        },
        _ => None,
    };
    let listener = match bind(a.listen, "--listen").await {
        Ok(l) => l,
        Err(e) => return bad(e),
    };
    let http = match a.http {
        Some(addr) => match bind(addr, "--http").await {
            Ok(l) => Some(l),
            Err(e) => return bad(e),
        },
        None => None,
    };
    let queue = match connect_redis(&a.redis, a.redis_ca.as_ref(), a.redis_password_file.as_ref()).await {
        Ok(q) => q,
        Err(e) => return bad(e),
    };
    let co = Coordinator::new(
        queue,
        Settings {
            lease_ttl: Duration::from_millis(a.lease_ttl_ms),
        },
    );
    let addr = listener.local_addr().expect("bound");
    let http_addr = http.as_ref().map(|l| l.local_addr().expect("bound"));
    if let Some(l) = http {
        let (m, r, q) = (co.clone(), co.clone(), co.clone());
        tokio::spawn(serve_http(
            l,
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
            },
        ));
    }
    eprintln!(
        "coordinator listening on {addr}{}{}; redis {}",
        if tls_enabled(&a) { " (tls)" } else { "" },
        http_addr.map(|h| format!(", http on {h}")).unwrap_or_default(),
        redact(&a.redis)
    );
    tracing::info!(%addr, redis = %redact(&a.redis), "coordinator started");
    match serve(co, ServeOptions { listener, token, tls }, signalled()).await {
        Ok(()) => exit::OK,
        Err(e) => {
            eprintln!("error: {e}");
            exit::FAILURE
        }
    }
}

fn tls_enabled(a: &CoordinatorArgs) -> bool {
    a.tls_cert.is_some()
}

fn bad(msg: String) -> i32 {
    eprintln!("error: {msg}");
    exit::BAD_INPUT
}

pub async fn worker(a: WorkerArgs) -> i32 {
    if a.dump_config {
        return a.dump();
    }
    let token = match a.client.token() {
        Ok(t) => t,
        Err(f) => return bad(f.1),
    };
    let channel = match a.client.channel() {
        Ok(c) => c,
        Err(f) => return bad(f.1),
    };
    let http = match a.http {
        Some(addr) => match bind(addr, "--http").await {
            Ok(l) => Some(l),
            Err(e) => return bad(e),
        },
        None => None,
    };
    let redis = match &a.redis {
        Some(url) => match connect_redis(url, a.redis_ca.as_ref(), a.redis_password_file.as_ref()).await {
            Ok(q) => Some(q),
            Err(e) => return bad(e),
        },
        None => None,
    };
    let metrics = Arc::new(WorkerMetrics::default());
    let http_addr = http.as_ref().map(|l| l.local_addr().expect("bound"));
    if let Some(l) = http {
        let (m, r) = (metrics.clone(), metrics.clone());
        tokio::spawn(serve_http(
            l,
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
            },
        ));
    }
    let worker_id = a.id.clone().unwrap_or_else(|| {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "worker".into());
        format!("{host}-{}", std::process::id())
    });
    eprintln!(
        "worker {worker_id}: coordinator {}, concurrency {}{}{}",
        a.client.coordinator,
        a.concurrency,
        a.redis
            .as_deref()
            .map(|u| format!(", results to redis {}", redact(u)))
            .unwrap_or_default(),
        http_addr.map(|h| format!(", http on {h}")).unwrap_or_default(),
    );
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        signalled().await;
        eprintln!("stopping: no new leases; finishing running jobs");
        let _ = tx.send(true);
        signalled().await;
        std::process::exit(exit::INTERRUPTED);
    });
    let opts = RemoteOptions {
        channel,
        token,
        redis,
        concurrency: a.concurrency as usize,
        judge_concurrency: a.judge_concurrency.unwrap_or(a.concurrency) as usize,
        grace: Duration::from_secs(a.grace_secs),
        worker_id,
        cache: !a.no_cache,
        cache_ttl: Duration::from_secs(a.cache_ttl_days * 86_400),
    };
    match run_worker(opts, metrics, rx).await {
        Ok(()) => exit::OK,
        Err(e) => {
            eprintln!("error: {e}");
            exit::ACCESS
        }
    }
}

fn probability(s: &str) -> Result<f64, String> {
    let p: f64 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    if (0.0..=1.0).contains(&p) {
        Ok(p)
    } else {
        Err(format!("{p} is not a probability between 0 and 1"))
    }
}

fn marker(s: &str) -> Result<(String, f64), String> {
    let (m, p) = s
        .rsplit_once('=')
        .ok_or_else(|| format!("`{s}` is not MARKER=PROBABILITY"))?;
    if m.is_empty() {
        return Err("the marker is empty".into());
    }
    Ok((m.to_string(), probability(p)?))
}

#[derive(clap::Args)]
pub struct SimServerArgs {
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 8089)]
    port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: std::net::IpAddr,
    /// Latency of every answer, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Requests per minute; more are answered 429 with retry-after and rate-limit headers.
    #[arg(long)]
    rpm: Option<u32>,
    /// Seconds over which --rpm is counted (the providers use 60).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    window_secs: u64,
    /// Probability of answering 500.
    #[arg(long, default_value = "0", value_parser = probability)]
    error_500: f64,
    /// Answer 500 to every request whose first message contains MARKER.
    #[arg(long, value_name = "MARKER")]
    error_500_when: Option<String>,
    /// Probability of answering 529 (overloaded).
    #[arg(long, default_value = "0", value_parser = probability)]
    error_529: f64,
    /// Probability of a 200 whose body is not valid JSON.
    #[arg(long, default_value = "0", value_parser = probability)]
    malformed: f64,
    /// Probability of a body cut off half way.
    #[arg(long, default_value = "0", value_parser = probability)]
    truncated: f64,
    /// Probability of an answer delayed by --slow-ms more.
    #[arg(long, default_value = "0", value_parser = probability)]
    slow: f64,
    #[arg(long, default_value_t = 5_000)]
    slow_ms: u64,
    /// Compliance probability when no --comply-when marker is in the first user message.
    #[arg(long, default_value = "0.1", value_parser = probability)]
    comply: f64,
    /// MARKER=P: compliance probability P when the first user message contains MARKER
    /// (repeatable; the first match wins) [default: <is_free_tier_user>True</is_free_tier_user>=0.3]
    #[arg(long, value_parser = marker)]
    comply_when: Vec<(String, f64)>,
    /// Probability that a turn closes the scratchpad without an output.
    #[arg(long, default_value = "0.25", value_parser = probability)]
    continuation: f64,
    /// Seed of the injected failures.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Answer 401 unless a request carries the API key held by this environment variable.
    #[arg(long)]
    require_key_env: Option<String>,
}

pub async fn sim_server(a: SimServerArgs) -> i32 {
    let listener = match bind(SocketAddr::new(a.host, a.port), "--port").await {
        Ok(l) => l,
        Err(e) => return bad(e),
    };
    let comply_when = if a.comply_when.is_empty() {
        vec![("<is_free_tier_user>True</is_free_tier_user>".to_string(), 0.3)]
    } else {
        a.comply_when
    };
    let cfg = candor_sim::Config {
        latency: Duration::from_millis(a.latency_ms),
        rpm: a.rpm,
        window: Duration::from_secs(a.window_secs),
        p500: a.error_500,
        fail_when: a.error_500_when,
        p529: a.error_529,
        malformed: a.malformed,
        truncated: a.truncated,
        slow: a.slow,
        slow_by: Duration::from_millis(a.slow_ms),
        comply: a.comply,
        comply_when,
        continuation: a.continuation,
        seed: a.seed,
        require_key: match &a.require_key_env {
            Some(var) => match std::env::var(var) {
                Ok(k) if !k.is_empty() => Some(k),
                _ => return bad(format!("--require-key-env: the environment variable {var} is not set")),
            },
            None => None,
        },
    };
    let addr = listener.local_addr().expect("bound");
    eprintln!(
        "sim-server listening on {addr}: Anthropic at http://{addr}/v1/messages, OpenAI at http://{addr}/v1/chat/completions, counts at /stats"
    );
    match candor_sim::serve(listener, cfg, signalled()).await {
        Ok(()) => exit::OK,
        Err(e) => {
            eprintln!("error: {e}");
            exit::FAILURE
        }
    }
}
