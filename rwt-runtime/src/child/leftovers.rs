//! What a pool worker's call may leave behind, and how the worker notices.
//!
//! A worker takes a picture of its process-wide state before its first
//! call ([`Baseline::take`]) and compares after each call
//! ([`Baseline::restore`]). What can be put back cheaply and safely is put
//! back: the working directory, the umask, a pending `alarm`. What cannot
//! (a thread still running, a descriptor left open, a changed environment,
//! signal disposition or mask, a changed resource limit) retires the worker:
//! it tells the caller it is leaving and exits, and the next call gets
//! another worker. Statics (and whatever lives only in memory) are not
//! looked at: they live on, as the README says.
//!
//! The comparison costs one `pread` of `/proc/self/stat` (threads, signal
//! masks), one `fstat` of `/proc/self/fd` (since Linux 6.2 its size is the
//! number of open descriptors; before, a listing of it through a directory
//! kept open), three `fstat`s (what fds 0, 1 and 2 are), `getcwd`, `umask`, `alarm` and
//! two `setitimer`s, and 16 `getrlimit`s; it runs after the answer is sent,
//! while the caller decodes it.
//!
//! Not looked at: real-time signal dispositions (`/proc/self/stat` shows
//! the first 31 signals only), POSIX timers (`timer_create`), CPU affinity,
//! nice value, seccomp filters, `PR_SET_PDEATHSIG` (a worker also exits
//! when its channel closes). A function that changes these in pool mode
//! changes them for the calls after it.

use std::ffi::CStr;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use nix::sys::resource::{getrlimit, Resource};
use nix::sys::stat::Mode;

/// Every resource limit Linux has.
const LIMITS: [Resource; 16] = [
    Resource::RLIMIT_AS,
    Resource::RLIMIT_CORE,
    Resource::RLIMIT_CPU,
    Resource::RLIMIT_DATA,
    Resource::RLIMIT_FSIZE,
    Resource::RLIMIT_LOCKS,
    Resource::RLIMIT_MEMLOCK,
    Resource::RLIMIT_MSGQUEUE,
    Resource::RLIMIT_NICE,
    Resource::RLIMIT_NOFILE,
    Resource::RLIMIT_NPROC,
    Resource::RLIMIT_RSS,
    Resource::RLIMIT_RTPRIO,
    Resource::RLIMIT_RTTIME,
    Resource::RLIMIT_SIGPENDING,
    Resource::RLIMIT_STACK,
];

/// What `/proc/self/stat` says that a call may change.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Stat {
    threads: u64,
    blocked: u64,
    ignored: u64,
    caught: u64,
}

/// A worker's process-wide state before its first call.
pub(crate) struct Baseline {
    stat_file: OwnedFd,
    fd_dir: nix::dir::Dir,
    fds: FdSet,
    /// The kernel gives the count of open descriptors as the size of
    /// `/proc/self/fd` (Linux 6.2 and later): one `fstat` instead of a
    /// listing per call. A call that closed one of the worker's own and
    /// left one of its own open at another number keeps the count; it also
    /// broke the worker's channel or its checks (then it retires), or moved
    /// stdio, which [`stdio`] sees.
    fds_by_size: bool,
    stdio: [Option<(u64, u64)>; 3],
    stat: Stat,
    cwd: PathBuf,
    umask: Mode,
    environ: Environ,
    limits: [(u64, u64); 16],
}

impl Baseline {
    /// The state now; `None` if it cannot be read (then the worker serves
    /// one call, as an exec child does).
    pub(crate) fn take() -> Option<Baseline> {
        let stat_file = nix::fcntl::open(
            c"/proc/self/stat",
            nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .ok()?;
        // Out of the way of the numbers the function's own files get, so
        // that the descriptor probe below sees only theirs.
        let stat_file =
            match nix::fcntl::fcntl(&stat_file, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(512)) {
                Ok(high) => {
                    drop(stat_file);
                    // SAFETY: fcntl just returned this descriptor, owned by
                    // nobody else.
                    unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(high) }
                }
                Err(_) => stat_file,
            };
        let umask = nix::sys::stat::umask(Mode::from_bits_truncate(0o022));
        nix::sys::stat::umask(umask);
        let mut fd_dir = nix::dir::Dir::open(
            c"/proc/self/fd",
            nix::fcntl::OFlag::O_RDONLY
                | nix::fcntl::OFlag::O_DIRECTORY
                | nix::fcntl::OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .ok()?;
        let fds = FdSet::list(&mut fd_dir)?;
        let fds_by_size = fd_count(&fd_dir) == Some(fds.count);
        Some(Baseline {
            fds,
            fds_by_size,
            fd_dir,
            stdio: stdio(),
            stat: read_stat(&stat_file)?,
            stat_file,
            cwd: std::env::current_dir().ok()?,
            umask,
            environ: Environ::now(),
            limits: limits()?,
        })
    }

    /// Puts back what can be put back; `false` if the worker must retire.
    /// Only called with one thread known to run, or about to find more.
    pub(crate) fn restore(&mut self) -> bool {
        // Put back whatever the call did, unconditionally and first: each is
        // one system call, and the worker may retire below anyway.
        nix::sys::stat::umask(self.umask);
        // SAFETY: alarm(0) cancels a pending SIGALRM; it takes no pointers.
        unsafe { nix::libc::alarm(0) };
        for timer in [nix::libc::ITIMER_VIRTUAL, nix::libc::ITIMER_PROF] {
            let off = nix::libc::itimerval {
                it_interval: nix::libc::timeval {
                    tv_sec: 0,
                    tv_usec: 0,
                },
                it_value: nix::libc::timeval {
                    tv_sec: 0,
                    tv_usec: 0,
                },
            };
            // SAFETY: `off` is a valid itimerval for the call; the old value
            // is not asked for.
            unsafe { nix::libc::setitimer(timer, &off, std::ptr::null_mut()) };
        }
        let Some(stat) = self.settled_stat() else {
            return false;
        };
        if stat != self.stat {
            // A thread left running, or a signal disposition or the mask
            // changed: nothing to reset safely from here.
            tracing::debug!(target: "rwt", ?stat, baseline = ?self.stat, "worker retires: threads or signals changed");
            return false;
        }
        if std::env::current_dir().ok().as_ref() != Some(&self.cwd)
            && std::env::set_current_dir(&self.cwd).is_err()
        {
            return false;
        }
        let fds = if self.fds_by_size {
            fd_count(&self.fd_dir) == Some(self.fds.count)
        } else {
            FdSet::list(&mut self.fd_dir).as_ref() == Some(&self.fds)
        };
        fds && stdio() == self.stdio
            && self.environ.is_now()
            && limits().is_some_and(|now| now == self.limits)
    }

    /// `/proc/self/stat`, read again for a moment while it counts more
    /// threads than the baseline: a thread the call joined has woken its
    /// joiner a little before the kernel stops counting it.
    fn settled_stat(&self) -> Option<Stat> {
        let mut stat = read_stat(&self.stat_file)?;
        for _ in 0..20 {
            if stat.threads <= self.stat.threads {
                break;
            }
            std::thread::sleep(std::time::Duration::from_micros(50));
            stat = read_stat(&self.stat_file)?;
        }
        Some(stat)
    }
}

/// The open descriptors, as their count and a sum of their numbers (the
/// worker's own are the same from call to call; a call that left one open
/// changes both or the count).
#[derive(PartialEq, Eq, Debug)]
struct FdSet {
    count: usize,
    sum: u64,
}

impl FdSet {
    fn list(dir: &mut nix::dir::Dir) -> Option<FdSet> {
        let mut set = FdSet { count: 0, sum: 0 };
        // The iterator rewinds the directory when dropped, for next time.
        for entry in dir.iter() {
            let entry = entry.ok()?;
            if let Some(fd) = entry
                .file_name()
                .to_str()
                .ok()
                .and_then(|n| n.parse::<u64>().ok())
            {
                set.count += 1;
                set.sum += fd;
            }
        }
        Some(set)
    }
}

/// The size of `/proc/self/fd`: the number of open descriptors on Linux
/// 6.2 and later (0 before).
fn fd_count(dir: &nix::dir::Dir) -> Option<usize> {
    let st = nix::sys::stat::fstat(dir.as_fd()).ok()?;
    usize::try_from(st.st_size).ok()
}

/// What fds 0, 1 and 2 are (device and inode), or `None` for a closed one:
/// a call that pointed stdout elsewhere would send later calls' output
/// there.
fn stdio() -> [Option<(u64, u64)>; 3] {
    [0, 1, 2].map(|fd| {
        // SAFETY: fstat only looks at the descriptor number; a closed one
        // is an error, not a use of someone else's descriptor.
        let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        nix::sys::stat::fstat(fd).ok().map(|st| {
            #[allow(clippy::useless_conversion)] // the field types differ by platform
            (u64::from(st.st_dev), u64::from(st.st_ino))
        })
    })
}

fn read_stat(file: &impl AsFd) -> Option<Stat> {
    let mut buf = [0u8; 1024];
    let n = nix::sys::uio::pread(file, &mut buf, 0).ok()?;
    let text = std::str::from_utf8(&buf[..n]).ok()?;
    // Field 3 (state) is first.
    let mut fields = crate::os::procfs::stat_fields(text)?;
    let mut field = |n: usize| -> Option<u64> {
        // `nth` consumes: each call counts on from where the last stopped.
        fields.nth(n)?.parse().ok()
    };
    // Fields 20 (num_threads), 32 (blocked), 33 (sigignore), 34 (sigcatch).
    let threads = field(20 - 3)?;
    let blocked = field(32 - 21)?;
    let ignored = field(0)?;
    let caught = field(0)?;
    Some(Stat {
        threads,
        blocked,
        ignored,
        caught,
    })
}

/// The environment as the baseline saw it: the array's address, and each
/// string's address and bytes. `setenv`, `putenv` and `unsetenv` change
/// the array or its entries; a write into a string changes its bytes.
/// Compared with `memcmp` after each call (a hash of every byte cost a
/// pool call about a microsecond).
struct Environ {
    array: usize,
    entries: Vec<(usize, Box<[u8]>)>,
}

impl Environ {
    fn now() -> Environ {
        let mut entries = Vec::new();
        let array = each_variable(|at| {
            // SAFETY: the baseline's strings are the environment's own
            // now, each NUL-terminated (see `each_variable`).
            let bytes = unsafe { CStr::from_ptr(at) }.to_bytes();
            entries.push((at as usize, bytes.into()));
        });
        Environ { array, entries }
    }

    fn is_now(&self) -> bool {
        let mut same = true;
        let mut n = 0;
        let array = each_variable(|at| {
            // Only a string at the baseline's own address is read: one the
            // call put there may point anywhere (a `putenv` of a buffer
            // since freed). The C library never frees the strings it had.
            same &= self.entries.get(n).is_some_and(|(was_at, was)| {
                *was_at == at as usize
                    // SAFETY: as above: a baseline string, still alive.
                    && unsafe { CStr::from_ptr(at) }.to_bytes() == &**was
            });
            n += 1;
        });
        same && n == self.entries.len() && array == self.array
    }
}

/// Calls `f` with each environment string's address; returns the array's
/// address.
fn each_variable(mut f: impl FnMut(*const nix::libc::c_char)) -> usize {
    unsafe extern "C" {
        // Mutable: the C library changes it (setenv).
        static mut environ: *const *const nix::libc::c_char;
    }
    // SAFETY: the worker runs one thread here (a call that left another is
    // caught by the thread count first), so nothing changes the
    // environment while it is read; `environ` is a NULL-terminated array of
    // pointers (only the pointers are read here).
    unsafe {
        let array = std::ptr::addr_of!(environ).read();
        let mut at = array;
        while !at.is_null() && !(*at).is_null() {
            f(*at);
            at = at.add(1);
        }
        array as usize
    }
}

fn limits() -> Option<[(u64, u64); 16]> {
    let mut out = [(0, 0); 16];
    for (slot, resource) in out.iter_mut().zip(LIMITS) {
        *slot = getrlimit(resource).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where the kernel counts them (6.2+), the size of `/proc/self/fd` is
    /// what a listing counts, with descriptors of ours open (other tests
    /// of this binary open and close theirs meanwhile: only a listing that
    /// did not change around the `fstat` is compared).
    #[test]
    fn the_descriptor_count_is_what_a_listing_counts() {
        let mut dir = nix::dir::Dir::open(
            c"/proc/self/fd",
            nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY,
            Mode::empty(),
        )
        .unwrap();
        if fd_count(&dir) == Some(0) {
            return; // before Linux 6.2: the listing is used
        }
        let _extra: Vec<OwnedFd> = (0..3)
            .map(|_| std::fs::File::open("/dev/null").unwrap().into())
            .collect();
        for _ in 0..100 {
            let before = FdSet::list(&mut dir).unwrap();
            let size = fd_count(&dir).unwrap();
            if FdSet::list(&mut dir).unwrap() == before {
                assert_eq!(size, before.count);
                return;
            }
        }
        panic!("the descriptor table never held still for three reads");
    }

    #[test]
    fn the_stat_line_is_read_field_by_field() {
        let file = nix::fcntl::open(
            c"/proc/self/stat",
            nix::fcntl::OFlag::O_RDONLY,
            Mode::empty(),
        )
        .unwrap();
        let stat = read_stat(&file).unwrap();
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .unwrap()
                .trim()
                .to_owned()
        };
        assert_eq!(stat.threads.to_string(), field("Threads:"));
        // stat shows the first 31 signals only.
        let low = |hex: String| u64::from_str_radix(&hex, 16).unwrap() & 0x7fff_ffff;
        assert_eq!(stat.ignored, low(field("SigIgn:")));
        assert_eq!(stat.caught, low(field("SigCgt:")));
    }
}
