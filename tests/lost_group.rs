//! A child that a stranger reaped (SIGCHLD ignored elsewhere, a rogue
//! `waitpid`) leaves rwt without its exit status, but not without its
//! process group: what the child started still dies with it. On Linux
//! 6.9+ the group is signalled through the child's pidfd, which pins the
//! group's id, so no recycled number can be hit; on older kernels rwt
//! does not signal the group of a reaped child at all (README).
//!
//! Deterministic through an async call: polled once, the child starts;
//! rwt then does nothing until polled again, so the stranger's reap comes,
//! for certain, before rwt's next look.

mod common;

use std::time::Duration;

use common::{alive, read_pid, KillOnDrop, Scratch};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

in_every_mode! {
    /// Starts a grandchild in its process group, says both pids, then
    /// waits for `go` to be opened and closed, and leaves without a result.
    #[timeout(secs = 30.0)]
    async fn starts_then_exits(dir: String) -> u8 {
        #[allow(clippy::zombie_processes)] // never waited for on purpose
        let sleeper = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        std::fs::write(format!("{dir}/sleeper"), sleeper.id().to_string()).unwrap();
        std::fs::write(format!("{dir}/child"), std::process::id().to_string()).unwrap();
        let _ = std::fs::read(format!("{dir}/go"));
        // SAFETY: `_exit` ends the process at once.
        unsafe { nix::libc::_exit(42) }
    }
}

fn pidfd_group_signals() -> bool {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let mut parts = release
        .split(['.', '-'])
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) >= (6, 9)
}

test_in_every_mode! {
    fn the_group_of_a_child_a_stranger_reaped_is_still_killed(m) {
        if !pidfd_group_signals() {
            println!("skipped: before Linux 6.9 the group of a reaped child is left alone");
            return;
        }
        let dir = Scratch::new("lost-group");
        std::fs::create_dir_all(dir.path()).unwrap();
        let go = dir.path().join("go");
        nix::unistd::mkfifo(&go, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let mut call = Box::pin(m::starts_then_exits(dir.arg()));
        assert!(!common::poll_once(call.as_mut()), "done before the child ran");
        let child = read_pid(&dir.path().join("child"), Duration::from_secs(20)).unwrap();
        let sleeper = read_pid(&dir.path().join("sleeper"), Duration::ZERO).unwrap();
        let _cleanup = KillOnDrop(vec![sleeper, child]);
        // Let the child go, and reap it as a stranger would.
        drop(std::fs::OpenOptions::new().write(true).open(&go).unwrap());
        let reaped = waitpid(Pid::from_raw(child as i32), None).unwrap();
        assert!(matches!(reaped, WaitStatus::Exited(_, 42)), "{reaped:?}");
        match common::park_on(call) {
            Err(rwt::Error::Crashed { signal: None, exit_code: None, .. }) => {}
            other => panic!("{other:?}"),
        }
        assert!(
            common::wait_until(Duration::from_secs(1), || !alive(sleeper)),
            "the grandchild {sleeper} outlived its reaped parent"
        );
        let _ = std::fs::remove_dir_all(dir.path());
    }
}
