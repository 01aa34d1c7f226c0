//! Code that runs in the child: hygiene after `fork`, the body and its
//! panic hook, the exec entry before `main`, the exec child's and pool
//! worker's request loop, and what a pool worker cleans up between calls.
//!
//! Nothing here imports the caller's side ([`crate::call`]).

pub(crate) mod body;
#[cfg(target_os = "linux")]
pub(crate) mod descendants;
#[cfg(target_os = "linux")]
pub(crate) mod entry;
pub(crate) mod executor;
#[cfg(target_os = "linux")]
pub(crate) mod functions;
#[cfg(target_os = "linux")]
pub(crate) mod leftovers;
#[cfg(target_os = "linux")]
pub(crate) mod limits;
#[cfg(target_os = "linux")]
pub(crate) mod serve;

/// Off Linux, no limit is armed (the runtime refuses them there).
#[cfg(not(target_os = "linux"))]
pub(crate) mod limits {
    /// Nothing to put back.
    pub(crate) struct Armed;

    impl crate::limits::Limits {
        pub(crate) fn arm(self, _report: std::os::fd::RawFd) -> Result<Armed, &'static str> {
            Ok(Armed)
        }
    }
}
