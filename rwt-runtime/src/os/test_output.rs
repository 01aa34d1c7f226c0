//! Which descriptor a child started on this thread gets as its stdout
//! and stderr, while a `#[rwt::test]` attempt runs here. A leaf: the
//! spawns (`options`, `child`) read it, `testing` sets it.

use std::cell::Cell;
use std::os::fd::RawFd;

thread_local! {
    /// The write end of the current attempt's output pipe, while a test's
    /// attempt runs on this thread.
    static OUTPUT: Cell<Option<RawFd>> = const { Cell::new(None) };
}

/// Where a child started by a call on this thread sends its stdout and
/// stderr: the output pipe of the `#[rwt::test]` attempt running here, or
/// nowhere special (`None`: the child inherits the caller's).
pub(crate) fn get() -> Option<RawFd> {
    OUTPUT.with(Cell::get)
}

/// Sets it, for the attempt about to run on this thread (`None` after).
pub(crate) fn set(fd: Option<RawFd>) {
    OUTPUT.with(|o| o.set(fd));
}
