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
//! Lock order: stdout, stderr, a subsystem's state, the descriptor list. No code holds two subsystems' states at once. Never
//! emit a tracing event or touch stdout/stderr while holding a state:
//! `fork` takes the stdout and stderr locks first.

use std::sync::atomic::{AtomicPtr, AtomicU32, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

/// Bumped in every child rwt forks ([`forked`]): a slot made before the
/// fork is the parent's even where the pids match (the first child of a
/// process that entered a new pid namespace has its parent's number).
static GENERATION: AtomicU32 = AtomicU32::new(0);

/// In a child rwt just forked: every state made before is the parent's.
/// Async-signal-safe (one atomic add).
pub(crate) fn forked() {
    GENERATION.fetch_add(1, Ordering::AcqRel);
}

/// One subsystem's state, made on first use in each process.
pub(crate) struct ProcessLocal<T: 'static> {
    current: AtomicPtr<Slot<T>>,
    /// Makes the state.
    fresh: fn() -> T,
    /// Runs once in a child, in the thread whose fresh state replaced the
    /// parent's copy, before it uses it.
    inherited: fn(),
}

/// A state and the process it belongs to. Only ever leaked for good.
struct Slot<T> {
    /// Written before the slot is published and never again, so a child
    /// may read them whatever the parent's threads were doing.
    owner: u32,
    generation: u32,
    state: Mutex<T>,
}

impl<T> ProcessLocal<T> {
    pub(crate) const fn new(fresh: fn() -> T, inherited: fn()) -> Self {
        ProcessLocal {
            current: AtomicPtr::new(std::ptr::null_mut()),
            fresh,
            inherited,
        }
    }

    /// Locks this process's state, making it first if there is none yet
    /// (or only the parent's). A panic while it was held does not poison
    /// it for good: every update leaves it consistent.
    pub(crate) fn lock(&'static self) -> MutexGuard<'static, T> {
        let me = std::process::id();
        let generation = GENERATION.load(Ordering::Acquire);
        loop {
            let current = self.current.load(Ordering::Acquire);
            // SAFETY: a non-null pointer stored here comes from
            // Box::into_raw below and is never freed, so it is valid for
            // the rest of the process (and of any child, as a copy).
            let inherited = match unsafe { current.as_ref() } {
                Some(slot) if slot.owner == me && slot.generation == generation => {
                    return slot.state.lock().unwrap_or_else(PoisonError::into_inner);
                }
                Some(_) => true,
                None => false,
            };
            let fresh = Box::into_raw(Box::new(Slot {
                owner: me,
                generation,
                state: Mutex::new((self.fresh)()),
            }));
            match self
                .current
                .compare_exchange(current, fresh, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) if inherited => (self.inherited)(),
                Ok(_) => {}
                // Another thread made one meanwhile: theirs is used.
                // SAFETY: `fresh` came from Box::into_raw just above and
                // was never shared.
                Err(_) => drop(unsafe { Box::from_raw(fresh) }),
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
pub(crate) mod tests {
    use super::ProcessLocal;

    /// Runs `child` in a forked child of the test and returns the bytes it
    /// answered (empty if it answered nothing). The child must only do
    /// what is safe after `fork` in a threaded process (rwt's own state
    /// and syscalls); it leaves with `_exit`.
    pub(crate) fn answer_of_a_fork(child: impl FnOnce() -> Vec<u8>) -> Vec<u8> {
        let (read, write) = nix::unistd::pipe().unwrap();
        // SAFETY: the child runs `child`, which does only the above,
        // writes to a pipe and leaves with _exit.
        match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => {
                let answer = child();
                let _ = nix::unistd::write(&write, &answer);
                // SAFETY: _exit is async-signal-safe and ends the child.
                unsafe { nix::libc::_exit(0) }
            }
            nix::unistd::ForkResult::Parent { child } => {
                drop(write);
                let mut buf = [0u8; 64];
                let n = nix::unistd::read(&read, &mut buf).unwrap_or(0);
                let _ = nix::sys::wait::waitpid(child, None);
                buf[..n].to_vec()
            }
        }
    }

    static COUNTER: ProcessLocal<u32> = ProcessLocal::new(|| 100, || {});

    /// A child's first lock makes a fresh state, even while the parent's
    /// copy was locked at the fork (its holder does not exist there).
    #[test]
    fn a_child_gets_a_fresh_state_even_if_the_parent_held_it() {
        *COUNTER.lock() = 7;
        let held = COUNTER.lock();
        let seen = answer_of_a_fork(|| COUNTER.lock().to_ne_bytes().to_vec());
        drop(held);
        assert_eq!(seen.len(), 4, "the child blocked on its parent's lock");
        assert_eq!(
            seen,
            100u32.to_ne_bytes(),
            "the child saw its parent's state"
        );
        assert_eq!(*COUNTER.lock(), 7);
    }

    static TAGGED: ProcessLocal<u32> = ProcessLocal::new(|| 100, || {});

    /// A child rwt forks may have its parent's pid (the first child of a
    /// process that entered a new pid namespace): the fork's generation
    /// still makes its state fresh. Played in a forked child, which calls
    /// `forked()` as rwt's fork does, with its own state of the same pid.
    #[test]
    fn a_state_made_before_rwt_forked_is_not_the_childs_even_with_the_same_pid() {
        let seen = answer_of_a_fork(|| {
            *TAGGED.lock() = 7;
            super::forked();
            TAGGED.lock().to_ne_bytes().to_vec()
        });
        assert_eq!(seen, 100u32.to_ne_bytes(), "the state of before the fork");
    }
}
