//! The caller's side of a call: how each mode starts a child, one attempt's
//! exchange with it, the kill ladder, and the retries.

pub(crate) mod attempt;
pub(crate) mod command;
pub(crate) mod exchange;
#[cfg(target_os = "linux")]
pub(crate) mod exec;
pub(crate) mod fork;
pub(crate) mod kill;
pub(crate) mod outcome;
#[cfg(target_os = "linux")]
pub(crate) mod pool;
pub(crate) mod process;
pub(crate) mod reaper;
#[cfg(target_os = "linux")]
pub(crate) mod registered;
pub(crate) mod retry;
