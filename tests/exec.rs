//! What exec mode adds: the child is a fresh run of this binary, entered
//! before `main` (libtest never starts in it), safe whatever the caller's
//! threads hold, sharing nothing with the caller but fds 0, 1, 2 and its
//! channel; and an entry that a stray environment cannot drive.

mod common;

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rwt::timeout;

static SET_BY_CALLER: AtomicU32 = AtomicU32::new(0);

#[timeout(secs = 5.0, mode = "exec")]
fn read_static() -> u32 {
    SET_BY_CALLER.load(Ordering::SeqCst)
}

#[test]
fn a_static_set_by_the_caller_is_not_seen_by_the_child() {
    SET_BY_CALLER.store(42, Ordering::SeqCst);
    assert_eq!(read_static().unwrap(), 0);
}

#[timeout(secs = 5.0, mode = "exec")]
fn open_fds() -> Vec<i32> {
    let mut fds: Vec<i32> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    fds.sort_unstable();
    // read_dir's own descriptor is gone once it is dropped; list again.
    fds.retain(|&fd| std::fs::metadata(format!("/proc/self/fd/{fd}")).is_ok());
    fds
}

#[test]
fn the_child_sees_only_0_1_2_and_its_channel() {
    // Descriptors without close-on-exec, as C libraries leave them.
    // SAFETY: plain open(2) and socket(2) calls; the results are owned below.
    let (file, sock) = unsafe {
        let f = nix::libc::open(c"/dev/null".as_ptr(), nix::libc::O_RDONLY);
        let s = nix::libc::socket(nix::libc::AF_INET, nix::libc::SOCK_STREAM, 0);
        assert!(f >= 0 && s >= 0);
        (OwnedFd::from_raw_fd(f), OwnedFd::from_raw_fd(s))
    };
    let seen = open_fds().unwrap();
    drop((file, sock));
    assert_eq!(seen, vec![0, 1, 2, 3]);
}

static USER_LOCK: Mutex<u32> = Mutex::new(0);

#[timeout(secs = 2.0, mode = "exec")]
fn prints_and_locks(i: u32) -> u32 {
    let mut guard = USER_LOCK.lock().unwrap();
    *guard += i;
    println!("exec child {i} printing");
    i
}

#[test]
fn other_threads_holding_stdout_and_a_mutex_do_not_matter() {
    let stop = Arc::new(AtomicBool::new(false));
    let hogs: Vec<_> = (0..2)
        .map(|n| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if n == 0 {
                        let _out = std::io::stdout().lock();
                        std::hint::spin_loop();
                    } else {
                        let _held = USER_LOCK.lock().unwrap();
                        std::hint::spin_loop();
                    }
                }
            })
        })
        .collect();
    let results: Vec<_> = (0..100).map(prints_and_locks).collect();
    stop.store(true, Ordering::Relaxed);
    for h in hogs {
        h.join().unwrap();
    }
    for (i, r) in results.into_iter().enumerate() {
        assert_eq!(r.unwrap(), i as u32);
    }
}

#[timeout(secs = 5.0, mode = "exec")]
fn square(x: u64) -> u64 {
    x * x
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn from_a_multi_threaded_runtime_while_it_keeps_ticking() {
    let ticks = Arc::new(AtomicU32::new(0));
    let ticker = {
        let ticks = Arc::clone(&ticks);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_millis(10));
            loop {
                every.tick().await;
                ticks.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let start = Instant::now();
    let calls: Vec<_> = (0..16u64)
        .map(|i| tokio::task::spawn_blocking(move || square(i)))
        .collect();
    for (i, call) in calls.into_iter().enumerate() {
        assert_eq!(call.await.unwrap().unwrap(), (i * i) as u64);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let elapsed = start.elapsed();
    ticker.abort();
    // A 10 ms ticker that kept going: at least half its ticks.
    let expected = elapsed.as_millis() as u32 / 10;
    assert!(
        ticks.load(Ordering::Relaxed) >= expected / 2,
        "{ticks:?} in {elapsed:?}"
    );
}

#[timeout(secs = 10.0, mode = "exec")]
fn runs_this_binary_again() -> (bool, bool, bool) {
    let scrubbed = std::env::var_os("RWT_EXEC_CHILD").is_none();
    let out = Command::new(std::env::current_exe().unwrap())
        .arg("--list")
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&out.stdout).contains(": test");
    (scrubbed, out.status.success(), listed)
}

#[test]
fn what_the_child_starts_runs_main_normally_without_our_variable() {
    assert_eq!(runs_this_binary_again().unwrap(), (true, true, true));
}

// --- The stray-environment battery: runs of this binary with the variable
// set that rwt did not start. None may run a function or `main` (libtest,
// asked to `--list`, would print the tests).

const NONCE: &str = "00112233445566778899aabbccddeeff";

/// Runs this binary with `--list`, the variable set to `value`, and `setup`
/// arranging fd 3 in the child. Returns exit code, stdout, stderr, time.
fn stray_run(
    value: &str,
    setup: impl FnMut() -> std::io::Result<()> + Send + Sync + 'static,
) -> (Option<i32>, String, String, Duration) {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.arg("--list").env("RWT_EXEC_CHILD", value);
    // SAFETY: `setup` only calls dup2/close, which are async-signal-safe.
    unsafe { cmd.pre_exec(setup) };
    let start = Instant::now();
    let out = cmd.output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        start.elapsed(),
    )
}

fn assert_refused(run: (Option<i32>, String, String, Duration), why: &str) {
    let (code, stdout, stderr, elapsed) = run;
    assert_eq!(code, Some(120), "stdout: {stdout}\nstderr: {stderr}");
    assert!(!stdout.contains(": test"), "main ran: {stdout}");
    assert!(stderr.contains(why), "{stderr}");
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
}

fn dup_to_3(fd: i32) -> impl FnMut() -> std::io::Result<()> + Send + Sync + 'static {
    move || {
        // SAFETY: dup2/fcntl on descriptors of this (child) process. dup2
        // onto itself keeps close-on-exec, so clear it then.
        let ok = unsafe {
            if fd == 3 {
                nix::libc::fcntl(3, nix::libc::F_SETFD, 0)
            } else {
                nix::libc::dup2(fd, 3)
            }
        };
        if ok < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }
}

#[test]
fn stray_without_fd_3() {
    let close3 = || {
        // SAFETY: closing fd 3 in the child before exec.
        unsafe { nix::libc::close(3) };
        Ok(())
    };
    assert_refused(stray_run(&format!("1:{NONCE}"), close3), "fd 3 is not open");
}

#[test]
fn stray_with_a_malformed_value() {
    assert_refused(stray_run("yes", || Ok(())), "its value is malformed");
}

#[test]
fn stray_with_dev_null_at_fd_3() {
    let null = std::fs::File::open("/dev/null").unwrap();
    let fd = null.as_raw_fd();
    assert_refused(
        stray_run(&format!("1:{NONCE}"), dup_to_3(fd)),
        "fd 3 is not a socket",
    );
}

#[test]
fn stray_with_a_listening_socket_at_fd_3() {
    let path = common::Scratch::new("listener");
    let listener = std::os::unix::net::UnixListener::bind(path.path()).unwrap();
    let fd = listener.as_raw_fd();
    assert_refused(
        stray_run(&format!("1:{NONCE}"), dup_to_3(fd)),
        "fd 3 is a listening socket",
    );
}

#[test]
fn stray_with_a_socket_whose_peer_is_not_the_parent() {
    // The peer is this process; the binary's parent is a shell in between.
    let (_ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
    let fd = theirs.as_raw_fd();
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "\"$0\" --list; exit $?"])
        .arg(std::env::current_exe().unwrap())
        .env("RWT_EXEC_CHILD", format!("1:{NONCE}"));
    // SAFETY: dup2 only, in the child before exec.
    unsafe { cmd.pre_exec(dup_to_3(fd)) };
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(120), "{stderr}");
    assert!(stderr.contains("not the parent"), "{stderr}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains(": test"));
}

/// A handshake as the caller writes it, then one request's header (a
/// function id, the arguments' length, and no memory or CPU limit), in the
/// runtime's own encoding.
fn handshake(nonce: &str, exe: (u64, u64), id: u64, args_len: u64) -> Vec<u8> {
    let mut bytes = [0u8; 16];
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = u8::from_str_radix(&nonce[2 * i..2 * i + 2], 16).unwrap();
    }
    rwt::__private::caller_bytes(bytes, exe, id, args_len)
}

fn this_exe() -> (u64, u64) {
    let st = nix::sys::stat::stat("/proc/self/exe").unwrap();
    (st.st_dev, st.st_ino)
}

/// Starts this binary as if rwt had (fd 3 a socketpair to us, our child),
/// sends `bytes`, and returns exit code, stderr and whatever it answered.
fn handshake_run(bytes: Vec<u8>) -> (Option<i32>, String, Vec<u8>) {
    let (mut ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
    let fd = theirs.as_raw_fd();
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.arg("--list")
        .env("RWT_EXEC_CHILD", format!("1:{NONCE}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: dup2 only, in the child before exec.
    unsafe { cmd.pre_exec(dup_to_3(fd)) };
    let child = cmd.spawn().unwrap();
    drop(theirs);
    let _ = ours.write_all(&bytes);
    ours.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut answer = Vec::new();
    let _ = ours.read_to_end(&mut answer);
    let out = child.wait_with_output().unwrap();
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains(": test"),
        "main ran"
    );
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        answer,
    )
}

#[test]
fn stray_with_a_wrong_nonce() {
    let wrong = "ffeeddccbbaa99887766554433221100";
    let (code, stderr, answer) = handshake_run(handshake(wrong, this_exe(), 1, 0));
    assert_eq!(code, Some(120), "{stderr}");
    assert!(
        stderr.contains("does not carry the expected nonce"),
        "{stderr}"
    );
    assert!(answer.is_empty());
}

#[test]
fn stray_with_a_wrong_build() {
    let (code, _, answer) = handshake_run(handshake(NONCE, (1, 2), 1, 0));
    assert_eq!(code, Some(120));
    assert_eq!(answer[0], b'E');
    assert!(String::from_utf8_lossy(&answer[9..]).contains("different executable"));
}

#[test]
fn stray_with_a_huge_length_prefix() {
    let (code, _, answer) = handshake_run(handshake(NONCE, this_exe(), 1, 1 << 40));
    assert_eq!(code, Some(120));
    assert!(String::from_utf8_lossy(&answer[9..]).contains("exceed the limit"));
}

#[test]
fn an_unknown_function_id_is_refused() {
    let (code, _, answer) = handshake_run(handshake(NONCE, this_exe(), 0x1234, 0));
    assert_eq!(code, Some(120));
    assert!(
        String::from_utf8_lossy(&answer[9..]).contains("no exec-mode function with id"),
        "{answer:?}"
    );
}

#[test]
fn helper_survives_its_binary_being_replaced() {
    if !common::is_helper("replaced") {
        return;
    }
    println!("ready");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).unwrap();
    println!("result {:?}", square(7).map_err(|e| e.to_string()));
}

#[test]
fn the_binary_replaced_on_disk_mid_run_still_serves_calls() {
    let dir = common::Scratch::new("replaced-dir");
    std::fs::create_dir_all(dir.path()).unwrap();
    let copy = dir.path().join("copy");
    std::fs::copy(std::env::current_exe().unwrap(), &copy).unwrap();
    // Another test's child may hold the copy's write descriptor for an
    // instant between its fork and its exec: "Text file busy". Try again.
    let mut tries = 0;
    let mut helper = loop {
        let started = Command::new(&copy)
            .args([
                "helper_survives_its_binary_being_replaced",
                "--exact",
                "--nocapture",
            ])
            .env(common::HELPER_ENV, "replaced")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn();
        match started {
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy && tries < 100 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            other => break other.unwrap(),
        }
    };
    let _cleanup = common::KillOnDrop(vec![helper.id()]);
    let mut out = helper.stdout.take().unwrap();
    let mut seen = Vec::new();
    let mut byte = [0u8; 1];
    while !String::from_utf8_lossy(&seen).contains("ready") {
        assert_eq!(out.read(&mut byte).unwrap(), 1, "helper ended early");
        seen.push(byte[0]);
    }
    // Another file takes the binary's path; the running one is untouched.
    let other = dir.path().join("other");
    std::fs::write(&other, b"#!/bin/sh\nexit 3\n").unwrap();
    std::fs::rename(&other, &copy).unwrap();
    helper.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    helper.wait().unwrap();
    let _ = std::fs::remove_dir_all(dir.path());
    assert!(rest.contains("result Ok(49)"), "{rest}");
}

#[test]
fn a_stray_run_of_an_example_runs_neither_a_function_nor_main() {
    // `cargo test` builds the examples next to the test binaries' folder.
    let deps = std::env::current_exe().unwrap();
    let example = deps
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples/exec");
    if !example.exists() {
        println!(
            "skipped: {} was not built (run `cargo test --workspace`)",
            example.display()
        );
        return;
    }
    let out = Command::new(&example)
        .env("RWT_EXEC_CHILD", format!("1:{NONCE}"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(120), "{stdout}{stderr}");
    assert!(!stdout.contains("main runs once"), "{stdout}");
    assert!(stderr.contains("fd 3 is not open"), "{stderr}");
}
