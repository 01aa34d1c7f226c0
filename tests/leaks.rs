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
/// The same outcomes from `async fn`s, plus calls dropped mid-way.
mod asynchronous {
    use super::*;

    in_every_mode! {
        #[timeout(secs = 2.0)]
        async fn ok(i: u32) -> u32 {
            i
        }

        #[timeout(secs = 2.0)]
        async fn panics() -> u32 {
            panic!("boom")
        }

        #[timeout(secs = 0.05)]
        async fn spins() -> u32 {
            loop {
                std::hint::spin_loop();
            }
        }

        #[timeout(secs = 10.0)]
        async fn sleeps() -> u32 {
            std::thread::sleep(Duration::from_secs(10));
            0
        }
    }
}

/// Async calls of every outcome on `runtime`, a fifth of them dropped
/// while their child runs.
macro_rules! soak_async {
    ($runtime:ident, $m:ident) => {
        $runtime.block_on(async {
            for i in 0..calls_per_mode() / 5 {
                match i % 5 {
                    0 => assert!(matches!(
                        asynchronous::$m::panics().await,
                        Err(rwt::Error::Panicked { .. })
                    )),
                    1 => assert!(asynchronous::$m::spins().await.unwrap_err().is_timeout()),
                    2 => {
                        let call = asynchronous::$m::sleeps();
                        let cut = tokio::time::timeout(Duration::from_millis(5), call).await;
                        assert!(cut.is_err());
                    }
                    _ => assert_eq!(asynchronous::$m::ok(i).await.unwrap(), i),
                }
            }
        })
    };
}

fn calls_per_mode() -> u32 {
    std::env::var("RWT_SOAK_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
}

/// Descriptor and thread counts once they have stopped changing for 800 ms
/// (the reaper collecting retired workers, then ending; rwt's poller
/// thread ending 0.5 s after its last wait, with its wake pipe), within 5 s.
fn settled() -> (usize, usize) {
    let mut last = (fd_count(), thread_count());
    let mut since = std::time::Instant::now();
    let start = since;
    while since.elapsed() < Duration::from_millis(800) && start.elapsed() < Duration::from_secs(5) {
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
    // rwt's spawner threads and the runtime's live on: start them before
    // counting. (The poller thread this starts ends once idle: `settled`
    // waits for that.)
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    assert_eq!(runtime.block_on(asynchronous::fork::ok(0)).unwrap(), 0);
    assert_eq!(common::park_on(asynchronous::exec::ok(0)).unwrap(), 0);
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
    soak_async!(runtime, fork);
    soak_async!(runtime, exec);
    soak_async!(runtime, pool);
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
        "{} calls ({} async): fds {fds} -> {}, threads {threads} -> {}, RSS +{grown} KiB, zombies 0",
        3 * calls_per_mode() + 3 * (calls_per_mode() / 5),
        3 * (calls_per_mode() / 5),
        fd_count(),
        thread_count()
    );
    assert!(grown < 20 * 1024, "RSS grew by {grown} KiB");
}
