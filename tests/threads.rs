//! Calls from many threads at once are independent: right answers, no
//! call delayed by another's, rwt's own locks never inherited held. In both
//! modes.

mod common;

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rwt::timeout;

in_every_mode! {
    #[timeout(secs = 5.0)]
    fn tag(thread: u32, i: u32) -> (u32, u32, u32) {
        (thread, i, std::process::id())
    }

    #[timeout(secs = 3.0)]
    fn slow() -> u8 {
        std::thread::sleep(Duration::from_secs(10));
        0
    }

    #[timeout(secs = 5.0)]
    fn quick(i: u32) -> u32 {
        i + 1
    }

    /// Takes the locks another thread of the caller holds all the time.
    #[timeout(secs = 2.0)]
    fn takes_stdout_and_stderr(i: u32) -> u32 {
        let out = std::io::stdout();
        let _o = out.lock();
        let err = std::io::stderr();
        let _e = err.lock();
        i
    }

    #[timeout(secs = 5.0)]
    fn nested_outer(depth: u32) -> Result<u32, String> {
        if depth == 0 {
            return Ok(0);
        }
        match nested_outer(depth - 1) {
            Ok(Ok(n)) => Ok(n + 1),
            Ok(Err(e)) => Err(e),
            Err(e) => Err(e.to_string()),
        }
    }

    #[timeout(secs = 2.0)]
    fn nested_with_inner_timeout() -> String {
        #[timeout(secs = 0.1)]
        fn inner() -> u8 {
            std::thread::sleep(Duration::from_secs(10));
            0
        }
        match inner() {
            Err(e) if e.is_timeout() => format!("inner: {e}"),
            other => format!("unexpected: {other:?}"),
        }
    }
}

/// Sets the flag when dropped: lock-hogging threads stop even if an
/// assertion fails first.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

test_in_every_mode! {
    fn many_threads_get_their_own_answers(m) {
        let handles: Vec<_> = (0..16)
            .map(|t| {
                std::thread::spawn(move || {
                    for i in 0..20 {
                        let (tt, ii, pid) = m::tag(t, i).unwrap();
                        assert_eq!((tt, ii), (t, i));
                        assert_ne!(pid, std::process::id());
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    }

    fn a_timing_out_call_never_delays_another_threads_calls(m) {
        let slow_call = std::thread::spawn(|| {
            let start = Instant::now();
            let r = m::slow();
            (r, start.elapsed())
        });
        std::thread::sleep(Duration::from_millis(50));
        let start = Instant::now();
        for i in 0..50 {
            let t = Instant::now();
            assert_eq!(m::quick(i).unwrap(), i + 1);
            assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
        }
        // All fifty were done long before the slow call's deadline.
        assert!(start.elapsed() < Duration::from_secs(2), "{:?}", start.elapsed());
        let (r, elapsed) = slow_call.join().unwrap();
        assert!(r.unwrap_err().is_timeout());
        assert!(elapsed < Duration::from_millis(3500), "{elapsed:?}");
    }

    fn children_never_inherit_the_stdio_locks_held(m) {
        let stop = Arc::new(AtomicBool::new(false));
        let _stop = StopOnDrop(Arc::clone(&stop));
        for n in 0..2 {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if n == 0 {
                        let _ = std::io::stdout().lock().write_all(b"");
                    } else {
                        let _ = std::io::stderr().lock().write_all(b"");
                    }
                    std::hint::spin_loop();
                }
            });
        }
        for i in 0..200 {
            assert_eq!(m::takes_stdout_and_stderr(i).unwrap(), i, "call {i}");
        }
    }

    fn nested_calls_work_and_an_inner_timeout_reaches_the_outer_body(m) {
        assert_eq!(m::nested_outer(3).unwrap(), Ok(3));
        let inner = m::nested_with_inner_timeout().unwrap();
        assert!(
            inner.starts_with("inner: function `inner` timed out after 0.1 s (killed); it was "),
            "{inner}"
        );
    }
}
