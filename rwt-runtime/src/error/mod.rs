//! The error a call returns when it has no value to give.

use crate::limits::Limit;
use crate::os::stuck::Stuck;
use crate::os::usage::Usage;

/// Why a call of a `#[timeout]` function (or of [`run_with_timeout`]) did
/// not return the function's value.
///
/// After several attempts the error is the last attempt's, with `attempts`
/// saying how many were made.
///
/// ```
/// # use rwt_runtime as rwt;
/// use rwt::{run_with_timeout, Error, Options};
///
/// let slow = run_with_timeout(&Options::new().secs(0.05), || {
///     std::thread::sleep(std::time::Duration::from_secs(10));
/// });
/// assert!(slow.as_ref().is_err_and(Error::is_timeout));
///
/// let broken = run_with_timeout(&Options::new(), || -> u8 { panic!("bad input") });
/// match broken {
///     // The message, then where the child panicked.
///     Err(Error::Panicked { message, .. }) => assert!(message.starts_with("bad input (")),
///     other => panic!("{other:?}"),
/// }
/// ```
///
/// [`run_with_timeout`]: crate::run_with_timeout
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The deadline passed before the child returned a result.
    Timeout {
        /// Name of the function.
        function: String,
        /// Deadline of one attempt, in seconds.
        secs: f64,
        /// Attempts made.
        attempts: u32,
        /// Whether the child (and its process group) was killed.
        killed: bool,
        /// Pids of children left running (`kill = false`), one per timed-out
        /// attempt. rwt reaps each when it ends; it never becomes a zombie.
        orphans: Vec<u32>,
        /// What the last attempt's child was doing at the deadline.
        stuck: Option<Box<Stuck>>,
        /// What the last attempt's child used, if it was reaped.
        usage: Option<Box<Usage>>,
    },
    /// The function panicked in the child.
    Panicked {
        /// Name of the function.
        function: String,
        /// The panic message followed by its location in parentheses, as in
        /// `boom (src/lib.rs:3:5)`.
        message: String,
        /// Attempts made.
        attempts: u32,
        /// Pids that earlier attempts left running (`kill = false` and a
        /// timeout), as in [`Error::Timeout`].
        orphans: Vec<u32>,
        /// What the last attempt's child used, if it was reaped.
        usage: Option<Box<Usage>>,
    },
    /// The child ended without a result: a signal, `process::exit`, abort,
    /// out of memory, or a SIGKILL that rwt did not send.
    Crashed {
        /// Name of the function.
        function: String,
        /// The signal that ended the child, if one did.
        signal: Option<i32>,
        /// The child's exit code, if it exited.
        exit_code: Option<i32>,
        /// Attempts made.
        attempts: u32,
        /// Pids that earlier attempts left running (`kill = false` and a
        /// timeout), as in [`Error::Timeout`].
        orphans: Vec<u32>,
        /// What the last attempt's child used, if it was reaped.
        usage: Option<Box<Usage>>,
    },
    /// The result could not cross the process boundary: it failed to
    /// encode or decode, or it exceeded the result size limit. Not retried:
    /// the same value would fail again.
    Codec {
        /// Name of the function.
        function: String,
        /// What went wrong.
        detail: String,
        /// What the child used, if it was reaped.
        usage: Option<Box<Usage>>,
    },
    /// The child process could not be started (no more processes or file
    /// descriptors, out of memory). Not retried.
    Spawn {
        /// Name of the function.
        function: String,
        /// The system's error.
        source: std::io::Error,
    },
    /// An option had a value out of range (run-time API only; the attribute
    /// checks its options at compile time).
    InvalidOptions {
        /// Which option and why.
        detail: String,
    },
    /// The call was cancelled before it finished.
    Cancelled {
        /// Name of the function.
        function: String,
        /// What the killed child used, if it was reaped.
        usage: Option<Box<Usage>>,
    },
    /// The attempt went over a limit beyond time (`memory`, `cpu`). Not
    /// retried: it would go over again.
    LimitExceeded {
        /// Name of the function.
        function: String,
        /// Which limit, and its value.
        limit: Limit,
        /// Attempts made (earlier ones failed otherwise).
        attempts: u32,
        /// Pids that earlier attempts left running, as in
        /// [`Error::Timeout`].
        orphans: Vec<u32>,
        /// What the child used, if it was reaped.
        usage: Option<Box<Usage>>,
    },
}

impl Error {
    /// `true` for [`Error::Timeout`].
    #[must_use]
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout { .. })
    }

    /// Pids of children left running by `kill = false` (one per timed-out
    /// attempt, whatever the last attempt came to); empty otherwise.
    #[must_use]
    pub fn orphans(&self) -> &[u32] {
        match self {
            Error::Timeout { orphans, .. }
            | Error::Panicked { orphans, .. }
            | Error::Crashed { orphans, .. }
            | Error::LimitExceeded { orphans, .. } => orphans,
            _ => &[],
        }
    }

    /// What the last attempt's child used, as the kernel accounted it when
    /// rwt reaped it: `None` when no child was started, or it was not
    /// reaped in time (left as an orphan, slow to die).
    #[must_use]
    pub fn usage(&self) -> Option<&Usage> {
        match self {
            Error::Timeout { usage, .. }
            | Error::Panicked { usage, .. }
            | Error::Crashed { usage, .. }
            | Error::Codec { usage, .. }
            | Error::Cancelled { usage, .. }
            | Error::LimitExceeded { usage, .. } => usage.as_deref(),
            Error::Spawn { .. } | Error::InvalidOptions { .. } => None,
        }
    }

    /// For [`Error::Timeout`]: what the child was doing when the deadline
    /// passed (read from `/proc` before the kill); `None` for other errors
    /// and where `/proc` could not tell.
    #[must_use]
    pub fn stuck(&self) -> Option<&Stuck> {
        match self {
            Error::Timeout { stuck, .. } => stuck.as_deref(),
            _ => None,
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Spawn { source, .. } => Some(source),
            _ => None,
        }
    }
}

mod display;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timeout_reads_like_the_spec() {
        let e = Error::Timeout {
            function: "sleepy".into(),
            secs: 0.2,
            attempts: 1,
            killed: true,
            orphans: vec![],
            stuck: None,
            usage: None,
        };
        assert_eq!(
            e.to_string(),
            "function `sleepy` timed out after 0.2 s (killed)"
        );
        let e = Error::Timeout {
            function: "stubborn".into(),
            secs: 0.5,
            attempts: 3,
            killed: false,
            orphans: vec![2069926, 2069931, 2069969],
            stuck: None,
            usage: None,
        };
        assert_eq!(
            e.to_string(),
            "function `stubborn` timed out after 0.5 s on each of 3 attempts (not killed); \
             orphaned pids: 2069926 2069931 2069969"
        );
        assert_eq!(e.orphans(), &[2069926, 2069931, 2069969]);
    }

    #[test]
    fn other_errors_read_like_the_spec() {
        let e = Error::Panicked {
            function: "parse".into(),
            message: "index out of bounds: the len is 3 but the index is 7 (src/parse.rs:10:5)"
                .into(),
            attempts: 1,
            orphans: vec![],
            usage: None,
        };
        assert_eq!(
            e.to_string(),
            "function `parse` panicked: index out of bounds: the len is 3 but the index is 7 \
             (src/parse.rs:10:5)"
        );
        let e = Error::Crashed {
            function: "ffi_call".into(),
            signal: Some(11),
            exit_code: None,
            attempts: 1,
            orphans: vec![],
            usage: None,
        };
        assert_eq!(
            e.to_string(),
            "function `ffi_call` crashed: killed by signal 11 (SIGSEGV)"
        );
        assert!(!e.is_timeout());
        assert!(e.orphans().is_empty());
    }

    #[test]
    fn a_limit_and_a_stuck_child_read_like_the_spec() {
        let e = Error::LimitExceeded {
            function: "decode".into(),
            limit: Limit::Memory { bytes: 512 << 20 },
            attempts: 1,
            orphans: vec![],
            usage: None,
        };
        assert_eq!(
            e.to_string(),
            "function `decode` exceeded its memory limit of 512 MiB"
        );
        let e = Error::Timeout {
            function: "mount_check".into(),
            secs: 1.5,
            attempts: 1,
            killed: true,
            orphans: vec![],
            stuck: Some(Box::new(Stuck {
                state: crate::os::stuck::State::Sleeping,
                syscall: Some("openat".into()),
                wchan: Some("wait_for_partner".into()),
            })),
            usage: None,
        };
        assert_eq!(
            e.to_string(),
            "function `mount_check` timed out after 1.5 s (killed); it was blocked in openat \
             (kernel: wait_for_partner)"
        );
        assert!(e.stuck().is_some() && e.usage().is_none());
    }

    #[test]
    fn error_is_send_sync_static() {
        fn check<T: std::error::Error + Send + Sync + 'static>() {}
        check::<Error>();
    }
}
