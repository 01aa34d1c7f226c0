//! `async fn`s under `#[timeout]`, in every mode: values and failures come
//! back as for sync functions; the caller's future never blocks its thread;
//! dropping it (tokio's `timeout`, `select!`, `abort`, runtime shutdown, a
//! plain drop) kills and reaps the child; a call started on a thread that
//! then ends is not killed with it; the children die with the process.
//!
//! Built with and without the `tokio` feature (see the README's test
//! command): inside a tokio runtime, with the feature, calls wait through
//! tokio's reactor; elsewhere through rwt's poller thread.

mod common;

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use common::{append_line, park_on, poll_once, read_pid, reaped, wait_until, KillOnDrop, Scratch};
use rwt::Error;

/// A future woken by another thread after `ms`: it needs nothing from the
/// executor but its waker, so it runs on any.
struct ThreadTimer {
    ms: u64,
    started: bool,
    done: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

fn thread_timer(ms: u64) -> ThreadTimer {
    ThreadTimer {
        ms,
        started: false,
        done: Default::default(),
    }
}

impl Future for ThreadTimer {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        use std::sync::atomic::Ordering;
        if self.done.load(Ordering::SeqCst) {
            return Poll::Ready(());
        }
        if !self.started {
            self.started = true;
            let (ms, done, waker) = (self.ms, self.done.clone(), cx.waker().clone());
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(ms));
                done.store(true, Ordering::SeqCst);
                waker.wake();
            });
        }
        Poll::Pending
    }
}

in_every_mode! {
    #[timeout(secs = 10.0)]
    async fn add(a: u64, b: u64) -> u64 {
        a + b
    }

    #[timeout(secs = 10.0)]
    async fn length(text: &str) -> usize {
        text.len()
    }

    #[timeout(secs = 10.0)]
    async fn waits_then(ms: u64, value: u32) -> u32 {
        // Not Send, held across an await: fine, the body runs on a
        // current-thread executor in the child.
        let local = Rc::new(value);
        thread_timer(ms).await;
        *local
    }

    #[timeout(secs = 10.0)]
    async fn panics() -> u8 {
        thread_timer(1).await;
        panic!("async boom")
    }

    #[timeout(secs = 10.0)]
    async fn aborts() -> u8 {
        std::process::abort()
    }

    #[timeout(secs = 10.0, ntries = 3)]
    async fn fallible(ok: bool) -> Result<u8, String> {
        if ok { Ok(1) } else { Err("no".to_owned()) }
    }

    #[timeout(secs = 0.3)]
    async fn hangs() -> u8 {
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    }

    #[timeout(secs = 0.2, ntries = 3)]
    async fn counts_attempts(file: String) -> u8 {
        append_line(&file, &std::process::id().to_string());
        std::thread::sleep(Duration::from_secs(30));
        0
    }

    #[timeout(secs = 60.0)]
    async fn lingers(pid_file: String) -> u8 {
        common::note_pid_and_sleep(&pid_file, Duration::from_secs(60));
        0
    }

    #[timeout(secs = 60.0)]
    async fn lingers_with_a_grandchild(pid_file: String) -> u8 {
        let mut grandchild = std::process::Command::new("sleep").arg("60").spawn().unwrap();
        let pids = format!("{}\n{}", std::process::id(), grandchild.id());
        std::fs::write(&pid_file, pids).unwrap();
        std::thread::sleep(Duration::from_secs(60));
        let _ = grandchild.wait();
        0
    }

    #[timeout(secs = 10.0)]
    async fn started_then(pid_file: String, ms: u64, value: u8) -> u8 {
        common::note_pid_and_sleep(&pid_file, Duration::from_millis(ms));
        value
    }

    #[timeout(secs = 10.0)]
    async fn sleeps_then(ms: u64, value: u8) -> u8 {
        std::thread::sleep(Duration::from_millis(ms));
        value
    }

    #[timeout(secs = 10.0)]
    async fn uses_tokio(ms: u64) -> u64 {
        #[cfg(feature = "tokio")]
        {
            // tokio's timer and spawn work in the child.
            tokio::time::sleep(Duration::from_millis(ms)).await;
            tokio::spawn(async move { ms + 1 }).await.unwrap()
        }
        #[cfg(not(feature = "tokio"))]
        {
            thread_timer(ms).await;
            ms + 1
        }
    }
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn multi_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Waits for the child of a `lingers` call to write its pid.
async fn child_pid(file: &Scratch) -> u32 {
    for _ in 0..2000 {
        if let Some(pid) = read_pid(file.path(), Duration::ZERO) {
            return pid;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("the child never started")
}

/// The child of a cancelled call is gone, not even a zombie, soon after.
fn assert_gone(pid: u32) {
    assert!(
        wait_until(Duration::from_secs(2), || reaped(pid)),
        "child {pid} outlived its dropped call"
    );
}

test_in_every_mode! {
    /// A runtime built without `enable_io` has no reactor for rwt: the
    /// call waits through rwt's poller instead (tokio would panic).
    fn a_runtime_without_io_still_waits(m) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        runtime.block_on(async {
            assert_eq!(m::add(1, 2).await.unwrap(), 3);
            assert_eq!(m::waits_then(20, 7).await.unwrap(), 7);
        });
    }

    fn values_and_failures_come_back_as_for_sync_functions(m) {
        current_thread().block_on(async {
            assert_eq!(m::add(1, 2).await.unwrap(), 3);
            assert_eq!(m::length("hello").await.unwrap(), 5);
            assert_eq!(m::waits_then(20, 7).await.unwrap(), 7);
            assert_eq!(m::uses_tokio(20).await.unwrap(), 21);
            assert_eq!(m::fallible(true).await.unwrap(), Ok(1));
            // The function's own `Err` after three tries is its value.
            assert_eq!(m::fallible(false).await.unwrap(), Err("no".to_owned()));
            match m::panics().await {
                Err(Error::Panicked { message, .. }) => {
                    assert!(message.starts_with("async boom ("), "{message}");
                }
                other => panic!("{other:?}"),
            }
            match m::aborts().await {
                Err(Error::Crashed { signal: Some(6), .. }) => {}
                other => panic!("{other:?}"),
            }
        });
    }

    fn outside_any_runtime_calls_work_on_another_executor(m) {
        assert_eq!(park_on(m::add(2, 3)).unwrap(), 5);
        assert_eq!(park_on(m::waits_then(20, 9)).unwrap(), 9);
        let start = Instant::now();
        assert!(park_on(m::hangs()).unwrap_err().is_timeout());
        assert!(start.elapsed() < Duration::from_millis(800), "{:?}", start.elapsed());
    }

    fn a_timeout_returns_on_time_and_retries_as_told(m) {
        current_thread().block_on(async {
            let start = Instant::now();
            let e = m::hangs().await.unwrap_err();
            let elapsed = start.elapsed();
            assert!(e.is_timeout(), "{e}");
            assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
            assert!(elapsed < Duration::from_millis(800), "{elapsed:?}");

            let file = Scratch::new("attempts");
            let result = m::counts_attempts(file.arg()).await;
            let pids: Vec<u32> = file.lines().iter().map(|l| l.parse().unwrap()).collect();
            let _cleanup = KillOnDrop(pids.clone());
            match result {
                Err(Error::Timeout { attempts: 3, killed: true, .. }) => {}
                other => panic!("{other:?}"),
            }
            assert_eq!(pids.len(), 3);
            // Killed and reaped by the time the call returned.
            for pid in pids {
                assert!(reaped(pid), "attempt child {pid} left behind");
            }
        });
    }

    fn a_ticker_in_the_same_runtime_keeps_ticking_during_a_call(m) {
        // A current-thread runtime: one blocked poll would stop the ticker.
        current_thread().block_on(async {
            let ticks = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
            let counter = ticks.clone();
            let ticker = tokio::spawn(async move {
                let mut interval = tokio::time::interval(Duration::from_millis(10));
                loop {
                    interval.tick().await;
                    counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
            });
            tokio::task::yield_now().await;
            let before = ticks.load(std::sync::atomic::Ordering::SeqCst);
            assert_eq!(m::sleeps_then(400, 1).await.unwrap(), 1);
            let during = ticks.load(std::sync::atomic::Ordering::SeqCst) - before;
            ticker.abort();
            // About 40 at 10 ms; a blocked thread would give 0 or 1.
            assert!(during >= 10, "only {during} ticks during a 400 ms call");
        });
    }

    fn many_calls_from_spawned_tasks_run_at_once(m) {
        multi_thread().block_on(async {
            let start = Instant::now();
            let tasks: Vec<_> = (0..6u8)
                .map(|i| tokio::spawn(m::sleeps_then(300, i)))
                .collect();
            for (i, t) in tasks.into_iter().enumerate() {
                assert_eq!(t.await.unwrap().unwrap(), i as u8);
            }
            // Six 300 ms calls one after the other would take 1.8 s.
            assert!(start.elapsed() < Duration::from_millis(1500), "{:?}", start.elapsed());
        });
    }

    fn tokio_timeout_kills_the_child(m) {
        let file = Scratch::new("timeout");
        let mut cleanup = KillOnDrop::default();
        current_thread().block_on(async {
            let call = tokio::time::timeout(Duration::from_secs(1), m::lingers(file.arg()));
            assert!(call.await.is_err(), "the call should have been cancelled");
        });
        let pid = read_pid(file.path(), Duration::ZERO).expect("child started");
        cleanup.push(pid);
        assert_gone(pid);
    }

    fn select_kills_the_losing_call(m) {
        let file = Scratch::new("select");
        let mut cleanup = KillOnDrop::default();
        let pid = current_thread().block_on(async {
            let call = m::lingers(file.arg());
            tokio::select! {
                r = call => panic!("{r:?}"),
                pid = child_pid(&file) => pid,
            }
        });
        cleanup.push(pid);
        assert_gone(pid);
    }

    fn aborting_the_task_kills_the_child(m) {
        let file = Scratch::new("abort");
        let mut cleanup = KillOnDrop::default();
        let pid = multi_thread().block_on(async {
            let task = tokio::spawn(m::lingers(file.arg()));
            let pid = child_pid(&file).await;
            task.abort();
            assert!(task.await.unwrap_err().is_cancelled());
            pid
        });
        cleanup.push(pid);
        assert_gone(pid);
    }

    fn shutting_the_runtime_down_kills_the_child(m) {
        let file = Scratch::new("shutdown");
        let mut cleanup = KillOnDrop::default();
        let runtime = multi_thread();
        runtime.spawn(m::lingers(file.arg()));
        let pid = read_pid(file.path(), Duration::from_secs(10)).expect("child started");
        cleanup.push(pid);
        drop(runtime);
        assert_gone(pid);
    }

    fn dropping_the_future_anywhere_kills_the_child_and_its_group(m) {
        let file = Scratch::new("drop");
        let mut cleanup = KillOnDrop::default();
        let mut call = Box::pin(m::lingers_with_a_grandchild(file.arg()));
        // The first poll starts the child; no runtime anywhere.
        assert!(!poll_once(call.as_mut()));
        let mut pids = Vec::new();
        wait_until(Duration::from_secs(10), || {
            pids = file.lines().iter().filter_map(|l| l.parse::<u32>().ok()).collect();
            pids.len() == 2
        });
        assert_eq!(pids.len(), 2, "child and grandchild started");
        cleanup.0.extend(&pids);
        drop(call);
        // The child is ours to reap; the grandchild, reparented, is gone
        // from the running.
        assert_gone(pids[0]);
        assert!(
            wait_until(Duration::from_secs(2), || !common::alive(pids[1])),
            "the grandchild outlived the dropped call"
        );
    }

    fn a_call_started_on_a_thread_that_ends_is_not_killed_with_it(m) {
        // PR_SET_PDEATHSIG fires when the thread that started a child ends:
        // the child must not be started by the polling thread.
        let file = Scratch::new("short-lived");
        let (path, pid_file) = (file.arg(), file.path().to_owned());
        let (mut call, pid) = std::thread::spawn(move || {
            let mut call = Box::pin(m::started_then(path, 500, 42));
            assert!(!poll_once(call.as_mut()));
            // The child is running its body, so past any PR_SET_PDEATHSIG it
            // arms, before this thread ends.
            let pid = read_pid(&pid_file, Duration::from_secs(10)).expect("child started");
            (call, pid)
        })
        .join()
        .unwrap();
        let mut cleanup = KillOnDrop(vec![pid]);
        // That thread is gone; the call goes on elsewhere.
        assert_eq!(park_on(call.as_mut()).unwrap(), 42);
        // Done: in pool mode that pid is a worker, back in the pool.
        cleanup.0.clear();
    }
}

/// The helper: async calls in flight on a tokio runtime, until killed.
#[test]
fn helper_async_calls_in_flight() {
    let Some(mode) = common::helper_mode("async") else {
        return;
    };
    let dir = std::env::var("RWT_TEST_PID_DIR").unwrap();
    multi_thread().block_on(async move {
        let calls: Vec<_> = (0..4)
            .map(|i| {
                let file = format!("{dir}/{i}");
                tokio::spawn(async move {
                    match mode {
                        "fork" => fork::lingers(file).await,
                        "exec" => exec::lingers(file).await,
                        _ => pool::lingers(file).await,
                    }
                })
            })
            .collect();
        for c in calls {
            let _ = c.await;
        }
    });
}

fn caller_killed_with_async_calls_in_flight(role: &str) {
    common::kill_helper_and_expect_its_children_gone("helper_async_calls_in_flight", role, 4);
}

test_each_mode_role!(
    the_children_of_async_calls_die_with_the_caller,
    caller_killed_with_async_calls_in_flight,
    "async"
);
