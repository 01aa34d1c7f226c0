//! How a call waits: the deadline, the blocking `ppoll` waiter of sync
//! calls, and the async waiter (tokio's reactor, or rwt's poller thread).

pub(crate) mod async_wait;
pub(crate) mod deadline;
pub(crate) mod poller;
#[cfg(all(feature = "tokio", target_os = "linux"))]
mod tokio;
