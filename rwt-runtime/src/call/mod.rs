//! The caller's side of a call: how each mode starts a child, one attempt's
//! exchange with it, the kill ladder, and the retries.

pub(crate) mod attempt;
pub(crate) mod command;
#[cfg(target_os = "linux")]
pub(crate) mod exec;
pub(crate) mod fork;
#[cfg(target_os = "linux")]
pub(crate) mod pool;
pub(crate) mod process;
pub(crate) mod reaper;
pub(crate) mod retry;
