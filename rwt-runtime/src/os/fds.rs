//! rwt's own descriptors, in one list held across `fork()`.
//!
//! Holding the list across `fork` (the pthread_atfork "prepare" idiom)
//! means the child's copy is complete, and lets the child close the pipes
//! of other calls that were in flight in the caller: a call's pipe exists
//! only while registered here, so no child can inherit it unseen. Nothing
//! else is held across `fork` (see `os/state.rs`).
//!
//! Never emit a tracing event or touch stdout/stderr while holding the
//! list: `fork` takes the stdout and stderr locks *before* it.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

/// Fork-mode starts in progress in this process, from when one holds the
/// stdout lock (and has flushed it) until its fork is over.
static FORKING: AtomicUsize = AtomicUsize::new(0);

/// Whether a fork-mode start holds the stdout lock and will soon hold (or
/// holds) the descriptor list's across `fork`. Exec and pool calls then
/// skip their flush of stdout (the fork flushed what was printed before
/// it), and descriptors dropped meanwhile are closed after it.
pub(crate) fn forking() -> bool {
    FORKING.load(Ordering::Acquire) > 0
}

/// Counts one fork-mode start in [`forking`] while it lives.
pub(crate) struct Forking(());

impl Forking {
    /// Call with the stdout lock held, after flushing it.
    pub(crate) fn start() -> Self {
        FORKING.fetch_add(1, Ordering::AcqRel);
        Forking(())
    }

    /// In the child just forked: no fork of this process is in progress.
    pub(crate) fn in_child(self) {
        FORKING.store(0, Ordering::Release);
        std::mem::forget(self);
    }
}

impl Forking {
    /// The fork is over: counts it out, then closes what was dropped during
    /// it (in that order: see `RegisteredFd`'s drop).
    pub(crate) fn end(self, fds: &mut Fds) {
        FORKING.fetch_sub(1, Ordering::AcqRel);
        std::mem::forget(self);
        fds.close_deferred();
    }
}

/// A start that ends early (an error before its fork) does what
/// [`Forking::end`] does, taking the list itself: it no longer holds it.
impl Drop for Forking {
    fn drop(&mut self) {
        FORKING.fetch_sub(1, Ordering::AcqRel);
        if DEFERRED.try_lock().is_ok_and(|later| !later.is_empty()) {
            drop(fds());
        }
    }
}

/// Registered descriptors dropped while a fork held the list: still
/// registered (so a fork child closes them), closed by the next holder of
/// the list. Only ever `try_lock`ed, so a copy locked by a thread that a
/// fork left behind is never waited for.
static DEFERRED: Mutex<Vec<OwnedFd>> = Mutex::new(Vec::new());

/// In a child rwt forked, or made by the user's own `fork()`: the deferred
/// descriptors are the parent's (closed, in an rwt child, with the
/// registered ones). Forget them.
fn forget_deferred() {
    if let Ok(mut later) = DEFERRED.try_lock() {
        std::mem::forget(std::mem::take(&mut *later));
    }
}

/// rwt's own descriptors, closed in every child rwt forks.
pub(crate) struct Fds {
    /// The process the list belongs to: a copy inherited through the
    /// user's own `fork()` is not its own.
    owner: u32,
    list: Vec<RawFd>,
}

static FDS: Mutex<Fds> = Mutex::new(Fds {
    owner: 0,
    list: Vec::new(),
});

/// Locks the descriptor list (held across `fork`: see the module docs).
pub(crate) fn fds() -> MutexGuard<'static, Fds> {
    owned(
        FDS.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    )
}

/// [`fds`], unless someone holds the list now (a fork in progress holds it
/// for as long as the kernel copies the caller).
pub(crate) fn try_fds() -> Option<MutexGuard<'static, Fds>> {
    match FDS.try_lock() {
        Ok(guard) => Some(owned(guard)),
        Err(std::sync::TryLockError::Poisoned(poisoned)) => Some(owned(poisoned.into_inner())),
        Err(std::sync::TryLockError::WouldBlock) => None,
    }
}

/// The list, made this process's own if it was inherited.
fn owned(mut fds: MutexGuard<'static, Fds>) -> MutexGuard<'static, Fds> {
    let me = std::process::id();
    if fds.owner != me {
        // A copy inherited through the user's own fork(): the numbers are
        // the parent's, and may have been reused. Forget them.
        fds.list.clear();
        forget_deferred();
        fds.owner = me;
    }
    fds.close_deferred();
    fds
}

impl Fds {
    pub(crate) fn register(&mut self, fd: RawFd) {
        self.list.push(fd);
    }

    pub(crate) fn unregister(&mut self, fd: RawFd) {
        if let Some(i) = self.list.iter().position(|&f| f == fd) {
            self.list.swap_remove(i);
        }
    }

    /// In a child rwt just forked (lock still held from the parent): the
    /// descriptors to close.
    pub(crate) fn reset_in_child(&mut self) -> Vec<RawFd> {
        self.owner = std::process::id();
        forget_deferred();
        std::mem::take(&mut self.list)
    }

    /// Unregisters and closes what was dropped while a fork held the list.
    pub(crate) fn close_deferred(&mut self) {
        let later = match DEFERRED.try_lock() {
            Ok(mut later) if !later.is_empty() => std::mem::take(&mut *later),
            _ => return,
        };
        for fd in later {
            self.unregister(fd.as_raw_fd());
        }
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
    /// Registers `fd`; the caller holds the list's lock (and made `fd`
    /// under it).
    pub(crate) fn new(fds: &mut Fds, fd: OwnedFd) -> Self {
        fds.register(fd.as_raw_fd());
        RegisteredFd(Some(fd))
    }

    pub(crate) fn fd(&self) -> &OwnedFd {
        self.0
            .as_ref()
            .expect("registered descriptor is present until dropped")
    }

    /// Unregisters and closes it under a lock the caller already holds.
    pub(crate) fn close_locked(mut self, fds: &mut Fds) {
        if let Some(fd) = self.0.take() {
            fds.unregister(fd.as_raw_fd());
        }
    }
}

impl AsFd for RegisteredFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd().as_fd()
    }
}

impl Drop for RegisteredFd {
    fn drop(&mut self) {
        if let Some(fd) = self.0.take() {
            // A fork in progress holds the list for as long as the kernel
            // copies the caller: close it after, not wait.
            if forking() {
                if let Ok(mut later) = DEFERRED.try_lock() {
                    later.push(fd);
                    drop(later);
                    // A fork counts itself out before it closes what was
                    // deferred: if none is counted now, the last one may
                    // have closed the list before this push. Closing it
                    // here then leaves nothing behind.
                    if !forking() {
                        drop(fds());
                    }
                    return;
                }
            }
            let mut fds = fds();
            fds.unregister(fd.as_raw_fd());
            drop(fd);
        }
    }
}

#[cfg(test)]
mod deferred_tests {
    use std::os::fd::AsRawFd;
    use std::sync::mpsc;
    use std::time::Duration;

    /// M4: a registered descriptor dropped while a fork holds the list is
    /// not waited for; the next holder of the list closes it.
    #[test]
    fn a_descriptor_dropped_during_a_fork_is_closed_after_it() {
        let (read, write) = nix::unistd::pipe().unwrap();
        drop(write);
        let registered = super::RegisteredFd::new(&mut super::fds(), read);
        let number = registered.fd().as_raw_fd();
        let forking = super::Forking::start();
        let held = super::fds();
        let (tx, rx) = mpsc::channel();
        let dropper = std::thread::spawn(move || {
            drop(registered);
            let _ = tx.send(());
        });
        let dropped = rx.recv_timeout(Duration::from_secs(20));
        // Still open (and registered) while the fork holds the list.
        let open_meanwhile =
            nix::fcntl::fcntl(unsafe_borrow(number), nix::fcntl::FcntlArg::F_GETFD).is_ok();
        drop(held);
        drop(forking);
        dropper.join().unwrap();
        drop(super::fds());
        assert!(dropped.is_ok(), "the drop waited for the fork");
        assert!(open_meanwhile, "closed before it was unregistered");
        assert!(
            !super::fds().list.contains(&number),
            "still registered after the fork"
        );
    }

    /// Whichever way a fork-mode start ends, nothing dropped during it is
    /// left open: here it ends without forking (an early error).
    #[test]
    fn a_descriptor_dropped_during_a_start_that_fails_is_closed_when_it_ends() {
        let (read, write) = nix::unistd::pipe().unwrap();
        drop(write);
        let registered = super::RegisteredFd::new(&mut super::fds(), read);
        let number = registered.fd().as_raw_fd();
        let forking = super::Forking::start();
        drop(registered);
        drop(forking);
        // Looked at without `fds()`, which would close deferred ones itself.
        let deferred = super::DEFERRED
            .lock()
            .unwrap()
            .iter()
            .any(|fd| fd.as_raw_fd() == number);
        let listed = super::FDS.lock().unwrap().list.contains(&number);
        assert!(
            !deferred && !listed,
            "left registered (and open) after the start ended"
        );
    }

    fn unsafe_borrow(fd: i32) -> std::os::fd::BorrowedFd<'static> {
        // SAFETY: only used for F_GETFD on a number this test owns, which
        // may be closed (then fcntl says EBADF).
        unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) }
    }
}
