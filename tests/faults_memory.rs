//! Hostile cases about memory, alone in their binary because they measure
//! the process's resident size: a forged length prefix (also in a caller
//! with a 1 GiB address space), a result over the cap, a child of 2 GiB
//! that times out.

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use common::{read_pid, reaped, rss_kib, wait_until, KillOnDrop, Scratch};
use rwt::{Error, Options};

/// The descriptor the child's result goes to: the one that is a pipe or a
/// socket and not stdin, stdout or stderr.
fn result_channel() -> std::fs::File {
    use std::os::fd::FromRawFd;
    let fd = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let n: i32 = e.file_name().to_str()?.parse().ok()?;
            let target = std::fs::read_link(e.path()).ok()?;
            let t = target.to_string_lossy();
            (n > 2 && (t.starts_with("pipe:") || t.starts_with("socket:"))).then_some(n)
        })
        .next()
        .expect("a result channel");
    // SAFETY: the child owns this descriptor; it is used once and the
    // process never returns to code that uses it again.
    unsafe { std::fs::File::from_raw_fd(fd) }
}

in_every_mode! {
    /// Writes a frame header claiming 2^40 bytes, then waits.
    #[timeout(secs = 10.0)]
    fn forges_a_huge_prefix(pid_file: String) -> u8 {
        common::note_pid(&pid_file);
        let mut channel = result_channel();
        let mut header = vec![b'V'];
        header.extend_from_slice(&(1u64 << 40).to_le_bytes());
        channel.write_all(&header).unwrap();
        std::thread::sleep(Duration::from_secs(30));
        0
    }

    /// Writes a frame header claiming one byte less than the 1 GiB cap,
    /// then waits.
    #[timeout(secs = 0.5)]
    fn forges_a_length_under_the_cap() -> u8 {
        let mut channel = result_channel();
        let mut header = vec![b'V'];
        header.extend_from_slice(&((1u64 << 30) - 1).to_le_bytes());
        channel.write_all(&header).unwrap();
        std::thread::sleep(Duration::from_secs(30));
        0
    }

    /// Touches 2 GiB, then never ends.
    #[timeout(secs = 1.5)]
    fn two_gib(pid_file: String) -> u8 {
        common::note_pid(&pid_file);
        let big = vec![1u8; 2 << 30];
        std::hint::black_box(&big);
        loop {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

fn a_forged_length_prefix_is_refused_before_allocating() {
    in_fork_and_exec!(m, {
        let pid_file = Scratch::new("forged");
        let before = rss_kib();
        let start = Instant::now();
        match m::forges_a_huge_prefix(pid_file.arg()) {
            Err(Error::Codec { detail, .. }) => {
                assert!(
                    detail.contains("1099511627776 bytes exceeds the limit"),
                    "{detail}"
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
        assert!(
            rss_kib() < before + 4096,
            "RSS grew from {before} to {} KiB",
            rss_kib()
        );
        let pid = read_pid(pid_file.path(), Duration::ZERO).unwrap();
        let _cleanup = KillOnDrop(vec![pid]);
        assert!(reaped(pid), "the forger was not killed and reaped");
    });
}

fn a_result_over_the_cap_is_a_codec_error_before_its_size_is_allocated() {
    let before = rss_kib();
    let opts = Options::new().secs(10.0).result_limit(1 << 20);
    let start = Instant::now();
    match rwt::run_with_timeout(&opts, || vec![7u8; 2 << 20]) {
        Err(Error::Codec { detail, .. }) => {
            assert!(detail.contains("exceeds the limit"), "{detail}")
        }
        other => panic!("{other:?}"),
    }
    assert!(start.elapsed() < Duration::from_secs(1));
    assert!(
        rss_kib() < before + 4096,
        "RSS grew from {before} to {} KiB",
        rss_kib()
    );
}

fn a_two_gib_child_that_times_out_is_killed_and_reaped_on_time() {
    in_fork_and_exec!(m, {
        let pid_file = Scratch::new("two-gib");
        let start = Instant::now();
        assert!(m::two_gib(pid_file.arg()).unwrap_err().is_timeout());
        let elapsed = start.elapsed();
        // The deadline, plus the kernel's time to free 2 GiB, within the
        // 1 s reap bound.
        assert!(elapsed < Duration::from_millis(1500 + 1200), "{elapsed:?}");
        let pid = read_pid(pid_file.path(), Duration::ZERO).unwrap();
        let _cleanup = KillOnDrop(vec![pid]);
        assert!(wait_until(Duration::from_secs(2), || reaped(pid)));
    });
}

#[test]
fn memory_faults_in_turn() {
    a_forged_length_prefix_is_refused_before_allocating();
    a_result_over_the_cap_is_a_codec_error_before_its_size_is_allocated();
    a_two_gib_child_that_times_out_is_killed_and_reaped_on_time();
    // In turn with the rest: a helper's pipes, open while a fork child
    // starts, would look like a result channel to the forgers above.
    for role in [
        "forged-length-fork",
        "forged-length-exec",
        "forged-length-pool",
    ] {
        run_in_a_small_address_space(role);
    }
}

/// In a helper whose address space is capped at 1 GiB: a length prefix just
/// under the result cap must not make the caller allocate it (that would
/// fail there, and an infallible allocation would abort the caller).
#[test]
fn forged_length_helper() {
    let Some(forger) = helper_fn!("forged-length", forges_a_length_under_the_cap) else {
        return;
    };
    let outcome = forger();
    println!("outcome: {outcome:?}");
    assert!(outcome.unwrap_err().is_timeout());
}

fn run_in_a_small_address_space(role: &str) {
    let (status, stdout, stderr) =
        common::helper_output_with_address_space("forged_length_helper", role, 1 << 30);
    assert!(
        status.success() && stdout.contains("outcome: Err(Timeout"),
        "{status:?}\n{stdout}\n{stderr}"
    );
}
