//! rwt's process-wide state, behind the one lock that is held across
//! `fork()`.
//!
//! Holding it across `fork` (the pthread_atfork "prepare" idiom) means the
//! child's copy is consistent and unlocked, and lets the child close the
//! pipes of other calls that were in flight in the caller: a call's pipe
//! exists only while registered here, so no child can inherit it unseen.
//!
//! Never emit a tracing event or touch stdout/stderr while holding this
//! lock: `fork` takes the stdout and stderr locks *before* this one.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::{Mutex, MutexGuard};

use crate::reaper;

/// Everything rwt shares between threads of one process.
pub(crate) struct Shared {
    /// The process this state belongs to. A child made by a plain `fork()`
    /// of the user's (not rwt's) has a copy that is not its own.
    owner: u32,
    /// rwt's own pipe descriptors, closed in every child rwt forks.
    fds: Vec<RawFd>,
    /// The orphan reaper's state.
    pub(crate) reaper: reaper::State,
    /// The cancel epoch of `kill_all`.
    pub(crate) cancel: crate::cancel::State,
    /// Pool mode's idle workers and thread.
    #[cfg(target_os = "linux")]
    pub(crate) pool: crate::pool::State,
    /// The thread that starts the children of async calls.
    pub(crate) spawner: crate::spawner::State,
}

static SHARED: Mutex<Shared> = Mutex::new(Shared {
    owner: 0,
    fds: Vec::new(),
    reaper: reaper::State::new(),
    cancel: crate::cancel::State::new(),
    #[cfg(target_os = "linux")]
    pool: crate::pool::State::new(),
    spawner: crate::spawner::State::new(),
});

/// Locks the shared state. A panic while it was held does not poison it for
/// good: every update below leaves it consistent.
pub(crate) fn lock() -> MutexGuard<'static, Shared> {
    let mut shared = SHARED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let me = std::process::id();
    if shared.owner != me {
        if shared.owner != 0 {
            // A copy inherited through the user's own fork(): its reaper
            // thread and descriptors belong to the parent. Forget them
            // without closing anything (the numbers may have been reused).
            shared.forget();
        }
        shared.owner = me;
    }
    shared
}

/// Waits on `condvar` with the lock, as [`Condvar::wait`] does, and with
/// [`lock`]'s care for poisoning.
///
/// [`Condvar::wait`]: std::sync::Condvar::wait
pub(crate) fn wait(
    condvar: &std::sync::Condvar,
    guard: MutexGuard<'static, Shared>,
) -> MutexGuard<'static, Shared> {
    condvar
        .wait(guard)
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    pub(crate) fn register(&mut self, fd: RawFd) {
        self.fds.push(fd);
    }

    pub(crate) fn unregister(&mut self, fd: RawFd) {
        if let Some(i) = self.fds.iter().position(|&f| f == fd) {
            self.fds.swap_remove(i);
        }
    }

    /// In a child rwt just forked (lock still held from the parent): drop
    /// the parent's state and return the descriptors to close.
    pub(crate) fn reset_in_child(&mut self) -> Vec<RawFd> {
        let close = std::mem::take(&mut self.fds);
        self.reaper.reset_in_child();
        self.cancel.forget();
        #[cfg(target_os = "linux")]
        self.pool.forget();
        self.spawner.forget();
        self.owner = std::process::id();
        close
    }

    fn forget(&mut self) {
        self.fds.clear();
        self.reaper.forget();
        self.cancel.forget();
        #[cfg(target_os = "linux")]
        self.pool.forget();
        self.spawner.forget();
    }
}

/// `fd`, moved to a number above 2 if it landed on 0, 1 or 2 (a caller
/// that closed its standard descriptors): otherwise the caller's own
/// `println!`, or a child's inherited stdout, would write into rwt's
/// channel. Close-on-exec either way.
pub(crate) fn above_stdio(fd: OwnedFd) -> nix::Result<OwnedFd> {
    if fd.as_raw_fd() > 2 {
        return Ok(fd);
    }
    let moved = nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(3))?;
    drop(fd);
    // SAFETY: fcntl just returned this new descriptor, owned by nobody else.
    Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(moved) })
}

/// Both ends of a pipe (or socketpair), each [`above_stdio`].
pub(crate) fn pair_above_stdio((a, b): (OwnedFd, OwnedFd)) -> nix::Result<(OwnedFd, OwnedFd)> {
    Ok((above_stdio(a)?, above_stdio(b)?))
}

/// A descriptor of rwt's that every forked child closes, for as long as it
/// lives. Dropping it unregisters and closes it under the lock, so no fork
/// can slip in between.
#[derive(Debug)]
pub(crate) struct RegisteredFd(Option<OwnedFd>);

impl RegisteredFd {
    /// Registers `fd`; the caller holds the lock (and made `fd` under it).
    pub(crate) fn new(shared: &mut Shared, fd: OwnedFd) -> Self {
        shared.register(fd.as_raw_fd());
        RegisteredFd(Some(fd))
    }

    pub(crate) fn fd(&self) -> &OwnedFd {
        self.0
            .as_ref()
            .expect("registered descriptor is present until dropped")
    }

    /// Unregisters and closes it under a lock the caller already holds.
    pub(crate) fn close_locked(mut self, shared: &mut Shared) {
        if let Some(fd) = self.0.take() {
            shared.unregister(fd.as_raw_fd());
        }
    }
}

impl Drop for RegisteredFd {
    fn drop(&mut self) {
        if let Some(fd) = self.0.take() {
            let mut shared = lock();
            shared.unregister(fd.as_raw_fd());
            drop(fd);
        }
    }
}
