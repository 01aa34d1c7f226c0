//! Nothing crosses the boundary but the frame: a program the function runs
//! inherits none of rwt's descriptors (it can neither read the arguments
//! nor forge a result), and whatever the child sends can make the call
//! fail, never succeed falsely, nor make the caller allocate without bound.

mod common;

use std::process::{Command, Stdio};

in_every_mode! {
    /// Prints a line, and says what its stdin is.
    #[timeout(secs = 5.0)]
    fn prints_and_reads_stdin() -> String {
        println!("noise that must not reach the result");
        std::fs::read_link("/proc/self/fd/0")
            .map(|p| p.display().to_string())
            .unwrap_or_else(|e| format!("fd 0: {e}"))
    }

    #[timeout(secs = 5.0, ntries = 3)]
    fn returns_an_unserializable() -> Unserializable {
        Unserializable
    }

    /// A helper program writes a whole, well-formed result frame (`true`)
    /// to fd 3, the channel of exec and pool children, then the function
    /// itself answers `false`.
    #[timeout(secs = 5.0)]
    fn forged_by_a_helper() -> bool {
        let _ = Command::new("sh")
            .arg("-c")
            .arg(r"printf 'V\001\000\000\000\000\000\000\000\303' >&3")
            .stderr(Stdio::null())
            .status();
        false
    }

    /// The descriptors a program started by the function holds, but for
    /// 0, 1, 2 and the one `ls` reads the directory through, with what
    /// they point to.
    #[timeout(secs = 5.0)]
    fn grandchild_fds() -> Vec<String> {
        super::fds_of_a_new_program()
    }
}

/// The descriptors a program started now holds, but for 0, 1, 2 and the
/// one `ls` reads the directory through, each as "number target".
fn fds_of_a_new_program() -> Vec<String> {
    let out = Command::new("ls")
        .args(["-l", "/proc/self/fd/"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once(" -> "))
        .filter_map(|(head, target)| Some((head.rsplit(' ').next()?, target)))
        .filter(|(fd, target)| !matches!(*fd, "0" | "1" | "2") && !target.ends_with("/fd"))
        .map(|(fd, target)| format!("{fd} {target}"))
        .collect()
}

test_in_every_mode! {
    fn a_helper_cannot_forge_the_result(m) {
        assert!(!m::forged_by_a_helper().unwrap());
    }

    fn a_grandchild_inherits_no_descriptor_of_rwt(m) {
        // What this test process itself passes on to every program (the
        // environment's own descriptors) a fork child passes on too; rwt
        // must add nothing to it.
        let baseline = fds_of_a_new_program();
        let seen = m::grandchild_fds().unwrap();
        let added: Vec<_> = seen.iter().filter(|fd| !baseline.contains(fd)).collect();
        assert!(added.is_empty(), "inherited from rwt: {added:?} (baseline {baseline:?})");
    }
}

/// A value whose `Serialize` panics half-way.
#[derive(serde::Deserialize, Debug)]
pub struct Unserializable;

impl serde::Serialize for Unserializable {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        panic!("serialize refused");
    }
}

test_in_every_mode! {
    /// The panic is the value's encoding failing: `Codec`, with the panic's
    /// message, not a crash (and not retried: it would fail again).
    fn a_serialize_impl_that_panics_is_a_codec_error(m) {
        match m::returns_an_unserializable() {
            Err(rwt::Error::Codec { detail, .. }) => {
                assert!(detail.contains("serialize refused"), "{detail}")
            }
            other => panic!("{other:?}"),
        }
    }
}

/// In a helper that closed fds 0 and 1: the child's stdin is still
/// /dev/null, and what it prints never lands in its result channel.
#[test]
fn closed_stdio_helper() {
    let Some(f) = helper_fn!("closed-stdio", prints_and_reads_stdin) else {
        return;
    };
    // Closed now, not at exec: std reopens closed standard descriptors on
    // /dev/null before `main`, but a program may close them later.
    // SAFETY: nothing in this helper process uses fds 0 and 1 again.
    unsafe {
        nix::libc::close(0);
        nix::libc::close(1);
    }
    let got = f();
    eprintln!("outcome: {got:?}");
    assert_eq!(got.unwrap(), "/dev/null");
}

fn run_with_stdio_closed(role: &str) {
    let (status, _, stderr) =
        common::helper_output(common::helper_command("closed_stdio_helper", role));
    assert!(
        status.success() && stderr.contains("outcome: Ok"),
        "{status:?}\n{stderr}"
    );
}

test_each_mode_role!(
    a_caller_without_stdin_and_stdout_gets_clean_results,
    run_with_stdio_closed,
    "closed-stdio"
);

/// Sleeps a second, in a fork child.
#[rwt::timeout(secs = 10.0, mode = "fork")]
fn sleeps_a_second() {
    std::thread::sleep(std::time::Duration::from_secs(1));
}

/// The pidfds this fork child holds, each as "number target".
#[rwt::timeout(secs = 10.0, mode = "fork")]
fn pidfds_held() -> Vec<String> {
    pidfds()
}

/// What this process's descriptors point at, each as "number target".
fn fds_now() -> Vec<String> {
    std::fs::read_dir("/proc/self/fd")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let target = std::fs::read_link(entry.path()).ok()?;
            Some(format!(
                "{} {}",
                entry.file_name().to_string_lossy(),
                target.display()
            ))
        })
        .collect()
}

/// The pidfds this process holds ("anon_inode:[pidfd]"; "pidfd:[...]"
/// where the kernel has pidfs).
fn pidfds() -> Vec<String> {
    fds_now()
        .into_iter()
        .filter(|fd| fd.contains("pidfd"))
        .collect()
}

/// rwt holds each child by a pidfd while its call runs. A fork child of
/// another call must not hold a copy: through it, the function could
/// signal a stranger's child (`pidfd_send_signal`), or keep its pidfd
/// alive after rwt let it go.
#[test]
fn a_fork_child_holds_no_pidfd_of_another_call() {
    let other = std::thread::spawn(sleeps_a_second);
    // Once this process holds a pidfd, another call is in flight (this
    // one's, or another test's: neither may reach the child below).
    let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while pidfds().is_empty() {
        assert!(
            std::time::Instant::now() < until,
            "the other call never held a pidfd"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let held = pidfds_held();
    other.join().unwrap().unwrap();
    let held = held.unwrap();
    assert!(
        held.is_empty(),
        "a fork child holds another call's pidfd: {held:?}"
    );
}

/// What this fork child's descriptors point at.
#[rwt::timeout(secs = 10.0, mode = "fork")]
fn fd_targets() -> Vec<String> {
    fds_now()
}

/// A command's captured stdout and stderr are pipes the caller reads
/// while it runs. A fork child of another call must not hold them: with
/// the read end it could take the command's output, with a write end
/// (copied while the command starts) keep the pipe open after it ended.
#[test]
fn a_fork_child_holds_no_pipe_of_a_command_in_flight() {
    use rwt::CommandExt;
    let note = common::Scratch::new("command-pid");
    let script = format!("echo $$ > {}; sleep 1", note.arg());
    let command = std::thread::spawn(move || {
        Command::new("sh")
            .args(["-c", &script])
            .output_timeout(10.0)
    });
    let pid = common::read_pid(note.path(), std::time::Duration::from_secs(5))
        .expect("the command never noted its pid");
    let pipe = |fd: u32| {
        std::fs::read_link(format!("/proc/{pid}/fd/{fd}"))
            .unwrap()
            .display()
            .to_string()
    };
    let (out, err) = (pipe(1), pipe(2));
    assert!(
        out.starts_with("pipe:") && err.starts_with("pipe:"),
        "{out} {err}"
    );
    let held = fd_targets().unwrap();
    command.join().unwrap().unwrap();
    let leaked: Vec<_> = held
        .iter()
        .filter(|fd| fd.ends_with(&format!(" {out}")) || fd.ends_with(&format!(" {err}")))
        .collect();
    assert!(
        leaked.is_empty(),
        "a fork child holds the command's pipes: {leaked:?}"
    );
}
