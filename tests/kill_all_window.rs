//! `kill_all` cancels a call from the moment it starts, also while its
//! child is still being started. Here the call is held, deterministically,
//! between its start and its fork: a fork-mode call takes the stdout lock
//! before it forks, and this test holds that lock until `kill_all` has run.
//! (In real programs the same window is a fork of a large caller, which the
//! kernel takes tens of milliseconds to copy.) Alone in its binary:
//! `kill_all` is process-wide.

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[rwt::timeout(secs = 10.0)]
fn naps() -> u8 {
    std::thread::sleep(Duration::from_secs(3));
    0
}

/// The system call a thread of this process is blocked in (`/proc`'s
/// first field), or `None` while it runs.
fn syscall_of(tid: i32) -> Option<i64> {
    let text = std::fs::read_to_string(format!("/proc/self/task/{tid}/syscall")).ok()?;
    text.split_whitespace().next()?.parse().ok()
}

#[test]
fn a_kill_all_while_the_call_starts_its_child_cancels_it() {
    let stdout = std::io::stdout();
    let held = stdout.lock();
    let tid = Arc::new(AtomicI32::new(0));
    let told = Arc::clone(&tid);
    let call = std::thread::spawn(move || {
        told.store(nix::unistd::gettid().as_raw(), Ordering::SeqCst);
        let start = Instant::now();
        (naps(), start.elapsed())
    });
    let tid = loop {
        match tid.load(Ordering::SeqCst) {
            0 => std::thread::yield_now(),
            tid => break tid,
        }
    };
    // The call waits for the stdout lock (a futex) on its way to fork: it
    // has started, and its child does not exist yet.
    let give_up = Instant::now() + Duration::from_secs(10);
    while syscall_of(tid) != Some(nix::libc::SYS_futex) {
        assert!(Instant::now() < give_up, "the call never waited for stdout");
        std::thread::sleep(Duration::from_millis(1));
    }
    rwt::kill_all();
    drop(held);
    let (outcome, elapsed) = call.join().unwrap();
    assert!(
        matches!(outcome, Err(rwt::Error::Cancelled { .. })),
        "{outcome:?} after {elapsed:?}"
    );
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
}
