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

use std::future::Future;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
#[cfg(all(feature = "tokio", target_os = "linux"))]
use std::os::fd::{FromRawFd, OwnedFd};
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use nix::fcntl::OFlag;
use nix::poll::PollFlags;

use crate::os::fds::{self, RegisteredFd};
use crate::wait::deadline::{ready_now, Deadline, Ready, Waiter};

/// The waiter of an async call: for each wait, tokio's reactor if the call
/// is polled inside a tokio runtime (and the feature is on), the poller
/// otherwise. Chosen per wait, so a future that moves between executors
/// keeps working.
pub(crate) struct AsyncWaiter;

#[cfg(all(feature = "tokio", target_os = "linux"))]
thread_local! {
    /// A tokio runtime on this thread refused an `AsyncFd` (built without
    /// `enable_io`): from then on this thread's waits use the poller.
    static NO_TOKIO_IO: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// What `tokio_wait` says when the runtime has no reactor to lend.
#[cfg(all(feature = "tokio", target_os = "linux"))]
const NO_REACTOR: nix::errno::Errno = nix::errno::Errno::ENOTSUP;

/// Is this thread in a tokio runtime whose reactor rwt may use?
#[cfg(all(feature = "tokio", target_os = "linux"))]
fn in_tokio() -> bool {
    tokio::runtime::Handle::try_current().is_ok() && !NO_TOKIO_IO.with(std::cell::Cell::get)
}

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
        if in_tokio() {
            match tokio_wait(channel, exit, cancel, until).await {
                // A runtime without I/O: the poller waits instead, now and
                // for the rest of this thread's waits.
                Err(e) if e == NO_REACTOR => NO_TOKIO_IO.with(|n| n.set(true)),
                other => {
                    other?;
                    return ready_now(channel, exit, cancel);
                }
            }
        }
        let mut fds = Vec::with_capacity(3);
        if let Some((fd, write)) = channel {
            let mut events = PollFlags::POLLIN;
            if write {
                events |= PollFlags::POLLOUT;
            }
            fds.push((fd.as_raw_fd(), events));
        }
        for fd in [exit, cancel].into_iter().flatten() {
            fds.push((fd.as_raw_fd(), PollFlags::POLLIN));
        }
        PollerWait {
            fds,
            until: until.instant(),
            id: None,
        }
        .await;
        ready_now(channel, exit, cancel)
    }
}

/// A descriptor as tokio's `AsyncFd` holds it: borrowed, never closed by it.
#[cfg(all(feature = "tokio", target_os = "linux"))]
struct Fd(RawFd);

#[cfg(all(feature = "tokio", target_os = "linux"))]
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
#[cfg(all(feature = "tokio", target_os = "linux"))]
async fn tokio_wait(
    channel: Option<(BorrowedFd<'_>, bool)>,
    exit: Option<BorrowedFd<'_>>,
    cancel: Option<BorrowedFd<'_>>,
    until: Deadline,
) -> nix::Result<()> {
    use tokio::io::unix::AsyncFd;
    use tokio::io::Interest;

    let errno = |e: std::io::Error| nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(0));
    // tokio panics when its runtime was built without I/O: that is an
    // answer (use the poller), not a bug of the caller's.
    let register = |fd: RawFd, interest: Interest| {
        // SAFETY: see the callers: `fd` stays open, and the same, for as
        // long as the registration lives.
        let registered = crate::os::panic_hook::quietly(|| unsafe {
            AsyncFd::register_with_interest(Fd(fd), interest)
        });
        match registered {
            Ok(r) => r.map_err(|e| errno(e.into())),
            Err(_) => Err(NO_REACTOR),
        }
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
    let (timer, cancel_copy) = {
        let mut fds = fds::fds();
        (
            RegisteredFd::new(&mut fds, timer),
            cancel_copy.map(|fd| RegisteredFd::new(&mut fds, fd)),
        )
    };
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

/// A timer descriptor that becomes readable at `until`, to the
/// nanosecond: tokio's own timer rounds up to the next millisecond, which
/// would make every timeout a millisecond late.
#[cfg(all(feature = "tokio", target_os = "linux"))]
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

/// One wait handed to the poller: registered on first poll, deregistered
/// when done or dropped.
struct PollerWait {
    fds: Vec<(RawFd, PollFlags)>,
    until: Instant,
    id: Option<u64>,
}

/// A wait as the poller holds it.
struct Registration {
    id: u64,
    fds: Vec<(RawFd, PollFlags)>,
    until: Instant,
    waker: Waker,
    fired: bool,
}

/// The poller's state.
struct Poller {
    /// The process it belongs to (a forked child starts afresh).
    owner: u32,
    next_id: u64,
    waits: Vec<Registration>,
    /// Write end of the pipe that wakes the poller thread, once started.
    wake: Option<RegisteredFd>,
}

static POLLER: Mutex<Poller> = Mutex::new(Poller {
    owner: 0,
    next_id: 0,
    waits: Vec::new(),
    wake: None,
});

/// The poller's lock, held by a thread that forks (after stdout and stderr,
/// before the registry, the order `PollerWait` takes the last two in): the
/// child's copy is then never one that another thread held, and a nested
/// async call in the child can take it.
pub(crate) struct ForkGuard(#[allow(dead_code)] std::sync::MutexGuard<'static, Poller>);

pub(crate) fn lock_for_fork() -> ForkGuard {
    ForkGuard(poller())
}

fn poller() -> std::sync::MutexGuard<'static, Poller> {
    let mut p = POLLER
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let me = std::process::id();
    if p.owner != me {
        // A copy from the parent process: its thread does not exist here,
        // and its wake pipe was closed with rwt's other descriptors (or is
        // the parent's, after the user's own fork). Forget it all.
        std::mem::forget(std::mem::take(&mut p.waits));
        if let Some(wake) = p.wake.take() {
            std::mem::forget(wake);
        }
        p.owner = me;
    }
    p
}

impl Future for PollerWait {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut p = poller();
        if let Some(id) = self.id {
            if let Some(w) = p.waits.iter_mut().find(|w| w.id == id) {
                if w.fired {
                    return Poll::Ready(());
                }
                if !w.waker.will_wake(cx.waker()) {
                    w.waker = cx.waker().clone();
                }
                return Poll::Pending;
            }
            // Not found: the poller state was reset (a fork). Register again.
        }
        if p.wake.is_none() && !start_poller(&mut p) {
            // No thread: report ready, and the caller looks for itself
            // (it then waits again: a busy loop, but a correct one).
            return Poll::Ready(());
        }
        p.next_id += 1;
        let id = p.next_id;
        p.waits.push(Registration {
            id,
            fds: self.fds.clone(),
            until: self.until,
            waker: cx.waker().clone(),
            fired: false,
        });
        self.id = Some(id);
        if let Some(wake) = &p.wake {
            let _ = nix::unistd::write(wake.fd(), &[1]);
        }
        Poll::Pending
    }
}

impl Drop for PollerWait {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            let mut p = poller();
            p.waits.retain(|w| w.id != id);
        }
    }
}

/// Starts the poller thread. Called with the poller locked.
fn start_poller(p: &mut Poller) -> bool {
    let pipe = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK);
    let Ok((read, write)) = pipe.and_then(crate::os::fds::pair_above_stdio) else {
        return false;
    };
    let (read, write) = {
        let mut fds = fds::fds();
        (
            RegisteredFd::new(&mut fds, read),
            RegisteredFd::new(&mut fds, write),
        )
    };
    let started = std::thread::Builder::new()
        .name("rwt-poller".into())
        .spawn(move || poller_thread(&read));
    if started.is_err() {
        return false;
    }
    p.wake = Some(write);
    true
}

/// The poller thread: polls the descriptors of every wait not yet fired,
/// and its wake pipe; fires the waits that are ready or past their time.
fn poller_thread(wake: &RegisteredFd) {
    let wake_fd = wake.fd().as_raw_fd();
    let mut set: Vec<nix::libc::pollfd> = Vec::new();
    // Which wait each entry of `set` (after the wake pipe) belongs to.
    let mut owners: Vec<u64> = Vec::new();
    loop {
        set.clear();
        owners.clear();
        set.push(pollfd(wake_fd, PollFlags::POLLIN));
        let mut next: Option<Instant> = None;
        {
            let p = poller();
            for w in p.waits.iter().filter(|w| !w.fired) {
                for &(fd, events) in &w.fds {
                    set.push(pollfd(fd, events));
                    owners.push(w.id);
                }
                next = Some(next.map_or(w.until, |n| n.min(w.until)));
            }
        }
        let timeout = next.map(|n| {
            *nix::sys::time::TimeSpec::from_duration(n.saturating_duration_since(Instant::now()))
                .as_ref()
        });
        let timeout_ptr = timeout
            .as_ref()
            .map_or(std::ptr::null(), |t| t as *const nix::libc::timespec);
        // SAFETY: `set` is a valid array of `set.len()` pollfd structures,
        // `timeout_ptr` null or a valid timespec, and no signal mask is
        // passed. The descriptors are plain numbers to the kernel: one
        // closed since (its wait was dropped) reports POLLNVAL, harmlessly.
        let n = unsafe {
            nix::libc::ppoll(
                set.as_mut_ptr(),
                set.len() as nix::libc::nfds_t,
                timeout_ptr,
                std::ptr::null(),
            )
        };
        if n < 0 {
            continue; // EINTR (nothing else can fail here): look again
        }
        if set[0].revents != 0 {
            let mut buf = [0u8; 64];
            while matches!(nix::unistd::read(wake.fd(), &mut buf), Ok(n) if n > 0) {}
        }
        let now = Instant::now();
        let mut wakers = Vec::new();
        {
            let mut p = poller();
            for w in p.waits.iter_mut().filter(|w| !w.fired) {
                let ready = set[1..]
                    .iter()
                    .zip(&owners)
                    .any(|(fd, &id)| id == w.id && fd.revents != 0);
                if ready || now >= w.until {
                    w.fired = true;
                    wakers.push(w.waker.clone());
                }
            }
        }
        wakers.into_iter().for_each(Waker::wake);
    }
}

fn pollfd(fd: RawFd, events: PollFlags) -> nix::libc::pollfd {
    nix::libc::pollfd {
        fd,
        events: events.bits(),
        revents: 0,
    }
}
