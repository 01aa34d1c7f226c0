//! The background reaper: children rwt no longer waits for (orphans of
//! `kill = false`, children slow to die after SIGKILL) are reaped here when
//! they end, so none lingers as a zombie.
//!
//! One thread, started when the first such child arrives and ended when the
//! last one is reaped. It waits on the children's pidfds and a wake-up pipe;
//! it never calls `waitpid(-1)` and installs no SIGCHLD handler, so it never
//! takes a status that belongs to someone else.

use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout};

use crate::call::process::Child;
use crate::os::fds;
use crate::os::state::ProcessLocal;
use crate::wait::deadline::FALLBACK_STEP;

/// The reaper of this process.
#[derive(Debug)]
struct State {
    running: bool,
    /// Children handed over and not yet picked up by the thread.
    pending: Vec<Child>,
    /// Write end of the wake-up pipe, while the thread runs.
    wake: Option<OwnedFd>,
    /// Read end of the wake-up pipe, owned by the thread.
    wake_read: Option<RawFd>,
}

/// In a child, the parent's reaper and its children are not ours: a fresh
/// state, and the parent's copy is never dropped (nothing of it is closed).
static STATE: ProcessLocal<State> = ProcessLocal::new(
    || State {
        running: false,
        pending: Vec::new(),
        wake: None,
        wake_read: None,
    },
    || {},
);

/// Hands over a child that has not been reaped; it is reaped when it ends.
pub(crate) fn adopt(child: Child) {
    let mut shared = STATE.lock();
    shared.pending.push(child);
    if shared.running {
        if let Some(w) = &shared.wake {
            // A full pipe already means "wake up"; EAGAIN is fine.
            let _ = nix::unistd::write(w, &[1]);
        }
        return;
    }
    // This thread starts it. The pipe is made and registered without the
    // state's lock held: registering takes the descriptor list's lock,
    // which a fork in progress holds. Meanwhile other adopters see it
    // running and leave their children pending; the thread takes them all
    // when it starts.
    shared.running = true;
    drop(shared);
    // Made and registered under the descriptor list's lock, so no fork
    // sees it unregistered.
    let made = {
        let mut fds = fds::fds();
        let pipe = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK);
        pipe.and_then(crate::os::fds::pair_above_stdio)
            .map(|(read, write)| {
                fds.register(read.as_raw_fd());
                fds.register(write.as_raw_fd());
                (read, write)
            })
    };
    let Ok((read, write)) = made else {
        // Out of descriptors: the children stay pending and the next adopt
        // tries again.
        STATE.lock().running = false;
        return;
    };
    // Shared with the thread, so that if it cannot start, `read` is still
    // here to be unregistered before it is closed.
    let read = std::sync::Arc::new(read);
    let theirs = std::sync::Arc::clone(&read);
    {
        let mut shared = STATE.lock();
        shared.wake_read = Some(read.as_raw_fd());
        shared.wake = Some(write);
    }
    let spawned = std::thread::Builder::new()
        .name("rwt-reaper".into())
        .spawn(move || run(theirs));
    if let Err(e) = spawned {
        tracing::debug!(target: "rwt", error = %e, "could not start the reaper thread");
        let (wake, wake_read) = {
            let mut shared = STATE.lock();
            shared.running = false;
            (shared.wake.take(), shared.wake_read.take())
        };
        // Unregistered before they are closed, so no fork sees a number
        // that has been reused.
        let mut fds = fds::fds();
        if let Some(w) = wake {
            fds.unregister(w.as_raw_fd());
        }
        if let Some(r) = wake_read {
            fds.unregister(r);
        }
        drop(read);
    }
}

/// The reaper thread. `wake` may be shared, for a moment, with the
/// `adopt` that started it.
fn run(wake: std::sync::Arc<OwnedFd>) {
    let mut children: Vec<Child> = Vec::new();
    let mut buf = [0u8; 64];
    loop {
        let done = {
            let mut shared = STATE.lock();
            children.append(&mut shared.pending);
            if children.is_empty() {
                shared.running = false;
                shared.wake_read = None;
                Some(shared.wake.take())
            } else {
                None
            }
        };
        if let Some(write) = done {
            // Unregistered, then closed, under the descriptor list's lock.
            let mut fds = fds::fds();
            if let Some(w) = write {
                fds.unregister(w.as_raw_fd());
            }
            fds.unregister(wake.as_raw_fd());
            drop(wake);
            return;
        }
        let mut fds: Vec<PollFd<'_>> = Vec::with_capacity(children.len() + 1);
        fds.push(PollFd::new(wake.as_fd(), PollFlags::POLLIN));
        let mut all_pidfds = true;
        for child in &children {
            match child.exit_fd() {
                Some(fd) => fds.push(PollFd::new(fd, PollFlags::POLLIN)),
                None => all_pidfds = false,
            }
        }
        let timeout = if all_pidfds {
            PollTimeout::NONE
        } else {
            PollTimeout::try_from(FALLBACK_STEP.max(Duration::from_millis(20)))
                .unwrap_or(PollTimeout::MAX)
        };
        match nix::poll::poll(&mut fds, timeout) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
        drop(fds);
        while matches!(nix::unistd::read(&wake, &mut buf), Ok(n) if n > 0) {}
        children.retain_mut(|child| {
            if child.has_exited() {
                let status = child.reap();
                tracing::debug!(target: "rwt", pid = child.pid(), ?status, "orphan reaped");
                false
            } else {
                true
            }
        });
    }
}
