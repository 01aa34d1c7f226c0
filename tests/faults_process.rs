//! Hostile cases that change process-wide state (signal dispositions,
//! resource limits): one test runs them in turn, so nothing else in this
//! binary runs beside them.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::{self, SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal};
use rwt::Error;

in_every_mode! {
    #[timeout(secs = 0.2, grace = 5.0)]
    fn loops() -> u8 {
        loop {
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[timeout(secs = 5.0)]
    fn fine(i: u32) -> u32 {
        i
    }

    #[timeout(secs = 0.1)]
    fn late() -> u8 {
        std::thread::sleep(Duration::from_secs(5));
        0
    }

    #[timeout(secs = 5.0)]
    fn crashes() -> u8 {
        std::process::abort()
    }
}

static TERM_SEEN: AtomicU32 = AtomicU32::new(0);

extern "C" fn count_term(_: i32) {
    TERM_SEEN.fetch_add(1, Ordering::Relaxed);
}

extern "C" fn ignore_usr1(_: i32) {}

fn set(sig: Signal, handler: SigHandler, flags: SaFlags) -> SigAction {
    let action = SigAction::new(handler, flags, SigSet::empty());
    // SAFETY: the handlers used here only touch an atomic or do nothing.
    unsafe { signal::sigaction(sig, &action) }.unwrap()
}

/// Fork, exec and pool.
macro_rules! in_every_mode_here {
    ($m:ident, $body:block) => {{
        in_fork_and_exec!($m, $body);
        {
            use pool as $m;
            $body
        }
    }};
}

/// D6: whatever the caller did to SIGTERM (a handler, SIG_IGN, blocked in
/// the calling thread), SIGTERM still ends the child at once.
fn sigterm_reaches_the_child_whatever_the_caller_did() {
    let cases: [(&str, fn()); 3] = [
        ("a handler", || {
            set(
                Signal::SIGTERM,
                SigHandler::Handler(count_term),
                SaFlags::empty(),
            );
        }),
        ("SIG_IGN", || {
            set(Signal::SIGTERM, SigHandler::SigIgn, SaFlags::empty());
        }),
        ("blocked", || {
            let mut term = SigSet::empty();
            term.add(Signal::SIGTERM);
            signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&term), None).unwrap();
        }),
    ];
    for (what, arrange) in cases {
        arrange();
        in_every_mode_here!(m, {
            let start = Instant::now();
            assert!(m::loops().unwrap_err().is_timeout());
            let elapsed = start.elapsed();
            assert!(
                elapsed < Duration::from_millis(700),
                "{what}: {elapsed:?} (the 5 s grace ran out)"
            );
        });
        let mut term = SigSet::empty();
        term.add(Signal::SIGTERM);
        signal::pthread_sigmask(SigmaskHow::SIG_UNBLOCK, Some(&term), None).unwrap();
        set(Signal::SIGTERM, SigHandler::SigDfl, SaFlags::empty());
    }
    assert_eq!(
        TERM_SEEN.load(Ordering::Relaxed),
        0,
        "SIGTERM reached the caller"
    );
}

/// F5: a signal every millisecond, with a handler that does not restart
/// system calls: right outcomes, and the deadline neither shrinks nor grows.
fn a_signal_storm_changes_no_outcome_and_no_deadline() {
    set(
        Signal::SIGUSR1,
        SigHandler::Handler(ignore_usr1),
        SaFlags::empty(),
    );
    let me = nix::sys::pthread::pthread_self();
    let stop = Arc::new(AtomicBool::new(false));
    let storm = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let _ = nix::sys::pthread::pthread_kill(me, Signal::SIGUSR1);
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    in_every_mode_here!(m, {
        for i in 0..60u32 {
            if i % 2 == 0 {
                assert_eq!(m::fine(i).unwrap(), i);
            } else {
                let start = Instant::now();
                assert!(m::late().unwrap_err().is_timeout());
                let elapsed = start.elapsed();
                assert!(
                    elapsed >= Duration::from_millis(100) && elapsed < Duration::from_millis(600),
                    "{elapsed:?}"
                );
            }
        }
    });
    stop.store(true, Ordering::Relaxed);
    storm.join().unwrap();
    set(Signal::SIGUSR1, SigHandler::SigDfl, SaFlags::empty());
}

/// E3: with SIGCHLD ignored the kernel reaps children itself; a crash must
/// still be a crash, never a success. And rwt never reaps a child that is
/// not its own.
fn someone_else_reaping_never_turns_a_crash_into_a_success() {
    set(Signal::SIGCHLD, SigHandler::SigIgn, SaFlags::empty());
    in_every_mode_here!(m, {
        assert_eq!(m::fine(7).unwrap(), 7);
        let start = Instant::now();
        match m::crashes() {
            Err(Error::Crashed { .. }) => {}
            other => panic!("{other:?}"),
        }
        assert!(start.elapsed() < Duration::from_secs(1));
    });
    set(Signal::SIGCHLD, SigHandler::SigDfl, SaFlags::empty());
    let mut own = std::process::Command::new("sh")
        .args(["-c", "exit 7"])
        .spawn()
        .unwrap();
    in_every_mode_here!(m, {
        for i in 0..100 {
            assert_eq!(m::fine(i).unwrap(), i);
        }
    });
    assert_eq!(own.wait().unwrap().code(), Some(7));
}

/// B4: out of file descriptors, a call fails with `Spawn` at once, leaks
/// nothing, and works again once descriptors are back. (Fork and exec: a
/// pool call that finds an idle worker needs no new descriptor at all.)
fn out_of_descriptors_is_a_spawn_error_and_leaks_nothing() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    in_fork_and_exec!(m, {
        assert_eq!(m::fine(1).unwrap(), 1); // warm: lazily made state exists
    });
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    in_fork_and_exec!(m, {
        let open = common::fd_count() as u64;
        // The limit caps descriptor numbers: at the lowest free one, no new
        // descriptor can be made at all.
        setrlimit(Resource::RLIMIT_NOFILE, common::lowest_free_fd(), hard).unwrap();
        let start = Instant::now();
        let r = m::fine(2);
        let elapsed = start.elapsed();
        setrlimit(Resource::RLIMIT_NOFILE, soft, hard).unwrap();
        match r {
            Err(Error::Spawn { source, .. }) => {
                assert_eq!(source.raw_os_error(), Some(nix::libc::EMFILE), "{source}");
            }
            other => panic!("{other:?}"),
        }
        assert!(elapsed < Duration::from_millis(100), "{elapsed:?}");
        assert_eq!(common::fd_count() as u64, open);
        assert_eq!(m::fine(3).unwrap(), 3);
    });
}

/// E1/E3: a rogue thread reaps every child of the process with
/// `waitpid(-1)` while calls of every outcome run, with innocent processes
/// around. rwt signals only through pidfds (which fail once the child is
/// reaped, even by a stranger), so no innocent is hit; every outcome is
/// still right, and nothing hangs.
fn a_rogue_reaper_changes_no_outcome_and_hits_no_innocent() {
    let mut innocents: Vec<std::process::Child> = (0..5)
        .map(|_| {
            use std::os::unix::process::CommandExt;
            std::process::Command::new("sleep")
                .arg("60")
                .process_group(0)
                .spawn()
                .unwrap()
        })
        .collect();
    let ids: Vec<u32> = innocents.iter().map(std::process::Child::id).collect();
    let _cleanup = common::KillOnDrop(ids.clone());
    let stop = Arc::new(AtomicBool::new(false));
    let rogue = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut reaped = 0u32;
            while !stop.load(Ordering::Relaxed) {
                match nix::sys::wait::waitpid(None, Some(nix::sys::wait::WaitPidFlag::WNOHANG)) {
                    Ok(nix::sys::wait::WaitStatus::StillAlive) | Err(_) => {
                        std::thread::sleep(Duration::from_micros(100));
                    }
                    Ok(_) => reaped += 1,
                }
            }
            reaped
        })
    };
    in_every_mode_here!(m, {
        for i in 0..100u32 {
            let start = Instant::now();
            match i % 3 {
                0 => assert_eq!(m::fine(i).unwrap(), i),
                1 => assert!(matches!(m::crashes(), Err(Error::Crashed { .. }))),
                _ => assert!(m::late().unwrap_err().is_timeout()),
            }
            assert!(
                start.elapsed() < Duration::from_secs(2),
                "{:?}",
                start.elapsed()
            );
        }
    });
    stop.store(true, Ordering::Relaxed);
    let reaped = rogue.join().unwrap();
    assert!(reaped > 0, "the rogue reaper never got a child");
    for innocent in &mut innocents {
        assert_eq!(
            innocent.try_wait().unwrap(),
            None,
            "an innocent process died"
        );
    }
    assert!(ids.iter().all(|&p| common::alive(p)));
}

#[test]
fn process_wide_faults_in_turn() {
    sigterm_reaches_the_child_whatever_the_caller_did();
    a_signal_storm_changes_no_outcome_and_no_deadline();
    someone_else_reaping_never_turns_a_crash_into_a_success();
    out_of_descriptors_is_a_spawn_error_and_leaks_nothing();
    a_rogue_reaper_changes_no_outcome_and_hits_no_innocent();
}
