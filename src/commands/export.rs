//! `candor export`: a sweep's results as Parquet parts, JSON lines, CSV or
//! Inspect AI eval logs, read from a local run's archive (an out dir and its
//! store) or streamed from a coordinator (a sweep id), one part at a time.

use std::io::Write;
use std::path::{Path, PathBuf};

use candor_archive::{Archive, JobResult, LocalWriter, Location};
use candor_proto::v1 as pb;
use candor_report::report::Report;
use tokio_stream::StreamExt;

use crate::client::{Fail, MaybeClientArgs, rpc_failure};
use crate::exit;

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Format {
    /// A directory of Parquet parts (results/ and texts/, as in the archive).
    Parquet,
    /// results.jsonl: one result per line.
    Jsonl,
    /// results.csv: one row per result, a column per classifier.
    Csv,
    /// Inspect AI eval logs: a directory with one .eval per model (a sample per job, a score per
    /// verdict), for `inspect view` and `inspect_ai.analysis.samples_df`; or one .eval file
    /// when --out ends in .eval and the sweep has one model.
    Inspect,
}

#[derive(clap::Args)]
pub struct ExportArgs {
    /// A local run's out dir (it holds report.json), or a submitted sweep's id (or @FILE).
    what: String,
    #[arg(long, value_enum)]
    format: Format,
    /// Where to write [default: results.parquet/, results.jsonl, results.csv or inspect/ in the out
    /// dir, or in runs/<sweep name> for a sweep id]
    #[arg(long)]
    out: Option<PathBuf>,
    /// The store of the local run (its archive is STORE/archive).
    #[arg(long, env = "CANDOR_STORE", default_value = ".candor/store")]
    store: PathBuf,
    #[command(flatten)]
    client: MaybeClientArgs,
}

/// Where the results go.
enum Sink {
    Parquet(LocalWriter),
    Jsonl(std::io::BufWriter<std::fs::File>),
    Csv(Box<candor_report::csv::CsvWriter<std::io::BufWriter<std::fs::File>>>),
    Inspect(Box<candor_report::inspect::EvalLogs>),
}

fn io_fail(path: &Path) -> impl Fn(std::io::Error) -> Fail + '_ {
    move |e| Fail(exit::FAILURE, format!("cannot write {}: {e}", path.display()))
}

impl Sink {
    fn open(format: Format, out: &Path, report: &Report) -> Result<Sink, Fail> {
        if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io_fail(dir))?;
        }
        let file = || {
            std::fs::File::create(out)
                .map(std::io::BufWriter::new)
                .map_err(io_fail(out))
        };
        Ok(match format {
            Format::Parquet => {
                let name = out.file_name().and_then(|n| n.to_str()).unwrap_or("results.parquet");
                let parent = out
                    .parent()
                    .filter(|d| !d.as_os_str().is_empty())
                    .unwrap_or(Path::new("."));
                Sink::Parquet(LocalWriter::new(parent, name).map_err(|e| Fail(exit::FAILURE, e.to_string()))?)
            }
            Format::Jsonl => Sink::Jsonl(file()?),
            Format::Csv => {
                let names = candor_report::report::classifier_names(report);
                let w = candor_report::csv::CsvWriter::new(&names, file()?).map_err(io_fail(out))?;
                Sink::Csv(Box::new(w))
            }
            Format::Inspect => Sink::Inspect(Box::new(
                candor_report::inspect::EvalLogs::create(report, out).map_err(inspect_fail)?,
            )),
        })
    }

    fn push(&mut self, r: JobResult, out: &Path) -> Result<(), Fail> {
        match self {
            Sink::Parquet(w) => w.push(r).map_err(|e| Fail(exit::FAILURE, e.to_string())),
            Sink::Jsonl(w) => serde_json::to_writer(&mut *w, &r)
                .map_err(std::io::Error::from)
                .and_then(|()| w.write_all(b"\n"))
                .map_err(io_fail(out)),
            Sink::Csv(w) => {
                let bytes = serde_json::to_vec(&r).expect("results serialize");
                match candor_report::lines::Line::parse(&bytes) {
                    Some(line) => w.line(&line).map_err(io_fail(out)),
                    None => Ok(()),
                }
            }
            Sink::Inspect(w) => w.push(&r).map_err(inspect_fail),
        }
    }

    /// Completes what was written; returns the files or directory written.
    fn finish(self, out: &Path) -> Result<Vec<PathBuf>, Fail> {
        match self {
            Sink::Parquet(w) => w.finish().map(|_| ()).map_err(|e| Fail(exit::FAILURE, e.to_string())),
            Sink::Jsonl(w) => w.into_inner().map_err(|e| io_fail(out)(e.into_error())).map(|_| ()),
            Sink::Csv(w) => w.finish().map(|_| ()).map_err(io_fail(out)),
            Sink::Inspect(w) => return w.finish().map_err(inspect_fail),
        }?;
        Ok(vec![out.to_path_buf()])
    }
}

fn inspect_fail(e: candor_report::inspect::InspectError) -> Fail {
    use candor_report::inspect::InspectError;
    match e {
        InspectError::SeveralModels { .. } => Fail(exit::BAD_INPUT, format!("--out {e}")),
        InspectError::Io { .. } => Fail(exit::FAILURE, e.to_string()),
    }
}

fn default_name(format: Format) -> &'static str {
    match format {
        Format::Parquet => "results.parquet",
        Format::Jsonl => "results.jsonl",
        Format::Csv => "results.csv",
        Format::Inspect => "inspect",
    }
}

pub async fn export(a: ExportArgs) -> i32 {
    let r = if Path::new(&a.what).join("report.json").is_file() {
        local(&a).await
    } else {
        remote(&a).await
    };
    match r {
        Ok(n) => {
            eprintln!("exported {n} results");
            exit::OK
        }
        Err(Fail(code, msg)) => {
            eprintln!("error: {msg}");
            code
        }
    }
}

/// From a local run: its report names the sweep, the store's archive
/// holds its parts (every one live).
async fn local(a: &ExportArgs) -> Result<u64, Fail> {
    let dir = Path::new(&a.what);
    let path = dir.join("report.json");
    let text = std::fs::read_to_string(&path).map_err(|e| Fail(exit::BAD_INPUT, format!("{}: {e}", path.display())))?;
    let report: Report =
        serde_json::from_str(&text).map_err(|e| Fail(exit::BAD_INPUT, format!("{}: {e}", path.display())))?;
    let archive_dir = a.store.join(candor_coordinator::local::ARCHIVE_DIR);
    let id = &report.sweep.id;
    if !archive_dir.join(id).is_dir() {
        return Err(Fail(
            exit::NOT_FOUND,
            format!(
                "no archive of sweep {id} in {} (--store): run `candor run` on its spec again to write it",
                archive_dir.display()
            ),
        ));
    }
    let loc = Location::dir(&archive_dir, "").map_err(|e| Fail(exit::FAILURE, e.to_string()))?;
    let archive = Archive::new(loc);
    let out = a.out.clone().unwrap_or_else(|| dir.join(default_name(a.format)));
    let mut sink = Sink::open(a.format, &out, &report)?;
    let parts = archive.list(id).await.map_err(|e| Fail(exit::FAILURE, e.to_string()))?;
    let mut n = 0u64;
    for p in parts {
        let mut rows = Vec::new();
        archive
            .read(id, &p.name, |_, r| {
                rows.push(r);
                Ok(())
            })
            .await
            .map_err(|e| Fail(exit::FAILURE, e.to_string()))?;
        n += rows.len() as u64;
        for r in rows {
            sink.push(r, &out)?;
        }
    }
    for path in sink.finish(&out)? {
        eprintln!("wrote {}", path.display());
    }
    Ok(n)
}

/// From a coordinator: the results stream, each job's live result once.
async fn remote(a: &ExportArgs) -> Result<u64, Fail> {
    let client = a.client.client(|| {
        format!(
            "{}: not a local run's out dir (no report.json); to export a sweep id, give --coordinator",
            a.what
        )
    })?;
    let mut c = client.sweeps()?;
    let id = pb::SweepRef {
        sweep_id: super::remote::sweep_id(&a.what)?,
    };
    let r = c
        .report(id.clone())
        .await
        .map_err(|s| rpc_failure("export", &s))?
        .into_inner();
    let report: Report = serde_json::from_str(&r.report_json).map_err(|e| {
        Fail(
            exit::FAILURE,
            format!("export: the coordinator sent an unreadable report: {e}"),
        )
    })?;
    let out = a.out.clone().unwrap_or_else(|| {
        PathBuf::from("runs")
            .join(&report.sweep.name)
            .join(default_name(a.format))
    });
    let mut sink = Sink::open(a.format, &out, &report)?;
    let mut stream = c.results(id).await.map_err(|s| rpc_failure("export", &s))?.into_inner();
    let mut n = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|s| rpc_failure("export", &s))?;
        for line in chunk.jsonl.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let r: JobResult = serde_json::from_slice(line).map_err(|e| {
                Fail(
                    exit::FAILURE,
                    format!("export: the coordinator sent an unreadable result: {e}"),
                )
            })?;
            sink.push(r, &out)?;
            n += 1;
        }
    }
    for path in sink.finish(&out)? {
        eprintln!("wrote {}", path.display());
    }
    Ok(n)
}
