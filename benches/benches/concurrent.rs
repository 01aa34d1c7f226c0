//! Sixteen calls at once from a caller holding 1 GiB: how far past its own
//! deadline each call returns, per mode. Every call's child sleeps far past
//! a 50 ms deadline, so each call ends as a timeout, and what it measures
//! is how long it waited for other calls (a fork of the large caller in
//! progress, a lock, a pool or spawner thread) on top of its own kill.
//!
//! `cargo bench --manifest-path benches/Cargo.toml --bench concurrent`

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

mod common;

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
    for (mode, f) in common::SLEEPERS {
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
    std::hint::black_box(&held);
}
