//! The fork of a fork-mode attempt: the locks held across it, the child's
//! first steps, the parent's.

use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd};

use nix::fcntl::{FcntlArg, OFlag};
use nix::unistd::ForkResult;
use serde::Serialize;

use super::Body;
use crate::call::process::Child;
use crate::child::body;
use crate::os::fds::{self, RegisteredFd};

/// Forks the child. Returns it and the read end of its result pipe.
pub(super) fn spawn<R, F>(
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
    // descriptor-list page for it after the fork.
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
            let child = Child::adopt_holding_in(pid, write.as_fd(), write.as_raw_fd(), &mut fds);
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

/// The locks a fork-mode start holds across `fork`, taken in the lock
/// order: stdout, stderr, then (by the caller) rwt's descriptor list. (No
/// state of rwt's subsystems is held: a child never uses its parent's
/// copies, [`crate::os::state`].) A caller that holds the stdout lock while calling us
/// must not deadlock with another caller. Holding the stdio locks across
/// fork means the child never inherits them locked by a thread that does
/// not exist there; flushing first means the child never prints the
/// caller's buffered output again.
struct ForkLocks {
    out: io::StdoutLock<'static>,
    forking: fds::Forking,
    err: io::StderrLock<'static>,
}

impl ForkLocks {
    fn take() -> Self {
        let mut out = io::stdout().lock();
        let _ = out.flush();
        let forking = fds::Forking::start();
        let err = io::stderr().lock();
        ForkLocks { out, forking, err }
    }

    /// In the parent, the fork over (or failed): counts it out, then
    /// releases the descriptor list and the rest, innermost first.
    fn release(self, mut fds: std::sync::MutexGuard<'static, fds::Fds>) {
        let ForkLocks { out, forking, err } = self;
        forking.end(&mut fds);
        drop(fds);
        drop(err);
        drop(out);
    }

    /// In the child (its copy of the descriptor list already released):
    /// the only thread there releases the copies it holds.
    fn release_in_child(self) {
        let ForkLocks { out, forking, err } = self;
        forking.in_child();
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
