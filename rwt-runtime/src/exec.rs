//! Exec mode, the caller's side: the child is a fresh run of the current
//! executable (`/proc/self/exe`, which names the running binary even if the
//! file was replaced on disk), started with `posix_spawn` (no fork of the
//! caller's memory, nothing run between fork and exec). On a socketpair at
//! fd 3 it gets a handshake, then requests: a function id and its encoded
//! arguments. It answers each with the same result frame as fork mode. An
//! exec child serves one request; a pool worker serves until its channel
//! closes. The child's side is in [`entry`].
//!
//! [`entry`]: crate::entry

use std::ffi::{CString, OsStr};
use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::sync::OnceLock;

use nix::fcntl::{FcntlArg, OFlag};
use nix::spawn::{PosixSpawnAttr, PosixSpawnFileActions, PosixSpawnFlags};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::socket::{AddressFamily, SockFlag, SockType};
use nix::unistd::Pid;
use serde::de::DeserializeOwned;

use crate::deadline::{Deadline, Waiter};
use crate::limits::Limits;
use crate::options::Checked;
use crate::process::Child;
use crate::registry::{self, RegisteredFd};
use crate::watch::{self, Ended, Guarded};

/// The variable that tells a run of the binary it is an rwt child, and
/// carries the call's nonce. Never enough on its own (see [`entry`]).
///
/// [`entry`]: crate::entry
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

/// The nonce as the environment carries it: 32 lowercase hex digits.
pub(crate) fn nonce_hex(nonce: &[u8; 16]) -> String {
    nonce.iter().map(|b| format!("{b:02x}")).collect()
}

/// `(st_dev, st_ino)` of the running executable: the build id of the
/// handshake. Both sides read `/proc/self/exe`, which names the file that is
/// running, even if another was put at its path since.
pub(crate) fn exe_identity() -> io::Result<(u64, u64)> {
    let st = nix::sys::stat::stat("/proc/self/exe")?;
    #[allow(clippy::useless_conversion)] // the field types differ by platform
    Ok((u64::from(st.st_dev), u64::from(st.st_ino)))
}

/// Runs one attempt of function `id` with its encoded `args` in a fresh
/// process, started by this thread (sync calls) or by rwt's spawner thread
/// (async calls), so that it does not die with whichever thread polled the
/// future.
pub(crate) async fn attempt<R: DeserializeOwned, W: Waiter>(
    waiter: &mut W,
    function: &str,
    opts: &Checked,
    cancel: Option<&crate::cancel::Epoch>,
    id: u64,
    args: &[u8],
) -> Ended<R> {
    // The deadline runs from the call: the cost of starting counts.
    let deadline = Deadline::after(opts.secs);
    let (kill, output) = (opts.kill, opts.output);
    let started = if W::ONE_THREAD {
        spawn(kill, false, output)
    } else {
        crate::spawner::run(move || spawn(kill, false, output))
    };
    match started {
        Ok((child, channel)) => {
            let request = (request_header(id, args.len(), &opts.limits), args);
            let child = Guarded::new(child);
            watch::watch(
                waiter,
                function,
                opts,
                child,
                channel,
                request,
                watch::Stop { deadline, cancel },
            )
            .await
        }
        Err(e) => watch::spawn_failed(function, e),
    }
}

/// What every spawn of this process shares: the executable's identity and
/// the `argv[0]` its children get.
struct Process {
    exe: (u64, u64),
    argv0: CString,
}

fn process() -> io::Result<&'static Process> {
    static PROCESS: OnceLock<Process> = OnceLock::new();
    if let Some(p) = PROCESS.get() {
        return Ok(p);
    }
    let exe = exe_identity()?;
    let argv0 = std::env::args_os()
        .next()
        .and_then(|a| CString::new(a.as_bytes()).ok())
        .unwrap_or_else(|| c"rwt-child".to_owned());
    Ok(PROCESS.get_or_init(|| Process { exe, argv0 }))
}

/// Starts an exec child (or a pool worker) and sends it its handshake.
/// Returns it and the caller's end of the channel, non-blocking. With
/// `output`, the child's stdout and stderr are that descriptor.
pub(crate) fn spawn(
    kill: bool,
    pool: bool,
    output: Option<RawFd>,
) -> io::Result<(Child, RegisteredFd)> {
    crate::entry::keep_linked();
    let process = process()?;
    let mut nonce = [0u8; 16];
    fill_random(&mut nonce)?;
    let env = child_env(&nonce);

    let mut attr = PosixSpawnAttr::init()?;
    // USEVFORK: glibc before 2.24 returns from posix_spawn before the
    // child has exec'd unless asked for vfork; later glibc always waits
    // for the exec (and ignores the flag). The check of the child's fd 3
    // below relies on that wait.
    attr.set_flags(
        PosixSpawnFlags::POSIX_SPAWN_SETPGROUP
            | PosixSpawnFlags::POSIX_SPAWN_SETSIGDEF
            | PosixSpawnFlags::POSIX_SPAWN_SETSIGMASK
            | PosixSpawnFlags::from_bits_retain(nix::libc::POSIX_SPAWN_USEVFORK.into()),
    )?;
    // Its own process group, SIGTERM back to the default and nothing
    // blocked, whatever the calling thread had.
    attr.set_pgroup(Pid::from_raw(0))?;
    let mut term = SigSet::empty();
    term.add(Signal::SIGTERM);
    attr.set_sigdefault(&term)?;
    attr.set_sigmask(&SigSet::empty())?;

    // Made and registered under the descriptor list's lock: a child forked by another
    // thread meanwhile closes both ends. Both are close-on-exec; only the
    // child's copy at fd 3 survives its exec.
    let (ours, theirs) = {
        let mut fds = registry::fds();
        let (ours, theirs) = registry::pair_above_stdio(nix::sys::socket::socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::SOCK_CLOEXEC,
        )?)?;
        (
            RegisteredFd::new(&mut fds, ours),
            RegisteredFd::new(&mut fds, theirs),
        )
    };
    // Larger buffers: fewer round trips for large arguments and results
    // (the kernel caps them at net.core.wmem_max).
    for end in [ours.fd(), theirs.fd()] {
        let _ = nix::sys::socket::setsockopt(end, nix::sys::socket::sockopt::SndBuf, &(1 << 20));
    }
    let mut actions = PosixSpawnFileActions::init()?;
    // dup2 onto itself would keep close-on-exec: move it off 3 first.
    let theirs = if theirs.fd().as_raw_fd() == CHANNEL_FD {
        let moved = nix::fcntl::fcntl(theirs.fd(), FcntlArg::F_DUPFD_CLOEXEC(CHANNEL_FD + 1))?;
        // SAFETY: fcntl just returned this new descriptor, owned by nobody.
        let moved = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(moved) };
        let mut fds = registry::fds();
        let moved = RegisteredFd::new(&mut fds, moved);
        theirs.close_locked(&mut fds);
        moved
    } else {
        theirs
    };
    // Output first: were `out` 3 (a caller that closed its standard
    // descriptors), the channel's dup2 would replace it.
    if let Some(out) = output {
        actions.add_dup2(out, 1)?;
        actions.add_dup2(out, 2)?;
    }
    actions.add_dup2(theirs.fd().as_raw_fd(), CHANNEL_FD)?;
    // stdin becomes /dev/null in the child's entry, before any user code.
    let pid = nix::spawn::posix_spawn(
        c"/proc/self/exe",
        &actions,
        &attr,
        &[process.argv0.as_c_str()],
        &env,
    )?;
    // posix_spawn returns once the child has exec'd: its fd 3 is `theirs`.
    let child = Child::adopt_holding(pid, theirs.fd().as_fd(), CHANNEL_FD);
    drop(theirs);
    // Still blocking: the handshake goes into an empty socket buffer at
    // once, whenever the child reads it.
    let handshake = Handshake {
        nonce,
        exe: process.exe,
        kill,
        pool,
    };
    let sent = send_all(ours.fd(), &handshake.encode())
        .and_then(|()| nix::fcntl::fcntl(ours.fd(), FcntlArg::F_SETFL(OFlag::O_NONBLOCK)));
    if let Err(e) = sent {
        // Nobody would watch it: it goes now, not as a zombie.
        let _ = watch::kill_now(child, std::time::Duration::ZERO);
        return Err(e.into());
    }
    Ok((child, ours))
}

/// Writes all of `data` to a socket without SIGPIPE: a child that is
/// already gone is an error, never the death of a caller whose SIGPIPE is
/// at its default.
fn send_all(fd: &impl AsRawFd, mut data: &[u8]) -> nix::Result<()> {
    use nix::sys::socket::{send, MsgFlags};
    while !data.is_empty() {
        match send(fd.as_raw_fd(), data, MsgFlags::MSG_NOSIGNAL) {
            Ok(n) => data = &data[n..],
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The caller's environment, less any variable of ours, plus the child's.
fn child_env(nonce: &[u8; 16]) -> Vec<CString> {
    let mut env: Vec<CString> = std::env::vars_os()
        .filter(|(k, _)| k != OsStr::new(ENV))
        .filter_map(|(k, v)| {
            let mut kv = k.into_encoded_bytes();
            kv.push(b'=');
            kv.extend_from_slice(v.as_encoded_bytes());
            CString::new(kv).ok()
        })
        .collect();
    let ours = format!("{ENV}=1:{}", nonce_hex(nonce));
    env.push(CString::new(ours).expect("no NUL in hex digits"));
    env
}

fn fill_random(buf: &mut [u8]) -> io::Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        // SAFETY: the pointer and length describe the unfilled tail of
        // `buf`, which stays borrowed for the call.
        let n = unsafe {
            nix::libc::getrandom(buf[filled..].as_mut_ptr().cast(), buf.len() - filled, 0)
        };
        match usize::try_from(n) {
            Ok(n) => filled += n,
            Err(_) if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Err(io::Error::last_os_error()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// L2: the handshake goes to a child that may have died already. A
    /// caller whose SIGPIPE is at its default (many command-line programs
    /// reset it) must get EPIPE, not be killed. Checked in a forked child
    /// of the test, which does only async-signal-safe work.
    #[test]
    fn a_handshake_to_a_dead_child_is_an_error_not_a_sigpipe() {
        let (ours, theirs) = nix::sys::socket::socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .unwrap();
        drop(theirs);
        // SAFETY: the child only resets a signal disposition, sends on a
        // socket and leaves with `_exit`.
        match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => {
                // SAFETY: SIG_DFL installs no handler.
                let _ = unsafe {
                    nix::sys::signal::signal(Signal::SIGPIPE, nix::sys::signal::SigHandler::SigDfl)
                };
                let code = match send_all(&ours, b"handshake") {
                    Err(nix::errno::Errno::EPIPE) => 0,
                    _ => 1,
                };
                // SAFETY: `_exit` ends the forked child at once.
                unsafe { nix::libc::_exit(code) }
            }
            nix::unistd::ForkResult::Parent { child } => {
                let status = nix::sys::wait::waitpid(child, None).unwrap();
                assert_eq!(status, nix::sys::wait::WaitStatus::Exited(child, 0));
            }
        }
    }

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
