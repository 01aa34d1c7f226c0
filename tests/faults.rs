//! Hostile cases that are safe to run in parallel (RELIABILITY.md, "the 25
//! tests"): stopped children, the deadline edge, huge results, tokio in a
//! fork child, nested calls under load, the caller killed with calls in
//! flight, orphans whose calling thread ends. In every mode (fork, exec,
//! pool) where it applies. The process-wide cases are in faults_process.rs and
//! faults_memory.rs.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{alive, read_pid, reaped, wait_until, KillOnDrop, Scratch};
use rwt::timeout;

/// Bytes that cross as one MessagePack binary.
pub type Blob = rwt::Bytes;

in_every_mode! {
    /// Stops itself: SIGTERM cannot act until SIGCONT.
    #[timeout(secs = 0.2, grace = 2.0)]
    fn stops_itself(pid_file: String) -> u8 {
        common::note_pid(&pid_file);
        nix::sys::signal::raise(nix::sys::signal::Signal::SIGSTOP).unwrap();
        0
    }

    /// Takes about the deadline: 49 to 51 ms.
    #[timeout(secs = 0.05)]
    fn at_the_edge(i: u32) -> u32 {
        std::thread::sleep(Duration::from_micros(49_000 + u64::from(i * 7919 % 2001)));
        i
    }

    #[timeout(secs = 20.0)]
    fn quarter_gib() -> Blob {
        Blob::from(vec![0xab; 256 << 20])
    }

    #[timeout(secs = 5.0)]
    fn nested(depth: u32) -> Result<u32, String> {
        if depth == 0 {
            return Ok(0);
        }
        match nested(depth - 1) {
            Ok(Ok(n)) => Ok(n + 1),
            Ok(Err(e)) => Err(e),
            Err(e) => Err(e.to_string()),
        }
    }

    #[timeout(secs = 5.0)]
    fn busy_work(i: u32) -> u32 {
        i
    }

    #[timeout(secs = 60.0)]
    fn lingers(pid_file: String) -> u8 {
        common::note_pid_and_sleep(&pid_file, Duration::from_secs(60));
        0
    }

    #[timeout(secs = 0.1, kill = false)]
    fn outlives_its_thread() -> u8 {
        std::thread::sleep(Duration::from_millis(600));
        0
    }
}

test_in_every_mode! {
    fn a_stopped_child_still_times_out_on_time_and_dies(m) {
        let pid_file = Scratch::new("stopped");
        let start = Instant::now();
        let e = m::stops_itself(pid_file.arg()).unwrap_err();
        let elapsed = start.elapsed();
        let pid = read_pid(pid_file.path(), Duration::ZERO).expect("child ran");
        let _cleanup = KillOnDrop(vec![pid]);
        assert!(e.is_timeout(), "{e}");
        // SIGCONT after SIGTERM: the stopped child dies at once, well
        // before the 2 s grace.
        assert!(elapsed < Duration::from_millis(700), "{elapsed:?}");
        assert!(reaped(pid));
    }

    fn at_the_deadline_edge_only_a_right_value_or_a_timeout(m) {
        // 2,000 calls over 4 threads.
        let calls = 500;
        let threads: Vec<_> = (0..4u32)
            .map(|t| {
                std::thread::spawn(move || {
                    let (mut ok, mut late) = (0, 0);
                    for n in 0..calls {
                        let i = t * 10_000 + n;
                        let start = Instant::now();
                        match m::at_the_edge(i) {
                            Ok(v) => {
                                assert_eq!(v, i);
                                ok += 1;
                            }
                            Err(e) if e.is_timeout() => late += 1,
                            Err(e) => panic!("call {i}: {e:?}"),
                        }
                        assert!(start.elapsed() < Duration::from_millis(550), "{:?}", start.elapsed());
                    }
                    (ok, late)
                })
            })
            .collect();
        let total: u32 = threads.into_iter().map(|h| { let (a, b) = h.join().unwrap(); a + b }).sum();
        assert_eq!(total, 4 * calls);
    }

    fn a_quarter_gib_result_is_whole(m) {
        let start = Instant::now();
        let got = m::quarter_gib().unwrap();
        assert!(start.elapsed() < Duration::from_secs(15), "{:?}", start.elapsed());
        assert_eq!(got.0.len(), 256 << 20);
        assert!(got.0 == vec![0xab; 256 << 20]);
    }

    fn nested_calls_under_busy_threads_never_hang(m) {
        let stop = Arc::new(AtomicBool::new(false));
        let busy: Vec<_> = (0..8u32)
            .map(|t| {
                let stop = Arc::clone(&stop);
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        assert_eq!(m::busy_work(t).unwrap(), t);
                    }
                })
            })
            .collect();
        let runs = 100;
        for _ in 0..runs {
            let start = Instant::now();
            let r = m::nested(3);
            assert_eq!(r.as_ref().ok(), Some(&Ok(3)), "{r:?}");
            assert!(start.elapsed() < Duration::from_secs(5));
        }
        stop.store(true, Ordering::Relaxed);
        for b in busy {
            b.join().unwrap();
        }
    }

    fn an_orphan_outlives_the_thread_that_made_it_and_is_reaped(m) {
        // kill = false: no PR_SET_PDEATHSIG, so the end of the calling
        // thread does not kill the orphan (documented).
        let orphan = std::thread::spawn(|| m::outlives_its_thread().unwrap_err().orphans()[0])
            .join()
            .unwrap();
        let _cleanup = KillOnDrop(vec![orphan]);
        std::thread::sleep(Duration::from_millis(100));
        assert!(alive(orphan), "the orphan died with its thread");
        assert!(wait_until(Duration::from_secs(3), || reaped(orphan)));
    }
}

#[test]
fn helper_eight_calls_in_flight() {
    let Some(call) = helper_fn!("eight", lingers) else {
        return;
    };
    let dir = std::env::var("RWT_TEST_PID_DIR").unwrap();
    let calls: Vec<_> = (0..8)
        .map(|i| {
            let file = format!("{dir}/{i}");
            std::thread::spawn(move || call(file))
        })
        .collect();
    for c in calls {
        let _ = c.join();
    }
}

fn caller_killed_with_eight_calls_in_flight(role: &str) {
    common::kill_helper_and_expect_its_children_gone("helper_eight_calls_in_flight", role, 8);
}

test_each_mode_role!(
    the_caller_killed_with_eight_calls_in_flight_takes_them_along,
    caller_killed_with_eight_calls_in_flight,
    "eight"
);

#[timeout(secs = 0.3)]
fn uses_the_callers_runtime() -> u8 {
    // The runtime's threads do not exist in a fork child: this never ends.
    tokio::runtime::Handle::current().block_on(async {
        tokio::time::sleep(Duration::from_millis(10)).await;
    });
    1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fork_body_that_touches_the_callers_runtime_times_out_never_hangs() {
    let start = Instant::now();
    let r = tokio::task::spawn_blocking(uses_the_callers_runtime)
        .await
        .unwrap();
    assert!(r.unwrap_err().is_timeout());
    assert!(
        start.elapsed() < Duration::from_millis(800),
        "{:?}",
        start.elapsed()
    );
}

/// A2: another thread hammering malloc while a fork happens. glibc's fork
/// resets its malloc locks; with one arena (the worst case) a child that
/// allocates must still never hang.
#[timeout(secs = 2.0)]
fn allocates_a_mib_in_pieces() -> usize {
    let pieces: Vec<Vec<u8>> = (0..1024).map(|i| vec![i as u8; 1024]).collect();
    pieces.iter().map(Vec::len).sum()
}

#[test]
fn helper_malloc_hammer() {
    if !common::is_helper("malloc-hammer") {
        return;
    }
    let stop = Arc::new(AtomicBool::new(false));
    for _ in 0..2 {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let v: Vec<Box<[u8; 64]>> = (0..256).map(|_| Box::new([0u8; 64])).collect();
                std::hint::black_box(v);
            }
        });
    }
    let mut timeouts = 0;
    for _ in 0..1000 {
        match allocates_a_mib_in_pieces() {
            Ok(n) => assert_eq!(n, 1 << 20),
            Err(e) if e.is_timeout() => timeouts += 1,
            Err(e) => panic!("{e}"),
        }
    }
    stop.store(true, Ordering::Relaxed);
    println!("malloc-hammer timeouts: {timeouts}");
}

#[test]
fn fork_children_allocate_while_other_threads_hammer_one_malloc_arena() {
    let out = common::helper_command("helper_malloc_hammer", "malloc-hammer")
        .env("GLIBC_TUNABLES", "glibc.malloc.arena_max=1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("malloc-hammer timeouts: 0"), "{stdout}");
}
