//! One attempt in fork mode: fork, watch the child and its pipe together,
//! read while waiting, kill on time, reap.

use std::io::{self, Write};
use std::mem::ManuallyDrop;
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag};
use nix::sys::signal::Signal;
use nix::unistd::{ForkResult, Pid};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::child;
use crate::codec::{self, FrameReader, Kind};
use crate::deadline::{self, Deadline};
use crate::options::Checked;
use crate::process::{Child, Status, FALLBACK_STEP};
use crate::reaper;
use crate::registry::{self, RegisteredFd};

/// How long a call waits for a killed child to be reaped before handing it
/// to the background reaper and returning anyway (a child with a large
/// memory takes the kernel about 0.1 s per GiB to free; one stuck in
/// uninterruptible I/O may take much longer).
pub(crate) const REAP_BOUND: Duration = Duration::from_secs(1);

/// The function, kept by the caller across attempts. Each forked child
/// moves its own copy out of its private copy of the caller's memory.
pub(crate) struct Body<F>(ManuallyDrop<F>);

impl<F> Body<F> {
    pub(crate) fn new(f: F) -> Self {
        Body(ManuallyDrop::new(f))
    }

    /// # Safety
    ///
    /// Only in a child just forked from the owner of `self`, at most once,
    /// and that child must never drop `self` or return into the caller.
    unsafe fn take_in_child(&mut self) -> F {
        // SAFETY: per the contract above, this process holds a private copy
        // of the caller's `Body`, which nothing else in it will read again.
        unsafe { ManuallyDrop::take(&mut self.0) }
    }
}

impl<F> Drop for Body<F> {
    fn drop(&mut self) {
        // SAFETY: in the caller the value was never taken (only forked
        // children take theirs, from their own copy, and never drop it).
        unsafe { ManuallyDrop::drop(&mut self.0) }
    }
}

/// What one attempt came to.
#[derive(Debug)]
pub(crate) enum Outcome<R> {
    /// The function's value.
    Value(R),
    /// The function's value, which counts as a failed attempt (an `Err`).
    Failed(R),
    /// The deadline passed; `orphan` is the pid left running (kill = false).
    Timeout { orphan: Option<u32> },
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
}

/// How waiting for the child ended.
enum Waited {
    Frame,
    Died,
    Timeout,
    BadFrame(String),
    Io(io::Error),
}

/// Runs one attempt of `body` in a forked child.
pub(crate) fn attempt<R, F>(
    function: &str,
    opts: &Checked,
    body: &mut Body<F>,
    failed: fn(&R) -> bool,
) -> Outcome<R>
where
    F: FnOnce() -> R,
    R: Serialize + DeserializeOwned,
{
    // The deadline runs from the call: the cost of forking counts.
    let deadline = Deadline::after(opts.secs);
    let (pid, read) = match spawn(opts.kill, body, failed) {
        Ok(spawned) => spawned,
        Err(e) => {
            tracing::debug!(target: "rwt", function, error = %e, "spawn failed");
            return Outcome::Spawn(e);
        }
    };
    let mut child = Child::adopt(pid);
    tracing::debug!(target: "rwt", function, pid = child.pid(), "child started");
    let mut reader = FrameReader::new(opts.result_limit);
    let waited = wait(&mut child, read.fd(), &mut reader, deadline);
    drop(read);
    match waited {
        Waited::Frame => {
            let pid = child.pid();
            finish(child, opts.kill);
            let Some(frame) = reader.into_frame() else {
                unreachable!("a complete frame was read")
            };
            tracing::debug!(target: "rwt", function, pid, bytes = frame.body.len(), "result received");
            match frame.kind {
                Kind::Value => decoded(&frame.body, Outcome::Value),
                Kind::Failed => decoded(&frame.body, Outcome::Failed),
                Kind::Panic => Outcome::Panicked(String::from_utf8_lossy(&frame.body).into_owned()),
                Kind::EncodeError => {
                    Outcome::Codec(String::from_utf8_lossy(&frame.body).into_owned())
                }
            }
        }
        Waited::Died => {
            if opts.kill {
                // The child is gone but not reaped: its group id is still
                // ours, and whatever it started in the group goes too.
                child.signal_group(Signal::SIGKILL);
            }
            let status = child.reap();
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
            let pid = child.pid();
            if opts.kill {
                tracing::debug!(target: "rwt", function, pid, "timed out, killing");
                kill(child, opts.grace);
                Outcome::Timeout { orphan: None }
            } else {
                tracing::debug!(target: "rwt", function, pid, "timed out, left running as an orphan");
                reaper::adopt(child);
                Outcome::Timeout { orphan: Some(pid) }
            }
        }
        Waited::BadFrame(detail) => {
            kill(child, Duration::ZERO);
            Outcome::Codec(detail)
        }
        Waited::Io(e) => {
            kill(child, Duration::ZERO);
            Outcome::Spawn(e)
        }
    }
}

fn decoded<R: DeserializeOwned>(body: &[u8], wrap: fn(R) -> Outcome<R>) -> Outcome<R> {
    match codec::decode(body) {
        Ok(value) => wrap(value),
        Err(detail) => Outcome::Codec(detail),
    }
}

/// Forks the child. Returns its pid and the read end of its result pipe.
fn spawn<R, F>(
    kill: bool,
    body: &mut Body<F>,
    failed: fn(&R) -> bool,
) -> io::Result<(Pid, RegisteredFd)>
where
    F: FnOnce() -> R,
    R: Serialize,
{
    child::ensure_panic_hook();
    // Lock order: stdout, stderr, then rwt's registry (a caller that holds
    // the stdout lock while calling us must not deadlock with another
    // caller). Holding the stdio locks across fork means the child never
    // inherits them locked by a thread that does not exist there; flushing
    // first means the child never prints the caller's buffered output again.
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let _ = out.flush();
    let stderr = io::stderr();
    let err = stderr.lock();
    let mut shared = registry::lock();
    let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    let read = RegisteredFd::new(&mut shared, read);
    let write = RegisteredFd::new(&mut shared, write);
    let parent = nix::unistd::getpid();
    // SAFETY: libc fork(): its atfork handlers keep malloc usable in the
    // child. The child runs only `child::run`, which leaves with `_exit` and
    // never returns here; it holds private copies of the locks taken above
    // (released below, by the only thread it has, the one that took them).
    match unsafe { nix::unistd::fork() } {
        Ok(ForkResult::Child) => {
            // Every registered descriptor, this call's pipe included, is
            // closed in the child; it writes through a fresh copy (the
            // originals belong to objects this child never drops).
            let close = shared.reset_in_child();
            drop(shared);
            drop(err);
            drop(out);
            let pipe = match write.fd().try_clone() {
                Ok(fd) => fd,
                Err(_) => child::exit_now(child::EXIT_INTERNAL),
            };
            // SAFETY: this is the child just forked, taking its one copy;
            // `child::run` never returns.
            let f = unsafe { body.take_in_child() };
            child::run(
                child::Setup {
                    parent,
                    kill,
                    pipe,
                    close,
                },
                f,
                failed,
            )
        }
        Ok(ForkResult::Parent { child }) => {
            write.close_locked(&mut shared);
            drop(shared);
            drop(err);
            drop(out);
            // Whichever of parent and child runs first puts the child in
            // its own group, so a group kill never misses it.
            let _ = nix::unistd::setpgid(child, child);
            nix::fcntl::fcntl(read.fd(), FcntlArg::F_SETFL(OFlag::O_NONBLOCK))?;
            Ok((child, read))
        }
        Err(e) => {
            write.close_locked(&mut shared);
            drop(shared);
            drop(err);
            drop(out);
            drop(read);
            Err(e.into())
        }
    }
}

/// Waits for a complete frame, the child's end, or the deadline, reading
/// the pipe all along (a large result never fills it and blocks the child).
fn wait(child: &mut Child, pipe: &OwnedFd, reader: &mut FrameReader, deadline: Deadline) -> Waited {
    let mut buf = vec![0u8; 64 * 1024];
    let mut pipe_open = true;
    // What the last wait said is worth a look (both, at first).
    let (mut look_pipe, mut look_child) = (true, true);
    loop {
        if pipe_open && look_pipe {
            match drain(pipe, reader, &mut buf) {
                Ok(open) => pipe_open = open,
                Err(e) => return e,
            }
        }
        if reader.is_complete() {
            return Waited::Frame;
        }
        if look_child && child.has_exited() {
            // Everything it wrote is in the pipe already.
            if pipe_open {
                if let Err(e) = drain(pipe, reader, &mut buf) {
                    return e;
                }
            }
            return if reader.is_complete() {
                Waited::Frame
            } else {
                Waited::Died
            };
        }
        if deadline.passed() {
            // A frame completed in the last instant is a result, not a
            // timeout: look once more before deciding.
            if pipe_open {
                if let Err(e) = drain(pipe, reader, &mut buf) {
                    return e;
                }
            }
            return if reader.is_complete() {
                Waited::Frame
            } else {
                Waited::Timeout
            };
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
        let pipe_fd = if pipe_open { Some(pipe.as_fd()) } else { None };
        match deadline::wait_readable(pipe_fd, exit_fd, until) {
            Ok(ready) => {
                look_pipe = ready.first;
                look_child = ready.second || polling;
            }
            Err(e) => return Waited::Io(e.into()),
        }
    }
}

/// Reads everything available. `Ok(false)` once the pipe reports end of
/// file (the write end is closed everywhere).
fn drain(pipe: &OwnedFd, reader: &mut FrameReader, buf: &mut [u8]) -> Result<bool, Waited> {
    while !reader.is_complete() {
        match nix::unistd::read(pipe, buf) {
            Ok(0) => return Ok(false),
            Ok(n) => reader
                .feed(&buf[..n])
                .map_err(|e| Waited::BadFrame(e.to_string()))?,
            Err(Errno::EINTR) => {}
            Err(Errno::EAGAIN) => return Ok(true),
            Err(e) => return Err(Waited::Io(e.into())),
        }
    }
    Ok(true)
}

/// After a complete frame: make sure the child (and, with kill = true, its
/// group) is gone, and reap it.
fn finish(child: Child, kill: bool) {
    if kill {
        // The frame is the child's last act: everything left in its group
        // (the child on its way out, anything it started) goes now.
        child.signal_group(Signal::SIGKILL);
        child.signal(Signal::SIGKILL);
    }
    reap_bounded(child);
}

/// The kill ladder: SIGTERM (and SIGCONT, so a stopped child can act on it)
/// to the group, up to `grace` for the child to go, then SIGKILL to the
/// group, then a bounded reap.
fn kill(mut child: Child, grace: Duration) {
    if !grace.is_zero() {
        for sig in [Signal::SIGTERM, Signal::SIGCONT] {
            child.signal_group(sig);
            child.signal(sig);
        }
        child.wait_exit(Deadline::after(grace));
    }
    child.signal_group(Signal::SIGKILL);
    child.signal(Signal::SIGKILL);
    reap_bounded(child);
}

/// Reaps the child if it ends within [`REAP_BOUND`]; otherwise the
/// background reaper takes it and the call goes on.
fn reap_bounded(mut child: Child) {
    if child.wait_exit(Deadline::after(REAP_BOUND)) {
        child.reap();
    } else {
        tracing::debug!(target: "rwt", pid = child.pid(), "child slow to die, handed to the reaper");
        reaper::adopt(child);
    }
}
