//! Exec mode, the child's side: the entry that runs before `main` and
//! authenticates the caller.
//!
//! Every exec-mode function registers itself ([`crate::child::functions`])
//! from a constructor placed in `.init_array.00200`; the entry is a
//! constructor in plain `.init_array`,
//! which the linker places after every prioritised one (and after std's own
//! at `.00099`), so the table is complete when it runs, and libtest or the
//! user's `main` never start in a child.
//!
//! An ordinary run of the program pays one `getenv`. A run that finds the
//! variable must prove it was started by rwt for this call, or it refuses
//! with exit code 120 and a one-line message on stderr, running neither a
//! function nor `main`:
//!
//! - the variable is well formed, and the process is not set-uid/set-gid
//!   (`AT_SECURE`);
//! - fd 3 is a connected (not listening) `AF_UNIX` stream socket whose peer
//!   is the parent process (`SO_PEERCRED` pid == `getppid()`) running as the
//!   same user;
//! - the first bytes on it echo the 128-bit nonce of the variable.
//!
//! Only then does it read anything else: the executable's identity (the
//! handshake's build id), then requests (a function id looked up in the
//! function table, never an address, and arguments of bounded size decoded to the
//! function's own types). Problems past the handshake are reported to the caller as
//! `Error::Codec`. The variable is removed at once, so nothing the function
//! starts inherits it, and every fd but 0, 1, 2 and the channel is closed.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::panic::{self, AssertUnwindSafe};

use nix::sys::socket::{getsockopt, sockopt};

use crate::child::body;
use crate::child::serve::{reply_and_leave, serve_requests};
use crate::wire::protocol::{
    exe_identity, nonce_hex, Handshake, CHANNEL_FD, ENV, EXIT_INTERNAL, EXIT_REFUSED,
};

#[used]
#[unsafe(link_section = ".init_array")]
static ENTRY: extern "C" fn() = entry;

/// Makes sure the entry is linked into any binary that starts exec
/// children (a constructor nothing refers to could be left out).
pub(crate) fn keep_linked() {
    std::hint::black_box(&ENTRY);
}

extern "C" fn entry() {
    // An ordinary run: one getenv, nothing else.
    let Some(value) = std::env::var_os(ENV) else {
        return;
    };
    let code = match panic::catch_unwind(AssertUnwindSafe(|| serve(&value))) {
        Ok(never) => match never {},
        Err(_) => EXIT_INTERNAL,
    };
    body::exit_now(code)
}

/// Leaves at once, saying why, without running anything of the program.
fn refuse(reason: &str) -> ! {
    let _ = writeln!(
        std::io::stderr(),
        "rwt: this process was started with {ENV} set, but {reason}; \
         refusing to run (exit code {EXIT_REFUSED})"
    );
    body::exit_now(EXIT_REFUSED)
}

fn serve(value: &std::ffi::OsStr) -> std::convert::Infallible {
    // Nothing this process starts may inherit the variable. The process has
    // one thread: constructors run before any other can start.
    std::env::remove_var(ENV);
    let Some(nonce) = parse_value(value) else {
        refuse("its value is malformed")
    };
    // SAFETY: getauxval reads the auxiliary vector; AT_SECURE is a valid key.
    if unsafe { nix::libc::getauxval(nix::libc::AT_SECURE) } != 0 {
        refuse("it runs set-uid or set-gid");
    }
    let (mut channel, caller) = match check_channel() {
        Ok(c) => c,
        Err(reason) => refuse(&reason),
    };
    // posix_spawn's dup2 cleared close-on-exec on fd 3; set it again, or
    // every program the function runs would hold an authenticated channel
    // to the caller, able to read the arguments and forge the result.
    if nix::fcntl::fcntl(
        &channel,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    )
    .is_err()
    {
        refuse("fd 3 cannot be made close-on-exec");
    }
    close_other_fds();
    // The caller writes the handshake at once; a stray peer gets 5 s.
    let _ = nix::sys::socket::setsockopt(
        &channel,
        sockopt::ReceiveTimeout,
        &nix::sys::time::TimeVal::new(5, 0),
    );
    let mut raw = [0u8; Handshake::LEN];
    match channel.read_exact(&mut raw) {
        Ok(()) => {}
        // The caller closed the channel before its handshake because it is
        // gone (it exited while starting us): no one to tell.
        Err(e)
            if e.kind() == std::io::ErrorKind::UnexpectedEof
                && nix::sys::signal::kill(caller, None) == Err(nix::errno::Errno::ESRCH) =>
        {
            body::exit_now(EXIT_REFUSED)
        }
        Err(_) => refuse("no handshake arrived on fd 3"),
    }
    let Some(hs) = Handshake::decode(&raw) else {
        refuse("the handshake on fd 3 is malformed")
    };
    if nonce_hex(&hs.nonce) != nonce {
        refuse("the handshake on fd 3 does not carry the expected nonce");
    }
    // Authenticated: the caller hears about anything that goes wrong now.
    let channel = OwnedFd::from(channel);
    // The caller that check_channel verified, not whoever is our parent
    // now: if it died since, prepare sees that and leaves.
    body::prepare(caller, hs.kill);
    match exe_identity() {
        Ok(exe) if exe == hs.exe => {}
        _ => reply_and_leave(
            &channel,
            "the child runs a different executable than the caller",
        ),
    }
    // From here on the channel waits as long as the caller needs: an idle
    // pool worker waits for its next request.
    let _ = nix::sys::socket::setsockopt(
        &channel,
        sockopt::ReceiveTimeout,
        &nix::sys::time::TimeVal::new(0, 0),
    );
    serve_requests(channel, hs.pool)
}

/// `1:<32 hex digits>` → the nonce's hex digits.
fn parse_value(value: &std::ffi::OsStr) -> Option<String> {
    let text = value.to_str()?;
    let hex = text.strip_prefix("1:")?;
    (hex.len() == 32
        && hex
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()))
    .then(|| hex.to_owned())
}

/// Fd 3 must be a connected stream socket to our parent, same user.
fn check_channel() -> Result<(std::os::unix::net::UnixStream, nix::unistd::Pid), String> {
    // SAFETY: fd 3 is only inspected here; it is wrapped below only once
    // it is known to be an open socket, and then owned from there on.
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(CHANNEL_FD) };
    let stat = nix::sys::stat::fstat(fd).map_err(|_| "fd 3 is not open".to_owned())?;
    if stat.st_mode & nix::libc::S_IFMT != nix::libc::S_IFSOCK {
        return Err("fd 3 is not a socket".into());
    }
    match getsockopt(&fd, sockopt::SockType) {
        Ok(nix::sys::socket::SockType::Stream) => {}
        _ => return Err("fd 3 is not a stream socket".into()),
    }
    if nix::sys::socket::getsockname::<nix::sys::socket::UnixAddr>(fd.as_raw_fd()).is_err() {
        return Err("fd 3 is not a Unix-domain socket".into());
    }
    if getsockopt(&fd, sockopt::AcceptConn).unwrap_or(true) {
        return Err("fd 3 is a listening socket".into());
    }
    let cred =
        getsockopt(&fd, sockopt::PeerCredentials).map_err(|_| "fd 3 has no peer".to_owned())?;
    let parent = nix::unistd::getppid().as_raw();
    if cred.pid() != parent
        && nix::sys::signal::kill(nix::unistd::Pid::from_raw(cred.pid()), None)
            == Err(nix::errno::Errno::ESRCH)
    {
        // Our starter died before we got here (we were reparented): no one
        // is waiting, nothing to say.
        body::exit_now(EXIT_REFUSED);
    }
    if cred.pid() != parent {
        return Err(format!(
            "the peer of fd 3 is pid {}, not the parent {parent}",
            cred.pid()
        ));
    }
    if cred.uid() != nix::unistd::getuid().as_raw() {
        return Err("the peer of fd 3 runs as another user".into());
    }
    // SAFETY: fd 3 is an open socket, and nothing else in this process
    // owns it (the process has just started and runs no other code yet).
    let stream = unsafe { std::os::unix::net::UnixStream::from_raw_fd(CHANNEL_FD) };
    Ok((stream, nix::unistd::Pid::from_raw(parent)))
}

/// Closes every descriptor but 0, 1, 2 and the channel, including those the
/// caller held without close-on-exec.
fn close_other_fds() {
    // SAFETY: close_range takes plain integers; it closes descriptors this
    // process owns, none of which the program has started to use.
    let res = unsafe {
        nix::libc::syscall(
            nix::libc::SYS_close_range,
            CHANNEL_FD + 1,
            nix::libc::c_uint::MAX,
            0,
        )
    };
    if res == 0 {
        return;
    }
    // Kernels before 5.9: close what /proc lists.
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let fds: Vec<i32> = dir
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .filter(|&fd| fd > CHANNEL_FD)
        .collect();
    for fd in fds {
        let _ = nix::unistd::close(fd);
    }
}
