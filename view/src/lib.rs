//! The live web view, read-only: `/view` lists the sweeps, `/view/sweeps/ID`
//! shows one's progress by model × condition and its report page, and both
//! pages poll `/view/api/sweeps[/ID]` for JSON once a second. The
//! coordinator serves it on its `--http` port, for the sweeps in its Redis
//! and behind its token (`auth`); `candor view` serves it for local runs'
//! out dirs. The pages load nothing but their own script and style from
//! this server, and write what they fetch into the page as text only.

mod auth;
mod local;
mod pages;
pub mod progress_file;
mod remote;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;

pub use auth::Auth;
pub use local::{MAX_DEPTH, Runs, find_runs};
pub use remote::Remote;

/// The most sweeps the list answers with.
const MAX_LISTED: usize = 1000;

/// Where the sweeps come from.
pub enum Source {
    /// A coordinator's sweeps, in its Redis.
    Remote(Remote),
    /// Local runs' out dirs.
    Local(Runs),
}

/// What went wrong answering a request. Messages never hold the token.
#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    #[error("log in at /view, or send the token as Authorization: Bearer")]
    Unauthorized,
    #[error("not a sweep id: letters, digits and '-' only, at most 64")]
    BadId,
    #[error("no sweep or run with id {0}")]
    NotFound(String),
    /// The sweep has no report page yet (a local run writes it at its end).
    #[error("no report yet: {0}")]
    NoReport(String),
    /// Redis or the archive is unreachable: try again.
    #[error("unavailable: {0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

impl ViewError {
    fn status(&self) -> StatusCode {
        match self {
            ViewError::Unauthorized => StatusCode::UNAUTHORIZED,
            ViewError::BadId => StatusCode::BAD_REQUEST,
            ViewError::NotFound(_) | ViewError::NoReport(_) => StatusCode::NOT_FOUND,
            ViewError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ViewError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ViewError {
    fn into_response(self) -> Response {
        if matches!(self, ViewError::Unavailable(_) | ViewError::Internal(_)) {
            tracing::warn!(error = %self, "view request failed");
        }
        let body = serde_json::json!({ "error": self.to_string() }).to_string();
        with_headers(self.status(), "application/json", None, body)
    }
}

/// A sweep as the list shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// What the sweep's page is under: the sweep id (a local run's, with
    /// `-2`, `-3`… when two out dirs hold the same sweep).
    pub id: String,
    pub name: String,
    pub state: String,
    /// Why it is paused or stopped.
    pub reason: String,
    pub run_label: Option<String>,
    /// RFC 3339, UTC.
    pub created: Option<String>,
    pub jobs_total: u64,
    pub jobs_done: u64,
    pub jobs_failed: u64,
    pub cost_usd: f64,
    /// A local run's out dir.
    pub dir: Option<String>,
    /// Whether `/view/sweeps/ID/report` has a page.
    pub report: bool,
}

/// One sweep: its row, progress by model × condition and failures.
#[derive(Debug, Clone, Serialize)]
pub struct Detail {
    #[serde(flatten)]
    pub row: Row,
    pub jobs_in_flight: Option<u64>,
    pub cells: Vec<CellRow>,
    pub failures: Vec<FailureRow>,
}

/// A model × condition, summed over prompt variants.
#[derive(Debug, Clone, Serialize)]
pub struct CellRow {
    pub model: String,
    pub condition: String,
    pub total: u64,
    pub done: u64,
    pub failed: u64,
}

/// Jobs of a model that failed one way.
#[derive(Debug, Clone, Serialize)]
pub struct FailureRow {
    pub model: String,
    pub kind: String,
    pub jobs: u64,
    pub first_error: String,
}

impl Source {
    async fn list(&self) -> Result<Vec<Row>, ViewError> {
        match self {
            Source::Remote(r) => r.list().await,
            Source::Local(l) => l.list().await,
        }
    }

    async fn detail(&self, id: &str) -> Result<Detail, ViewError> {
        match self {
            Source::Remote(r) => r.detail(id).await,
            Source::Local(l) => l.detail(id).await,
        }
    }

    async fn report_page(&self, id: &str) -> Result<Arc<Vec<u8>>, ViewError> {
        match self {
            Source::Remote(r) => r.report_page(id).await,
            Source::Local(l) => l.report_page(id).await,
        }
    }
}

struct ViewState {
    source: Source,
    auth: Auth,
}

type Shared = State<Arc<ViewState>>;

/// The view's routes, all under `/view`.
pub fn router(source: Source, auth: Auth) -> axum::Router {
    let state = Arc::new(ViewState { source, auth });
    axum::Router::new()
        .route("/view", get(list_page))
        .route("/view/", get(list_page))
        .route("/view/sweeps/{id}", get(sweep_page))
        .route("/view/sweeps/{id}/report", get(report_page))
        .route("/view/api/sweeps", get(api_list))
        .route("/view/api/sweeps/{id}", get(api_detail))
        .route("/view/login", post(login))
        .route("/view/static/view.js", get(|| asset("text/javascript", pages::SCRIPT)))
        .route("/view/static/view.css", get(|| asset("text/css", pages::STYLE)))
        .with_state(state)
}

/// The coordinator's view: its sweeps, behind the token of its gRPC API.
pub fn for_coordinator(
    co: Arc<candor_coordinator::server::Coordinator>,
    token: &candor_proto::auth::Token,
) -> axum::Router {
    router(Source::Remote(Remote::new(co)), Auth::token(token))
}

/// `id` if it can name a sweep or a local run.
fn checked(id: &str) -> Result<&str, ViewError> {
    let ok = !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if ok { Ok(id) } else { Err(ViewError::BadId) }
}

async fn list_page(State(s): Shared, headers: HeaderMap) -> Response {
    if !s.auth.admits(&headers) {
        return login_form(&s.auth, "/view", false);
    }
    page(StatusCode::OK, pages::list())
}

async fn sweep_page(State(s): Shared, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let Ok(id) = checked(&id) else {
        return ViewError::BadId.into_response();
    };
    if !s.auth.admits(&headers) {
        return login_form(&s.auth, &format!("/view/sweeps/{id}"), false);
    }
    page(StatusCode::OK, pages::sweep(id))
}

async fn report_page(State(s): Shared, headers: HeaderMap, Path(id): Path<String>) -> Result<Response, ViewError> {
    let id = checked(&id)?;
    if !s.auth.admits(&headers) {
        return Err(ViewError::Unauthorized);
    }
    let html = s.source.report_page(id).await?;
    // report.html carries its own Content-Security-Policy (its script by
    // hash, nothing loaded); this one only keeps it out of other sites' frames.
    let mut r = with_headers(
        StatusCode::OK,
        "text/html; charset=utf-8",
        None,
        Body::from(html.to_vec()),
    );
    r.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("frame-ancestors 'self'"),
    );
    Ok(r)
}

async fn api_list(State(s): Shared, headers: HeaderMap) -> Result<Response, ViewError> {
    if !s.auth.admits(&headers) {
        return Err(ViewError::Unauthorized);
    }
    let mut rows = s.source.list().await?;
    let truncated = rows.len() > MAX_LISTED;
    rows.truncate(MAX_LISTED);
    Ok(json(&serde_json::json!({ "sweeps": rows, "truncated": truncated })))
}

async fn api_detail(State(s): Shared, headers: HeaderMap, Path(id): Path<String>) -> Result<Response, ViewError> {
    let id = checked(&id)?;
    if !s.auth.admits(&headers) {
        return Err(ViewError::Unauthorized);
    }
    Ok(json(&s.source.detail(id).await?))
}

/// The login form's POST: the token, and the page to go back to.
async fn login(State(s): Shared, headers: HeaderMap, body: Body) -> Response {
    if !auth::same_origin(&headers) {
        return with_headers(
            StatusCode::FORBIDDEN,
            "text/plain",
            None,
            "cross-origin login refused\n",
        );
    }
    let Ok(bytes) = axum::body::to_bytes(body, auth::MAX_FORM_BYTES).await else {
        return with_headers(StatusCode::PAYLOAD_TOO_LARGE, "text/plain", None, "form too large\n");
    };
    let form = auth::Form::parse(&bytes);
    let next = auth::safe_next(&form.next);
    match s.auth.login(&form.token) {
        Some(cookie) => {
            let mut r = with_headers(StatusCode::SEE_OTHER, "text/plain", None, "");
            let h = r.headers_mut();
            h.insert(header::LOCATION, HeaderValue::from_str(next).expect("checked path"));
            h.insert(header::SET_COOKIE, HeaderValue::from_str(&cookie).expect("hex cookie"));
            r
        }
        None => login_form(&s.auth, next, true),
    }
}

/// The login form (401), or, with no token to ask for, the way on.
fn login_form(auth: &Auth, next: &str, wrong: bool) -> Response {
    if !auth.required() {
        let mut r = with_headers(StatusCode::SEE_OTHER, "text/plain", None, "");
        r.headers_mut()
            .insert(header::LOCATION, HeaderValue::from_str(next).expect("checked path"));
        return r;
    }
    page(StatusCode::UNAUTHORIZED, pages::login(next, wrong))
}

/// The pages' policy: their own script, style, JSON and frames only.
const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
     frame-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

fn page(status: StatusCode, html: String) -> Response {
    with_headers(status, "text/html; charset=utf-8", Some(PAGE_CSP), html)
}

fn json(value: &impl Serialize) -> Response {
    let body = serde_json::to_vec(value).expect("views serialize");
    with_headers(StatusCode::OK, "application/json", None, body)
}

async fn asset(content_type: &'static str, text: &'static str) -> Response {
    with_headers(StatusCode::OK, content_type, None, text)
}

/// A response that no cache keeps, no browser sniffs, and no other site gets a referrer from.
fn with_headers(
    status: StatusCode,
    content_type: &'static str,
    csp: Option<&'static str>,
    body: impl Into<Body>,
) -> Response {
    let mut r = Response::new(body.into());
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    if let Some(csp) = csp {
        h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(csp));
    }
    r
}

/// A Unix time in milliseconds as RFC 3339 in UTC.
fn rfc3339(ms: u64) -> Option<String> {
    (ms > 0).then(|| candor_core::time::rfc3339(ms / 1000, ""))
}
