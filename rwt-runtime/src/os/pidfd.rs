//! The process-descriptor syscalls (pidfd_open, pidfd_send_signal, kcmp),
//! which nix does not wrap: a pidfd names one process for as long as it is
//! held, so a signal through it never reaches a process that reused the
//! number.

use std::os::fd::{BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::signal::Signal;
use nix::unistd::Pid;

pub(crate) fn pidfd_open(pid: Pid) -> nix::Result<OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: pidfd_open takes a pid and a flags word and returns a new file
    // descriptor or -1; no memory is passed.
    let fd = unsafe { nix::libc::syscall(nix::libc::SYS_pidfd_open, pid.as_raw(), 0) };
    let fd = Errno::result(fd)?;
    let fd = i32::try_from(fd).map_err(|_| Errno::EBADF)?;
    // SAFETY: the kernel just returned this descriptor to us, and nothing
    // else owns it. pidfds are close-on-exec.
    crate::os::fds::above_stdio(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `kcmp(gettid(), pid, KCMP_FILE, ours, theirs)`: whether descriptor
/// `theirs` of process `pid` is the open file that `ours` is here. The
/// calling thread, not the main one: a main thread that called
/// `pthread_exit` has no files left to compare.
pub(crate) fn kcmp_file(pid: Pid, ours: i32, theirs: i32) -> nix::Result<bool> {
    const KCMP_FILE: nix::libc::c_int = 0;
    // SAFETY: kcmp takes two pids, a type and two descriptor numbers, all
    // plain integers, and reads no memory of ours.
    let res = unsafe {
        nix::libc::syscall(
            nix::libc::SYS_kcmp,
            nix::unistd::gettid().as_raw(),
            pid.as_raw(),
            KCMP_FILE,
            ours,
            theirs,
        )
    };
    Errno::result(res).map(|order| order == 0)
}

/// `pidfd_send_signal` flag: signal the target's process group.
pub(crate) const PIDFD_SIGNAL_PROCESS_GROUP: u32 = 1 << 2;

pub(crate) fn pidfd_send_signal(fd: BorrowedFd<'_>, sig: Signal) -> nix::Result<()> {
    pidfd_send_signal_flags(fd, Some(sig), 0)
}

/// Whether the process `fd` pins can still be signalled (is not reaped).
pub(crate) fn pidfd_alive(fd: BorrowedFd<'_>) -> bool {
    pidfd_send_signal_flags(fd, None, 0).is_ok()
}

/// `pidfd_send_signal(2)`; `None` sends no signal, only checks that the
/// process can still be signalled (not yet reaped).
pub(crate) fn pidfd_send_signal_flags(
    fd: BorrowedFd<'_>,
    sig: Option<Signal>,
    flags: u32,
) -> nix::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: the info pointer is null (the kernel fills in the usual
    // kill() siginfo); fd is a valid pidfd we hold; flags are plain bits.
    let res = unsafe {
        nix::libc::syscall(
            nix::libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            sig.map_or(0, |sig| sig as i32),
            std::ptr::null::<nix::libc::siginfo_t>(),
            flags,
        )
    };
    Errno::result(res).map(drop)
}
