//! The signal handlers of the limits: they tell the caller which limit
//! the attempt went over, and leave. Everything here runs in a signal
//! handler, so it is async-signal-safe: atomics, write(2), _exit.

use nix::libc;
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU8, Ordering};

use crate::wire::frame::{self, Kind};

/// Exit code of a child that went over a limit (after telling the
/// caller so on the channel).
const EXIT_LIMIT: i32 = 124;

/// Where the handlers report, while a limit is armed.
pub(super) static REPORT_FD: AtomicI32 = AtomicI32::new(-1);
/// The process that armed the limits: a process it forked (a nested
/// call, the function's own `fork`) inherits the handlers and this
/// static, and must not report on its parent's channel.
pub(super) static ARMED_PID: AtomicI32 = AtomicI32::new(0);
pub(super) static MEMORY_ARMED: AtomicBool = AtomicBool::new(false);
pub(super) static CPU_ARMED: AtomicBool = AtomicBool::new(false);
/// Who may write on the channel: the handler that reports a limit
/// takes it (ARMED to REPORTING), the code that disarms takes it back
/// (ARMED to IDLE) before the value's frame is written; never both.
pub(super) static STATE: AtomicU8 = AtomicU8::new(IDLE);
pub(super) const IDLE: u8 = 0;
pub(super) const ARMED: u8 = 1;
pub(super) const REPORTING: u8 = 2;

/// An `SA_SIGINFO` action running `on`.
pub(super) fn handler(
    on: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void),
) -> SigAction {
    SigAction::new(
        SigHandler::SigAction(on),
        SaFlags::SA_SIGINFO,
        SigSet::empty(),
    )
}

/// Whether the signal described by `info` reached the process that
/// armed the limits, with `flag` set.
/// Takes the channel, for the one handler that reports.
fn armed_here(flag: &AtomicBool) -> bool {
    // SAFETY: getpid takes no arguments and cannot fail.
    flag.load(Ordering::SeqCst)
        && ARMED_PID.load(Ordering::SeqCst) == unsafe { libc::getpid() }
        && STATE
            .compare_exchange(ARMED, REPORTING, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
}

/// Tells the caller which limit, and leaves: async-signal-safe (a
/// prepared header written with write(2), then _exit).
fn report_and_leave(kind: Kind) -> ! {
    let header = frame::header(kind, 0);
    let fd = REPORT_FD.load(Ordering::SeqCst);
    let mut sent = 0;
    while sent < header.len() {
        // SAFETY: write(2) from a buffer on this stack.
        let n = unsafe { libc::write(fd, header[sent..].as_ptr().cast(), header.len() - sent) };
        match n {
            n if n > 0 => sent += n.unsigned_abs(),
            _ if nix::errno::Errno::last_raw() == libc::EINTR => {}
            _ => break,
        }
    }
    // SAFETY: _exit is async-signal-safe; no code of the caller's runs.
    unsafe { libc::_exit(EXIT_LIMIT) }
}

/// Not ours: the signal's default action, as if no handler were there
/// (the signal is blocked in here, so it lands once this returns).
fn default_action(signal: libc::c_int) {
    // SAFETY: signal(2) with SIG_DFL and raise(3) are async-signal-safe.
    unsafe {
        libc::signal(signal, libc::SIG_DFL);
        libc::raise(signal);
    }
}

/// `SIGABRT` while a memory limit is armed: the limit if the process
/// aborted itself (`abort()` raises it: `SI_TKILL` from this pid) right
/// after a system call was refused memory (`errno` still `ENOMEM`).
pub(super) extern "C" fn on_abort(
    signal: libc::c_int,
    info: *mut libc::siginfo_t,
    _: *mut libc::c_void,
) {
    let refused = nix::errno::Errno::last_raw() == libc::ENOMEM;
    // SAFETY: the kernel passes a valid siginfo_t to an SA_SIGINFO
    // handler; si_pid is filled in for SI_TKILL.
    let raised_here =
        unsafe { (*info).si_code == libc::SI_TKILL && (*info).si_pid() == libc::getpid() };
    if refused && raised_here && armed_here(&MEMORY_ARMED) {
        report_and_leave(Kind::MemoryLimit)
    }
    default_action(signal);
}

/// `SIGPROF` while a CPU limit is armed: the limit if the kernel sent
/// it (`SI_KERNEL`: the timer expired), not a `kill` or `raise`.
pub(super) extern "C" fn on_prof(
    signal: libc::c_int,
    info: *mut libc::siginfo_t,
    _: *mut libc::c_void,
) {
    // SAFETY: the kernel passes a valid siginfo_t to an SA_SIGINFO handler.
    let from_timer = unsafe { (*info).si_code } == libc::SI_KERNEL;
    if from_timer && armed_here(&CPU_ARMED) {
        report_and_leave(Kind::CpuLimit)
    }
    // SAFETY: getpid takes no arguments and cannot fail.
    let mine = ARMED_PID.load(Ordering::SeqCst) == unsafe { libc::getpid() };
    if from_timer && mine {
        // The timer fired as the call was being disarmed (or another
        // handler is reporting): the attempt is over either way.
        return;
    }
    default_action(signal);
}
