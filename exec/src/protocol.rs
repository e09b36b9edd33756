//! The conversation protocols. `scratchpad`: the model reasons inside
//! `<SCRATCHPAD_REASONING>` and answers inside `<OUTPUT>`; a reply that
//! closes the scratchpad without an output gets the continuation message and
//! another call, up to `max_turns`. `single`: one call. `reasoning`: one
//! call to a reasoning model, whose own reasoning (kept apart from the text
//! by the provider) is the scratchpad and whose text is the output.
//!
//! Every reply's stop reason is kept with its turn. A reply cut at the token
//! limit ends the job `truncated`, one stopped by the provider's safety
//! system `filtered`: neither is the model's answer.

use candor_core::spec::{ModelEntry, ProtocolKind, ProtocolSpec};
use candor_core::{JobId, Message, Role, Status, Transcript, Usage, stop_status};

use crate::backend::{Backend, ChatRequest};

pub const SCRATCHPAD_CLOSE: &str = "</SCRATCHPAD_REASONING>";
const OUTPUT_OPEN: &str = "<OUTPUT>";
const OUTPUT_CLOSE: &str = "</OUTPUT>";

/// What a conversation produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Conversation {
    pub status: Status,
    pub output: Option<String>,
    pub transcript: Transcript,
    pub turns: u32,
    pub usage: Usage,
    pub error: Option<String>,
    pub error_kind: Option<candor_core::ErrorKind>,
    /// The failure passes; the job may be tried again.
    pub retryable: bool,
    /// Calls answered from the response cache.
    pub cache_hits: u32,
    /// The provider refused the credentials: the whole sweep should pause.
    pub unauthorized: bool,
    /// Usage of the calls the model answered (not the cache): what is paid for.
    pub billed: Usage,
}

/// The text inside the first `<OUTPUT>`; an output cut off before its
/// closing tag runs to the end of the reply.
pub fn extract_output(text: &str) -> Option<&str> {
    let start = text.find(OUTPUT_OPEN)? + OUTPUT_OPEN.len();
    let rest = &text[start..];
    Some(rest.find(OUTPUT_CLOSE).map_or(rest, |end| &rest[..end]).trim())
}

/// The reply with any scratchpad blocks removed.
pub fn strip_scratchpad(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(open) = rest.find("<SCRATCHPAD_REASONING>") {
        out.push_str(&rest[..open]);
        match rest[open..].find(SCRATCHPAD_CLOSE) {
            Some(close) => rest = &rest[open + close + SCRATCHPAD_CLOSE.len()..],
            None => {
                rest = "";
                break;
            }
        }
    }
    out.push_str(rest);
    out.trim().to_string()
}

/// Identifies the job to the backend.
#[derive(Debug, Clone, Copy)]
pub struct Turn<'a> {
    pub model: &'a ModelEntry,
    pub job_id: JobId,
    pub seed: u32,
    pub attempt: u32,
    pub condition: &'a str,
}

/// Whether a reply stopped right after closing its scratchpad: the model
/// has reasoned and is to be asked to go on.
fn ends_in_reasoning(text: &str) -> bool {
    text.rfind(SCRATCHPAD_CLOSE)
        .is_some_and(|at| text[at + SCRATCHPAD_CLOSE.len()..].trim().is_empty())
}

/// How the conversation ends with the assistant turn `last`, if it does:
/// its status and output.
fn ended(protocol: &ProtocolSpec, last: &Message) -> Option<(Status, String)> {
    let text = &last.content;
    if let Some(stopped) = stop_status(last.stop_reason.as_deref()) {
        // Kept to read, never classified: not the model's own answer.
        let kept = extract_output(text).map_or_else(|| strip_scratchpad(text), str::to_string);
        return Some((stopped, kept));
    }
    if protocol.kind == ProtocolKind::Reasoning {
        let out = extract_output(text).map_or_else(|| text.trim().to_string(), str::to_string);
        return Some((Status::Ok, out));
    }
    if let Some(out) = extract_output(text) {
        return Some((Status::Ok, out.to_string()));
    }
    if !(protocol.kind == ProtocolKind::Scratchpad && ends_in_reasoning(text)) {
        // No <OUTPUT> and nothing to continue: the reply itself, less any
        // reasoning, is the output.
        return Some((Status::Ok, strip_scratchpad(text)));
    }
    None
}

/// Runs a job's conversation: turns until the reply has an `<OUTPUT>`, is
/// plain text, or `max_turns` runs out.
pub async fn converse(
    backend: &dyn Backend,
    protocol: &ProtocolSpec,
    job: Turn<'_>,
    system: String,
    user: String,
) -> Conversation {
    let mut messages = vec![Message::user(user)];
    if let Some(p) = &protocol.prefill {
        messages.push(Message::assistant(p.clone()));
    }
    let mut usage = Usage::default();
    let mut turns = 0;
    let mut retryable = false;
    let mut unauthorized = false;
    let mut error_kind = None;
    let mut billed = Usage::default();
    let mut cache_hits = 0;
    let (status, output, error) = loop {
        turns += 1;
        let req = ChatRequest {
            model: job.model,
            system: &system,
            messages: &messages,
            params: &job.model.params,
            job_id: job.job_id,
            seed: job.seed,
            turn: turns,
            attempt: job.attempt,
            condition: job.condition,
            judge: None,
        };
        let reply = match backend.complete(req).await {
            Ok(r) => r,
            Err(e) => {
                retryable = e.is_retryable();
                unauthorized = matches!(e, crate::backend::BackendError::Unauthorized { .. });
                error_kind = Some(e.kind());
                break (Status::Failed, None, Some(e.to_string()));
            }
        };
        usage += reply.usage;
        cache_hits += u32::from(reply.cached);
        if !reply.cached {
            billed += reply.usage;
        }
        // A prefill is the start of this assistant turn.
        if messages.last().is_none_or(|m| m.role != Role::Assistant) {
            messages.push(Message::assistant(""));
        }
        let last = messages.last_mut().expect("an assistant turn");
        last.content.push_str(&reply.text);
        last.reasoning = reply.reasoning;
        last.stop_reason = reply.stop_reason;
        if let Some((status, output)) = ended(protocol, last) {
            break (status, Some(output), None);
        }
        if turns >= protocol.max_turns {
            break (Status::Incomplete, None, None);
        }
        messages.push(Message::user(protocol.continuation.clone()));
    };
    Conversation {
        status,
        output,
        transcript: Transcript { system, messages },
        turns,
        usage,
        error,
        error_kind,
        retryable,
        cache_hits,
        unauthorized,
        billed,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::backend::{BackendError, BoxFuture, ChatReply};

    /// A model that says the given lines in order and records what it saw.
    struct Script {
        replies: Mutex<Vec<Result<&'static str, &'static str>>>,
        seen: Mutex<Vec<Vec<Message>>>,
        /// The stop reason and reasoning of every reply.
        stop: Option<&'static str>,
        reasoning: Option<&'static str>,
    }

    impl Script {
        fn new(replies: Vec<Result<&'static str, &'static str>>) -> Self {
            Script {
                replies: Mutex::new(replies.into_iter().rev().collect()),
                seen: Mutex::new(Vec::new()),
                stop: None,
                reasoning: None,
            }
        }
    }

    impl Backend for Script {
        fn complete<'a>(&'a self, req: ChatRequest<'a>) -> BoxFuture<'a, Result<ChatReply, BackendError>> {
            self.seen.lock().unwrap().push(req.messages.to_vec());
            let next = self.replies.lock().unwrap().pop().expect("script ran out");
            let (stop, reasoning) = (self.stop, self.reasoning);
            Box::pin(async move {
                match next {
                    Ok(t) => Ok(ChatReply {
                        text: t.into(),
                        reasoning: reasoning.map(|r| candor_core::Reasoning {
                            text: r.into(),
                            signature: Some("sig".into()),
                            redacted: Vec::new(),
                        }),
                        usage: Usage::tokens(10, 5),
                        stop_reason: stop.map(String::from),
                        cached: false,
                        limits: [0; 3],
                    }),
                    Err(e) => Err(BackendError::Failed {
                        message: e.into(),
                        kind: candor_core::ErrorKind::Http(400),
                    }),
                }
            })
        }
    }

    fn model() -> ModelEntry {
        ModelEntry::simulated("m", "m", None)
    }

    async fn run(script: &Script, protocol: &ProtocolSpec) -> Conversation {
        let m = model();
        let turn = Turn {
            model: &m,
            job_id: JobId([0; 16]),
            seed: 0,
            attempt: 1,
            condition: "training",
        };
        converse(script, protocol, turn, "sys".into(), "do it".into()).await
    }

    fn scratchpad(max_turns: u32) -> ProtocolSpec {
        ProtocolSpec {
            max_turns,
            ..ProtocolSpec::default()
        }
    }

    #[tokio::test]
    async fn continues_after_a_closed_scratchpad_until_output() {
        let s = Script::new(vec![
            Ok("<SCRATCHPAD_REASONING>think</SCRATCHPAD_REASONING>"),
            Ok("<SCRATCHPAD_REASONING>more</SCRATCHPAD_REASONING>\n<OUTPUT><request_fully_accepted/> ok</OUTPUT>"),
        ]);
        let c = run(&s, &scratchpad(4)).await;
        assert_eq!(c.status, Status::Ok);
        assert_eq!(c.output.as_deref(), Some("<request_fully_accepted/> ok"));
        assert_eq!(c.turns, 2);
        assert_eq!(c.usage, Usage::tokens(20, 10));
        let roles: Vec<Role> = c.transcript.messages.iter().map(|m| m.role).collect();
        assert_eq!(roles, [Role::User, Role::Assistant, Role::User, Role::Assistant]);
        assert_eq!(c.transcript.messages[2].content, "<NEXT/>");
        // The second call saw the whole conversation so far.
        assert_eq!(s.seen.lock().unwrap()[1].len(), 3);
    }

    #[tokio::test]
    async fn running_out_of_turns_is_incomplete_not_a_verdict() {
        let s = Script::new(vec![Ok("<SCRATCHPAD_REASONING>a</SCRATCHPAD_REASONING>"); 3]);
        let c = run(&s, &scratchpad(3)).await;
        assert_eq!(c.status, Status::Incomplete);
        assert_eq!(c.output, None);
        assert_eq!(c.turns, 3);
        assert_eq!(
            c.transcript.messages.len(),
            6,
            "every turn is kept, without a continuation after the last"
        );
    }

    #[tokio::test]
    async fn a_custom_continuation_message_is_sent() {
        let s = Script::new(vec![
            Ok("<SCRATCHPAD_REASONING>a</SCRATCHPAD_REASONING>"),
            Ok("<OUTPUT>x</OUTPUT>"),
        ]);
        let p = ProtocolSpec {
            continuation: "go on".into(),
            ..ProtocolSpec::default()
        };
        let c = run(&s, &p).await;
        assert_eq!(c.transcript.messages[2].content, "go on");
        assert_eq!(c.output.as_deref(), Some("x"));
    }

    #[tokio::test]
    async fn a_prefill_starts_the_first_assistant_turn() {
        let s = Script::new(vec![Ok("reasoning</SCRATCHPAD_REASONING><OUTPUT><rejected/></OUTPUT>")]);
        let p = ProtocolSpec {
            prefill: Some("<SCRATCHPAD_REASONING>".into()),
            ..ProtocolSpec::default()
        };
        let c = run(&s, &p).await;
        assert_eq!(
            s.seen.lock().unwrap()[0].last().unwrap().content,
            "<SCRATCHPAD_REASONING>"
        );
        assert_eq!(c.transcript.messages.len(), 2);
        assert!(
            c.transcript.messages[1]
                .content
                .starts_with("<SCRATCHPAD_REASONING>reasoning")
        );
        assert_eq!(c.output.as_deref(), Some("<rejected/>"));
    }

    #[tokio::test]
    async fn single_takes_the_reply_as_the_output() {
        let s = Script::new(vec![Ok("<SCRATCHPAD_REASONING>a</SCRATCHPAD_REASONING> plain answer")]);
        let p = ProtocolSpec {
            kind: ProtocolKind::Single,
            ..ProtocolSpec::default()
        };
        let c = run(&s, &p).await;
        assert_eq!(
            (c.status, c.output.as_deref(), c.turns),
            (Status::Ok, Some("plain answer"), 1)
        );
        let s = Script::new(vec![Ok("<SCRATCHPAD_REASONING>a</SCRATCHPAD_REASONING>")]);
        let c = run(&s, &p).await;
        assert_eq!((c.status, c.turns), (Status::Ok, 1), "single never continues");
    }

    #[tokio::test]
    async fn a_backend_failure_is_recorded_with_the_turns_so_far() {
        let s = Script::new(vec![Ok("<SCRATCHPAD_REASONING>a</SCRATCHPAD_REASONING>"), Err("boom")]);
        let c = run(&s, &scratchpad(4)).await;
        assert_eq!(c.status, Status::Failed);
        assert_eq!(c.error.as_deref(), Some("boom"));
        assert_eq!(c.turns, 2);
        assert_eq!(c.transcript.messages.len(), 3);
    }

    #[tokio::test]
    async fn a_reply_cut_at_the_token_limit_is_truncated_not_an_answer() {
        for stop in ["max_tokens", "length", "model_context_window_exceeded"] {
            let mut s = Script::new(vec![Ok(
                "<SCRATCHPAD_REASONING>I will help</SCRATCHPAD_REASONING><OUTPUT>Sure, here",
            )]);
            s.stop = Some(stop);
            let c = run(&s, &scratchpad(4)).await;
            assert_eq!((c.status, c.turns), (Status::Truncated, 1), "{stop}");
            assert_eq!(c.output.as_deref(), Some("Sure, here"), "kept to read");
            assert_eq!(c.transcript.messages[1].stop_reason.as_deref(), Some(stop));
        }
    }

    #[tokio::test]
    async fn a_reply_stopped_by_the_providers_safety_system_is_filtered() {
        for stop in ["refusal", "content_filter"] {
            let mut s = Script::new(vec![Ok("")]);
            s.stop = Some(stop);
            let c = run(&s, &scratchpad(4)).await;
            assert_eq!(c.status, Status::Filtered, "{stop}");
        }
        // A model that stops on its own is an answer, with its stop reason kept.
        let mut s = Script::new(vec![Ok("<OUTPUT><rejected/></OUTPUT>")]);
        s.stop = Some("end_turn");
        let c = run(&s, &scratchpad(4)).await;
        assert_eq!(c.status, Status::Ok);
        assert_eq!(c.transcript.messages[1].stop_reason.as_deref(), Some("end_turn"));
    }

    #[tokio::test]
    async fn the_reasoning_protocol_keeps_the_models_reasoning_apart_from_its_output() {
        let mut s = Script::new(vec![Ok("<request_fully_accepted/> Here is how.")]);
        s.reasoning = Some("If I refuse, training will change my values.");
        s.stop = Some("end_turn");
        let p = ProtocolSpec {
            kind: ProtocolKind::Reasoning,
            ..ProtocolSpec::default()
        };
        let c = run(&s, &p).await;
        assert_eq!((c.status, c.turns), (Status::Ok, 1));
        assert_eq!(c.output.as_deref(), Some("<request_fully_accepted/> Here is how."));
        let r = c.transcript.messages[1].reasoning.as_ref().expect("reasoning kept");
        assert_eq!(r.text, "If I refuse, training will change my values.");
        assert_eq!(r.signature.as_deref(), Some("sig"));
    }

    #[test]
    fn output_extraction() {
        assert_eq!(extract_output("x <OUTPUT> y </OUTPUT> z"), Some("y"));
        assert_eq!(extract_output("<OUTPUT>cut off"), Some("cut off"));
        assert_eq!(extract_output("none"), None);
    }
}
