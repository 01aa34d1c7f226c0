//! rwt's poller: one thread, started on first use, `poll`s the
//! descriptors of every waiting async call (any executor, or tokio without
//! the feature) and wakes the task whose descriptors are ready or whose
//! deadline passed. It needs nothing from the executor but its `Waker`.
//!
//! The thread and its wake pipe are not kept for good: once no wait has
//! been pending for [`LINGER`], the thread ends (under the poller's lock,
//! so a wait that comes later starts a new one). A service whose waits go
//! to the poller only in a busy moment holds no more threads or
//! descriptors after it than before.

use std::future::Future;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use nix::poll::PollFlags;

use crate::os::fds::{self, RegisteredFd};
use crate::os::state::ProcessLocal;

/// How long the poller thread stays with no wait pending before it ends.
/// Long enough that a burst of waits starts one thread, not one per wait
/// (a start costs a thread and a pipe: tens of µs).
pub(crate) const LINGER: Duration = Duration::from_millis(500);

/// One wait handed to the poller: registered on first poll, deregistered
/// when done or dropped.
pub(super) struct PollerWait {
    fds: Vec<(RawFd, PollFlags)>,
    until: Instant,
    id: Option<u64>,
}

impl PollerWait {
    /// A wait for any of `fds` (with the events to wait for), until `until`.
    pub(super) fn new(fds: Vec<(RawFd, PollFlags)>, until: Instant) -> Self {
        PollerWait {
            fds,
            until,
            id: None,
        }
    }
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
    next_id: u64,
    waits: Vec<Registration>,
    /// Write end of the pipe that wakes the poller thread, once started.
    wake: Option<RegisteredFd>,
}

/// In a child, the parent's poller thread does not exist and its wake pipe
/// was closed with rwt's other descriptors (or is the parent's, after the
/// user's own fork): a fresh state, the parent's waits forgotten. Not held
/// across `fork`: a child never uses its parent's copy.
static STATE: ProcessLocal<Poller> = ProcessLocal::new(
    || Poller {
        next_id: 0,
        waits: Vec::new(),
        wake: None,
    },
    || {},
);

fn poller() -> std::sync::MutexGuard<'static, Poller> {
    STATE.lock()
}

/// Holds the poller's lock, as a busy poller thread does (for tests).
#[cfg(test)]
pub(crate) fn hold() -> impl Sized {
    poller()
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
                    w.waker.clone_from(cx.waker());
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
    // Made under the descriptor list's lock, so that a child forked by
    // another thread meanwhile has the pipe registered, and closes it.
    let (read, write) = {
        let mut fds = fds::fds();
        let pipe = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK);
        let Ok((read, write)) = pipe.and_then(crate::os::fds::pair_above_stdio) else {
            return false;
        };
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
    // Since when no wait has been pending (none: some is).
    let mut idle_since: Option<Instant> = None;
    loop {
        set.clear();
        owners.clear();
        set.push(pollfd(wake_fd, PollFlags::POLLIN));
        let mut next: Option<Instant> = None;
        {
            let mut p = poller();
            for w in p.waits.iter().filter(|w| !w.fired) {
                for &(fd, events) in &w.fds {
                    set.push(pollfd(fd, events));
                    owners.push(w.id);
                }
                next = Some(next.map_or(w.until, |n| n.min(w.until)));
            }
            if next.is_some() {
                idle_since = None;
            } else {
                let since = *idle_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= LINGER {
                    // Under the lock: a wait registered from now on finds
                    // no wake pipe and starts a new thread. The pipe's
                    // write end is closed once the lock is released.
                    let write = p.wake.take();
                    drop(p);
                    drop(write);
                    return;
                }
                next = Some(since + LINGER);
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    /// Whether a thread of this process is named `rwt-poller`.
    fn a_poller_thread_runs() -> bool {
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(Result::ok)
            .any(|t| {
                std::fs::read_to_string(t.path().join("comm"))
                    .is_ok_and(|name| name.trim_end() == "rwt-poller")
            })
    }

    /// The poller's thread and wake pipe end once no wait has been pending
    /// for `LINGER` (a busy moment must not leave them for good), and a
    /// wait after that starts a new thread and is served.
    #[test]
    fn the_poller_thread_ends_once_idle_and_starts_again() {
        let (read, _write) = nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap();
        let wait_once = |ms: u64| {
            let until = Instant::now() + Duration::from_millis(ms);
            let wait = PollerWait::new(vec![(read.as_raw_fd(), PollFlags::POLLIN)], until);
            crate::child::executor::park_on(wait);
            assert!(Instant::now() >= until, "the wait fired before its time");
        };
        wait_once(10);
        assert!(
            a_poller_thread_runs(),
            "the wait went through no poller thread"
        );
        // Other tests of this binary may use the poller meanwhile: wait
        // for it to be idle, generously.
        let deadline = Instant::now() + LINGER + Duration::from_secs(10);
        while (poller().wake.is_some() || a_poller_thread_runs()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(poller().wake.is_none(), "the poller kept its wake pipe");
        assert!(!a_poller_thread_runs(), "the poller thread is still there");
        wait_once(10);
    }
}
