//! No call waits for another call's fork. Here a fork-mode start is held,
//! deterministically, with the stdout lock in hand: it takes stdout's lock
//! and then stderr's (so that no child inherits them locked), and this test
//! holds stderr's. (In real programs the held start is a fork of a large
//! caller, which the kernel takes tens of milliseconds to copy.) Meanwhile
//! async exec-mode calls, whose children are started on rwt's spawner
//! threads too, and sync exec- and pool-mode calls must start, run and
//! return. Alone in its binary: the spawner threads and the stdio locks are
//! process-wide.

mod common;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::on_tokio;

#[rwt::timeout(secs = 30.0)]
async fn forked() -> u8 {
    1
}

#[rwt::timeout(secs = 30.0, mode = "exec")]
async fn execed_async() -> u8 {
    7
}

#[rwt::timeout(secs = 30.0, mode = "exec")]
fn execed() -> u8 {
    8
}

#[rwt::timeout(secs = 30.0, mode = "pool")]
fn pooled() -> u8 {
    9
}

/// The futex address each thread named `name` is blocked on.
fn futexes_of(name: &str) -> Vec<String> {
    let mut found = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim() != name {
            continue;
        }
        let syscall = std::fs::read_to_string(task.path().join("syscall")).unwrap_or_default();
        let mut fields = syscall.split_whitespace();
        if fields.next() == Some(nix::libc::SYS_futex.to_string().as_str()) {
            found.extend(fields.next().map(str::to_owned));
        }
    }
    found
}

fn wait_for<T>(what: &str, mut found: impl FnMut() -> Option<T>) -> T {
    let give_up = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = found() {
            return v;
        }
        assert!(Instant::now() < give_up, "{what} never happened");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn calls_go_on_while_a_fork_mode_start_is_held() {
    // The pool's first worker is started before the fork is held.
    assert_eq!(pooled().unwrap(), 9);
    let stderr = std::io::stderr();
    let held = stderr.lock();
    // A thread of ours waits for the same lock: its futex address is the
    // stderr lock's.
    let prober = std::thread::Builder::new()
        .name("stderr-prober".into())
        .spawn(|| drop(std::io::stderr().lock()))
        .unwrap();
    let stderr_futex = wait_for("the prober waiting for stderr", || {
        futexes_of("stderr-prober").pop()
    });
    let first = std::thread::spawn(|| on_tokio(forked()));
    // The fork-mode start, on a spawner thread, holds stdout's lock and
    // waits for stderr's.
    wait_for("the fork-mode start waiting for stderr", || {
        futexes_of("rwt-spawner")
            .contains(&stderr_futex)
            .then_some(())
    });

    let (tx, rx) = mpsc::channel();
    let calls = std::thread::spawn(move || {
        let _ = tx.send(("exec, async", on_tokio(execed_async()).ok()));
        let _ = tx.send(("exec", execed().ok()));
        let _ = tx.send(("pool", pooled().ok()));
    });
    let mut outcomes = Vec::new();
    for _ in 0..3 {
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(outcome) => outcomes.push(outcome),
            Err(_) => break,
        }
    }
    drop(held);
    assert_eq!(first.join().unwrap().unwrap(), 1);
    let _ = calls.join();
    let _ = prober.join();
    assert_eq!(
        outcomes,
        [
            ("exec, async", Some(7)),
            ("exec", Some(8)),
            ("pool", Some(9))
        ],
        "the calls after the last one listed waited behind the held fork"
    );
}
