//! Kernels between 5.3 and 5.4 have `pidfd_open` but not `waitid(P_PIDFD)`.
//! A helper process makes this kernel answer like one of them (a seccomp
//! filter fails every `waitid(P_PIDFD, ...)` with EINVAL, as those kernels
//! do) and checks that every mode still returns values, crashes and
//! timeouts as such, and leaves no zombie: rwt must fall back to its
//! pid-based wait, not report every child as lost.
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

    #[timeout(secs = 0.2)]
    fn oversleeps() -> u8 {
        std::thread::sleep(Duration::from_secs(10));
        0
    }
}

/// Makes `waitid(P_PIDFD, ...)` fail with EINVAL in this process and every
/// process it starts from now on.
fn refuse_waitid_on_pidfds() {
    use nix::libc::{
        sock_filter, sock_fprog, SYS_waitid, BPF_ABS, BPF_JEQ, BPF_JMP, BPF_K, BPF_LD, BPF_RET,
        BPF_W, EINVAL, P_PIDFD, SECCOMP_MODE_FILTER, SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO,
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
    let mut program = [
        // seccomp_data: nr at 0, arch at 4, args[0] (low half) at 16.
        stmt(load, 4),
        jump(AUDIT_ARCH_X86_64, 0, 5),
        stmt(load, 0),
        jump(SYS_waitid as u32, 0, 3),
        stmt(load, 16),
        jump(P_PIDFD, 0, 1),
        stmt(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EINVAL as u32),
        stmt(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    ];
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

#[test]
fn old_kernel_helper() {
    let Some(mode) = common::helper_mode("old-kernel") else {
        return;
    };
    refuse_waitid_on_pidfds();
    type Call = fn() -> Result<u8, rwt::Error>;
    let (seven, exits_nine, oversleeps): (Call, Call, Call) = match mode {
        "fork" => (fork::seven, fork::exits_nine, fork::oversleeps),
        "exec" => (exec::seven, exec::exits_nine, exec::oversleeps),
        _ => (pool::seven, pool::exits_nine, pool::oversleeps),
    };
    for _ in 0..3 {
        assert_eq!(seven().unwrap(), 7);
    }
    match exits_nine() {
        Err(rwt::Error::Crashed { exit_code, .. }) => assert_eq!(exit_code, Some(9)),
        other => panic!("{other:?}"),
    }
    assert!(oversleeps().unwrap_err().is_timeout());
    assert!(
        common::wait_until(Duration::from_secs(2), || common::zombie_children()
            .is_empty()),
        "zombies: {:?}",
        common::zombie_children()
    );
    println!("old kernel: all good");
}

fn run_as_on_an_old_kernel(role: &str) {
    let (status, stdout, stderr) =
        common::helper_output(common::helper_command("old_kernel_helper", role));
    assert!(
        status.success() && stdout.contains("old kernel: all good"),
        "{status:?}\n{stdout}\n{stderr}"
    );
}

test_each_mode_role!(
    without_waitid_on_pidfds_every_outcome_holds,
    run_as_on_an_old_kernel,
    "old-kernel"
);
