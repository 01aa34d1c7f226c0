//! The door to the runtime for the code that `#[rwt::timeout]` and
//! `#[rwt::test]` generate: re-exports and thin shims only, the logic
//! lives in named modules. Not public API: it may change in any release.

#[cfg(target_os = "linux")]
pub use crate::__register_exec_fn as register_exec_fn;
#[cfg(unix)]
pub use crate::call::fork::{call_fork, call_fork_async};
#[cfg(target_os = "linux")]
pub use crate::call::registered::{call_exec, call_exec_async, ExecMode};
pub use crate::checks::{
    argument_crosses_processes, async_argument, ArgumentCrossesProcesses, AsyncArgument,
    CrossesProcesses, OtherProbe, Probe, ResultProbe,
};
pub use crate::child::executor::block_on;
#[cfg(target_os = "linux")]
pub use crate::child::functions::{function_id, register, run_in_child, ExecFn, ExecFrame};
pub use crate::options::{checked_secs, DEFAULT_NTRIES};
#[cfg(unix)]
pub use crate::testing::{run_test, test_result, ShouldPanic, TestError, TestSpec, TestValue};
#[cfg(target_os = "linux")]
pub use crate::wire::protocol::caller_bytes;
pub use crate::Options;
