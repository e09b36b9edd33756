//! Configuration: flags over `CANDOR_*` variables over defaults (clap's
//! layers), the Redis connection flags every service shares, the
//! variables read without a flag, and `--dump-config`, which is generated
//! from clap's own argument metadata so that a new flag shows up in it
//! without being typed a second time.

use std::path::PathBuf;

use clap::builder::ValueHint;
use clap::{ArgMatches, Command};

use crate::client::redact;

/// How a service reaches Redis. Flattened into every command that talks to
/// Redis, so the flags, their variables and their help exist once.
#[derive(clap::Args, Clone, Debug)]
pub struct RedisArgs {
    /// Redis URL: redis://HOST:PORT or rediss:// for TLS; may carry a password. Prefer the
    /// CANDOR_REDIS_URL environment variable when it does.
    #[arg(id = "redis", long = "redis", value_name = "URL", env = "CANDOR_REDIS_URL", hide_env_values = true, value_hint = ValueHint::Url)]
    pub url: Option<String>,
    /// A PEM CA certificate to trust for a rediss:// Redis (default: the public web roots).
    #[arg(id = "redis_ca", long = "redis-ca", value_name = "FILE", env = "CANDOR_REDIS_CA")]
    pub ca: Option<PathBuf>,
    /// Read the Redis password from this file (or from the CANDOR_REDIS_PASSWORD environment
    /// variable); it is added to the Redis URL.
    #[arg(
        id = "redis_password_file",
        long = "redis-password-file",
        value_name = "FILE",
        env = "CANDOR_REDIS_PASSWORD_FILE",
        hide_env_values = true
    )]
    pub password_file: Option<PathBuf>,
}

/// Where results are archived, as Parquet parts. Flattened into every
/// command that writes or reads the archive.
#[derive(clap::Args, Clone, Debug)]
pub struct ArchiveArgs {
    /// Archive URL: a directory (file:///PATH or a plain path), s3://BUCKET/PREFIX,
    /// gs://BUCKET/PREFIX or az://CONTAINER/PREFIX. Credentials, endpoint and region come from
    /// each SDK's usual variables (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION,
    /// AWS_ENDPOINT_URL, …) or from --archive-options-file. Every process of a cluster must
    /// reach the same archive.
    #[arg(id = "archive", long = "archive", value_name = "URL", env = "CANDOR_ARCHIVE", default_value = "archive", value_hint = ValueHint::Url)]
    pub url: String,
    /// KEY=VALUE lines of object-store settings (aws_access_key_id, aws_endpoint, …) that win
    /// over the environment's: a mounted Secret.
    #[arg(
        id = "archive_options_file",
        long = "archive-options-file",
        value_name = "FILE",
        env = "CANDOR_ARCHIVE_OPTIONS_FILE",
        hide_env_values = true
    )]
    pub options_file: Option<PathBuf>,
}

impl ArchiveArgs {
    /// Opens the archive; the error names the flag.
    pub fn open(&self) -> Result<candor_archive::Archive, String> {
        let options = match &self.options_file {
            Some(p) => candor_archive::read_options(p).map_err(|e| format!("--archive-options-file: {e}"))?,
            None => Vec::new(),
        };
        let loc = candor_archive::Location::open(&self.url, &options).map_err(|e| format!("--archive: {e}"))?;
        Ok(candor_archive::Archive::new(loc))
    }
}

/// A variable candor reads without a flag.
pub struct EnvVar {
    pub name: &'static str,
    /// Its value is never printed: `--dump-config` says only whether it is set.
    pub secret: bool,
    /// Shown by the services' `--dump-config`.
    pub dumped: bool,
    /// What it is, as `--help` says it ("": not in `--help`, as a flag stands for it).
    pub help: &'static str,
    /// The commands whose `--help` shows it (none: only `candor --help`).
    pub read_by: &'static [&'static str],
}

/// The commands that talk to a coordinator and so present its token.
const CLIENTS: &[&str] = &[
    "coordinator",
    "worker",
    "submit",
    "status",
    "watch",
    "report",
    "export",
    "cancel",
    "resume",
    "delete",
    "list",
    "compare",
    "view",
];
/// The commands that call models.
const CALLERS: &[&str] = &["run", "submit", "worker", "calibrate"];

/// Every variable read without a flag (each flag's own variable is in its
/// `#[arg(env = …)]`). Model API keys are named by the spec (`api_key_env`);
/// the two defaults are here for `--help`.
pub const ENV_ONLY: &[EnvVar] = &[
    // The bearer token clients and workers present (or --token-file).
    EnvVar {
        name: candor_proto::auth::TOKEN_ENV,
        secret: true,
        dumped: true,
        help: "the bearer token of the coordinator's API (a secret; or --token-file)",
        read_by: CLIENTS,
    },
    // The Redis password, when --redis-password-file is not given.
    EnvVar {
        name: "CANDOR_REDIS_PASSWORD",
        secret: true,
        dumped: true,
        help: "Redis's password (a secret; or --redis-password-file)",
        read_by: &["coordinator", "worker"],
    },
    // The log filter (tracing's EnvFilter syntax).
    EnvVar {
        name: "CANDOR_LOG",
        secret: false,
        dumped: true,
        help: "the log filter on stderr (a tracing filter such as `info`)",
        read_by: &[],
    },
    // Where traces go (OTLP over gRPC); unset: no traces.
    EnvVar {
        name: "OTEL_EXPORTER_OTLP_ENDPOINT",
        secret: false,
        dumped: true,
        help: "where traces go (OTLP over gRPC); unset: no traces",
        read_by: &[],
    },
    // `candor probe`'s default address: the service's own --http.
    EnvVar {
        name: "CANDOR_HTTP",
        secret: false,
        dumped: false,
        help: "",
        read_by: &[],
    },
    // A worker's default name.
    EnvVar {
        name: "HOSTNAME",
        secret: false,
        dumped: false,
        help: "the worker's default --id",
        read_by: &["worker"],
    },
    // The key of `anthropic/NAME` models (a spec's api_key_env names another).
    EnvVar {
        name: "ANTHROPIC_API_KEY",
        secret: true,
        dumped: false,
        help: "the key of `anthropic/NAME` models (a secret; a spec's api_key_env names another)",
        read_by: CALLERS,
    },
    // The key of `openai/NAME` models.
    EnvVar {
        name: "OPENAI_API_KEY",
        secret: true,
        dumped: false,
        help: "the key of `openai/NAME` models (a secret; a spec's api_key_env names another)",
        read_by: CALLERS,
    },
];

/// `KEY=value` lines of `cmd`'s effective configuration, in the
/// environment's terms, so they can be compared with what a deployment
/// sets: every argument that has a variable, with the value it took (from
/// its flag, its variable or its default) or `(unset)`; URLs without their
/// credentials; then the variables of [`ENV_ONLY`], secrets only as
/// `(set)` or `(unset)`. `effective` gives the value of an argument whose
/// default is another argument's value (by argument id).
pub fn dump(cmd: &Command, m: &ArgMatches, effective: &[(&str, String)]) -> String {
    let mut out = String::new();
    for arg in cmd.get_arguments() {
        let Some(env) = arg.get_env() else { continue };
        let id = arg.get_id().as_str();
        let value = match effective.iter().find(|(k, _)| *k == id) {
            Some((_, v)) => v.clone(),
            None => match m.get_raw(id) {
                Some(raw) => raw.map(|v| v.to_string_lossy()).collect::<Vec<_>>().join(","),
                None => "(unset)".into(),
            },
        };
        let value = if arg.get_value_hint() == ValueHint::Url {
            redact(&value)
        } else {
            value
        };
        out.push_str(&format!("{}={value}\n", env.to_string_lossy()));
    }
    for v in ENV_ONLY.iter().filter(|v| v.dumped) {
        let value = std::env::var(v.name).ok().filter(|s| !s.is_empty());
        let shown = match (value, v.secret) {
            (None, _) => "(unset)".to_string(),
            (Some(_), true) => "(set)".to_string(),
            (Some(s), false) => s,
        };
        out.push_str(&format!("{}={shown}\n", v.name));
    }
    out
}
