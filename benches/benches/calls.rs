//! What a call costs, side by side with the floor and with procspawn, in
//! one run: `cargo bench --manifest-path benches/Cargo.toml`.
//!
//! Groups: per call (trivial `u64 -> u64`), time from deadline to return,
//! 16 MiB in and out (`Vec<u8>` and `rwt::Bytes`), per call against the
//! caller's memory. After criterion's runs it prints the ratios the README
//! quotes (medians of its own timing loops, so the table has p99s too).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use rwt::timeout;

mod common;
use common::{exec_sleeps, fork_sleeps, pool_sleeps};

// --- the functions under test -------------------------------------------

#[timeout(secs = 10.0)]
fn fork_add(x: u64) -> u64 {
    x + 1
}

#[timeout(secs = 10.0, mode = "exec")]
fn exec_add(x: u64) -> u64 {
    x + 1
}

#[timeout(secs = 10.0, mode = "pool")]
fn pool_add(x: u64) -> u64 {
    x + 1
}

// The same with limits beyond time: what arming them costs a call.

#[timeout(secs = 10.0, memory = "256 MiB", cpu = 2.0)]
fn fork_add_limited(x: u64) -> u64 {
    x + 1
}

#[timeout(secs = 10.0, mode = "exec", memory = "256 MiB", cpu = 2.0)]
fn exec_add_limited(x: u64) -> u64 {
    x + 1
}

#[timeout(secs = 10.0, mode = "pool", memory = "256 MiB", cpu = 2.0)]
fn pool_add_limited(x: u64) -> u64 {
    x + 1
}

#[timeout(secs = 30.0)]
fn fork_echo_vec(data: Vec<u8>) -> Vec<u8> {
    data
}

#[timeout(secs = 30.0, mode = "exec")]
fn exec_echo_vec(data: Vec<u8>) -> Vec<u8> {
    data
}

#[timeout(secs = 30.0, mode = "pool")]
fn pool_echo_vec(data: Vec<u8>) -> Vec<u8> {
    data
}

#[timeout(secs = 30.0)]
fn fork_echo_bytes(data: rwt::Bytes) -> rwt::Bytes {
    data
}

#[timeout(secs = 30.0, mode = "exec")]
fn exec_echo_bytes(data: rwt::Bytes) -> rwt::Bytes {
    data
}

#[timeout(secs = 30.0, mode = "pool")]
fn pool_echo_bytes(data: rwt::Bytes) -> rwt::Bytes {
    data
}

fn procspawn_add(x: u64) -> u64 {
    x + 1
}

fn procspawn_echo(data: serde_bytes::ByteBuf) -> serde_bytes::ByteBuf {
    data
}

// --- floors --------------------------------------------------------------

/// The least a fork-based call can cost: fork, a pipe, one byte, _exit,
/// waitpid.
fn fork_floor() {
    let (r, w) = nix::unistd::pipe().unwrap();
    // SAFETY: the child writes one byte and leaves with _exit.
    match unsafe { nix::unistd::fork() }.unwrap() {
        nix::unistd::ForkResult::Child => {
            let _ = nix::unistd::write(&w, &[1]);
            // SAFETY: leaving the child at once.
            unsafe { nix::libc::_exit(0) }
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(w);
            let mut b = [0u8; 1];
            let _ = nix::unistd::read(&r, &mut b);
            nix::sys::wait::waitpid(child, None).unwrap();
        }
    }
}

/// A warm forked child that answers every 8 bytes with the same 8 bytes on
/// a socketpair: one round trip to it is the floor of any worker call (one
/// write and one read on each side).
struct Echo {
    ours: std::os::fd::OwnedFd,
    child: nix::unistd::Pid,
}

impl Echo {
    fn start() -> Echo {
        use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
        let (ours, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .unwrap();
        // SAFETY: the child only reads, writes and leaves with _exit.
        match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => {
                drop(ours);
                let mut buf = [0u8; 8];
                while let Ok(8) = nix::unistd::read(&theirs, &mut buf) {
                    if nix::unistd::write(&theirs, &buf).is_err() {
                        break;
                    }
                }
                // SAFETY: leaving the child at once.
                unsafe { nix::libc::_exit(0) }
            }
            nix::unistd::ForkResult::Parent { child } => Echo { ours, child },
        }
    }

    fn round_trip(&self) {
        nix::unistd::write(&self.ours, b"pingpong").unwrap();
        let mut buf = [0u8; 8];
        let mut got = 0;
        while got < buf.len() {
            let n = nix::unistd::read(&self.ours, &mut buf[got..]).unwrap();
            assert!(n > 0, "the echo child is gone");
            got += n;
        }
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        // The child leaves at the end of its socket.
        let _ = nix::sys::socket::shutdown(
            std::os::fd::AsRawFd::as_raw_fd(&self.ours),
            nix::sys::socket::Shutdown::Both,
        );
        let _ = nix::sys::wait::waitpid(self.child, None);
    }
}

/// Wall time per call of `callers` threads making `rounds` calls each at
/// once (`each(thread)` makes one).
fn at_once(callers: usize, rounds: usize, each: impl Fn(usize) + Sync) -> Duration {
    let start = std::sync::Barrier::new(callers + 1);
    let wall = std::thread::scope(|s| {
        for t in 0..callers {
            let (start, each) = (&start, &each);
            s.spawn(move || {
                start.wait();
                for _ in 0..rounds {
                    each(t);
                }
            });
        }
        start.wait();
        Instant::now()
    });
    // The scope joined every caller: the wall time is up to now.
    wall.elapsed() / u32::try_from(callers * rounds).unwrap()
}

const FLOOR_ENV: &str = "RWT_BENCH_FLOOR";

/// The least an exec-based call can cost: posix_spawn of this binary, which
/// exits at the top of `main`, and waitpid.
fn spawn_floor() {
    let child = std::process::Command::new("/proc/self/exe")
        .env(FLOOR_ENV, "1")
        .spawn()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
}

// --- helpers -------------------------------------------------------------

fn percentiles(mut v: Vec<Duration>) -> (Duration, Duration) {
    v.sort();
    (v[v.len() / 2], v[(v.len() * 99) / 100])
}

fn time_each(n: usize, mut f: impl FnMut()) -> (Duration, Duration) {
    for _ in 0..n / 10 {
        f();
    }
    percentiles(
        (0..n)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed()
            })
            .collect(),
    )
}

/// Time past a 50 ms deadline until the call returned.
fn past_deadline(n: usize, f: fn() -> Result<u8, rwt::Error>) -> (Duration, Duration) {
    percentiles(
        (0..n)
            .map(|_| {
                let t = Instant::now();
                assert!(f().unwrap_err().is_timeout());
                t.elapsed().saturating_sub(Duration::from_millis(50))
            })
            .collect(),
    )
}

fn touch(mib: usize) -> Vec<u8> {
    let mut v = vec![0u8; mib << 20];
    for i in (0..v.len()).step_by(4096) {
        v[i] = 1;
    }
    black_box(&mut v);
    v
}

// --- criterion groups ----------------------------------------------------

fn per_call(c: &mut Criterion, pool: &procspawn::Pool) {
    let mut g = c.benchmark_group("per_call");
    g.bench_function("fork_floor", |b| b.iter(fork_floor));
    g.bench_function("rwt_fork", |b| b.iter(|| fork_add(black_box(1)).unwrap()));
    g.bench_function("spawn_floor", |b| b.iter(spawn_floor));
    g.bench_function("rwt_exec", |b| b.iter(|| exec_add(black_box(1)).unwrap()));
    g.bench_function("rwt_pool", |b| b.iter(|| pool_add(black_box(1)).unwrap()));
    g.bench_function("rwt_fork_limits", |b| {
        b.iter(|| fork_add_limited(black_box(1)).unwrap())
    });
    g.bench_function("rwt_exec_limits", |b| {
        b.iter(|| exec_add_limited(black_box(1)).unwrap())
    });
    g.bench_function("rwt_pool_limits", |b| {
        b.iter(|| pool_add_limited(black_box(1)).unwrap())
    });
    g.bench_function("procspawn_spawn", |b| {
        b.iter(|| {
            procspawn::spawn(black_box(1u64), procspawn_add)
                .join()
                .unwrap()
        })
    });
    g.bench_function("procspawn_pool", |b| {
        b.iter(|| pool.spawn(black_box(1u64), procspawn_add).join().unwrap())
    });
    g.finish();
}

fn deadline_to_return(c: &mut Criterion) {
    let mut g = c.benchmark_group("deadline_to_return");
    g.sample_size(10);
    for (name, f) in common::SLEEPERS {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| {
                        let t = Instant::now();
                        assert!(f().unwrap_err().is_timeout());
                        t.elapsed().saturating_sub(Duration::from_millis(50))
                    })
                    .sum()
            })
        });
    }
    g.finish();
}

fn payload(c: &mut Criterion, pool: &procspawn::Pool) {
    let data = vec![7u8; 16 << 20];
    let mut g = c.benchmark_group("payload_16mib_in_and_out");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(2 * data.len() as u64));
    g.bench_function("fork_bytes", |b| {
        b.iter(|| fork_echo_bytes(rwt::Bytes::from(data.clone())).unwrap())
    });
    g.bench_function("exec_bytes", |b| {
        b.iter(|| exec_echo_bytes(rwt::Bytes::from(data.clone())).unwrap())
    });
    g.bench_function("pool_bytes", |b| {
        b.iter(|| pool_echo_bytes(rwt::Bytes::from(data.clone())).unwrap())
    });
    g.bench_function("procspawn_pool_bytebuf", |b| {
        b.iter(|| {
            pool.spawn(serde_bytes::ByteBuf::from(data.clone()), procspawn_echo)
                .join()
                .unwrap()
        })
    });
    g.bench_function("fork_vec", |b| {
        b.iter(|| fork_echo_vec(data.clone()).unwrap())
    });
    g.bench_function("exec_vec", |b| {
        b.iter(|| exec_echo_vec(data.clone()).unwrap())
    });
    g.bench_function("pool_vec", |b| {
        b.iter(|| pool_echo_vec(data.clone()).unwrap())
    });
    g.finish();
}

fn caller_memory(c: &mut Criterion) {
    let mut g = c.benchmark_group("per_call_vs_caller_memory");
    g.sample_size(20);
    let mut held = Vec::new();
    for mib in [0usize, 128, 1024] {
        held.push(touch(
            mib - held.iter().map(Vec::len).sum::<usize>() / (1 << 20),
        ));
        g.bench_with_input(BenchmarkId::new("fork", mib), &mib, |b, _| {
            b.iter(|| fork_add(1).unwrap())
        });
        g.bench_with_input(BenchmarkId::new("exec", mib), &mib, |b, _| {
            b.iter(|| exec_add(1).unwrap())
        });
        g.bench_with_input(BenchmarkId::new("pool", mib), &mib, |b, _| {
            b.iter(|| pool_add(1).unwrap())
        });
    }
    g.finish();
}

/// Medians and p99s of our own loops, and the ratios the targets are
/// about, for the README's table. Runs first, in a process that has not yet
/// grown from the payload runs (a larger process forks more slowly).
fn summary(pool: &procspawn::Pool) -> Vec<(String, String, bool)> {
    let row = |name: &str, (m, p): (Duration, Duration)| {
        println!("| {name} | {m:.1?} | {p:.1?} |");
        m
    };
    println!("\n| per call (trivial u64 -> u64) | median | p99 |\n|---|---|---|");
    let fork_floor_m = row(
        "fork floor: fork + pipe + _exit + waitpid",
        time_each(2000, fork_floor),
    );
    let fork_m = row(
        "rwt fork",
        time_each(2000, || {
            fork_add(1).unwrap();
        }),
    );
    let spawn_floor_m = row(
        "spawn floor: posix_spawn of this binary + waitpid",
        time_each(500, spawn_floor),
    );
    let exec_m = row(
        "rwt exec",
        time_each(500, || {
            exec_add(1).unwrap();
        }),
    );
    let pool_m = row(
        "rwt pool",
        time_each(5000, || {
            pool_add(1).unwrap();
        }),
    );
    let echo = Echo::start();
    let pingpong_m = row(
        "ping-pong floor: 8 bytes to a warm forked child and back",
        time_each(5000, || echo.round_trip()),
    );
    drop(echo);
    // 16 at once: wall time over calls (one line each, no p99).
    let echoes: Vec<Echo> = (0..16).map(|_| Echo::start()).collect();
    let pingpong16 = at_once(16, 2000, |t| echoes[t].round_trip());
    drop(echoes);
    pool_add(1).unwrap();
    let pool16 = at_once(16, 2000, |_| {
        pool_add(1).unwrap();
    });
    println!("| 16 ping-pong pairs at once, wall / round trips | {pingpong16:.1?} | |");
    println!("| rwt pool, 16 callers at once, wall / calls | {pool16:.1?} | |");
    row(
        "procspawn spawn",
        time_each(300, || {
            procspawn::spawn(1u64, procspawn_add).join().unwrap();
        }),
    );
    let ps_pool_m = row(
        "procspawn Pool",
        time_each(5000, || {
            pool.spawn(1u64, procspawn_add).join().unwrap();
        }),
    );
    println!(
        "\n| time past a 50 ms deadline until the call returns | median | p99 |\n|---|---|---|"
    );
    let kills: Vec<(&str, (Duration, Duration))> = vec![
        ("fork", past_deadline(100, fork_sleeps)),
        ("exec", past_deadline(100, exec_sleeps)),
        ("pool", past_deadline(100, pool_sleeps)),
    ];
    for (name, d) in &kills {
        row(name, *d);
    }
    let data = vec![7u8; 16 << 20];
    let rate = |f: &dyn Fn()| {
        let (m, _) = time_each(20, f);
        (2.0 * data.len() as f64) / m.as_secs_f64() / 1e9
    };
    println!("\n| 16 MiB in + 16 MiB out | GB/s (median) |\n|---|---|");
    // First, before any plain Vec<u8> payload has grown glibc's mmap
    // threshold in this process (see the README).
    let pool_bytes_rate = rate(&|| drop(pool_echo_bytes(rwt::Bytes::from(data.clone())).unwrap()));
    println!("| rwt pool, rwt::Bytes, fresh allocator | {pool_bytes_rate:.2} |");
    let procspawn_fresh = rate(&|| {
        drop(
            pool.spawn(serde_bytes::ByteBuf::from(data.clone()), procspawn_echo)
                .join()
                .unwrap(),
        );
    });
    println!("| procspawn Pool, ByteBuf, fresh allocator | {procspawn_fresh:.2} |");
    for (name, f) in [
        (
            "rwt fork, Vec<u8> (from here on, after large allocations)",
            &(|| drop(fork_echo_vec(data.clone()).unwrap())) as &dyn Fn(),
        ),
        ("rwt exec, Vec<u8>", &|| {
            drop(exec_echo_vec(data.clone()).unwrap())
        }),
        ("rwt pool, Vec<u8>", &|| {
            drop(pool_echo_vec(data.clone()).unwrap())
        }),
        ("rwt fork, rwt::Bytes", &|| {
            drop(fork_echo_bytes(rwt::Bytes::from(data.clone())).unwrap())
        }),
        ("rwt exec, rwt::Bytes", &|| {
            drop(exec_echo_bytes(rwt::Bytes::from(data.clone())).unwrap())
        }),
        ("rwt pool, rwt::Bytes", &|| {
            drop(pool_echo_bytes(rwt::Bytes::from(data.clone())).unwrap())
        }),
        ("procspawn Pool, ByteBuf", &|| {
            drop(
                pool.spawn(serde_bytes::ByteBuf::from(data.clone()), procspawn_echo)
                    .join()
                    .unwrap(),
            )
        }),
    ] {
        let r = rate(f);
        println!("| {name} | {r:.2} |");
    }
    let mut checks = Vec::new();
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    let mut check = |name: &str, text: String, ok: bool| checks.push((name.to_owned(), text, ok));
    let r = ratio(fork_m, fork_floor_m);
    check("rwt fork <= 1.3x fork floor", format!("{r:.2}x"), r <= 1.3);
    let r = ratio(exec_m, spawn_floor_m);
    check("rwt exec <= 1.3x spawn floor", format!("{r:.2}x"), r <= 1.3);
    let r = ratio(pool_m, pingpong_m);
    check(
        "rwt pool <= 2x ping-pong floor",
        format!("{r:.2}x"),
        r <= 2.0,
    );
    let r = ratio(pool16, pingpong16);
    check(
        "rwt pool, 16 callers <= 3x 16 ping-pong pairs",
        format!("{r:.2}x"),
        r <= 3.0,
    );
    let r = ratio(pool_m, ps_pool_m);
    check(
        "rwt pool <= 0.7x procspawn Pool",
        format!("{r:.2}x"),
        r <= 0.7,
    );
    for (name, (m, p)) in &kills {
        check(
            &format!("{name}: kill returns <= 1 ms (median), <= 5 ms (p99) past the deadline"),
            format!("{m:.2?} / {p:.2?}"),
            *m <= Duration::from_millis(1) && *p <= Duration::from_millis(5),
        );
    }
    check(
        "pool rwt::Bytes 16 MiB round trip >= 1 GB/s",
        format!("{pool_bytes_rate:.2} GB/s"),
        pool_bytes_rate >= 1.0,
    );
    checks
}

fn main() {
    if std::env::var_os(FLOOR_ENV).is_some() {
        return;
    }
    procspawn::init();
    let pool = procspawn::Pool::new(2).unwrap();
    let checks = summary(&pool);
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    per_call(&mut c, &pool);
    deadline_to_return(&mut c);
    payload(&mut c, &pool);
    caller_memory(&mut c);
    c.final_summary();
    println!("\n| target | measured | holds |\n|---|---|---|");
    for (name, text, ok) in checks {
        println!("| {name} | {text} | {} |", if ok { "yes" } else { "NO" });
    }
}
