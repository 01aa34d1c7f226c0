//! A pool worker's clean-up after each call: every process the call
//! started (and, the worker being a subreaper, every orphan that came to
//! it) is killed and reaped before the next call.
//!
//! Children are found in `/proc/self/task/*/children` (it needs
//! `CONFIG_PROC_CHILDREN`, and the kernel documents it as unreliable while
//! children fork or exit), else by a scan of `/proc/*/stat` for our pid as
//! parent. Either list can be stale, so no pid from it is signalled as it
//! is: each is pinned with a pidfd, asked to prove it is our child
//! (`waitid(P_PIDFD, WNOWAIT)`), and only then killed and reaped through
//! that pidfd. A number that was freed (a function may set SIGCHLD to
//! SIG_IGN, so children vanish unreaped) and handed to a stranger is never
//! hit. The loop ends when `waitid(P_ALL)` says there is no child at all.
//!
//! Without pidfds (Linux before 5.3), or with no descriptor to spare, a
//! listed pid is signalled if `waitid(P_PID, WNOWAIT)` says it is our child
//! at that instant, which leaves a window of two system calls open. A
//! function that used up every descriptor of the worker also leaves it
//! unable to read `/proc`: then what it started is not found, the worker
//! retires, and those processes outlive it.
//!
//! A function that keeps a `std::process::Child` in a static loses that
//! process here too: after the call it is killed and reaped, and the
//! static's handle names a pid that is no longer its own.

use std::os::fd::AsFd;

use nix::errno::Errno;
use nix::sys::signal::Signal;
use nix::sys::wait::{waitid, Id, WaitPidFlag};
use nix::unistd::Pid;

use crate::os::pidfd::{pidfd_open, pidfd_send_signal};

/// Rounds of kill-then-reap before giving up on children that keep
/// appearing (a fork bomb's last members).
const ROUNDS: usize = 64;

/// `waitid` flags for every look at our children: `__WALL` also sees
/// children made by `clone` with an exit signal other than SIGCHLD.
fn flags(base: WaitPidFlag) -> WaitPidFlag {
    base | WaitPidFlag::__WALL
}

/// Kills and reaps every child of this process. Blocks until they are
/// gone (a SIGKILLed process goes at once, unless it sits in an
/// uninterruptible kernel wait). Returns whether none is left: a worker
/// with a child it could not end is not used again.
pub(crate) fn reap_all() -> bool {
    for _ in 0..ROUNDS {
        if !any_child() {
            return true;
        }
        let mut listed = own_children();
        if listed.is_empty() {
            // The children files are missing, or missed a child that was
            // forking: ask every process for its parent instead.
            listed = children_by_scan();
        }
        if listed.is_empty() {
            // A child exists but neither list shows it: it is exiting.
            // Its zombie is reaped below, next round, or by the kernel.
            std::thread::yield_now();
            continue;
        }
        kill_and_reap(&listed);
    }
    !any_child()
}

/// Whether this process has any child, live or a zombie, in one system
/// call (WNOWAIT: nothing is reaped here).
fn any_child() -> bool {
    loop {
        match waitid(
            Id::All,
            flags(WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT),
        ) {
            Err(Errno::EINTR) => {}
            Err(Errno::ECHILD) => return false,
            _ => return true,
        }
    }
}

fn kill_and_reap(pids: &[i32]) {
    let mut pinned = Vec::with_capacity(pids.len());
    for &raw in pids {
        let pid = Pid::from_raw(raw);
        match pidfd_open(pid) {
            Ok(fd) => {
                // None: the number is someone else's now.
                if let Some(how) = is_our_child(fd.as_fd(), pid) {
                    let _ = pidfd_send_signal(fd.as_fd(), Signal::SIGKILL);
                    pinned.push((fd, how));
                }
            }
            // ESRCH: gone already. EINVAL: the number now names a thread,
            // not a process.
            Err(Errno::ESRCH | Errno::EINVAL) => {}
            // No pidfds on this kernel (before 5.3), or none to spare
            // (EMFILE): by pid, if it is our child at this instant. A
            // stranger's reap and a recycle between the look and the kill
            // is the window left here.
            Err(_) => {
                let look =
                    flags(WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT);
                if waitid(Id::Pid(pid), look) != Err(Errno::ECHILD) {
                    let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
                    let _ = nix::sys::wait::waitpid(pid, Some(WaitPidFlag::__WALL));
                }
            }
        }
    }
    for (fd, how) in pinned {
        match how {
            // ECHILD once it is gone (reaped by the kernel under SIG_IGN).
            Reap::Pidfd => {
                while waitid(Id::PIDFd(fd.as_fd()), flags(WaitPidFlag::WEXITED))
                    == Err(Errno::EINTR)
                {}
            }
            // The pidfd, held until now, kept the number from being reused.
            Reap::Pid(pid) => {
                while nix::sys::wait::waitpid(pid, Some(WaitPidFlag::__WALL)) == Err(Errno::EINTR) {
                }
            }
        }
    }
}

/// How a checked child is reaped.
enum Reap {
    Pidfd,
    /// Kernels 5.3 and 5.4: pidfds, but no `waitid(P_PIDFD)`.
    Pid(Pid),
}

/// Whether the process `fd` pins is a child of ours, and how to reap it.
fn is_our_child(fd: std::os::fd::BorrowedFd<'_>, pid: Pid) -> Option<Reap> {
    let look = flags(WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT);
    match waitid(Id::PIDFd(fd), look) {
        Err(Errno::ECHILD) => None,
        // Asked by number; the pidfd, if it can still be signalled (null
        // signal), proves the number was not reused in between.
        Err(Errno::EINVAL) => {
            let ours = waitid(Id::Pid(pid), look) != Err(Errno::ECHILD)
                && crate::os::pidfd::pidfd_alive(fd);
            ours.then_some(Reap::Pid(pid))
        }
        _ => Some(Reap::Pidfd),
    }
}

/// This process's children, from `/proc/self/task/*/children`.
fn own_children() -> Vec<i32> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    let mut pids = Vec::new();
    for task in tasks.flatten() {
        if let Ok(list) = std::fs::read_to_string(task.path().join("children")) {
            pids.extend(
                list.split_whitespace()
                    .filter_map(|p| p.parse::<i32>().ok()),
            );
        }
    }
    pids
}

/// This process's children, by reading every `/proc/<pid>/stat`.
fn children_by_scan() -> Vec<i32> {
    let me = std::process::id();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    procs
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            // Field 4, the parent, follows the state.
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| crate::os::procfs::stat_fields(&stat)?.nth(1)?.parse().ok())
                == Some(me)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::process::{Command, Stdio};

    use super::*;

    /// The scan is what stands in where the children files are missing:
    /// it must find what they find.
    #[test]
    fn the_scan_finds_a_child() {
        let mut child = Command::new("sleep")
            .arg("30")
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let pid = i32::try_from(child.id()).unwrap();
        let scanned = children_by_scan();
        let listed = own_children();
        let _ = child.kill();
        let _ = child.wait();
        assert!(scanned.contains(&pid), "{pid} not in {scanned:?}");
        assert!(listed.contains(&pid), "{pid} not in {listed:?}");
    }
}
