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
