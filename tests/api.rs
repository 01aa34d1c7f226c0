//! The run-time API: `Options` and `run_with_timeout`, for deadlines known
//! only at run time.

use std::time::{Duration, Instant};

use rwt::{run_with_timeout, Error, Options};

#[test]
fn a_closure_returns_its_value_with_captured_state() {
    let base = [1u64, 2, 3];
    let opts = Options::new().secs(5.0);
    let sum: u64 = run_with_timeout(&opts, || base.iter().sum()).unwrap();
    assert_eq!(sum, 6);
}

#[test]
fn defaults_are_one_second_one_try_kill() {
    let start = Instant::now();
    let r: Result<u8, Error> = run_with_timeout(&Options::default(), || loop {
        std::thread::sleep(Duration::from_millis(10));
    });
    match r {
        Err(Error::Timeout {
            secs,
            attempts,
            killed,
            ..
        }) => assert_eq!((secs, attempts, killed), (1.0, 1, true)),
        other => panic!("{other:?}"),
    }
    let elapsed = start.elapsed();
    assert!(elapsed >= Duration::from_secs(1) && elapsed < Duration::from_millis(1500));
}

#[test]
fn invalid_options_are_errors_and_start_nothing() {
    let cases = [
        Options::new().secs(f64::NAN),
        Options::new().secs(-0.0),
        Options::new().secs(1e300),
        Options::new().secs(1e-12),
        Options::new().ntries(0),
        Options::new().grace(-1.0),
        Options::new().grace(f64::INFINITY),
    ];
    for opts in cases {
        let ran = std::sync::atomic::AtomicBool::new(false);
        let r = run_with_timeout(&opts, || {
            ran.store(true, std::sync::atomic::Ordering::SeqCst);
            0u8
        });
        match r {
            Err(e @ Error::InvalidOptions { .. }) => {
                assert!(e.to_string().starts_with("invalid rwt options: `"), "{e}");
            }
            other => panic!("{opts:?}: {other:?}"),
        }
    }
}

#[test]
fn a_deadline_of_a_century_is_accepted() {
    let opts = Options::new().secs(3.0e9);
    let r = run_with_timeout(&opts, || {
        std::thread::sleep(Duration::from_millis(10));
        1u8
    });
    assert_eq!(r.unwrap(), 1);
}

#[test]
fn an_err_from_a_closure_is_a_value_and_not_retried() {
    let opts = Options::new().secs(5.0).ntries(3);
    let r: Result<Result<u8, String>, Error> = run_with_timeout(&opts, || Err("no".into()));
    assert_eq!(r.unwrap(), Err("no".to_string()));
}

#[test]
fn errors_are_std_errors_and_spawn_keeps_its_source() {
    let e: Box<dyn std::error::Error + Send + Sync> = Box::new(Error::Spawn {
        function: "f".into(),
        source: std::io::Error::from_raw_os_error(11),
    });
    assert!(e.source().is_some());
    assert!(e
        .to_string()
        .starts_with("function `f`: could not start a child process"));
}

/// The range rules exist twice by necessity: the attribute checks a literal
/// at compile time (with a span, tests/ui), the runtime checks `Options`.
/// This pins that both say the same rule for the same value: reword or move
/// a bound in one place only, and this fails.
#[test]
fn the_run_time_rules_are_the_compile_time_ones() {
    let cases = [
        ("secs-zero", Options::new().secs(0.0)),
        ("secs-below-1ms", Options::new().secs(1e-12)),
        ("secs-negative", Options::new().secs(-1.0)),
        ("secs-infinite", Options::new().secs(f64::INFINITY)),
        ("secs-over-100-years", Options::new().secs(4e9)),
        ("grace-negative", Options::new().grace(-0.5)),
        ("cpu-zero", Options::new().cpu(0.0)),
        ("cpu-negative", Options::new().cpu(-1.5)),
    ];
    for (ui, opts) in cases {
        let path = format!("{}/tests/ui/{ui}.stderr", env!("CARGO_MANIFEST_DIR"));
        let stderr = std::fs::read_to_string(&path).unwrap();
        let rule = stderr
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("error: "))
            .unwrap_or_else(|| panic!("{path}: no error line"));
        let Err(Error::InvalidOptions { detail }) = run_with_timeout(&opts, || 0u8) else {
            panic!("{ui}: accepted at run time");
        };
        assert!(
            detail.starts_with(rule),
            "{ui}: compile time says {rule:?}, run time {detail:?}"
        );
    }
}
