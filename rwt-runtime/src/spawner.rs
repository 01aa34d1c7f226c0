//! The spawner thread: async calls start their children here.
//!
//! PR_SET_PDEATHSIG, which makes a child die with its caller, fires when the
//! *thread* that started the child ends, not the process. A sync call's
//! thread waits for its child, so that thread is the right one. An async
//! call's future moves between threads, and executors end threads on their
//! own (tokio's blocking threads after 10 s idle, `block_in_place`, a
//! runtime on a short-lived thread), so its child is started by this
//! thread instead, which lives as long as the process.
//!
//! A job runs while its caller waits, so it may borrow from the caller: the
//! function and its arguments stay where they are, and the child forked here
//! finds them in its copy of the caller's memory.

use std::panic::{self, AssertUnwindSafe};
use std::sync::mpsc;

use crate::registry;

/// A job, with its lifetime erased (see [`run`]).
type Job = Box<dyn FnOnce() + Send + 'static>;

/// The spawner's part of rwt's shared state.
#[derive(Default)]
pub(crate) struct State {
    jobs: Option<mpsc::Sender<(Job, mpsc::SyncSender<()>)>>,
}

impl State {
    pub(crate) const fn new() -> Self {
        State { jobs: None }
    }

    /// In a child process: the thread is the parent's, and does not exist
    /// here. A new one starts on first use.
    pub(crate) fn forget(&mut self) {
        if let Some(jobs) = self.jobs.take() {
            std::mem::forget(jobs);
        }
    }
}

/// Runs `job` on the spawner thread and returns its value (or resumes its
/// panic) once it is done. If the thread cannot be started, `job` runs on
/// the calling thread.
pub(crate) fn run<T: Send>(job: impl FnOnce() -> T + Send) -> T {
    let mut result: Option<std::thread::Result<T>> = None;
    let slot = &mut result;
    let task: Box<dyn FnOnce() + Send + '_> = Box::new(move || {
        *slot = Some(panic::catch_unwind(AssertUnwindSafe(job)));
    });
    // SAFETY: only the lifetime changes. The task borrows from this frame
    // (`result`, and whatever `job` borrows); it is either run here, or
    // sent to the spawner thread, which consumes it (running it, which
    // cannot unwind past `catch_unwind`) before it signals `done`, and this
    // function does not return before `done` is signalled or dropped.
    let task: Job = unsafe { std::mem::transmute::<Box<dyn FnOnce() + Send + '_>, Job>(task) };
    let (done, finished) = mpsc::sync_channel(1);
    match sender() {
        Some(jobs) => match jobs.send((task, done)) {
            Ok(()) => {
                let _ = finished.recv();
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

/// The spawner thread's queue, starting the thread on first use.
fn sender() -> Option<mpsc::Sender<(Job, mpsc::SyncSender<()>)>> {
    let mut shared = registry::lock();
    if shared.spawner.jobs.is_none() {
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
        shared.spawner.jobs = Some(tx);
    }
    shared.spawner.jobs.clone()
}
