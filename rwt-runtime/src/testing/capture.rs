//! An attempt's output pipe: made and registered (so other calls' fork
//! children close it), drained by a thread of its own while the attempt
//! runs, and read to its end, within bounds, once it is over.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::os::fd::{AsFd, AsRawFd, RawFd};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag};
use nix::poll::{PollFd, PollFlags, PollTimeout};

use crate::os::fds::{self, RegisteredFd};

/// Most of a test's output kept from its start, and from its end; what
/// lies between is counted and left out (a test that floods its output
/// must not flood the test binary's memory through libtest's buffer).
const KEEP_HEAD: usize = 1 << 20;
const KEEP_TAIL: usize = 1 << 20;

/// One attempt's output pipe, and the thread that drains it.
pub(super) struct Capture {
    /// The end the children write to; the caller keeps it for the spawn.
    write: RegisteredFd,
    /// Written to when the attempt is over.
    stop: RegisteredFd,
    reader: std::thread::JoinHandle<Collected>,
}

impl Capture {
    pub(super) fn start() -> std::io::Result<Capture> {
        let pipe = || {
            fds::pair_above_stdio(nix::unistd::pipe2(OFlag::O_CLOEXEC)?)
                .map_err(std::io::Error::from)
        };
        // Registered under the list's lock, as they are made: a child that
        // another thread forks meanwhile closes them.
        let (read, write, stop_read, stop) = {
            let mut fds = fds::fds();
            let (read, write) = pipe()?;
            let (stop_read, stop) = pipe()?;
            (
                RegisteredFd::new(&mut fds, read),
                RegisteredFd::new(&mut fds, write),
                RegisteredFd::new(&mut fds, stop_read),
                RegisteredFd::new(&mut fds, stop),
            )
        };
        let reader = std::thread::Builder::new()
            .name("rwt-test-output".into())
            .spawn(move || collect(&read, &stop_read))?;
        Ok(Capture {
            write,
            stop,
            reader,
        })
    }

    pub(super) fn write_fd(&self) -> RawFd {
        self.write.fd().as_raw_fd()
    }

    /// Everything the attempt's children wrote (as far as it was kept).
    /// The attempt has ended: its child is reaped, so what it wrote is in
    /// the pipe. A process it left behind may still hold the pipe open, so
    /// the reader takes what is there and stops, rather than wait for EOF.
    pub(super) fn finish(self) -> String {
        drop(self.write);
        let _ = nix::unistd::write(self.stop.fd(), b"x");
        let collected = self.reader.join().unwrap_or_default();
        collected.text()
    }
}

/// Output kept: the head, the tail, and how much between was left out.
#[derive(Default)]
struct Collected {
    head: Vec<u8>,
    tail: VecDeque<u8>,
    skipped: u64,
}

impl Collected {
    fn push(&mut self, mut data: &[u8]) {
        let room = KEEP_HEAD - self.head.len();
        let now = room.min(data.len());
        self.head.extend_from_slice(&data[..now]);
        data = &data[now..];
        self.tail.extend(data);
        if self.tail.len() > KEEP_TAIL {
            let excess = self.tail.len() - KEEP_TAIL;
            self.tail.drain(..excess);
            self.skipped += excess as u64;
        }
    }

    fn text(self) -> String {
        let mut text = String::from_utf8_lossy(&self.head).into_owned();
        if self.skipped > 0 {
            let _ = write!(
                text,
                "\n[rwt: {} bytes of the test's output left out]\n",
                self.skipped
            );
        }
        let tail: Vec<u8> = self.tail.into();
        text.push_str(&String::from_utf8_lossy(&tail));
        text
    }
}

/// Reads the pipe until every writer is gone, or until told to stop; then
/// whatever is still in it.
fn collect(read: &RegisteredFd, stop: &RegisteredFd) -> Collected {
    let mut kept = Collected::default();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let mut fds = [
            PollFd::new(read.fd().as_fd(), PollFlags::POLLIN),
            PollFd::new(stop.fd().as_fd(), PollFlags::POLLIN),
        ];
        match nix::poll::poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(_) => return kept,
        }
        let stopping = fds[1].any().unwrap_or(false);
        if stopping {
            let _ = nix::fcntl::fcntl(read.fd(), FcntlArg::F_SETFL(OFlag::O_NONBLOCK));
        }
        // After the stop, what the pipe holds, and no more: a process the
        // attempt left behind (`kill = false`, or one that left the group)
        // could keep it full for ever.
        let mut drain = DRAIN_AFTER_STOP;
        loop {
            match nix::unistd::read(read.fd(), &mut buf) {
                Ok(0) => return kept,
                Ok(n) => {
                    kept.push(&buf[..n]);
                    drain = drain.saturating_sub(n);
                }
                Err(Errno::EINTR) => continue,
                // Drained (after the stop), or nothing more to read now.
                Err(_) if stopping => return kept,
                Err(_) => break,
            }
            if !stopping {
                break;
            }
            if drain == 0 {
                return kept;
            }
        }
    }
}

/// The most read after the stop: more than a pipe holds (1 MiB at most
/// unless its size was raised), so everything written before the attempt
/// ended is read.
const DRAIN_AFTER_STOP: usize = 4 << 20;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_keeps_its_head_and_tail_and_counts_the_rest() {
        let mut kept = Collected::default();
        kept.push(b"first line\n");
        let block = vec![b'.'; 64 << 10];
        for _ in 0..64 {
            kept.push(&block);
        }
        kept.push(b"last line\n");
        assert_eq!(kept.head.len(), KEEP_HEAD);
        assert_eq!(kept.tail.len(), KEEP_TAIL);
        let skipped = kept.skipped;
        assert_eq!(
            skipped as usize,
            11 + 64 * (64 << 10) + 10 - KEEP_HEAD - KEEP_TAIL
        );
        let text = kept.text();
        assert!(text.starts_with("first line\n"));
        assert!(text.ends_with("last line\n"));
        assert!(text.contains(&format!(
            "[rwt: {skipped} bytes of the test's output left out]"
        )));
    }
}
