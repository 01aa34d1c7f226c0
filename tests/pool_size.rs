//! `rwt::set_pool_size` and `rwt::set_pool_idle_timeout`: how many idle
//! workers the pool keeps, and for how long. One test runs both in turn:
//! the settings are process-wide.

use rwt::timeout;

#[timeout(secs = 5.0, mode = "pool")]
fn whoami() -> u32 {
    std::process::id()
}

#[test]
fn pool_settings_in_turn() {
    an_idle_worker_lives_until_its_idle_timeout();
    the_pool_keeps_as_many_idle_workers_as_it_is_told();
    idle_workers_retire_after_the_idle_timeout();
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
