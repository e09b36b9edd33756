//! Where an archive lives: an `object_store` URL. `file://` (or a plain
//! path) for a directory, `s3://bucket/prefix` for S3 and S3-compatible
//! servers, `gs://bucket/prefix` for Google Cloud Storage,
//! `az://container/prefix` for Azure Blob Storage.
//!
//! Credentials, endpoints and regions come from the variables each SDK
//! documents (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`,
//! `AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP`; `GOOGLE_SERVICE_ACCOUNT`;
//! `AZURE_STORAGE_ACCOUNT_NAME`, `AZURE_STORAGE_ACCOUNT_KEY`, …), read by
//! object_store's `from_env` builders, and from an options file of
//! `KEY=VALUE` lines with the same names (a mounted Secret), whose values
//! win over the environment's. Values are never shown: an archive is named
//! by its URL alone, which holds no credential.

use std::sync::Arc;

use object_store::ObjectStore;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::path::Path;

use crate::ArchiveError;

/// The largest options file read, in bytes.
const MAX_OPTIONS_BYTES: u64 = 64 * 1024;

/// An archive's store and the prefix under it.
#[derive(Clone)]
pub struct Location {
    pub(crate) store: Arc<dyn ObjectStore>,
    pub(crate) prefix: Path,
    url: String,
}

impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Location").field("url", &self.url).finish()
    }
}

impl Location {
    /// The archive named by `url`, with settings from `options` (the lines
    /// of an options file) over those of the environment. A plain path is
    /// a directory, created when missing.
    pub fn open(url: &str, options: &[(String, String)]) -> Result<Location, ArchiveError> {
        let bad = |reason: String| ArchiveError::Url {
            url: url.to_string(),
            reason,
        };
        if let Some((_, host)) = url.rsplit_once('@') {
            let scheme = url.split_once("://").map_or("", |(s, _)| s);
            return Err(ArchiveError::Url {
                url: format!("{scheme}://…@{host}"),
                reason: "put credentials in the environment or the options file, not the URL".into(),
            });
        }
        let (scheme, rest) = url.split_once("://").unwrap_or(("file", url));
        let store: Arc<dyn ObjectStore> = match scheme {
            "file" => return Location::dir(std::path::Path::new(rest), url),
            "s3" | "s3a" => {
                let mut b = AmazonS3Builder::from_env().with_url(url);
                for (k, v) in options {
                    let key: AmazonS3ConfigKey = k.parse().map_err(|_| bad(format!("unknown S3 option {k}")))?;
                    b = b.with_config(key, v);
                }
                Arc::new(b.build().map_err(|e| bad(e.to_string()))?)
            }
            "gs" => {
                let mut b = GoogleCloudStorageBuilder::from_env().with_url(url);
                for (k, v) in options {
                    let key: GoogleConfigKey = k.parse().map_err(|_| bad(format!("unknown GCS option {k}")))?;
                    b = b.with_config(key, v);
                }
                Arc::new(b.build().map_err(|e| bad(e.to_string()))?)
            }
            "az" | "azure" | "abfs" | "abfss" => {
                let mut b = MicrosoftAzureBuilder::from_env().with_url(url);
                for (k, v) in options {
                    let key: AzureConfigKey = k.parse().map_err(|_| bad(format!("unknown Azure option {k}")))?;
                    b = b.with_config(key, v);
                }
                Arc::new(b.build().map_err(|e| bad(e.to_string()))?)
            }
            other => {
                return Err(bad(format!(
                    "unknown scheme {other}: use file://, s3://, gs:// or az://"
                )));
            }
        };
        let path = url::Url::parse(url).map_err(|e| bad(e.to_string()))?;
        let prefix = Path::from_url_path(path.path()).map_err(|e| bad(e.to_string()))?;
        Ok(Location {
            store,
            prefix,
            url: url.to_string(),
        })
    }

    /// An archive in a local directory, created when missing.
    pub fn dir(dir: &std::path::Path, url: &str) -> Result<Location, ArchiveError> {
        let io = |source| ArchiveError::Dir {
            path: dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let abs = std::fs::canonicalize(dir).map_err(io)?;
        let store = object_store::local::LocalFileSystem::new_with_prefix(&abs).map_err(|e| ArchiveError::Url {
            url: url.to_string(),
            reason: e.to_string(),
        })?;
        Ok(Location {
            store: Arc::new(store.with_automatic_cleanup(true)),
            prefix: Path::default(),
            url: format!("file://{}", abs.display()),
        })
    }

    /// The URL, which holds no secret.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub(crate) fn path(&self, parts: &[&str]) -> Path {
        parts.iter().fold(self.prefix.clone(), |p, s| p.join(*s))
    }
}

/// Reads an options file: `KEY=VALUE` lines, `#` comments and blank lines
/// skipped. The error names the file and line, never a value.
pub fn read_options(path: &std::path::Path) -> Result<Vec<(String, String)>, ArchiveError> {
    use std::io::Read;
    let bad = |reason: String| ArchiveError::Options {
        path: path.to_path_buf(),
        reason,
    };
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_OPTIONS_BYTES + 1).read_to_string(&mut text))
        .map_err(|e| bad(e.to_string()))?;
    if text.len() as u64 > MAX_OPTIONS_BYTES {
        return Err(bad(format!("larger than {MAX_OPTIONS_BYTES} bytes")));
    }
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            return Err(bad(format!("line {}: expected KEY=VALUE", n + 1)));
        };
        out.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    Ok(out)
}
