//! rwt in a minute: `cargo run --example quickstart`.
//!
//! Four calls of functions marked `#[rwt::timeout]`: one finishes in time,
//! one is too slow and is killed, one panics, one fails and is retried.

use std::time::{Duration, Instant};

use rwt::timeout;

/// Finishes well within its deadline.
#[timeout(secs = 2.0)]
fn square(x: u64) -> u64 {
    x * x
}

/// Needs 0.5 s of work but gets 0.2 s.
#[timeout(secs = 0.2)]
fn slow_square(x: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(500));
    x * x
}

/// Panics on input it cannot parse.
#[timeout(secs = 1.0)]
fn parse_port(text: String) -> u16 {
    text.parse().expect("not a port number")
}

/// Fails on its first attempt and succeeds on the second. Each attempt is a
/// new child process, so it counts attempts in a file.
#[timeout(secs = 1.0, ntries = 3)]
fn flaky_fetch(counter: String) -> Result<String, String> {
    let attempt = std::fs::read_to_string(&counter)
        .map(|s| s.len())
        .unwrap_or(0)
        + 1;
    std::fs::write(&counter, "x".repeat(attempt)).map_err(|e| e.to_string())?;
    if attempt < 2 {
        Err(format!("attempt {attempt}: server busy"))
    } else {
        Ok(format!("data (on attempt {attempt})"))
    }
}

fn main() {
    println!("1. A call that finishes in time:");
    let start = Instant::now();
    match square(12) {
        Ok(n) => println!("   square(12) = {n}, in {:?}", start.elapsed()),
        Err(e) => println!("   unexpected: {e}"),
    }

    println!("2. A call that needs 0.5 s but has a 0.2 s deadline:");
    let start = Instant::now();
    match slow_square(12) {
        Ok(n) => println!("   unexpected: {n}"),
        Err(e) => println!("   {e}, back after {:?}", start.elapsed()),
    }

    println!("3. A panic in the child comes back as an error:");
    match parse_port("eighty".into()) {
        Ok(p) => println!("   unexpected: {p}"),
        Err(e) => println!("   {e}"),
    }

    println!("4. An `Err` is retried (ntries = 3):");
    let counter = std::env::temp_dir().join(format!("rwt-quickstart-{}", std::process::id()));
    let counter_arg = counter.to_string_lossy().into_owned();
    match flaky_fetch(counter_arg) {
        Ok(Ok(data)) => println!("   got {data}"),
        Ok(Err(e)) => println!("   every attempt failed, the last with: {e}"),
        Err(e) => println!("   {e}"),
    }
    let _ = std::fs::remove_file(counter);

    println!("Every call came back on time, and no child is left running.");
}
