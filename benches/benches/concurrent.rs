//! Sixteen calls at once from a caller holding 1 GiB: how far past its own
//! deadline each call returns, per mode. Every call's child sleeps far past
//! a 50 ms deadline, so each call ends as a timeout, and what it measures
//! is how long it waited for other calls (a fork of the large caller in
//! progress, a lock, a pool or spawner thread) on top of its own kill.
//!
//! The same with async calls (each polled on a thread of its own): their
//! children are started by rwt's spawner threads, not by the calling
//! thread, so they also show whether calls queue there.
//!
//! Last, the review's mixed case: one thread loops fork-mode calls of the
//! large caller while another makes pool calls of a body that returns at
//! once; the pool calls' latencies show whether they wait for the forks.
//!
//! `cargo bench --manifest-path benches/Cargo.toml --bench concurrent`

use std::future::Future;
use std::sync::{Arc, Barrier};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use rwt::timeout;

mod common;

#[timeout(secs = 0.05)]
async fn fork_sleeps_async() -> u8 {
    std::thread::sleep(Duration::from_secs(10));
    0
}

#[timeout(secs = 0.05, mode = "exec")]
async fn exec_sleeps_async() -> u8 {
    std::thread::sleep(Duration::from_secs(10));
    0
}

#[timeout(secs = 0.05, mode = "pool")]
async fn pool_sleeps_async() -> u8 {
    std::thread::sleep(Duration::from_secs(10));
    0
}

/// Wakes the thread that polls.
struct Unpark(std::thread::Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Polls `fut` to its end on this thread.
fn block_on<F: Future>(fut: F) -> F::Output {
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

fn fork_async() -> Result<u8, rwt::Error> {
    block_on(fork_sleeps_async())
}

fn exec_async() -> Result<u8, rwt::Error> {
    block_on(exec_sleeps_async())
}

fn pool_async() -> Result<u8, rwt::Error> {
    block_on(pool_sleeps_async())
}

#[timeout(secs = 5.0)]
fn fork_quick() -> u8 {
    1
}

#[timeout(secs = 0.05, mode = "pool")]
fn pool_quick() -> u8 {
    2
}

/// Latencies of `CALLS` pool calls made while another thread loops
/// fork-mode calls (`forking`) or does nothing.
fn pool_beside_forks(forking: bool) -> Vec<Duration> {
    const CALLS: usize = 300;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let forker = forking.then(|| {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut forks = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                assert_eq!(fork_quick().unwrap(), 1);
                forks += 1;
            }
            forks
        })
    });
    assert_eq!(pool_quick().unwrap(), 2);
    let mut all: Vec<Duration> = (0..CALLS)
        .map(|_| {
            let t = Instant::now();
            assert_eq!(pool_quick().unwrap(), 2);
            let took = t.elapsed();
            // Spread over the forks, not bunched between two of them.
            std::thread::sleep(Duration::from_millis(1));
            took
        })
        .collect();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    if let Some(f) = forker {
        let forks = f.join().unwrap();
        assert!(forks > 0);
    }
    all.sort();
    all
}

const ASYNC_SLEEPERS: [(&str, common::Sleeper); 3] = [
    ("fork, async", fork_async),
    ("exec, async", exec_async),
    ("pool, async", pool_async),
];

const CALLERS: usize = 16;
const ROUNDS: usize = 8;
const DEADLINE: Duration = Duration::from_millis(50);

/// Time past the deadline of every call of `ROUNDS` rounds of `CALLERS`
/// calls started together.
fn past_deadline(f: fn() -> Result<u8, rwt::Error>) -> Vec<Duration> {
    let mut all = Vec::new();
    for _ in 0..ROUNDS {
        let start = Arc::new(Barrier::new(CALLERS));
        let threads: Vec<_> = (0..CALLERS)
            .map(|_| {
                let start = Arc::clone(&start);
                std::thread::spawn(move || {
                    start.wait();
                    let t = Instant::now();
                    assert!(f().unwrap_err().is_timeout());
                    t.elapsed().saturating_sub(DEADLINE)
                })
            })
            .collect();
        all.extend(threads.into_iter().map(|t| t.join().unwrap()));
    }
    all.sort();
    all
}

fn main() {
    let mut held = vec![0u8; 1 << 30];
    for i in (0..held.len()).step_by(4096) {
        held[i] = 1;
    }
    std::hint::black_box(&mut held);
    println!(
        "{CALLERS} calls at once, {ROUNDS} rounds, caller holding 1 GiB; \
         time past each call's 50 ms deadline"
    );
    println!("| mode | p50 | p90 | p99 | max |\n|---|---|---|---|---|");
    for (mode, f) in common::SLEEPERS.into_iter().chain(ASYNC_SLEEPERS) {
        let v = past_deadline(f);
        let at = |q: usize| v[(v.len() - 1) * q / 100];
        println!(
            "| {mode} | {:.1?} | {:.1?} | {:.1?} | {:.1?} |",
            at(50),
            at(90),
            at(99),
            v[v.len() - 1]
        );
    }
    println!(
        "\npool calls (a body that returns at once) while another thread loops \
         fork-mode calls of the same 1 GiB caller; latency of each call"
    );
    println!("| beside | p50 | p90 | p99 | max |\n|---|---|---|---|---|");
    for (beside, forking) in [("nothing", false), ("fork-mode calls", true)] {
        let v = pool_beside_forks(forking);
        let at = |q: usize| v[(v.len() - 1) * q / 100];
        println!(
            "| {beside} | {:.1?} | {:.1?} | {:.1?} | {:.1?} |",
            at(50),
            at(90),
            at(99),
            v[v.len() - 1]
        );
    }
    std::hint::black_box(&held);
}
