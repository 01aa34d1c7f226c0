//! The request loop of an exec child and a pool worker, once the entry
//! has authenticated the caller: read a request, run its function, write
//! the result frame; a worker then cleans up what the call left and waits
//! for the next.

use std::io::{Read, Write};
use std::os::fd::OwnedFd;

use crate::child::body;
use crate::child::functions::{find, ExecFn, ExecFrame};
use crate::wire::codec;
use crate::wire::frame::{self, Kind};
use crate::wire::protocol::{decode_request, ARGS_LIMIT, CHANNEL_FD, EXIT_REFUSED, REQUEST_LEN};

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
pub(crate) fn serve_requests(channel: OwnedFd, pool: bool) -> ! {
    crate::os::panic_hook::ensure_panic_hook();
    let mut baseline = if pool { become_worker() } else { None };
    let mut stream = std::os::unix::net::UnixStream::from(channel);
    // Reused from call to call (zeroed once): a small request arrives in
    // one read.
    let mut buf: Vec<u8> = vec![0; 64 * 1024];
    loop {
        let (f, total, limits) = read_request(&mut stream, &mut buf);
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

/// Makes this process a pool worker: descendants that lose their parent
/// come to it to be reaped, and each result is dropped once sent. Returns
/// what a call may leave behind is compared with after each call (without
/// it, the worker serves one call).
fn become_worker() -> Option<crate::child::leftovers::Baseline> {
    let _ = nix::sys::prctl::set_child_subreaper(true);
    body::serve_many();
    // What every async call's runtime sets up once per process (with
    // tokio: its global signal pipe, if a crate enables that) belongs to
    // the baseline, not to the first call.
    #[cfg(feature = "tokio")]
    crate::child::executor::block_on(async {});
    crate::child::leftovers::Baseline::take()
}

/// Reads the next request into `buf` and finds its function: the
/// function, where its arguments end in `buf`, and the call's limits. At
/// the end of the channel the process leaves; a request it cannot serve
/// is answered with the reason, and the process leaves.
fn read_request(
    stream: &mut std::os::unix::net::UnixStream,
    buf: &mut Vec<u8>,
) -> (&'static ExecFn, usize, crate::limits::Limits) {
    let mut filled = 0;
    if read_at_least(stream, buf, &mut filled, REQUEST_LEN).is_err() {
        body::exit_now(0);
    }
    let mut head = [0u8; REQUEST_LEN];
    head.copy_from_slice(&buf[..REQUEST_LEN]);
    let (id, len, limits) = decode_request(&head);
    if len > ARGS_LIMIT {
        reply_and_leave(
            stream,
            &format!("arguments of {len} bytes exceed the limit of {ARGS_LIMIT} bytes"),
        );
    }
    let total = REQUEST_LEN + usize::try_from(len).unwrap_or(usize::MAX - REQUEST_LEN);
    if read_at_least(stream, buf, &mut filled, total).is_err() {
        body::exit_now(0);
    }
    let f = match find(id) {
        Some(f) if !f.is_ambiguous() => f,
        Some(_) => reply_and_leave(
            stream,
            &format!("two exec-mode functions share the id {id:#018x}: ambiguous, not run"),
        ),
        None => reply_and_leave(
            stream,
            &format!("no exec-mode function with id {id:#018x} in this binary"),
        ),
    };
    (f, total, limits)
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

/// Sends the caller a reason it reports as `Error::Codec`, and leaves.
pub(crate) fn reply_and_leave(channel: &impl std::os::fd::AsFd, detail: &str) -> ! {
    let _ = frame::write_frame(channel, Kind::EncodeError, detail.as_bytes());
    body::exit_now(EXIT_REFUSED)
}
