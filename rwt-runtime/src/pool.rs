//! Pool mode: exec workers started once and reused, so a call costs a round
//! trip on a socket instead of a process start.
//!
//! - **No queueing.** A call takes an idle worker or gets a fresh one at
//!   once; its deadline never includes someone else's call. By default
//!   the pool keeps, idle, as many workers as calls were ever in flight at
//!   once (at least the number of CPUs), so a steady load of N callers
//!   reuses N workers instead of starting and retiring them around a
//!   smaller cap; [`set_pool_size`] sets a fixed cap instead. A worker idle
//!   for [`IDLE_TIMEOUT`] (or [`set_pool_idle_timeout`]) retires: that is
//!   how the pool shrinks after a burst.
//! - **A failed worker never hurts the next call.** A worker that timed
//!   out, panicked, crashed or died while idle is not used again (killed,
//!   reaped, or left as an orphan with `kill = false`), and a replacement is
//!   started in the background.
//! - **Workers live as long as the caller's process.** They are started by
//!   one pool thread that lives for the whole process (PR_SET_PDEATHSIG
//!   fires when the *thread* that started a child ends), and they exit when
//!   their channel closes.
//! - Each worker is a child subreaper and kills and reaps whatever a call
//!   started before it answers: nothing a call started outlives the call.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;

use crate::codec::Kind;
use crate::deadline::{Deadline, Waiter};
use crate::options::Checked;
use crate::process::Child;
use crate::reaper;
use crate::registry::{self, RegisteredFd};
use crate::watch::{self, Ended, Guarded, Outcome};

/// How long a worker may stay idle before it retires, unless
/// [`set_pool_idle_timeout`] says otherwise.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// A started worker, ready for calls.
pub(crate) struct Worker {
    child: Child,
    channel: RegisteredFd,
    idle_since: Instant,
}

/// What a call asks of the pool thread.
enum Request {
    /// Start a worker for me now.
    Spawn(mpsc::SyncSender<io::Result<Worker>>),
    /// A worker was lost: start one to keep idle.
    Replace,
}

/// The pool's part of rwt's shared state.
pub(crate) struct State {
    idle: Vec<Worker>,
    max_idle: Option<usize>,
    /// Pool calls holding a worker now, and the most there ever were.
    busy: usize,
    peak: usize,
    idle_timeout: Duration,
    thread: Option<mpsc::Sender<Request>>,
}

impl State {
    pub(crate) const fn new() -> Self {
        State {
            idle: Vec::new(),
            max_idle: None,
            busy: 0,
            peak: 0,
            idle_timeout: IDLE_TIMEOUT,
            thread: None,
        }
    }

    fn max_idle(&self) -> usize {
        // available_parallelism reads cgroup files: once per process, not
        // under the lock on every give_back. An atomic, not a OnceLock: a
        // fork while another thread initialises a OnceLock leaves the
        // child's copy initialising for ever. Threads that race both
        // compute it; the answers agree.
        static CPUS: AtomicUsize = AtomicUsize::new(0);
        self.max_idle.unwrap_or_else(|| {
            let cpus = match CPUS.load(Ordering::Relaxed) {
                0 => {
                    let n = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
                    CPUS.store(n, Ordering::Relaxed);
                    n
                }
                n => n,
            };
            cpus.max(self.peak)
        })
    }

    /// In a child rwt forked (or a child of the user's own `fork()`): the
    /// workers and the pool thread are the parent's. Forget them without
    /// touching anything (their channels are registered descriptors, which a
    /// child rwt forked closes with the rest).
    pub(crate) fn forget(&mut self) {
        for worker in self.idle.drain(..) {
            std::mem::forget(worker);
        }
        // The parent's calls in flight are not this process's.
        self.busy = 0;
        self.peak = 0;
        if let Some(thread) = self.thread.take() {
            std::mem::forget(thread);
        }
    }
}

/// Sets how many idle workers the pool keeps at most. By default it keeps
/// as many as calls were ever in flight at once, and at least the number of
/// CPUs; idle workers retire after the idle timeout either way. With a cap,
/// extra idle workers retire at once; 0 keeps none, so every call starts a
/// fresh worker. Calls in flight are never affected.
pub fn set_pool_size(max_idle: usize) {
    let retired: Vec<Worker> = {
        let mut shared = registry::lock();
        shared.pool.max_idle = Some(max_idle);
        let keep = shared.pool.idle.len().min(max_idle);
        shared.pool.idle.drain(keep..).collect()
    };
    retired.into_iter().for_each(retire);
}

/// Sets how long an idle worker is kept before it retires (default 30 s,
/// [`IDLE_TIMEOUT`]); checked at least once a second.
pub fn set_pool_idle_timeout(idle: Duration) {
    registry::lock().pool.idle_timeout = idle;
}

/// Runs one attempt of function `id` with its encoded `args` on a worker
/// (workers are started by the pool thread, whatever the caller).
pub(crate) async fn attempt<R: DeserializeOwned, W: Waiter>(
    waiter: &mut W,
    function: &str,
    opts: &Checked,
    cancel: Option<&crate::cancel::Epoch>,
    id: u64,
    args: &[u8],
) -> Ended<R> {
    let started = Instant::now();
    let deadline = Deadline::after(opts.secs);
    loop {
        let worker = match take_idle() {
            Some(w) => w,
            None => match start_via_pool_thread(deadline) {
                Ok(Some(w)) => w,
                Ok(None) => {
                    return Outcome::Timeout {
                        orphan: None,
                        stuck: None,
                    }
                    .into()
                }
                Err(e) => return watch::spawn_failed(function, e),
            },
        };
        let Worker { child, channel, .. } = worker;
        let busy = Busy::start();
        let mut child = Guarded::new(child);
        let (waited, reader) = watch::exchange(
            waiter,
            child.child(),
            channel.fd(),
            (
                crate::exec::request_header(id, args.len(), &opts.limits),
                args,
            ),
            opts.result_limit,
            watch::Stop { deadline, cancel },
            true,
        )
        .await;
        if matches!(waited, watch::Waited::Frame) && reader.kind() == Some(Kind::Leaving) {
            // The worker's last call left something behind: it retires
            // without reading this request, which another worker serves,
            // within the same deadline.
            tracing::debug!(target: "rwt", function, pid = child.child().pid(), "worker retired with leftovers");
            // No replacement asked for here: it would be started before the
            // worker this call now needs.
            retire(Worker {
                child: child.into_inner(),
                channel,
                idle_since: Instant::now(),
            });
            continue;
        }
        // The worker may have said it leaves right after its answer, and
        // the same read took both.
        let leaving = reader.leaving_follows();
        let mut kept = false;
        let mut failed = None;
        let answered = |child: Child, kind: Kind| {
            let worker = Worker {
                child,
                channel,
                idle_since: Instant::now(),
            };
            if matches!(kind, Kind::Value | Kind::Failed) && !leaving {
                give_back(worker);
                kept = true;
            } else if matches!(kind, Kind::Value | Kind::Failed) {
                retire(worker);
            } else {
                // A worker whose function panicked, went over its memory
                // limit or could not serve the request leaves (it exits on
                // its own): reaped here, for its usage.
                failed = Some(worker);
            }
        };
        let mut ended =
            watch::conclude(waiter, function, opts, child, waited, reader, answered).await;
        // Counted out first: the replacement is for this call's worker.
        drop(busy);
        if !kept {
            ask(Request::Replace);
        }
        if let Some(Worker { child, channel, .. }) = failed {
            drop(channel);
            ended.usage = watch::finish(waiter, child, opts.kill).await;
        }
        // The worker's CPU time and peak memory are its life's; the wall
        // time is this call's.
        if let Some(usage) = &mut ended.usage {
            usage.wall = started.elapsed();
        }
        return ended;
    }
}

/// Counts a call as holding a worker, for the default cap, until dropped.
struct Busy;

impl Busy {
    fn start() -> Busy {
        let mut shared = registry::lock();
        let pool = &mut shared.pool;
        pool.busy += 1;
        pool.peak = pool.peak.max(pool.busy);
        Busy
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let mut shared = registry::lock();
        shared.pool.busy = shared.pool.busy.saturating_sub(1);
    }
}

/// The most recently used idle worker that is still alive.
fn take_idle() -> Option<Worker> {
    loop {
        let mut worker = registry::lock().pool.idle.pop()?;
        if worker.child.has_exited() {
            // Killed or crashed while idle: reap it, try the next one.
            let _ = worker.child.reap();
            ask(Request::Replace);
            continue;
        }
        return Some(worker);
    }
}

fn give_back(worker: Worker) {
    let extra = {
        let mut shared = registry::lock();
        if shared.pool.idle.len() < shared.pool.max_idle() {
            shared.pool.idle.push(worker);
            None
        } else {
            Some(worker)
        }
    };
    if let Some(worker) = extra {
        retire(worker);
    }
}

/// Closes a worker's channel, so it exits, and lets the reaper collect it.
fn retire(worker: Worker) {
    let Worker { child, channel, .. } = worker;
    drop(channel);
    reaper::adopt(child);
}

/// Sends a request to the pool thread, starting it if this process has
/// none yet.
fn ask(request: Request) {
    let sender = {
        let mut shared = registry::lock();
        match &shared.pool.thread {
            Some(s) => s.clone(),
            None => {
                let (tx, rx) = mpsc::channel();
                let started = std::thread::Builder::new()
                    .name("rwt-pool".into())
                    .spawn(move || pool_thread(&rx));
                if started.is_err() {
                    return;
                }
                shared.pool.thread = Some(tx.clone());
                tx
            }
        }
    };
    let _ = sender.send(request);
}

/// A fresh worker from the pool thread, or `None` if the deadline passes
/// first (the worker, once started, becomes an idle one).
fn start_via_pool_thread(deadline: Deadline) -> io::Result<Option<Worker>> {
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
            let shared = registry::lock();
            (shared.pool.idle_timeout / 2).clamp(Duration::from_millis(10), Duration::from_secs(1))
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
        let shared = registry::lock();
        let pool = &shared.pool;
        // By default the cap counts every worker, busy or idle: a
        // replacement restores the pool's size, never grows it. A cap set
        // by `set_pool_size` counts idle ones.
        let busy = if pool.max_idle.is_none() {
            pool.busy
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
        let mut shared = registry::lock();
        let limit = shared.pool.idle_timeout;
        let (old, fresh): (Vec<Worker>, Vec<Worker>) = shared
            .pool
            .idle
            .drain(..)
            .partition(|w| w.idle_since.elapsed() >= limit);
        shared.pool.idle = fresh;
        // The default cap follows the pool down: what is left now (busy or
        // idle) is the most it keeps until calls grow it again.
        let pool = &mut shared.pool;
        if !old.is_empty() {
            pool.peak = pool.busy + pool.idle.len();
        }
        old
    };
    expired.into_iter().for_each(retire);
}

/// Starts a worker (its handshake sent).
fn start_worker() -> io::Result<Worker> {
    let (child, channel) = crate::exec::spawn(true, true, None)?;
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

    use crate::deadline::Deadline;

    /// M4: a call that needs a fresh worker while the pool thread is busy
    /// (here: held before it can register the new worker's channel, as a
    /// fork of a large caller holds the descriptor list) gives up at its
    /// deadline instead of waiting for the pool thread.
    #[test]
    fn a_busy_pool_thread_does_not_hold_a_call_past_its_deadline() {
        let held = crate::registry::fds();
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
