//! No file descriptor, thread or zombie leaks over many calls of every
//! outcome. One test alone in its binary: it counts process-wide resources.

mod common;

use std::time::Duration;

use common::{fd_count, rss_kib, thread_count, wait_until, zombie_children, KillOnDrop};

in_every_mode! {
    #[timeout(secs = 2.0)]
    fn ok(i: u32) -> u32 {
        i
    }

    #[timeout(secs = 2.0)]
    fn panics() -> u32 {
        panic!("boom")
    }

    #[timeout(secs = 2.0)]
    fn exits() -> u32 {
        std::process::exit(1)
    }

    #[timeout(secs = 0.05)]
    fn spins() -> u32 {
        loop {
            std::hint::spin_loop();
        }
    }

    #[timeout(secs = 0.05, kill = false)]
    fn overstays() -> u32 {
        std::thread::sleep(Duration::from_millis(100));
        0
    }
}

/// Calls per mode: 1,000 by default (2,000 in all, as CI runs it); set
/// `RWT_SOAK_CALLS` for the long soak (10,000 in all: 5000).
fn calls_per_mode() -> u32 {
    std::env::var("RWT_SOAK_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
}

/// Descriptor and thread counts once they have stopped changing for 300 ms
/// (the reaper collecting retired workers, then ending), within 5 s.
fn settled() -> (usize, usize) {
    let mut last = (fd_count(), thread_count());
    let mut since = std::time::Instant::now();
    let start = since;
    while since.elapsed() < Duration::from_millis(300) && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
        let now = (fd_count(), thread_count());
        if now != last {
            last = now;
            since = std::time::Instant::now();
        }
    }
    last
}

/// A call that cannot start: descriptors are exhausted for its duration.
fn spawn_failure(call: impl FnOnce() -> Result<u32, rwt::Error>) {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    setrlimit(Resource::RLIMIT_NOFILE, common::lowest_free_fd(), hard).unwrap();
    let r = call();
    setrlimit(Resource::RLIMIT_NOFILE, soft, hard).unwrap();
    assert!(matches!(r, Err(rwt::Error::Spawn { .. })), "{r:?}");
}

macro_rules! soak {
    ($m:ident, $orphans:ident) => {
        for i in 0..calls_per_mode() {
            match i % 10 {
                0 => assert!(matches!($m::panics(), Err(rwt::Error::Panicked { .. }))),
                1 => assert!(matches!($m::exits(), Err(rwt::Error::Crashed { .. }))),
                2 => assert!($m::spins().unwrap_err().is_timeout()),
                3 if i % 50 == 3 => {
                    let e = $m::overstays().unwrap_err();
                    $orphans.0.extend_from_slice(e.orphans());
                }
                4 if i % 50 == 4 && stringify!($m) != "pool" => spawn_failure(|| $m::ok(i)),
                _ => assert_eq!($m::ok(i).unwrap(), i),
            }
        }
    };
}

/// Both modes in one test: the counts are process-wide, so nothing else
/// may run beside it.
#[test]
fn many_calls_of_every_outcome_in_each_mode_leak_nothing() {
    // Warm up: the first calls set up what lives for the whole process.
    fork::ok(0).unwrap();
    exec::ok(0).unwrap();
    pool::ok(0).unwrap();
    // Idle pool workers hold a pidfd and a socket each, by design (up to
    // the pool size): count without them.
    rwt::set_pool_size(0);
    let (fds, threads) = settled();
    let rss = rss_kib();
    rwt::set_pool_size(2);
    let mut orphans = KillOnDrop::default();
    soak!(fork, orphans);
    soak!(exec, orphans);
    soak!(pool, orphans);
    assert_eq!(orphans.0.len() as u32, 3 * calls_per_mode() / 50);
    rwt::set_pool_size(0);
    let _ = settled();
    // The orphans end on their own; the reaper takes them, then ends too.
    assert!(
        wait_until(Duration::from_secs(5), || orphans
            .0
            .iter()
            .all(|&p| common::reaped(p))),
        "orphans not reaped"
    );
    assert!(
        wait_until(Duration::from_secs(2), || thread_count() == threads),
        "threads: {} before, {} after",
        threads,
        thread_count()
    );
    assert!(
        wait_until(Duration::from_secs(2), || fd_count() == fds),
        "file descriptors: {fds} before, {} after",
        fd_count()
    );
    assert_eq!(zombie_children(), Vec::<u32>::new());
    let grown = rss_kib().saturating_sub(rss);
    println!(
        "{} calls: fds {fds} -> {}, threads {threads} -> {}, RSS +{grown} KiB, zombies 0",
        3 * calls_per_mode(),
        fd_count(),
        thread_count()
    );
    assert!(grown < 20 * 1024, "RSS grew by {grown} KiB");
}
