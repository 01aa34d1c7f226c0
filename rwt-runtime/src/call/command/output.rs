//! The captured output of a command: read as it arrives, in passes that
//! leave the deadline its turn, up to the output cap.

use std::os::fd::BorrowedFd;
use std::process::Output;

use nix::errno::Errno;

/// Where captured output goes (nowhere for `status_timeout*`), and how
/// much of the cap is used.
pub(super) struct Sink<'a> {
    pub(super) output: Option<&'a mut Output>,
    pub(super) taken: u64,
    pub(super) limit: u64,
}

impl Sink<'_> {
    /// Keeps `data`, up to the limit; `false` once the command wrote more
    /// (or more than the caller can hold).
    fn take(&mut self, is_stdout: bool, data: &[u8]) -> bool {
        let Some(out) = self.output.as_deref_mut() else {
            return true;
        };
        let room = usize::try_from(self.limit - self.taken).unwrap_or(usize::MAX);
        let kept = &data[..data.len().min(room)];
        self.taken += kept.len() as u64;
        let stream = if is_stdout {
            &mut out.stdout
        } else {
            &mut out.stderr
        };
        // Fallible: a caller short of memory (RLIMIT_AS, strict
        // overcommit) ends the call as a flood instead of aborting.
        if stream.try_reserve(kept.len()).is_err() {
            return false;
        }
        stream.extend_from_slice(kept);
        kept.len() == data.len()
    }
}

/// How much one pass reads from one pipe before the deadline is looked at
/// again: a writer faster than the reader never leaves the pipe empty, and
/// must not keep the loop from its clock.
const PASS_BYTES: usize = 1 << 20;

/// How a pass over the pipes ended.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Drained {
    /// Every pipe is empty for now, or closed.
    Empty,
    /// A pipe had more than one pass may read.
    More,
    /// The captured output passed the limit.
    Flood,
}

/// Reads what the pipes hold now, at most [`PASS_BYTES`] from each; drops
/// a pipe at end of file.
pub(super) fn drain(
    pipes: &mut Vec<(BorrowedFd<'_>, bool)>,
    buf: &mut [u8],
    sink: &mut Sink<'_>,
) -> std::io::Result<Drained> {
    let mut drained = Drained::Empty;
    let mut i = 0;
    while i < pipes.len() {
        let (fd, is_stdout) = pipes[i];
        let mut open = true;
        let mut read = 0;
        while read < PASS_BYTES {
            match nix::unistd::read(fd, buf) {
                Ok(0) => {
                    open = false;
                    break;
                }
                Ok(n) => {
                    read += n;
                    if !sink.take(is_stdout, &buf[..n]) {
                        return Ok(Drained::Flood);
                    }
                }
                Err(Errno::EINTR) => {}
                Err(Errno::EAGAIN) => break,
                Err(e) => return Err(e.into()),
            }
        }
        if read >= PASS_BYTES {
            drained = Drained::More;
        }
        if open {
            i += 1;
        } else {
            pipes.remove(i);
        }
    }
    Ok(drained)
}
