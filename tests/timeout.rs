//! Deadlines: the call comes back on time whatever the child does, the
//! child is killed (SIGTERM first when `grace` asks for it) and reaped. In
//! every mode (fork, exec, pool).

mod common;

use std::time::{Duration, Instant};

use common::{read_pid, reaped, KillOnDrop, Scratch};

/// Generous upper bound past the deadline (plus grace) for a call to return.
const SLACK: Duration = Duration::from_millis(500);

/// The path a SIGTERM handler writes, set by the function in its child.
static TERM_MARKER: std::sync::OnceLock<std::ffi::CString> = std::sync::OnceLock::new();

extern "C" fn on_term(_: i32) {
    if let Some(path) = TERM_MARKER.get() {
        // SAFETY: open/close/_exit are async-signal-safe; the path is a
        // valid C string that lives for the whole program.
        unsafe {
            let fd = nix::libc::open(
                path.as_ptr(),
                nix::libc::O_CREAT | nix::libc::O_WRONLY,
                0o600,
            );
            nix::libc::close(fd);
            nix::libc::_exit(0);
        }
    }
}

in_every_mode! {
    #[timeout(secs = 0.2)]
    fn sleepy(pid_file: String) -> u32 {
        common::note_pid_and_sleep(&pid_file, Duration::from_secs(30));
        1
    }

    #[timeout(secs = 0.2)]
    fn spin() -> u64 {
        let mut x = 0u64;
        loop {
            x = std::hint::black_box(x.wrapping_add(1));
        }
    }

    /// Ignores SIGTERM: only SIGKILL, after the grace, ends it.
    #[timeout(secs = 0.2, grace = 0.4)]
    fn stubborn(pid_file: String) -> u8 {
        // SAFETY: SIG_IGN installs no handler code.
        unsafe {
            nix::sys::signal::signal(
                nix::sys::signal::Signal::SIGTERM,
                nix::sys::signal::SigHandler::SigIgn,
            )
            .unwrap();
        }
        common::note_pid(&pid_file);
        loop {
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Handles SIGTERM by leaving a marker and exiting at once.
    #[timeout(secs = 0.2, grace = 5.0)]
    fn tidy(marker: String) -> u8 {
        let _ = TERM_MARKER.set(std::ffi::CString::new(marker).unwrap());
        let action = nix::sys::signal::SigAction::new(
            nix::sys::signal::SigHandler::Handler(on_term),
            nix::sys::signal::SaFlags::empty(),
            nix::sys::signal::SigSet::empty(),
        );
        // SAFETY: the handler only calls async-signal-safe functions.
        unsafe { nix::sys::signal::sigaction(nix::sys::signal::Signal::SIGTERM, &action) }.unwrap();
        loop {
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stops itself: SIGTERM cannot act until SIGCONT.
    #[timeout(secs = 0.2, grace = 2.0)]
    fn stops_itself(pid_file: String) -> u8 {
        common::note_pid(&pid_file);
        nix::sys::signal::raise(nix::sys::signal::Signal::SIGSTOP).unwrap();
        0
    }

    /// Takes about the deadline: 49 to 51 ms.
    #[timeout(secs = 0.05)]
    fn at_the_edge(i: u32) -> u32 {
        std::thread::sleep(Duration::from_micros(49_000 + u64::from(i * 7919 % 2001)));
        i
    }

    #[timeout(secs = 2.0)]
    fn in_time() -> u8 {
        std::thread::sleep(Duration::from_millis(50));
        3
    }
}

test_in_every_mode! {
    fn a_sleeping_child_times_out_and_is_killed_and_reaped(m) {
        let pid_file = Scratch::new("sleepy");
        let start = Instant::now();
        let err = m::sleepy(pid_file.arg()).unwrap_err();
        let elapsed = start.elapsed();
        let pid = read_pid(pid_file.path(), Duration::ZERO).expect("the child ran");
        let _cleanup = KillOnDrop(vec![pid]);
        assert!(err.is_timeout(), "{err}");
        assert!(elapsed >= Duration::from_millis(200), "{elapsed:?}");
        assert!(elapsed < Duration::from_millis(200) + SLACK, "{elapsed:?}");
        assert!(reaped(pid), "pid {pid} is still in the process table");
        match &err {
            rwt::Error::Timeout { function, secs, attempts, killed, orphans, .. } => {
                assert_eq!(function, "sleepy");
                assert_eq!(*secs, 0.2);
                assert_eq!(*attempts, 1);
                assert!(*killed);
                assert!(orphans.is_empty());
            }
            other => panic!("{other:?}"),
        }
        // The message ends with what the child was doing (its sleep).
        let message = err.to_string();
        assert!(
            message.starts_with("function `sleepy` timed out after 0.2 s (killed); it was blocked in "),
            "{message}"
        );
    }

    fn a_busy_loop_times_out(m) {
        let start = Instant::now();
        assert!(m::spin().unwrap_err().is_timeout());
        assert!(start.elapsed() < Duration::from_millis(200) + SLACK);
    }

    fn a_child_that_ignores_sigterm_is_killed_after_the_grace(m) {
        let pid_file = Scratch::new("stubborn");
        let start = Instant::now();
        let err = m::stubborn(pid_file.arg()).unwrap_err();
        let elapsed = start.elapsed();
        let pid = read_pid(pid_file.path(), Duration::ZERO).expect("the child ran");
        let _cleanup = KillOnDrop(vec![pid]);
        assert!(err.is_timeout(), "{err}");
        assert!(elapsed >= Duration::from_millis(600), "{elapsed:?}");
        assert!(elapsed < Duration::from_millis(600) + SLACK, "{elapsed:?}");
        assert!(reaped(pid));
    }

    fn with_grace_sigterm_comes_first_and_the_grace_ends_when_the_child_is_gone(m) {
        let marker = Scratch::new("term-marker");
        let start = Instant::now();
        let err = m::tidy(marker.arg()).unwrap_err();
        let elapsed = start.elapsed();
        assert!(err.is_timeout(), "{err}");
        assert!(marker.path().exists(), "the child never saw SIGTERM");
        // Not the 5 s grace: the child left on SIGTERM.
        assert!(elapsed < Duration::from_millis(200) + SLACK, "{elapsed:?}");
    }

    fn a_call_that_finishes_in_time_is_not_held_to_the_deadline(m) {
        let start = Instant::now();
        assert_eq!(m::in_time().unwrap(), 3);
        assert!(start.elapsed() < Duration::from_secs(1));
    }

    fn a_stopped_child_still_times_out_on_time_and_dies(m) {
        let pid_file = Scratch::new("stopped");
        let start = Instant::now();
        let e = m::stops_itself(pid_file.arg()).unwrap_err();
        let elapsed = start.elapsed();
        let pid = read_pid(pid_file.path(), Duration::ZERO).expect("child ran");
        let _cleanup = KillOnDrop(vec![pid]);
        assert!(e.is_timeout(), "{e}");
        // SIGCONT after SIGTERM: the stopped child dies at once, well
        // before the 2 s grace.
        assert!(elapsed < Duration::from_millis(700), "{elapsed:?}");
        assert!(reaped(pid));
    }

    fn at_the_deadline_edge_only_a_right_value_or_a_timeout(m) {
        // 2,000 calls over 4 threads.
        let calls = 500;
        let threads: Vec<_> = (0..4u32)
            .map(|t| {
                std::thread::spawn(move || {
                    let (mut ok, mut late) = (0, 0);
                    for n in 0..calls {
                        let i = t * 10_000 + n;
                        let start = Instant::now();
                        match m::at_the_edge(i) {
                            Ok(v) => {
                                assert_eq!(v, i);
                                ok += 1;
                            }
                            Err(e) if e.is_timeout() => late += 1,
                            Err(e) => panic!("call {i}: {e:?}"),
                        }
                        assert!(start.elapsed() < Duration::from_millis(550), "{:?}", start.elapsed());
                    }
                    (ok, late)
                })
            })
            .collect();
        let total: u32 = threads.into_iter().map(|h| { let (a, b) = h.join().unwrap(); a + b }).sum();
        assert_eq!(total, 4 * calls);
    }
}
