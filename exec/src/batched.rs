//! Batching: the layer that sends a batched model's calls through its
//! provider's batch API. Calls made while a round is open (`window_secs`)
//! go out together as one batch; each caller waits for its own request's
//! outcome, so a multi-turn job sends its next turn in a later round.
//!
//! Crash safety rests on two things. A request's custom_id is derived from
//! the request itself (the response cache's key of it and the try), so a
//! job that runs again after a crash asks for the same custom_ids. And a batch is written to the [`Journal`] with its
//! custom_ids before it is submitted and with the provider's id as soon as
//! it is created; a call whose custom_id a recorded batch holds follows
//! that batch (polls it, reads its results) instead of submitting. The one
//! window left is between the provider creating a batch and the journal
//! recording its id: OpenAI batches carry the key in their `metadata` and
//! are found again by it; Anthropic batches carry none, so a crash inside
//! that window (one HTTP answer and one journal write) submits their calls
//! again.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use candor_core::ErrorKind;
use candor_core::spec::batch::Batch;
use sha2::Digest;
use tokio::sync::oneshot;

use crate::backend::{Backend, BackendError, BoxFuture, ChatReply, ChatRequest};
use crate::batch::journal::{Journal, JournalError, Recorded};
use crate::batch::stats::STATS;
use crate::batch::{Api, BatchRequest, Outcome};

/// Outcomes kept for calls that have not asked for them yet (a restarted
/// process's jobs come back one by one); past this, they are read again.
const MAX_UNCLAIMED: usize = 100_000;
/// How long a recorded batch without a provider id is waited for (its
/// submitter may be alive and still submitting: up to four tries of the
/// model's timeout) before it is taken for one whose submitter died.
const ORPHAN_AFTER: Duration = Duration::from_secs(30 * 60);
/// Tries of one submission when the provider cannot be reached.
const SUBMIT_TRIES: u32 = 4;
/// Looks at a batch the provider refuses in a row, or failed reads of its
/// results, before its calls are given up on.
const GIVE_UP_AFTER: u32 = 10;

/// What a call gets back from its batch.
#[derive(Debug, Clone)]
enum Got {
    Reply(ChatReply),
    /// Failed for good (a refused key, a request the provider refuses).
    Failed(BackendError),
    /// Expired, errored or canceled: send it again in a later batch.
    Again(BackendError),
    /// Its batch was never created: ask again under the same custom_id.
    Resend,
}

impl Got {
    fn of(o: Outcome) -> Got {
        match o {
            Outcome::Succeeded(r) => Got::Reply(r),
            Outcome::Errored(e) if e.is_retryable() => Got::Again(e),
            Outcome::Errored(e) => Got::Failed(e),
            Outcome::Expired => Got::Again(again("expired before the provider processed it")),
            Outcome::Canceled => Got::Again(again("was canceled")),
        }
    }
}

fn again(what: &str) -> BackendError {
    BackendError::Retryable {
        message: format!("the batched request {what}"),
        retry_after: None,
        kind: ErrorKind::Timeout,
    }
}

fn journal_error(e: JournalError) -> BackendError {
    BackendError::Retryable {
        message: e.to_string(),
        retry_after: None,
        kind: ErrorKind::Transport,
    }
}

#[derive(Default)]
struct State {
    /// Calls waiting for an outcome, by custom_id.
    waiting: HashMap<String, Vec<oneshot::Sender<Got>>>,
    /// The open round: calls gathered for the next batch, and their bytes.
    round: Vec<BatchRequest>,
    round_bytes: usize,
    round_open: bool,
    /// Batches followed by a task of this process, by key.
    following: std::collections::HashSet<String>,
    /// Outcomes read for calls that have not asked yet.
    unclaimed: HashMap<String, Got>,
    /// The calls that follow a batch recorded before they asked, by its
    /// key: asked again if that batch turns out never to have been created.
    on: HashMap<String, Vec<String>>,
}

/// What a process knows of a custom_id before it looks in the journal.
enum Known {
    /// Its outcome, read earlier.
    Outcome(Got),
    /// A call already waits for it: the sender was added beside it.
    Waiting,
    /// Nothing: the sender back.
    New(oneshot::Sender<Got>),
}

struct Shared {
    api: Api,
    journal: Arc<dyn Journal>,
    cfg: Batch,
    /// The model entry's id.
    model: String,
    state: Mutex<State>,
}

/// The layer. It replaces the retries and rate limits of realtime calls:
/// a batch's requests do not count against the realtime limits, and a
/// request that expires or errors is sent again in a later batch.
pub struct Batched(Arc<Shared>);

impl Batched {
    pub fn new(api: Api, journal: Arc<dyn Journal>, cfg: Batch, model: &str) -> Batched {
        Batched(Arc::new(Shared {
            api,
            journal,
            cfg,
            model: model.to_string(),
            state: Mutex::new(State::default()),
        }))
    }
}

/// The custom_id of a request's `try_`-th batch: what the request asks (as
/// the response cache keys it) and the try. Not the job's attempt: a job
/// leased again after its worker died is a new attempt asking the same
/// requests, and must find them. Anthropic takes `[a-zA-Z0-9_-]{1,64}`.
pub fn custom_id(req: &ChatRequest<'_>, try_: u32) -> String {
    format!("{}-t{try_}", candor_core::hash::hex(&crate::cache::key(req)))
}

impl Backend for Batched {
    fn complete<'a>(&'a self, req: ChatRequest<'a>) -> BoxFuture<'a, Result<ChatReply, BackendError>> {
        Box::pin(async move {
            let body = self.0.api.body(&req);
            let mut last = None;
            let mut try_ = 0;
            // The job's earlier attempts went through tries below this
            // bound: their outcomes are read again (a failed one moves on
            // to the next try), so each attempt has `tries` of its own.
            let bound = self.0.cfg.tries.saturating_mul(req.attempt.max(1));
            while try_ < bound {
                let id = custom_id(&req, try_);
                match self.0.clone().call(id, &body).await? {
                    Got::Reply(r) => return Ok(r),
                    Got::Failed(e) => return Err(e),
                    Got::Again(e) => {
                        last = Some(e);
                        try_ += 1;
                    }
                    Got::Resend => {}
                }
            }
            let e = last.unwrap_or_else(|| again("was not answered"));
            Err(BackendError::Retryable {
                message: format!("sent in {bound} batches: {e}"),
                retry_after: None,
                kind: e.kind(),
            }
            .context(&format!("model {}", self.0.model)))
        })
    }
}

impl Shared {
    /// One request under one custom_id: its outcome from this process's
    /// batches, from the recorded batch that holds it, or from a new one.
    async fn call(self: Arc<Self>, id: String, body: &serde_json::Value) -> Result<Got, BackendError> {
        let (tx, rx) = oneshot::channel();
        match self.known(&id, tx) {
            Known::Outcome(g) => return Ok(g),
            Known::Waiting => {}
            Known::New(tx) => {
                let held = self.journal.holder(&id).await.map_err(journal_error)?;
                if let Some(g) = self.register(id, held, body, tx) {
                    return Ok(g);
                }
            }
        }
        Ok(rx.await.unwrap_or(Got::Resend))
    }

    /// What this process already knows of `id`.
    fn known(&self, id: &str, tx: oneshot::Sender<Got>) -> Known {
        let mut st = self.state.lock().expect("batch state");
        if let Some(g) = st.unclaimed.remove(id) {
            return Known::Outcome(g);
        }
        match st.waiting.get_mut(id) {
            Some(w) => {
                w.push(tx);
                Known::Waiting
            }
            None => Known::New(tx),
        }
    }

    /// Registers `tx` as waiting for `id`: on the recorded batch `held`,
    /// or in the open round.
    fn register(
        self: &Arc<Self>,
        id: String,
        held: Option<String>,
        body: &serde_json::Value,
        tx: oneshot::Sender<Got>,
    ) -> Option<Got> {
        let mut st = self.state.lock().expect("batch state");
        if let Some(g) = st.unclaimed.remove(&id) {
            return Some(g);
        }
        let first = !st.waiting.contains_key(&id);
        st.waiting.entry(id.clone()).or_default().push(tx);
        if first {
            match held {
                Some(key) => {
                    STATS.followed.fetch_add(1, Ordering::Relaxed);
                    st.on.entry(key.clone()).or_default().push(id);
                    self.follow(&mut st, key);
                }
                None => {
                    if !id.ends_with("-t0") {
                        STATS.retried.fetch_add(1, Ordering::Relaxed);
                    }
                    self.gather(&mut st, id, body)
                }
            }
        }
        None
    }

    /// Adds a request to the open round; submits the round when it is full,
    /// else opens it for `window_secs`.
    fn gather(self: &Arc<Self>, st: &mut State, id: String, body: &serde_json::Value) {
        let bytes = body.to_string().len() + id.len() + 64;
        let (most, most_bytes) = self.api.limits();
        let most = self.cfg.max_requests.map_or(most, |n| (n as usize).min(most));
        if !st.round.is_empty() && st.round_bytes + bytes > most_bytes {
            let round = std::mem::take(&mut st.round);
            st.round_bytes = 0;
            tokio::spawn(self.clone().flush(round));
        }
        st.round.push(BatchRequest {
            custom_id: id,
            body: body.clone(),
        });
        st.round_bytes += bytes;
        if st.round.len() >= most {
            let round = std::mem::take(&mut st.round);
            st.round_bytes = 0;
            tokio::spawn(self.clone().flush(round));
        } else if !st.round_open {
            st.round_open = true;
            let me = self.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs_f64(me.cfg.window_secs)).await;
                let round = {
                    let mut st = me.state.lock().expect("batch state");
                    st.round_open = false;
                    st.round_bytes = 0;
                    std::mem::take(&mut st.round)
                };
                if !round.is_empty() {
                    me.flush(round).await;
                }
            });
        }
    }

    /// Starts following the batch `key` unless a task already does.
    fn follow(self: &Arc<Self>, st: &mut State, key: String) {
        if st.following.insert(key.clone()) {
            tokio::spawn(self.clone().poll(key));
        }
    }

    /// Hands `got` to every call waiting for `id`, or keeps it for one
    /// that asks later.
    fn deliver(&self, st: &mut State, id: &str, got: Got) {
        match st.waiting.remove(id) {
            Some(w) => {
                for (i, tx) in w.into_iter().enumerate() {
                    let got = match &got {
                        // The provider answered (and billed) the request
                        // once: the other calls asking the same get it free,
                        // as from the response cache.
                        Got::Reply(r) if i > 0 => Got::Reply(ChatReply {
                            cached: true,
                            ..r.clone()
                        }),
                        g => g.clone(),
                    };
                    let _ = tx.send(got);
                }
            }
            None if st.unclaimed.len() < MAX_UNCLAIMED && !matches!(got, Got::Resend) => {
                st.unclaimed.insert(id.to_string(), got);
            }
            None => {}
        }
    }

    fn deliver_all<'a>(&self, ids: impl IntoIterator<Item = &'a String>, got: &Got) {
        let mut st = self.state.lock().expect("batch state");
        for id in ids {
            self.deliver(&mut st, id, got.clone());
        }
    }

    /// Records a round, submits it and follows it.
    async fn flush(self: Arc<Self>, mut round: Vec<BatchRequest>) {
        let key = new_key();
        let mut batch = Recorded {
            key: key.clone(),
            model: self.model.clone(),
            provider_id: None,
            created_ms: crate::execute::now_ms(),
            ids: round.iter().map(|r| r.custom_id.clone()).collect(),
            ended: false,
        };
        let held = match self.journal.intend(&batch).await {
            Ok(h) => h,
            Err(e) => {
                tracing::error!(model = %self.model, error = %e, "recording a batch failed; its calls fail");
                self.deliver_all(&batch.ids, &Got::Again(journal_error(e)));
                return;
            }
        };
        if !held.is_empty() {
            let mut st = self.state.lock().expect("batch state");
            for (id, other) in &held {
                round.retain(|r| &r.custom_id != id);
                batch.ids.retain(|b| b != id);
                st.on.entry(other.clone()).or_default().push(id.clone());
                self.follow(&mut st, other.clone());
            }
        }
        if round.is_empty() {
            return;
        }
        match self.submit(&round, &key).await {
            Ok(pid) => {
                if let Err(e) = self.journal.submitted(&key, &pid).await {
                    tracing::error!(model = %self.model, batch = %pid, error = %e, "recording a submitted batch failed");
                }
                STATS.submitted(&key, batch.created_ms, round.len());
                tracing::info!(model = %self.model, batch = %pid, requests = round.len(), "submitted a batch");
                let mut st = self.state.lock().expect("batch state");
                self.follow(&mut st, key);
            }
            Err(e) => {
                tracing::warn!(model = %self.model, error = %e, "submitting a batch failed");
                let _ = self.journal.abandon(&key).await;
                let got = if e.is_retryable() {
                    Got::Again(e)
                } else {
                    Got::Failed(e)
                };
                self.deliver_all(&batch.ids, &got);
            }
        }
    }

    /// Submits a round. A failure that may have created the batch anyway
    /// (a timeout, a cut connection) is tried again after looking for the
    /// batch by its key, where the provider allows.
    async fn submit(&self, round: &[BatchRequest], key: &str) -> Result<String, BackendError> {
        let mut n = 1;
        loop {
            let e = match self.api.submit(round, key).await {
                Ok(id) => return Ok(id),
                Err(e) => e,
            };
            let unsure = matches!(e.kind(), ErrorKind::Timeout | ErrorKind::Transport);
            if n >= SUBMIT_TRIES || !(unsure || e.is_retryable()) {
                return Err(e);
            }
            if unsure && let Ok(Some(id)) = self.api.find(key).await {
                return Ok(id);
            }
            tokio::time::sleep(candor_core::retry::backoff(n, n as u64)).await;
            n += 1;
        }
    }

    /// Follows one recorded batch until it ends, then hands out its results.
    async fn poll(self: Arc<Self>, key: String) {
        let pause = Duration::from_secs_f64(self.cfg.poll_secs);
        let batch = loop {
            match self.journal.get(&key).await {
                Ok(Some(b)) if b.provider_id.is_some() => break b,
                Ok(Some(b)) => match self.orphan(&b).await {
                    Some(Some(pid)) => {
                        break Recorded {
                            provider_id: Some(pid),
                            ..b
                        };
                    }
                    Some(None) => return self.abandoned(&key, &b.ids),
                    None => tokio::time::sleep(pause.min(Duration::from_secs(1))).await,
                },
                Ok(None) => return self.abandoned(&key, &[]),
                Err(e) => {
                    tracing::warn!(error = %e, "reading the journal of batches failed");
                    tokio::time::sleep(pause).await;
                }
            }
        };
        let pid = batch.provider_id.clone().unwrap_or_default();
        if !batch.ended {
            STATS.following(&key, batch.created_ms);
        }
        let mut refused = 0;
        loop {
            match self.api.status(&pid).await {
                Ok(s) if s.ended => break,
                Ok(_) => refused = 0,
                Err(e) if !e.is_retryable() && refused + 1 >= GIVE_UP_AFTER => {
                    return self.give_up(&batch, e);
                }
                Err(e) => {
                    refused = if e.is_retryable() { 0 } else { refused + 1 };
                    tracing::warn!(model = %self.model, batch = %pid, error = %e, "looking at a batch failed");
                }
            }
            tokio::time::sleep(pause).await;
        }
        self.collect(&batch, &pid, pause).await;
    }

    /// The provider keeps refusing to say where a batch is (a key no
    /// longer valid, a batch it no longer knows): its calls fail with that
    /// error. The journal keeps the batch, so a later run follows it again.
    fn give_up(&self, batch: &Recorded, e: BackendError) {
        tracing::error!(model = %self.model, batch = %batch.key, error = %e, "giving up on a batch");
        STATS.ended(&batch.key);
        let mut st = self.state.lock().expect("batch state");
        st.following.remove(&batch.key);
        let on = st.on.remove(&batch.key).unwrap_or_default();
        for id in batch.ids.iter().chain(&on) {
            if let Some(w) = st.waiting.remove(id) {
                for tx in w {
                    let _ = tx.send(Got::Failed(e.clone()));
                }
            }
        }
    }

    /// A recorded batch without a provider id: None while its submitter
    /// may still record one; then its provider id, found by its key
    /// (OpenAI), or Some(None) once it is abandoned (its calls ask again).
    async fn orphan(&self, b: &Recorded) -> Option<Option<String>> {
        if crate::execute::now_ms().saturating_sub(b.created_ms) < ORPHAN_AFTER.as_millis() as u64 {
            return None;
        }
        match self.api.find(&b.key).await {
            Ok(Some(pid)) => {
                let _ = self.journal.submitted(&b.key, &pid).await;
                Some(Some(pid))
            }
            Ok(None) => {
                tracing::warn!(model = %self.model, batch = %b.key, "a batch recorded but never seen at the provider is submitted again");
                match self.journal.abandon(&b.key).await {
                    Ok(true) => Some(None),
                    _ => None,
                }
            }
            Err(_) => None,
        }
    }

    /// Reads an ended batch's results and hands them out; a request the
    /// results leave out is sent again.
    async fn collect(self: &Arc<Self>, batch: &Recorded, pid: &str, pause: Duration) {
        let mut seen = std::collections::HashSet::new();
        let mut failures = 0;
        loop {
            let read = self
                .api
                .results(pid, |id, o| {
                    if !batch.ended {
                        STATS.outcome(&o);
                    }
                    let mut st = self.state.lock().expect("batch state");
                    self.deliver(&mut st, &id, Got::of(o));
                    seen.insert(id);
                })
                .await;
            match read {
                Ok(()) => break,
                // The requests left without a result are sent again below.
                Err(e) if failures + 1 >= GIVE_UP_AFTER => {
                    tracing::error!(model = %self.model, batch = %pid, error = %e, "reading a batch's results failed for good");
                    break;
                }
                Err(e) => {
                    failures += 1;
                    tracing::warn!(model = %self.model, batch = %pid, error = %e, "reading a batch's results failed");
                    tokio::time::sleep(pause).await;
                }
            }
        }
        if let Err(e) = self.journal.ended(&batch.key).await {
            tracing::warn!(error = %e, "recording an ended batch failed");
        }
        let missing: Vec<&String> = batch.ids.iter().filter(|id| !seen.contains(*id)).collect();
        self.deliver_all(missing, &Got::Again(again("had no result in its batch")));
        STATS.ended(&batch.key);
        let mut st = self.state.lock().expect("batch state");
        st.following.remove(&batch.key);
        st.on.remove(&batch.key);
        // A call that started waiting on this batch after its results were
        // read (the same request from another job) needs them read again.
        if batch.ids.iter().any(|id| st.waiting.contains_key(id)) {
            self.follow(&mut st, batch.key.clone());
        }
    }

    /// A batch that was never created: the calls that waited for it ask
    /// again.
    fn abandoned(&self, key: &str, ids: &[String]) {
        let mut st = self.state.lock().expect("batch state");
        st.following.remove(key);
        let on = st.on.remove(key).unwrap_or_default();
        for id in ids.iter().chain(&on) {
            self.deliver(&mut st, id, Got::Resend);
        }
    }
}

/// A new batch's key: unique across processes and restarts.
fn new_key() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let seed = format!(
        "{}:{}:{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let d: [u8; 32] = sha2::Sha256::digest(seed.as_bytes()).into();
    format!("cb{}", candor_core::hash::hex(&d[..12]))
}
