//! Nothing is left behind: the child and everything it started are gone
//! and reaped when a call returns (kill = true); orphans of kill = false are
//! reaped when they end; the child never runs the caller's exit code nor
//! returns into it; it dies with its caller. In every mode (fork, exec, pool)
//! where it applies.

mod common;

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::time::{Duration, Instant};

use common::{alive, read_pid, reaped, wait_until, KillOnDrop, Scratch};
use rwt::timeout;

fn gone(pid: u32) -> bool {
    // A grandchild is not ours to reap: once dead it is gone or, for an
    // instant, a zombie of whoever adopted it.
    !alive(pid)
}

in_every_mode! {
    /// Starts a grandchild and returns; the group kill ends it.
    #[timeout(secs = 5.0)]
    fn starts_a_sleeper() -> u32 {
        #[allow(clippy::zombie_processes)] // never waited for on purpose
        let child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        child.id()
    }

    /// The same with SIGCHLD ignored, so the kernel reaps this process's
    /// children itself (a pool worker must still find and end them) and
    /// one child that has already ended is gone without a trace.
    #[timeout(secs = 5.0)]
    fn starts_a_sleeper_with_sigchld_ignored() -> u32 {
        // SAFETY: SIG_IGN installs no handler; nothing runs on delivery.
        unsafe {
            nix::sys::signal::signal(nix::sys::signal::SIGCHLD, nix::sys::signal::SigHandler::SigIgn)
        }
        .unwrap();
        let quick = std::process::Command::new("true").spawn().unwrap();
        drop(quick);
        #[allow(clippy::zombie_processes)] // never waited for on purpose
        let child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        child.id()
    }

    #[timeout(secs = 0.3)]
    fn starts_a_sleeper_then_hangs(pid_file: String) -> u8 {
        #[allow(clippy::zombie_processes)] // never waited for on purpose
        let child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        std::fs::write(&pid_file, child.id().to_string()).unwrap();
        std::thread::sleep(Duration::from_secs(30));
        0
    }

    /// Forks a grandchild that keeps the result channel open for 30 s.
    #[timeout(secs = 5.0)]
    fn forks_a_channel_holder() -> (u32, u32) {
        // SAFETY: the grandchild only sleeps and leaves with _exit.
        match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => {
                std::thread::sleep(Duration::from_secs(30));
                // SAFETY: leaving the grandchild without running anything else.
                unsafe { nix::libc::_exit(0) }
            }
            nix::unistd::ForkResult::Parent { child } => (5, child.as_raw() as u32),
        }
    }

    #[timeout(secs = 0.1, ntries = 3, kill = false)]
    fn overstays(log: String) -> u8 {
        common::append_line(&log, &std::process::id().to_string());
        std::thread::sleep(Duration::from_millis(700));
        0
    }

    #[timeout(secs = 5.0)]
    fn reads_stdin() -> (usize, String) {
        let mut buf = Vec::new();
        let n = std::io::stdin().read_to_end(&mut buf).unwrap();
        let target = std::fs::read_link("/proc/self/fd/0").unwrap();
        (n, target.to_string_lossy().into_owned())
    }

    #[timeout(secs = 5.0)]
    fn group_and_pid() -> (i32, i32) {
        (nix::unistd::getpgrp().as_raw(), nix::unistd::getpid().as_raw())
    }

    #[timeout(secs = 60.0)]
    fn lingers(pid_file: String) -> u8 {
        common::note_pid_and_sleep(&pid_file, Duration::from_secs(60));
        0
    }
}

test_in_every_mode! {
    fn a_grandchild_is_killed_when_the_call_returns(m) {
        let pid = m::starts_a_sleeper().unwrap();
        let _cleanup = KillOnDrop(vec![pid]);
        assert!(
            wait_until(Duration::from_secs(1), || gone(pid)),
            "grandchild {pid} still running"
        );
    }

    fn a_grandchild_is_killed_when_sigchld_is_ignored(m) {
        let pid = m::starts_a_sleeper_with_sigchld_ignored().unwrap();
        let _cleanup = KillOnDrop(vec![pid]);
        assert!(
            wait_until(Duration::from_secs(1), || gone(pid)),
            "grandchild {pid} still running"
        );
    }

    fn a_grandchild_is_killed_with_a_timed_out_child(m) {
        let pid_file = Scratch::new("grandchild");
        assert!(m::starts_a_sleeper_then_hangs(pid_file.arg()).unwrap_err().is_timeout());
        let pid = read_pid(pid_file.path(), Duration::ZERO).expect("grandchild started");
        let _cleanup = KillOnDrop(vec![pid]);
        assert!(wait_until(Duration::from_secs(1), || gone(pid)));
    }

    fn a_grandchild_holding_the_channel_does_not_delay_the_result(m) {
        let start = Instant::now();
        let (value, grandchild) = m::forks_a_channel_holder().unwrap();
        let _cleanup = KillOnDrop(vec![grandchild]);
        assert_eq!(value, 5);
        assert!(start.elapsed() < Duration::from_secs(1), "{:?}", start.elapsed());
        assert!(wait_until(Duration::from_secs(1), || gone(grandchild)));
    }

    fn orphans_are_reported_overlap_and_are_reaped_when_they_end(m) {
        let log = Scratch::new("orphans");
        let e = m::overstays(log.arg()).unwrap_err();
        let orphans = e.orphans().to_vec();
        let _cleanup = KillOnDrop(orphans.clone());
        assert!(
            matches!(e, rwt::Error::Timeout { attempts: 3, killed: false, .. }),
            "{e:?}"
        );
        assert_eq!(orphans.len(), 3);
        // Each attempt left its child running: all three at once.
        assert!(orphans.iter().all(|&p| alive(p)), "{orphans:?}");
        let logged: Vec<u32> = log.lines().iter().map(|l| l.parse().unwrap()).collect();
        assert_eq!(logged, orphans);
        assert!(e.to_string().contains("(not killed); orphaned pids: "), "{e}");
        // They end on their own, and none is left a zombie.
        assert!(
            wait_until(Duration::from_secs(3), || orphans.iter().all(|&p| reaped(p))),
            "states: {:?}",
            orphans.iter().map(|&p| common::state(p)).collect::<Vec<_>>()
        );
    }

    fn the_child_reads_end_of_file_from_dev_null(m) {
        assert_eq!(m::reads_stdin().unwrap(), (0, "/dev/null".to_string()));
    }

    fn the_child_leads_its_own_process_group(m) {
        let (pgrp, pid) = m::group_and_pid().unwrap();
        assert_eq!(pgrp, pid);
        assert_ne!(pgrp, nix::unistd::getpgrp().as_raw());
    }
}

/// Set once, before any call, to the file the at-exit handler writes.
static AT_EXIT_FILE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
static TEST_PID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();

extern "C" fn at_exit() {
    if Some(&std::process::id()) != TEST_PID.get() {
        if let Some(path) = AT_EXIT_FILE.get() {
            common::append_line(path, "at-exit ran in a child");
        }
    }
}

#[timeout(secs = 5.0)]
fn returns_normally() -> u8 {
    1
}

/// Fork mode: the child is a copy of this process, at-exit handlers and
/// all. (An exec child is a fresh program that never had them.)
#[test]
fn the_child_never_runs_the_callers_exit_code_nor_returns_into_it() {
    let file = Scratch::new("at-exit");
    AT_EXIT_FILE.set(file.arg()).unwrap();
    TEST_PID.set(std::process::id()).unwrap();
    // SAFETY: registering a plain extern "C" function.
    assert_eq!(unsafe { nix::libc::atexit(at_exit) }, 0);
    let after = Scratch::new("after-call");
    for _ in 0..20 {
        assert_eq!(returns_normally().unwrap(), 1);
        common::append_line(&after.arg(), &std::process::id().to_string());
    }
    // Every line after the call was written by this process, none by a
    // child that came back into this code.
    let me = std::process::id().to_string();
    assert_eq!(after.lines(), vec![me; 20]);
    assert!(file.lines().is_empty(), "{:?}", file.lines());
}

#[test]
fn helper_caller_that_will_be_killed() {
    if let Some(lingers) = helper_fn!("killed-caller", lingers) {
        let _ = lingers(std::env::var("RWT_TEST_PID_FILE").unwrap());
    }
}

test_each_mode_role!(the_child_dies_with_its_caller, caller_dies, "killed-caller");

/// Starts a helper process that makes a 60 s call as `role`, SIGKILLs it
/// once the child runs, and expects the child gone within a second.
fn caller_dies(role: &str) {
    let pid_file = Scratch::new("caller-dies");
    let mut caller = common::helper_command("helper_caller_that_will_be_killed", role)
        .env("RWT_TEST_PID_FILE", pid_file.path())
        .stdout(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let mut cleanup = KillOnDrop(vec![caller.id()]);
    let child = read_pid(pid_file.path(), Duration::from_secs(10)).expect("the call started");
    cleanup.push(child);
    assert!(alive(child));
    caller.kill().unwrap();
    caller.wait().unwrap();
    assert!(
        wait_until(Duration::from_secs(1), || !alive(child)),
        "child {child} outlived its caller"
    );
}
