//! The runtime of [rwt](https://docs.rs/rwt): child processes, result
//! codec, deadlines, kill, retry, errors.
//!
//! This crate is an implementation detail: depend on `rwt`, which re-exports
//! everything meant for users and documents it.

#![warn(missing_docs)]
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

/// Items used by the code that `#[rwt::timeout]` generates. Not public API:
/// they may change in any release.
#[doc(hidden)]
pub mod __private {
    use serde::de::DeserializeOwned;
    use serde::Serialize;

    use std::future::Future;

    pub use crate::child::executor::block_on;
    pub use crate::options::{grace_problem, secs_problem};
    #[cfg(unix)]
    pub use crate::testing::{run_test, test_result, ShouldPanic, TestError, TestSpec, TestValue};
    pub use crate::{Error, Options};

    /// Runs the body of a fork-mode `#[timeout]` function.
    ///
    /// # Errors
    ///
    /// As documented on `rwt::Error`.
    pub fn call_fork<R, F>(
        options: &Options,
        function: &'static str,
        body: F,
        failed: fn(&R) -> bool,
    ) -> Result<R, Error>
    where
        F: FnOnce() -> R,
        R: CrossesProcesses,
    {
        crate::call::fork::call(options, function, body, failed)
    }

    /// Runs the body of a fork-mode `async` `#[timeout]` function: `body`
    /// runs the async body to completion in the child. The child is forked
    /// by rwt's spawner thread (so `body` must be `Send`); the returned
    /// future waits without blocking its thread, and dropping it kills the
    /// child.
    ///
    /// # Errors
    ///
    /// As documented on `rwt::Error`.
    pub fn call_fork_async<R, F>(
        options: &Options,
        function: &'static str,
        body: F,
        failed: fn(&R) -> bool,
    ) -> impl Future<Output = Result<R, Error>>
    where
        F: FnOnce() -> R + Send,
        R: CrossesProcesses,
    {
        let options = options.clone();
        async move { crate::call::fork::call_async(&options, function, body, failed).await }
    }

    /// An argument of an async fork-mode function: the child is forked by
    /// rwt's spawner thread, so what the body captures must be `Send`.
    #[diagnostic::on_unimplemented(
        message = "`{Self}` cannot be an argument of an async fork-mode `#[timeout]` function",
        label = "this argument must be `Send`",
        note = "the child of an async call is started by rwt's spawner thread, which \
                needs the arguments; pass a `Send` type, or use `mode = \"exec\"`, \
                where arguments are copied instead"
    )]
    pub trait AsyncArgument {}

    impl<T: ?Sized + Send> AsyncArgument for T {}

    /// Fails to compile, at the user's parameter type, when it is not `Send`.
    pub const fn async_argument<T: ?Sized + AsyncArgument>() {}

    #[cfg(target_os = "linux")]
    pub use crate::child::entry::{function_id, register, run_in_child, ExecFn, ExecFrame};

    /// Which fresh process serves an exec-style call.
    #[cfg(target_os = "linux")]
    #[derive(Clone, Copy)]
    pub enum ExecMode {
        /// A new child for each attempt.
        Exec,
        /// A pool worker.
        Pool,
    }

    /// Runs an exec- or pool-mode `#[timeout]` function: `registered` is
    /// its entry in the registry (its id, and what a child runs),
    /// `registration` its constructor, named here so that neither is left
    /// out of the binary.
    ///
    /// # Errors
    ///
    /// As documented on `rwt::Error`; `Error::Codec` if the arguments
    /// cannot be encoded.
    #[cfg(target_os = "linux")]
    pub fn call_exec<A, R>(
        options: &Options,
        function: &'static str,
        registered: &'static ExecFn,
        registration: &'static extern "C" fn(),
        args: &A,
        mode: ExecMode,
    ) -> Result<R, Error>
    where
        A: Serialize,
        R: CrossesProcesses,
    {
        std::hint::black_box(registration);
        let args = encode_args(function, registered, args)?;
        let waiter = crate::wait::deadline::Blocking;
        crate::wait::deadline::block_now(exec_call(
            mode, waiter, options, function, registered, &args,
        ))
    }

    /// [`call_exec`] for an async function: the arguments are encoded now;
    /// the returned future waits without blocking its thread, and dropping
    /// it kills the child (a pool worker is then not reused).
    ///
    /// # Errors
    ///
    /// As for [`call_exec`].
    #[cfg(target_os = "linux")]
    pub fn call_exec_async<A, R>(
        options: &Options,
        function: &'static str,
        registered: &'static ExecFn,
        registration: &'static extern "C" fn(),
        args: &A,
        mode: ExecMode,
    ) -> impl Future<Output = Result<R, Error>> + use<A, R>
    where
        A: Serialize,
        R: CrossesProcesses,
    {
        std::hint::black_box(registration);
        let args = encode_args(function, registered, args);
        let options = options.clone();
        async move {
            let waiter = crate::wait::async_wait::AsyncWaiter;
            exec_call(mode, waiter, &options, function, registered, &args?).await
        }
    }

    /// The attempts of an exec- or pool-mode call, waiting through
    /// `waiter`.
    #[cfg(target_os = "linux")]
    async fn exec_call<R, W>(
        mode: ExecMode,
        mut waiter: W,
        options: &Options,
        function: &'static str,
        registered: &'static ExecFn,
        args: &[u8],
    ) -> Result<R, Error>
    where
        R: CrossesProcesses,
        W: crate::wait::deadline::Waiter,
    {
        // What the caller printed so far goes out before anything the child
        // prints (they share the terminal or pipe); the caller prints
        // nothing more until the call returns, so once per call is enough.
        // Not while another thread forks: it holds the stdout lock for the
        // whole fork, and has flushed what was printed before it.
        if !crate::os::fds::forking() {
            let _ = std::io::Write::flush(&mut std::io::stdout());
        }
        let id = registered.id();
        let mut retry = crate::call::retry::Retry::new(options, function)?;
        loop {
            retry.start();
            let (opts, cancel) = (retry.opts(), retry.cancel());
            let outcome = match mode {
                ExecMode::Exec => {
                    crate::call::exec::attempt(&mut waiter, function, opts, cancel, id, args).await
                }
                ExecMode::Pool => {
                    crate::call::pool::attempt(&mut waiter, function, opts, cancel, id, args).await
                }
            };
            if let crate::call::retry::Step::Done(result) = retry.record(outcome) {
                return result;
            }
        }
    }

    /// Checks that a fresh run of the executable can find the function, and
    /// encodes its arguments.
    #[cfg(target_os = "linux")]
    fn encode_args<A: Serialize>(
        function: &str,
        registered: &'static ExecFn,
        args: &A,
    ) -> Result<Vec<u8>, Error> {
        if registered.is_ambiguous() {
            return Err(Error::Spawn {
                function: function.to_owned(),
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!(
                        "ambiguous: another exec- or pool-mode function has the same id \
                         {:#018x} (the same item written twice by one macro_rules! \
                         invocation?), so a child could not tell which one to run; \
                         give the two different names",
                        registered.id()
                    ),
                ),
            });
        }
        if !crate::child::entry::in_main_executable(registered) {
            return Err(Error::Spawn {
                function: function.to_owned(),
                source: std::io::Error::new(
                    std::io::ErrorKind::Unsupported,
                    "exec and pool modes run a fresh copy of the main executable, and this \
                     function lives in a library loaded into it (dlopen): use mode = \"fork\"",
                ),
            });
        }
        let encoded = crate::wire::codec::encode(args).map_err(|detail| Error::Codec {
            usage: None,
            function: function.to_owned(),
            detail: detail.replace("the result", "the arguments"),
        })?;
        // A child refuses more (and leaves): say so here, before a worker
        // is spent on it.
        if encoded.len() as u64 > crate::wire::protocol::ARGS_LIMIT {
            return Err(Error::Codec {
                function: function.to_owned(),
                detail: format!(
                    "arguments of {} bytes exceed the limit of {} bytes",
                    encoded.len(),
                    crate::wire::protocol::ARGS_LIMIT
                ),
                usage: None,
            });
        }
        Ok(encoded)
    }

    /// A value that must cross a process boundary: `Serialize` to leave the
    /// child, `DeserializeOwned` to arrive in the caller.
    #[diagnostic::on_unimplemented(
        message = "`{Self}` cannot be sent between processes",
        label = "this type must implement `Serialize` and `DeserializeOwned`",
        note = "derive them with `#[derive(serde::Serialize, serde::Deserialize)]`, \
                or return a type that has them"
    )]
    pub trait CrossesProcesses: Serialize + DeserializeOwned {}

    impl<T: Serialize + DeserializeOwned> CrossesProcesses for T {}

    /// An argument that exec mode sends to the child: `Serialize` to leave
    /// the caller, and (boxed, for the target of a reference such as `str`)
    /// `DeserializeOwned` to arrive in the child.
    #[diagnostic::on_unimplemented(
        message = "`{Self}` cannot be passed to a child process",
        label = "exec mode needs `Serialize` and `DeserializeOwned` for every argument",
        note = "derive them with `#[derive(serde::Serialize, serde::Deserialize)]`, \
                or use `mode = \"fork\"`, where arguments are not copied"
    )]
    pub trait ArgumentCrossesProcesses {}

    impl<T: ?Sized + Serialize> ArgumentCrossesProcesses for T where
        ::std::boxed::Box<T>: DeserializeOwned
    {
    }

    /// Fails to compile, at the user's parameter type, when it cannot cross.
    pub const fn argument_crosses_processes<T: ?Sized + ArgumentCrossesProcesses>() {}

    /// Checks `secs = CONST` at compile time.
    pub const fn checked_secs(secs: f64) -> f64 {
        match secs_problem(secs) {
            None => secs,
            Some(problem) => const_panic_secs(problem),
        }
    }

    #[track_caller]
    const fn const_panic_secs(problem: &'static str) -> f64 {
        // A const panic can only print literals: one per message.
        match problem.len() {
            _ if eq(problem, "must be a finite number") => {
                panic!("`secs` must be a finite number")
            }
            _ if eq(problem, "must be greater than 0") => panic!("`secs` must be greater than 0"),
            _ if eq(problem, "must be at least 0.001 (1 ms)") => {
                panic!("`secs` must be at least 0.001 (1 ms)")
            }
            _ => panic!("`secs` must be at most 3155760000 (100 years)"),
        }
    }

    const fn eq(a: &str, b: &str) -> bool {
        let (a, b) = (a.as_bytes(), b.as_bytes());
        if a.len() != b.len() {
            return false;
        }
        let mut i = 0;
        while i < a.len() {
            if a[i] != b[i] {
                return false;
            }
            i += 1;
        }
        true
    }

    /// Tells whether a function's value is an `Err` (autoref
    /// specialisation: `Result` types pick [`ResultProbe`], everything else,
    /// including a generic `T`, falls back to [`OtherProbe`]).
    pub struct Probe<'a, T>(pub &'a T);

    /// The `Result` case of [`Probe`].
    pub trait ResultProbe {
        /// `true` for an `Err`.
        fn __rwt_failed(&self) -> bool;
    }

    impl<T, E> ResultProbe for Probe<'_, ::core::result::Result<T, E>> {
        fn __rwt_failed(&self) -> bool {
            self.0.is_err()
        }
    }

    /// The fallback case of [`Probe`].
    pub trait OtherProbe {
        /// Always `false`: only a `Result` can fail.
        fn __rwt_failed(&self) -> bool;
    }

    impl<T> OtherProbe for &Probe<'_, T> {
        fn __rwt_failed(&self) -> bool {
            false
        }
    }
}
