//! What the generated code checks at compile time, with the messages
//! users see when a check fails, and how it tells a failed attempt (an
//! `Err`) from a value.

use serde::de::DeserializeOwned;
use serde::Serialize;

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
