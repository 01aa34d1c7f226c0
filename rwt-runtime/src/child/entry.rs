//! Exec mode, the child's side: the entry that runs before `main`, and the
//! registry of functions it can run.
//!
//! Every exec-mode function registers itself from a constructor placed in
//! `.init_array.00200`; the entry is a constructor in plain `.init_array`,
//! which the linker places after every prioritised one (and after std's own
//! at `.00099`), so the registry is complete when it runs, and libtest or the
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
//! registry, never an address, and arguments of bounded size decoded to the
//! function's own types). Problems past the handshake are reported to the caller as
//! `Error::Codec`. The variable is removed at once, so nothing the function
//! starts inherits it, and every fd but 0, 1, 2 and the channel is closed.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::panic::{self, AssertUnwindSafe};
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU8, Ordering};

use nix::sys::socket::{getsockopt, sockopt};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::child::body;
use crate::wire::codec;
use crate::wire::frame::{self, Kind};
use crate::wire::protocol::{
    decode_request, exe_identity, nonce_hex, Handshake, ARGS_LIMIT, CHANNEL_FD, ENV, EXIT_INTERNAL,
    EXIT_REFUSED, REQUEST_LEN,
};

/// A frame built in the child: what it sends back.
pub struct ExecFrame(Kind, Vec<u8>);

/// One exec-mode function, as the generated code registers it.
pub struct ExecFn {
    id: u64,
    run: fn(&[u8]) -> ExecFrame,
    next: AtomicPtr<ExecFn>,
    /// Whether it lives in the main executable: 0 unknown, 1 yes, 2 no.
    in_main: AtomicU8,
    /// Another registered function has the same id: neither may run.
    ambiguous: AtomicBool,
}

impl ExecFn {
    /// A registry entry for the function with this id.
    pub const fn new(id: u64, run: fn(&[u8]) -> ExecFrame) -> Self {
        ExecFn {
            id,
            run,
            next: AtomicPtr::new(ptr::null_mut()),
            in_main: AtomicU8::new(0),
            ambiguous: AtomicBool::new(false),
        }
    }

    /// The function's stable id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Does another registered function share this one's id? Then a child
    /// could not tell which to run, and neither is called.
    pub(crate) fn is_ambiguous(&self) -> bool {
        self.ambiguous.load(Ordering::Acquire)
    }
}

/// Head of the registry: a list of `'static` entries, pushed by
/// constructors, never popped.
static REGISTRY: AtomicPtr<ExecFn> = AtomicPtr::new(ptr::null_mut());

/// Adds `f` to the registry (from its constructor). An entry whose id is
/// already taken by another marks both as ambiguous: calls of either fail
/// with `Error::Spawn` instead of running a function that was not called.
pub fn register(f: &'static ExecFn) {
    let node = ptr::from_ref(f).cast_mut();
    let mut head = REGISTRY.load(Ordering::Acquire);
    loop {
        if head == node {
            return;
        }
        f.next.store(head, Ordering::Relaxed);
        match REGISTRY.compare_exchange_weak(head, node, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => break,
            Err(now) => head = now,
        }
    }
    // Everything registered before `f` is behind it: of two entries with one
    // id, the later one finds the earlier.
    for other in entries(head).filter(|other| other.id == f.id) {
        other.ambiguous.store(true, Ordering::Release);
        f.ambiguous.store(true, Ordering::Release);
    }
}

/// The registry from `at` on.
fn entries(mut at: *mut ExecFn) -> impl Iterator<Item = &'static ExecFn> {
    std::iter::from_fn(move || {
        // SAFETY: every pointer in the list comes from a `&'static ExecFn`
        // (see `register`); entries are never removed.
        let f = unsafe { at.as_ref() }?;
        at = f.next.load(Ordering::Acquire);
        Some(f)
    })
}

fn find(id: u64) -> Option<&'static ExecFn> {
    entries(REGISTRY.load(Ordering::Acquire)).find(|f| f.id == id)
}

/// Is `f` part of the main executable (not of a library loaded with
/// `dlopen`)? A child is a fresh run of the main executable: a function
/// that lives elsewhere cannot be found there.
pub(crate) fn in_main_executable(f: &'static ExecFn) -> bool {
    match f.in_main.load(Ordering::Relaxed) {
        1 => return true,
        2 => return false,
        _ => {}
    }
    let found = find_in_main_executable(f);
    f.in_main
        .store(if found { 1 } else { 2 }, Ordering::Relaxed);
    found
}

fn find_in_main_executable(f: &'static ExecFn) -> bool {
    use nix::libc::{dl_iterate_phdr, dl_phdr_info, size_t, PT_LOAD};
    use std::ffi::c_void;

    struct Query {
        addr: usize,
        found: bool,
    }

    unsafe extern "C" fn first_object(
        info: *mut dl_phdr_info,
        _size: size_t,
        data: *mut c_void,
    ) -> nix::libc::c_int {
        // SAFETY: dl_iterate_phdr passes a valid info for the duration of
        // the call, and `data` is the `Query` given below.
        let (info, query) = unsafe { (&*info, &mut *data.cast::<Query>()) };
        // SAFETY: dlpi_phdr points at dlpi_phnum program headers.
        let headers =
            unsafe { std::slice::from_raw_parts(info.dlpi_phdr, usize::from(info.dlpi_phnum)) };
        for h in headers.iter().filter(|h| h.p_type == PT_LOAD) {
            let start = info.dlpi_addr as usize + h.p_vaddr as usize;
            if (start..start + h.p_memsz as usize).contains(&query.addr) {
                query.found = true;
            }
        }
        1 // the main program comes first: stop after it
    }

    let mut query = Query {
        addr: ptr::from_ref(f) as usize,
        found: false,
    };
    // SAFETY: the callback matches dl_iterate_phdr's contract and only reads
    // what it is given; `query` outlives the call.
    unsafe { dl_iterate_phdr(Some(first_object), ptr::from_mut(&mut query).cast()) };
    query.found
}

/// The stable id of a function: FNV-1a of its path and signature.
pub const fn function_id(text: &str) -> u64 {
    let bytes = text.as_bytes();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    hash
}

/// Runs an exec-mode function in the child: decodes its arguments to its
/// own types, calls it, and builds the frame of the outcome.
pub fn run_in_child<A, R>(
    args: &[u8],
    body: impl FnOnce(A) -> R,
    failed: fn(&R) -> bool,
) -> ExecFrame
where
    A: DeserializeOwned,
    R: Serialize,
{
    let args: A = match rmp_serde::from_slice(args) {
        Ok(a) => a,
        Err(e) => {
            let detail = format!("the child could not decode the arguments: {e}");
            return ExecFrame(Kind::EncodeError, detail.into_bytes());
        }
    };
    let (kind, bytes) = body::call(move || body(args), failed, CHANNEL_FD, codec::encode);
    ExecFrame(kind, bytes)
}

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
    let code = match panic::catch_unwind(AssertUnwindSafe(|| serve(value))) {
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

/// Sends the caller a reason it reports as `Error::Codec`, and leaves.
fn reply_and_leave(channel: &impl std::os::fd::AsFd, detail: &str) -> ! {
    let _ = frame::write_frame(channel, Kind::EncodeError, detail.as_bytes());
    body::exit_now(EXIT_REFUSED)
}

fn serve(value: OsString) -> std::convert::Infallible {
    // Nothing this process starts may inherit the variable. The process has
    // one thread: constructors run before any other can start.
    std::env::remove_var(ENV);
    let Some(nonce) = parse_value(&value) else {
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

/// A worker keeps its request buffer and its result buffer for the next
/// call, each up to this size (larger ones are freed after the call): a
/// payload that comes again finds its memory already mapped, instead of
/// paying a page fault per page. Idle workers retire, and their memory with
/// them.
const KEEP_LIMIT: usize = 64 << 20;

/// Serves requests, one at a time: an exec child one, a pool worker until
/// its channel closes (the caller retired it, or died). A request is a
/// function id and the arguments' length (little-endian `u64`s), then the
/// arguments; each answer is a result frame. In a worker, statics live on
/// between calls; processes a call started do not (see `descendants`).
fn serve_requests(channel: OwnedFd, pool: bool) -> ! {
    crate::os::panic_hook::ensure_panic_hook();
    if pool {
        // Descendants that lose their parent come to the worker, to be
        // reaped.
        let _ = nix::sys::prctl::set_child_subreaper(true);
        body::serve_many();
    }
    let mut stream = std::os::unix::net::UnixStream::from(channel);
    // What a call may leave behind is compared with this after each call;
    // without it the worker serves one call.
    let mut baseline = if pool {
        // What every async call's runtime sets up once per process (with
        // tokio: its global signal pipe, if a crate enables that) belongs
        // to the baseline, not to the first call.
        #[cfg(feature = "tokio")]
        crate::child::executor::block_on(async {});
        crate::child::leftovers::Baseline::take()
    } else {
        None
    };
    // Reused from call to call (zeroed once): a small request arrives in
    // one read.
    let mut buf: Vec<u8> = vec![0; 64 * 1024];
    loop {
        let mut filled = 0;
        if read_at_least(&mut stream, &mut buf, &mut filled, REQUEST_LEN).is_err() {
            body::exit_now(0);
        }
        let mut head = [0u8; REQUEST_LEN];
        head.copy_from_slice(&buf[..REQUEST_LEN]);
        let (id, len, limits) = decode_request(&head);
        if len > ARGS_LIMIT {
            reply_and_leave(
                &stream,
                &format!("arguments of {len} bytes exceed the limit of {ARGS_LIMIT} bytes"),
            );
        }
        let total = REQUEST_LEN + usize::try_from(len).unwrap_or(usize::MAX - REQUEST_LEN);
        if read_at_least(&mut stream, &mut buf, &mut filled, total).is_err() {
            body::exit_now(0);
        }
        let f = match find(id) {
            Some(f) if !f.is_ambiguous() => f,
            Some(_) => reply_and_leave(
                &stream,
                &format!("two exec-mode functions share the id {id:#018x}: ambiguous, not run"),
            ),
            None => reply_and_leave(
                &stream,
                &format!("no exec-mode function with id {id:#018x} in this binary"),
            ),
        };
        // Whatever the last call did to SIGTERM, this one starts with the
        // default: the kill ladder relies on it.
        body::reset_sigterm();
        // The limits cover decoding the arguments, the call and encoding
        // its value; what they changed is put back before the worker's
        // state is compared with its baseline.
        // Setting the environment variable back moved it in memory: the
        // worker's baseline is taken again, before the call.
        if limits.memory.is_some() && crate::child::limits::quiet_oom_backtrace() && pool {
            // The old one's descriptors go first: the new one must not
            // count them.
            drop(baseline.take());
            baseline = crate::child::leftovers::Baseline::take();
        }
        let armed = match limits.arm(CHANNEL_FD) {
            Ok(armed) => armed,
            // Not run without a limit it was given.
            Err(why) => reply_and_leave(&stream, why),
        };
        let ExecFrame(kind, bytes) = (f.run)(&buf[REQUEST_LEN..total]);
        drop(armed);
        // Whether every process the call started is gone.
        let mut clean = true;
        if pool {
            if buf.len() > KEEP_LIMIT {
                buf = vec![0; 64 * 1024];
            }
            clean = crate::child::descendants::reap_all();
        }
        let _ = std::io::stdout().flush();
        // An exec child serves one call; a worker whose function panicked
        // or could not encode its value is not used again (the caller
        // retires it on those kinds).
        let served = matches!(kind, Kind::Value | Kind::Failed);
        if frame::write_frame(&stream, kind, &bytes).is_err() || !pool || !served {
            body::exit_now(0);
        }
        // Checked once the answer is out, while the caller decodes it. A
        // worker that cannot be put back as it was says so, before reading
        // the next request, and leaves. So does one with a child it could
        // not end.
        if !clean
            || !baseline
                .as_mut()
                .is_some_and(crate::child::leftovers::Baseline::restore)
        {
            let _ = frame::write_frame(&stream, Kind::Leaving, &[]);
            body::exit_now(0);
        }
        if bytes.capacity() <= KEEP_LIMIT {
            codec::encode_next_into(bytes);
        }
    }
}

/// Reads from `stream` until `buf[..*filled]` holds at least `want` bytes,
/// moving what it holds to a larger zeroed buffer if it is too small (a
/// fresh `calloc` block: no `memset`, and huge pages when large).
fn read_at_least(
    stream: &mut std::os::unix::net::UnixStream,
    buf: &mut Vec<u8>,
    filled: &mut usize,
    want: usize,
) -> std::io::Result<()> {
    if buf.len() < want {
        let mut larger = crate::wire::bigbuf::zeroed(want);
        larger[..*filled].copy_from_slice(&buf[..*filled]);
        *buf = larger;
    }
    while *filled < want {
        match stream.read(&mut buf[*filled..]) {
            Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => *filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
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
