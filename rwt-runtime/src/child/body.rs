//! What the child does between `fork()` and `_exit`: set itself apart from
//! the caller, run the function, send the result frame, leave.
//!
//! The child leaves only through `_exit`: no destructor or at-exit handler
//! of the caller's state runs twice, and it never returns into the caller's
//! code, even if rwt's own code here were to panic.

use std::cell::Cell;
use std::io::Write;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::panic::{self, AssertUnwindSafe};

use nix::sys::signal::{SigHandler, SigSet, SigmaskHow, Signal};
use nix::unistd::Pid;

use crate::os::panic_hook;
use crate::wire::codec;
use crate::wire::frame::{write_frame, Kind};
use crate::wire::protocol::{EXIT_CALLER_GONE, EXIT_INTERNAL};

/// What the child needs to know from the parent.
pub(crate) struct Setup {
    /// The caller's pid, to check that it is still alive after arming
    /// PR_SET_PDEATHSIG.
    pub parent: Pid,
    /// Whether the child should die with its caller.
    pub kill: bool,
    /// The result pipe's write end.
    pub pipe: OwnedFd,
    /// Descriptors of other rwt calls inherited from the caller.
    pub close: Vec<RawFd>,
    /// The attempt's memory and CPU limits.
    pub limits: crate::limits::Limits,
    /// What stdout and stderr become, if not the caller's (see
    /// `Checked::output`).
    pub output: Option<RawFd>,
}

thread_local! {
    /// Set in a pool worker, which goes on to serve more calls.
    static SERVES_MANY: Cell<bool> = const { Cell::new(false) };
}

/// Marks this thread as a pool worker's: [`call`] drops each result once it
/// is encoded, instead of leaving it to the end of the process.
pub(crate) fn serve_many() {
    SERVES_MANY.with(|s| s.set(true));
}

/// Runs in the child right after `fork`. Never returns.
pub(crate) fn run<R, F>(setup: Setup, body: F, failed: fn(&R) -> bool) -> !
where
    F: FnOnce() -> R,
    R: serde::Serialize,
{
    let code = match panic::catch_unwind(AssertUnwindSafe(move || {
        let pipe = setup.pipe;
        // Before the registered descriptors go: `output` is one of them.
        if let Some(out) = setup.output {
            // SAFETY: the caller keeps `out` open across the fork (it is
            // the attempt's output pipe, registered, closed only after the
            // attempt); this child closes it only below.
            let out = unsafe { BorrowedFd::borrow_raw(out) };
            let _ = nix::unistd::dup2_stdout(out);
            let _ = nix::unistd::dup2_stderr(out);
            // Calls the test body makes here must not name the test's
            // pipe, which is closed below (1 and 2 are the pipe now, and
            // their children inherit those).
            crate::os::test_output::set(None);
        }
        // Other calls' pipes (and this call's read end) go.
        for &fd in &setup.close {
            let _ = nix::unistd::close(fd);
        }
        prepare(setup.parent, setup.kill);
        // Armed after rwt's own setup: what the function and the encoding
        // of its value use counts, from what the child holds now.
        let armed = match setup.limits.arm(pipe.as_raw_fd()) {
            Ok(armed) => armed,
            Err(why) => {
                // Not run without a limit it was given.
                let _ = write_frame(&pipe, Kind::EncodeError, why.as_bytes());
                return;
            }
        };
        let (kind, body) = call(body, failed, pipe.as_raw_fd(), codec::encode_small);
        drop(armed);
        // What the function printed goes out before the result does, so the
        // caller never sees its own later output overtaken by the child's.
        let _ = std::io::stdout().flush();
        let _ = write_frame(&pipe, kind, body.as_slice());
    })) {
        Ok(()) => 0,
        Err(_) => EXIT_INTERNAL,
    };
    exit_now(code)
}

/// Ends the child at once: no destructors, no at-exit handlers, no
/// flushing of the caller's buffers (the child flushes its own stdout first).
pub(crate) fn exit_now(code: i32) -> ! {
    // SAFETY: _exit is async-signal-safe and takes no pointers; it ends the
    // process without running any code of the caller's.
    unsafe { nix::libc::_exit(code) }
}

/// Child hygiene before user code runs.
pub(crate) fn prepare(parent: Pid, kill: bool) {
    // Own process group: a group kill reaches everything the function
    // starts, and the terminal's Ctrl-C goes to the caller, not here.
    let _ = nix::unistd::setpgid(Pid::from_raw(0), Pid::from_raw(0));
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if kill {
        // Die with the caller. The caller may already be gone (then the
        // signal was never armed): check after arming.
        let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
        if nix::unistd::getppid() != parent {
            exit_now(EXIT_CALLER_GONE);
        }
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = (parent, kill);
    reset_sigterm();
    // stdin is /dev/null: a child in its own group that read the terminal
    // would be stopped by SIGTTIN and hang until its deadline.
    if let Ok(null) = nix::fcntl::open(
        c"/dev/null",
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    ) {
        if null.as_raw_fd() == 0 {
            // fd 0 was closed and open took it: it is stdin now. Keep it,
            // and let programs the function runs inherit it.
            let _ = nix::fcntl::fcntl(
                &null,
                nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
            );
            std::mem::forget(null);
        } else {
            let _ = nix::unistd::dup2_stdin(&null);
        }
    }
    // A crashing child does not dump core: a large dump would hold the reap
    // for seconds.
    if let Ok((_, hard)) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_CORE)
    {
        let _ = nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_CORE, 0, hard);
    }
}

/// SIGTERM must be able to end the child even if the caller installed a
/// handler, ignored it, or blocked it (the function may install its own).
pub(crate) fn reset_sigterm() {
    // SAFETY: SIG_DFL installs no handler code, so no handler can observe a
    // half-set-up state.
    let _ = unsafe { nix::sys::signal::signal(Signal::SIGTERM, SigHandler::SigDfl) };
    let mut term = SigSet::empty();
    term.add(Signal::SIGTERM);
    let _ = nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_UNBLOCK, Some(&term), None);
}

/// Runs the function and builds the frame for its outcome: kind and body,
/// the body made by `encode` (or a panic's text).
pub(crate) fn call<R, F, E>(
    body: F,
    failed: fn(&R) -> bool,
    pipe: RawFd,
    encode: fn(&R) -> Result<E, String>,
) -> (Kind, E)
where
    F: FnOnce() -> R,
    R: serde::Serialize,
    E: From<String>,
{
    // A panic the last call caught (its message recorded by the hook) is
    // not this call's: a body that ends in `resume_unwind`, which runs no
    // hook, must not report it. Only a pool worker has a last call; a fork
    // child touches PANIC only when it panics (a thread-local with a
    // destructor costs page faults on first use there).
    if SERVES_MANY.with(Cell::get) {
        panic_hook::forget_last_panic();
    }
    panic_hook::set_body_pipe(Some(pipe));
    let outcome = panic::catch_unwind(AssertUnwindSafe(body));
    // The value's `Serialize` is the user's code too: a panic there is the
    // encoding failing (recorded by the hook, not printed), not a crash.
    let encoded = outcome.as_ref().ok().map(|value| {
        panic::catch_unwind(AssertUnwindSafe(|| encode(value))).unwrap_or_else(|payload| {
            let message = panic_hook::panic_message(&*payload);
            std::mem::forget(payload);
            Err(format!(
                "could not encode the result: its Serialize panicked: {message}"
            ))
        })
    });
    panic_hook::set_body_pipe(None);
    match outcome {
        Ok(value) => {
            let frame = match encoded.expect("encoded when the body returned") {
                Ok(bytes) if failed(&value) => (Kind::Failed, bytes),
                Ok(bytes) => (Kind::Value, bytes),
                Err(detail) => (Kind::EncodeError, detail.into()),
            };
            if SERVES_MANY.with(Cell::get) {
                drop(value);
            } else {
                // The process ends right after and its memory goes with it;
                // no destructor runs (in a fork child, one could wait for
                // a lock held by a thread that was not copied).
                std::mem::forget(value);
            }
            frame
        }
        Err(payload) => {
            let message = panic_hook::panic_message(&*payload);
            std::mem::forget(payload);
            (Kind::Panic, message.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A panic that one call caught leaves its message with the hook; a
    /// later call that ends in `resume_unwind` (no hook runs) must not
    /// report it.
    #[test]
    fn a_caught_panic_is_not_the_next_calls() {
        panic_hook::ensure_panic_hook();
        // As in a pool worker, which serves one call after another.
        serve_many();
        let catches = || {
            let _ = panic::catch_unwind(|| panic!("secret-1"));
            0u8
        };
        let (kind, _) = call(catches, |_| false, -1, codec::encode);
        assert_eq!(kind, Kind::Value);
        let resumes = || -> u8 { panic::resume_unwind(Box::new(5u8)) };
        let (kind, message) = call(resumes, |_| false, -1, codec::encode);
        assert_eq!(kind, Kind::Panic);
        let message = String::from_utf8(message).unwrap();
        assert_eq!(message, "panic payload of a non-string type");
    }

    /// Within one call too: a caught panic, then a `resume_unwind` of
    /// another payload, reports the payload that unwound.
    #[test]
    fn a_caught_panic_is_not_a_later_unwind_of_the_same_call() {
        panic_hook::ensure_panic_hook();
        let body = || -> u8 {
            let _ = panic::catch_unwind(|| panic!("inner"));
            panic::resume_unwind(Box::new("outer"))
        };
        let (kind, message) = call(body, |_| false, -1, codec::encode);
        assert_eq!(kind, Kind::Panic);
        assert_eq!(String::from_utf8(message).unwrap(), "outer");
    }
}
