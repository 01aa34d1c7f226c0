//! Hostile cases that are safe to run in parallel (RELIABILITY.md, "the 25
//! tests"): tokio in a fork child, nested calls under load, the caller
//! killed with calls in flight, orphans whose calling thread ends (a stopped
//! child and the deadline's edge are in timeout.rs, a quarter-GiB result in
//! large.rs). In every mode (fork, exec,
//! pool) where it applies. The process-wide cases are in faults_process.rs and
//! faults_memory.rs.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{alive, reaped, wait_until, KillOnDrop};
use rwt::timeout;

/// Bytes that cross as one MessagePack binary.
pub type Blob = rwt::Bytes;

in_every_mode! {
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
