//! Every kind of test `#[rwt::test]` must handle, once per mode. Many fail
//! on purpose: tests/test_attribute.rs (in rwt) runs this file and checks
//! libtest's report line by line.

use std::path::PathBuf;
use std::time::Duration;

/// Where the tests leave what the checker reads (pids, attempt counts).
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::var_os("RWT_FIXTURE_DIR")
        .map_or_else(std::env::temp_dir, PathBuf::from);
    dir.join(name)
}

/// This attempt's number, counted in a file (each attempt is a new child).
fn attempt(name: &str) -> u32 {
    let path = scratch(name);
    let n = std::fs::read_to_string(&path)
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .unwrap_or(0)
        + 1;
    std::fs::write(&path, n.to_string()).unwrap();
    n
}

/// An error type that cannot cross processes: only its `Debug` does.
#[derive(Debug)]
#[allow(dead_code)] // read through Debug only
struct ParseError {
    line: u32,
}

macro_rules! cases {
    ($module:ident, $mode:literal) => {
        mod $module {
            use super::*;

            #[rwt::test(secs = 5, mode = $mode)]
            fn passes() {
                println!("passes: a line on stdout");
                eprintln!("passes: a line on stderr");
            }

            #[rwt::test(secs = 5, mode = $mode)]
            fn fails() {
                println!("fails: a line on stdout");
                eprintln!("fails: a line on stderr");
                assert_eq!(1 + 1, 3, "arithmetic still works");
            }

            #[rwt::test(secs = 1, mode = $mode)]
            fn hangs() {
                let pid = std::process::id().to_string();
                std::fs::write(scratch(concat!("hangs-", $mode, ".pid")), pid).unwrap();
                // A grandchild: the timeout's group kill must take it too.
                let sleeper = std::process::Command::new("sleep").arg("3600").spawn().unwrap();
                let pid = sleeper.id().to_string();
                std::fs::write(scratch(concat!("hangs-grandchild-", $mode, ".pid")), pid).unwrap();
                println!("hangs: about to sleep");
                std::thread::sleep(Duration::from_secs(3600));
            }

            #[rwt::test(secs = 5, mode = $mode)]
            fn sleeps() {
                std::thread::sleep(Duration::from_millis(300));
            }

            #[rwt::test(secs = 5, mode = $mode)]
            fn aborts() {
                println!("aborts: about to abort");
                std::process::abort();
            }

            #[rwt::test(secs = 5, mode = $mode)]
            #[should_panic(expected = "the right message")]
            fn should_panic_right() {
                panic!("this is the right message");
            }

            #[rwt::test(secs = 5, mode = $mode)]
            #[should_panic(expected = "the right message")]
            fn should_panic_wrong() {
                panic!("a wrong message");
            }

            #[rwt::test(secs = 0.5, mode = $mode)]
            #[should_panic]
            fn should_panic_but_hangs() {
                std::thread::sleep(Duration::from_secs(3600));
            }

            /// rustc expands the `cfg_attr` before rwt sees the test: rwt
            /// judges the `should_panic`, and a timeout is not the panic.
            #[rwt::test(secs = 0.5, mode = $mode)]
            #[cfg_attr(unix, should_panic)]
            fn should_panic_via_cfg_attr() {
                std::thread::sleep(Duration::from_secs(3600));
            }

            #[rwt::test(secs = 5, mode = $mode)]
            fn result_ok() -> Result<(), ParseError> {
                Ok(())
            }

            #[rwt::test(secs = 5, mode = $mode)]
            fn result_err() -> Result<(), ParseError> {
                "12".parse::<u8>().map_err(|_| ParseError { line: 0 })?;
                Err(ParseError { line: 7 })
            }

            /// Ignored, with a doc comment: both are kept.
            #[rwt::test(secs = 5, mode = $mode)]
            #[ignore = "kept ignored"]
            fn ignored() {
                panic!("an ignored test must not run");
            }

            #[rwt::test(secs = 5, ntries = 3, mode = $mode)]
            fn flaky() {
                let n = attempt(concat!("flaky-", $mode));
                println!("flaky: attempt {n}");
                assert!(n >= 3, "flaky: attempt {n} fails");
            }

            #[rwt::test(secs = 5, ntries = 3, mode = $mode)]
            fn always_fails() {
                let n = attempt(concat!("always-", $mode));
                panic!("always_fails: attempt {n}");
            }

            #[rwt::test(secs = 5, mode = $mode)]
            async fn async_test() {
                let value = async { 21 * 2 }.await;
                println!("async_test: {value}");
                assert_eq!(value, 42);
            }

            /// Passes on its third attempt, the first that panics.
            #[rwt::test(secs = 5, ntries = 3, mode = $mode)]
            #[should_panic(expected = "third")]
            fn should_panic_flaky() {
                let n = attempt(concat!("should-panic-flaky-", $mode));
                if n >= 3 {
                    panic!("the third attempt panics");
                }
            }

            #[rwt::test(secs = 5, mode = $mode)]
            #[should_panic(expected = "non-string")]
            fn panics_non_string() {
                std::panic::panic_any(7u8);
            }

            #[rwt::test(secs = 5, mode = $mode)]
            fn exits_zero() {
                std::process::exit(0);
            }

            #[rwt::timeout(secs = 5)]
            fn nested_fork() -> u8 {
                println!("nested fork: hi");
                7
            }

            #[rwt::timeout(secs = 5, mode = "exec")]
            fn nested_exec() -> u8 {
                println!("nested exec: hi");
                8
            }

            /// rwt calls made by a test body, whose children print too.
            #[rwt::test(secs = 10, mode = $mode)]
            fn nested_calls() {
                assert_eq!(nested_fork().unwrap(), 7);
                assert_eq!(nested_exec().unwrap(), 8);
                panic!("nested_calls: done");
            }

            #[rwt::test(secs = 10, memory = "64 MiB", mode = $mode)]
            fn over_memory() {
                let mut kept = Vec::new();
                loop {
                    kept.push(vec![1u8; 1 << 20]);
                }
            }

            #[rwt::test(secs = 5, mode = $mode)]
            fn floods() {
                let line = "x".repeat(1023);
                for _ in 0..(4 << 10) {
                    println!("{line}");
                }
                panic!("floods: done");
            }
        }
    };
}

cases!(exec_mode, "exec");
cases!(fork_mode, "fork");

/// Outside any macro, so that the child's panic location (the assert's
/// line) differs from the test's own.
mod plain {
    #[rwt::test(secs = 5)]
    fn located() {
        let x = 1;
        assert!(x == 2, "located: x is {x}");
    }
}
