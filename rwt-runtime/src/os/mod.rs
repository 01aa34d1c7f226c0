//! Process-wide, fork-aware plumbing: the descriptor list held across
//! `fork`, `kill_all`'s epochs, the spawner threads, and what rwt reads of
//! the kernel (`/proc`, resource usage, where a child is blocked).

#[cfg(unix)]
pub(crate) mod cancel;
#[cfg(unix)]
pub(crate) mod fds;
#[cfg(unix)]
pub(crate) mod panic_hook;
#[cfg(target_os = "linux")]
pub(crate) mod pidfd;
#[cfg(target_os = "linux")]
pub(crate) mod procfs;
#[cfg(unix)]
pub(crate) mod spawner;
#[cfg(unix)]
pub(crate) mod state;
pub(crate) mod stuck;
#[cfg(target_os = "linux")]
pub(crate) mod syscalls;
#[cfg(unix)]
pub(crate) mod test_output;
pub(crate) mod usage;

/// The CPUs this process may use (`available_parallelism`, 2 if unknown),
/// read once per process: it reads cgroup files. An atomic, not a
/// `OnceLock`: a fork while another thread initialises a `OnceLock` leaves
/// the child's copy initialising for ever. Threads that race both compute
/// it; the answers agree.
pub(crate) fn cpus() -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static CPUS: AtomicUsize = AtomicUsize::new(0);
    match CPUS.load(Ordering::Relaxed) {
        0 => {
            let n = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
            CPUS.store(n, Ordering::Relaxed);
            n
        }
        n => n,
    }
}
