//! What a reaped child used, from the kernel's accounting of it.

use std::fmt;
use std::time::Duration;

/// What one child process used, as the kernel accounted it when rwt reaped
/// the child (the `rusage` of `waitid`): nothing is sampled or polled.
///
/// CPU times include what the child's own children used, once it waited
/// for them. In pool mode the child is a worker that may have served
/// earlier calls: its CPU times and peak memory cover its whole life, and
/// `wall` covers the call.
///
/// ```
/// # use rwt_runtime as rwt;
/// let opts = rwt::Options::new().secs(5.0);
/// let (n, usage) = rwt::run_with_usage(&opts, || (0..1_000_000u64).sum::<u64>()).unwrap();
/// assert_eq!(n, 499_999_500_000);
/// if let Some(usage) = usage {
///     println!("{usage}"); // "user 1.2 ms, system 0.4 ms, peak RSS 2.1 MiB, wall 1.0 ms"
/// }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Usage {
    /// CPU time spent in user mode.
    pub user: Duration,
    /// CPU time spent in the kernel on the child's behalf.
    pub system: Duration,
    /// Peak resident set size, in bytes (the kernel counts it in KiB). A
    /// fork child starts with its caller's resident pages counted.
    pub max_rss: u64,
    /// Time from the start of the child (of the call, in pool mode) to
    /// its reaping.
    pub wall: Duration,
}

impl Usage {
    /// User plus system CPU time: what a `cpu` limit counts.
    #[must_use]
    pub fn cpu(&self) -> Duration {
        self.user + self.system
    }

    #[cfg(target_os = "linux")]
    pub(crate) fn from_rusage(ru: &nix::libc::rusage, wall: Duration) -> Self {
        let time = |tv: nix::libc::timeval| {
            Duration::from_secs(tv.tv_sec.unsigned_abs())
                + Duration::from_micros(tv.tv_usec.unsigned_abs())
        };
        Usage {
            user: time(ru.ru_utime),
            system: time(ru.ru_stime),
            max_rss: ru.ru_maxrss.unsigned_abs().saturating_mul(1024),
            wall,
        }
    }
}

impl fmt::Display for Usage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        write!(
            f,
            "user {:.1} ms, system {:.1} ms, peak RSS {:.1} MiB, wall {:.1} ms",
            ms(self.user),
            ms(self.system),
            self.max_rss as f64 / f64::from(1u32 << 20),
            ms(self.wall)
        )
    }
}

/// How `waitid` found a child: `si_code` and `si_status` of its
/// `siginfo_t`, and the kernel's accounting of it.
#[cfg(target_os = "linux")]
pub(crate) struct Waited {
    /// `CLD_EXITED`, `CLD_KILLED`, `CLD_DUMPED`...
    pub code: i32,
    /// The exit code, or the signal.
    pub status: i32,
    pub rusage: nix::libc::rusage,
}

/// `waitid(2)` as the kernel has it, with the fifth argument that the C
/// library leaves out: the reaped child's `rusage`. `Ok(None)` with
/// `WNOHANG` when the child has not ended.
#[cfg(target_os = "linux")]
pub(crate) fn waitid(
    idtype: nix::libc::idtype_t,
    id: nix::libc::id_t,
    flags: nix::libc::c_int,
) -> nix::Result<Option<Waited>> {
    use nix::libc;
    // SAFETY: all-zero is a valid siginfo_t and rusage (plain integers).
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut rusage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: the kernel writes one siginfo_t and one rusage into the
    // buffers we own; the other arguments are integers.
    let res = unsafe {
        libc::syscall(
            libc::SYS_waitid,
            idtype,
            id,
            &mut info as *mut libc::siginfo_t,
            flags,
            &mut rusage as *mut libc::rusage,
        )
    };
    nix::errno::Errno::result(res)?;
    // SAFETY: for SIGCHLD information, si_pid and si_status are the fields
    // the kernel filled in (si_pid stays 0 when WNOHANG found nothing).
    let (pid, status) = unsafe { (info.si_pid(), info.si_status()) };
    Ok((pid != 0).then_some(Waited {
        code: info.si_code,
        status,
        rusage,
    }))
}
