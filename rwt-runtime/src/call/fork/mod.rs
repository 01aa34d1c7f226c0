//! Fork mode: the child is a `fork()` of the caller, which already holds
//! the function and its arguments; only the result crosses, on a pipe. The
//! sync and async drivers are here, the fork itself in [`spawn`];
//! watching, killing and reaping are [`crate::call::attempt`]'s.

use std::future::Future;
use std::io::{self};
use std::mem::ManuallyDrop;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::call::attempt;
use crate::call::exchange::Stop;
use crate::call::kill::Guarded;
use crate::call::outcome::Ended;
use crate::call::process::Child;
use crate::call::retry;
use crate::options::Checked;
use crate::os::cancel::Epoch;
use crate::os::fds::RegisteredFd;
use crate::os::spawner;
use crate::wait::async_wait::AsyncWaiter;
use crate::wait::deadline::{block_now, Blocking, Deadline, Waiter};

mod spawn;

use crate::{Error, Options};
use spawn::spawn;

/// The function, kept by the caller across attempts. Each forked child
/// moves its own copy out of its private copy of the caller's memory.
pub(crate) struct Body<F>(ManuallyDrop<F>);

impl<F> Body<F> {
    pub(crate) fn new(f: F) -> Self {
        Body(ManuallyDrop::new(f))
    }

    /// # Safety
    ///
    /// Only in a child just forked from the owner of `self`, at most once,
    /// and that child must never drop `self` or return into the caller.
    unsafe fn take_in_child(&mut self) -> F {
        // SAFETY: per the contract above, this process holds a private copy
        // of the caller's `Body`, which nothing else in it will read again.
        unsafe { ManuallyDrop::take(&mut self.0) }
    }
}

impl<F> Drop for Body<F> {
    fn drop(&mut self) {
        // SAFETY: in the caller the value was never taken (only forked
        // children take theirs, from their own copy, and never drop it).
        unsafe { ManuallyDrop::drop(&mut self.0) }
    }
}

/// Runs the body of a fork-mode `#[timeout]` function.
///
/// # Errors
///
/// As documented on `rwt::Error`.
pub fn call_fork<R, F>(
    options: &Options,
    function: &'static str,
    body: F,
    failed: fn(&R) -> bool,
) -> Result<R, Error>
where
    F: FnOnce() -> R,
    R: crate::checks::CrossesProcesses,
{
    call(options, function, body, failed)
}

/// Runs the body of a fork-mode `async` `#[timeout]` function: `body`
/// runs the async body to completion in the child. The child is forked
/// by rwt's spawner thread (so `body` must be `Send`); the returned
/// future waits without blocking its thread, and dropping it kills the
/// child.
///
/// # Errors
///
/// As documented on `rwt::Error`.
pub fn call_fork_async<R, F>(
    options: &Options,
    function: &'static str,
    body: F,
    failed: fn(&R) -> bool,
) -> impl Future<Output = Result<R, Error>>
where
    F: FnOnce() -> R + Send,
    R: crate::checks::CrossesProcesses,
{
    let options = options.clone();
    async move { call_async(&options, function, body, failed).await }
}

/// Runs `body` in forked children with `options`, retrying as they say.
/// `failed` tells whether a value counts as a failed attempt.
pub(crate) fn call<R, F>(
    options: &Options,
    function: &str,
    body: F,
    failed: fn(&R) -> bool,
) -> Result<R, Error>
where
    F: FnOnce() -> R,
    R: Serialize + DeserializeOwned,
{
    call_measured(options, function, body, failed).map(|(value, _)| value)
}

/// [`call`], with what the last attempt's child used.
pub(crate) fn call_measured<R, F>(
    options: &Options,
    function: &str,
    body: F,
    failed: fn(&R) -> bool,
) -> Result<(R, Option<crate::os::usage::Usage>), Error>
where
    F: FnOnce() -> R,
    R: Serialize + DeserializeOwned,
{
    let mut body = Body::new(body);
    retry::run(options, function, |opts, cancel| {
        // The deadline runs from the call: the cost of forking counts.
        let deadline = Deadline::after(opts.secs);
        let started = spawn(opts.kill, opts.limits, opts.output, &mut body, failed);
        block_now(attempt(
            &mut Blocking,
            function,
            opts,
            cancel,
            deadline,
            started,
        ))
    })
}

/// [`call`] for async callers: each child is forked by rwt's spawner
/// thread (so it does not die with whichever thread polled the future), and
/// the future waits without blocking its thread. Dropping the future kills
/// the child.
pub(crate) async fn call_async<R, F>(
    options: &Options,
    function: &str,
    body: F,
    failed: fn(&R) -> bool,
) -> Result<R, Error>
where
    F: FnOnce() -> R + Send,
    R: Serialize + DeserializeOwned,
{
    let attempts = AsyncAttempts {
        body: Body::new(body),
        function,
        failed,
    };
    let call = retry::drive(options, function, attempts);
    call.await.map(|(value, _)| value)
}

/// The attempts of an async fork-mode call.
struct AsyncAttempts<'a, R, F> {
    body: Body<F>,
    function: &'a str,
    failed: fn(&R) -> bool,
}

impl<R, F> retry::Attempt<R> for AsyncAttempts<'_, R, F>
where
    F: FnOnce() -> R + Send,
    R: Serialize + DeserializeOwned,
{
    async fn attempt(&mut self, opts: &Checked, cancel: Option<&Epoch>) -> Ended<R> {
        let deadline = Deadline::after(opts.secs);
        let (kill, limits, output) = (opts.kill, opts.limits, opts.output);
        let (body, failed) = (&mut self.body, self.failed);
        let started = spawner::run(move || spawn(kill, limits, output, body, failed));
        attempt(
            &mut AsyncWaiter,
            self.function,
            opts,
            cancel,
            deadline,
            started,
        )
        .await
    }
}

/// Watches one attempt whose child was just forked (or failed to be).
async fn attempt<R, W>(
    waiter: &mut W,
    function: &str,
    opts: &Checked,
    cancel: Option<&crate::os::cancel::Epoch>,
    deadline: Deadline,
    started: io::Result<(Child, RegisteredFd)>,
) -> Ended<R>
where
    R: DeserializeOwned,
    W: Waiter,
{
    match started {
        Ok((child, read)) => {
            let child = Guarded::new(child);
            let outgoing = (Vec::new(), &[][..]);
            attempt::watch(
                waiter,
                function,
                opts,
                child,
                read,
                outgoing,
                Stop { deadline, cancel },
            )
            .await
        }
        Err(e) => attempt::spawn_failed(function, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// L9: a thread of the caller holds the poller's lock when another
    /// forks; the child's nested async call (which waits through the
    /// poller) must not find that lock held by a thread it does not have
    /// (it uses a fresh poller of its own).
    #[test]
    fn a_nested_async_call_in_a_fork_child_finds_the_poller_free() {
        let (held, release) = std::sync::mpsc::channel::<()>();
        let holder = std::thread::spawn(move || {
            let guard = crate::wait::poller::hold();
            held.send(()).unwrap();
            std::thread::sleep(Duration::from_millis(300));
            drop(guard);
        });
        release.recv().unwrap();
        let outer = Options::new().secs(5.0);
        let got = crate::run_with_timeout(&outer, || {
            let inner = Options::new().secs(2.0);
            // Slow enough that the wait goes to the poller.
            let body = || {
                std::thread::sleep(Duration::from_millis(50));
                5u8
            };
            // Not a tokio runtime, even with the feature: the poller waits.
            crate::child::executor::park_on(call_async(&inner, "inner", body, |_| false)).ok()
        });
        holder.join().unwrap();
        assert_eq!(got.unwrap(), Some(5));
    }
}
