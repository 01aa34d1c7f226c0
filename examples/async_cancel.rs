//! Cancelling an async call stops the work for real.
//!
//! A `spawn_blocking` task keeps running after its `JoinHandle` is dropped;
//! an rwt call's child is killed and reaped as soon as its future is
//! dropped. Here `tokio::time::timeout` gives up on a call after 300 ms
//! (the function's own deadline is much longer) and we look the child up
//! in /proc afterwards.
//!
//! Run with `cargo run --example async_cancel` (add `--features tokio` to
//! wait through tokio's reactor instead of rwt's poller thread).

use std::time::{Duration, Instant};

/// Reports its pid, then "works" (hangs) for a minute.
#[rwt::timeout(secs = 60.0)]
async fn slow_report(pid_file: String) -> String {
    std::fs::write(&pid_file, std::process::id().to_string()).unwrap();
    std::thread::sleep(Duration::from_secs(60));
    "report".to_owned()
}

/// Quick enough.
#[rwt::timeout(secs = 2.0)]
async fn quick_sum(numbers: Vec<u64>) -> u64 {
    numbers.iter().sum()
}

fn process_state(pid: u32) -> String {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat[stat.rfind(')').unwrap() + 2..].chars().next().unwrap();
            format!("still there (state {state})")
        }
        Err(_) => "gone (killed and reaped)".to_owned(),
    }
}

#[tokio::main]
async fn main() {
    let sum = quick_sum(vec![1, 2, 3]).await;
    println!("quick_sum([1, 2, 3]) = {sum:?}");

    let pid_file = std::env::temp_dir().join(format!("rwt-async-cancel-{}", std::process::id()));
    let start = Instant::now();
    let outcome = tokio::time::timeout(
        Duration::from_millis(300),
        slow_report(pid_file.to_string_lossy().into_owned()),
    )
    .await;
    println!(
        "slow_report: {} after {:.0?}",
        match outcome {
            Ok(r) => format!("{r:?}"),
            Err(_) => "cancelled by tokio::time::timeout".to_owned(),
        },
        start.elapsed()
    );
    let pid: u32 = std::fs::read_to_string(&pid_file)
        .expect("the child wrote its pid")
        .parse()
        .unwrap();
    let _ = std::fs::remove_file(&pid_file);
    println!("its child, pid {pid}: {}", process_state(pid));
}
