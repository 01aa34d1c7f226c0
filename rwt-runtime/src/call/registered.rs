//! Exec- and pool-mode calls: a registered function, run by its id in a
//! fresh run of the executable or in a warm pool worker. The arguments are
//! encoded once, in the caller, and sent to each attempt's child.

use std::future::Future;

use serde::Serialize;

use crate::call::outcome::Ended;
use crate::call::{exec, pool, retry};
use crate::checks::CrossesProcesses;
use crate::child::functions::ExecFn;
use crate::options::Checked;
use crate::os::cancel::Epoch;
use crate::wait::deadline::Waiter;
use crate::{Error, Options};

/// Which fresh process serves an exec-style call.
#[derive(Clone, Copy)]
pub enum ExecMode {
    /// A new child for each attempt.
    Exec,
    /// A pool worker.
    Pool,
}

/// Runs an exec- or pool-mode `#[timeout]` function: `registered` is
/// its entry in the function table (its id, and what a child runs),
/// `registration` its constructor, named here so that neither is left
/// out of the binary.
///
/// # Errors
///
/// As documented on `rwt::Error`; `Error::Codec` if the arguments
/// cannot be encoded.
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
async fn exec_call<R, W>(
    mode: ExecMode,
    waiter: W,
    options: &Options,
    function: &'static str,
    registered: &'static ExecFn,
    args: &[u8],
) -> Result<R, Error>
where
    R: CrossesProcesses,
    W: Waiter,
{
    // What the caller printed so far goes out before anything the child
    // prints (they share the terminal or pipe); the caller prints nothing
    // more until the call returns, so once per call is enough. Not while
    // another thread forks: it holds the stdout lock for the whole fork,
    // and has flushed what was printed before it.
    if !crate::os::fds::forking() {
        let _ = std::io::Write::flush(&mut std::io::stdout());
    }
    let attempts = ExecAttempts {
        mode,
        waiter,
        function,
        id: registered.id(),
        args,
    };
    retry::drive(options, function, attempts)
        .await
        .map(|(value, _)| value)
}

/// One attempt after another of an exec- or pool-mode call.
struct ExecAttempts<'a, W> {
    mode: ExecMode,
    waiter: W,
    function: &'a str,
    id: u64,
    args: &'a [u8],
}

impl<R: CrossesProcesses, W: Waiter> retry::Attempt<R> for ExecAttempts<'_, W> {
    async fn attempt(&mut self, opts: &Checked, cancel: Option<&Epoch>) -> Ended<R> {
        let (waiter, function, id, args) = (&mut self.waiter, self.function, self.id, self.args);
        match self.mode {
            ExecMode::Exec => exec::attempt(waiter, function, opts, cancel, id, args).await,
            ExecMode::Pool => pool::attempt(waiter, function, opts, cancel, id, args).await,
        }
    }
}

/// Checks that a fresh run of the executable can find the function, and
/// encodes its arguments.
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
    if !crate::child::functions::in_main_executable(registered) {
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
