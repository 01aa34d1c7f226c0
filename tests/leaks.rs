//! No file descriptor, thread or zombie leaks over many calls of every
//! outcome. One test alone in its binary: it counts process-wide resources.

mod common;

use std::time::Duration;

use common::{fd_count, thread_count, wait_until, zombie_children, KillOnDrop};

in_both_modes! {
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

macro_rules! thousand_calls {
    ($m:ident, $orphans:ident) => {
        for i in 0..1000u32 {
            match i % 10 {
                0 => assert!(matches!($m::panics(), Err(rwt::Error::Panicked { .. }))),
                1 => assert!(matches!($m::exits(), Err(rwt::Error::Crashed { .. }))),
                2 => assert!($m::spins().unwrap_err().is_timeout()),
                3 if i % 50 == 3 => {
                    let e = $m::overstays().unwrap_err();
                    $orphans.0.extend_from_slice(e.orphans());
                }
                _ => assert_eq!($m::ok(i).unwrap(), i),
            }
        }
    };
}

/// Both modes in one test: the counts are process-wide, so nothing else
/// may run beside it.
#[test]
fn a_thousand_calls_of_every_outcome_in_each_mode_leak_nothing() {
    // Warm up: the first calls set up what lives for the whole process.
    fork::ok(0).unwrap();
    exec::ok(0).unwrap();
    let (fds, threads) = (fd_count(), thread_count());
    let mut orphans = KillOnDrop::default();
    thousand_calls!(fork, orphans);
    thousand_calls!(exec, orphans);
    assert_eq!(orphans.0.len(), 40);
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
    assert_eq!(fd_count(), fds, "file descriptors leaked");
    assert_eq!(zombie_children(), Vec::<u32>::new());
}
