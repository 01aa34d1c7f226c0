//! A call's leftovers do not reach the next call: a pool worker whose call
//! left threads, descriptors, a changed working directory, environment,
//! signal handlers or limits behind is reset or retired before it serves
//! again, and a panic message of one call never shows in another. A worker
//! whose call left nothing behind is kept.
//!
//! One test runs every case in turn on a pool of one idle worker, so each
//! second call would get the first call's worker if it were kept.

use std::time::Duration;

use rwt::timeout;

#[timeout(secs = 5.0, mode = "pool")]
fn worker_pid() -> u32 {
    std::process::id()
}

#[timeout(secs = 5.0, mode = "pool")]
fn leaves_a_thread() -> u32 {
    std::thread::spawn(|| {
        std::thread::sleep(Duration::from_millis(200));
        std::process::exit(3);
    });
    std::process::id()
}

#[timeout(secs = 5.0, mode = "pool")]
fn sleeps_then_answers() -> u32 {
    std::thread::sleep(Duration::from_millis(500));
    std::process::id()
}

#[timeout(secs = 5.0, mode = "pool")]
fn catches_a_panic() -> u32 {
    let _ = std::panic::catch_unwind(|| panic!("secret-1"));
    std::process::id()
}

#[timeout(secs = 5.0, mode = "pool")]
fn resumes_a_foreign_unwind() -> u32 {
    std::panic::resume_unwind(Box::new(5_u8))
}

#[timeout(secs = 5.0, mode = "pool")]
fn changes_directory() -> u32 {
    std::env::set_current_dir("/").unwrap();
    std::process::id()
}

#[timeout(secs = 5.0, mode = "pool")]
fn current_directory() -> String {
    std::env::current_dir().unwrap().display().to_string()
}

#[timeout(secs = 5.0, mode = "pool")]
fn sets_a_variable() -> u32 {
    // SAFETY: the worker runs one call at a time on one thread.
    unsafe { std::env::set_var("RWT_LEFTOVER", "1") };
    std::process::id()
}

#[timeout(secs = 5.0, mode = "pool")]
fn reads_the_variable() -> Option<String> {
    std::env::var("RWT_LEFTOVER").ok()
}

#[timeout(secs = 5.0, mode = "pool")]
fn leaks_a_descriptor() -> u32 {
    std::mem::forget(std::fs::File::open("/dev/null").unwrap());
    std::process::id()
}

#[timeout(secs = 5.0, mode = "pool")]
fn lowest_free_descriptor() -> i32 {
    let file = std::fs::File::open("/dev/null").unwrap();
    std::os::fd::AsRawFd::as_raw_fd(&file)
}

#[timeout(secs = 5.0, mode = "pool")]
fn leaks_a_descriptor_above_a_gap() -> u32 {
    let first = std::fs::File::open("/dev/null").unwrap();
    std::mem::forget(std::fs::File::open("/dev/null").unwrap());
    drop(first);
    std::process::id()
}

#[timeout(secs = 5.0, mode = "pool")]
fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[timeout(secs = 5.0, mode = "pool")]
fn points_stdout_elsewhere() -> u32 {
    let null = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .unwrap();
    nix::unistd::dup2_stdout(&null).unwrap();
    std::process::id()
}

#[timeout(secs = 5.0, mode = "pool")]
fn stdout_target() -> String {
    std::fs::read_link("/proc/self/fd/1")
        .unwrap()
        .display()
        .to_string()
}

#[timeout(secs = 5.0, mode = "pool")]
fn arms_a_profiling_timer() -> u32 {
    let timer = nix::libc::itimerval {
        it_interval: nix::libc::timeval {
            tv_sec: 0,
            tv_usec: 0,
        },
        it_value: nix::libc::timeval {
            tv_sec: 0,
            tv_usec: 300_000,
        },
    };
    // SAFETY: a valid itimerval; the old value is not asked for.
    assert_eq!(
        unsafe { nix::libc::setitimer(nix::libc::ITIMER_PROF, &timer, std::ptr::null_mut()) },
        0
    );
    std::process::id()
}

#[timeout(secs = 5.0, mode = "pool")]
fn burns_half_a_second_of_cpu() -> u64 {
    let start = std::time::Instant::now();
    let mut n = 0u64;
    while start.elapsed() < Duration::from_millis(500) {
        n = std::hint::black_box(n.wrapping_add(1));
    }
    n
}

#[timeout(secs = 5.0, mode = "pool")]
fn joins_its_threads() -> u32 {
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| std::hint::black_box(1 + 1));
        }
    });
    std::process::id()
}

#[timeout(secs = 5.0, mode = "pool")]
fn ignores_sigusr1() -> u32 {
    // SAFETY: SIG_IGN installs no handler code.
    unsafe {
        nix::sys::signal::signal(
            nix::sys::signal::Signal::SIGUSR1,
            nix::sys::signal::SigHandler::SigIgn,
        )
    }
    .unwrap();
    std::process::id()
}

#[timeout(secs = 5.0, mode = "pool")]
fn sigusr1_is_default() -> bool {
    let ignored = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:"))
        .map(|mask| u64::from_str_radix(mask.trim(), 16).unwrap())
        .unwrap();
    ignored & (1 << (nix::libc::SIGUSR1 - 1)) == 0
}

#[timeout(secs = 5.0, mode = "pool")]
fn lowers_the_file_limit() -> u32 {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    setrlimit(Resource::RLIMIT_NOFILE, 64, hard).unwrap();
    std::process::id()
}

#[timeout(secs = 5.0, mode = "pool")]
fn file_limit() -> u64 {
    nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .unwrap()
        .0
}

#[test]
fn leftovers_in_turn() {
    rwt::set_pool_size(1);
    // Every case runs, and the test names each that failed.
    let mut failed = Vec::new();
    let mut check = |ok: bool, what: String| {
        if !ok {
            failed.push(what);
        }
    };

    // A clean call keeps its worker: nothing is retired for nothing.
    let first = worker_pid().unwrap();
    let again = worker_pid().unwrap();
    check(
        again == first,
        format!("a clean worker was not kept: {first} then {again}"),
    );

    // A thread that outlives its call would end a later call's worker.
    let dirty = leaves_a_thread().unwrap();
    let next = sleeps_then_answers();
    check(
        matches!(next, Ok(pid) if pid != dirty),
        format!("thread: {next:?} after a thread was left in {dirty}"),
    );

    // A caught panic's message does not become a later call's.
    catches_a_panic().unwrap();
    match resumes_a_foreign_unwind() {
        Err(rwt::Error::Panicked { message, .. }) => {
            check(!message.contains("secret-1"), format!("panic: {message}"))
        }
        other => check(false, format!("panic: {other:?}")),
    }

    let caller_dir = std::env::current_dir().unwrap().display().to_string();
    changes_directory().unwrap();
    let dir = current_directory().unwrap();
    check(dir == caller_dir, format!("cwd: {dir}, not {caller_dir}"));

    sets_a_variable().unwrap();
    let var = reads_the_variable().unwrap();
    check(var.is_none(), format!("environment: {var:?}"));

    let clean = lowest_free_descriptor().unwrap();
    leaks_a_descriptor().unwrap();
    let after = lowest_free_descriptor().unwrap();
    check(
        after == clean,
        format!("descriptors: lowest free {after}, not {clean}"),
    );

    let clean = open_descriptors().unwrap();
    leaks_a_descriptor_above_a_gap().unwrap();
    let after = open_descriptors().unwrap();
    check(
        after == clean,
        format!("descriptor above a gap: {after} open, not {clean}"),
    );

    let caller_stdout = std::fs::read_link("/proc/self/fd/1")
        .unwrap()
        .display()
        .to_string();
    points_stdout_elsewhere().unwrap();
    let target = stdout_target().unwrap();
    check(
        target == caller_stdout,
        format!("stdout: {target}, not {caller_stdout}"),
    );

    arms_a_profiling_timer().unwrap();
    let burnt = burns_half_a_second_of_cpu();
    check(burnt.is_ok(), format!("timers: {burnt:?}"));

    ignores_sigusr1().unwrap();
    check(
        sigusr1_is_default().unwrap(),
        "signals: SIGUSR1 still ignored".into(),
    );

    let limit = file_limit().unwrap();
    lowers_the_file_limit().unwrap();
    let now = file_limit().unwrap();
    check(
        now == limit,
        format!("limits: RLIMIT_NOFILE {now}, not {limit}"),
    );

    assert!(failed.is_empty(), "{failed:#?}");
}
