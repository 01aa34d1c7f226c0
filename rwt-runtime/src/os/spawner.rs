//! The spawner threads: async calls start their children here.
//!
//! PR_SET_PDEATHSIG, which makes a child die with its caller, fires when the
//! *thread* that started the child ends, not the process. A sync call's
//! thread waits for its child, so that thread is the right one. An async
//! call's future moves between threads, and executors end threads on their
//! own (tokio's blocking threads after 10 s idle, `block_in_place`, a
//! runtime on a short-lived thread), so its child is started by a spawner
//! thread instead, which lives as long as the process.
//!
//! There is one spawner thread per call starting at that instant, up to
//! [`MAX_THREADS`]: a call never waits behind another call's start (an exec
//! spawn takes a fraction of a millisecond; a fork of a large caller takes
//! tens of milliseconds, during which the kernel stalls every thread of the
//! caller that touches memory anyway). Threads are started on demand and
//! kept, idle, for the next calls; past the cap, a call waits for the first
//! one to be free.
//!
//! A job runs while its caller waits, so it may borrow from the caller: the
//! function and its arguments stay where they are, and the child forked here
//! finds them in its copy of the caller's memory.

use std::panic::{self, AssertUnwindSafe};
use std::sync::{mpsc, Condvar};

use crate::os::state::{self, ProcessLocal};

/// A job, with its lifetime erased (see [`run`]).
type Job = Box<dyn FnOnce() + Send + 'static>;

/// A spawner thread's queue: a job and the channel that says it is done.
type Queue = mpsc::Sender<(Job, mpsc::SyncSender<()>)>;

/// Spawner threads at most. Each is a parked thread (its stack is mostly
/// never touched) that lives as long as the process.
pub(crate) const MAX_THREADS: usize = 16;

/// The spawner threads of this process.
struct State {
    /// Spawner threads that are free.
    idle: Vec<Queue>,
    /// Spawner threads started, free or busy.
    started: usize,
}

/// In a child process, the parent's threads do not exist: new ones start
/// on first use.
static STATE: ProcessLocal<State> = ProcessLocal::new(
    || State {
        idle: Vec::new(),
        started: 0,
    },
    || {},
);

/// Spawner threads that are free now.
#[cfg(test)]
pub(crate) fn idle_count() -> usize {
    STATE.lock().idle.len()
}

/// Signalled when a spawner thread becomes free (for calls past the cap).
static FREED: Condvar = Condvar::new();

/// Runs `job` on a spawner thread and returns its value (or resumes its
/// panic) once it is done. If no thread can be started, `job` runs on the
/// calling thread.
pub(crate) fn run<T: Send>(job: impl FnOnce() -> T + Send) -> T {
    let mut result: Option<std::thread::Result<T>> = None;
    let slot = &mut result;
    let task: Box<dyn FnOnce() + Send + '_> = Box::new(move || {
        *slot = Some(panic::catch_unwind(AssertUnwindSafe(job)));
    });
    // SAFETY: only the lifetime changes. The task borrows from this frame
    // (`result`, and whatever `job` borrows); it is either run here, or
    // sent to a spawner thread, which consumes it (running it, which
    // cannot unwind past `catch_unwind`) before it signals `done`, and this
    // function does not return before `done` is signalled or dropped.
    let task: Job = unsafe { std::mem::transmute::<Box<dyn FnOnce() + Send + '_>, Job>(task) };
    let (done, finished) = mpsc::sync_channel(1);
    match take() {
        Some(queue) => match queue.send((task, done)) {
            Ok(()) => {
                let _ = finished.recv();
                give_back(queue);
            }
            Err(mpsc::SendError((task, _))) => task(),
        },
        None => task(),
    }
    match result {
        Some(Ok(value)) => value,
        Some(Err(payload)) => panic::resume_unwind(payload),
        None => unreachable!("the spawner consumes every job before it says it is done"),
    }
}

/// A free spawner thread: an idle one, else a new one below the cap, else
/// the first to be given back. `None` if a thread cannot be started.
fn take() -> Option<Queue> {
    let mut shared = STATE.lock();
    loop {
        if let Some(queue) = shared.idle.pop() {
            return Some(queue);
        }
        if shared.started < MAX_THREADS {
            // Started without the lock held: a thread's stack is mapped
            // under the memory-map lock, which a fork in progress holds.
            shared.started += 1;
            drop(shared);
            let queue = start();
            if queue.is_none() {
                STATE.lock().started -= 1;
                // A call waiting past the cap may start one now.
                FREED.notify_one();
            }
            return queue;
        }
        shared = state::wait(&FREED, shared);
    }
}

fn give_back(queue: Queue) {
    STATE.lock().idle.push(queue);
    FREED.notify_one();
}

/// Starts a spawner thread and returns its queue.
fn start() -> Option<Queue> {
    let (tx, rx) = mpsc::channel::<(Job, mpsc::SyncSender<()>)>();
    std::thread::Builder::new()
        .name("rwt-spawner".into())
        .spawn(move || {
            for (task, done) in rx {
                task();
                let _ = done.send(());
            }
        })
        .ok()?;
    Some(tx)
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    /// M4: a start that is held (as by a fork of a large caller) does not
    /// hold up the next call's start. With one spawner thread the second
    /// job would queue behind the first until it is released.
    #[test]
    fn a_held_start_does_not_hold_up_the_next() {
        let (release, held) = mpsc::channel::<()>();
        let (started, first_running) = mpsc::channel::<()>();
        let first = std::thread::spawn(move || {
            super::run(move || {
                started.send(()).unwrap();
                held.recv().unwrap();
                1
            })
        });
        first_running.recv().unwrap();
        let (tx, rx) = mpsc::channel();
        let second = std::thread::spawn(move || tx.send(super::run(|| 2)));
        let outcome = rx.recv_timeout(Duration::from_secs(20));
        release.send(()).unwrap();
        assert_eq!(first.join().unwrap(), 1);
        let _ = second.join();
        assert_eq!(outcome, Ok(2), "the second start waited behind the first");
    }

    /// Past the cap, a start waits for a free thread instead of failing.
    #[test]
    fn past_the_cap_a_start_waits_for_a_free_thread() {
        let results: Vec<_> = (0..super::MAX_THREADS * 2)
            .map(|i| std::thread::spawn(move || super::run(move || i)))
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .collect();
        assert_eq!(results, (0..super::MAX_THREADS * 2).collect::<Vec<_>>());
    }

    /// M4: what a fork holds (the descriptor list) is not what a pool call,
    /// a `kill_all` or the reaper needs: while it is held, they go on.
    #[test]
    fn the_state_is_free_while_the_descriptor_list_is_held() {
        // The epoch exists before the list is held (making it registers
        // descriptors).
        assert!(crate::os::cancel::current().is_some());
        let held = crate::os::fds::fds();
        let (tx, rx) = mpsc::channel();
        let other = std::thread::spawn(move || {
            let epoch = crate::os::cancel::current().is_some();
            let spawners = super::idle_count();
            let _ = tx.send((epoch, spawners));
        });
        let outcome = rx.recv_timeout(Duration::from_secs(20));
        drop(held);
        other.join().unwrap();
        assert!(
            matches!(outcome, Ok((true, _))),
            "the state waited for the descriptor list: {outcome:?}"
        );
    }
}
