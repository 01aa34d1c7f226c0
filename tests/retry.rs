//! `ntries`: a new attempt after a timeout, a panic, a crash or an `Err`;
//! the last attempt's error with the count; codec errors not retried.

mod common;

use std::time::{Duration, Instant};

use common::{append_line, Scratch};
use rwt::timeout;

/// Panics on the first two attempts, returns on the third.
#[timeout(secs = 5.0, ntries = 3)]
fn third_time_lucky(log: String) -> usize {
    append_line(&log, "start");
    let n = std::fs::read_to_string(&log).unwrap().lines().count();
    if n < 3 {
        panic!("attempt {n}");
    }
    n
}

#[test]
fn a_panic_is_retried_until_an_attempt_succeeds() {
    let log = Scratch::new("lucky");
    assert_eq!(third_time_lucky(log.arg()).unwrap(), 3);
    assert_eq!(log.lines().len(), 3);
}

#[timeout(secs = 0.2, ntries = 3, grace = 0.0)]
fn always_late(log: String) -> u8 {
    append_line(&log, "start");
    std::thread::sleep(Duration::from_secs(10));
    0
}

#[test]
fn every_attempt_times_out_then_one_timeout_with_the_count() {
    let log = Scratch::new("late");
    let start = Instant::now();
    let e = always_late(log.arg()).unwrap_err();
    let elapsed = start.elapsed();
    assert!(
        matches!(
            e,
            rwt::Error::Timeout {
                attempts: 3,
                killed: true,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(elapsed >= Duration::from_millis(600), "{elapsed:?}");
    assert!(elapsed < Duration::from_millis(1500), "{elapsed:?}");
    assert_eq!(log.lines().len(), 3);
    assert_eq!(
        e.to_string(),
        "function `always_late` timed out after 0.2 s on each of 3 attempts (killed)"
    );
}

/// Crashes on the first attempt only.
#[timeout(secs = 5.0, ntries = 2)]
fn crashes_once(log: String) -> String {
    append_line(&log, "start");
    if std::fs::read_to_string(&log).unwrap().lines().count() == 1 {
        std::process::exit(9);
    }
    "second".into()
}

#[test]
fn a_crash_is_retried() {
    let log = Scratch::new("crash-once");
    assert_eq!(crashes_once(log.arg()).unwrap(), "second");
    assert_eq!(log.lines().len(), 2);
}

/// Returns `Err` until the second attempt.
#[timeout(secs = 5.0, ntries = 3)]
fn flaky(log: String) -> Result<usize, String> {
    append_line(&log, "start");
    let n = std::fs::read_to_string(&log).unwrap().lines().count();
    if n < 2 {
        Err(format!("attempt {n} failed"))
    } else {
        Ok(n)
    }
}

#[test]
fn an_err_is_retried_like_an_exception() {
    let log = Scratch::new("flaky");
    assert_eq!(flaky(log.arg()).unwrap(), Ok(2));
    assert_eq!(log.lines().len(), 2);
}

#[timeout(secs = 5.0, ntries = 3)]
fn always_err(log: String) -> Result<u8, String> {
    append_line(&log, "start");
    let n = std::fs::read_to_string(&log).unwrap().lines().count();
    Err(format!("attempt {n} failed"))
}

#[test]
fn when_every_attempt_errs_the_last_err_is_returned_as_a_value() {
    let log = Scratch::new("always-err");
    assert_eq!(
        always_err(log.arg()).unwrap(),
        Err("attempt 3 failed".to_string())
    );
    assert_eq!(log.lines().len(), 3);
}

#[timeout(secs = 5.0)]
fn single_err() -> Result<u8, String> {
    Err("once".into())
}

#[test]
fn with_one_attempt_an_err_is_returned_at_once() {
    assert_eq!(single_err().unwrap(), Err("once".to_string()));
}

/// A value whose encoding always fails.
#[derive(Debug)]
struct Unencodable;

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

#[timeout(secs = 5.0, ntries = 3)]
fn unencodable(log: String) -> Unencodable {
    append_line(&log, "start");
    Unencodable
}

#[test]
fn a_codec_error_is_not_retried() {
    let log = Scratch::new("codec");
    match unencodable(log.arg()) {
        Err(rwt::Error::Codec { function, detail }) => {
            assert_eq!(function, "unencodable");
            assert!(detail.contains("refuses to be encoded"), "{detail}");
        }
        other => panic!("expected Codec, got {other:?}"),
    }
    assert_eq!(log.lines().len(), 1);
}

#[test]
fn the_run_time_api_retries_too() {
    let log = Scratch::new("api-retry");
    let path = log.arg();
    let opts = rwt::Options::new().secs(5.0).ntries(2);
    let n = rwt::run_with_timeout(&opts, || {
        append_line(&path, "start");
        let n = std::fs::read_to_string(&path).unwrap().lines().count();
        if n == 1 {
            std::process::abort();
        }
        n
    })
    .unwrap();
    assert_eq!(n, 2);
}
