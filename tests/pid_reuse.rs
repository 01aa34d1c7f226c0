//! A signal never reaches a process that reused a child's pid number
//! (RELIABILITY.md E1). Inside a private pid namespace, a
//! child exits, a stranger's `waitpid(-1)` reaps it, and its pid number is
//! handed (by steering `ns_last_pid`) to an innocent process that leads its
//! own process group. rwt then acts on the call, both ways it can: it is
//! polled to the end, or it is dropped (which kills). The innocent must
//! survive either way, in every mode.
//!
//! The interleaving is made deterministic by using an async call: polled
//! once, the child starts; rwt then does nothing until polled again, so
//! the reap and the recycle happen, for certain, before rwt's next look.
//!
//! Each test re-runs this binary as a helper under `unshare --pid --fork
//! --mount-proc` (root, or a kernel that lets us make the namespaces); where
//! that cannot start, the test says why and passes without running.

mod common;

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::kill;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;
use rwt::Error;

in_every_mode! {
    /// Waits until the test opens and closes the FIFO `go`, then leaves
    /// without a result, with a code the stranger's reap can check.
    #[timeout(secs = 30.0)]
    async fn exits(go: String) -> u8 {
        let _ = std::fs::read(go);
        // SAFETY: `_exit` ends the process at once; nothing is left
        // half-done that the rest of this test would see.
        unsafe { nix::libc::_exit(42) }
    }
}

/// What the helper does once its stranger has reaped the child.
#[derive(Clone, Copy, Debug)]
enum Then {
    /// Polls the call to its end.
    Resume,
    /// Drops the call, which kills its child.
    Drop,
}

const ROLE_PREFIX: &str = "pid-reuse";

/// Names the FIFO the outer test made for its helper.
const FIFO_ENV: &str = "RWT_TEST_FIFO";

/// Outer side: runs the helper for `role` in fresh pid and mount
/// namespaces and checks that it passed.
fn in_a_pid_namespace(role: &str) {
    let probe = Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output();
    match probe {
        Ok(out) if out.status.success() => {}
        Ok(out) => {
            println!(
                "skipped: `unshare --pid --fork --mount-proc` fails here ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
            return;
        }
        Err(e) => {
            println!("skipped: cannot run `unshare`: {e}");
            return;
        }
    }
    let go = common::Scratch::new(role);
    nix::unistd::mkfifo(go.path(), nix::sys::stat::Mode::S_IRWXU).unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut helper = Command::new("unshare");
    helper
        .args(["--pid", "--fork", "--mount-proc", "--kill-child"])
        .arg(exe)
        .args(["helper", "--exact", "--nocapture", "--test-threads=1"])
        .env(common::HELPER_ENV, role)
        .env(FIFO_ENV, go.path())
        .process_group(0);
    let mut helper = helper.spawn().unwrap();
    let _cleanup = common::KillOnDrop(vec![helper.id()]);
    let mut status = None;
    assert!(
        common::wait_until(Duration::from_secs(60), || {
            status = helper.try_wait().unwrap();
            status.is_some()
        }),
        "the helper hangs"
    );
    let status = status.unwrap();
    assert!(status.success(), "the helper failed: {status}");
}

/// The helper: the scenario in one mode, both ways.
#[test]
fn helper() {
    let Some(mode) = common::helper_mode(ROLE_PREFIX) else {
        return;
    };
    assert_eq!(std::process::id(), 1, "not in a fresh pid namespace");
    let go = std::path::PathBuf::from(std::env::var_os(FIFO_ENV).unwrap());
    let arg = go.to_str().unwrap().to_owned();
    for then in [Then::Resume, Then::Drop] {
        match mode {
            "fork" => recycle_then(then, &go, fork::exits(arg.clone())),
            "exec" => recycle_then(then, &go, exec::exits(arg.clone())),
            _ => recycle_then(then, &go, pool::exits(arg.clone())),
        }
    }
}

/// Starts the call, lets a stranger reap its child, gives the child's pid
/// to an innocent group leader, then resumes or drops the call.
fn recycle_then<F>(then: Then, go: &std::path::Path, call: F)
where
    F: std::future::Future<Output = Result<u8, Error>>,
{
    // Boxed, so that `drop` below ends the future itself (a `pin!`ned
    // one would live on to the end of this function).
    let mut call = Box::pin(call);
    assert!(
        !common::poll_once(call.as_mut()),
        "done before the child ran"
    );
    release(go);
    // The stranger: reaps whatever child of this process ends first.
    let child = match waitpid(None, None).unwrap() {
        WaitStatus::Exited(pid, 42) => pid,
        other => panic!("reaped something else: {other:?}"),
    };
    let mut innocent = innocent_at(child);
    // A plain `kill(pid)` or `killpg(pid)` from rwt would now hit it.
    assert!(kill(child, None).is_ok());
    match then {
        Then::Resume => {
            let start = Instant::now();
            match common::park_on(call) {
                Err(Error::Crashed { .. }) => {}
                other => panic!("{then:?}: {other:?}"),
            }
            assert!(start.elapsed() < Duration::from_secs(2));
        }
        Then::Drop => drop(call),
    }
    // A SIGKILL is queued before the call that sends it returns; give the
    // innocent a generous while to die of it.
    let died = common::wait_until(Duration::from_millis(200), || {
        innocent.try_wait().unwrap().is_some()
    });
    let survived = !died;
    let _ = innocent.kill();
    let _ = innocent.wait();
    assert!(survived, "{then:?}: rwt killed the innocent at pid {child}");
    println!("{then:?}: the innocent at recycled pid {child} survived");
}

/// Lets the body past its FIFO: opens the write end once the body has the
/// read end open (without blocking: if the body never gets there, the test
/// fails instead of hanging), then closes it.
fn release(go: &std::path::Path) {
    use std::os::unix::fs::OpenOptionsExt;
    let opened = common::wait_until(Duration::from_secs(10), || {
        match std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(nix::libc::O_NONBLOCK)
            .open(go)
        {
            Ok(_) => true,
            // No reader yet.
            Err(e) if e.raw_os_error() == Some(nix::libc::ENXIO) => false,
            Err(e) => panic!("{e}"),
        }
    });
    assert!(opened, "the body never ran");
}

/// Starts `sleep 60` as its own group leader at pid `pid`, which must be
/// free: writes `pid - 1` to `ns_last_pid` right before the spawn. A thread
/// of this process can take the number in between; then it tries again.
fn innocent_at(pid: Pid) -> std::process::Child {
    for _ in 0..20 {
        std::fs::write(
            "/proc/sys/kernel/ns_last_pid",
            (pid.as_raw() - 1).to_string(),
        )
        .expect("steer ns_last_pid");
        let mut innocent = Command::new("sleep")
            .arg("60")
            .process_group(0)
            .spawn()
            .unwrap();
        if innocent.id() as i32 == pid.as_raw() {
            return innocent;
        }
        let _ = innocent.kill();
        let _ = innocent.wait();
    }
    panic!("could not give pid {pid} to an innocent process");
}

test_each_mode_role!(
    a_recycled_pid_is_never_signalled,
    in_a_pid_namespace,
    "pid-reuse"
);
