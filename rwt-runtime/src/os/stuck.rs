//! What a child was doing when its deadline passed: a snapshot from
//! `/proc`, taken before the kill and only then (never on the fast path).
//! A call still waiting 2 ms before its deadline opens the files it will
//! read then ([`Prepared`]), so that reading them costs little of the time
//! between the deadline and the kill.

use std::fmt;

/// The scheduler state of a process, from `/proc/<pid>/stat`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum State {
    /// Running on a CPU, or ready to (`R`).
    Running,
    /// Asleep until something happens: a read, a lock, a timer (`S`).
    Sleeping,
    /// In uninterruptible sleep, usually waiting for I/O (`D`).
    Uninterruptible,
    /// Stopped by a signal (`T`).
    Stopped,
    /// Stopped by a tracer (`t`).
    Traced,
    /// Exited, not yet reaped (`Z`, `X`).
    Exited,
    /// Another state letter.
    Other(char),
}

impl State {
    fn from_letter(c: char) -> Self {
        match c {
            'R' => State::Running,
            'S' => State::Sleeping,
            'D' => State::Uninterruptible,
            'T' => State::Stopped,
            't' => State::Traced,
            'Z' | 'X' => State::Exited,
            other => State::Other(other),
        }
    }
}

/// What the child was doing at its deadline, read from `/proc/<pid>` just
/// before it was killed (or left running): see [`Error::stuck`].
///
/// In a child with several threads, the thread shown is one on a CPU if
/// any is, else one in uninterruptible sleep, else the main thread (of the
/// first 64 threads the kernel lists).
///
/// [`Error::stuck`]: crate::Error::stuck
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stuck {
    /// The scheduler state.
    pub state: State,
    /// The system call it was in, by name (`openat`, `read`), if it was in
    /// one and the kernel says which (`/proc/<pid>/syscall`).
    pub syscall: Option<String>,
    /// The kernel function it was waiting in (`/proc/<pid>/wchan`), if
    /// asleep and the kernel says.
    pub wchan: Option<String>,
}

impl fmt::Display for Stuck {
    /// "it was blocked in openat (kernel: wait_for_partner)".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.state {
            State::Running => return f.write_str("it was running on a CPU"),
            State::Exited => return f.write_str("it had just exited"),
            State::Stopped => "it was stopped by a signal",
            State::Traced => "it was stopped by a tracer",
            State::Sleeping if self.syscall.is_some() => "it was blocked",
            State::Sleeping => "it was sleeping",
            State::Uninterruptible => "it was in uninterruptible I/O",
            State::Other(c) => return write!(f, "it was in state {c}"),
        };
        f.write_str(what)?;
        if let Some(call) = &self.syscall {
            write!(f, " in {call}")?;
        }
        if let Some(wchan) = &self.wchan {
            write!(f, " (kernel: {wchan})")?;
        }
        Ok(())
    }
}

/// A child's `/proc` files, opened ahead of its deadline
/// ([`prepare`]). The first look at a new process's `/proc` entry costs
/// the kernel about 0.1 ms (here: 100 us to open and read its `stat`,
/// where a second read takes 30), which a snapshot taken only after the
/// deadline added to every timeout before the kill; read through these,
/// each file costs one `pread`. Registered descriptors: no forked child
/// inherits them.
#[cfg(target_os = "linux")]
#[derive(Debug)]
pub(crate) struct Prepared {
    stat: RegisteredFd,
    syscall: RegisteredFd,
    wchan: RegisteredFd,
}

#[cfg(target_os = "linux")]
use crate::os::fds::RegisteredFd;

/// What [`prepare`] did.
#[derive(Debug)]
pub(crate) enum Prepare {
    Ready(Prepared),
    /// rwt's descriptor list is held: a fork in progress holds it while the
    /// kernel copies the caller, which may take milliseconds. The call does
    /// not wait for it; it may try again.
    Busy,
    /// `/proc` cannot be read: the snapshot will tell what it can.
    Unavailable,
}

/// Opens what [`snapshot`] reads of process `pid` (a child of ours, not yet
/// reaped), under rwt's descriptor list, so that no fork copies them
/// unregistered.
#[cfg(target_os = "linux")]
pub(crate) fn prepare(pid: u32) -> Prepare {
    // The first look at a new process's `/proc` entry is the dear part:
    // taken here, without a descriptor and outside the list's lock, so that
    // the opens under it are quick.
    let _ = nix::sys::stat::stat(format!("/proc/{pid}/stat").as_str());
    let Some(mut fds) = crate::os::fds::try_fds() else {
        return Prepare::Busy;
    };
    let open = |name: &str| {
        nix::fcntl::open(
            format!("/proc/{pid}/{name}").as_str(),
            nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .ok()
    };
    let (Some(stat), Some(syscall), Some(wchan)) = (open("stat"), open("syscall"), open("wchan"))
    else {
        return Prepare::Unavailable;
    };
    Prepare::Ready(Prepared {
        stat: RegisteredFd::new(&mut fds, stat),
        syscall: RegisteredFd::new(&mut fds, syscall),
        wchan: RegisteredFd::new(&mut fds, wchan),
    })
}

/// The text of a small `/proc` file: through its prepared descriptor if
/// there is one, else by opening `path`.
#[cfg(target_os = "linux")]
fn read_text(prepared: Option<&RegisteredFd>, path: impl FnOnce() -> String) -> Option<String> {
    if let Some(fd) = prepared {
        let mut buf = [0u8; 1024];
        let n = nix::sys::uio::pread(fd.fd(), &mut buf, 0).ok()?;
        // A file that filled the buffer may go on: read whole below.
        if n < buf.len() {
            return String::from_utf8(buf[..n].to_vec()).ok();
        }
    }
    std::fs::read_to_string(path()).ok()
}

/// Reads what process `pid` (a child of ours, not yet reaped, so the number
/// is still its own) is doing, through `prepared` where it can. `None`
/// when `/proc` cannot tell.
#[cfg(target_os = "linux")]
pub(crate) fn snapshot(pid: u32, prepared: Option<&Prepared>) -> Option<Stuck> {
    // The process's own line first: its main thread's state and how many
    // threads it has. Most children have one, and then that is all to see.
    let stat = read_text(prepared.map(|p| &p.stat), || format!("/proc/{pid}/stat"))?;
    let mut fields = crate::os::procfs::stat_fields(&stat)?;
    let main_state = State::from_letter(fields.next()?.chars().next()?);
    // Field 20, the 18th from the state on.
    let threads: usize = fields.nth(16)?.parse().ok()?;
    let (dir, state, files) = if threads <= 1 || main_state == State::Running {
        (format!("/proc/{pid}"), main_state, prepared)
    } else {
        let (dir, state) = busiest_thread(pid, main_state);
        // The prepared files are the main thread's (and the process's).
        let main = dir == format!("/proc/{pid}");
        (dir, state, prepared.filter(|_| main))
    };
    let asleep = matches!(state, State::Sleeping | State::Uninterruptible);
    if !asleep {
        return Some(Stuck {
            state,
            syscall: None,
            wchan: None,
        });
    }
    let syscall = read_text(files.map(|p| &p.syscall), || format!("{dir}/syscall"))
        .and_then(|s| syscall_name(&s));
    let wchan = read_text(files.map(|p| &p.wchan), || format!("{dir}/wchan"))
        .map(|w| w.trim().to_owned())
        .filter(|w| !w.is_empty() && w != "0");
    Some(Stuck {
        state,
        syscall,
        wchan,
    })
}

/// Of a child's threads (the first 64: a child with thousands must not
/// hold the kill, and the caller, past its deadline), one on a CPU, else
/// one in uninterruptible sleep, else the main thread: its `/proc`
/// directory and state.
#[cfg(target_os = "linux")]
fn busiest_thread(pid: u32, main_state: State) -> (String, State) {
    const MAX_THREADS: usize = 64;
    let mut best = (format!("/proc/{pid}"), main_state);
    let rank = |state: State| match state {
        State::Running => 2,
        State::Uninterruptible => 1,
        _ => 0,
    };
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return best;
    };
    for entry in dir.filter_map(Result::ok).take(MAX_THREADS) {
        let Some(tid) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        let path = format!("/proc/{pid}/task/{tid}");
        let Some(state) = std::fs::read_to_string(format!("{path}/stat"))
            .ok()
            .and_then(|stat| {
                let letter = crate::os::procfs::stat_fields(&stat)?
                    .next()?
                    .chars()
                    .next()?;
                Some(State::from_letter(letter))
            })
        else {
            continue;
        };
        if rank(state) > rank(best.1) {
            best = (path, state);
            if state == State::Running {
                break;
            }
        }
    }
    best
}

/// Off Linux there is nothing to prepare.
#[cfg(not(target_os = "linux"))]
#[derive(Debug)]
pub(crate) struct Prepared;

/// Off Linux there is no `/proc` to read.
#[cfg(not(target_os = "linux"))]
pub(crate) fn prepare(_pid: u32) -> Prepare {
    Prepare::Unavailable
}

/// Off Linux there is no `/proc` to read.
#[cfg(not(target_os = "linux"))]
pub(crate) fn snapshot(_pid: u32, _prepared: Option<&Prepared>) -> Option<Stuck> {
    None
}

/// The name in `/proc/<pid>/syscall`'s first field: a number while in a
/// system call, `-1` (in the kernel, not in a call) or `running`.
#[cfg(target_os = "linux")]
fn syscall_name(line: &str) -> Option<String> {
    let nr: u64 = line.split_whitespace().next()?.parse().ok()?;
    Some(crate::os::syscalls::name(nr).map_or_else(|| format!("system call {nr}"), str::to_owned))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_read_like_the_spec() {
        let s = Stuck {
            state: State::Sleeping,
            syscall: Some("openat".into()),
            wchan: Some("wait_for_partner".into()),
        };
        assert_eq!(
            s.to_string(),
            "it was blocked in openat (kernel: wait_for_partner)"
        );
        let s = Stuck {
            state: State::Running,
            syscall: None,
            wchan: None,
        };
        assert_eq!(s.to_string(), "it was running on a CPU");
        let s = Stuck {
            state: State::Uninterruptible,
            syscall: Some("read".into()),
            wchan: Some("nfs_wait_bit_killable".into()),
        };
        assert_eq!(
            s.to_string(),
            "it was in uninterruptible I/O in read (kernel: nfs_wait_bit_killable)"
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_sleeping_process_is_seen_in_its_sleep() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id();
        // Wait until it is in its sleep (exec and startup take a moment).
        let mut seen = None;
        for _ in 0..500 {
            seen = snapshot(pid, None);
            if seen.as_ref().is_some_and(|s| s.syscall.is_some()) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        // Through files opened ahead, the same (other tests of this binary
        // hold rwt's descriptor list for moments).
        let prepared = loop {
            match prepare(pid) {
                Prepare::Ready(prepared) => break prepared,
                Prepare::Busy => std::thread::sleep(std::time::Duration::from_millis(1)),
                Prepare::Unavailable => panic!("its /proc files do not open"),
            }
        };
        let through_prepared = snapshot(pid, Some(&prepared));
        let _ = child.kill();
        let _ = child.wait();
        let seen = seen.expect("a snapshot of a live child");
        assert_eq!(seen.state, State::Sleeping, "{seen:?}");
        assert_eq!(seen.syscall.as_deref(), Some("clock_nanosleep"), "{seen:?}");
        assert_eq!(through_prepared.as_ref(), Some(&seen));
        // Reaped, the prepared files tell nothing (never another
        // process's state).
        assert_eq!(snapshot(pid, Some(&prepared)), None);
    }
}
