//! Limits beyond time, in every mode: memory that grows and memory taken in
//! one allocation end as `LimitExceeded`, not retried; a large fork caller
//! does not eat its child's budget; CPU spin is stopped, sleep is not
//! charged; deaths the limit did not cause stay `Crashed`; errors carry
//! the reaped child's usage, and a timeout says what the child was doing.

mod common;

use std::time::Duration;

use common::{reaped, wait_until, Scratch};
use rwt::{Error, Limit, State};

const MIB: u64 = 1 << 20;

/// The same functions in one module per mode.
macro_rules! limited {
    ($module:ident, $mode:literal) => {
        mod $module {
            use rwt::timeout;
            use std::hint::black_box;

            /// Grows 1 MiB at a time (each page touched) up to 2 GiB.
            #[timeout(secs = 30.0, ntries = 3, memory = "64 MiB", mode = $mode)]
            pub fn grow(pid_file: String) -> usize {
                crate::common::note_pid(&pid_file);
                let mut held: Vec<Vec<u8>> = Vec::new();
                while held.len() < 2048 {
                    held.push(vec![1u8; 1 << 20]);
                }
                black_box(&held).len()
            }

            /// One allocation of 4 GiB.
            #[timeout(secs = 30.0, ntries = 3, memory = "64 MiB", mode = $mode)]
            pub fn huge() -> usize {
                let v = vec![0u8; 4 << 30];
                black_box(&v).len()
            }

            /// Forks a process that allocates 4 GiB (it inherits the limit
            /// and rwt's handler), and returns how that process ended.
            #[timeout(secs = 30.0, memory = "64 MiB", mode = $mode)]
            pub fn bomb_in_grandchild() -> String {
                // SAFETY: the forked process only allocates and leaves with
                // _exit; this process waits for it.
                match unsafe { nix::unistd::fork() }.unwrap() {
                    nix::unistd::ForkResult::Child => {
                        let v = vec![0u8; 4 << 30];
                        black_box(&v);
                        // SAFETY: leaves without running anything else.
                        unsafe { nix::libc::_exit(0) }
                    }
                    nix::unistd::ForkResult::Parent { child } => {
                        format!("{:?}", nix::sys::wait::waitpid(child, None).unwrap())
                    }
                }
            }

            /// Takes `mib` MiB, every page touched.
            #[timeout(secs = 30.0, memory = "64 MiB", mode = $mode)]
            pub fn takes(mib: usize) -> usize {
                let v = vec![7u8; mib << 20];
                black_box(&v)
                    .iter()
                    .step_by(4096)
                    .map(|&b| usize::from(b))
                    .sum()
            }

            /// Burns CPU until stopped.
            #[timeout(secs = 30.0, ntries = 3, cpu = 0.3, mode = $mode)]
            pub fn spin() -> u64 {
                let mut n = 0u64;
                loop {
                    n = black_box(n.wrapping_add(1));
                }
            }

            /// Sleeps far longer than its CPU limit.
            #[timeout(secs = 30.0, cpu = 0.05, mode = $mode)]
            pub fn sleeps(ms: u64) -> u64 {
                std::thread::sleep(std::time::Duration::from_millis(ms));
                ms
            }

            /// Aborts for a reason of its own, under a memory limit.
            #[timeout(secs = 30.0, memory = "64 MiB", mode = $mode)]
            pub fn aborts() -> u8 {
                std::process::abort()
            }

            /// Overflows its stack, under a memory limit (the stack is not
            /// what the limit counts).
            #[timeout(secs = 30.0, memory = "64 MiB", mode = $mode)]
            pub fn overflows(depth: u64) -> u64 {
                fn down(n: u64) -> u64 {
                    let pad = black_box([n; 64]);
                    if n == 0 {
                        0
                    } else {
                        down(n - 1) + pad[3]
                    }
                }
                down(depth)
            }

            /// Gets a SIGPROF long before its CPU limit.
            #[timeout(secs = 30.0, cpu = 20.0, mode = $mode)]
            pub fn early_sigprof() -> u8 {
                let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGPROF);
                std::thread::sleep(std::time::Duration::from_secs(5));
                0
            }

            /// Opens a FIFO that nobody writes: blocks in `openat`.
            #[timeout(secs = 0.5, mode = $mode)]
            pub fn opens_fifo(path: String) -> u8 {
                let _ = std::fs::File::open(path);
                0
            }

            /// Spins past its deadline.
            #[timeout(secs = 0.5, mode = $mode)]
            pub fn late() -> u8 {
                let mut n = 0u64;
                loop {
                    n = black_box(n.wrapping_add(1));
                }
            }

            #[timeout(secs = 30.0, mode = $mode)]
            pub fn panics() -> u8 {
                panic!("on purpose")
            }

            #[allow(dead_code)] // used in pool mode only
            #[timeout(secs = 30.0, memory = "64 MiB", cpu = 5.0, mode = $mode)]
            pub fn pid() -> u32 {
                std::process::id()
            }
        }
    };
}

limited!(fork, "fork");
limited!(exec, "exec");
limited!(pool, "pool");

/// Runs the check, a closure of the mode's name that calls `$m::...`, in
/// each mode.
macro_rules! each_mode {
    (|$m:ident| $check:expr) => {{
        {
            use fork as $m;
            $check("fork")
        }
        {
            use exec as $m;
            $check("exec")
        }
        {
            use pool as $m;
            $check("pool")
        }
    }};
}

fn memory_limit(err: &Error, mode: &str) {
    match err {
        Error::LimitExceeded {
            limit: Limit::Memory { bytes },
            attempts,
            ..
        } => {
            assert_eq!(*bytes, 64 * MIB, "{mode}");
            assert_eq!(*attempts, 1, "{mode}: a limit is not retried");
        }
        other => panic!("{mode}: expected a memory limit, got {other:?}"),
    }
    let usage = err.usage().unwrap_or_else(|| panic!("{mode}: no usage"));
    assert!(usage.max_rss > 0, "{mode}: {usage:?}");
    assert!(
        err.to_string()
            .ends_with("exceeded its memory limit of 64 MiB"),
        "{mode}: {err}"
    );
}

/// Memory that grows step by step, and one huge allocation, in `mode`.
fn memory_checks(
    mode: &str,
    grow: fn(String) -> Result<usize, Error>,
    huge: fn() -> Result<usize, Error>,
) {
    let pid_file = Scratch::new("grow");
    let err = grow(pid_file.arg()).unwrap_err();
    memory_limit(&err, mode);
    let usage = err.usage().unwrap();
    // It did grow: most of the 64 MiB were touched before the refusal.
    assert!(usage.max_rss >= 32 * MIB, "{mode}: {usage:?}");
    let pid: u32 = std::fs::read_to_string(pid_file.path())
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(5), || reaped(pid)),
        "{mode}: {pid} was not reaped"
    );
    let err = huge().unwrap_err();
    memory_limit(&err, mode);
    // Refused before any of it existed.
    assert!(err.usage().unwrap().max_rss < 1 << 30, "{mode}");
}

/// A process the function forks inherits the limit and rwt's handler, not
/// the right to speak on the call's channel: its abort is its own.
fn grandchild_checks(mode: &str, bomb: fn() -> Result<String, Error>) {
    let ended = bomb().unwrap_or_else(|e| panic!("{mode}: {e:?}"));
    assert!(ended.contains("SIGABRT"), "{mode}: {ended}");
}

/// Runs `test` of this binary again as a helper, with `RUST_BACKTRACE` at
/// `backtrace`, and expects it to pass.
fn in_helper(test: &str, backtrace: &str) {
    let mut helper = common::helper_command(test, "memory");
    helper.env("RUST_BACKTRACE", backtrace);
    let (status, out, err) = common::helper_output(helper);
    assert!(status.success(), "{out}\n{err}");
    assert!(out.contains("1 passed"), "{out}\n{err}");
}

/// Exec children and pool workers turn off Rust's backtrace after a
/// refused allocation (it would hide the refusal): the limit is named
/// whatever `RUST_BACKTRACE` says, here and in a helper where it is set.
#[test]
fn memory_past_the_limit_is_a_limit_in_exec_and_pool_mode() {
    if !common::is_helper("memory") {
        in_helper(
            "memory_past_the_limit_is_a_limit_in_exec_and_pool_mode",
            "full",
        );
    }
    memory_checks("exec", exec::grow, exec::huge);
    memory_checks("pool", pool::grow, pool::huge);
    grandchild_checks("exec", exec::bomb_in_grandchild);
    grandchild_checks("pool", pool::bomb_in_grandchild);
    // Turning the backtrace off does not cost the worker its place: calls
    // with limits reuse workers as others do (other tests share the pool,
    // so some worker, not each, serves twice).
    let pids: Vec<u32> = (0..8).map(|_| pool::pid().unwrap()).collect();
    let reused = pids
        .iter()
        .any(|p| pids.iter().filter(|q| *q == p).count() > 1);
    assert!(reused, "every limited call had a fresh worker: {pids:?}");
}

/// A fork child shares its caller's backtrace setting: run where
/// `RUST_BACKTRACE` is off (with it on, see the README: a huge allocation
/// may be `Crashed`, never misnamed).
#[test]
fn memory_past_the_limit_is_a_limit_in_fork_mode() {
    if !common::is_helper("memory") {
        in_helper("memory_past_the_limit_is_a_limit_in_fork_mode", "0");
        return;
    }
    memory_checks("fork", fork::grow, fork::huge);
    grandchild_checks("fork", fork::bomb_in_grandchild);
    freed_memory_checks();
}

/// Takes 96 MiB in 64 KiB pieces, under a limit of 64 MiB.
#[rwt::timeout(secs = 30.0, memory = "64 MiB")]
fn takes_96_mib_in_pieces() -> usize {
    let held: Vec<Vec<u8>> = (0..96 * 16).map(|_| vec![1u8; 64 << 10]).collect();
    std::hint::black_box(&held).len()
}

/// Memory the caller's allocator holds free is already mapped, so a fork
/// child could take it again unseen by the kernel's limit: it comes out of
/// the budget. With 32 MiB free in the caller, 96 MiB do not fit in 64.
fn freed_memory_checks() {
    let pieces: Vec<Vec<u8>> = (0..32 * 16).map(|_| vec![2u8; 64 << 10]).collect();
    // Allocated last, kept: the freed pieces below it stay in the
    // allocator's free lists rather than going back to the kernel.
    let guard = vec![3u8; 64 << 10];
    drop(pieces);
    let err = takes_96_mib_in_pieces().unwrap_err();
    memory_limit(&err, "fork, after a free");
    drop(guard);
}

#[test]
fn what_fits_in_the_limit_runs_in_every_mode() {
    each_mode!(|m| |mode: &str| {
        assert_eq!(m::takes(48).unwrap(), 7 * (48 << 20) / 4096, "{mode}");
    });
}

/// The budget counts from the child's size at its start: a fork child of a
/// 256 MiB caller still gets its 64 MiB (an absolute limit would refuse
/// the child at once).
#[test]
fn a_large_fork_caller_does_not_eat_the_budget() {
    let caller = vec![3u8; 256 << 20];
    let touched: u64 = caller.iter().step_by(4096).map(|&b| u64::from(b)).sum();
    assert_eq!(fork::takes(48).unwrap(), 7 * (48 << 20) / 4096);
    assert_eq!(touched, 3 * (256 << 20) / 4096);
    drop(caller);
}

#[test]
fn cpu_spin_past_the_limit_is_a_limit_in_every_mode() {
    each_mode!(|m| |mode: &str| {
        let err = m::spin().unwrap_err();
        match &err {
            Error::LimitExceeded {
                limit: Limit::Cpu { secs },
                attempts,
                ..
            } => {
                assert_eq!(*secs, 0.3, "{mode}");
                assert_eq!(*attempts, 1, "{mode}: a limit is not retried");
            }
            other => panic!("{mode}: expected a CPU limit, got {other:?}"),
        }
        let usage = err.usage().unwrap();
        assert!(
            usage.cpu() >= Duration::from_millis(290),
            "{mode}: {usage:?}"
        );
        assert!(
            err.to_string().ends_with("exceeded its CPU limit of 0.3 s"),
            "{mode}: {err}"
        );
    });
}

#[test]
fn a_sleeping_child_is_not_charged_in_every_mode() {
    each_mode!(|m| |mode: &str| {
        assert_eq!(m::sleeps(400).unwrap(), 400, "{mode}");
    });
}

/// Honest attribution: deaths the limits did not cause stay `Crashed`.
#[test]
fn other_deaths_under_a_limit_are_crashes_in_every_mode() {
    each_mode!(|m| |mode: &str| {
        match m::aborts().unwrap_err() {
            Error::Crashed {
                signal: Some(6),
                usage,
                ..
            } => assert!(usage.is_some(), "{mode}"),
            other => panic!("{mode}: abort: {other:?}"),
        }
        match m::overflows(1 << 40).unwrap_err() {
            Error::Crashed { .. } => {}
            other => panic!("{mode}: stack overflow: {other:?}"),
        }
        match m::early_sigprof().unwrap_err() {
            Error::Crashed {
                signal: Some(sig), ..
            } => assert_eq!(sig, nix::libc::SIGPROF, "{mode}"),
            other => panic!("{mode}: early SIGPROF: {other:?}"),
        }
    });
}

/// A worker that went over a limit is not used again; the next call is
/// served, by another worker.
#[test]
fn a_pool_worker_over_a_limit_is_replaced() {
    let pid_file = Scratch::new("pool-grow");
    let err = pool::grow(pid_file.arg()).unwrap_err();
    assert!(matches!(err, Error::LimitExceeded { .. }), "{err:?}");
    let bombed: u32 = std::fs::read_to_string(pid_file.path())
        .unwrap()
        .parse()
        .unwrap();
    assert!(wait_until(Duration::from_secs(5), || reaped(bombed)));
    for _ in 0..3 {
        let served = pool::pid().unwrap();
        assert_ne!(served, bombed);
    }
    let err = pool::spin().unwrap_err();
    assert!(matches!(err, Error::LimitExceeded { .. }), "{err:?}");
    assert!(pool::pid().is_ok());
}

#[test]
fn errors_carry_the_childs_usage_in_every_mode() {
    each_mode!(|m| |mode: &str| {
        let err = m::late().unwrap_err();
        assert!(err.is_timeout(), "{mode}: {err:?}");
        let usage = err.usage().unwrap_or_else(|| panic!("{mode}: no usage"));
        // It spun for most of its half second.
        assert!(
            usage.cpu() >= Duration::from_millis(100),
            "{mode}: {usage:?}"
        );
        // Wall time counts from the child's start, the deadline from the
        // call: the start (a fork of this test process, an exec) comes off.
        assert!(
            usage.wall >= Duration::from_millis(400),
            "{mode}: {usage:?}"
        );
        let err = m::panics().unwrap_err();
        assert!(matches!(err, Error::Panicked { .. }), "{mode}: {err:?}");
        assert!(err.usage().is_some(), "{mode}: {err:?}");
    });
}

#[test]
fn a_timeout_says_what_the_child_was_doing_in_every_mode() {
    each_mode!(|m| |mode: &str| {
        let fifo = Scratch::new("fifo");
        nix::unistd::mkfifo(fifo.path(), nix::sys::stat::Mode::S_IRWXU).unwrap();
        let err = m::opens_fifo(fifo.arg()).unwrap_err();
        let stuck = err
            .stuck()
            .unwrap_or_else(|| panic!("{mode}: no snapshot: {err:?}"));
        assert_eq!(stuck.state, State::Sleeping, "{mode}: {stuck:?}");
        assert_eq!(
            stuck.syscall.as_deref(),
            Some("openat"),
            "{mode}: {stuck:?}"
        );
        assert!(
            err.to_string().contains("; it was blocked in openat"),
            "{mode}: {err}"
        );
        println!("{mode}: {err}");

        let err = m::late().unwrap_err();
        let stuck = err.stuck().unwrap();
        assert_eq!(stuck.state, State::Running, "{mode}: {stuck:?}");
        assert!(
            err.to_string()
                .ends_with("(killed); it was running on a CPU"),
            "{mode}: {err}"
        );
    });
}

/// The run-time API: limits through `Options`, usage beside a value.
#[test]
fn the_run_time_api_has_limits_and_usage() {
    // Step by step: the refusal leaves too little for a backtrace, so this
    // holds whatever `RUST_BACKTRACE` says.
    let opts = rwt::Options::new().secs(30.0).memory(64 * MIB);
    let err = rwt::run_with_timeout(&opts, || {
        let mut held = Vec::new();
        while held.len() < 2048 {
            held.push(vec![1u8; 1 << 16]);
        }
        held.len()
    })
    .unwrap_err();
    assert!(
        matches!(
            err,
            Error::LimitExceeded {
                limit: Limit::Memory { bytes },
                ..
            } if bytes == 64 * MIB
        ),
        "{err:?}"
    );
    let opts = rwt::Options::new().secs(30.0).cpu(0.2);
    let (value, usage) = rwt::run_with_usage(&opts, || {
        let start = std::time::Instant::now();
        let mut n = 0u64;
        while start.elapsed() < Duration::from_millis(50) {
            n = std::hint::black_box(n + 1);
        }
        n > 0
    })
    .unwrap();
    assert!(value);
    let usage = usage.unwrap();
    assert!(usage.cpu() >= Duration::from_millis(30), "{usage:?}");
    assert!(usage.cpu() < Duration::from_millis(200), "{usage:?}");
    let bad = rwt::run_with_timeout(&rwt::Options::new().cpu(-1.0), || 0u8).unwrap_err();
    assert!(matches!(bad, Error::InvalidOptions { .. }), "{bad:?}");
}

/// A caller that handles SIGPROF itself (a profiler) does not lend its
/// handler to the child: the CPU limit still ends it.
#[test]
fn a_callers_sigprof_handler_does_not_defeat_the_cpu_limit() {
    const TEST: &str = "a_callers_sigprof_handler_does_not_defeat_the_cpu_limit";
    if !common::is_helper("profiled") {
        let (status, out, err) = common::helper_output(common::helper_command(TEST, "profiled"));
        assert!(status.success(), "{out}\n{err}");
        assert!(out.contains("1 passed"), "{out}\n{err}");
        return;
    }
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    // SAFETY: SIG_IGN installs no handler code.
    unsafe {
        sigaction(
            Signal::SIGPROF,
            &SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty()),
        )
    }
    .unwrap();
    each_mode!(|m| |mode: &str| {
        let err = m::spin().unwrap_err();
        assert!(
            matches!(
                err,
                Error::LimitExceeded {
                    limit: Limit::Cpu { .. },
                    ..
                }
            ),
            "{mode}: {err:?}"
        );
    });
}

/// The child's word alone is not enough: a memory-limit frame from a call
/// that has no memory limit is a malformed frame, not a limit.
#[rwt::timeout(secs = 10.0, mode = "exec")]
fn forges_a_memory_limit() -> u8 {
    use std::io::Write;
    use std::os::fd::FromRawFd;
    // fd 3 is the exec child's channel; header: kind, then a zero length.
    // SAFETY: fd 3 is open for the whole life of an exec child.
    let mut channel = std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(3) });
    let _ = channel.write_all(&[b'M', 0, 0, 0, 0, 0, 0, 0, 0]);
    std::thread::sleep(Duration::from_secs(5));
    0
}

#[test]
fn a_forged_memory_limit_frame_is_not_a_limit() {
    match forges_a_memory_limit().unwrap_err() {
        Error::Codec { detail, .. } => assert!(detail.contains("0x4d"), "{detail}"),
        other => panic!("{other:?}"),
    }
}

/// Takes 600 MiB (untouched: it counts all the same), under a limit of 1 GiB.
#[rwt::timeout(secs = 30.0, memory = "1 GiB")]
fn takes_600_mib() -> usize {
    let v = vec![0u8; 600 << 20];
    std::hint::black_box(&v).len()
}

/// A lower soft `RLIMIT_DATA` set by someone else binds first: rwt neither
/// raises it nor names its refusals.
#[test]
fn a_lower_data_limit_of_someone_elses_is_kept() {
    const TEST: &str = "a_lower_data_limit_of_someone_elses_is_kept";
    if !common::is_helper("soft-limit") {
        use std::os::unix::process::CommandExt;
        let mut helper = common::helper_command(TEST, "soft-limit");
        helper.env("RUST_BACKTRACE", "0");
        // SAFETY: setrlimit is async-signal-safe and touches no memory of
        // the parent's.
        unsafe {
            helper.pre_exec(|| {
                nix::sys::resource::setrlimit(
                    nix::sys::resource::Resource::RLIMIT_DATA,
                    512 << 20,
                    nix::sys::resource::RLIM_INFINITY,
                )
                .map_err(std::io::Error::from)
            });
        }
        let (status, out, err) = common::helper_output(helper);
        assert!(status.success(), "{out}\n{err}");
        assert!(out.contains("1 passed"), "{out}\n{err}");
        return;
    }
    match takes_600_mib() {
        Err(Error::Crashed {
            signal: Some(6), ..
        }) => {}
        other => panic!("{other:?}"),
    }
}

#[rwt::timeout(secs = 30.0, cpu = 0.2)]
async fn async_fork_spin() -> u64 {
    let mut n = 0u64;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

#[rwt::timeout(secs = 30.0, memory = "64 MiB", mode = "pool")]
async fn async_pool_huge() -> usize {
    let v = vec![0u8; 4 << 30];
    std::hint::black_box(&v).len()
}

/// Async calls arm the same limits (their children are started by rwt's
/// spawner threads).
#[test]
fn async_calls_have_limits_too() {
    match common::park_on(async_fork_spin()) {
        Err(Error::LimitExceeded {
            limit: Limit::Cpu { .. },
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    match common::park_on(async_pool_huge()) {
        Err(Error::LimitExceeded {
            limit: Limit::Memory { .. },
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
}

/// Spins on a thread of its own while the main thread waits for it.
#[rwt::timeout(secs = 0.5, mode = "exec")]
fn spins_on_a_thread() -> u8 {
    let spinner = std::thread::spawn(|| {
        let mut n = 0u64;
        loop {
            n = std::hint::black_box(n.wrapping_add(1));
        }
    });
    let _ = spinner.join();
    0
}

/// The snapshot shows the thread that works, not the main thread waiting.
#[test]
fn a_timeout_shows_the_busy_thread() {
    let err = spins_on_a_thread().unwrap_err();
    let stuck = err
        .stuck()
        .unwrap_or_else(|| panic!("no snapshot: {err:?}"));
    assert_eq!(stuck.state, State::Running, "{stuck:?}");
}

/// This worker's pid, its soft `RLIMIT_DATA`, whether SIGABRT and SIGPROF
/// have their default action, and what is left on its `ITIMER_PROF`.
fn worker_state() -> (u32, u64, bool, bool, Duration) {
    use nix::libc;
    let default_action = |sig: libc::c_int| {
        // SAFETY: all-zero is a valid sigaction to be written over.
        let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: a null new action only reads the current one.
        unsafe { libc::sigaction(sig, std::ptr::null(), &mut old) };
        old.sa_sigaction == libc::SIG_DFL
    };
    // SAFETY: all-zero is a valid itimerval to be written over.
    let mut timer: libc::itimerval = unsafe { std::mem::zeroed() };
    // SAFETY: getitimer writes one itimerval.
    unsafe { libc::getitimer(libc::ITIMER_PROF, &mut timer) };
    let left = Duration::from_secs(timer.it_value.tv_sec.unsigned_abs())
        + Duration::from_micros(timer.it_value.tv_usec.unsigned_abs());
    let (soft, _) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_DATA).unwrap();
    (
        std::process::id(),
        soft,
        default_action(libc::SIGABRT),
        default_action(libc::SIGPROF),
        left,
    )
}

#[rwt::timeout(secs = 10.0, mode = "pool", memory = "64 MiB", cpu = 5.0)]
fn state_with_limits() -> (u32, u64, bool, bool, Duration) {
    worker_state()
}

#[rwt::timeout(secs = 10.0, mode = "pool")]
fn state_without_limits() -> (u32, u64, bool, bool, Duration) {
    worker_state()
}

/// A worker that served a call with limits serves the next call without
/// any: its data limit, signal actions and CPU timer are back.
#[test]
fn a_pool_worker_keeps_nothing_armed_after_a_limited_call() {
    let (pid, soft, abort_default, prof_default, left) = state_with_limits().unwrap();
    assert_ne!(soft, nix::sys::resource::RLIM_INFINITY);
    assert!(!prof_default && left > Duration::ZERO, "armed in the call");
    let _ = abort_default;
    // Other tests share the pool: look for the same worker (the most
    // recently used idle worker serves next).
    let mut seen = None;
    for _ in 0..20 {
        let state = state_without_limits().unwrap();
        if state.0 == pid {
            seen = Some(state);
            break;
        }
    }
    let (_, soft, abort_default, prof_default, left) =
        seen.unwrap_or_else(|| panic!("worker {pid} served no later call"));
    let (ours, _) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_DATA).unwrap();
    assert_eq!(soft, ours, "the data limit is the caller's again");
    assert!(abort_default && prof_default, "signal actions put back");
    assert_eq!(left, Duration::ZERO, "CPU timer off");
}
