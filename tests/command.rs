//! Commands with a deadline: `rwt::CommandExt` on `std::process::Command`.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{alive, reaped, wait_until, KillOnDrop};
use rwt::{CommandExt, Error, Options};

const SLACK: Duration = Duration::from_millis(500);

/// An `Output` to fill with `output_timeout_into`.
fn empty_output() -> Output {
    Output {
        status: std::process::ExitStatus::from_raw(0),
        stdout: Vec::new(),
        stderr: Vec::new(),
    }
}

#[test]
fn an_exit_status_comes_back_as_it_is() {
    assert_eq!(
        Command::new("true").status_timeout(5.0).unwrap().code(),
        Some(0)
    );
    let failed = Command::new("sh")
        .args(["-c", "exit 7"])
        .status_timeout(5.0)
        .unwrap();
    assert_eq!(failed.code(), Some(7));
    let signalled = Command::new("sh")
        .args(["-c", "kill -TERM $$"])
        .status_timeout(5.0)
        .unwrap();
    assert_eq!(signalled.signal(), Some(15));
}

#[test]
fn a_command_that_overruns_is_killed_and_reaped() {
    let start = Instant::now();
    let err = Command::new("sleep")
        .arg("10")
        .status_timeout(0.2)
        .unwrap_err();
    let elapsed = start.elapsed();
    assert!(err.is_timeout(), "{err}");
    // What it was doing, read before the kill, ends the message.
    let stuck = err.stuck().expect("a snapshot of the command");
    assert_eq!(
        stuck.syscall.as_deref(),
        Some("clock_nanosleep"),
        "{stuck:?}"
    );
    assert_eq!(
        err.to_string(),
        format!("function `sleep 10` timed out after 0.2 s (killed); {stuck}")
    );
    assert!(elapsed >= Duration::from_millis(200) && elapsed < Duration::from_millis(200) + SLACK);
}

#[test]
fn the_killed_command_is_gone_from_the_process_table() {
    let mut out = empty_output();
    let err = Command::new("sh")
        .args(["-c", "echo $$; exec sleep 10"])
        .output_timeout_into(&Options::new().secs(0.3), &mut out)
        .unwrap_err();
    assert!(err.is_timeout());
    let pid: u32 = String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let _cleanup = KillOnDrop(vec![pid]);
    assert!(reaped(pid), "{pid}: {:?}", common::state(pid));
}

#[test]
fn a_grandchild_goes_with_the_group_and_partial_output_is_kept() {
    let mut out = empty_output();
    let err = Command::new("sh")
        .args(["-c", "sleep 30 & echo $!; echo started >&2; wait"])
        .output_timeout_into(&Options::new().secs(0.5), &mut out)
        .unwrap_err();
    assert!(err.is_timeout());
    let text = String::from_utf8(out.stdout).unwrap();
    let grandchild: u32 = text.trim().parse().unwrap();
    let _cleanup = KillOnDrop(vec![grandchild]);
    assert_eq!(out.stderr, b"started\n");
    assert!(
        wait_until(Duration::from_secs(1), || !alive(grandchild)),
        "grandchild {grandchild} outlived the timeout"
    );
}

#[test]
fn eight_mib_on_each_stream_never_deadlock() {
    let out = Command::new("sh")
        .args([
            "-c",
            "head -c 8388608 /dev/zero; head -c 8388608 /dev/zero >&2; exit 3",
        ])
        .output_timeout(20.0)
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(out.stdout.len(), 8 << 20);
    assert_eq!(out.stderr.len(), 8 << 20);
}

#[test]
fn a_natural_exit_near_the_deadline_is_an_exit_and_a_kill_a_timeout() {
    // `sleep 1` against deadlines on both sides of its second, many times.
    let deadlines = [0.9, 0.99, 0.999, 1.0, 1.001, 1.01, 1.1];
    let runs: Vec<_> = deadlines
        .iter()
        .map(|&secs| {
            std::thread::spawn(move || {
                let mut outcomes = Vec::new();
                for _ in 0..4 {
                    let start = Instant::now();
                    let r = Command::new("sleep").arg("1").status_timeout(secs);
                    outcomes.push((secs, r, start.elapsed()));
                }
                outcomes
            })
        })
        .collect();
    let (mut exits, mut timeouts) = (0, 0);
    for run in runs {
        for (secs, r, elapsed) in run.join().unwrap() {
            match r {
                Ok(status) => {
                    assert_eq!(status.code(), Some(0), "deadline {secs}: {status:?}");
                    assert!(
                        elapsed >= Duration::from_secs(1),
                        "{secs}: exit after {elapsed:?}"
                    );
                    exits += 1;
                }
                Err(Error::Timeout { .. }) => {
                    assert!(
                        elapsed >= Duration::from_secs_f64(secs),
                        "{secs}: timeout after {elapsed:?}"
                    );
                    assert!(elapsed < Duration::from_secs_f64(secs) + SLACK);
                    timeouts += 1;
                }
                Err(e) => panic!("deadline {secs}: {e:?}"),
            }
        }
    }
    assert_eq!(exits + timeouts, 28);
    assert!(timeouts >= 4, "0.9 s can never be enough for sleep 1");
    assert!(exits >= 4, "1.1 s is always enough for sleep 1");
}

#[test]
fn with_grace_sigterm_comes_first_then_sigkill() {
    let start = Instant::now();
    let err = Command::new("sh")
        .args(["-c", "trap '' TERM; sleep 10"])
        .status_timeout_with(&Options::new().secs(0.2).grace(0.3))
        .unwrap_err();
    let elapsed = start.elapsed();
    assert!(err.is_timeout());
    assert!(elapsed >= Duration::from_millis(500), "{elapsed:?}");
    assert!(elapsed < Duration::from_millis(500) + SLACK, "{elapsed:?}");
}

#[test]
fn kill_false_leaves_an_orphan_that_is_reaped_when_it_ends() {
    let err = Command::new("sleep")
        .arg("0.5")
        .status_timeout_with(&Options::new().secs(0.1).kill(false))
        .unwrap_err();
    let orphans = err.orphans().to_vec();
    let _cleanup = KillOnDrop(orphans.clone());
    assert_eq!(orphans.len(), 1);
    assert!(alive(orphans[0]));
    assert!(wait_until(Duration::from_secs(3), || reaped(orphans[0])));
}

#[test]
fn a_missing_program_is_a_spawn_error() {
    match Command::new("/nonexistent/rwt-test").status_timeout(1.0) {
        Err(Error::Spawn { source, .. }) => {
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn no_sigchld_handler_is_ever_installed() {
    Command::new("true")
        .stdout(Stdio::null())
        .status_timeout(5.0)
        .unwrap();
    let _ = Command::new("sleep").arg("5").status_timeout(0.05);
    // SAFETY: sigaction with a null new action only reads the current one.
    let handler = unsafe {
        let mut old: nix::libc::sigaction = std::mem::zeroed();
        assert_eq!(
            nix::libc::sigaction(nix::libc::SIGCHLD, std::ptr::null(), &mut old),
            0
        );
        old.sa_sigaction
    };
    assert_eq!(handler, nix::libc::SIG_DFL);
}

/// In a helper capped at 2 GiB of address space: `yes` writes faster than
/// anyone reads. Every way of running it returns on time, and the caller
/// lives.
#[test]
fn flood_helper() {
    let Some(case) = ["capture", "discard", "capped"]
        .into_iter()
        .find(|case| common::is_helper(&format!("flood-{case}")))
    else {
        return;
    };
    let start = Instant::now();
    let outcome = match case {
        "capture" => Command::new("sh")
            .args(["-c", "yes & yes & yes & yes & wait"])
            .output_timeout(0.5)
            .map(|_| ()),
        "discard" => Command::new("yes")
            .stdout(Stdio::piped())
            .status_timeout(0.5)
            .map(|_| ()),
        _ => Command::new("yes")
            .output_timeout_with(&Options::new().secs(5.0).output_limit(1 << 20))
            .map(|_| ()),
    };
    println!("outcome: {outcome:?}");
    println!("elapsed: {:?}", start.elapsed());
    let elapsed = start.elapsed();
    assert!(elapsed < Duration::from_millis(1500), "{elapsed:?}");
    match (case, outcome) {
        ("capped", Err(Error::Codec { detail, .. })) => {
            assert!(detail.contains("output_limit"), "{detail}")
        }
        ("capped", other) => panic!("{other:?}"),
        // Captured: the deadline, or (on a fast machine) the default cap.
        ("capture", Err(Error::Timeout { .. } | Error::Codec { .. })) => {}
        (_, Err(Error::Timeout { .. })) => {}
        (_, other) => panic!("{other:?}"),
    }
}

fn run_flood(case: &str) {
    let (status, stdout, stderr) =
        common::helper_output_with_address_space("flood_helper", &format!("flood-{case}"), 2 << 30);
    assert!(
        status.success() && stdout.contains("outcome: Err("),
        "{status:?}\n{stdout}\n{stderr}"
    );
}

#[test]
fn a_flood_of_captured_output_ends_on_time() {
    run_flood("capture");
}

#[test]
fn a_flood_of_discarded_output_ends_on_time() {
    run_flood("discard");
}

#[test]
fn a_flood_past_the_output_limit_is_a_codec_error() {
    run_flood("capped");
}
