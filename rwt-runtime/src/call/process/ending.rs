//! The end of a child, as the parent makes it: signals (through the
//! pidfd, so a recycled pid is never hit) and the reap that collects its
//! status and the kernel's accounting of it.

#[cfg(target_os = "linux")]
use std::os::fd::AsFd;

use nix::errno::Errno;
use nix::sys::signal::{self, Signal};
use nix::sys::wait::{WaitPidFlag, WaitStatus};

use super::{Child, Status};
#[cfg(target_os = "linux")]
use crate::os::pidfd::{
    pidfd_alive, pidfd_send_signal, pidfd_send_signal_flags, PIDFD_SIGNAL_PROCESS_GROUP,
};
use crate::os::usage::Usage;

impl Child {
    /// Sends `sig` to the child alone, if it is still ours to signal.
    pub(crate) fn signal(&self, sig: Signal) {
        if self.status.is_some() {
            return;
        }
        #[cfg(target_os = "linux")]
        if let Some(fd) = &self.pidfd {
            // ESRCH: already gone. Nothing else can happen to a valid pidfd.
            let _ = pidfd_send_signal(fd.as_fd(), sig);
            return;
        }
        let _ = signal::kill(self.pid, sig);
    }

    /// Sends `sig` to the child's process group (the child and everything it
    /// started that did not leave the group). Only while the child is not
    /// reaped: its pid, and so the group id, cannot be reused until then.
    ///
    /// On Linux 6.9+ the signal goes through the pidfd
    /// (`PIDFD_SIGNAL_PROCESS_GROUP`), which names the child's own group,
    /// never a stranger's that reuses the number, and fails once the group
    /// is empty. Older kernels fall back to `killpg`, after asking
    /// the pidfd whether the child is still unreaped: a stranger's reap
    /// seen before that question is safe; one landing between the question
    /// and `killpg`, followed by a recycle of the number, is not.
    ///
    /// After someone else reaped the child (`Lost`), only the 6.9+ pidfd
    /// path is tried: it still reaches the group's surviving members (the
    /// pidfd pins the group's id) and fails once none is left; `killpg`
    /// could hit a recycled number. A pidfd is kept only once `adopt`
    /// checked that it names our child, so it never names a stranger.
    pub(crate) fn signal_group(&self, sig: Signal) {
        #[cfg(target_os = "linux")]
        if self.status == Some(Status::Lost) {
            if let Some(fd) = &self.pidfd {
                let _ = pidfd_send_signal_flags(fd.as_fd(), Some(sig), PIDFD_SIGNAL_PROCESS_GROUP);
            }
            return;
        }
        if self.status.is_some() {
            return;
        }
        #[cfg(target_os = "linux")]
        if let Some(fd) = &self.pidfd {
            match pidfd_send_signal_flags(fd.as_fd(), Some(sig), PIDFD_SIGNAL_PROCESS_GROUP) {
                // Kernel before 6.9: go on to killpg while the child is ours.
                Err(Errno::EINVAL) if pidfd_alive(fd.as_fd()) => {}
                _ => return,
            }
        }
        let _ = signal::killpg(self.pid, sig);
    }

    /// Collects the exit status of a child that has ended (see
    /// [`Child::has_exited`]), with the kernel's accounting of it (see
    /// [`Child::usage`]). Does not block for long: the child is gone.
    pub(crate) fn reap(&mut self) -> Status {
        if let Some(status) = self.status {
            return status;
        }
        let status = loop {
            #[cfg(target_os = "linux")]
            let res = match &self.pidfd {
                Some(fd) => {
                    use std::os::fd::AsRawFd;
                    let fd = nix::libc::id_t::try_from(fd.as_fd().as_raw_fd()).unwrap_or(0);
                    crate::os::usage::waitid(nix::libc::P_PIDFD, fd, nix::libc::WEXITED)
                }
                // The exit was seen (WNOWAIT): the zombie is there to reap,
                // unless a stranger took it since and the number went to
                // another child of ours, which must not be waited for.
                None => crate::os::usage::waitid(
                    nix::libc::P_PID,
                    self.pid.as_raw().unsigned_abs(),
                    nix::libc::WEXITED | nix::libc::WNOHANG,
                ),
            };
            #[cfg(target_os = "linux")]
            match res {
                Err(Errno::EINTR) => {}
                Ok(Some(waited)) => {
                    let usage = Usage::from_rusage(&waited.rusage, self.started.elapsed());
                    tracing::debug!(
                        target: "rwt",
                        pid = self.pid(),
                        user_us = u64::try_from(usage.user.as_micros()).unwrap_or(u64::MAX),
                        system_us = u64::try_from(usage.system.as_micros()).unwrap_or(u64::MAX),
                        max_rss = usage.max_rss,
                        wall_us = u64::try_from(usage.wall.as_micros()).unwrap_or(u64::MAX),
                        "child reaped"
                    );
                    self.usage = Some(usage);
                    break match waited.code {
                        nix::libc::CLD_EXITED => Status::Exited(waited.status),
                        nix::libc::CLD_KILLED | nix::libc::CLD_DUMPED => {
                            Status::Signaled(waited.status)
                        }
                        _ => Status::Lost,
                    };
                }
                Ok(None) | Err(_) => break Status::Lost,
            }
            #[cfg(not(target_os = "linux"))]
            match nix::sys::wait::waitpid(self.pid, None) {
                Err(Errno::EINTR) => {}
                Ok(st) => break status_of(st).unwrap_or(Status::Lost),
                Err(_) => break Status::Lost,
            }
        };
        self.status = Some(status);
        self.pidfd = None;
        self.prepared = None;
        status
    }

    /// What the child used, as the kernel accounted it when [`Child::reap`]
    /// reaped it; `None` before, or if its status was lost.
    pub(crate) fn usage(&self) -> Option<Usage> {
        self.usage
    }

    /// Fallback without a pidfd. On Linux `waitid(P_PID, WNOWAIT)` sees the
    /// exit without reaping, so the pid (and the group id) stays ours until
    /// [`Child::reap`]: the group of a child that died can still be killed.
    /// Elsewhere `waitpid(pid, WNOHANG)`, which reaps if it ended.
    pub(super) fn try_reap_pid(&mut self) -> bool {
        #[cfg(target_os = "linux")]
        loop {
            match nix::sys::wait::waitid(
                nix::sys::wait::Id::Pid(self.pid),
                WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT,
            ) {
                Ok(WaitStatus::StillAlive) => return false,
                Err(Errno::EINTR) => {}
                Ok(_) => return true,
                Err(_) => {
                    self.status = Some(Status::Lost);
                    return true;
                }
            }
        }
        #[cfg(not(target_os = "linux"))]
        loop {
            match nix::sys::wait::waitpid(self.pid, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => return false,
                Err(Errno::EINTR) => {}
                Ok(st) => {
                    self.status = Some(status_of(st).unwrap_or(Status::Lost));
                    return true;
                }
                Err(_) => {
                    self.status = Some(Status::Lost);
                    return true;
                }
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn status_of(st: WaitStatus) -> Option<Status> {
    match st {
        WaitStatus::Exited(_, code) => Some(Status::Exited(code)),
        WaitStatus::Signaled(_, sig, _) => Some(Status::Signaled(sig as i32)),
        _ => None,
    }
}
