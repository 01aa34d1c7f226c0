//! The state of one of rwt's subsystems (the pool's idle workers, the
//! reaper, `kill_all`'s epoch, the spawner threads), shared by the threads
//! of one process and never by two.
//!
//! Each subsystem keeps its own [`ProcessLocal`]: no lock is shared
//! between them, and none is held across `fork()` (only the descriptor
//! list is: [`crate::os::fds`]). So calls that need only this state (a
//! pool call, a `kill_all`) never wait for another call's fork of a large
//! caller.
//!
//! A child, made by rwt's `fork` or by the user's own, does not read its
//! parent's copy, which another thread may have held mid-update at the
//! fork: the first lock in the child makes a fresh one, and the parent's
//! stays where it was, never freed or dropped (what it held, such as idle
//! workers' channels, is closed with the registered descriptors in an rwt
//! child, and left alone in a user's).
//!
//! Lock order: stdout, stderr, rwt's poller, a subsystem's state, the
//! descriptor list. No code holds two subsystems' states at once. Never
//! emit a tracing event or touch stdout/stderr while holding a state:
//! `fork` takes the stdout and stderr locks first.

use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

/// One subsystem's state, made on first use in each process.
pub(crate) struct ProcessLocal<T: 'static> {
    current: AtomicPtr<Slot<T>>,
    /// Makes the state; `true` when it replaces a parent's copy.
    fresh: fn(inherited: bool) -> T,
}

/// A state and the process it belongs to. Only ever leaked for good.
struct Slot<T> {
    /// Written before the slot is published and never again, so a child
    /// may read it whatever the parent's threads were doing.
    owner: u32,
    state: Mutex<T>,
}

impl<T> ProcessLocal<T> {
    pub(crate) const fn new(fresh: fn(inherited: bool) -> T) -> Self {
        ProcessLocal {
            current: AtomicPtr::new(std::ptr::null_mut()),
            fresh,
        }
    }

    /// Locks this process's state, making it first if there is none yet
    /// (or only the parent's). A panic while it was held does not poison
    /// it for good: every update leaves it consistent.
    pub(crate) fn lock(&'static self) -> MutexGuard<'static, T> {
        let me = std::process::id();
        loop {
            let current = self.current.load(Ordering::Acquire);
            // SAFETY: a non-null pointer stored here comes from
            // Box::into_raw below and is never freed, so it is valid for
            // the rest of the process (and of any child, as a copy).
            let inherited = match unsafe { current.as_ref() } {
                Some(slot) if slot.owner == me => {
                    return slot.state.lock().unwrap_or_else(PoisonError::into_inner);
                }
                Some(_) => true,
                None => false,
            };
            let fresh = Box::into_raw(Box::new(Slot {
                owner: me,
                state: Mutex::new((self.fresh)(inherited)),
            }));
            if self
                .current
                .compare_exchange(current, fresh, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
            {
                // Another thread made one meanwhile: theirs is used.
                // SAFETY: `fresh` came from Box::into_raw just above and
                // was never shared.
                drop(unsafe { Box::from_raw(fresh) });
            }
        }
    }
}

/// Waits on `condvar` with a state's lock, as [`Condvar::wait`] does, and
/// with [`ProcessLocal::lock`]'s care for poisoning.
pub(crate) fn wait<T>(condvar: &Condvar, guard: MutexGuard<'static, T>) -> MutexGuard<'static, T> {
    condvar.wait(guard).unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::ProcessLocal;

    static COUNTER: ProcessLocal<u32> = ProcessLocal::new(|inherited| u32::from(inherited) * 100);

    /// A child's first lock makes a fresh state, even while the parent's
    /// copy was locked at the fork (its holder does not exist there).
    #[test]
    fn a_child_gets_a_fresh_state_even_if_the_parent_held_it() {
        *COUNTER.lock() = 7;
        let held = COUNTER.lock();
        let (read, write) = nix::unistd::pipe().unwrap();
        // SAFETY: the child only reads the state, writes to a pipe and
        // leaves with _exit.
        match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => {
                let seen = *COUNTER.lock();
                let _ = nix::unistd::write(&write, &seen.to_ne_bytes());
                // SAFETY: _exit is async-signal-safe and ends the child.
                unsafe { nix::libc::_exit(0) }
            }
            nix::unistd::ForkResult::Parent { child } => {
                drop(write);
                let mut buf = [0u8; 4];
                let n = nix::unistd::read(&read, &mut buf).unwrap_or(0);
                let _ = nix::sys::wait::waitpid(child, None);
                drop(held);
                assert_eq!(n, 4, "the child blocked on its parent's lock");
                assert_eq!(
                    u32::from_ne_bytes(buf),
                    100,
                    "the child saw its parent's state"
                );
                assert_eq!(*COUNTER.lock(), 7);
            }
        }
    }
}
