//! `kill_all`: cancel every call in flight, for shutdown paths.
//!
//! Calls watch a cancel *epoch*, a pipe that becomes readable when
//! `kill_all` runs. `kill_all` puts a fresh epoch in place for the calls
//! that start afterwards and wakes every call of the old one: each kills
//! its child (and the child's process group), reaps it, and returns
//! `Error::Cancelled`. Orphans of `kill = false` are in no call any more
//! and are left alone; so are idle pool workers.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;

use nix::fcntl::OFlag;

use crate::os::fds::{self, RegisteredFd};
use crate::os::state::ProcessLocal;

/// One generation of calls: readable once they are cancelled.
pub(crate) struct Epoch {
    read: RegisteredFd,
    write: RegisteredFd,
}

impl std::fmt::Debug for Epoch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Epoch")
            .field("read", &self.read)
            .finish_non_exhaustive()
    }
}

impl Epoch {
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.read.fd().as_fd()
    }
}

/// The current epoch, made on first use.
struct State {
    current: Option<Arc<Epoch>>,
}

/// In a child (forked by rwt or by the user), the parent's epoch is not
/// ours: its descriptors are registered, so an rwt child closes them.
static STATE: ProcessLocal<State> = ProcessLocal::new(|| State { current: None }, || {});

fn new_epoch() -> Option<Arc<Epoch>> {
    // Made and registered under the descriptor list's lock, so no fork
    // sees it unregistered.
    let mut fds = fds::fds();
    let (read, write): (OwnedFd, OwnedFd) =
        fds::pair_above_stdio(nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK).ok()?)
            .ok()?;
    Some(Arc::new(Epoch {
        read: RegisteredFd::new(&mut fds, read),
        write: RegisteredFd::new(&mut fds, write),
    }))
}

/// The epoch a call starting now belongs to (`None` only if no pipe could
/// be made: such a call cannot be cancelled, but still runs).
pub(crate) fn current() -> Option<Arc<Epoch>> {
    if let Some(epoch) = STATE.lock().current.clone() {
        return Some(epoch);
    }
    // Made without the state's lock held: registering it takes the
    // descriptor list's, which a fork in progress holds.
    let fresh = new_epoch();
    let mut state = STATE.lock();
    // Another thread may have made one meanwhile: theirs is kept (a
    // `kill_all` in between cancels a call of either).
    if state.current.is_none() {
        state.current = fresh;
    }
    state.current.clone()
}

/// Kills every child rwt started that is still running in a call (orphans
/// of `kill = false` excepted): the calls in flight return
/// `Error::Cancelled`. Calls that start afterwards run normally.
///
/// Meant for shutdown paths, such as a SIGTERM handler's thread before a
/// redeploy. Returns at once; each call reaps its own child.
///
/// ```
/// # use rwt_runtime as rwt;
/// use rwt::{run_with_timeout, Error, Options};
///
/// let call = std::thread::spawn(|| {
///     run_with_timeout(&Options::new().secs(60.0), || {
///         std::thread::sleep(std::time::Duration::from_secs(60));
///     })
/// });
/// // Shutting down: whatever is in flight ends now, not in a minute.
/// while !call.is_finished() {
///     rwt::kill_all();
///     std::thread::sleep(std::time::Duration::from_millis(10));
/// }
/// assert!(matches!(call.join().unwrap(), Err(Error::Cancelled { .. })));
/// ```
pub fn kill_all() {
    // The next call makes a fresh epoch (`current`); this one does not wait
    // to make it (registering it may wait for a fork in progress).
    let old = STATE.lock().current.take();
    if let Some(old) = old {
        tracing::debug!(target: "rwt", "kill_all: cancelling the calls in flight");
        let _ = nix::unistd::write(old.write.fd(), &[1]);
    }
}
