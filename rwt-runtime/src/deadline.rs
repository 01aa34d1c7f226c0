//! Deadlines on the monotonic clock, and waiting for file descriptors
//! without ever letting a signal shorten or stretch the wait.

use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags};

/// A point on the monotonic clock (`Instant`: never the wall clock, which
/// can jump).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Deadline(Instant);

impl Deadline {
    /// `d` from now; far in the future if that cannot be represented.
    pub(crate) fn after(d: Duration) -> Self {
        let now = Instant::now();
        Deadline(
            now.checked_add(d)
                .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 86_400)),
        )
    }

    /// Time left, zero once passed.
    pub(crate) fn remaining(self) -> Duration {
        self.0.saturating_duration_since(Instant::now())
    }

    pub(crate) fn passed(self) -> bool {
        Instant::now() >= self.0
    }
}

/// Which of the watched descriptors are ready.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Ready {
    /// The first descriptor can be read (or has hung up or failed).
    pub first: bool,
    /// The second descriptor can be read.
    pub second: bool,
}

/// Longest single `ppoll`: long waits loop in chunks.
const CHUNK: Duration = Duration::from_secs(3600);

/// Waits until one of up to two descriptors is readable or the deadline
/// passes (then returns nothing ready). `EINTR` restarts the wait with the
/// time left computed again.
pub(crate) fn wait_readable(
    first: Option<BorrowedFd<'_>>,
    second: Option<BorrowedFd<'_>>,
    deadline: Deadline,
) -> nix::Result<Ready> {
    let ev = PollFlags::POLLIN;
    let ready = |fd: &PollFd<'_>| fd.revents().is_some_and(|r| !r.is_empty());
    loop {
        let left = deadline.remaining();
        if left.is_zero() {
            return Ok(Ready::default());
        }
        let timeout = nix::sys::time::TimeSpec::from_duration(left.min(CHUNK));
        let (mut one, mut two);
        let fds: &mut [PollFd<'_>] = match (first, second) {
            (Some(a), Some(b)) => {
                two = [PollFd::new(a, ev), PollFd::new(b, ev)];
                &mut two
            }
            (Some(a), None) | (None, Some(a)) => {
                one = [PollFd::new(a, ev)];
                &mut one
            }
            (None, None) => &mut [],
        };
        match ppoll(fds, timeout) {
            Ok(0) => continue,
            Ok(_) => {
                return Ok(match (first, second) {
                    (Some(_), Some(_)) => Ready {
                        first: ready(&fds[0]),
                        second: ready(&fds[1]),
                    },
                    (Some(_), None) => Ready {
                        first: ready(&fds[0]),
                        second: false,
                    },
                    _ => Ready {
                        first: false,
                        second: ready(&fds[0]),
                    },
                })
            }
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
fn ppoll(fds: &mut [PollFd<'_>], timeout: nix::sys::time::TimeSpec) -> nix::Result<i32> {
    nix::poll::ppoll(fds, Some(timeout), None)
}

#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
fn ppoll(fds: &mut [PollFd<'_>], timeout: nix::sys::time::TimeSpec) -> nix::Result<i32> {
    // poll takes milliseconds: round up so the wait never ends early.
    let d = Duration::from(timeout);
    let ms = u16::try_from(d.as_nanos().div_ceil(1_000_000)).unwrap_or(u16::MAX);
    nix::poll::poll(fds, ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn nothing_ready_waits_until_the_deadline() {
        let (r, _w) = nix::unistd::pipe().unwrap();
        let start = Instant::now();
        let ready = wait_readable(
            Some(r.as_fd()),
            None,
            Deadline::after(Duration::from_millis(30)),
        )
        .unwrap();
        assert!(!ready.first && !ready.second);
        assert!(start.elapsed() >= Duration::from_millis(30));
    }

    #[test]
    fn reports_the_ready_descriptor() {
        let (r1, _w1) = nix::unistd::pipe().unwrap();
        let (r2, w2) = nix::unistd::pipe().unwrap();
        nix::unistd::write(&w2, b"x").unwrap();
        let ready = wait_readable(
            Some(r1.as_fd()),
            Some(r2.as_fd()),
            Deadline::after(Duration::from_secs(5)),
        )
        .unwrap();
        assert!(!ready.first && ready.second);
        let ready = wait_readable(
            None,
            Some(r2.as_fd()),
            Deadline::after(Duration::from_secs(5)),
        )
        .unwrap();
        assert!(ready.second);
    }
}
