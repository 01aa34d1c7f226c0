//! `#[rwt::test]`: builds and runs the fixture tests/test-attr (its tests
//! pass, fail, hang, crash, retry and flood on purpose, once in exec and
//! once in fork mode) and reads libtest's report: the verdict of every
//! test, the summary, what each failing test's output holds, that passing
//! tests show nothing, that `--nocapture` prints as it comes, once, and
//! that no process of the fixture is left (checked after every run).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const MODES: [&str; 2] = ["exec_mode", "fork_mode"];

/// Each fixture test and libtest's verdict on it.
const VERDICTS: [(&str, &str); 21] = [
    ("passes", "ok"),
    ("fails", "FAILED"),
    ("hangs", "FAILED"),
    ("sleeps", "ok"),
    ("aborts", "FAILED"),
    ("should_panic_right", "ok"),
    ("should_panic_wrong", "FAILED"),
    ("should_panic_but_hangs", "FAILED"),
    ("result_ok", "ok"),
    ("result_err", "FAILED"),
    ("ignored", "ignored, kept ignored"),
    ("flaky", "ok"),
    ("always_fails", "FAILED"),
    ("async_test", "ok"),
    ("over_memory", "FAILED"),
    ("floods", "FAILED"),
    ("should_panic_flaky", "ok"),
    ("panics_non_string", "FAILED"),
    ("exits_zero", "FAILED"),
    ("nested_calls", "FAILED"),
    ("should_panic_via_cfg_attr", "FAILED"),
];

/// A directory of its own for the fixture's files, removed when dropped.
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new(tag: &str) -> ScratchDir {
        let dir = std::env::temp_dir().join(format!("rwt-test-attr-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        ScratchDir(dir)
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `cargo test` on the fixture with `args` after `--`, in its own process
/// group, killed (the whole group) if it runs past `limit`.
fn run_fixture(scratch: &Path, args: &[&str], limit: Duration) -> Output {
    run_fixture_with(&["test"], scratch, args, limit)
}

/// [`run_fixture`] through another cargo subcommand (`nextest run`).
fn run_fixture_with(runner: &[&str], scratch: &Path, args: &[&str], limit: Duration) -> Output {
    use std::os::unix::process::CommandExt;
    // One run at a time: the other test's fixture processes must not count
    // as left over by this one.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let root = env!("CARGO_MANIFEST_DIR");
    let child = Command::new(env!("CARGO"))
        .args(runner)
        .arg("--manifest-path")
        .arg(format!("{root}/tests/test-attr/Cargo.toml"))
        .args(["--test", "cases"])
        .args(args)
        .env("CARGO_TARGET_DIR", format!("{root}/target/test-attr"))
        .env("RWT_FIXTURE_DIR", scratch)
        // A backtrace of the refused allocation would only add noise.
        .env("RUST_BACKTRACE", "0")
        .env_remove("RUST_TEST_NOCAPTURE")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let group = nix::unistd::Pid::from_raw(child.id() as i32);
    let started = Instant::now();
    let (done, waited) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let out = child.wait_with_output();
        let _ = done.send(());
        out
    });
    if waited.recv_timeout(limit).is_err() {
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
    }
    let out = waiter.join().unwrap().unwrap();
    let left = fixture_processes();
    assert!(left.is_empty(), "processes of the fixture left: {left:?}");
    assert!(
        started.elapsed() < limit,
        "the fixture ran past {limit:?} and was killed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// libtest's `test <name> ... <verdict>` lines.
fn verdicts(stdout: &str) -> BTreeMap<String, String> {
    stdout
        .lines()
        .filter_map(|line| line.strip_prefix("test ")?.split_once(" ... "))
        .map(|(name, verdict)| (name.to_owned(), verdict.to_owned()))
        .collect()
}

/// The `---- <name> stdout ----` sections of the failures, by test name.
fn sections(stdout: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut current: Option<(String, String)> = None;
    for line in stdout.lines() {
        let header = line
            .strip_prefix("---- ")
            .and_then(|l| l.strip_suffix(" stdout ----"));
        if header.is_some() || line == "failures:" {
            if let Some((name, text)) = current.take() {
                out.insert(name, text);
            }
        }
        if let Some(name) = header {
            current = Some((name.to_owned(), String::new()));
        } else if let Some((_, text)) = current.as_mut() {
            text.push_str(line);
            text.push('\n');
        }
    }
    out
}

/// Processes whose executable is one of the fixture's test binaries: its
/// exec and fork children are too.
fn fixture_processes() -> Vec<(u32, PathBuf)> {
    let deps = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-attr/debug/deps");
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Ok(exe) = std::fs::read_link(entry.path().join("exe")) {
            if exe.starts_with(&deps) && common::state(pid) != Some('Z') {
                found.push((pid, exe));
            }
        }
    }
    found
}

#[test]
fn the_fixture_report_is_what_the_spec_says_in_exec_and_fork_mode() {
    let scratch = ScratchDir::new("all");
    let out = run_fixture(&scratch.0, &[], Duration::from_secs(600));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let all = format!("{stdout}\n{stderr}");
    assert_eq!(out.status.code(), Some(101), "{stdout}\n{stderr}");
    let report = || {
        format!(
            "{}\n{stderr}",
            &stdout[stdout.len().saturating_sub(20_000)..]
        )
    };

    // Every test's verdict, and the summary.
    let got = verdicts(&stdout);
    let mut want = BTreeMap::new();
    for mode in MODES {
        for (test, verdict) in VERDICTS {
            want.insert(format!("{mode}::{test}"), verdict.to_owned());
        }
    }
    want.insert("plain::located".into(), "FAILED".into());
    assert_eq!(got, want, "{}", report());
    assert!(
        stdout.contains("test result: FAILED. 14 passed; 27 failed; 2 ignored;"),
        "{}",
        report()
    );

    // What each failure shows, under its own name, and nothing of the
    // passing tests anywhere.
    let sections = sections(&stdout);
    // The child's location: the assert's line, not the test's.
    let located = &sections["plain::located"];
    let line = include_str!("test-attr/tests/cases.rs")
        .lines()
        .position(|l| l.contains("assert!(x == 2"))
        .unwrap()
        + 1;
    assert!(
        located.contains(&format!(
            "thread 'plain::located' panicked at tests/cases.rs:{line}:"
        )),
        "{located}"
    );
    assert!(located.contains("located: x is 1"), "{located}");
    for mode in MODES {
        let section = |test: &str| {
            sections
                .get(&format!("{mode}::{test}"))
                .unwrap_or_else(|| panic!("no output section for {mode}::{test}:\n{}", report()))
                .as_str()
        };
        let has = |test: &str, text: &str| {
            let s = section(test);
            assert!(s.contains(text), "{mode}::{test}: {text:?} not in:\n{s}");
        };
        let once = |test: &str, text: &str| {
            let s = section(test);
            assert_eq!(
                s.matches(text).count(),
                1,
                "{mode}::{test}: {text:?} not once:\n{s}"
            );
            assert_eq!(
                all.matches(text).count(),
                MODES.len(), // the same text in both modes
                "{mode}::{test}: {text:?} elsewhere too"
            );
        };
        // The child's stdout and stderr, each line once, then its panic
        // with its message and where it was.
        once("fails", "fails: a line on stdout\n");
        once("fails", "fails: a line on stderr\n");
        has(
            "fails",
            &format!("thread '{mode}::fails' panicked at tests/cases.rs:"),
        );
        has(
            "fails",
            "assertion `left == right` failed: arithmetic still works",
        );
        // rwt's message: the deadline and what the child was doing.
        once("hangs", "hangs: about to sleep\n");
        has(
            "hangs",
            "function `hangs` timed out after 1 s (killed); it was blocked in clock_nanosleep",
        );
        has(
            "aborts",
            "function `aborts` crashed: killed by signal 6 (SIGABRT)",
        );
        has(
            "should_panic_wrong",
            "panic did not contain expected string",
        );
        has("should_panic_wrong", "panic message: \"a wrong message\"");
        has(
            "should_panic_wrong",
            "expected substring: \"the right message\"",
        );
        // A timeout is not the panic `#[should_panic]` expects.
        has(
            "should_panic_but_hangs",
            "function `should_panic_but_hangs` timed out after 0.5 s",
        );
        // `E` is only `Debug`: the child formatted it.
        has("result_err", "Error: ParseError { line: 7 }");
        has(
            "always_fails",
            "rwt: attempt 1 of 3 failed: always_fails: attempt 1; trying again",
        );
        has(
            "always_fails",
            "rwt: attempt 2 of 3 failed: always_fails: attempt 2; trying again",
        );
        has(
            "always_fails",
            "always_fails: attempt 3\n(rwt: 3 attempts, none passed)",
        );
        has(
            "over_memory",
            "function `over_memory` exceeded its memory limit of 64 MiB",
        );
        // 4 MiB of output: the first and last MiB kept, the rest counted.
        has(
            "floods",
            "[rwt: 2097152 bytes of the test's output left out]",
        );
        has("floods", "floods: done");
        // The body's own rwt calls work, and their children's output is the
        // test's too.
        once("nested_calls", "nested fork: hi\n");
        once("nested_calls", "nested exec: hi\n");
        has("nested_calls", "nested_calls: done");
        has(
            "exits_zero",
            "function `exits_zero` crashed: exited with code 0 without returning a result",
        );
        has("panics_non_string", "expected panic with string value");
        has(
            "should_panic_via_cfg_attr",
            "function `should_panic_via_cfg_attr` timed out after 0.5 s",
        );
        assert!(section("floods").len() < 3 << 20);

        for quiet in ["passes: a line on", "flaky: attempt", "async_test: 42"] {
            assert!(
                !all.contains(quiet),
                "{quiet:?} of a passing test shown:\n{}",
                report()
            );
        }
        // Every attempt was a child of its own, counted in a file.
        let count = |name: &str| {
            let mode = mode.trim_end_matches("_mode");
            std::fs::read_to_string(scratch.0.join(format!("{name}-{mode}"))).unwrap()
        };
        assert_eq!(count("flaky"), "3");
        assert_eq!(count("always"), "3");
        // The hung child is gone, with every other process of the fixture.
        let pid: u32 = std::fs::read_to_string(
            scratch
                .0
                .join(format!("hangs-{}.pid", mode.trim_end_matches("_mode"))),
        )
        .unwrap()
        .parse()
        .unwrap();
        assert!(!common::alive(pid), "{mode}::hangs left pid {pid} running");
        let grandchild: u32 = std::fs::read_to_string(scratch.0.join(format!(
            "hangs-grandchild-{}.pid",
            mode.trim_end_matches("_mode")
        )))
        .unwrap()
        .parse()
        .unwrap();
        assert!(
            !common::alive(grandchild),
            "{mode}::hangs left its grandchild {grandchild} running"
        );
    }
}

#[test]
fn under_nocapture_the_child_prints_as_it_goes_once() {
    let scratch = ScratchDir::new("nocapture");
    let tests = [
        "exec_mode::passes",
        "fork_mode::passes",
        "exec_mode::fails",
        "fork_mode::fails",
    ];
    let mut args = vec!["--", "--nocapture", "--exact", "--test-threads=1"];
    args.extend(tests);
    let out = run_fixture(&scratch.0, &args, Duration::from_secs(600));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(101), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("test result: FAILED. 2 passed; 2 failed;"),
        "{stdout}"
    );
    // The child kept the terminal's descriptors: its stdout went to
    // stdout and its stderr to stderr, each line once.
    for (text, stream, name) in [
        ("passes: a line on stdout\n", &stdout, "stdout"),
        ("passes: a line on stderr\n", &stderr, "stderr"),
        ("fails: a line on stdout\n", &stdout, "stdout"),
        ("fails: a line on stderr\n", &stderr, "stderr"),
    ] {
        assert_eq!(
            stream.matches(text).count(),
            2,
            "{text:?} not once per mode in {name}:\n{stdout}\n{stderr}"
        );
    }
    // Nothing was held back for a section after the run.
    assert!(
        !stdout.contains("---- exec_mode::fails stdout ----\nfails: a line"),
        "{stdout}"
    );
    assert!(
        stderr.contains("thread 'exec_mode::fails' panicked at tests/cases.rs:"),
        "{stderr}"
    );
}

/// nextest runs each test as a process of its own (and reads its output
/// itself): the verdicts must be the same. Skipped, saying so, where
/// `cargo nextest` is not installed.
#[test]
fn under_nextest_the_verdicts_are_the_same() {
    let has_nextest = Command::new(env!("CARGO"))
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_nextest {
        println!("skipped: cargo nextest is not installed");
        return;
    }
    let scratch = ScratchDir::new("nextest");
    let args = ["--no-fail-fast", "--color", "never"];
    let out = run_fixture_with(
        &["nextest", "run"],
        &scratch.0,
        &args,
        Duration::from_secs(600),
    );
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{text}");
    let mut got = BTreeMap::new();
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if let (Some(&status @ ("PASS" | "FAIL")), Some(name)) = (words.first(), words.last()) {
            got.entry((*name).to_owned()).or_insert(status);
        }
    }
    let mut want = BTreeMap::new();
    for mode in MODES {
        for (test, verdict) in VERDICTS {
            let status = match verdict {
                "ok" => "PASS",
                "FAILED" => "FAIL",
                _ => continue, // ignored: not run
            };
            want.insert(format!("{mode}::{test}"), status);
        }
    }
    want.insert("plain::located".into(), "FAIL");
    assert_eq!(got, want, "{text}");
    assert!(
        text.contains("41 tests run: 14 passed, 27 failed, 2 skipped"),
        "{text}"
    );
}
