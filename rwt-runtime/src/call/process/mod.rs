//! A child process as the parent sees it: signal it, watch for its exit,
//! reap it. Only ever this one pid: never `waitpid(-1)`, never a SIGCHLD
//! handler, never a signal to a pid after it was reaped.
//!
//! On Linux the child is held through a pidfd, opened right after `fork` and
//! checked with `waitid(P_PIDFD, WNOWAIT)` to really be our child: signals go
//! through it, so a recycled pid can never be hit. On Linux kernels without
//! a usable pidfd, `waitid(P_PID, WNOWAIT | WNOHANG)` in short steps stands
//! in (it sees the exit without reaping); elsewhere `waitpid(pid, WNOHANG)`,
//! which reaps as it sees the exit.

use std::os::fd::{AsFd, BorrowedFd};
use std::time::Instant;

use nix::errno::Errno;
use nix::sys::wait::{WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::os::fds::{Fds, RegisteredFd};
#[cfg(target_os = "linux")]
use crate::os::pidfd::{kcmp_file, pidfd_alive, pidfd_open};
use crate::os::usage::Usage;
use crate::wait::deadline::{Deadline, Waiter};

mod ending;

/// How a child ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Status {
    /// It exited with this code.
    Exited(i32),
    /// A signal ended it.
    Signaled(i32),
    /// Someone else reaped it (SIGCHLD ignored, a `waitpid(-1)` elsewhere):
    /// its status is lost.
    Lost,
}

/// A child of this process, owned until reaped.
#[derive(Debug)]
pub(crate) struct Child {
    pid: Pid,
    /// Registered, so that a fork-mode child of another call closes its
    /// copy (it could signal this child through it otherwise).
    pidfd: Option<RegisteredFd>,
    /// Set once reaped (or lost): from then on the pid is not ours to signal.
    status: Option<Status>,
    /// When rwt took charge of it, for [`Usage::wall`].
    started: Instant,
    /// The kernel's accounting of it, once reaped by [`Child::reap`].
    usage: Option<Usage>,
    /// Its `/proc` files, opened ahead of a deadline
    /// ([`Child::prepare_snapshot`]).
    prepared: Option<crate::os::stuck::Prepared>,
    /// How many times [`Child::prepare_snapshot`] tried to open them.
    #[cfg(test)]
    prepare_tries: u32,
}

impl Child {
    /// Takes charge of the child `pid`, just started by this thread. Its
    /// pidfd is opened and registered under rwt's descriptor list (a fork
    /// in progress holds it for as long as the kernel copies the caller, as
    /// for every descriptor rwt makes), so that no fork child of another
    /// call holds it.
    #[cfg(test)]
    pub(crate) fn adopt(pid: Pid) -> Child {
        Child::adopt_in(pid, &mut crate::os::fds::fds())
    }

    /// [`Child::adopt`], by a thread that holds the descriptor list.
    #[cfg_attr(not(target_os = "linux"), allow(unused_variables))]
    pub(crate) fn adopt_in(pid: Pid, fds: &mut Fds) -> Child {
        let mut child = Child {
            pid,
            pidfd: None,
            status: None,
            started: Instant::now(),
            usage: None,
            prepared: None,
            #[cfg(test)]
            prepare_tries: 0,
        };
        #[cfg(target_os = "linux")]
        match pidfd_open(pid) {
            Ok(fd) => {
                // The pid could in principle have been reaped by someone else
                // and recycled before pidfd_open: then the pidfd names a
                // stranger, and waitid on it says ECHILD.
                match nix::sys::wait::waitid(
                    nix::sys::wait::Id::PIDFd(fd.as_fd()),
                    WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT,
                ) {
                    Err(Errno::ECHILD) => child.status = Some(Status::Lost),
                    // Kernels 5.3 and 5.4 have pidfd_open but not
                    // waitid(P_PIDFD): the pid-based fallback, without the
                    // pidfd (whose exits it could not read).
                    Err(Errno::EINVAL) => {}
                    _ => child.pidfd = Some(RegisteredFd::new(fds, fd)),
                }
            }
            Err(Errno::ESRCH) => child.status = Some(Status::Lost),
            // ENOSYS (kernel before 5.3), EMFILE...: the fallback loop.
            Err(_) => {}
        }
        child
    }

    /// Takes charge of the child `pid` that this thread just started, and
    /// checks that the process the pid names now is that child: it holds,
    /// at descriptor `theirs`, the open file this process holds at `ours`
    /// (`kcmp(KCMP_FILE)`). `adopt` alone proves "a child of ours", not
    /// "this child": if ours ended, a stranger reaped it and the number went
    /// to another child of ours before `pidfd_open`, that other child would
    /// be signalled and reaped in its place. A live process without that
    /// file is treated as that case (`Lost`: never signalled, never reaped).
    ///
    /// Called in the thread that forked, before anything else, so the
    /// window is a few system calls wide. Where `kcmp` is missing or
    /// refused (no `CONFIG_KCMP`; container seccomp profiles often refuse
    /// it without `CAP_SYS_PTRACE`), on kernels without `waitid(P_PIDFD)`
    /// (5.3, 5.4: no pidfd is kept), and for a child that is exiting or has
    /// ended (it has no files left to compare), `adopt`'s check is all
    /// there is.
    ///
    /// The descriptor list is held only while the pidfd is opened and
    /// registered: the check after it (a `kcmp`, and a `/proc` read for a
    /// child on its way out) is not something other calls' forks wait for.
    #[cfg_attr(not(target_os = "linux"), allow(unused_variables, unused_mut))]
    pub(crate) fn adopt_holding(pid: Pid, ours: BorrowedFd<'_>, theirs: i32) -> Child {
        let mut child = Child::adopt_in(pid, &mut crate::os::fds::fds());
        #[cfg(target_os = "linux")]
        // A stranger's pidfd is closed (through the list, or deferred
        // while a fork holds it).
        drop(child.take_if_stranger(ours, theirs));
        child
    }

    /// [`Child::adopt_holding`], by a thread that holds the descriptor list.
    #[cfg_attr(not(target_os = "linux"), allow(unused_variables, unused_mut))]
    pub(crate) fn adopt_holding_in(
        pid: Pid,
        ours: BorrowedFd<'_>,
        theirs: i32,
        fds: &mut Fds,
    ) -> Child {
        let mut child = Child::adopt_in(pid, fds);
        #[cfg(target_os = "linux")]
        if let Some(fd) = child.take_if_stranger(ours, theirs) {
            fd.close_locked(fds);
        }
        child
    }

    /// If the process the pidfd names is a stranger ([`Child::is_stranger`]):
    /// marks the child `Lost` and hands back its pidfd, to be closed.
    #[cfg(target_os = "linux")]
    fn take_if_stranger(&mut self, ours: BorrowedFd<'_>, theirs: i32) -> Option<RegisteredFd> {
        if self.pidfd.is_none() || !self.is_stranger(ours, theirs) {
            return None;
        }
        tracing::debug!(target: "rwt", pid = self.pid(), "pid already reused: not ours");
        self.status = Some(Status::Lost);
        self.pidfd.take()
    }

    /// Whether the (pidfd-pinned) process holds something else than `ours`
    /// at `theirs` while it is alive.
    #[cfg(target_os = "linux")]
    fn is_stranger(&mut self, ours: BorrowedFd<'_>, theirs: i32) -> bool {
        use std::os::fd::AsRawFd;
        match kcmp_file(self.pid, ours.as_raw_fd(), theirs) {
            Ok(same) => !same,
            // No such descriptor there: a stranger, unless it is our own
            // child on its way out (the kernel drops a process's files
            // before it becomes a zombie), or already a zombie.
            Err(Errno::EBADF) => !self.is_exiting() && !self.has_exited(),
            Err(_) => false,
        }
    }

    /// Whether the (still unreaped) process has begun to exit: `PF_EXITING`
    /// in the flags of its `/proc/<pid>/stat`. The number is checked to
    /// still be its own after the read.
    #[cfg(target_os = "linux")]
    fn is_exiting(&self) -> bool {
        const PF_EXITING: u64 = 0x4;
        let flags = std::fs::read_to_string(format!("/proc/{}/stat", self.pid))
            .ok()
            // Field 9, the seventh from the state on.
            .and_then(|stat| {
                crate::os::procfs::stat_fields(&stat)?
                    .nth(6)?
                    .parse::<u64>()
                    .ok()
            });
        let still_ours = self
            .pidfd
            .as_ref()
            .is_some_and(|fd| pidfd_alive(fd.as_fd()));
        still_ours && flags.is_some_and(|f| f & PF_EXITING != 0)
    }

    /// Whether the pid is still ours to act on (not reaped, not lost).
    pub(crate) fn is_ours(&self) -> bool {
        self.status.is_none()
    }

    /// Opens what [`Child::snapshot`] reads, ahead of the deadline, once:
    /// the snapshot then costs a few `pread`s instead of the ~0.1 ms of a
    /// first look at the child's `/proc` entry (see
    /// [`crate::os::stuck::Prepared`]). `false`: not now, rwt's
    /// descriptor list was busy; worth another try.
    pub(crate) fn prepare_snapshot(&mut self) -> bool {
        if self.prepared.is_some() || !self.is_ours() {
            return true;
        }
        #[cfg(test)]
        {
            self.prepare_tries += 1;
        }
        match crate::os::stuck::prepare(self.pid()) {
            crate::os::stuck::Prepare::Ready(files) => {
                self.prepared = Some(files);
                true
            }
            crate::os::stuck::Prepare::Busy => false,
            crate::os::stuck::Prepare::Unavailable => true,
        }
    }

    /// Were its `/proc` files opened ahead of the deadline, and how many
    /// times was that tried?
    #[cfg(test)]
    pub(crate) fn prepared(&self) -> (bool, u32) {
        (self.prepared.is_some(), self.prepare_tries)
    }

    /// What it is doing now, if `/proc` can tell; `None` once reaped. The
    /// files opened for it are closed after.
    pub(crate) fn snapshot(&mut self) -> Option<crate::os::stuck::Stuck> {
        let prepared = self.prepared.take();
        self.is_ours()
            .then(|| crate::os::stuck::snapshot(self.pid(), prepared.as_ref()))
            .flatten()
    }

    /// Closes the files opened for a snapshot that was not needed (the
    /// call ended otherwise).
    pub(crate) fn forget_snapshot(&mut self) {
        self.prepared = None;
    }

    pub(crate) fn pid(&self) -> u32 {
        self.pid.as_raw().unsigned_abs()
    }

    /// A descriptor that becomes readable when the child exits, if any.
    pub(crate) fn exit_fd(&self) -> Option<BorrowedFd<'_>> {
        if self.status.is_some() {
            return None;
        }
        self.pidfd.as_ref().map(AsFd::as_fd)
    }

    /// Has it ended? Never blocks. Off Linux, without a pidfd, this reaps
    /// it.
    pub(crate) fn has_exited(&mut self) -> bool {
        if self.status.is_some() {
            return true;
        }
        #[cfg(target_os = "linux")]
        if let Some(fd) = &self.pidfd {
            return match nix::sys::wait::waitid(
                nix::sys::wait::Id::PIDFd(fd.as_fd()),
                WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT,
            ) {
                Ok(WaitStatus::StillAlive) | Err(Errno::EINTR) => false,
                Ok(_) => true,
                Err(_) => {
                    self.status = Some(Status::Lost);
                    true
                }
            };
        }
        self.try_reap_pid()
    }

    /// Waits for the child to end, until `deadline`. Returns whether it did.
    pub(crate) async fn wait_exit<W: Waiter>(
        &mut self,
        waiter: &mut W,
        deadline: Deadline,
    ) -> bool {
        loop {
            if self.has_exited() {
                return true;
            }
            if deadline.passed() {
                return false;
            }
            let exit = self.exit_fd();
            let until = deadline.or_step(exit);
            if waiter.ready(None, exit, None, until).await.is_err() {
                return self.has_exited();
            }
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::os::fd::{AsFd, AsRawFd};
    use std::process::{Command, Stdio};

    use nix::unistd::Pid;

    use super::{Child, Status};

    fn pid_of(child: &std::process::Child) -> Pid {
        Pid::from_raw(i32::try_from(child.id()).unwrap())
    }

    /// L10: a pid that names another child of ours (as after a stranger's
    /// reap and a recycle) is not taken for the one just started.
    #[test]
    fn a_child_without_our_file_is_not_ours() {
        let mut stranger = Command::new("sleep")
            .arg("30")
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        // Made after the stranger started: it cannot hold it.
        let (_read, write) = nix::unistd::pipe().unwrap();
        let child = Child::adopt_holding(pid_of(&stranger), write.as_fd(), write.as_raw_fd());
        let lost = !child.is_ours();
        // Dropping it must not touch the stranger either.
        drop(child);
        let alive = stranger.try_wait().unwrap().is_none();
        let _ = stranger.kill();
        let _ = stranger.wait();
        assert!(lost, "a process without the pipe was adopted as ours");
        assert!(alive, "the stranger was signalled or reaped");
    }

    #[test]
    fn a_child_holding_our_file_is_ours() {
        let (_read, write) = nix::unistd::pipe().unwrap();
        let theirs = write.try_clone().unwrap();
        let spawned = Command::new("sleep")
            .arg("30")
            .stdin(Stdio::null())
            .stdout(Stdio::from(theirs))
            .spawn()
            .unwrap();
        let mut child = Child::adopt_holding(pid_of(&spawned), write.as_fd(), 1);
        drop(spawned);
        assert!(child.is_ours());
        child.signal(nix::sys::signal::Signal::SIGKILL);
        while !child.has_exited() {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert_eq!(child.reap(), Status::Signaled(9));
    }

    /// A child of ours that already ended has no files to compare: it is
    /// still ours, and reaped, not left a zombie.
    #[test]
    fn a_child_that_already_ended_is_still_ours() {
        let (_read, write) = nix::unistd::pipe().unwrap();
        let theirs = write.try_clone().unwrap();
        let spawned = Command::new("true")
            .stdin(Stdio::null())
            .stdout(Stdio::from(theirs))
            .spawn()
            .unwrap();
        let pid = pid_of(&spawned);
        drop(spawned);
        // Wait for the exit without reaping it.
        while matches!(
            nix::sys::wait::waitid(
                nix::sys::wait::Id::Pid(pid),
                nix::sys::wait::WaitPidFlag::WEXITED
                    | nix::sys::wait::WaitPidFlag::WNOHANG
                    | nix::sys::wait::WaitPidFlag::WNOWAIT,
            ),
            Ok(nix::sys::wait::WaitStatus::StillAlive)
        ) {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let mut child = Child::adopt_holding(pid, write.as_fd(), 1);
        assert!(child.is_ours());
        assert_eq!(child.reap(), Status::Exited(0));
    }
}
