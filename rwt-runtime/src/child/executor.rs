//! The executor that runs an async function's body in its child process.
//!
//! With the `tokio` feature: a current-thread tokio runtime with I/O and
//! timers, so `tokio::time`, tokio's I/O and `tokio::spawn` work in the
//! body. Without it: a minimal executor that parks the thread until the
//! body's future is woken, enough for futures that need no reactor
//! (`async` code calling plain functions, channels, `std::future`s).

use std::future::Future;

/// Runs `future` to completion on the current thread: the body of an async
/// `#[timeout]` function, in its child.
///
/// # Panics
///
/// With the `tokio` feature, if the runtime cannot be built (out of file
/// descriptors, for one): the call then returns `Error::Panicked`.
#[cfg(feature = "tokio")]
pub fn block_on<F: Future>(future: F) -> F::Output {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("rwt could not start a tokio runtime in the child: {e}"));
    let value = runtime.block_on(future);
    // Tasks the body left behind are not waited for: the call is over.
    runtime.shutdown_background();
    value
}

/// Runs `future` to completion on the current thread: the body of an async
/// `#[timeout]` function, in its child.
#[cfg(not(feature = "tokio"))]
pub fn block_on<F: Future>(future: F) -> F::Output {
    park_on(future)
}

/// Runs `future` to completion on the current thread, parking it until the
/// future is woken: needs no reactor, and is no tokio runtime (an async rwt
/// call polled here waits through rwt's poller).
#[cfg_attr(all(feature = "tokio", not(test)), allow(dead_code))]
pub(crate) fn park_on<F: Future>(future: F) -> F::Output {
    use std::sync::Arc;
    use std::task::{Context, Poll, Wake, Waker};

    struct Unpark(std::thread::Thread);

    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }

        fn wake_by_ref(self: &Arc<Self>) {
            self.0.unpark();
        }
    }

    let mut future = std::pin::pin!(future);
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(value) = future.as_mut().poll(&mut cx) {
            return value;
        }
        // A wake-up that came before this park makes it return at once.
        std::thread::park();
    }
}
