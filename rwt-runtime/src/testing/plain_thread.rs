//! A thread that libtest's output capture does not reach.

/// Runs `f` on a thread started with `pthread_create` rather than
/// `std::thread`, which would hand it libtest's capture of the caller's
/// `print!`: a fork-mode child forked there would inherit that capture and
/// print into a buffer nobody reads. Waits for it; a panic in `f` goes on
/// in the caller.
pub(super) fn on_plain_thread<T: Send, F: FnOnce() -> T + Send>(f: F) -> T {
    use nix::libc;
    use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

    struct Job<F, T> {
        f: Option<F>,
        out: Option<std::thread::Result<T>>,
    }

    extern "C" fn run<F: FnOnce() -> T, T>(job: *mut libc::c_void) -> *mut libc::c_void {
        // SAFETY: `job` is the `Job` that `on_plain_thread` passed to
        // pthread_create; it stays alive, and untouched by the creator,
        // until the creator has joined this thread.
        let job = unsafe { &mut *job.cast::<Job<F, T>>() };
        if let Some(f) = job.f.take() {
            // Nothing unwinds out of an `extern "C"` function.
            job.out = Some(catch_unwind(AssertUnwindSafe(f)));
        }
        std::ptr::null_mut()
    }

    let mut job = Job {
        f: Some(f),
        out: None,
    };
    let mut thread: libc::pthread_t = 0;
    // SAFETY: `run::<F, T>` matches the start routine's signature, and its
    // argument points at `job`, which outlives the thread: it is joined
    // below before `job` is read or dropped.
    let rc = unsafe {
        libc::pthread_create(
            &mut thread,
            std::ptr::null(),
            run::<F, T>,
            std::ptr::from_mut(&mut job).cast(),
        )
    };
    if rc != 0 {
        // No thread to be had: run it here (its child's `print!` may then
        // be lost to libtest's capture, which is all that is at stake).
        let f = job.f.take().expect("not started");
        return f();
    }
    // SAFETY: `thread` was created above, joinable, and is joined once.
    unsafe { libc::pthread_join(thread, std::ptr::null_mut()) };
    match job.out.take().expect("the thread ran the job") {
        Ok(value) => value,
        Err(panic) => resume_unwind(panic),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_thread_returns_or_panics_back() {
        assert_eq!(on_plain_thread(|| 7), 7);
        // `resume_unwind`: a panic that runs no hook, so prints nothing.
        let caught = std::panic::catch_unwind(|| {
            on_plain_thread(|| -> u8 { std::panic::resume_unwind(Box::new("inner")) })
        });
        let payload = caught.unwrap_err();
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"inner"));
    }
}
