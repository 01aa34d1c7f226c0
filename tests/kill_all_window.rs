//! `kill_all` cancels a call from the moment it starts, also while its
//! child is still being started: here a fork of a 2 GiB caller, which the
//! kernel takes tens of milliseconds to copy. Alone in its binary:
//! `kill_all` is process-wide.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[rwt::timeout(secs = 10.0)]
fn naps() -> u8 {
    std::thread::sleep(Duration::from_secs(3));
    0
}

#[test]
fn a_kill_all_while_the_child_is_being_forked_cancels_the_call() {
    let big = vec![1u8; 2 << 30];
    std::hint::black_box(&big);
    let started = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&started);
    let call = std::thread::spawn(move || {
        flag.store(true, Ordering::SeqCst);
        let start = Instant::now();
        (naps(), start.elapsed())
    });
    while !started.load(Ordering::SeqCst) {
        std::hint::spin_loop();
    }
    // The call has taken its epoch and is in fork(), copying 2 GiB of
    // page tables (about 16 ms per GiB here).
    std::thread::sleep(Duration::from_millis(10));
    rwt::kill_all();
    let (outcome, elapsed) = call.join().unwrap();
    drop(big);
    assert!(
        matches!(outcome, Err(rwt::Error::Cancelled { .. })),
        "{outcome:?} after {elapsed:?}"
    );
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
}
