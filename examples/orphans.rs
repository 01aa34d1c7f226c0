//! `kill = false`: on timeout the child is left running and its pid is
//! reported, so the caller decides what to do with it.
//! `cargo run --example orphans`.
//!
//! Here the function ignores SIGTERM and never ends. Three attempts leave
//! three orphans; the caller then kills them with SIGKILL, and rwt's
//! reaper collects them (no zombie is left).

use std::time::{Duration, Instant};

use nix::sys::signal::{kill, signal, SigHandler, Signal};
use nix::unistd::Pid;
use rwt::timeout;

#[timeout(secs = 0.3, ntries = 3, kill = false)]
fn stubborn() -> u8 {
    // SAFETY: SIG_IGN installs no handler code.
    unsafe { signal(Signal::SIGTERM, SigHandler::SigIgn) }.expect("ignore SIGTERM");
    loop {
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// "running", "zombie" or "gone", from /proc.
fn describe(pid: u32) -> &'static str {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => "gone",
        Ok(stat) if stat.rsplit(')').next().is_some_and(|s| s.starts_with(" Z")) => "zombie",
        Ok(_) => "running",
    }
}

fn main() {
    let start = Instant::now();
    let err = stubborn().expect_err("stubborn never returns");
    println!("after {:?}: {err}", start.elapsed());

    let orphans = err.orphans().to_vec();
    for &pid in &orphans {
        println!("  orphan {pid}: {}", describe(pid));
    }

    println!("sending SIGTERM (they ignore it)...");
    for &pid in &orphans {
        let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
    }
    std::thread::sleep(Duration::from_millis(200));
    for &pid in &orphans {
        println!("  orphan {pid}: {}", describe(pid));
    }

    println!("sending SIGKILL...");
    for &pid in &orphans {
        let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
    }
    // rwt's reaper collects each orphan as it ends.
    let deadline = Instant::now() + Duration::from_secs(2);
    while orphans.iter().any(|&p| describe(p) != "gone") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    for &pid in &orphans {
        println!("  orphan {pid}: {}", describe(pid));
    }
}
