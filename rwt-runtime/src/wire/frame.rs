//! The result frame: what the child writes on its channel, and the
//! parent's incremental reader for it.
//!
//! A frame is a 9-byte header, one byte of kind and a little-endian `u64`
//! length, then that many bytes of body. The parent never waits for end of
//! file: a frame is complete when its length says so (a sibling child forked
//! by another thread, or a grandchild, may hold the pipe's write end open
//! long after the child is gone).

use nix::errno::Errno;

/// Length of the frame header: kind (1 byte) + body length (8 bytes).
pub(crate) const HEADER_LEN: usize = 9;

/// What a frame carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// The function's value, MessagePack.
    Value,
    /// The function's value, MessagePack, and it counts as a failed attempt
    /// (an `Err` of a function that returns a `Result`).
    Failed,
    /// The function panicked; body is the UTF-8 message with its location.
    Panic,
    /// The child could not encode the value; body is the UTF-8 reason.
    EncodeError,
    /// A pool worker retires without reading the request waiting for it
    /// (its last call left something behind): another worker must serve
    /// it. Empty body.
    Leaving,
    /// The attempt went over its memory limit: an allocation was refused
    /// and the child is leaving (sent by its `SIGABRT` handler). Empty body.
    MemoryLimit,
    /// The attempt went over its CPU limit and the child is leaving (sent
    /// by its `SIGPROF` handler). Empty body.
    CpuLimit,
}

impl Kind {
    pub(crate) const fn byte(self) -> u8 {
        match self {
            Kind::Value => b'V',
            Kind::Failed => b'F',
            Kind::Panic => b'P',
            Kind::EncodeError => b'E',
            Kind::Leaving => b'L',
            Kind::MemoryLimit => b'M',
            Kind::CpuLimit => b'C',
        }
    }

    pub(crate) const fn from_byte(byte: u8) -> Option<Kind> {
        match byte {
            b'V' => Some(Kind::Value),
            b'F' => Some(Kind::Failed),
            b'P' => Some(Kind::Panic),
            b'E' => Some(Kind::EncodeError),
            b'L' => Some(Kind::Leaving),
            b'M' => Some(Kind::MemoryLimit),
            b'C' => Some(Kind::CpuLimit),
            _ => None,
        }
    }
}

/// The header for a body of `len` bytes.
pub(crate) fn header(kind: Kind, len: usize) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[0] = kind.byte();
    h[1..].copy_from_slice(&(len as u64).to_le_bytes());
    h
}

/// Writes one frame on `fd`.
pub(crate) fn write_frame(fd: &impl std::os::fd::AsFd, kind: Kind, body: &[u8]) -> nix::Result<()> {
    let header = header(kind, body.len());
    // Header and body in one system call, with no allocation (a fork
    // child's every allocation costs copy-on-write faults); the rest, if
    // the pipe took only part, by plain writes.
    let sent = loop {
        let parts = [std::io::IoSlice::new(&header), std::io::IoSlice::new(body)];
        match nix::sys::uio::writev(fd, &parts) {
            Err(Errno::EINTR) => {}
            other => break other?,
        }
    };
    if sent < header.len() {
        write_all(fd, &header[sent..])?;
        write_all(fd, body)
    } else {
        write_all(fd, &body[sent - header.len()..])
    }
}

/// Writes all of `data` on `fd`, however many writes it takes.
pub(crate) fn write_all(fd: &impl std::os::fd::AsFd, mut data: &[u8]) -> nix::Result<()> {
    while !data.is_empty() {
        match nix::unistd::write(fd, data) {
            Ok(n) => data = &data[n..],
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
