//! The bytes of the exec and pool protocol, both sides: the environment
//! variable and descriptor of a re-executed child, the handshake the
//! caller sends first, the request header of each call, and the exit codes
//! a child leaves with when it cannot answer on the channel. The result
//! frame is in [`crate::wire::frame`].

use std::io;
use std::os::fd::RawFd;

use crate::limits::Limits;

/// The variable that tells a run of the binary it is an rwt child, and
/// carries the call's nonce. Never enough on its own (see the child's
/// entry, `child/entry.rs`).
pub(crate) const ENV: &str = "RWT_EXEC_CHILD";
/// The child's end of the channel.
pub(crate) const CHANNEL_FD: RawFd = 3;
/// Exit code of a run that refused to act as an rwt child.
pub(crate) const EXIT_REFUSED: i32 = 120;
/// Largest encoded arguments accepted by a child.
pub(crate) const ARGS_LIMIT: u64 = 1 << 30;

/// The first bytes on the channel: who is calling, and how the child is
/// to serve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Handshake {
    pub nonce: [u8; 16],
    /// `(st_dev, st_ino)` of the caller's executable.
    pub exe: (u64, u64),
    /// Die with the caller (PR_SET_PDEATHSIG).
    pub kill: bool,
    /// A pool worker: serves requests until its channel closes. Otherwise
    /// the child serves one.
    pub pool: bool,
}

impl Handshake {
    pub(crate) const MAGIC: [u8; 5] = *b"RWTx2";
    pub(crate) const LEN: usize = 5 + 16 + 8 + 8 + 1;

    pub(crate) fn encode(&self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        b[..5].copy_from_slice(&Self::MAGIC);
        b[5..21].copy_from_slice(&self.nonce);
        b[21..29].copy_from_slice(&self.exe.0.to_le_bytes());
        b[29..37].copy_from_slice(&self.exe.1.to_le_bytes());
        b[37] = if self.pool { 2 } else { u8::from(self.kill) };
        b
    }

    pub(crate) fn decode(b: &[u8; Self::LEN]) -> Option<Handshake> {
        if b[..5] != Self::MAGIC || b[37] > 2 {
            return None;
        }
        let u64_at = |i: usize| {
            let mut v = [0u8; 8];
            v.copy_from_slice(&b[i..i + 8]);
            u64::from_le_bytes(v)
        };
        let mut nonce = [0u8; 16];
        nonce.copy_from_slice(&b[5..21]);
        Some(Handshake {
            nonce,
            exe: (u64_at(21), u64_at(29)),
            kill: b[37] >= 1,
            pool: b[37] == 2,
        })
    }
}

/// Length of a request header: function id, the arguments' length, then
/// the attempt's memory limit in bytes and its CPU limit in nanoseconds
/// (0: none), all little-endian `u64`s.
pub(crate) const REQUEST_LEN: usize = 32;

/// The header of a request for function `id` with `args_len` bytes of
/// encoded arguments and `limits`; the arguments follow.
pub(crate) fn request_header(id: u64, args_len: usize, limits: &Limits) -> Vec<u8> {
    let cpu = limits.cpu.map_or(0, |c| {
        u64::try_from(c.as_nanos()).unwrap_or(u64::MAX).max(1)
    });
    let mut head = Vec::with_capacity(REQUEST_LEN);
    head.extend_from_slice(&id.to_le_bytes());
    head.extend_from_slice(&(args_len as u64).to_le_bytes());
    head.extend_from_slice(&limits.memory.unwrap_or(0).to_le_bytes());
    head.extend_from_slice(&cpu.to_le_bytes());
    head
}

/// A request header as the child reads it: id, arguments' length, limits.
pub(crate) fn decode_request(head: &[u8; REQUEST_LEN]) -> (u64, u64, Limits) {
    let word = |i: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&head[i * 8..i * 8 + 8]);
        u64::from_le_bytes(w)
    };
    let limits = Limits {
        memory: Some(word(2)).filter(|&m| m > 0),
        cpu: Some(word(3))
            .filter(|&c| c > 0)
            .map(std::time::Duration::from_nanos),
    };
    (word(0), word(1), limits)
}

/// What a caller writes first on the channel: the handshake (`kill`, not
/// a pool worker), then the header of one request for function `id` with
/// `args_len` bytes of arguments and no limits. For tests that play the
/// caller by hand against a real child (tests/exec.rs), so that the bytes
/// are written here only.
#[doc(hidden)]
pub fn caller_bytes(nonce: [u8; 16], exe: (u64, u64), id: u64, args_len: u64) -> Vec<u8> {
    let handshake = Handshake {
        nonce,
        exe,
        kill: true,
        pool: false,
    };
    let len = usize::try_from(args_len).unwrap_or(usize::MAX);
    let mut bytes = handshake.encode().to_vec();
    bytes.extend(request_header(id, len, &Limits::default()));
    bytes
}

/// The nonce as the environment carries it: 32 lowercase hex digits.
pub(crate) fn nonce_hex(nonce: &[u8; 16]) -> String {
    use std::fmt::Write;
    nonce.iter().fold(String::with_capacity(32), |mut hex, b| {
        let _ = write!(hex, "{b:02x}");
        hex
    })
}

/// `(st_dev, st_ino)` of the running executable: the build id of the
/// handshake. Both sides read `/proc/self/exe`, which names the file that is
/// running, even if another was put at its path since.
pub(crate) fn exe_identity() -> io::Result<(u64, u64)> {
    let st = nix::sys::stat::stat("/proc/self/exe")?;
    #[allow(clippy::useless_conversion)] // the field types differ by platform
    Ok((u64::from(st.st_dev), u64::from(st.st_ino)))
}

/// Exit code of a child whose caller died before it could arm
/// PR_SET_PDEATHSIG: nobody is left to read it.
pub(crate) const EXIT_CALLER_GONE: i32 = 125;
/// Exit code of a child in which rwt's own code failed.
pub(crate) const EXIT_INTERNAL: i32 = 126;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshake_round_trips_and_rejects_junk() {
        let h = Handshake {
            nonce: [7; 16],
            exe: (1, 2),
            kill: true,
            pool: false,
        };
        assert_eq!(Handshake::decode(&h.encode()), Some(h));
        let mut bad = h.encode();
        bad[0] = b'X';
        assert_eq!(Handshake::decode(&bad), None);
        let worker = Handshake { pool: true, ..h };
        assert_eq!(Handshake::decode(&worker.encode()), Some(worker));
        let mut bad = h.encode();
        bad[37] = 3;
        assert_eq!(Handshake::decode(&bad), None);
    }

    #[test]
    fn nonce_is_hex() {
        assert_eq!(nonce_hex(&[0xab; 16]), "ab".repeat(16));
    }

    /// The request header: id, length, memory bytes, CPU nanoseconds, each
    /// a little-endian `u64`, 0 for no limit; a CPU limit never encodes as
    /// 0 (which would mean none).
    #[test]
    fn a_request_header_carries_the_limits() {
        let limits = Limits {
            memory: Some(64 << 20),
            cpu: Some(std::time::Duration::from_millis(250)),
        };
        let head = request_header(7, 3, &limits);
        assert_eq!(head.len(), REQUEST_LEN);
        assert_eq!(&head[16..24], &(64u64 << 20).to_le_bytes());
        assert_eq!(&head[24..], &250_000_000u64.to_le_bytes());
        let fixed: [u8; REQUEST_LEN] = head.try_into().unwrap();
        assert_eq!(decode_request(&fixed), (7, 3, limits));
        let none: [u8; REQUEST_LEN] = request_header(7, 3, &Limits::default()).try_into().unwrap();
        assert_eq!(decode_request(&none), (7, 3, Limits::default()));
        assert_eq!(&none[16..], &[0u8; 16]);
        let tiny = Limits {
            memory: None,
            cpu: Some(std::time::Duration::from_nanos(0)),
        };
        let tiny: [u8; REQUEST_LEN] = request_header(1, 0, &tiny).try_into().unwrap();
        assert_eq!(
            decode_request(&tiny).2.cpu,
            Some(std::time::Duration::from_nanos(1))
        );
    }
}
