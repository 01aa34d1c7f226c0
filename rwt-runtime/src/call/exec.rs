//! Exec mode, the caller's side: the child is a fresh run of the current
//! executable (`/proc/self/exe`, which names the running binary even if the
//! file was replaced on disk), started with `posix_spawn` (no fork of the
//! caller's memory, nothing run between fork and exec). On a socketpair at
//! fd 3 it gets a handshake, then requests: a function id and its encoded
//! arguments. It answers each with the same result frame as fork mode. An
//! exec child serves one request; a pool worker serves until its channel
//! closes. The child's side is in [`entry`].
//!
//! [`entry`]: crate::child::entry

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

use crate::call::attempt;
use crate::call::exchange::Stop;
use crate::call::kill::Guarded;
use crate::call::outcome::Ended;
use crate::call::process::Child;
use crate::options::Checked;
use crate::os::fds::{self, RegisteredFd};
use crate::wait::deadline::{Deadline, Waiter};
use crate::wire::protocol::{exe_identity, nonce_hex, request_header, Handshake, CHANNEL_FD, ENV};

/// Runs one attempt of function `id` with its encoded `args` in a fresh
/// process, started by this thread (sync calls) or by rwt's spawner thread
/// (async calls), so that it does not die with whichever thread polled the
/// future.
pub(crate) async fn attempt<R: DeserializeOwned, W: Waiter>(
    waiter: &mut W,
    function: &str,
    opts: &Checked,
    cancel: Option<&crate::os::cancel::Epoch>,
    id: u64,
    args: &[u8],
) -> Ended<R> {
    // The deadline runs from the call: the cost of starting counts.
    let deadline = Deadline::after(opts.secs);
    let (kill, output) = (opts.kill, opts.output);
    let started = if W::ONE_THREAD {
        spawn(kill, false, output)
    } else {
        crate::os::spawner::run(move || spawn(kill, false, output))
    };
    match started {
        Ok((child, channel)) => {
            let request = (request_header(id, args.len(), &opts.limits), args);
            let child = Guarded::new(child);
            attempt::watch(
                waiter,
                function,
                opts,
                child,
                channel,
                request,
                Stop { deadline, cancel },
            )
            .await
        }
        Err(e) => attempt::spawn_failed(function, e),
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
    crate::child::entry::keep_linked();
    let process = process()?;
    let mut nonce = [0u8; 16];
    fill_random(&mut nonce)?;
    let env = child_env(&nonce);

    let attr = spawn_attr()?;
    let (ours, theirs) = channel_pair()?;
    let theirs = off_channel_fd(theirs)?;
    let actions = file_actions(output, &theirs)?;
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
        let _ = crate::call::kill::kill_now(child, std::time::Duration::ZERO);
        return Err(e.into());
    }
    Ok((child, ours))
}

/// The channel: made and registered under the descriptor list's lock, so
/// a child forked by another thread meanwhile closes both ends. Both are
/// close-on-exec; only the child's copy at fd 3 survives its exec.
fn channel_pair() -> io::Result<(RegisteredFd, RegisteredFd)> {
    let (ours, theirs) = {
        let mut fds = fds::fds();
        let (ours, theirs) = fds::pair_above_stdio(nix::sys::socket::socketpair(
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
    Ok((ours, theirs))
}

/// The spawn attributes of every exec child: its own process group,
/// SIGTERM back to the default and nothing blocked, whatever the calling
/// thread had.
fn spawn_attr() -> io::Result<PosixSpawnAttr> {
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
    attr.set_pgroup(Pid::from_raw(0))?;
    let mut term = SigSet::empty();
    term.add(Signal::SIGTERM);
    attr.set_sigdefault(&term)?;
    attr.set_sigmask(&SigSet::empty())?;
    Ok(attr)
}

/// The child's end of the channel, moved off fd 3 if it is there: a dup2
/// onto itself would keep close-on-exec.
fn off_channel_fd(theirs: RegisteredFd) -> io::Result<RegisteredFd> {
    if theirs.fd().as_raw_fd() != CHANNEL_FD {
        return Ok(theirs);
    }
    let moved = nix::fcntl::fcntl(theirs.fd(), FcntlArg::F_DUPFD_CLOEXEC(CHANNEL_FD + 1))?;
    // SAFETY: fcntl just returned this new descriptor, owned by nobody.
    let moved = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(moved) };
    let mut fds = fds::fds();
    let moved = RegisteredFd::new(&mut fds, moved);
    theirs.close_locked(&mut fds);
    Ok(moved)
}

/// What the child's descriptors become: `output` (a test attempt's pipe)
/// on 1 and 2, the channel on 3.
fn file_actions(output: Option<RawFd>, theirs: &RegisteredFd) -> io::Result<PosixSpawnFileActions> {
    let mut actions = PosixSpawnFileActions::init()?;
    // Output first: were `out` 3 (a caller that closed its standard
    // descriptors), the channel's dup2 would replace it.
    if let Some(out) = output {
        actions.add_dup2(out, 1)?;
        actions.add_dup2(out, 2)?;
    }
    actions.add_dup2(theirs.fd().as_raw_fd(), CHANNEL_FD)?;
    Ok(actions)
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
}
