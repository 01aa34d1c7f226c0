//! Everything after the child is started, the same in every mode: write
//! what the child needs (exec mode's arguments), read its result frame
//! while watching its exit through the pidfd, decide at the deadline, kill
//! with the ladder, reap within a bound.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::Signal;
use nix::sys::socket::MsgFlags;
use serde::de::DeserializeOwned;

use crate::call::process::{Child, Status, FALLBACK_STEP};
use crate::call::reaper;
use crate::limits::Limit;
use crate::options::Checked;
use crate::os::cancel::Epoch;
use crate::os::fds::RegisteredFd;
use crate::os::stuck::Stuck;
use crate::os::usage::Usage;
use crate::wait::deadline::{self, Blocking, Deadline, Waiter};
use crate::wire::codec;
use crate::wire::frame::{FrameReader, Kind};

/// How long a call waits for a killed child to be reaped before handing it
/// to the background reaper and returning anyway (a child with a large
/// memory takes the kernel about 0.1 s per GiB to free; one stuck in
/// uninterruptible I/O may take much longer).
pub(crate) const REAP_BOUND: Duration = Duration::from_secs(1);

/// What one attempt came to.
#[derive(Debug)]
pub(crate) enum Outcome<R> {
    /// The function's value.
    Value(R),
    /// The function's value, which counts as a failed attempt (an `Err`).
    Failed(R),
    /// The deadline passed; `orphan` is the pid left running (kill = false),
    /// `stuck` what it was doing then.
    Timeout {
        orphan: Option<u32>,
        stuck: Option<Stuck>,
    },
    /// The function panicked.
    Panicked(String),
    /// The child ended without a result.
    Crashed {
        signal: Option<i32>,
        exit_code: Option<i32>,
    },
    /// The result could not cross the process boundary.
    Codec(String),
    /// No child could be started (or watched).
    Spawn(io::Error),
    /// `kill_all` ran: the child was killed.
    Cancelled,
    /// The attempt went over a limit beyond time.
    Limit(Limit),
}

/// An attempt's outcome, with what its child used if it was reaped.
#[derive(Debug)]
pub(crate) struct Ended<R> {
    pub outcome: Outcome<R>,
    pub usage: Option<Usage>,
}

impl<R> From<Outcome<R>> for Ended<R> {
    /// An outcome without a reaped child.
    fn from(outcome: Outcome<R>) -> Self {
        Ended {
            outcome,
            usage: None,
        }
    }
}

/// How waiting for the child ended.
pub(crate) enum Waited {
    Cancelled,
    Frame,
    Died,
    Timeout,
    BadFrame(String),
    Io(io::Error),
}

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

/// When an attempt stops waiting for its child: at its deadline, or when
/// `kill_all` fires the call's epoch.
#[derive(Clone, Copy)]
pub(crate) struct Stop<'a> {
    pub deadline: Deadline,
    pub cancel: Option<&'a Epoch>,
}

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

/// Sends `outgoing` and waits for the answer, the child's end or the
/// deadline.
pub(crate) async fn exchange<W: Waiter>(
    waiter: &mut W,
    child: &mut Child,
    channel: &OwnedFd,
    (head, body): (Vec<u8>, &[u8]),
    limit: u64,
    stop: Stop<'_>,
    spin: bool,
) -> (Waited, FrameReader) {
    let mut reader = FrameReader::new(limit);
    let mut outgoing = Outgoing {
        head,
        body,
        sent: 0,
    };
    let waited = wait(
        waiter,
        child,
        channel,
        &mut outgoing,
        &mut reader,
        stop.deadline,
        spin,
        stop.cancel,
    )
    .await;
    (waited, reader)
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
            match frame.kind {
                Kind::Value => decoded(&frame.body, Outcome::Value),
                Kind::Failed => decoded(&frame.body, Outcome::Failed),
                Kind::Panic => Outcome::Panicked(String::from_utf8_lossy(&frame.body).into_owned()),
                Kind::EncodeError => {
                    Outcome::Codec(String::from_utf8_lossy(&frame.body).into_owned())
                }
                // Only from a child that had the limit armed.
                Kind::MemoryLimit => match opts.limits.memory {
                    Some(bytes) => Outcome::Limit(Limit::Memory { bytes }),
                    None => Outcome::Codec("malformed result frame (kind byte 0x4d)".into()),
                },
                Kind::CpuLimit => match opts.cpu_f64 {
                    Some(secs) => Outcome::Limit(Limit::Cpu { secs }),
                    None => Outcome::Codec("malformed result frame (kind byte 0x43)".into()),
                },
                // Only a pool worker says it is leaving, and the pool deals
                // with that before here.
                Kind::Leaving => Outcome::Codec("malformed result frame (kind byte 0x4c)".into()),
            }
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
            match status {
                Status::Exited(code) => Outcome::Crashed {
                    signal: None,
                    exit_code: Some(code),
                },
                Status::Signaled(sig) => Outcome::Crashed {
                    signal: Some(sig),
                    exit_code: None,
                },
                Status::Lost => Outcome::Crashed {
                    signal: None,
                    exit_code: None,
                },
            }
        }
        Waited::Timeout => {
            let pid = child.child().pid();
            // Before the kill, and only now: what it was doing. Not reaped,
            // so the number is still its own.
            let stuck = child
                .child()
                .is_ours()
                .then(|| crate::os::stuck::snapshot(pid))
                .flatten();
            if opts.kill {
                tracing::debug!(target: "rwt", function, pid, stuck = stuck.as_ref().map(tracing::field::display), "timed out, killing");
                usage = kill(waiter, child, opts.grace).await.and_then(|(_, u)| u);
                Outcome::Timeout {
                    orphan: None,
                    stuck,
                }
            } else {
                tracing::debug!(target: "rwt", function, pid, stuck = stuck.as_ref().map(tracing::field::display), "timed out, left running as an orphan");
                reaper::adopt(child.into_inner());
                Outcome::Timeout {
                    orphan: Some(pid),
                    stuck,
                }
            }
        }
        Waited::Cancelled => {
            tracing::debug!(target: "rwt", function, pid = child.child().pid(), "cancelled, killing");
            usage = kill(waiter, child, Duration::ZERO)
                .await
                .and_then(|(_, u)| u);
            Outcome::Cancelled
        }
        Waited::BadFrame(detail) => {
            usage = kill(waiter, child, Duration::ZERO)
                .await
                .and_then(|(_, u)| u);
            Outcome::Codec(detail)
        }
        Waited::Io(e) => {
            let _ = kill(waiter, child, Duration::ZERO).await;
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

fn decoded<R: DeserializeOwned>(body: &[u8], wrap: fn(R) -> Outcome<R>) -> Outcome<R> {
    match codec::decode(body) {
        Ok(value) => wrap(value),
        Err(detail) => Outcome::Codec(detail),
    }
}

/// How long a pool call looks for its answer before sleeping on `ppoll`.
const SPIN: Duration = Duration::from_micros(50);

/// Is there something to read on `fd` right now?
fn readable_now(fd: &OwnedFd) -> bool {
    let mut fds = [nix::poll::PollFd::new(
        fd.as_fd(),
        nix::poll::PollFlags::POLLIN,
    )];
    matches!(nix::poll::poll(&mut fds, nix::poll::PollTimeout::ZERO), Ok(n) if n > 0)
}

/// Bytes for the child, written as it takes them: a small head (a
/// handshake, a request header) then the encoded arguments, sent together
/// without copying them into one buffer.
struct Outgoing<'a> {
    head: Vec<u8>,
    body: &'a [u8],
    sent: usize,
}

impl Outgoing<'_> {
    fn len(&self) -> usize {
        self.head.len() + self.body.len()
    }

    fn pending(&self) -> bool {
        self.sent < self.len()
    }

    /// Nothing more will be taken.
    fn drop_rest(&mut self) {
        self.sent = self.len();
    }

    /// Writes what the channel takes without blocking. A child that went
    /// away (EPIPE, ECONNRESET) takes nothing more: its exit tells the rest.
    fn push(&mut self, channel: &OwnedFd) -> Result<(), Waited> {
        while self.pending() {
            let (head, body) = if self.sent < self.head.len() {
                (&self.head[self.sent..], self.body)
            } else {
                (&[][..], &self.body[self.sent - self.head.len()..])
            };
            let parts = [std::io::IoSlice::new(head), std::io::IoSlice::new(body)];
            let flags = MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL;
            match nix::sys::socket::sendmsg::<()>(channel.as_raw_fd(), &parts, &[], flags, None) {
                Ok(n) => self.sent += n,
                Err(Errno::EINTR) => {}
                Err(Errno::EAGAIN) => return Ok(()),
                Err(Errno::EPIPE | Errno::ECONNRESET) => self.drop_rest(),
                Err(e) => return Err(Waited::Io(e.into())),
            }
        }
        Ok(())
    }
}

/// Waits for a complete frame, the child's end, or the deadline, reading
/// the channel all along (a large result never fills it and blocks the
/// child) and writing what the child still needs.
#[allow(clippy::too_many_arguments)]
async fn wait<W: Waiter>(
    waiter: &mut W,
    child: &mut Child,
    pipe: &OwnedFd,
    outgoing: &mut Outgoing<'_>,
    reader: &mut FrameReader,
    deadline: Deadline,
    mut spin: bool,
    cancel: Option<&crate::os::cancel::Epoch>,
) -> Waited {
    let mut pipe_open = true;
    // What the last wait said is worth a look. At first only the write: the
    // child is alive and has not answered yet (a wait tells otherwise).
    let (mut look_pipe, mut look_child, mut look_write) = (false, false, true);
    loop {
        if look_write && outgoing.pending() {
            if let Err(e) = outgoing.push(pipe) {
                return e;
            }
        }
        if pipe_open && look_pipe {
            match drain(pipe, reader) {
                Ok(open) => pipe_open = open,
                Err(e) => return e,
            }
        }
        if reader.is_complete() {
            return Waited::Frame;
        }
        // One last look at the channel before deciding the child is gone
        // (everything it wrote is there already) or late (a frame completed
        // in the last instant is a result, not a timeout).
        let last_look = |reader: &mut FrameReader, otherwise: Waited| {
            if pipe_open {
                if let Err(e) = drain(pipe, reader) {
                    return e;
                }
            }
            if reader.is_complete() {
                Waited::Frame
            } else {
                otherwise
            }
        };
        if look_child && child.has_exited() {
            return last_look(reader, Waited::Died);
        }
        if deadline.passed() {
            return last_look(reader, Waited::Timeout);
        }
        if spin && !outgoing.pending() {
            // A warm worker often answers within microseconds: look a few
            // times before going to sleep (a wake-up costs more).
            spin = false;
            let until = std::time::Instant::now() + SPIN;
            while std::time::Instant::now() < until {
                if readable_now(pipe) {
                    break;
                }
                std::hint::spin_loop();
            }
            look_pipe = true;
            continue;
        }
        let exit_fd = child.exit_fd();
        // Without a pidfd nothing wakes us when the child ends: look again
        // in short steps.
        let polling = exit_fd.is_none();
        let until = if polling {
            Deadline::after(deadline.remaining().min(FALLBACK_STEP))
        } else {
            deadline
        };
        if !pipe_open {
            // The child's side is closed: it reads nothing more either.
            outgoing.drop_rest();
        }
        let pipe_fd = pipe_open.then(|| (pipe.as_fd(), outgoing.pending()));
        match waiter
            .ready(
                pipe_fd,
                exit_fd,
                cancel.map(crate::os::cancel::Epoch::fd),
                until,
            )
            .await
        {
            Ok(ready) if ready.cancelled => return Waited::Cancelled,
            Ok(ready) => {
                look_pipe = ready.readable;
                look_write = ready.writable;
                look_child = ready.exited || polling;
            }
            Err(e) => return Waited::Io(e.into()),
        }
    }
}

/// Reads everything available: the header through a small buffer, the
/// body straight into its place. `Ok(false)` once the channel reports end
/// of file (the write end is closed everywhere).
fn drain(pipe: &OwnedFd, reader: &mut FrameReader) -> Result<bool, Waited> {
    // Room for the header and a small body: most frames arrive in one read
    // (larger bodies are read straight into place).
    let mut small = [0u8; 256];
    while !reader.is_complete() {
        let got = match reader.read_body(pipe) {
            Ok(Some(read)) => read.map(|n| (n, true)),
            Ok(None) => nix::unistd::read(pipe, &mut small).map(|n| (n, false)),
            Err(e) => return Err(Waited::BadFrame(e.to_string())),
        };
        match got {
            Ok((0, _)) => return Ok(false),
            Ok((_, true)) => {}
            Ok((n, false)) => reader
                .feed(&small[..n])
                .map_err(|e| Waited::BadFrame(e.to_string()))?,
            Err(Errno::EINTR) => {}
            Err(Errno::EAGAIN) => return Ok(true),
            // A socket whose peer died with our request unread: closed, as
            // at end of file; the child's exit tells the rest.
            Err(Errno::ECONNRESET) => return Ok(false),
            Err(e) => return Err(Waited::Io(e.into())),
        }
    }
    Ok(true)
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
pub(crate) async fn kill<W: Waiter>(
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

/// [`kill`] for sync callers.
pub(crate) fn kill_now(child: Child, grace: Duration) -> Option<(Status, Option<Usage>)> {
    deadline::block_now(kill(&mut Blocking, Guarded::new(child), grace))
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
