//! Deadlines on the monotonic clock, and waiting for file descriptors
//! without ever letting a signal shorten or stretch the wait.

use std::future::Future;
use std::os::fd::BorrowedFd;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags};

/// A point on the monotonic clock (`Instant`: never the wall clock, which
/// can jump).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Deadline(Instant);

impl Deadline {
    /// `d` from now; far in the future if that cannot be represented.
    pub(crate) fn after(d: Duration) -> Self {
        let now = Instant::now();
        Deadline(
            now.checked_add(d)
                .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 86_400)),
        )
    }

    /// Time left, zero once passed.
    pub(crate) fn remaining(self) -> Duration {
        self.0.saturating_duration_since(Instant::now())
    }

    pub(crate) fn passed(self) -> bool {
        Instant::now() >= self.0
    }

    pub(crate) fn instant(self) -> Instant {
        self.0
    }

    /// `d` before this deadline, if that is still ahead: a point at which
    /// to get ready for it.
    pub(crate) fn ahead_by(self, d: Duration) -> Option<Deadline> {
        self.0
            .checked_sub(d)
            .filter(|&at| at > Instant::now())
            .map(Deadline)
    }

    /// How long a wait for a child's end may sleep: to this deadline if
    /// the child's exit wakes the wait (`exit_fd`, its pidfd), or else one
    /// [`FALLBACK_STEP`] at most, since nothing would wake it when the
    /// child ends: the one place that steps without a pidfd.
    pub(crate) fn or_step(self, exit_fd: Option<BorrowedFd<'_>>) -> Deadline {
        match exit_fd {
            Some(_) => self,
            None => Deadline::after(self.remaining().min(FALLBACK_STEP)),
        }
    }
}

/// Step of a wait for a child's end where no pidfd exists (non-Linux, old
/// kernels).
pub(crate) const FALLBACK_STEP: Duration = Duration::from_millis(2);

/// What a wait found ready.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Ready {
    /// The channel can be read (or has hung up or failed).
    pub readable: bool,
    /// The channel can be written (or has failed).
    pub writable: bool,
    /// The exit descriptor is readable: the child ended.
    pub exited: bool,
    /// The cancel descriptor is readable: `kill_all` ran.
    pub cancelled: bool,
}

impl Ready {
    /// Is anything ready?
    pub(crate) fn any(self) -> bool {
        self.readable || self.writable || self.exited || self.cancelled
    }
}

/// Longest single `ppoll`: long waits loop in chunks.
const CHUNK: Duration = Duration::from_secs(3600);

/// Polls `fds` until one of them has an event or the deadline passes:
/// `Ok(true)` with their `revents` set, `Ok(false)` at the deadline. Long
/// waits go in chunks; `EINTR` restarts the wait with the time left
/// computed again, so a signal neither shortens nor stretches it.
fn poll_until(fds: &mut [PollFd<'_>], deadline: Deadline) -> nix::Result<bool> {
    loop {
        let left = deadline.remaining();
        if left.is_zero() {
            return Ok(false);
        }
        let timeout = nix::sys::time::TimeSpec::from_duration(left.min(CHUNK));
        match ppoll(fds, timeout) {
            Ok(0) | Err(Errno::EINTR) => {}
            Ok(_) => return Ok(true),
            Err(e) => return Err(e),
        }
    }
}

/// Waits until the channel is readable (or writable, if `want_write`), the
/// exit descriptor is readable, the cancel descriptor is readable, or the
/// deadline passes (then nothing is ready).
pub(crate) fn wait_ready(
    channel: Option<(BorrowedFd<'_>, bool)>,
    exit: Option<BorrowedFd<'_>>,
    cancel: Option<BorrowedFd<'_>>,
    deadline: Deadline,
) -> nix::Result<Ready> {
    let mut fds = poll_fds(channel, exit, cancel);
    if !poll_until(&mut fds, deadline)? {
        return Ok(Ready::default());
    }
    Ok(revents(
        &fds,
        channel.is_some(),
        exit.is_some(),
        cancel.is_some(),
    ))
}

/// The poll set of a wait, for every waiter: the channel first (readable,
/// and writable if asked), then exit, then cancel (readable).
pub(crate) fn poll_set<'a>(
    channel: Option<(BorrowedFd<'a>, bool)>,
    exit: Option<BorrowedFd<'a>>,
    cancel: Option<BorrowedFd<'a>>,
) -> impl Iterator<Item = (BorrowedFd<'a>, PollFlags)> {
    let channel = channel.map(|(fd, write)| {
        let mut events = PollFlags::POLLIN;
        if write {
            events |= PollFlags::POLLOUT;
        }
        (fd, events)
    });
    let others = [exit, cancel].into_iter().flatten();
    channel
        .into_iter()
        .chain(others.map(|fd| (fd, PollFlags::POLLIN)))
}

/// [`poll_set`] as `ppoll` takes it.
fn poll_fds<'a>(
    channel: Option<(BorrowedFd<'a>, bool)>,
    exit: Option<BorrowedFd<'a>>,
    cancel: Option<BorrowedFd<'a>>,
) -> Vec<PollFd<'a>> {
    poll_set(channel, exit, cancel)
        .map(|(fd, events)| PollFd::new(fd, events))
        .collect()
}

/// What a polled set built by [`poll_fds`] says.
fn revents(fds: &[PollFd<'_>], channel: bool, exit: bool, cancel: bool) -> Ready {
    let mut ready = Ready::default();
    let failed = PollFlags::POLLHUP | PollFlags::POLLERR | PollFlags::POLLNVAL;
    let mut events = fds
        .iter()
        .map(|fd| fd.revents().unwrap_or(PollFlags::empty()));
    if channel {
        let ev = events.next().unwrap_or(PollFlags::empty());
        ready.readable = ev.intersects(PollFlags::POLLIN | failed);
        ready.writable = ev.intersects(PollFlags::POLLOUT | failed);
    }
    if exit {
        ready.exited = events.next().is_some_and(|e| !e.is_empty());
    }
    if cancel {
        ready.cancelled = events.next().is_some_and(|e| !e.is_empty());
    }
    ready
}

/// How a call waits on its descriptors: by blocking its thread (sync
/// calls, [`Blocking`]) or by handing them to an executor and yielding
/// (async calls). The code that watches, kills and reaps a child is written
/// once, against this trait.
pub(crate) trait Waiter {
    /// Whether a call that waits this way stays on one thread from start
    /// to end (sync calls). Only then may that thread start the child:
    /// PR_SET_PDEATHSIG ties the child to the thread that started it.
    const ONE_THREAD: bool;

    /// Waits until the channel is readable (or writable, if asked), the exit
    /// descriptor is readable, `cancel` is cancelled, or `until` passes
    /// (then nothing is ready). Never reports less than is ready now.
    fn ready<'a>(
        &'a mut self,
        channel: Option<(BorrowedFd<'a>, bool)>,
        exit: Option<BorrowedFd<'a>>,
        cancel: Option<BorrowedFd<'a>>,
        until: Deadline,
    ) -> impl Future<Output = nix::Result<Ready>> + 'a;
}

/// The waiter of sync calls: `ppoll` on the calling thread.
pub(crate) struct Blocking;

impl Waiter for Blocking {
    const ONE_THREAD: bool = true;

    fn ready<'a>(
        &'a mut self,
        channel: Option<(BorrowedFd<'a>, bool)>,
        exit: Option<BorrowedFd<'a>>,
        cancel: Option<BorrowedFd<'a>>,
        until: Deadline,
    ) -> impl Future<Output = nix::Result<Ready>> + 'a {
        std::future::ready(wait_ready(channel, exit, cancel, until))
    }
}

/// Runs code written for any [`Waiter`] with [`Blocking`], which never
/// yields: one poll finishes it.
pub(crate) fn block_now<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    match f.as_mut().poll(&mut cx) {
        Poll::Ready(value) => value,
        Poll::Pending => unreachable!("a blocking wait never yields"),
    }
}

/// What is ready now, without waiting.
pub(crate) fn ready_now(
    channel: Option<(BorrowedFd<'_>, bool)>,
    exit: Option<BorrowedFd<'_>>,
    cancel: Option<BorrowedFd<'_>>,
) -> nix::Result<Ready> {
    let mut fds = poll_fds(channel, exit, cancel);
    match ppoll(
        &mut fds,
        nix::sys::time::TimeSpec::from_duration(Duration::ZERO),
    ) {
        Ok(0) | Err(Errno::EINTR) => Ok(Ready::default()),
        Ok(_) => Ok(revents(
            &fds,
            channel.is_some(),
            exit.is_some(),
            cancel.is_some(),
        )),
        Err(e) => Err(e),
    }
}

/// Waits until any of `fds` is readable (or hung up) or the deadline
/// passes; says which are ready (none at the deadline).
pub(crate) fn wait_any(fds: &[BorrowedFd<'_>], deadline: Deadline) -> nix::Result<Vec<bool>> {
    let mut polled: Vec<PollFd<'_>> = fds
        .iter()
        .map(|&fd| PollFd::new(fd, PollFlags::POLLIN))
        .collect();
    poll_until(&mut polled, deadline)?;
    Ok(polled
        .iter()
        .map(|p| p.revents().is_some_and(|r| !r.is_empty()))
        .collect())
}

#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
fn ppoll(fds: &mut [PollFd<'_>], timeout: nix::sys::time::TimeSpec) -> nix::Result<i32> {
    nix::poll::ppoll(fds, Some(timeout), None)
}

#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
fn ppoll(fds: &mut [PollFd<'_>], timeout: nix::sys::time::TimeSpec) -> nix::Result<i32> {
    // poll takes milliseconds: round up so the wait never ends early.
    let d = Duration::from(timeout);
    let ms = u16::try_from(d.as_nanos().div_ceil(1_000_000)).unwrap_or(u16::MAX);
    nix::poll::poll(fds, ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn nothing_ready_waits_until_the_deadline() {
        let (r, _w) = nix::unistd::pipe().unwrap();
        let start = Instant::now();
        let soon = Deadline::after(Duration::from_millis(30));
        let ready = wait_ready(Some((r.as_fd(), false)), None, None, soon).unwrap();
        assert!(!ready.readable && !ready.writable && !ready.exited);
        assert!(start.elapsed() >= Duration::from_millis(30));
    }

    #[test]
    fn reports_what_is_ready() {
        let (r1, _w1) = nix::unistd::pipe().unwrap();
        let (r2, w2) = nix::unistd::pipe().unwrap();
        nix::unistd::write(&w2, b"x").unwrap();
        let soon = Deadline::after(Duration::from_secs(5));
        let ready = wait_ready(Some((r1.as_fd(), false)), Some(r2.as_fd()), None, soon).unwrap();
        assert!(!ready.readable && ready.exited);
        let ready = wait_ready(None, Some(r2.as_fd()), None, soon).unwrap();
        assert!(ready.exited);
        let ready = wait_ready(Some((w2.as_fd(), true)), None, None, soon).unwrap();
        assert!(ready.writable);
        let ready = wait_ready(None, Some(r1.as_fd()), Some(r2.as_fd()), soon).unwrap();
        assert!(ready.cancelled && !ready.exited);
    }
}
