//! The one panic hook rwt installs, in the caller: it records a child
//! function's panics (message and location) for the result frame, keeps
//! quiet while rwt's own code panics on purpose, and hands every other
//! panic to the hook that was there before.

use std::cell::{Cell, RefCell};
use std::io::Write;
use std::os::fd::{BorrowedFd, RawFd};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

use crate::wire::frame::{write_frame, Kind};

/// What a panic whose payload is not a string reports as its text.
pub(crate) const NON_STRING_PAYLOAD: &str = "panic payload of a non-string type";

thread_local! {
    /// The result pipe, set on the thread that runs the function in a
    /// child (and nowhere else).
    static BODY_PIPE: Cell<Option<RawFd>> = const { Cell::new(None) };
    /// The last panic of the function: message and location.
    static PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
    /// Set while rwt runs code of its own that may panic on purpose (see
    /// [`quietly`]): the hook prints nothing.
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

/// Marks this thread as the one running a child's function, with its
/// result pipe (`None`: it no longer is).
pub(crate) fn set_body_pipe(pipe: Option<RawFd>) {
    BODY_PIPE.with(|b| b.set(pipe));
}

/// Forgets the last panic the hook recorded on this thread: it was caught,
/// and is not the next call's.
pub(crate) fn forget_last_panic() {
    PANIC.with(|p| p.borrow_mut().take());
}

/// Runs `f`, catching a panic without printing it: for a library call
/// that reports a condition only by panicking (tokio's `AsyncFd` on a
/// runtime built without I/O).
///
/// Under `panic = "abort"` nothing can be caught: the hook prints as usual
/// before the process aborts.
#[cfg_attr(not(all(feature = "tokio", target_os = "linux")), allow(dead_code))]
pub(crate) fn quietly<T>(f: impl FnOnce() -> T) -> std::thread::Result<T> {
    // Installing a hook is refused while this thread unwinds (a call made
    // from a `Drop`): then the panic is printed, and still caught.
    let quiet = !cfg!(panic = "abort") && !std::thread::panicking();
    if quiet {
        ensure_panic_hook();
        QUIET.with(|q| q.set(true));
    }
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    QUIET.with(|q| q.set(false));
    result
}

/// Installs, once per process and in the caller (never in a child: the
/// hook's lock may be held there by a thread that does not exist), a panic
/// hook that records a child function's panics (message and location)
/// instead of printing them: they come back as `Error::Panicked`. Every
/// other panic, in the caller or on threads the function started, goes to
/// the hook that was there before.
///
/// A program that replaces the hook after its first rwt call still gets
/// `Error::Panicked`, with the payload's message but no location.
pub(crate) fn ensure_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if QUIET.with(Cell::get) {
                return;
            }
            match BODY_PIPE.with(Cell::get) {
                None => previous(info),
                Some(pipe) => record_panic(info, pipe),
            }
        }));
    });
}

fn record_panic(info: &panic::PanicHookInfo<'_>, pipe: RawFd) {
    let text = payload_text(info.payload());
    let message = match info.location() {
        Some(loc) => format!("{text} ({}:{}:{})", loc.file(), loc.line(), loc.column()),
        None => text.to_owned(),
    };
    if cfg!(panic = "abort") {
        // Nothing will unwind back to `call`: send the frame now; the abort
        // that follows is not the function's crash.
        let _ = std::io::stdout().flush();
        // SAFETY: `pipe` is the result pipe's write end, open for the whole
        // life of the child (owned by `run`, which never returns).
        let fd = unsafe { BorrowedFd::borrow_raw(pipe) };
        let _ = write_frame(&fd, Kind::Panic, message.as_bytes());
    } else {
        PANIC.with(|p| *p.borrow_mut() = Some(message));
    }
}

/// The message of the panic that unwound with `payload`: what the hook
/// recorded (text and location) if it was this panic's, else the payload's
/// text alone (a `resume_unwind`, which runs no hook, after a panic that
/// was caught).
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    let text = payload_text(payload);
    match PANIC.with(|p| p.borrow_mut().take()) {
        Some(m)
            if m == text
                || m.strip_prefix(text)
                    .is_some_and(|rest| rest.starts_with(" (")) =>
        {
            m
        }
        _ => text.to_owned(),
    }
}

/// The text of a panic payload: `&str` and `String` as they are.
fn payload_text(payload: &(dyn std::any::Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        NON_STRING_PAYLOAD
    }
}
