//! The background reaper: children rwt no longer waits for (orphans of
//! `kill = false`, children slow to die after SIGKILL) are reaped here when
//! they end, so none lingers as a zombie.
//!
//! One thread, started when the first such child arrives and ended when the
//! last one is reaped. It waits on the children's pidfds and a wake-up pipe;
//! it never calls `waitpid(-1)` and installs no SIGCHLD handler, so it never
//! takes a status that belongs to someone else.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
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
    /// Write end of the wake-up pipe, while the thread runs (its read end
    /// is the thread's own).
    wake: Option<OwnedFd>,
}

/// In a child, the parent's reaper and its children are not ours: a fresh
/// state, and the parent's copy is never dropped (nothing of it is closed).
static STATE: ProcessLocal<State> = ProcessLocal::new(
    || State {
        running: false,
        pending: Vec::new(),
        wake: None,
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
    // This thread starts it. The thread makes its own wake-up pipe:
    // registering it takes the descriptor list's lock, which a fork in
    // progress holds while the kernel copies the caller, and a call handing
    // a child over must not wait for that. Meanwhile other adopters see it
    // running and leave their children pending; the thread takes them all
    // once it has its pipe.
    shared.running = true;
    drop(shared);
    let spawned = std::thread::Builder::new()
        .name("rwt-reaper".into())
        .spawn(start);
    if let Err(e) = spawned {
        tracing::debug!(target: "rwt", error = %e, "could not start the reaper thread");
        // The children stay pending and the next adopt tries again.
        STATE.lock().running = false;
    }
}

/// The reaper thread's start: its wake-up pipe, then [`run`].
fn start() {
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
    STATE.lock().wake = Some(write);
    run(read);
}

/// The reaper thread, with the read end of its wake-up pipe.
fn run(wake: OwnedFd) {
    let mut children: Vec<Child> = Vec::new();
    let mut buf = [0u8; 64];
    loop {
        let done = {
            let mut shared = STATE.lock();
            children.append(&mut shared.pending);
            if children.is_empty() {
                shared.running = false;
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// Handing a child to the reaper never waits for rwt's descriptor list
    /// (a fork of a large caller holds it for milliseconds), even when the
    /// reaper thread must be started: the thread makes its pipe itself.
    /// And the child is reaped once the list is free.
    #[test]
    #[allow(clippy::zombie_processes)] // the reaper reaps it: that is the test
    fn a_hand_over_does_not_wait_for_the_descriptor_list() {
        let sleeper = std::process::Command::new("sleep")
            .arg("0.1")
            .spawn()
            .unwrap();
        let pid = sleeper.id();
        let child = Child::adopt(nix::unistd::Pid::from_raw(pid as i32));
        // Let a reaper started by another test end, so that this hand-over
        // is likely the one that starts it (if not, it cannot wait either).
        let quiet = std::time::Instant::now() + Duration::from_secs(5);
        while STATE.lock().running && std::time::Instant::now() < quiet {
            std::thread::sleep(Duration::from_millis(5));
        }
        let held = std::sync::Barrier::new(2);
        let released = AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                let list = fds::fds();
                held.wait();
                std::thread::sleep(Duration::from_millis(300));
                // Said before the list is let go: a hand-over that waited
                // for the list sees it.
                released.store(true, Ordering::SeqCst);
                drop(list);
            });
            held.wait();
            adopt(child);
            assert!(
                !released.load(Ordering::SeqCst),
                "the hand-over waited for the descriptor list"
            );
        });
        let gone = std::time::Instant::now() + Duration::from_secs(5);
        while std::path::Path::new(&format!("/proc/{pid}")).exists() {
            assert!(std::time::Instant::now() < gone, "{pid} was never reaped");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
