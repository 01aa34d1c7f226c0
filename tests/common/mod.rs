//! Process helpers shared by the behaviour tests.
#![allow(dead_code)] // each test binary uses its own subset

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
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

/// Environment variable that turns a test of this binary into a helper
/// process, see [`run_helper`].
pub const HELPER_ENV: &str = "RWT_TEST_HELPER";

/// Is this process running as the helper `role`?
pub fn is_helper(role: &str) -> bool {
    std::env::var(HELPER_ENV).as_deref() == Ok(role)
}

/// Starts this test binary again, running only `test` (which must check
/// [`is_helper`] for `role`), with its output not captured.
pub fn helper_command(test: &str, role: &str) -> std::process::Command {
    let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
    cmd.args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(HELPER_ENV, role);
    cmd
}

/// Runs `helper` (see [`helper_command`]) with stdin null, and returns
/// its exit status and output, each as text.
pub fn helper_output(
    mut helper: std::process::Command,
) -> (std::process::ExitStatus, String, String) {
    let out = helper.stdin(std::process::Stdio::null()).output().unwrap();
    (
        out.status,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs the helper `test` as `role` with its address space capped at
/// `bytes` (`RLIMIT_AS`), as [`helper_output`].
pub fn helper_output_with_address_space(
    test: &str,
    role: &str,
    bytes: u64,
) -> (std::process::ExitStatus, String, String) {
    use std::os::unix::process::CommandExt;
    let mut helper = helper_command(test, role);
    // SAFETY: setrlimit is async-signal-safe and touches no memory of the
    // parent's.
    unsafe {
        helper.pre_exec(move || {
            nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_AS, bytes, bytes)
                .map_err(std::io::Error::from)
        });
    }
    helper_output(helper)
}

/// Starts the helper `test` as `role`, with `RWT_TEST_PID_DIR` naming a
/// directory where each of its `calls` children writes its pid (file `0`,
/// `1`...); once all have, SIGKILLs the helper and checks that every child
/// dies within 1 s.
pub fn kill_helper_and_expect_its_children_gone(test: &str, role: &str, calls: usize) {
    let dir = Scratch::new(role);
    std::fs::create_dir_all(dir.path()).unwrap();
    let mut caller = helper_command(test, role)
        .env("RWT_TEST_PID_DIR", dir.path())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut cleanup = KillOnDrop(vec![caller.id()]);
    let children: Vec<u32> = (0..calls)
        .map(|i| {
            read_pid(&dir.path().join(i.to_string()), Duration::from_secs(20))
                .expect("call started")
        })
        .collect();
    cleanup.0.extend(&children);
    caller.kill().unwrap();
    caller.wait().unwrap();
    assert!(
        wait_until(Duration::from_secs(1), || children
            .iter()
            .all(|&p| !alive(p))),
        "children outlived their caller: {children:?}"
    );
    let _ = std::fs::remove_dir_all(dir.path());
}

/// Defines each `#[timeout(...)]` function (`fn` or `async fn`) three
/// times, in modules `fork`, `exec` and `pool`, identical but for the mode,
/// so one test body runs in every mode. Every function names at least one
/// option and a return type.
#[macro_export]
macro_rules! in_every_mode {
    ($($items:tt)*) => {
        $crate::mode_module!(fork, "fork", $($items)*);
        $crate::mode_module!(exec, "exec", $($items)*);
        $crate::mode_module!(pool, "pool", $($items)*);
    };
}

/// One module of [`in_every_mode!`].
#[doc(hidden)]
#[macro_export]
macro_rules! mode_module {
    ($module:ident, $mode:literal, $(
        $(#[doc = $doc:literal])*
        #[timeout($($opt:tt)+)]
        $($head:ident)+ ($($args:tt)*) -> $ret:ty $body:block
    )*) => {
        #[allow(dead_code)]
        pub mod $module {
            #[allow(unused_imports)]
            use super::*;
            $(
                $(#[doc = $doc])*
                #[rwt::timeout($($opt)+, mode = $mode)]
                pub $($head)+ ($($args)*) -> $ret $body
            )*
        }
    };
}

/// The mode a helper process runs in, if this process is the helper for
/// `role` (started as `<role>-fork`, `<role>-exec` or `<role>-pool`).
pub fn helper_mode(role: &str) -> Option<&'static str> {
    ["fork", "exec", "pool"]
        .into_iter()
        .find(|mode| is_helper(&format!("{role}-{mode}")))
}

/// In a helper for `$role`, the function `$name` of the helper's mode.
#[macro_export]
macro_rules! helper_fn {
    ($role:literal, $name:ident) => {
        $crate::common::helper_mode($role).map(|mode| match mode {
            "fork" => fork::$name,
            "exec" => exec::$name,
            _ => pool::$name,
        })
    };
}

/// A module `$name` with one test per mode, each calling
/// `$run("<role>-<mode>")` (for tests that start a helper process).
#[macro_export]
macro_rules! test_each_mode_role {
    ($name:ident, $run:ident, $role:literal) => {
        mod $name {
            #[test]
            fn fork() {
                super::$run(concat!($role, "-fork"));
            }
            #[test]
            fn exec() {
                super::$run(concat!($role, "-exec"));
            }
            #[test]
            fn pool() {
                super::$run(concat!($role, "-pool"));
            }
        }
    };
}

/// Runs `$body` twice, with `$m` naming the `fork` module, then `exec` (for
/// single-test binaries that cannot use `test_in_every_mode!`).
#[macro_export]
macro_rules! in_fork_and_exec {
    ($m:ident, $body:block) => {{
        {
            use fork as $m;
            $body
        }
        {
            use exec as $m;
            $body
        }
    }};
}

/// Turns each `fn name(m) { body }` into a module `name` with three tests,
/// `fork`, `exec` and `pool`, where `m` names the functions of that mode.
#[macro_export]
macro_rules! test_in_every_mode {
    ($(
        $(#[doc = $doc:literal])*
        fn $name:ident($m:ident) $body:block
    )*) => {
        $(
            $(#[doc = $doc])*
            mod $name {
                #[allow(unused_imports)]
                use super::*;
                #[test]
                fn fork() {
                    use super::fork as $m;
                    $body
                }
                #[test]
                fn exec() {
                    use super::exec as $m;
                    $body
                }
                #[test]
                fn pool() {
                    use super::pool as $m;
                    $body
                }
            }
        )*
    };
}

/// Runs a future to completion on this thread, parking between polls: an
/// executor that is not tokio, for async calls outside any runtime.
pub fn park_on<F: std::future::Future>(future: F) -> F::Output {
    use std::sync::Arc;
    use std::task::{Context, Poll, Wake, Waker};
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let mut future = std::pin::pin!(future);
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(v) = future.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

/// Polls a future once with a waker that does nothing; `true` if it is done.
pub fn poll_once<F: std::future::Future>(future: std::pin::Pin<&mut F>) -> bool {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    future.poll(&mut cx).is_ready()
}

/// Polls `call` to its end on a current-thread tokio runtime of its own.
pub fn on_tokio<F: std::future::Future>(call: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(call)
}
