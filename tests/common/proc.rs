//! What a test reads of processes in /proc, and a guard that kills what a
//! failing test leaves.

use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// State letter of a process from /proc (`R`, `S`, `Z`...), or `None` once it
/// is gone (reaped).
pub fn state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The name is in parentheses and may contain spaces: state follows the
    // last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.chars().next()
}

/// Running (or sleeping, stopped): exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    matches!(state(pid), Some(s) if s != 'Z' && s != 'X')
}

/// Gone from the process table: reaped, not even a zombie.
pub fn reaped(pid: u32) -> bool {
    state(pid).is_none()
}

/// Waits up to `limit` for `cond`; returns whether it came true. For events
/// outside the test's control (a process ending), never to hide a race.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Zombie children of this process.
pub fn zombie_children() -> Vec<u32> {
    let me = std::process::id().to_string();
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some(close) = stat.rfind(')') else {
            continue;
        };
        let mut fields = stat[close + 2..].split(' ');
        let (Some(st), Some(ppid)) = (fields.next(), fields.next()) else {
            continue;
        };
        if st == "Z" && ppid == me {
            out.push(pid);
        }
    }
    out
}

/// Open file descriptors of this process.
pub fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Resident size of this process, KiB.
pub fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// The lowest descriptor number not in use: with `RLIMIT_NOFILE` there, no
/// new descriptor can be made (the limit caps numbers, not the count).
pub fn lowest_free_fd() -> u64 {
    let used: Vec<u64> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    // The descriptor read_dir held is closed by now: its number is free.
    (0..)
        .find(|n| {
            !used.contains(n) || std::fs::symlink_metadata(format!("/proc/self/fd/{n}")).is_err()
        })
        .unwrap()
}

/// Threads of this process.
pub fn thread_count() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// SIGKILLs the pids it holds when dropped, so a failing test leaves no
/// process behind.
#[derive(Default)]
pub struct KillOnDrop(pub Vec<u32>);

impl KillOnDrop {
    pub fn push(&mut self, pid: u32) {
        self.0.push(pid);
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        for &pid in &self.0 {
            if alive(pid) {
                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
            }
        }
    }
}
