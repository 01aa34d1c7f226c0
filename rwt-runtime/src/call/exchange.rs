//! One exchange with a child on its channel: write what it needs as it
//! takes it, read its result frame as it arrives, and sleep in between
//! until the channel, the child's exit, the deadline or `kill_all` says
//! there is something to do.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::socket::MsgFlags;

use crate::call::outcome::Waited;
use crate::call::process::Child;
use crate::os::cancel::Epoch;
use crate::wait::deadline::{Deadline, Waiter};
use crate::wire::reader::FrameReader;

/// When an attempt stops waiting for its child: at its deadline, or when
/// `kill_all` fires the call's epoch.
#[derive(Clone, Copy)]
pub(crate) struct Stop<'a> {
    pub deadline: Deadline,
    pub cancel: Option<&'a Epoch>,
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
    // Only a timeout reads what was opened for it.
    if !matches!(waited, Waited::Timeout) {
        child.forget_snapshot();
    }
    (waited, reader)
}

/// How long a pool call looks for its answer before sleeping on `ppoll`.
const SPIN: Duration = Duration::from_micros(50);

/// How long before its deadline a call still waiting wakes once to open
/// what it reads of its child if the deadline passes
/// ([`Child::prepare_snapshot`]): that took about 0.1 ms off every
/// timeout (the time from the deadline to the kill), at the cost of one
/// wake-up for the calls that run this close to their deadline.
pub(crate) const PREPARE: Duration = Duration::from_millis(2);

/// How soon [`PREPARE`]'s step tries again when it could not be done.
const PREPARE_RETRY: Duration = Duration::from_micros(200);

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
    // When to get ready for the deadline, until done.
    let mut prepare_at = deadline.ahead_by(PREPARE);
    // What the last wait said is worth a look. At first only the write: the
    // child is alive and has not answered yet (a wait tells otherwise).
    let mut look = Looks {
        pipe: false,
        child: false,
        write: true,
    };
    loop {
        if look.write && outgoing.pending() {
            if let Err(e) = outgoing.push(pipe) {
                return e;
            }
        }
        if pipe_open && look.pipe {
            match drain(pipe, reader) {
                Ok(open) => pipe_open = open,
                Err(e) => return e,
            }
        }
        if reader.is_complete() {
            return Waited::Frame;
        }
        if look.child && child.has_exited() {
            return last_look(pipe, pipe_open, reader, Waited::Died);
        }
        if deadline.passed() {
            return last_look(pipe, pipe_open, reader, Waited::Timeout);
        }
        if spin && !outgoing.pending() {
            spin = false;
            spin_for_answer(pipe);
            look.pipe = true;
            continue;
        }
        if !pipe_open {
            // The child's side is closed: it reads nothing more either.
            outgoing.drop_rest();
        }
        if prepare_at.is_some_and(Deadline::passed) {
            // With rwt's descriptor list busy, again a little later, while
            // there is time.
            prepare_at = (!child.prepare_snapshot())
                .then(|| deadline.ahead_by(2 * PREPARE_RETRY))
                .flatten()
                .map(|_| Deadline::after(PREPARE_RETRY));
        }
        let pipe = pipe_open.then(|| (pipe.as_fd(), outgoing.pending()));
        look = match sleep(waiter, child, pipe, prepare_at.unwrap_or(deadline), cancel).await {
            Ok(look) => look,
            Err(waited) => return waited,
        };
    }
}

/// What a wait says is worth a look.
struct Looks {
    pipe: bool,
    child: bool,
    write: bool,
}

/// Sleeps until the channel (`pipe`, and whether to write) or the child's
/// exit is ready, the call is cancelled, or the deadline passes.
async fn sleep<W: Waiter>(
    waiter: &mut W,
    child: &Child,
    pipe: Option<(std::os::fd::BorrowedFd<'_>, bool)>,
    deadline: Deadline,
    cancel: Option<&crate::os::cancel::Epoch>,
) -> Result<Looks, Waited> {
    let exit_fd = child.exit_fd();
    // Without a pidfd nothing wakes us when the child ends: it is looked
    // at after each step.
    let polling = exit_fd.is_none();
    let until = deadline.or_step(exit_fd);
    let cancel = cancel.map(crate::os::cancel::Epoch::fd);
    match waiter.ready(pipe, exit_fd, cancel, until).await {
        Ok(ready) if ready.cancelled => Err(Waited::Cancelled),
        Ok(ready) => Ok(Looks {
            pipe: ready.readable,
            write: ready.writable,
            child: ready.exited || polling,
        }),
        Err(e) => Err(Waited::Io(e.into())),
    }
}

/// One last look at the channel before deciding the child is gone
/// (everything it wrote is there already) or late (a frame completed in
/// the last instant is a result, not a timeout).
fn last_look(
    pipe: &OwnedFd,
    pipe_open: bool,
    reader: &mut FrameReader,
    otherwise: Waited,
) -> Waited {
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
}

/// A warm worker often answers within microseconds: look a few times
/// before going to sleep (a wake-up costs more).
fn spin_for_answer(pipe: &OwnedFd) {
    let until = std::time::Instant::now() + SPIN;
    while std::time::Instant::now() < until {
        if readable_now(pipe) {
            break;
        }
        std::hint::spin_loop();
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};

    use super::*;
    use crate::call::kill::Guarded;
    use crate::wait::deadline::{block_now, Blocking};

    /// One call of `deadline` to a child asleep that never answers: how
    /// many times the wait tried to open the snapshot's files, whether it
    /// did, and the snapshot taken at the deadline (then, the files are
    /// closed).
    fn a_timeout(deadline: Duration) -> (u32, bool, Option<crate::os::stuck::Stuck>) {
        // Reaped through `child` below, not through `sleeper`.
        #[allow(clippy::zombie_processes)]
        let sleeper = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = nix::unistd::Pid::from_raw(i32::try_from(sleeper.id()).unwrap());
        // Killed and reaped when dropped, whatever happens below.
        let mut child = Guarded::new(Child::adopt(pid));
        // In its sleep before the call starts (starting `sleep` takes a
        // moment, longer on a loaded machine), so that what the snapshot
        // sees at the deadline is known.
        for _ in 0..1000 {
            if crate::os::stuck::snapshot(sleeper.id(), None).is_some_and(|s| s.syscall.is_some()) {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let (ours, _silent) = socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        )
        .unwrap();
        let stop = Stop {
            deadline: Deadline::after(deadline),
            cancel: None,
        };
        let (waited, _) = block_now(exchange(
            &mut Blocking,
            child.child(),
            &ours,
            (Vec::new(), &[]),
            1024,
            stop,
            false,
        ));
        assert!(matches!(waited, Waited::Timeout), "{deadline:?}");
        let (done, tries) = child.child().prepared();
        let stuck = done.then(|| child.child().snapshot()).flatten();
        // Read once: the files are closed after.
        assert!(!child.child().prepared().0, "{deadline:?}");
        (tries, done, stuck)
    }

    /// A call still waiting [`PREPARE`] before its deadline opens its
    /// child's `/proc` files then, so that what it reads after the
    /// deadline, before the kill, is a few `pread`s; a call whose deadline
    /// is nearer than that from the start does not wake for it.
    #[test]
    fn a_call_still_waiting_near_its_deadline_prepares_the_snapshot() {
        assert_eq!(a_timeout(Duration::from_millis(1)).0, 0);
        // A wake-up more than PREPARE late (a loaded machine) finds the
        // deadline passed and rightly skips the step: a few calls, then.
        let tried = (0..5)
            .map(|_| a_timeout(Duration::from_millis(30)))
            .find(|&(tries, _, _)| tries > 0);
        let Some((tries, done, stuck)) = tried else {
            panic!("five calls, and none tried to prepare its snapshot");
        };
        // Done, unless other tests of this binary held rwt's descriptor list
        // all along (it is not waited for).
        assert!(done || tries > 1, "given up after {tries}");
        if done {
            let stuck = stuck.expect("a snapshot through the prepared files");
            assert_eq!(stuck.state, crate::os::stuck::State::Sleeping, "{stuck:?}");
        }
    }
}
