//! One attempt in fork mode: the child is a `fork()` of the caller, which
//! already holds the function and its arguments; only the result crosses,
//! on a pipe. Watching, killing and reaping are [`watch`]'s.

use std::future::Future;
use std::io::{self, Write};
use std::mem::ManuallyDrop;
use std::os::fd::{AsFd, AsRawFd};

use nix::fcntl::{FcntlArg, OFlag};
use nix::unistd::ForkResult;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::call::attempt;
use crate::call::exchange::Stop;
use crate::call::kill::Guarded;
use crate::call::outcome::Ended;
use crate::call::process::Child;
use crate::call::retry;
use crate::child::body;
use crate::options::Checked;
use crate::os::cancel::Epoch;
use crate::os::fds::{self, RegisteredFd};
use crate::os::spawner;
use crate::wait::async_wait::AsyncWaiter;
use crate::wait::deadline::{block_now, Blocking, Deadline, Waiter};
use crate::{Error, Options};

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

/// The locks a fork-mode start holds across `fork`, taken in the lock
/// order: stdout, stderr, rwt's poller, then (by the caller) rwt's
/// descriptor list. A caller that holds the stdout lock while calling us
/// must not deadlock with another caller. Holding the stdio locks across
/// fork means the child never inherits them locked by a thread that does
/// not exist there; flushing first means the child never prints the
/// caller's buffered output again.
struct ForkLocks {
    out: io::StdoutLock<'static>,
    forking: fds::Forking,
    err: io::StderrLock<'static>,
    poller: crate::wait::poller::ForkGuard,
}

impl ForkLocks {
    fn take() -> Self {
        let mut out = io::stdout().lock();
        let _ = out.flush();
        let forking = fds::Forking::start();
        let err = io::stderr().lock();
        let poller = crate::wait::poller::lock_for_fork();
        ForkLocks {
            out,
            forking,
            err,
            poller,
        }
    }

    /// In the parent, the fork over (or failed): counts it out, then
    /// releases the descriptor list and the rest, innermost first.
    fn release(self, mut fds: std::sync::MutexGuard<'static, fds::Fds>) {
        let ForkLocks {
            out,
            forking,
            err,
            poller,
        } = self;
        forking.end(&mut fds);
        drop(fds);
        drop(poller);
        drop(err);
        drop(out);
    }

    /// In the child (its copy of the descriptor list already released):
    /// the only thread there releases the copies it holds.
    fn release_in_child(self) {
        let ForkLocks {
            out,
            forking,
            err,
            poller,
        } = self;
        forking.in_child();
        drop(poller);
        drop(err);
        drop(out);
    }
}

/// In the parent, once the locks are released: the child in its own
/// group, and the result pipe non-blocking.
fn watch_from_parent(child: Child, read: RegisteredFd) -> io::Result<(Child, RegisteredFd)> {
    // Whichever of parent and child runs first puts the child in its own
    // group, so a group kill never misses it.
    if child.is_ours() {
        let pid = nix::unistd::Pid::from_raw(child.pid() as i32);
        let _ = nix::unistd::setpgid(pid, pid);
    }
    if let Err(e) = nix::fcntl::fcntl(read.fd(), FcntlArg::F_SETFL(OFlag::O_NONBLOCK)) {
        // Nobody would watch it: it goes now, not as a zombie.
        let _ = crate::call::kill::kill_now(child, std::time::Duration::ZERO);
        return Err(e.into());
    }
    Ok((child, read))
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

/// Forks the child. Returns it and the read end of its result pipe.
fn spawn<R, F>(
    kill: bool,
    limits: crate::limits::Limits,
    output: Option<std::os::fd::RawFd>,
    body: &mut Body<F>,
    failed: fn(&R) -> bool,
) -> io::Result<(Child, RegisteredFd)>
where
    F: FnOnce() -> R,
    R: Serialize,
{
    crate::os::panic_hook::ensure_panic_hook();
    let locks = ForkLocks::take();
    let mut fds = fds::fds();
    let (read, write) = fds::pair_above_stdio(nix::unistd::pipe2(OFlag::O_CLOEXEC)?)?;
    let read = RegisteredFd::new(&mut fds, read);
    // The write end is not registered: it lives in this process only
    // while this thread holds the lock (it is closed before the lock goes),
    // so no other fork of rwt's can inherit it, and the parent writes no
    // registry page for it after the fork.
    let parent = nix::unistd::getpid();
    // SAFETY: libc fork(): its atfork handlers keep malloc usable in the
    // child. The child runs only `body::run`, which leaves with `_exit` and
    // never returns here; it holds private copies of the locks taken above
    // (released below, by the only thread it has, the one that took them).
    match unsafe { nix::unistd::fork() } {
        Ok(ForkResult::Child) => {
            // Every registered descriptor is closed in the child, and the
            // rest of rwt's state starts afresh on first use
            // (`os::state`).
            let close = fds.reset_in_child();
            drop(fds);
            crate::os::state::forked();
            locks.release_in_child();
            let pipe = write;
            // SAFETY: this is the child just forked, taking its one copy;
            // `body::run` never returns.
            let f = unsafe { body.take_in_child() };
            body::run(
                body::Setup {
                    parent,
                    kill,
                    pipe,
                    close,
                    limits,
                    output,
                },
                f,
                failed,
            )
        }
        Ok(ForkResult::Parent { child: pid }) => {
            // Checked while this process still holds the write end, so
            // that it can be compared with the child's.
            let child = Child::adopt_holding(pid, write.as_fd(), write.as_raw_fd());
            drop(write);
            locks.release(fds);
            watch_from_parent(child, read)
        }
        Err(e) => {
            drop(write);
            locks.release(fds);
            drop(read);
            Err(e.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// L9: a thread of the caller holds the poller's lock when another
    /// forks; the child's nested async call (which waits through the
    /// poller) must not find that lock held by a thread it does not have.
    #[test]
    fn a_nested_async_call_in_a_fork_child_finds_the_poller_free() {
        let (held, release) = std::sync::mpsc::channel::<()>();
        let holder = std::thread::spawn(move || {
            let guard = crate::wait::poller::lock_for_fork();
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
