//! The caller side of `#[rwt::test]`: run a test's attempts, hand what
//! the child printed to libtest as the test's own output, and turn the
//! outcome into libtest's verdict (return, a panic, or an `Err`).
//!
//! libtest captures a test's output by swapping what `print!` writes to,
//! on the test's thread only: a child process writes to the real
//! descriptors 1 and 2 and would bypass it. So while libtest captures, each
//! attempt's child gets a pipe of its own on 1 and 2 (the spawn sets them;
//! `test_output` tells it which), a thread here collects what comes through,
//! and the test's thread `print!`s it once the attempt is over. Under
//! `--nocapture` the child keeps the terminal and prints as it goes.
//!
//! `capture` is the pipe and the thread that drains it; `plain_thread`
//! the thread a fork-mode attempt forks from.

mod capture;
mod plain_thread;

use std::fmt;
use std::panic::Location;

use crate::Error;
use capture::Capture;
use plain_thread::on_plain_thread;

/// What `#[should_panic]` asked for.
#[derive(Clone, Copy, Debug)]
pub enum ShouldPanic {
    /// No `#[should_panic]`: a panic fails the test.
    No,
    /// `#[should_panic]`: any panic passes it.
    Any,
    /// `#[should_panic(expected = "...")]`: a panic whose message contains
    /// this passes it.
    Expected(&'static str),
}

/// A test as the attribute describes it.
#[derive(Debug)]
pub struct TestSpec {
    /// Attempts in all (the attribute's `ntries`); each call makes one.
    pub ntries: u32,
    /// What `#[should_panic]` asked for.
    pub should_panic: ShouldPanic,
    /// Fork mode: the attempt forks from a thread of its own, so that the
    /// child does not inherit libtest's capture of this thread's `print!`.
    pub fork: bool,
}

/// The error of a `-> Result<(), E>` test, as the child formatted it with
/// `{:?}`; libtest prints it as `Error: ...`, exactly as for the test's own.
pub struct TestError(String);

impl fmt::Debug for TestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a test's child returns: `()`, or the `Err` of a `Result` test as
/// text (its `E` need not cross processes, only its `Debug` form does).
pub trait TestValue: serde::Serialize + serde::de::DeserializeOwned + Send {
    /// The `Err`'s text, if the test returned one.
    fn returned_err(self) -> Option<String>;
}

impl TestValue for () {
    fn returned_err(self) -> Option<String> {
        None
    }
}

impl TestValue for Result<(), String> {
    fn returned_err(self) -> Option<String> {
        self.err()
    }
}

/// In the child: a `Result` test's value, with its error formatted.
///
/// # Errors
///
/// The test's error, as `{:?}` formats it.
pub fn test_result<E: fmt::Debug>(result: Result<(), E>) -> Result<(), String> {
    result.map_err(|e| format!("{e:?}"))
}

/// Runs a test's attempts and gives libtest its verdict: returns if one
/// passed; otherwise panics as the child did (its message and location),
/// returns the child's `Err`, or panics with rwt's error.
///
/// # Errors
///
/// A `Result` test's error, when its last attempt returned one.
#[track_caller]
pub fn run_test<V: TestValue>(
    spec: &TestSpec,
    attempt: fn() -> Result<V, Error>,
) -> Result<(), TestError> {
    let at = Location::caller();
    let ntries = spec.ntries.max(1);
    let mut n = 1;
    loop {
        let got = captured_attempt(attempt, spec.fork);
        let Some(failure) = judge(spec, got) else {
            return Ok(());
        };
        if n < ntries && failure.retried() {
            eprintln!(
                "rwt: attempt {n} of {ntries} failed: {}; trying again",
                failure.summary()
            );
            n += 1;
            continue;
        }
        return failure.report(n, at);
    }
}

/// One attempt, with the child's output captured while libtest captures
/// this thread's, and printed here (on the test's thread, where libtest
/// looks) when it is over.
fn captured_attempt<V: TestValue>(
    attempt: fn() -> Result<V, Error>,
    fork: bool,
) -> Result<V, Error> {
    let capture = if libtest_captures() {
        Capture::start().ok()
    } else {
        None
    };
    let output = capture.as_ref().map(Capture::write_fd);
    let run = move || {
        crate::os::test_output::set(output);
        let got = attempt();
        crate::os::test_output::set(None);
        got
    };
    let got = if fork { on_plain_thread(run) } else { run() };
    if let Some(capture) = capture {
        let text = capture.finish();
        if !text.is_empty() {
            print!("{text}");
        }
    }
    got
}

/// Whether libtest captures the output of tests in this run: not under
/// `--nocapture` (or `--no-capture`), nor with `RUST_TEST_NOCAPTURE` set
/// to anything but `0`, as libtest reads them.
fn libtest_captures() -> bool {
    static CAPTURES: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *CAPTURES.get_or_init(|| {
        let flag = std::env::args_os()
            .skip(1)
            .any(|a| a == "--nocapture" || a == "--no-capture");
        let env = std::env::var_os("RUST_TEST_NOCAPTURE").is_some_and(|v| v != "0");
        !flag && !env
    })
}

/// Why an attempt failed.
enum Failure {
    /// The child panicked: its message, and where (if it said).
    Panicked {
        text: String,
        location: Option<String>,
    },
    /// A `Result` test returned this `Err` (formatted).
    Returned(String),
    /// Anything else: rwt's message; `retried` unless a retry could not
    /// pass either (a limit, a value that cannot cross, no child at all).
    Other { message: String, retried: bool },
}

fn judge<V: TestValue>(spec: &TestSpec, got: Result<V, Error>) -> Option<Failure> {
    let other = |message: String| Failure::Other {
        message,
        retried: true,
    };
    match (spec.should_panic, got) {
        (ShouldPanic::No, Ok(value)) => value.returned_err().map(Failure::Returned),
        (_, Err(Error::Panicked { message, .. })) => {
            let (text, location) = split_location(&message);
            match spec.should_panic {
                ShouldPanic::No => Some(Failure::Panicked {
                    text: text.to_owned(),
                    location: location.map(str::to_owned),
                }),
                ShouldPanic::Any => None,
                // libtest's words for a payload it cannot match.
                ShouldPanic::Expected(want)
                    if text == crate::os::panic_hook::NON_STRING_PAYLOAD =>
                {
                    Some(other(format!(
                        "expected panic with string value,\n found non-string value: \
                         `TypeId(..)`\n     expected substring: {want:?}"
                    )))
                }
                ShouldPanic::Expected(want) if text.contains(want) => None,
                // libtest's own words for a wrong message.
                ShouldPanic::Expected(want) => Some(other(format!(
                    "panic did not contain expected string\n      panic message: {text:?}\n \
                     expected substring: {want:?}"
                ))),
            }
        }
        (_, Ok(_)) => Some(other("test did not panic as expected".into())),
        (_, Err(e)) => {
            let retried = matches!(e, Error::Timeout { .. } | Error::Crashed { .. });
            Some(Failure::Other {
                message: e.to_string(),
                retried,
            })
        }
    }
}

impl Failure {
    fn retried(&self) -> bool {
        match self {
            Failure::Panicked { .. } | Failure::Returned(_) => true,
            Failure::Other { retried, .. } => *retried,
        }
    }

    /// The first line, for the note between attempts.
    fn summary(&self) -> &str {
        let whole = match self {
            Failure::Panicked { text, .. } => text,
            Failure::Returned(e) => e,
            Failure::Other { message, .. } => message,
        };
        whole.lines().next().unwrap_or("")
    }

    /// Hands the failure to libtest. A panic is printed the way std's hook
    /// prints one (on the test's thread, so it lands in the test's output)
    /// and then unwinds without a second print.
    fn report(self, attempts: u32, at: &Location<'_>) -> Result<(), TestError> {
        let note = if attempts > 1 {
            format!("\n(rwt: {attempts} attempts, none passed)")
        } else {
            String::new()
        };
        let (message, location) = match self {
            Failure::Returned(e) => return Err(TestError(format!("{e}{note}"))),
            Failure::Panicked { text, location } => (
                format!("{text}{note}"),
                location.unwrap_or_else(|| at.to_string()),
            ),
            Failure::Other { message, .. } => (format!("{message}{note}"), at.to_string()),
        };
        let thread = std::thread::current();
        let name = thread.name().unwrap_or("<unnamed>");
        eprintln!("thread '{name}' panicked at {location}:\n{message}");
        std::panic::resume_unwind(Box::new(message))
    }
}

/// `boom (src/lib.rs:3:5)` into `boom` and `src/lib.rs:3:5`: how the child
/// reports a panic's location (see `Error::Panicked`).
fn split_location(message: &str) -> (&str, Option<&str>) {
    let Some((text, rest)) = message.strip_suffix(')').and_then(|m| m.rsplit_once(" (")) else {
        return (message, None);
    };
    let mut parts = rest.rsplitn(3, ':');
    let (col, line, file) = (parts.next(), parts.next(), parts.next());
    let number =
        |s: Option<&str>| s.is_some_and(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()));
    if number(col) && number(line) && file.is_some_and(|f| !f.is_empty()) {
        (text, Some(rest))
    } else {
        (message, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_location_is_split_off_its_message() {
        assert_eq!(
            split_location("boom (src/lib.rs:3:5)"),
            ("boom", Some("src/lib.rs:3:5"))
        );
        assert_eq!(
            split_location("a (b) (tests/x.rs:10:9)"),
            ("a (b)", Some("tests/x.rs:10:9"))
        );
        assert_eq!(split_location("no location"), ("no location", None));
        assert_eq!(split_location("odd (x:y:z)"), ("odd (x:y:z)", None));
    }
}
