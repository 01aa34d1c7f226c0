//! Helper processes: this test binary started again to play one role
//! (a caller that is killed, one with a capped address space...).

use std::path::Path;
use std::time::Duration;

use super::files::{read_pid, Scratch};
use super::proc::{alive, wait_until, KillOnDrop};

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
