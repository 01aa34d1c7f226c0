//! Limits beyond time: the memory and CPU one attempt may use, as the
//! caller states them and errors name them. The child arms them
//! (`child/limits/`).

use std::fmt;
use std::time::Duration;

/// A limit beyond time that an attempt went over: see
/// [`Error::LimitExceeded`].
///
/// [`Error::LimitExceeded`]: crate::Error::LimitExceeded
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum Limit {
    /// The attempt tried to add more than `bytes` of memory to what its
    /// child started with.
    Memory {
        /// The limit, in bytes.
        bytes: u64,
    },
    /// The attempt used more than `secs` seconds of CPU time (user and
    /// system).
    Cpu {
        /// The limit, in seconds.
        secs: f64,
    },
}

impl fmt::Display for Limit {
    /// "memory limit of 512 MiB", "CPU limit of 2 s".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Limit::Memory { bytes } => write!(f, "memory limit of {}", Bytes(bytes)),
            Limit::Cpu { secs } => write!(f, "CPU limit of {secs} s"),
        }
    }
}

/// A byte count in the largest binary unit that states it exactly.
struct Bytes(u64);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (shift, unit) in [(40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")] {
            if self.0 >= 1 << shift && self.0 % (1 << shift) == 0 {
                return write!(f, "{} {unit}", self.0 >> shift);
            }
        }
        write!(f, "{} bytes", self.0)
    }
}

/// The limits of one attempt, as the child arms them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Limits {
    /// Bytes the attempt may add to the child's data segment.
    pub memory: Option<u64>,
    /// CPU time the attempt may use.
    pub cpu: Option<Duration>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_read_in_binary_units() {
        assert_eq!(
            Limit::Memory { bytes: 512 << 20 }.to_string(),
            "memory limit of 512 MiB"
        );
        assert_eq!(
            Limit::Memory { bytes: 1000 }.to_string(),
            "memory limit of 1000 bytes"
        );
        assert_eq!(Limit::Cpu { secs: 2.0 }.to_string(), "CPU limit of 2 s");
    }
}
