//! Everything after the child is started, the same in every mode: write
//! what the child needs (exec mode's arguments), read its result frame
//! while watching its exit through the pidfd, decide at the deadline, kill
//! with the ladder ([`crate::call::kill`]).

use std::io;
use std::time::Duration;

use nix::sys::signal::Signal;
use serde::de::DeserializeOwned;

use crate::call::exchange::{exchange, Stop};
use crate::call::kill::{self, finish, Guarded};
use crate::call::outcome::{Ended, Outcome, Waited};
use crate::call::process::Child;
use crate::options::Checked;
use crate::os::fds::RegisteredFd;
use crate::wait::deadline::Waiter;
use crate::wire::frame::Kind;
use crate::wire::reader::FrameReader;

/// Watches the child `pid` until it returns a result, ends, or runs out of
/// time, writing `outgoing` to the channel as the child takes it; then
/// makes sure it is gone (or orphaned) and reaped.
pub(crate) async fn watch<R: DeserializeOwned, W: Waiter>(
    waiter: &mut W,
    function: &str,
    opts: &Checked,
    mut child: Guarded,
    channel: RegisteredFd,
    outgoing: (Vec<u8>, &[u8]),
    stop: Stop<'_>,
) -> Ended<R> {
    tracing::debug!(target: "rwt", function, pid = child.child().pid(), "child started");
    let (waited, reader) = exchange(
        waiter,
        child.child(),
        channel.fd(),
        outgoing,
        opts.result_limit,
        stop,
        false,
    )
    .await;
    drop(channel);
    let mut finished = None;
    let mut ended = conclude(waiter, function, opts, child, waited, reader, |child, _| {
        finished = Some(child);
    })
    .await;
    if let Some(child) = finished {
        ended.usage = finish(waiter, child, opts.kill).await;
    }
    ended
}

/// What the end of an exchange means for the caller. A child that answered
/// goes to `answered` (fork and exec finish it; the pool may keep it); any
/// other is reaped, killed or left as an orphan here.
///
/// `answered` must not wait: the async caller deals with the child after.
pub(crate) async fn conclude<R: DeserializeOwned, W: Waiter>(
    waiter: &mut W,
    function: &str,
    opts: &Checked,
    mut child: Guarded,
    waited: Waited,
    reader: FrameReader,
    answered: impl FnOnce(Child, Kind),
) -> Ended<R> {
    let mut usage = None;
    let outcome = match waited {
        Waited::Frame => {
            let pid = child.child().pid();
            let Some(frame) = reader.into_frame() else {
                unreachable!("a complete frame was read")
            };
            answered(child.into_inner(), frame.kind);
            tracing::debug!(target: "rwt", function, pid, bytes = frame.body.len(), "result received");
            Outcome::from_frame(frame.kind, frame.body, frame.headless, opts)
        }
        Waited::Died => {
            let mut child = child.into_inner();
            if opts.kill {
                // The child is gone but not reaped: its group id is still
                // ours, and whatever it started in the group goes too.
                child.signal_group(Signal::SIGKILL);
            }
            let status = child.reap();
            usage = child.usage();
            tracing::debug!(target: "rwt", function, pid = child.pid(), ?status, "child ended without a result");
            Outcome::from_status(status)
        }
        Waited::Timeout => {
            let pid = child.child().pid();
            // Before the kill, and only now: what it was doing. Not reaped,
            // so the number is still its own.
            let stuck = child.child().snapshot();
            if opts.kill {
                tracing::debug!(target: "rwt", function, pid, stuck = stuck.as_ref().map(tracing::field::display), "timed out, killing");
                usage = kill::ladder(waiter, child, opts.grace)
                    .await
                    .and_then(|(_, u)| u);
                Outcome::Timeout {
                    orphan: None,
                    stuck,
                }
            } else {
                tracing::debug!(target: "rwt", function, pid, stuck = stuck.as_ref().map(tracing::field::display), "timed out, left running as an orphan");
                crate::call::reaper::adopt(child.into_inner());
                Outcome::Timeout {
                    orphan: Some(pid),
                    stuck,
                }
            }
        }
        Waited::Cancelled => {
            tracing::debug!(target: "rwt", function, pid = child.child().pid(), "cancelled, killing");
            usage = kill::ladder(waiter, child, Duration::ZERO)
                .await
                .and_then(|(_, u)| u);
            Outcome::Cancelled
        }
        Waited::BadFrame(detail) => {
            usage = kill::ladder(waiter, child, Duration::ZERO)
                .await
                .and_then(|(_, u)| u);
            Outcome::Codec(detail)
        }
        Waited::Io(e) => {
            let _ = kill::ladder(waiter, child, Duration::ZERO).await;
            Outcome::Spawn(e)
        }
    };
    Ended { outcome, usage }
}

/// An attempt whose child could not be started.
pub(crate) fn spawn_failed<R>(function: &str, e: io::Error) -> Ended<R> {
    tracing::debug!(target: "rwt", function, error = %e, "spawn failed");
    Outcome::Spawn(e).into()
}
