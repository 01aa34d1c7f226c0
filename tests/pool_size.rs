//! `rwt::set_pool_size`: how many idle workers the pool keeps. Alone in its
//! binary: the setting is process-wide.

use rwt::timeout;

#[timeout(secs = 5.0, mode = "pool")]
fn whoami() -> u32 {
    std::process::id()
}

#[test]
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
