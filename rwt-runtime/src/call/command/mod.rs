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
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::process::{CommandExt as _, ExitStatusExt};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::time::Duration;

use nix::fcntl::{FcntlArg, OFlag};

use nix::unistd::Pid;

use crate::call::kill;
use crate::call::outcome::{Ended, Outcome};
use crate::call::process::{Child, Status};
use crate::call::{reaper, retry};
use crate::options::Checked;
use crate::os::cancel::Epoch;
use crate::os::fds::{self, RegisteredFd};
use crate::wait::deadline::{self, Deadline};
use crate::{Error, Options};

mod output;

use output::{Drained, Sink};

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
    let function = describe(cmd);
    cmd.process_group(0);
    // The call's epoch is taken once, as it starts: a `kill_all` between
    // two attempts cancels it too.
    let attempt = |opts: &Checked, cancel: Option<&Epoch>| {
        attempt(cmd, opts, cancel, &function, output.as_deref_mut())
            .unwrap_or_else(|source| Outcome::Spawn(source).into())
    };
    retry::run(options, &function, attempt).map(|(status, _)| status)
}

/// One attempt: start the command, read what it writes while waiting for
/// its end, the deadline or `kill_all`, and deal with it.
fn attempt(
    cmd: &mut Command,
    opts: &Checked,
    cancel: Option<&Epoch>,
    function: &str,
    output: Option<&mut Output>,
) -> io::Result<Ended<ExitStatus>> {
    let deadline = Deadline::after(opts.secs);
    let (mut child, stdout, stderr) = start(cmd, function)?;
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
    let watched = match watch(&mut child, &mut pipes, &mut sink, deadline, cancel) {
        Ok(watched) => watched,
        Err(e) => {
            // It would be left unwatched: it goes now, not as a zombie.
            let _ = kill::kill_now(child, Duration::ZERO);
            return Err(e);
        }
    };
    let pid = child.pid();
    Ok(match watched {
        Watched::Ended => ended(child.reap()).into(),
        Watched::Flood => {
            tracing::debug!(target: "rwt", function, pid, "output over the limit, killing");
            let _ = kill::kill_now(child, Duration::ZERO);
            Outcome::Codec(format!(
                "the command wrote more than {} bytes to stdout and stderr (output_limit); \
                 it was killed",
                opts.output_limit
            ))
            .into()
        }
        Watched::Cancelled => {
            tracing::debug!(target: "rwt", function, pid, "cancelled, killing");
            let _ = kill::kill_now(child, Duration::ZERO);
            Outcome::Cancelled.into()
        }
        Watched::Late => timed_out(child, opts, function),
    })
}

/// Starts the command, its pipes (if captured) non-blocking.
///
/// Started under rwt's descriptor list, and the captured pipes registered
/// there, as every descriptor rwt keeps for a call: no fork-mode child of
/// another call holds a copy of either end (a write end would keep the
/// pipe open after the command ended; a read end would let that child take
/// the output). The list is held as long as the spawn takes (std uses
/// `posix_spawn`, which does not copy the caller's memory, unless the
/// `Command` needs a `fork`).
fn start(
    cmd: &mut Command,
    function: &str,
) -> io::Result<(Child, Option<RegisteredFd>, Option<RegisteredFd>)> {
    let (child, stdout, stderr) = {
        let mut fds = fds::fds();
        let mut spawned = cmd.spawn()?;
        let pid = Pid::from_raw(i32::try_from(spawned.id()).map_err(|_| io::Error::other("pid"))?);
        let child = Child::adopt_in(pid, &mut fds);
        let stdout = spawned
            .stdout
            .take()
            .map(|p| RegisteredFd::new(&mut fds, OwnedFd::from(p)));
        let stderr = spawned
            .stderr
            .take()
            .map(|p| RegisteredFd::new(&mut fds, OwnedFd::from(p)));
        // std's handle is no longer needed: rwt reaps the child itself.
        drop(spawned);
        (child, stdout, stderr)
    };
    tracing::debug!(target: "rwt", function, pid = child.pid(), "command started");
    for pipe in [
        stdout.as_ref().map(AsFd::as_fd),
        stderr.as_ref().map(AsFd::as_fd),
    ]
    .into_iter()
    .flatten()
    {
        if let Err(e) = nix::fcntl::fcntl(pipe, FcntlArg::F_SETFL(OFlag::O_NONBLOCK)) {
            // Nobody would watch it: it goes now, not as a zombie.
            let _ = kill::kill_now(child, Duration::ZERO);
            return Err(e.into());
        }
    }
    Ok((child, stdout, stderr))
}

/// How watching a command ended.
enum Watched {
    /// It ended on its own (even if the deadline has just passed too).
    Ended,
    /// The deadline passed first.
    Late,
    /// `kill_all` ran.
    Cancelled,
    /// The captured output passed `output_limit`.
    Flood,
}

/// Reads the pipes until the command ends, the deadline passes, `kill_all`
/// runs or the output passes its cap.
fn watch(
    child: &mut Child,
    pipes: &mut Vec<(BorrowedFd<'_>, bool)>,
    sink: &mut Sink<'_>,
    deadline: Deadline,
    cancel: Option<&Epoch>,
) -> io::Result<Watched> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let mut drained = output::drain(pipes, &mut buf, sink)?;
        if drained != Drained::Flood && (child.has_exited() || deadline.passed()) {
            // What the command wrote before it ended is still in the pipes
            // (at most a pipe's size, which one pass reads); a grandchild
            // that goes on writing is not waited for.
            drained = output::drain(pipes, &mut buf, sink)?;
            if drained != Drained::Flood {
                return Ok(if child.has_exited() {
                    Watched::Ended
                } else {
                    Watched::Late
                });
            }
        }
        if drained == Drained::Flood {
            return Ok(Watched::Flood);
        }
        let mut fds: Vec<BorrowedFd<'_>> = pipes.iter().map(|(fd, _)| *fd).collect();
        let exit_fd = child.exit_fd();
        let until = deadline.or_step(exit_fd);
        fds.extend(exit_fd);
        if let Some(epoch) = cancel {
            fds.push(epoch.fd());
        }
        let ready = deadline::wait_any(&fds, until)?;
        if cancel.is_some() && ready.last() == Some(&true) {
            return Ok(Watched::Cancelled);
        }
    }
}

/// The deadline passed: the kill ladder, or (`kill = false`) an orphan.
fn timed_out(child: Child, opts: &Checked, function: &str) -> Ended<ExitStatus> {
    let pid = child.pid();
    // Not reaped (nor lost to someone else's reap): the number is still
    // its own.
    let stuck = child
        .is_ours()
        .then(|| crate::os::stuck::snapshot(pid, None))
        .flatten();
    if !opts.kill {
        tracing::debug!(target: "rwt", function, pid, "timed out, left running as an orphan");
        reaper::adopt(child);
        return Outcome::Timeout {
            orphan: Some(pid),
            stuck,
        }
        .into();
    }
    tracing::debug!(target: "rwt", function, pid, "timed out, killing");
    let reaped = kill::kill_now(child, opts.grace);
    // After SIGKILL alone, an exit status means the command beat the kill:
    // it exited. Once SIGTERM was sent, how it ended is our doing.
    match reaped {
        Some((Status::Exited(code), _)) if opts.grace.is_zero() => {
            Outcome::Value(ExitStatus::from_raw((code & 0xff) << 8)).into()
        }
        reaped => Ended {
            outcome: Outcome::Timeout {
                orphan: None,
                stuck,
            },
            usage: reaped.and_then(|(_, usage)| usage),
        },
    }
}

/// How a command that was reaped ended. A status someone else took is
/// [`Outcome::Lost`]: never retried (the command may have done its work).
fn ended(status: Status) -> Outcome<ExitStatus> {
    match status {
        Status::Exited(code) => Outcome::Value(ExitStatus::from_raw((code & 0xff) << 8)),
        Status::Signaled(sig) => Outcome::Value(ExitStatus::from_raw(sig & 0x7f)),
        Status::Lost => Outcome::Lost,
    }
}
