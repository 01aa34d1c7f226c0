//! A child that dies without a result is `Error::Crashed`, with the signal
//! or exit code, and quickly: never a timeout, never a wait for a pipe to
//! close. In every mode (fork, exec, pool).

mod common;

use std::time::{Duration, Instant};

use common::{read_pid, KillOnDrop, Scratch};

fn crashed(e: &rwt::Error) -> (Option<i32>, Option<i32>) {
    match e {
        rwt::Error::Crashed {
            signal, exit_code, ..
        } => (*signal, *exit_code),
        other => panic!("expected Crashed, got {other:?}"),
    }
}

in_every_mode! {
    #[timeout(secs = 5.0)]
    fn exits(code: i32) -> u8 {
        std::process::exit(code)
    }

    #[timeout(secs = 5.0)]
    fn aborts() -> u8 {
        std::process::abort()
    }

    #[timeout(secs = 5.0)]
    fn segfaults() -> u8 {
        // A real invalid write: a raised SIGSEGV would only reach std's
        // stack-overflow handler, which returns when there was no fault.
        // SAFETY: none; this is the crash under test, in a child process.
        unsafe { std::ptr::null_mut::<u8>().write_volatile(1) };
        0
    }

    #[timeout(secs = 10.0)]
    fn waits_to_be_killed(pid_file: String) -> u8 {
        common::note_pid_and_sleep(&pid_file, Duration::from_secs(30));
        0
    }

    #[timeout(secs = 5.0)]
    fn holds_the_floor(secs: u64) -> u8 {
        std::thread::sleep(Duration::from_secs(secs));
        0
    }
}

test_in_every_mode! {
    fn process_exit_is_a_crash_with_its_code_even_zero(m) {
        let e = m::exits(3).unwrap_err();
        assert_eq!(crashed(&e), (None, Some(3)));
        assert_eq!(
            e.to_string(),
            "function `exits` crashed: exited with code 3 without returning a result"
        );
        assert_eq!(crashed(&m::exits(0).unwrap_err()), (None, Some(0)));
    }

    fn abort_is_sigabrt(m) {
        assert_eq!(crashed(&m::aborts().unwrap_err()), (Some(6), None));
    }

    fn a_segfault_is_sigsegv(m) {
        let e = m::segfaults().unwrap_err();
        assert_eq!(crashed(&e), (Some(11), None));
        assert!(e.to_string().ends_with("killed by signal 11 (SIGSEGV)"), "{e}");
    }

    fn a_sigkill_rwt_did_not_send_is_a_crash_not_a_timeout(m) {
        let pid_file = Scratch::new("killed-by-other");
        let path = pid_file.path().to_owned();
        let killer = std::thread::spawn(move || {
            let pid = read_pid(&path, Duration::from_secs(5)).expect("child started");
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            pid
        });
        let start = Instant::now();
        let e = m::waits_to_be_killed(pid_file.arg()).unwrap_err();
        let pid = killer.join().unwrap();
        let _cleanup = KillOnDrop(vec![pid]);
        assert_eq!(crashed(&e), (Some(9), None));
        assert!(start.elapsed() < Duration::from_secs(5));
    }

    fn a_sibling_holding_the_pipe_does_not_delay_a_crash(m) {
        // Another thread's call forks while this one's pipes exist: its child
        // lives 3 s. Exits here must still be seen at once, not at its end.
        let sibling = std::thread::spawn(|| m::holds_the_floor(3));
        std::thread::sleep(Duration::from_millis(50));
        for _ in 0..5 {
            let start = Instant::now();
            assert_eq!(crashed(&m::exits(0).unwrap_err()), (None, Some(0)));
            assert!(start.elapsed() < Duration::from_millis(500), "{:?}", start.elapsed());
        }
        assert_eq!(sibling.join().unwrap().unwrap(), 0);
    }
}
