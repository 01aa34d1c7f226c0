//! Run a function in a child process with an enforced deadline.
//!
//! Some functions hang: a file check on a dead network mount, a C library
//! that never returns, a parser that loops on hostile input. A thread cannot
//! be stopped; a process can be killed. With rwt that is one line:
//!
//! ```
//! #[rwt::timeout(secs = 1.5, ntries = 3)]
//! fn exists(path: String) -> bool {
//!     std::path::Path::new(&path).exists()
//! }
//!
//! // Callers get `Result<bool, rwt::Error>`, back on time, every time.
//! match exists("/tmp".into()) {
//!     Ok(found) => println!("found: {found}"),
//!     Err(e) if e.is_timeout() => eprintln!("{e}"),
//!     Err(e) => eprintln!("{e}"),
//! }
//! ```
//!
//! It is the Rust counterpart of Python's `run_with_timeout` (cjnfuncs) and
//! of process-pool timeout tools (pebble, Deadpool): options checked at
//! compile time, a typed `Result` instead of an exception, nothing left
//! running, and a call costs about as much as a bare `fork()`.
//!
//! Linux is the tested platform (see the README's Platforms section); the
//! `tokio` feature runs async bodies on tokio in the child. In a checkout,
//! `cargo run --example quickstart` shows four calls (in time, too slow, a
//! panic, a retry).
//!
//! Each call forks a child that runs the body; the result comes back as
//! MessagePack over a pipe. If the child is not done by the deadline it is
//! killed with everything it started, and the call is retried if `ntries`
//! asks for it.
//!
//! # The attribute
//!
//! `fn f(a: A, b: &B) -> R` becomes, for its callers,
//! `fn f(a: A, b: &B) -> Result<R, rwt::Error>` (no return type:
//! `Result<(), rwt::Error>`). Visibility, docs, other attributes, generics,
//! where clauses and methods (`&self`) are kept.
//!
//! | option   | value                                       | default  | meaning |
//! |----------|---------------------------------------------|----------|---------|
//! | `secs`   | number literal from 0.001 to 100 years, or a path to a `const f64` | `1.0` | deadline of one attempt, seconds |
//! | `ntries` | integer literal >= 1                        | `1`      | attempts in all; a new one follows a timeout, a panic, a crash, or an `Err` from a function that returns a `Result` |
//! | `kill`   | `true` / `false`                            | `true`   | on timeout kill the child and its process group; `false` leaves it running, reported in [`Error::orphans`] |
//! | `grace`  | number literal >= 0                         | `0`      | when killing: SIGTERM first, SIGKILL after `grace` seconds; 0 means SIGKILL at once |
//! | `mode`   | `"fork"` / `"exec"` / `"pool"`              | `"fork"` | how the child is made, see below |
//! | `memory` | string literal with a unit: `"512 MiB"`, `"64 MB"` | none | the most memory one attempt may add to what its child starts with; over it, [`Error::LimitExceeded`] |
//! | `cpu`    | number literal > 0, seconds                 | none     | CPU time (user + system) one attempt may use; over it, [`Error::LimitExceeded`] |
//!
//! Errors whose child was reaped carry what it used ([`Error::usage`], a
//! [`Usage`]); a timeout says what the child was doing ([`Error::stuck`],
//! a [`Stuck`]). The README's "Limits beyond time" says how the limits are
//! enforced and which deaths rwt does not attribute to them.
//!
//! Every mistake is a compile error at the offending token: unknown or
//! repeated options, values out of range, `&mut` parameters (changes made
//! in the child could never come back), `impl Trait` parameters, `const fn`,
//! `extern` and variadic functions, and a return type that is not
//! `Serialize + DeserializeOwned`.
//!
//! A function returning `Result<T, E>` gets `Result<Result<T, E>, Error>`:
//! its own `Err` is a value, not an rwt error. It counts as a failed attempt
//! when `ntries > 1`; when every attempt fails that way the caller gets the
//! last `Ok(Err(e))`. (A return type is recognised as a `Result` by its
//! type, aliases such as `io::Result<T>` included; a generic `T` that
//! happens to be a `Result` is not.)
//!
//! # Modes: fork and exec
//!
//! In **exec mode** (`mode = "exec"`, Linux) the child is a fresh run of the
//! current executable, entered before `main` (also under `cargo test`): it
//! shares nothing with the caller, so it is safe in any multi-threaded
//! program, and its cost (about 1 ms) does not grow with the caller's
//! memory. Arguments travel as MessagePack, so they must be
//! `Serialize + DeserializeOwned`; generic functions and `self` are not
//! possible there. The entry is authenticated: a stray `RWT_EXEC_CHILD`
//! variable alone never makes a run of the program execute a function.
//!
//! ```
//! #[rwt::timeout(secs = 2.0, mode = "exec")]
//! fn word_count(text: &str) -> usize {
//!     text.split_whitespace().count()
//! }
//! # fn main() {
//! assert_eq!(word_count("safe in any program").unwrap(), 4);
//! # }
//! ```
//!
//! In **pool mode** (`mode = "pool"`, Linux) exec children are kept as
//! workers and reused: a call costs a socket round trip (tens of
//! microseconds). A call never waits for a busy worker; a worker that times
//! out, panics or crashes is replaced; [`set_pool_size`] sets how many idle
//! workers are kept. A worker's statics live on between the calls it
//! serves.
//!
//! # Fork mode and threads
//!
//! The child is a `fork()` of the caller: it sees the caller's memory as of
//! the call, the arguments are not copied, only the result is serialized.
//! In a multi-threaded program the child has only the calling thread, and a
//! lock another thread held at that moment stays held in the child forever
//! (a `Mutex` of yours, the environment lock behind `std::env::var`, a
//! runtime's internals). rwt's own path never deadlocks (it holds the stdout,
//! stderr and its own locks across `fork`), and a child stuck on someone
//! else's lock ends as a [`Error::Timeout`], but it is a wasted call: keep
//! fork-mode bodies away from locks other threads use, and from the
//! caller's async runtime (build one inside the body if you need it).
//!
//! # Run-time options
//!
//! ```
//! let opts = rwt::Options::new().secs(1.5).ntries(3).kill(true);
//! let n: u64 = rwt::run_with_timeout(&opts, || 6 * 7)?;
//! assert_eq!(n, 42);
//! # Ok::<(), rwt::Error>(())
//! ```
//!
//! # Byte payloads
//!
//! A `Vec<u8>` crosses as an array of numbers (up to twice its size, and
//! slow to encode); [`Bytes`] crosses as one binary, at memory speed:
//!
//! ```
//! #[rwt::timeout(secs = 5.0)]
//! fn checksum(data: rwt::Bytes) -> rwt::Bytes {
//!     let sum = data.iter().fold(0u8, |a, b| a.wrapping_add(*b));
//!     rwt::Bytes::from(vec![sum])
//! }
//! assert_eq!(checksum(vec![1, 2, 3].into()).unwrap().into_vec(), [6]);
//! ```
//!
//! # Async functions
//!
//! An `async fn` under the attribute stays `async` and returns
//! `Result<T, Error>`, in every mode. Its body runs to completion in the
//! child, on a current-thread tokio runtime with the `tokio` feature (so
//! `tokio::time` and tokio I/O work there), on a minimal executor without
//! it. The caller's future waits without blocking its thread (through
//! tokio's reactor inside a tokio runtime with the feature, through rwt's
//! poller thread elsewhere), and **dropping it kills the child**:
//!
//! ```
//! #[rwt::timeout(secs = 60.0)]
//! async fn slow() -> u8 {
//!     std::thread::sleep(std::time::Duration::from_secs(60));
//!     1
//! }
//!
//! # fn main() {
//! let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
//! runtime.block_on(async {
//!     let cut = std::time::Duration::from_millis(50);
//!     // Gives up after 50 ms: the child is killed and reaped, not left running.
//!     assert!(tokio::time::timeout(cut, slow()).await.is_err());
//! });
//! # }
//! ```
//!
//! The children of async calls are started by an rwt thread that lives as
//! long as the process, so a call does not die with the thread that first
//! polled it. In fork mode the arguments must be `Send`; the body's future
//! need not be.
//!
//! # Shutting down
//!
//! [`kill_all`] cancels every call in flight, in every mode: each returns
//! [`Error::Cancelled`] with its child killed and reaped.
//!
//! # Commands with a deadline
//!
//! [`CommandExt`] adds `status_timeout`, `output_timeout` and their
//! `_with(&Options)` forms to `std::process::Command`: the command runs in
//! its own process group, killed as a whole on timeout; its exit status
//! comes back as it is.
//!
//! # Guarantees
//!
//! See the README for the full list: control back by the deadline (plus
//! `grace`) plus a few milliseconds; with `kill = true` nothing left behind
//! when the call returns; orphans of `kill = false` reaped when they end;
//! no file descriptor, thread or zombie leaks.

#![warn(missing_docs)]

/// A `#[test]` whose body runs in a child process with a deadline: a test
/// that hangs fails in place, with what it was doing, and the run goes on.
///
/// ```no_run
/// #[rwt::test(secs = 5)]
/// fn parses_hostile_input() {
///     assert_eq!("1+1".len(), 3);
/// }
/// ```
///
/// It takes the options of [`timeout`] (`secs`, `ntries`, `kill`, `grace`,
/// `memory`, `cpu`, `mode`), and runs in exec mode unless `mode = "fork"`
/// is asked for (pool mode is refused: a worker's output and leftovers
/// would not be one test's). Each attempt is one child:
///
/// - A body that returns passes; a panic fails the test with the child's
///   message and location; a timeout, crash or limit fails it with rwt's
///   message. `ntries = 3` runs a failing test up to three times and the
///   failure says how many attempts were made.
/// - `#[should_panic]` and `#[should_panic(expected = "...")]` match the
///   child's panic; a timeout or a crash is never the panic they expect.
///   (rwt judges them itself, so libtest lists the test without its
///   "- should panic" suffix.)
/// - `-> Result<(), E>` works with any `E: Debug`; the child formats it.
/// - `#[ignore]`, doc comments and other attributes stay on the test;
///   `async fn` tests run on the child's executor.
/// - What the child prints is the test's output: libtest shows it for a
///   failing test only, or as it comes under `--nocapture`.
///
/// See the README's "Tests with a deadline".
pub use rwt_macros::test;
/// The attribute: each call of the function runs its body in a child
/// process, under the options described in the [crate docs](crate).
///
/// ```
/// #[rwt::timeout(secs = 0.2, ntries = 2)]
/// fn spin(forever: bool) -> u32 {
///     while forever {}
///     7
/// }
///
/// assert_eq!(spin(false).unwrap(), 7);
/// let err = spin(true).unwrap_err();
/// assert!(err.is_timeout());
/// println!("{err}"); // function `spin` timed out after 0.2 s on each of 2 attempts (killed); it was running on a CPU
/// ```
pub use rwt_macros::timeout;
pub use rwt_runtime::{
    kill_all, run_with_timeout, run_with_usage, Bytes, CommandExt, Error, Limit, Options, State,
    Stuck, Usage,
};
#[cfg(target_os = "linux")]
pub use rwt_runtime::{set_pool_idle_timeout, set_pool_size, POOL_IDLE_TIMEOUT};

/// Used by the code `#[timeout]` generates. Not public API.
#[doc(hidden)]
pub mod __private {
    pub use rwt_runtime::__private::*;
}
