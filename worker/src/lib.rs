//! candor's job executor: turns a job index into a [`JobResult`] by
//! rendering the prompts, running the conversation protocol against a model
//! backend and classifying the output. The local runner and (later) worker
//! processes run this same code.

pub mod anthropic;
pub mod backend;
pub mod cache;
pub mod classify;
pub mod execute;
pub mod http;
pub mod judging;
pub mod limit;
pub mod metrics;
pub mod openai;
pub mod protocol;
pub mod remote;
pub mod retrying;
pub mod sim;
pub mod sim_server;

pub use backend::{Backend, BackendError, ChatReply, ChatRequest};
pub use execute::{Executed, Executor};
