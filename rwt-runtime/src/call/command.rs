//! External commands with a deadline: `Command::status_timeout` and
//! friends.
//!
//! The command runs in its own process group (`Command::process_group`, so
//! std still uses `posix_spawn`); rwt waits on a pidfd, reading stdout and
//! stderr in the same loop when they are captured: no SIGCHLD handler, no
//! helper thread, no deadlock on output of any size. On timeout the group
//! gets the same kill ladder as a function (SIGTERM and SIGCONT, `grace`,
//! SIGKILL) and the command is reaped; with `kill = false` it is left
//! running, its pid reported as an orphan and reaped when it ends.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::process::{CommandExt as _, ExitStatusExt};
use std::process::{Command, ExitStatus, Output, Stdio};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag};

use nix::unistd::Pid;

use crate::call::attempt;
use crate::call::process::{Child, Status, FALLBACK_STEP};
use crate::call::reaper;
use crate::options::Checked;
use crate::wait::deadline::{self, Deadline};
use crate::{Error, Options};

/// Runs a [`Command`] with a deadline. Implemented for
/// `std::process::Command`.
///
/// ```
/// # use rwt_runtime as rwt;
/// use std::process::Command;
/// use rwt::CommandExt;
///
/// let status = Command::new("true").status_timeout(5.0)?;
/// assert!(status.success());
/// let err = Command::new("sleep").arg("10").status_timeout(0.1).unwrap_err();
/// assert!(err.is_timeout());
/// # Ok::<(), rwt::Error>(())
/// ```
///
/// The exit status comes back as it is: 0, the command's own non-zero code
/// (a failing command is not an rwt error), or the signal that ended it. A
/// command that exits on its own before rwt decides to kill it has exited,
/// even a moment past the deadline; one rwt killed is a timeout. Each
/// attempt's deadline (`ntries`) covers its whole run; attempts are retried
/// only after a timeout.
pub trait CommandExt {
    /// Runs the command like [`Command::status`] with a deadline of `secs`
    /// (kill on timeout, no grace, one attempt).
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] when the deadline passes (the command and its
    /// process group are killed), [`Error::Spawn`] when it cannot start,
    /// [`Error::InvalidOptions`] for a bad `secs`.
    fn status_timeout(&mut self, secs: f64) -> Result<ExitStatus, Error>;

    /// Like [`CommandExt::status_timeout`], with all of [`Options`].
    ///
    /// # Errors
    ///
    /// As [`CommandExt::status_timeout`].
    fn status_timeout_with(&mut self, options: &Options) -> Result<ExitStatus, Error>;

    /// Runs the command like [`Command::output`] with a deadline of `secs`:
    /// stdout and stderr are captured (read while waiting, so output of any
    /// size never deadlocks).
    ///
    /// # Errors
    ///
    /// As [`CommandExt::status_timeout`]. To keep the output of a command
    /// that timed out, use [`CommandExt::output_timeout_into`].
    fn output_timeout(&mut self, secs: f64) -> Result<Output, Error>;

    /// Like [`CommandExt::output_timeout`], with all of [`Options`].
    ///
    /// # Errors
    ///
    /// As [`CommandExt::status_timeout`].
    fn output_timeout_with(&mut self, options: &Options) -> Result<Output, Error>;

    /// Captures stdout and stderr into `output` as they arrive, and returns
    /// the exit status. On a timeout (or any error) `output` keeps what the
    /// command wrote before it was killed; `output.status` is set only when
    /// it exited.
    ///
    /// # Errors
    ///
    /// As [`CommandExt::status_timeout`].
    fn output_timeout_into(
        &mut self,
        options: &Options,
        output: &mut Output,
    ) -> Result<ExitStatus, Error>;
}

impl CommandExt for Command {
    fn status_timeout(&mut self, secs: f64) -> Result<ExitStatus, Error> {
        self.status_timeout_with(&Options::new().secs(secs))
    }

    fn status_timeout_with(&mut self, options: &Options) -> Result<ExitStatus, Error> {
        run(self, options, None)
    }

    fn output_timeout(&mut self, secs: f64) -> Result<Output, Error> {
        self.output_timeout_with(&Options::new().secs(secs))
    }

    fn output_timeout_with(&mut self, options: &Options) -> Result<Output, Error> {
        let mut output = empty_output();
        self.output_timeout_into(options, &mut output)?;
        Ok(output)
    }

    fn output_timeout_into(
        &mut self,
        options: &Options,
        output: &mut Output,
    ) -> Result<ExitStatus, Error> {
        self.stdout(Stdio::piped()).stderr(Stdio::piped());
        let status = run(self, options, Some(output))?;
        output.status = status;
        Ok(status)
    }
}

fn empty_output() -> Output {
    Output {
        status: ExitStatus::from_raw(0),
        stdout: Vec::new(),
        stderr: Vec::new(),
    }
}

/// How the command is named in errors: the program and its arguments.
fn describe(cmd: &Command) -> String {
    let mut text = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        text.push(' ');
        text.push_str(&arg.to_string_lossy());
    }
    if text.chars().count() > 80 {
        text = text.chars().take(77).collect::<String>() + "...";
    }
    text
}

/// How one attempt ended.
enum Ended {
    Exited(ExitStatus),
    Timeout {
        orphan: Option<u32>,
        stuck: Option<crate::os::stuck::Stuck>,
        usage: Option<crate::os::usage::Usage>,
    },
    Lost,
    Cancelled,
    /// The captured output passed `output_limit`; the command was killed.
    Flood,
}

fn run(
    cmd: &mut Command,
    options: &Options,
    mut output: Option<&mut Output>,
) -> Result<ExitStatus, Error> {
    let opts = options.check()?;
    if opts.limits != crate::limits::Limits::default() {
        // A command is another program: rwt arms limits around a function
        // of this one, in its own child, and cannot name their cause in a
        // program it does not control.
        return Err(Error::InvalidOptions {
            detail: "`memory` and `cpu` limits apply to functions, not to commands".into(),
        });
    }
    // Taken once, as the call starts: a `kill_all` between two attempts
    // cancels it too.
    let cancel = crate::os::cancel::current();
    let function = describe(cmd);
    cmd.process_group(0);
    let mut orphans = Vec::new();
    let mut last = (None, None);
    for attempt in 1..=opts.ntries {
        if attempt > 1 {
            tracing::debug!(target: "rwt", function, attempt, "retrying");
        }
        let ended = attempt_once(
            cmd,
            &opts,
            cancel.as_deref(),
            &function,
            output.as_deref_mut(),
        )
        .map_err(|source| Error::Spawn {
            function: function.clone(),
            source,
        })?;
        match ended {
            Ended::Exited(status) => return Ok(status),
            Ended::Lost => {
                return Err(Error::Crashed {
                    function,
                    signal: None,
                    exit_code: None,
                    attempts: attempt,
                    orphans,
                    usage: None,
                })
            }
            Ended::Timeout {
                orphan,
                stuck,
                usage,
            } => {
                orphans.extend(orphan);
                last = (stuck, usage);
            }
            Ended::Cancelled => {
                return Err(Error::Cancelled {
                    function,
                    usage: None,
                })
            }
            Ended::Flood => {
                return Err(Error::Codec {
                    detail: format!(
                        "the command wrote more than {} bytes to stdout and stderr \
                         (output_limit); it was killed",
                        opts.output_limit
                    ),
                    function,
                    usage: None,
                })
            }
        }
    }
    Err(Error::Timeout {
        function,
        secs: opts.secs_f64,
        attempts: opts.ntries,
        killed: opts.kill,
        orphans,
        stuck: last.0.map(Box::new),
        usage: last.1.map(Box::new),
    })
}

fn attempt_once(
    cmd: &mut Command,
    opts: &Checked,
    cancel: Option<&crate::os::cancel::Epoch>,
    function: &str,
    output: Option<&mut Output>,
) -> io::Result<Ended> {
    let deadline = Deadline::after(opts.secs);
    let mut spawned = cmd.spawn()?;
    let pid = Pid::from_raw(i32::try_from(spawned.id()).map_err(|_| io::Error::other("pid"))?);
    let mut child = Child::adopt(pid);
    tracing::debug!(target: "rwt", function, pid = child.pid(), "command started");
    let stdout = spawned.stdout.take();
    let stderr = spawned.stderr.take();
    // std's handle is no longer needed: rwt reaps the child itself.
    drop(spawned);
    for pipe in [
        stdout.as_ref().map(AsFd::as_fd),
        stderr.as_ref().map(AsFd::as_fd),
    ]
    .into_iter()
    .flatten()
    {
        if let Err(e) = nix::fcntl::fcntl(pipe, FcntlArg::F_SETFL(OFlag::O_NONBLOCK)) {
            // Nobody would watch it: it goes now, not as a zombie.
            let _ = attempt::kill_now(child, std::time::Duration::ZERO);
            return Err(e.into());
        }
    }
    let mut pipes: Vec<(BorrowedFd<'_>, bool)> = Vec::new();
    if let Some(p) = &stdout {
        pipes.push((p.as_fd(), true));
    }
    if let Some(p) = &stderr {
        pipes.push((p.as_fd(), false));
    }
    let mut sink = Sink {
        output,
        taken: 0,
        limit: opts.output_limit,
    };
    let mut buf = vec![0u8; 64 * 1024];
    // An error past this point would leave the command unwatched: it is
    // killed and reaped first.
    macro_rules! or_kill {
        ($result:expr) => {
            match $result {
                Ok(value) => value,
                Err(e) => {
                    let _ = attempt::kill_now(child, std::time::Duration::ZERO);
                    return Err(e.into());
                }
            }
        };
    }
    loop {
        let mut drained = or_kill!(drain(&mut pipes, &mut buf, &mut sink));
        if drained != Drained::Flood && (child.has_exited() || deadline.passed()) {
            // What the command wrote before it ended is still in the pipes
            // (at most a pipe's size, which one pass reads); a grandchild
            // that goes on writing is not waited for.
            drained = or_kill!(drain(&mut pipes, &mut buf, &mut sink));
            if drained != Drained::Flood {
                break;
            }
        }
        if drained == Drained::Flood {
            tracing::debug!(target: "rwt", function, pid = child.pid(), "output over the limit, killing");
            let _ = attempt::kill_now(child, std::time::Duration::ZERO);
            return Ok(Ended::Flood);
        }
        let mut fds: Vec<BorrowedFd<'_>> = pipes.iter().map(|(fd, _)| *fd).collect();
        let exit_fd = child.exit_fd();
        let until = match exit_fd {
            Some(fd) => {
                fds.push(fd);
                deadline
            }
            None => Deadline::after(deadline.remaining().min(FALLBACK_STEP)),
        };
        if let Some(epoch) = cancel {
            fds.push(epoch.fd());
        }
        let ready = or_kill!(deadline::wait_any(&fds, until));
        if cancel.is_some() && ready.last() == Some(&true) {
            tracing::debug!(target: "rwt", function, pid = child.pid(), "cancelled, killing");
            let _ = attempt::kill_now(child, std::time::Duration::ZERO);
            return Ok(Ended::Cancelled);
        }
    }
    if child.has_exited() {
        // It ended on its own, even if the deadline has just passed too.
        return Ok(ended(child.reap()));
    }
    let pid = child.pid();
    // Not reaped (nor lost to someone else's reap): the number is still
    // its own.
    let stuck = child
        .is_ours()
        .then(|| crate::os::stuck::snapshot(pid))
        .flatten();
    if !opts.kill {
        tracing::debug!(target: "rwt", function, pid, "timed out, left running as an orphan");
        reaper::adopt(child);
        return Ok(Ended::Timeout {
            orphan: Some(pid),
            stuck,
            usage: None,
        });
    }
    tracing::debug!(target: "rwt", function, pid, "timed out, killing");
    let reaped = attempt::kill_now(child, opts.grace);
    // After SIGKILL alone, an exit status means the command beat the kill:
    // it exited. Once SIGTERM was sent, how it ended is our doing.
    Ok(match reaped {
        Some((Status::Exited(code), _)) if opts.grace.is_zero() => {
            Ended::Exited(ExitStatus::from_raw((code & 0xff) << 8))
        }
        reaped => Ended::Timeout {
            orphan: None,
            stuck,
            usage: reaped.and_then(|(_, usage)| usage),
        },
    })
}

fn ended(status: Status) -> Ended {
    match status {
        Status::Exited(code) => Ended::Exited(ExitStatus::from_raw((code & 0xff) << 8)),
        Status::Signaled(sig) => Ended::Exited(ExitStatus::from_raw(sig & 0x7f)),
        Status::Lost => Ended::Lost,
    }
}

/// Where captured output goes (nowhere for `status_timeout*`), and how
/// much of the cap is used.
struct Sink<'a> {
    output: Option<&'a mut Output>,
    taken: u64,
    limit: u64,
}

impl Sink<'_> {
    /// Keeps `data`, up to the limit; `false` once the command wrote more
    /// (or more than the caller can hold).
    fn take(&mut self, is_stdout: bool, data: &[u8]) -> bool {
        let Some(out) = self.output.as_deref_mut() else {
            return true;
        };
        let room = usize::try_from(self.limit - self.taken).unwrap_or(usize::MAX);
        let kept = &data[..data.len().min(room)];
        self.taken += kept.len() as u64;
        let stream = if is_stdout {
            &mut out.stdout
        } else {
            &mut out.stderr
        };
        // Fallible: a caller short of memory (RLIMIT_AS, strict
        // overcommit) ends the call as a flood instead of aborting.
        if stream.try_reserve(kept.len()).is_err() {
            return false;
        }
        stream.extend_from_slice(kept);
        kept.len() == data.len()
    }
}

/// How much one pass reads from one pipe before the deadline is looked at
/// again: a writer faster than the reader never leaves the pipe empty, and
/// must not keep the loop from its clock.
const PASS_BYTES: usize = 1 << 20;

/// How a pass over the pipes ended.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Drained {
    /// Every pipe is empty for now, or closed.
    Empty,
    /// A pipe had more than one pass may read.
    More,
    /// The captured output passed the limit.
    Flood,
}

/// Reads what the pipes hold now, at most [`PASS_BYTES`] from each; drops
/// a pipe at end of file.
fn drain(
    pipes: &mut Vec<(BorrowedFd<'_>, bool)>,
    buf: &mut [u8],
    sink: &mut Sink<'_>,
) -> io::Result<Drained> {
    let mut drained = Drained::Empty;
    let mut i = 0;
    while i < pipes.len() {
        let (fd, is_stdout) = pipes[i];
        let mut open = true;
        let mut read = 0;
        while read < PASS_BYTES {
            match nix::unistd::read(fd, buf) {
                Ok(0) => {
                    open = false;
                    break;
                }
                Ok(n) => {
                    read += n;
                    if !sink.take(is_stdout, &buf[..n]) {
                        return Ok(Drained::Flood);
                    }
                }
                Err(Errno::EINTR) => {}
                Err(Errno::EAGAIN) => break,
                Err(e) => return Err(e.into()),
            }
        }
        if read >= PASS_BYTES {
            drained = Drained::More;
        }
        if open {
            i += 1;
        } else {
            pipes.remove(i);
        }
    }
    Ok(drained)
}
