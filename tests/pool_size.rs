//! `rwt::set_pool_size` and `rwt::set_pool_idle_timeout`: how many idle
//! workers the pool keeps, and for how long. One test runs both in turn:
//! the settings are process-wide.

use rwt::timeout;

#[timeout(secs = 5.0, mode = "pool")]
fn whoami() -> u32 {
    std::process::id()
}

#[timeout(secs = 5.0, mode = "pool")]
fn whoami_after(ms: u64) -> u32 {
    std::thread::sleep(std::time::Duration::from_millis(ms));
    std::process::id()
}

#[timeout(secs = 5.0, mode = "pool")]
fn another_function() -> u32 {
    std::process::id()
}

#[timeout(secs = 5.0, mode = "pool")]
fn panics() -> u32 {
    panic!("a worker that panicked is replaced");
}

#[test]
fn pool_settings_in_turn() {
    by_default_as_many_idle_workers_as_were_busy_are_kept();
    idle_workers_retire_under_a_stream_of_replacements();
    one_pool_serves_every_pool_function();
    an_idle_worker_lives_until_its_idle_timeout();
    the_pool_keeps_as_many_idle_workers_as_it_is_told();
    idle_workers_retire_after_the_idle_timeout();
}

/// Before any setting: more concurrent calls than CPUs each get a worker,
/// and all of them stay, so the next burst of as many calls reuses every
/// one instead of starting new ones (a cap of the number of CPUs made a
/// steady load of more callers start and retire a worker per call).
fn by_default_as_many_idle_workers_as_were_busy_are_kept() {
    let cpus = std::thread::available_parallelism().unwrap().get();
    let burst = || {
        let calls: Vec<_> = (0..cpus + 2)
            .map(|_| std::thread::spawn(|| whoami_after(300).unwrap()))
            .collect();
        let mut workers: Vec<u32> = calls.into_iter().map(|c| c.join().unwrap()).collect();
        workers.sort_unstable();
        workers
    };
    let first = burst();
    let mut distinct = first.clone();
    distinct.dedup();
    assert_eq!(distinct.len(), cpus + 2, "calls shared a worker: {first:?}");
    std::thread::sleep(std::time::Duration::from_millis(200));
    let alive = first
        .iter()
        .filter(|p| std::path::Path::new(&format!("/proc/{p}")).exists())
        .count();
    assert_eq!(
        alive,
        cpus + 2,
        "idle workers retired before their idle timeout"
    );
    assert_eq!(
        burst(),
        first,
        "the second burst did not reuse the first one's workers"
    );
}

/// A grown pool shrinks by its idle timeout even while replacements keep
/// the pool thread busy (a panicking call every 100 ms, more often than
/// the idle sweep's tick): the sweep runs on a clock. Before that, the
/// first burst's workers, never used again, lived for ever.
fn idle_workers_retire_under_a_stream_of_replacements() {
    let cpus = std::thread::available_parallelism().unwrap().get();
    let calls: Vec<_> = (0..cpus + 2)
        .map(|_| std::thread::spawn(|| whoami_after(300).unwrap()))
        .collect();
    let burst: Vec<u32> = calls.into_iter().map(|c| c.join().unwrap()).collect();
    rwt::set_pool_idle_timeout(std::time::Duration::from_millis(300));
    let alive = || {
        burst
            .iter()
            .filter(|p| std::path::Path::new(&format!("/proc/{p}")).exists())
            .count()
    };
    let until = std::time::Instant::now() + std::time::Duration::from_secs(3);
    while std::time::Instant::now() < until && alive() > 0 {
        assert!(panics().is_err());
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(
        alive(),
        0,
        "idle workers of the burst still alive: {burst:?}"
    );
    rwt::set_pool_idle_timeout(rwt::POOL_IDLE_TIMEOUT);
}

/// One pool per process: a worker that served one function serves another.
fn one_pool_serves_every_pool_function() {
    rwt::set_pool_size(1);
    let worker = whoami().unwrap();
    assert_eq!(another_function().unwrap(), worker);
}

/// With the default 30 s idle time, a worker left idle for 6 s is still
/// there and serves the next call (it once died after 5 s: a receive
/// timeout meant for the handshake stayed on its channel).
fn an_idle_worker_lives_until_its_idle_timeout() {
    let worker = whoami().unwrap();
    std::thread::sleep(std::time::Duration::from_secs(6));
    assert_eq!(
        whoami().unwrap(),
        worker,
        "the idle worker did not survive 6 s"
    );
}

fn the_pool_keeps_as_many_idle_workers_as_it_is_told() {
    rwt::set_pool_size(1);
    let a = whoami().unwrap();
    assert_eq!(whoami().unwrap(), a, "one idle worker is kept and reused");
    rwt::set_pool_size(0);
    let fresh: Vec<u32> = (0..5).map(|_| whoami().unwrap()).collect();
    let mut unique = fresh.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(
        unique.len(),
        5,
        "with no idle worker kept every call starts one: {fresh:?}"
    );
    assert!(!fresh.contains(&a));
}

fn idle_workers_retire_after_the_idle_timeout() {
    rwt::set_pool_size(2);
    rwt::set_pool_idle_timeout(std::time::Duration::from_millis(200));
    let worker = whoami().unwrap();
    assert!(std::path::Path::new(&format!("/proc/{worker}")).exists());
    // Retired (its channel closed, so it exits) and reaped within a bound.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    while std::path::Path::new(&format!("/proc/{worker}")).exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "idle worker {worker} never retired"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    rwt::set_pool_idle_timeout(rwt::POOL_IDLE_TIMEOUT);
}
