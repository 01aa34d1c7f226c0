//! The retry loop around attempts, and the errors it reports.

use crate::options::Checked;
use crate::watch::Outcome;
use crate::{Error, Options};

/// How the last failed attempt ended.
enum Failure {
    Timeout,
    Panicked(String),
    Crashed {
        signal: Option<i32>,
        exit_code: Option<i32>,
    },
}

/// Makes attempts with `options`, retrying as they say, whatever the mode:
/// `attempt_once` runs one.
pub(crate) fn run<R>(
    options: &Options,
    function: &str,
    mut attempt_once: impl FnMut(&Checked) -> Outcome<R>,
) -> Result<R, Error> {
    let opts = options.check()?;
    let mut orphans = Vec::new();
    let mut last = Failure::Timeout;
    for attempt in 1..=opts.ntries {
        if attempt > 1 {
            tracing::debug!(target: "rwt", function, attempt, "retrying");
        }
        match attempt_once(&opts) {
            Outcome::Value(value) => return Ok(value),
            // The function's own `Err`: a value. Retried while attempts
            // remain; the last one is returned as it is.
            Outcome::Failed(value) if attempt == opts.ntries => return Ok(value),
            Outcome::Failed(_) => {}
            Outcome::Timeout { orphan } => {
                orphans.extend(orphan);
                last = Failure::Timeout;
            }
            Outcome::Panicked(message) => last = Failure::Panicked(message),
            Outcome::Crashed { signal, exit_code } => {
                last = Failure::Crashed { signal, exit_code };
            }
            // The same value would fail the same way: not retried.
            Outcome::Codec(detail) => {
                return Err(Error::Codec {
                    function: function.to_owned(),
                    detail,
                })
            }
            Outcome::Cancelled => {
                return Err(Error::Cancelled {
                    function: function.to_owned(),
                })
            }
            // Out of processes or descriptors: retrying at once would only
            // make it worse.
            Outcome::Spawn(source) => {
                return Err(Error::Spawn {
                    function: function.to_owned(),
                    source,
                })
            }
        }
    }
    let function = function.to_owned();
    let attempts = opts.ntries;
    Err(match last {
        Failure::Timeout => Error::Timeout {
            function,
            secs: opts.secs_f64,
            attempts,
            killed: opts.kill,
            orphans,
        },
        Failure::Panicked(message) => Error::Panicked {
            function,
            message,
            attempts,
        },
        Failure::Crashed { signal, exit_code } => Error::Crashed {
            function,
            signal,
            exit_code,
            attempts,
        },
    })
}
