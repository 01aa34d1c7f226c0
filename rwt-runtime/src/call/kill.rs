//! The end of a child in a call: the kill ladder, a reap with a bound,
//! and the guard that kills and reaps a child whose call was abandoned.

use std::time::Duration;

use nix::sys::signal::Signal;

use crate::call::process::{Child, Status};
use crate::call::reaper;
use crate::os::usage::Usage;
use crate::wait::deadline::{self, Blocking, Deadline, Waiter};

/// How long a call waits for a killed child to be reaped before handing it
/// to the background reaper and returning anyway (a child with a large
/// memory takes the kernel about 0.1 s per GiB to free; one stuck in
/// uninterruptible I/O may take much longer).
pub(crate) const REAP_BOUND: Duration = Duration::from_secs(1);

/// How long dropping an unfinished call waits for its killed child to go
/// before leaving the reap to the background reaper: long enough for an
/// ordinary process (well under 1 ms), short enough not to stall an
/// executor thread.
pub(crate) const DROP_REAP_BOUND: Duration = Duration::from_millis(10);

/// A child in a call, killed (with its group) and reaped if the call is
/// abandoned before it dealt with it: an async call whose future is
/// dropped, or a panic in rwt's own code. A child that takes longer than
/// [`DROP_REAP_BOUND`] to die goes to the background reaper. Never a
/// zombie, never left running.
#[derive(Debug)]
pub(crate) struct Guarded(Option<Child>);

impl Guarded {
    pub(crate) fn new(child: Child) -> Self {
        Guarded(Some(child))
    }

    pub(crate) fn child(&mut self) -> &mut Child {
        self.0.as_mut().expect("present until taken")
    }

    /// The child, no longer guarded: the caller deals with it now.
    pub(crate) fn into_inner(mut self) -> Child {
        self.0.take().expect("present until taken")
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            tracing::debug!(target: "rwt", pid = child.pid(), "call abandoned, killing");
            child.signal_group(Signal::SIGKILL);
            child.signal(Signal::SIGKILL);
            let gone = deadline::block_now(
                child.wait_exit(&mut Blocking, Deadline::after(DROP_REAP_BOUND)),
            );
            if gone {
                let _ = child.reap();
            } else {
                reaper::adopt(child);
            }
        }
    }
}

/// After a complete frame: make sure the child (and, with kill = true, its
/// group) is gone, and reap it. Returns what it used, if it was reaped.
pub(crate) async fn finish<W: Waiter>(waiter: &mut W, child: Child, kill: bool) -> Option<Usage> {
    if kill {
        // The frame is the child's last act: everything left in its group
        // (the child on its way out, anything it started) goes now.
        child.signal_group(Signal::SIGKILL);
        child.signal(Signal::SIGKILL);
    }
    reap_bounded(waiter, Guarded::new(child))
        .await
        .and_then(|(_, usage)| usage)
}

/// The kill ladder: SIGTERM (and SIGCONT, so a stopped child can act on it)
/// to the group, up to `grace` for the child to go, then SIGKILL to the
/// group, then a bounded reap.
pub(crate) async fn ladder<W: Waiter>(
    waiter: &mut W,
    mut child: Guarded,
    grace: Duration,
) -> Option<(Status, Option<Usage>)> {
    if !grace.is_zero() {
        for sig in [Signal::SIGTERM, Signal::SIGCONT] {
            child.child().signal_group(sig);
            child.child().signal(sig);
        }
        child
            .child()
            .wait_exit(waiter, Deadline::after(grace))
            .await;
    }
    child.child().signal_group(Signal::SIGKILL);
    child.child().signal(Signal::SIGKILL);
    reap_bounded(waiter, child).await
}

/// [`ladder`] for sync callers.
pub(crate) fn kill_now(child: Child, grace: Duration) -> Option<(Status, Option<Usage>)> {
    deadline::block_now(ladder(&mut Blocking, Guarded::new(child), grace))
}

/// Reaps the child if it ends within [`REAP_BOUND`] and returns how it
/// ended and what it used; otherwise the background reaper takes it and
/// the call goes on.
pub(crate) async fn reap_bounded<W: Waiter>(
    waiter: &mut W,
    mut child: Guarded,
) -> Option<(Status, Option<Usage>)> {
    let ended = child
        .child()
        .wait_exit(waiter, Deadline::after(REAP_BOUND))
        .await;
    let mut child = child.into_inner();
    if ended {
        let status = child.reap();
        Some((status, child.usage()))
    } else {
        tracing::debug!(target: "rwt", pid = child.pid(), "child slow to die, handed to the reaper");
        reaper::adopt(child);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// A child that does not end when told to (here: is never told) does
    /// not hold the caller past the reap bound; the reaper takes it and
    /// reaps it when it finally ends.
    #[test]
    fn a_reap_that_does_not_complete_does_not_hold_the_call() {
        let sleeper = std::process::Command::new("sleep")
            .arg("1.5")
            .spawn()
            .unwrap();
        let pid = sleeper.id();
        let child = Child::adopt(nix::unistd::Pid::from_raw(pid as i32));
        let start = Instant::now();
        let reaped = deadline::block_now(reap_bounded(&mut Blocking, Guarded::new(child)));
        assert_eq!(reaped, None);
        let elapsed = start.elapsed();
        assert!(elapsed >= REAP_BOUND, "{elapsed:?}");
        assert!(
            elapsed < REAP_BOUND + Duration::from_millis(100),
            "{elapsed:?}"
        );
        // The reaper collects it once it ends: gone from the process table.
        let gone = Instant::now() + Duration::from_secs(3);
        while std::path::Path::new(&format!("/proc/{pid}")).exists() {
            assert!(Instant::now() < gone, "{pid} was never reaped");
            std::thread::sleep(Duration::from_millis(10));
        }
        drop(sleeper);
    }
}
