//! The pool thread: the one thread that starts workers (their
//! PR_SET_PDEATHSIG is tied to it, and it lives as long as the process),
//! keeps the pool's size after a failed worker, and retires idle ones.

use std::io;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::{give_back, retire, Request, Worker, BUSY, PEAK, STATE};
use crate::wait::deadline::Deadline;

/// Sends a request to the pool thread, starting it if this process has
/// none yet.
pub(super) fn ask(request: Request) {
    let sender = {
        let mut shared = STATE.lock();
        if let Some(s) = &shared.thread {
            s.clone()
        } else {
            let (tx, rx) = mpsc::channel();
            let started = std::thread::Builder::new()
                .name("rwt-pool".into())
                .spawn(move || pool_thread(&rx));
            if started.is_err() {
                return;
            }
            shared.thread = Some(tx.clone());
            tx
        }
    };
    let _ = sender.send(request);
}

/// A fresh worker from the pool thread, or `None` if the deadline passes
/// first (the worker, once started, becomes an idle one).
pub(super) fn start_via_pool_thread(deadline: Deadline) -> io::Result<Option<Worker>> {
    // A rendezvous: the pool thread's send either reaches this receive or
    // fails (the caller gave up), and then the worker becomes an idle one;
    // a buffered send could leave it in a channel nobody reads.
    let (tx, rx) = mpsc::sync_channel(0);
    ask(Request::Spawn(tx));
    match rx.recv_timeout(deadline.remaining()) {
        Ok(started) => started.map(Some),
        Err(mpsc::RecvTimeoutError::Timeout) => Ok(None),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            Err(io::Error::other("the rwt pool thread could not be started"))
        }
    }
}

/// The pool thread: starts workers on request (so their PR_SET_PDEATHSIG
/// is tied to a thread that lives as long as the process), keeps spares,
/// retires workers idle for too long.
///
/// A call waiting for a worker (`Spawn`) goes before replacements, which
/// only keep the pool's size; and idle workers are swept on a clock, not
/// only when no request came for a whole tick (a steady trickle of
/// replacements would otherwise keep a grown pool for ever).
fn pool_thread(requests: &mpsc::Receiver<Request>) {
    let mut swept = Instant::now();
    let mut replacements = 0usize;
    loop {
        let tick = {
            let shared = STATE.lock();
            (shared.idle_timeout / 2).clamp(Duration::from_millis(10), Duration::from_secs(1))
        };
        if swept.elapsed() >= tick {
            retire_expired();
            swept = Instant::now();
        }
        // Requests waiting now: callers first, then one replacement (and
        // a look for callers again before the next).
        let next = if replacements > 0 {
            requests.try_recv().map_err(|e| match e {
                mpsc::TryRecvError::Empty => mpsc::RecvTimeoutError::Timeout,
                mpsc::TryRecvError::Disconnected => mpsc::RecvTimeoutError::Disconnected,
            })
        } else {
            requests.recv_timeout(tick.saturating_sub(swept.elapsed()))
        };
        match next {
            Ok(Request::Spawn(reply)) => {
                // A caller whose deadline passed meanwhile is gone: its
                // worker becomes an idle one.
                if let Err(mpsc::SendError(Ok(worker))) = reply.send(start_worker()) {
                    give_back(worker);
                }
            }
            Ok(Request::Replace) => replacements += 1,
            Err(mpsc::RecvTimeoutError::Timeout) if replacements > 0 => {
                replacements -= 1;
                // Never urgent: the caller that asked for it is returning,
                // often on this CPU, where the wake-up put this thread.
                // Starting a worker at once held such a caller 165-215 us
                // (median) after its worker was killed, yielding first
                // 40 us.
                std::thread::yield_now();
                replace();
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// Starts a worker to keep idle, if the pool is below its size.
fn replace() {
    let wanted = {
        let shared = STATE.lock();
        let pool = &*shared;
        // By default the cap counts every worker, busy or idle: a
        // replacement restores the pool's size, never grows it. A cap set
        // by `set_pool_size` counts idle ones.
        let busy = if pool.max_idle.is_none() {
            BUSY.load(Ordering::Relaxed)
        } else {
            0
        };
        pool.idle.len() + busy < pool.max_idle()
    };
    if wanted {
        if let Ok(worker) = start_worker() {
            give_back(worker);
        }
    }
}

fn retire_expired() {
    let expired: Vec<Worker> = {
        let mut shared = STATE.lock();
        let limit = shared.idle_timeout;
        let (old, fresh): (Vec<Worker>, Vec<Worker>) = shared
            .idle
            .drain(..)
            .partition(|w| w.idle_since.elapsed() >= limit);
        shared.idle = fresh;
        // The default cap follows the pool down: what is left now (busy or
        // idle) is the most it keeps until calls grow it again.
        if !old.is_empty() {
            PEAK.store(
                BUSY.load(Ordering::Relaxed) + shared.idle.len(),
                Ordering::Relaxed,
            );
        }
        old
    };
    expired.into_iter().for_each(retire);
}

/// Starts a worker (its handshake sent).
fn start_worker() -> io::Result<Worker> {
    let (child, channel) = crate::call::exec::spawn(true, true, None)?;
    tracing::debug!(target: "rwt", pid = child.pid(), "pool worker started");
    Ok(Worker {
        child,
        channel,
        idle_since: Instant::now(),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use crate::wait::deadline::Deadline;

    /// M4: a call that needs a fresh worker while the pool thread is busy
    /// (here: held before it can register the new worker's channel, as a
    /// fork of a large caller holds the descriptor list) gives up at its
    /// deadline instead of waiting for the pool thread.
    #[test]
    fn a_busy_pool_thread_does_not_hold_a_call_past_its_deadline() {
        let held = crate::os::fds::fds();
        let (tx, rx) = mpsc::channel();
        let call = std::thread::spawn(move || {
            let started = super::start_via_pool_thread(Deadline::after(Duration::from_millis(100)));
            let _ = tx.send(started.map(|w| w.is_some()).map_err(|e| e.kind()));
        });
        let outcome = rx.recv_timeout(Duration::from_secs(20));
        drop(held);
        call.join().unwrap();
        assert_eq!(
            outcome,
            Ok(Ok(false)),
            "the call waited for the pool thread"
        );
    }
}
