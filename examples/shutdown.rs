//! A clean shutdown on SIGTERM: `cargo run --example shutdown`.
//!
//! Three calls are running (one per mode) when the process receives
//! SIGTERM, as it would from a service manager before a redeploy. A thread
//! that waits for the signal calls `rwt::kill_all()`: every call in flight
//! returns `Error::Cancelled` at once, its child killed and reaped, and the
//! program can exit with nothing left behind. (The example sends itself the
//! SIGTERM after half a second.)

use std::time::{Duration, Instant};

use nix::sys::signal::{SigSet, Signal};
use rwt::timeout;

#[timeout(secs = 60.0)]
fn batch_job_fork() -> u32 {
    std::thread::sleep(Duration::from_secs(60));
    1
}

#[timeout(secs = 60.0, mode = "exec")]
fn batch_job_exec() -> u32 {
    std::thread::sleep(Duration::from_secs(60));
    2
}

#[timeout(secs = 60.0, mode = "pool")]
fn batch_job_pool() -> u32 {
    std::thread::sleep(Duration::from_secs(60));
    3
}

fn main() {
    // Block SIGTERM in every thread (threads inherit the mask), and take it
    // in one thread with sigwait: no async-signal-safety concerns.
    let mut term = SigSet::empty();
    term.add(Signal::SIGTERM);
    term.thread_block().expect("block SIGTERM");
    let watcher = std::thread::spawn(move || {
        let sig = term.wait().expect("sigwait");
        println!("got {sig:?}: cancelling every call in flight");
        rwt::kill_all();
    });

    let start = Instant::now();
    let jobs = [
        ("fork", std::thread::spawn(batch_job_fork)),
        ("exec", std::thread::spawn(batch_job_exec)),
        ("pool", std::thread::spawn(batch_job_pool)),
    ];
    std::thread::sleep(Duration::from_millis(500));
    println!("3 jobs running; sending ourselves SIGTERM");
    nix::sys::signal::kill(nix::unistd::getpid(), Signal::SIGTERM).unwrap();
    watcher.join().unwrap();
    for (mode, job) in jobs {
        match job.join().unwrap() {
            Ok(v) => println!("  {mode}: finished with {v}"),
            Err(e) => println!("  {mode}: {e}"),
        }
    }
    println!("all back after {:?}; exiting", start.elapsed());
}
