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

use crate::call::attempt;
use crate::call::exchange::exchange;
use crate::call::exchange::Stop;
use crate::call::kill::Guarded;
use crate::call::outcome::{Ended, Outcome};
use crate::call::process::Child;
use crate::call::reaper;
use crate::options::Checked;
use crate::os::fds::RegisteredFd;
use crate::os::state::ProcessLocal;
use crate::wait::deadline::{Deadline, Waiter};
use crate::wire::frame::Kind;
use crate::wire::protocol::request_header;

mod thread;
use thread::{ask, start_via_pool_thread};

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

/// The pool of this process.
pub(super) struct State {
    idle: Vec<Worker>,
    max_idle: Option<usize>,
    idle_timeout: Duration,
    thread: Option<mpsc::Sender<Request>>,
}

/// In a child rwt forked (or a child of the user's own `fork()`), the
/// workers and the pool thread are the parent's: a fresh pool, with the
/// settings the parent had made, and the parent's copy is never dropped
/// (its workers' channels are registered descriptors, which a child rwt
/// forked closes with the rest).
pub(super) static STATE: ProcessLocal<State> = ProcessLocal::new(
    || State {
        idle: Vec::new(),
        max_idle: match MAX_IDLE.load(Ordering::Relaxed) {
            usize::MAX => None,
            n => Some(n),
        },
        idle_timeout: Duration::from_nanos(IDLE_TIMEOUT_NS.load(Ordering::Relaxed)),
        thread: None,
    },
    || {
        // The parent's calls in flight are not this process's.
        BUSY.store(0, Ordering::Relaxed);
        PEAK.store(0, Ordering::Relaxed);
    },
);

/// The settings as last set ([`set_pool_size`], [`set_pool_idle_timeout`]),
/// outside the state so that a child's fresh pool starts with them, as
/// the rest of a child's memory does. `usize::MAX`: no cap set.
static MAX_IDLE: AtomicUsize = AtomicUsize::new(usize::MAX);
static IDLE_TIMEOUT_NS: std::sync::atomic::AtomicU64 =
    std::sync::atomic::AtomicU64::new(IDLE_TIMEOUT.as_nanos() as u64);

impl State {
    fn max_idle(&self) -> usize {
        self.max_idle
            .unwrap_or_else(|| crate::os::cpus().max(PEAK.load(Ordering::Relaxed)))
    }
}

/// Sets how many idle workers the pool keeps at most. By default it keeps
/// as many as calls were ever in flight at once, and at least the number of
/// CPUs; idle workers retire after the idle timeout either way. With a cap,
/// extra idle workers retire at once; 0 keeps none, so every call starts a
/// fresh worker. Calls in flight are never affected.
pub fn set_pool_size(max_idle: usize) {
    let retired: Vec<Worker> = {
        let mut shared = STATE.lock();
        shared.max_idle = Some(max_idle);
        MAX_IDLE.store(max_idle.min(usize::MAX - 1), Ordering::Relaxed);
        let keep = shared.idle.len().min(max_idle);
        shared.idle.drain(keep..).collect()
    };
    retired.into_iter().for_each(retire);
}

/// Sets how long an idle worker is kept before it retires (default 30 s,
/// [`IDLE_TIMEOUT`]); checked at least once a second.
pub fn set_pool_idle_timeout(idle: Duration) {
    let mut shared = STATE.lock();
    shared.idle_timeout = idle;
    let nanos = u64::try_from(idle.as_nanos()).unwrap_or(u64::MAX);
    IDLE_TIMEOUT_NS.store(nanos, Ordering::Relaxed);
}

/// Retires a worker that left without reading the request. No
/// replacement is asked for here: it would be started before the worker
/// the call now needs.
fn retire_leaving(function: &str, child: Child, channel: RegisteredFd) {
    tracing::debug!(target: "rwt", function, pid = child.pid(), "worker retired with leftovers");
    retire(Worker {
        child,
        channel,
        idle_since: Instant::now(),
    });
}

/// A worker for an attempt: an idle one, else a new one the pool thread
/// starts before `deadline`. Without one, how the attempt ended.
fn worker_for<R>(deadline: Deadline, function: &str) -> Result<Worker, Ended<R>> {
    if let Some(worker) = take_idle() {
        return Ok(worker);
    }
    match start_via_pool_thread(deadline) {
        Ok(Some(worker)) => Ok(worker),
        Ok(None) => Err(Outcome::Timeout {
            orphan: None,
            stuck: None,
        }
        .into()),
        Err(e) => Err(attempt::spawn_failed(function, e)),
    }
}

/// Runs one attempt of function `id` with its encoded `args` on a worker
/// (workers are started by the pool thread, whatever the caller).
pub(crate) async fn attempt<R: DeserializeOwned, W: Waiter>(
    waiter: &mut W,
    function: &str,
    opts: &Checked,
    cancel: Option<&crate::os::cancel::Epoch>,
    id: u64,
    args: &[u8],
) -> Ended<R> {
    let started = Instant::now();
    let deadline = Deadline::after(opts.secs);
    loop {
        let Worker { child, channel, .. } = match worker_for(deadline, function) {
            Ok(worker) => worker,
            Err(ended) => return ended,
        };
        let busy = Busy::start();
        let mut child = Guarded::new(child);
        let request = (request_header(id, args.len(), &opts.limits), args);
        let stop = Stop { deadline, cancel };
        let (waited, reader) = exchange(
            waiter,
            child.child(),
            channel.fd(),
            request,
            opts.result_limit,
            stop,
            Busy::may_spin(),
        )
        .await;
        if matches!(waited, crate::call::outcome::Waited::Frame)
            && reader.kind() == Some(Kind::Leaving)
        {
            // The worker's last call left something behind: it retires
            // without reading this request, which another worker serves,
            // within the same deadline.
            retire_leaving(function, child.into_inner(), channel);
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
            attempt::conclude(waiter, function, opts, child, waited, reader, answered).await;
        // Counted out first: the replacement is for this call's worker.
        drop(busy);
        if !kept {
            ask(Request::Replace);
        }
        if let Some(Worker { child, channel, .. }) = failed {
            drop(channel);
            ended.usage = crate::call::kill::finish(waiter, child, opts.kill).await;
        }
        // The worker's CPU time and peak memory are its life's; the wall
        // time is this call's.
        if let Some(usage) = &mut ended.usage {
            usage.wall = started.elapsed();
        }
        return ended;
    }
}

/// Pool calls holding a worker now, and the most there were at once (the
/// default cap; it comes down as idle workers expire). Atomics, not fields
/// under rwt's lock: every pool call counts itself in and out.
static BUSY: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

/// Counts a call as holding a worker, for the default cap, until dropped.
struct Busy;

impl Busy {
    fn start() -> Busy {
        let now = BUSY.fetch_add(1, Ordering::Relaxed) + 1;
        PEAK.fetch_max(now, Ordering::Relaxed);
        Busy
    }

    /// May this call spin for its answer before it sleeps? Only while the
    /// calls in flight leave a CPU to each of their workers (half the CPUs
    /// at most): a spinning caller holds a CPU, and callers that outnumber
    /// the CPUs would spin on the ones their workers need. With 16 callers
    /// on 2 CPUs, a pool call took 33-46 us with every caller spinning,
    /// 32-36 us with one spinning at a time, and 21-27 us with none; one
    /// caller alone, 22-30 us spinning, 54-70 us sleeping at once.
    fn may_spin() -> bool {
        BUSY.load(Ordering::Relaxed) * 2 <= crate::os::cpus()
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        // Saturating: a child's first pool use resets the count its parent
        // left (`STATE`), which may race with a call counted in just before.
        let _ = BUSY.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| b.checked_sub(1));
    }
}

/// The most recently used idle worker that is still alive.
fn take_idle() -> Option<Worker> {
    loop {
        let mut worker = STATE.lock().idle.pop()?;
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
        let mut shared = STATE.lock();
        if shared.idle.len() < shared.max_idle() {
            shared.idle.push(worker);
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::os::state::tests::answer_of_a_fork;

    /// The settings a program made reach its children's pools (forked by
    /// rwt or by the program): a fresh pool there starts with them. Played
    /// in a forked child, which sets them and forks a grandchild that
    /// reads them, so this test binary's own pool is untouched.
    #[test]
    fn a_childs_pool_starts_with_the_settings_its_parent_made() {
        let seen = answer_of_a_fork(|| {
            super::set_pool_size(3);
            super::set_pool_idle_timeout(Duration::from_millis(1234));
            // The grandchild reads what its fresh pool started with.
            answer_of_a_fork(|| {
                let state = super::STATE.lock();
                let seen = (state.max_idle, state.idle_timeout);
                vec![u8::from(seen == (Some(3), Duration::from_millis(1234)))]
            })
        });
        assert_eq!(seen, [1], "the grandchild's pool had the defaults");
    }
}
