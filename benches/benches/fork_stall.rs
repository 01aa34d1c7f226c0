//! Why fork-mode calls of a large caller run one after another: while a
//! process forks, its other threads stall too. glibc's `fork` holds
//! malloc's locks across the system call, so every allocation waits for
//! the whole fork; and a thread that writes to memory the kernel has
//! already marked copy-on-write waits for the rest of it. One thread
//! allocates in a loop, another does nothing but `getppid()`; each records
//! its slowest iteration while the main thread forks a caller holding
//! 2 GiB, then 4 GiB. No rwt code runs here.
//!
//! `cargo bench --manifest-path benches/Cargo.toml --bench fork_stall`

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

static STOP: AtomicBool = AtomicBool::new(false);

fn one(gib: usize) {
    let mut big = vec![1u8; gib << 30];
    for i in (0..big.len()).step_by(4096) {
        big[i] = 2;
    }
    STOP.store(false, Ordering::SeqCst);
    let allocator = std::thread::spawn(|| {
        let mut worst = Duration::ZERO;
        let mut n = 0usize;
        while !STOP.load(Ordering::Relaxed) {
            let start = Instant::now();
            std::hint::black_box(Vec::<u8>::with_capacity(200 + n % 64));
            worst = worst.max(start.elapsed());
            n += 1;
        }
        worst
    });
    let looper = std::thread::spawn(|| {
        let mut worst = Duration::ZERO;
        while !STOP.load(Ordering::Relaxed) {
            let start = Instant::now();
            std::hint::black_box(nix::unistd::getppid());
            worst = worst.max(start.elapsed());
        }
        worst
    });
    std::thread::sleep(Duration::from_millis(100));
    let mut forks = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        // SAFETY: the child only calls `_exit`.
        match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => unsafe { nix::libc::_exit(0) },
            nix::unistd::ForkResult::Parent { child } => {
                forks.push(start.elapsed());
                nix::sys::wait::waitpid(child, None).unwrap();
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    STOP.store(true, Ordering::SeqCst);
    let worst = looper.join().unwrap();
    let worst_alloc = allocator.join().unwrap();
    forks.sort();
    println!(
        "| {gib} GiB | {:.1?} | {:.1?} | {:.1?} | {:.1?} |",
        forks[0],
        forks[forks.len() - 1],
        worst_alloc,
        worst
    );
    std::hint::black_box(&big);
}

fn main() {
    println!("| caller | fastest fork | slowest fork | slowest allocation | slowest getppid() |");
    println!("|---|---|---|---|---|");
    one(2);
    one(4);
}
