//! The runtime of [rwt](https://docs.rs/rwt): child processes, result
//! codec, deadlines, kill, retry, errors.
//!
//! This crate is an implementation detail: depend on `rwt`, which re-exports
//! everything meant for users and documents it.

#![warn(missing_docs, unreachable_pub)]
#![deny(clippy::undocumented_unsafe_blocks)]
#![warn(clippy::pedantic)]
// The pedantic lints this crate does not follow, and why.
#![allow(
    // Prose names syscalls, flags and /proc files (pidfd_open, RLIMIT_DATA)
    // as the man pages do.
    clippy::doc_markdown,
    // Kernel constants and hashes are written as their specs write them.
    clippy::unreadable_literal,
    // Pairs such as `read`/`ready` or `pid`/`pidfd` name what they hold.
    clippy::similar_names,
    // libc calls take `&mut value` where C takes a pointer.
    clippy::borrow_as_ptr,
    clippy::ref_as_ptr,
    // Integers cross to and from the kernel's types (lengths, pids, signal
    // numbers) where the range is the kernel's; checked where it can fail.
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_precision_loss,
    // `Ready` is one poll's answer: a flag per descriptor.
    clippy::struct_excessive_bools,
    // Arms that are separate cases of a protocol stay separate.
    clippy::match_same_arms,
    // Internal functions; the public ones have `#[must_use]` where it helps.
    clippy::must_use_candidate
)]
#![cfg_attr(
    not(unix),
    allow(unused_imports, dead_code, unreachable_code, unused_variables)
)]

#[cfg(not(unix))]
compile_error!(
    "rwt runs functions in child processes made with fork() and supports Unix \
     systems only (Linux is tested); Windows is not supported"
);

mod bytes;
#[cfg(unix)]
mod call;
mod checks;
#[cfg(unix)]
mod child;
mod error;
mod limits;
mod options;
mod os;
#[cfg(unix)]
mod testing;
#[cfg(unix)]
mod wait;
mod wire;

pub use bytes::Bytes;
#[cfg(unix)]
pub use call::command::CommandExt;
#[cfg(target_os = "linux")]
pub use call::pool::{set_pool_idle_timeout, set_pool_size, IDLE_TIMEOUT as POOL_IDLE_TIMEOUT};
pub use error::Error;
pub use limits::Limit;
pub use options::Options;
#[cfg(unix)]
pub use os::cancel::kill_all;
#[cfg(unix)]
pub use os::stuck::{State, Stuck};
pub use os::usage::Usage;

use serde::de::DeserializeOwned;
use serde::Serialize;

/// Runs `f` in a forked child process with the deadline, attempts and kill
/// policy of `options`, and returns its value.
///
/// For deadlines known only at run time; the `#[timeout]` attribute is the
/// usual way. The closure runs in a `fork()` of the caller (it cannot be
/// found again in a fresh process), so it sees the caller's memory as of
/// the call, and only its value comes back.
///
/// A value that is an `Err` is returned as it is and not retried (the
/// attribute retries those; here `R` may be any type).
///
/// ```
/// # use rwt_runtime as rwt;
/// use rwt::{run_with_timeout, Options};
///
/// let secs = 0.5; // known only at run time, from a config file say
/// let product = run_with_timeout(&Options::new().secs(secs), || (1..=10u64).product::<u64>());
/// assert_eq!(product.unwrap(), 3_628_800);
/// ```
///
/// # Errors
///
/// [`Error::InvalidOptions`] for an option out of range; otherwise as for
/// the attribute: [`Error::Timeout`], [`Error::Panicked`],
/// [`Error::Crashed`], [`Error::Codec`], [`Error::Spawn`].
pub fn run_with_timeout<R, F>(options: &Options, f: F) -> Result<R, Error>
where
    F: FnOnce() -> R,
    R: Serialize + DeserializeOwned,
{
    call::fork::call(options, std::any::type_name::<F>(), f, |_| false)
}

/// [`run_with_timeout`], and what the child that returned the value used,
/// as the kernel accounted it when rwt reaped the child (`None` only if it
/// was not reaped within a second of answering, or its status was taken
/// by someone else). Errors carry the same through [`Error::usage`].
///
/// ```
/// # use rwt_runtime as rwt;
/// let opts = rwt::Options::new().secs(5.0);
/// let (sum, usage) = rwt::run_with_usage(&opts, || (1..=100u32).sum::<u32>())?;
/// assert_eq!(sum, 5050);
/// assert!(usage.is_some_and(|u| u.max_rss > 0));
/// # Ok::<(), rwt::Error>(())
/// ```
///
/// # Errors
///
/// As for [`run_with_timeout`].
pub fn run_with_usage<R, F>(options: &Options, f: F) -> Result<(R, Option<Usage>), Error>
where
    F: FnOnce() -> R,
    R: Serialize + DeserializeOwned,
{
    call::fork::call_measured(options, std::any::type_name::<F>(), f, |_| false)
}

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;
