//! The coordinator's sweeps for the view, read through the same library
//! calls its gRPC API answers with: every sweep's state (`all_states`, as
//! `/metrics` reads it), a sweep's status (the `Get` RPC's handler) and its
//! report (`Coordinator::report`, from the tally in Redis; once it has
//! ended, with its transcripts from the archive, as `candor report` writes
//! report.html).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use candor_coordinator::server::{Coordinator, ServerError, SweepsApi};
use candor_proto::v1 as pb;
use candor_proto::v1::sweeps_server::Sweeps as _;
use candor_queue::SweepState;
use candor_report::html::{Limits, Sample};
use candor_report::report::Report;

use super::{CellRow, Detail, FailureRow, Row, ViewError, rfc3339};

/// How long a report built from the tally is reused: the page's counts and
/// its report frame, and several viewers, share one.
const REPORT_FRESH: Duration = Duration::from_secs(2);
/// Reports kept for that long, at most.
const MAX_REPORTS: usize = 64;
/// Report pages of ended sweeps kept (each up to the page's own limits).
const MAX_PAGES: usize = 4;
/// Run labels kept (a sweep's never changes).
const MAX_LABELS: usize = 4096;

/// The coordinator's sweeps.
pub struct Remote {
    co: Arc<Coordinator>,
    labels: Mutex<HashMap<String, Option<String>>>,
    reports: Mutex<HashMap<String, (Instant, Arc<Report>)>>,
    /// Ended sweeps' pages.
    pages: Mutex<HashMap<String, Page>>,
}

/// An ended sweep's report page, with the `finished_ms` it was built for.
type Page = (u64, Arc<Vec<u8>>);

impl Remote {
    pub fn new(co: Arc<Coordinator>) -> Remote {
        Remote {
            co,
            labels: Mutex::default(),
            reports: Mutex::default(),
            pages: Mutex::default(),
        }
    }

    pub async fn list(&self) -> Result<Vec<Row>, ViewError> {
        let states = self.co.all_states().await.map_err(|e| from_server(e.into()))?;
        let mut rows = Vec::with_capacity(states.len());
        for st in &states {
            rows.push(row(st, self.label(&st.id).await));
        }
        rows.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.id.cmp(&b.id)));
        Ok(rows)
    }

    pub async fn detail(&self, id: &str) -> Result<Detail, ViewError> {
        let req = tonic::Request::new(pb::SweepRef { sweep_id: id.into() });
        let s = SweepsApi(self.co.clone())
            .get(req)
            .await
            .map_err(|s| from_code(s.code(), id, s.message()))?
            .into_inner();
        let report = self.report(id).await?;
        let failed = |model: &str, condition: &str| {
            report
                .cells
                .iter()
                .filter(|c| c.model == model && c.condition == condition)
                .map(|c| c.failed)
                .sum()
        };
        let cells = s
            .cells
            .iter()
            .map(|c| CellRow {
                model: c.model.clone(),
                condition: c.condition.clone(),
                total: c.total,
                done: c.done,
                failed: failed(&c.model, &c.condition),
            })
            .collect();
        let failures = s
            .failures
            .iter()
            .map(|f| FailureRow {
                model: f.model.clone(),
                kind: f.kind.clone(),
                jobs: f.jobs,
                first_error: f.first_error.clone(),
            })
            .collect();
        let row = Row {
            id: s.sweep_id,
            name: s.name,
            state: s.state,
            reason: s.reason,
            run_label: report.sweep.provenance.run_label.clone(),
            created: rfc3339(s.created_ms),
            jobs_total: s.jobs_total,
            jobs_done: s.jobs_done,
            jobs_failed: s.jobs_failed,
            cost_usd: s.cost_usd,
            dir: None,
            report: true,
        };
        Ok(Detail {
            row,
            jobs_in_flight: Some(s.jobs_in_flight),
            cells,
            failures,
        })
    }

    /// The sweep's report.html: from the tally while it runs, with its
    /// transcripts once it has ended.
    pub async fn report_page(&self, id: &str) -> Result<Arc<Vec<u8>>, ViewError> {
        let st = self
            .co
            .queue()
            .state(id)
            .await
            .map_err(|e| from_server(e.into()))?
            .ok_or_else(|| ViewError::NotFound(id.to_string()))?;
        if st.state == "running" || st.state == "paused" {
            let report = self.report(id).await?;
            let mut html = Vec::new();
            candor_report::html::write_html(&report, std::io::empty(), &mut html)
                .map_err(|e| ViewError::Internal(format!("report page: {e}")))?;
            return Ok(Arc::new(html));
        }
        if let Some((finished, page)) = self.pages.lock().expect("lock").get(id)
            && *finished == st.finished_ms
        {
            return Ok(page.clone());
        }
        let page = Arc::new(self.full_page(id, st.total).await?);
        let mut pages = self.pages.lock().expect("lock");
        if pages.len() >= MAX_PAGES {
            pages.clear();
        }
        pages.insert(id.to_string(), (st.finished_ms, page.clone()));
        Ok(page)
    }

    /// report.html as `candor report` writes it: the report, and a sample
    /// of the live results read part by part from the archive.
    async fn full_page(&self, id: &str, total: u64) -> Result<Vec<u8>, ViewError> {
        let mut report = self.co.report(id).await.map_err(from_server)?;
        let live = self.co.live_parts(id, total).await.map_err(from_server)?;
        let mut sample = Sample::new(Limits::default());
        let mut cache = candor_report::report::cache::CacheTally::default();
        for i in 0..live.parts.len() {
            self.co
                .read_live(id, &live, i, |r| {
                    let json = serde_json::to_vec(&r).expect("results serialize");
                    if let Some(line) = candor_report::lines::Line::parse(&json) {
                        sample.offer(&line);
                    }
                    cache.add(&json);
                })
                .await
                .map_err(from_server)?;
        }
        if report.costs.iter().any(|c| c.input_per_mtok != 0.0) {
            cache.apply(&mut report);
        }
        let mut html = Vec::new();
        sample
            .write(&report, &mut html)
            .map_err(|e| ViewError::Internal(format!("report page: {e}")))?;
        Ok(html)
    }

    /// The sweep's report from the tally, at most `REPORT_FRESH` old.
    async fn report(&self, id: &str) -> Result<Arc<Report>, ViewError> {
        if let Some((at, r)) = self.reports.lock().expect("lock").get(id)
            && at.elapsed() < REPORT_FRESH
        {
            return Ok(r.clone());
        }
        let r = Arc::new(self.co.report(id).await.map_err(from_server)?);
        let mut reports = self.reports.lock().expect("lock");
        if reports.len() >= MAX_REPORTS {
            reports.clear();
        }
        reports.insert(id.to_string(), (Instant::now(), r.clone()));
        Ok(r)
    }

    /// The sweep's run label, from the bundle it was submitted with (read
    /// once); none when it cannot be read now.
    async fn label(&self, id: &str) -> Option<String> {
        if let Some(l) = self.labels.lock().expect("lock").get(id) {
            return l.clone();
        }
        #[derive(serde::Deserialize)]
        struct RunOnly {
            #[serde(default)]
            run: String,
        }
        let json = self.co.queue().bundle(id).await.ok()??;
        let run = serde_json::from_str::<RunOnly>(&json).ok()?.run;
        let label = (!run.is_empty()).then_some(run);
        let mut labels = self.labels.lock().expect("lock");
        if labels.len() >= MAX_LABELS {
            labels.clear();
        }
        labels.insert(id.to_string(), label.clone());
        label
    }
}

fn row(st: &SweepState, run_label: Option<String>) -> Row {
    Row {
        id: st.id.clone(),
        name: st.name.clone(),
        state: st.state.clone(),
        reason: st.reason.clone(),
        run_label,
        created: rfc3339(st.created_ms),
        jobs_total: st.total,
        jobs_done: st.done,
        jobs_failed: st.failed,
        cost_usd: st.spent_micro_usd as f64 / 1e6,
        dir: None,
        report: true,
    }
}

fn from_server(e: ServerError) -> ViewError {
    let id = match &e {
        ServerError::NotFound(id) => id.clone(),
        _ => String::new(),
    };
    from_code(e.code(), &id, &e.to_string())
}

/// What the view answers for an RPC status code.
fn from_code(code: tonic::Code, id: &str, message: &str) -> ViewError {
    match code {
        tonic::Code::NotFound => ViewError::NotFound(id.to_string()),
        tonic::Code::InvalidArgument => ViewError::BadId,
        tonic::Code::Unavailable => ViewError::Unavailable(message.to_string()),
        _ => ViewError::Internal(message.to_string()),
    }
}
