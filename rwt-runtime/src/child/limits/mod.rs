//! Limits beyond time: the memory and CPU one attempt may use.
//!
//! Both are armed in the child, around the function (and the encoding of
//! its value), and enforced by the kernel; the child itself tells the
//! caller which limit it went over, with a frame on the result channel, and
//! only when it knows:
//!
//! - **Memory**: `RLIMIT_DATA` set to what the child's data segment holds
//!   when the attempt starts plus the limit. The kernel refuses any mapping
//!   past it (heap, anonymous private mappings, thread stacks), whether the
//!   memory grows step by step or in one huge allocation, before the pages
//!   exist: the machine is never short of memory because of the child. The
//!   allocator then fails, and Rust aborts. rwt's `SIGABRT` handler, armed
//!   with the limit, names the limit when the process aborted itself with
//!   `errno` still `ENOMEM` from the refused mapping.
//! - **CPU**: `ITIMER_PROF`, the kernel's timer of the process's user and
//!   system time, at the limit. rwt's `SIGPROF` handler names the limit
//!   when the kernel sent the signal (the timer expired), not `kill`.
//!
//! Either handler, on a signal that is not its limit, does what the
//! signal's default action would. A process the child forks inherits the
//! handlers but not the right to report: only the process that armed them
//! does.

use nix::libc;
use nix::sys::signal::{sigaction, SigAction, SigSet, Signal};
use std::os::fd::RawFd;
use std::sync::atomic::Ordering;

use crate::limits::Limits;
use crate::os::procfs::{read_small, statm_data, strict_overcommit};

mod report;

use report::{
    handler, on_abort, on_prof, ARMED, ARMED_PID, CPU_ARMED, IDLE, MEMORY_ARMED, REPORTING,
    REPORT_FD, STATE,
};

/// Limits in force until dropped; dropping puts back what was there.
pub(crate) struct Armed {
    data: Option<libc::rlimit>,
    abort: Option<SigAction>,
    prof: Option<SigAction>,
    mask: Option<SigSet>,
}

impl Limits {
    /// Arms the limits for the code that runs on until the guard drops;
    /// a limit exceeded is reported on `report`. An error says why a
    /// memory limit could not be enforced: the attempt must not run
    /// without it.
    pub(crate) fn arm(self, report: RawFd) -> Result<Armed, &'static str> {
        let mut armed = Armed {
            data: None,
            abort: None,
            prof: None,
            mask: None,
        };
        if self.memory.is_none() && self.cpu.is_none() {
            return Ok(armed);
        }
        REPORT_FD.store(report, Ordering::SeqCst);
        // SAFETY: getpid takes no arguments and cannot fail.
        ARMED_PID.store(unsafe { libc::getpid() }, Ordering::SeqCst);
        STATE.store(ARMED, Ordering::SeqCst);
        if let Some(bytes) = self.memory {
            arm_memory(&mut armed, bytes)?;
        }
        if let Some(cpu) = self.cpu {
            arm_cpu(&mut armed, cpu);
        }
        Ok(armed)
    }
}

fn arm_cpu(armed: &mut Armed, cpu: std::time::Duration) {
    CPU_ARMED.store(true, Ordering::SeqCst);
    // Replaces whatever a fork child inherited (a profiler's handler in
    // the caller would swallow the signal).
    // SAFETY: the handler is async-signal-safe (see `on_prof`).
    armed.prof = unsafe { sigaction(Signal::SIGPROF, &handler(on_prof)) }.ok();
    // A thread that blocks it (a fork child's only thread may) would
    // leave it pending for ever.
    let mut prof = SigSet::empty();
    prof.add(Signal::SIGPROF);
    let mut old = SigSet::empty();
    if nix::sys::signal::pthread_sigmask(
        nix::sys::signal::SigmaskHow::SIG_UNBLOCK,
        Some(&prof),
        Some(&mut old),
    )
    .is_ok()
    {
        armed.mask = Some(old);
    }
    set_prof_timer(cpu);
}

/// In an exec child or pool worker, once, before its first memory
/// limit: makes Rust's allocation-failure hook print no backtrace.
///
/// With `RUST_BACKTRACE` set, that hook prints a backtrace between the
/// refused allocation and the abort, and the system calls of printing
/// it leave `errno` at something else than `ENOMEM`: the refusal could
/// no longer be told from any other abort. std reads the variable once
/// per process, on the first panic that reaches its default hook (or
/// the first failed allocation), and caches the answer; the stable way
/// to set it (`std::panic::set_backtrace_style`) does not exist yet. So
/// this process panics once, here, with the variable at `0` and stderr
/// on `/dev/null`, and puts both back: the function and the programs
/// it runs still see `RUST_BACKTRACE` as it was. What changes: a panic
/// on a thread the function started prints no backtrace in this
/// process (the function's own panics come back as `Error::Panicked`,
/// with their location, as before).
///
/// Not in a fork child: it shares the caller's panic hook (which may
/// be the program's own) and the caller's cached answer.
///
/// Returns whether it changed anything (the environment's memory, to a
/// pool worker's baseline).
pub(crate) fn quiet_oom_backtrace() -> bool {
    static DONE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if DONE.swap(true, Ordering::SeqCst) || cfg!(panic = "abort") {
        return false;
    }
    let Some(value) = std::env::var_os("RUST_BACKTRACE") else {
        return false;
    };
    if value == "0" {
        return false;
    }
    let Ok(saved) = nix::unistd::dup(std::io::stderr()) else {
        return false;
    };
    let Ok(null) = nix::fcntl::open(
        c"/dev/null",
        nix::fcntl::OFlag::O_WRONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    ) else {
        return false;
    };
    if nix::unistd::dup2_stderr(&null).is_err() {
        return false;
    }
    // Between calls, on the worker's only thread of its own: nothing
    // else reads the environment now.
    std::env::set_var("RUST_BACKTRACE", "0");
    let _ = std::panic::catch_unwind(|| std::panic::panic_any("rwt: caching the backtrace style"));
    std::env::set_var("RUST_BACKTRACE", &value);
    if nix::unistd::dup2_stderr(&saved).is_err() {
        // Everything the process would print would be lost: it leaves
        // (the call is `Crashed`), rather than serve on muted.
        crate::child::body::exit_now(crate::wire::protocol::EXIT_INTERNAL);
    }
    true
}

fn arm_memory(armed: &mut Armed, bytes: u64) -> Result<(), &'static str> {
    // What `RLIMIT_DATA` counts, plus the main stack (`statm` adds them
    // up; `status` has them apart, but costs ten times as much to
    // read): the budget is the limit plus the stack's size at the start.
    let mut statm = [0u8; 256];
    let Some(mapped) = read_small(c"/proc/self/statm", &mut statm).and_then(statm_data) else {
        return Err("the memory limit could not be armed: /proc/self/statm is unreadable");
    };
    // Memory the allocator holds free is counted in the mapped size but
    // can be handed out again without a new mapping: it comes out of
    // the budget.
    let start = mapped.saturating_sub(allocator_free());
    let mut old = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into `old`.
    if unsafe { libc::getrlimit(libc::RLIMIT_DATA, &mut old) } != 0 {
        return Err("the memory limit could not be armed: getrlimit failed");
    }
    let want = start.saturating_add(bytes);
    let below = |limit: libc::rlim_t| limit != libc::RLIM_INFINITY && limit < want;
    if below(old.rlim_max) || below(old.rlim_cur) {
        // A lower limit set by someone else binds first (and is not
        // ours to raise): an abort under it would not be ours to name,
        // so none is armed.
        return Ok(());
    }
    let new = libc::rlimit {
        rlim_cur: want,
        rlim_max: old.rlim_max,
    };
    // SAFETY: setrlimit reads one rlimit.
    if unsafe { libc::setrlimit(libc::RLIMIT_DATA, &new) } != 0 {
        return Err("the memory limit could not be armed: setrlimit failed");
    }
    armed.data = Some(old);
    // Refusals rwt's limit did not make, whose aborts it must not name:
    // under strict overcommit the system refuses memory below the
    // limit, and a finite RLIMIT_AS refuses address space.
    let mut space = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into `space`.
    let bounded_space = unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut space) } != 0
        || space.rlim_cur != libc::RLIM_INFINITY;
    if bounded_space || strict_overcommit() {
        return Ok(());
    }
    MEMORY_ARMED.store(true, Ordering::SeqCst);
    // SAFETY: the handler is async-signal-safe (see `on_abort`).
    armed.abort = unsafe { sigaction(Signal::SIGABRT, &handler(on_abort)) }.ok();
    Ok(())
}

/// Bytes glibc's malloc holds free in its arenas (0 with another C
/// library). A walk of its free lists: only with a memory limit.
fn allocator_free() -> u64 {
    #[cfg(target_env = "gnu")]
    {
        // SAFETY: mallinfo2 takes no arguments and returns a struct by
        // value; after fork, glibc's handlers left its locks usable.
        let info = unsafe { libc::mallinfo2() };
        u64::try_from(info.fordblks).unwrap_or(0)
    }
    #[cfg(not(target_env = "gnu"))]
    0
}

impl Drop for Armed {
    fn drop(&mut self) {
        // The channel back from any handler: if one is reporting, it
        // leaves the process at once; nothing more may be written.
        if STATE
            .compare_exchange(ARMED, IDLE, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
            && STATE.load(Ordering::SeqCst) == REPORTING
        {
            loop {
                // SAFETY: pause takes no arguments; the handler's _exit
                // ends the wait with the process.
                unsafe { libc::pause() };
            }
        }
        if CPU_ARMED.load(Ordering::SeqCst) {
            // The timer first: a signal of it already on its way still
            // finds the handler armed, and the attempt did reach it.
            set_prof_timer(std::time::Duration::ZERO);
            CPU_ARMED.store(false, Ordering::SeqCst);
        }
        if let Some(old) = self.prof.take() {
            // SAFETY: puts back the action that was there before.
            let _ = unsafe { sigaction(Signal::SIGPROF, &old) };
        }
        if let Some(old) = self.mask.take() {
            let _ = old.thread_set_mask();
        }
        if let Some(old) = self.data.take() {
            // SAFETY: setrlimit reads one rlimit.
            unsafe { libc::setrlimit(libc::RLIMIT_DATA, &old) };
        }
        MEMORY_ARMED.store(false, Ordering::SeqCst);
        if let Some(old) = self.abort.take() {
            // SAFETY: puts back the action that was there before.
            let _ = unsafe { sigaction(Signal::SIGABRT, &old) };
        }
        ARMED_PID.store(0, Ordering::SeqCst);
    }
}

/// Arms (or, with zero, disarms) the process's CPU-time timer.
fn set_prof_timer(after: std::time::Duration) {
    let value = libc::timeval {
        tv_sec: libc::time_t::try_from(after.as_secs()).unwrap_or(libc::time_t::MAX),
        tv_usec: libc::suseconds_t::from(after.subsec_micros()),
    };
    // A limit below a microsecond still fires.
    let value = if after.is_zero() || value.tv_sec > 0 || value.tv_usec > 0 {
        value
    } else {
        libc::timeval {
            tv_sec: 0,
            tv_usec: 1,
        }
    };
    let timer = libc::itimerval {
        it_interval: libc::timeval {
            tv_sec: 0,
            tv_usec: 0,
        },
        it_value: value,
    };
    // SAFETY: setitimer reads one itimerval; the old value is not asked.
    unsafe { libc::setitimer(libc::ITIMER_PROF, &timer, std::ptr::null_mut()) };
}
