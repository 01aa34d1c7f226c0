//! `Options`: the run-time form of the attribute's options, and their checks.

use std::time::Duration;

use crate::limits::Limits;
use crate::Error;

/// The smallest deadline accepted: below a millisecond the cost of starting a
/// child process alone would eat it.
pub(crate) const MIN_SECS: f64 = 0.001;
/// The largest deadline or grace accepted: 100 years. `Instant` arithmetic is
/// safe well past this on every supported platform.
pub(crate) const MAX_SECS: f64 = 100.0 * 365.25 * 24.0 * 3600.0;
/// Attempts of a call that does not say: one.
pub const DEFAULT_NTRIES: u32 = 1;
/// Default cap on the encoded size of a result: 1 GiB.
pub(crate) const DEFAULT_RESULT_LIMIT: u64 = 1 << 30;
/// Default cap on what a command run through [`CommandExt`] may write to
/// its captured stdout and stderr together: 1 GiB.
///
/// [`CommandExt`]: crate::CommandExt
pub(crate) const DEFAULT_OUTPUT_LIMIT: u64 = 1 << 30;

/// How a call is run: deadline, attempts, what to do on timeout.
///
/// A by-value builder. [`Options::new`] (the same as [`Options::default`]) is
/// one attempt of 1 second, killing the child on timeout with no grace.
///
/// ```
/// # use rwt_runtime as rwt;
/// let opts = rwt::Options::new().secs(1.5).ntries(3).kill(true).grace(0.1);
/// # let _ = opts;
/// ```
///
/// Values are checked when a call is made: an invalid one makes the call
/// return [`Error::InvalidOptions`], never panic.
#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    secs: f64,
    ntries: u32,
    kill: bool,
    grace: f64,
    result_limit: u64,
    output_limit: u64,
    memory: Option<u64>,
    cpu: Option<f64>,
}

impl Default for Options {
    fn default() -> Self {
        Self::new()
    }
}

impl Options {
    /// One attempt of 1 second, kill on timeout, no grace.
    #[must_use]
    pub const fn new() -> Self {
        Options {
            secs: 1.0,
            ntries: DEFAULT_NTRIES,
            kill: true,
            grace: 0.0,
            result_limit: DEFAULT_RESULT_LIMIT,
            output_limit: DEFAULT_OUTPUT_LIMIT,
            memory: None,
            cpu: None,
        }
    }

    /// Deadline of one attempt, in seconds: finite, from 0.001 to 100 years.
    #[must_use]
    pub const fn secs(mut self, secs: f64) -> Self {
        self.secs = secs;
        self
    }

    /// Attempts in all, at least 1. A new attempt follows a timeout, a panic,
    /// a crash, or (through the attribute) an `Err` from a function that
    /// returns a `Result`.
    #[must_use]
    pub const fn ntries(mut self, ntries: u32) -> Self {
        self.ntries = ntries;
        self
    }

    /// On timeout, kill the child and its process group (`true`, the
    /// default), or leave it running and report its pid as an orphan.
    #[must_use]
    pub const fn kill(mut self, kill: bool) -> Self {
        self.kill = kill;
        self
    }

    /// When killing: send SIGTERM first and SIGKILL `grace` seconds later
    /// (sooner if the child is gone). 0, the default, sends SIGKILL at once.
    #[must_use]
    pub const fn grace(mut self, grace: f64) -> Self {
        self.grace = grace;
        self
    }

    /// Largest encoded result accepted, in bytes (default 1 GiB). A larger
    /// one gives [`Error::Codec`] before anything of its size is allocated.
    #[must_use]
    pub const fn result_limit(mut self, bytes: u64) -> Self {
        self.result_limit = bytes;
        self
    }

    /// Largest output, in bytes, that a command run through
    /// [`CommandExt`]'s `output_timeout*` may write to its captured stdout
    /// and stderr together (default 1 GiB). A command that writes more is
    /// killed with its process group at once (whatever [`Options::kill`]
    /// says: rwt stops reading it) and the call returns [`Error::Codec`];
    /// `output_timeout_into` keeps what arrived up to the cap.
    ///
    /// [`CommandExt`]: crate::CommandExt
    #[must_use]
    pub const fn output_limit(mut self, bytes: u64) -> Self {
        self.output_limit = bytes;
        self
    }

    /// The most memory, in bytes, that one attempt may add to what its child
    /// holds when the attempt starts (at least 1; no limit by default). Over
    /// it, the attempt ends as [`Error::LimitExceeded`] and is not retried.
    /// Linux only. See the README's "Limits beyond time" for what counts.
    #[must_use]
    pub const fn memory(mut self, bytes: u64) -> Self {
        self.memory = Some(bytes);
        self
    }

    /// The most CPU time (user + system), in seconds, that one attempt may
    /// use (finite, more than 0; no limit by default). A sleeping child is
    /// not charged. Over it, the attempt ends as [`Error::LimitExceeded`]
    /// and is not retried. Linux only.
    #[must_use]
    pub const fn cpu(mut self, secs: f64) -> Self {
        self.cpu = Some(secs);
        self
    }

    /// Checks every value and converts the durations.
    pub(crate) fn check(&self) -> Result<Checked, Error> {
        let invalid = |detail: String| Err(Error::InvalidOptions { detail });
        if let Some(problem) = secs_problem(self.secs) {
            return invalid(format!("`secs` {problem}, got {}", self.secs));
        }
        if self.ntries == 0 {
            return invalid("`ntries` must be at least 1, got 0".into());
        }
        if let Some(problem) = grace_problem(self.grace) {
            return invalid(format!("`grace` {problem}, got {}", self.grace));
        }
        if self.result_limit == 0 {
            return invalid("`result_limit` must be at least 1 byte".into());
        }
        if self.output_limit == 0 {
            return invalid("`output_limit` must be at least 1 byte".into());
        }
        if self.memory == Some(0) {
            return invalid("`memory` must be at least 1 byte".into());
        }
        if let Some(cpu) = self.cpu {
            if let Some(problem) = cpu_problem(cpu) {
                return invalid(format!("`cpu` {problem}, got {cpu}"));
            }
        }
        if cfg!(not(target_os = "linux")) && (self.memory.is_some() || self.cpu.is_some()) {
            return invalid("`memory` and `cpu` limits need Linux".into());
        }
        // Known before any fork child needs it (read once per process).
        #[cfg(target_os = "linux")]
        if self.memory.is_some() {
            let _ = crate::os::procfs::strict_overcommit();
        }
        let limits = Limits {
            memory: self.memory,
            // Below a microsecond the timer could not be armed at all.
            cpu: self
                .cpu
                .and_then(|c| Duration::try_from_secs_f64(c).ok())
                .map(|c| c.max(Duration::from_micros(1))),
        };
        // Both values are finite and in range here, so neither can fail.
        let secs = Duration::try_from_secs_f64(self.secs);
        let grace = Duration::try_from_secs_f64(self.grace);
        match (secs, grace) {
            (Ok(secs), Ok(grace)) => Ok(Checked {
                secs,
                secs_f64: self.secs,
                ntries: self.ntries,
                kill: self.kill,
                grace,
                result_limit: self.result_limit,
                output_limit: self.output_limit,
                limits,
                cpu_f64: self.cpu,
                #[cfg(unix)]
                output: crate::os::test_output::get(),
                #[cfg(not(unix))]
                output: None,
            }),
            _ => invalid(format!(
                "durations out of range: secs {}, grace {}",
                self.secs, self.grace
            )),
        }
    }
}

/// Options after their checks, as the runtime uses them.
#[derive(Clone, Debug)]
pub(crate) struct Checked {
    pub secs: Duration,
    pub secs_f64: f64,
    pub ntries: u32,
    pub kill: bool,
    pub grace: Duration,
    pub result_limit: u64,
    pub output_limit: u64,
    pub limits: Limits,
    /// The CPU limit as given, for the error.
    pub cpu_f64: Option<f64>,
    /// Where the children of this call write their stdout and stderr, if
    /// not to the caller's: the output pipe of the `#[rwt::test]` attempt
    /// that makes the call (see `testing`). Pool workers keep theirs.
    pub output: Option<i32>,
}

/// What is wrong with a duration option (`secs`, `cpu`, `grace`): one
/// rule each, in one place, for the run-time check and the compile-time
/// check of `secs = CONST` ([`checked_secs`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Problem {
    NotFinite,
    NotPositive,
    Negative,
    BelowMin,
    AboveMax,
}

impl Problem {
    /// The rule the value breaks, as the error says it after the option's
    /// name.
    pub(crate) const fn message(self) -> &'static str {
        match self {
            Problem::NotFinite => "must be a finite number",
            Problem::NotPositive => "must be greater than 0",
            Problem::Negative => "must not be negative",
            Problem::BelowMin => "must be at least 0.001 (1 ms)",
            Problem::AboveMax => "must be at most 3155760000 (100 years)",
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

/// A `secs` value: finite, at least [`MIN_SECS`], at most [`MAX_SECS`].
pub(crate) const fn secs_problem(secs: f64) -> Option<Problem> {
    if secs.is_nan() || secs.is_infinite() {
        Some(Problem::NotFinite)
    } else if secs <= 0.0 {
        Some(Problem::NotPositive)
    } else if secs < MIN_SECS {
        Some(Problem::BelowMin)
    } else if secs > MAX_SECS {
        Some(Problem::AboveMax)
    } else {
        None
    }
}

/// A `cpu` value: finite, above 0, at most [`MAX_SECS`].
pub(crate) const fn cpu_problem(cpu: f64) -> Option<Problem> {
    if cpu.is_nan() || cpu.is_infinite() {
        Some(Problem::NotFinite)
    } else if cpu <= 0.0 {
        Some(Problem::NotPositive)
    } else if cpu > MAX_SECS {
        Some(Problem::AboveMax)
    } else {
        None
    }
}

/// A `grace` value: finite, not negative, at most [`MAX_SECS`].
pub(crate) const fn grace_problem(grace: f64) -> Option<Problem> {
    if grace.is_nan() || grace.is_infinite() {
        Some(Problem::NotFinite)
    } else if grace < 0.0 {
        Some(Problem::Negative)
    } else if grace > MAX_SECS {
        Some(Problem::AboveMax)
    } else {
        None
    }
}

/// Checks `secs = CONST` at compile time: the generated code evaluates it
/// in a `const`, so a value that breaks a rule fails the build with the
/// rule (a const panic prints literals only: one arm per rule).
///
/// # Panics
///
/// At compile time, with the rule, when `secs` breaks one.
#[track_caller]
#[must_use]
pub const fn checked_secs(secs: f64) -> f64 {
    match secs_problem(secs) {
        None => secs,
        Some(Problem::NotFinite) => panic!("`secs` must be a finite number"),
        Some(Problem::NotPositive | Problem::Negative) => panic!("`secs` must be greater than 0"),
        Some(Problem::BelowMin) => panic!("`secs` must be at least 0.001 (1 ms)"),
        Some(Problem::AboveMax) => panic!("`secs` must be at most 3155760000 (100 years)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detail(opts: &Options) -> String {
        match opts.check() {
            Err(Error::InvalidOptions { detail }) => detail,
            other => panic!("expected InvalidOptions, got {other:?}"),
        }
    }

    #[test]
    fn defaults_follow_the_spec() {
        let c = Options::new().check().unwrap();
        assert_eq!(c.secs, Duration::from_secs(1));
        assert_eq!(c.ntries, 1);
        assert!(c.kill);
        assert_eq!(c.grace, Duration::ZERO);
        assert_eq!(Options::default(), Options::new());
    }

    #[test]
    fn bad_secs_are_errors_not_panics() {
        for bad in [f64::NAN, f64::INFINITY, -1.0, -0.0, 0.0, 1e-12, 1e300, 4e9] {
            let d = detail(&Options::new().secs(bad));
            assert!(d.starts_with("`secs` must"), "{bad}: {d}");
        }
        assert!(Options::new().secs(3.0e9).check().is_ok());
        assert!(Options::new().secs(0.001).check().is_ok());
    }

    #[test]
    fn bad_ntries_grace_and_limit_are_errors() {
        assert!(detail(&Options::new().ntries(0)).contains("ntries"));
        for bad in [f64::NAN, -0.5, f64::INFINITY, 1e300] {
            assert!(detail(&Options::new().grace(bad)).contains("grace"));
        }
        assert!(Options::new().grace(0.0).check().is_ok());
        assert!(detail(&Options::new().result_limit(0)).contains("result_limit"));
        assert!(detail(&Options::new().output_limit(0)).contains("output_limit"));
    }

    #[test]
    fn bad_limits_are_errors() {
        assert!(detail(&Options::new().memory(0)).contains("`memory`"));
        for bad in [f64::NAN, -1.0, 0.0, f64::INFINITY, 1e300] {
            assert!(
                detail(&Options::new().cpu(bad)).starts_with("`cpu` must"),
                "{bad}"
            );
        }
        let c = Options::new().memory(64 << 20).cpu(0.25).check().unwrap();
        assert_eq!(c.limits.memory, Some(64 << 20));
        assert_eq!(c.limits.cpu, Some(Duration::from_millis(250)));
        let tiny = Options::new().cpu(1e-10).check().unwrap();
        assert_eq!(tiny.limits.cpu, Some(Duration::from_micros(1)));
        let none = Options::new().check().unwrap();
        assert_eq!(none.limits, Limits::default());
    }
}
