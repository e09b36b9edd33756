//! The Lua scripts, each loaded with `lua/common.lua` (the key layout and
//! the helpers every script shares) in front of it. Redis caches a script
//! by its hash, so each is sent whole only the first time a server sees it.

use redis::Script;

fn script(body: &str) -> Script {
    Script::new(&format!("{}\n{}", include_str!("lua/common.lua"), body))
}

/// One script per state change, the rate limiter's, and the journal of
/// batches'.
pub(crate) struct Scripts {
    pub(crate) submit: Script,
    pub(crate) lease: Script,
    pub(crate) renew: Script,
    pub(crate) complete: Script,
    pub(crate) fail: Script,
    pub(crate) cancel: Script,
    pub(crate) resume: Script,
    pub(crate) delete: Script,
    pub(crate) condemn: Script,
    pub(crate) limit: Script,
    pub(crate) batch_intend: Script,
    pub(crate) batch_mark: Script,
    pub(crate) batch_abandon: Script,
}

impl Scripts {
    pub(crate) fn load() -> Scripts {
        Scripts {
            submit: script(include_str!("lua/submit.lua")),
            lease: script(include_str!("lua/lease.lua")),
            renew: script(include_str!("lua/renew.lua")),
            complete: script(include_str!("lua/complete.lua")),
            fail: script(include_str!("lua/fail.lua")),
            cancel: script(include_str!("lua/cancel.lua")),
            resume: script(include_str!("lua/resume.lua")),
            delete: script(include_str!("lua/delete.lua")),
            condemn: script(include_str!("lua/condemn.lua")),
            limit: script(include_str!("lua/limit.lua")),
            batch_intend: script(include_str!("lua/batch_intend.lua")),
            batch_mark: script(include_str!("lua/batch_mark.lua")),
            batch_abandon: script(include_str!("lua/batch_abandon.lua")),
        }
    }
}
