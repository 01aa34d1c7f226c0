//! The caller side of `#[rwt::test]`: run a test's attempts, hand what
//! the child printed to libtest as the test's own output, and turn the
//! outcome into libtest's verdict (return, a panic, or an `Err`).
//!
//! libtest captures a test's output by swapping what `print!` writes to,
//! on the test's thread only: a child process writes to the real
//! descriptors 1 and 2 and would bypass it. So while libtest captures, each
//! attempt's child gets a pipe of its own on 1 and 2 (the spawn sets them;
//! [`output`] tells it which), a thread here collects what comes through,
//! and the test's thread `print!`s it once the attempt is over. Under
//! `--nocapture` the child keeps the terminal and prints as it goes.

use std::cell::Cell;
use std::collections::VecDeque;
use std::fmt;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::panic::Location;

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag};
use nix::poll::{PollFd, PollFlags, PollTimeout};

use crate::registry::{self, RegisteredFd};
use crate::Error;

thread_local! {
    /// The write end of the current attempt's output pipe, while a test's
    /// attempt runs on this thread.
    static OUTPUT: Cell<Option<RawFd>> = const { Cell::new(None) };
}

/// Where a child started by a call on this thread sends its stdout and
/// stderr: the output pipe of the `#[rwt::test]` attempt running here, or
/// nowhere special (`None`: the child inherits the caller's).
pub(crate) fn output() -> Option<RawFd> {
    OUTPUT.with(Cell::get)
}

/// In a fork child: the pipe's descriptor is about to be closed (the
/// child's 1 and 2 are the pipe now), so calls made there must not use it.
pub(crate) fn forget_output() {
    OUTPUT.with(|o| o.set(None));
}

/// Most of a test's output kept from its start, and from its end; what
/// lies between is counted and left out (a test that floods its output
/// must not flood the test binary's memory through libtest's buffer).
const KEEP_HEAD: usize = 1 << 20;
const KEEP_TAIL: usize = 1 << 20;

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
        let failure = match judge(spec, got) {
            None => return Ok(()),
            Some(failure) => failure,
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
        OUTPUT.with(|o| o.set(output));
        let got = attempt();
        OUTPUT.with(|o| o.set(None));
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
                ShouldPanic::Expected(want) if text == crate::child::NON_STRING_PAYLOAD => {
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

/// One attempt's output pipe, and the thread that drains it.
struct Capture {
    /// The end the children write to; the caller keeps it for the spawn.
    write: RegisteredFd,
    /// Written to when the attempt is over.
    stop: RegisteredFd,
    reader: std::thread::JoinHandle<Collected>,
}

impl Capture {
    fn start() -> std::io::Result<Capture> {
        let pipe = || {
            registry::pair_above_stdio(nix::unistd::pipe2(OFlag::O_CLOEXEC)?)
                .map_err(std::io::Error::from)
        };
        // Registered under the list's lock, as they are made: a child that
        // another thread forks meanwhile closes them.
        let (read, write, stop_read, stop) = {
            let mut fds = registry::fds();
            let (read, write) = pipe()?;
            let (stop_read, stop) = pipe()?;
            (
                RegisteredFd::new(&mut fds, read),
                RegisteredFd::new(&mut fds, write),
                RegisteredFd::new(&mut fds, stop_read),
                RegisteredFd::new(&mut fds, stop),
            )
        };
        let reader = std::thread::Builder::new()
            .name("rwt-test-output".into())
            .spawn(move || collect(&read, &stop_read))?;
        Ok(Capture {
            write,
            stop,
            reader,
        })
    }

    fn write_fd(&self) -> RawFd {
        self.write.fd().as_raw_fd()
    }

    /// Everything the attempt's children wrote (as far as it was kept).
    /// The attempt has ended: its child is reaped, so what it wrote is in
    /// the pipe. A process it left behind may still hold the pipe open, so
    /// the reader takes what is there and stops, rather than wait for EOF.
    fn finish(self) -> String {
        drop(self.write);
        let _ = nix::unistd::write(self.stop.fd(), b"x");
        let collected = self.reader.join().unwrap_or_default();
        collected.text()
    }
}

/// Output kept: the head, the tail, and how much between was left out.
#[derive(Default)]
struct Collected {
    head: Vec<u8>,
    tail: VecDeque<u8>,
    skipped: u64,
}

impl Collected {
    fn push(&mut self, mut data: &[u8]) {
        let room = KEEP_HEAD - self.head.len();
        let now = room.min(data.len());
        self.head.extend_from_slice(&data[..now]);
        data = &data[now..];
        self.tail.extend(data);
        if self.tail.len() > KEEP_TAIL {
            let excess = self.tail.len() - KEEP_TAIL;
            self.tail.drain(..excess);
            self.skipped += excess as u64;
        }
    }

    fn text(self) -> String {
        let mut text = String::from_utf8_lossy(&self.head).into_owned();
        if self.skipped > 0 {
            text.push_str(&format!(
                "\n[rwt: {} bytes of the test's output left out]\n",
                self.skipped
            ));
        }
        let tail: Vec<u8> = self.tail.into();
        text.push_str(&String::from_utf8_lossy(&tail));
        text
    }
}

/// Reads the pipe until every writer is gone, or until told to stop; then
/// whatever is still in it.
fn collect(read: &RegisteredFd, stop: &RegisteredFd) -> Collected {
    let mut kept = Collected::default();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let mut fds = [
            PollFd::new(read.fd().as_fd(), PollFlags::POLLIN),
            PollFd::new(stop.fd().as_fd(), PollFlags::POLLIN),
        ];
        match nix::poll::poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(_) => return kept,
        }
        let stopping = fds[1].any().unwrap_or(false);
        if stopping {
            let _ = nix::fcntl::fcntl(read.fd(), FcntlArg::F_SETFL(OFlag::O_NONBLOCK));
        }
        // After the stop, what the pipe holds, and no more: a process the
        // attempt left behind (`kill = false`, or one that left the group)
        // could keep it full for ever.
        let mut drain = DRAIN_AFTER_STOP;
        loop {
            match nix::unistd::read(read.fd(), &mut buf) {
                Ok(0) => return kept,
                Ok(n) => {
                    kept.push(&buf[..n]);
                    drain = drain.saturating_sub(n);
                }
                Err(Errno::EINTR) => continue,
                // Drained (after the stop), or nothing more to read now.
                Err(_) if stopping => return kept,
                Err(_) => break,
            }
            if !stopping {
                break;
            }
            if drain == 0 {
                return kept;
            }
        }
    }
}

/// The most read after the stop: more than a pipe holds (1 MiB at most
/// unless its size was raised), so everything written before the attempt
/// ended is read.
const DRAIN_AFTER_STOP: usize = 4 << 20;

/// Runs `f` on a thread started with `pthread_create` rather than
/// `std::thread`, which would hand it libtest's capture of the caller's
/// `print!`: a fork-mode child forked there would inherit that capture and
/// print into a buffer nobody reads. Waits for it; a panic in `f` goes on
/// in the caller.
fn on_plain_thread<T: Send, F: FnOnce() -> T + Send>(f: F) -> T {
    use nix::libc;
    use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

    struct Job<F, T> {
        f: Option<F>,
        out: Option<std::thread::Result<T>>,
    }

    extern "C" fn run<F: FnOnce() -> T, T>(job: *mut libc::c_void) -> *mut libc::c_void {
        // SAFETY: `job` is the `Job` that `on_plain_thread` passed to
        // pthread_create; it stays alive, and untouched by the creator,
        // until the creator has joined this thread.
        let job = unsafe { &mut *job.cast::<Job<F, T>>() };
        if let Some(f) = job.f.take() {
            // Nothing unwinds out of an `extern "C"` function.
            job.out = Some(catch_unwind(AssertUnwindSafe(f)));
        }
        std::ptr::null_mut()
    }

    let mut job = Job {
        f: Some(f),
        out: None,
    };
    let mut thread: libc::pthread_t = 0;
    // SAFETY: `run::<F, T>` matches the start routine's signature, and its
    // argument points at `job`, which outlives the thread: it is joined
    // below before `job` is read or dropped.
    let rc = unsafe {
        libc::pthread_create(
            &mut thread,
            std::ptr::null(),
            run::<F, T>,
            std::ptr::from_mut(&mut job).cast(),
        )
    };
    if rc != 0 {
        // No thread to be had: run it here (its child's `print!` may then
        // be lost to libtest's capture, which is all that is at stake).
        let f = job.f.take().expect("not started");
        return f();
    }
    // SAFETY: `thread` was created above, joinable, and is joined once.
    unsafe { libc::pthread_join(thread, std::ptr::null_mut()) };
    match job.out.take().expect("the thread ran the job") {
        Ok(value) => value,
        Err(panic) => resume_unwind(panic),
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

    #[test]
    fn a_flood_keeps_its_head_and_tail_and_counts_the_rest() {
        let mut kept = Collected::default();
        kept.push(b"first line\n");
        for _ in 0..64 {
            kept.push(&[b'.'; 64 << 10]);
        }
        kept.push(b"last line\n");
        assert_eq!(kept.head.len(), KEEP_HEAD);
        assert_eq!(kept.tail.len(), KEEP_TAIL);
        let skipped = kept.skipped;
        assert_eq!(
            skipped as usize,
            11 + 64 * (64 << 10) + 10 - KEEP_HEAD - KEEP_TAIL
        );
        let text = kept.text();
        assert!(text.starts_with("first line\n"));
        assert!(text.ends_with("last line\n"));
        assert!(text.contains(&format!(
            "[rwt: {skipped} bytes of the test's output left out]"
        )));
    }

    #[test]
    fn a_plain_thread_returns_or_panics_back() {
        assert_eq!(on_plain_thread(|| 7), 7);
        // `resume_unwind`: a panic that runs no hook, so prints nothing.
        let caught = std::panic::catch_unwind(|| {
            on_plain_thread(|| -> u8 { std::panic::resume_unwind(Box::new("inner")) })
        });
        let payload = caught.unwrap_err();
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"inner"));
    }
}
