//! `ntries`: a new attempt after a timeout, a panic, a crash or an `Err`;
//! the last attempt's error with the count; codec errors not retried. In
//! every mode (fork, exec, pool).

mod common;

use std::time::{Duration, Instant};

use common::{append_line, Scratch};

/// A value whose encoding always fails.
#[derive(Debug)]
pub struct Unencodable;

impl serde::Serialize for Unencodable {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom(
            "this value refuses to be encoded",
        ))
    }
}

impl<'de> serde::Deserialize<'de> for Unencodable {
    fn deserialize<D: serde::Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        Ok(Unencodable)
    }
}

fn count(log: &str) -> usize {
    std::fs::read_to_string(log).unwrap().lines().count()
}

in_every_mode! {
    /// Overstays its deadline on the first attempt (left running as an
    /// orphan), panics on the second.
    #[timeout(secs = 0.2, ntries = 2, kill = false)]
    fn overstays_then_panics(log: String) -> u8 {
        append_line(&log, &std::process::id().to_string());
        if count(&log) == 1 {
            std::thread::sleep(Duration::from_millis(800));
            return 0;
        }
        panic!("second attempt")
    }

    /// Panics on the first two attempts, returns on the third.
    #[timeout(secs = 5.0, ntries = 3)]
    fn third_time_lucky(log: String) -> usize {
        append_line(&log, "start");
        let n = count(&log);
        if n < 3 {
            panic!("attempt {n}");
        }
        n
    }

    #[timeout(secs = 0.2, ntries = 3, grace = 0.0)]
    fn always_late(log: String) -> u8 {
        append_line(&log, "start");
        std::thread::sleep(Duration::from_secs(10));
        0
    }

    /// Crashes on the first attempt only.
    #[timeout(secs = 5.0, ntries = 2)]
    fn crashes_once(log: String) -> String {
        append_line(&log, "start");
        if count(&log) == 1 {
            std::process::exit(9);
        }
        "second".into()
    }

    /// Returns `Err` until the second attempt.
    #[timeout(secs = 5.0, ntries = 3)]
    fn flaky(log: String) -> Result<usize, String> {
        append_line(&log, "start");
        let n = count(&log);
        if n < 2 {
            Err(format!("attempt {n} failed"))
        } else {
            Ok(n)
        }
    }

    #[timeout(secs = 5.0, ntries = 3)]
    fn always_err(log: String) -> Result<u8, String> {
        append_line(&log, "start");
        Err(format!("attempt {} failed", count(&log)))
    }

    #[timeout(secs = 5.0)]
    fn single_err() -> Result<u8, String> {
        Err("once".into())
    }

    #[timeout(secs = 5.0, ntries = 3)]
    fn unencodable(log: String) -> Unencodable {
        append_line(&log, "start");
        Unencodable
    }
}

test_in_every_mode! {
    fn a_panic_is_retried_until_an_attempt_succeeds(m) {
        let log = Scratch::new("lucky");
        assert_eq!(m::third_time_lucky(log.arg()).unwrap(), 3);
        assert_eq!(log.lines().len(), 3);
    }

    fn every_attempt_times_out_then_one_timeout_with_the_count(m) {
        let log = Scratch::new("late");
        let start = Instant::now();
        let e = m::always_late(log.arg()).unwrap_err();
        let elapsed = start.elapsed();
        assert!(
            matches!(e, rwt::Error::Timeout { attempts: 3, killed: true, .. }),
            "{e:?}"
        );
        assert!(elapsed >= Duration::from_millis(600), "{elapsed:?}");
        assert!(elapsed < Duration::from_millis(1500), "{elapsed:?}");
        assert_eq!(log.lines().len(), 3);
        let message = e.to_string();
        assert!(
            message.starts_with(
                "function `always_late` timed out after 0.2 s on each of 3 attempts (killed); it was "
            ),
            "{message}"
        );
    }

    fn a_crash_is_retried(m) {
        let log = Scratch::new("crash-once");
        assert_eq!(m::crashes_once(log.arg()).unwrap(), "second");
        assert_eq!(log.lines().len(), 2);
    }

    fn an_err_is_retried_like_an_exception(m) {
        let log = Scratch::new("flaky");
        assert_eq!(m::flaky(log.arg()).unwrap(), Ok(2));
        assert_eq!(log.lines().len(), 2);
    }

    fn when_every_attempt_errs_the_last_err_is_returned_as_a_value(m) {
        let log = Scratch::new("always-err");
        assert_eq!(m::always_err(log.arg()).unwrap(), Err("attempt 3 failed".to_string()));
        assert_eq!(log.lines().len(), 3);
    }

    fn with_one_attempt_an_err_is_returned_at_once(m) {
        assert_eq!(m::single_err().unwrap(), Err("once".to_string()));
    }

    fn a_codec_error_is_not_retried(m) {
        let log = Scratch::new("codec");
        match m::unencodable(log.arg()) {
            Err(rwt::Error::Codec { function, detail, .. }) => {
                assert_eq!(function, "unencodable");
                assert!(detail.contains("refuses to be encoded"), "{detail}");
            }
            other => panic!("expected Codec, got {other:?}"),
        }
        assert_eq!(log.lines().len(), 1);
    }
}

#[test]
fn the_run_time_api_retries_too() {
    let log = Scratch::new("api-retry");
    let path = log.arg();
    let opts = rwt::Options::new().secs(5.0).ntries(2);
    let n = rwt::run_with_timeout(&opts, || {
        append_line(&path, "start");
        let n = count(&path);
        if n == 1 {
            std::process::abort();
        }
        n
    })
    .unwrap();
    assert_eq!(n, 2);
}

test_in_every_mode! {
    /// An orphan of an earlier attempt is reported whatever the last
    /// attempt came to.
    fn an_earlier_attempts_orphan_is_reported_with_a_later_panic(m) {
        let log = Scratch::new("orphan-then-panic");
        let err = m::overstays_then_panics(log.arg()).unwrap_err();
        let first: u32 = log.lines()[0].parse().unwrap();
        let _cleanup = common::KillOnDrop(vec![first]);
        assert!(matches!(err, rwt::Error::Panicked { .. }), "{err:?}");
        assert_eq!(err.orphans(), [first], "{err}");
        assert!(err.to_string().contains(&first.to_string()), "{err}");
    }
}
