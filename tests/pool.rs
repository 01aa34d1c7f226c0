//! What pool mode adds: warm workers reused (their statics live on), no
//! queueing, and a failed worker that never hurts the next call.

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::{reaped, wait_until, KillOnDrop};
use rwt::timeout;

static SERVED: AtomicU32 = AtomicU32::new(0);

/// The worker's pid and how many calls it has served.
#[timeout(secs = 5.0, mode = "pool")]
fn count() -> (u32, u32) {
    (
        std::process::id(),
        SERVED.fetch_add(1, Ordering::SeqCst) + 1,
    )
}

#[test]
fn a_worker_serves_call_after_call_and_its_statics_live_on() {
    let served: Vec<(u32, u32)> = (0..20).map(|_| count().unwrap()).collect();
    // Other tests share the pool: look at each worker's own sequence.
    let mut most = 0;
    for pid in served.iter().map(|s| s.0) {
        let counts: Vec<u32> = served.iter().filter(|s| s.0 == pid).map(|s| s.1).collect();
        assert!(counts.windows(2).all(|w| w[0] < w[1]), "{pid}: {counts:?}");
        most = most.max(counts.len());
    }
    assert!(most >= 2, "no worker served twice: {served:?}");
    assert_ne!(served[0].0, std::process::id());
}

static DROPPED: AtomicU32 = AtomicU32::new(0);

/// A result that counts, in the process where it is dropped, its drops.
#[derive(serde::Serialize, serde::Deserialize)]
struct Counted(u32);

impl Drop for Counted {
    fn drop(&mut self) {
        DROPPED.fetch_add(1, Ordering::SeqCst);
    }
}

#[timeout(secs = 5.0, mode = "pool")]
fn counted() -> Counted {
    Counted(std::process::id())
}

/// The worker's pid and how many `Counted` it has dropped.
#[timeout(secs = 5.0, mode = "pool")]
fn dropped_in_worker() -> (u32, u32) {
    (std::process::id(), DROPPED.load(Ordering::SeqCst))
}

/// A worker drops each result once it is sent (it used to forget them, as
/// a child that exits may: a worker then grew by every result it returned).
#[test]
fn a_worker_drops_each_result_once_sent() {
    let pids: Vec<u32> = (0..10).map(|_| counted().unwrap().0).collect();
    // Other tests share the pool: ask until a worker that served us answers.
    let asked: Vec<(u32, u32)> = (0..20).map(|_| dropped_in_worker().unwrap()).collect();
    let (pid, dropped) = *asked
        .iter()
        .find(|(pid, _)| pids.contains(pid))
        .expect("no worker that served us answered");
    let served = pids.iter().filter(|&&p| p == pid).count();
    assert_eq!(
        dropped as usize, served,
        "worker {pid}; results from {pids:?}"
    );
}

#[timeout(secs = 5.0, mode = "pool")]
fn whoami() -> u32 {
    std::process::id()
}

#[timeout(secs = 0.2, mode = "pool")]
fn hangs(pid_file: String) -> u8 {
    common::note_pid_and_sleep(&pid_file, Duration::from_secs(30));
    0
}

#[test]
fn a_timed_out_worker_is_gone_and_the_next_call_gets_another() {
    let pid_file = common::Scratch::new("pool-hang");
    assert!(hangs(pid_file.arg()).unwrap_err().is_timeout());
    let dead = common::read_pid(pid_file.path(), Duration::ZERO).unwrap();
    let _cleanup = KillOnDrop(vec![dead]);
    assert!(reaped(dead), "the timed-out worker {dead} is still there");
    let start = Instant::now();
    let next = whoami().unwrap();
    assert_ne!(next, dead);
    assert!(start.elapsed() < Duration::from_secs(1));
}

#[timeout(secs = 5.0, mode = "pool")]
fn panics_in(pid_file: String) -> u8 {
    common::note_pid(&pid_file);
    panic!("worker trouble")
}

#[test]
fn every_panic_report_arrives_and_the_worker_is_replaced() {
    for _ in 0..8 {
        let pid_file = common::Scratch::new("pool-panic");
        match panics_in(pid_file.arg()) {
            Err(rwt::Error::Panicked { message, .. }) => {
                assert!(
                    message.starts_with("worker trouble (tests/pool.rs:"),
                    "{message}"
                );
            }
            other => panic!("{other:?}"),
        }
        let dead = common::read_pid(pid_file.path(), Duration::ZERO).unwrap();
        assert!(wait_until(Duration::from_secs(1), || reaped(dead)));
        assert_ne!(whoami().unwrap(), dead);
    }
}

#[timeout(secs = 5.0, mode = "pool")]
fn exits_in(pid_file: String) -> u8 {
    common::note_pid(&pid_file);
    std::process::exit(4)
}

#[test]
fn a_crashed_worker_is_reported_and_replaced() {
    let pid_file = common::Scratch::new("pool-crash");
    match exits_in(pid_file.arg()) {
        Err(rwt::Error::Crashed { exit_code, .. }) => assert_eq!(exit_code, Some(4)),
        other => panic!("{other:?}"),
    }
    let dead = common::read_pid(pid_file.path(), Duration::ZERO).unwrap();
    assert_ne!(whoami().unwrap(), dead);
}

#[test]
fn an_idle_worker_killed_from_outside_does_not_fail_the_next_call() {
    let idle = whoami().unwrap();
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(idle as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
    assert!(wait_until(Duration::from_secs(1), || !common::alive(idle)));
    for _ in 0..5 {
        assert_ne!(whoami().unwrap(), idle);
    }
}

#[timeout(secs = 5.0, mode = "pool")]
fn takes(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

#[test]
fn twelve_concurrent_calls_never_wait_for_each_other() {
    let start = Instant::now();
    let calls: Vec<_> = (0..12)
        .map(|_| std::thread::spawn(|| takes(300).unwrap()))
        .collect();
    for c in calls {
        assert_eq!(c.join().unwrap(), 300);
    }
    // Queued behind two workers they would take 1.8 s.
    assert!(
        start.elapsed() < Duration::from_millis(900),
        "{:?}",
        start.elapsed()
    );
}

/// A value whose drop takes 800 ms (a large structure, a destructor that
/// flushes).
#[derive(serde::Serialize, serde::Deserialize, Debug)]
pub struct SlowToDrop(u8);

impl Drop for SlowToDrop {
    fn drop(&mut self) {
        std::thread::sleep(std::time::Duration::from_millis(800));
    }
}

#[rwt::timeout(secs = 5.0, mode = "pool")]
fn slow_to_drop() -> SlowToDrop {
    SlowToDrop(7)
}

/// The worker drops a value before it answers: the drop counts toward the
/// call that made the value, and a worker that answered is free at once,
/// so no later call waits for an earlier call's drop.
#[test]
fn a_values_drop_counts_toward_its_own_call() {
    let start = Instant::now();
    let value = slow_to_drop().unwrap();
    let elapsed = start.elapsed();
    assert_eq!(value.0, 7);
    // The caller's copy would sleep too: the point is the worker's drop.
    std::mem::forget(value);
    assert!(elapsed >= Duration::from_millis(800), "{elapsed:?}");
}
