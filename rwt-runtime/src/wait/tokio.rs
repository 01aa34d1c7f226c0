//! Waiting through tokio's reactor (the `tokio` feature, Linux): the
//! call's descriptors, and a timerfd for the deadline, are registered with
//! the runtime's `AsyncFd` for each wait and deregistered before it returns.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::task::Poll;

use crate::os::fds::{self, RegisteredFd};
use crate::wait::deadline::Deadline;

thread_local! {
    /// A tokio runtime on this thread refused an `AsyncFd` (built without
    /// `enable_io`): from then on this thread's waits use the poller.
    static NO_TOKIO_IO: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// What `tokio_wait` says when the runtime has no reactor to lend.
pub(super) const NO_REACTOR: nix::errno::Errno = nix::errno::Errno::ENOTSUP;

/// What [`tokio_wait`] says when rwt's descriptor list is held (a fork in
/// progress holds it for as long as the kernel copies the caller, which
/// may take milliseconds): this one wait goes to the poller, which needs
/// no new descriptor, instead of waiting for the fork.
pub(super) const LIST_BUSY: nix::errno::Errno = nix::errno::Errno::EWOULDBLOCK;

/// Is this thread in a tokio runtime whose reactor rwt may use?
pub(super) fn in_tokio() -> bool {
    tokio::runtime::Handle::try_current().is_ok() && !NO_TOKIO_IO.with(std::cell::Cell::get)
}

/// A descriptor as tokio's `AsyncFd` holds it: borrowed, never closed by it.
struct Fd(RawFd);

impl AsRawFd for Fd {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

/// Waits through tokio until one of the descriptors is ready or `until`
/// passes. Each descriptor is registered for this wait only, so it is
/// deregistered before anyone can close it; the cancel pipe, which every
/// call shares, is registered through a private duplicate (one epoll set
/// cannot hold the same descriptor twice).
pub(super) async fn tokio_wait(
    channel: Option<(BorrowedFd<'_>, bool)>,
    exit: Option<BorrowedFd<'_>>,
    cancel: Option<BorrowedFd<'_>>,
    until: Deadline,
) -> nix::Result<()> {
    use tokio::io::Interest;

    let (timer, cancel_copy) = private_descriptors(until, cancel)?;
    let channel = match channel {
        Some((fd, write)) => {
            let interest = if write {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            // `fd` is borrowed for the whole of this function, and the
            // registration is dropped before it returns: the descriptor stays
            // open, and the same, for as long as tokio holds it.
            Some((register(fd.as_raw_fd(), interest)?, write))
        }
        None => None,
    };
    let mut readable = Vec::with_capacity(3);
    for fd in [
        Some(timer.fd().as_raw_fd()),
        exit.map(|fd| fd.as_raw_fd()),
        cancel_copy.as_ref().map(|c| c.fd().as_raw_fd()),
    ]
    .into_iter()
    .flatten()
    {
        // As above; the duplicate of the cancel pipe is dropped only after
        // its registration.
        readable.push(register(fd, Interest::READABLE)?);
    }
    std::future::poll_fn(|cx| {
        if let Some((fd, write)) = &channel {
            if fd.poll_read_ready(cx).is_ready() || (*write && fd.poll_write_ready(cx).is_ready()) {
                return Poll::Ready(());
            }
        }
        if readable.iter().any(|fd| fd.poll_read_ready(cx).is_ready()) {
            return Poll::Ready(());
        }
        Poll::Pending
    })
    .await;
    // The registrations go first, then the descriptors they name.
    drop(channel);
    drop(readable);
    drop(cancel_copy);
    drop(timer);
    Ok(())
}

/// Registers `fd` with this thread's tokio reactor. tokio panics when its
/// runtime was built without I/O: that is an answer (use the poller,
/// [`NO_REACTOR`]), not a bug of the caller's.
///
/// The caller keeps `fd` open, and the same, for as long as the
/// registration lives.
fn register(fd: RawFd, interest: tokio::io::Interest) -> nix::Result<tokio::io::unix::AsyncFd<Fd>> {
    // SAFETY: per the contract above, `fd` outlives the registration.
    let registered = crate::os::panic_hook::quietly(|| unsafe {
        tokio::io::unix::AsyncFd::register_with_interest(Fd(fd), interest)
    });
    match registered {
        Ok(r) => r.map_err(|e| {
            let e = std::io::Error::from(e);
            nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(0))
        }),
        Err(_) => Err(NO_REACTOR),
    }
}

/// The wait's own descriptors, registered with rwt's list: a timer for
/// `until`, and a duplicate of the cancel pipe (one epoll set cannot hold
/// the descriptor every call shares twice). Made under the list's lock, so
/// that a child forked by another thread meanwhile has them registered, and
/// closes them.
fn private_descriptors(
    until: Deadline,
    cancel: Option<BorrowedFd<'_>>,
) -> nix::Result<(RegisteredFd, Option<RegisteredFd>)> {
    // Never waited for: a call near its deadline must not sit behind a
    // fork (see [`LIST_BUSY`]).
    let Some(mut fds) = fds::try_fds() else {
        return Err(LIST_BUSY);
    };
    let timer = timer_at(until)?;
    let cancel_copy = match cancel {
        Some(fd) => {
            let copy = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(0))?;
            // SAFETY: fcntl just returned this new descriptor; nothing else
            // owns it.
            Some(unsafe { OwnedFd::from_raw_fd(copy) })
        }
        None => None,
    };
    Ok((
        RegisteredFd::new(&mut fds, timer),
        cancel_copy.map(|fd| RegisteredFd::new(&mut fds, fd)),
    ))
}

/// A timer descriptor that becomes readable at `until`, to the
/// nanosecond: tokio's own timer rounds up to the next millisecond, which
/// would make every timeout a millisecond late.
fn timer_at(until: Deadline) -> nix::Result<OwnedFd> {
    use nix::errno::Errno;
    use nix::libc;
    // SAFETY: integer arguments only; a new descriptor or -1 comes back.
    let fd = Errno::result(unsafe {
        libc::timerfd_create(
            libc::CLOCK_MONOTONIC,
            libc::TFD_CLOEXEC | libc::TFD_NONBLOCK,
        )
    })?;
    // SAFETY: the kernel just returned this descriptor; nothing else owns it.
    let fd = crate::os::fds::above_stdio(unsafe { OwnedFd::from_raw_fd(fd) })?;
    // `Instant` is CLOCK_MONOTONIC here, so a relative time is the same
    // point. Zero would disarm the timer: at least a nanosecond.
    let left = until.remaining().max(std::time::Duration::from_nanos(1));
    let spec = libc::itimerspec {
        it_interval: libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        },
        it_value: *nix::sys::time::TimeSpec::from_duration(left).as_ref(),
    };
    // SAFETY: `fd` is a timerfd we own, `spec` a valid itimerspec, and the
    // old value is not asked for (null).
    Errno::result(unsafe {
        libc::timerfd_settime(fd.as_raw_fd(), 0, &spec, std::ptr::null_mut())
    })?;
    Ok(fd)
}

/// This thread's runtime has no reactor to lend: its waits use the poller
/// from now on.
pub(super) fn without_reactor() {
    NO_TOKIO_IO.with(|n| n.set(true));
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    /// While something holds rwt's descriptor list (a fork in progress),
    /// a tokio wait does not wait for it: it says so at once, and the
    /// caller's wait goes to the poller (`async_wait.rs`).
    #[test]
    fn a_wait_does_not_wait_for_the_descriptor_list() {
        const HOLD: Duration = Duration::from_millis(300);
        let held = std::sync::Barrier::new(2);
        std::thread::scope(|s| {
            // Holds the list for a while, as a fork of a large caller does
            // (and lets go in any case, so a wait that does wait ends).
            s.spawn(|| {
                let _list = fds::fds();
                held.wait();
                std::thread::sleep(HOLD);
            });
            held.wait();
            let start = Instant::now();
            let got = private_descriptors(Deadline::after(Duration::from_secs(5)), None);
            let took = start.elapsed();
            assert_eq!(got.err(), Some(LIST_BUSY), "after {took:?}");
            assert!(took < HOLD / 3, "{took:?}");
        });
        // And with the list free, the descriptors come (other tests of this
        // binary hold it for moments).
        let got = (0..1000).find_map(|_| {
            match private_descriptors(Deadline::after(Duration::from_secs(5)), None) {
                Err(LIST_BUSY) => {
                    std::thread::sleep(Duration::from_millis(1));
                    None
                }
                other => Some(other),
            }
        });
        assert!(matches!(got, Some(Ok(_))), "{got:?}");
    }
}
