//! The retry loop around attempts, and the errors it reports.

use std::sync::Arc;

use crate::call::outcome::{Ended, Outcome};
use crate::options::Checked;
use crate::os::cancel::Epoch;
use crate::os::stuck::Stuck;
use crate::os::usage::Usage;
use crate::{Error, Options};

/// How the last failed attempt ended.
enum Failure {
    Timeout(Option<Stuck>),
    Panicked(String),
    Crashed {
        signal: Option<i32>,
        exit_code: Option<i32>,
    },
}

/// The retry policy of one call, whatever the mode and whether the caller
/// waits or awaits: [`Retry::next`] says whether to make another attempt,
/// [`Retry::record`] takes its outcome.
struct Retry<'a> {
    function: &'a str,
    opts: Checked,
    /// The `kill_all` epoch of the call, taken once when it starts: a
    /// `kill_all` at any moment after that (while a child is being
    /// started, between two attempts) cancels it.
    cancel: Option<Arc<Epoch>>,
    attempt: u32,
    orphans: Vec<u32>,
    last: Failure,
    /// What the last attempt's child used, if it was reaped.
    usage: Option<Usage>,
}

/// What comes after an attempt.
enum Step<R> {
    /// Make another one.
    Again,
    /// The call is over.
    Done(Result<R, Error>),
}

impl<'a> Retry<'a> {
    /// Checks `options`: an invalid one ends the call before any attempt.
    fn new(options: &Options, function: &'a str) -> Result<Self, Error> {
        Ok(Retry {
            function,
            opts: options.check()?,
            cancel: crate::os::cancel::current(),
            attempt: 0,
            orphans: Vec::new(),
            last: Failure::Timeout(None),
            usage: None,
        })
    }

    /// The options of the next attempt (every attempt has the same).
    fn opts(&self) -> &Checked {
        &self.opts
    }

    /// The call's `kill_all` epoch, the same for every attempt.
    fn cancel(&self) -> Option<&Epoch> {
        self.cancel.as_deref()
    }

    /// Counts the attempt about to be made.
    fn start(&mut self) {
        self.attempt += 1;
        if self.attempt > 1 {
            tracing::debug!(target: "rwt", function = self.function, attempt = self.attempt, "retrying");
        }
    }

    /// What the child of the attempt recorded last used, if it was reaped.
    fn usage(&self) -> Option<Usage> {
        self.usage
    }

    /// Takes the outcome of the attempt just made.
    fn record<R>(&mut self, ended: Ended<R>) -> Step<R> {
        let function = self.function;
        let last_try = self.attempt >= self.opts.ntries;
        self.usage = ended.usage;
        let usage = ended.usage.map(Box::new);
        match ended.outcome {
            Outcome::Value(value) => return self.done(Ok(value)),
            // The function's own `Err`: a value. Retried while attempts
            // remain; the last one is returned as it is.
            Outcome::Failed(value) if last_try => return self.done(Ok(value)),
            Outcome::Failed(_) => {}
            Outcome::Timeout { orphan, stuck } => {
                self.orphans.extend(orphan);
                self.last = Failure::Timeout(stuck);
            }
            Outcome::Panicked(message) => self.last = Failure::Panicked(message),
            Outcome::Crashed { signal, exit_code } => {
                self.last = Failure::Crashed { signal, exit_code };
            }
            // The same value would fail the same way: not retried.
            Outcome::Codec(detail) => {
                return self.done(Err(Error::Codec {
                    function: function.to_owned(),
                    detail,
                    usage,
                }))
            }
            Outcome::Cancelled => {
                return self.done(Err(Error::Cancelled {
                    function: function.to_owned(),
                    usage,
                }))
            }
            // It would go over again.
            Outcome::Limit(limit) => {
                tracing::debug!(target: "rwt", function, %limit, "limit exceeded");
                return Step::Done(Err(Error::LimitExceeded {
                    function: function.to_owned(),
                    limit,
                    attempts: self.attempt,
                    orphans: std::mem::take(&mut self.orphans),
                    usage,
                }));
            }
            Outcome::Lost => {
                return Step::Done(Err(Error::Crashed {
                    function: function.to_owned(),
                    signal: None,
                    exit_code: None,
                    attempts: self.attempt,
                    orphans: std::mem::take(&mut self.orphans),
                    usage,
                }))
            }
            // Out of processes or descriptors: retrying at once would only
            // make it worse.
            Outcome::Spawn(source) => {
                return self.done(Err(Error::Spawn {
                    function: function.to_owned(),
                    source,
                }))
            }
        }
        if last_try {
            Step::Done(Err(self.failed()))
        } else {
            Step::Again
        }
    }

    /// A call that ends with a value, or with an error that has no place
    /// for them (`Codec`, `Cancelled`, `Spawn`): orphans of earlier
    /// attempts are told in a tracing event.
    fn done<R>(&mut self, result: Result<R, Error>) -> Step<R> {
        if !self.orphans.is_empty() {
            tracing::debug!(target: "rwt", function = self.function, orphans = ?self.orphans, "earlier attempts left orphans");
        }
        Step::Done(result)
    }

    /// The error of a call whose attempts all failed.
    fn failed(&mut self) -> Error {
        let function = self.function.to_owned();
        let attempts = self.opts.ntries;
        let usage = self.usage.map(Box::new);
        match std::mem::replace(&mut self.last, Failure::Timeout(None)) {
            Failure::Timeout(stuck) => Error::Timeout {
                function,
                secs: self.opts.secs_f64,
                attempts,
                killed: self.opts.kill,
                orphans: std::mem::take(&mut self.orphans),
                stuck: stuck.map(Box::new),
                usage,
            },
            Failure::Panicked(message) => Error::Panicked {
                function,
                message,
                attempts,
                orphans: std::mem::take(&mut self.orphans),
                usage,
            },
            Failure::Crashed { signal, exit_code } => Error::Crashed {
                function,
                signal,
                exit_code,
                attempts,
                orphans: std::mem::take(&mut self.orphans),
                usage,
            },
        }
    }
}

/// One attempt of a call, in whichever mode: what [`drive`] repeats.
pub(crate) trait Attempt<R> {
    /// Runs one attempt with the call's checked options and its
    /// `kill_all` epoch.
    async fn attempt(&mut self, opts: &Checked, cancel: Option<&Epoch>) -> Ended<R>;
}

/// The one retry driver, for every mode and for commands: makes attempts
/// with `options`, retrying as they say. With the value comes what the
/// last attempt's child used, if it was reaped.
pub(crate) async fn drive<R>(
    options: &Options,
    function: &str,
    mut attempts: impl Attempt<R>,
) -> Result<(R, Option<Usage>), Error> {
    let mut retry = Retry::new(options, function)?;
    loop {
        retry.start();
        let ended = attempts.attempt(retry.opts(), retry.cancel()).await;
        if let Step::Done(result) = retry.record(ended) {
            return result.map(|value| (value, retry.usage()));
        }
    }
}

/// Attempts that never wait on a future (sync callers, whose waits block).
pub(crate) struct Blocking<F>(pub(crate) F);

impl<R, F: FnMut(&Checked, Option<&Epoch>) -> Ended<R>> Attempt<R> for Blocking<F> {
    async fn attempt(&mut self, opts: &Checked, cancel: Option<&Epoch>) -> Ended<R> {
        (self.0)(opts, cancel)
    }
}

/// [`drive`] for sync callers.
pub(crate) fn run<R>(
    options: &Options,
    function: &str,
    attempt: impl FnMut(&Checked, Option<&Epoch>) -> Ended<R>,
) -> Result<(R, Option<Usage>), Error> {
    crate::wait::deadline::block_now(drive(options, function, Blocking(attempt)))
}
