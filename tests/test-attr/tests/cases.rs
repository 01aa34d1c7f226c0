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
