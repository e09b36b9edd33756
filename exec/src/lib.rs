//! candor's job executor: turns a job index into a [`JobResult`] by
//! rendering the prompts, running the conversation protocol against a model
//! backend and classifying the output. The local runner and the fleet's
//! workers run this same code; it talks to model APIs over HTTP and to
//! nothing else (no Redis, no gRPC).
//!
//! [`JobResult`]: candor_core::JobResult

pub mod anthropic;
pub mod backend;
pub mod batch;
pub mod batched;
pub mod cache;
pub mod classify;
pub mod counted;
pub mod execute;
pub mod http;
pub mod judging;
pub mod limit;
pub mod openai;
pub mod protocol;
pub mod retrying;
pub mod sim;

pub use backend::{Backend, BackendError, ChatReply, ChatRequest};
pub use execute::{Executed, Executor};
