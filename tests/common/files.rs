//! Scratch files, and the pid notes a child leaves for the test.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::proc::wait_until;

/// A file path unique to this test run, removed when dropped.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Scratch {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("rwt-test-{}-{tag}-{n}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        Scratch(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// The path as a `String`, to pass to a `#[timeout]` function.
    pub fn arg(&self) -> String {
        self.0.to_string_lossy().into_owned()
    }

    /// Lines written so far (none if the file does not exist).
    pub fn lines(&self) -> Vec<String> {
        std::fs::read_to_string(&self.0)
            .map(|s| s.lines().map(str::to_owned).collect())
            .unwrap_or_default()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Appends a line to a file (from inside a child: O_APPEND writes of one
/// line do not interleave).
pub fn append_line(path: &str, line: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(format!("{line}\n").as_bytes()).unwrap();
}

/// In a child: writes this process's pid to `path`, where the test finds
/// it (see [`read_pid`]) to check on the child later.
pub fn note_pid(path: impl AsRef<Path>) {
    std::fs::write(path, std::process::id().to_string()).unwrap();
}

/// In a child: [`note_pid`], then sleeps for `time` (a call that is to
/// time out, or be cancelled, while the test watches its child).
pub fn note_pid_and_sleep(path: impl AsRef<Path>, time: Duration) {
    note_pid(path);
    std::thread::sleep(time);
}

/// Waits (bounded) for a file to hold a pid, and returns it.
pub fn read_pid(path: &Path, limit: Duration) -> Option<u32> {
    let mut pid = None;
    wait_until(limit, || {
        pid = std::fs::read_to_string(path)
            .ok()
            .and_then(|s| s.lines().next().and_then(|l| l.trim().parse().ok()));
        pid.is_some()
    });
    pid
}
