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

use std::fmt;
#[cfg(not(target_os = "linux"))]
use std::os::fd::RawFd;
use std::time::Duration;

/// A limit beyond time that an attempt went over: see
/// [`Error::LimitExceeded`].
///
/// [`Error::LimitExceeded`]: crate::Error::LimitExceeded
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum Limit {
    /// The attempt tried to add more than `bytes` of memory to what its
    /// child started with.
    Memory {
        /// The limit, in bytes.
        bytes: u64,
    },
    /// The attempt used more than `secs` seconds of CPU time (user and
    /// system).
    Cpu {
        /// The limit, in seconds.
        secs: f64,
    },
}

impl fmt::Display for Limit {
    /// "memory limit of 512 MiB", "CPU limit of 2 s".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Limit::Memory { bytes } => write!(f, "memory limit of {}", Bytes(bytes)),
            Limit::Cpu { secs } => write!(f, "CPU limit of {secs} s"),
        }
    }
}

/// A byte count in the largest binary unit that states it exactly.
struct Bytes(u64);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (shift, unit) in [(40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")] {
            if self.0 >= 1 << shift && self.0 % (1 << shift) == 0 {
                return write!(f, "{} {unit}", self.0 >> shift);
            }
        }
        write!(f, "{} bytes", self.0)
    }
}

/// The limits of one attempt, as the child arms them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Limits {
    /// Bytes the attempt may add to the child's data segment.
    pub memory: Option<u64>,
    /// CPU time the attempt may use.
    pub cpu: Option<Duration>,
}

#[cfg(target_os = "linux")]
pub(crate) use arm::quiet_oom_backtrace;

/// Whether the system runs with strict overcommit (then it may refuse
/// memory below a limit, and rwt names no refusal). Read once per process:
/// the caller reads it when a call first has a memory limit, so that its
/// fork children find it known; a change of the setting afterwards is not
/// seen.
#[cfg(target_os = "linux")]
pub(crate) fn strict_overcommit() -> bool {
    use std::sync::atomic::{AtomicU8, Ordering};
    // 0: not read yet; 1: no; 2: yes.
    static STRICT: AtomicU8 = AtomicU8::new(0);
    match STRICT.load(Ordering::Relaxed) {
        0 => {
            let strict = arm::read_strict_overcommit();
            STRICT.store(if strict { 2 } else { 1 }, Ordering::Relaxed);
            strict
        }
        known => known == 2,
    }
}

#[cfg(target_os = "linux")]
mod arm {
    use super::Limits;
    use crate::codec::{self, Kind};
    use nix::libc;
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    use std::os::fd::RawFd;
    use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU8, Ordering};

    /// Exit code of a child that went over a limit (after telling the
    /// caller so on the channel).
    const EXIT_LIMIT: i32 = 124;

    /// Where the handlers report, while a limit is armed.
    static REPORT_FD: AtomicI32 = AtomicI32::new(-1);
    /// The process that armed the limits: a process it forked (a nested
    /// call, the function's own `fork`) inherits the handlers and this
    /// static, and must not report on its parent's channel.
    static ARMED_PID: AtomicI32 = AtomicI32::new(0);
    static MEMORY_ARMED: AtomicBool = AtomicBool::new(false);
    static CPU_ARMED: AtomicBool = AtomicBool::new(false);
    /// Who may write on the channel: the handler that reports a limit
    /// takes it (ARMED to REPORTING), the code that disarms takes it back
    /// (ARMED to IDLE) before the value's frame is written; never both.
    static STATE: AtomicU8 = AtomicU8::new(IDLE);
    const IDLE: u8 = 0;
    const ARMED: u8 = 1;
    const REPORTING: u8 = 2;

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

    /// An `SA_SIGINFO` action running `on`.
    fn handler(
        on: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void),
    ) -> SigAction {
        SigAction::new(
            SigHandler::SigAction(on),
            SaFlags::SA_SIGINFO,
            SigSet::empty(),
        )
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
        let _ =
            std::panic::catch_unwind(|| std::panic::panic_any("rwt: caching the backtrace style"));
        std::env::set_var("RUST_BACKTRACE", &value);
        if nix::unistd::dup2_stderr(&saved).is_err() {
            // Everything the process would print would be lost: it leaves
            // (the call is `Crashed`), rather than serve on muted.
            crate::child::exit_now(crate::child::EXIT_INTERNAL);
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
        if bounded_space || super::strict_overcommit() {
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
        let header = codec::header(kind, 0);
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
    extern "C" fn on_abort(signal: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
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
    extern "C" fn on_prof(signal: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
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

    /// The start of a small file, read into `buf` without allocating (a
    /// fork child's allocations cost copy-on-write faults).
    fn read_small<'b>(path: &std::ffi::CStr, buf: &'b mut [u8]) -> Option<&'b [u8]> {
        // SAFETY: open(2) of a NUL-terminated path.
        let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
        if fd < 0 {
            return None;
        }
        let mut len = 0;
        while len < buf.len() {
            // SAFETY: reads into the unfilled rest of `buf`.
            let n = unsafe { libc::read(fd, buf[len..].as_mut_ptr().cast(), buf.len() - len) };
            if n <= 0 {
                break;
            }
            len += n.unsigned_abs();
        }
        // SAFETY: `fd` was opened above and is closed once.
        unsafe { libc::close(fd) };
        Some(&buf[..len])
    }

    /// The data segment and main stack of a `/proc/<pid>/statm` (its sixth
    /// field), in bytes.
    pub(super) fn statm_data(statm: &[u8]) -> Option<u64> {
        let field = statm.split(|&b| b == b' ').nth(5)?;
        let mut pages: u64 = 0;
        for &b in field.iter().take_while(|b| b.is_ascii_digit()) {
            pages = pages.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
        }
        // SAFETY: sysconf takes an integer and reads no memory.
        let page = u64::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).ok()?;
        (!field.is_empty() && field[0].is_ascii_digit()).then(|| pages.saturating_mul(page))
    }

    /// `/proc/sys/vm/overcommit_memory` says `2` (unreadable: not strict,
    /// the kernel's default).
    pub(super) fn read_strict_overcommit() -> bool {
        let mut mode = [0u8; 8];
        read_small(c"/proc/sys/vm/overcommit_memory", &mut mode)
            .is_some_and(|m| m.first() == Some(&b'2'))
    }
}

/// Off Linux, no limit is armed (the runtime refuses them there).
#[cfg(not(target_os = "linux"))]
pub(crate) struct Armed;

#[cfg(not(target_os = "linux"))]
impl Limits {
    pub(crate) fn arm(self, _report: RawFd) -> Result<Armed, &'static str> {
        Ok(Armed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_read_in_binary_units() {
        assert_eq!(
            Limit::Memory { bytes: 512 << 20 }.to_string(),
            "memory limit of 512 MiB"
        );
        assert_eq!(
            Limit::Memory { bytes: 1000 }.to_string(),
            "memory limit of 1000 bytes"
        );
        assert_eq!(Limit::Cpu { secs: 2.0 }.to_string(), "CPU limit of 2 s");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_data_size_is_read_from_statm() {
        // SAFETY: sysconf takes an integer and reads no memory.
        let page = u64::try_from(unsafe { nix::libc::sysconf(nix::libc::_SC_PAGESIZE) }).unwrap();
        assert_eq!(
            arm::statm_data(b"1000 200 100 50 0 1234 0\n"),
            Some(1234 * page)
        );
        assert_eq!(arm::statm_data(b"1000 200 100\n"), None);
        let mut buf = [0u8; 256];
        let mine = std::fs::read("/proc/self/statm").unwrap();
        buf[..mine.len()].copy_from_slice(&mine);
        assert!(arm::statm_data(&buf[..mine.len()]).unwrap() > 0);
    }
}
