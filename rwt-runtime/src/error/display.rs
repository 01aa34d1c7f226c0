//! How an [`Error`] reads: one sentence that names the function, what
//! happened, and what was left behind.

use std::fmt;

use super::Error;
use crate::os::stuck::Stuck;

/// "; orphaned pids: 1 2" when there are any.
struct Orphans<'a>(&'a [u32]);

impl fmt::Display for Orphans<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.0.is_empty() {
            f.write_str("; orphaned pids:")?;
            for pid in self.0 {
                write!(f, " {pid}")?;
            }
        }
        Ok(())
    }
}

/// ", after 3 attempts" when more than one attempt was made.
struct AfterAttempts(u32);

impl fmt::Display for AfterAttempts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 > 1 {
            write!(f, ", after {} attempts", self.0)?;
        }
        Ok(())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Timeout {
                function,
                secs,
                attempts,
                killed,
                orphans,
                stuck,
                ..
            } => timed_out(
                f,
                function,
                *secs,
                *attempts,
                *killed,
                orphans,
                stuck.as_deref(),
            ),
            Error::Panicked {
                function,
                message,
                attempts,
                orphans,
                ..
            } => write!(
                f,
                "function `{function}` panicked: {message}{}{}",
                AfterAttempts(*attempts),
                Orphans(orphans)
            ),
            Error::Crashed {
                function,
                signal,
                exit_code,
                attempts,
                orphans,
                ..
            } => {
                write!(f, "function `{function}` crashed: ")?;
                how_it_ended(f, *signal, *exit_code)?;
                write!(f, "{}{}", AfterAttempts(*attempts), Orphans(orphans))
            }
            Error::Codec {
                function, detail, ..
            } => write!(
                f,
                "function `{function}`: the result could not cross the process boundary: {detail}"
            ),
            Error::Spawn { function, source } => write!(
                f,
                "function `{function}`: could not start a child process: {source}"
            ),
            Error::InvalidOptions { detail } => write!(f, "invalid rwt options: {detail}"),
            Error::Cancelled { function, .. } => {
                write!(f, "function `{function}` was cancelled")
            }
            Error::LimitExceeded {
                function,
                limit,
                attempts,
                orphans,
                ..
            } => write!(
                f,
                "function `{function}` exceeded its {limit}{}{}",
                AfterAttempts(*attempts),
                Orphans(orphans)
            ),
        }
    }
}

/// "function `f` timed out after 1 s on each of 3 attempts (killed); ..."
fn timed_out(
    f: &mut fmt::Formatter<'_>,
    function: &str,
    secs: f64,
    attempts: u32,
    killed: bool,
    orphans: &[u32],
    stuck: Option<&Stuck>,
) -> fmt::Result {
    write!(f, "function `{function}` timed out after {secs} s")?;
    if attempts > 1 {
        write!(f, " on each of {attempts} attempts")?;
    }
    f.write_str(if killed { " (killed)" } else { " (not killed)" })?;
    write!(f, "{}", Orphans(orphans))?;
    if let Some(stuck) = stuck {
        write!(f, "; {stuck}")?;
    }
    Ok(())
}

/// How a crashed child ended: its signal, its exit code, or neither.
fn how_it_ended(
    f: &mut fmt::Formatter<'_>,
    signal: Option<i32>,
    exit_code: Option<i32>,
) -> fmt::Result {
    match (signal, exit_code) {
        (Some(sig), _) => match signal_name(sig) {
            Some(name) => write!(f, "killed by signal {sig} ({name})"),
            None => write!(f, "killed by signal {sig}"),
        },
        (None, Some(code)) => write!(f, "exited with code {code} without returning a result"),
        (None, None) => f.write_str(
            "ended without a result, and its exit status was taken by someone else \
             (SIGCHLD ignored, or a waitpid(-1) elsewhere)",
        ),
    }
}

#[cfg(unix)]
fn signal_name(sig: i32) -> Option<&'static str> {
    nix::sys::signal::Signal::try_from(sig)
        .ok()
        .map(nix::sys::signal::Signal::as_str)
}

#[cfg(not(unix))]
fn signal_name(_sig: i32) -> Option<&'static str> {
    None
}
