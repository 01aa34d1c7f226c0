//! Older kernels, simulated: a helper process installs a seccomp filter
//! that makes this kernel answer like one of them, and checks that every
//! mode still returns values, crashes and timeouts as such, kills what a
//! crashed child started, and leaves no zombie.
//!
//! - `old-kernel`: 5.3 and 5.4 have `pidfd_open` but not
//!   `waitid(P_PIDFD)`, which fails with EINVAL: rwt must fall back to its
//!   pid-based wait, not report every child as lost.
//! - `no-pidfd`: before 5.3 `pidfd_open` fails with ENOSYS: the pid-based
//!   wait from the start, which must see an exit without reaping it, so
//!   that the dead child's process group can still be killed.
//! - `no-group-pidfd`: before 6.9 `pidfd_send_signal` refuses
//!   `PIDFD_SIGNAL_PROCESS_GROUP` with EINVAL: the group kill falls back to
//!   `killpg`, and a crashed child's grandchild must still die.
//! - `no-close-range`: before 5.9 `close_range` fails with ENOSYS: an exec
//!   child closes what `/proc/self/fd` lists instead.
//! - `no-kcmp`: `kcmp` refused with EPERM, as container seccomp profiles
//!   without `CAP_SYS_PTRACE` do: children are adopted on `waitid` alone.
//! - `no-getrandom`: before 3.17 `getrandom` fails with ENOSYS. Fork mode
//!   works; exec and pool mode, whose handshake needs a random nonce, fail
//!   at once with `Error::Spawn`, not a hang or a panic.
#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

mod common;

use std::time::Duration;

in_every_mode! {
    #[timeout(secs = 5.0)]
    fn seven() -> u8 {
        7
    }

    #[timeout(secs = 5.0)]
    fn exits_nine() -> u8 {
        std::process::exit(9)
    }

    /// Starts a grandchild in its process group, then exits without a
    /// result.
    #[timeout(secs = 5.0)]
    fn starts_a_sleeper_then_exits(pid_file: String) -> u8 {
        #[allow(clippy::zombie_processes)] // never waited for on purpose
        let sleeper = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        std::fs::write(&pid_file, sleeper.id().to_string()).unwrap();
        std::process::exit(3)
    }

    #[timeout(secs = 0.2)]
    fn oversleeps() -> u8 {
        std::thread::sleep(Duration::from_secs(10));
        0
    }
}

/// Makes `syscall` fail with `errno` in this process and every process it
/// starts from now on; with `arg = Some((i, v))`, only calls whose argument
/// `i` (its low 32 bits) is `v`.
fn refuse(syscall: i64, arg: Option<(u32, u32)>, errno: i32) {
    use nix::libc::{
        sock_filter, sock_fprog, BPF_ABS, BPF_JEQ, BPF_JMP, BPF_K, BPF_LD, BPF_RET, BPF_W,
        SECCOMP_MODE_FILTER, SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO,
    };
    const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
    let stmt = |code: u32, k: u32| sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    };
    let jump = |k: u32, jt: u8, jf: u8| sock_filter {
        code: (BPF_JMP | BPF_JEQ | BPF_K) as u16,
        jt,
        jf,
        k,
    };
    let load = BPF_LD | BPF_W | BPF_ABS;
    // seccomp_data: nr at 0, arch at 4, args[i] (low half) at 16 + 8 i.
    // Each jump skips to the last instruction (allow) when its test fails.
    let mut program = vec![stmt(load, 4), jump(AUDIT_ARCH_X86_64, 0, 0)];
    program.push(stmt(load, 0));
    program.push(jump(syscall as u32, 0, 0));
    if let Some((index, value)) = arg {
        program.push(stmt(load, 16 + 8 * index));
        program.push(jump(value, 0, 0));
    }
    program.push(stmt(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | errno as u32));
    program.push(stmt(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
    let allow = program.len() - 1;
    for (i, insn) in program.iter_mut().enumerate() {
        if insn.code == (BPF_JMP | BPF_JEQ | BPF_K) as u16 {
            insn.jf = (allow - i - 1) as u8;
        }
    }
    let prog = sock_fprog {
        len: program.len() as u16,
        filter: program.as_mut_ptr(),
    };
    // SAFETY: prctl with integer arguments, then with a pointer to a filter
    // program that outlives the call (the kernel copies it).
    unsafe {
        assert_eq!(
            nix::libc::prctl(nix::libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0),
            0
        );
        assert_eq!(
            nix::libc::prctl(
                nix::libc::PR_SET_SECCOMP,
                SECCOMP_MODE_FILTER,
                &prog as *const sock_fprog,
            ),
            0
        );
    }
}

/// A simulated kernel: its role, and the system call, argument match and
/// errno of the refusal that makes this kernel answer like it.
type Kernel = (&'static str, i64, Option<(u32, u32)>, i32);

const KERNELS: [Kernel; 6] = [
    (
        "old-kernel",
        nix::libc::SYS_waitid,
        Some((0, nix::libc::P_PIDFD)),
        nix::libc::EINVAL,
    ),
    (
        "no-pidfd",
        nix::libc::SYS_pidfd_open,
        None,
        nix::libc::ENOSYS,
    ),
    (
        "no-group-pidfd",
        nix::libc::SYS_pidfd_send_signal,
        // flags = PIDFD_SIGNAL_PROCESS_GROUP
        Some((3, 1 << 2)),
        nix::libc::EINVAL,
    ),
    (
        "no-close-range",
        nix::libc::SYS_close_range,
        None,
        nix::libc::ENOSYS,
    ),
    ("no-kcmp", nix::libc::SYS_kcmp, None, nix::libc::EPERM),
    (
        "no-getrandom",
        nix::libc::SYS_getrandom,
        None,
        nix::libc::ENOSYS,
    ),
];

/// The helper: `<kernel>-<mode>`, for each kernel of [`KERNELS`].
#[test]
fn old_kernel_helper() {
    let Some((mode, (kernel, syscall, arg, errno))) = KERNELS
        .into_iter()
        .find_map(|k| common::helper_mode(k.0).map(|mode| (mode, k)))
    else {
        return;
    };
    refuse(syscall, arg, errno);
    if kernel == "no-getrandom" && mode != "fork" {
        let call = if mode == "exec" {
            exec::seven
        } else {
            pool::seven
        };
        match call() {
            Err(rwt::Error::Spawn { source, .. })
                if source.raw_os_error() == Some(nix::libc::ENOSYS) => {}
            other => panic!("{other:?}"),
        }
        println!("{kernel}: all good");
        return;
    }
    type Call = fn() -> Result<u8, rwt::Error>;
    type Starts = fn(String) -> Result<u8, rwt::Error>;
    let (seven, exits_nine, oversleeps, starts): (Call, Call, Call, Starts) = match mode {
        "fork" => (
            fork::seven,
            fork::exits_nine,
            fork::oversleeps,
            fork::starts_a_sleeper_then_exits,
        ),
        "exec" => (
            exec::seven,
            exec::exits_nine,
            exec::oversleeps,
            exec::starts_a_sleeper_then_exits,
        ),
        _ => (
            pool::seven,
            pool::exits_nine,
            pool::oversleeps,
            pool::starts_a_sleeper_then_exits,
        ),
    };
    for _ in 0..3 {
        assert_eq!(seven().unwrap(), 7);
    }
    match exits_nine() {
        Err(rwt::Error::Crashed { exit_code, .. }) => assert_eq!(exit_code, Some(9)),
        other => panic!("{other:?}"),
    }
    assert!(oversleeps().unwrap_err().is_timeout());
    let pid_file = common::Scratch::new("sleeper");
    match starts(pid_file.arg()) {
        Err(rwt::Error::Crashed { exit_code, .. }) => assert_eq!(exit_code, Some(3)),
        other => panic!("{other:?}"),
    }
    let sleeper = common::read_pid(pid_file.path(), Duration::ZERO).unwrap();
    let _cleanup = common::KillOnDrop(vec![sleeper]);
    assert!(
        common::wait_until(Duration::from_secs(1), || !common::alive(sleeper)),
        "the crashed child's grandchild {sleeper} outlived it"
    );
    assert!(
        common::wait_until(Duration::from_secs(2), || common::zombie_children()
            .is_empty()),
        "zombies: {:?}",
        common::zombie_children()
    );
    println!("{kernel}: all good");
}

fn run_as_on_an_old_kernel(role: &str) {
    let (status, stdout, stderr) =
        common::helper_output(common::helper_command("old_kernel_helper", role));
    assert!(
        status.success() && stdout.contains(": all good"),
        "{status:?}\n{stdout}\n{stderr}"
    );
}

test_each_mode_role!(
    without_waitid_on_pidfds_every_outcome_holds,
    run_as_on_an_old_kernel,
    "old-kernel"
);

test_each_mode_role!(
    without_pidfds_every_outcome_holds,
    run_as_on_an_old_kernel,
    "no-pidfd"
);

test_each_mode_role!(
    without_group_pidfds_every_outcome_holds,
    run_as_on_an_old_kernel,
    "no-group-pidfd"
);

test_each_mode_role!(
    without_close_range_every_outcome_holds,
    run_as_on_an_old_kernel,
    "no-close-range"
);

test_each_mode_role!(
    without_kcmp_every_outcome_holds,
    run_as_on_an_old_kernel,
    "no-kcmp"
);

test_each_mode_role!(
    without_getrandom_fork_mode_works_and_the_others_refuse,
    run_as_on_an_old_kernel,
    "no-getrandom"
);
