//! One test body in every mode: macros that define each function three
//! times (fork, exec, pool) and run the test against each, and two small
//! executors for async calls outside tokio.

use super::helper::is_helper;

/// times, in modules `fork`, `exec` and `pool`, identical but for the mode,
/// so one test body runs in every mode. Every function names at least one
/// option and a return type.
#[macro_export]
macro_rules! in_every_mode {
    ($($items:tt)*) => {
        $crate::mode_module!(fork, "fork", $($items)*);
        $crate::mode_module!(exec, "exec", $($items)*);
        $crate::mode_module!(pool, "pool", $($items)*);
    };
}

/// One module of [`in_every_mode!`].
#[doc(hidden)]
#[macro_export]
macro_rules! mode_module {
    ($module:ident, $mode:literal, $(
        $(#[doc = $doc:literal])*
        #[timeout($($opt:tt)+)]
        $($head:ident)+ ($($args:tt)*) -> $ret:ty $body:block
    )*) => {
        #[allow(dead_code)]
        pub mod $module {
            #[allow(unused_imports)]
            use super::*;
            $(
                $(#[doc = $doc])*
                #[rwt::timeout($($opt)+, mode = $mode)]
                pub $($head)+ ($($args)*) -> $ret $body
            )*
        }
    };
}

/// The mode a helper process runs in, if this process is the helper for
/// `role` (started as `<role>-fork`, `<role>-exec` or `<role>-pool`).
pub fn helper_mode(role: &str) -> Option<&'static str> {
    ["fork", "exec", "pool"]
        .into_iter()
        .find(|mode| is_helper(&format!("{role}-{mode}")))
}

/// In a helper for `$role`, the function `$name` of the helper's mode.
#[macro_export]
macro_rules! helper_fn {
    ($role:literal, $name:ident) => {
        $crate::common::helper_mode($role).map(|mode| match mode {
            "fork" => fork::$name,
            "exec" => exec::$name,
            _ => pool::$name,
        })
    };
}

/// A module `$name` with one test per mode, each calling
/// `$run("<role>-<mode>")` (for tests that start a helper process).
#[macro_export]
macro_rules! test_each_mode_role {
    ($name:ident, $run:ident, $role:literal) => {
        mod $name {
            #[test]
            fn fork() {
                super::$run(concat!($role, "-fork"));
            }
            #[test]
            fn exec() {
                super::$run(concat!($role, "-exec"));
            }
            #[test]
            fn pool() {
                super::$run(concat!($role, "-pool"));
            }
        }
    };
}

/// Runs `$body` twice, with `$m` naming the `fork` module, then `exec` (for
/// single-test binaries that cannot use `test_in_every_mode!`).
#[macro_export]
macro_rules! in_fork_and_exec {
    ($m:ident, $body:block) => {{
        {
            use fork as $m;
            $body
        }
        {
            use exec as $m;
            $body
        }
    }};
}

/// Turns each `fn name(m) { body }` into a module `name` with three tests,
/// `fork`, `exec` and `pool`, where `m` names the functions of that mode.
#[macro_export]
macro_rules! test_in_every_mode {
    ($(
        $(#[doc = $doc:literal])*
        fn $name:ident($m:ident) $body:block
    )*) => {
        $(
            $(#[doc = $doc])*
            mod $name {
                #[allow(unused_imports)]
                use super::*;
                #[test]
                fn fork() {
                    use super::fork as $m;
                    $body
                }
                #[test]
                fn exec() {
                    use super::exec as $m;
                    $body
                }
                #[test]
                fn pool() {
                    use super::pool as $m;
                    $body
                }
            }
        )*
    };
}

/// Runs a future to completion on this thread, parking between polls: an
/// executor that is not tokio, for async calls outside any runtime.
pub fn park_on<F: std::future::Future>(future: F) -> F::Output {
    use std::sync::Arc;
    use std::task::{Context, Poll, Wake, Waker};
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let mut future = std::pin::pin!(future);
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(v) = future.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

/// Polls a future once with a waker that does nothing; `true` if it is done.
pub fn poll_once<F: std::future::Future>(future: std::pin::Pin<&mut F>) -> bool {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    future.poll(&mut cx).is_ready()
}

/// Polls `call` to its end on a current-thread tokio runtime of its own.
pub fn on_tokio<F: std::future::Future>(call: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(call)
}
