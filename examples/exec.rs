//! Exec mode in a multi-threaded program: `cargo run --example exec`.
//!
//! Another thread holds a lock nearly all the time. A forked child would
//! inherit that lock held, forever; an exec child is a fresh run of this
//! program (entered before `main`, which it never runs), so it starts with
//! every lock free.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rwt::timeout;

/// Shared by the threads of this program.
static LEDGER: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// Takes the lock the busy thread keeps taking, and reports who ran it.
#[timeout(secs = 2.0, mode = "exec")]
fn record(entry: u32) -> String {
    LEDGER.lock().unwrap().push(entry);
    format!("entry {entry} recorded by child {}", std::process::id())
}

/// Needs a second but is given a tenth of one.
#[timeout(secs = 0.1, mode = "exec")]
fn too_slow() -> u32 {
    std::thread::sleep(Duration::from_secs(1));
    0
}

fn main() {
    println!("main runs once, in process {}", std::process::id());
    let stop = Arc::new(AtomicBool::new(false));
    let busy = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let mut ledger = LEDGER.lock().unwrap();
                ledger.push(0);
                ledger.clear();
                std::thread::sleep(Duration::from_micros(200));
            }
        })
    };
    let start = Instant::now();
    for i in 1..=5 {
        match record(i) {
            Ok(line) => println!("  {line}"),
            Err(e) => println!("  {e}"),
        }
    }
    println!(
        "5 calls while another thread kept the lock busy: {:?}",
        start.elapsed()
    );
    match too_slow() {
        Ok(v) => println!("unexpected: {v}"),
        Err(e) => println!("{e}"),
    }
    stop.store(true, Ordering::Relaxed);
    busy.join().unwrap();
}
