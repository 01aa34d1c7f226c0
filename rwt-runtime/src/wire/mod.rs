//! Every byte that crosses the process boundary: the MessagePack codec,
//! the result frame, a large result handed over whole, and the buffers
//! they fill.

pub(crate) mod bigbuf;
#[cfg(unix)]
pub(crate) mod codec;
#[cfg(unix)]
pub(crate) mod frame;
#[cfg(unix)]
pub(crate) mod handover;
#[cfg(unix)]
pub(crate) mod protocol;
#[cfg(unix)]
pub(crate) mod reader;
