//! How async calls wait without blocking an executor thread.
//!
//! - Inside a tokio runtime, with the `tokio` feature (Linux): the call's
//!   descriptors (result channel, pidfd, cancel epoch, and a timerfd for the
//!   deadline) are registered with the runtime's reactor (`AsyncFd`) for
//!   each wait, and deregistered before the wait returns.
//! - Anywhere else (any executor, or tokio without the feature): one rwt
//!   thread, the *poller*, started on first use, `poll`s the descriptors
//!   of every waiting call and wakes the task whose descriptors are ready
//!   or whose deadline passed. It needs nothing from the executor but its
//!   `Waker`.
//!
//! Either way a wait first looks at the descriptors without blocking, and
//! reports what is ready only after looking again: a wake-up never stands
//! for an event.

use std::os::fd::{AsRawFd, BorrowedFd};

use crate::wait::deadline::{poll_set, ready_now, Deadline, Ready, Waiter};
use crate::wait::poller::PollerWait;
#[cfg(all(feature = "tokio", target_os = "linux"))]
use crate::wait::tokio;

/// The waiter of an async call: for each wait, tokio's reactor if the call
/// is polled inside a tokio runtime (and the feature is on), the poller
/// otherwise. Chosen per wait, so a future that moves between executors
/// keeps working.
pub(crate) struct AsyncWaiter;

impl Waiter for AsyncWaiter {
    const ONE_THREAD: bool = false;

    async fn ready<'a>(
        &'a mut self,
        channel: Option<(BorrowedFd<'a>, bool)>,
        exit: Option<BorrowedFd<'a>>,
        cancel: Option<BorrowedFd<'a>>,
        until: Deadline,
    ) -> nix::Result<Ready> {
        let now = ready_now(channel, exit, cancel)?;
        if now.any() || until.passed() {
            return Ok(now);
        }
        #[cfg(all(feature = "tokio", target_os = "linux"))]
        if tokio::in_tokio() {
            match tokio::tokio_wait(channel, exit, cancel, until).await {
                // A runtime without I/O: the poller waits instead, now and
                // for the rest of this thread's waits.
                Err(e) if e == tokio::NO_REACTOR => tokio::without_reactor(),
                // rwt's descriptor list is held by a fork: the poller
                // waits this once.
                Err(e) if e == tokio::LIST_BUSY => {}
                other => {
                    other?;
                    return ready_now(channel, exit, cancel);
                }
            }
        }
        let fds = poll_set(channel, exit, cancel)
            .map(|(fd, events)| (fd.as_raw_fd(), events))
            .collect();
        PollerWait::new(fds, until.instant()).await;
        ready_now(channel, exit, cancel)
    }
}
